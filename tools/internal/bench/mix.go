package bench

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Kinds of request in the mix, in report order.
const (
	KindGet     = "get"     // anonymous GET /v1/movies/{id}
	KindList    = "list"    // anonymous GET /v1/movies with a filter and an order
	KindSearch  = "search"  // anonymous GET /v1/search/movies
	KindSuggest = "suggest" // anonymous GET /v1/search/suggest
	KindAuth    = "auth"    // authenticated reads (bypass the response cache)
	KindWrite   = "write"   // admin PATCH of a movie's popularity
)

var kinds = []string{KindGet, KindList, KindSearch, KindSuggest, KindAuth, KindWrite}

// kindFragment tags a target's URL with its kind. A URL fragment is never
// sent on the wire (net/http writes the path and query only), but vegeta
// copies the target URL into its Result, so every result can be attributed
// to its kind without touching what the server sees.
const kindFragment = "#bench="

// Mix is the share of each kind of request, in percent.
type Mix map[string]float64

// DefaultMix is the realistic mix of issue 8: GET by id 60%, list with
// filters 15%, search 15%, suggest 5%, authenticated calls and writes 5%
// (4% authenticated reads, 1% writes).
func DefaultMix() Mix {
	return Mix{KindGet: 60, KindList: 15, KindSearch: 15, KindSuggest: 5, KindAuth: 4, KindWrite: 1}
}

// ParseMix reads "get=60,list=15,..."; kinds left out get 0.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: want kind=percent", part)
		}
		k = strings.TrimSpace(k)
		if !validKind(k) {
			return nil, fmt.Errorf("mix: unknown kind %q (want one of %s)", k, strings.Join(kinds, ", "))
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 {
			return nil, fmt.Errorf("mix %q: want a non-negative number", part)
		}
		m[k] = f
	}
	if m.total() <= 0 {
		return nil, fmt.Errorf("mix %q: shares add up to zero", s)
	}
	return m, nil
}

func validKind(k string) bool {
	for _, v := range kinds {
		if v == k {
			return true
		}
	}
	return false
}

func (m Mix) total() float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// String renders the mix in kind order.
func (m Mix) String() string {
	var parts []string
	for _, k := range kinds {
		if v := m[k]; v > 0 {
			parts = append(parts, k+"="+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

// Movie is what the bench knows of a catalogue movie, from paging
// /v1/movies.
type Movie struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Year       int      `json:"year"`
	Genres     []string `json:"genres"`
	Popularity float64  `json:"popularity"`
	ImdbScore  float64  `json:"imdbScore"`
}

// Workload is what the targeter draws from: the catalogue's ids ranked by
// popularity, and the list, search and suggest queries that were checked to
// work against the target.
type Workload struct {
	Movies   []Movie  // most popular first: Zipf rank 0 is Movies[0]
	Lists    []string // query strings of GET /v1/movies
	Searches []string // query strings of GET /v1/search/movies
	Suggests []string // query strings of GET /v1/search/suggest
}

// zipf draws ranks 0..n-1 with probability proportional to 1/(1+rank)^s.
type zipf struct{ z *rand.Zipf }

func newZipf(rng *rand.Rand, s float64, n int) *zipf {
	if n <= 1 {
		return &zipf{}
	}
	return &zipf{z: rand.NewZipf(rng, s, 1, uint64(n-1))}
}

func (z *zipf) next() int {
	if z.z == nil {
		return 0
	}
	return int(z.z.Uint64())
}

// targeter draws the realistic mix. It is safe for concurrent use (vegeta
// calls it from every worker): one mutex guards the random source, which is
// far cheaper than the request it feeds.
type targeter struct {
	base   string
	w      *Workload
	tokens TokenSource

	mu                         sync.Mutex
	rng                        *rand.Rand
	cum                        []float64 // cumulative shares, in kinds order
	ids, lists, searches, sugs *zipf
}

func newTargeter(base string, w *Workload, mix Mix, s float64, seed uint64, tokens TokenSource) *targeter {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t := &targeter{
		base: strings.TrimRight(base, "/"), w: w, tokens: tokens, rng: rng,
		ids:      newZipf(rng, s, len(w.Movies)),
		lists:    newZipf(rng, s, len(w.Lists)),
		searches: newZipf(rng, s, len(w.Searches)),
		sugs:     newZipf(rng, s, len(w.Suggests)),
	}
	total := mix.total()
	var acc float64
	for _, k := range kinds {
		acc += mix[k] / total
		t.cum = append(t.cum, acc)
	}
	return t
}

// Targeter returns the vegeta Targeter.
func (t *targeter) Targeter() vegeta.Targeter {
	return func(tgt *vegeta.Target) error {
		t.mu.Lock()
		kind := t.pickKind()
		var path string
		var movie Movie
		switch kind {
		case KindGet, KindAuth, KindWrite:
			movie = t.w.Movies[t.ids.next()]
		case KindList:
			path = "/v1/movies?" + t.w.Lists[t.lists.next()]
		case KindSearch:
			path = "/v1/search/movies?" + t.w.Searches[t.searches.next()]
		case KindSuggest:
			path = "/v1/search/suggest?" + t.w.Suggests[t.sugs.next()]
		}
		// A quarter of the authenticated reads are the caller's own
		// profile, the rest movies, which bypass the response cache.
		me := kind == KindAuth && t.rng.IntN(4) == 0
		t.mu.Unlock()

		*tgt = vegeta.Target{Method: http.MethodGet}
		switch kind {
		case KindGet:
			path = "/v1/movies/" + url.PathEscape(movie.ID)
		case KindAuth:
			path = "/v1/movies/" + url.PathEscape(movie.ID)
			if me {
				path = "/v1/users/me"
			}
			tgt.Header = t.authHeader(false)
		case KindWrite:
			// Writing a movie's popularity back unchanged exercises the whole
			// write path (revision, change feed, cache invalidation, search
			// sync) without drifting the catalogue.
			path = "/v1/movies/" + url.PathEscape(movie.ID) + "?update_mask=popularity"
			tgt.Method = http.MethodPatch
			tgt.Body = []byte(`{"popularity":` + strconv.FormatFloat(movie.Popularity, 'f', -1, 64) + `}`)
			tgt.Header = t.authHeader(true)
		}
		tgt.URL = t.base + path + kindFragment + kind
		return nil
	}
}

func (t *targeter) pickKind() string {
	u := t.rng.Float64()
	for i, c := range t.cum {
		if u < c {
			return kinds[i]
		}
	}
	return kinds[len(kinds)-1]
}

func (t *targeter) authHeader(json bool) http.Header {
	h := http.Header{}
	if t.tokens != nil {
		if tok := t.tokens.Token(); tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	if json {
		h.Set("Content-Type", "application/json")
	}
	return h
}

// kindOf reads the kind back from a result's URL.
func kindOf(rawURL string) string {
	if i := strings.LastIndex(rawURL, kindFragment); i >= 0 {
		return rawURL[i+len(kindFragment):]
	}
	return "other"
}

// rankMovies orders movies most popular first (ties by id), the order in
// which Zipf ranks are handed out: popular movies are the requested ones.
func rankMovies(ms []Movie) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Popularity != ms[j].Popularity {
			return ms[i].Popularity > ms[j].Popularity
		}
		return ms[i].ID < ms[j].ID
	})
}
