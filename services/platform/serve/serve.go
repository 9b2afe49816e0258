// Package serve runs the lifecycle every service process shares: binding
// its main (gRPC or HTTP) and admin listeners, owning its telemetry, and
// running its servers and background jobs until the process's context ends,
// stopping them all when one fails.
package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/marquee-dev/marquee/services/platform/adminhttp"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// Logger returns given (a caller's logger: the dev stack, tests) or a JSON
// logger on stderr at cfg's level, tagged with the service's name.
func Logger(given *slog.Logger, cfg config.LogConfig, service string) *slog.Logger {
	if given == nil {
		given = logging.New(os.Stderr, cfg)
	}
	return given.With(slog.String("service", service))
}

// Listeners are a service's bound listeners.
type Listeners struct {
	Main net.Listener
	// Admin serves /metrics, /healthz and /readyz; nil when turned off.
	Admin net.Listener
}

// Listen binds mainAddr and, unless it is empty, adminAddr. Binding both
// before serving anything lets a port clash fail the start cleanly.
func Listen(ctx context.Context, mainAddr, adminAddr string) (*Listeners, error) {
	var lc net.ListenConfig
	main, err := lc.Listen(ctx, "tcp", mainAddr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", mainAddr, err)
	}
	l := &Listeners{Main: main}
	if adminAddr != "" {
		if l.Admin, err = lc.Listen(ctx, "tcp", adminAddr); err != nil {
			_ = main.Close()
			return nil, fmt.Errorf("listening on %s: %w", adminAddr, err)
		}
	}
	return l, nil
}

// Addrs returns the bound addresses; admin is "" when there is no admin
// listener.
func (l *Listeners) Addrs() (main, admin string) {
	if l.Admin != nil {
		admin = l.Admin.Addr().String()
	}
	return l.Main.Addr().String(), admin
}

// Close closes the listeners of a start that fails before Run.
func (l *Listeners) Close() {
	_ = l.Main.Close()
	if l.Admin != nil {
		_ = l.Admin.Close()
	}
}

// Telemetry returns given when it is set (its owner shuts it down) or sets
// up telemetry for service. The returned shutdown flushes what the process
// owns, within 5 s; it is a no-op for a given provider.
func Telemetry(ctx context.Context, service string, cfg config.TelemetryConfig, given *telemetry.Provider) (*telemetry.Provider, func(context.Context) error, error) {
	if given != nil {
		return given, func(context.Context) error { return nil }, nil
	}
	tp, err := telemetry.Setup(ctx, service, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("setting up telemetry: %w", err)
	}
	return tp, func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return tp.Shutdown(sctx)
	}, nil
}

// A Task is a server or background job that runs until its context ends.
// An error stops every other task of the process.
type Task func(ctx context.Context) error

// Job adapts a background job that returns only when ctx ends.
func Job(f func(ctx context.Context)) Task {
	return func(ctx context.Context) error {
		f(ctx)
		return nil
	}
}

// Every calls f at once and then every interval until ctx ends: upkeep
// that waited a full interval first would never run in a process
// restarted more often than that. A failure is logged with what and tried
// again at the next tick: periodic upkeep must never stop the service. A
// non-positive interval makes no task.
func Every(interval time.Duration, logger *slog.Logger, what string, f func(context.Context) error) Task {
	if interval <= 0 {
		return nil
	}
	return func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				logger.ErrorContext(ctx, what, "error", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}

// Admin serves the admin endpoints on l.Admin, or does nothing when there
// is no admin listener. ready answers /readyz.
func Admin(l *Listeners, metrics http.Handler, ready func(context.Context) error) Task {
	if l.Admin == nil {
		return nil
	}
	return func(ctx context.Context) error { return adminhttp.Serve(ctx, l.Admin, metrics, ready) }
}

// Run logs the addresses it serves on (with attrs), tells onListening
// (when set) once everything is bound, runs tasks (nil ones are skipped)
// until ctx ends or one fails, and logs when they have all stopped. It
// returns the first task's error, or nil after a clean stop.
func Run(ctx context.Context, logger *slog.Logger, l *Listeners, onListening func(main, admin string), tasks []Task, attrs ...slog.Attr) error {
	mainAddr, adminAddr := l.Addrs()
	attrs = append([]slog.Attr{slog.String("addr", mainAddr), slog.String("admin_addr", adminAddr)}, attrs...)
	logger.LogAttrs(ctx, slog.LevelInfo, "serving", attrs...)
	if onListening != nil {
		onListening(mainAddr, adminAddr)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range tasks {
		if t != nil {
			g.Go(func() error { return t(gctx) })
		}
	}
	err := g.Wait()
	logger.InfoContext(context.WithoutCancel(ctx), "stopped")
	return err
}
