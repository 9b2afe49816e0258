// Command benchhelper runs the processes that `marquee bench -spawn` needs
// besides the services, each as a process of its own so its CPU and memory
// are its own and it can be pinned with them:
//
//	benchhelper engine -addr 127.0.0.1:PORT -dir DIR   the embedded engine (FerretDB on SQLite)
//	benchhelper bare -addr 127.0.0.1:PORT -body FILE -header FILE.json
//	                                                   the bare net/http baseline server
//	benchhelper bench [flags]                          the load tool itself, as `marquee bench`
//	                                                   (what tools/bench/run-bench.sh runs)
//
// The servers serve until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/marquee-dev/marquee/services/platform/ferretdb"
	"github.com/marquee-dev/marquee/tools/internal/baseline"
	"github.com/marquee-dev/marquee/tools/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchhelper:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchhelper engine|bare|bench [flags]")
	}
	if args[0] == "bench" {
		return bench.Main(ctx, args[1:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	switch args[0] {
	case "engine":
		dir := fs.String("dir", "", "data directory (SQLite files)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("engine: -dir is required")
		}
		srv, err := ferretdb.Start(ctx, *dir, *addr)
		if err != nil {
			return err
		}
		fmt.Println("engine listening:", srv.URI)
		srv.Wait()
		return nil
	case "bare":
		body := fs.String("body", "", "file holding the response body")
		header := fs.String("header", "", "JSON file holding the response headers")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		resp, err := load(*body, *header)
		if err != nil {
			return err
		}
		return baseline.ServeBare(ctx, *addr, resp, func(a net.Addr) { fmt.Println("bare listening:", a) })
	}
	return fmt.Errorf("unknown helper %q: want engine, bare or bench", args[0])
}

func load(bodyPath, headerPath string) (baseline.BareResponse, error) {
	var resp baseline.BareResponse
	body, err := os.ReadFile(bodyPath)
	if err != nil {
		return resp, fmt.Errorf("reading the body: %w", err)
	}
	resp.Body = body
	resp.Header = http.Header{}
	if headerPath != "" {
		b, err := os.ReadFile(headerPath)
		if err != nil {
			return resp, fmt.Errorf("reading the headers: %w", err)
		}
		if err := json.Unmarshal(b, &resp.Header); err != nil {
			return resp, fmt.Errorf("decoding the headers: %w", err)
		}
	}
	return resp, nil
}
