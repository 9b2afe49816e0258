package grpcapi_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/fixtures"
	"github.com/marquee-dev/marquee/services/search/internal/grpcapi"
	"github.com/marquee-dev/marquee/services/search/internal/query"
	"github.com/marquee-dev/marquee/services/search/internal/testindex"
)

// fixture is the server every test of the package shares: the index is
// read-only here, and building it once keeps the race-enabled run short.
var fixture struct {
	server *grpcapi.Server
	movies []*catalogv1.Movie
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	movies, err := fixtures.Movies()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "grpcapi-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	x, err := testindex.Build(dir, 2, movies)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = x.Close() }()
	p := query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec([]byte("secret")))
	fixture.server = grpcapi.New(x, p, grpcapi.Options{SearchTimeout: 5 * time.Second})
	fixture.movies = movies
	return m.Run()
}

func newServer(testing.TB) (*grpcapi.Server, []*catalogv1.Movie) {
	return fixture.server, fixture.movies
}

// checkCode fails unless err is nil or INVALID_ARGUMENT with a reason and a
// field violation.
func checkCode(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("%s: code %s (%v), want OK or INVALID_ARGUMENT", what, st.Code(), err)
	}
	if apierr.Reason(err) == "" || len(apierr.Violations(err)) == 0 {
		t.Fatalf("%s: INVALID_ARGUMENT without a reason or field violation: %v", what, err)
	}
}

