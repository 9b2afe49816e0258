package generator

import "math"

// alias is Vose's alias table: O(1) draws from a fixed discrete
// distribution, taking both the index and the coin from one 64-bit random
// number.
type alias struct {
	thresh []uint32 // keep index i when the coin is below thresh[i]
	alt    []int32
}

func newAlias(weights []float64) alias {
	n := len(weights)
	a := alias{thresh: make([]uint32, n), alt: make([]int32, n)}
	var sum float64
	for _, w := range weights {
		sum += w
	}
	scaled := make([]float64, n)
	var small, large []int
	for i, w := range weights {
		scaled[i] = w / sum * float64(n)
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.thresh[s] = toThreshold(scaled[s])
		a.alt[s] = int32(l)
		scaled[l] += scaled[s] - 1
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		a.thresh[i] = math.MaxUint32
		a.alt[i] = int32(i)
	}
	return a
}

func toThreshold(p float64) uint32 {
	if p >= 1 {
		return math.MaxUint32
	}
	return uint32(p * (1 << 32))
}

// pick maps a uniformly random 64-bit number to an index.
func (a *alias) pick(x uint64) int {
	i := int(((x >> 32) * uint64(len(a.thresh))) >> 32)
	if uint32(x) < a.thresh[i] {
		return i
	}
	return int(a.alt[i])
}

// zipfWeights gives rank r the weight 1/(r+1)^s: earlier words are drawn
// more often.
func zipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for r := range w {
		w[r] = math.Pow(float64(r+1), -s)
	}
	return w
}

// quantiles is a piecewise-linear inverse CDF through (probability, value)
// points, such as a profile's p0, p1, p5 … p100.
type quantiles struct {
	p, v []float64
}

// at returns the value at probability u in [0, 1].
func (q *quantiles) at(u float64) float64 {
	n := len(q.p)
	if u <= q.p[0] {
		return q.v[0]
	}
	for i := 1; i < n; i++ {
		if u <= q.p[i] {
			lo, hi := q.p[i-1], q.p[i]
			if hi == lo {
				return q.v[i]
			}
			return q.v[i-1] + (q.v[i]-q.v[i-1])*(u-lo)/(hi-lo)
		}
	}
	return q.v[n-1]
}

// mean integrates the inverse CDF.
func (q *quantiles) mean() float64 {
	var m float64
	for i := 1; i < len(q.p); i++ {
		m += (q.p[i] - q.p[i-1]) * (q.v[i] + q.v[i-1]) / 2
	}
	return m
}

// mix is SplitMix64's finaliser: a bijective scrambler that turns
// consecutive indexes into unrelated seeds and ids into name choices.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// normalCDF is the standard normal distribution function.
func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// unit maps a random 64-bit number to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) * 0x1p-53 }
