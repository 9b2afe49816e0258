package grpcapi_test

import (
	"fmt"
	"golang.org/x/sync/errgroup"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/app"
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

// benchMovie is the i-th movie of a run: distinct titles, ten directors
// shared across the run, as an import looks.
func benchMovie(run string, i int) *catalogv1.Movie {
	return &catalogv1.Movie{
		Title: fmt.Sprintf("Import %s %d", run, i), Year: ptr(int32(1950 + i%70)), RuntimeMinutes: ptr(int32(90 + i%60)),
		ImdbScore: ptr(float64(i%100) / 10), Votes: ptr(int64(1000 + i)), Popularity: ptr(float64(i%1000) / 10),
		Genres: []string{"Drama", "Comedy"}, Cast: []string{"Actor A", "Actor B"},
		Directors: []*catalogv1.DirectorRef{{Name: fmt.Sprint("Import Director ", i%10)}},
	}
}

// BenchmarkBatchCreateVsInsertMany compares, on the same engine and in the
// same run, the importer's path (BatchCreateMovies of 100 movies through
// the gRPC API over TCP, with request ids as the importer sends them) with
// raw mongo-driver InsertMany of 100 documents of the same shape into a
// collection carrying the same indexes as movies, one call at a time and
// with the importer's default of 4 calls in flight. It reports docs/s for
// both and their ratio; the importer must reach at least 0.7. The change
// feed runs with its deployed settings (the test harness polls every 50ms,
// which on FerretDB re-scans the growing collection 20 times a second).
func BenchmarkBatchCreateVsInsertMany(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprint("workers=", workers), func(b *testing.B) { benchBatchCreateVsInsertMany(b, workers) })
	}
}

func benchBatchCreateVsInsertMany(b *testing.B, workers int) {
	const batch = 100
	e := start(b, func(c *app.Config) { c.Changes = app.DefaultConfig().Changes })
	ctx := b.Context()
	admin := e.admin()
	raw := e.mongo.DB.Collection("raw_movies")
	// Same indexes as movies, so both sides pay the same index upkeep.
	specs, err := e.mongo.DB.Collection("movies").Indexes().ListSpecifications(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range specs {
		if s.Name == "_id_" {
			continue
		}
		var keys bson.D
		if err := bson.Unmarshal(s.KeysDocument, &keys); err != nil {
			b.Fatal(err)
		}
		opts := options.Index().SetName(s.Name)
		if s.Unique != nil && *s.Unique {
			opts.SetUnique(true)
		}
		if _, err := raw.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: opts}); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	rawDocs := func(call int) []any {
		docs := make([]any, batch)
		for i := range docs {
			n := call*batch + i
			m := benchMovie("raw", n)
			dirs := bson.A{}
			for _, d := range m.GetDirectors() {
				dirs = append(dirs, bson.D{{Key: "id", Value: fmt.Sprint("d_raw", n%10)}, {Key: "name", Value: d.GetName()}})
			}
			docs[i] = bson.D{
				{Key: "_id", Value: fmt.Sprintf("m_raw%021d", n)}, {Key: "title", Value: m.GetTitle()},
				{Key: "title_lower", Value: strings.ToLower(m.GetTitle())}, {Key: "year", Value: m.GetYear()},
				{Key: "runtime_minutes", Value: m.GetRuntimeMinutes()}, {Key: "genres", Value: m.GetGenres()},
				{Key: "directors", Value: dirs}, {Key: "cast", Value: m.GetCast()}, {Key: "imdb_score", Value: m.GetImdbScore()},
				{Key: "votes", Value: m.GetVotes()}, {Key: "popularity", Value: m.GetPopularity()}, {Key: "revision", Value: int64(1)},
				{Key: "create_time", Value: now}, {Key: "update_time", Value: now}, {Key: "request_id", Value: fmt.Sprint("raw/", n)},
			}
		}
		return docs
	}
	apiReq := func(call int) *catalogv1.BatchCreateMoviesRequest {
		req := &catalogv1.BatchCreateMoviesRequest{RequestId: fmt.Sprint("bench/", call)}
		for i := range batch {
			n := call*batch + i
			req.Requests = append(req.Requests, &catalogv1.CreateMovieRequest{Movie: benchMovie("api", n), RequestId: fmt.Sprint("bench/", n)})
		}
		return req
	}
	// Each round runs workers calls of one side at once, then of the other,
	// alternating so both see collections of the same size.
	inParallel := func(call int, f func(call int) error) time.Duration {
		var g errgroup.Group
		t0 := time.Now()
		for w := range workers {
			g.Go(func() error { return f(call + w) })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var rawTime, apiTime time.Duration
	call := 0
	for b.Loop() {
		rawTime += inParallel(call, func(c int) error {
			_, err := raw.InsertMany(ctx, rawDocs(c), options.InsertMany().SetOrdered(false))
			return err
		})
		apiTime += inParallel(call, func(c int) error {
			resp, err := e.client.BatchCreateMovies(admin, apiReq(c))
			if err == nil && len(resp.GetMovies()) != batch {
				err = fmt.Errorf("got %d movies, want %d", len(resp.GetMovies()), batch)
			}
			return err
		})
		call += workers
	}
	docs := float64(call * batch)
	rawRate := docs / rawTime.Seconds()
	apiRate := docs / apiTime.Seconds()
	b.ReportMetric(rawRate, "raw-docs/s")
	b.ReportMetric(apiRate, "api-docs/s")
	b.ReportMetric(apiRate/rawRate, "ratio")
}
