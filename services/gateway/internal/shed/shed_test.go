package shed_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/gateway/internal/shed"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

func TestLowestTierIsRefusedFirst(t *testing.T) {
	l, err := shed.New(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	var releases []func()
	fill := func(tier string) int {
		n := 0
		for {
			release, ok := l.Acquire(tier)
			if !ok {
				return n
			}
			releases = append(releases, release)
			n++
		}
	}
	if n := fill("anonymous"); n != 60 {
		t.Fatalf("anonymous got %d slots, want 60", n)
	}
	// Anonymous is saturated; users and admins still get in.
	if n := fill("user"); n != 25 {
		t.Fatalf("users got %d more slots, want 25", n)
	}
	if _, ok := l.Acquire("anonymous"); ok {
		t.Fatalf("anonymous admitted past its share")
	}
	if n := fill("admin"); n != 15 {
		t.Fatalf("admins got %d more slots, want 15", n)
	}
	if _, ok := l.Acquire("admin"); ok {
		t.Fatalf("admitted past the limit")
	}
	for _, r := range releases {
		r()
	}
	if l.InFlight() != 0 {
		t.Fatalf("in flight = %d after releasing all", l.InFlight())
	}
	if _, ok := l.Acquire("anonymous"); !ok {
		t.Fatalf("anonymous refused on an idle gateway")
	}
}

func TestUnlimited(t *testing.T) {
	l, _ := shed.New(0, nil)
	for range 10_000 {
		if _, ok := l.Acquire("anonymous"); !ok {
			t.Fatal("refused without a limit")
		}
	}
}

func TestMiddlewareRefusesWith503(t *testing.T) {
	l, _ := shed.New(10, nil)
	block := make(chan struct{})
	started := make(chan struct{}, 16)
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-block
	}))
	serve := func(role authn.Role) *httptest.ResponseRecorder {
		r, info := reqinfo.New(httptest.NewRequest("GET", "/v1/movies", nil))
		info.Principal = authn.Principal{Subject: "x", Role: role}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var wg sync.WaitGroup
	for range 6 { // the anonymous share of 10
		wg.Go(func() { serve(authn.RoleAnonymous) })
	}
	for range 6 {
		<-started
	}
	if w := serve(authn.RoleAnonymous); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("saturated anonymous: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	wg.Go(func() {
		if w := serve(authn.RoleUser); w.Code != http.StatusOK {
			t.Errorf("user refused while anonymous is saturated: %d", w.Code)
		}
	})
	<-started
	close(block)
	wg.Wait()
}
