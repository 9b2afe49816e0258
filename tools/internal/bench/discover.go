package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// errRateLimited explains a 429 met while preparing: the preparation sends
// a few hundred requests, more than the default anonymous quota.
var errRateLimited = errors.New("rate limited while preparing the workload: raise the gateway's limits " +
	"(MARQUEE_GATEWAY_RATELIMIT_ANONYMOUS_PER_MINUTE=0 and friends, 0 meaning unlimited) or pass credentials")

// fetchMovies pages GET /v1/movies until the catalogue ends or max movies
// are known: the real ids the Zipf draw ranks.
func fetchMovies(ctx context.Context, c *http.Client, base string, tokens TokenSource, max int) ([]Movie, error) {
	var movies []Movie
	token := ""
	for len(movies) < max {
		q := url.Values{"page_size": {"100"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Movies        []Movie `json:"movies"`
			NextPageToken string  `json:"nextPageToken"`
		}
		if err := getJSON(ctx, c, base+"/v1/movies?"+q.Encode(), tokens, &page); err != nil {
			return nil, fmt.Errorf("listing the catalogue: %w", err)
		}
		movies = append(movies, page.Movies...)
		if page.NextPageToken == "" || len(page.Movies) == 0 {
			break
		}
		token = page.NextPageToken
	}
	if len(movies) > max {
		movies = movies[:max]
	}
	if len(movies) == 0 {
		return nil, errors.New("the catalogue is empty: seed it first (the dev stack loads data/imdb.json)")
	}
	rankMovies(movies)
	return movies, nil
}

// buildQueries derives list, search and suggest queries from the
// catalogue, most popular first (Zipf ranks them like the ids): the filters
// and orders the catalog's indexes serve, searches by title, by a word of
// a title and by a misspelt word, discovery by genre, and title prefixes.
func buildQueries(movies []Movie) (lists, searches, suggests []string) {
	genres := topGenres(movies, 6)
	enc := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}

	lists = append(lists,
		enc("order_by", "popularity desc", "page_size", "20"),
		enc("order_by", "imdbScore desc", "page_size", "20"),
		enc("filter", "imdbScore >= 8", "order_by", "imdbScore desc", "page_size", "20"),
		enc("filter", "year >= 2000", "order_by", "year desc", "page_size", "20"),
		enc("order_by", "title", "page_size", "20"),
	)
	for _, g := range genres {
		for _, o := range []string{"popularity desc", "imdbScore desc", "year desc"} {
			lists = append(lists, enc("filter", fmt.Sprintf("genres:%q", g), "order_by", o, "page_size", "20"))
		}
	}

	top := movies[:min(len(movies), 40)]
	for i, m := range top {
		title := strings.ToLower(m.Title)
		searches = append(searches, enc("q", title, "page_size", "10"))
		if w := longestWord(title); utf8.RuneCountInString(w) >= 4 {
			searches = append(searches, enc("q", w, "page_size", "10"))
			if utf8.RuneCountInString(w) >= 6 {
				searches = append(searches, enc("q", typo(w), "page_size", "10"))
			}
			if len(m.Genres) > 0 && i%3 == 0 {
				searches = append(searches, enc("q", w, "filter", fmt.Sprintf("genres:%q", m.Genres[0]), "page_size", "10"))
			}
		}
		for _, n := range []int{3, 5} {
			if p := prefix(title, n); p != "" {
				suggests = append(suggests, enc("prefix", p, "limit", "10"))
			}
		}
	}
	for _, g := range genres {
		searches = append(searches, enc("filter", fmt.Sprintf("genres:%q", g), "order_by", "popularity desc", "page_size", "10"))
	}
	return dedupe(lists), dedupe(searches), dedupe(suggests)
}

func topGenres(movies []Movie, n int) []string {
	count := map[string]int{}
	for _, m := range movies {
		for _, g := range m.Genres {
			count[g]++
		}
	}
	gs := make([]string, 0, len(count))
	for g := range count {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		if count[gs[i]] != count[gs[j]] {
			return count[gs[i]] > count[gs[j]]
		}
		return gs[i] < gs[j]
	})
	return gs[:min(n, len(gs))]
}

func longestWord(s string) string {
	best := ""
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ':' || r == ',' || r == '-' || r == '.' }) {
		if utf8.RuneCountInString(w) > utf8.RuneCountInString(best) {
			best = w
		}
	}
	return best
}

// typo drops the middle letter: "godfather" becomes "godfther", what a
// person types in a hurry.
func typo(w string) string {
	r := []rune(w)
	mid := len(r) / 2
	return string(slices.Delete(r, mid, mid+1))
}

func prefix(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) < n {
		return ""
	}
	return string(r[:n])
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// probe sends each query once and keeps those answered 200, so the load
// measures the service rather than a query it refuses; the others are
// reported. A 429 stops the preparation with advice.
func probe(ctx context.Context, c *http.Client, base, path string, queries []string, tokens TokenSource) (kept []string, dropped []string, err error) {
	type outcome struct {
		ok     bool
		status string
		err    error
	}
	out := make([]outcome, len(queries))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, q := range queries {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			status, err := get(ctx, c, base+path+"?"+q, tokens)
			out[i] = outcome{ok: err == nil && status == http.StatusOK, status: http.StatusText(status), err: err}
			if status == http.StatusTooManyRequests {
				out[i].err = errRateLimited
			}
		})
	}
	wg.Wait()
	for i, o := range out {
		if errors.Is(o.err, errRateLimited) {
			return nil, nil, o.err
		}
		if o.ok {
			kept = append(kept, queries[i])
			continue
		}
		why := o.status
		if o.err != nil {
			why = o.err.Error()
		}
		dropped = append(dropped, fmt.Sprintf("%s?%s (%s)", path, queries[i], why))
	}
	return kept, dropped, nil
}

func get(ctx context.Context, c *http.Client, u string, tokens TokenSource) (int, error) {
	req, err := newGet(ctx, u, tokens)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func getJSON(ctx context.Context, c *http.Client, u string, tokens TokenSource, into any) error {
	req, err := newGet(ctx, u, tokens)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return errRateLimited
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("decoding %s: %w", u, err)
	}
	return nil
}

func newGet(ctx context.Context, u string, tokens TokenSource) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if tokens != nil {
		if t := tokens.Token(); t != "" {
			req.Header.Set("Authorization", "Bearer "+t)
		}
	}
	return req, nil
}
