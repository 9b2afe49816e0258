// Package fakebackend provides small in-memory implementations of the catalog,
// search and auth gRPC services, served over real gRPC, for the gateway's
// tests. They are fakes of the services, not of any database: they keep a
// handful of movies in a map, authorize every call with the real
// platform/authn verifier (so 401 and 403 come from the backend, as in
// production), and record what they received so tests can check what the
// gateway forwarded.
package fakebackend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Issuer and Audience are the token claims the fakes issue and expect.
const (
	Issuer   = "https://marquee.dev"
	Audience = "marquee-api"
)

// Keys signs and checks access tokens and knows the API keys: the identity
// shared by the fake services. It is safe for concurrent use.
type Keys struct {
	t    testing.TB
	priv ed25519.PrivateKey
	kid  string

	mu      sync.Mutex
	apiKeys map[string]authn.Principal
}

// NewKeys returns a fresh signing key and no API keys.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generating ed25519 key: %v", err)
	}
	return &Keys{t: t, priv: priv, kid: "test-key-1", apiKeys: map[string]authn.Principal{}}
}

// Token mints an access token for sub with role, valid for ttl.
func (k *Keys) Token(sub string, role authn.Role, ttl time.Duration) string {
	now := time.Now()
	claims := authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
			ID:        fmt.Sprintf("jti-%d", now.UnixNano()),
		},
		Role: role,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		k.t.Errorf("signing token: %v", err)
	}
	return s
}

// AddAPIKey makes key an API key of sub with role.
func (k *Keys) AddAPIKey(key, sub string, role authn.Role) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.apiKeys[key] = authn.Principal{Subject: sub, Role: role, APIKeyID: "key-" + sub}
}

// JWKS implements authn.Backend.
func (k *Keys) JWKS(context.Context) ([]*authv1.Jwk, error) {
	pub := k.priv.Public().(ed25519.PublicKey)
	return []*authv1.Jwk{{
		Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
		Kid: k.kid, Use: "sig", Alg: "EdDSA",
	}}, nil
}

// ResolveAPIKey implements authn.Backend.
func (k *Keys) ResolveAPIKey(_ context.Context, key string) (authn.Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.apiKeys[key]
	if !ok {
		return authn.Principal{}, fmt.Errorf("%w: unknown key", authn.ErrUnauthenticated)
	}
	return p, nil
}

// Verifier returns a verifier backed by these keys, as the services use.
func (k *Keys) Verifier() *authn.Verifier {
	return authn.NewVerifierWithBackend(k, authn.VerifierConfig{Issuer: Issuer, Audience: Audience})
}

// Recorder keeps the incoming metadata of the calls a fake received.
type Recorder struct {
	mu        sync.Mutex
	calls     map[string][]metadata.MD // by method name
	counts    map[string]int
	countOnly bool
}

// CountOnly stops keeping metadata (counts go on), so that a load test does
// not grow the heap it measures.
func (r *Recorder) CountOnly() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.countOnly = true
}

func (r *Recorder) record(ctx context.Context, method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[method]++
	if r.countOnly {
		return
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if r.calls == nil {
		r.calls = map[string][]metadata.MD{}
	}
	r.calls[method] = append(r.calls[method], md.Copy())
}

// Calls returns the metadata of every call of method, oldest first.
func (r *Recorder) Calls(method string) []metadata.MD {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]metadata.MD(nil), r.calls[method]...)
}

// Count returns how many calls of method arrived.
func (r *Recorder) Count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[method]
}

