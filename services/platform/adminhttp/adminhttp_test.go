package adminhttp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/platform/adminhttp"
)

func TestServe(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + lis.Addr().String()

	var notReady atomic.Bool
	notReady.Store(true)
	ready := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("readiness check without a deadline")
		}
		if notReady.Load() {
			return errors.New("index still loading")
		}
		return nil
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "marquee_up 1\n")
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- adminhttp.Serve(ctx, lis, metrics, ready) }()

	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/healthz", 200, "ok"},
		{"/readyz", 503, "index still loading"},
		{"/metrics", 200, "marquee_up 1"},
		{"/nope", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, base+tt.path)
		if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}

	notReady.Store(false)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("GET /readyz after ready = %d, want 200", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil after a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

func TestNilReadyAndMetrics(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- adminhttp.Serve(ctx, lis, nil, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + lis.Addr().String()
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("readyz with nil check = %d, want 200", code)
	}
	if code, _ := get(t, base+"/metrics"); code != 404 {
		t.Errorf("metrics with nil handler = %d, want 404", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
