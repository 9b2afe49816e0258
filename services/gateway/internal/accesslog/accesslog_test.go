package accesslog_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/services/gateway/internal/accesslog"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

func TestRequestIDLogAndPanic(t *testing.T) {
	var buf bytes.Buffer
	m, err := accesslog.New(accesslog.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = reqinfo.From(r.Context()).RequestID
		reqinfo.From(r.Context()).Route = "/v1/things/{id}"
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.WriteHeader(http.StatusTeapot)
	}))

	r := httptest.NewRequest("GET", "/v1/things/1", nil)
	r.Header.Set("X-Request-Id", "abc-123")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Header().Get("X-Request-Id") != "abc-123" || seen != "abc-123" {
		t.Errorf("request id: header %q, seen %q", w.Header().Get("X-Request-Id"), seen)
	}
	line := buf.String()
	for _, want := range []string{`"request_id":"abc-123"`, `"route":"/v1/things/{id}"`, `"status":418`, `"method":"GET"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s: %s", want, line)
		}
	}

	buf.Reset()
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/panic", nil))
	if w.Code != 500 || w.Header().Get("Content-Type") != "application/problem+json" || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("panic answered %d %q", w.Code, w.Body.String())
	}
	if len(w.Header().Get("X-Request-Id")) != 32 {
		t.Errorf("generated request id %q", w.Header().Get("X-Request-Id"))
	}
	if !strings.Contains(buf.String(), "handler panicked") {
		t.Errorf("the panic was not logged: %s", buf.String())
	}
}
