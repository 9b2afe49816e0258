// Package adminhttp serves the admin endpoints every service exposes on its
// own port, apart from the API: Prometheus metrics and the liveness and
// readiness probes that Kubernetes calls.
package adminhttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// shutdownTimeout bounds how long in-flight scrapes and probes may take once
// the context has ended.
const shutdownTimeout = 5 * time.Second

// readyTimeout bounds one readiness check, well inside the kubelet's default
// probe timeout.
const readyTimeout = 2 * time.Second

// Handler returns the admin mux: /metrics served by metrics (404 when nil),
// /healthz answering 200 while the process can serve HTTP at all, and
// /readyz answering 200 when ready returns nil (or is nil) and 503 with the
// reason otherwise.
func Handler(metrics http.Handler, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve serves Handler(metrics, ready) on lis until ctx ends, then shuts down,
// giving in-flight requests up to 5 s. It returns nil after a clean shutdown.
func Serve(ctx context.Context, lis net.Listener, metrics http.Handler, ready func(context.Context) error) error {
	srv := &http.Server{
		Handler:           Handler(metrics, ready),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serving admin http: %w", err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down admin http: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving admin http: %w", err)
	}
	return nil
}
