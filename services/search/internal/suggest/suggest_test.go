package suggest_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/services/search/internal/suggest"
)

// brute is the reference: every entry with the prefix, best first, one per id.
func brute(es []suggest.Entry, prefix string, limit int, valid func(uint64) bool) []string {
	var m []suggest.Entry
	for _, e := range es {
		if strings.HasPrefix(e.Key, prefix) && valid(e.Ref) {
			m = append(m, e)
		}
	}
	slices.SortStableFunc(m, func(a, b suggest.Entry) int {
		switch {
		case a.Popularity != b.Popularity:
			if a.Popularity > b.Popularity {
				return -1
			}
			return 1
		case a.Key != b.Key:
			return strings.Compare(a.Key, b.Key)
		}
		return strings.Compare(a.ID, b.ID)
	})
	var out []string
	seen := map[string]bool{}
	for _, e := range m {
		if len(out) == limit {
			break
		}
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e.ID)
		}
	}
	return out
}

func ids(es []suggest.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestLookupMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	letters := "abcde "
	var es []suggest.Entry
	for i := range 5000 {
		n := 1 + r.IntN(8)
		b := make([]byte, n)
		for j := range b {
			b[j] = letters[r.IntN(len(letters))]
		}
		id := fmt.Sprintf("m%d", i)
		e := suggest.Entry{Key: string(b), Ref: uint64(i), ID: id, Title: string(b), Popularity: float64(r.IntN(50))}
		es = append(es, e)
		if r.IntN(4) == 0 { // a second key for the same movie
			e.Key = "x" + e.Key
			es = append(es, e)
		}
	}
	valid := func(ref uint64) bool { return ref%13 != 0 } // some entries are stale
	snap := suggest.Build(slices.Clone(es))
	for _, p := range []string{"", "a", "ab", "abc", "e ", "x", "xa", "zz", "d"} {
		for _, limit := range []int{1, 10, 50} {
			got := ids(snap.Lookup(p, limit, valid, nil))
			want := brute(es, p, limit, valid)
			if !slices.Equal(got, want) {
				t.Errorf("Lookup(%q, %d):\n got %v\nwant %v", p, limit, got, want)
			}
		}
	}
}

func TestSuggesterOverlay(t *testing.T) {
	s := suggest.New()
	s.Install(suggest.Build([]suggest.Entry{
		{Key: "casablanca", ID: "m1", Title: "Casablanca", Popularity: 80, Ref: 1},
		{Key: "casanova", ID: "m2", Title: "Casanova", Popularity: 50, Ref: 2},
	}), s.Seq())
	valid := func(ref uint64) bool { return ref != 2 } // m2 was deleted
	s.Add(suggest.Entry{Key: "casa blanca", ID: "m3", Title: "Casa Blanca", Popularity: 90, Ref: 3})
	got := ids(s.Lookup("casa", 10, valid))
	if want := []string{"m3", "m1"}; !slices.Equal(got, want) {
		t.Errorf("overlay lookup %v, want %v", got, want)
	}
	if s.Pending() != 1 {
		t.Errorf("pending %d, want 1", s.Pending())
	}
}
