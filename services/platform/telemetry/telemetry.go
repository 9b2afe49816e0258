// Package telemetry sets up OpenTelemetry tracing and metrics for a service.
//
// Setup returns a Provider holding the tracer and meter providers, to be
// passed explicitly to the gRPC server and clients and the Mongo client, so
// that several services can run in one process (the dev stack) without
// sharing a global provider. Metrics are always exposed in the Prometheus
// format on a registry private to the Provider; traces and metrics are also
// pushed over OTLP/gRPC when a collector endpoint is configured.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/marquee-dev/marquee/services/platform/config"
)

// Provider holds a service's telemetry pipeline.
type Provider struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator

	registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// Setup builds the tracer and meter providers for service (overridden by
// cfg.ServiceName when set). Metrics go to a Prometheus exporter on the
// Provider's own registry (with Go runtime and process collectors), served by
// MetricsHandler; when cfg.OTLPEndpoint is set, spans and metrics are also
// exported over OTLP/gRPC to it ("host:port" is plaintext, as for an
// in-cluster collector; a URL chooses its own scheme).
//
// Setup sets the global OpenTelemetry propagator (W3C trace context and
// baggage) because instrumentation libraries fall back to it; it sets no
// global tracer or meter provider. Call Shutdown last to flush.
func Setup(ctx context.Context, service string, cfg config.TelemetryConfig) (*Provider, error) {
	if cfg.ServiceName != "" {
		service = cfg.ServiceName
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(
		semconv.SchemaURL,
		semconv.ServiceName(service),
	))
	if err != nil {
		return nil, fmt.Errorf("building telemetry resource: %w", err)
	}

	p := &Provider{
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		registry:   prometheus.NewRegistry(),
	}
	otel.SetTextMapPropagator(p.Propagator)

	if err := p.registry.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("registering go collector: %w", err)
	}
	if err := p.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("registering process collector: %w", err)
	}
	promExporter, err := otelprom.New(otelprom.WithRegisterer(p.registry))
	if err != nil {
		return nil, fmt.Errorf("creating prometheus exporter: %w", err)
	}
	metricOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExporter)}
	// Spans are recorded even without an exporter so that trace IDs reach the
	// logs and propagate to the next service.
	traceOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}

	if cfg.OTLPEndpoint != "" {
		var traceEndpoint []otlptracegrpc.Option
		var metricEndpoint []otlpmetricgrpc.Option
		if strings.Contains(cfg.OTLPEndpoint, "://") {
			traceEndpoint = []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint)}
			metricEndpoint = []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpointURL(cfg.OTLPEndpoint)}
		} else {
			traceEndpoint = []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint), otlptracegrpc.WithInsecure()}
			metricEndpoint = []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(cfg.OTLPEndpoint), otlpmetricgrpc.WithInsecure()}
		}
		// The exporters connect lazily: an unreachable collector does not
		// stop the service from starting.
		spanExporter, err := otlptracegrpc.New(ctx, traceEndpoint...)
		if err != nil {
			return nil, fmt.Errorf("creating otlp trace exporter: %w", err)
		}
		metricExporter, err := otlpmetricgrpc.New(ctx, metricEndpoint...)
		if err != nil {
			_ = spanExporter.Shutdown(ctx)
			return nil, fmt.Errorf("creating otlp metric exporter: %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(spanExporter))
		metricOpts = append(metricOpts, sdkmetric.WithReader(
			sdkmetric.NewPeriodicReader(metricExporter, sdkmetric.WithInterval(30*time.Second)),
		))
	}

	tp := sdktrace.NewTracerProvider(traceOpts...)
	mp := sdkmetric.NewMeterProvider(metricOpts...)
	p.TracerProvider = tp
	p.MeterProvider = mp
	// Traces first: their exporter may record metrics about itself.
	p.shutdown = []func(context.Context) error{tp.Shutdown, mp.Shutdown}
	return p, nil
}

// Noop returns a Provider that records nothing, for tests and tools. Its
// MetricsHandler serves an empty registry.
func Noop() *Provider {
	return &Provider{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		registry:       prometheus.NewRegistry(),
	}
}

// Registry returns the Provider's private Prometheus registry, for
// collectors that are not OpenTelemetry instruments.
func (p *Provider) Registry() *prometheus.Registry {
	if p.registry == nil {
		p.registry = prometheus.NewRegistry()
	}
	return p.registry
}

// MetricsHandler serves the Provider's metrics in the Prometheus exposition
// format.
func (p *Provider) MetricsHandler() http.Handler {
	reg := p.Registry()
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Shutdown flushes pending spans and metrics to the OTLP collector and stops
// the providers. Call it once, after the servers have stopped, with a
// deadline.
func (p *Provider) Shutdown(ctx context.Context) error {
	var errs []error
	for _, fn := range p.shutdown {
		if err := fn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.shutdown = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutting down telemetry: %w", err)
	}
	return nil
}
