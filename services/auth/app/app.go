// Package app runs the auth service: it wires configuration, MongoDB, the
// signing keys, the domain services and the gRPC and admin servers, and
// serves until its context ends. cmd/auth, the dev stack and the integration
// tests all start the service through Run.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/auth/internal/apikey"
	apikeystore "github.com/marquee-dev/marquee/services/auth/internal/apikey/mongostore"
	"github.com/marquee-dev/marquee/services/auth/internal/grpcapi"
	"github.com/marquee-dev/marquee/services/auth/internal/identity"
	identitystore "github.com/marquee-dev/marquee/services/auth/internal/identity/mongostore"
	"github.com/marquee-dev/marquee/services/auth/internal/throttle"
	"github.com/marquee-dev/marquee/services/auth/internal/token"
	tokenstore "github.com/marquee-dev/marquee/services/auth/internal/token/mongostore"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/grpcserver"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/serve"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// ServiceName names the service in telemetry and logs.
const ServiceName = "auth"

// Option changes how Run runs.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	telemetry   *telemetry.Provider
	mongo       *mongodb.Client
	now         func() time.Time
	onListening func(grpcAddr, adminAddr string)
	hasher      *identity.Hasher
}

// WithLogger sends logs to l instead of stderr.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTelemetry uses tp instead of setting telemetry up (and does not shut it
// down).
func WithTelemetry(tp *telemetry.Provider) Option { return func(o *options) { o.telemetry = tp } }

// WithMongo uses an already connected client instead of cfg.Mongo (and does
// not disconnect it).
func WithMongo(c *mongodb.Client) Option { return func(o *options) { o.mongo = c } }

// WithClock replaces the clock of tokens, keys, refresh tokens and throttles,
// so tests can move time.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithListening calls f with the bound gRPC and admin addresses once both are
// listening (adminAddr is "" when the admin server is off); useful when the
// configured addresses end in ":0".
func WithListening(f func(grpcAddr, adminAddr string)) Option {
	return func(o *options) { o.onListening = f }
}

// WithPasswordHasher replaces the password hasher (tests of throughput).
func WithPasswordHasher(h *identity.Hasher) Option { return func(o *options) { o.hasher = h } }

// Run serves the auth service until ctx ends and returns nil after a clean
// shutdown.
func Run(ctx context.Context, cfg Config, opts ...Option) (err error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	logger := serve.Logger(o.logger, cfg.Log, ServiceName)
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("checking config: %w", err)
	}
	logger.InfoContext(ctx, "starting", slog.Any("config", config.Redacted(cfg)))

	clients, err := parseServiceClients(cfg.ServiceClients)
	if err != nil {
		return err
	}
	proxies, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	kek, err := keyEncryptionKey(ctx, cfg, logger)
	if err != nil {
		return err
	}

	tp, shutdownTelemetry, err := serve.Telemetry(ctx, ServiceName, cfg.Telemetry, o.telemetry)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, shutdownTelemetry(ctx)) }()

	mc := o.mongo
	if mc == nil {
		mc, err = mongodb.Connect(ctx, cfg.Mongo, tp, logger)
		if err != nil {
			return err
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = mc.Disconnect(dctx)
		}()
	}

	users := identitystore.New(mc)
	tokens := tokenstore.New(mc)
	keyStore := apikeystore.New(mc)
	for _, ix := range []func(context.Context) error{users.EnsureIndexes, tokens.EnsureIndexes, keyStore.EnsureIndexes} {
		if err := ix(ctx); err != nil {
			return err
		}
	}

	userSvc, err := identity.NewService(users, identity.Options{Hasher: o.hasher, Now: o.now})
	if err != nil {
		return err
	}
	keys, err := token.NewKeys(tokens, kek, token.KeyOptions{
		RotationInterval: cfg.KeyRotationInterval,
		MaxTokenTTL:      max(cfg.AccessTokenTTL, cfg.ServiceTokenTTL),
		Leeway:           authn.DefaultLeeway,
		Now:              o.now,
		Logger:           logger,
	})
	if err != nil {
		return err
	}
	if err := keys.Ensure(ctx); err != nil {
		return err
	}
	apiKeys := apikey.NewService(keyStore, func(ctx context.Context, id string) (apikey.Owner, bool, error) {
		u, err := userSvc.Get(ctx, id)
		if errors.Is(err, identity.ErrUserNotFound) {
			return apikey.Owner{}, false, nil
		}
		if err != nil {
			return apikey.Owner{}, false, err
		}
		return apikey.Owner{Role: u.Role, Active: u.Active()}, true, nil
	}, o.now)
	refresher := token.NewRefresher(tokens, mc.Locks, cfg.RefreshTokenTTL, o.now)
	issuer := token.NewIssuer(keys, cfg.Issuer, cfg.Audience, o.now)

	if err := bootstrapAdmin(ctx, cfg, userSvc, logger); err != nil {
		return err
	}

	verifier := authn.NewVerifierWithBackend(localBackend{keys: keys, apiKeys: apiKeys}, authn.VerifierConfig{
		Issuer:                 cfg.Issuer,
		Audience:               cfg.Audience,
		APIKeyCacheTTL:         cfg.APIKeyCacheTTL,
		JWKSRefreshMinInterval: time.Second, // a local call: cheap
		JWKSMaxAge:             time.Minute,
		TrustedProxies:         proxies,
		Now:                    o.now,
	})
	api := grpcapi.New(grpcapi.Deps{
		Users: userSvc, APIKeys: apiKeys, Keys: keys, Issuer: issuer, Refresh: refresher,
		AccessTokenTTL: cfg.AccessTokenTTL, ServiceTokenTTL: cfg.ServiceTokenTTL,
		ServiceClients: clients,
		Throttles: grpcapi.Throttles{
			LoginAccount:  throttle.New(cfg.Throttle.LoginAccount, o.now),
			LoginAddress:  throttle.New(cfg.Throttle.LoginAddress, o.now),
			SignupAddress: throttle.New(cfg.Throttle.SignupAddress, o.now),
		},
		Logger: logger,
	})
	srv := grpcserver.New(grpcserver.Options{
		Logger:             logger,
		Telemetry:          tp,
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{verifier.UnaryServerInterceptor()},
		StreamInterceptors: []grpc.StreamServerInterceptor{verifier.StreamServerInterceptor()},
	})
	authv1.RegisterAuthServiceServer(srv, api)

	lis, err := serve.Listen(ctx, cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	return serve.Run(ctx, logger, lis, o.onListening, []serve.Task{
		func(ctx context.Context) error { return srv.Serve(ctx, lis.Main) },
		serve.Admin(lis, tp.MetricsHandler(), func(ctx context.Context) error { return mc.Ping(ctx, nil) }),
		serve.Every(min(cfg.KeyRotationInterval/10, time.Minute), logger, "maintaining signing keys", keys.Maintain),
		serve.Every(time.Hour, logger, "deleting expired refresh tokens", refresher.Cleanup),
	})
}

