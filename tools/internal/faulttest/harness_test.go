package faulttest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	catalogapp "github.com/marquee-dev/marquee/services/catalog/app"
	gatewayapp "github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
	"github.com/marquee-dev/marquee/services/platform/testenv"
	searchapp "github.com/marquee-dev/marquee/services/search/app"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

const (
	issuer   = "https://marquee.test"
	audience = "marquee-api"
	keyID    = "fault-key"
)

// keys is the token issuer of a test: the services share one verifier of
// its key set (as the dev stack shares one), so tests mint tokens for any
// role without running auth, and every service still checks every call.
type keys struct{ priv ed25519.PrivateKey }

func newKeys(t testing.TB) *keys {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keys{priv: priv}
}

func (k *keys) JWKS(context.Context) ([]*authv1.Jwk, error) {
	return []*authv1.Jwk{{Kty: "OKP", Crv: "Ed25519", Kid: keyID, Alg: "EdDSA", Use: "sig",
		X: base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))}}, nil
}

func (k *keys) ResolveAPIKey(context.Context, string) (authn.Principal, error) {
	return authn.Principal{}, authn.ErrUnauthenticated
}

func (k *keys) verifier() *authn.Verifier {
	return authn.NewVerifierWithBackend(k, authn.VerifierConfig{Issuer: issuer, Audience: audience})
}

// token returns an access token for role, valid for an hour.
func (k *keys) token(t testing.TB, role authn.Role) string {
	now := time.Now()
	c := authn.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Audience: jwt.ClaimStrings{audience}, Subject: "u_" + string(role),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: rand.Text(),
	}, Role: role}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = keyID
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testLogger discards service logs unless MARQUEE_FAULTTEST_LOGS is set.
func testLogger() *slog.Logger {
	if os.Getenv("MARQUEE_FAULTTEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newProxy starts a toxiproxy proxy on a free loopback port in front of
// upstream. Stop takes the dependency down (the listener and every
// connection close); Start brings it back on the same address.
func newProxy(t testing.TB, name, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("starting proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return p
}

// addToxic adds a toxic to p, such as latency (attributes latency, jitter
// in ms) or timeout (timeout in ms, 0 for a black hole).
func addToxic(t testing.TB, p *toxiproxy.Proxy, name, typ, stream string, attrs map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		t.Fatalf("adding toxic %s to %s: %v", name, p.Name, err)
	}
}

func removeToxic(t testing.TB, p *toxiproxy.Proxy, name string) {
	t.Helper()
	if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Fatalf("removing toxic %s from %s: %v", name, p.Name, err)
	}
}

// server is a service running in this process through its app.Run.
type server struct {
	name, addr, admin string
	stop              func() error
}

// serve runs a service until the test ends (or stop is called) and returns
// once it listens.
func serve(t testing.TB, name string, run func(ctx context.Context, listening func(addr, admin string)) error) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ addr, admin string }
	up := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(a, b string) { up <- addrs{a, b} }) }()
	s := &server{name: name}
	select {
	case a := <-up:
		s.addr, s.admin = a.addr, a.admin
	case err := <-done:
		cancel()
		t.Fatalf("%s stopped before listening: %v", name, err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("%s did not listen within 2 minutes", name)
	}
	s.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("%s did not stop within a minute", name)
		}
	})
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return s
}

// catalogConfig is a catalog on free loopback ports over mongoURI, in a
// database of its own.
func catalogConfig(t testing.TB, mongoURI, db string) catalogapp.Config {
	cfg := catalogapp.DefaultConfig()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Mongo.URI = mongoURI
	cfg.Mongo.Database = db
	cfg.MigrateOnStart = true
	cfg.PageTokenKey = "fault-page-token-key"
	cfg.Changes.PollInterval = 100 * time.Millisecond
	return cfg
}

func startCatalog(t testing.TB, k *keys, cfg catalogapp.Config) *server {
	t.Helper()
	return serve(t, "catalog", func(ctx context.Context, listening func(string, string)) error {
		return catalogapp.Run(ctx, cfg, catalogapp.WithVerifier(k.verifier()), catalogapp.WithLogger(testLogger()),
			catalogapp.WithTelemetry(telemetry.Noop()), catalogapp.WithListening(listening))
	})
}

// gatewayConfig is a gateway on free loopback ports in front of the given
// gRPC addresses, with rate limits off (tests that need them set them).
func gatewayConfig(catalog, search string) gatewayapp.Config {
	cfg := gatewayapp.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.CatalogAddr = "passthrough:///" + catalog
	cfg.SearchAddr = "passthrough:///" + search
	// Auth is not started: tokens are verified with the test's keys, and
	// the auth routes are not used.
	cfg.AuthAddr = "passthrough:///127.0.0.1:1"
	cfg.RateLimit = gatewayapp.RateLimitConfig{}
	cfg.MaxConcurrency = 0
	cfg.ShutdownGrace = 5 * time.Second
	return cfg
}

