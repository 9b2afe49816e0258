package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/tools/internal/bench"
)

// The smoke mode CI runs, end to end through Main and its flags, against
// an httptest server: every kind of the mix is sent and answered, the
// cache ratio comes from the metrics endpoint, the bare baseline and its
// gateway counterparts run, and both reports are written.
func TestSmokeAgainstHTTPTest(t *testing.T) {
	srv := newFakeGateway(t, 300)
	dir := t.TempDir()
	jsonPath, mdPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "benchmarks.md")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var stdout, stderr bytes.Buffer
	err := bench.Main(ctx, []string{
		"-smoke", "-target", srv.URL, "-metrics", srv.URL + "/metrics",
		"-email", "admin@example.com", "-password", "secret",
		"-json", jsonPath, "-md", mdPath,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr.String())
	}

	var r bench.Report
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decoding the report: %v", err)
	}
	if !r.Settings.Smoke || r.Settings.Movies != 300 {
		t.Errorf("settings = %+v, want smoke with 300 movies", r.Settings)
	}
	if r.Load.Requests < 50 || r.Load.Errors != 0 {
		t.Errorf("load: %d requests, %d errors (%v, %q); want at least 50 and none", r.Load.Requests, r.Load.Errors, r.Load.Codes, r.Load.FirstError)
	}
	if r.Load.P99Ms <= 0 || r.Load.MaxMs < r.Load.P99Ms || r.Load.Throughput <= 0 {
		t.Errorf("load summary = %+v", r.Load.Result)
	}
	seen := map[string]bool{}
	for _, k := range r.Load.Kinds {
		seen[k.Name] = k.Requests > 0
	}
	// At 50 requests/s for 3 s, a 1% share may not come up; the big ones must.
	for _, k := range []string{bench.KindGet, bench.KindList, bench.KindSearch} {
		if !seen[k] {
			t.Errorf("no %s requests in %v", k, r.Load.Kinds)
		}
	}
	if r.Settings.Lists == 0 || r.Settings.Searches == 0 || r.Settings.Suggests == 0 {
		t.Errorf("prepared queries: %+v", r.Settings)
	}
	// Simulated clients registered, so every authenticated kind kept its share.
	for _, k := range []string{bench.KindAuth, bench.KindAPIKey, bench.KindSignIn, bench.KindWrite} {
		if !strings.Contains(r.Settings.Mix, k+"=") {
			t.Errorf("mix %s lacks %s; notes %q", r.Settings.Mix, k, r.Notes)
		}
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "refused by the target") {
		t.Errorf("the refused title order is not reported: %q", r.Notes)
	}
	if r.Cache.Hits+r.Cache.Misses == 0 || r.Cache.HitRatio <= 0 || !strings.Contains(r.Cache.Source, "metrics") {
		t.Errorf("cache = %+v, want a ratio from the metrics", r.Cache)
	}
	if len(r.Processes) == 0 || r.Processes[len(r.Processes)-1].RSSMiB <= 0 {
		t.Errorf("processes = %+v, want the load generator with its RSS", r.Processes)
	}
	names := map[string]bool{}
	for _, b := range r.Baselines {
		names[b.Name] = true
		if b.Requests == 0 || b.Errors != 0 {
			t.Errorf("baseline %s: %d requests, %d errors (%q)", b.Name, b.Requests, b.Errors, b.FirstError)
		}
	}
	for _, want := range []string{"bare-http", "gateway-cached-get", "gateway-uncached-get", "gateway-uncached-get-half"} {
		if !names[want] {
			t.Errorf("baseline %s missing; have %v", want, names)
		}
	}
	var ratio bool
	for _, q := range r.Ratios {
		if q.Name == "cached_vs_bare" && q.Value > 0 && q.Met != nil {
			ratio = true
		}
	}
	if !ratio {
		t.Errorf("ratios = %+v, want cached_vs_bare with its target", r.Ratios)
	}
	if r.Machine.CPUs == 0 || r.Machine.Go == "" || !strings.Contains(r.Command, "-smoke") || strings.Contains(r.Command, "secret") {
		t.Errorf("machine %+v, command %q: want the machine, the command, no password", r.Machine, r.Command)
	}

	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Benchmarks", "## Smoke run", "| requests | share |", "| get |", "bare-http", "cache hit ratio", "load generator"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("benchmarks.md lacks %q:\n%s", want, md)
		}
	}

	// A second run appends a section rather than rewriting the file.
	if err := bench.Main(ctx, []string{"-smoke", "-baselines=false", "-target", srv.URL, "-metrics", "", "-json", "", "-md", mdPath}, &stdout, &stderr); err != nil {
		t.Fatalf("second Main: %v\n%s", err, stderr.String())
	}
	md2, _ := os.ReadFile(mdPath)
	if n := bytes.Count(md2, []byte("## Smoke run")); n != 2 || bytes.Count(md2, []byte("# Benchmarks\n")) != 1 {
		t.Errorf("after two runs: %d sections; file:\n%s", n, md2)
	}
}

func TestMainRejectsBadFlags(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"-rate", "0"},
		{"-mix", "get=60,bogus=1"},
		{"-mix", "get=0"},
		{"-zipf-s", "1"},
		{"-target", "127.0.0.1:8080"},
		{"-engine-curve", "100,10"},
		{"-pid", "gateway"},
		{"stray"},
	} {
		var out, errw bytes.Buffer
		if err := bench.Main(ctx, args, &out, &errw); err == nil {
			t.Errorf("Main(%q) = nil, want an error", args)
		}
	}
	var out, errw bytes.Buffer
	if err := bench.Main(ctx, []string{"-h"}, &out, &errw); err != nil || !strings.Contains(errw.String(), "-rate") {
		t.Errorf("Main(-h) = %v, usage %q", err, errw.String())
	}
}
