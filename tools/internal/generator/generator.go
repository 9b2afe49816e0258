// Package generator produces synthetic movies that follow the distributions
// of a real catalogue (data/generator_profile.json): genre shares, genres per
// movie and common pairs, scores by genre, votes correlated with scores, year
// by decade, runtimes, directors per movie, movies per director and per actor
// (power laws), and title lengths, with titles and names built from an
// embedded vocabulary.
//
// Movie i is a pure function of the seed and i, so output is deterministic,
// any range can be generated on its own, and nothing is stored: the memory a
// generator needs does not depend on how many movies it writes. The NDJSON it
// writes is the Wikipedia file's shape plus imdbScore, votes, popularity and
// runtimeMinutes, which `marquee import --format wikipedia` reads.
//
// A Generator is not safe for concurrent use; Clone gives each goroutine its
// own, sharing the immutable tables.
package generator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
)

// DefaultYearSource is the year distribution used unless Options says
// otherwise: the same IMDb sample as the scores and genres.
const DefaultYearSource = "movie_metadata"

// maxYear bounds generated years; a constant rather than the current year so
// that output does not change with the date.
const maxYear = 2025

// maxDirectorRun bounds the number of movies one director gets; the
// profile's power-law tail above its cap is spread up to it. A person's
// movies all fall within one block (about 8,000 movies for directors, 2,200
// for actors), about the size of the catalogue the profile was measured on,
// so the bounds are that catalogue's: its most prolific director has 26
// movies, its most prolific actors about 50.
const maxDirectorRun = 40

// maxActorRun bounds the number of movies one actor gets.
const maxActorRun = 60

// castStride is the number of cast members per movie that hold a slot of
// their own in the actor pool.
const castStride = 4

// Options configure a Generator.
type Options struct {
	// Seed selects the catalogue; the same seed gives the same movies.
	Seed uint64
	// YearSource names the year_decade_pmf distribution to follow
	// (movie_metadata, movielens, wikipedia_us_films);
	// DefaultYearSource when empty.
	YearSource string
}

// Movie is one synthetic movie. Its JSON form is a line of WriteNDJSON.
type Movie struct {
	Title          string   `json:"title"`
	Year           int32    `json:"year"`
	Genres         []string `json:"genres"`
	Cast           []string `json:"cast"`
	Directors      []string `json:"directors"`
	ImdbScore      float64  `json:"imdbScore"`
	Votes          int64    `json:"votes"`
	Popularity     float64  `json:"popularity"`
	RuntimeMinutes int32    `json:"runtimeMinutes"`
}

// model holds the tables derived from a profile; it is immutable once built
// and shared by clones.
type model struct {
	vocab   *vocabulary
	sequels []string
	genres  *genreModel

	scoreCDF         []float64
	scoreTenths      []int32
	scoreMin         int32
	scoreMax         int32
	rho              float64
	votesLog10       quantiles
	runtime          quantiles
	cast             quantiles
	decades          alias
	decadeStart      []int32
	directorCounts   alias
	directorCountVal []int
	titleWords       alias
	titleWordVals    []int

	directorRuns []int
	directorRunW []float64
	actorRuns    []int
	actorRunW    []float64
}

// span locates a string in the generator's scratch buffer.
type span struct{ off, end int }

// raw is one movie as the generator builds it, its strings in buf.
type raw struct {
	title       span
	year        int32
	genres      [maxGenres]uint8
	nGenres     int
	scoreTenths int32
	votes       int64
	runtime     int32
	directors   []span
	directorIDs []uint64
	cast        []span
	castIDs     []uint64
}

// Generator produces movies. Create it with New.
type Generator struct {
	m         *model
	seedHi    uint64
	seedLo    uint64
	nameSalt  uint64
	actorSalt uint64
	pcg       rand.PCG
	rng       *rand.Rand
	directors *pool
	actors    *pool
	cur       []float64
	buf       []byte
	raw       raw
}

// New builds a generator following profile p.
func New(p *Profile, opts Options) (*Generator, error) {
	m, err := buildModel(p, opts)
	if err != nil {
		return nil, err
	}
	seed := opts.Seed
	g := &Generator{
		m:         m,
		seedHi:    mix(seed ^ 0x6a09e667f3bcc908),
		seedLo:    mix(seed ^ 0xbb67ae8584caa73b),
		nameSalt:  mix(seed ^ 0x3c6ef372fe94f82b),
		actorSalt: mix(seed ^ 0xa54ff53a5f1d36f1),
	}
	g.directors = newPool(m.directorRuns, m.directorRunW, mix(seed^0x510e527fade682d1))
	g.actors = newPool(m.actorRuns, m.actorRunW, mix(seed^0x9b05688c2b3e6c1f))
	g.init()
	return g, nil
}

