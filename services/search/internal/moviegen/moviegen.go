// Package moviegen makes deterministic synthetic movies whose shape follows
// the empirical profile in shared/data/generator_profile.json (genres per
// movie and their shares, score quantiles, decades, directors and cast per
// movie, title lengths), for benchmarks at sizes no real data set has.
// Movie i is the same for a given seed whatever order movies are made in.
package moviegen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
)

// Genres with their share of movies (IMDb vocabulary).
var genreShares = []struct {
	name  string
	share float64
}{
	{"Drama", .5153}, {"Comedy", .3757}, {"Thriller", .2773}, {"Action", .2263}, {"Romance", .2204},
	{"Adventure", .1805}, {"Crime", .1767}, {"Sci-Fi", .121}, {"Fantasy", .1185}, {"Horror", .1098},
	{"Family", .1086}, {"Mystery", .0986}, {"Biography", .0592}, {"Animation", .0488}, {"Music", .0431},
	{"War", .0427}, {"History", .0411}, {"Sport", .036}, {"Musical", .0266}, {"Documentary", .0246},
	{"Western", .0191}, {"Film-Noir", .0012}, {"Short", .001}, {"News", .0006}, {"Reality-TV", .0004},
	{"Game-Show", .0002},
}

var genresPerMovie = []float64{0, .12625, .27058, .32039, .19394, .06953, .01484, .00366, .00081}

var titleWords = []float64{0, .20838, .3208, .22566, .11201, .06343, .03598, .0183, .00793, .00325, .00264, .00041, .00122}

// decades from 1910 (movie_metadata shares).
var decadeShares = []float64{.00021, .00104, .00312, .0052, .00561, .01475, .02265, .05756, .16209, .42747, .30029}

var directorsPerMovie = []float64{0, .90008, .09014, .00556, .00173, .00058, 0, 0, .00019, .00019, .00058, .00038, .00038, .00019}

// score quantiles (p, value) for inverse-CDF sampling.
var scoreQuantiles = [][2]float64{{0, 1.6}, {.01, 3.1}, {.05, 4.3}, {.10, 5.0}, {.25, 5.8}, {.50, 6.6}, {.75, 7.2}, {.90, 7.8}, {.95, 8.1}, {.99, 8.5}, {1, 9.5}}

var votesQuantiles = [][2]float64{{0, 5}, {.01, 53}, {.05, 509}, {.10, 1599}, {.25, 8367}, {.50, 33158}, {.75, 93767}, {.90, 213863}, {.95, 330152}, {.99, 681857}, {1, 1689764}}

// Common English title words, most frequent first; a synthetic vocabulary
// follows them so titles have a long tail like real ones.
var commonWords = strings.Fields(`the of a love man night day last house girl life story time world dead
black war king city blood dark lady return big little secret lost great home american star wild
game heart dream road murder death song street blue white red kill money summer christmas fire
town devil men woman boy ghost island angel moon island iron silent golden new final journey hunter
legend shadow bride queen prince family sea river mountain west wind storm rain child children
dog cat wolf dragon spider legacy rising fall empire revenge code mission escape hotel paris
london york texas hollywood chicago sun sky light heaven hell zero one two three first second`)

var syllables = strings.Fields(`ka ri mo ta le na si ro vo de la mi su be lo ra ne to pa gu
zu fe ki ma do sha tor vin mar el an ul ith or en bar gor dun wyn thal ser kor lin`)

var firstNames = strings.Fields(`John Mary James Anna Robert Linda Michael Sarah William Karen David Lisa
Richard Emma Joseph Sofia Thomas Olivia Charles Mia Daniel Chloe Matthew Lucia Mark Elena Paul Nora
Steven Ines George Marta Kenji Yuki Pierre Amélie Jürgen Zoë François Søren Björn Chloé José`)

var lastNames = strings.Fields(`Smith Johnson Brown Taylor Miller Wilson Moore Anderson Thomas Jackson
White Harris Martin Garcia Martinez Robinson Clark Lewis Lee Walker Hall Allen Young King Wright
Lopez Hill Scott Green Adams Baker Nelson Carter Mitchell Perez Roberts Turner Phillips Campbell
Parker Evans Edwards Collins Müller Núñez Kowalski Dubois Rossi Tanaka Nakamura Novák`)

// Generator makes movies.
type Generator struct {
	seed      uint64
	n         int
	vocab     []string
	directors int
	actors    int
}