func TestHostileQueries(t *testing.T) {
	s, _ := newServer(t)
	long := strings.Repeat("godfather ", 1024) // 10 KB
	cases := []struct {
		name    string
		req     *searchv1.SearchMoviesRequest
		invalid bool
	}{
		{name: "empty", req: &searchv1.SearchMoviesRequest{}},
		{name: "spaces", req: &searchv1.SearchMoviesRequest{Q: "   \t\n "}},
		{name: "10KB", req: &searchv1.SearchMoviesRequest{Q: long}, invalid: true},
		{name: "500 chars of one-letter words", req: &searchv1.SearchMoviesRequest{Q: strings.Repeat("a ", 250)}},
		{name: "unbalanced quote", req: &searchv1.SearchMoviesRequest{Q: `"the godfather`}},
		{name: "quotes only", req: &searchv1.SearchMoviesRequest{Q: `"""`}},
		{name: "query syntax", req: &searchv1.SearchMoviesRequest{Q: `+title:godfather -year:>1990 ^5 ~2 AND OR NOT (x) [a TO b] {c}`}},
		{name: "regex", req: &searchv1.SearchMoviesRequest{Q: `/.*(a|b)+[^x]{2,}\d$/`}},
		{name: "wildcards", req: &searchv1.SearchMoviesRequest{Q: `*?*?*god*`}},
		{name: "backslashes", req: &searchv1.SearchMoviesRequest{Q: `\\\"\'\`}},
		{name: "invalid UTF-8", req: &searchv1.SearchMoviesRequest{Q: "god\xff\xfefather"}, invalid: true},
		{name: "NUL bytes", req: &searchv1.SearchMoviesRequest{Q: "god\x00father"}},
		{name: "emoji and RTL", req: &searchv1.SearchMoviesRequest{Q: "🎬 \u202e فيلم"}},
		{name: "combining marks", req: &searchv1.SearchMoviesRequest{Q: strings.Repeat("e\u0301", 200)}},
		{name: "filter syntax error", req: &searchv1.SearchMoviesRequest{Filter: `genres:"Drama" AND (`}, invalid: true},
		{name: "filter unknown field", req: &searchv1.SearchMoviesRequest{Filter: `budget > 5`}, invalid: true},
		{name: "filter wrong type", req: &searchv1.SearchMoviesRequest{Filter: `year = "nineteen"`}, invalid: true},
		{name: "filter unbalanced quote", req: &searchv1.SearchMoviesRequest{Filter: `title:"god`}, invalid: true},
		{name: "filter function call", req: &searchv1.SearchMoviesRequest{Filter: `regex(title, ".*")`}, invalid: true},
		{name: "filter too long", req: &searchv1.SearchMoviesRequest{Filter: strings.Repeat(`year > 1 AND `, 300) + "year > 1"}, invalid: true},
		{name: "filter many parentheses", req: &searchv1.SearchMoviesRequest{Filter: strings.Repeat("(", 100) + "year > 1" + strings.Repeat(")", 100)}},
		{name: "filter too deep", req: &searchv1.SearchMoviesRequest{Filter: strings.Repeat("NOT (", 40) + "year > 1" + strings.Repeat(")", 40)}, invalid: true},
		{name: "filter invalid UTF-8", req: &searchv1.SearchMoviesRequest{Filter: "title:\"\xff\""}, invalid: true},
		{name: "filter huge number", req: &searchv1.SearchMoviesRequest{Filter: `year > 99999999999999999999999`}, invalid: true},
		{name: "filter negative", req: &searchv1.SearchMoviesRequest{Filter: `imdbScore = -1`}},
		{name: "order unknown", req: &searchv1.SearchMoviesRequest{OrderBy: "budget desc"}, invalid: true},
		{name: "order bad direction", req: &searchv1.SearchMoviesRequest{OrderBy: "year sideways"}, invalid: true},
		{name: "order injection", req: &searchv1.SearchMoviesRequest{OrderBy: "year; drop"}, invalid: true},
		{name: "relevance without q", req: &searchv1.SearchMoviesRequest{OrderBy: "relevance"}, invalid: true},
		{name: "negative page size", req: &searchv1.SearchMoviesRequest{PageSize: -1}, invalid: true},
		{name: "huge page size", req: &searchv1.SearchMoviesRequest{PageSize: 1 << 30}},
		{name: "garbage token", req: &searchv1.SearchMoviesRequest{PageToken: "not-a-token"}, invalid: true},
		{name: "huge token", req: &searchv1.SearchMoviesRequest{PageToken: strings.Repeat("A", 100000)}, invalid: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := s.SearchMovies(t.Context(), c.req)
			checkCode(t, err, c.name)
			if c.invalid && err == nil {
				t.Fatalf("want INVALID_ARGUMENT, got %d results", len(resp.GetResults()))
			}
			if !c.invalid && err != nil {
				t.Fatalf("want a result, got %v", err)
			}
			if err == nil && int64(len(resp.GetResults())) > resp.GetTotalSize() {
				t.Fatalf("%d results but total %d", len(resp.GetResults()), resp.GetTotalSize())
			}
		})
	}
	for _, p := range []string{"", strings.Repeat("x", 101), "\xff", "*", `"`, "((", "\x00", "🎬"} {
		_, err := s.SuggestTitles(t.Context(), &searchv1.SuggestTitlesRequest{Prefix: p})
		checkCode(t, err, fmt.Sprintf("suggest %q", p))
	}
	_, err := s.SuggestTitles(t.Context(), &searchv1.SuggestTitlesRequest{Prefix: "a", Limit: -1})
	checkCode(t, err, "suggest negative limit")
}

// page walks every page of req and returns the movie ids in order.
func page(t *testing.T, s *grpcapi.Server, req *searchv1.SearchMoviesRequest) (ids []string, total int64) {
	t.Helper()
	total = -1
	for n := 0; ; n++ {
		resp, err := s.SearchMovies(t.Context(), req)
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		if total >= 0 && resp.GetTotalSize() != total {
			t.Fatalf("page %d: total changed from %d to %d", n, total, resp.GetTotalSize())
		}
		total = resp.GetTotalSize()
		for _, r := range resp.GetResults() {
			ids = append(ids, r.GetMovie().GetId())
		}
		if resp.GetNextPageToken() == "" {
			return ids, total
		}
		if len(resp.GetResults()) == 0 {
			t.Fatal("empty page with a next page token")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func TestPaginationByKey(t *testing.T) {
	s, movies := newServer(t)
	for _, c := range []struct {
		q, filter, order string
	}{
		{order: ""}, // discovery: popularity desc, with ties and missing values
		{order: "popularity"},
		{order: "year desc, title"},
		{order: "imdbScore desc"},
		{order: "title"},
		{filter: `genres:"Drama"`, order: "year"},
		{q: "the", order: "year desc"},
		{q: "star", order: "title desc"},
		{q: "the"}, // relevance
		{q: "star", filter: `year >= 1980`},
	} {
		t.Run(fmt.Sprintf("q=%q filter=%q order=%q", c.q, c.filter, c.order), func(t *testing.T) {
			ids, total := page(t, s, &searchv1.SearchMoviesRequest{Q: c.q, Filter: c.filter, OrderBy: c.order, PageSize: 7})
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("%s returned twice", id)
				}
				seen[id] = true
			}
			if int64(len(ids)) != total {
				t.Fatalf("paged through %d results, total says %d", len(ids), total)
			}
			// The pages equal one big page.
			all, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: c.q, Filter: c.filter, OrderBy: c.order, PageSize: 100})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range all.GetResults() {
				if ids[i] != r.GetMovie().GetId() {
					t.Fatalf("result %d: paged %s, one page %s", i, ids[i], r.GetMovie().GetId())
				}
			}
			if c.q == "" && c.filter == "" && int(total) != len(movies) {
				t.Fatalf("discovery total %d, want %d", total, len(movies))
			}
		})
	}
}

func TestOrders(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{OrderBy: "year desc", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	prev := int32(1 << 30)
	for _, r := range resp.GetResults() {
		y := r.GetMovie().GetYear() // 0 when unknown: last in descending order
		if y > prev {
			t.Fatalf("year %d after %d in descending order", y, prev)
		}
		prev = y
	}
	resp, err = s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "star", OrderBy: "popularity desc", PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	pop := 1e9
	for _, r := range resp.GetResults() {
		p := r.GetMovie().GetPopularity()
		if r.GetMovie().Popularity == nil {
			p = -1
		}
		if p > pop {
			t.Fatalf("popularity %v after %v", p, pop)
		}
		pop = p
		if r.GetScore() != 0 {
			t.Fatalf("score %v in a field order, want 0", r.GetScore())
		}
	}
}

// expected computes total and facets by brute force over the fixtures.
func expected(movies []*catalogv1.Movie, keep func(*catalogv1.Movie) bool) (int64, map[string]int64, map[string]int64) {
	var total int64
	genres, decades := map[string]int64{}, map[string]int64{}
	for _, m := range movies {
		if !keep(m) {
			continue
		}
		total++
		for _, g := range slices.Compact(slices.Sorted(slices.Values(m.GetGenres()))) {
			genres[g]++
		}
		if m.Year != nil {
			decades[fmt.Sprintf("%ds", m.GetYear()/10*10)]++
		}
	}
	return total, genres, decades
}

func facetMap(fs []*searchv1.FacetCount) map[string]int64 {
	out := map[string]int64{}
	for _, f := range fs {
		out[f.GetValue()] = f.GetCount()
	}
	return out
}

func has(m *catalogv1.Movie, genre string) bool { return slices.Contains(m.GetGenres(), genre) }

func TestFacetsAndTotal(t *testing.T) {
	s, movies := newServer(t)
	cases := []struct {
		q, filter string
		keep      func(*catalogv1.Movie) bool
	}{
		{keep: func(*catalogv1.Movie) bool { return true }},
		{filter: `genres:"Drama" AND genres:"Romance"`, keep: func(m *catalogv1.Movie) bool { return has(m, "Drama") && has(m, "Romance") }},
		{filter: `genres:"drama" OR genres:"Western"`, keep: func(m *catalogv1.Movie) bool { return has(m, "Drama") || has(m, "Western") }},
		{filter: `NOT genres:"Drama" AND year >= 1990`, keep: func(m *catalogv1.Movie) bool { return !has(m, "Drama") && m.Year != nil && m.GetYear() >= 1990 }},
		{filter: `year < 1950 OR imdbScore >= 8.5`, keep: func(m *catalogv1.Movie) bool {
			return (m.Year != nil && m.GetYear() < 1950) || (m.ImdbScore != nil && m.GetImdbScore() >= 8.5)
		}},
		{filter: `popularity > 50 AND year != 1939`, keep: func(m *catalogv1.Movie) bool {
			return m.Popularity != nil && m.GetPopularity() > 50 && m.GetYear() != 1939
		}},
		{filter: `directors.name:"Coppola"`, keep: func(m *catalogv1.Movie) bool {
			return slices.ContainsFunc(m.GetDirectors(), func(d *catalogv1.DirectorRef) bool { return strings.Contains(d.GetName(), "Coppola") })
		}},
		{filter: `directors.name = "George Lucas"`, keep: func(m *catalogv1.Movie) bool {
			return slices.ContainsFunc(m.GetDirectors(), func(d *catalogv1.DirectorRef) bool { return d.GetName() == "George Lucas" })
		}},
		{filter: `title:"wizard of oz"`, keep: func(m *catalogv1.Movie) bool { return strings.Contains(strings.ToLower(m.GetTitle()), "wizard of oz") }},
		{filter: `title = "the godfather"`, keep: func(m *catalogv1.Movie) bool { return m.GetTitle() == "The Godfather" }},
	}
	for _, c := range cases {
		// The same filter through discovery (column scan) and through a text
		// query that matches everything it filters (the inverted index).
		for _, q := range []string{"", c.q} {
			t.Run(fmt.Sprintf("q=%q filter=%q", q, c.filter), func(t *testing.T) {
				resp, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: q, Filter: c.filter})
				if err != nil {
					t.Fatal(err)
				}
				total, genres, decades := expected(movies, c.keep)
				if resp.GetTotalSize() != total {
					t.Errorf("total %d, want %d", resp.GetTotalSize(), total)
				}
				if got := facetMap(resp.GetFacets().GetGenres()); !maps.Equal(got, genres) {
					t.Errorf("genre facets %v, want %v", got, genres)
				}
				if got := facetMap(resp.GetFacets().GetDecades()); !maps.Equal(got, decades) {
					t.Errorf("decade facets %v, want %v", got, decades)
				}
				gs := resp.GetFacets().GetGenres()
				for i := 1; i < len(gs); i++ {
					if gs[i].GetCount() > gs[i-1].GetCount() {
						t.Errorf("genre facets not most common first: %v", gs)
					}
				}
			})
		}
	}
	// With text: facets count the whole result set, not the page.
	resp, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "star", Filter: `genres:"Science Fiction"`, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := facetMap(resp.GetFacets().GetGenres())["Science Fiction"]; got != resp.GetTotalSize() || got < 2 {
		t.Errorf("Science Fiction facet %d, total %d; want equal and >= 2", got, resp.GetTotalSize())
	}
}

