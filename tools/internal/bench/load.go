package bench

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/marquee-dev/marquee/tools/internal/baseline"
)

// LoadResult is one load's outcome, overall and by kind of request.
type LoadResult struct {
	baseline.Result
	// Kinds are the per-kind summaries, in mix order; Endpoints split the
	// authenticated reads by endpoint, named kind.endpoint ("auth.me").
	Kinds     []baseline.Result `json:"kinds,omitempty"`
	Endpoints []baseline.Result `json:"endpoints,omitempty"`
	// TransportErrors counts requests that got no HTTP answer (timeouts,
	// refused connections), by message.
	TransportErrors map[string]int64 `json:"transport_errors,omitempty"`
	// XCacheHits and XCacheMisses count an X-Cache response header, when
	// the target sends one.
	XCacheHits   int64 `json:"-"`
	XCacheMisses int64 `json:"-"`
}

// aggregator folds vegeta results into per-kind recorders.
type aggregator struct {
	all    *baseline.Recorder
	byKind map[string]*baseline.Recorder
	byEnd  map[string]*baseline.Recorder

	mu        sync.Mutex
	transport map[string]int64
	xHit      int64
	xMiss     int64
}

func newAggregator() *aggregator {
	return &aggregator{all: baseline.NewRecorder(), byKind: map[string]*baseline.Recorder{}, byEnd: map[string]*baseline.Recorder{}, transport: map[string]int64{}}
}

func (a *aggregator) add(r *vegeta.Result) {
	code := strconv.Itoa(int(r.Code))
	var err error
	if r.Code < 200 || r.Code >= 400 || r.Error != "" {
		err = resultError(r)
	}
	a.all.Add(r.Latency, code, 0, err)
	kind, endpoint := kindOf(r.URL)
	a.mu.Lock()
	rec := a.byKind[kind]
	if rec == nil {
		rec = baseline.NewRecorder()
		a.byKind[kind] = rec
	}
	var erec *baseline.Recorder
	if endpoint != "" {
		name := kind + "." + endpoint
		if erec = a.byEnd[name]; erec == nil {
			erec = baseline.NewRecorder()
			a.byEnd[name] = erec
		}
	}
	if r.Code == 0 && r.Error != "" {
		a.transport[trimError(r.Error)]++
	}
	switch strings.ToLower(r.Headers.Get("X-Cache")) {
	case "hit":
		a.xHit++
	case "miss":
		a.xMiss++
	}
	a.mu.Unlock()
	rec.Add(r.Latency, code, 0, err)
	if erec != nil {
		erec.Add(r.Latency, code, 0, err)
	}
}

type resultErr string

func (e resultErr) Error() string { return string(e) }

func resultError(r *vegeta.Result) error {
	if r.Error != "" {
		return resultErr(r.Error)
	}
	return resultErr(strconv.Itoa(int(r.Code)))
}

// trimError shortens a transport error to its gist: the URL in it would
// make every message unique.
func trimError(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s[:i], "http://") {
		s = s[i+2:]
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func (a *aggregator) result(name string, elapsed time.Duration) LoadResult {
	lr := LoadResult{Result: a.all.Result(name, elapsed)}
	for _, k := range sortedKinds(a.byKind) {
		lr.Kinds = append(lr.Kinds, a.byKind[k].Result(k, elapsed))
	}
	for _, k := range sortedKinds(a.byEnd) {
		lr.Endpoints = append(lr.Endpoints, a.byEnd[k].Result(k, elapsed))
	}
	a.mu.Lock()
	if len(a.transport) > 0 {
		lr.TransportErrors = map[string]int64{}
		for k, v := range a.transport {
			lr.TransportErrors[k] = v
		}
	}
	lr.XCacheHits, lr.XCacheMisses = a.xHit, a.xMiss
	a.mu.Unlock()
	return lr
}

// attackOptions are the load generator's HTTP settings.
type attackOptions struct {
	// Workers is the number of closed-loop workers when Rate is 0, and
	// the cap on open-model workers otherwise.
	Workers uint64
	Timeout time.Duration
	Client  *http.Client
}

// attack drives tr at rate for d (rate 0: as fast as opts.Workers closed-
// loop workers go) and summarises the results. It ends early when ctx does.
func attack(ctx context.Context, name string, tr vegeta.Targeter, rate float64, d time.Duration, opts attackOptions) LoadResult {
	vopts := []func(*vegeta.Attacker){
		vegeta.Timeout(opts.Timeout),
		vegeta.MaxBody(0), // the body is read and discarded; only its arrival is timed
		vegeta.KeepAlive(true),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if opts.Client != nil {
		vopts = append(vopts, vegeta.Client(opts.Client))
	}
	if rate <= 0 {
		vopts = append(vopts, vegeta.Workers(opts.Workers), vegeta.MaxWorkers(opts.Workers))
	} else {
		vopts = append(vopts, vegeta.Workers(min(opts.Workers, 16)), vegeta.MaxWorkers(opts.Workers))
	}
	atk := vegeta.NewAttacker(vopts...)
	pacer := vegeta.ConstantPacer{Freq: int(rate + 0.5), Per: time.Second}
	if rate <= 0 {
		pacer = vegeta.ConstantPacer{} // unlimited: closed loop at Workers
	}
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	agg := newAggregator()
	start := time.Now()
	for r := range atk.Attack(tr, pacer, d, name) {
		agg.add(r)
	}
	lr := agg.result(name, time.Since(start))
	lr.Rate = rate
	if rate <= 0 {
		lr.Concurrency = int(opts.Workers)
	}
	return lr
}

// staticTargeter hits one URL with optional headers.
func staticTargeter(method, u string, h http.Header) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		*t = vegeta.Target{Method: method, URL: u, Header: h}
		return nil
	}
}

// idsTargeter GETs /v1/movies/{id} for Zipf-drawn ids with optional
// headers: the gateway's uncached path when h carries a credential.
func idsTargeter(base string, next func() string, h http.Header) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		*t = vegeta.Target{Method: http.MethodGet, URL: base + "/v1/movies/" + next(), Header: h}
		return nil
	}
}

// sortedKinds orders names ("kind" or "kind.endpoint") by kind in mix
// order, unknown kinds last, then by name.
func sortedKinds[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	order := map[string]int{}
	for i, k := range kinds {
		order[k] = i + 1
	}
	rank := func(name string) int {
		k, _, _ := strings.Cut(name, ".")
		if o := order[k]; o > 0 {
			return o
		}
		return len(kinds) + 1
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	return names
}
