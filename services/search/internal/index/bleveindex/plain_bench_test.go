package bleveindex_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bq "github.com/blevesearch/bleve/v2/search/query"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/moviegen"
)

// The plain index is the baseline the search issue compares against: what a
// straightforward use of Bleve does with the same movies and the same
// questions. One index, Bleve's default field mappings (stored, with term
// vectors and doc values, in the _all field), documents added through the
// mapping in batches, and each query kind asked the obvious way. It is
// deliberately not tuned.

// plainBatchSize is the number of movies per index.Batch.
const plainBatchSize = 1000

// plainMovie is the document indexed for a movie; Bleve maps it through its
// JSON names.
type plainMovie struct {
	Title         string   `json:"title"`
	TitleLower    string   `json:"title_lower"` // the whole title, lower-cased, for prefix suggestions
	OriginalTitle string   `json:"original_title,omitempty"`
	Directors     []string `json:"directors"`
	Cast          []string `json:"cast"`
	Genres        []string `json:"genres"`
	Year          float64  `json:"year"`
	ImdbScore     float64  `json:"imdbScore"`
	Popularity    float64  `json:"popularity"`
	Votes         float64  `json:"votes"`
	Runtime       float64  `json:"runtime"`
}

func newPlainMovie(m *catalogv1.Movie) plainMovie {
	p := plainMovie{
		Title: m.GetTitle(), TitleLower: strings.ToLower(m.GetTitle()), OriginalTitle: m.GetOriginalTitle(),
		Cast: m.GetCast(), Genres: m.GetGenres(), Year: float64(m.GetYear()), ImdbScore: m.GetImdbScore(),
		Popularity: m.GetPopularity(), Votes: float64(m.GetVotes()), Runtime: float64(m.GetRuntimeMinutes()),
	}
	for _, d := range m.GetDirectors() {
		p.Directors = append(p.Directors, d.GetName())
	}
	return p
}

// newPlainMapping maps the movie's fields with Bleve's default field
// mappings: text fields with the standard analyzer, genres as keywords,
// numbers as numbers. Only the lower-cased title, a copy of the title for
// prefix queries, is left out of _all and not stored.
func newPlainMapping() *mapping.IndexMappingImpl {
	doc := bleve.NewDocumentMapping()
	for _, f := range []string{"title", "original_title", "directors", "cast"} {
		doc.AddFieldMappingsAt(f, bleve.NewTextFieldMapping())
	}
	doc.AddFieldMappingsAt("genres", bleve.NewKeywordFieldMapping())
	lower := bleve.NewKeywordFieldMapping()
	lower.Store = false
	lower.IncludeInAll = false
	doc.AddFieldMappingsAt("title_lower", lower)
	for _, f := range []string{"year", "imdbScore", "popularity", "votes", "runtime"} {
		doc.AddFieldMappingsAt(f, bleve.NewNumericFieldMapping())
	}
	m := bleve.NewIndexMapping()
	m.DefaultMapping = doc
	return m
}

// settle waits until the index has persisted everything and its merger has
// stopped, so that background merging neither runs into the query
// measurements nor leaves the disk figure mid-merge.
func settle(b *testing.B, idx bleve.Index) time.Duration {
	adv, err := idx.Advanced()
	if err != nil {
		b.Fatal(err)
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		b.Fatalf("plain index is %T, not scorch", adv)
	}
	num := func(m map[string]any, k string) uint64 {
		v, _ := m[k].(uint64)
		return v
	}
	start := time.Now()
	deadline := start.Add(30 * time.Minute)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last [3]uint64
	stable := 0
	for range tick.C {
		m := s.StatsMap()
		cur := [3]uint64{num(m, "num_root_filesegments"), num(m, "TotFileMergeZapEnd"), num(m, "TotPersistedSegments")}
		busy := num(m, "num_root_memorysegments") > 0 || num(m, "TotFileMergeZapBeg") != num(m, "TotFileMergeZapEnd")
		if !busy && cur == last {
			stable++
		} else {
			stable = 0
		}
		last = cur
		if stable >= 3 {
			b.Logf("plain index settled in %.1fs: %d segments", time.Since(start).Seconds(), cur[0])
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("plain index still merging after %s", time.Since(start))
		}
	}
	return time.Since(start)
}

