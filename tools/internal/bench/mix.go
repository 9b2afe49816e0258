package bench

import (
	"encoding/json"
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
	KindAuth    = "auth"    // reads with a simulated client's bearer token (never cached by the gateway)
	KindAPIKey  = "apikey"  // reads with a simulated integration's X-API-Key (never cached either)
	KindSignIn  = "signin"  // POST /v1/auth/token, password grant: one argon2id hash each
	KindWrite   = "write"   // admin PATCH of a movie's popularity
)

var kinds = []string{KindGet, KindList, KindSearch, KindSuggest, KindAuth, KindAPIKey, KindSignIn, KindWrite}

// Endpoints of the authenticated reads, reported as rows under their kind
// ("auth.list"): they reach different services and the engine differently.
const (
	EndpointMovie   = "movie"   // GET /v1/movies/{id}: catalog's cache
	EndpointList    = "list"    // GET /v1/movies?filter: a catalog List, a query on the engine
	EndpointSearch  = "search"  // GET /v1/search/movies: search
	EndpointSuggest = "suggest" // GET /v1/search/suggest: search
	EndpointMe      = "me"      // GET /v1/users/me: auth, a read on the engine
)

// kindFragment tags a target's URL with its kind. A URL fragment is never
// sent on the wire (net/http writes the path and query only), but vegeta
// copies the target URL into its Result, so every result can be attributed
// to its kind without touching what the server sees.
const kindFragment = "#bench="

// Mix is the share of each kind of request, in percent.
type Mix map[string]float64

// DefaultMix is the realistic mix of issue 8: GET by id 60%, list with
// filters 15%, search 15%, suggest 5%, and 5% of "authenticated calls and
// writes", split as clients make them (MixRationale says why):
//
//	auth   3.5%  reads with a bearer token obtained once per client
//	apikey 1.2%  reads with an API key (integrations)
//	write  0.2%  administrators' edits
//	signin 0.1%  password sign-ins
func DefaultMix() Mix {
	return Mix{KindGet: 60, KindList: 15, KindSearch: 15, KindSuggest: 5,
		KindAuth: 3.5, KindAPIKey: 1.2, KindWrite: 0.2, KindSignIn: 0.1}
}

// MixRationale explains the default split of the authenticated 5%, for the
// tool's help and the report.
const MixRationale = `The issue's 5% of "authenticated calls and writes" is split as clients make them.
A client signs in once (one argon2id hash, slow on purpose), then reuses its
15-minute access token and renews it with the refresh-token grant: at one
sign-in per ~50 authenticated requests, sign-ins are 0.1% of all requests.
Integrations use API keys (1.2%). Signed-in clients read (3.5%) the way
anonymous ones do (by id 55%, lists 15%, search 15%, suggest 5% of their
reads) plus their profile, GET /v1/users/me (10%); API-key reads follow the
same proportions without the profile. Writes are administrators' catalogue
edits: 0.2% of 75 million requests a day is 150,000 edits a day, generous
for a curated catalogue (and the capacity plan sizes writes at 1%
separately); they pick movies by the same Zipf law as reads, so the most
read movies are the most written, the hardest case for the caches. Every
kind has its own row in the report, authenticated reads one per endpoint.`

// authPaths is the split of one authenticated read among endpoints, in
// percent; API keys skip the profile.
var authPaths = []struct {
	endpoint string
	share    float64
}{
	{EndpointMovie, 55}, {EndpointList, 15}, {EndpointSearch, 15}, {EndpointSuggest, 5}, {EndpointMe, 10},
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
	base  string
	w     *Workload
	creds Credentials

	mu                         sync.Mutex
	rng                        *rand.Rand
	cum                        []float64 // cumulative shares, in kinds order
	ids, lists, searches, sugs *zipf
}

