package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
	"github.com/marquee-dev/marquee/services/search/app"
	"github.com/marquee-dev/marquee/services/search/internal/catalogfake"
	"github.com/marquee-dev/marquee/services/search/internal/fixtures"
	"github.com/marquee-dev/marquee/services/search/internal/index/bleveindex"
	"github.com/marquee-dev/marquee/services/search/internal/testindex"
)

type bearer struct{}

func (bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer test-service-token"}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

func titlesOf(resp *searchv1.SearchMoviesResponse) []string {
	var out []string
	for _, r := range resp.GetResults() {
		out = append(out, r.GetMovie().GetTitle())
	}
	return out
}

func TestRunServesAndFollowsTheCatalog(t *testing.T) {
	cat := catalogfake.New()
	cat.RequireToken = true
	movies, err := fixtures.Movies()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range movies {
		cat.Create(m)
	}
	catAddr, err := cat.Serve(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	cfg := app.DefaultConfig()
	cfg.Search.GRPCAddr = "127.0.0.1:0"
	cfg.Search.AdminAddr = "127.0.0.1:0"
	cfg.Search.IndexDir = t.TempDir()
	cfg.Search.Partitions = 2
	cfg.Search.CatalogAddr = "passthrough:///" + catAddr
	cfg.Search.MaxLag = 5 * time.Second
	cfg.Search.PageTokenSecret = "test"

	ctx, cancel := context.WithCancel(t.Context())
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg,
			app.WithLogger(logging.Discard()),
			app.WithTelemetry(telemetry.Noop()),
			app.WithCatalogCredentials(bearer{}),
			app.OnListening(func(g, a string) { addrs <- [2]string{g, a} }))
	}()
	var grpcAddr, adminAddr string
	select {
	case a := <-addrs:
		grpcAddr, adminAddr = a[0], a[1]
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not start listening")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	ready := func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		return resp.StatusCode == http.StatusOK
	}
	if !testindex.Poll(30*time.Second, ready) {
		t.Fatal("/readyz never became ready")
	}

	conn, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	search := searchv1.NewSearchServiceClient(conn)

	hc := healthpb.NewHealthClient(conn)
	if !testindex.Poll(10*time.Second, func() bool {
		h, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "marquee.search.v1.SearchService"})
		return err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}) {
		t.Error("gRPC health never SERVING")
	}

	resp, err := search.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "godfathr", PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(titlesOf(resp), "|"), "The Godfather") {
		t.Errorf("godfathr -> %q", titlesOf(resp))
	}
	sg, err := search.SuggestTitles(t.Context(), &searchv1.SuggestTitlesRequest{Prefix: "casab"})
	if err != nil || len(sg.GetSuggestions()) == 0 || sg.GetSuggestions()[0].GetTitle() != "Casablanca" {
		t.Errorf("casab -> %v, %v", sg.GetSuggestions(), err)
	}

	// Writes through the catalog show up in search.
	m := cat.Create(&catalogv1.Movie{Title: "Zyxwv Quokka Adventure", Year: proto.Int32(2024), Genres: []string{"Comedy"}, Popularity: proto.Float64(50)})
	found := func(q, title string) func() bool {
		return func() bool {
			r, err := search.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: q, PageSize: 5})
			return err == nil && strings.Contains(strings.Join(titlesOf(r), "|"), title)
		}
	}
	if !testindex.Poll(30*time.Second, found("quokka", "Zyxwv Quokka Adventure")) {
		t.Fatal("a created movie did not appear within 30 s")
	}
	cat.Update(m.GetId(), func(m *catalogv1.Movie) { m.Title = "Zyxwv Wombat Adventure" })
	if !testindex.Poll(30*time.Second, found("wombat", "Zyxwv Wombat Adventure")) {
		t.Fatal("a renamed movie did not appear within 30 s")
	}
	cat.Delete(m.GetId())
	if !testindex.Poll(30*time.Second, func() bool { return !found("wombat", "Zyxwv Wombat Adventure")() }) {
		t.Fatal("a deleted movie was still found after 30 s")
	}

	mr, err := http.Get("http://" + adminAddr + "/metrics")
	if err == nil {
		body, _ := io.ReadAll(mr.Body)
		_ = mr.Body.Close()
		_ = body // the noop provider exports nothing; the endpoint answering is what counts here
	} else {
		t.Errorf("/metrics: %v", err)
	}
}

func TestRebuild(t *testing.T) {
	cat := catalogfake.New()
	movies, err := fixtures.Movies()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range movies[:60] {
		cat.Create(m)
	}
	addr, err := cat.Serve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := app.DefaultConfig()
	cfg.Search.IndexDir = t.TempDir()
	cfg.Search.CatalogAddr = "passthrough:///" + addr
	cfg.Search.Partitions = 2
	opts := []app.Option{app.WithLogger(logging.Discard()), app.WithTelemetry(telemetry.Noop())}
	for range 2 { // the second run replaces the first index
		if err := app.Rebuild(t.Context(), cfg, opts...); err != nil {
			t.Fatal(err)
		}
	}
	x, err := bleveindex.Open(t.Context(), bleveindex.Options{Dir: cfg.Search.IndexDir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = x.Close() }()
	if n := x.Count(); n != 60 {
		t.Fatalf("rebuilt index holds %d movies, want 60", n)
	}
	if cp, _ := x.Checkpoint(t.Context()); cp == "" {
		t.Fatal("rebuilt index has no feed position")
	}
	if n := cat.Calls("ExportMovies"); n != 2 {
		t.Fatalf("ExportMovies called %d times, want 2", n)
	}
}
