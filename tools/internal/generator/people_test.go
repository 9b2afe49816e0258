package generator

import (
	"math"
	"testing"
)

// TestMoviesPerDirector checks the director pool: most directors have one
// movie, the counts follow the profile's power law, and no one has more
// than the bound.
func TestMoviesPerDirector(t *testing.T) {
	p, err := DefaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(p, Options{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 * blockSize
	movies := map[uint64]int{}
	credits := map[uint64]int{}
	for i := uint64(0); i < n; i++ {
		g.fill(i)
		for _, id := range g.raw.directorIDs {
			movies[id]++
		}
		for _, id := range g.raw.castIDs {
			credits[id]++
		}
	}
	hist := map[int]int{}
	maxMovies, total := 0, 0
	for _, c := range movies {
		hist[c]++
		maxMovies = max(maxMovies, c)
		total += c
	}
	d := float64(len(movies))
	if got, want := float64(hist[1])/d, p.MoviesPerDirector.PMFCapped["1"]; math.Abs(got-want) > 0.05 {
		t.Errorf("share of directors with one movie = %.3f, want %.3f", got, want)
	}
	if got, want := float64(hist[2])/d, p.MoviesPerDirector.PMFCapped["2"]; math.Abs(got-want) > 0.03 {
		t.Errorf("share of directors with two movies = %.3f, want %.3f", got, want)
	}
	if mean := float64(total) / d; mean < 1.7 || mean > 2.6 {
		t.Errorf("movies per director = %.2f, want about 2", mean)
	}
	if maxMovies < 20 || maxMovies > maxDirectorRun+10 {
		t.Errorf("most movies by one director = %d, want 20 to %d", maxMovies, maxDirectorRun+10)
	}
	// The tail is a power law: the share with k movies falls about as
	// k^-alpha between 2 and 8.
	slope := math.Log(float64(hist[8])/float64(hist[2])) / math.Log(8.0/2.0)
	if slope > -1.4 || slope < -2.6 {
		t.Errorf("log-log slope of directors by movie count = %.2f, want about -%.2f", slope, p.MoviesPerDirector.PowerlawAlpha)
	}

	// Actors follow the profile's power law, bounded by maxActorRun.
	var z float64
	for k := 1; k <= maxActorRun; k++ {
		z += math.Pow(float64(k), -p.MoviesPerActorAlpha)
	}
	actorHist := map[int]int{}
	maxCredits := 0
	for _, c := range credits {
		actorHist[c]++
		maxCredits = max(maxCredits, c)
	}
	a := float64(len(credits))
	for _, k := range []int{1, 2, 3, 5} {
		want := math.Pow(float64(k), -p.MoviesPerActorAlpha) / z
		if got := float64(actorHist[k]) / a; math.Abs(got-want) > max(0.01, want*0.2) {
			t.Errorf("share of actors with %d movies = %.3f, want %.3f", k, got, want)
		}
	}
	if maxCredits < 20 || maxCredits > maxActorRun+15 {
		t.Errorf("most movies by one actor = %d, want 20 to %d", maxCredits, maxActorRun+15)
	}
}

func TestAliasMatchesWeights(t *testing.T) {
	a := newAlias([]float64{1, 2, 3, 4})
	counts := make([]int, 4)
	x := uint64(1)
	const n = 400000
	for range n {
		x = mix(x)
		counts[a.pick(x)]++
	}
	for i, c := range counts {
		if got, want := float64(c)/n, float64(i+1)/10; math.Abs(got-want) > 0.005 {
			t.Errorf("index %d drawn %.4f of the time, want %.4f", i, got, want)
		}
	}
}
