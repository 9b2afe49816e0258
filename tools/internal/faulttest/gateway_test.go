package faulttest_test

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

// seedMovies creates n movies directly in the catalog and returns their ids.
func seedMovies(t *testing.T, k *keys, catalogAddr string, n int) []string {
	t.Helper()
	client := catalogClient(t, catalogAddr)
	reqs := make([]*catalogv1.CreateMovieRequest, n)
	for i := range reqs {
		reqs[i] = &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: fmt.Sprint("Seed ", i),
			Year: ptr(int32(1950 + i%70)), Genres: []string{"Drama"}, ImdbScore: ptr(float64(i%10) + 0.5)}}
	}
	resp, err := client.BatchCreateMovies(k.as(t.Context(), t, authn.RoleAdmin), &catalogv1.BatchCreateMoviesRequest{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i, m := range resp.GetMovies() {
		ids[i] = m.GetId()
	}
	return ids
}

// TestRedisDownRateLimitsFallBackPerProcess: with Redis behind a proxy, the
// gateway counts anonymous quotas in Redis; when Redis refuses connections,
// and again when it swallows them (a black hole), every request is still
// answered 200 quickly with its RateLimit headers, the per-process limiter
// takes over (the fallbacks counter moves, and the quota is still enforced:
// 429 past it), and Redis is used again once it is back.
func TestRedisDownRateLimitsFallBackPerProcess(t *testing.T) {
	k := newKeys(t)
	redisProxy := newProxy(t, "redis", testenv.Redis(t))
	redis := &proxyHandle{t: t, p: redisProxy}
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	ids := seedMovies(t, k, cat.addr, 1)
	gcfg := gatewayConfig(cat.addr, "127.0.0.1:1")
	gcfg.RedisAddr = redisProxy.Listen
	gcfg.RateLimit.AnonymousPerMinute = 40
	gw := startGateway(t, k, gcfg)

	get := func(ip string) reply {
		// Each phase uses its own client address (the gateway trusts no
		// proxy, so it is the TCP peer: bind the client to another
		// loopback address).
		return gw.doFrom(t, ip, http.MethodGet, "/v1/movies/"+ids[0])
	}
	phase := func(name, ip string, n int) {
		t.Helper()
		for i := range n {
			r := get(ip)
			if r.status != http.StatusOK || r.header.Get("RateLimit") == "" || r.header.Get("RateLimit-Policy") == "" {
				t.Fatalf("%s: request %d: %v (RateLimit %q)", name, i, r, r.header.Get("RateLimit"))
			}
			if r.elapsed > time.Second {
				t.Fatalf("%s: request %d took %s", name, i, r.elapsed)
			}
		}
	}
	phase("redis up", "127.0.0.2", 10)
	if f := metric(t, gw.admin, "marquee_gateway_ratelimit_fallbacks_total"); f != 0 {
		t.Fatalf("fallbacks with Redis up: %v", f)
	}

	redis.down()
	phase("redis refusing connections", "127.0.0.3", 20)
	eventually(t, 5*time.Second, "fallbacks counted", func() error {
		if f := metric(t, gw.admin, "marquee_gateway_ratelimit_fallbacks_total"); f == 0 {
			return fmt.Errorf("no fallback counted")
		}
		return nil
	})
	// The per-process limiter still enforces the quota.
	limited := 0
	for range 40 {
		if r := get("127.0.0.3"); r.status == http.StatusTooManyRequests {
			limited++
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %v", r)
			}
		} else if r.status != http.StatusOK {
			t.Fatalf("with Redis down: %v", r)
		}
	}
	if limited == 0 {
		t.Fatalf("60 requests against a quota of 40 a minute were all allowed with Redis down")
	}

	redis.up()
	addToxic(t, redisProxy, "blackhole", "timeout", "upstream", map[string]any{"timeout": 0})
	phase("redis black hole", "127.0.0.4", 20)
	removeToxic(t, redisProxy, "blackhole")

	before := metric(t, gw.admin, "marquee_gateway_ratelimit_fallbacks_total")
	eventually(t, 10*time.Second, "Redis used again", func() error {
		phase("redis back", "127.0.0.5", 1)
		if metric(t, gw.admin, "marquee_gateway_ratelimit_fallbacks_total") > before {
			before = metric(t, gw.admin, "marquee_gateway_ratelimit_fallbacks_total")
			return fmt.Errorf("still falling back")
		}
		return nil
	})
}

// doFrom sends a GET from the loopback address ip.
func (g *gateway) doFrom(t *testing.T, ip, method, path string) reply {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
		DisableKeepAlives: true,
	}}
	sub := &gateway{server: g.server, url: g.url, client: client}
	return sub.do(t.Context(), method, path, nil)
}

