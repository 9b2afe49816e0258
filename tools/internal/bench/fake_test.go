package bench_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeGateway is a small stand-in for the gateway's REST surface, enough
// for the load tool to prepare and run its mix against an httptest server:
// paged lists, movies by id with a response cache whose counters are on
// /metrics like the real one's, search, suggest, sign-up, the password and
// refresh grants, API keys, the caller's profile and PATCH. It checks what
// the tool sends: credentials on authenticated calls, the administrator's on
// writes, JSON bodies, known paths only, and every registered client
// deleted by the end.
type fakeGateway struct {
	t      *testing.T
	movies []map[string]any

	mu      sync.Mutex
	users   map[string]string // email → password of registered clients
	deleted map[string]bool
	cached  map[string]bool
	hits    int
	misses  int
	patches int
	authed  int
	bad     []string
}

const fakeToken = "fake-access-token"

func newFakeGateway(t *testing.T, n int) *httptest.Server {
	t.Helper()
	f := &fakeGateway{t: t, cached: map[string]bool{}, users: map[string]string{}, deleted: map[string]bool{}}
	genres := []string{"Drama", "Comedy", "Action", "Crime", "Family"}
	for i := range n {
		f.movies = append(f.movies, map[string]any{
			"id":         fmt.Sprintf("m_%04d", i),
			"title":      fmt.Sprintf("The Movie Number %d", i),
			"year":       1950 + i%70,
			"genres":     []string{genres[i%len(genres)], genres[(i+2)%len(genres)]},
			"popularity": float64(i%100) + 0.5,
			"imdbScore":  float64(i%10) + 0.1,
		})
	}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, b := range f.bad {
			t.Errorf("fake gateway: %s", b)
		}
		for email := range f.users {
			if !f.deleted[email] {
				t.Errorf("fake gateway: simulated client %s was not deleted", email)
			}
		}
	})
	return srv
}

func (f *fakeGateway) fail(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bad) < 10 {
		f.bad = append(f.bad, fmt.Sprintf(format, a...))
	}
}

// caller is who a request's credential names: "" for anonymous, "admin",
// or a registered client's email; ok is false for a bad credential.
func (f *fakeGateway) caller(r *http.Request) (who string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := r.Header.Get("X-Api-Key"); k != "" {
		email := strings.TrimPrefix(k, "key-")
		_, known := f.users[email]
		return email, known && !f.deleted[email]
	}
	a := r.Header.Get("Authorization")
	switch {
	case a == "":
		return "", true
	case a == "Bearer "+fakeToken:
		return "admin", true
	case strings.HasPrefix(a, "Bearer access-"):
		email := strings.TrimPrefix(a, "Bearer access-")
		_, known := f.users[email]
		return email, known && !f.deleted[email]
	}
	return "", false
}

