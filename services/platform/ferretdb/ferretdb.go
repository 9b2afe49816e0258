// Package ferretdb runs an embedded FerretDB (a MongoDB wire-protocol server
// storing its data in SQLite files) inside the current process. The dev stack
// and the tests use it because MongoDB itself cannot be installed here.
//
// FerretDB is verbose: failed commands (a duplicate key, say) are logged at
// WARN together with the whole wire message, so the server gets a logger that
// only lets ERROR records through.
package ferretdb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// newMu serializes ferretdb.New: it writes a package-level field of
// FerretDB's build/version package (version.Get().Package = "embedded")
// without synchronisation, so two servers started concurrently in one process
// (two test packages' helpers, the dev stack) would race on it. Nothing else
// in the embedded path touches global state: its Prometheus collectors are
// created per instance and never registered, and it installs no global
// logger, tracer or HTTP handler.
var newMu sync.Mutex

// Server is a running embedded FerretDB.
type Server struct {
	// URI is the mongodb:// URI clients connect to, e.g. "mongodb://127.0.0.1:40123/".
	URI string

	done chan struct{}
}

// Start runs an embedded FerretDB on SQLite files under dir (created if
// missing), listening on addr ("127.0.0.1:0" picks a free port). It is
// listening when Start returns and stops when ctx ends; Wait blocks until it
// has stopped and closed its files. Errors are logged to stderr.
func Start(ctx context.Context, dir, addr string) (*Server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving data dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).
		With(slog.String("component", "ferretdb"))

	// ferretdb.New creates the SQLite backend before it binds the listener,
	// and when binding fails it neither closes the backend nor returns it;
	// the backend's leak tracker then panics from a finalizer at the next
	// garbage collection, killing the process. So make sure the address can
	// be bound before handing it over. (A port taken in between still hits
	// that path, but only a fixed, contended port can lose that race.)
	if err := checkAddr(addr); err != nil {
		return nil, err
	}

	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Logger:   logger,
		Handler:  "sqlite",
		// FerretDB wants a "file:" URI naming an existing directory, with a
		// trailing slash; it keeps one SQLite file per database there.
		SQLiteURL: "file:" + abs + "/",
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("starting ferretdb: %w", err)
	}

	s := &Server{
		// The listener is bound by New, so the address is known already.
		URI:  f.MongoDBURI(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		// Run only returns once ctx has ended, all connections are closed
		// and the SQLite files are closed; its error is always nil.
		_ = f.Run(ctx)
	}()
	return s, nil
}

func checkAddr(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("starting ferretdb: %w", err)
	}
	if err := lis.Close(); err != nil {
		return fmt.Errorf("starting ferretdb: releasing %s: %w", addr, err)
	}
	return nil
}

// Wait blocks until the server has stopped after its context ended.
func (s *Server) Wait() {
	<-s.done
}
