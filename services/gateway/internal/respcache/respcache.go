// Package respcache keeps the rendered bytes of hot public GET responses in
// memory, so that a popular movie costs the gateway a map lookup and a
// write instead of a gRPC call and a protojson encoding, and implements the
// gateway's HTTP caching: strong ETags, 304 answers to If-None-Match and the
// Cache-Control policy.
//
// Entries are bounded by their total size in bytes (otter, weighed by body
// size) and by age. Two kinds of entry follow two consistency rules:
//
//   - Single resources (GET /v1/movies/{id}, and :batchGet, which names its
//     movies) are exact: the catalog's change feed (Follow) invalidates a
//     changed movie's entry by id, and a batch on any change. Invalidation
//     only bumps counters, so it is O(1); an entry records the counters it
//     was filled under and is valid while they have not moved. Because the
//     counters are read before the backend is asked, a response that raced
//     with a change of its resource is never stored as current. A gap in the
//     feed (an expired position, a restart without one) invalidates them
//     all. They are served fresh for at most Policy.MaxAge and never
//     stale-while-revalidate: past MaxAge every read asks the backend, so a
//     change the feed has not delivered yet shows within MaxAge. They are
//     kept until MaxAge+Policy.StaleIfError, though, and served (stale)
//     only when the backend answers 5xx (stale-if-error), so that anonymous
//     reads of a movie survive a database outage. An invalidated entry is
//     never served, not even then: a change through the feed or a write
//     through this replica makes it unusable at once.
//
//   - List-like responses (movie lists, genres, directors, search, suggest,
//     the JWKS) are NOT invalidated by the feed: at ~1% writes every list
//     would be purged several times a second and every list read would reach
//     the catalog. They keep the bound a CDN applies to the same
//     Cache-Control: fresh for Policy.MaxAge after the backend was asked;
//     then, for Policy.StaleWhileRevalidate, the stale bytes are served while
//     one background request per key (single flight) refreshes the entry;
//     then, for Policy.StaleIfError, they are served only when the backend
//     answers 5xx. So a list served fresh reflects every change made more
//     than MaxAge (30s by default) before, one served stale every change made
//     more than MaxAge+StaleWhileRevalidate before, and only while the
//     backend fails may it lag by up to MaxAge+StaleIfError. The Age header
//     tells clients and CDNs how old the bytes are.
//
// The public routes' responses are the same for every caller, so callers
// with a token or an API key are served the same stored bytes, marked
// private; their own resources (account, keys, export) are never stored. A
// request with Cache-Control: no-cache goes to the backend.
//
// Only the body and the headers that describe it (Content-Type, ETag, Link,
// Cache-Control) are stored. Per-request headers — RateLimit, X-Request-Id —
// are written by other middleware for every request, hits included.
package respcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

// Policy is the HTTP caching policy of successful GET responses.
type Policy struct {
	// MaxAge is how long a public response is fresh, for clients, CDNs and
	// this cache alike.
	MaxAge time.Duration
	// StaleWhileRevalidate lets a shared cache serve a stale response while
	// it fetches a new one.
	StaleWhileRevalidate time.Duration
	// StaleIfError lets a shared cache serve a stale response when the
	// gateway fails.
	StaleIfError time.Duration
}

// Routes whose responses must not be reused even for anonymous callers: the
// change feed moves on with every write, and the export is personal and huge.
var uncachedRoutes = map[string]bool{
	"/v1/movies:changes": true,
	"/v1/movies:export":  true,
}

// CacheControl returns the Cache-Control value of a successful GET response
// for route: public with MaxAge and the stale extensions for anonymous
// callers, private and revalidated for authenticated ones.
func (p Policy) CacheControl(anonymous bool, route string) string {
	switch {
	case uncachedRoutes[route]:
		if anonymous {
			return "no-cache"
		}
		return "private, no-cache"
	case !anonymous:
		return "private, no-cache"
	case p.MaxAge <= 0:
		return "no-cache"
	}
	return fmt.Sprintf("public, max-age=%d, stale-while-revalidate=%d, stale-if-error=%d",
		int(p.MaxAge.Seconds()), int(p.StaleWhileRevalidate.Seconds()), int(p.StaleIfError.Seconds()))
}