func (g *Generator) init() {
	g.rng = rand.New(&g.pcg)
	g.cur = make([]float64, len(g.m.genres.names))
}

// Clone returns a generator with the same seed and tables and its own
// state, for use on another goroutine.
func (g *Generator) Clone() *Generator {
	c := &Generator{
		m: g.m, seedHi: g.seedHi, seedLo: g.seedLo, nameSalt: g.nameSalt, actorSalt: g.actorSalt,
		directors: g.directors.clone(), actors: g.actors.clone(),
	}
	c.init()
	return c
}

// Genres returns the genre names the generator draws from, most common
// first.
func (g *Generator) Genres() []string { return append([]string(nil), g.m.genres.names...) }

func (g *Generator) next() uint64 { return g.pcg.Uint64() }

// fill builds movie i into g.raw and g.buf.
func (g *Generator) fill(i uint64) {
	m := g.m
	r := &g.raw
	g.buf = g.buf[:0]
	g.pcg.Seed(g.seedHi, mix(i+g.seedLo))

	r.nGenres = m.genres.pick(&g.pcg, g.cur, &r.genres)

	d := m.decades.pick(g.next())
	start := m.decadeStart[d]
	years := int32(10)
	if start+years-1 > maxYear {
		years = max(1, maxYear-start+1)
	}
	r.year = start + int32(g.next()%uint64(years))

	// Score and votes share a Gaussian copula so that better movies tend to
	// have more votes, as in the profile.
	z1 := g.rng.NormFloat64()
	z2 := m.rho*z1 + math.Sqrt(1-m.rho*m.rho)*g.rng.NormFloat64()
	base := m.scoreTenths[min(sort.SearchFloat64s(m.scoreCDF, normalCDF(z1)), len(m.scoreTenths)-1)]
	var shift float64
	for _, gi := range r.genres[:r.nGenres] {
		shift += m.genres.shift[gi]
	}
	tenths := base + int32(math.Round(shift/float64(r.nGenres)*10))
	r.scoreTenths = min(max(tenths, m.scoreMin), m.scoreMax)
	r.votes = int64(math.Round(math.Pow(10, m.votesLog10.at(normalCDF(z2)))))
	r.runtime = max(1, int32(math.Round(m.runtime.at(unit(g.next())))))

	off := len(g.buf)
	g.buf = g.appendTitle(g.buf, m.titleWordVals[m.titleWords.pick(g.next())])
	r.title = span{off, len(g.buf)}

	// The first director holds the movie's own slot, so a director's movie
	// count is the run length the pool drew; co-directors come from random
	// slots of the same block.
	nd := m.directorCountVal[m.directorCounts.pick(g.next())]
	r.directorIDs = append(r.directorIDs[:0], g.directors.person(i))
	block := i / blockSize * blockSize
	for len(r.directorIDs) < nd {
		id := g.directors.person(block + g.next()%blockSize)
		if !containsID(r.directorIDs, id) {
			r.directorIDs = append(r.directorIDs, id)
		} else if g.next()%8 == 0 { // a small block can run out of others
			break
		}
	}
	r.directors = r.directors[:0]
	for _, id := range r.directorIDs {
		off := len(g.buf)
		g.buf = g.appendName(g.buf, id, g.nameSalt)
		r.directors = append(r.directors, span{off, len(g.buf)})
	}

	nc := max(0, int(math.Round(m.cast.at(unit(g.next())))))
	r.castIDs = r.castIDs[:0]
	for j := range uint64(min(nc, castStride)) {
		if id := g.actors.person(i*castStride + j); !containsID(r.castIDs, id) {
			r.castIDs = append(r.castIDs, id)
		}
	}
	actorBlock := i * castStride / blockSize * blockSize
	for tries := 0; len(r.castIDs) < nc && tries < 2*nc; tries++ {
		id := g.actors.person(actorBlock + g.next()%blockSize)
		if !containsID(r.castIDs, id) {
			r.castIDs = append(r.castIDs, id)
		}
	}
	r.cast = r.cast[:0]
	for _, id := range r.castIDs {
		off := len(g.buf)
		g.buf = g.appendName(g.buf, id, g.actorSalt)
		r.cast = append(r.cast, span{off, len(g.buf)})
	}
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Movie returns movie i.
func (g *Generator) Movie(i uint64) Movie {
	g.fill(i)
	r := &g.raw
	str := func(s span) string { return string(g.buf[s.off:s.end]) }
	mv := Movie{
		Title:          str(r.title),
		Year:           r.year,
		Genres:         make([]string, r.nGenres),
		Cast:           make([]string, len(r.cast)),
		Directors:      make([]string, len(r.directors)),
		ImdbScore:      float64(r.scoreTenths) / 10,
		Votes:          r.votes,
		Popularity:     float64(r.scoreTenths),
		RuntimeMinutes: r.runtime,
	}
	for j, gi := range r.genres[:r.nGenres] {
		mv.Genres[j] = g.m.genres.names[gi]
	}
	for j, s := range r.cast {
		mv.Cast[j] = str(s)
	}
	for j, s := range r.directors {
		mv.Directors[j] = str(s)
	}
	return mv
}

// Movies yields movies start, start+1, … start+count-1.
func (g *Generator) Movies(start, count uint64) iter.Seq[Movie] {
	return func(yield func(Movie) bool) {
		for i := start; i < start+count; i++ {
			if !yield(g.Movie(i)) {
				return
			}
		}
	}
}

// AppendNDJSON appends movie i as one JSON line, newline included. It does
// not allocate once the generator's buffers have grown.
func (g *Generator) AppendNDJSON(dst []byte, i uint64) []byte {
	g.fill(i)
	r := &g.raw
	dst = append(dst, `{"title":`...)
	dst = appendJSONString(dst, g.buf[r.title.off:r.title.end])
	dst = append(dst, `,"year":`...)
	dst = strconv.AppendInt(dst, int64(r.year), 10)
	dst = append(dst, `,"genres":[`...)
	for j, gi := range r.genres[:r.nGenres] {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, []byte(g.m.genres.names[gi]))
	}
	dst = append(dst, `],"cast":[`...)
	dst = g.appendSpans(dst, r.cast)
	dst = append(dst, `],"directors":[`...)
	dst = g.appendSpans(dst, r.directors)
	dst = append(dst, `],"imdbScore":`...)
	dst = strconv.AppendFloat(dst, float64(r.scoreTenths)/10, 'f', -1, 64)
	dst = append(dst, `,"votes":`...)
	dst = strconv.AppendInt(dst, r.votes, 10)
	dst = append(dst, `,"popularity":`...)
	dst = strconv.AppendInt(dst, int64(r.scoreTenths), 10)
	dst = append(dst, `,"runtimeMinutes":`...)
	dst = strconv.AppendInt(dst, int64(r.runtime), 10)
	return append(dst, "}\n"...)
}

