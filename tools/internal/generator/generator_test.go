package generator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/marquee-dev/marquee/tools/internal/generator"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// profile parses the embedded profile once for the package's tests, so that
// the genre calibration runs once.
var profile = sync.OnceValues(generator.DefaultProfile)

func newGen(t testing.TB, seed uint64) *generator.Generator {
	t.Helper()
	p, err := profile()
	if err != nil {
		t.Fatal(err)
	}
	g, err := generator.New(p, generator.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func ndjson(t testing.TB, g *generator.Generator, start, count uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := g.WriteNDJSON(context.Background(), &buf, start, count); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEmbeddedProfileMatchesDataDir(t *testing.T) {
	want, err := os.ReadFile("../../../data/generator_profile.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("profile.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("internal/generator/profile.json differs from data/generator_profile.json: copy it again")
	}
}

func TestDeterministic(t *testing.T) {
	a := ndjson(t, newGen(t, 42), 0, 3000)
	b := ndjson(t, newGen(t, 42), 0, 3000)
	if !bytes.Equal(a, b) {
		t.Fatal("two generators with seed 42 differ")
	}
	if c := ndjson(t, newGen(t, 43), 0, 3000); bytes.Equal(a, c) {
		t.Fatal("seeds 42 and 43 give the same movies")
	}
	// Any range on its own equals the same lines of a longer run, in any
	// order and from a clone.
	lines := bytes.SplitAfter(a, []byte("\n"))
	g := newGen(t, 42)
	for _, i := range []uint64{2999, 17, 1500, 0, 8191 % 3000} {
		if got := g.AppendNDJSON(nil, i); !bytes.Equal(got, lines[i]) {
			t.Errorf("movie %d alone = %s, in sequence = %s", i, got, lines[i])
		}
	}
	if got := ndjson(t, g.Clone(), 1000, 500); !bytes.Equal(got, bytes.Join(lines[1000:1500], nil)) {
		t.Error("a clone's range 1000-1499 differs from the sequence")
	}
}

func TestNDJSONIsTheMovieAndImportable(t *testing.T) {
	g := newGen(t, 7)
	data := ndjson(t, g, 0, 500)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for i := uint64(0); sc.Scan(); i++ {
		var got generator.Movie
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, sc.Bytes())
		}
		if want := g.Movie(i); !reflect.DeepEqual(got, want) {
			t.Fatalf("line %d = %+v, Movie(%d) = %+v", i+1, got, i, want)
		}
		if got.Popularity != got.ImdbScore*10 && math.Abs(got.Popularity-got.ImdbScore*10) > 1e-9 {
			t.Fatalf("popularity %v, score %v: the profile's rule is popularity = 10 x score", got.Popularity, got.ImdbScore)
		}
	}
	r, err := moviedata.NewReader(moviedata.FormatWikipedia, bytes.NewReader(data), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Year == nil || rec.ImdbScore == nil || rec.Votes == nil || rec.Popularity == nil || rec.RuntimeMinutes == nil || len(rec.Directors) == 0 {
			t.Fatalf("line %d lacks fields: %+v", rec.Line, rec)
		}
		n++
	}
	if n != 500 {
		t.Errorf("the wikipedia reader read %d movies, want 500", n)
	}
}

func TestMoviesIterator(t *testing.T) {
	g := newGen(t, 3)
	var titles []string
	for m := range g.Movies(10, 5) {
		titles = append(titles, m.Title)
	}
	if len(titles) != 5 || titles[0] != g.Movie(10).Title || titles[4] != g.Movie(14).Title {
		t.Errorf("Movies(10, 5) titles = %q", titles)
	}
}

// TestDistributions checks the output against the profile it follows.
func TestDistributions(t *testing.T) {
	p, err := profile()
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(t, 1)
	const n = 60000
	genreCount := map[string]int{}
	pairCount := map[string]int{}
	var genresTotal, oneDirector, titleChars int
	var scoreSum, scoreSq, logVotesSum, logVotesSq, scoreLogVotes float64
	words := map[int]int{}
	decades := map[int]int{}
	titles := map[string]int{}
	var runtimes, votes []float64
	var castTotal int
	scoreByGenre := map[string][]float64{}
	for m := range g.Movies(0, n) {
		genresTotal += len(m.Genres)
		for i, a := range m.Genres {
			genreCount[a]++
			scoreByGenre[a] = append(scoreByGenre[a], m.ImdbScore)
			for _, b := range m.Genres[i+1:] {
				pair := []string{a, b}
				sort.Strings(pair)
				pairCount[pair[0]+"+"+pair[1]]++
			}
		}
		if len(m.Directors) == 1 {
			oneDirector++
		}
		titleChars += len([]rune(m.Title))
		words[len(strings.Fields(m.Title))]++
		titles[m.Title]++
		decades[int(m.Year)/10*10]++
		lv := math.Log10(float64(m.Votes))
		scoreSum += m.ImdbScore
		scoreSq += m.ImdbScore * m.ImdbScore
		logVotesSum += lv
		logVotesSq += lv * lv
		scoreLogVotes += m.ImdbScore * lv
		runtimes = append(runtimes, float64(m.RuntimeMinutes))
		votes = append(votes, float64(m.Votes))
		castTotal += len(m.Cast)
		if m.ImdbScore < 1.6 || m.ImdbScore > 9.5 || m.Year < 1910 || m.Year > 2025 {
			t.Fatalf("movie out of range: %+v", m)
		}
	}

	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.4f, want %.4f ± %.4f", what, got, want, tol)
		}
	}
	for name, share := range p.GenreShare {
		near("share of "+name, float64(genreCount[name])/n, share, max(0.003, share*0.06))
	}
	var wantGenres float64
	for k, w := range p.GenresPerMovie {
		var kk float64
		json.Unmarshal([]byte(k), &kk)
		wantGenres += kk * w
	}
	near("genres per movie", float64(genresTotal)/n, wantGenres, 0.08)
	for pair, share := range p.GenrePairs {
		near("share of "+pair, float64(pairCount[pair])/n, share, share*0.12)
	}

	mean := scoreSum / n
	sd := math.Sqrt(scoreSq/n - mean*mean)
	near("mean score", mean, p.ImdbScore.Mean, 0.08)
	near("score sd", sd, 1.128, 0.15)
	avg := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	if h, d, doc := avg(scoreByGenre["Horror"]), avg(scoreByGenre["Drama"]), avg(scoreByGenre["Documentary"]); !(h < mean && mean < d && d < doc) {
		t.Errorf("mean score Horror %.2f, all %.2f, Drama %.2f, Documentary %.2f: want increasing", h, mean, d, doc)
	}
	lvMean := logVotesSum / n
	corr := (scoreLogVotes/n - mean*lvMean) / (sd * math.Sqrt(logVotesSq/n-lvMean*lvMean))
	near("correlation of score and log votes", corr, p.VotesLog10.ScoreCorrel, 0.08)
	sort.Float64s(votes)
	near("log10 median votes", math.Log10(votes[n/2]), math.Log10(33158), 0.1)
	sort.Float64s(runtimes)
	near("median runtime", runtimes[n/2], 103, 3)
	near("cast per movie", float64(castTotal)/n, 3.676, 0.5)

	near("share with one director", float64(oneDirector)/n, p.DirectorsPerMovie["1"], 0.015)
	near("mean title characters", float64(titleChars)/n, 15.339, 3)
	near("share of one-word titles", float64(words[1])/n, p.TitleWords["1"], 0.03)
	near("share of two-word titles", float64(words[2])/n, p.TitleWords["2"], 0.03)
	for d, share := range p.YearDecades[generator.DefaultYearSource] {
		var dec int
		json.Unmarshal([]byte(d), &dec)
		near("share of the "+d+"s", float64(decades[dec])/n, share, max(0.004, share*0.05))
	}
	repeated := 0
	for _, c := range titles {
		if c > 1 {
			repeated += c
		}
	}
	if share := float64(repeated) / n; share < 0.05 || share > 0.8 {
		t.Errorf("%.0f%% of titles repeat another's, want some but not most", share*100)
	}
}

