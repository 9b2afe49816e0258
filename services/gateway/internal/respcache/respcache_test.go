package respcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/gateway/internal/respcache"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

var policy = respcache.Policy{MaxAge: 30 * time.Second, StaleWhileRevalidate: 30 * time.Second, StaleIfError: 5 * time.Minute}

// backend plays grpc-gateway: it renders the current version of a resource,
// with an ETag for movies, and counts its calls.
type backend struct {
	calls   atomic.Int64
	version atomic.Int64
	status  atomic.Int64
	during  func() // runs while the request is being served
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	if b.during != nil {
		b.during()
	}
	info := reqinfo.From(r.Context())
	v := b.version.Load()
	if strings.HasPrefix(r.URL.Path, "/v1/movies/") {
		info.Route = "/v1/movies/{id}"
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, v))
	} else {
		info.Route = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", policy.CacheControl(info.Anonymous(), info.Route))
	if s := b.status.Load(); s != 0 {
		w.WriteHeader(int(s))
	}
	fmt.Fprintf(w, `{"path":%q,"version":%d}`, r.URL.Path, v)
}

func newCache(t *testing.T, maxBytes uint64) *respcache.Cache {
	t.Helper()
	c, err := respcache.New(respcache.Options{MaxBytes: maxBytes, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// user makes a request come from a signed-in user.
func user(_ *http.Request, info *reqinfo.Info) {
	info.Principal = authn.Principal{Subject: "u", Role: authn.RoleUser}
}

func get(h http.Handler, path string, opts ...func(*http.Request, *reqinfo.Info)) *httptest.ResponseRecorder {
	r, info := reqinfo.New(httptest.NewRequest("GET", path, nil))
	for _, o := range opts {
		o(r, info)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHitsMissesAndInvalidation(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)

	first := get(h, "/v1/movies/m1")
	second := get(h, "/v1/movies/m1")
	if b.calls.Load() != 1 {
		t.Fatalf("backend calls = %d, want 1", b.calls.Load())
	}
	if first.Body.String() != second.Body.String() || second.Header().Get("ETag") != `"0"` ||
		second.Header().Get("Content-Type") != "application/json" || second.Header().Get("Age") == "" ||
		second.Header().Get("Content-Length") != fmt.Sprint(len(first.Body.String())) {
		t.Errorf("hit differs: %v %q", second.Header(), second.Body.String())
	}

	// A change of another movie leaves this one cached; its own change does not.
	c.InvalidateMovie("m2")
	get(h, "/v1/movies/m1")
	if b.calls.Load() != 1 {
		t.Errorf("an unrelated change evicted the entry")
	}
	b.version.Store(1)
	c.InvalidateMovie("m1")
	if w := get(h, "/v1/movies/m1"); b.calls.Load() != 2 || w.Header().Get("ETag") != `"1"` {
		t.Errorf("after the change: calls %d, ETag %q", b.calls.Load(), w.Header().Get("ETag"))
	}

	// Lists live for their freshness lifetime, changes or not.
	get(h, "/v1/movies")
	get(h, "/v1/movies")
	if b.calls.Load() != 3 {
		t.Fatalf("list not cached: %d calls", b.calls.Load())
	}
	c.InvalidateMovie("m9")
	get(h, "/v1/movies")
	if b.calls.Load() != 3 {
		t.Errorf("a list was purged by a change")
	}
	// The query is part of the key.
	get(h, "/v1/movies?pageSize=5")
	if b.calls.Load() != 4 {
		t.Errorf("another query was served from the cache")
	}

	c.Purge()
	get(h, "/v1/movies/m1")
	if b.calls.Load() != 5 {
		t.Errorf("a purge left an entry")
	}
}

func TestWhatIsNotCached(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)
	get(h, "/v1/users/me", user)
	get(h, "/v1/users/me", user)
	if b.calls.Load() != 2 {
		t.Errorf("a caller's own resource was cached")
	}
	get(h, "/v1/movies:changes")
	get(h, "/v1/movies:changes")
	if b.calls.Load() != 4 {
		t.Errorf("the change feed was cached")
	}
	b.status.Store(http.StatusNotFound)
	get(h, "/v1/movies/gone")
	get(h, "/v1/movies/gone")
	if b.calls.Load() != 6 {
		t.Errorf("an error was cached")
	}
	b.status.Store(0)
	r := httptest.NewRequest("POST", "/v1/movies/m1", nil)
	c.Middleware(b).ServeHTTP(httptest.NewRecorder(), r)
	if b.calls.Load() != 7 {
		t.Errorf("POST did not reach the backend")
	}
}

func TestAResponseThatRacedWithAChangeIsNotServedLater(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	// The change lands while the backend renders the old version.
	b.during = func() {
		if b.calls.Load() == 1 {
			c.InvalidateMovie("m1")
		}
	}
	h := c.Middleware(b)
	get(h, "/v1/movies/m1")
	b.version.Store(1)
	if w := get(h, "/v1/movies/m1"); w.Header().Get("ETag") != `"1"` || b.calls.Load() != 2 {
		t.Errorf("a stale fill was served: ETag %q, calls %d", w.Header().Get("ETag"), b.calls.Load())
	}
}

func TestConditionalRequests(t *testing.T) {
	c := newCache(t, 1<<20)
	h := c.Middleware(&backend{})
	ifNoneMatch := func(v string) func(*http.Request, *reqinfo.Info) {
		return func(r *http.Request, _ *reqinfo.Info) { r.Header.Set("If-None-Match", v) }
	}
	// Miss, then hit, both conditional.
	for i := range 2 {
		w := get(h, "/v1/movies/m1", ifNoneMatch(`"0"`))
		if w.Code != 304 || w.Body.Len() != 0 || w.Header().Get("ETag") != `"0"` || w.Header().Get("Content-Type") != "" {
			t.Errorf("round %d: %d %v", i, w.Code, w.Header())
		}
	}
	// Lists get a strong ETag from their bytes.
	w := get(h, "/v1/genres")
	tag := w.Header().Get("ETag")
	if !strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, "W/") {
		t.Fatalf("list ETag = %q", tag)
	}
	if w := get(h, "/v1/genres", ifNoneMatch(tag)); w.Code != 304 {
		t.Errorf("list revalidation: %d", w.Code)
	}
	// Authenticated responses are revalidated too.
	w = get(h, "/v1/movies/m1", user, ifNoneMatch(`"0"`))
	if w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("authenticated revalidation: %d %q", w.Code, w.Body.String())
	}
	w = get(h, "/v1/movies/m1", user, ifNoneMatch(`"7"`))
	if w.Code != 200 || w.Body.Len() == 0 || w.Header().Get("Cache-Control") != "private, no-cache" {
		t.Errorf("authenticated miss: %d %v", w.Code, w.Header())
	}
}

func TestNoneMatch(t *testing.T) {
	for _, tc := range []struct {
		inm, etag string
		want      bool
	}{
		{`"1"`, `"1"`, true},
		{`W/"1"`, `"1"`, true},
		{`"0", "1"`, `"1"`, true},
		{`*`, `"1"`, true},
		{`"1-gzip"`, `"1"`, true},
		{`"1-zstd"`, `"1"`, true},
		{`"2"`, `"1"`, false},
		{`"1"`, ``, false},
		{``, `"1"`, false},
		{`"11"`, `"1"`, false},
	} {
		if _, got := respcache.NoneMatch(tc.inm, tc.etag); got != tc.want {
			t.Errorf("NoneMatch(%q, %q) = %v, want %v", tc.inm, tc.etag, got, tc.want)
		}
	}
}

func TestBoundedByBytes(t *testing.T) {
	c := newCache(t, 64<<10)
	big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqinfo.From(r.Context()).Route = "/v1/movies"
		_, _ = io.WriteString(w, strings.Repeat("x", 8<<10))
	})
	h := c.Middleware(big)
	for i := range 100 {
		get(h, fmt.Sprintf("/v1/movies?page_token=%d", i))
	}
	eventuallyTrue(t, "the cache to shrink to its bound", func() bool { return c.Len() <= 8 })
}

