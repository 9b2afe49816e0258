package generator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// maxGenres bounds the genres of one movie (the profile's largest count is 8).
const maxGenres = 12

// genreModel draws a movie's genres: a count from genres_per_movie_pmf, then
// genres one after another without replacement, each with probability
// proportional to its base weight times a pair factor for every genre already
// drawn (Action makes Adventure likelier, Comedy makes Drama less likely).
//
// Drawing without replacement distorts the shares (a genre as common as
// Drama saturates), so the base weights and pair factors are calibrated at
// start-up until the simulated share of every genre and of every listed pair
// matches the profile. The calibration uses a fixed seed, so it depends on
// the profile only and the generator stays deterministic.
type genreModel struct {
	names     []string
	base      []float64
	boost     []float64 // len(names)², symmetric
	counts    alias
	countVals []int
	// shift is each genre's score offset from the overall mean, in score
	// units, centred so that the average over movies is zero.
	shift []float64
}

func buildGenreModel(p *Profile) (*genreModel, error) {
	gm := &genreModel{}
	for name, share := range p.GenreShare {
		if share <= 0 || share > 1 || math.IsNaN(share) {
			return nil, fmt.Errorf("generator profile: genre %q has share %v", name, share)
		}
		gm.names = append(gm.names, name)
	}
	sort.Slice(gm.names, func(i, j int) bool {
		a, b := p.GenreShare[gm.names[i]], p.GenreShare[gm.names[j]]
		if a != b {
			return a > b
		}
		return gm.names[i] < gm.names[j]
	})
	n := len(gm.names)
	index := make(map[string]int, n)
	target := make([]float64, n)
	for i, name := range gm.names {
		index[name] = i
		target[i] = p.GenreShare[name]
	}

	vals, ws, err := intPMF("genres_per_movie_pmf", p.GenresPerMovie)
	if err != nil {
		return nil, err
	}
	for _, k := range vals {
		if k < 1 || k > maxGenres || k > n {
			return nil, fmt.Errorf("generator profile: genres_per_movie_pmf: %d genres per movie is out of range", k)
		}
	}
	gm.countVals, gm.counts = vals, newAlias(ws)

	gm.boost = make([]float64, n*n)
	for i := range gm.boost {
		gm.boost[i] = 1
	}
	type pair struct {
		a, b   int
		target float64
	}
	var pairs []pair
	for key, share := range p.GenrePairs {
		a, b, ok := strings.Cut(key, "+")
		ia, okA := index[a]
		ib, okB := index[b]
		if !ok || !okA || !okB || ia == ib {
			return nil, fmt.Errorf("generator profile: genre pair %q names unknown genres", key)
		}
		pairs = append(pairs, pair{ia, ib, share})
		f := share / (target[ia] * target[ib])
		gm.boost[ia*n+ib], gm.boost[ib*n+ia] = f, f
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].a != pairs[j].a {
			return pairs[i].a < pairs[j].a
		}
		return pairs[i].b < pairs[j].b
	})

	gm.base = append([]float64(nil), target...)
	const (
		iterations = 50
		samples    = 6000
		// Damped multiplicative updates: the shares interact (a pair factor
		// raises both genres), and full steps oscillate. About 1% off the
		// targets for genres and 3% for pairs after 50 rounds, in ~100ms.
		step     = 0.8
		pairStep = 0.6
	)
	sim := newGenreSim(n)
	for _, pr := range pairs {
		sim.partners[pr.a] = append(sim.partners[pr.a], pr.b)
		sim.partners[pr.b] = append(sim.partners[pr.b], pr.a)
	}
	for range iterations {
		// Early rounds only need the direction; the last ones the precision.
		incl, pairIncl := sim.run(gm, samples)
		var sum float64
		for g := range gm.base {
			if incl[g] > 0 {
				gm.base[g] *= math.Pow(target[g]/incl[g], step)
			}
			sum += gm.base[g]
		}
		for g := range gm.base {
			gm.base[g] /= sum
		}
		for _, pr := range pairs {
			got := pairIncl[pr.a*n+pr.b] + pairIncl[pr.b*n+pr.a]
			if got > 0 {
				f := math.Pow(pr.target/got, pairStep)
				gm.boost[pr.a*n+pr.b] *= f
				gm.boost[pr.b*n+pr.a] *= f
			}
		}
	}

	gm.shift = make([]float64, n)
	for g, name := range gm.names {
		if m, ok := p.ImdbScore.MeanByGenre[name]; ok {
			gm.shift[g] = m - p.ImdbScore.Mean
		}
	}
	offset := sim.meanShift(gm, samples)
	for g := range gm.shift {
		gm.shift[g] -= offset
	}
	return gm, nil
}