// cacheableRoutes are the public GET routes whose responses are stored;
// tagRoutes name one movie, whose id is in the path, so that its entry follows
// that movie's changes alone.
var cacheableRoutes = map[string]bool{
	"/v1/movies/{id}":        true,
	"/v1/movies":             true,
	"/v1/movies:batchGet":    true,
	"/v1/genres":             true,
	"/v1/directors/{id}":     true,
	"/v1/directors":          true,
	"/v1/search/movies":      true,
	"/v1/search/suggest":     true,
	"/.well-known/jwks.json": true,
}

const movieRoute = "/v1/movies/{id}"

// exactRoutes are the routes besides movieRoute whose entries follow the
// change feed rather than their age alone: a batch names its movies, and a
// client that just wrote one expects to read it back.
var exactRoutes = map[string]bool{
	"/v1/movies:batchGet": true,
}

// exact reports whether e follows the change feed (a single resource) rather
// than its freshness lifetime (a list-like response).
func (e *Entry) exact() bool { return e.tag != "" || exactRoutes[e.route] }

// Options configure a Cache.
type Options struct {
	// MaxBytes bounds the stored bodies; 0 disables storing (conditional
	// requests still work).
	MaxBytes uint64
	// MaxEntryBytes bounds one stored body (default 1 MiB); larger responses
	// are passed through.
	MaxEntryBytes int
	Policy        Policy
	Logger        *slog.Logger
	Meter         metric.Meter
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Entry is a stored response.
type Entry struct {
	body   []byte
	header http.Header // Content-Type, ETag, Link, Cache-Control, Content-Length
	route  string
	stored time.Time // when the backend was asked: the age is conservative

	tag        string // the movie id for a single-movie entry
	tagVersion uint64
	generation uint64
}

// numStripes spreads per-movie invalidation counters; two movies sharing a
// stripe only invalidate each other's entries a little early.
const numStripes = 4096

// Cache is the response cache. It is safe for concurrent use.
type Cache struct {
	opts    Options
	entries *otter.Cache[string, *Entry] // nil when storing is disabled
	seed    maphash.Seed

	generation atomic.Uint64 // moves on every change: exactRoutes entries
	stripes    [numStripes]atomic.Uint64

	// Background revalidation of stale list-like entries: one request per
	// key at a time, cancelled and waited for by Close.
	refreshing sync.Map // key -> struct{}
	stop       context.Context
	cancel     context.CancelFunc
	mu         sync.Mutex // guards closed against wg.Add after Close
	closed     bool
	wg         sync.WaitGroup

	lookups                        metric.Int64Counter
	invalidations                  metric.Int64Counter
	hitAttrs, missAttrs, staleAttr metric.MeasurementOption
}

// freshness is what a stored entry may be used for at a given moment.
type freshness int

const (
	unusable   freshness = iota
	fresh                // serve it
	revalidate           // serve it and refresh it in the background
	ifError              // serve it only when the backend fails
)

// New returns a Cache.
func New(opts Options) (*Cache, error) {
	if opts.MaxEntryBytes <= 0 {
		opts.MaxEntryBytes = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		opts:      opts,
		seed:      maphash.MakeSeed(),
		hitAttrs:  metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "hit"))),
		missAttrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "miss"))),
		staleAttr: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "stale"))),
	}
	c.stop, c.cancel = context.WithCancel(context.Background())
	if opts.MaxBytes > 0 && opts.Policy.MaxAge > 0 {
		var err error
		c.entries, err = otter.New(&otter.Options[string, *Entry]{
			MaximumWeight: opts.MaxBytes,
			Weigher: func(k string, e *Entry) uint32 {
				// The body dominates; the key and a fixed overhead for the
				// entry and its headers keep tiny entries honest.
				return uint32(len(e.body) + len(k) + 256)
			},
			// Entries outlive their freshness by the stale windows they
			// may be served in: exact ones only by stale-if-error.
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
				if e.Value.exact() {
					return opts.Policy.MaxAge + opts.Policy.StaleIfError
				}
				return opts.Policy.MaxAge + max(opts.Policy.StaleWhileRevalidate, opts.Policy.StaleIfError)
			}),
		})
		if err != nil {
			c.cancel()
			return nil, fmt.Errorf("creating response cache: %w", err)
		}
	}
	if opts.Meter != nil {
		var err error
		c.lookups, err = opts.Meter.Int64Counter("marquee.gateway.cache.lookups",
			metric.WithDescription("Response cache lookups of public GETs by result (hit; stale: served past max age; miss)."),
			metric.WithUnit("{lookup}"))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("creating cache lookups counter: %w", err)
		}
		c.invalidations, err = opts.Meter.Int64Counter("marquee.gateway.cache.invalidations",
			metric.WithDescription("Movie changes applied to the response cache, and purges of single resources after a feed gap (kind=purge)."),
			metric.WithUnit("{invalidation}"))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("creating cache invalidations counter: %w", err)
		}
		_, err = opts.Meter.Int64ObservableGauge("marquee.gateway.cache.size",
			metric.WithDescription("Bytes held by the response cache."),
			metric.WithUnit("By"),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				if c.entries != nil {
					o.Observe(int64(c.entries.WeightedSize()))
				}
				return nil
			}))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("creating cache size gauge: %w", err)
		}
	}
	return c, nil
}

