package query_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// FuzzParse holds the parser of search requests to its limits whatever q,
// filter, order_by, page_token and page_size are: it never panics; it refuses
// with an InvalidError naming one request field and an UPPER_SNAKE reason,
// or returns a request whose cost is bounded (page size 1..100, at most
// MaxQueryTokens tokens, at most MaxFilterTerms comparisons on known fields,
// orders on sortable fields, relevance only with text); a page token is
// accepted only if it carries the codec's MAC (checked here independently),
// and the token it issues for the next page resumes this query and no other.
func FuzzParse(f *testing.F) {
	for _, s := range []struct {
		q, filter, order, token string
		size                    int32
	}{
		{"", "", "", "", 0},
		{"godfathr", `genres:"Drama" AND year >= 1990`, "popularity desc", "", 10},
		{"Ame\u0301lie", `directors.name:"Jean-Pierre"`, "", "", -1},
		{`"unbalanced`, `title:"x`, "title", "", 1000},
		{`+a -b ~2 ^3 /re.*/ [x TO y] *:*`, `NOT (year < 1 OR imdbScore > 9.5)`, "year desc, title", "", 0},
		{strings.Repeat("word ", 200), "", "relevance", "", 0},
		{"x", strings.Repeat(`year = 1 OR `, 100) + "year = 2", "", "", 0},
		{"", `{"$gt": ""}`, "", "", 0},
		{"", `title:"{\"$ne\": null}"`, "$natural", "", 0},
		{"", "", "relevance", "", 0},
		{"x", "", "", "eyJ2IjoxLCJmIjoiIiwibyI6MTAwMDB9", 0},
		{"x", "", "", strings.Repeat("A", 5000), 0},
		{"\xff", "", "", "", 0},
	} {
		f.Add(s.q, s.filter, s.order, s.token, s.size)
	}
	secret := []byte("fuzz-secret")
	p := query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec(secret))
	fields := []string{"q", "filter", "order_by", "page_token", "page_size"}
	sortable := []query.SortField{query.SortPopularity, query.SortImdbScore, query.SortYear, query.SortTitle}
	f.Fuzz(func(t *testing.T, q, filter, order, token string, size int32) {
		in := query.Input{Q: q, Filter: filter, OrderBy: order, PageToken: token, PageSize: size}
		r, err := p.Parse(in)
		if err != nil {
			var ie *query.InvalidError
			if !errors.As(err, &ie) || !slices.Contains(fields, ie.Field) || ie.Reason == "" || ie.Reason != strings.ToUpper(ie.Reason) {
				t.Fatalf("Parse(%+v): %v (%T)", in, err, err)
			}
			return
		}
		if token != "" && !signed(secret, token) {
			t.Fatalf("accepted page token %q without the codec's MAC", token)
		}
		if r.PageSize < 1 || r.PageSize > query.MaxPageSize || len(r.Tokens) > query.MaxQueryTokens ||
			r.Text != strings.TrimSpace(r.Text) || (r.Relevance && !r.HasText()) || (!r.Relevance && len(r.Order) == 0) {
			t.Fatalf("Parse(%+v) = %+v", in, r)
		}
		for _, k := range r.Order {
			if !slices.Contains(sortable, k.Field) {
				t.Fatalf("order on %q", k.Field)
			}
		}
		if n := terms(t, r.Filter); n > query.MaxFilterTerms {
			t.Fatalf("%d comparisons in %q", n, filter)
		}
		if r.Relevance && r.Offset >= query.RelevanceWindow {
			t.Fatalf("offset %d past the relevance window", r.Offset)
		}

		// The next page's token resumes this query, and only this one.
		var next string
		if r.Relevance {
			next = p.NextToken(r, r.Offset+r.PageSize, nil)
		} else {
			c := &query.Cursor{ID: "m_x", Values: make([]query.Value, len(r.Order))}
			next = p.NextToken(r, 0, c)
		}
		if next == "" {
			return // the end of the relevance window
		}
		in.PageToken = next
		if _, err := p.Parse(in); err != nil {
			t.Fatalf("the next page of %+v: %v", in, err)
		}
		in.Q += " other"
		in.OrderBy = ""
		if _, err := p.Parse(in); err == nil {
			t.Fatalf("a token of %q was accepted by q=%q", q, in.Q)
		}
	})
}

// signed re-implements the token check: base64url of a 16-byte HMAC-SHA256,
// keyed with HMAC-SHA256("marquee search page token v1", secret), over the
// JSON body that follows it.
func signed(secret []byte, tok string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= 16 {
		return false
	}
	k := hmac.New(sha256.New, []byte("marquee search page token v1"))
	k.Write(secret)
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write(raw[16:])
	return hmac.Equal(raw[:16], m.Sum(nil)[:16])
}

// terms counts the comparisons of a filter and checks each names a known
// field with a finite number.
func terms(t *testing.T, e query.Expr) int {
	t.Helper()
	switch x := e.(type) {
	case nil:
		return 0
	case query.And:
		n := 0
		for _, y := range x {
			n += terms(t, y)
		}
		return n
	case query.Or:
		n := 0
		for _, y := range x {
			n += terms(t, y)
		}
		return n
	case query.Not:
		return terms(t, x.X)
	case query.Cmp:
		if x.Field == "" || math.IsNaN(x.Num) {
			t.Fatalf("comparison %+v", x)
		}
		return 1
	default:
		t.Fatalf("filter node %T", e)
		return 0
	}
}