func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who, ok := f.caller(r)
	if !ok {
		http.Error(w, "bad credential", http.StatusUnauthorized)
		return
	}
	authed := who != ""
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/metrics":
		f.mu.Lock()
		fmt.Fprintf(w, "# TYPE marquee_gateway_cache_lookups_total counter\n")
		fmt.Fprintf(w, "marquee_gateway_cache_lookups_total{otel_scope_name=\"respcache\",result=\"hit\"} %d\n", f.hits)
		fmt.Fprintf(w, "marquee_gateway_cache_lookups_total{otel_scope_name=\"respcache\",result=\"miss\"} %d\n", f.misses)
		f.mu.Unlock()
	case r.Method == http.MethodPost && p == "/v1/users":
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req["email"] == "" || len(req["password"]) < 12 {
			f.fail("POST /v1/users: body %v (%v)", req, err)
			http.Error(w, "bad user", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.users[req["email"]] = req["password"]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated) // as the gateway answers a create
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "u_" + req["email"], "email": req["email"]})
	case r.Method == http.MethodPost && p == "/v1/auth/token":
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		pw, known := f.users[req["username"]]
		f.mu.Unlock()
		switch {
		case req["grantType"] == "password" && req["username"] == "admin@example.com" && req["password"] == "secret":
			writeJSON(w, map[string]any{"accessToken": fakeToken, "tokenType": "Bearer", "expiresIn": "900"})
		case req["grantType"] == "password" && known && req["password"] == pw:
			writeJSON(w, map[string]any{"accessToken": "access-" + req["username"], "tokenType": "Bearer", "expiresIn": "900", "refreshToken": "refresh-" + req["username"]})
		default:
			f.fail("POST /v1/auth/token: unexpected grant %v", req)
			http.Error(w, "bad grant", http.StatusBadRequest)
		}
	case r.Method == http.MethodPost && p == "/v1/users/me/apiKeys":
		if !strings.Contains(who, "@") {
			f.fail("POST %s as %q", p, who)
			http.Error(w, "no credential", http.StatusUnauthorized)
			return
		}
		writeJSON(w, map[string]any{"id": "k_1", "key": "key-" + who})
	case r.Method == http.MethodDelete && p == "/v1/users/me":
		f.mu.Lock()
		f.deleted[who] = true
		f.mu.Unlock()
		writeJSON(w, map[string]any{})
	case r.Method == http.MethodGet && p == "/v1/movies":
		f.count(r, authed)
		if strings.Contains(r.URL.Query().Get("order_by"), "title") {
			// As the real catalog does for orders it cannot serve.
			http.Error(w, "unsupported", http.StatusBadRequest)
			return
		}
		start, _ := strconv.Atoi(r.URL.Query().Get("page_token"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		if size <= 0 || size > 100 {
			size = 20
		}
		end := min(start+size, len(f.movies))
		next := ""
		if end < len(f.movies) {
			next = strconv.Itoa(end)
		}
		writeJSON(w, map[string]any{"movies": f.movies[start:end], "nextPageToken": next})
	case r.Method == http.MethodGet && p == "/v1/users/me":
		if !strings.Contains(who, "@") {
			f.fail("GET /v1/users/me as %q, want a signed-in client", who)
			http.Error(w, "no credential", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.authed++
		f.mu.Unlock()
		writeJSON(w, map[string]any{"id": "u_1", "email": "admin@example.com"})
	case strings.HasPrefix(p, "/v1/movies/"):
		id := strings.TrimPrefix(p, "/v1/movies/")
		var movie map[string]any
		for _, m := range f.movies {
			if m["id"] == id {
				movie = m
			}
		}
		if movie == nil {
			f.fail("%s %s: unknown id", r.Method, p)
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodGet:
			f.count(r, authed)
			w.Header().Set("ETag", `"1"`)
			w.Header().Set("Cache-Control", "public, max-age=30")
			writeJSON(w, movie)
		case http.MethodPatch:
			if who != "admin" || r.Header.Get("Content-Type") != "application/json" || r.URL.Query().Get("update_mask") != "popularity" {
				f.fail("PATCH %s: caller %q, content type %q, mask %q", p, who, r.Header.Get("Content-Type"), r.URL.Query().Get("update_mask"))
			}
			var body map[string]float64
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["popularity"] != movie["popularity"] {
				f.fail("PATCH %s: body %v (%v), want popularity %v", p, body, err, movie["popularity"])
			}
			f.mu.Lock()
			f.patches++
			f.mu.Unlock()
			writeJSON(w, movie)
		default:
			http.Error(w, "method", http.StatusMethodNotAllowed)
		}
	case r.Method == http.MethodGet && p == "/v1/search/movies":
		f.count(r, authed)
		writeJSON(w, map[string]any{"results": []any{map[string]any{"movie": f.movies[0], "score": 1.5}}, "totalSize": "1"})
	case r.Method == http.MethodGet && p == "/v1/search/suggest":
		f.count(r, authed)
		if r.URL.Query().Get("prefix") == "" {
			http.Error(w, "prefix required", http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]any{"suggestions": []any{map[string]any{"id": "m_0000", "title": "The Movie Number 0"}}})
	default:
		f.fail("unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// count plays the response cache: an anonymous GET is a miss the first
// time its URL is seen and a hit afterwards.
func (f *fakeGateway) count(r *http.Request, authed bool) {
	if authed {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cached[r.URL.String()] {
		f.hits++
	} else {
		f.cached[r.URL.String()] = true
		f.misses++
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