// TestConstantMemory streams 200,000 movies and checks that neither the
// live heap grows nor anything is allocated per movie.
func TestConstantMemory(t *testing.T) {
	g := newGen(t, 5)
	heap := func() (live, total uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, ms.TotalAlloc
	}
	if err := g.WriteNDJSON(context.Background(), io.Discard, 0, 1000); err != nil {
		t.Fatal(err)
	}
	live0, total0 := heap()
	if err := g.WriteNDJSON(context.Background(), io.Discard, 1000, 200000); err != nil {
		t.Fatal(err)
	}
	live1, total1 := heap()
	if grew := int64(live1) - int64(live0); grew > 1<<20 {
		t.Errorf("live heap grew by %d bytes over 200,000 movies", grew)
	}
	// WriteNDJSON allocates its 256 KiB write buffer and a line buffer per
	// call, nothing per movie.
	if alloc := total1 - total0; alloc > 2<<20 {
		t.Errorf("allocated %d bytes for 200,000 movies, want no per-movie allocation", alloc)
	}
	buf := make([]byte, 0, 4096)
	i := uint64(300000)
	if allocs := testing.AllocsPerRun(2000, func() {
		buf = g.AppendNDJSON(buf[:0], i)
		i++
	}); allocs != 0 {
		t.Errorf("AppendNDJSON allocates %.1f times per movie, want 0", allocs)
	}
}

func TestWriteNDJSONStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newGen(t, 1).WriteNDJSON(ctx, io.Discard, 0, 1<<40); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestOptionsAndProfileErrors(t *testing.T) {
	p, err := profile()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generator.New(p, generator.Options{YearSource: "nope"}); err == nil || !strings.Contains(err.Error(), "movielens") {
		t.Errorf("unknown year source: %v, want an error listing the sources", err)
	}
	g, err := generator.New(p, generator.Options{YearSource: "wikipedia_us_films"})
	if err != nil {
		t.Fatal(err)
	}
	old := 0
	for m := range g.Movies(0, 2000) {
		if m.Year < 1950 {
			old++
		}
	}
	if old < 800 {
		t.Errorf("wikipedia years: %d of 2000 movies before 1950, want about half", old)
	}
	if _, err := generator.ParseProfile([]byte(`{"genre_share_of_movies": {}}`)); err == nil {
		t.Error("an empty profile parsed")
	}
	if _, err := generator.ParseProfile([]byte(`{`)); err == nil {
		t.Error("invalid JSON parsed")
	}
}

// BenchmarkGenerate measures NDJSON generation to a discarded writer; the
// target is at least 200,000 movies/s. It also reports movies per CPU second,
// which a busy machine does not distort.
func BenchmarkGenerate(b *testing.B) {
	g := newGen(b, 1)
	b.ReportAllocs()
	cpu0, cpuOK := processCPUTime()
	b.ResetTimer()
	if err := g.WriteNDJSON(context.Background(), io.Discard, 0, uint64(b.N)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "movies/s")
	if cpu1, ok := processCPUTime(); ok && cpuOK && cpu1 > cpu0 {
		b.ReportMetric(float64(b.N)/(cpu1-cpu0).Seconds(), "movies/cpu-s")
	}
}