// Serve starts a gRPC server on a free loopback port with the verifier's
// interceptors, registers the services with register, and stops it when the
// test ends. It returns the address.
func Serve(t testing.TB, v *authn.Verifier, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(v.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(v.StreamServerInterceptor()),
	)
	register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// Auth is a fake AuthService.
type Auth struct {
	authv1.UnimplementedAuthServiceServer
	Recorder
	Keys *Keys
}

// GetJwks returns the signing key.
func (a *Auth) GetJwks(ctx context.Context, _ *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	a.record(ctx, "GetJwks")
	keys, _ := a.Keys.JWKS(ctx)
	return &authv1.GetJwksResponse{Keys: keys}, nil
}

// CreateToken issues service tokens to any client with the secret "secret",
// and user tokens for the password "correct horse battery" (the username is
// the subject; "admin@example.com" is an admin).
func (a *Auth) CreateToken(ctx context.Context, in *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	a.record(ctx, "CreateToken")
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	switch in.GetGrantType() {
	case "client_credentials":
		if in.GetClientSecret() != "secret" {
			return nil, apierr.New(codes.Unauthenticated, "INVALID_CLIENT", "client credentials are not valid")
		}
		return &authv1.CreateTokenResponse{AccessToken: a.Keys.Token(in.GetClientId(), authn.RoleService, 5*time.Minute),
			TokenType: "Bearer", ExpiresIn: 300}, nil
	case "password":
		if in.GetPassword() != "correct horse battery" {
			return nil, apierr.New(codes.Unauthenticated, "INVALID_GRANT", "the email or password is wrong")
		}
		role := authn.RoleUser
		if in.GetUsername() == "admin@example.com" {
			role = authn.RoleAdmin
		}
		return &authv1.CreateTokenResponse{AccessToken: a.Keys.Token(in.GetUsername(), role, 15*time.Minute),
			TokenType: "Bearer", ExpiresIn: 900, RefreshToken: "refresh"}, nil
	default:
		return nil, apierr.InvalidArgument("INVALID_ARGUMENT", "unsupported grant type",
			apierr.Field("grant_type", "must be password, refresh_token or client_credentials"))
	}
}

// ResolveApiKey answers services only.
func (a *Auth) ResolveApiKey(ctx context.Context, in *authv1.ResolveApiKeyRequest) (*authv1.ResolveApiKeyResponse, error) {
	a.record(ctx, "ResolveApiKey")
	if err := authn.Require(ctx, authn.RoleService); err != nil {
		return nil, err
	}
	p, err := a.Keys.ResolveAPIKey(ctx, in.GetKey())
	if err != nil {
		return nil, apierr.New(codes.NotFound, "API_KEY_NOT_FOUND", "unknown API key")
	}
	return &authv1.ResolveApiKeyResponse{UserId: p.Subject, Role: p.Role.Proto(), KeyId: p.APIKeyID}, nil
}

// GetCurrentUser returns the caller.
func (a *Auth) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.User, error) {
	a.record(ctx, "GetCurrentUser")
	if err := authn.Require(ctx, authn.RoleUser, authn.RoleAdmin); err != nil {
		return nil, err
	}
	p := authn.FromContext(ctx)
	return &authv1.User{Id: p.Subject, Email: p.Subject, Role: p.Role.Proto()}, nil
}

// CreateUser registers anyone.
func (a *Auth) CreateUser(ctx context.Context, in *authv1.CreateUserRequest) (*authv1.User, error) {
	a.record(ctx, "CreateUser")
	if in.GetEmail() == "" {
		return nil, apierr.InvalidArgument("INVALID_ARGUMENT", "email is required", apierr.Field("email", "is required"))
	}
	return &authv1.User{Id: "u_" + in.GetEmail(), Email: in.GetEmail(), DisplayName: in.GetDisplayName(), Role: authv1.Role_ROLE_USER}, nil
}

// CreateApiKey makes a key for the calling user; it can be used at once.
func (a *Auth) CreateApiKey(ctx context.Context, in *authv1.CreateApiKeyRequest) (*authv1.ApiKey, error) {
	a.record(ctx, "CreateApiKey")
	if err := authn.Require(ctx, authn.RoleUser, authn.RoleAdmin); err != nil {
		return nil, err
	}
	p := authn.FromContext(ctx)
	key := fmt.Sprintf("mk_fake%025d", time.Now().UnixNano()%1e15)
	a.Keys.AddAPIKey(key, p.Subject, p.Role)
	return &authv1.ApiKey{Id: "k_" + key[len(key)-6:], DisplayName: in.GetApiKey().GetDisplayName(), Prefix: key[:7], Key: key}, nil
}
