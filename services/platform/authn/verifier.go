package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

// MaxAPIKeyCacheTTL bounds how long a Verifier remembers an API key: the
// promise that a revoked key, or the key of a disabled user, stops working
// within 30 seconds rests on it.
const MaxAPIKeyCacheTTL = 30 * time.Second

// Defaults of VerifierConfig.
const (
	DefaultJWKSRefreshMinInterval = 30 * time.Second
	DefaultJWKSMaxAge             = 10 * time.Minute
	DefaultLeeway                 = 30 * time.Second
	DefaultTokenCacheSize         = 10_000
	DefaultAPIKeyCacheSize        = 10_000
)

// maxCredentialLen bounds a credential before any parsing, so an oversized
// header costs nothing.
const maxCredentialLen = 4096

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer and Audience are required of every token (auth.issuer and
	// auth.audience).
	Issuer, Audience string
	// APIKeyCacheTTL is how long an API key's resolution is remembered;
	// 0 means MaxAPIKeyCacheTTL, and larger values are lowered to it.
	APIKeyCacheTTL time.Duration
	// JWKSRefreshMinInterval is the least time between two JWKS fetches
	// caused by unknown key ids (0 means DefaultJWKSRefreshMinInterval; a
	// negative value means no limit, for tests).
	JWKSRefreshMinInterval time.Duration
	// JWKSMaxAge is how long a fetched JWKS is used before it is fetched
	// again, so keys auth no longer publishes are forgotten (0 means
	// DefaultJWKSMaxAge).
	JWKSMaxAge time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat (0 means
	// DefaultLeeway; a negative value means none).
	Leeway time.Duration
	// TokenCacheSize bounds the cache of verified access tokens, which saves
	// the signature check when a token comes again (0 means
	// DefaultTokenCacheSize; negative disables the cache).
	TokenCacheSize int
	// TrustedProxies are the peers whose `x-forwarded-for` metadata is
	// believed for Principal.ClientAddr.
	TrustedProxies []netip.Prefix
	// Now is the clock (nil means time.Now); tests move it.
	Now func() time.Time
}

// Backend is what a Verifier asks auth: its public keys and the owner of an API
// key. NewVerifier uses AuthService over gRPC; the auth service itself passes
// its own implementation to NewVerifierWithBackend.
type Backend interface {
	// JWKS returns the public keys that may have signed a valid token.
	JWKS(ctx context.Context) ([]*authv1.Jwk, error)
	// ResolveAPIKey returns the owner of key; the error wraps
	// ErrUnauthenticated when the key is unknown, revoked or its owner
	// disabled, and anything else when the answer could not be had.
	ResolveAPIKey(ctx context.Context, key string) (Principal, error)
}

// Verifier checks credentials. It is safe for concurrent use.
type Verifier struct {
	backend Backend
	cfg     VerifierConfig
	parser  *jwt.Parser

	keys      atomic.Pointer[keySet]
	refreshMu sync.Mutex
	lastFetch time.Time // guarded by refreshMu

	tokens  *otter.Cache[string, verifiedToken] // nil when disabled
	apiKeys *otter.Cache[[sha256.Size]byte, resolvedKey]
}

type keySet struct {
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

type verifiedToken struct {
	p   Principal
	exp time.Time
}

type resolvedKey struct {
	p       Principal
	err     error // wraps ErrUnauthenticated for a negative answer
	expires time.Time
}

// NewVerifier returns a Verifier that fetches auth's JWKS through
// AuthService.GetJwks on conn and resolves API keys through
// AuthService.ResolveApiKey, authenticated with ts (a service token).
func NewVerifier(conn grpc.ClientConnInterface, ts *TokenSource, cfg VerifierConfig) *Verifier {
	return NewVerifierWithBackend(&grpcBackend{client: authv1.NewAuthServiceClient(conn), ts: ts}, cfg)
}

// NewVerifierWithBackend returns a Verifier that asks b.
func NewVerifierWithBackend(b Backend, cfg VerifierConfig) *Verifier {
	if cfg.APIKeyCacheTTL <= 0 || cfg.APIKeyCacheTTL > MaxAPIKeyCacheTTL {
		cfg.APIKeyCacheTTL = MaxAPIKeyCacheTTL
	}
	if cfg.JWKSRefreshMinInterval == 0 {
		cfg.JWKSRefreshMinInterval = DefaultJWKSRefreshMinInterval
	}
	if cfg.JWKSMaxAge <= 0 {
		cfg.JWKSMaxAge = DefaultJWKSMaxAge
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{backend: b, cfg: cfg}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)
	if cfg.TokenCacheSize > 0 {
		v.tokens = otter.Must(&otter.Options[string, verifiedToken]{
			MaximumSize: cfg.TokenCacheSize,
			// A cached token is re-checked against its own expiry on every
			// hit; this bound only makes sure a key withdrawn from the JWKS
			// stops being trusted through the cache soon.
			ExpiryCalculator: otter.ExpiryWriting[string, verifiedToken](time.Minute),
		})
	}
	v.apiKeys = otter.Must(&otter.Options[[sha256.Size]byte, resolvedKey]{
		MaximumSize:      DefaultAPIKeyCacheSize,
		ExpiryCalculator: otter.ExpiryWriting[[sha256.Size]byte, resolvedKey](cfg.APIKeyCacheTTL),
	})
	return v
}

// VerifyToken checks an access token and returns its principal. The error
// wraps ErrUnauthenticated when the token is not valid, ErrUnavailable when
// the keys could not be fetched.
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (Principal, error) {
	if raw == "" || len(raw) > maxCredentialLen {
		return Principal{}, fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	now := v.cfg.Now()
	if v.tokens != nil {
		if t, ok := v.tokens.GetIfPresent(raw); ok && now.Before(t.exp.Add(v.cfg.Leeway)) {
			return t.p, nil
		}
	}

	var claims Claims
	var keyErr error
	_, err := v.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no key id")
		}
		key, err := v.key(ctx, kid)
		if err != nil {
			keyErr = err
			return nil, err
		}
		return key, nil
	})
	if err != nil {
		if errors.Is(keyErr, ErrUnavailable) {
			return Principal{}, keyErr
		}
		return Principal{}, fmt.Errorf("%w: %s", ErrUnauthenticated, tokenProblem(err))
	}
	if claims.Subject == "" || claims.ExpiresAt == nil {
		return Principal{}, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	switch claims.Role {
	case RoleUser, RoleAdmin, RoleService:
	default:
		return Principal{}, fmt.Errorf("%w: token has an unknown role", ErrUnauthenticated)
	}
	p := Principal{Subject: claims.Subject, Role: claims.Role}
	if v.tokens != nil && (claims.NotBefore == nil || !claims.NotBefore.After(now)) {
		v.tokens.Set(raw, verifiedToken{p: p, exp: claims.ExpiresAt.Time})
	}
	return p, nil
}

// tokenProblem names what is wrong with a token without echoing any of it.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token not issued for this service"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signature not valid"
	default:
		return "token not valid"
	}
}

