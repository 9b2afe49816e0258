package importer_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/tools/internal/importer"
	"github.com/marquee-dev/marquee/tools/internal/importer/catalogfake"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

const dataDir = "../../../data"

// startCatalog serves a fake catalog on loopback for the test and returns it
// with a client connected through importer.Dial, retries included.
func startCatalog(t *testing.T, setup func(*catalogfake.Server)) (*catalogfake.Server, catalogv1.CatalogServiceClient) {
	t.Helper()
	fake := catalogfake.New()
	if setup != nil {
		setup(fake)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := fake.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := importer.Dial(addr, importer.DialConfig{
		Token:          fake.Token,
		InitialBackoff: 5 * time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return fake, catalogv1.NewCatalogServiceClient(conn)
}

func openReader(t *testing.T, format moviedata.Format, name string) moviedata.Reader {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := moviedata.NewReader(format, f, moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func stringReader(t *testing.T, format moviedata.Format, s string) moviedata.Reader {
	t.Helper()
	r, err := moviedata.NewReader(format, strings.NewReader(s), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestImportIMDBTwiceLeaves248Movies(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode catalogfake.DuplicateMode
	}{
		{"duplicate answers the existing movie", catalogfake.ReturnExisting},
		{"duplicate answers ALREADY_EXISTS naming the request", catalogfake.AlreadyExists},
		{"duplicate answers a bare ALREADY_EXISTS", catalogfake.AlreadyExistsBare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, client := startCatalog(t, func(s *catalogfake.Server) {
				s.Duplicates = tc.mode
				s.Token = "admin-token"
			})
			im := importer.New(client, importer.Config{BatchSize: 50, Workers: 3})

			first, err := im.Run(context.Background(), openReader(t, moviedata.FormatIMDB, dataDir+"/imdb.json"))
			if err != nil {
				t.Fatal(err)
			}
			if first.Read != 248 || first.Inserted != 248 || first.Skipped != 0 || first.Rejected != 0 {
				t.Fatalf("first run = %+v, want 248 read and inserted", first)
			}
			if got := fake.Len(); got != 248 {
				t.Fatalf("catalog has %d movies after the first run, want 248", got)
			}

			second, err := im.Run(context.Background(), openReader(t, moviedata.FormatIMDB, dataDir+"/imdb.json"))
			if err != nil {
				t.Fatal(err)
			}
			if second.Read != 248 || second.Inserted != 0 || second.Skipped != 248 || second.Rejected != 0 {
				t.Fatalf("second run = %+v, want 248 skipped", second)
			}
			if got := fake.Len(); got != 248 {
				t.Fatalf("catalog has %d movies after the second run, want 248 (not 496)", got)
			}
		})
	}
}

func TestImportMapsIMDBFields(t *testing.T) {
	fake, client := startCatalog(t, nil)
	if _, err := importer.New(client, importer.Config{}).Run(context.Background(), openReader(t, moviedata.FormatIMDB, dataDir+"/imdb.json")); err != nil {
		t.Fatal(err)
	}
	var wizards []*catalogv1.Movie
	for _, m := range fake.Movies() {
		if m.GetTitle() == "The Wizard of Oz" {
			wizards = append(wizards, m)
		}
	}
	if len(wizards) != 2 {
		t.Fatalf("The Wizard of Oz: %d movies, want 2 (different directors)", len(wizards))
	}
	for _, m := range wizards {
		if len(m.GetDirectors()) != 1 || m.GetDirectors()[0].GetName() == "" {
			t.Errorf("directors = %v, want one by name", m.GetDirectors())
		}
		if m.Year != nil {
			t.Errorf("year = %d, imdb.json has none", m.GetYear())
		}
		if m.ImdbScore == nil || m.Popularity == nil || m.GetPopularity() != m.GetImdbScore()*10 {
			t.Errorf("score %v popularity %v, want popularity = 10 x score", m.ImdbScore, m.Popularity)
		}
		for _, g := range m.GetGenres() {
			if g != strings.TrimSpace(g) {
				t.Errorf("genre %q not trimmed", g)
			}
		}
	}
}

func TestImportWikipediaLinesTwice(t *testing.T) {
	fake, client := startCatalog(t, nil)
	im := importer.New(client, importer.Config{Workers: 2})
	const n = 3000
	lines := firstLines(t, dataDir+"/wikipedia-movies.ndjson.gz", n)
	for run := 1; run <= 2; run++ {
		sum, err := im.Run(context.Background(), stringReader(t, moviedata.FormatWikipedia, lines))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Read != n || sum.Inserted+sum.Skipped != n || sum.Rejected != 0 {
			t.Fatalf("run %d = %+v", run, sum)
		}
		if run == 2 && sum.Skipped != n {
			t.Errorf("run 2 skipped %d, want %d", sum.Skipped, n)
		}
		if got := fake.Len(); got != n {
			t.Fatalf("run %d: catalog has %d movies, want %d", run, got, n)
		}
	}
}

func TestRejectedRecordsAreReportedAndTheRestImported(t *testing.T) {
	for _, mode := range []catalogfake.DuplicateMode{catalogfake.ReturnExisting, catalogfake.AlreadyExists} {
		fake, client := startCatalog(t, func(s *catalogfake.Server) { s.Duplicates = mode })
		input := strings.Join([]string{
			`{"title": "Good One", "year": 1999}`,
			`{"title": "Too Early", "year": 1700}`,
			`{"title": "Good Two", "year": 2001}`,
			`{"title": "Too Good", "year": 2001, "imdbScore": 11, "popularity": 110}`,
			`{"title": "Good Three", "year": 2002, "directors": ["A B"]}`,
			`{"title": "Good Four"}`,
			`{"title": "Good Five", "year": 2003}`,
		}, "\n")
		var progress []importer.Summary
		var mu sync.Mutex
		im := importer.New(client, importer.Config{BatchSize: 3, Workers: 2, OnProgress: func(s importer.Summary) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, s)
		}})
		sum, err := im.Run(context.Background(), stringReader(t, moviedata.FormatWikipedia, input))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Read != 7 || sum.Inserted != 5 || sum.Skipped != 0 || sum.Rejected != 2 {
			t.Fatalf("summary = %+v, want 5 inserted and 2 rejected", sum)
		}
		if len(sum.Rejections) != 2 {
			t.Fatalf("rejections = %+v", sum.Rejections)
		}
		early, good := sum.Rejections[0], sum.Rejections[1]
		if early.Line != 2 || early.Title != "Too Early" || !strings.Contains(early.Reason, "year") {
			t.Errorf("first rejection = %+v, want line 2 about year", early)
		}
		if good.Line != 4 || !strings.Contains(good.Reason, "imdb_score") || !strings.Contains(good.Reason, "popularity") {
			t.Errorf("second rejection = %+v, want line 4 about imdb_score and popularity", good)
		}
		if fake.Len() != 5 {
			t.Errorf("catalog has %d movies, want 5", fake.Len())
		}
		mu.Lock()
		if len(progress) == 0 || progress[len(progress)-1].Inserted+progress[len(progress)-1].Rejected != 7 {
			t.Errorf("progress = %+v, want a last report covering all 7 records", progress)
		}
		mu.Unlock()
	}
}

func TestRetriesUnavailableAndResourceExhausted(t *testing.T) {
	fake, client := startCatalog(t, func(s *catalogfake.Server) {
		s.FailNext(codes.Unavailable, codes.ResourceExhausted, codes.Unavailable)
	})
	sum, err := importer.New(client, importer.Config{Workers: 1}).Run(context.Background(), stringReader(t, moviedata.FormatWikipedia, `{"title": "A"}`+"\n"+`{"title": "B"}`))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Inserted != 2 || fake.Len() != 2 {
		t.Errorf("summary = %+v, catalog = %d movies; want 2", sum, fake.Len())
	}
	if got := fake.Calls(); got != 4 {
		t.Errorf("calls = %d, want 3 failures and 1 success", got)
	}
}

func TestFatalErrorsStopTheImport(t *testing.T) {
	fake, client := startCatalog(t, nil)
	fake.FailNext(codes.PermissionDenied)
	_, err := importer.New(client, importer.Config{Workers: 1}).Run(context.Background(), stringReader(t, moviedata.FormatWikipedia, `{"title": "A"}`))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "line") {
		t.Errorf("error = %v, want PERMISSION_DENIED naming the lines", err)
	}
}

func TestWrongTokenIsUnauthenticated(t *testing.T) {
	fake := catalogfake.New()
	fake.Token = "right"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := fake.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := importer.Dial(addr, importer.DialConfig{Token: "Bearer wrong"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = importer.New(catalogv1.NewCatalogServiceClient(conn), importer.Config{}).Run(ctx, stringReader(t, moviedata.FormatWikipedia, `{"title": "A"}`))
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("error = %v, want UNAUTHENTICATED", err)
	}
	if fake.Len() != 0 {
		t.Errorf("catalog has %d movies, want 0", fake.Len())
	}
}

func TestMalformedRecordStopsWithItsLine(t *testing.T) {
	fake, client := startCatalog(t, nil)
	var input strings.Builder
	for i := range 250 {
		input.WriteString(`{"title": "Movie ` + string(rune('A'+i%26)) + `", "year": ` + strconv.Itoa(1900+i%100) + "}\n")
	}
	input.WriteString("{\"title\": \"Broken\", \"year\": }\n")
	input.WriteString(`{"title": "Never Read"}` + "\n")
	sum, err := importer.New(client, importer.Config{}).Run(context.Background(), stringReader(t, moviedata.FormatWikipedia, input.String()))
	var pe *moviedata.ParseError
	if !errors.As(err, &pe) || pe.Line != 251 {
		t.Fatalf("error = %v, want a ParseError on line 251", err)
	}
	if sum.Read != 250 || sum.Inserted != 250 || fake.Len() != 250 {
		t.Errorf("summary = %+v, catalog %d; want the 250 records before the bad line imported", sum, fake.Len())
	}
}

func TestCancelledImportReturnsTheContextError(t *testing.T) {
	_, client := startCatalog(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := importer.New(client, importer.Config{}).Run(ctx, stringReader(t, moviedata.FormatWikipedia, `{"title": "A"}`))
	if !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
		t.Errorf("error = %v, want cancellation", err)
	}
}

// firstLines returns the first n lines of a gzip file.
func firstLines(t *testing.T, name string, n int) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var b strings.Builder
	for i := 0; i < n && sc.Scan(); i++ {
		b.Write(sc.Bytes())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
