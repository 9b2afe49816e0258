package devstack_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/tools/internal/devstack"
)

// convergencePrefix starts the titles of the movies this test writes.
const convergencePrefix = "Convergence "

// TestSearchConvergesToCatalog writes a burst of creates, updates, a
// director rename and deletes through the real catalog, then waits for the
// search index to hold exactly the catalogue: the same ids with the same
// titles and director names.
func TestSearchConvergesToCatalog(t *testing.T) {
	a := addrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	token, err := devstack.DevAdminToken(ctx, stack.dir, a.Auth)
	if err != nil {
		t.Fatal(err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	cconn, err := grpcclient.Dial("passthrough:///"+a.Catalog, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cconn.Close()
	sconn, err := grpcclient.Dial("passthrough:///"+a.Search, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close()
	catalog := catalogv1.NewCatalogServiceClient(cconn)
	search := searchv1.NewSearchServiceClient(sconn)

	year := int32(2001)
	var created []*catalogv1.Movie
	for i := range 12 {
		m, err := catalog.CreateMovie(actx, &catalogv1.CreateMovieRequest{
			RequestId: fmt.Sprintf("converge-%d-%d", time.Now().UnixNano(), i),
			Movie: &catalogv1.Movie{
				Title: fmt.Sprintf("%s%d", convergencePrefix, i), Year: &year, Genres: []string{"Drama"},
				Directors: []*catalogv1.DirectorRef{{Name: "Ada Convergent"}},
			},
		})
		if err != nil {
			t.Fatalf("creating movie %d: %v", i, err)
		}
		created = append(created, m)
	}
	for _, m := range created[:4] {
		m.Title += " (Director's Cut)"
		if _, err := catalog.UpdateMovie(actx, &catalogv1.UpdateMovieRequest{
			Movie: m, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}},
		}); err != nil {
			t.Fatalf("updating %s: %v", m.GetId(), err)
		}
	}
	dirID := created[0].GetDirectors()[0].GetId()
	// A rename is idempotent and resumable, so a client retries one that
	// ran out of time (this machine may be busy), as any client would.
	for attempt := 1; ; attempt++ {
		_, err := catalog.UpdateDirector(actx, &catalogv1.UpdateDirectorRequest{
			Director:   &catalogv1.Director{Id: dirID, Name: "Ada Renamed"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
		})
		if err == nil {
			break
		}
		if c := status.Code(err); attempt == 3 || (c != codes.DeadlineExceeded && c != codes.Unavailable) {
			t.Fatalf("renaming director (attempt %d): %v", attempt, err)
		}
	}
	for _, m := range created[8:] {
		if _, err := catalog.DeleteMovie(actx, &catalogv1.DeleteMovieRequest{Id: m.GetId()}); err != nil {
			t.Fatalf("deleting %s: %v", m.GetId(), err)
		}
	}

	want := catalogState(ctx, t, catalog)
	var got map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = searchState(ctx, t, search)
		if equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search did not converge within 60 s: %s", diff(got, want))
		}
		time.Sleep(250 * time.Millisecond) //nolint:forbidigo // polling a real index with a deadline
	}
}

// catalogState is every movie as "title | directors", by id.
func catalogState(ctx context.Context, t *testing.T, c catalogv1.CatalogServiceClient) map[string]string {
	t.Helper()
	out := map[string]string{}
	token := ""
	for {
		page, err := c.ListMovies(ctx, &catalogv1.ListMoviesRequest{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatalf("listing the catalogue: %v", err)
		}
		for _, m := range page.GetMovies() {
			out[m.GetId()] = render(m)
		}
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// searchState is every movie discovery finds, by id.
func searchState(ctx context.Context, t *testing.T, s searchv1.SearchServiceClient) map[string]string {
	t.Helper()
	out := map[string]string{}
	token := ""
	for {
		page, err := s.SearchMovies(ctx, &searchv1.SearchMoviesRequest{PageSize: 100, PageToken: token, OrderBy: "title"})
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		for _, r := range page.GetResults() {
			out[r.GetMovie().GetId()] = render(r.GetMovie())
		}
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
}

func render(m *catalogv1.Movie) string {
	names := make([]string, 0, len(m.GetDirectors()))
	for _, d := range m.GetDirectors() {
		names = append(names, d.GetName())
	}
	sort.Strings(names)
	return fmt.Sprintf("%s | %v", m.GetTitle(), names)
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func diff(got, want map[string]string) string {
	var missing, extra, wrong int
	example := ""
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing++
			example = fmt.Sprintf("missing %s %q", k, v)
		case g != v:
			wrong++
			example = fmt.Sprintf("%s is %q, want %q", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra++
		}
	}
	return fmt.Sprintf("%d missing, %d extra, %d different (e.g. %s)", missing, extra, wrong, example)
}