// New returns a generator for a catalogue of n movies.
func New(seed uint64, n int) *Generator {
	g := &Generator{seed: seed, n: n, directors: max(n/2, 10), actors: max(n*3, 50)}
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	g.vocab = append(g.vocab, commonWords...)
	for len(g.vocab) < 30000 {
		k := 2 + r.IntN(3)
		var b strings.Builder
		for j := 0; j < k; j++ {
			b.WriteString(syllables[r.IntN(len(syllables))])
		}
		g.vocab = append(g.vocab, b.String())
	}
	return g
}

func pick(r *rand.Rand, pmf []float64) int {
	u := r.Float64()
	var sum float64
	for _, p := range pmf {
		sum += p
	}
	u *= sum
	for i, p := range pmf {
		if u < p {
			return i
		}
		u -= p
	}
	return len(pmf) - 1
}

func quantile(r *rand.Rand, q [][2]float64, logScale bool) float64 {
	u := r.Float64()
	for i := 1; i < len(q); i++ {
		if u <= q[i][0] {
			f := (u - q[i-1][0]) / (q[i][0] - q[i-1][0])
			if logScale {
				a, b := math.Log(q[i-1][1]), math.Log(q[i][1])
				return math.Exp(a + f*(b-a))
			}
			return q[i-1][1] + f*(q[i][1]-q[i-1][1])
		}
	}
	return q[len(q)-1][1]
}

// zipfIndex returns an index in [0, n) with a power-law tail (smaller is
// more frequent), exponent about 1.9 as measured for movies per director.
func zipfIndex(r *rand.Rand, n int) int {
	u := r.Float64()
	x := math.Pow(1-u, -1/0.9) - 1 // Pareto with alpha 0.9 -> heavy head
	i := int(x * float64(n) / 50)
	if i >= n {
		i = r.IntN(n)
	}
	return i
}

// Name returns the synthetic person name k.
func name(k int) string {
	r := rand.New(rand.NewPCG(uint64(k), 0xa11ce))
	return firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))] + fmt.Sprintf(" %s", strings.ToUpper(syllables[k%len(syllables)][:1])+syllables[(k/len(syllables))%len(syllables)])
}

// Movie returns movie i.
func (g *Generator) Movie(i int) *catalogv1.Movie {
	r := rand.New(rand.NewPCG(g.seed, uint64(i)))
	m := &catalogv1.Movie{Id: fmt.Sprintf("m_%08d", i)}
	// Title.
	nw := pick(r, titleWords)
	words := make([]string, 0, nw)
	if r.Float64() < 0.25 {
		words = append(words, "The")
	}
	for len(words) < nw {
		var w string
		if r.Float64() < 0.45 {
			w = commonWords[zipfIndex(r, len(commonWords))]
		} else {
			w = g.vocab[zipfIndex(r, len(g.vocab))]
		}
		words = append(words, strings.ToUpper(w[:1])+w[1:])
	}
	m.Title = strings.Join(words, " ")
	// Year, score, popularity (popularity = score * 10 in the source data).
	d := pick(r, decadeShares)
	m.Year = proto.Int32(int32(1910 + 10*d + r.IntN(10)))
	score := math.Round(quantile(r, scoreQuantiles, false)*10) / 10
	m.ImdbScore = proto.Float64(score)
	m.Popularity = proto.Float64(score * 10)
	m.Votes = proto.Int64(int64(quantile(r, votesQuantiles, true)))
	m.RuntimeMinutes = proto.Int32(int32(max(40, 107+25*r.NormFloat64())))
	// Genres, weighted by share, without repetition.
	ng := max(1, pick(r, genresPerMovie))
	for tries := 0; len(m.Genres) < ng && tries < 50; tries++ {
		u := r.Float64() * 2.7
		for _, gs := range genreShares {
			if u < gs.share {
				if !contains(m.Genres, gs.name) {
					m.Genres = append(m.Genres, gs.name)
				}
				break
			}
			u -= gs.share
		}
	}
	// Directors from a power-law pool, cast from a larger one.
	nd := max(1, pick(r, directorsPerMovie))
	for j := 0; j < nd; j++ {
		k := zipfIndex(r, g.directors)
		m.Directors = append(m.Directors, &catalogv1.DirectorRef{Id: fmt.Sprintf("d_%07d", k), Name: name(k)})
	}
	nc := min(max(0, int(7+4*r.NormFloat64())), 20)
	for j := 0; j < nc; j++ {
		m.Cast = append(m.Cast, name(1_000_000_000+zipfIndex(r, g.actors)))
	}
	return m
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