// key returns the public key kid, fetching the JWKS when the cached set is
// missing, too old, or does not hold kid.
func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	now := v.cfg.Now()
	if ks := v.keys.Load(); ks != nil && now.Sub(ks.fetched) < v.cfg.JWKSMaxAge {
		if k, ok := ks.keys[kid]; ok {
			return k, nil
		}
	}
	ks, err := v.refresh(ctx, kid)
	if err != nil {
		return nil, err
	}
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown key id")
}

// refresh fetches the JWKS unless another caller just did, or the last fetch
// was less than JWKSRefreshMinInterval ago; it returns the newest set.
func (v *Verifier) refresh(ctx context.Context, kid string) (*keySet, error) {
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	now := v.cfg.Now()
	cur := v.keys.Load()
	if cur != nil {
		if _, ok := cur.keys[kid]; ok && now.Sub(cur.fetched) < v.cfg.JWKSMaxAge {
			return cur, nil // fetched by another caller meanwhile
		}
		if v.cfg.JWKSRefreshMinInterval > 0 && now.Sub(v.lastFetch) < v.cfg.JWKSRefreshMinInterval {
			return cur, nil
		}
	}
	v.lastFetch = now
	jwks, err := v.backend.JWKS(ctx)
	if err != nil {
		if cur != nil {
			return cur, nil // keep verifying with the keys we have
		}
		return nil, fmt.Errorf("%w: fetching the JWKS: %w", ErrUnavailable, err)
	}
	ks := &keySet{keys: make(map[string]ed25519.PublicKey, len(jwks)), fetched: now}
	for _, k := range jwks {
		if pub, ok := parseJWK(k); ok {
			ks.keys[k.GetKid()] = pub
		}
	}
	v.keys.Store(ks)
	return ks, nil
}

// parseJWK accepts only Ed25519 signing keys for EdDSA (RFC 8037).
func parseJWK(k *authv1.Jwk) (ed25519.PublicKey, bool) {
	if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetKid() == "" {
		return nil, false
	}
	if alg := k.GetAlg(); alg != "" && alg != "EdDSA" {
		return nil, false
	}
	if use := k.GetUse(); use != "" && use != "sig" {
		return nil, false
	}
	x, err := base64.RawURLEncoding.DecodeString(k.GetX())
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(x), true
}

