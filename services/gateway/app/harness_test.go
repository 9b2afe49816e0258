package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/gateway/internal/fakebackend"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// stack is a gateway in front of fake catalog, search and auth services, each
// served over real gRPC on loopback.
type stack struct {
	t       testing.TB
	keys    *fakebackend.Keys
	catalog *fakebackend.Catalog
	search  *fakebackend.Search
	auth    *fakebackend.Auth
	cfg     app.Config
	base    string // http://host:port
	admin   string // host:port of the admin server
	client  *http.Client
}

type stackOption func(*stackSetup)

type stackSetup struct {
	cfg        app.Config
	telemetry  bool // a real telemetry pipeline (metrics on the admin port)
	provider   *telemetry.Provider
	keys       *fakebackend.Keys
	catalog    *fakebackend.Catalog
	searchDown bool
}

func withConfig(f func(*app.Config)) stackOption {
	return func(s *stackSetup) { f(&s.cfg) }
}

func withTelemetry() stackOption { return func(s *stackSetup) { s.telemetry = true } }

func withProvider(tp *telemetry.Provider) stackOption { return func(s *stackSetup) { s.provider = tp } }

// withSearchDown points the gateway at a search address nobody listens on.
func withSearchDown() stackOption { return func(s *stackSetup) { s.searchDown = true } }

// withBackends shares the fakes of another stack (several gateways in front
// of the same services).
func withBackends(other *stack) stackOption {
	return func(s *stackSetup) { s.keys, s.catalog = other.keys, other.catalog }
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("GATEWAY_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startStack(t testing.TB, opts ...stackOption) *stack {
	t.Helper()
	setup := &stackSetup{cfg: app.DefaultConfig()}
	setup.cfg.HTTPAddr = "127.0.0.1:0"
	setup.cfg.AdminAddr = "127.0.0.1:0"
	setup.cfg.ClientSecret = "secret"
	setup.cfg.ShutdownGrace = 2 * time.Second
	for _, o := range opts {
		o(setup)
	}
	keys := setup.keys
	if keys == nil {
		keys = fakebackend.NewKeys(t)
	}
	catalog := setup.catalog
	if catalog == nil {
		catalog = fakebackend.NewCatalog(30)
	}
	s := &stack{t: t, keys: keys, catalog: catalog}
	s.auth = &fakebackend.Auth{Keys: keys}
	s.search = &fakebackend.Search{Catalog: catalog}
	v := keys.Verifier()
	cfg := setup.cfg
	cfg.CatalogAddr = fakebackend.Serve(t, v, func(g *grpc.Server) { catalogv1.RegisterCatalogServiceServer(g, catalog) })
	cfg.AuthAddr = fakebackend.Serve(t, v, func(g *grpc.Server) { authv1.RegisterAuthServiceServer(g, s.auth) })
	if setup.searchDown {
		cfg.SearchAddr = freeAddr(t)
	} else {
		cfg.SearchAddr = fakebackend.Serve(t, v, func(g *grpc.Server) { searchv1.RegisterSearchServiceServer(g, s.search) })
	}
	s.cfg = cfg

	runOpts := []app.Option{app.WithLogger(testLogger(t))}
	switch {
	case setup.provider != nil:
		runOpts = append(runOpts, app.WithTelemetry(setup.provider))
	case !setup.telemetry:
		runOpts = append(runOpts, app.WithTelemetry(telemetry.Noop()))
	}
	type addrs struct{ http, admin string }
	listening := make(chan addrs, 1)
	runOpts = append(runOpts, app.WithListening(func(h, a string) { listening <- addrs{h, a} }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, runOpts...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway stopped with %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("gateway did not stop within 15s")
		}
	})
	select {
	case a := <-listening:
		s.base, s.admin = "http://"+a.http, a.admin
	case err := <-done:
		t.Fatalf("gateway failed to start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatalf("gateway did not start within 15s")
	}
	s.client = &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
	}
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

func freeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// token returns an access token for sub with role.
func (s *stack) token(sub string, role authn.Role) string {
	return s.keys.Token(sub, role, time.Hour)
}

type reqOpt func(*http.Request)

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func bearer(tok string) reqOpt { return header("Authorization", "Bearer "+tok) }

// do sends a request and returns the response with its body read.
func (s *stack) do(method, path string, body any, opts ...reqOpt) (*http.Response, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encoding body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatalf("building request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("reading %s %s: %v", method, path, err)
	}
	return resp, b
}

// problemDoc is a decoded problem document.
type problemDoc struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Reason    string `json:"reason"`
	RequestID string `json:"requestId"`
	Errors    []struct {
		Field       string `json:"field"`
		Description string `json:"description"`
	} `json:"errors"`
}

// wantProblem checks that resp is a problem document with status and reason
// (reason "" is not checked) and returns it.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, reason string) problemDoc {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, body)
	}
	var p problemDoc
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decoding problem %s: %v", body, err)
	}
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if reason != "" && p.Reason != reason {
		t.Errorf("problem reason = %q, want %q (detail %q)", p.Reason, reason, p.Detail)
	}
	if !strings.HasPrefix(p.Type, "https://marquee.dev/problems/") || p.Title == "" {
		t.Errorf("problem type/title = %q/%q", p.Type, p.Title)
	}
	if p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("problem requestId = %q, header %q", p.RequestID, resp.Header.Get("X-Request-Id"))
	}
	return p
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}
