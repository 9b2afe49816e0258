package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// The benchmarks drive the gateway over loopback HTTP/1.1 with keep-alive
// connections from parallel Go clients (the "load tool"), so the client's
// cost is in every number; the ratio of two numbers from the same run is what
// matters. Rate limits are off so that the benchmark measures serving.

func benchStack(b *testing.B, opts ...stackOption) *stack {
	b.Helper()
	opts = append([]stackOption{withConfig(func(c *app.Config) {
		c.RateLimit = app.RateLimitConfig{}
		c.MaxConcurrency = 0
	})}, opts...)
	return startStack(b, opts...)
}

func benchClient(tb testing.TB) *http.Client {
	c := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true,
	}}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// hammer sends GET url from parallel goroutines b.N times in all.
func hammer(b *testing.B, client *http.Client, url string) {
	b.Helper()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// bareServer serves body with the same content type and length, and nothing
// else: the ceiling a cached response is compared with.
func bareServer(b *testing.B, body []byte) string {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	length := strconv.Itoa(len(body))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + lis.Addr().String()
}

func movieBody(b *testing.B, s *stack) []byte {
	b.Helper()
	resp, body := s.do("GET", "/v1/movies/m_1", nil)
	if resp.StatusCode != 200 {
		b.Fatalf("warming up: %d", resp.StatusCode)
	}
	return body
}

// BenchmarkCachedGetMovie is an anonymous GET /v1/movies/{id} answered from
// the response cache, through every middleware (telemetry, access log, rate
// limit check, shedding, security headers, compression negotiation).
func BenchmarkCachedGetMovie(b *testing.B) {
	s := benchStack(b)
	movieBody(b, s)
	hammer(b, benchClient(b), s.base+"/v1/movies/m_1")
	if n := s.catalog.Count("GetMovie"); n != 1 {
		b.Errorf("GetMovie reached the catalog %d times; the benchmark was not cached", n)
	}
}

// BenchmarkBareHandler is a net/http handler writing the same bytes.
func BenchmarkBareHandler(b *testing.B) {
	s := benchStack(b)
	url := bareServer(b, movieBody(b, s)) + "/v1/movies/m_1"
	hammer(b, benchClient(b), url)
}

// BenchmarkCachedVsBareRatio measures a cached GET through the gateway and a
// bare net/http handler writing the same bytes in the same process, in five
// alternating rounds, and reports the median ratio of their throughputs
// (the issue asks for at least 0.5) as the metric cached/bare. One
// iteration is the whole measurement:
//
//	go test -run '^$' -bench CachedVsBareRatio -benchtime 1x ./app/
func BenchmarkCachedVsBareRatio(b *testing.B) {
	s := startStack(b, withConfig(func(c *app.Config) {
		c.RateLimit = app.RateLimitConfig{}
		c.MaxConcurrency = 0
		c.Cache.MaxAge = time.Hour // fresh for the whole measurement (ten 3-second loops)
	}))
	resp, body := s.do("GET", "/v1/movies/m_1", nil)
	if resp.StatusCode != 200 {
		b.Fatalf("warming up: %d", resp.StatusCode)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	length := strconv.Itoa(len(body))
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = bare.Serve(lis) }()
	defer bare.Close()

	// The same closed loop for both sides (testing.Benchmark cannot run
	// inside a benchmark: the testing package runs one at a time).
	client := benchClient(b)
	rate := func(url string) float64 {
		return closedLoop(func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
	}
	// Five rounds, alternating which goes first, so that a neighbour's load
	// on this shared machine does not favour one side; the median counts.
	var ratios []float64
	bareURL, cachedURL := "http://"+lis.Addr().String()+"/v1/movies/m_1", s.base+"/v1/movies/m_1"
	for round := range 5 {
		var bareRate, cachedRate float64
		if round%2 == 0 {
			bareRate, cachedRate = rate(bareURL), rate(cachedURL)
		} else {
			cachedRate, bareRate = rate(cachedURL), rate(bareURL)
		}
		ratios = append(ratios, cachedRate/bareRate)
		b.Logf("round %d: bare %.0f req/s, cached gateway %.0f req/s, ratio %.2f", round, bareRate, cachedRate, cachedRate/bareRate)
	}
	slices.Sort(ratios)
	median := ratios[len(ratios)/2]
	b.ReportMetric(median, "cached/bare")
	b.Logf("median ratio %.2f (GOMAXPROCS=%d; target at least 0.5)", median, goruntime.GOMAXPROCS(0))
	if n := s.catalog.Count("GetMovie"); n != 1 {
		b.Errorf("GetMovie reached the catalog %d times; the measurement was not cached", n)
	}
}

// BenchmarkUncachedGetMovie is the same GET with the response cache off:
// grpc-gateway, a gRPC call to the fake catalog (an in-memory map, standing
// in for catalog's warm cache) and protojson rendering on every request.
func BenchmarkUncachedGetMovie(b *testing.B) {
	s := benchStack(b, withConfig(func(c *app.Config) { c.Cache.MaxBytes = 0 }))
	movieBody(b, s)
	hammer(b, benchClient(b), s.base+"/v1/movies/m_1")
}

// BenchmarkUncachedLatencyAtHalfLoad is the uncached-path target in
// process: a Bearer-authenticated GET /v1/movies/{id} with Cache-Control:
// no-cache (which the response cache passes on) through the whole chain, with the telemetry pipeline
// the binary runs, and gRPC to the fake catalog (an in-memory map, standing
// in for catalog's warm cache). It finds the maximum throughput closed loop,
// offers half of it open loop and reports the percentiles; then it does the
// same straight to the catalog over gRPC, the baseline, and reports the
// ratios. The figure of record is `marquee bench -spawn` (the real catalog,
// pinned CPUs); this one is for before/after comparisons of gateway
// changes. It reports the gateway's maximum throughput and its p50/p99 at
// half of it, and the same-run gRPC ratios, as metrics. One iteration is the
// whole measurement:
//
//	go test -run '^$' -bench UncachedLatencyAtHalfLoad -benchtime 1x ./app/
func BenchmarkUncachedLatencyAtHalfLoad(b *testing.B) {
	s := startStack(b, withTelemetry(), withConfig(func(c *app.Config) {
		c.RateLimit = app.RateLimitConfig{}
		c.MaxConcurrency = 0
	}))
	s.catalog.CountOnly()
	// The collector's target as the binary sets it (GOGC=100 in the
	// environment measures Go's default).
	orig := debug.SetGCPercent(100)
	debug.SetGCPercent(orig)
	app.TuneGC(os.LookupEnv)
	defer debug.SetGCPercent(orig)
	token := s.token("u_load", authn.RoleUser)
	client := benchClient(b)
	var seq atomic.Uint64
	const movies = 30 // startStack's catalogue
	nextID := func() string { return fmt.Sprintf("m_%d", seq.Add(1)%movies+1) }
	viaGateway := func() error {
		req, err := http.NewRequest(http.MethodGet, s.base+"/v1/movies/"+nextID(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Cache-Control", "no-cache") // past the response cache, to the catalog
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "private, no-cache" {
			return fmt.Errorf("status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		return nil
	}
	conn, err := grpc.NewClient("passthrough:///"+s.cfg.CatalogAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	catalog := catalogv1.NewCatalogServiceClient(conn)
	authed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	viaGRPC := func() error {
		_, err := catalog.GetMovie(authed, &catalogv1.GetMovieRequest{Id: nextID()})
		return err
	}

	// The baseline is offered the gateway's half-load rate, not half of
	// its own maximum: the comparison is at the same load, and one load
	// generator cannot pace gRPC's much higher half rate evenly.
	gwMax := closedLoop(viaGateway)
	gw := openLoop(b, "gateway", viaGateway, gwMax/2)
	grpcMax := closedLoop(viaGRPC)
	direct := openLoop(b, "grpc", viaGRPC, gwMax/2)
	b.Logf("max throughput (32 workers, closed loop): gateway %.0f req/s, gRPC %.0f req/s, ratio %.3f", gwMax, grpcMax, gwMax/grpcMax)
	b.Logf("at %.0f req/s, gateway vs gRPC: p50 %s vs %s (ratio %.2f), p99 %s vs %s (ratio %.2f)", gw.rate,
		gw.p50, direct.p50, float64(gw.p50)/float64(direct.p50), gw.p99, direct.p99, float64(gw.p99)/float64(direct.p99))
	b.ReportMetric(gwMax, "gateway-max-req/s")
	b.ReportMetric(float64(gw.p99)/float64(time.Millisecond), "half-load-p99-ms")
	b.ReportMetric(float64(gw.p99)/float64(direct.p99), "p99-vs-grpc")
	if gw.errors > 0 || direct.errors > 0 {
		b.Errorf("%d requests through the gateway and %d straight to gRPC failed", gw.errors, direct.errors)
	}
}

type openResult struct {
	rate     float64
	p50, p99 time.Duration
	errors   int
}

// closedLoop returns the throughput of call from 32 workers (as the load
// tool's baselines use) over 3 seconds.
func closedLoop(call func() error) float64 {
	var done atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if call() == nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// openLoop offers call at rate, evenly spaced, for 5 seconds (open model: a
// request is sent when due whether or not earlier ones finished), and times
// each from when it was due, so that a late sender counts against the
// latency instead of hiding it.
func openLoop(t testing.TB, name string, call func() error, rate float64) openResult {
	t.Helper()
	interval := time.Duration(float64(time.Second) / rate)
	n := int(5 * rate)
	latencies := make([]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	var gcBefore, gcAfter goruntime.MemStats
	goruntime.ReadMemStats(&gcBefore)
	begin := time.Now()
	sem := make(chan struct{}, 1000)
	for i := range n {
		due := begin.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			<-time.After(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := call(); err != nil {
				failed.Add(1)
			}
			latencies[i] = time.Since(due)
		})
	}
	wg.Wait()
	goruntime.ReadMemStats(&gcAfter)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	res := openResult{rate: rate, p50: pct(0.50), p99: pct(0.99), errors: int(failed.Load())}
	gcPercent := debug.SetGCPercent(100)
	debug.SetGCPercent(gcPercent)
	t.Logf("%s at %.0f req/s: p50 %s p90 %s p99 %s max %s; %d GCs in %s (GC percent %d, GOMAXPROCS %d); %d errors",
		name, rate, res.p50, pct(0.90), res.p99, latencies[len(latencies)-1], gcAfter.NumGC-gcBefore.NumGC,
		time.Since(begin).Round(time.Millisecond), gcPercent, goruntime.GOMAXPROCS(0), res.errors)
	return res
}