// Close stops the cache's background maintenance and revalidations, and
// waits for the revalidations to return.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.entries != nil {
		c.entries.StopAllGoroutines()
	}
}

// Policy returns the caching policy.
func (c *Cache) Policy() Policy { return c.opts.Policy }

func (c *Cache) stripe(id string) *atomic.Uint64 {
	return &c.stripes[maphash.String(c.seed, id)%numStripes]
}

// InvalidateMovie makes the stored single resources that show movie id
// unusable at once, for stale-if-error too. List-like responses are left to their freshness lifetime (see
// the package comment).
func (c *Cache) InvalidateMovie(id string) {
	c.stripe(id).Add(1)
	c.generation.Add(1)
	if c.entries != nil {
		c.entries.Invalidate("/v1/movies/" + id + "?")
	}
	if c.invalidations != nil {
		c.invalidations.Add(context.Background(), 1, metric.WithAttributes(attribute.String("kind", "movie")))
	}
}

// Purge drops every stored single resource, for when changes may have been
// missed. List-like responses keep their freshness bound, which does not
// depend on the feed.
func (c *Cache) Purge() {
	c.generation.Add(1)
	for i := range c.stripes {
		c.stripes[i].Add(1)
	}
	if c.entries != nil {
		// The counters above already make them unusable; dropping them
		// frees their room for entries that can be served.
		var keys []string
		for k, e := range c.entries.All() {
			if e.exact() {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			c.entries.Invalidate(k)
		}
	}
	if c.invalidations != nil {
		c.invalidations.Add(context.Background(), 1, metric.WithAttributes(attribute.String("kind", "purge")))
	}
}

// Len returns the number of stored responses (for tests and diagnostics).
func (c *Cache) Len() int {
	if c.entries == nil {
		return 0
	}
	return c.entries.EstimatedSize()
}

// WouldHit reports whether r would be answered from the cache right now: a
// GET or HEAD whose response is stored and fresh, or stale and being
// revalidated in the background. The gateway
// uses it to leave cache hits untraced — a hit is a map lookup, and a span
// for it would cost as much as the hit itself; hits still reach the access
// log and the RED metrics.
func (c *Cache) WouldHit(r *http.Request) bool {
	if c.entries == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	if NoCache(r) {
		return false
	}
	e, ok := c.entries.GetIfPresent(cacheKey(r))
	if !ok {
		return false
	}
	f := c.freshness(e)
	return f == fresh || f == revalidate
}

// freshness says what e may be used for now. Exact entries are unusable once
// the change feed (or a write through this replica) has touched them;
// otherwise they are fresh while younger than MaxAge and then usable only
// if the backend fails, for StaleIfError — never revalidated in the
// background. List-like ones go by their age alone.
func (c *Cache) freshness(e *Entry) freshness {
	age := c.opts.Now().Sub(e.stored)
	p := c.opts.Policy
	if e.exact() {
		switch {
		case !c.current(e):
			return unusable
		case age < p.MaxAge:
			return fresh
		case age < p.MaxAge+p.StaleIfError:
			return ifError
		}
		return unusable
	}
	switch {
	case age < p.MaxAge:
		return fresh
	case age < p.MaxAge+p.StaleWhileRevalidate:
		return revalidate
	case age < p.MaxAge+p.StaleIfError:
		return ifError
	}
	return unusable
}

// current reports whether no change has touched exact entry e since it was
// filled.
func (c *Cache) current(e *Entry) bool {
	if e.tag != "" {
		return c.stripe(e.tag).Load() == e.tagVersion
	}
	return c.generation.Load() == e.generation
}

// publicPath reports whether path is one of cacheableRoutes, whose
// responses are the same for every caller, so an authenticated caller may be
// served the stored bytes (with a private Cache-Control). Anything else an
// authenticated caller asks for (its account, its keys, the export stream)
// goes straight to the backend.
func publicPath(path string) bool {
	switch path {
	case "/v1/movies", "/v1/movies:batchGet", "/v1/genres", "/v1/directors", "/v1/search/movies",
		"/v1/search/suggest", "/.well-known/jwks.json":
		return true
	}
	if movieID(path) != "" {
		return true
	}
	id, ok := strings.CutPrefix(path, "/v1/directors/")
	return ok && id != "" && !strings.ContainsAny(id, "/:")
}

// NoCache reports whether the client asked for a response from the
// backend rather than a stored one (Cache-Control: no-cache, or the older
// Pragma: no-cache): RFC 9111 section 5.2.1.4. The response is not stored
// either.
func NoCache(r *http.Request) bool {
	for _, v := range r.Header.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
				return true
			}
		}
	}
	return len(r.Header["Cache-Control"]) == 0 && strings.EqualFold(strings.TrimSpace(r.Header.Get("Pragma")), "no-cache")
}

