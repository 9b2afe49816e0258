// Package app runs the catalog service: CatalogService over gRPC, the admin
// server (metrics and probes), the change-feed follower that invalidates the
// cache, the tombstone purger and the resumption of interrupted director
// renames. main, the dev stack and integration tests all start it through
// Run; Migrate is the `catalog migrate` bootstrap.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/catalog/internal/cache"
	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/grpcapi"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/services/platform/grpcserver"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/serve"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// Option changes how Run (and Migrate) run.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	telemetry   *telemetry.Provider
	mongo       *mongodb.Client
	now         func() time.Time
	onListening func(grpcAddr, adminAddr string)
	verifier    *authn.Verifier
}

// WithLogger sends logs to l instead of stderr.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTelemetry uses tp instead of setting telemetry up (and does not shut it
// down).
func WithTelemetry(tp *telemetry.Provider) Option { return func(o *options) { o.telemetry = tp } }

// WithMongo uses an already connected client instead of cfg.Mongo (and does
// not disconnect it).
func WithMongo(c *mongodb.Client) Option { return func(o *options) { o.mongo = c } }

// WithClock replaces the clock of writes and of the change feed.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithListening calls f with the bound gRPC and admin addresses once both are
// listening (adminAddr is "" when the admin server is off); useful when the
// configured addresses end in ":0".
func WithListening(f func(grpcAddr, adminAddr string)) Option {
	return func(o *options) { o.onListening = f }
}

// WithVerifier authenticates callers with v instead of a Verifier talking to
// cfg.AuthAddr (the dev stack shares one; tests use a local key set).
func WithVerifier(v *authn.Verifier) Option { return func(o *options) { o.verifier = v } }

func newOptions(cfg Config, opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	o.logger = serve.Logger(o.logger, cfg.Log, ServiceName)
	return o
}

func connect(ctx context.Context, cfg Config, o options, tp *telemetry.Provider) (*mongodb.Client, func(), error) {
	if o.mongo != nil {
		return o.mongo, func() {}, nil
	}
	mc, err := mongodb.Connect(ctx, cfg.Mongo, tp, o.logger)
	if err != nil {
		return nil, nil, err
	}
	return mc, func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = mc.Disconnect(dctx)
	}, nil
}

// Migrate runs the idempotent bootstrap (indexes; sharding and zones on a
// mongos) against cfg.Mongo and returns.
func Migrate(ctx context.Context, cfg Config, opts ...Option) error {
	o := newOptions(cfg, opts)
	zones, err := bootstrap.ParseZones(cfg.ShardZones)
	if err != nil {
		return fmt.Errorf("catalog.shard_zones: %w", err)
	}
	mc, closeMongo, err := connect(ctx, cfg, o, o.telemetry)
	if err != nil {
		return err
	}
	defer closeMongo()
	if err := bootstrap.Run(ctx, mc, bootstrap.Options{Zones: zones, Logger: o.logger}); err != nil {
		return fmt.Errorf("bootstrapping: %w", err)
	}
	o.logger.InfoContext(ctx, "bootstrap complete")
	return nil
}

