// Command gateway serves Marquee's public REST API in front of the catalog,
// search and auth gRPC services. Configuration comes from --config FILE,
// --set key=value and MARQUEE_* environment variables (see app.Config).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/config"
)

func main() {
	app.TuneGC(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, args); err != nil {
		return err
	}
	return app.Run(ctx, cfg)
}
