package sync_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/catalogfake"
	"github.com/marquee-dev/marquee/services/search/internal/fixtures"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/index/bleveindex"
	"github.com/marquee-dev/marquee/services/search/internal/query"
	searchsync "github.com/marquee-dev/marquee/services/search/internal/sync"
	"github.com/marquee-dev/marquee/services/search/internal/testindex"
)

type bearer struct{}

func (bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer test-service-token"}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

func startCatalog(t *testing.T, n int) (*catalogfake.Catalog, catalogv1.CatalogServiceClient) {
	t.Helper()
	cat := catalogfake.New()
	cat.RequireToken = true
	movies, err := fixtures.Movies()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range movies[:n] {
		m = proto.Clone(m).(*catalogv1.Movie)
		m.Id = ""
		cat.Create(m)
	}
	addr, err := cat.Serve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return cat, catalogv1.NewCatalogServiceClient(conn)
}

// running is a syncer goroutine with its index.
type running struct {
	idx    *bleveindex.Index
	syncer *searchsync.Syncer
	stop   func()
}

func start(t *testing.T, dir string, client catalogv1.CatalogServiceClient) *running {
	t.Helper()
	idx, err := bleveindex.Open(t.Context(), bleveindex.Options{Dir: dir, Partitions: 2, SuggestInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := searchsync.New(client, idx, searchsync.Options{MaxLag: 2 * time.Second, PageSize: 37, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	r := &running{idx: idx, syncer: s}
	var stopped bool
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		if err := idx.Close(); err != nil {
			t.Errorf("closing index: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

// indexed lists every movie in the index, id -> title, by paging through
// discovery ordered by title.
func indexed(t *testing.T, x index.Index) map[string]string {
	t.Helper()
	p := query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec([]byte("k")))
	out := map[string]string{}
	tok := ""
	for {
		r, err := p.Parse(query.Input{OrderBy: "title", PageSize: 100, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		res, err := x.Search(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			out[h.Movie.GetId()] = h.Movie.GetTitle()
		}
		if !res.More {
			return out
		}
		tok = p.NextToken(r, 0, res.Last)
	}
}

func want(cat *catalogfake.Catalog) map[string]string {
	out := map[string]string{}
	for id, m := range cat.Snapshot() {
		out[id] = m.GetTitle()
	}
	return out
}

// converge waits until the index holds exactly the catalogue.
func converge(t *testing.T, cat *catalogfake.Catalog, x index.Index) {
	t.Helper()
	if testindex.Poll(20*time.Second, func() bool { return maps.Equal(indexed(t, x), want(cat)) }) {
		return
	}
	got, w := indexed(t, x), want(cat)
	var diff []string
	for id, title := range w {
		if got[id] != title {
			diff = append(diff, fmt.Sprintf("%s: index %q, catalog %q", id, got[id], title))
		}
	}
	for id, title := range got {
		if _, ok := w[id]; !ok {
			diff = append(diff, fmt.Sprintf("%s: index %q, not in catalog", id, title))
		}
	}
	slices.Sort(diff)
	t.Fatalf("index did not converge: %d differences, first: %q", len(diff), diff[:min(10, len(diff))])
}

func waitReady(t *testing.T, s *searchsync.Syncer) {
	t.Helper()
	if !testindex.Poll(20*time.Second, func() bool { return s.Ready(t.Context()) == nil }) {
		t.Fatalf("not ready: %v", s.Ready(t.Context()))
	}
}

// burst makes creates, updates, renames and deletes through the catalog.
func burst(cat *catalogfake.Catalog, round int) {
	snap := cat.Snapshot()
	ids := slices.Sorted(maps.Keys(snap))
	for i := 0; i < 40; i++ {
		cat.Create(&catalogv1.Movie{
			Title:      fmt.Sprintf("Burst %d film %d", round, i),
			Year:       proto.Int32(int32(1950 + i)),
			Genres:     []string{"Drama"},
			Directors:  []*catalogv1.DirectorRef{{Id: fixtures.DirectorID("Burst Director"), Name: "Burst Director"}},
			Popularity: proto.Float64(float64(i)),
		})
	}
	for i, id := range ids {
		switch i % 9 {
		case 1, 4:
			cat.Update(id, func(m *catalogv1.Movie) { m.Title = m.GetTitle() + fmt.Sprintf(" (rev %d)", round) })
		case 2:
			cat.Delete(id)
		}
	}
	// A director rename touches every movie of that director (one that
	// still has movies after the deletes above).
	for _, m := range cat.Snapshot() {
		if len(m.GetDirectors()) > 0 {
			cat.RenameDirector(m.GetDirectors()[0].GetId(), fmt.Sprintf("Renamed Director %d", round))
			break
		}
	}
	// Create then delete in quick succession, and update after update.
	m := cat.Create(&catalogv1.Movie{Title: "Short-lived"})
	cat.Update(m.GetId(), func(m *catalogv1.Movie) { m.Title = "Short-lived, renamed" })
	cat.Delete(m.GetId())
}

func TestConvergesAndResumes(t *testing.T) {
	cat, client := startCatalog(t, 150)
	dir := t.TempDir()
	r := start(t, dir, client)
	waitReady(t, r.syncer)
	converge(t, cat, r.idx)
	if n := cat.Calls("ExportMovies"); n != 1 {
		t.Fatalf("ExportMovies called %d times, want 1", n)
	}

	burst(cat, 1)
	converge(t, cat, r.idx)

	// Text search sees renames too (the inverted index, not only the table).
	p := query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec(nil))
	req, err := p.Parse(query.Input{Q: "Renamed Director 1"})
	if err != nil {
		t.Fatal(err)
	}
	// converge compares ids and titles; the rename's own changes may still
	// be in flight, so poll for them with a deadline.
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := r.idx.Search(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no movie found by the renamed director's name within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Restart: changes made while stopped are picked up from the stored
	// position, without a new export.
	r.stop()
	burst(cat, 2)
	r2 := start(t, dir, client)
	if cp, err := r2.idx.Checkpoint(t.Context()); err != nil || cp == "" {
		t.Fatalf("checkpoint after restart = %q, %v; want the stored position", cp, err)
	}
	waitReady(t, r2.syncer)
	converge(t, cat, r2.idx)
	if n := cat.Calls("ExportMovies"); n != 1 {
		t.Fatalf("ExportMovies called %d times after a restart, want 1 (resume, not rebuild)", n)
	}

	// An expired position makes the syncer rebuild from the export.
	r2.stop()
	burst(cat, 3)
	cat.Expire()
	r3 := start(t, dir, client)
	waitReady(t, r3.syncer)
	converge(t, cat, r3.idx)
	if n := cat.Calls("ExportMovies"); n != 2 {
		t.Fatalf("ExportMovies called %d times after the position expired, want 2", n)
	}
}

func TestReadyOnlyWhenCaughtUp(t *testing.T) {
	_, client := startCatalog(t, 20)
	idx, err := bleveindex.Open(t.Context(), bleveindex.Options{Dir: t.TempDir(), Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	s, err := searchsync.New(client, idx, searchsync.Options{MaxLag: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready(t.Context()) == nil {
		t.Fatal("ready before the first synchronisation")
	}
}
