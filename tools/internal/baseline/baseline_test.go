package baseline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/platform/ferretdb"
	"github.com/marquee-dev/marquee/tools/internal/baseline"
	"github.com/marquee-dev/marquee/tools/internal/generator"
	"github.com/marquee-dev/marquee/tools/internal/importer/catalogfake"
)

func TestClosedLoopStopsAtMaxOps(t *testing.T) {
	var calls atomic.Int64
	res, err := baseline.ClosedLoop(context.Background(), "ops", baseline.Limits{Concurrency: 4, MaxOps: 100}, func(context.Context, int, int64) (string, int64, error) {
		calls.Add(1)
		if calls.Load()%10 == 0 {
			return "error", 0, errors.New("every tenth fails")
		}
		return "ok", 2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 100 || res.Requests != 100 || res.Errors != 10 || res.Items != 180 || res.Codes["ok"] != 90 {
		t.Errorf("result = %+v after %d calls", res, calls.Load())
	}
	if res.FirstError != "every tenth fails" || res.Throughput <= 0 || res.Concurrency != 4 {
		t.Errorf("result = %+v", res)
	}
	if _, err := baseline.ClosedLoop(context.Background(), "x", baseline.Limits{Concurrency: 1}, nil); err == nil {
		t.Error("a loop without bounds: want an error")
	}
}

func TestClosedLoopStopsAtDuration(t *testing.T) {
	start := time.Now()
	res, err := baseline.ClosedLoop(context.Background(), "d", baseline.Limits{Concurrency: 2, Duration: 200 * time.Millisecond},
		func(ctx context.Context, _ int, _ int64) (string, int64, error) {
			select {
			case <-ctx.Done():
				return "", 0, ctx.Err()
			case <-time.After(time.Millisecond):
				return "ok", 1, nil
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second || res.Requests == 0 || res.Errors != 0 {
		t.Errorf("after %s: %+v (an operation cut off by the end must not count as an error)", el, res)
	}
	if res.P50Ms < 0.9 || res.MaxMs < res.P99Ms {
		t.Errorf("latencies = p50 %.3f p99 %.3f max %.3f, want about 1 ms", res.P50Ms, res.P99Ms, res.MaxMs)
	}
}

func TestBareHandlerWritesTheCapturedBytes(t *testing.T) {
	hdr := http.Header{"Content-Type": {"application/json"}, "Etag": {`"7"`}, "X-Other": {"dropped"}}
	resp := baseline.BareResponse{Body: []byte(`{"id":"m_1","title":"Casablanca"}`), Header: baseline.CaptureHeaders(hdr)}
	if resp.Header.Get("X-Other") != "" || resp.Header.Get("ETag") != `"7"` {
		t.Fatalf("captured headers = %v", resp.Header)
	}
	srv := httptest.NewServer(baseline.BareHandler(resp))
	defer srv.Close()
	got, err := http.Get(srv.URL + "/v1/movies/m_1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	_ = got.Body.Close()
	if got.StatusCode != http.StatusOK || string(body) != string(resp.Body) || got.Header.Get("Etag") != `"7"` || got.ContentLength != int64(len(resp.Body)) {
		t.Errorf("GET = %s %v %q", got.Status, got.Header, body)
	}
	post, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %s", post.Status)
	}
}

func TestServeBareStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- baseline.ServeBare(ctx, "127.0.0.1:0", baseline.BareResponse{Body: []byte("ok")}, func(a net.Addr) { addrc <- a })
	}()
	addr := <-addrc
	resp, err := http.Get("http://" + addr.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("ServeBare = %v", err)
	}
}

// The direct-gRPC loads run against catalogfake (the importer's in-memory
// CatalogService over real gRPC): creates report documents, gets find them.
func TestCatalogLoads(t *testing.T) {
	fake := catalogfake.New()
	fake.Token = "admin-token"
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := baseline.DialCatalog(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()

	res, ids, err := baseline.CatalogBatchCreate(ctx, conn, "admin-token", 3, func(b int) *catalogv1.BatchCreateMoviesRequest {
		req := &catalogv1.BatchCreateMoviesRequest{RequestId: fmt.Sprintf("batch-%d", b)}
		for j := range 5 {
			req.Requests = append(req.Requests, &catalogv1.CreateMovieRequest{
				RequestId: fmt.Sprintf("batch-%d-%d", b, j),
				Movie:     &catalogv1.Movie{Title: fmt.Sprintf("Movie %d-%d", b, j)},
			})
		}
		return req
	}, baseline.Limits{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 15 || res.Items != 15 || res.Requests != 3 || res.Errors != 0 || res.ItemsPerSecond <= 0 {
		t.Fatalf("batch create: %d ids, %+v", len(ids), res)
	}

	var i atomic.Int64
	next := func() string { return ids[int(i.Add(1))%len(ids)] }
	get, err := baseline.CatalogGetMovie(ctx, conn, next, "admin-token", baseline.Limits{Concurrency: 2, MaxOps: 50})
	if err != nil {
		t.Fatal(err)
	}
	if get.Requests != 50 || get.Errors != 0 || get.Codes["OK"] != 50 {
		t.Errorf("get: %+v", get)
	}
	missing, _ := baseline.CatalogGetMovie(ctx, conn, func() string { return "m_missing" }, "admin-token", baseline.Limits{Concurrency: 1, MaxOps: 3})
	if missing.Errors != 3 || missing.Codes["NotFound"] != 3 {
		t.Errorf("get of a missing movie: %+v", missing)
	}
}

// The raw-driver loads and the engine curve, against a real embedded
// engine, at sizes small enough for a test.
func TestMongoBaselinesAndEngineCurve(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	srv, err := ferretdb.Start(ctx, dir, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting the engine: %v", err)
	}
	defer func() { cancel(); srv.Wait() }()
	client, err := baseline.ConnectMongo(ctx, srv.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()

	profile, err := generator.DefaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := generator.New(profile, generator.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	coll := client.Database("baseline_test").Collection("movies")
	now := time.Now().UTC()
	ins, err := baseline.InsertMany(ctx, coll, 3, 20, func(i int) any {
		return baseline.MovieDoc(fmt.Sprintf("m_%03d", i), gen.Movie(uint64(i)), now)
	}, baseline.Limits{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Items != 60 || ins.Errors != 0 {
		t.Fatalf("insert: %+v", ins)
	}
	var doc struct {
		Title      string   `bson:"title"`
		TitleLower string   `bson:"title_lower"`
		Genres     []string `bson:"genres"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "m_007"}}).Decode(&doc); err != nil || doc.Title == "" || len(doc.Genres) == 0 {
		t.Fatalf("stored document = %+v, %v", doc, err)
	}

	var i atomic.Int64
	find, err := baseline.FindOneByID(ctx, coll, func() string { return fmt.Sprintf("m_%03d", i.Add(1)%60) }, baseline.Limits{Concurrency: 2, MaxOps: 40})
	if err != nil || find.Requests != 40 || find.Errors != 0 {
		t.Fatalf("find: %+v, %v", find, err)
	}
	page, err := baseline.SortedPage(ctx, coll, gen.Genres()[:2], baseline.Limits{Concurrency: 1, MaxOps: 4})
	if err != nil || page.Requests != 4 || page.Errors != 0 || page.Items == 0 {
		t.Fatalf("sorted page: %+v, %v", page, err)
	}

	curve, err := baseline.EngineCurve(ctx, client, baseline.CurveOptions{
		Sizes:   []int{50, 200},
		FindOne: baseline.Limits{Concurrency: 1, MaxOps: 20},
		Sorted:  baseline.Limits{Concurrency: 1, MaxOps: 3},
		DataDir: dir,
		Seed:    5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(curve.Points) != 2 || curve.Points[1].Movies != 200 || curve.Points[1].FindOne.Requests != 20 || curve.Points[1].DiskBytes <= 0 {
		t.Fatalf("curve = %+v", curve)
	}
	if curve.FindOneGrowth == "" || curve.SortedGrowth == "" {
		t.Errorf("curve growth not named: %+v", curve)
	}
	names, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "bench_engine" {
			t.Error("the curve's scratch database was left behind")
		}
	}
	if _, err := baseline.EngineCurve(ctx, client, baseline.CurveOptions{Sizes: []int{10, 5}, FindOne: baseline.Limits{Concurrency: 1, MaxOps: 1}, Sorted: baseline.Limits{Concurrency: 1, MaxOps: 1}}); err == nil {
		t.Error("descending sizes: want an error")
	}
}

func TestGrowth(t *testing.T) {
	for _, tc := range []struct {
		n1, n2 int
		v1, v2 float64
		want   string
	}{
		{1000, 30000, 5, 5.2, "constant"},
		{1000, 30000, 5, 150, "linear"},
		{1000, 30000, 5, 20, "sublinear (logarithmic-like)"},
		{1000, 30000, 0, 20, "unknown"},
	} {
		if _, got := baseline.Growth(tc.n1, tc.n2, tc.v1, tc.v2); got != tc.want {
			t.Errorf("Growth(%d, %d, %g, %g) = %s, want %s", tc.n1, tc.n2, tc.v1, tc.v2, got, tc.want)
		}
	}
}

func TestRatio(t *testing.T) {
	r := baseline.NewRatio("x", "x", 60, 100, "a", "b").WithTarget(0.5)
	if r.Value != 0.6 || r.Met == nil || !*r.Met {
		t.Errorf("ratio = %+v", r)
	}
	if r := baseline.NewRatio("x", "x", 1, 0, "a", "b"); r.Value != 0 {
		t.Errorf("ratio over zero = %+v", r)
	}
}