func cacheKey(r *http.Request) string {
	return r.URL.Path + "?" + r.URL.RawQuery
}

// movieID returns the id of a single-movie path, "" for any other.
func movieID(path string) string {
	id, ok := strings.CutPrefix(path, "/v1/movies/")
	if !ok || id == "" || strings.ContainsAny(id, "/:") {
		return ""
	}
	return id
}

func (c *Cache) count(ctx context.Context, result metric.MeasurementOption) {
	if c.lookups != nil {
		c.lookups.Add(ctx, 1, result)
	}
}

// Middleware serves stored responses to GET and HEAD requests of public routes,
// stores cacheable ones, and answers If-None-Match with 304 for every GET.
// It must run after identity (it reads the caller from reqinfo) and after
// the rate limiter (a hit is still counted).
func (c *Cache) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			// A write through this replica is visible to its next read at
			// once (read-your-writes), without waiting for the change feed,
			// which still tells every other replica.
			if id := movieID(r.URL.Path); id != "" {
				c.InvalidateMovie(id)
			}
			return
		}
		info := reqinfo.From(r.Context())
		if NoCache(r) || (!info.Anonymous() && !publicPath(r.URL.Path)) {
			info.Cache = "bypass"
			next.ServeHTTP(conditional(w, r), r)
			return
		}
		key := cacheKey(r)
		var stale *Entry // usable only if the backend fails
		if c.entries != nil {
			if e, ok := c.entries.GetIfPresent(key); ok {
				switch c.freshness(e) {
				case fresh:
					info.Cache = "hit"
					info.Route = e.route
					c.count(r.Context(), c.hitAttrs)
					c.serve(w, r, e)
					return
				case revalidate:
					info.Cache = "stale"
					info.Route = e.route
					c.count(r.Context(), c.staleAttr)
					c.revalidate(next, r, key)
					c.serve(w, r, e)
					return
				case ifError:
					stale = e
				}
			}
		}
		info.Cache = "miss"
		var before http.Header
		if stale != nil {
			before = w.Header().Clone()
		}
		bw := c.fill(next, w, r, key, info)
		if bw.passthrough {
			c.count(r.Context(), c.missAttrs)
			return
		}
		if stale != nil && bw.status >= http.StatusInternalServerError && c.freshness(stale) != unusable {
			// stale-if-error: the stored bytes beat a 5xx. The check is
			// repeated because a change may have invalidated the entry
			// while the backend was asked. The error's headers go; those
			// set before the backend was asked stay.
			h := w.Header()
			clear(h)
			for k, v := range before {
				h[k] = v
			}
			info.Cache = "stale"
			info.Route = stale.route
			// Counted once the outcome is known: a lookup answered from
			// the stored bytes is stale, not a miss.
			c.count(r.Context(), c.staleAttr)
			c.serve(w, r, stale)
			return
		}
		c.count(r.Context(), c.missAttrs)
		bw.writeOut(r)
	})
}

