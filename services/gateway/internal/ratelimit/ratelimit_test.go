package ratelimit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/marquee-dev/marquee/services/gateway/internal/ratelimit"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLocalGCRA(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	l, err := ratelimit.New(ratelimit.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	// 60 a minute: a burst of 60, then one a second.
	for i := range 60 {
		res, store := l.Allow(ctx, "k", 60)
		if !res.Allowed || store != ratelimit.StoreLocal || res.Remaining != 59-i {
			t.Fatalf("request %d: %+v %s", i, res, store)
		}
	}
	res, _ := l.Allow(ctx, "k", 60)
	if res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > time.Second {
		t.Fatalf("61st request: %+v", res)
	}
	if other, _ := l.Allow(ctx, "other", 60); !other.Allowed {
		t.Fatalf("another key is limited too")
	}
	clk.Advance(time.Second)
	if res, _ := l.Allow(ctx, "k", 60); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after a second: %+v", res)
	}
	clk.Advance(time.Minute)
	if res, _ := l.Allow(ctx, "k", 60); !res.Allowed || res.Remaining != 59 {
		t.Fatalf("after a minute: %+v", res)
	}
}

func TestRedisGCRAMatchesLocal(t *testing.T) {
	addr := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	l, err := ratelimit.New(ratelimit.Options{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := range 5 {
		res, store := l.Allow(ctx, "shared", 5)
		if !res.Allowed || store != ratelimit.StoreRedis || res.Remaining != 4-i {
			t.Fatalf("request %d: %+v %s", i, res, store)
		}
	}
	res, store := l.Allow(ctx, "shared", 5)
	if res.Allowed || store != ratelimit.StoreRedis || res.RetryAfter < 10*time.Second || res.RetryAfter > 12*time.Second {
		t.Fatalf("6th request: %+v %s (want a retry after about 12s)", res, store)
	}
	// A second limiter on the same Redis sees the same quota.
	l2, _ := ratelimit.New(ratelimit.Options{Redis: rdb})
	defer l2.Close()
	if res, _ := l2.Allow(ctx, "shared", 5); res.Allowed {
		t.Fatalf("the quota is not shared: %+v", res)
	}
}

func TestFallsBackWhenRedisFails(t *testing.T) {
	addr := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 0, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	l, err := ratelimit.New(ratelimit.Options{Redis: rdb, Meter: mp.Meter("test"), RetryRedisAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, store := l.Allow(ctx, "k", 10); store != ratelimit.StoreRedis {
		t.Fatalf("store = %s before the failure", store)
	}
	admin := redis.NewClient(&redis.Options{Addr: addr})
	_ = admin.Do(ctx, "SHUTDOWN", "NOSAVE").Err()
	_ = admin.Close()
	waitFor(t, "redis to stop", func() bool { return rdb.Ping(ctx).Err() != nil })

	for i := range 3 {
		res, store := l.Allow(ctx, "k", 10)
		if !res.Allowed || store != ratelimit.StoreLocal {
			t.Fatalf("request %d with Redis down: %+v %s", i, res, store)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if got := counter(rm, "marquee.gateway.ratelimit.fallbacks"); got != 3 {
		t.Errorf("fallbacks counted = %d, want 3", got)
	}
}

func counter(rm metricdata.ResourceMetrics, name string) int64 {
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					total += dp.Value
				}
			}
		}
	}
	return total
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestMiddlewareHeaders(t *testing.T) {
	l, _ := ratelimit.New(ratelimit.Options{
		Policies:        ratelimit.Policies{Anonymous: 2, User: 100, Token: 1},
		IsTokenEndpoint: func(r *http.Request) bool { return r.URL.Path == "/token" },
	})
	defer l.Close()
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(path string, p authn.Principal, addr string) *httptest.ResponseRecorder {
		r, info := reqinfo.New(httptest.NewRequest("GET", path, nil))
		info.Principal, info.ClientAddr = p, addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	anon := authn.Principal{Role: authn.RoleAnonymous}
	w := serve("/x", anon, "192.0.2.1")
	if w.Code != 200 || w.Header().Get("RateLimit-Policy") != `"anonymous";q=2;w=60` || w.Header().Get("RateLimit") != `"anonymous";r=1;t=30` {
		t.Errorf("first: %d %q %q", w.Code, w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"))
	}
	w = serve("/x", anon, "192.0.2.1")
	if w.Code != 200 || w.Header().Get("RateLimit") != `"anonymous";r=0;t=30` {
		t.Errorf("second: %d %q", w.Code, w.Header().Get("RateLimit"))
	}
	w = serve("/x", anon, "192.0.2.1")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.HasPrefix(w.Header().Get("RateLimit"), `"anonymous";r=0;t=`) {
		t.Errorf("third: %d %v", w.Code, w.Header())
	}
	if w := serve("/x", anon, "192.0.2.2"); w.Code != 200 {
		t.Errorf("another address is limited too: %d", w.Code)
	}
	user := authn.Principal{Subject: "u", Role: authn.RoleUser}
	w = serve("/token", user, "192.0.2.3")
	if w.Code != 200 || w.Header().Get("RateLimit-Policy") != `"user";q=100;w=60, "token";q=1;w=60` {
		t.Errorf("token: %d %q", w.Code, w.Header().Get("RateLimit-Policy"))
	}
	if w := serve("/token", user, "192.0.2.3"); w.Code != 429 {
		t.Errorf("second token request: %d", w.Code)
	}
	admin := authn.Principal{Subject: "a", Role: authn.RoleAdmin}
	if w := serve("/x", admin, "192.0.2.1"); w.Code != 200 || w.Header().Get("RateLimit-Policy") != "" {
		t.Errorf("unlimited admin: %d %q", w.Code, w.Header().Get("RateLimit-Policy"))
	}
}