func TestCacheControl(t *testing.T) {
	for _, tc := range []struct {
		anonymous bool
		route     string
		want      string
	}{
		{true, "/v1/movies/{id}", "public, max-age=30, stale-while-revalidate=30, stale-if-error=300"},
		{false, "/v1/movies/{id}", "private, no-cache"},
		{true, "/v1/movies:changes", "no-cache"},
		{false, "/v1/movies:export", "private, no-cache"},
	} {
		if got := policy.CacheControl(tc.anonymous, tc.route); got != tc.want {
			t.Errorf("CacheControl(%v, %s) = %q, want %q", tc.anonymous, tc.route, got, tc.want)
		}
	}
}

// watcher is a fake catalog change feed: each WatchMovieChanges call takes
// the next scripted stream.
type watcher struct {
	streams chan *stream
	tokens  chan string
}

type stream struct {
	grpc.ClientStream
	ctx     context.Context
	batches chan *catalogv1.WatchMovieChangesResponse
	err     error
}

func (s *stream) Recv() (*catalogv1.WatchMovieChangesResponse, error) {
	select {
	case b, ok := <-s.batches:
		if ok {
			return b, nil
		}
		return nil, s.err
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}
func (s *stream) Header() (metadata.MD, error) { return nil, nil }

func (w *watcher) WatchMovieChanges(ctx context.Context, in *catalogv1.WatchMovieChangesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[catalogv1.WatchMovieChangesResponse], error) {
	w.tokens <- in.GetPageToken()
	select {
	case s := <-w.streams:
		s.ctx = ctx
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestFollowInvalidatesAndResumes(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)
	w := &watcher{streams: make(chan *stream, 4), tokens: make(chan string, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Follow(ctx, w)
	}()
	defer func() {
		cancel()
		<-done
	}()

	first := &stream{batches: make(chan *catalogv1.WatchMovieChangesResponse, 4), err: io.EOF}
	w.streams <- first
	if tok := <-w.tokens; tok != "" {
		t.Fatalf("first watch from %q, want now", tok)
	}
	get(h, "/v1/movies/m1")
	get(h, "/v1/movies/m2")
	first.batches <- &catalogv1.WatchMovieChangesResponse{
		Changes: []*catalogv1.MovieChange{{Id: "m1"}}, NextPageToken: "p1",
	}
	eventuallyTrue(t, "m1 to be invalidated", func() bool {
		get(h, "/v1/movies/m1")
		return b.calls.Load() >= 3
	})
	before := b.calls.Load()
	get(h, "/v1/movies/m2")
	if b.calls.Load() != before {
		t.Errorf("m2 was invalidated by m1's change")
	}

	// The stream breaks: the watcher resumes from its position, keeping the
	// cache.
	second := &stream{batches: make(chan *catalogv1.WatchMovieChangesResponse), err: apierr.New(codes.FailedPrecondition, "FEED_POSITION_EXPIRED", "too old")}
	w.streams <- second
	close(first.batches)
	if tok := <-w.tokens; tok != "p1" {
		t.Fatalf("resumed from %q, want p1", tok)
	}
	before = b.calls.Load()
	get(h, "/v1/movies/m2")
	if b.calls.Load() != before {
		t.Errorf("a resumable break purged the cache")
	}
	// The position has expired: the cache is purged and the feed restarts
	// from now.
	w.streams <- &stream{batches: make(chan *catalogv1.WatchMovieChangesResponse)}
	close(second.batches)
	if tok := <-w.tokens; tok != "" {
		t.Fatalf("after expiry resumed from %q, want now", tok)
	}
	before = b.calls.Load()
	get(h, "/v1/movies/m2")
	if b.calls.Load() != before+1 {
		t.Errorf("an expired position did not purge the cache")
	}
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// clock is a settable Options.Now.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }
func newClockedCache(t *testing.T, clk *clock) *respcache.Cache {
	t.Helper()
	c, err := respcache.New(respcache.Options{MaxBytes: 1 << 20, Policy: policy, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// cacheResult runs a GET and returns how the cache answered.
func cacheResult(h http.Handler, path string) (*httptest.ResponseRecorder, string) {
	var got *reqinfo.Info
	w := get(h, path, func(_ *http.Request, info *reqinfo.Info) { got = info })
	return w, got.Cache
}

func TestListStaysAHitAcrossAStreamOfUnrelatedChanges(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)
	lists := []string{"/v1/movies?pageSize=20", "/v1/genres", "/v1/directors", "/v1/search/movies?q=alien", "/v1/search/suggest?q=al"}
	for _, p := range lists {
		get(h, p)
	}
	filled := b.calls.Load()
	for i := range 500 {
		b.version.Add(1)
		c.InvalidateMovie(fmt.Sprintf("m%d", i))
		for _, p := range lists {
			if _, res := cacheResult(h, p); res != "hit" {
				t.Fatalf("after %d changes %s was a %q", i+1, p, res)
			}
		}
	}
	if n := b.calls.Load(); n != filled {
		t.Errorf("backend calls = %d, want %d: lists reached the backend under a write stream", n, filled)
	}
}

func TestAChangedMovieIsAMissRightAfterTheChange(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)
	get(h, "/v1/movies/m1")
	get(h, "/v1/movies:batchGet?names=movies/m1")
	if _, res := cacheResult(h, "/v1/movies/m1"); res != "hit" {
		t.Fatalf("before the change: %q", res)
	}
	b.version.Store(1)
	c.InvalidateMovie("m1")
	w, res := cacheResult(h, "/v1/movies/m1")
	if res != "miss" || w.Header().Get("ETag") != `"1"` {
		t.Errorf("right after the change: %q, ETag %q", res, w.Header().Get("ETag"))
	}
	if _, res := cacheResult(h, "/v1/movies:batchGet?names=movies/m1"); res != "miss" {
		t.Errorf("a batch naming the changed movie: %q", res)
	}
	if _, res := cacheResult(h, "/v1/movies/m1"); res != "hit" {
		t.Errorf("the refilled movie: %q", res)
	}
}

func TestAFeedGapPurgesSingleResourcesButNotLists(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)
	get(h, "/v1/movies/m1")
	get(h, "/v1/movies")
	c.Purge()
	if _, res := cacheResult(h, "/v1/movies/m1"); res != "miss" {
		t.Errorf("a single movie after a purge: %q", res)
	}
	if _, res := cacheResult(h, "/v1/movies"); res != "hit" {
		t.Errorf("a list after a purge: %q", res)
	}
}

// TestSingleResourcesAreNeverServedStaleWhileRevalidating: past max age a
// single resource always asks the backend in the foreground; a healthy
// backend's answer is served and replaces the entry.
func TestSingleResourcesAreNeverServedStaleWhileRevalidating(t *testing.T) {
	clk := newClock()
	c := newClockedCache(t, clk)
	b := &backend{}
	h := c.Middleware(b)
	for _, path := range []string{"/v1/movies/m1", "/v1/movies:batchGet?names=movies/m1"} {
		get(h, path)
		b.version.Add(1)
		clk.Advance(policy.MaxAge)
		if c.WouldHit(httptest.NewRequest("GET", path, nil)) {
			t.Errorf("%s: WouldHit = true past max age", path)
		}
		calls := b.calls.Load()
		w, res := cacheResult(h, path)
		if res != "miss" || w.Code != http.StatusOK || !strings.Contains(w.Body.String(), fmt.Sprintf(`"version":%d`, b.version.Load())) {
			t.Errorf("%s past max age: %q %d %q", path, res, w.Code, w.Body.String())
		}
		if b.calls.Load() != calls+1 {
			t.Errorf("%s past max age: backend calls %d, want %d", path, b.calls.Load(), calls+1)
		}
	}
}

// lookups returns the cache lookups counted with result.
func lookups(t *testing.T, reader *sdkmetric.ManualReader, result string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != "marquee.gateway.cache.lookups" || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				if v, _ := dp.Attributes.Value("result"); v.AsString() == result {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestSingleResourcesAreServedStaleIfError: while the backend fails (the
// database is down), a single movie or batch past max age is answered from
// its stored bytes for up to stale-if-error.
func TestSingleResourcesAreServedStaleIfError(t *testing.T) {
	for _, path := range []string{"/v1/movies/m1", "/v1/movies:batchGet?names=movies/m1"} {
		for _, status := range []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError} {
			t.Run(fmt.Sprintf("%s/%d", path, status), func(t *testing.T) {
				clk := newClock()
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				c, err := respcache.New(respcache.Options{MaxBytes: 1 << 20, Policy: policy, Now: clk.Now, Meter: mp.Meter("test")})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				b := &backend{}
				h := c.Middleware(b)
				first := get(h, path)
				b.status.Store(int64(status))
				b.version.Store(1)

				clk.Advance(policy.MaxAge + time.Second)
				calls := b.calls.Load()
				w, res := cacheResult(h, path)
				if res != "stale" || w.Code != http.StatusOK || w.Body.String() != first.Body.String() ||
					w.Header().Get("ETag") != first.Header().Get("ETag") || w.Header().Get("Age") != "31" {
					t.Errorf("past max age, backend %d: %q %d %v %q", status, res, w.Code, w.Header(), w.Body.String())
				}
				if b.calls.Load() != calls+1 {
					t.Errorf("the backend was not asked first")
				}
				if n := lookups(t, reader, "stale"); n != 1 {
					t.Errorf("stale lookups = %d, want 1", n)
				}
				// Near the end of the window it still is.
				clk.Advance(policy.StaleIfError - 2*time.Second)
				if w, res := cacheResult(h, path); res != "stale" || w.Code != http.StatusOK {
					t.Errorf("at the end of stale-if-error: %q %d", res, w.Code)
				}
				// Past max age + stale-if-error the error is passed on.
				clk.Advance(time.Second)
				if w, res := cacheResult(h, path); res != "miss" || w.Code != status {
					t.Errorf("past stale-if-error: %q %d", res, w.Code)
				}
			})
		}
	}
}

// TestAnInvalidatedSingleResourceIsNotServedStaleIfError: a change from the
// feed or a write through this replica makes the stored movie unusable even
// while the backend fails.
func TestAnInvalidatedSingleResourceIsNotServedStaleIfError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		invalidate func(c *respcache.Cache, h http.Handler)
	}{
		{"feed", "/v1/movies/m1", func(c *respcache.Cache, _ http.Handler) { c.InvalidateMovie("m1") }},
		{"feed/batch", "/v1/movies:batchGet?names=movies/m1", func(c *respcache.Cache, _ http.Handler) { c.InvalidateMovie("m1") }},
		{"write", "/v1/movies/m1", func(_ *respcache.Cache, h http.Handler) {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPatch, "/v1/movies/m1", nil))
		}},
		{"purge", "/v1/movies/m1", func(c *respcache.Cache, _ http.Handler) { c.Purge() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := newClockedCache(t, clk)
			b := &backend{}
			h := c.Middleware(b)
			get(h, tc.path)
			clk.Advance(policy.MaxAge + time.Second)
			b.status.Store(http.StatusServiceUnavailable)
			tc.invalidate(c, h)
			if w, res := cacheResult(h, tc.path); res != "miss" || w.Code != http.StatusServiceUnavailable {
				t.Errorf("after the invalidation: %q %d", res, w.Code)
			}
		})
	}
}

// TestAChangeDuringTheFailedRequestIsNotServedStale: the movie changes while
// the backend is being asked (and fails); the stored bytes are then
// outdated and must not stand in for the error.
func TestAChangeDuringTheFailedRequestIsNotServedStale(t *testing.T) {
	clk := newClock()
	c := newClockedCache(t, clk)
	b := &backend{}
	h := c.Middleware(b)
	get(h, "/v1/movies/m1")
	clk.Advance(policy.MaxAge + time.Second)
	b.status.Store(http.StatusServiceUnavailable)
	b.during = func() { c.InvalidateMovie("m1") }
	if w, res := cacheResult(h, "/v1/movies/m1"); res != "miss" || w.Code != http.StatusServiceUnavailable {
		t.Errorf("changed while the backend failed: %q %d", res, w.Code)
	}
}

// TestAFreshAnswerReplacesTheStaleSingleResource: once the backend recovers
// its 200 is served and stored, fresh again for max age.
func TestAFreshAnswerReplacesTheStaleSingleResource(t *testing.T) {
	clk := newClock()
	c := newClockedCache(t, clk)
	b := &backend{}
	h := c.Middleware(b)
	get(h, "/v1/movies/m1")
	clk.Advance(policy.MaxAge + time.Second)
	b.status.Store(http.StatusServiceUnavailable)
	if _, res := cacheResult(h, "/v1/movies/m1"); res != "stale" {
		t.Fatalf("while failing: %q", res)
	}
	b.status.Store(0)
	b.version.Store(1)
	if w, res := cacheResult(h, "/v1/movies/m1"); res != "miss" || w.Code != http.StatusOK || w.Header().Get("ETag") != `"1"` {
		t.Errorf("after recovery: %q %d ETag %q", res, w.Code, w.Header().Get("ETag"))
	}
	if w, res := cacheResult(h, "/v1/movies/m1"); res != "hit" || w.Header().Get("ETag") != `"1"` || w.Header().Get("Age") != "0" {
		t.Errorf("the replaced entry: %q ETag %q Age %q", res, w.Header().Get("ETag"), w.Header().Get("Age"))
	}
	// The new entry has its own stale-if-error window.
	clk.Advance(policy.MaxAge + time.Second)
	b.status.Store(http.StatusGatewayTimeout)
	if w, res := cacheResult(h, "/v1/movies/m1"); res != "stale" || w.Code != http.StatusOK || w.Header().Get("ETag") != `"1"` {
		t.Errorf("the replaced entry while failing: %q %d ETag %q", res, w.Code, w.Header().Get("ETag"))
	}
}

func TestStaleListIsServedWhileOneBackgroundRefreshRuns(t *testing.T) {
	clk := newClock()
	c := newClockedCache(t, clk)
	b := &backend{}
	release := make(chan struct{})
	refreshing := make(chan struct{}, 1)
	b.during = func() {
		if b.version.Load() == 1 { // the refresh
			refreshing <- struct{}{}
			<-release
		}
	}
	h := c.Middleware(b)
	const path = "/v1/movies?pageSize=20"
	first := get(h, path)
	b.version.Store(1)

	clk.Advance(policy.MaxAge + time.Second)
	r := httptest.NewRequest("GET", path, nil)
	if !c.WouldHit(r) {
		t.Errorf("WouldHit = false for a list being revalidated")
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			w, res := cacheResult(h, path)
			if res != "stale" || w.Code != 200 || w.Body.String() != first.Body.String() || w.Header().Get("Age") != "31" {
				t.Errorf("while stale: %q %d Age %q %q", res, w.Code, w.Header().Get("Age"), w.Body.String())
			}
		})
	}
	wg.Wait()
	<-refreshing // one refresh started, and is held
	if n := b.calls.Load(); n != 2 {
		t.Errorf("backend calls = %d, want 2 (the fill and one refresh)", n)
	}
	close(release)
	eventuallyTrue(t, "the refreshed list to be served", func() bool {
		w, res := cacheResult(h, path)
		return res == "hit" && strings.Contains(w.Body.String(), `"version":1`)
	})
	if n := b.calls.Load(); n != 2 {
		t.Errorf("backend calls = %d after the refresh, want 2", n)
	}
}

