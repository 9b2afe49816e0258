package query

import (
	"math"

	bq "github.com/blevesearch/bleve/v2/search/query"
)

// Index field names. They are part of the on-disk format: the index
// mapping and the text query below must agree on them. The inverted index
// holds only what text matching needs; filters, orders and facets are
// evaluated on the column table that the row field points into.
const (
	FieldTextTitle         = "title"          // analyzed title, with positions for phrases
	FieldTextOriginalTitle = "original_title" // analyzed original title
	FieldTitleKey          = "title_key"      // canonical title, one keyword: exact match and title order
	FieldTextDirectors     = "directors"      // analyzed director names
	FieldTextCast          = "cast"           // analyzed cast names
	FieldSource            = "_src"           // the movie, stored only
	FieldRow               = "row"            // the movie's slot in its partition's column table, 8 hex digits
)

// Missing stands for an unknown year, score or popularity. Every real value
// is >= 0, so it sorts lowest (last in descending orders, as in MongoDB) and
// range filters exclude it by starting at 0.
const Missing = -1.0

// Boosts of the clauses of a text query: an exact title first, then the
// title as a phrase, then titles containing every term, then people.
const (
	boostExact     = 12.0
	boostPhrase    = 5.0
	boostTitle     = 3.0
	boostOriginal  = 1.5
	boostDirectors = 1.5
	boostCast      = 0.6
)

// Fuzziness returns the edit distance tolerated for a term: none for short
// terms, where one edit changes the word, 1 up to six characters, 2 beyond
// (the most Bleve's automaton supports, which bounds the expansion cost).
func Fuzziness(term string) int {
	n := len([]rune(term))
	switch {
	case n <= 3:
		return 0
	case n <= 6:
		return 1
	default:
		return 2
	}
}

// minPrefixLen is the shortest last term that is also matched as a prefix:
// shorter ones are mostly whole little words ("the", "of"), whose
// completions cost far more than they find (title completion is Suggest's
// job).
const minPrefixLen = 4

// termVariants matches one token in one field: exactly (scored higher), with
// typos up to maxFuzz edits, and as a prefix when prefix is set.
func termVariants(tok, field string, boost float64, maxFuzz int, prefix bool) bq.Query {
	exact := bq.NewTermQuery(tok)
	exact.SetField(field)
	exact.SetBoost(2 * boost)
	f := min(Fuzziness(tok), maxFuzz)
	prefix = prefix && len([]rune(tok)) >= minPrefixLen
	if f == 0 && !prefix {
		return exact
	}
	return bq.NewDisjunctionQuery([]bq.Query{exact, &expansion{term: tok, field: field, fuzziness: f, prefix: prefix, boost: boost}})
}

// TextQuery is the scoring query for r's text: the exact title (boosted
// highest), the title as a phrase, and every term found in the title,
// original title, directors or cast, with typos tolerated by term length and
// the last term also matched as a title prefix. A title holding every term
// outscores a match spread over people, since title clauses weigh more.
func TextQuery(r *Request) bq.Query {
	toks := r.Tokens
	exact := bq.NewTermQuery(r.Key)
	exact.SetField(FieldTitleKey)
	exact.SetBoost(boostExact)
	clauses := []bq.Query{exact}
	if len(toks) > 1 {
		ph := bq.NewPhraseQuery(toks, FieldTextTitle)
		ph.SetBoost(boostPhrase)
		clauses = append(clauses, ph)
	}
	per := make([]bq.Query, len(toks))
	for i, t := range toks {
		last := i == len(toks)-1
		per[i] = bq.NewDisjunctionQuery([]bq.Query{
			termVariants(t, FieldTextTitle, boostTitle, 2, last),
			termVariants(t, FieldTextOriginalTitle, boostOriginal, 1, false),
			termVariants(t, FieldTextDirectors, boostDirectors, 2, false),
			// Cast is the largest dictionary; one edit keeps its cost down.
			termVariants(t, FieldTextCast, boostCast, 1, false),
		})
	}
	clauses = append(clauses, bq.NewConjunctionQuery(per))
	return bq.NewDisjunctionQuery(clauses)
}

// NumericBounds returns the inclusive range [lo, hi] of known values that
// satisfy "field op v". Unknown values (Missing) are below lo.
func NumericBounds(op Op, v float64) (lo, hi float64) {
	lo, hi = 0, math.MaxFloat64
	switch op {
	case OpEq, OpContains:
		if v < 0 {
			return 1, 0 // no known value is negative
		}
		lo, hi = v, v
	case OpLt:
		hi = math.Nextafter(v, math.Inf(-1))
	case OpLe:
		hi = v
	case OpGt:
		lo = math.Max(0, math.Nextafter(v, math.Inf(1)))
	case OpGe:
		lo = math.Max(0, v)
	}
	return lo, hi
}
