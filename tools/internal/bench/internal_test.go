package bench

import (
	"math"
	"net/http"
	"os"
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{in: "get=60,list=15,search=15,suggest=5,auth=3.5,apikey=1.2,signin=0.1,write=0.2", want: DefaultMix()},
		{in: " get = 90 , search=10 ", want: Mix{KindGet: 90, KindSearch: 10}},
		{in: "get=60,post=1", wantErr: true},
		{in: "get", wantErr: true},
		{in: "get=-1", wantErr: true},
		{in: "get=0", wantErr: true},
	} {
		got, err := ParseMix(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseMix(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && got.String() != tc.want.String() {
			t.Errorf("ParseMix(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// The targeter's draws follow the mix and the Zipf law: shares within a
// point of the configured ones, the most popular movie the most requested,
// and each target tagged with its kind in a fragment the server never sees.
func TestTargeterFollowsMixAndZipf(t *testing.T) {
	w := &Workload{Lists: []string{"order_by=popularity+desc"}, Searches: []string{"q=oz"}, Suggests: []string{"prefix=wiz"}}
	for i := range 500 {
		w.Movies = append(w.Movies, Movie{ID: "m_" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Popularity: float64(i)})
	}
	rankMovies(w.Movies)
	creds := Credentials{
		Admin:  StaticToken("admin"),
		Users:  []TokenSource{StaticToken("u1"), StaticToken("u2")},
		Keys:   []string{"k1", "k2"},
		Logins: []Login{{Email: "a@example.com", Password: "pw"}},
	}
	tr := newTargeter("http://127.0.0.1:1/", w, DefaultMix(), 1.1, 42, creds).Targeter()

	const n = 200_000
	count := map[string]int{}
	endpoints := map[string]int{}
	ids := map[string]int{}
	for range n {
		var tgt vegeta.Target
		if err := tr(&tgt); err != nil {
			t.Fatal(err)
		}
		kind, endpoint := kindOf(tgt.URL)
		count[kind]++
		tag := kind
		if endpoint != "" {
			endpoints[kind+"."+endpoint]++
			tag += "." + endpoint
		}
		req, err := tgt.Request()
		if err != nil {
			t.Fatal(err)
		}
		if req.URL.Fragment != "bench="+tag || strings.Contains(req.URL.RequestURI(), "bench=") {
			t.Fatalf("target %s: the kind must be in the fragment only, request URI %q", tgt.URL, req.URL.RequestURI())
		}
		switch kind {
		case KindGet:
			ids[strings.TrimPrefix(req.URL.Path, "/v1/movies/")]++
			if tgt.Header.Get("Authorization") != "" {
				t.Fatalf("anonymous GET with a credential: %v", tgt.Header)
			}
		case KindAuth:
			if a := tgt.Header.Get("Authorization"); (a != "Bearer u1" && a != "Bearer u2") || tgt.Method != http.MethodGet {
				t.Fatalf("authenticated read without a client's token: %s %v", tgt.Method, tgt.Header)
			}
		case KindAPIKey:
			if k := tgt.Header.Get("X-Api-Key"); (k != "k1" && k != "k2") || tgt.Header.Get("Authorization") != "" || endpoint == EndpointMe {
				t.Fatalf("API-key read = %s %v", tgt.URL, tgt.Header)
			}
		case KindSignIn:
			if tgt.Method != http.MethodPost || req.URL.Path != "/v1/auth/token" || !strings.Contains(string(tgt.Body), `"grantType":"password"`) || !strings.Contains(string(tgt.Body), `"username":"a@example.com"`) {
				t.Fatalf("sign-in target = %+v", tgt)
			}
		case KindWrite:
			if tgt.Method != http.MethodPatch || !strings.Contains(tgt.URL, "update_mask=popularity") || !strings.HasPrefix(string(tgt.Body), `{"popularity":`) ||
				tgt.Header.Get("Authorization") != "Bearer admin" {
				t.Fatalf("write target = %+v", tgt)
			}
		}
	}
	for kind, share := range DefaultMix() {
		got := 100 * float64(count[kind]) / n
		if math.Abs(got-share) > math.Max(0.5, share/10) {
			t.Errorf("%s: %.2f%% of requests, want %.1f%%", kind, got, share)
		}
	}
	// The authenticated reads spread over their endpoints as authPaths says.
	for _, p := range authPaths {
		got := 100 * float64(endpoints[KindAuth+"."+p.endpoint]) / float64(count[KindAuth])
		if math.Abs(got-p.share) > 2 {
			t.Errorf("auth.%s: %.1f%% of authenticated reads, want %.0f%%", p.endpoint, got, p.share)
		}
	}
	top := w.Movies[0].ID
	for id, c := range ids {
		if c > ids[top] {
			t.Errorf("movie %s drawn %d times, more than the most popular %s (%d)", id, c, top, ids[top])
		}
	}
	// Zipf with s=1.1 over 500 ranks gives rank 0 about 18% of draws.
	if share := float64(ids[top]) / float64(count[KindGet]); share < 0.12 || share > 0.25 {
		t.Errorf("most popular movie got %.1f%% of GETs, want about 18%%", 100*share)
	}
}

func TestParseCacheCounts(t *testing.T) {
	in := `# HELP marquee_gateway_cache_lookups_total Response cache lookups
# TYPE marquee_gateway_cache_lookups_total counter
marquee_gateway_cache_lookups_total{otel_scope_name="respcache",result="hit"} 90
marquee_gateway_cache_lookups_total{otel_scope_name="respcache",result="miss"} 10
marquee_gateway_cache_lookups_total{otel_scope_name="other",result="hit"} 5
marquee_gateway_cache_invalidations_total{kind="movie"} 3
`
	got, err := parseCacheCounts(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Found || got.Hits != 95 || got.Misses != 10 {
		t.Errorf("parseCacheCounts = %+v, want 95 hits, 10 misses", got)
	}
	r := cacheReport(cacheCounts{Hits: 5, Misses: 5, Found: true}, got, 0, 0)
	if r.Hits != 90 || r.Misses != 5 || math.Abs(r.HitRatio-90.0/95) > 1e-3 {
		t.Errorf("cacheReport = %+v", r)
	}
	if r := cacheReport(cacheCounts{}, cacheCounts{}, 3, 1); r.HitRatio != 0.75 || !strings.Contains(r.Source, "X-Cache") {
		t.Errorf("header fallback = %+v", r)
	}
}

func TestProcWatchMeasuresThisProcess(t *testing.T) {
	w := watchProcs([]Proc{{Name: "self", PID: os.Getpid()}})
	// Burn a little CPU so the window has something to count.
	x := 0.0
	for i := range 20_000_000 {
		x += math.Sqrt(float64(i))
	}
	us := w.Stop()
	if len(us) != 1 || us[0].RSSMiB <= 0 || us[0].PeakRSSMiB <= 0 || us[0].Threads <= 0 || us[0].CPUs == "" {
		t.Fatalf("usage = %+v (%v)", us, x)
	}
	if us[0].CPUSeconds < 0 {
		t.Errorf("negative CPU: %+v", us[0])
	}
	if _, err := cpuTime(1 << 30); err == nil {
		t.Error("cpuTime of a missing process: want an error")
	}
}

func TestCPUList(t *testing.T) {
	if _, err := parseCPUList("0"); err != nil {
		t.Errorf("parseCPUList(0): %v", err)
	}
	for _, bad := range []string{"", "x", "1-0", "4096"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) = nil error", bad)
		}
	}
	if n := machineCPUs(); n >= 2 && otherCPUs("0") == "" {
		t.Errorf("otherCPUs(0) on %d CPUs is empty", n)
	}
}

func TestQuoteArgsHidesSecrets(t *testing.T) {
	got := strings.Join(quoteArgs([]string{"-password", "hunter2", "-token=abc", "-mix", "get=1, list=2", "-rate", "10"}), " ")
	if strings.Contains(got, "hunter2") || strings.Contains(got, "abc") || !strings.Contains(got, `"get=1, list=2"`) {
		t.Errorf("quoteArgs = %s", got)
	}
}

func TestBuildQueries(t *testing.T) {
	movies := []Movie{
		{ID: "m_1", Title: "The Godfather", Genres: []string{"Crime", "Drama"}, Popularity: 90},
		{ID: "m_2", Title: "Casablanca", Genres: []string{"Drama", "Romance"}, Popularity: 80},
	}
	lists, searches, suggests := buildQueries(movies)
	joined := strings.Join(append(append(lists, searches...), suggests...), "\n")
	for _, want := range []string{
		"filter=genres%3A%22Drama%22&order_by=popularity+desc", // the most common genre first
		"q=the+godfather", "q=godfather", "q=godfther", // full title, a word, a typo
		"prefix=cas", "prefix=casab",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("queries lack %q:\n%s", want, joined)
		}
	}
}
