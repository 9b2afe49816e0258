package mongostore_test

import (
	"errors"
	"fmt"
	"slices"
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
		t.Fatalf("bootstrap: %v", err)
	}
	return mongostore.New(c)
}

func ptr[T any](v T) *T { return &v }

func mk(id string, score *float64, ts time.Time) *movie.Movie {
	return &movie.Movie{ID: id, Title: "T " + id, IMDbScore: score, Revision: 1, CreateTime: ts, UpdateTime: ts,
		Genres: []string{"Drama"}, Directors: []movie.DirectorRef{{ID: "d_X", Name: "X"}}}
}

func TestInsertGetReplace(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := mk("m_1", ptr(7.5), now)
	res, err := s.InsertMovies(ctx, []*movie.Movie{m, mk("m_2", nil, now)})
	if err != nil || res[0] != nil || res[1] != nil {
		t.Fatalf("insert: %v %v", res, err)
	}
	res, err = s.InsertMovies(ctx, []*movie.Movie{mk("m_3", nil, now), mk("m_1", nil, now)})
	if err != nil || res[0] != nil || !errors.Is(res[1], movie.ErrDuplicate) {
		t.Fatalf("insert dup: %v %v", res, err)
	}
	got, err := s.GetMovie(ctx, "m_1")
	if err != nil || got.Title != m.Title || *got.IMDbScore != 7.5 || !got.UpdateTime.Equal(now) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.GetMovie(ctx, "m_9"); !errors.Is(err, movie.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	next := got.Clone()
	next.Revision = 2
	if err := s.ReplaceMovie(ctx, next, 1); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if err := s.ReplaceMovie(ctx, next, 1); !errors.Is(err, movie.ErrConflict) {
		t.Fatalf("stale replace: %v", err)
	}
	next.ID = "m_9"
	if err := s.ReplaceMovie(ctx, next, 1); !errors.Is(err, movie.ErrNotFound) {
		t.Fatalf("replace missing: %v", err)
	}
}

// TestKeysetWithNulls walks every order, both directions, over movies some
// of which lack the sort field, and checks the pages against a sort in
// memory.
func TestKeysetWithNulls(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	base := time.Now().UTC().Truncate(time.Millisecond)
	var all []*movie.Movie
	for i := range 13 {
		var score *float64
		if i%4 != 0 {
			score = ptr(float64(i % 3))
		}
		all = append(all, mk(fmt.Sprintf("m_%02d", i), score, base.Add(time.Duration(i%5)*time.Millisecond)))
	}
	if _, err := s.InsertMovies(ctx, all); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{movie.FieldIMDbScore, movie.FieldUpdateTime, movie.FieldID} {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s desc=%t", field, desc), func(t *testing.T) {
				want := slices.Clone(all)
				slices.SortFunc(want, func(a, b *movie.Movie) int {
					c := movie.CompareSort(movie.SortValue(a, field), movie.SortValue(b, field))
					if c == 0 {
						c = cmpStr(a.ID, b.ID)
					}
					if desc {
						c = -c
					}
					return c
				})
				var got []string
				q := &movie.Query{SortField: field, Desc: desc, Limit: 3}
				for range 20 {
					page, err := s.ListMovies(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range page {
						got = append(got, m.ID)
					}
					if len(page) < q.Limit {
						break
					}
					last := page[len(page)-1]
					q.After = &movie.Cursor{Value: movie.SortValue(last, field), ID: last.ID}
				}
				var wantIDs []string
				for _, m := range want {
					wantIDs = append(wantIDs, m.ID)
				}
				if !slices.Equal(got, wantIDs) {
					t.Fatalf("got  %v\nwant %v", got, wantIDs)
				}
			})
		}
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestChangesAfter(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	base := time.UnixMilli(1_700_000_000_000).UTC()
	var ms []*movie.Movie
	for i := range 5 {
		ms = append(ms, mk(fmt.Sprintf("m_%d", i), nil, base.Add(time.Duration(i/2)*time.Millisecond)))
	}
	if _, err := s.InsertMovies(ctx, ms); err != nil {
		t.Fatal(err)
	}
	got, err := s.ChangesAfter(ctx, feed.Position{T: base.UnixMilli(), ID: "m_0"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if want := []string{"m_1", "m_2", "m_3", "m_4"}; !slices.Equal(ids, want) {
		t.Fatalf("got %v want %v", ids, want)
	}
	got, err = s.ChangesAfter(ctx, feed.Position{T: base.UnixMilli() + 1}, 10)
	if err != nil || len(got) != 1 || got[0].ID != "m_4" {
		t.Fatalf("after all at T: %+v %v", got, err)
	}
}

// TestDirectorsByNamesOrIDs: one read answers both the current carriers of
// names and the directors among ids; inserting reports the ids that existed.
func TestDirectorsByNamesOrIDs(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	d := func(id, name string) *movie.Director {
		return &movie.Director{ID: id, Name: name, Revision: 1, CreateTime: now, UpdateTime: now}
	}
	existed, err := s.InsertDirectors(ctx, []*movie.Director{d("d_B", "Ann Lee"), d("d_A", "Ann  Lee"), d("d_C", "Bo")})
	if err != nil || len(existed) != 0 {
		t.Fatalf("insert: %v %v", existed, err)
	}
	existed, err = s.InsertDirectors(ctx, []*movie.Director{d("d_D", "Cy"), d("d_C", "Bo Again")})
	if err != nil || fmt.Sprint(existed) != "[d_C]" {
		t.Fatalf("insert with an existing id: %v %v", existed, err)
	}
	byName, byID, err := s.FindDirectorsByNamesOrIDs(ctx, []string{"ann lee", "nobody"}, []string{"d_C", "d_Z"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byName) != 1 || byName["ann lee"].ID != "d_A" {
		t.Fatalf("by name: %v", byName)
	}
	if len(byID) != 1 || byID["d_C"].Name != "Bo" {
		t.Fatalf("by id: %v", byID)
	}
}
