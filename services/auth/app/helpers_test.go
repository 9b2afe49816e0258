package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/auth/app"
	"github.com/marquee-dev/marquee/services/auth/internal/throttle"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

const (
	adminEmail    = "admin@marquee.test"
	adminPassword = "admin-password-for-tests"
	searchSecret  = "search-secret-for-tests-0123456789"
	gatewaySecret = "gateway-secret-for-tests-0123456789"
	userPassword  = "tangerine-otter-92"
)

var kekBytes = bytes.Repeat([]byte{0x42}, 32)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clock is a test clock that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one auth service running on 127.0.0.1:0 over a database of the
// test's own.
type env struct {
	t      *testing.T
	cfg    app.Config
	addr   string
	conn   *grpc.ClientConn
	client authv1.AuthServiceClient
	mc     *mongodb.Client
	logs   *syncBuffer
	seq    atomic.Int64
}

func testConfig() app.Config {
	cfg := app.DefaultConfig()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.KeyEncryptionKey = base64.StdEncoding.EncodeToString(kekBytes)
	cfg.ServiceClients = []string{"search=" + searchSecret, "gateway=" + gatewaySecret}
	cfg.AdminEmail = adminEmail
	cfg.AdminPassword = adminPassword
	generous := throttle.Limit{Burst: 10_000, Every: time.Millisecond}
	cfg.Throttle = app.ThrottleConfig{LoginAccount: generous, LoginAddress: generous, SignupAddress: generous}
	return cfg
}

// start runs the service with cfg changed by mutate, sharing mc when given.
func start(t *testing.T, mutate func(*app.Config), mc *mongodb.Client, opts ...app.Option) *env {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	if mc == nil {
		mc = testenv.Mongo(t)
	}
	e := &env{t: t, cfg: cfg, mc: mc, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	listening := make(chan string, 1)
	opts = append([]app.Option{
		app.WithLogger(logger),
		app.WithMongo(mc),
		app.WithTelemetry(telemetry.Noop()),
		app.WithListening(func(grpcAddr, _ string) { listening <- grpcAddr }),
	}, opts...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, opts...) }()
	select {
	case e.addr = <-listening:
	case err := <-done:
		cancel()
		t.Fatalf("app.Run: %v\nlogs:\n%s", err, e.logs.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the service did not start listening within 60s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app.Run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the service did not stop within 30s")
		}
	})
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.conn = conn
	e.client = authv1.NewAuthServiceClient(conn)
	return e
}

func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func apiKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-api-key", key)
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// email returns an address unique within the test.
func (e *env) email(prefix string) string {
	return fmt.Sprintf("%s-%d@example.com", prefix, e.seq.Add(1))
}

func (e *env) register(email string) *authv1.User {
	e.t.Helper()
	u, err := e.client.CreateUser(e.ctx(), &authv1.CreateUserRequest{Email: email, Password: userPassword, DisplayName: "Test"})
	if err != nil {
		e.t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func (e *env) login(email, password string) *authv1.CreateTokenResponse {
	e.t.Helper()
	resp, err := e.client.CreateToken(e.ctx(), &authv1.CreateTokenRequest{GrantType: "password", Username: email, Password: password})
	if err != nil {
		e.t.Fatalf("password grant for %s: %v", email, err)
	}
	return resp
}

func (e *env) adminToken() string {
	e.t.Helper()
	return e.login(adminEmail, adminPassword).GetAccessToken()
}

func (e *env) serviceToken(id, secret string) string {
	e.t.Helper()
	resp, err := e.client.CreateToken(e.ctx(), &authv1.CreateTokenRequest{GrantType: "client_credentials", ClientId: id, ClientSecret: secret})
	if err != nil {
		e.t.Fatalf("client_credentials for %s: %v", id, err)
	}
	return resp.GetAccessToken()
}

// remoteVerifier is the verifier another service (the gateway) would run.
func (e *env) remoteVerifier(cfg authn.VerifierConfig) *authn.Verifier {
	cfg.Issuer, cfg.Audience = e.cfg.Issuer, e.cfg.Audience
	return authn.NewVerifier(e.conn, authn.NewTokenSource(e.conn, "gateway", gatewaySecret), cfg)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, within)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func contains(haystack, needle string) bool {
	return needle != "" && strings.Contains(haystack, needle)
}
