// Package app assembles the search service: the index, the feed follower,
// the gRPC API and the admin endpoints. Run is used by cmd/search, the dev
// stack and integration tests.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/services/platform/grpcserver"
	"github.com/marquee-dev/marquee/services/platform/serve"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/grpcapi"
	"github.com/marquee-dev/marquee/services/search/internal/index/bleveindex"
	"github.com/marquee-dev/marquee/services/search/internal/query"
	searchsync "github.com/marquee-dev/marquee/services/search/internal/sync"
)

// Config is the search service's configuration.
type Config struct {
	config.Common `mapstructure:",squash"`
	Search        SearchConfig `mapstructure:"search"`
}

// SearchConfig holds the search.* keys.
type SearchConfig struct {
	// GRPCAddr and AdminAddr are the listen addresses of the API and of
	// /metrics, /healthz and /readyz.
	GRPCAddr  string `mapstructure:"grpc_addr"`
	AdminAddr string `mapstructure:"admin_addr"`
	// IndexDir holds the index; empty means $data_dir/search.
	IndexDir string `mapstructure:"index_dir"`
	// Partitions splits a new index; 0 means one per CPU.
	Partitions int `mapstructure:"partitions"`
	// CatalogAddr and AuthAddr are the services search calls.
	CatalogAddr string `mapstructure:"catalog_addr"`
	AuthAddr    string `mapstructure:"auth_addr"`
	// ClientID and ClientSecret are the service credentials for the
	// client_credentials grant. Without a secret, catalog is called without
	// a token (a development setup whose catalog does not check them).
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret" secret:"true"`
	// MaxLag is how far behind the catalogue the index may be while the
	// service reports ready.
	MaxLag time.Duration `mapstructure:"max_lag"`
	// PageTokenSecret signs page tokens; every replica needs the same one.
	// Empty derives it from ClientSecret (shared by the replicas), or, when
	// that is empty too, picks a random one per process.
	PageTokenSecret string `mapstructure:"page_token_secret" secret:"true"`
	// SearchTimeout bounds the time one search may take.
	SearchTimeout time.Duration `mapstructure:"search_timeout"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	return Config{
		Common: config.DefaultCommon(),
		Search: SearchConfig{
			GRPCAddr:      ":9092",
			AdminAddr:     ":9192",
			IndexDir:      "/var/lib/marquee/search",
			CatalogAddr:   "dns:///catalog:9091",
			AuthAddr:      "dns:///auth:9093",
			ClientID:      "search",
			MaxLag:        30 * time.Second,
			SearchTimeout: 5 * time.Second,
		},
	}
}

func (c Config) indexDir() string {
	if c.Search.IndexDir != "" {
		return c.Search.IndexDir
	}
	return filepath.Join(c.DataDir, "search")
}

// Option customises Run.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	telemetry   *telemetry.Provider
	onListening func(grpcAddr, adminAddr string)
	catalogCred credentials.PerRPCCredentials
}

// WithLogger sets the logger (default: JSON on stderr at cfg.Log.Level).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTelemetry supplies a telemetry provider instead of setting one up.
func WithTelemetry(p *telemetry.Provider) Option { return func(o *options) { o.telemetry = p } }

// OnListening is called with the bound gRPC and admin addresses once both
// listen, which is how callers learn the ports chosen for "127.0.0.1:0".
func OnListening(fn func(grpcAddr, adminAddr string)) Option {
	return func(o *options) { o.onListening = fn }
}

// WithCatalogCredentials replaces the service-token credentials sent to the
// catalog (tests use a static token instead of an auth server).
func WithCatalogCredentials(c credentials.PerRPCCredentials) Option {
	return func(o *options) { o.catalogCred = c }
}

type deps struct {
	log     *slog.Logger
	tp      *telemetry.Provider
	idx     *bleveindex.Index
	catalog catalogv1.CatalogServiceClient
	syncer  *searchsync.Syncer
	closers []func() error
	// shutdownTelemetry flushes telemetry this process set up.
	shutdownTelemetry func(context.Context) error
}

func (d *deps) close(ctx context.Context) error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	if d.shutdownTelemetry != nil {
		errs = append(errs, d.shutdownTelemetry(ctx))
	}
	return errors.Join(errs...)
}

// setup opens the index (empty when fresh) and the clients both commands
// need.
func setup(ctx context.Context, cfg Config, o *options, fresh bool) (*deps, error) {
	d := &deps{log: serve.Logger(o.logger, cfg.Log, "search")}
	var err error
	if d.tp, d.shutdownTelemetry, err = serve.Telemetry(ctx, "search", cfg.Telemetry, o.telemetry); err != nil {
		return nil, err
	}
	d.log.Info("starting search", "config", config.Redacted(&cfg))
	idx, err := bleveindex.Open(ctx, bleveindex.Options{Dir: cfg.indexDir(), Partitions: cfg.Search.Partitions, Logger: d.log, Fresh: fresh})
	if err != nil {
		_ = d.close(ctx)
		return nil, fmt.Errorf("opening index: %w", err)
	}
	d.idx = idx
	d.closers = append(d.closers, idx.Close)

	cred := o.catalogCred
	if cred == nil && cfg.Search.ClientSecret != "" {
		authConn, err := grpcclient.Dial(cfg.Search.AuthAddr, d.tp)
		if err != nil {
			_ = d.close(ctx)
			return nil, fmt.Errorf("dialing auth: %w", err)
		}
		d.closers = append(d.closers, authConn.Close)
		cred = authn.NewTokenSource(authConn, cfg.Search.ClientID, cfg.Search.ClientSecret).PerRPCCredentials()
	}
	var extra []grpc.DialOption
	if cred != nil {
		extra = append(extra, grpc.WithPerRPCCredentials(cred))
	} else {
		d.log.Warn("search.client_secret is empty: calling catalog without a service token")
	}
	catConn, err := grpcclient.Dial(cfg.Search.CatalogAddr, d.tp, extra...)
	if err != nil {
		_ = d.close(ctx)
		return nil, fmt.Errorf("dialing catalog: %w", err)
	}
	d.closers = append(d.closers, catConn.Close)
	d.catalog = catalogv1.NewCatalogServiceClient(catConn)
	d.syncer, err = searchsync.New(d.catalog, idx, searchsync.Options{
		MaxLag: cfg.Search.MaxLag,
		Logger: d.log,
		Meter:  d.tp.MeterProvider.Meter("github.com/marquee-dev/marquee/services/search"),
	})
	if err != nil {
		_ = d.close(ctx)
		return nil, err
	}
	return d, nil
}

// Run serves until ctx ends: the gRPC API on search.grpc_addr, the admin
// endpoints on search.admin_addr, and the feed follower keeping the index
// current. Readiness (/readyz and gRPC health) waits until the index has
// caught up with the catalogue.
func Run(ctx context.Context, cfg Config, opts ...Option) error {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	d, err := setup(ctx, cfg, o, false)
	if err != nil {
		return err
	}
	defer func() { _ = d.close(ctx) }()

	lis, err := serve.Listen(ctx, cfg.Search.GRPCAddr, cfg.Search.AdminAddr)
	if err != nil {
		return err
	}

	secret := []byte(cfg.Search.PageTokenSecret)
	if len(secret) == 0 {
		secret = []byte(cfg.Search.ClientSecret)
	}
	if len(secret) == 0 {
		d.log.Warn("no page token secret: page tokens work only on this replica")
	}
	parser := query.NewParser(analysis.NewAnalyzer(), query.NewTokenCodec(secret))
	srv := grpcserver.New(grpcserver.Options{Logger: d.log, Telemetry: d.tp,
		ServerOptions: []grpc.ServerOption{grpcapi.LenientCodec()}})
	grpcapi.Register(srv.Server, grpcapi.New(d.idx, parser, grpcapi.Options{
		SearchTimeout: cfg.Search.SearchTimeout, Logger: d.log,
	}))

	return serve.Run(ctx, d.log, lis, o.onListening, []serve.Task{
		func(ctx context.Context) error { return srv.Serve(ctx, lis.Main) },
		serve.Admin(lis, d.tp.MetricsHandler(), d.syncer.Ready),
		func(ctx context.Context) error {
			if err := d.syncer.Run(ctx); err != nil {
				return fmt.Errorf("sync: %w", err)
			}
			return nil
		},
		serve.Job(func(ctx context.Context) { reportHealth(ctx, srv, d.syncer) }),
	})
}

// reportHealth mirrors readiness into the gRPC health service, so gRPC
// health checks agree with /readyz.
func reportHealth(ctx context.Context, srv *grpcserver.Server, s *searchsync.Syncer) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVING
		if s.Ready(ctx) != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		srv.Health.SetServingStatus(searchv1.SearchService_ServiceDesc.ServiceName, st)
		srv.Health.SetServingStatus("", st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Rebuild rebuilds the index from the catalog's export and returns; the
// serving process must not be running on the same index directory.
func Rebuild(ctx context.Context, cfg Config, opts ...Option) error {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	d, err := setup(ctx, cfg, o, true)
	if err != nil {
		return err
	}
	defer func() { _ = d.close(ctx) }()
	return d.syncer.Bootstrap(ctx)
}
