package bleveindex_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/index/bleveindex"
	"github.com/marquee-dev/marquee/services/search/internal/moviegen"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// benchSizes are the catalogue sizes benchmarked; MARQUEE_BENCH_SEARCH_SIZE
// replaces them with one size (1000000 for the capacity figures).
func benchSizes(b *testing.B) []int {
	if v := os.Getenv("MARQUEE_BENCH_SEARCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("MARQUEE_BENCH_SEARCH_SIZE=%q is not a positive number", v)
		}
		return []int{n}
	}
	return []int{10_000, 100_000}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func heapInUse() uint64 {
	// Two collections: sync.Pool keeps its victims through one.
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// cpuTime is the CPU time (user and system) the process has used. On this
// shared 2-core machine wall-clock latencies include waiting for a core;
// CPU time per operation is the load-independent figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// minSamples is the fewest queries latency times, whatever b.N is: with
// -benchtime 1x a percentile of one query would say little.
const minSamples = 200

// latency runs op b.N times (and more, up to minSamples) and reports p50
// and p95 in ms, and the mean CPU time per operation. It returns the
// percentiles for the comparison with the plain index.
func latency(b *testing.B, op func(i int)) percentiles {
	ds := make([]time.Duration, 0, max(b.N, minSamples))
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for ; b.Loop(); i++ {
		t := time.Now()
		op(i)
		ds = append(ds, time.Since(t))
	}
	for ; i < minSamples; i++ {
		t := time.Now()
		op(i)
		ds = append(ds, time.Since(t))
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(ds)), "cpu-ms/op")
	slices.Sort(ds)
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Nanoseconds()) / 1e6
	}
	pc := percentiles{p50: q(0.50), p95: q(0.95)}
	b.ReportMetric(pc.p50, "p50-ms")
	b.ReportMetric(pc.p95, "p95-ms")
	b.ReportMetric(0, "ns/op")
	return pc
}

// typo changes one letter of words longer than four letters.
func typo(r *rand.Rand, w string) string {
	rs := []rune(strings.ToLower(w))
	if len(rs) <= 4 {
		return string(rs)
	}
	i := 1 + r.IntN(len(rs)-1)
	rs[i] = rune('a' + r.IntN(26))
	return string(rs)
}

func titleWords(title string) []string {
	var long []string
	for _, w := range strings.Fields(title) {
		if len(w) > 3 {
			long = append(long, w)
		}
	}
	return long
}

var benchGenres = []string{"Drama", "Comedy", "Thriller", "Action", "Romance", "Adventure", "Crime"}

// BenchmarkIndex builds an index of synthetic movies with the offline
// builder (partitions in parallel) and measures the query kinds of the
// capacity targets on it; then, in the same run, a plain Bleve index of the
// same movies with the same queries (the "plain" sub-benchmarks), and the
// ratios of the two ("vs_plain": above 1 where ours is better).
func BenchmarkIndex(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("movies=%d", n), func(b *testing.B) {
			gen := moviegen.New(42, n)
			qs := newBenchQueries(gen, n)
			ours := benchIndex(b, n, gen, qs)
			var plain *benchFigures
			b.Run("plain", func(b *testing.B) { plain = benchPlain(b, n, gen, qs) })
			b.Run("vs_plain", func(b *testing.B) { reportRatios(b, n, ours, plain) })
		})
	}
}

// benchQuery holds the parameters of one query of each kind, so that both
// indexes answer the same questions.
type benchQuery struct {
	text           string // one or two title words, one with a typo
	genre          string // the fuzzy query's genre filter
	fromYear       int    // ... and its year filter (year >= fromYear)
	discoveryGenre string // the discovery filter: none, or a genre
	facetsFromYear int    // the facets query's filter (year >= facetsFromYear)
	prefix         string // a suggest prefix: the start of a lower-cased title
}

// benchQueryCount is the number of distinct queries of each kind.
const benchQueryCount = 512

func newBenchQueries(gen *moviegen.Generator, n int) []benchQuery {
	r := rand.New(rand.NewPCG(7, 7))
	qs := make([]benchQuery, benchQueryCount)
	for i := range qs {
		// What a person types to find a film: one or two of its title's
		// words of four letters or more, one with a typo. Queries of little
		// words only ("the") are measured on their own (broad_text_facets).
		m := gen.Movie(r.IntN(n))
		words := titleWords(m.GetTitle())
		for len(words) == 0 {
			m = gen.Movie(r.IntN(n))
			words = titleWords(m.GetTitle())
		}
		k := min(len(words), 1+r.IntN(2))
		q := slices.Clone(words[:k])
		j := r.IntN(k)
		q[j] = typo(r, q[j])
		g := benchGenres[r.IntN(len(benchGenres))]
		qs[i].text, qs[i].genre, qs[i].fromYear = strings.Join(q, " "), g, 1950+r.IntN(50)
		qs[i].discoveryGenre = []string{"", g}[i%2]
		qs[i].facetsFromYear = 1950 + r.IntN(60)
		t := strings.ToLower(m.GetTitle())
		qs[i].prefix = t[:min(len(t), 2+r.IntN(5))]
	}
	return qs
}

// percentiles are query latencies in ms.
type percentiles struct{ p50, p95 float64 }

// benchFigures are what the comparison with the plain index needs from one
// index: zero where a figure was not measured.
type benchFigures struct {
	buildDocsPerSec float64
	diskBytes       int64
	fuzzy           percentiles
	discovery       percentiles
	facets          percentiles
	suggest         percentiles
}

