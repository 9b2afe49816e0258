package query_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

func parser() *query.Parser {
	return query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec([]byte("k")))
}

func TestParseDefaults(t *testing.T) {
	p := parser()
	r, err := p.Parse(query.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if r.HasText() || r.Relevance || r.PageSize != 20 || !reflect.DeepEqual(r.Order, []query.OrderKey{{Field: query.SortPopularity, Desc: true}}) {
		t.Errorf("discovery defaults: %+v", r)
	}
	r, err = p.Parse(query.Input{Q: "  Star   WARS ", PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Relevance || r.Key != "star wars" || r.PageSize != 100 || !reflect.DeepEqual(r.Tokens, []string{"star", "wars"}) {
		t.Errorf("text defaults: %+v", r)
	}
	r, err = p.Parse(query.Input{Q: strings.Repeat("word ", 60)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tokens) != query.MaxQueryTokens {
		t.Errorf("%d tokens, want at most %d", len(r.Tokens), query.MaxQueryTokens)
	}
}

func TestParseOrder(t *testing.T) {
	p := parser()
	r, err := p.Parse(query.Input{OrderBy: "imdbScore desc, title"})
	if err != nil {
		t.Fatal(err)
	}
	want := []query.OrderKey{{Field: query.SortImdbScore, Desc: true}, {Field: query.SortTitle}}
	if !reflect.DeepEqual(r.Order, want) {
		t.Errorf("order %+v, want %+v", r.Order, want)
	}
	for _, bad := range []string{"budget", "year up", "year, year", "title desc desc", ",", "relevance, year"} {
		if _, err := p.Parse(query.Input{Q: "x", OrderBy: bad}); !query.IsInvalid(err) {
			t.Errorf("order_by %q: %v, want invalid", bad, err)
		}
	}
}

func TestParseFilter(t *testing.T) {
	a := analysis.NewAnalyzer()
	for _, c := range []struct {
		in   string
		want query.Expr
	}{
		{`genres:"Drama" AND genres:"War"`, query.And{
			query.Cmp{Field: query.FieldGenres, Op: query.OpEq, Str: "drama"},
			query.Cmp{Field: query.FieldGenres, Op: query.OpEq, Str: "war"}}},
		{`genres = "Sci-Fi" OR year >= 1990`, query.Or{
			query.Cmp{Field: query.FieldGenres, Op: query.OpEq, Str: "sci fi"},
			query.Cmp{Field: query.FieldYear, Op: query.OpGe, Num: 1990}}},
		{`imdbScore > 8`, query.Cmp{Field: query.FieldImdbScore, Op: query.OpGt, Num: 8}},
		{`popularity <= 99.5`, query.Cmp{Field: query.FieldPopularity, Op: query.OpLe, Num: 99.5}},
		{`NOT directors.name:"Nolan"`, query.Not{X: query.Cmp{Field: query.FieldDirectorName, Op: query.OpContains, Str: "nolan"}}},
		{`directors.id != "d_1"`, query.Not{X: query.Cmp{Field: query.FieldDirectorID, Op: query.OpEq, Str: "d_1"}}},
		{`title = "The Godfather"`, query.Cmp{Field: query.FieldTitle, Op: query.OpEq, Str: "the godfather"}},
	} {
		got, err := query.ParseFilter(c.in, a)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`budget > 1`, `year = "x"`, `title > "a"`, `genres:`, `(year > 1`, `year > 1 AND`, `title:"a" OR OR`} {
		_, err := query.ParseFilter(bad, a)
		var ie *query.InvalidError
		if !errors.As(err, &ie) || ie.Field != "filter" {
			t.Errorf("%s: %v, want an invalid filter", bad, err)
		}
	}
}

func TestFuzziness(t *testing.T) {
	for term, want := range map[string]int{"oz": 0, "the": 0, "star": 1, "amelie": 1, "godfathr": 2, "éèê": 0, "ééééééé": 2} {
		if got := query.Fuzziness(term); got != want {
			t.Errorf("Fuzziness(%q) = %d, want %d", term, got, want)
		}
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	p := parser()
	r, err := p.Parse(query.Input{Q: "star", OrderBy: "year desc"})
	if err != nil {
		t.Fatal(err)
	}
	cur := &query.Cursor{Values: []query.Value{{Num: 1977}}, ID: "m_1"}
	tok := p.NextToken(r, 0, cur)
	r2, err := p.Parse(query.Input{Q: "STAR", OrderBy: "year desc", PageToken: tok, PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r2.After, cur) {
		t.Errorf("cursor %+v, want %+v", r2.After, cur)
	}
	rel, err := p.Parse(query.Input{Q: "star"})
	if err != nil {
		t.Fatal(err)
	}
	if tok := p.NextToken(rel, query.RelevanceWindow, nil); tok != "" {
		t.Error("a token past the relevance window was issued")
	}
	tok = p.NextToken(rel, 40, nil)
	r3, err := p.Parse(query.Input{Q: "star", PageToken: tok})
	if err != nil || r3.Offset != 40 {
		t.Errorf("relevance token: offset %d, %v", r3.Offset, err)
	}
}
