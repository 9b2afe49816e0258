package app

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/marquee-dev/marquee/services/auth/internal/throttle"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Config is the auth service's configuration: the shared keys at the top
// level and the service's own under "auth." (see DefaultConfig).
type Config struct {
	config.Common `mapstructure:",squash"`
	// Settings is embedded so its fields read as cfg.GRPCAddr while their
	// keys are auth.grpc_addr and so on.
	Settings `mapstructure:"auth"`
}

// Settings are the keys under "auth.".
type Settings struct {
	// GRPCAddr is where AuthService listens ("127.0.0.1:0" picks a port;
	// see WithListening).
	GRPCAddr string `mapstructure:"grpc_addr"`
	// AdminAddr serves /metrics, /healthz and /readyz; "" disables it.
	AdminAddr string         `mapstructure:"admin_addr"`
	Mongo     mongodb.Config `mapstructure:"mongo"`

	// Issuer and Audience go into every token as iss and aud.
	Issuer   string `mapstructure:"issuer"`
	Audience string `mapstructure:"audience"`
	// AccessTokenTTL is the lifetime of user access tokens, and so the
	// bound on how long a disabled user's tokens keep working elsewhere.
	AccessTokenTTL time.Duration `mapstructure:"access_token_ttl"`
	// RefreshTokenTTL is the lifetime of one refresh token (each use
	// issues a new one).
	RefreshTokenTTL time.Duration `mapstructure:"refresh_token_ttl"`
	// ServiceTokenTTL is the lifetime of service tokens.
	ServiceTokenTTL time.Duration `mapstructure:"service_token_ttl"`
	// KeyRotationInterval is how long a signing key signs before the next
	// takes over.
	KeyRotationInterval time.Duration `mapstructure:"key_rotation_interval"`
	// KeyEncryptionKey (base64 of 32 bytes) seals the signing keys' private
	// halves in MongoDB. Empty means a random key for this process only,
	// with a warning: keys then do not survive a restart.
	KeyEncryptionKey string `mapstructure:"key_encryption_key" secret:"true"`
	// ServiceClients lists the services allowed the client_credentials
	// grant, as "id=secret" items ("search=S1,gateway=S2").
	ServiceClients []string `mapstructure:"service_clients" secret:"true"`
	// AdminEmail, when set, names an administrator ensured at start-up;
	// AdminPassword is its password when it has to be created (empty means
	// generated and logged once).
	AdminEmail    string `mapstructure:"admin_email"`
	AdminPassword string `mapstructure:"admin_password" secret:"true"`
	// TrustedProxies (CIDR list) are the peers whose x-forwarded-for
	// metadata names the client address used for throttling.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// APIKeyCacheTTL is how long this service's own verifier remembers an
	// API key (at most 30s).
	APIKeyCacheTTL time.Duration  `mapstructure:"api_key_cache_ttl"`
	Throttle       ThrottleConfig `mapstructure:"throttle"`
}

// ThrottleConfig sets the attempt limits (token buckets: burst, then one more
// every interval; a zero burst disables a limit).
type ThrottleConfig struct {
	// LoginAccount limits failed sign-ins per account.
	LoginAccount throttle.Limit `mapstructure:"login_account"`
	// LoginAddress limits sign-in and client_credentials attempts per
	// client address.
	LoginAddress throttle.Limit `mapstructure:"login_address"`
	// SignupAddress limits registrations per client address.
	SignupAddress throttle.Limit `mapstructure:"signup_address"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	mc := mongodb.DefaultConfig()
	mc.Database = "auth"
	return Config{
		Common: config.DefaultCommon(),
		Settings: Settings{
			GRPCAddr:            ":9093",
			AdminAddr:           ":9193",
			Mongo:               mc,
			Issuer:              "https://marquee.dev",
			Audience:            "marquee-api",
			AccessTokenTTL:      15 * time.Minute,
			RefreshTokenTTL:     720 * time.Hour,
			ServiceTokenTTL:     5 * time.Minute,
			KeyRotationInterval: 720 * time.Hour,
			ServiceClients:      []string{},
			TrustedProxies:      []string{},
			APIKeyCacheTTL:      authn.MaxAPIKeyCacheTTL,
			Throttle: ThrottleConfig{
				LoginAccount:  throttle.Limit{Burst: 10, Every: time.Minute},
				LoginAddress:  throttle.Limit{Burst: 60, Every: 2 * time.Second},
				SignupAddress: throttle.Limit{Burst: 10, Every: 6 * time.Minute},
			},
		},
	}
}

// parseServiceClients reads "id=secret" items.
func parseServiceClients(items []string) (map[string]string, error) {
	out := make(map[string]string, len(items))
	for _, it := range items {
		id, secret, ok := strings.Cut(strings.TrimSpace(it), "=")
		id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
		if !ok || id == "" || secret == "" {
			// The item holds a secret: name its position, not its text.
			return nil, errors.New("auth.service_clients: every item must be id=secret")
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("auth.service_clients: client %q is listed twice", id)
		}
		out[id] = secret
	}
	return out, nil
}

func (c Config) validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("auth.grpc_addr is required"))
	}
	if c.Issuer == "" || c.Audience == "" {
		errs = append(errs, errors.New("auth.issuer and auth.audience are required"))
	}
	for name, d := range map[string]time.Duration{
		"auth.access_token_ttl": c.AccessTokenTTL, "auth.refresh_token_ttl": c.RefreshTokenTTL,
		"auth.service_token_ttl": c.ServiceTokenTTL, "auth.key_rotation_interval": c.KeyRotationInterval,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.APIKeyCacheTTL > authn.MaxAPIKeyCacheTTL {
		errs = append(errs, fmt.Errorf("auth.api_key_cache_ttl must be at most %s", authn.MaxAPIKeyCacheTTL))
	}
	return errors.Join(errs...)
}

func parseProxies(list []string) ([]netip.Prefix, error) {
	p, err := authn.ParsePrefixes(list)
	if err != nil {
		return nil, fmt.Errorf("auth.trusted_proxies: %w", err)
	}
	return p, nil
}
