// Command catalog serves Marquee's CatalogService (`catalog`) or bootstraps
// its database and exits (`catalog migrate`: indexes, and sharding when
// connected to a mongos). Configuration comes from --config FILE,
// --set key=value and MARQUEE_* environment variables (see app.Config).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/marquee-dev/marquee/services/catalog/app"
	"github.com/marquee-dev/marquee/services/platform/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	migrate := false
	if len(args) > 0 && args[0] == "migrate" {
		migrate, args = true, args[1:]
	}
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, args); err != nil {
		return err
	}
	if migrate {
		return app.Migrate(ctx, cfg)
	}
	return app.Run(ctx, cfg)
}
