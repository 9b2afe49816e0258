// Command auth serves Marquee's AuthService: users, passwords, tokens, API
// keys and the JWKS. Configuration comes from --config FILE, --set key=value
// and MARQUEE_* environment variables (see app.Config).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/marquee-dev/marquee/services/auth/app"
	"github.com/marquee-dev/marquee/services/platform/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, os.Args[1:]); err != nil {
		return err
	}
	// The deployment names the bootstrap admin MARQUEE_ADMIN_EMAIL and
	// MARQUEE_ADMIN_PASSWORD; the auth.* keys win when both are set.
	if cfg.AdminEmail == "" {
		cfg.AdminEmail = os.Getenv("MARQUEE_ADMIN_EMAIL")
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = os.Getenv("MARQUEE_ADMIN_PASSWORD")
	}
	return app.Run(ctx, cfg)
}
