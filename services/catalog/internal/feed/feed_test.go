package feed_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func newStore(t *testing.T) *mongostore.Store {
	t.Helper()
	c := testenv.Mongo(t)
	if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	return mongostore.New(c)
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func doc(id string, rev int64, ts time.Time) *movie.Movie {
	return &movie.Movie{ID: id, Title: id, Revision: rev, CreateTime: ts, UpdateTime: ts}
}

func ids(cs []feed.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s@%d", c.ID, c.Revision))
	}
	return out
}

// TestLateCommitIsDelivered simulates writes that become visible after the
// reader has passed their stamp (inserted with an update_time in the past,
// inside the settle window): the reader still gets each exactly once.
func TestLateCommitIsDelivered(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	clk := &clock{now: time.UnixMilli(1_800_000_000_000).UTC()}
	f := feed.New(s, movie.NewTokens([]byte("k")), nil, feed.Config{Settle: 10 * time.Second}, feed.WithClock(clk.Now))
	t0 := clk.Now()
	if _, err := s.InsertMovies(ctx, []*movie.Movie{doc("m_a", 1, t0.Add(-time.Second)), doc("m_b", 1, t0)}); err != nil {
		t.Fatal(err)
	}
	got, tok, err := f.List(ctx, time.Time{}, "", 100)
	if err != nil || len(got) != 2 {
		t.Fatalf("first read: %v %v", ids(got), err)
	}
	// A write stamped before m_b commits now.
	if _, err := s.InsertMovies(ctx, []*movie.Movie{doc("m_late", 1, t0.Add(-500*time.Millisecond))}); err != nil {
		t.Fatal(err)
	}
	got, tok, err = f.List(ctx, time.Time{}, tok, 100)
	if err != nil || fmt.Sprint(ids(got)) != "[m_late@1]" {
		t.Fatalf("second read: %v %v", ids(got), err)
	}
	// Nothing is repeated, before or after the window settles.
	got, _, err = f.List(ctx, time.Time{}, tok, 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("third read: %v %v", ids(got), err)
	}
	clk.Set(t0.Add(time.Minute))
	got, tok, err = f.List(ctx, time.Time{}, tok, 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("settled read: %v %v", ids(got), err)
	}
	// An update of a delivered movie is delivered again.
	m, _ := s.GetMovie(ctx, "m_a")
	next := m.Clone()
	next.Revision, next.UpdateTime = 2, clk.Now()
	if err := s.ReplaceMovie(ctx, next, 1); err != nil {
		t.Fatal(err)
	}
	got, _, err = f.List(ctx, time.Time{}, tok, 100)
	if err != nil || fmt.Sprint(ids(got)) != "[m_a@2]" {
		t.Fatalf("update read: %v %v", ids(got), err)
	}
}

func TestPagingAndExpiry(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	clk := &clock{now: time.UnixMilli(1_800_000_000_000).UTC()}
	f := feed.New(s, movie.NewTokens([]byte("k")), nil, feed.Config{Settle: time.Second, Retention: time.Hour}, feed.WithClock(clk.Now))
	base := clk.Now().Add(-time.Minute)
	var ms []*movie.Movie
	for i := range 7 {
		ms = append(ms, doc(fmt.Sprintf("m_%d", i), 1, base.Add(time.Duration(i/3)*time.Millisecond)))
	}
	if _, err := s.InsertMovies(ctx, ms); err != nil {
		t.Fatal(err)
	}
	var all []string
	tok := ""
	for range 5 {
		got, next, err := f.List(ctx, time.Time{}, tok, 3)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(got)...)
		tok = next
	}
	if fmt.Sprint(all) != "[m_0@1 m_1@1 m_2@1 m_3@1 m_4@1 m_5@1 m_6@1]" {
		t.Fatalf("pages: %v", all)
	}
	got, _, err := f.List(ctx, base.Add(time.Millisecond), "", 100)
	if err != nil || fmt.Sprint(ids(got)) != "[m_3@1 m_4@1 m_5@1 m_6@1]" {
		t.Fatalf("since: %v %v", ids(got), err)
	}
	// An idle reader that keeps polling stays fresh...
	for range 3 {
		clk.Set(clk.Now().Add(40 * time.Minute))
		if _, tok, err = f.List(ctx, time.Time{}, tok, 100); err != nil {
			t.Fatalf("idle poll: %v", err)
		}
	}
	// ...one that comes back after the retention must resynchronise.
	clk.Set(clk.Now().Add(2 * time.Hour))
	if _, _, err := f.List(ctx, time.Time{}, tok, 100); !errors.Is(err, feed.ErrPositionExpired) {
		t.Fatalf("expired token: %v", err)
	}
	if _, _, err := f.List(ctx, base, "", 100); !errors.Is(err, feed.ErrPositionExpired) {
		t.Fatalf("expired since: %v", err)
	}
	var inv *movie.InvalidError
	if _, _, err := f.List(ctx, time.Time{}, "bogus", 100); !errors.As(err, &inv) || inv.Reason != movie.ReasonInvalidPageToken {
		t.Fatalf("bad token: %v", err)
	}
}

func TestPurge(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	clk := &clock{now: time.UnixMilli(1_800_000_000_000).UTC()}
	f := feed.New(s, movie.NewTokens([]byte("k")), nil, feed.Config{Retention: time.Hour}, feed.WithClock(clk.Now))
	old := clk.Now().Add(-2 * time.Hour)
	recent := clk.Now().Add(-time.Minute)
	a, b, c := doc("m_a", 2, old), doc("m_b", 2, recent), doc("m_c", 1, old)
	a.DeleteTime, b.DeleteTime = &old, &recent
	if _, err := s.InsertMovies(ctx, []*movie.Movie{a, b, c}); err != nil {
		t.Fatal(err)
	}
	n, err := f.Purge(ctx)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	got, err := s.GetMovies(ctx, []string{"m_a", "m_b", "m_c"})
	if err != nil || len(got) != 2 || got["m_a"] != nil {
		t.Fatalf("after purge: %v %v", got, err)
	}
}