// Run serves the catalog service until ctx ends and returns nil after a
// clean shutdown.
func Run(ctx context.Context, cfg Config, opts ...Option) (err error) {
	o := newOptions(cfg, opts)
	logger := o.logger
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("checking config: %w", err)
	}
	logger.InfoContext(ctx, "starting", slog.Any("config", config.Redacted(cfg)))
	key := cfg.PageTokenKey
	if key == "" {
		key = DevPageTokenKey
		logger.WarnContext(ctx, "catalog.page_token_key is empty: using the public development key; set a shared secret in production")
	}

	tp, shutdownTelemetry, err := serve.Telemetry(ctx, ServiceName, cfg.Telemetry, o.telemetry)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, shutdownTelemetry(ctx)) }()
	mc, closeMongo, err := connect(ctx, cfg, o, tp)
	if err != nil {
		return err
	}
	defer closeMongo()
	if cfg.MigrateOnStart {
		zones, _ := bootstrap.ParseZones(cfg.ShardZones)
		if err := bootstrap.Run(ctx, mc, bootstrap.Options{Zones: zones, Logger: logger}); err != nil {
			return fmt.Errorf("bootstrapping: %w", err)
		}
	}

	store := mongostore.New(mc)
	tokens := movie.NewTokens([]byte(key))
	wake := feed.NewNotifier()
	var rc *redis.Client
	if cfg.RedisAddr != "" {
		rc = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
		defer func() { _ = rc.Close() }()
	}
	reads, err := cache.New(store, cache.Options{MaxEntries: cfg.Cache.MaxEntries, TTL: cfg.Cache.TTL, Redis: rc, Logger: logger})
	if err != nil {
		return err
	}
	defer reads.Close()
	svc, err := movie.NewService(store, tokens,
		movie.WithReader(reads),
		movie.WithClock(o.now),
		movie.WithWriteTimeout(cfg.Changes.Settle/2),
		movie.WithLogger(logger),
		movie.WithObserver(func(ctx context.Context, w movie.Written) {
			reads.Invalidate(ctx, w.ID, w.Revision)
			wake.Notify()
		}),
	)
	if err != nil {
		return err
	}
	feedCfg := feed.Config{Settle: cfg.Changes.Settle, Retention: cfg.Changes.Retention, PollInterval: cfg.Changes.PollInterval}
	changes := feed.New(store, tokens, wake, feedCfg, feed.WithClock(o.now), feed.WithLogger(logger))
	// The cache follows the feed for other replicas' writes; this replica's
	// own writes are invalidated synchronously by the observer above. So
	// its tailer polls and is not woken by local writes: a wake-up per
	// write would re-read the feed once per batch during an import.
	cacheFeed := feed.New(store, tokens, nil, feedCfg, feed.WithClock(o.now), feed.WithLogger(logger))

	verifier := o.verifier
	if verifier == nil {
		conn, err := grpcclient.Dial(cfg.AuthAddr, tp)
		if err != nil {
			return fmt.Errorf("dialing auth at %s: %w", cfg.AuthAddr, err)
		}
		defer func() { _ = conn.Close() }()
		var ts *authn.TokenSource
		if cfg.ClientSecret != "" {
			ts = authn.NewTokenSource(conn, cfg.ClientID, cfg.ClientSecret)
		}
		verifier = authn.NewVerifier(conn, ts, authn.VerifierConfig{Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience})
	}

	srv := grpcserverNew(logger, tp, verifier)
	catalogv1.RegisterCatalogServiceServer(srv, grpcapi.New(svc, changes, store, logger))

	lis, err := serve.Listen(ctx, cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	return serve.Run(ctx, logger, lis, o.onListening, []serve.Task{
		func(ctx context.Context) error { return srv.Serve(ctx, lis.Main) },
		serve.Admin(lis, tp.MetricsHandler(), func(ctx context.Context) error { return mc.Ping(ctx, nil) }),
		serve.Job(func(ctx context.Context) { reads.Follow(ctx, cacheFeed) }),
		serve.Every(cfg.Changes.PurgeInterval, logger, "purging tombstones", func(ctx context.Context) error {
			n, err := changes.Purge(ctx)
			if n > 0 {
				logger.InfoContext(ctx, "purged tombstones", "count", n)
			}
			return err
		}),
		// Bootstrap seeds the counts of a catalogue never counted; this
		// repairs drift once the last count is older than the interval.
		serve.Every(min(cfg.Changes.GenreRecountInterval, time.Hour), logger, "recounting genres", func(ctx context.Context) error {
			return svc.RecountGenresIfDue(ctx, cfg.Changes.GenreRecountInterval)
		}),
		serve.Job(func(ctx context.Context) {
			if err := svc.ResumePendingRenames(ctx); err != nil && ctx.Err() == nil {
				logger.ErrorContext(ctx, "resuming director renames", "error", err)
			}
		}),
	}, slog.String("engine", string(mc.Engine)))
}

func grpcserverNew(logger *slog.Logger, tp *telemetry.Provider, v *authn.Verifier) *grpcserver.Server {
	return grpcserver.New(grpcserver.Options{
		Logger:             logger,
		Telemetry:          tp,
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{v.UnaryServerInterceptor()},
		StreamInterceptors: []grpc.StreamServerInterceptor{v.StreamServerInterceptor()},
	})
}