func TestPageTokens(t *testing.T) {
	s, _ := newServer(t)
	first, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "star", PageSize: 2})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, token %q", err, first.GetNextPageToken())
	}
	tok := first.GetNextPageToken()
	tampered := []byte(tok)
	tampered[len(tampered)/2] ^= 1
	for name, req := range map[string]*searchv1.SearchMoviesRequest{
		"tampered":      {Q: "star", PageToken: string(tampered)},
		"other query":   {Q: "wars", PageToken: tok},
		"other filter":  {Q: "star", Filter: "year > 1", PageToken: tok},
		"other order":   {Q: "star", OrderBy: "year", PageToken: tok},
		"other service": {Q: "star", PageToken: otherSecretToken(t)},
	} {
		_, err := s.SearchMovies(t.Context(), req)
		if status.Code(err) != codes.InvalidArgument || apierr.Reason(err) != query.ReasonInvalidPageToken {
			t.Errorf("%s: %v, want INVALID_ARGUMENT %s", name, err, query.ReasonInvalidPageToken)
		}
	}
	// A different page size with the same query is fine.
	if _, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "star", PageSize: 5, PageToken: tok}); err != nil {
		t.Errorf("page size change: %v", err)
	}
}

func otherSecretToken(t *testing.T) string {
	x := testindex.Of(t, 1, fixture.movies)
	p := query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec([]byte("another secret")))
	resp, err := grpcapi.New(x, p, grpcapi.Options{}).SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "star", PageSize: 1})
	if err != nil || resp.GetNextPageToken() == "" {
		t.Fatalf("token from another secret: %v", err)
	}
	return resp.GetNextPageToken()
}