func TestStaleIfError(t *testing.T) {
	clk := newClock()
	c := newClockedCache(t, clk)
	b := &backend{}
	h := c.Middleware(b)
	const path = "/v1/genres"
	first := get(h, path)
	b.status.Store(http.StatusServiceUnavailable)

	// Within stale-while-revalidate, a failed refresh leaves the stale
	// entry in place.
	clk.Advance(policy.MaxAge + time.Second)
	if _, res := cacheResult(h, path); res != "stale" {
		t.Fatalf("within stale-while-revalidate: %q", res)
	}
	eventuallyTrue(t, "the background refresh to fail", func() bool { return b.calls.Load() == 2 })

	// Past it, the backend is asked in the foreground; its 5xx is replaced
	// by the stored bytes.
	clk.Advance(policy.StaleWhileRevalidate)
	w, res := cacheResult(h, path)
	if res != "stale" || w.Code != 200 || w.Body.String() != first.Body.String() ||
		w.Header().Get("ETag") != first.Header().Get("ETag") || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("stale-if-error: %q %d %v %q", res, w.Code, w.Header(), w.Body.String())
	}
	calls := b.calls.Load()
	if calls < 3 {
		t.Errorf("backend calls = %d: the backend was not asked", calls)
	}
	// A 4xx is an answer, not a failure: it is passed on.
	b.status.Store(http.StatusNotFound)
	if w, _ := cacheResult(h, path); w.Code != http.StatusNotFound {
		t.Errorf("a 4xx was replaced by the stale entry: %d", w.Code)
	}
	// Past stale-if-error, the error is passed on.
	b.status.Store(http.StatusServiceUnavailable)
	clk.Advance(policy.StaleIfError)
	if w, res := cacheResult(h, path); res != "miss" || w.Code != http.StatusServiceUnavailable {
		t.Errorf("past stale-if-error: %q %d", res, w.Code)
	}
	// When the backend recovers, the entry is fresh again.
	b.status.Store(0)
	get(h, path)
	if _, res := cacheResult(h, path); res != "hit" {
		t.Errorf("after recovery: %q", res)
	}
}