// ResolveAPIKey returns the owner of an API key. The error wraps
// ErrUnauthenticated when the key is not valid, ErrUnavailable when auth could
// not answer. Answers, negative ones included, are cached for APIKeyCacheTTL.
func (v *Verifier) ResolveAPIKey(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, APIKeyPrefix) || len(key) > 256 || len(key) < len(APIKeyPrefix)+16 {
		return Principal{}, fmt.Errorf("%w: malformed API key", ErrUnauthenticated)
	}
	// The cache is keyed by the key's hash so that no secret sits in memory
	// longer than the request that carried it.
	h := sha256.Sum256([]byte(key))
	now := v.cfg.Now()
	if r, ok := v.apiKeys.GetIfPresent(h); ok && now.Before(r.expires) {
		return r.p, r.err
	}
	p, err := v.backend.ResolveAPIKey(ctx, key)
	switch {
	case err == nil:
		if p.Subject == "" || (p.Role != RoleUser && p.Role != RoleAdmin) {
			return Principal{}, fmt.Errorf("%w: resolving API key: unexpected answer", ErrUnavailable)
		}
	case errors.Is(err, ErrUnauthenticated):
		err = fmt.Errorf("%w: API key not valid", ErrUnauthenticated)
		p = Principal{}
	default:
		return Principal{}, fmt.Errorf("%w: resolving API key: %w", ErrUnavailable, err)
	}
	v.apiKeys.Set(h, resolvedKey{p: p, err: err, expires: now.Add(v.cfg.APIKeyCacheTTL)})
	return p, err
}

// Authenticate reads `authorization: Bearer <token>` or `x-api-key: <key>`
// from the incoming metadata and returns ctx with the caller's principal. No
// credential means anonymous; a bad, expired or forged one, or several, is
// an UNAUTHENTICATED status (reason UNAUTHENTICATED), never anonymous. When
// auth cannot be reached to check the credential the status is UNAVAILABLE.
func (v *Verifier) Authenticate(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	auths := md.Get("authorization")
	keys := md.Get("x-api-key")
	addr := ClientAddr(ctx, v.cfg.TrustedProxies)

	var p Principal
	var err error
	switch {
	case len(auths) == 0 && len(keys) == 0:
		return NewContext(ctx, Principal{Role: RoleAnonymous, ClientAddr: addr}), nil
	case len(auths)+len(keys) > 1:
		// Two credentials would leave it unclear whose call this is.
		return ctx, unauthenticated("send exactly one credential")
	case len(auths) == 1:
		scheme, tok, ok := strings.Cut(strings.TrimSpace(auths[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ctx, unauthenticated("the authorization metadata must be \"Bearer <token>\"")
		}
		p, err = v.VerifyToken(ctx, strings.TrimSpace(tok))
	default:
		p, err = v.ResolveAPIKey(ctx, strings.TrimSpace(keys[0]))
	}
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return ctx, apierr.New(codes.Unavailable, ReasonAuthUnavailable, "credentials cannot be checked right now")
		}
		msg := strings.TrimPrefix(err.Error(), ErrUnauthenticated.Error()+": ")
		return ctx, unauthenticated(msg)
	}
	p.ClientAddr = addr
	return NewContext(ctx, p), nil
}

func unauthenticated(msg string) error {
	return apierr.New(codes.Unauthenticated, ReasonUnauthenticated, msg)
}

// UnaryServerInterceptor authenticates every unary call with Authenticate.
func (v *Verifier) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := v.Authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authenticates every streaming call with
// Authenticate.
func (v *Verifier) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := v.Authenticate(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
	}
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }

// grpcBackend asks AuthService over gRPC.
type grpcBackend struct {
	client authv1.AuthServiceClient
	ts     *TokenSource
}

func (b *grpcBackend) JWKS(ctx context.Context) ([]*authv1.Jwk, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := b.client.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		return nil, fmt.Errorf("calling GetJwks: %w", err)
	}
	return resp.GetKeys(), nil
}

func (b *grpcBackend) ResolveAPIKey(ctx context.Context, key string) (Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var opts []grpc.CallOption
	if b.ts != nil {
		opts = append(opts, grpc.PerRPCCredentials(b.ts.PerRPCCredentials()))
	}
	resp, err := b.client.ResolveApiKey(ctx, &authv1.ResolveApiKeyRequest{Key: key}, opts...)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return Principal{}, fmt.Errorf("%w: API key not valid", ErrUnauthenticated)
		}
		return Principal{}, fmt.Errorf("calling ResolveApiKey: %w", err)
	}
	return Principal{Subject: resp.GetUserId(), Role: RoleFromProto(resp.GetRole()), APIKeyID: resp.GetKeyId()}, nil
}
