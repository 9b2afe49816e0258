package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/logging"
)

func TestNewJSONWithTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	logger := logging.New(&buf, config.LogConfig{Level: "debug"})

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	logger.With("svc", "catalog").WithGroup("req").InfoContext(ctx, "hello", "id", 7)

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	if rec["msg"] != "hello" || rec["svc"] != "catalog" {
		t.Errorf("record = %v", rec)
	}
	// Attributes added by the handler land in the open group, like any other.
	req, _ := rec["req"].(map[string]any)
	if req["trace_id"] != sc.TraceID().String() || req["span_id"] != sc.SpanID().String() {
		t.Errorf("trace ids missing: %v", rec)
	}
}

func TestNewWithoutSpan(t *testing.T) {
	var buf bytes.Buffer
	logging.New(&buf, config.LogConfig{}).Info("plain")
	if strings.Contains(buf.String(), "trace_id") {
		t.Errorf("trace_id without a span: %s", buf.String())
	}
}

func TestLevelsAndFormat(t *testing.T) {
	tests := []struct {
		cfg       config.LogConfig
		wantDebug bool
		wantInfo  bool
		prefix    string
	}{
		{cfg: config.LogConfig{}, wantInfo: true, prefix: "{"},
		{cfg: config.LogConfig{Level: "debug", Format: "text"}, wantDebug: true, wantInfo: true, prefix: "time="},
		{cfg: config.LogConfig{Level: "WARN"}, prefix: ""},
		{cfg: config.LogConfig{Level: "bogus"}, wantInfo: true, prefix: "{"},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.Level+"/"+tt.cfg.Format, func(t *testing.T) {
			var buf bytes.Buffer
			l := logging.New(&buf, tt.cfg)
			if got := l.Enabled(context.Background(), -4); got != tt.wantDebug {
				t.Errorf("debug enabled = %v, want %v", got, tt.wantDebug)
			}
			if got := l.Enabled(context.Background(), 0); got != tt.wantInfo {
				t.Errorf("info enabled = %v, want %v", got, tt.wantInfo)
			}
			l.Error("x")
			if !strings.HasPrefix(buf.String(), tt.prefix) {
				t.Errorf("output %q, want prefix %q", buf.String(), tt.prefix)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) succeeded")
	}
	for _, s := range []string{"", "debug", "Info", "warn", "error"} {
		if _, err := logging.ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q): %v", s, err)
		}
	}
}

func TestDiscard(t *testing.T) {
	if logging.Discard().Enabled(context.Background(), 12) {
		t.Error("Discard logger is enabled")
	}
}
