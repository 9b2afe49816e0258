package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
)

// ServiceName names the service in logs and telemetry.
const ServiceName = "gateway"

// MaxBodyBytes bounds a request body (API.md): larger bodies are answered 413.
const MaxBodyBytes = 1 << 20

// Config is the gateway's configuration: the shared keys at the top level and
// the gateway's own under "gateway." (see DefaultConfig).
type Config struct {
	config.Common `mapstructure:",squash"`
	// Settings is embedded so its fields read as cfg.HTTPAddr while their
	// keys are gateway.http_addr and so on.
	Settings `mapstructure:"gateway"`
}

// Settings are the keys under "gateway.".
type Settings struct {
	// HTTPAddr serves the REST API, /openapi.json, /docs, /healthz and
	// /readyz ("127.0.0.1:0" picks a port; see WithListening).
	HTTPAddr string `mapstructure:"http_addr"`
	// AdminAddr serves /metrics, /healthz and /readyz; "" disables it.
	AdminAddr string `mapstructure:"admin_addr"`

	// CatalogAddr, SearchAddr and AuthAddr are the backends' gRPC targets.
	CatalogAddr string `mapstructure:"catalog_addr"`
	SearchAddr  string `mapstructure:"search_addr"`
	AuthAddr    string `mapstructure:"auth_addr"`
	// AuthIssuer and AuthAudience are required of every access token.
	AuthIssuer   string `mapstructure:"auth_issuer"`
	AuthAudience string `mapstructure:"auth_audience"`
	// ClientID and ClientSecret are the gateway's own credentials at auth
	// (client_credentials): needed to resolve X-API-Key callers and to follow
	// the catalog's change feed. Without a secret, API keys cannot be checked
	// (503) and the response cache relies on its max age alone.
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret" secret:"true"`

	// RedisAddr holds the shared rate-limit counters ("host:port", or a
	// redis:// URL); "" counts per process.
	RedisAddr     string `mapstructure:"redis_addr"`
	RedisPassword string `mapstructure:"redis_password" secret:"true"`
	// TrustedProxies are CIDR prefixes (or addresses) of the proxies whose
	// X-Forwarded-For is believed; empty trusts none.
	TrustedProxies []string `mapstructure:"trusted_proxies"`

	RateLimit RateLimitConfig `mapstructure:"ratelimit"`

	// MaxConcurrency bounds the requests served at once; lower tiers are
	// refused first when it is reached (0: no bound).
	MaxConcurrency int `mapstructure:"max_concurrency"`
	// RequestTimeout is the deadline of one backend call; a backend that
	// misses it is answered 504. The streamed export has none.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`

	Cache CacheConfig `mapstructure:"cache"`

	// CORSAllowedOrigins are the browser origins allowed to call the API
	// ("*" for any); empty disables CORS.
	CORSAllowedOrigins []string `mapstructure:"cors_allowed_origins"`
	// TLSCertFile and TLSKeyFile enable HTTPS with HTTP/2; without them the
	// gateway speaks HTTP/1.1 and h2c.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// ShutdownGrace bounds the wait for requests in flight at shutdown.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
}

// RateLimitConfig are the quotas in requests per minute; 0 means unlimited.
type RateLimitConfig struct {
	AnonymousPerMinute int `mapstructure:"anonymous_per_minute"`
	UserPerMinute      int `mapstructure:"user_per_minute"`
	AdminPerMinute     int `mapstructure:"admin_per_minute"`
	// TokenPerMinute is the token endpoint's quota per client address.
	TokenPerMinute int `mapstructure:"token_per_minute"`
}

// CacheConfig tunes response caching.
type CacheConfig struct {
	// MaxBytes bounds the in-process cache of rendered responses (0 turns
	// it off).
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MaxAge is how long anonymous responses are fresh (Cache-Control
	// max-age), in this cache and downstream.
	MaxAge time.Duration `mapstructure:"max_age"`
	// StaleWhileRevalidate and StaleIfError are the Cache-Control
	// extensions offered to shared caches, and honoured by the in-process
	// cache for list-like responses (see internal/respcache).
	StaleWhileRevalidate time.Duration `mapstructure:"stale_while_revalidate"`
	StaleIfError         time.Duration `mapstructure:"stale_if_error"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	return Config{
		Common: config.DefaultCommon(),
		Settings: Settings{
			HTTPAddr:     ":8080",
			AdminAddr:    ":9190",
			CatalogAddr:  "dns:///catalog:9091",
			SearchAddr:   "dns:///search:9092",
			AuthAddr:     "dns:///auth:9093",
			AuthIssuer:   "https://marquee.dev",
			AuthAudience: "marquee-api",
			ClientID:     "gateway",
			RateLimit: RateLimitConfig{
				AnonymousPerMinute: 60,
				UserPerMinute:      600,
				AdminPerMinute:     6000,
				TokenPerMinute:     10,
			},
			MaxConcurrency: 512,
			RequestTimeout: 10 * time.Second,
			Cache: CacheConfig{
				MaxBytes:             64 << 20,
				MaxAge:               30 * time.Second,
				StaleWhileRevalidate: 30 * time.Second,
				StaleIfError:         5 * time.Minute,
			},
			ShutdownGrace: 10 * time.Second,
		},
	}
}

func (c Config) validate() error {
	var errs []error
	for key, v := range map[string]string{
		"gateway.http_addr": c.HTTPAddr, "gateway.catalog_addr": c.CatalogAddr,
		"gateway.search_addr": c.SearchAddr, "gateway.auth_addr": c.AuthAddr,
	} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", key))
		}
	}
	for key, v := range map[string]int{
		"gateway.ratelimit.anonymous_per_minute": c.RateLimit.AnonymousPerMinute,
		"gateway.ratelimit.user_per_minute":      c.RateLimit.UserPerMinute,
		"gateway.ratelimit.admin_per_minute":     c.RateLimit.AdminPerMinute,
		"gateway.ratelimit.token_per_minute":     c.RateLimit.TokenPerMinute,
		"gateway.max_concurrency":                c.MaxConcurrency,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (0 means unlimited)", key))
		}
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("gateway.request_timeout must be positive"))
	}
	if c.Cache.MaxBytes < 0 || c.Cache.MaxAge < 0 || c.Cache.StaleWhileRevalidate < 0 || c.Cache.StaleIfError < 0 {
		errs = append(errs, errors.New("gateway.cache.* must not be negative"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("gateway.tls_cert_file and gateway.tls_key_file go together"))
	}
	if _, err := authn.ParsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("gateway.trusted_proxies: %w", err))
	}
	return errors.Join(errs...)
}