func TestRelevanceWindow(t *testing.T) {
	s, _ := newServer(t)
	// Pages of relevance order stop at the window: the parser refuses an
	// offset past it, so such a token cannot be made without the secret;
	// here the window is checked through the documented constant.
	if query.RelevanceWindow != 10000 {
		t.Fatalf("relevance window %d, documented as 10,000", query.RelevanceWindow)
	}
	resp, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "the", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTotalSize() <= 100 && resp.GetNextPageToken() != "" {
		t.Fatal("next page token on the last page")
	}
}

func TestSuggestTitles(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.SuggestTitles(t.Context(), &searchv1.SuggestTitlesRequest{Prefix: "casab"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetSuggestions()) == 0 || resp.GetSuggestions()[0].GetTitle() != "Casablanca" {
		t.Fatalf("casab -> %v, want Casablanca first", resp.GetSuggestions())
	}
	resp, err = s.SuggestTitles(t.Context(), &searchv1.SuggestTitlesRequest{Prefix: "s", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetSuggestions()); n != 50 {
		t.Fatalf("limit 500 gave %d suggestions, want the maximum 50", n)
	}
}

func TestCancelledSearch(t *testing.T) {
	s, _ := newServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.SearchMovies(ctx, &searchv1.SearchMoviesRequest{Q: "godfather"})
	if c := status.Code(err); c != codes.Canceled && c != codes.OK {
		t.Fatalf("cancelled search: %v", err)
	}
}
