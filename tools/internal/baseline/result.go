// Package baseline measures the limits that Marquee's own numbers are
// compared with, in the same run and with the same statistics: a bare
// net/http server writing the bytes the gateway writes (the ceiling of the
// cached path), the catalog's gRPC API called directly (so the gateway's
// overhead is a ratio), and the raw MongoDB driver against the engine the
// services use (our overhead over the database), including the engine's own
// curve as the catalogue grows.
//
// Every measurement is bounded in time and in operations, and the package
// only ever talks to the addresses it is given; the bench tool gives it
// loopback ones.
package baseline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Result is one measured load: how many operations, how fast, how long they
// took. Latencies are in milliseconds so the JSON reads without conversion.
type Result struct {
	Name string `json:"name"`
	// What says in a phrase what was measured.
	What string `json:"what,omitempty"`
	// Concurrency is the number of closed-loop workers (0 for open-model
	// loads, whose Rate says what was offered).
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"offered_rate_per_s,omitempty"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	// Throughput is successful operations per second of wall time.
	Throughput float64 `json:"throughput_per_s"`
	// Items is the number of items the operations carried (documents
	// inserted by InsertMany), and ItemsPerSecond their rate.
	Items          int64   `json:"items,omitempty"`
	ItemsPerSecond float64 `json:"items_per_s,omitempty"`
	MeanMs         float64 `json:"mean_ms"`
	P50Ms          float64 `json:"p50_ms"`
	P95Ms          float64 `json:"p95_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	// Codes counts outcomes by status (HTTP status, gRPC code name, "ok"
	// or "error" for the driver).
	Codes map[string]int64 `json:"codes,omitempty"`
	// FirstError is the first failure's message, to tell at a glance why
	// errors were counted.
	FirstError string `json:"first_error,omitempty"`
}

// Recorder accumulates operations into a Result; it is safe for concurrent
// use. Quantiles come from vegeta's estimator, so a baseline and the load
// it is compared with are summarised the same way.
type Recorder struct {
	mu       sync.Mutex
	lat      vegeta.LatencyMetrics
	requests int64
	errs     int64
	items    int64
	codes    map[string]int64
	first    string
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{codes: map[string]int64{}} }

// Add records one operation that took d and ended with code; err marks it
// failed. items is what it carried (0 for a plain request).
func (r *Recorder) Add(d time.Duration, code string, items int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.lat.Add(d)
	r.codes[code]++
	if err != nil {
		r.errs++
		if r.first == "" {
			r.first = err.Error()
		}
		return
	}
	r.items += items
}

// Result summarises what was recorded over elapsed wall time.
func (r *Recorder) Result(name string, elapsed time.Duration) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{
		Name: name, Seconds: elapsed.Seconds(), Requests: r.requests, Errors: r.errs,
		Items: r.items, Codes: map[string]int64{}, FirstError: r.first,
	}
	for k, v := range r.codes {
		res.Codes[k] = v
	}
	if r.requests == 0 {
		return res
	}
	if s := elapsed.Seconds(); s > 0 {
		res.Throughput = float64(r.requests-r.errs) / s
		res.ItemsPerSecond = float64(r.items) / s
	}
	res.MeanMs = ms(r.lat.Total / time.Duration(r.requests))
	res.P50Ms = ms(r.lat.Quantile(0.50))
	res.P95Ms = ms(r.lat.Quantile(0.95))
	res.P99Ms = ms(r.lat.Quantile(0.99))
	res.MaxMs = ms(r.lat.Max)
	return res
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Op is one operation of a closed-loop load: worker is the worker's index
// and i the operation's sequence number. It returns its outcome code, the
// number of items it carried, and an error when it failed.
type Op func(ctx context.Context, worker int, i int64) (code string, items int64, err error)

// Limits bound a closed-loop load: it stops at Duration or after MaxOps
// operations, whichever comes first (0 means no bound of that kind, but at
// least one must be set).
type Limits struct {
	Concurrency int
	Duration    time.Duration
	MaxOps      int64
}

// ClosedLoop runs op from lim.Concurrency workers back to back until a limit
// is reached or ctx ends, and summarises it. A closed loop measures the
// maximum throughput at that concurrency (each worker waits for its answer),
// which is what a ceiling is; the bench tool's open-model load measures
// latency at a given rate.
func ClosedLoop(ctx context.Context, name string, lim Limits, op Op) (Result, error) {
	if lim.Concurrency <= 0 {
		return Result{}, errors.New("closed loop: concurrency must be positive")
	}
	if lim.Duration <= 0 && lim.MaxOps <= 0 {
		return Result{}, errors.New("closed loop: a duration or an operation count is required")
	}
	// The duration ends the loop, not the operations: an operation given
	// the loop's deadline would be refused by a client that checks the
	// time left against the round trip (the MongoDB driver does), and
	// count as a failure what is only the end of the run. The last
	// operations finish after the duration and are counted.
	var stopAt time.Time
	if lim.Duration > 0 {
		stopAt = time.Now().Add(lim.Duration)
	}
	rec := NewRecorder()
	var seq atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range lim.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && (stopAt.IsZero() || time.Now().Before(stopAt)) {
				i := seq.Add(1) - 1
				if lim.MaxOps > 0 && i >= lim.MaxOps {
					return
				}
				t := time.Now()
				code, items, err := op(ctx, w, i)
				if ctx.Err() != nil && err != nil {
					// Cut off by the caller's cancellation, not a failure.
					return
				}
				rec.Add(time.Since(t), code, items, err)
			}
		})
	}
	wg.Wait()
	res := rec.Result(name, time.Since(start))
	res.Concurrency = lim.Concurrency
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("running %s: %w", name, err)
	}
	return res, nil
}

// Ratio is a measured value over its baseline's, for the report.
type Ratio struct {
	Name     string  `json:"name"`
	What     string  `json:"what"`
	Value    float64 `json:"value"`
	Of       string  `json:"of"`
	Baseline string  `json:"baseline"`
	// Target is the target for the ratio (0: none) and Met tells
	// whether it was reached.
	Target float64 `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// NewRatio divides a by b (0 when b is 0).
func NewRatio(name, what string, a, b float64, of, baseline string) Ratio {
	r := Ratio{Name: name, What: what, Of: of, Baseline: baseline}
	if b != 0 {
		r.Value = a / b
	}
	return r
}

// WithTarget records a target the ratio should reach or exceed.
func (r Ratio) WithTarget(min float64) Ratio {
	r.Target = min
	met := r.Value >= min
	r.Met = &met
	return r
}

// SortedCodes lists a code count map as "code=n" strings in a stable order.
func SortedCodes(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return out
}