// fill asks next for the response to r through a bufferingWriter on w and
// stores it when it is a cacheable 200. The response stays held in the
// returned writer unless it was passed through.
func (c *Cache) fill(next http.Handler, w http.ResponseWriter, r *http.Request, key string, info *reqinfo.Info) *bufferingWriter {
	// The counters and the clock are read before the backend is asked: a
	// change that lands while the request is in flight leaves the counters
	// moved, so the entry is born unusable, and the age of a list counts
	// from before the backend saw the data.
	id := movieID(r.URL.Path)
	var tagVersion uint64
	if id != "" {
		tagVersion = c.stripe(id).Load()
	}
	generation := c.generation.Load()
	asked := c.opts.Now()

	bw := &bufferingWriter{ResponseWriter: w, limit: c.opts.MaxEntryBytes}
	next.ServeHTTP(bw, r)
	if bw.passthrough {
		return bw
	}
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	if bw.status != http.StatusOK {
		return bw
	}
	h := bw.Header()
	if h.Get("Etag") == "" {
		// Lists and other responses without a resource etag get a
		// strong one from their bytes.
		h.Set("Etag", BodyETag(bw.buf.Bytes()))
	}
	if c.entries != nil && cacheableRoutes[info.Route] {
		stored := storedHeader(h, len(bw.buf.Bytes()))
		if !info.Anonymous() {
			// The bytes are the same for every caller; what a shared
			// cache may do with them is not.
			stored["Cache-Control"] = []string{c.opts.Policy.CacheControl(true, info.Route)}
		}
		e := &Entry{
			body:       bytes.Clone(bw.buf.Bytes()),
			header:     stored,
			route:      info.Route,
			stored:     asked,
			generation: generation,
		}
		if info.Route == movieRoute && id != "" {
			e.tag, e.tagVersion = id, tagVersion
		}
		c.entries.Set(key, e)
	}
	return bw
}

// revalidate refreshes the entry under key in the background, unless a
// refresh of it is already running: however many requests see a stale list,
// the backend is asked once. The refresh outlives r (the client already has
// the stale answer) but not the Cache, and runs behind the same request
// deadline as any backend call.
func (c *Cache) revalidate(next http.Handler, r *http.Request, key string) {
	if _, busy := c.refreshing.LoadOrStore(key, struct{}{}); busy {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.refreshing.Delete(key)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()

	orig := reqinfo.From(r.Context())
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	br := r.Clone(ctx)
	br.Body = http.NoBody
	// The refresh asks as an anonymous caller: it outlives the request that
	// triggered it, and a public response does not depend on who asks.
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Range", "Range", "Authorization", "X-Api-Key", "Cookie"} {
		br.Header.Del(k)
	}
	br, info := reqinfo.New(br)
	info.RequestID, info.ClientAddr = orig.RequestID, orig.ClientAddr
	info.Cache = "revalidate"
	go func() {
		defer c.wg.Done()
		defer c.refreshing.Delete(key)
		stop := context.AfterFunc(c.stop, cancel)
		defer stop()
		defer cancel()
		bw := c.fill(next, &discardWriter{header: http.Header{}}, br, key, info)
		if !bw.passthrough && bw.status != http.StatusOK {
			c.opts.Logger.InfoContext(ctx, "revalidating a cached response failed; serving it stale",
				slog.String("key", key), slog.Int("status", bw.status))
		}
	}()
}

// discardWriter takes a background revalidation's response, which only
// goes to the cache.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

var storedHeaders = []string{"Content-Type", "Etag", "Link", "Cache-Control"}

func storedHeader(h http.Header, n int) http.Header {
	out := make(http.Header, len(storedHeaders)+1)
	for _, k := range storedHeaders {
		if v := h.Values(k); len(v) > 0 {
			// Clipped, so that a later Add on a response copies rather than
			// writes into the shared backing array.
			out[k] = slices.Clip(append([]string(nil), v...))
		}
	}
	out["Content-Length"] = []string{strconv.Itoa(n)}
	return out
}

// serve writes a stored response, or 304 when the client has it.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, e *Entry) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	if !reqinfo.From(r.Context()).Anonymous() {
		h["Cache-Control"] = []string{c.opts.Policy.CacheControl(false, e.route)}
	}
	age := c.opts.Now().Sub(e.stored)
	h["Age"] = []string{strconv.FormatInt(int64(max(age, 0)/time.Second), 10)}
	if tag, ok := NoneMatch(r.Header.Get("If-None-Match"), h.Get("Etag")); ok {
		notModified(w, tag)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// BodyETag returns a strong entity tag derived from a body.
func BodyETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// encodingSuffixes are added to an ETag by the compression middleware for
// compressed representations; a client revalidating one sends it back.
var encodingSuffixes = []string{"-gzip", "-zstd"}

// NoneMatch reports whether an If-None-Match value matches etag, by weak
// comparison (RFC 9110 section 13.1.2), and returns the client's matching tag.
func NoneMatch(ifNoneMatch, etag string) (string, bool) {
	if ifNoneMatch == "" || etag == "" {
		return "", false
	}
	if strings.TrimSpace(ifNoneMatch) == "*" {
		return etag, true
	}
	want := opaque(etag)
	for cand := range strings.SplitSeq(ifNoneMatch, ",") {
		cand = strings.TrimSpace(cand)
		o := opaque(cand)
		if o == want {
			return cand, true
		}
		for _, s := range encodingSuffixes {
			if strings.HasSuffix(o, s+`"`) && strings.TrimSuffix(o, s+`"`)+`"` == want {
				return cand, true
			}
		}
	}
	return "", false
}

func opaque(tag string) string {
	return strings.TrimPrefix(strings.TrimSpace(tag), "W/")
}

// notModified answers 304, echoing the entity tag the client holds (which may
// carry an encoding suffix), without the body and its headers.
func notModified(w http.ResponseWriter, tag string) {
	h := w.Header()
	h.Set("Etag", tag)
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding"} {
		h.Del(k)
	}
	w.WriteHeader(http.StatusNotModified)
}