// pick draws the genres of one movie into out (indexes into names) using
// cur as scratch (len(names)), and returns how many it drew.
func (gm *genreModel) pick(rng *rand.PCG, cur []float64, out *[maxGenres]uint8) int {
	k := gm.countVals[gm.counts.pick(rng.Uint64())]
	copy(cur, gm.base)
	n := len(cur)
	sum := 1.0 // base is normalised
	for i := range k {
		x := unit(rng.Uint64()) * sum
		h := -1
		for j, w := range cur {
			if w > 0 {
				h = j
				if x -= w; x < 0 {
					break
				}
			}
		}
		out[i] = uint8(h)
		cur[h] = 0
		row := gm.boost[h*n : h*n+n]
		sum = 0
		for j := range cur {
			cur[j] *= row[j]
			sum += cur[j]
		}
	}
	return k
}

// genreSim estimates, for the current weights, the share of movies that get
// each genre and each pair. Instead of counting the genres drawn it adds up
// the probability of drawing each genre at every step, which is unbiased and
// far less noisy for rare genres; each run reuses the same random numbers so
// that the calibration converges instead of chasing noise.
type genreSim struct {
	n        int
	partners [][]int // the genres each genre forms a listed pair with
	incl     []float64
	pairIncl []float64
	cur      []float64
}

func newGenreSim(n int) *genreSim {
	return &genreSim{n: n, partners: make([][]int, n), incl: make([]float64, n), pairIncl: make([]float64, n*n), cur: make([]float64, n)}
}

// The race detector is off for run: it touches only this simulation's own
// memory, and instrumenting its loops makes every test that builds a
// generator seconds slower without anything to find.
//
//go:norace
func (s *genreSim) run(gm *genreModel, samples int) (incl, pairIncl []float64) {
	clear(s.incl)
	clear(s.pairIncl)
	pcg := rand.NewPCG(0x6d61727175656521, 1)
	n := s.n
	var chosen [maxGenres]int
	for range samples {
		k := gm.countVals[gm.counts.pick(pcg.Uint64())]
		copy(s.cur, gm.base)
		sum := 1.0 // base is normalised
		for step := range k {
			inv := 1 / sum
			for j, w := range s.cur {
				s.incl[j] += w * inv
			}
			for _, g := range chosen[:step] {
				for _, h := range s.partners[g] {
					s.pairIncl[g*n+h] += s.cur[h] * inv
				}
			}
			x := unit(pcg.Uint64()) * sum
			h := -1
			for j, w := range s.cur {
				if w > 0 {
					h = j
					if x -= w; x < 0 {
						break
					}
				}
			}
			chosen[step] = h
			s.cur[h] = 0
			row := gm.boost[h*n : h*n+n]
			sum = 0
			for j := range s.cur {
				s.cur[j] *= row[j]
				sum += s.cur[j]
			}
		}
	}
	for i := range s.incl {
		s.incl[i] /= float64(samples)
	}
	for i := range s.pairIncl {
		s.pairIncl[i] /= float64(samples)
	}
	return s.incl, s.pairIncl
}

// meanShift is the average over movies of the mean score shift of their
// genres.
func (s *genreSim) meanShift(gm *genreModel, samples int) float64 {
	pcg := rand.NewPCG(0x6d61727175656521, 2)
	var out [maxGenres]uint8
	var total float64
	for range samples {
		k := gm.pick(pcg, s.cur, &out)
		var sh float64
		for _, g := range out[:k] {
			sh += gm.shift[g]
		}
		total += sh / float64(k)
	}
	return total / float64(samples)
}
