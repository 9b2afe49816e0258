package generator

import (
	"math"
	"math/rand/v2"
)

// blockSize is the number of credit slots in one block of a person pool.
const blockSize = 1 << 13

// pool hands out people (directors or actors) so that the number of credits
// per person follows a given distribution, without storing anyone.
//
// The slot space is cut into blocks of blockSize slots. Within a block, the
// slots are cut into consecutive runs whose lengths are drawn from the
// distribution, each run one person; then the slots are shuffled by an affine
// bijection so that a person's credits spread over the block's movies instead
// of being consecutive. Everything about block b is a function of the seed
// and b, so only the current block's layout is kept (32 KiB), and generating
// 25 million movies needs no more memory than generating a thousand.
type pool struct {
	runs    alias
	runLens []int
	seed    uint64

	pcg      rand.PCG
	cached   uint64
	hasCache bool
	owner    []uint32 // run index at each (shuffled) position of the block
	mul, add uint64
}

func newPool(runLens []int, weights []float64, seed uint64) *pool {
	return &pool{runs: newAlias(weights), runLens: runLens, seed: seed, owner: make([]uint32, blockSize)}
}

// clone returns a pool with the same people and its own cache.
func (p *pool) clone() *pool {
	return &pool{runs: p.runs, runLens: p.runLens, seed: p.seed, owner: make([]uint32, blockSize)}
}

// person returns the id of the person holding slot. Ids are unique across
// blocks.
func (p *pool) person(slot uint64) uint64 {
	b := slot / blockSize
	if !p.hasCache || p.cached != b {
		p.layout(b)
	}
	pos := (slot%blockSize*p.mul + p.add) % blockSize
	return b*blockSize + uint64(p.owner[pos])
}

func (p *pool) layout(b uint64) {
	p.pcg.Seed(p.seed, mix(b))
	run := uint32(0)
	for pos := 0; pos < blockSize; run++ {
		n := p.runLens[p.runs.pick(p.pcg.Uint64())]
		end := min(pos+n, blockSize)
		for ; pos < end; pos++ {
			p.owner[pos] = run
		}
	}
	p.mul = p.pcg.Uint64() | 1 // odd, hence invertible modulo a power of two
	p.add = p.pcg.Uint64()
	p.cached, p.hasCache = b, true
}

// powerLaw returns lengths lo..hi with weights proportional to k^-alpha,
// scaled to total mass.
func powerLaw(lo, hi int, alpha, mass float64) ([]int, []float64) {
	var lens []int
	var ws []float64
	var sum float64
	for k := lo; k <= hi; k++ {
		w := math.Pow(float64(k), -alpha)
		lens = append(lens, k)
		ws = append(ws, w)
		sum += w
	}
	for i := range ws {
		ws[i] *= mass / sum
	}
	return lens, ws
}

// appendName writes the name of person id: a given name, sometimes a middle
// initial, and a surname that is either a common one or built from
// syllables, which keeps millions of people mostly apart. salt separates
// directors from actors.
func (g *Generator) appendName(dst []byte, id, salt uint64) []byte {
	v := g.m.vocab
	h1 := mix(id ^ salt)
	h2 := mix(h1)
	dst = append(dst, v.given.pick(h1)...)
	dst = append(dst, ' ')
	if h2%100 < 22 {
		dst = append(dst, byte('A'+(h2>>8)%26), '.', ' ')
	}
	if (h2>>16)%100 < 55 {
		return append(dst, v.surname.pick(mix(h2))...)
	}
	h3 := mix(h2 ^ 0x5bd1e995)
	dst = append(dst, v.syllableStart[h3%uint64(len(v.syllableStart))]...)
	dst = append(dst, v.syllableMiddle[(h3>>20)%uint64(len(v.syllableMiddle))]...)
	return append(dst, v.syllableEnd[(h3>>40)%uint64(len(v.syllableEnd))]...)
}

// unblur finds run-length weights (indexed by length) such that the counts
// people end up with match target (indexed by count, from 1). A person with
// run k keeps each of its slots with probability keep (slots of movies with
// fewer credits stay empty) and gets Poisson(extra·k) more credits from
// random slots. It is Richardson–Lucy deconvolution over the counts from 1
// up (people left with none do not exist); counts above the target's range
// are discouraged by their zero target.
func unblur(target []float64, keep, extra float64) []float64 {
	n := len(target)
	if keep >= 1 && extra <= 0 {
		return append([]float64(nil), target...)
	}
	// blur[k][c]: probability that run k ends with c credits, c < 2n.
	blur := make([][]float64, n)
	for k := 1; k < n; k++ {
		kept := binomial(k, keep)
		mu := extra * float64(k)
		poisson := make([]float64, 2*n)
		p := math.Exp(-mu)
		for e := range poisson {
			poisson[e] = p
			p *= mu / float64(e+1)
		}
		blur[k] = make([]float64, 2*n)
		for a, pa := range kept {
			for e := 0; a+e < 2*n; e++ {
				blur[k][a+e] += pa * poisson[e]
			}
		}
	}
	runs := append([]float64(nil), target...)
	pred := make([]float64, 2*n)
	for range 80 {
		clear(pred)
		for k := 1; k < n; k++ {
			for c, b := range blur[k] {
				pred[c] += runs[k] * b
			}
		}
		var predMass, targetMass float64
		for c := 1; c < n; c++ {
			targetMass += target[c]
		}
		for c := 1; c < 2*n; c++ {
			predMass += pred[c]
		}
		for k := 1; k < n; k++ {
			var num, den float64
			for c := 1; c < 2*n; c++ {
				b := blur[k][c]
				den += b
				if c < n && pred[c] > 0 {
					num += b * (target[c] / targetMass) / (pred[c] / predMass)
				}
			}
			if den > 0 {
				runs[k] *= num / den
			}
		}
	}
	return runs
}

// binomial returns the probabilities of 0…n successes in n trials.
func binomial(n int, p float64) []float64 {
	out := make([]float64, n+1)
	for k := range out {
		lg := lgamma(n+1) - lgamma(k+1) - lgamma(n-k+1)
		out[k] = math.Exp(lg + float64(k)*math.Log(max(p, 1e-300)) + float64(n-k)*math.Log(max(1-p, 1e-300)))
	}
	return out
}

func lgamma(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}
