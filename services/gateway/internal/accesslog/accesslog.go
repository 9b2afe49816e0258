// Package accesslog is the outer edge of every request: it gives the request
// its id (X-Request-Id, accepted from the client when well-formed, generated
// otherwise, returned and forwarded), recovers from panics, writes the access
// log line and records the RED metrics — rate, errors, duration — per route
// template and tier.
package accesslog

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

// Options configure the middleware.
type Options struct {
	Logger *slog.Logger
	Meter  metric.Meter
	// Quiet lists paths logged at debug level only (the probes).
	Quiet []string
}

// Middleware is the access-log middleware.
type Middleware struct {
	logger   *slog.Logger
	quiet    map[string]bool
	requests metric.Int64Counter
	duration metric.Float64Histogram
	seriesMu sync.RWMutex
	series   map[redKey]metric.MeasurementOption
}

// New returns the middleware.
func New(opts Options) (*Middleware, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Middleware{logger: opts.Logger, quiet: map[string]bool{}, series: map[redKey]metric.MeasurementOption{}}
	for _, p := range opts.Quiet {
		m.quiet[p] = true
	}
	if opts.Meter != nil {
		var err error
		m.requests, err = opts.Meter.Int64Counter("marquee.gateway.requests",
			metric.WithDescription("HTTP requests by route template, method, status code and tier."),
			metric.WithUnit("{request}"))
		if err != nil {
			return nil, fmt.Errorf("creating requests counter: %w", err)
		}
		m.duration, err = opts.Meter.Float64Histogram("marquee.gateway.request.duration",
			metric.WithDescription("HTTP request duration by route template, method, status code and tier."),
			metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
		if err != nil {
			return nil, fmt.Errorf("creating request duration histogram: %w", err)
		}
	}
	return m, nil
}

// redKey is one series of the RED metrics. Routes are templates and
// unmatched paths are "unmatched", so the set of keys stays small.
type redKey struct {
	route, method, tier string
	status              int
}

// attrsFor returns the attribute set of a series, built once: recording a
// request then allocates nothing.
func (m *Middleware) attrsFor(k redKey) metric.MeasurementOption {
	switch k.method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		// As the semantic conventions say: clients choose methods, so
		// unknown ones share one label value.
		k.method = "_OTHER"
	}
	m.seriesMu.RLock()
	opt, ok := m.series[k]
	m.seriesMu.RUnlock()
	if ok {
		return opt
	}
	opt = metric.WithAttributeSet(attribute.NewSet(
		attribute.String("http.route", k.route),
		attribute.String("http.request.method", k.method),
		attribute.Int("http.response.status_code", k.status),
		attribute.String("tier", k.tier)))
	m.seriesMu.Lock()
	m.series[k] = opt
	m.seriesMu.Unlock()
	return opt
}

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-Id"

// validRequestID accepts ids a client may choose: 1 to 128 characters of
// letters, digits, '-', '_', '.' and ':' — enough for UUIDs and trace-style
// ids, and nothing that could break a log line or a header.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Handler wraps next.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, info := reqinfo.New(r)
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
			r.Header.Set(RequestIDHeader, id)
		}
		info.RequestID = id
		w.Header().Set(RequestIDHeader, id)

		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // the server's own way to abort a response
				}
				m.logger.ErrorContext(r.Context(), "handler panicked",
					slog.String("request_id", id), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if !sw.wroteHeader {
					problem.Write(sw, r, problem.New(http.StatusInternalServerError, codes.Internal, problem.ReasonInternal, "an internal error occurred"))
				}
			}
			m.finish(r, info, sw, start)
		}()
		next.ServeHTTP(sw, r)
	})
}

func (m *Middleware) finish(r *http.Request, info *reqinfo.Info, sw *statusWriter, start time.Time) {
	elapsed := time.Since(start)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	route := info.Route
	if route == "" {
		route = "other"
	}
	tier := info.Tier()
	if info.AuthErr != nil {
		tier = "invalid"
	}
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.String("marquee.tier", tier),
			attribute.String("marquee.request_id", info.RequestID))
	}
	if m.requests != nil {
		attrs := m.attrsFor(redKey{route: route, method: r.Method, status: status, tier: tier})
		m.requests.Add(r.Context(), 1, attrs)
		m.duration.Record(r.Context(), elapsed.Seconds(), attrs)
	}
	level := slog.LevelInfo
	if m.quiet[r.URL.Path] {
		level = slog.LevelDebug
	}
	if !m.logger.Enabled(r.Context(), level) {
		return
	}
	m.logger.LogAttrs(r.Context(), level, "http request",
		slog.String("request_id", info.RequestID),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int64("bytes", sw.bytes),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client_addr", info.ClientAddr),
		slog.String("tier", tier),
		slog.String("cache", info.Cache),
		slog.String("proto", r.Proto),
	)
}

// statusWriter records the status and size of a response. It keeps Flush
// and the rest of the ResponseController methods reachable through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader && code >= 200 {
		s.status = code
		s.wroteHeader = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if !s.wroteHeader {
		s.status = http.StatusOK
		s.wroteHeader = true
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

func (s *statusWriter) Flush() {
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
