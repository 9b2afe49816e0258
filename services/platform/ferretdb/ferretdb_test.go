package ferretdb_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/marquee-dev/marquee/services/platform/ferretdb"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Two servers in one process, started concurrently, as the dev stack and
// parallel test helpers do: they must not trip over shared state (the race
// detector watches) and each must serve its own data.
func TestTwoServersInOneProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dirs := []string{t.TempDir(), filepath.Join(t.TempDir(), "not", "yet", "there")}
	servers := make([]*ferretdb.Server, len(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Go(func() { servers[i], errs[i] = ferretdb.Start(ctx, dir, "127.0.0.1:0") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
	}
	if servers[0].URI == servers[1].URI {
		t.Fatalf("both servers on %s", servers[0].URI)
	}

	for i, s := range servers {
		if !strings.HasPrefix(s.URI, "mongodb://127.0.0.1:") {
			t.Errorf("URI = %q", s.URI)
		}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := mongodb.Connect(cctx, mongodb.Config{URI: s.URI, Database: "app"}, nil, nil)
		if err != nil {
			ccancel()
			t.Fatalf("server %d: %v", i, err)
		}
		if c.Engine != mongodb.EngineFerretDB {
			t.Errorf("server %d engine = %s", i, c.Engine)
		}
		if _, err := c.DB.Collection("things").InsertOne(cctx, bson.D{{Key: "server", Value: i}}); err != nil {
			t.Fatal(err)
		}
		n, err := c.DB.Collection("things").CountDocuments(cctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("server %d sees %d documents, want its own 1", i, n)
		}
		_ = c.Disconnect(cctx)
		ccancel()
	}

	// Data lives in SQLite files under each server's own directory.
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "app.sqlite")); err != nil {
			t.Errorf("no database file in %s: %v", dir, err)
		}
	}

	cancel()
	done := make(chan struct{})
	go func() {
		for _, s := range servers {
			s.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("servers did not stop after their context ended")
	}
}

func TestStartErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	s, err := ferretdb.Start(ctx, t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The port is taken by the first server.
	addr := strings.TrimSuffix(strings.TrimPrefix(s.URI, "mongodb://"), "/")
	if _, err := ferretdb.Start(ctx, t.TempDir(), addr); err == nil {
		t.Error("second server on the same port started")
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ferretdb.Start(ctx, file, "127.0.0.1:0"); err == nil {
		t.Error("Start with a file as data dir succeeded")
	}
	// A failed start must leave nothing behind whose finalizer would crash
	// the process (FerretDB's backend leak tracker panics in one).
	runtime.GC()
	runtime.GC()
	cancel()
	s.Wait()
}
