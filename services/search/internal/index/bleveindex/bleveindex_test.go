package bleveindex_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/index/bleveindex"
	"github.com/marquee-dev/marquee/services/search/internal/query"
	"github.com/marquee-dev/marquee/services/search/internal/testindex"
)

func openFixtures(t testing.TB, partitions int) (*bleveindex.Index, []*catalogv1.Movie) {
	return testindex.Fixtures(t, partitions)
}

func newParser() *query.Parser {
	return query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec([]byte("test")))
}

func search(t testing.TB, x index.Index, in query.Input) *index.Result {
	t.Helper()
	r, err := newParser().Parse(in)
	if err != nil {
		t.Fatalf("parse %+v: %v", in, err)
	}
	res, err := x.Search(t.Context(), r)
	if err != nil {
		t.Fatalf("search %+v: %v", in, err)
	}
	return res
}

func titles(res *index.Result) []string {
	var out []string
	for _, h := range res.Hits {
		out = append(out, fmt.Sprintf("%s (%d) %s", h.Movie.GetTitle(), h.Movie.GetYear(), h.Movie.GetId()))
	}
	return out
}

func TestRelevance(t *testing.T) {
	x, _ := openFixtures(t, 2)
	cases := []struct {
		q     string
		want  string // a title expected in the top three
		first bool   // ... and first
	}{
		{q: "godfathr", want: "The Godfather"},
		{q: "STAR WARS", want: "Star Wars", first: true},
		{q: "wizard of oz", want: "The Wizard of Oz", first: true},
		{q: "coppola", want: "The Godfather"},
		{q: "nolan", want: "Inception"},
		{q: "amelie", want: "Amélie", first: true},
		{q: "Ame\u0301lie", want: "Amélie", first: true},
		{q: "AMÉLIE", want: "Amélie", first: true},
		{q: "The Thing", want: "The Thing", first: true},
		{q: "casablanka", want: "Casablanca", first: true},
		{q: "leon professional", want: "Léon: The Professional", first: true},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) {
			res := search(t, x, query.Input{Q: c.q, PageSize: 3})
			got := titles(res)
			var found bool
			for i, h := range res.Hits {
				if h.Movie.GetTitle() == c.want {
					found = !c.first || i == 0
					break
				}
			}
			if !found {
				t.Errorf("q=%q: want %q in the top three (first=%v), got %q", c.q, c.want, c.first, got)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	x, _ := openFixtures(t, 2)
	for _, c := range []struct{ prefix, want string }{
		{"casab", "Casablanca"},
		{"CASAB", "Casablanca"},
		{"godf", "The Godfather"},
		{"the godf", "The Godfather"},
		{"amé", "Amélie"},
		{"ame\u0301", "Amélie"},
	} {
		got, err := x.Suggest(t.Context(), c.prefix, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ts []string
		for _, s := range got {
			ts = append(ts, s.Title)
		}
		if !slices.Contains(ts, c.want) {
			t.Errorf("Suggest(%q) = %q, want %q among them", c.prefix, ts, c.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Popularity > got[i-1].Popularity {
				t.Errorf("Suggest(%q) not ordered by popularity: %v", c.prefix, got)
			}
		}
	}
	if got, _ := x.Suggest(t.Context(), "zzzzqqq", 10); len(got) != 0 {
		t.Errorf("Suggest(zzzzqqq) = %v, want none", got)
	}
	_ = strings.ToLower
}
