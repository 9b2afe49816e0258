package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/tools/internal/bench"
	"github.com/marquee-dev/marquee/tools/internal/devstack"
)

// The smoke mode against the real services: a dev stack on free loopback
// ports, seeded with the assignment's catalogue, rate limits off, driven
// with every kind of the mix and every baseline that the stack offers
// (bare server, gRPC to catalog, raw driver, writes both ways). Nothing may
// fail: a refused request in this run is a bug in the tool or a service.
func TestSmokeAgainstDevStack(t *testing.T) {
	repo := repoRoot(t)
	dataDir := t.TempDir()
	// Environment rather than --set: the dev stack applies its arguments
	// to every service's config, and each rejects the others' keys.
	for k, v := range map[string]string{
		"MARQUEE_DATA_DIR":                               dataDir,
		"MARQUEE_LOG_LEVEL":                              "error",
		"MARQUEE_ADMIN_EMAIL":                            "bench-admin@marquee.local",
		"MARQUEE_ADMIN_PASSWORD":                         "bench-admin-password-1",
		"MARQUEE_GATEWAY_RATELIMIT_ANONYMOUS_PER_MINUTE": "0",
		"MARQUEE_GATEWAY_RATELIMIT_USER_PER_MINUTE":      "0",
		"MARQUEE_GATEWAY_RATELIMIT_ADMIN_PER_MINUTE":     "0",
		"MARQUEE_GATEWAY_RATELIMIT_TOKEN_PER_MINUTE":     "0",
	} {
		t.Setenv(k, v)
	}
	ports := freePorts(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	ready := make(chan devstack.Addrs, 1)
	stackErr := make(chan error, 1)
	stackCtx, stopStack := context.WithCancel(ctx)
	go func() {
		stackErr <- devstack.Run(stackCtx, devstack.Options{
			Out: io.Discard, Logs: io.Discard,
			Ports: devstack.Ports{
				Mongo: ports[0], Gateway: ports[1], GatewayAdmin: ports[2], Catalog: ports[3], CatalogAdmin: ports[4],
				Search: ports[5], SearchAdmin: ports[6], Auth: ports[7], AuthAdmin: ports[8], Stack: ports[9],
			},
			SeedFile: filepath.Join(repo, "data", "imdb.json"),
			Ready:    func(a devstack.Addrs) { ready <- a },
		})
	}()
	defer func() {
		stopStack()
		if err := <-stackErr; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("dev stack: %v", err)
		}
	}()
	var a devstack.Addrs
	select {
	case a = <-ready:
	case err := <-stackErr:
		stackErr <- err
		t.Fatalf("dev stack stopped before it was ready: %v", err)
	case <-ctx.Done():
		t.Fatal("dev stack not ready in time")
	}

	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	err := bench.Main(ctx, []string{
		"-smoke", "-target", a.REST, "-metrics", a.Metrics["gateway"],
		"-catalog", a.Catalog, "-mongo", "mongodb://" + a.Mongo + "/", "-write-baselines",
		"-email", "bench-admin@marquee.local", "-password", "bench-admin-password-1",
		"-pid", "dev stack=" + strconv.Itoa(os.Getpid()),
		"-json", out,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr.String())
	}
	var r bench.Report
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Settings.Movies < 200 {
		t.Errorf("the workload knows %d movies, want the seeded catalogue", r.Settings.Movies)
	}
	if r.Settings.Lists == 0 || r.Settings.Searches == 0 || r.Settings.Suggests == 0 {
		t.Errorf("prepared queries: %+v; notes %q", r.Settings, r.Notes)
	}
	if r.Load.Requests == 0 || r.Load.Errors != 0 {
		t.Errorf("load: %d requests, %d errors, codes %v, first %q, transport %v", r.Load.Requests, r.Load.Errors, r.Load.Codes, r.Load.FirstError, r.Load.TransportErrors)
	}
	if r.Cache.Hits+r.Cache.Misses == 0 {
		t.Errorf("cache = %+v, want the gateway's lookups counted", r.Cache)
	}
	want := map[string]bool{"bare-http": false, "gateway-cached-get": false, "gateway-uncached-get": false,
		"catalog-grpc-get": false, "mongo-findone": false, "mongo-insertmany": false, "catalog-grpc-batch-create": false}
	for _, res := range r.Baselines {
		if _, ok := want[res.Name]; ok {
			want[res.Name] = true
		}
		if res.Requests == 0 || res.Errors != 0 {
			t.Errorf("baseline %s: %d requests, %d errors (%v, %q)", res.Name, res.Requests, res.Errors, res.Codes, res.FirstError)
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("baseline %s missing", name)
		}
	}
	if len(r.Ratios) < 4 {
		t.Errorf("ratios = %+v", r.Ratios)
	}
	for _, n := range r.Notes {
		if bytes.Contains([]byte(n), []byte("baseline:")) || bytes.Contains([]byte(n), []byte("deleting")) {
			t.Errorf("note: %s", n)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's directory")
		}
		dir = parent
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(fmt.Errorf("releasing a port: %w", err))
		}
	}
	return ports
}
