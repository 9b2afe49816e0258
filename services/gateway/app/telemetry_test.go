package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

func TestTraceContinuesIntoGRPC(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := &telemetry.Provider{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		MeterProvider:  noopmetric.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
	}
	s := startStack(t, withProvider(tp))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, _ := s.do("GET", "/v1/movies/m_3", nil, header("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	md := last(t, s.catalog.Calls("GetMovie"))
	if tp := strings.Join(md.Get("traceparent"), ""); !strings.Contains(tp, traceID) {
		t.Errorf("catalog got traceparent %q, want the client's trace %s", tp, traceID)
	}
	var server, client sdktrace.ReadOnlySpan
	eventually(t, 5*time.Second, "the spans to end", func() bool {
		for _, sp := range spans.Ended() {
			switch {
			case sp.Name() == "GET /v1/movies/{id}":
				server = sp
			case strings.Contains(sp.Name(), "CatalogService/GetMovie"):
				client = sp
			}
		}
		return server != nil && client != nil
	})
	if server.SpanContext().TraceID().String() != traceID || client.SpanContext().TraceID().String() != traceID {
		t.Errorf("trace ids: server %s, client %s", server.SpanContext().TraceID(), client.SpanContext().TraceID())
	}
	if client.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("the gRPC span is not a child of the HTTP span")
	}

	// A cache hit is a map lookup and is not traced; a read of the same
	// movie that asks past the cache is.
	before := len(spans.Ended())
	s.do("GET", "/v1/movies/m_3", nil)
	s.do("GET", "/v1/movies/m_3", nil, bearer(s.token("u_1", "user")), header("Cache-Control", "no-cache"))
	eventually(t, 5*time.Second, "the uncached read's spans", func() bool { return len(spans.Ended()) >= before+2 })
	servers := 0
	for _, sp := range spans.Ended()[before:] {
		if sp.Name() == "GET /v1/movies/{id}" {
			servers++
		}
	}
	if servers != 1 {
		t.Errorf("%d server spans for a hit and an uncached read, want 1", servers)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("MARQUEE_GATEWAY_RATELIMIT_ANONYMOUS_PER_MINUTE", "0")
	t.Setenv("MARQUEE_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
	t.Setenv("MARQUEE_GATEWAY_CORS_ALLOWED_ORIGINS", "https://a.example")
	t.Setenv("MARQUEE_GATEWAY_REQUEST_TIMEOUT", "3s")
	t.Setenv("MARQUEE_GATEWAY_CLIENT_SECRET", "s3cret")
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, []string{"--set", "gateway.cache.max_bytes=1024"}); err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimit.AnonymousPerMinute != 0 || cfg.RateLimit.UserPerMinute != 600 ||
		len(cfg.TrustedProxies) != 2 || cfg.CORSAllowedOrigins[0] != "https://a.example" ||
		cfg.RequestTimeout != 3*time.Second || cfg.Cache.MaxBytes != 1024 || cfg.HTTPAddr != ":8080" {
		t.Errorf("config = %+v", cfg.Settings)
	}
	red := config.Redacted(cfg)
	if gw, _ := red["gateway"].(map[string]any); gw["client_secret"] != "***" {
		t.Errorf("secret not redacted: %v", gw["client_secret"])
	}

	bad := app.DefaultConfig()
	bad.TrustedProxies = []string{"not-a-cidr"}
	bad.HTTPAddr = "127.0.0.1:0"
	if err := app.Run(context.Background(), bad, app.WithTelemetry(telemetry.Noop())); err == nil ||
		!strings.Contains(err.Error(), "gateway.trusted_proxies") {
		t.Errorf("Run with a bad CIDR: %v", err)
	}
}

func TestMetricsOnTheAdminPort(t *testing.T) {
	s := startStack(t, withTelemetry())
	s.do("GET", "/v1/movies/m_1", nil)
	s.do("GET", "/v1/movies/m_1", nil)
	s.do("GET", "/v1/movies/m_404", nil)
	s.do("GET", "/nowhere", nil)
	m := scrape(t, s)
	for _, want := range []string{
		`marquee_gateway_requests_total{http_request_method="GET",http_response_status_code="200",http_route="/v1/movies/{id}",`,
		`marquee_gateway_requests_total{http_request_method="GET",http_response_status_code="404",http_route="/v1/movies/{id}",`,
		`http_route="unmatched"`,
		`marquee_gateway_request_duration_seconds_bucket{`,
		`marquee_gateway_cache_lookups_total{otel_scope_name="github.com/marquee-dev/marquee/services/gateway",otel_scope_schema_url="",otel_scope_version="",result="hit"} 1`,
		`marquee_gateway_cache_size_bytes`,
		`marquee_gateway_ratelimit_decisions_total{decision="allowed",`,
		`marquee_gateway_inflight`,
		`rpc_client_`, // otelgrpc on the backend connections
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