// slowStore delays writes after the service has stamped them, so commits
// land out of stamp order the way slow writes do in production.
type slowStore struct {
	movie.Store
	maxDelay time.Duration
}

func (s slowStore) delay(ctx context.Context) {
	// Deliberate latency injection (not synchronisation): a timer, not a
	// sleep, so a cancelled test stops at once.
	t := time.NewTimer(rand.N(s.maxDelay))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s slowStore) InsertMovies(ctx context.Context, ms []*movie.Movie) ([]error, error) {
	s.delay(ctx)
	return s.Store.InsertMovies(ctx, ms)
}

func (s slowStore) ReplaceMovie(ctx context.Context, m *movie.Movie, prev int64) error {
	s.delay(ctx)
	return s.Store.ReplaceMovie(ctx, m, prev)
}

// TestConcurrentWritersTailingReaderConverge runs writers that create,
// update and delete movies with commits delayed after their stamps, and a
// reader tailing the feed the whole time. The reader's final view (id ->
// revision, deleted) must equal the catalogue's exact state: nothing
// skipped, and no stale revision left behind.
func TestConcurrentWritersTailingReaderConverge(t *testing.T) {
	raw := newStore(t)
	ctx := t.Context()
	const settle = 6 * time.Second
	tokens := movie.NewTokens([]byte("k"))
	wake := feed.NewNotifier()
	svc, err := movie.NewService(slowStore{Store: raw, maxDelay: 200 * time.Millisecond}, tokens,
		movie.WithWriteTimeout(settle/2),
		movie.WithObserver(func(context.Context, movie.Written) { wake.Notify() }))
	if err != nil {
		t.Fatal(err)
	}
	f := feed.New(raw, tokens, wake, feed.Config{Settle: settle, PollInterval: 20 * time.Millisecond, MaxTail: 16})

	type state struct {
		rev     int64
		deleted bool
	}
	var mu sync.Mutex
	view := map[string]state{}
	readerCtx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	var readerErr error
	readerDone := make(chan struct{})
	var batches atomic.Int64
	go func() {
		defer close(readerDone)
		readerErr = f.Tail(readerCtx, "", func(cs []feed.Change, _ string) error {
			batches.Add(1)
			mu.Lock()
			defer mu.Unlock()
			for _, c := range cs {
				if cur, ok := view[c.ID]; ok && cur.rev > c.Revision {
					return fmt.Errorf("revision of %s went back from %d to %d", c.ID, cur.rev, c.Revision)
				}
				view[c.ID] = state{c.Revision, c.Deleted}
			}
			return nil
		})
	}()

	const writers, opsPerWriter = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var mine []string
			for i := range opsPerWriter {
				switch {
				case len(mine) == 0 || i%3 == 0:
					r, err := svc.CreateMovie(ctx, &movie.Movie{Title: fmt.Sprintf("w%d-%d", w, i)}, "")
					if err != nil {
						t.Error(err)
						return
					}
					mine = append(mine, r.Movie.ID)
				case i%5 == 0:
					id := mine[len(mine)-1]
					mine = mine[:len(mine)-1]
					if err := svc.DeleteMovie(ctx, id, ""); err != nil {
						t.Error(err)
						return
					}
				default:
					id := mine[rand.N(len(mine))]
					if _, err := svc.UpdateMovie(ctx, &movie.Movie{ID: id, Title: fmt.Sprintf("u%d", i)}, []string{"title"}, ""); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()

	want := map[string]state{}
	err = raw.ScanMovies(ctx, func(*movie.Movie) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	changes, err := raw.ChangesAfter(ctx, feed.Position{T: -1}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		want[c.ID] = state{c.Revision, c.Deleted}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		same := fmt.Sprint(view) == fmt.Sprint(want)
		mu.Unlock()
		if same {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the reader did not converge:\nview %v\nwant %v", view, want)
		}
		select {
		case <-readerDone:
			t.Fatalf("reader stopped: %v", readerErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopReader()
	<-readerDone
	if readerErr != nil && !errors.Is(readerErr, context.Canceled) {
		t.Fatalf("reader: %v", readerErr)
	}
	if len(want) < writers*opsPerWriter/3 {
		t.Fatalf("only %d movies written", len(want))
	}
	t.Logf("%d movies, %d batches", len(want), batches.Load())
}

func TestTailWakesOnNotify(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wake := feed.NewNotifier()
	// A poll interval far beyond the test's deadline: only the wake-up can
	// deliver in time.
	f := feed.New(s, movie.NewTokens([]byte("k")), wake, feed.Config{PollInterval: time.Hour})
	got := make(chan []feed.Change, 4)
	go func() {
		_ = f.Tail(ctx, "", func(cs []feed.Change, _ string) error {
			if len(cs) > 0 {
				got <- cs
			}
			return nil
		})
	}()
	// Keep writing and waking until the tailer reports the first movie; it
	// may start tailing after the first notification.
	deadline := time.After(10 * time.Second)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := s.InsertMovies(ctx, []*movie.Movie{doc("m_w", 1, now)}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		wake.Notify()
		select {
		case cs := <-got:
			if cs[0].ID != "m_w" {
				t.Fatalf("got %v", ids(cs))
			}
			return
		case <-deadline:
			t.Fatal("the tailer did not wake")
		case <-tick.C:
		}
	}
}
