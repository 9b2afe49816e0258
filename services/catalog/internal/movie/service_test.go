package movie_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func newService(t *testing.T) (*movie.Service, *mongostore.Store) {
	t.Helper()
	c := testenv.Mongo(t)
	if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	s := mongostore.New(c)
	svc, err := movie.NewService(s, movie.NewTokens([]byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	return svc, s
}

// TestUpdatesWithoutETagAreNotLost: concurrent unconditional updates of
// different fields all land.
func TestUpdatesWithoutETagAreNotLost(t *testing.T) {
	svc, _ := newService(t)
	r, err := svc.CreateMovie(t.Context(), &movie.Movie{Title: "Base"}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := r.Movie.ID
	updates := []struct {
		path string
		m    *movie.Movie
	}{
		{"year", &movie.Movie{ID: id, Year: ptr[int32](1999)}},
		{"imdb_score", &movie.Movie{ID: id, IMDbScore: ptr(7.0)}},
		{"popularity", &movie.Movie{ID: id, Popularity: ptr(50.0)}},
		{"votes", &movie.Movie{ID: id, Votes: ptr[int64](10)}},
		{"cast", &movie.Movie{ID: id, Cast: []string{"A"}}},
		{"genres", &movie.Movie{ID: id, Genres: []string{"Drama"}}},
	}
	var wg sync.WaitGroup
	for _, u := range updates {
		wg.Go(func() {
			if _, err := svc.UpdateMovie(t.Context(), u.m, []string{u.path}, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	m, err := svc.GetMovie(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Revision != int64(len(updates))+1 || m.Year == nil || m.IMDbScore == nil || m.Popularity == nil || m.Votes == nil ||
		len(m.Cast) != 1 || len(m.Genres) != 1 {
		t.Fatalf("lost an update: %+v", m)
	}
}

func TestReplayOfDeletedCreate(t *testing.T) {
	svc, _ := newService(t)
	r, err := svc.CreateMovie(t.Context(), &movie.Movie{Title: "Gone"}, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteMovie(t.Context(), r.Movie.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateMovie(t.Context(), &movie.Movie{Title: "Gone"}, "req-1"); !errors.Is(err, movie.ErrAlreadyExists) {
		t.Fatalf("replay of a deleted create: %v", err)
	}
}

// TestFailedBatchWritesNothing: a batch whose last item replays the request
// id of a deleted movie fails as a whole; the items inserted before the
// failure are undone (invisible to reads and lists, reported as deleted by
// the feed's documents), and a retry without the bad item creates them.
func TestFailedBatchWritesNothing(t *testing.T) {
	svc, store := newService(t)
	ctx := t.Context()
	r, err := svc.CreateMovie(ctx, &movie.Movie{Title: "Gone"}, "req-gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteMovie(ctx, r.Movie.ID, ""); err != nil {
		t.Fatal(err)
	}
	good := []movie.CreateRequest{
		{Movie: &movie.Movie{Title: "One"}, RequestID: "req-one"},
		{Movie: &movie.Movie{Title: "Two", Directors: []movie.DirectorRef{{Name: "New Person"}}}, RequestID: "req-two"},
	}
	bad := append(clone(good), movie.CreateRequest{Movie: &movie.Movie{Title: "Gone"}, RequestID: "req-gone"})
	if _, err := svc.BatchCreateMovies(ctx, bad, ""); !errors.Is(err, movie.ErrAlreadyExists) {
		t.Fatalf("batch with a deleted replay: %v, want ErrAlreadyExists", err)
	}
	for _, rid := range []string{"req-one", "req-two"} {
		id := movie.MovieIDForRequest(rid)
		if _, err := svc.GetMovie(ctx, id); !errors.Is(err, movie.ErrNotFound) {
			t.Fatalf("%s after the failed batch: %v, want not found", rid, err)
		}
		doc, err := store.GetMovie(ctx, id)
		if err != nil || !doc.Deleted() || !doc.Voided {
			t.Fatalf("%s: stored %+v %v, want a voided tombstone", rid, doc, err)
		}
	}
	page, _, err := svc.ListMovies(ctx, "", "", 100, "")
	if err != nil || len(page) != 0 {
		t.Fatalf("list after the failed batch: %d movies, %v", len(page), err)
	}

	// The client drops the bad item and retries with the same request ids.
	res, err := svc.BatchCreateMovies(ctx, clone(good), "")
	if err != nil {
		t.Fatal(err)
	}
	for k, cr := range res {
		if cr.Replayed || cr.Movie.ID != movie.MovieIDForRequest(good[k].RequestID) || cr.Movie.Revision != 3 {
			t.Fatalf("retry item %d: %+v", k, cr.Movie)
		}
		got, err := svc.GetMovie(ctx, cr.Movie.ID)
		if err != nil || got.Title != good[k].Movie.Title {
			t.Fatalf("retry item %d reads back %+v %v", k, got, err)
		}
	}
	// And a second retry is a plain replay.
	again, err := svc.BatchCreateMovies(ctx, clone(good), "")
	if err != nil || !again[0].Replayed || !again[1].Replayed {
		t.Fatalf("second retry: %+v %v", again, err)
	}
}

func clone(reqs []movie.CreateRequest) []movie.CreateRequest {
	out := make([]movie.CreateRequest, len(reqs))
	for i, r := range reqs {
		out[i] = movie.CreateRequest{Movie: r.Movie.Clone(), RequestID: r.RequestID}
	}
	return out
}

// TestContendedUpdatesWithoutETag: many writers updating one movie at once
// without an etag all succeed; none is answered with a conflict.
func TestContendedUpdatesWithoutETag(t *testing.T) {
	_, store := newService(t)
	// The retries are bounded by the write timeout; a generous one keeps a
	// loaded machine from exhausting it. The old code failed by attempts
	// (eight, immediate), not by time.
	svc, err := movie.NewService(store, movie.NewTokens([]byte("k")), movie.WithWriteTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.CreateMovie(t.Context(), &movie.Movie{Title: "Hot"}, "")
	if err != nil {
		t.Fatal(err)
	}
	const writers = 24
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			m := &movie.Movie{ID: r.Movie.ID, Popularity: ptr(float64(i))}
			if _, err := svc.UpdateMovie(t.Context(), m, []string{"popularity"}, ""); err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	m, err := svc.GetMovie(t.Context(), r.Movie.ID)
	if err != nil || m.Revision != writers+1 {
		t.Fatalf("after %d writers: revision %d, %v", writers, m.Revision, err)
	}
}

// TestResumePendingRename: a rename interrupted after marking the director
// (no movie rewritten yet) finishes on the next start, and running it again
// changes nothing.
func TestResumePendingRename(t *testing.T) {
	svc, store := newService(t)
	ctx := t.Context()
	var ids []string
	for i := range 3 {
		r, err := svc.CreateMovie(ctx, &movie.Movie{Title: fmt.Sprint("F", i), Directors: []movie.DirectorRef{{Name: "Ann Lee"}}}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Movie.ID)
	}
	d, err := store.GetDirector(ctx, movie.DirectorIDForName("Ann Lee"))
	if err != nil {
		t.Fatal(err)
	}
	// The state a crash right after marking leaves behind.
	crashed := *d
	crashed.Name, crashed.Revision = "Ann Lee-Smith", d.Revision+1
	crashed.PendingRename = &movie.PendingRename{Name: "Ann Lee-Smith", Started: d.UpdateTime}
	if err := store.ReplaceDirector(ctx, &crashed, d.Revision); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := svc.ResumePendingRenames(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := svc.BatchGetMovies(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Directors[0].Name != "Ann Lee-Smith" || m.Revision != 2 {
			t.Fatalf("not renamed exactly once: %+v", m)
		}
	}
	after, err := svc.GetDirector(ctx, d.ID)
	if err != nil || after.PendingRename != nil || after.MovieCount != 3 {
		t.Fatalf("director after resume: %+v %v", after, err)
	}
	pending, err := store.PendingRenames(ctx)
	if err != nil || len(pending) != 0 {
		t.Fatalf("still pending: %v %v", pending, err)
	}
}

func TestListDirectorsPaging(t *testing.T) {
	svc, _ := newService(t)
	ctx := t.Context()
	names := []string{"Zoe Adams", "adam brown", "Carla Adamson", "Dan Smith", "Eve Adair"}
	var refs []movie.DirectorRef
	for _, n := range names {
		refs = append(refs, movie.DirectorRef{Name: n})
	}
	if _, err := svc.CreateMovie(ctx, &movie.Movie{Title: "Ensemble", Directors: refs}, ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	tok := ""
	for {
		ds, next, err := svc.ListDirectors(ctx, `name:"ADAM"`, 2, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			got = append(got, d.Name)
		}
		if tok = next; tok == "" {
			break
		}
	}
	if fmt.Sprint(got) != "[adam brown Carla Adamson Zoe Adams]" {
		t.Fatalf("got %v", got)
	}
	ds, _, err := svc.ListDirectors(ctx, `name = "dan  SMITH"`, 0, "")
	if err != nil || len(ds) != 1 || ds[0].Name != "Dan Smith" || ds[0].MovieCount != 1 {
		t.Fatalf("exact: %v %v", ds, err)
	}
	if _, _, err := svc.ListDirectors(ctx, `name:"x"`, 0, tok+"garbage"); !errors.Is(err, movie.ErrInvalidPageToken) {
		t.Fatalf("bad token: %v", err)
	}
}

// TestBatchCreateMixesReplaysAndNewMovies: in one batch, items whose request
// ids created movies before are answered with the stored movies and only the
// others are written; the directors are not duplicated.
func TestBatchCreateMixesReplaysAndNewMovies(t *testing.T) {
	svc, s := newService(t)
	ctx := t.Context()
	first, err := svc.BatchCreateMovies(ctx, []movie.CreateRequest{
		{Movie: &movie.Movie{Title: "One", Directors: []movie.DirectorRef{{Name: "Jane Roe"}}}, RequestID: "r1"},
		{Movie: &movie.Movie{Title: "Two", Directors: []movie.DirectorRef{{Name: "jane  roe"}}}, RequestID: "r2"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := svc.BatchCreateMovies(ctx, []movie.CreateRequest{
		{Movie: &movie.Movie{Title: "Two, retried with edits", Directors: []movie.DirectorRef{{Name: "Other"}}}, RequestID: "r2"},
		{Movie: &movie.Movie{Title: "Three", Directors: []movie.DirectorRef{{Name: "JANE ROE"}}}, RequestID: "r3"},
		{Movie: &movie.Movie{Title: "One", Directors: []movie.DirectorRef{{Name: "Jane Roe"}}}, RequestID: "r1"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Replayed || rs[0].Movie.Title != "Two" || rs[0].Movie.ID != first[1].Movie.ID ||
		rs[1].Replayed || rs[1].Movie.Title != "Three" ||
		!rs[2].Replayed || rs[2].Movie.ID != first[0].Movie.ID {
		t.Fatalf("results %+v %+v %+v", rs[0], rs[1], rs[2])
	}
	jane := first[0].Movie.Directors[0]
	if rs[1].Movie.Directors[0] != jane || first[1].Movie.Directors[0] != jane {
		t.Fatalf("directors %v %v, want %v", rs[1].Movie.Directors, first[1].Movie.Directors, jane)
	}
	// A retry answers with the stored movie, whatever the retry carried.
	if rs[0].Movie.Directors[0] != jane {
		t.Fatalf("replayed movie directors %v", rs[0].Movie.Directors)
	}
	got, err := s.GetMovies(ctx, []string{movie.MovieIDForRequest("r3")})
	if err != nil || got[movie.MovieIDForRequest("r3")] == nil {
		t.Fatalf("r3 not stored: %v %v", got, err)
	}
}

// lostReply commits the insert and then reports a failure, as a dropped
// connection or a write-concern timeout does after the server applied it.
type lostReply struct{ movie.Store }

func (l lostReply) InsertMovies(ctx context.Context, ms []*movie.Movie) ([]error, error) {
	if _, err := l.Store.InsertMovies(ctx, ms); err != nil {
		return nil, err
	}
	return nil, errors.New("connection reset after the insert")
}

// TestInsertWithUnknownOutcomeIsUndone: when the insert fails as a whole,
// the documents it did commit are voided, so the failed call leaves no
// visible movie and a retry creates them.
func TestInsertWithUnknownOutcomeIsUndone(t *testing.T) {
	c := testenv.Mongo(t)
	if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	store := mongostore.New(c)
	failing, err := movie.NewService(lostReply{store}, movie.NewTokens([]byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	reqs := []movie.CreateRequest{
		{Movie: &movie.Movie{Title: "One"}, RequestID: "u-1"},
		{Movie: &movie.Movie{Title: "Two"}, RequestID: "u-2"},
	}
	if _, err := failing.BatchCreateMovies(t.Context(), clone(reqs), ""); err == nil {
		t.Fatal("the failed insert was reported as a success")
	}
	for _, r := range reqs {
		doc, err := store.GetMovie(t.Context(), movie.MovieIDForRequest(r.RequestID))
		if err != nil || !doc.Voided {
			t.Fatalf("%s after a failed insert: %+v %v, want a voided tombstone", r.RequestID, doc, err)
		}
	}
	svc, err := movie.NewService(store, movie.NewTokens([]byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.BatchCreateMovies(t.Context(), clone(reqs), "")
	if err != nil || res[0].Replayed || res[1].Movie.Title != "Two" {
		t.Fatalf("retry: %+v %v", res, err)
	}
}
