package generator

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// defaultProfile is a copy of data/generator_profile.json (a test keeps the
// two identical), embedded so that the generator works from any directory.
//
//go:embed profile.json
var defaultProfile []byte

// Profile holds the empirical distributions the generator follows, in the
// shape of data/generator_profile.json. Only the fields the generator uses
// are declared. Use it by pointer and do not change it once a generator uses
// it.
type Profile struct {
	GenreShare     map[string]float64 `json:"genre_share_of_movies"`
	GenresPerMovie map[string]float64 `json:"genres_per_movie_pmf"`
	GenrePairs     map[string]float64 `json:"genre_pairs_top20_share"`
	ImdbScore      struct {
		Mean        float64            `json:"mean"`
		Min         float64            `json:"min"`
		Max         float64            `json:"max"`
		PMF         map[string]float64 `json:"pmf_0.1_bins"`
		MeanByGenre map[string]float64 `json:"mean_by_genre"`
	} `json:"imdb_score"`
	YearDecades       map[string]map[string]float64 `json:"year_decade_pmf"`
	DirectorsPerMovie map[string]float64            `json:"directors_per_movie_pmf"`
	MoviesPerDirector struct {
		PowerlawAlpha float64            `json:"powerlaw_alpha"`
		PMFCapped     map[string]float64 `json:"pmf_capped20"`
	} `json:"movies_per_director"`
	CastPerMovie        map[string]map[string]float64 `json:"cast_per_movie"`
	MoviesPerActorAlpha float64                       `json:"movies_per_actor_powerlaw_alpha"`
	TitleWords          map[string]float64            `json:"title_words_pmf"`
	VotesLog10          struct {
		Quantiles   map[string]float64 `json:"quantiles"`
		ScoreCorrel float64            `json:"pearson_score_vs_log10votes"`
	} `json:"votes_log10"`
	RuntimeMinutes map[string]float64 `json:"runtime_minutes"`

	// calibration memoises the genre model, the costly part of New, so
	// that generators built from one Profile calibrate once.
	calibration struct {
		once  sync.Once
		model *genreModel
		err   error
	}
}

// genreModel returns the calibrated genre model of p.
func (p *Profile) genreModel() (*genreModel, error) {
	p.calibration.once.Do(func() { p.calibration.model, p.calibration.err = buildGenreModel(p) })
	return p.calibration.model, p.calibration.err
}

// DefaultProfile returns the profile measured on real catalogues that ships
// with the generator.
func DefaultProfile() (*Profile, error) { return ParseProfile(defaultProfile) }

// ParseProfile reads a profile in the JSON shape of
// data/generator_profile.json.
func ParseProfile(data []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("parsing the generator profile: %w", err)
	}
	switch {
	case len(p.GenreShare) == 0:
		return nil, errors.New("generator profile: genre_share_of_movies is empty")
	case len(p.GenresPerMovie) == 0:
		return nil, errors.New("generator profile: genres_per_movie_pmf is empty")
	case len(p.ImdbScore.PMF) == 0:
		return nil, errors.New("generator profile: imdb_score.pmf_0.1_bins is empty")
	case len(p.YearDecades) == 0:
		return nil, errors.New("generator profile: year_decade_pmf is empty")
	case len(p.DirectorsPerMovie) == 0:
		return nil, errors.New("generator profile: directors_per_movie_pmf is empty")
	case len(p.MoviesPerDirector.PMFCapped) == 0:
		return nil, errors.New("generator profile: movies_per_director.pmf_capped20 is empty")
	case len(p.TitleWords) == 0:
		return nil, errors.New("generator profile: title_words_pmf is empty")
	case len(p.VotesLog10.Quantiles) < 2:
		return nil, errors.New("generator profile: votes_log10.quantiles needs at least two points")
	case len(p.RuntimeMinutes) == 0:
		return nil, errors.New("generator profile: runtime_minutes is empty")
	}
	return &p, nil
}

// YearSources lists the year distributions of p, sorted.
func (p *Profile) YearSources() []string {
	out := make([]string, 0, len(p.YearDecades))
	for k := range p.YearDecades {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// intPMF turns {"1": 0.2, "3": 0.5} into sorted values and weights.
func intPMF(name string, m map[string]float64) ([]int, []float64, error) {
	type kv struct {
		k int
		v float64
	}
	var kvs []kv
	for k, v := range m {
		n, err := strconv.Atoi(k)
		if err != nil {
			return nil, nil, fmt.Errorf("generator profile: %s: key %q is not an integer", name, k)
		}
		if v < 0 || math.IsNaN(v) {
			return nil, nil, fmt.Errorf("generator profile: %s: %q has weight %v", name, k, v)
		}
		kvs = append(kvs, kv{n, v})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	vals := make([]int, len(kvs))
	ws := make([]float64, len(kvs))
	for i, e := range kvs {
		vals[i], ws[i] = e.k, e.v
	}
	return vals, ws, nil
}

// quantilesOf reads {"p0": 5, "p50": 33158, "p100": …} (other keys, such as
// "mean" or "n", are ignored) into an inverse CDF.
func quantilesOf(name string, m map[string]float64, transform func(float64) float64) (quantiles, error) {
	type pt struct{ p, v float64 }
	var pts []pt
	for k, v := range m {
		s, ok := strings.CutPrefix(k, "p")
		if !ok {
			continue
		}
		pc, err := strconv.ParseFloat(s, 64)
		if err != nil || pc < 0 || pc > 100 {
			continue
		}
		pts = append(pts, pt{pc / 100, transform(v)})
	}
	if len(pts) < 2 {
		return quantiles{}, fmt.Errorf("generator profile: %s needs at least two percentiles", name)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].p < pts[j].p })
	var q quantiles
	for _, e := range pts {
		q.p = append(q.p, e.p)
		q.v = append(q.v, e.v)
	}
	return q, nil
}