// TestCatalogSlowAnswers504AtTheDeadline: with 3s of latency between the
// gateway and the catalog, uncached reads are answered 504 at the gateway's
// 1s deadline (not later), the search and probe routes are unaffected, and
// once the latency is gone the goroutines the slow calls held are released
// (the process returns to its goroutine baseline).
func TestCatalogSlowAnswers504AtTheDeadline(t *testing.T) {
	k := newKeys(t)
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	ids := seedMovies(t, k, cat.addr, 40)
	catProxy := newProxy(t, "catalog", cat.addr)
	gcfg := gatewayConfig(catProxy.Listen, "127.0.0.1:1")
	gcfg.RequestTimeout = time.Second
	gcfg.Cache.MaxBytes = 0 // every read goes to the catalog
	gw := startGateway(t, k, gcfg)
	// The same burst without the fault first, so that connection pools
	// (gateway to catalog, catalog to MongoDB) have grown to their size
	// before the baseline is taken.
	burst := func(check func(reply)) {
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() { check(gw.do(t.Context(), http.MethodGet, "/v1/movies/"+id, nil)) })
		}
		wg.Wait()
	}
	// (Uncached reads of FerretDB are slow under -race on a busy machine:
	// a 504 here only means the burst was slow, not that the fault is.)
	for range 2 {
		burst(func(reply) {})
	}
	if r := gw.do(t.Context(), http.MethodGet, "/v1/movies/"+ids[0], nil); r.status != http.StatusOK {
		t.Fatalf("before the fault: %v", r)
	}
	gw.client.CloseIdleConnections()
	baseline := settleGoroutines(t, 0, time.Second) // a short look, not a wait

	addToxic(t, catProxy, "slow", "latency", "downstream", map[string]any{"latency": 3000})
	var wrong atomic.Int64
	errs := make(chan string, len(ids))
	burst(func(r reply) {
		if r.status != http.StatusGatewayTimeout || r.elapsed < 900*time.Millisecond || r.elapsed > 2500*time.Millisecond ||
			!strings.Contains(r.header.Get("Content-Type"), "problem+json") {
			wrong.Add(1)
			errs <- r.String()
		}
	})
	close(errs)
	if wrong.Load() > 0 {
		t.Errorf("%d of %d slow reads were not 504 at the 1s deadline; first: %s", wrong.Load(), len(ids), <-errs)
	}
	if r := gw.do(t.Context(), http.MethodGet, "/readyz", nil); r.status != http.StatusOK {
		t.Errorf("readiness with a slow catalog: %v", r)
	}
	removeToxic(t, catProxy, "slow")
	gw.client.CloseIdleConnections()
	// The catalog's own handlers finish their 3s-delayed replies; after
	// that nothing the slow calls started may remain.
	if n := settleGoroutines(t, baseline+10, 20*time.Second); n > baseline+10 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before the fault, %d after it ended\n%s", baseline, n, buf[:runtime.Stack(buf, true)])
	}
	eventually(t, 10*time.Second, "reads after the latency is gone", func() error {
		if r := gw.do(t.Context(), http.MethodGet, "/v1/movies/"+ids[0], nil); r.status != http.StatusOK {
			return fmt.Errorf("%v", r)
		}
		return nil
	})
}

// TestSearchDownOnlySearchFails: with search unreachable, the search
// routes answer 503 with Retry-After and a problem document, quickly, while
// movies, lists, genres and the gateway's readiness are unaffected; search
// answers again once it is back.
func TestSearchDownOnlySearchFails(t *testing.T) {
	k := newKeys(t)
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	ids := seedMovies(t, k, cat.addr, 5)
	search := startSearch(t, k, cat.addr, t.TempDir())
	searchProxy := newProxy(t, "search", search.addr)
	gw := startGateway(t, k, gatewayConfig(cat.addr, searchProxy.Listen))
	eventually(t, time.Minute, "search serving the seeded movies", func() error {
		r := gw.do(t.Context(), http.MethodGet, "/v1/search/movies?q=seed", nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), ids[0]) {
			return fmt.Errorf("%v", r)
		}
		return nil
	})

	(&proxyHandle{t: t, p: searchProxy}).down()
	for _, p := range []string{"/v1/search/movies?q=seed", "/v1/search/movies?filter=year%3E1900", "/v1/search/suggest?prefix=se"} {
		r := gw.do(t.Context(), http.MethodGet, p+"&nocache="+fmt.Sprint(time.Now().UnixNano()), nil)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
			!strings.Contains(r.header.Get("Content-Type"), "problem+json") || r.elapsed > 5*time.Second {
			t.Errorf("GET %s with search down: %v (Retry-After %q)", p, r, r.header.Get("Retry-After"))
		}
	}
	for _, p := range []string{"/v1/movies/" + ids[1], "/v1/movies?page_size=3", "/v1/genres", "/v1/movies:batchGet?ids=" + ids[2], "/readyz", "/healthz"} {
		if r := gw.do(t.Context(), http.MethodGet, p, nil); r.status != http.StatusOK {
			t.Errorf("GET %s with search down: %v", p, r)
		}
	}
	admin := "Bearer " + k.token(t, authn.RoleAdmin)
	if r := gw.do(t.Context(), http.MethodPost, "/v1/movies", map[string]any{"title": "Written while search is down"},
		"Authorization", admin); r.status != http.StatusCreated {
		t.Errorf("POST with search down: %v", r)
	}

	(&proxyHandle{t: t, p: searchProxy}).up()
	eventually(t, 30*time.Second, "search after it is back", func() error {
		r := gw.do(t.Context(), http.MethodGet, "/v1/search/movies?q=written+while+search&nc="+fmt.Sprint(time.Now().UnixNano()), nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "Written while search is down") {
			return fmt.Errorf("%v", r)
		}
		return nil
	})
}

