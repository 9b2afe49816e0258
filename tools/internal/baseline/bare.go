package baseline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// BareResponse is what the bare server answers every GET with: the bytes
// and the headers the gateway sent for a cached movie, captured from it
// just before the measurement so both write the same thing.
type BareResponse struct {
	Body   []byte
	Header http.Header
}

// bareHeaders are the response headers copied from the gateway's answer:
// those describing the body and those the gateway writes on every response,
// so the bare server's responses are as long as the gateway's.
var bareHeaders = []string{
	"Content-Type", "Etag", "Cache-Control", "Vary", "Link",
	"Ratelimit", "Ratelimit-Policy", "X-Request-Id",
}

// CaptureHeaders keeps the headers of h that the bare server repeats.
func CaptureHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range bareHeaders {
		if v := h.Values(k); len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return out
}

// BareHandler answers every GET and HEAD with resp and nothing else: no
// routing, no middleware, no encoding. It is the most a Go HTTP server can
// do on this machine for this response, the ceiling of the gateway's cached
// path.
func BareHandler(resp BareResponse) http.Handler {
	length := strconv.Itoa(len(resp.Body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		for k, v := range resp.Header {
			h[k] = v
		}
		h["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(resp.Body)
		}
	})
}

// ServeBare serves BareHandler(resp) on addr ("127.0.0.1:0" picks a port)
// until ctx ends. ready receives the bound address once it listens.
func ServeBare(ctx context.Context, addr string, resp BareResponse, ready func(net.Addr)) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: BareHandler(resp), ReadHeaderTimeout: 5 * time.Second}
	if ready != nil {
		ready(lis.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("stopping: %w", err)
		}
		return nil
	}
}