func benchPlain(b *testing.B, n int, gen *moviegen.Generator, qs []benchQuery) *benchFigures {
	dir := filepath.Join(b.TempDir(), "plain")
	reuse := false
	if d := os.Getenv("MARQUEE_BENCH_SEARCH_DIR"); d != "" {
		dir = filepath.Join(d, "plain-"+strconv.Itoa(n))
		_, err := os.Stat(filepath.Join(dir, "index_meta.json"))
		reuse = err == nil
	}
	fig := &benchFigures{}
	var build, settled time.Duration
	var buildCPU time.Duration
	if !reuse {
		start, cpu0 := time.Now(), cpuTime()
		idx, err := bleve.New(dir, newPlainMapping())
		if err != nil {
			b.Fatal(err)
		}
		batch := idx.NewBatch()
		for i := 0; i < n; i++ {
			m := gen.Movie(i)
			if err := batch.Index(m.GetId(), newPlainMovie(m)); err != nil {
				b.Fatal(err)
			}
			if batch.Size() >= plainBatchSize || i == n-1 {
				if err := idx.Batch(batch); err != nil {
					b.Fatal(err)
				}
				batch.Reset()
			}
		}
		build, buildCPU = time.Since(start), cpuTime()-cpu0
		fig.buildDocsPerSec = float64(n) / build.Seconds()
		settled = settle(b, idx)
		if err := idx.Close(); err != nil {
			b.Fatal(err)
		}
	}
	heap0 := heapInUse()
	start := time.Now()
	idx, err := bleve.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = idx.Close() }()
	open := time.Since(start)
	heap := int64(heapInUse()) - int64(heap0) // mapped segments are not heap: about 0
	fig.diskBytes = dirSize(dir)
	b.Logf("plain movies=%d build %.1fs (%.0f docs/s), merges settled %.1fs later, open %.1fs; heap %.0f MB; disk %.0f MB (%.0f MB per million)",
		n, build.Seconds(), fig.buildDocsPerSec, settled.Seconds(), open.Seconds(), float64(heap)/1e6,
		float64(fig.diskBytes)/1e6, float64(fig.diskBytes)/float64(n))
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
		}
		if !reuse {
			b.ReportMetric(fig.buildDocsPerSec, "build-docs/s")
			b.ReportMetric(2*float64(n)/buildCPU.Seconds(), "build-docs/s-2cores")
			b.ReportMetric(settled.Seconds(), "settle-s")
		}
		b.ReportMetric(open.Seconds(), "open-s")
		b.ReportMetric(float64(fig.diskBytes)/float64(n), "disk-MB/1M")
		b.ReportMetric(float64(heap)/float64(n), "heap-MB/1M")
		b.ReportMetric(0, "ns/op")
	})

	const pageSize = 20
	nq := len(qs)
	// Every search returns a page of movies with their stored fields, as
	// ours returns the page's movies.
	search := func(req func(q benchQuery) *bleve.SearchRequest) func(i int) {
		return func(i int) {
			r := req(qs[i%nq])
			r.Fields = []string{"*"}
			if _, err := idx.SearchInContext(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	}
	yearFrom := func(y int) bq.Query {
		lo, inclusive := float64(y), true
		q := bleve.NewNumericRangeInclusiveQuery(&lo, nil, &inclusive, nil)
		q.SetField("year")
		return q
	}
	genre := func(g string) bq.Query {
		q := bleve.NewTermQuery(g)
		q.SetField("genres")
		return q
	}
	// Fuzzy text: a match query over _all, every term required, typos
	// tolerated by term length (Bleve's "auto" fuzziness), with the genre
	// and year filters as further clauses; ordered by score.
	fuzzy := func(q benchQuery) *bleve.SearchRequest {
		text := bleve.NewMatchQuery(q.text)
		text.SetAutoFuzziness(true)
		text.SetOperator(bq.MatchQueryOperatorAnd)
		return bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(text, genre(q.genre), yearFrom(q.fromYear)), pageSize, 0, false)
	}
	// Discovery: everything (or one genre), by popularity.
	discovery := func(q benchQuery) *bleve.SearchRequest {
		var query bq.Query = bleve.NewMatchAllQuery()
		if q.discoveryGenre != "" {
			query = genre(q.discoveryGenre)
		}
		r := bleve.NewSearchRequestOptions(query, pageSize, 0, false)
		r.SortBy([]string{"-popularity"})
		return r
	}
	// Facets: the same filtered discovery as ours (year >= y, by score),
	// with a genres terms facet and a decades numeric-range facet.
	facets := func(q benchQuery) *bleve.SearchRequest {
		r := bleve.NewSearchRequestOptions(yearFrom(q.facetsFromYear), pageSize, 0, false)
		r.SortBy([]string{"-imdbScore"})
		r.AddFacet("genres", bleve.NewFacetRequest("genres", 100))
		decades := bleve.NewFacetRequest("year", 20)
		for d := 1880; d <= 2030; d += 10 {
			lo, hi := float64(d), float64(d+10)
			decades.AddNumericRange(strconv.Itoa(d)+"s", &lo, &hi)
		}
		r.AddFacet("decades", decades)
		return r
	}
	// Suggest: a prefix query on the lower-cased title, by popularity.
	suggest := func(q benchQuery) *bleve.SearchRequest {
		p := bleve.NewPrefixQuery(q.prefix)
		p.SetField("title_lower")
		r := bleve.NewSearchRequestOptions(p, 10, 0, false)
		r.SortBy([]string{"-popularity"})
		return r
	}
	b.Run("fuzzy_text_filters", func(b *testing.B) { fig.fuzzy = latency(b, search(fuzzy)) })
	b.Run("discovery_popularity", func(b *testing.B) { fig.discovery = latency(b, search(discovery)) })
	b.Run("facets_filtered_discovery", func(b *testing.B) { fig.facets = latency(b, search(facets)) })
	b.Run("suggest", func(b *testing.B) { fig.suggest = latency(b, search(suggest)) })
	// After the timed runs, so that it warms no cache for them.
	checkPlainQueries(b, idx, qs, "fuzzy text with filters", fuzzy)
	checkPlainQueries(b, idx, qs, "suggest", suggest)
	return fig
}

