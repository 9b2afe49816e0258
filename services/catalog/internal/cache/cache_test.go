package cache_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/catalog/internal/cache"
	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func newStore(t testing.TB) *mongostore.Store {
	t.Helper()
	c := testenv.Mongo(t)
	if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	return mongostore.New(c)
}

// gate wraps the real store, counts reads, and can hold them until
// released.
type gate struct {
	movie.Reader
	calls, inFlight, maxInFlight atomic.Int64
	hold                         chan struct{} // nil: don't hold
	entered                      chan struct{}
}

func (g *gate) GetMovie(ctx context.Context, id string) (*movie.Movie, error) {
	g.calls.Add(1)
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		m := g.maxInFlight.Load()
		if n <= m || g.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	m, err := g.Reader.GetMovie(ctx, id)
	if g.hold != nil {
		g.entered <- struct{}{}
		<-g.hold
	}
	return m, err
}

func seed(t testing.TB, s *mongostore.Store, id string, rev int64) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := &movie.Movie{ID: id, Title: "Title " + id, Revision: rev, CreateTime: now, UpdateTime: now}
	if rev == 1 {
		if _, err := s.InsertMovies(t.Context(), []*movie.Movie{m}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := s.ReplaceMovie(t.Context(), m, rev-1); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	s := newStore(t)
	seed(t, s, "m_1", 1)
	g := &gate{Reader: s, hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	c, err := cache.New(g, cache.Options{MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const callers = 20
	var started, done sync.WaitGroup
	started.Add(callers)
	for range callers {
		done.Go(func() {
			started.Done()
			if m, err := c.GetMovie(context.Background(), "m_1"); err != nil || m.ID != "m_1" {
				t.Errorf("GetMovie: %v %v", m, err)
			}
		})
	}
	started.Wait()
	<-g.entered // the one database read is in progress
	close(g.hold)
	done.Wait()
	if g.maxInFlight.Load() != 1 {
		t.Fatalf("%d concurrent database reads for one id, want 1", g.maxInFlight.Load())
	}
	before := g.calls.Load()
	if _, err := c.GetMovie(t.Context(), "m_1"); err != nil || g.calls.Load() != before {
		t.Fatalf("warm read went to the database: %v", err)
	}
}

// TestInvalidationBeatsInFlightLoad: a load that read revision 1 and
// finishes after revision 2 was announced must not be cached.
func TestInvalidationBeatsInFlightLoad(t *testing.T) {
	s := newStore(t)
	seed(t, s, "m_1", 1)
	g := &gate{Reader: s, hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	c, err := cache.New(g, cache.Options{MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	loaded := make(chan *movie.Movie)
	go func() {
		m, _ := c.GetMovie(context.Background(), "m_1")
		loaded <- m
	}()
	<-g.entered // read revision 1, not yet returned
	seed(t, s, "m_1", 2)
	c.Invalidate(t.Context(), "m_1", 2)
	close(g.hold)
	if m := <-loaded; m.Revision != 1 {
		t.Fatalf("in-flight load returned revision %d", m.Revision)
	}
	g.hold = nil
	m, err := c.GetMovie(t.Context(), "m_1")
	if err != nil || m.Revision != 2 {
		t.Fatalf("after invalidation got revision %d, %v", m.Revision, err)
	}
}

func TestGetMoviesBatch(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"m_1", "m_2", "m_3"} {
		seed(t, s, id, 1)
	}
	g := &gate{Reader: s}
	c, _ := cache.New(g, cache.Options{MaxEntries: 100})
	defer c.Close()
	if _, err := c.GetMovie(t.Context(), "m_1"); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMovies(t.Context(), []string{"m_1", "m_2", "m_3", "m_404"})
	if err != nil || len(got) != 3 {
		t.Fatalf("GetMovies: %v %v", got, err)
	}
	if _, err := c.GetMovie(t.Context(), "m_404"); err == nil {
		t.Fatal("missing movie found")
	}
}

func TestRedisSharedAcrossReplicas(t *testing.T) {
	addr := testenv.Redis(t)
	s := newStore(t)
	seed(t, s, "m_1", 1)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ga, gb := &gate{Reader: s}, &gate{Reader: s}
	a, _ := cache.New(ga, cache.Options{MaxEntries: 10, Redis: rc})
	b, _ := cache.New(gb, cache.Options{MaxEntries: 10, Redis: rc})
	defer a.Close()
	defer b.Close()
	if _, err := a.GetMovie(t.Context(), "m_1"); err != nil {
		t.Fatal(err)
	}
	if m, err := b.GetMovie(t.Context(), "m_1"); err != nil || m.Title != "Title m_1" || gb.calls.Load() != 0 {
		t.Fatalf("replica b did not read from redis: %v %v calls=%d", m, err, gb.calls.Load())
	}
	// Revision 2 is announced: an older value may no longer be stored.
	a.Invalidate(t.Context(), "m_1", 2)
	raw, err := rc.Get(t.Context(), "marquee:catalog:movie:m_1").Result()
	if err != nil || raw != "2|" {
		t.Fatalf("marker = %q, %v", raw, err)
	}
	c, _ := cache.New(ga, cache.Options{MaxEntries: 10, Redis: rc})
	defer c.Close()
	if m, err := c.GetMovie(t.Context(), "m_1"); err != nil || m.Revision != 1 {
		t.Fatalf("GetMovie: %v %v", m, err)
	}
	if raw, _ := rc.Get(t.Context(), "marquee:catalog:movie:m_1").Result(); raw != "2|" {
		t.Fatalf("a stale revision replaced the marker: %q", raw)
	}
	seed(t, s, "m_1", 2)
	d, _ := cache.New(ga, cache.Options{MaxEntries: 10, Redis: rc})
	defer d.Close()
	if m, err := d.GetMovie(t.Context(), "m_1"); err != nil || m.Revision != 2 {
		t.Fatalf("GetMovie: %v %v", m, err)
	}
	if raw, _ := rc.Get(t.Context(), "marquee:catalog:movie:m_1").Result(); !strings.HasPrefix(raw, "2|{") {
		t.Fatalf("revision 2 not cached: %q", raw)
	}
}

// TestFollowInvalidatesOtherReplicas: a write through one replica's service
// reaches another replica's cache through the change feed alone.
func TestFollowInvalidatesOtherReplicas(t *testing.T) {
	s := newStore(t)
	tokens := movie.NewTokens([]byte("k"))
	writer, err := movie.NewService(s, tokens)
	if err != nil {
		t.Fatal(err)
	}
	r, err := writer.CreateMovie(t.Context(), &movie.Movie{Title: "Before"}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := r.Movie.ID
	other, _ := cache.New(s, cache.Options{MaxEntries: 10})
	defer other.Close()
	if m, err := other.GetMovie(t.Context(), id); err != nil || m.Title != "Before" {
		t.Fatalf("GetMovie: %v %v", m, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := feed.New(s, tokens, nil, feed.Config{PollInterval: 20 * time.Millisecond})
	go other.Follow(ctx, f)
	if _, err := writer.UpdateMovie(t.Context(), &movie.Movie{ID: id, Title: "After"}, []string{"title"}, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := other.GetMovie(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Title == "After" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica's cache was never invalidated")
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
		}
	}
}
