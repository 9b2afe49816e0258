// Command search serves the search API; `search rebuild` rebuilds the index
// from the catalog's export and exits.
//
//	search [--config FILE] [--set key=value ...]
//	search rebuild [--config FILE] [--set key=value ...]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/search/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "search:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	rebuild := false
	if len(args) > 0 && args[0] == "rebuild" {
		rebuild, args = true, args[1:]
	}
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, args); err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	if rebuild {
		return app.Rebuild(ctx, cfg)
	}
	return app.Run(ctx, cfg)
}
