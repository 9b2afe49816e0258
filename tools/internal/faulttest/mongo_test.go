package faulttest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

// mongoBehindProxy returns a MongoDB URI that reaches the test engine
// through a new proxy, and the proxy.
func mongoBehindProxy(t *testing.T) (string, *proxyHandle) {
	t.Helper()
	u, err := url.Parse(testenv.MongoURI(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, "mongo", u.Host)
	u.Host = p.Listen
	return u.String(), &proxyHandle{t: t, p: p}
}

// TestMongoDownServesCachedReadsAndRefusesWrites: with the catalog's
// database unreachable (the proxy between catalog and MongoDB stopped),
// anonymous GETs that the gateway has cached are still answered 200 — also
// once they are past max-age, as their stale-if-error promises — writes are
// refused 503 with Retry-After within the request deadline, and when the
// database comes back writes succeed again without restarting anything.
func TestMongoDownServesCachedReadsAndRefusesWrites(t *testing.T) {
	k := newKeys(t)
	uri, mongo := mongoBehindProxy(t)
	cat := startCatalog(t, k, catalogConfig(t, uri, testenv.DatabaseName(t.Name())))
	gcfg := gatewayConfig(cat.addr, "127.0.0.1:1")
	gcfg.Cache.MaxAge = 5 * time.Second
	gcfg.Cache.StaleIfError = time.Minute
	gcfg.RequestTimeout = 4 * time.Second
	gw := startGateway(t, k, gcfg)
	client := catalogClient(t, cat.addr)
	admin := "Bearer " + k.token(t, authn.RoleAdmin)

	var ids []string
	for i := range 3 {
		m, err := client.CreateMovie(k.as(t.Context(), t, authn.RoleAdmin), &catalogv1.CreateMovieRequest{
			Movie: &catalogv1.Movie{Title: fmt.Sprint("Cached ", i), Year: ptr[int32](2001)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.GetId())
	}
	paths := []string{"/v1/movies?page_size=10"}
	for _, id := range ids {
		paths = append(paths, "/v1/movies/"+id)
	}
	for _, p := range paths {
		if r := gw.do(t.Context(), http.MethodGet, p, nil); r.status != http.StatusOK {
			t.Fatalf("warming %s: %v", p, r)
		}
	}
	warmed := time.Now()

	mongo.down()
	for _, p := range paths {
		if r := gw.do(t.Context(), http.MethodGet, p, nil); r.status != http.StatusOK {
			t.Errorf("GET %s with the database down, within max-age: %v", p, r)
		}
	}
	w := gw.do(t.Context(), http.MethodPost, "/v1/movies", map[string]any{"title": "Refused"}, "Authorization", admin)
	if w.status != http.StatusServiceUnavailable || w.header.Get("Retry-After") == "" {
		t.Errorf("POST with the database down: %v (Retry-After %q), want 503 with Retry-After", w, w.header.Get("Retry-After"))
	}
	if w.elapsed > gcfg.RequestTimeout+time.Second {
		t.Errorf("POST with the database down took %s, past the %s deadline", w.elapsed, gcfg.RequestTimeout)
	}

	// Past max-age the cached bytes are stale; stale-if-error still covers
	// them while the backend fails.
	select {
	case <-time.After(time.Until(warmed.Add(gcfg.Cache.MaxAge + 500*time.Millisecond))):
	case <-t.Context().Done():
	}
	for _, p := range paths {
		if r := gw.do(t.Context(), http.MethodGet, p, nil); r.status != http.StatusOK {
			t.Errorf("GET %s with the database down, past max-age (stale-if-error %s): %v", p, gcfg.Cache.StaleIfError, r)
		}
	}

	mongo.up()
	eventually(t, 45*time.Second, "writes after the database is back", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		r := gw.do(ctx, http.MethodPost, "/v1/movies", map[string]any{"title": "Accepted"}, "Authorization", admin)
		if r.status != http.StatusCreated {
			return fmt.Errorf("POST: %v", r)
		}
		return nil
	})
	if r := gw.do(t.Context(), http.MethodGet, "/v1/movies?page_size=50&order_by=title", nil); r.status != http.StatusOK {
		t.Fatalf("listing after recovery: %v", r)
	}
}
