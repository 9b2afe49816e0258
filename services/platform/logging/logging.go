// Package logging builds the structured logger every service uses: JSON (or
// text) records carrying the trace and span IDs of the span in the record's
// context, so a log line can be found from a trace and back.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-dev/marquee/services/platform/config"
)

// New returns a logger writing to w at cfg.Level ("info" when empty or not
// recognised), as JSON unless cfg.Format is "text". Records logged with a
// context holding a valid span get trace_id and span_id attributes.
func New(w io.Writer, cfg config.LogConfig) *slog.Logger {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.EqualFold(cfg.Format, "text") {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(traceHandler{h})
}

// Discard returns a logger that drops every record, for tests and callers
// that do not care.
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// ParseLevel parses "debug", "info", "warn" or "error" (any case; "" is
// info). Services call it while validating their config so a typo fails at
// start-up instead of silently logging at info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return slog.LevelInfo, fmt.Errorf("parsing log level %q: want debug, info, warn or error", s)
	}
}

// traceHandler adds the current span's IDs to each record.
type traceHandler struct {
	slog.Handler
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