// keyEncryptionKey parses auth.key_encryption_key, or makes a key for this
// process when it is empty.
func keyEncryptionKey(ctx context.Context, cfg Config, logger *slog.Logger) ([]byte, error) {
	if cfg.KeyEncryptionKey == "" {
		logger.WarnContext(ctx, "auth.key_encryption_key is not set: using a random key-encryption key for this process only; "+
			"signing keys will not survive a restart (set MARQUEE_AUTH_KEY_ENCRYPTION_KEY to 32 random bytes in base64 in production)")
		kek := make([]byte, token.KEKSize)
		_, _ = rand.Read(kek) // crypto/rand.Read never fails
		return kek, nil
	}
	kek, err := token.ParseKEK(cfg.KeyEncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("auth.key_encryption_key: %w", err)
	}
	return kek, nil
}

// bootstrapAdmin ensures the administrator named by auth.admin_email exists.
func bootstrapAdmin(ctx context.Context, cfg Config, users *identity.Service, logger *slog.Logger) error {
	if cfg.AdminEmail == "" {
		return nil
	}
	u, generated, err := users.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("bootstrapping the admin user: %w", err)
	}
	if generated != "" {
		// Shown once, on purpose: there is no other way to learn it. Change
		// it, or set auth.admin_password, before exposing the service.
		logger.WarnContext(ctx, "created the admin user with a generated password; it is shown only this once, store it now",
			slog.String("user_id", u.ID), slog.String("email", u.Email), slog.String("generated_password", generated))
		return nil
	}
	logger.InfoContext(ctx, "admin user present", slog.String("user_id", u.ID))
	return nil
}

// localBackend answers the service's own verifier without a network hop.
type localBackend struct {
	keys    *token.Keys
	apiKeys *apikey.Service
}

func (b localBackend) JWKS(ctx context.Context) ([]*authv1.Jwk, error) { return b.keys.JWKS(ctx) }

func (b localBackend) ResolveAPIKey(ctx context.Context, key string) (authn.Principal, error) {
	_, p, err := b.apiKeys.Resolve(ctx, key)
	if errors.Is(err, apikey.ErrNotFound) {
		return authn.Principal{}, fmt.Errorf("%w: %w", authn.ErrUnauthenticated, err)
	}
	return p, err
}