// checkPlainQueries logs how many of a sample of queries find movies, to
// compare with ours: the baseline must not be fast for answering nothing.
func checkPlainQueries(b *testing.B, idx bleve.Index, qs []benchQuery, kind string, req func(benchQuery) *bleve.SearchRequest) {
	var found int
	sample := qs[:min(len(qs), 50)]
	for _, q := range sample {
		res, err := idx.Search(req(q))
		if err != nil {
			b.Fatal(err)
		}
		if res.Total > 0 {
			found++
		}
	}
	b.Logf("plain %s: %d of %d sample queries find movies", kind, found, len(sample))
}

// reportRatios reports how ours compares with the plain index in the same
// run: each figure is "times better", so above 1 where ours is faster or
// smaller.
func reportRatios(b *testing.B, n int, ours, plain *benchFigures) {
	if ours == nil || plain == nil {
		b.Skip("both indexes must be measured in this run")
	}
	faster := func(o, p float64) float64 {
		if o <= 0 || p <= 0 {
			return math.NaN()
		}
		return p / o
	}
	type row struct {
		name, unit string
		ours       []float64
		plain      []float64
		ratio      []float64
		metric     []string
	}
	lat := func(name string, o, p percentiles) row {
		return row{name, "ms", []float64{o.p50, o.p95}, []float64{p.p50, p.p95},
			[]float64{faster(o.p50, p.p50), faster(o.p95, p.p95)}, []string{name + "-p50-x", name + "-p95-x"}}
	}
	rows := []row{
		{"build", "docs/s", []float64{ours.buildDocsPerSec}, []float64{plain.buildDocsPerSec},
			[]float64{faster(plain.buildDocsPerSec, ours.buildDocsPerSec)}, []string{"build-x"}},
		lat("fuzzy", ours.fuzzy, plain.fuzzy),
		lat("discovery", ours.discovery, plain.discovery),
		lat("facets", ours.facets, plain.facets),
		lat("suggest", ours.suggest, plain.suggest),
		{"disk", "MB", []float64{float64(ours.diskBytes) / 1e6}, []float64{float64(plain.diskBytes) / 1e6},
			[]float64{faster(float64(ours.diskBytes), float64(plain.diskBytes))}, []string{"disk-x"}},
	}
	for b.Loop() {
	}
	// At most ten lines: go test shortens longer benchmark logs without -v.
	join := func(xs []float64, f string) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprintf(f, x)
		}
		return strings.Join(s, " / ")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "movies=%d, ours | plain Bleve | ratio (above 1: ours better); latencies p50 / p95\n", n)
	for _, r := range rows {
		fmt.Fprintf(&sb, "  %-9s %s | %s %s | %s\n", r.name, join(r.ours, "%.3f"), join(r.plain, "%.3f"), r.unit, join(r.ratio, "%.2fx"))
		for i, m := range r.metric {
			if !math.IsNaN(r.ratio[i]) {
				b.ReportMetric(r.ratio[i], m)
			}
		}
	}
	b.Log(sb.String())
	b.ReportMetric(0, "ns/op")
}
