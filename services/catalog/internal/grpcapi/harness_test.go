package grpcapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/app"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

const (
	issuer   = "https://marquee.test"
	audience = "marquee-api"
	kid      = "test-key"
)

// keyBackend is an auth backend holding one local signing key, so tests
// authenticate with real EdDSA tokens through the real interceptor.
type keyBackend struct{ pub ed25519.PublicKey }

func (b keyBackend) JWKS(context.Context) ([]*authv1.Jwk, error) {
	return []*authv1.Jwk{{Kty: "OKP", Crv: "Ed25519", Kid: kid, Alg: "EdDSA", Use: "sig",
		X: base64.RawURLEncoding.EncodeToString(b.pub)}}, nil
}

func (keyBackend) ResolveAPIKey(context.Context, string) (authn.Principal, error) {
	return authn.Principal{}, authn.ErrUnauthenticated
}

type env struct {
	t      testing.TB
	client catalogv1.CatalogServiceClient
	mongo  *mongodb.Client
	key    ed25519.PrivateKey
	addr   string
}

type envOption func(*app.Config)

// start runs the catalog through app.Run on 127.0.0.1:0 over a fresh
// database and connects a client over TCP.
func start(t testing.TB, opts ...envOption) *env {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mc := testenv.Mongo(t)
	cfg := app.DefaultConfig()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.MigrateOnStart = true
	cfg.PageTokenKey = "test-key"
	cfg.Changes.Settle = 4 * time.Second
	cfg.Changes.PollInterval = 50 * time.Millisecond
	for _, o := range opts {
		o(&cfg)
	}
	verifier := authn.NewVerifierWithBackend(keyBackend{pub: pub}, authn.VerifierConfig{Issuer: issuer, Audience: audience})
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.WithMongo(mc), app.WithVerifier(verifier), app.WithLogger(logging.Discard()),
			app.WithTelemetry(telemetry.Noop()), app.WithListening(func(g, _ string) { addrs <- g }))
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("app.Run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the catalog did not start listening")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app.Run returned %v", err)
		}
	})
	return &env{t: t, client: catalogv1.NewCatalogServiceClient(conn), mongo: mc, key: priv, addr: addr}
}

// as returns a context carrying a fresh access token for role.
func (e *env) as(role authn.Role) context.Context {
	now := time.Now()
	claims := authn.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Audience: jwt.ClaimStrings{audience}, Subject: "u_" + string(role),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: fmt.Sprint(now.UnixNano()),
	}, Role: role}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(e.key)
	if err != nil {
		e.t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(e.t.Context(), "authorization", "Bearer "+raw)
}

func (e *env) admin() context.Context { return e.as(authn.RoleAdmin) }

// wantStatus checks an error's code and ErrorInfo reason.
func wantStatus(t testing.TB, err error, code codes.Code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s %s, got success", code, reason)
	}
	st, _ := status.FromError(err)
	if st.Code() != code || apierr.Reason(err) != reason {
		t.Fatalf("want %s %s, got %s %s: %s", code, reason, st.Code(), apierr.Reason(err), st.Message())
	}
}

// wantFields checks the BadRequest field violations of an error.
func wantFields(t testing.TB, err error, fields ...string) {
	t.Helper()
	wantStatus(t, err, codes.InvalidArgument, apierr.Reason(err))
	var got []string
	for _, v := range apierr.Violations(err) {
		got = append(got, v.Field)
	}
	if fmt.Sprint(got) != fmt.Sprint(fields) {
		t.Fatalf("violations %v, want %v", got, fields)
	}
}

func ptr[T any](v T) *T { return &v }

func (e *env) create(m *catalogv1.Movie, requestID string) *catalogv1.Movie {
	e.t.Helper()
	out, err := e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{Movie: m, RequestId: requestID})
	if err != nil {
		e.t.Fatalf("CreateMovie: %v", err)
	}
	return out
}

// poll retries f until it returns nil or the deadline passes.
func poll(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		select {
		case <-time.After(25 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(errors.Join(err, t.Context().Err()))
		}
	}
}