// bufferingWriter holds a response until it is complete, so it can be given
// an ETag, answered with 304, and stored. A response that streams (a Flush),
// outgrows the limit or is NDJSON is passed through from then on.
type bufferingWriter struct {
	http.ResponseWriter
	limit       int
	status      int
	buf         bytes.Buffer
	passthrough bool
	wroteHeader bool
}

func (b *bufferingWriter) WriteHeader(code int) {
	if b.passthrough {
		b.ResponseWriter.WriteHeader(code)
		return
	}
	if b.wroteHeader {
		return
	}
	b.wroteHeader = true
	b.status = code
	if strings.HasPrefix(b.Header().Get("Content-Type"), "application/x-ndjson") {
		b.startPassthrough()
	}
}

func (b *bufferingWriter) Write(p []byte) (int, error) {
	if !b.wroteHeader {
		b.WriteHeader(http.StatusOK)
	}
	if b.passthrough {
		return b.ResponseWriter.Write(p)
	}
	if b.buf.Len()+len(p) > b.limit {
		b.startPassthrough()
		return b.ResponseWriter.Write(p)
	}
	return b.buf.Write(p)
}

// Flush means the handler streams: stop holding the response back.
func (b *bufferingWriter) Flush() {
	if !b.passthrough {
		if !b.wroteHeader {
			b.WriteHeader(http.StatusOK)
		}
		b.startPassthrough()
	}
	_ = http.NewResponseController(b.ResponseWriter).Flush()
}

func (b *bufferingWriter) startPassthrough() {
	if b.passthrough {
		return
	}
	b.passthrough = true
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	b.ResponseWriter.WriteHeader(status)
	if b.buf.Len() > 0 {
		_, _ = b.ResponseWriter.Write(b.buf.Bytes())
		b.buf.Reset()
	}
}

func (b *bufferingWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// writeOut sends the held response, or 304 when it is a 200 the client
// already has.
func (b *bufferingWriter) writeOut(r *http.Request) {
	h := b.Header()
	if b.status == http.StatusOK {
		if tag, ok := NoneMatch(r.Header.Get("If-None-Match"), h.Get("Etag")); ok {
			notModified(b.ResponseWriter, tag)
			return
		}
		h.Set("Content-Length", strconv.Itoa(b.buf.Len()))
	}
	b.ResponseWriter.WriteHeader(b.status)
	_, _ = b.ResponseWriter.Write(b.buf.Bytes())
}

// conditional wraps w so that a 200 whose ETag matches the request's
// If-None-Match becomes a 304 without a body. It is for responses that are
// not buffered (authenticated ones).
func conditional(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return w
	}
	return &conditionalWriter{ResponseWriter: w, inm: inm}
}

type conditionalWriter struct {
	http.ResponseWriter
	inm         string
	wroteHeader bool
	suppressed  bool
}

func (c *conditionalWriter) WriteHeader(code int) {
	if c.wroteHeader {
		return
	}
	c.wroteHeader = true
	if code == http.StatusOK {
		if tag, ok := NoneMatch(c.inm, c.Header().Get("Etag")); ok {
			c.suppressed = true
			notModified(c.ResponseWriter, tag)
			return
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *conditionalWriter) Write(p []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	if c.suppressed {
		return len(p), nil
	}
	return c.ResponseWriter.Write(p)
}

func (c *conditionalWriter) Flush() {
	if !c.suppressed {
		_ = http.NewResponseController(c.ResponseWriter).Flush()
	}
}

func (c *conditionalWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
