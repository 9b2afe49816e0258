package faulttest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
	"github.com/marquee-dev/marquee/tools/internal/importer"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// TestETagWritersLoseNoUpdate: many writers, through two gateways, increment
// the votes of the same few movies with read-modify-write cycles made
// conditional by If-Match. Every acknowledged update is kept: at the end each
// movie's votes equal the number of updates acknowledged on it, and its
// revision is one more than that (no update lost, none applied twice). On
// a real MongoDB (MARQUEE_TEST_MONGO_URI) the gateways talk to two catalog
// replicas; FerretDB's compare-and-set is only atomic within one process
// (see ARCHITECTURE.md), so there they share one.
func TestETagWritersLoseNoUpdate(t *testing.T) {
	k := newKeys(t)
	db := testenv.DatabaseName(t.Name())
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), db))
	second := cat
	if testenv.ExternalMongo() {
		second = startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), db))
	}
	ids := seedMovies(t, k, cat.addr, 3)
	gws := []*gateway{startGateway(t, k, gatewayConfig(cat.addr, "127.0.0.1:1")), startGateway(t, k, gatewayConfig(second.addr, "127.0.0.1:1"))}
	admin := "Bearer " + k.token(t, authn.RoleAdmin)

	const writers, updatesEach = 8, 6
	acked := make([]atomic.Int64, len(ids))
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	for w := range writers {
		wg.Go(func() {
			gw := gws[w%len(gws)]
			for u := range updatesEach {
				i := (w + u) % len(ids)
				path := "/v1/movies/" + ids[i]
				for {
					if time.Now().After(deadline) {
						t.Errorf("writer %d: update %d not done before the deadline", w, u)
						return
					}
					r := gw.do(t.Context(), http.MethodGet, path, nil, "Authorization", admin)
					if r.status != http.StatusOK {
						t.Errorf("writer %d: GET: %v", w, r)
						return
					}
					var m struct {
						Votes string `json:"votes"`
					}
					if err := json.Unmarshal(r.body, &m); err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					var votes int64
					fmt.Sscan(m.Votes, &votes)
					r = gw.do(t.Context(), http.MethodPatch, path+"?update_mask=votes", map[string]any{"votes": fmt.Sprint(votes + 1)},
						"Authorization", admin, "If-Match", r.header.Get("ETag"))
					switch r.status {
					case http.StatusOK:
						acked[i].Add(1)
					case http.StatusPreconditionFailed:
						conflicts.Add(1)
						continue
					default:
						t.Errorf("writer %d: PATCH: %v", w, r)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	client := catalogClient(t, cat.addr)
	var total int64
	for i, id := range ids {
		m, err := client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		total += acked[i].Load()
		if m.GetVotes() != acked[i].Load() || m.GetEtag() != fmt.Sprintf(`"%d"`, acked[i].Load()+1) {
			t.Errorf("movie %d: votes %d, etag %s after %d acknowledged updates", i, m.GetVotes(), m.GetEtag(), acked[i].Load())
		}
	}
	if total != writers*updatesEach {
		t.Errorf("%d updates acknowledged, want %d", total, writers*updatesEach)
	}
	t.Logf("%d updates, %d conflicts answered 412 and retried", total, conflicts.Load())
}

// cutReader ends the stream with an error after n records, as a killed
// importer would stop reading; its context is cancelled at the same moment.
type cutReader struct {
	moviedata.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cutReader) Next() (moviedata.Record, error) {
	if c.n == 0 {
		c.cancel()
		return moviedata.Record{}, errors.New("killed")
	}
	c.n--
	return c.Reader.Next()
}

// TestImporterKilledMidRunThenRerun: an import of the assignment's 248
// movies is killed (its context cancelled) after about half, then run again
// in full: the catalogue holds exactly the 248 movies, each once, and a
// third run adds nothing.
func TestImporterKilledMidRunThenRerun(t *testing.T) {
	k := newKeys(t)
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	conn, err := grpc.NewClient("passthrough:///"+cat.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(k.token(t, authn.RoleAdmin))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := catalogv1.NewCatalogServiceClient(conn)
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "data", "imdb.json"))
	if err != nil {
		t.Fatal(err)
	}
	open := func() moviedata.Reader {
		r, err := moviedata.NewReader(moviedata.FormatIMDB, bytes.NewReader(data), moviedata.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	im := importer.New(client, importer.Config{BatchSize: 10, Workers: 4})

	ctx, cancel := context.WithCancel(t.Context())
	first, err := im.Run(ctx, &cutReader{Reader: open(), n: 130, cancel: cancel})
	cancel()
	if err == nil {
		t.Fatalf("the killed import reported success: %+v", first)
	}
	t.Logf("killed run: %+v (%v)", first, err)

	second, err := im.Run(t.Context(), open())
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if second.Read != 248 || second.Rejected != 0 || second.Inserted+second.Skipped != 248 || second.Skipped < first.Inserted {
		t.Errorf("rerun after %+v: %+v", first, second)
	}
	third, err := im.Run(t.Context(), open())
	if err != nil || third.Inserted != 0 || third.Skipped != 248 {
		t.Errorf("third run: %+v %v", third, err)
	}
	if n, dups := countMovies(t, client); n != 248 || len(dups) > 0 {
		t.Errorf("%d movies stored, want 248; ids seen twice: %v", n, dups)
	}
}

// countMovies pages through every live movie and returns how many there are
// and any id listed twice.
func countMovies(t *testing.T, client catalogv1.CatalogServiceClient) (int, []string) {
	t.Helper()
	seen := map[string]bool{}
	var dups []string
	token := ""
	for {
		resp, err := client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMovies() {
			if seen[m.GetId()] {
				dups = append(dups, m.GetId())
			}
			seen[m.GetId()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			return len(seen), dups
		}
	}
}

// TestSearchIndexerResumesAfterStop: the search service is stopped while
// it follows a stream of writes (creates, updates, deletes), writes go on
// while it is down, and the restarted service, on the same index directory,
// resumes from where it stopped and converges: the index holds exactly the
// live movies with their latest titles.
func TestSearchIndexerResumesAfterStop(t *testing.T) {
	k := newKeys(t)
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	client := catalogClient(t, cat.addr)
	dir := t.TempDir()
	scfg := searchConfig(cat.addr, dir)
	search := startSearchWith(t, k, scfg)
	admin := k.as(t.Context(), t, authn.RoleAdmin)

	live := map[string]string{} // id -> title
	var mu sync.Mutex
	write := func(n int, tag string) {
		for i := range n {
			m, err := client.CreateMovie(admin, &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: fmt.Sprintf("Sync %s %d", tag, i)}})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			live[m.GetId()] = m.GetTitle()
			mu.Unlock()
			switch i % 5 {
			case 1:
				if _, err := client.DeleteMovie(admin, &catalogv1.DeleteMovieRequest{Id: m.GetId()}); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				delete(live, m.GetId())
				mu.Unlock()
			case 2:
				title := m.GetTitle() + " renamed"
				if _, err := client.UpdateMovie(admin, &catalogv1.UpdateMovieRequest{Movie: &catalogv1.Movie{Id: m.GetId(), Title: title}}); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				live[m.GetId()] = title
				mu.Unlock()
			}
		}
	}
	write(20, "before")
	// Stop search while writes are still coming.
	done := make(chan struct{})
	go func() {
		defer close(done)
		write(20, "during")
	}()
	if err := search.stop(); err != nil {
		t.Fatalf("stopping search: %v", err)
	}
	<-done
	write(10, "after")

	search = startSearchWith(t, k, scfg)
	conn, err := grpc.NewClient("passthrough:///"+search.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc := searchv1.NewSearchServiceClient(conn)
	eventually(t, 2*time.Minute, "the index converging on the catalogue", func() error {
		got := map[string]string{}
		token := ""
		for {
			resp, err := sc.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{PageSize: 100, OrderBy: "title", PageToken: token})
			if err != nil {
				return err
			}
			for _, r := range resp.GetResults() {
				got[r.GetMovie().GetId()] = r.GetMovie().GetTitle()
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		var diff []string
		for id, title := range live {
			if got[id] != title {
				diff = append(diff, fmt.Sprintf("%s: index has %q, catalogue %q", id, got[id], title))
			}
		}
		for id, title := range got {
			if _, ok := live[id]; !ok {
				diff = append(diff, fmt.Sprintf("%s (%q) is not live", id, title))
			}
		}
		if len(diff) > 0 {
			return fmt.Errorf("%d differences: %s", len(diff), strings.Join(diff[:min(5, len(diff))], "; "))
		}
		return nil
	})
}