func benchIndex(b *testing.B, n int, gen *moviegen.Generator, qs []benchQuery) *benchFigures {
	// MARQUEE_BENCH_SEARCH_DIR keeps the index between runs (per size), so
	// query benchmarks can be repeated without rebuilding a million movies.
	dir := b.TempDir()
	reuse := false
	if d := os.Getenv("MARQUEE_BENCH_SEARCH_DIR"); d != "" {
		dir = filepath.Join(d, strconv.Itoa(n))
		_, err := os.Stat(filepath.Join(dir, "CURRENT"))
		reuse = err == nil
	}
	heap0 := heapInUse()
	start, cpu0 := time.Now(), cpuTime()
	x, err := bleveindex.Open(context.Background(), bleveindex.Options{Dir: dir, Partitions: runtime.NumCPU(), SuggestInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if reuse {
		b.Logf("reopened %s in %.1fs", dir, time.Since(start).Seconds())
	} else {
		err = x.Replace(context.Background(), func(ctx context.Context, add func(*catalogv1.Movie) error) (string, error) {
			for i := 0; i < n; i++ {
				if err := add(gen.Movie(i)); err != nil {
					return "", err
				}
			}
			return "bench", nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start) // building plus opening the result (loading the tables)
	buildCPU := cpuTime() - cpu0
	// Reopen to time the load alone: building is the difference.
	if err := x.Close(); err != nil {
		b.Fatal(err)
	}
	heap0 = heapInUse()
	start, cpu0 = time.Now(), cpuTime()
	x, err = bleveindex.Open(context.Background(), bleveindex.Options{Dir: dir, Partitions: runtime.NumCPU(), SuggestInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = x.Close() }()
	open, openCPU := time.Since(start), cpuTime()-cpu0
	heap := heapInUse() - heap0
	disk := dirSize(dir)
	build := took - open
	if reuse {
		build = 0
	}
	b.Logf("movies=%d build %.1fs (%.0f docs/s), open %.1fs; heap %.0f MB (%.0f MB per million); disk %.0f MB (%.0f MB per million); GOMAXPROCS=%d",
		n, build.Seconds(), float64(n)/build.Seconds(), open.Seconds(), float64(heap)/1e6, float64(heap)/1e6*1e6/float64(n),
		float64(disk)/1e6, float64(disk)/1e6*1e6/float64(n), runtime.GOMAXPROCS(0))
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
		}
		if !reuse {
			b.ReportMetric(float64(n)/build.Seconds(), "build-docs/s")
			// What two otherwise idle cores would do: documents per CPU
			// second, times two.
			b.ReportMetric(2*float64(n)/(buildCPU-openCPU).Seconds(), "build-docs/s-2cores")
		}
		b.ReportMetric(open.Seconds(), "open-s")
		b.ReportMetric(float64(disk)/float64(n)*1e6/1e6, "disk-MB/1M")
		b.ReportMetric(float64(heap)/float64(n)*1e6/1e6, "heap-MB/1M")
		b.ReportMetric(0, "ns/op")
	})
	parser := newParser()
	run := func(in query.Input) *query.Request {
		r, err := parser.Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	// Queries are built up front so only the search is timed.
	nq := len(qs)
	fuzzy := make([]*query.Request, nq)
	discovery := make([]*query.Request, nq)
	facets := make([]*query.Request, nq)
	for i, q := range qs {
		fuzzy[i] = run(query.Input{Q: q.text, Filter: fmt.Sprintf(`genres:%q AND year >= %d`, q.genre, q.fromYear)})
		var f string
		if q.discoveryGenre != "" {
			f = fmt.Sprintf(`genres:%q`, q.discoveryGenre)
		}
		discovery[i] = run(query.Input{OrderBy: "popularity desc", Filter: f})
		facets[i] = run(query.Input{Filter: fmt.Sprintf(`year >= %d`, q.facetsFromYear), OrderBy: "imdbScore desc"})
	}
	search := func(reqs []*query.Request) func(i int) {
		return func(i int) {
			if _, err := x.Search(context.Background(), reqs[i%nq]); err != nil {
				b.Fatal(err)
			}
		}
	}
	fig := &benchFigures{diskBytes: disk}
	if !reuse {
		fig.buildDocsPerSec = float64(n) / build.Seconds()
	}
	b.Run("fuzzy_text_filters", func(b *testing.B) { fig.fuzzy = latency(b, search(fuzzy)) })
	b.Run("discovery_popularity", func(b *testing.B) { fig.discovery = latency(b, search(discovery)) })
	b.Run("facets_filtered_discovery", func(b *testing.B) { fig.facets = latency(b, search(facets)) })
	b.Run("suggest", func(b *testing.B) {
		fig.suggest = latency(b, func(i int) {
			if _, err := x.Suggest(context.Background(), qs[i%nq].prefix, 10); err != nil {
				b.Fatal(err)
			}
		})
	})
	// After the timed runs, so that it warms no cache for them; the plain
	// index logs the same count.
	var found int
	for _, r := range fuzzy[:min(nq, 50)] {
		if res, err := x.Search(context.Background(), r); err == nil && res.Total > 0 {
			found++
		}
	}
	b.Logf("fuzzy text with filters: %d of %d sample queries find movies", found, min(nq, 50))
	broad := run(query.Input{Q: "the"})
	b.Run("broad_text_facets", func(b *testing.B) { latency(b, func(int) { _, _ = x.Search(context.Background(), broad) }) })
	return fig
}