// TestAWriteThroughThisReplicaIsReadAtOnce: a PATCH or DELETE that passes
// through the cache drops the movie's stored GET before the change feed
// reports it, so the writer's next read is not stale.
func TestAWriteThroughThisReplicaIsReadAtOnce(t *testing.T) {
	c := newCache(t, 1<<20)
	b := &backend{}
	h := c.Middleware(b)
	get(h, "/v1/movies/m1")
	if _, res := cacheResult(h, "/v1/movies/m1"); res != "hit" {
		t.Fatalf("before the write: %q", res)
	}
	for _, method := range []string{http.MethodPatch, http.MethodDelete} {
		b.version.Add(1)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/v1/movies/m1", nil))
		if _, res := cacheResult(h, "/v1/movies/m1"); res != "miss" {
			t.Errorf("the first GET after a %s through this replica: %q, want a miss", method, res)
		}
	}
}

// TestAuthenticatedCallersShareStoredBytes: a public route's response is
// the same for every caller, so one stored by an authenticated request
// serves anonymous ones (public) and the reverse (private); the caller's own
// resources are never stored; Cache-Control: no-cache reaches the backend.
func TestAuthenticatedCallersShareStoredBytes(t *testing.T) {
	b := &backend{}
	h := newCache(t, 1<<20).Middleware(b)
	if w := get(h, "/v1/genres", user); w.Code != 200 || w.Header().Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("authenticated fill: %d %v", w.Code, w.Header())
	}
	w := get(h, "/v1/genres")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Cache-Control"), "public, ") || b.calls.Load() != 1 {
		t.Fatalf("anonymous after an authenticated fill: %d %v, backend asked %d times", w.Code, w.Header(), b.calls.Load())
	}
	if w := get(h, "/v1/movies/m1"); w.Code != 200 || b.calls.Load() != 2 {
		t.Fatalf("anonymous fill: %d, backend asked %d times", w.Code, b.calls.Load())
	}
	w = get(h, "/v1/movies/m1", user)
	if w.Code != 200 || w.Header().Get("Cache-Control") != "private, no-cache" || b.calls.Load() != 2 {
		t.Fatalf("authenticated hit: %d %v, backend asked %d times", w.Code, w.Header(), b.calls.Load())
	}
	noCache := func(r *http.Request, _ *reqinfo.Info) { r.Header.Set("Cache-Control", "max-age=0, no-cache") }
	if w := get(h, "/v1/genres", user, noCache); w.Code != 200 || b.calls.Load() != 3 {
		t.Fatalf("no-cache: %d, backend asked %d times, want 3", w.Code, b.calls.Load())
	}
	for range 2 {
		if w := get(h, "/v1/users/me", user); w.Code != 200 {
			t.Fatalf("users/me: %d", w.Code)
		}
	}
	if b.calls.Load() != 5 {
		t.Fatalf("the caller's own resource was served from the cache (%d backend calls, want 5)", b.calls.Load())
	}
}
