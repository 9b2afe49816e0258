package movie_test

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func genreMap(t *testing.T, svc *movie.Service) map[string]int64 {
	t.Helper()
	gs, err := svc.ListGenres(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, g := range gs {
		out[g.Name] = g.Count
	}
	return out
}

// TestGenreCountsFollowWrites: the maintained counts match the live movies
// after creates, a failed batch, genre updates and deletes; a recount
// repairs drift; and bootstrap seeds counts for a catalogue without them.
func TestGenreCountsFollowWrites(t *testing.T) {
	c := testenv.Mongo(t)
	if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	store := mongostore.New(c)
	svc, err := movie.NewService(store, movie.NewTokens([]byte("k")), movie.WithGenresTTL(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	want := func(w map[string]int64, when string) {
		t.Helper()
		if got := genreMap(t, svc); !maps.Equal(got, w) {
			t.Fatalf("%s: genres %v, want %v", when, got, w)
		}
	}
	want(map[string]int64{}, "empty")

	res, err := svc.BatchCreateMovies(ctx, []movie.CreateRequest{
		{Movie: &movie.Movie{Title: "A", Genres: []string{"drama", "Comedy"}}, RequestID: "a"},
		{Movie: &movie.Movie{Title: "B", Genres: []string{"Drama"}}, RequestID: "b"},
		{Movie: &movie.Movie{Title: "C"}, RequestID: "c"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Drama": 2, "Comedy": 1}, "after creates")

	// More genres than one bulk write of counts holds, from concurrent
	// batches.
	many := []string{"Action", "Adventure", "Animation", "Biography", "Crime", "Documentary", "Family", "Fantasy",
		"History", "Music", "Musical", "Mystery", "Romance", "Sport", "Thriller", "War", "Noir", "Sci-Fi", "Short", "Talk-Show"}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var reqs []movie.CreateRequest
			for i, g := range many {
				reqs = append(reqs, movie.CreateRequest{Movie: &movie.Movie{Title: g, Genres: []string{g, many[(i+w+1)%len(many)]}},
					RequestID: fmt.Sprint("many/", w, "/", i)})
			}
			if _, err := svc.BatchCreateMovies(ctx, reqs, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	manyWant := map[string]int64{"Drama": 2, "Comedy": 1}
	for _, g := range many {
		manyWant[g] = 8
	}
	want(manyWant, "after concurrent batches with many genres")
	for w := range 4 {
		for i := range many {
			if err := svc.DeleteMovie(ctx, movie.MovieIDForRequest(fmt.Sprint("many/", w, "/", i)), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	want(map[string]int64{"Drama": 2, "Comedy": 1}, "after deleting them")

	// A replay counts nothing; a failed batch counts nothing.
	if _, err := svc.CreateMovie(ctx, &movie.Movie{Title: "B", Genres: []string{"Drama"}}, "b"); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteMovie(ctx, res[2].Movie.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, err = svc.BatchCreateMovies(ctx, []movie.CreateRequest{
		{Movie: &movie.Movie{Title: "D", Genres: []string{"Horror"}}, RequestID: "d"},
		{Movie: &movie.Movie{Title: "C"}, RequestID: "c"},
	}, "")
	if !errors.Is(err, movie.ErrAlreadyExists) {
		t.Fatalf("batch replaying a deleted create: %v", err)
	}
	want(map[string]int64{"Drama": 2, "Comedy": 1}, "after a replay and a failed batch")

	if _, err := svc.UpdateMovie(ctx, &movie.Movie{ID: res[0].Movie.ID, Genres: []string{"Comedy", "Western"}}, []string{"genres"}, ""); err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Drama": 1, "Comedy": 1, "Western": 1}, "after a genre update")
	if err := svc.DeleteMovie(ctx, res[1].Movie.ID, ""); err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Comedy": 1, "Western": 1}, "after a delete")

	// Drift (a crash between the movie write and the count write) is
	// repaired by a recount.
	if err := store.AddGenreCounts(ctx, map[string]int64{"Comedy": 5, "Noir": 2}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RecountGenres(ctx); err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Comedy": 1, "Western": 1}, "after a recount")

	// A recount is due only once the last one is older than the interval.
	if err := store.AddGenreCounts(ctx, map[string]int64{"Noir": 1}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RecountGenresIfDue(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Comedy": 1, "Western": 1, "Noir": 1}, "a recount not yet due")
	if err := svc.RecountGenresIfDue(ctx, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Comedy": 1, "Western": 1}, "a recount due")

	// A catalogue never counted (one that predates the counts) gets them
	// from bootstrap, even when writes have already added to them.
	for _, coll := range []string{mongostore.GenreCountsCollection, mongostore.MetaCollection} {
		if _, err := c.DB.Collection(coll).DeleteMany(ctx, map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.AddGenreCounts(ctx, map[string]int64{"Western": 1}); err != nil {
		t.Fatal(err)
	}
	if err := bootstrap.Run(ctx, c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	want(map[string]int64{"Comedy": 1, "Western": 1}, "after bootstrap")
}
