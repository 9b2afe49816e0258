package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

func TestMetricsHandlerServesPrivateRegistry(t *testing.T) {
	ctx := context.Background()
	a, err := telemetry.Setup(ctx, "svc-a", config.TelemetryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A second provider in the same process must not clash with the first.
	b, err := telemetry.Setup(ctx, "svc-b", config.TelemetryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.Shutdown(ctx)
		_ = b.Shutdown(ctx)
	})

	counter, err := a.MeterProvider.Meter("test").Int64Counter("marquee_test_requests")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(ctx, 3)

	bodyA := scrape(t, a)
	if !strings.Contains(bodyA, "marquee_test_requests_total") || !strings.Contains(bodyA, `service_name="svc-a"`) {
		t.Errorf("svc-a metrics lack the counter or its target info:\n%s", bodyA)
	}
	if !strings.Contains(bodyA, "go_goroutines") {
		t.Error("go runtime collector missing")
	}
	if strings.Contains(scrape(t, b), "marquee_test_requests") {
		t.Error("svc-b exposes svc-a's counter: registries are shared")
	}
}

func scrape(t *testing.T, p *telemetry.Provider) string {
	t.Helper()
	srv := httptest.NewServer(p.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestTracesRecordedWithoutExporter(t *testing.T) {
	p, err := telemetry.Setup(context.Background(), "svc", config.TelemetryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	_, span := p.TracerProvider.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
		t.Errorf("span context %v, want a valid sampled one for log correlation", span.SpanContext())
	}
}

// collector is a minimal OTLP/gRPC receiver.
type collector struct {
	colltracepb.UnimplementedTraceServiceServer

	mu      sync.Mutex
	spans   []string
	metrics []string
}

func (c *collector) Export(_ context.Context, req *colltracepb.ExportTraceServiceRequest) (*colltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
	return &colltracepb.ExportTraceServiceResponse{}, nil
}

// metricsService is the collector's metrics endpoint; it is a separate type
// because both services name their method Export.
type metricsService struct {
	collmetricpb.UnimplementedMetricsServiceServer
	c *collector
}

func (m *metricsService) Export(_ context.Context, req *collmetricpb.ExportMetricsServiceRequest) (*collmetricpb.ExportMetricsServiceResponse, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, mt := range sm.GetMetrics() {
				m.c.metrics = append(m.c.metrics, mt.GetName())
			}
		}
	}
	return &collmetricpb.ExportMetricsServiceResponse{}, nil
}

func TestShutdownFlushesToOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	colltracepb.RegisterTraceServiceServer(srv, c)
	collmetricpb.RegisterMetricsServiceServer(srv, &metricsService{c: c})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	ctx := context.Background()
	p, err := telemetry.Setup(ctx, "svc", config.TelemetryConfig{OTLPEndpoint: lis.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider.Tracer("test").Start(ctx, "flushed-span")
	span.End()
	hist, err := p.MeterProvider.Meter("test").Float64Histogram("flushed.metric")
	if err != nil {
		t.Fatal(err)
	}
	hist.Record(ctx, 1.5)

	// The batcher and periodic reader would wait seconds; Shutdown must push now.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.spans) != 1 || c.spans[0] != "flushed-span" {
		t.Errorf("collector got spans %q, want [flushed-span]", c.spans)
	}
	found := false
	for _, m := range c.metrics {
		found = found || m == "flushed.metric"
	}
	if !found {
		t.Errorf("collector got metrics %q, want flushed.metric among them", c.metrics)
	}
}

func TestNoop(t *testing.T) {
	p := telemetry.Noop()
	_, span := p.TracerProvider.Tracer("x").Start(context.Background(), "op")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body := scrape(t, p); strings.Contains(body, "marquee") {
		t.Errorf("noop registry not empty: %s", body)
	}
}
