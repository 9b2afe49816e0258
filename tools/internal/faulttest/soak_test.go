package faulttest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/tools/internal/bench"
	"github.com/marquee-dev/marquee/tools/internal/devstack"
)

// soakEnv turns the soak on and sets its length, such as MARQUEE_SOAK=10m.
const soakEnv = "MARQUEE_SOAK"

// TestSoak runs the whole stack (the dev stack in this process: FerretDB,
// auth, catalog, search, gateway, the assignment's catalogue) under the
// realistic mix of `marquee bench` at 70% of the capacity measured at the
// start, for MARQUEE_SOAK (for example 10m), and checks that no request
// fails and that the heap (live bytes after a collection) and the goroutine
// count stay flat: the last minute's are within 25% (heap) and 10%
// (goroutines) of the first minute's. It is opt-in: without MARQUEE_SOAK it
// is skipped.
//
//	MARQUEE_SOAK=10m go test -run TestSoak -timeout 30m -v ./internal/faulttest/
func TestSoak(t *testing.T) {
	length := os.Getenv(soakEnv)
	if length == "" {
		t.Skipf("set %s (such as 10m) to run the soak test", soakEnv)
	}
	total, err := time.ParseDuration(length)
	if err != nil || total < time.Minute {
		t.Fatalf("%s=%q: want a duration of at least 1m", soakEnv, length)
	}
	dir := t.TempDir()
	password := "soak-" + fmt.Sprint(time.Now().UnixNano())
	t.Setenv("MARQUEE_ADMIN_PASSWORD", password)
	// Capacity, not quotas, is under test. (Environment variables: the dev
	// stack refuses service keys in --set.)
	for _, tier := range []string{"ANONYMOUS", "USER", "ADMIN", "TOKEN"} {
		t.Setenv("MARQUEE_GATEWAY_RATELIMIT_"+tier+"_PER_MINUTE", "0")
	}
	ports := soakPorts(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan devstack.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- devstack.Run(ctx, devstack.Options{
			Args: []string{"--set", "data_dir=" + dir, "--set", "log.level=error"},
			Out:  io.Discard, Logs: os.Stderr, Ports: ports,
			SeedFile: filepath.Join("..", "..", "..", "data", "imdb.json"),
			Ready:    func(a devstack.Addrs) { ready <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the dev stack did not stop within a minute")
		}
	})
	var addrs devstack.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("the dev stack stopped: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("the dev stack was not ready within 5 minutes")
	}

	load := func(rate float64, d time.Duration) bench.LoadResult {
		t.Helper()
		cfg := bench.DefaultConfig()
		cfg.Target = addrs.REST
		cfg.MetricsURL = addrs.Metrics["gateway"]
		cfg.Rate, cfg.Duration, cfg.Warmup = rate, d, 0
		cfg.Baselines, cfg.JSONPath = false, ""
		cfg.Email, cfg.Password = addrs.AdminEmail, password
		if cfg.Email == "" {
			cfg.Email = "admin@marquee.local"
		}
		r, err := bench.Run(t.Context(), cfg, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("load at %.0f/s: %v", rate, err)
		}
		return r.Load
	}

	// Capacity: the highest offered rate answered in full (throughput at
	// least 95% of it, no error, p99 under a second), doubling then
	// bisecting, 10s per step.
	var capacity float64
	lo, hi := 0.0, 0.0
	for rate := 50.0; rate <= 20000; rate *= 2 {
		if ok, res := sustained(load(rate, 10*time.Second), rate); ok {
			lo = rate
			t.Logf("capacity probe %5.0f/s: ok (%.0f/s, p99 %.1f ms)", rate, res.Throughput, res.P99Ms)
			continue
		}
		hi = rate
		break
	}
	for range 3 {
		if hi == 0 || hi-lo < lo/10 {
			break
		}
		mid := (lo + hi) / 2
		if ok, _ := sustained(load(mid, 10*time.Second), mid); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	capacity = lo
	if capacity == 0 {
		t.Fatal("the stack did not sustain even 50 requests/s")
	}
	rate := 0.7 * capacity
	t.Logf("measured capacity %.0f requests/s; soaking at %.0f/s (70%%) for %s", capacity, rate, total)

	type sample struct {
		heap       uint64
		goroutines int
		res        bench.LoadResult
	}
	measure := func(res bench.LoadResult) sample {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return sample{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine(), res: res}
	}
	var samples []sample
	var errs, reqs int64
	for elapsed := time.Duration(0); elapsed < total; elapsed += time.Minute {
		s := measure(load(rate, time.Minute))
		samples = append(samples, s)
		errs += s.res.Errors
		reqs += s.res.Requests
		t.Logf("minute %2d: %6d requests, %.0f/s, p50 %.1f ms, p99 %.1f ms, %d errors, heap %.1f MiB, %d goroutines",
			len(samples), s.res.Requests, s.res.Throughput, s.res.P50Ms, s.res.P99Ms, s.res.Errors,
			float64(s.heap)/(1<<20), s.goroutines)
		if s.res.Errors > 0 {
			t.Errorf("minute %d: %d errors (%v): %s", len(samples), s.res.Errors, s.res.Codes, s.res.FirstError)
		}
	}
	first, last := samples[0], samples[len(samples)-1]
	t.Logf("soak: %d requests, %d errors; heap %.1f -> %.1f MiB; goroutines %d -> %d",
		reqs, errs, float64(first.heap)/(1<<20), float64(last.heap)/(1<<20), first.goroutines, last.goroutines)
	if float64(last.heap) > 1.25*float64(first.heap) {
		t.Errorf("heap grew from %d to %d bytes", first.heap, last.heap)
	}
	if float64(last.goroutines) > 1.1*float64(first.goroutines) {
		t.Errorf("goroutines grew from %d to %d", first.goroutines, last.goroutines)
	}
}

// sustained reports whether a load at rate was answered in full.
func sustained(r bench.LoadResult, rate float64) (bool, bench.LoadResult) {
	return r.Errors == 0 && r.Throughput >= 0.95*rate && r.P99Ms < 1000, r
}

// soakPorts picks free loopback ports for the dev stack.
func soakPorts(t *testing.T) devstack.Ports {
	t.Helper()
	var ports [10]int
	var ls []net.Listener
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return devstack.Ports{
		Mongo: ports[0], Gateway: ports[1], GatewayAdmin: ports[2], Catalog: ports[3], CatalogAdmin: ports[4],
		Search: ports[5], SearchAdmin: ports[6], Auth: ports[7], AuthAdmin: ports[8], Stack: ports[9],
	}
}
