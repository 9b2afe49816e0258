// Package testenv gives tests real dependencies: one embedded FerretDB per
// test binary (or the MongoDB named by MARQUEE_TEST_MONGO_URI) with a fresh
// database per test, and a real redis-server per test.
//
// Import it only from _test.go files (and the dev stack's tests). Wire it up
// once per package:
//
//	func TestMain(m *testing.M) { testenv.RunMain(m) }
//
// then call Mongo(t) or MongoURI(t) in tests. The engine starts on first use,
// so a package whose selected tests never touch it pays nothing.
//
// A missing dependency (redis-server, say) skips the test, except under
// CI=true, where it fails it: CI must not pass by skipping.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/platform/ferretdb"
	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// MongoURIEnv names the variable that points tests at a real MongoDB
// instead of the embedded FerretDB.
const MongoURIEnv = "MARQUEE_TEST_MONGO_URI"

// engine is the test binary's database engine. It is package state because
// TestMain and the tests share it across the binary's lifetime; RunMain
// owns its start and stop.
var engine struct {
	mu      sync.Mutex
	running bool // RunMain is active
	once    sync.Once
	uri     string
	err     error
	stop    func()
}

// RunMain runs the package's tests with a database engine available and
// exits with their status. The engine is MARQUEE_TEST_MONGO_URI when set,
// else an embedded FerretDB started on first use on a free loopback port,
// with its SQLite files in a temporary directory removed after the run.
func RunMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	engine.mu.Lock()
	engine.running = true
	engine.mu.Unlock()
	defer func() {
		engine.mu.Lock()
		defer engine.mu.Unlock()
		engine.running = false
		if engine.stop != nil {
			engine.stop()
		}
	}()
	return m.Run()
}

// ExternalMongo reports whether tests run against the MongoDB named by
// MARQUEE_TEST_MONGO_URI rather than the embedded FerretDB, for tests that
// assert engine-specific behaviour.
func ExternalMongo() bool {
	return os.Getenv(MongoURIEnv) != ""
}

// startEngine starts the embedded FerretDB, or returns the external URI.
func startEngine() (uri string, stop func(), err error) {
	if uri := os.Getenv(MongoURIEnv); uri != "" {
		return uri, nil, nil
	}
	dir, err := os.MkdirTemp("", "marquee-ferretdb-")
	if err != nil {
		return "", nil, fmt.Errorf("creating ferretdb data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := ferretdb.Start(ctx, dir, "127.0.0.1:0")
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.URI, func() {
		cancel()
		srv.Wait()
		os.RemoveAll(dir)
	}, nil
}

// MongoURI returns the URI of the test binary's engine, starting it on first
// use. It fails the test if RunMain is not in use or the engine cannot start.
func MongoURI(t testing.TB) string {
	t.Helper()
	engine.mu.Lock()
	running := engine.running
	engine.mu.Unlock()
	if !running {
		t.Fatal("testenv: call testenv.RunMain(m) from the package's TestMain")
	}
	engine.once.Do(func() {
		uri, stop, err := startEngine()
		engine.mu.Lock()
		defer engine.mu.Unlock()
		engine.uri, engine.stop, engine.err = uri, stop, err
	})
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.err != nil {
		t.Fatalf("testenv: starting database engine: %v", engine.err)
	}
	return engine.uri
}

// Mongo returns a client connected to the test binary's engine whose DB is a
// database of this test's own (its sanitised name plus a random suffix),
// dropped and disconnected when the test ends.
func Mongo(t testing.TB) *mongodb.Client {
	t.Helper()
	cfg := mongodb.DefaultConfig()
	cfg.URI = MongoURI(t)
	cfg.Database = DatabaseName(t.Name())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongodb.Connect(ctx, cfg, telemetry.Noop(), logging.Discard())
	if err != nil {
		t.Fatalf("testenv: connecting to %s: %v", cfg.URI, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.DB.Drop(ctx); err != nil {
			t.Errorf("testenv: dropping database %s: %v", cfg.Database, err)
		}
		if err := client.Disconnect(ctx); err != nil {
			t.Errorf("testenv: disconnecting: %v", err)
		}
	})
	return client
}

// maxDBName is FerretDB's limit (MongoDB allows 63 bytes too).
const maxDBName = 63

var unsafeDBChars = regexp.MustCompile(`[^a-z0-9_]+`)

// DatabaseName returns a database name for a test: the test name lower-cased
// with runs of other characters turned into "_", cut so that with "_" and 8
// random hex digits it fits 63 characters. Lower case because MongoDB
// refuses two names differing only in case.
func DatabaseName(testName string) string {
	base := strings.Trim(unsafeDBChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	const suffixLen = 1 + 8
	if len(base) > maxDBName-suffixLen {
		base = base[:maxDBName-suffixLen]
	}
	if base == "" {
		base = "test"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base + "_" + hex.EncodeToString(b[:])
}

// RequireBinary returns the path of the named executable. When it is not on
// PATH the test fails under CI=true and is skipped otherwise.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: %s is required under CI but not on PATH", name)
		return ""
	}
	t.Skipf("testenv: %s not on PATH; install it (e.g. apt-get install redis-server) to run this test", name)
	return ""
}

// FreeAddr returns a loopback "127.0.0.1:port" that was free when checked.
// Another process may take it before it is used; callers that start a
// server on it should retry on a bind failure.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: finding a free port: %v", err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatalf("testenv: releasing port: %v", err)
	}
	return addr
}

// Redis starts a real redis-server for this test on a free loopback port
// (no persistence, files in a temporary directory), waits until it answers
// PING, and stops it when the test ends. It returns "127.0.0.1:port".
// Without redis-server the test fails under CI=true and is skipped
// otherwise.
func Redis(t testing.TB) string {
	t.Helper()
	bin := RequireBinary(t, "redis-server")
	var lastErr error
	// FreeAddr's port can be taken before redis binds it; try a few.
	for range 3 {
		addr, err := startRedis(t, bin)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("testenv: starting redis-server: %v", lastErr)
	return ""
}

// redisReadyTimeout bounds the wait for a new redis-server to answer.
const redisReadyTimeout = 15 * time.Second

func startRedis(t testing.TB, bin string) (string, error) {
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin,
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", t.TempDir(),
	)
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("running %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	deadline := time.NewTimer(redisReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := pingRedis(addr)
		if err == nil {
			t.Cleanup(stop)
			return addr, nil
		}
		select {
		case werr := <-exited:
			return "", fmt.Errorf("redis-server exited before answering (%v): %s", werr, out.String())
		case <-deadline.C:
			stop()
			return "", fmt.Errorf("redis-server on %s did not answer PING within %s (last error: %v): %s",
				addr, redisReadyTimeout, err, out.String())
		case <-tick.C:
		}
	}
}

// pingRedis sends one PING in the RESP protocol and expects +PONG.
func pingRedis(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// "-LOADING ..." while a server starts up; anything but PONG is not ready.
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("unexpected reply %s", strconv.Quote(line))
	}
	return nil
}

// lockedBuffer collects a child process's output; written by os/exec's
// copying goroutine, read on failure.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the head only: enough to see why redis refused to start.
	if room := 16<<10 - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