func (g *Generator) appendSpans(dst []byte, spans []span) []byte {
	for j, s := range spans {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, g.buf[s.off:s.end])
	}
	return dst
}

// WriteNDJSON writes movies start … start+count-1 to w, one JSON object a
// line, in constant memory. It checks ctx every few thousand movies.
func (g *Generator) WriteNDJSON(ctx context.Context, w io.Writer, start, count uint64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	line := make([]byte, 0, 4096)
	for i := start; i < start+count; i++ {
		if (i-start)%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("generating movies: %w", ctx.Err())
		}
		line = g.AppendNDJSON(line[:0], i)
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("writing movie %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing movies: %w", err)
	}
	return nil
}

// appendJSONString appends s as a JSON string. Generated text is valid UTF-8,
// so only quotes, backslashes and control characters need escaping.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < 0x20 {
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		} else {
			dst = append(dst, '\\', c)
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// buildModel derives every table from the profile.
func buildModel(p *Profile, opts Options) (*model, error) {
	vocab, err := parseVocabulary(wordsFile)
	if err != nil {
		return nil, err
	}
	m := &model{vocab: vocab, sequels: sequels()}
	source := opts.YearSource
	if source == "" {
		source = DefaultYearSource
	}
	decades, ok := p.YearDecades[source]
	if !ok {
		return nil, fmt.Errorf("unknown year source %q (the profile has %v)", source, p.YearSources())
	}
	vals, ws, err := intPMF("year_decade_pmf."+source, decades)
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if v > maxYear || v < 1870 {
			return nil, fmt.Errorf("generator profile: decade %d is out of range", v)
		}
		m.decadeStart = append(m.decadeStart, int32(v))
	}
	m.decades = newAlias(ws)
	if m.genres, err = p.genreModel(); err != nil {
		return nil, err
	}

	// Scores: the 0.1 bins as a CDF over tenths.
	type bin struct {
		tenths int32
		p      float64
	}
	var bins []bin
	for k, v := range p.ImdbScore.PMF {
		x, err := strconv.ParseFloat(k, 64)
		if err != nil {
			return nil, fmt.Errorf("generator profile: imdb_score bin %q is not a number", k)
		}
		bins = append(bins, bin{int32(math.Round(x * 10)), v})
	}
	sort.Slice(bins, func(i, j int) bool { return bins[i].tenths < bins[j].tenths })
	var total float64
	for _, b := range bins {
		total += b.p
	}
	var acc float64
	for _, b := range bins {
		acc += b.p / total
		m.scoreCDF = append(m.scoreCDF, acc)
		m.scoreTenths = append(m.scoreTenths, b.tenths)
	}
	m.scoreMin, m.scoreMax = bins[0].tenths, bins[len(bins)-1].tenths
	if p.ImdbScore.Min > 0 {
		m.scoreMin = int32(math.Round(p.ImdbScore.Min * 10))
	}
	if p.ImdbScore.Max > 0 {
		m.scoreMax = int32(math.Round(p.ImdbScore.Max * 10))
	}
	m.rho = min(max(p.VotesLog10.ScoreCorrel, -0.99), 0.99)

	if m.votesLog10, err = quantilesOf("votes_log10.quantiles", p.VotesLog10.Quantiles, func(v float64) float64 { return math.Log10(max(v, 1)) }); err != nil {
		return nil, err
	}
	if m.runtime, err = quantilesOf("runtime_minutes", p.RuntimeMinutes, func(v float64) float64 { return v }); err != nil {
		return nil, err
	}
	if m.cast, err = quantilesOf("cast_per_movie.wikipedia", p.CastPerMovie["wikipedia"], func(v float64) float64 { return v }); err != nil {
		return nil, err
	}

	var dws []float64
	if m.directorCountVal, dws, err = intPMF("directors_per_movie_pmf", p.DirectorsPerMovie); err != nil {
		return nil, err
	}
	m.directorCounts = newAlias(dws)
	if m.titleWordVals, ws, err = intPMF("title_words_pmf", p.TitleWords); err != nil {
		return nil, err
	}
	m.titleWords = newAlias(ws)

	// Movies per director: the profile's pmf below its cap as given, the
	// mass at the cap spread over cap…maxDirectorRun by the power law.
	vals, ws, err = intPMF("movies_per_director.pmf_capped20", p.MoviesPerDirector.PMFCapped)
	if err != nil {
		return nil, err
	}
	alpha := p.MoviesPerDirector.PowerlawAlpha
	if alpha <= 1 {
		alpha = 1.9
	}
	last := len(vals) - 1
	target := make([]float64, max(vals[last], maxDirectorRun)+1) // by movie count
	for j, k := range vals[:last] {
		if k >= 1 && k < len(target) {
			target[k] = ws[j]
		}
	}
	tailLens, tailW := powerLaw(vals[last], len(target)-1, alpha, ws[last])
	for j, k := range tailLens {
		target[k] += tailW[j]
	}
	// Co-directors are drawn from random slots, which adds movies to the
	// directors the pool drew; the runs are chosen so that the counts after
	// that match the profile.
	var coDirectors, movies float64
	for j, k := range m.directorCountVal {
		coDirectors += float64(k-1) * dws[j]
		movies += dws[j]
	}
	runs := unblur(target, 1, coDirectors/movies)
	for k := 1; k < len(runs); k++ {
		if runs[k] > 0 {
			m.directorRuns = append(m.directorRuns, k)
			m.directorRunW = append(m.directorRunW, runs[k])
		}
	}

	// Movies per actor: the first castStride cast members of movie i hold
	// slots i·castStride…, the rest come from random slots of the block;
	// the runs are chosen so that the counts after both match the power law.
	actorAlpha := p.MoviesPerActorAlpha
	if actorAlpha <= 1 {
		actorAlpha = 1.86
	}
	lens, lw := powerLaw(1, maxActorRun, actorAlpha, 1)
	actorTarget := make([]float64, maxActorRun+1)
	for j, k := range lens {
		actorTarget[k] = lw[j]
	}
	var held, extra float64
	const grid = 10000
	for j := range grid {
		c := max(0, math.Round(m.cast.at((float64(j)+0.5)/grid)))
		held += min(c, castStride) / grid
		extra += max(c-castStride, 0) / grid
	}
	actorRuns := unblur(actorTarget, held/castStride, extra/castStride)
	for k := 1; k < len(actorRuns); k++ {
		if actorRuns[k] > 0 {
			m.actorRuns = append(m.actorRuns, k)
			m.actorRunW = append(m.actorRunW, actorRuns[k])
		}
	}
	return m, nil
}
