package movie_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
)

func TestPlan(t *testing.T) {
	p, err := movie.NewPlanner()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		filter, order string
		want          string // Query.Key(), or the error reason
	}{
		{"", "", "sort=_id desc=false"},
		{"", "id desc", "sort=_id desc=true"},
		{"", "imdbScore desc", "sort=imdb_score desc=true"},
		{"", "imdbScore desc, id desc", "sort=imdb_score desc=true"},
		{"", "title", "sort=title_lower desc=false"},
		{"", "updateTime", "sort=update_time desc=false"},
		{`genres:"drama"`, "", `sort=_id desc=false eq=genres:s"Drama"`},
		{`genres = " science  FICTION"`, "popularity desc", `sort=popularity desc=true eq=genres:s"Science Fiction"`},
		{`genres:"Drama" AND imdbScore >= 8`, "imdbScore desc", `sort=imdb_score desc=true eq=genres:s"Drama" lo=f8:true`},
		{`imdbScore > 7.5 AND imdbScore <= 9 AND imdbScore < 8.5`, "imdbScore", `sort=imdb_score desc=false lo=f7.5:false hi=f8.5:false`},
		{`year = 1994`, "", `sort=_id desc=false eq=year:i1994`},
		{`year = 1994`, "year", `sort=year desc=false lo=i1994:true hi=i1994:true`},
		{`year >= 1990 AND genres:"Drama"`, "year desc", `sort=year desc=true eq=genres:s"Drama" lo=i1990:true`},
		{`directors.id = "d_X"`, "year", `sort=year desc=false eq=directors.id:s"d_X"`},
		{`directors.name:"Christopher Nolan"`, "", `sort=_id desc=false eq=directors.name:s"Christopher Nolan"`},
		{`title = "The Matrix"`, "", `sort=_id desc=false eq=title_lower:s"the matrix"`},
		{`title = "star*"`, "title", "sort=title_lower desc=false lo=s\"star\":true hi=s\"star\\U0010ffff\":false"},
		// Unsupported: valid, but no index serves it.
		{`year >= 1990`, "", movie.ReasonUnsupportedQuery},
		{`year >= 1990`, "imdbScore desc", movie.ReasonUnsupportedQuery},
		{`genres:"Drama" AND year = 1990`, "", movie.ReasonUnsupportedQuery},
		{`genres:"Drama" AND genres:"Comedy"`, "", movie.ReasonUnsupportedQuery},
		{`genres:"Drama" OR genres:"Comedy"`, "", movie.ReasonUnsupportedQuery},
		{`NOT genres:"Drama"`, "", movie.ReasonUnsupportedQuery},
		{`year != 1990`, "year", movie.ReasonUnsupportedQuery},
		{`directors.name:"X"`, "imdbScore", movie.ReasonUnsupportedQuery},
		{`title = "*star"`, "title", movie.ReasonUnsupportedQuery},
		{`title = "star*"`, "", movie.ReasonUnsupportedQuery},
		{"", "imdbScore desc, year", movie.ReasonUnsupportedQuery},
		{"", "imdbScore desc, id", movie.ReasonUnsupportedQuery},
		{`imdbScore >= 8`, "updateTime", movie.ReasonUnsupportedQuery},
		// Invalid: never a query at all.
		{`cast:"Tom Hanks"`, "", movie.ReasonInvalidFilter},
		{`year >= "1990"`, "year", movie.ReasonInvalidFilter},
		{`year >=`, "", movie.ReasonInvalidFilter},
		{`{"$where": "1"}`, "", movie.ReasonInvalidFilter},
		{"", "votes", movie.ReasonInvalidOrderBy},
		{"", "imdbScore sideways", movie.ReasonInvalidOrderBy},
		{strings.Repeat("a", 2001), "", movie.ReasonInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.filter+"|"+tt.order, func(t *testing.T) {
			q, err := p.Plan(tt.filter, tt.order)
			var got string
			var inv *movie.InvalidError
			switch {
			case errors.As(err, &inv):
				got = inv.Reason
				if inv.Reason == movie.ReasonUnsupportedQuery && !strings.Contains(inv.Message, "/v1/search/movies") {
					t.Errorf("unsupported message does not point to search: %s", inv.Message)
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			default:
				got = q.Key()
			}
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestEveryIndexIsReachable keeps MovieIndexes and the planner in step: each
// index serves at least one accepted query.
func TestEveryIndexIsReachable(t *testing.T) {
	p, _ := movie.NewPlanner()
	filters := map[string]string{movie.FieldGenres: `genres:"Drama"`, movie.FieldDirectorID: `directors.id="d_X"`,
		movie.FieldDirectorName: `directors.name="X"`, movie.FieldYear: "year=1990", movie.FieldIMDbScore: "imdbScore=8",
		movie.FieldPopularity: "popularity=8", movie.FieldTitleKey: `title="x"`}
	orders := map[string]string{movie.FieldIMDbScore: "imdbScore", movie.FieldPopularity: "popularity", movie.FieldYear: "year",
		movie.FieldTitleKey: "title", movie.FieldUpdateTime: "updateTime", movie.FieldID: ""}
	for _, ix := range movie.MovieIndexes {
		var filter, order string
		switch len(ix.Keys) {
		case 2:
			order = orders[ix.Keys[0]]
			if ix.Keys[0] == movie.FieldGenres || strings.HasPrefix(ix.Keys[0], "directors.") {
				filter = filters[ix.Keys[0]]
			}
		case 3:
			filter, order = filters[ix.Keys[0]], orders[ix.Keys[1]]
		}
		if _, err := p.Plan(filter, order); err != nil {
			t.Errorf("index %s: %q / %q refused: %v", ix.Name, filter, order, err)
		}
	}
}

func TestCursorTokens(t *testing.T) {
	p, _ := movie.NewPlanner()
	tokens := movie.NewTokens([]byte("k1"))
	q, _ := p.Plan("", "updateTime desc")
	c := movie.Cursor{Value: movie.Value{Kind: movie.KindTime, Time: time.UnixMilli(1_700_000_000_123).UTC()}, ID: "m_1"}
	tok, err := tokens.EncodeCursor(q, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokens.DecodeCursor(q, tok)
	if err != nil || got.ID != c.ID || !got.Value.Time.Equal(c.Value.Time) || got.Value.Kind != movie.KindTime {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	other, _ := p.Plan("", "imdbScore desc")
	reversed, _ := p.Plan("", "updateTime")
	drama, _ := p.Plan(`genres:"Drama"`, "")
	comedy, _ := p.Plan(`genres:"Comedy"`, "")
	dramaTok, _ := tokens.EncodeCursor(drama, movie.Cursor{Value: movie.Value{Kind: movie.KindString, Str: "m_1"}, ID: "m_1"})
	if _, err := tokens.DecodeCursor(drama, dramaTok); err != nil {
		t.Fatal(err)
	}
	tampered := []byte(tok)
	tampered[len(tampered)-2] ^= 1
	for name, tc := range map[string]struct {
		tokens *movie.Tokens
		q      *movie.Query
		tok    string
	}{
		"other filter": {tokens, comedy, dramaTok},
		"other field":  {tokens, other, tok},
		"other order":  {tokens, reversed, tok},
		"other key":    {movie.NewTokens([]byte("k2")), q, tok},
		"tampered":     {tokens, q, string(tampered)},
		"garbage":      {tokens, q, "!!!"},
		"empty-ish":    {tokens, q, "AA"},
	} {
		_, err := tc.tokens.DecodeCursor(tc.q, tc.tok)
		if !errors.Is(err, movie.ErrInvalidPageToken) {
			t.Errorf("%s: err = %v, want ErrInvalidPageToken", name, err)
		}
	}
}
