package authn

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
)

// TokenSource obtains a service token with the client_credentials grant and
// keeps it until shortly before it expires. It is safe for concurrent use.
type TokenSource struct {
	client       authv1.AuthServiceClient
	clientID     string
	clientSecret string
	now          func() time.Time

	mu      sync.Mutex
	token   string
	refresh time.Time // when to fetch a new token
}

// NewTokenSource returns a TokenSource that asks AuthService on conn.
func NewTokenSource(conn grpc.ClientConnInterface, clientID, clientSecret string) *TokenSource {
	return &TokenSource{
		client:       authv1.NewAuthServiceClient(conn),
		clientID:     clientID,
		clientSecret: clientSecret,
		now:          time.Now,
	}
}

// fetchingKey marks the context of the token request itself, so that a
// connection dialled with this source's credentials does not ask for a token
// in order to ask for a token.
type fetchingKey struct{}

// Token returns a valid service token, fetching a new one when the cached one
// is within a fifth of its lifetime (at most a minute) of expiring.
func (ts *TokenSource) Token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if ts.token != "" && now.Before(ts.refresh) {
		return ts.token, nil
	}
	// Other callers wait on mu meanwhile, so the call is bounded even when
	// ctx is not.
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, fetchingKey{}, true), 10*time.Second)
	defer cancel()
	resp, err := ts.client.CreateToken(ctx, &authv1.CreateTokenRequest{
		GrantType:    "client_credentials",
		ClientId:     ts.clientID,
		ClientSecret: ts.clientSecret,
	})
	if err != nil {
		return "", fmt.Errorf("obtaining a service token for %q: %w", ts.clientID, err)
	}
	life := time.Duration(resp.GetExpiresIn()) * time.Second
	margin := min(life/5, time.Minute)
	ts.token = resp.GetAccessToken()
	ts.refresh = now.Add(life - margin)
	return ts.token, nil
}

// PerRPCCredentials returns credentials for grpc.WithPerRPCCredentials or
// grpc.PerRPCCredentials that send `authorization: Bearer <service token>`.
// They do not require transport security, since services talk over the
// cluster network.
func (ts *TokenSource) PerRPCCredentials() credentials.PerRPCCredentials {
	return perRPC{ts}
}

type perRPC struct{ ts *TokenSource }

func (c perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if ctx.Value(fetchingKey{}) != nil {
		return nil, nil
	}
	tok, err := c.ts.Token(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

func (perRPC) RequireTransportSecurity() bool { return false }
