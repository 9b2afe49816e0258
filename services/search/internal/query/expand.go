package query

import (
	"cmp"
	"context"
	"slices"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// maxExpansions bounds the terms one typo-tolerant or prefix term expands
// to in one field. Bleve's fuzzy and prefix queries match every term they
// reach: a three-letter prefix reaches thousands of terms in a million
// titles, and every hit then goes through a disjunction of them all. Only
// the closest and most frequent variants are kept.
const maxExpansions = 24

// expansion matches the typo variants (up to fuzziness edits, first rune
// fixed) and, when prefix is set, the completions of term in one field. It
// does not match term itself, which has its own, higher-scored clause.
type expansion struct {
	term      string
	field     string
	fuzziness int
	prefix    bool
	boost     float64
}

type candidate struct {
	term  string
	dist  uint8 // edit distance; completions count as 1
	count uint64
}

// Searcher implements Bleve's query.Query.
func (q *expansion) Searcher(ctx context.Context, r index.IndexReader, _ mapping.IndexMapping, opts search.SearcherOptions) (search.Searcher, error) {
	var cands []candidate
	seen := map[string]bool{q.term: true}
	add := func(d index.FieldDict, dist func(*index.DictEntry) uint8) error {
		defer func() { _ = d.Close() }()
		for {
			e, err := d.Next()
			if err != nil || e == nil {
				return err
			}
			if !seen[e.Term] {
				seen[e.Term] = true
				cands = append(cands, candidate{term: e.Term, dist: dist(e), count: e.Count})
			}
		}
	}
	if q.fuzziness > 0 {
		if fr, ok := r.(index.IndexReaderFuzzy); ok {
			first := q.term
			for i := range q.term {
				if i > 0 {
					first = q.term[:i]
					break
				}
			}
			d, err := fr.FieldDictFuzzy(q.field, q.term, q.fuzziness, first)
			if err != nil {
				return nil, err
			}
			if err := add(d, func(e *index.DictEntry) uint8 { return e.EditDistance }); err != nil {
				return nil, err
			}
		}
	}
	if q.prefix {
		d, err := r.FieldDictPrefix(q.field, []byte(q.term))
		if err != nil {
			return nil, err
		}
		if err := add(d, func(*index.DictEntry) uint8 { return 1 }); err != nil {
			return nil, err
		}
	}
	if len(cands) == 0 {
		return searcher.NewMatchNoneSearcher(r)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if a.dist != b.dist {
			return cmp.Compare(a.dist, b.dist)
		}
		return cmp.Compare(b.count, a.count)
	})
	cands = cands[:min(len(cands), maxExpansions)]
	terms := make([]string, len(cands))
	dists := make([]uint8, len(cands))
	for i, c := range cands {
		terms[i], dists[i] = c.term, c.dist
	}
	return searcher.NewMultiTermSearcherBoosted(ctx, r, terms, q.field, q.boost, dists, opts, false)
}
