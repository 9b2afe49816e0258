package bleveindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search"
	bq "github.com/blevesearch/bleve/v2/search/query"
	bleveindexapi "github.com/blevesearch/bleve_index_api"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// Search runs r: text through Bleve, discovery through the tables.
func (x *Index) Search(ctx context.Context, r *query.Request) (*index.Result, error) {
	g, release, err := x.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	if r.HasText() {
		return x.searchText(ctx, g, r)
	}
	return x.discover(ctx, g, r)
}

// discover scans every partition's table in parallel for the page, the total
// and the facets, then loads the page's movies.
func (x *Index) discover(ctx context.Context, g *generation, r *query.Request) (*index.Result, error) {
	p := compile(r.Filter, g.dicts)
	nGenres := g.dicts.genreCount()
	cs := make([]*collector, len(g.parts))
	var wg sync.WaitGroup
	for i, part := range g.parts {
		wg.Go(func() { cs[i] = part.tbl.scan(p, r, r.PageSize, nGenres) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return g.merge(r, cs, nGenres)
}

// merge combines the partitions' collectors into the page.
func (g *generation) merge(r *query.Request, cs []*collector, nGenres int) (*index.Result, error) {
	res := &index.Result{}
	genres := make([]int64, nGenres+1)
	decades := make([]int64, 40)
	var after int64
	var top []*hitRow
	for _, c := range cs {
		res.Total += c.total
		after += c.after
		top = append(top, c.top...)
		for o, n := range c.genres {
			if o < len(genres) {
				genres[o] += n
			}
		}
		for d, n := range c.decades {
			decades[d] += n
		}
	}
	slices.SortFunc(top, func(a, b *hitRow) int { return compareHits(r, a, b) })
	if r.Relevance {
		start := min(r.Offset, len(top))
		top = top[start:min(len(top), start+r.PageSize)]
		res.More = int64(r.Offset+len(top)) < res.Total && r.Offset+len(top) < query.RelevanceWindow
	} else {
		top = top[:min(len(top), r.PageSize)]
		res.More = after > int64(len(top))
		if len(top) > 0 {
			res.Last = top[len(top)-1].cursor
		}
	}
	res.Genres, res.Decades = facetCounts(g.dicts, genres, decades)
	if len(res.Genres) > maxGenreFacets {
		res.Genres = res.Genres[:maxGenreFacets]
	}
	ids := make([]string, len(top))
	for i, h := range top {
		ids[i] = h.id
	}
	movies, err := g.load(ids)
	if err != nil {
		return nil, err
	}
	for i, m := range movies {
		if m != nil {
			hit := index.Hit{Movie: m}
			if r.Relevance {
				hit.Score = top[i].score
			}
			res.Hits = append(res.Hits, hit)
		}
	}
	return res, nil
}

// load reads stored movies by id from their partitions; a movie deleted in
// the meantime comes back nil.
func (g *generation) load(ids []string) ([]*catalogv1.Movie, error) {
	out := make([]*catalogv1.Movie, len(ids))
	for i, id := range ids {
		p := g.parts[partitionOf(id, len(g.parts))]
		doc, err := p.idx.Document(id)
		if err != nil {
			return nil, fmt.Errorf("loading movie %s: %w", id, err)
		}
		if doc == nil {
			continue
		}
		m, err := storedMovie(id, doc)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// searchText matches the text in every partition's inverted index in
// parallel. Each hit's table slot comes from the slot cache; the filter,
// facets, total and ordering are then done on the table, as in discovery,
// instead of with Bleve's per-hit doc-value sorting and faceting (several
// fields per hit) and its filter searcher.
func (x *Index) searchText(ctx context.Context, g *generation, r *query.Request) (*index.Result, error) {
	q := query.TextQuery(r)
	p := compile(r.Filter, g.dicts)
	nGenres := g.dicts.genreCount()
	k := r.PageSize
	if r.Relevance {
		k = min(r.Offset+r.PageSize, query.RelevanceWindow)
	}
	cs := make([]*collector, len(g.parts))
	errs := make([]error, len(g.parts))
	var wg sync.WaitGroup
	for i, part := range g.parts {
		wg.Go(func() { cs[i], errs[i] = part.matchText(ctx, q, p, r, k, nGenres) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return g.merge(r, cs, nGenres)
}

// scoringModel tells Bleve's searchers to use its default (tf-idf) scoring,
// as a Bleve search request would.
func scoringModel(ctx context.Context) context.Context {
	return context.WithValue(ctx, search.GetScoringModelCallbackKey,
		search.GetScoringModelCallbackFn(func() string { return bleveindexapi.DefaultScoringModel }))
}

// matchText feeds every hit of q in the partition to a collector.
func (p *partition) matchText(ctx context.Context, q bq.Query, pr pred, r *query.Request, k, nGenres int) (*collector, error) {
	adv, err := p.idx.Advanced()
	if err != nil {
		return nil, err
	}
	reader, err := adv.Reader()
	if err != nil {
		return nil, fmt.Errorf("opening partition reader: %w", err)
	}
	defer func() { _ = reader.Close() }()
	snap, ok := reader.(*scorch.IndexSnapshot)
	if !ok {
		return nil, fmt.Errorf("partition reader is %T, not a scorch snapshot", reader)
	}
	slots, offsets, err := p.slots.forSnapshot(snap)
	if err != nil {
		return nil, err
	}
	lookup := slotLookup{slots: slots, offsets: offsets}
	opts := search.SearcherOptions{}
	if !r.Relevance {
		opts.Score = "none" // a field order needs no scores
	}
	s, err := q.Searcher(scoringModel(ctx), reader, p.idx.Mapping(), opts)
	if err != nil {
		return nil, fmt.Errorf("preparing the query: %w", err)
	}
	defer func() { _ = s.Close() }()
	sc := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(s.DocumentMatchPoolSize(), 0), IndexReader: reader}

	t := p.tbl
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := newCollector(t, pr, r, k, nGenres)
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d, err := s.Next(sc)
		if err != nil {
			return nil, fmt.Errorf("matching: %w", err)
		}
		if d == nil {
			break
		}
		slot, found := lookup.slot(d.IndexInternalID)
		score := d.Score
		sc.DocumentMatchPool.Put(d)
		if found {
			c.add(slot, score)
		}
	}
	c.finish()
	return c, nil
}

// Suggest completes prefix from the live generation's completion structure.
func (x *Index) Suggest(ctx context.Context, prefix string, limit int) ([]index.Suggestion, error) {
	g, release, err := x.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	key := x.analyzer.Key(prefix)
	if key == "" {
		return nil, nil
	}
	// A trailing space means the last word is complete: "star " should not
	// offer "Stardust".
	if r := []rune(prefix); unicode.IsSpace(r[len(r)-1]) {
		key += " "
	}
	es := g.sugg.Lookup(key, limit, g.valid)
	out := make([]index.Suggestion, len(es))
	for i, e := range es {
		out[i] = index.Suggestion{ID: e.ID, Title: e.Title, Year: e.Year, Popularity: max(e.Popularity, 0)}
	}
	return out, ctx.Err()
}
