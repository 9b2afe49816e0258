package grpcapi_test

import (
	"fmt"
	"testing"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
)

// seedBench creates n movies in batches and returns their ids.
func seedBench(b *testing.B, e *env, n int) []string {
	b.Helper()
	var ids []string
	for len(ids) < n {
		var reqs []*catalogv1.CreateMovieRequest
		for i := len(ids); i < n && len(reqs) < 100; i++ {
			reqs = append(reqs, &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{
				Title: fmt.Sprint("Bench ", i), Year: ptr(int32(1950 + i%70)), ImdbScore: ptr(float64(i%100) / 10),
				Genres: []string{"Drama", "Comedy"}, Directors: []*catalogv1.DirectorRef{{Name: fmt.Sprint("Director ", i%20)}},
			}})
		}
		resp, err := e.client.BatchCreateMovies(e.admin(), &catalogv1.BatchCreateMoviesRequest{Requests: reqs})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range resp.GetMovies() {
			ids = append(ids, m.GetId())
		}
	}
	return ids
}

// The benchmarks go through the real server over TCP: gRPC, the auth
// interceptor, the cache and (when cold) the engine.

func BenchmarkGetMovieWarm(b *testing.B) {
	e := start(b)
	ids := seedBench(b, e, 100)
	ctx := b.Context()
	for _, id := range ids {
		if _, err := e.client.GetMovie(ctx, &catalogv1.GetMovieRequest{Id: id}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.client.GetMovie(ctx, &catalogv1.GetMovieRequest{Id: ids[i%len(ids)]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkBatchGet100(b *testing.B) {
	e := start(b)
	ids := seedBench(b, e, 100)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e.client.BatchGetMovies(ctx, &catalogv1.BatchGetMoviesRequest{Ids: ids})
		if err != nil || len(resp.GetMovies()) != 100 {
			b.Fatal(err)
		}
	}
}

func BenchmarkListPage(b *testing.B) {
	e := start(b)
	seedBench(b, e, 200)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e.client.ListMovies(ctx, &catalogv1.ListMoviesRequest{Filter: `genres:"Drama"`, OrderBy: "imdbScore desc", PageSize: 20})
		if err != nil || len(resp.GetMovies()) != 20 {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	e := start(b)
	ctx := e.admin()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, err := e.client.CreateMovie(ctx, &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{
			Title: fmt.Sprint("Created ", i), Genres: []string{"Drama"}, Directors: []*catalogv1.DirectorRef{{Name: "Bench Director"}},
		}})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