// gateway is a running gateway and a client for it.
type gateway struct {
	*server
	url    string
	client *http.Client
}

func startGateway(t testing.TB, k *keys, cfg gatewayapp.Config) *gateway {
	t.Helper()
	s := serve(t, "gateway", func(ctx context.Context, listening func(string, string)) error {
		return gatewayapp.Run(ctx, cfg, gatewayapp.WithVerifier(k.verifier()), gatewayapp.WithLogger(testLogger()),
			gatewayapp.WithListening(listening))
	})
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	return &gateway{server: s, url: "http://" + s.addr, client: client}
}

// reply is an HTTP response with its body read.
type reply struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
	err     error
}

func (r reply) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s (%s)", r.status, bytes.TrimSpace(r.body), r.elapsed.Round(time.Millisecond))
}

// do sends one request; headers are name, value pairs.
func (g *gateway) do(ctx context.Context, method, path string, body any, headers ...string) reply {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, rd)
	if err != nil {
		return reply{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		return reply{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b, elapsed: time.Since(start), err: err}
}

// metric returns the sum of the samples of a Prometheus metric (every label
// set) on the admin endpoint addr.
func metric(t testing.TB, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", admin, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// catalogClient dials a catalog's gRPC address.
func catalogClient(t testing.TB, addr string) catalogv1.CatalogServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return catalogv1.NewCatalogServiceClient(conn)
}

// as returns ctx carrying a token for role.
func (k *keys) as(ctx context.Context, t testing.TB, role authn.Role) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.token(t, role))
}

// eventually polls cond every 50ms until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, errors.Join(err, t.Context().Err()))
		}
	}
}

// settleGoroutines waits until the process's own goroutine count (see
// ownGoroutines) is at most limit, or within has passed, and returns it.
func settleGoroutines(t testing.TB, limit int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := ownGoroutines()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			return n
		}
	}
}

// ownGoroutines counts the goroutines of the services and the test, leaving
// out the embedded engine's: it stands in for a database on another
// machine, and a connection pool the load grew (each pooled connection is a
// few goroutines in the engine's server) is not a leak of ours.
func ownGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\ngoroutine ") {
		if !strings.Contains(g, "github.com/FerretDB/FerretDB") && !strings.Contains(g, "database/sql.") {
			count++
		}
	}
	return count
}

func ptr[T any](v T) *T { return &v }

// proxyHandle takes a proxied dependency down and up within a test.
type proxyHandle struct {
	t testing.TB
	p *toxiproxy.Proxy
}

// down closes the proxy's listener and every connection through it: the
// dependency refuses connections, as a crashed server does.
func (h *proxyHandle) down() { h.p.Stop() }

// up listens again on the same address.
func (h *proxyHandle) up() {
	h.t.Helper()
	if err := h.p.Start(); err != nil {
		h.t.Fatalf("restarting proxy %s: %v", h.p.Name, err)
	}
}

// bearer sends a fixed token on every call (a service token minted by the
// test instead of one from auth).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// searchConfig is a search service on free loopback ports following the
// catalog at catalogAddr, its index in dir.
func searchConfig(catalogAddr, dir string) searchapp.Config {
	cfg := searchapp.DefaultConfig()
	cfg.Search.GRPCAddr = "127.0.0.1:0"
	cfg.Search.AdminAddr = "127.0.0.1:0"
	cfg.Search.IndexDir = dir
	cfg.Search.CatalogAddr = "passthrough:///" + catalogAddr
	cfg.Search.AuthAddr = "passthrough:///127.0.0.1:1"
	cfg.Search.PageTokenSecret = "fault-search-token-key"
	cfg.Search.Partitions = 1
	return cfg
}

func startSearchWith(t testing.TB, k *keys, cfg searchapp.Config) *server {
	t.Helper()
	return serve(t, "search", func(ctx context.Context, listening func(string, string)) error {
		return searchapp.Run(ctx, cfg, searchapp.WithLogger(testLogger()), searchapp.WithTelemetry(telemetry.Noop()),
			searchapp.OnListening(listening), searchapp.WithCatalogCredentials(bearer(k.token(t, authn.RoleService))))
	})
}

func startSearch(t testing.TB, k *keys, catalogAddr, dir string) *server {
	t.Helper()
	return startSearchWith(t, k, searchConfig(catalogAddr, dir))
}

// jsonField returns a top-level string field of a JSON object ("" if none).
func jsonField(body []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}