// TestGracefulShutdownLosesNoAcknowledgedWrite: creates with
// Idempotency-Key stream through the gateway while the catalog is stopped
// (gracefully) and started again on the same address. Every create that was
// acknowledged is stored; retrying the others with the same key after the
// restart creates each of them exactly once: no write is lost and none is
// duplicated.
func TestGracefulShutdownLosesNoAcknowledgedWrite(t *testing.T) {
	k := newKeys(t)
	db := testenv.DatabaseName(t.Name())
	ccfg := catalogConfig(t, testenv.MongoURI(t), db)
	cat := startCatalog(t, k, ccfg)
	addr := cat.addr
	gcfg := gatewayConfig(addr, "127.0.0.1:1")
	gcfg.RequestTimeout = 5 * time.Second
	gw := startGateway(t, k, gcfg)
	admin := "Bearer " + k.token(t, authn.RoleAdmin)

	const writers, perWriter = 4, 40
	type outcome struct {
		key    string
		ok     bool
		id     string
		status string
	}
	results := make(chan outcome, writers*perWriter)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("shutdown-%d-%d", w, i)
				r := gw.do(t.Context(), http.MethodPost, "/v1/movies", map[string]any{"title": key},
					"Authorization", admin, "Idempotency-Key", key)
				sent.Add(1)
				o := outcome{key: key, ok: r.status == http.StatusCreated, status: fmt.Sprint(r.status)}
				if r.err != nil {
					o.status = "transport error"
				}
				if o.ok {
					o.id = jsonField(r.body, "id")
				}
				results <- o
			}
		})
	}
	// Stop the catalog in the middle of the load, then start it again on
	// the same address.
	eventually(t, time.Minute, "load under way", func() error {
		if sent.Load() < writers*perWriter/4 {
			return fmt.Errorf("%d sent", sent.Load())
		}
		return nil
	})
	if err := cat.stop(); err != nil {
		t.Fatalf("stopping the catalog: %v", err)
	}
	ccfg.GRPCAddr = addr
	startCatalog(t, k, ccfg)
	wg.Wait()
	close(results)

	acked := map[string]string{}
	var retry []string
	statuses := map[string]int{}
	for o := range results {
		statuses[o.status]++
		if o.ok {
			acked[o.key] = o.id
		} else {
			retry = append(retry, o.key)
		}
	}
	t.Logf("%d acknowledged, %d to retry; answers during the load: %v", len(acked), len(retry), statuses)
	client := catalogClient(t, addr)
	for key, id := range acked {
		m, err := client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: id})
		if err != nil || m.GetTitle() != key {
			t.Errorf("acknowledged create %s (%s) is not stored: %v %v", key, id, m, err)
		}
	}
	for _, key := range retry {
		eventually(t, 30*time.Second, "retrying "+key, func() error {
			r := gw.do(t.Context(), http.MethodPost, "/v1/movies", map[string]any{"title": key},
				"Authorization", admin, "Idempotency-Key", key)
			if r.status != http.StatusCreated {
				return fmt.Errorf("%v", r)
			}
			acked[key] = jsonField(r.body, "id")
			return nil
		})
	}
	// Exactly one movie per key.
	seen := map[string]int{}
	token := ""
	for {
		resp, err := client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMovies() {
			seen[m.GetTitle()]++
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) != writers*perWriter {
		t.Errorf("%d distinct movies stored, want %d", len(seen), writers*perWriter)
	}
	for title, n := range seen {
		if n != 1 {
			t.Errorf("%q stored %d times", title, n)
		}
	}
}
