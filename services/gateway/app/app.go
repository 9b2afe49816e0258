// Package app runs the gateway: Marquee's REST edge in front of the catalog,
// search and auth gRPC services. Run is used by the gateway binary, the dev
// stack and integration tests alike.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/identity"
	"github.com/marquee-dev/marquee/services/platform/adminhttp"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// Option changes how Run runs.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	telemetry   *telemetry.Provider
	onListening func(httpAddr, adminAddr string)
	verifier    identity.Verifier
}

// WithLogger sends logs to l instead of stderr.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTelemetry uses tp instead of setting telemetry up (and does not shut it
// down).
func WithTelemetry(tp *telemetry.Provider) Option { return func(o *options) { o.telemetry = tp } }

// WithListening calls f with the bound HTTP and admin addresses once both are
// listening (adminAddr is "" when the admin server is off); useful when the
// configured addresses end in ":0".
func WithListening(f func(httpAddr, adminAddr string)) Option {
	return func(o *options) { o.onListening = f }
}

// WithVerifier checks credentials with v instead of a Verifier talking to
// cfg.AuthAddr (the dev stack may share one).
func WithVerifier(v *authn.Verifier) Option { return func(o *options) { o.verifier = v } }

func newOptions(cfg Config, opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = logging.New(os.Stderr, cfg.Log)
	}
	o.logger = o.logger.With(slog.String("service", ServiceName))
	return o
}

// Run serves the gateway until ctx ends, then drains: /readyz turns 503 at
// once, requests in flight get cfg.ShutdownGrace to finish, and telemetry is
// flushed last. It returns nil on a clean shutdown.
func Run(ctx context.Context, cfg Config, opts ...Option) (err error) {
	o := newOptions(cfg, opts)
	logger := o.logger
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("checking config: %w", err)
	}
	logger.InfoContext(ctx, "starting", slog.Any("config", config.Redacted(cfg)))

	tp := o.telemetry
	if tp == nil {
		tp, err = telemetry.Setup(ctx, ServiceName, cfg.Telemetry)
		if err != nil {
			return fmt.Errorf("setting up telemetry: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			err = errors.Join(err, tp.Shutdown(sctx))
		}()
	}

	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	dial := func(name, target string) (*grpc.ClientConn, error) {
		c, err := grpcclient.Dial(target, tp)
		if err != nil {
			return nil, fmt.Errorf("dialing %s at %s: %w", name, target, err)
		}
		conns = append(conns, c)
		return c, nil
	}
	catalogConn, err := dial("catalog", cfg.CatalogAddr)
	if err != nil {
		return err
	}
	searchConn, err := dial("search", cfg.SearchAddr)
	if err != nil {
		return err
	}
	authConn, err := dial("auth", cfg.AuthAddr)
	if err != nil {
		return err
	}

	var ts *authn.TokenSource
	if cfg.ClientSecret != "" {
		ts = authn.NewTokenSource(authConn, cfg.ClientID, cfg.ClientSecret)
	} else {
		logger.WarnContext(ctx, "gateway.client_secret is empty: API keys cannot be checked and the response cache "+
			"cannot follow the change feed (entries live for gateway.cache.max_age)")
	}
	verifier := o.verifier
	if verifier == nil {
		verifier = authn.NewVerifier(authConn, ts, authn.VerifierConfig{Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience})
	}

	var rdb redis.UniversalClient // nil, not a nil *redis.Client, when unset
	if rc, err := redisClient(cfg); err != nil {
		return err
	} else if rc != nil {
		rdb = rc
		defer func() { _ = rc.Close() }()
	}

	catalog := catalogv1.NewCatalogServiceClient(catalogConn)
	e, err := buildEdge(ctx, cfg, backends{
		catalog: catalog,
		search:  searchv1.NewSearchServiceClient(searchConn),
		auth:    authv1.NewAuthServiceClient(authConn),
	}, verifier, rdb, logger, tp)
	if err != nil {
		return err
	}
	defer e.close()

	var lc net.ListenConfig
	httpLis, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.HTTPAddr, err)
	}
	var adminLis net.Listener
	if cfg.AdminAddr != "" {
		adminLis, err = lc.Listen(ctx, "tcp", cfg.AdminAddr)
		if err != nil {
			_ = httpLis.Close()
			return fmt.Errorf("listening on %s: %w", cfg.AdminAddr, err)
		}
	}
	adminAddr := ""
	if adminLis != nil {
		adminAddr = adminLis.Addr().String()
	}

	srv := newServer(cfg, e.handler, logger)
	useTLS := cfg.TLSCertFile != ""
	logger.InfoContext(ctx, "serving", slog.String("http_addr", httpLis.Addr().String()),
		slog.String("admin_addr", adminAddr), slog.Bool("tls", useTLS), slog.Bool("redis", rdb != nil))
	e.ready.Store(true)
	if o.onListening != nil {
		o.onListening(httpLis.Addr().String(), adminAddr)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if useTLS {
			err = srv.ServeTLS(httpLis, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			err = srv.Serve(httpLis)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving http: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		// Readiness goes first, so load balancers stop sending new
		// requests while those in flight finish.
		e.ready.Store(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// Requests that outlive the grace period (a long export, a
			// client that never finished sending) are cut off.
			logger.WarnContext(sctx, "closing connections still open after the shutdown grace period",
				slog.Duration("grace", cfg.ShutdownGrace), slog.String("error", err.Error()))
			_ = srv.Close()
		}
		return nil
	})
	if adminLis != nil {
		g.Go(func() error {
			return adminhttp.Serve(gctx, adminLis, tp.MetricsHandler(), func(context.Context) error {
				if !e.ready.Load() {
					return errors.New("not serving")
				}
				return nil
			})
		})
	}
	g.Go(func() error {
		var callOpts []grpc.CallOption
		if ts != nil {
			callOpts = append(callOpts, grpc.PerRPCCredentials(ts.PerRPCCredentials()))
		}
		e.cache.Follow(gctx, catalog, callOpts...)
		return nil
	})
	err = g.Wait()
	logger.InfoContext(context.WithoutCancel(ctx), "stopped")
	return err
}

func newServer(cfg Config, h http.Handler, logger *slog.Logger) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if cfg.TLSCertFile != "" {
		protocols.SetHTTP2(true)
	} else {
		// Cleartext HTTP/2 (h2c with prior knowledge), for clients and
		// proxies inside the cluster that speak it.
		protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are at most 1 MiB; a client that cannot send one in 30s
		// is holding a connection hostage. No write timeout: the export
		// streams for as long as the client reads.
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		TLSConfig:      &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// redisClient returns the client of the shared rate-limit store, nil when none
// is configured. It does not connect: the limiter counts in process until
// Redis answers.
func redisClient(cfg Config) (*redis.Client, error) {
	if cfg.RedisAddr == "" {
		return nil, nil
	}
	var opts *redis.Options
	if strings.Contains(cfg.RedisAddr, "://") {
		var err error
		opts, err = redis.ParseURL(cfg.RedisAddr)
		if err != nil {
			return nil, fmt.Errorf("parsing gateway.redis_addr: %w", err)
		}
	} else {
		opts = &redis.Options{Addr: cfg.RedisAddr}
	}
	if cfg.RedisPassword != "" {
		opts.Password = cfg.RedisPassword
	}
	// Rate limiting must not wait on a slow Redis: fail fast and count in
	// process instead.
	opts.DialTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 100 * time.Millisecond
	opts.WriteTimeout = 100 * time.Millisecond
	opts.MaxRetries = 0
	return redis.NewClient(opts), nil
}
