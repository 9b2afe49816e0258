package mongodb

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// instrumentationName names the tracer and meter of the command monitor.
const instrumentationName = "github.com/marquee-dev/marquee/services/platform/mongodb"

// commandMonitor turns driver command events into spans and a duration
// histogram. The contrib otelmongo package targets driver v1, hence this.
type commandMonitor struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	// spans holds the open span of each in-flight command by RequestID,
	// which the driver allocates from one process-wide counter, so IDs do
	// not collide across connections.
	spans sync.Map // int64 -> trace.Span
}

func newCommandMonitor(tp *telemetry.Provider) *event.CommandMonitor {
	m := &commandMonitor{tracer: tp.TracerProvider.Tracer(instrumentationName)}
	// A failure to create the instrument only loses the metric.
	m.duration, _ = tp.MeterProvider.Meter(instrumentationName).Float64Histogram(
		"db.client.operation.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of MongoDB commands."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
	)
	return &event.CommandMonitor{
		Started:   m.started,
		Succeeded: m.succeeded,
		Failed:    m.failed,
	}
}

func (m *commandMonitor) started(ctx context.Context, evt *event.CommandStartedEvent) {
	collection := collectionName(evt)
	name := evt.CommandName
	if collection != "" {
		name += " " + collection
	}
	attrs := []attribute.KeyValue{
		attribute.String("db.system", "mongodb"),
		attribute.String("db.operation", evt.CommandName),
		attribute.String("db.name", evt.DatabaseName),
	}
	if collection != "" {
		attrs = append(attrs, attribute.String("db.mongodb.collection", collection))
	}
	_, span := m.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrs...),
	)
	m.spans.Store(evt.RequestID, span)
}

func (m *commandMonitor) succeeded(ctx context.Context, evt *event.CommandSucceededEvent) {
	m.finish(ctx, &evt.CommandFinishedEvent, nil)
}

func (m *commandMonitor) failed(ctx context.Context, evt *event.CommandFailedEvent) {
	m.finish(ctx, &evt.CommandFinishedEvent, evt.Failure)
}

func (m *commandMonitor) finish(ctx context.Context, evt *event.CommandFinishedEvent, failure error) {
	outcome := "ok"
	if failure != nil {
		outcome = "error"
	}
	if m.duration != nil {
		m.duration.Record(ctx, evt.Duration.Seconds(), metric.WithAttributes(
			attribute.String("db.system", "mongodb"),
			attribute.String("db.operation", evt.CommandName),
			attribute.String("outcome", outcome),
		))
	}
	v, ok := m.spans.LoadAndDelete(evt.RequestID)
	if !ok {
		return
	}
	span := v.(trace.Span)
	if failure != nil {
		span.RecordError(failure)
		span.SetStatus(codes.Error, failure.Error())
	}
	span.End(trace.WithTimestamp(time.Now()))
}

// collectionName returns the collection a command targets: the value of its
// first element for most commands ({find: "movies", ...}), the "collection"
// field for getMore. Nothing else of the command is read.
func collectionName(evt *event.CommandStartedEvent) string {
	if evt.CommandName == "getMore" {
		if v, err := evt.Command.LookupErr("collection"); err == nil {
			s, _ := v.StringValueOK()
			return s
		}
		return ""
	}
	elem, err := evt.Command.IndexErr(0)
	if err != nil {
		return ""
	}
	s, _ := elem.Value().StringValueOK()
	return s
}
