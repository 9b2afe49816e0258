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
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/identity"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/services/platform/serve"
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
	o.logger = serve.Logger(o.logger, cfg.Log, ServiceName)
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

	tp, shutdownTelemetry, err := serve.Telemetry(ctx, ServiceName, cfg.Telemetry, o.telemetry)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, shutdownTelemetry(ctx)) }()

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

	lis, err := serve.Listen(ctx, cfg.HTTPAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	srv := newServer(cfg, e.handler, logger)
	useTLS := cfg.TLSCertFile != ""
	e.ready.Store(true)
	var callOpts []grpc.CallOption
	if ts != nil {
		callOpts = append(callOpts, grpc.PerRPCCredentials(ts.PerRPCCredentials()))
	}
	return serve.Run(ctx, logger, lis, o.onListening, []serve.Task{
		func(context.Context) error {
			var err error
			if useTLS {
				err = srv.ServeTLS(lis.Main, cfg.TLSCertFile, cfg.TLSKeyFile)
			} else {
				err = srv.Serve(lis.Main)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serving http: %w", err)
		},
		func(ctx context.Context) error {
			<-ctx.Done()
			drain(ctx, e, srv, cfg.ShutdownGrace, logger)
			return nil
		},
		serve.Admin(lis, tp.MetricsHandler(), func(context.Context) error {
			if !e.ready.Load() {
				return errors.New("not serving")
			}
			return nil
		}),
		serve.Job(func(ctx context.Context) { e.cache.Follow(ctx, catalog, callOpts...) }),
	}, slog.Bool("tls", useTLS), slog.Bool("redis", rdb != nil))
}

// drain stops the server: readiness goes first, so load balancers stop
// sending new requests while those in flight get grace to finish.
func drain(ctx context.Context, e *edge, srv *http.Server, grace time.Duration, logger *slog.Logger) {
	e.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests that outlive the grace period (a long export, a client
		// that never finished sending) are cut off.
		logger.WarnContext(sctx, "closing connections still open after the shutdown grace period",
			slog.Duration("grace", grace), slog.String("error", err.Error()))
		_ = srv.Close()
	}
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
