package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// ServiceName names the service in logs and telemetry.
const ServiceName = "catalog"

// DevPageTokenKey is the page-token key used when catalog.page_token_key is
// empty. It is public, so tokens are only tamper-evident against callers who
// have not read this file: set a secret key in every real deployment (all
// replicas must share it, or a token from one is refused by another). Run
// logs a warning when it is in use.
const DevPageTokenKey = "marquee-dev-page-token-key-not-secret"

// Config is the catalog service's configuration: the shared keys at the top
// level and the service's own under "catalog." (see DefaultConfig).
type Config struct {
	config.Common `mapstructure:",squash"`
	// Settings is embedded so its fields read as cfg.GRPCAddr while their
	// keys are catalog.grpc_addr and so on.
	Settings `mapstructure:"catalog"`
}

// Settings are the keys under "catalog.".
type Settings struct {
	// GRPCAddr is where CatalogService listens ("127.0.0.1:0" picks a port;
	// see WithListening).
	GRPCAddr string `mapstructure:"grpc_addr"`
	// AdminAddr serves /metrics, /healthz and /readyz; "" disables it.
	AdminAddr string         `mapstructure:"admin_addr"`
	Mongo     mongodb.Config `mapstructure:"mongo"`

	// AuthAddr is the auth service, the source of the JWKS and of API key
	// resolutions.
	AuthAddr string `mapstructure:"auth_addr"`
	// AuthIssuer and AuthAudience are required of every access token.
	AuthIssuer   string `mapstructure:"auth_issuer"`
	AuthAudience string `mapstructure:"auth_audience"`
	// ClientID and ClientSecret are this service's credentials at auth
	// (client_credentials), needed to resolve X-API-Key callers.
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret" secret:"true"`

	// RedisAddr enables the shared Redis cache ("" keeps the in-process
	// cache only).
	RedisAddr string      `mapstructure:"redis_addr"`
	Cache     CacheConfig `mapstructure:"cache"`
	Changes   Changes     `mapstructure:"changes"`
	// ShardZones is "SHARD=ZONE,..." for `catalog migrate` on a mongos.
	ShardZones string `mapstructure:"shard_zones"`
	// PageTokenKey signs page and change-feed tokens; every replica needs
	// the same one. Empty means DevPageTokenKey (with a warning).
	PageTokenKey string `mapstructure:"page_token_key" secret:"true"`
	// MigrateOnStart runs the bootstrap when serving starts (the dev stack;
	// deployments run `catalog migrate` as a Job instead).
	MigrateOnStart bool `mapstructure:"migrate_on_start"`
}

// CacheConfig tunes the read-through cache.
type CacheConfig struct {
	// MaxEntries bounds the in-process cache.
	MaxEntries int `mapstructure:"max_entries"`
	// TTL is a safety net on cached values; invalidation normally removes
	// them long before.
	TTL time.Duration `mapstructure:"ttl"`
}

// Changes tunes the change feed (see package feed).
type Changes struct {
	// Retention is how long tombstones and feed positions live.
	Retention time.Duration `mapstructure:"retention"`
	// Settle is the window within which every write commits; writes get
	// half of it as their deadline.
	Settle time.Duration `mapstructure:"settle"`
	// PollInterval is how often tailers look for other replicas' writes.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// PurgeInterval is how often expired tombstones are deleted.
	PurgeInterval time.Duration `mapstructure:"purge_interval"`
	// GenreRecountInterval is how often each replica replaces the
	// maintained genre counts with an exact count (a read of every live
	// movie); 0 never does.
	GenreRecountInterval time.Duration `mapstructure:"genre_recount_interval"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	mc := mongodb.DefaultConfig()
	mc.Database = "catalog"
	return Config{
		Common: config.DefaultCommon(),
		Settings: Settings{
			GRPCAddr:     ":9091",
			AdminAddr:    ":9191",
			Mongo:        mc,
			AuthAddr:     "dns:///auth:9093",
			AuthIssuer:   "https://marquee.dev",
			AuthAudience: "marquee-api",
			ClientID:     "catalog",
			Cache:        CacheConfig{MaxEntries: 100_000, TTL: 10 * time.Minute},
			Changes: Changes{
				Retention:     720 * time.Hour,
				Settle:        10 * time.Second,
				PollInterval:  time.Second,
				PurgeInterval: time.Hour,
				// At 25 million movies a recount reads ~25 GB: daily per
				// replica keeps drift from crashes bounded at little cost.
				GenreRecountInterval: 24 * time.Hour,
			},
		},
	}
}

func (c Config) validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("catalog.grpc_addr is required"))
	}
	if c.Mongo.Database == "" {
		errs = append(errs, errors.New("catalog.mongo.database is required"))
	}
	for name, d := range map[string]time.Duration{
		"catalog.changes.retention": c.Changes.Retention, "catalog.changes.settle": c.Changes.Settle,
		"catalog.changes.poll_interval": c.Changes.PollInterval, "catalog.changes.purge_interval": c.Changes.PurgeInterval,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.Changes.GenreRecountInterval < 0 {
		errs = append(errs, errors.New("catalog.changes.genre_recount_interval must not be negative"))
	}
	if c.Changes.Settle > 0 && c.Changes.Settle < 200*time.Millisecond {
		errs = append(errs, errors.New("catalog.changes.settle must be at least 200ms"))
	}
	if c.Cache.MaxEntries <= 0 {
		errs = append(errs, errors.New("catalog.cache.max_entries must be positive"))
	}
	if _, err := bootstrap.ParseZones(c.ShardZones); err != nil {
		errs = append(errs, fmt.Errorf("catalog.shard_zones: %w", err))
	}
	return errors.Join(errs...)
}
