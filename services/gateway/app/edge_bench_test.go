package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/fakebackend"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// The in-process benchmarks call the handler chain directly, without a
// network or an HTTP client, so they show the gateway's own CPU cost per
// request.

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchEdge(b *testing.B, cacheBytes int64) (http.Handler, []byte) {
	h, body, _ := benchEdgeKeys(b, cacheBytes)
	return h, body
}

// benchEdgeKeys is benchEdge that also returns the keys, to sign the
// tokens of authenticated requests.
func benchEdgeKeys(b *testing.B, cacheBytes int64) (http.Handler, []byte, *fakebackend.Keys) {
	b.Helper()
	return benchEdgeWith(b, cacheBytes, telemetry.Noop())
}

func benchEdgeWith(b *testing.B, cacheBytes int64, tp *telemetry.Provider) (http.Handler, []byte, *fakebackend.Keys) {
	b.Helper()
	keys := fakebackend.NewKeys(b)
	v := keys.Verifier()
	catalog := fakebackend.NewCatalog(10)
	addr := fakebackend.Serve(b, v, func(g *grpc.Server) { catalogv1.RegisterCatalogServiceServer(g, catalog) })
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	cfg := DefaultConfig()
	cfg.RateLimit = RateLimitConfig{AnonymousPerMinute: 1_000_000_000}
	cfg.Cache.MaxBytes = cacheBytes
	e, err := buildEdge(context.Background(), cfg, backends{
		catalog: catalogv1.NewCatalogServiceClient(conn),
		search:  searchv1.NewSearchServiceClient(conn),
		auth:    authv1.NewAuthServiceClient(conn),
	}, v, nil, slog.New(slog.DiscardHandler), tp)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.close)
	e.ready.Store(true)
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/movies/m_1", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	e.handler.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("warming up: %d %s", w.Code, w.Body)
	}
	return e.handler, w.Body.Bytes(), keys
}

func serveLoop(b *testing.B, h http.Handler, headers ...string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			req := httptest.NewRequest("GET", "/v1/movies/m_1", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			h.ServeHTTP(w, req)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkEdgeCached is the whole middleware chain answering from the cache.
func BenchmarkEdgeCached(b *testing.B) {
	h, _ := benchEdge(b, 64<<20)
	serveLoop(b, h)
}

// BenchmarkEdgeBare is a handler writing the same bytes.
func BenchmarkEdgeBare(b *testing.B) {
	_, body := benchEdge(b, 64<<20)
	length := strconv.Itoa(len(body))
	serveLoop(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	}))
}

// BenchmarkEdgeUncached goes through grpc-gateway and gRPC to the fake
// catalog on every request.
func BenchmarkEdgeUncached(b *testing.B) {
	h, _ := benchEdge(b, 0)
	serveLoop(b, h)
}

// BenchmarkEdgeUncachedAuthenticated is the load tool's uncached path: a
// Bearer-authenticated GET with Cache-Control: no-cache, which the response
// cache passes to the backend.
// It records spans and metrics as the binary does (telemetry.Setup without
// an exporter), which the other edge benchmarks leave out.
func BenchmarkEdgeUncachedAuthenticated(b *testing.B) {
	tp, err := telemetry.Setup(context.Background(), ServiceName, config.TelemetryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h, _, keys := benchEdgeWith(b, 64<<20, tp)
	serveLoop(b, h, "Authorization", "Bearer "+keys.Token("u_1", authn.RoleUser, time.Hour), "Cache-Control", "no-cache")
}