func newTargeter(base string, w *Workload, mix Mix, s float64, seed uint64, creds Credentials) *targeter {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t := &targeter{
		base: strings.TrimRight(base, "/"), w: w, creds: creds, rng: rng,
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
		tag := kind
		var path string
		var movie Movie
		var user TokenSource
		var key string
		var login Login
		switch kind {
		case KindGet, KindWrite:
			movie = t.w.Movies[t.ids.next()]
		case KindList:
			path = "/v1/movies?" + t.w.Lists[t.lists.next()]
		case KindSearch:
			path = "/v1/search/movies?" + t.w.Searches[t.searches.next()]
		case KindSuggest:
			path = "/v1/search/suggest?" + t.w.Suggests[t.sugs.next()]
		case KindAuth, KindAPIKey:
			var endpoint string
			endpoint, path = t.authPath(kind == KindAuth)
			tag += "." + endpoint
			if kind == KindAuth {
				user = pick(t.rng, t.creds.Users)
			} else {
				key = pick(t.rng, t.creds.Keys)
			}
		case KindSignIn:
			login = pick(t.rng, t.creds.Logins)
		}
		t.mu.Unlock()

		*tgt = vegeta.Target{Method: http.MethodGet}
		switch kind {
		case KindGet:
			path = "/v1/movies/" + url.PathEscape(movie.ID)
		case KindAuth:
			tgt.Header = bearer(user)
		case KindAPIKey:
			tgt.Header = http.Header{"X-Api-Key": {key}}
		case KindSignIn:
			path = "/v1/auth/token"
			tgt.Method = http.MethodPost
			tgt.Body, _ = json.Marshal(map[string]string{"grantType": "password", "username": login.Email, "password": login.Password})
			tgt.Header = http.Header{"Content-Type": {"application/json"}}
		case KindWrite:
			// Writing a movie's popularity back unchanged exercises the whole
			// write path (revision, change feed, cache invalidation, search
			// sync) without drifting the catalogue.
			path = "/v1/movies/" + url.PathEscape(movie.ID) + "?update_mask=popularity"
			tgt.Method = http.MethodPatch
			tgt.Body = []byte(`{"popularity":` + strconv.FormatFloat(movie.Popularity, 'f', -1, 64) + `}`)
			tgt.Header = bearer(t.creds.Admin)
			tgt.Header.Set("Content-Type", "application/json")
		}
		tgt.URL = t.base + path + kindFragment + tag
		return nil
	}
}

// authPath draws an authenticated read's endpoint and path (the caller
// holds t.mu); withMe allows the caller's own profile.
func (t *targeter) authPath(withMe bool) (string, string) {
	var total float64
	for _, p := range authPaths {
		if p.endpoint != EndpointMe || withMe {
			total += p.share
		}
	}
	u := t.rng.Float64() * total
	endpoint := EndpointMovie
	for _, p := range authPaths {
		if p.endpoint == EndpointMe && !withMe {
			continue
		}
		if u < p.share {
			endpoint = p.endpoint
			break
		}
		u -= p.share
	}
	switch {
	case endpoint == EndpointList && len(t.w.Lists) > 0:
		return endpoint, "/v1/movies?" + t.w.Lists[t.lists.next()]
	case endpoint == EndpointSearch && len(t.w.Searches) > 0:
		return endpoint, "/v1/search/movies?" + t.w.Searches[t.searches.next()]
	case endpoint == EndpointSuggest && len(t.w.Suggests) > 0:
		return endpoint, "/v1/search/suggest?" + t.w.Suggests[t.sugs.next()]
	case endpoint == EndpointMe:
		return endpoint, "/v1/users/me"
	}
	return EndpointMovie, "/v1/movies/" + url.PathEscape(t.w.Movies[t.ids.next()].ID)
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

// pick draws one of xs uniformly (the zero value if there is none).
func pick[T any](rng *rand.Rand, xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	return xs[rng.IntN(len(xs))]
}

// bearer is the Authorization header of ts's current token (none without
// one).
func bearer(ts TokenSource) http.Header {
	h := http.Header{}
	if ts != nil {
		if tok := ts.Token(); tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	return h
}

// kindOf reads the kind back from a result's URL, and the endpoint of an
// authenticated read ("" for the other kinds).
func kindOf(rawURL string) (kind, endpoint string) {
	if i := strings.LastIndex(rawURL, kindFragment); i >= 0 {
		kind, endpoint, _ = strings.Cut(rawURL[i+len(kindFragment):], ".")
		return kind, endpoint
	}
	return "other", ""
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
