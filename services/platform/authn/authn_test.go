package authn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

const (
	issuer   = "https://marquee.test"
	audience = "marquee-test"
)

// fakeAuth is a small AuthService with keys and API keys held in memory, served
// over real gRPC, so the verifier is tested exactly as services use it.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer

	mu       sync.Mutex
	keys     map[string]ed25519.PrivateKey
	apiKeys  map[string]authn.Principal
	verifier *authn.Verifier // authenticates calls to the fake itself

	jwksCalls    atomic.Int64
	resolveCalls atomic.Int64
	tokenCalls   atomic.Int64
	tokenTTL     time.Duration
	seenAuth     chan string // authorization metadata seen by ResolveApiKey
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{
		keys:     map[string]ed25519.PrivateKey{},
		apiKeys:  map[string]authn.Principal{},
		tokenTTL: 5 * time.Minute,
		seenAuth: make(chan string, 100),
	}
}

func (f *fakeAuth) addKey(t testing.TB, kid string) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[kid] = priv
	return priv
}

func (f *fakeAuth) removeKey(kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, kid)
}

func (f *fakeAuth) setAPIKey(key string, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == nil {
		delete(f.apiKeys, key)
		return
	}
	f.apiKeys[key] = *p
}

func (f *fakeAuth) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	f.jwksCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &authv1.GetJwksResponse{}
	for kid, priv := range f.keys {
		resp.Keys = append(resp.Keys, &authv1.Jwk{
			Kty: "OKP", Crv: "Ed25519", Use: "sig", Alg: "EdDSA", Kid: kid,
			X: base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)),
		})
	}
	return resp, nil
}

func (f *fakeAuth) ResolveApiKey(ctx context.Context, req *authv1.ResolveApiKeyRequest) (*authv1.ResolveApiKeyResponse, error) {
	f.resolveCalls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		select {
		case f.seenAuth <- v[0]:
		default:
		}
	}
	if err := authn.Require(ctx, authn.RoleService); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.apiKeys[req.GetKey()]
	if !ok {
		return nil, status.Error(codes.NotFound, "API key not found")
	}
	return &authv1.ResolveApiKeyResponse{UserId: p.Subject, Role: p.Role.Proto(), KeyId: p.APIKeyID}, nil
}

func (f *fakeAuth) CreateToken(_ context.Context, req *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	f.tokenCalls.Add(1)
	if req.GetGrantType() != "client_credentials" || req.GetClientId() != "svc" || req.GetClientSecret() != "s3cret-s3cret" {
		return nil, status.Error(codes.Unauthenticated, "bad client")
	}
	f.mu.Lock()
	var kid string
	var priv ed25519.PrivateKey
	for k, p := range f.keys {
		kid, priv = k, p
		break
	}
	f.mu.Unlock()
	now := time.Now()
	tok := signToken(nil, priv, kid, jwt.SigningMethodEdDSA, claims("svc", authn.RoleService, now, f.tokenTTL))
	return &authv1.CreateTokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(f.tokenTTL / time.Second)}, nil
}

// GetCurrentUser reports the principal the interceptor put in the context.
func (f *fakeAuth) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.User, error) {
	p := authn.FromContext(ctx)
	return &authv1.User{Id: p.Subject, DisplayName: p.Tier(), Email: p.APIKeyID + "|" + p.ClientAddr}, nil
}

// serve starts the fake on 127.0.0.1:0 with the verifier interceptor and
// returns a client connection to it.
func (f *fakeAuth) serve(t testing.TB, cfg authn.VerifierConfig) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ts := authn.NewTokenSource(conn, "svc", "s3cret-s3cret")
	f.verifier = authn.NewVerifier(conn, ts, cfg)
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(f.verifier.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(f.verifier.StreamServerInterceptor()),
	)
	authv1.RegisterAuthServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return conn
}

func claims(sub string, role authn.Role, now time.Time, ttl time.Duration) authn.Claims {
	return authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Role: role,
	}
}

func signToken(t testing.TB, key any, kid string, m jwt.SigningMethod, c authn.Claims) string {
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		if t == nil {
			panic(err) // unreachable with the fixed methods above
		}
		t.Fatal(err)
	}
	return s
}

// clock is a test clock that only moves when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func baseConfig(c *clock) authn.VerifierConfig {
	return authn.VerifierConfig{
		Issuer: issuer, Audience: audience,
		JWKSRefreshMinInterval: -1,
		Now:                    c.Now,
	}
}

func TestVerifyTokenRejectsForgeries(t *testing.T) {
	f := newFakeAuth()
	priv := f.addKey(t, "k1")
	pub := priv.Public().(ed25519.PublicKey)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{Issuer: issuer, Audience: audience, TokenCacheSize: -1, Now: c.Now})
	now := c.Now()
	good := claims("u_1", authn.RoleUser, now, 15*time.Minute)

	with := func(mut func(*authn.Claims)) authn.Claims {
		cl := claims("u_1", authn.RoleUser, now, 15*time.Minute)
		mut(&cl)
		return cl
	}
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hsTok := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, good)
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(pub))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The same key in JWK form, as an attacker reading the JWKS would use it.
	jwkX := []byte(base64.RawURLEncoding.EncodeToString(pub))
	hsJWK := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, good)
		tok.Header["kid"] = "k1"
		s, _ := tok.SignedString(jwkX)
		return s
	}()

	tests := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"valid", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, good), true},
		{"signed by another key", signToken(t, other, "k1", jwt.SigningMethodEdDSA, good), false},
		{"unknown kid", signToken(t, other, "k9", jwt.SigningMethodEdDSA, good), false},
		{"no kid", signToken(t, priv, "", jwt.SigningMethodEdDSA, good), false},
		{"alg none", noneTok, false},
		{"HS256 with the public key bytes", hsTok("k1"), false},
		{"HS256 with the JWK x value", hsJWK, false},
		{"expired", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-time.Hour))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
		})), false},
		{"not yet valid", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute))
		})), false},
		{"issued in the future", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(5 * time.Minute))
		})), false},
		{"no expiry", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) { c.ExpiresAt = nil })), false},
		{"wrong audience", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) {
			c.Audience = jwt.ClaimStrings{"someone-else"}
		})), false},
		{"no audience", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) { c.Audience = nil })), false},
		{"wrong issuer", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) { c.Issuer = "https://evil.test" })), false},
		{"unknown role", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) { c.Role = "root" })), false},
		{"anonymous role", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) { c.Role = authn.RoleAnonymous })), false},
		{"no subject", signToken(t, priv, "k1", jwt.SigningMethodEdDSA, with(func(c *authn.Claims) { c.Subject = "" })), false},
		{"garbage", "not.a.token", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.VerifyToken(t.Context(), tt.raw)
			if tt.ok {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				if p.Subject != "u_1" || p.Role != authn.RoleUser || p.Tier() != "user" {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			if !errors.Is(err, authn.ErrUnauthenticated) {
				t.Fatalf("VerifyToken err = %v, want ErrUnauthenticated (principal %+v)", err, p)
			}
		})
	}
}

func TestVerifyTokenExpiresEvenWhenCached(t *testing.T) {
	f := newFakeAuth()
	priv := f.addKey(t, "k1")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{Issuer: issuer, Audience: audience, Leeway: time.Second, Now: c.Now})
	tok := signToken(t, priv, "k1", jwt.SigningMethodEdDSA, claims("u_1", authn.RoleAdmin, c.Now(), time.Minute))
	for range 2 { // the second call is answered from the cache
		if p, err := v.VerifyToken(t.Context(), tok); err != nil || p.Role != authn.RoleAdmin {
			t.Fatalf("VerifyToken = %+v, %v", p, err)
		}
	}
	c.Advance(time.Minute + 2*time.Second)
	if _, err := v.VerifyToken(t.Context(), tok); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("VerifyToken after expiry err = %v, want ErrUnauthenticated", err)
	}
}

func TestJWKSRefreshOnUnknownKidIsRateLimited(t *testing.T) {
	f := newFakeAuth()
	priv := f.addKey(t, "k1")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{
		Issuer: issuer, Audience: audience, JWKSRefreshMinInterval: 30 * time.Second, Now: c.Now,
	})
	ctx := t.Context()
	if _, err := v.VerifyToken(ctx, signToken(t, priv, "k1", jwt.SigningMethodEdDSA, claims("u", authn.RoleUser, c.Now(), time.Hour))); err != nil {
		t.Fatal(err)
	}
	base := f.jwksCalls.Load()
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	for i := range 20 {
		tok := signToken(t, stranger, "forged-"+string(rune('a'+i)), jwt.SigningMethodEdDSA, claims("u", authn.RoleUser, c.Now(), time.Hour))
		if _, err := v.VerifyToken(ctx, tok); !errors.Is(err, authn.ErrUnauthenticated) {
			t.Fatalf("forged kid accepted: %v", err)
		}
	}
	if n := f.jwksCalls.Load() - base; n != 0 {
		t.Fatalf("JWKS fetched %d times within the minimum interval, want 0", n)
	}

	// A key rotated in by auth is picked up once the interval has passed.
	priv2 := f.addKey(t, "k2")
	c.Advance(31 * time.Second)
	tok2 := signToken(t, priv2, "k2", jwt.SigningMethodEdDSA, claims("u", authn.RoleUser, c.Now(), time.Hour))
	for range 5 {
		if _, err := v.VerifyToken(ctx, tok2); err != nil {
			t.Fatalf("token of the new key: %v", err)
		}
	}
	if n := f.jwksCalls.Load() - base; n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
}

func TestJWKSMaxAgeForgetsWithdrawnKeys(t *testing.T) {
	f := newFakeAuth()
	priv := f.addKey(t, "k1")
	f.addKey(t, "k2")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{
		Issuer: issuer, Audience: audience, JWKSMaxAge: time.Minute, TokenCacheSize: -1, Now: c.Now,
	})
	mk := func() string {
		return signToken(t, priv, "k1", jwt.SigningMethodEdDSA, claims("u", authn.RoleUser, c.Now(), time.Hour))
	}
	if _, err := v.VerifyToken(t.Context(), mk()); err != nil {
		t.Fatal(err)
	}
	f.removeKey("k1")
	c.Advance(2 * time.Minute)
	if _, err := v.VerifyToken(t.Context(), mk()); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("token of a withdrawn key: err = %v, want ErrUnauthenticated", err)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{Issuer: issuer, Audience: audience})
	tok := signToken(t, priv, "k1", jwt.SigningMethodEdDSA, claims("u", authn.RoleUser, time.Now(), time.Hour))
	if _, err := v.VerifyToken(t.Context(), tok); !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs("authorization", "Bearer "+tok))
	if _, err := v.Authenticate(ctx); status.Code(err) != codes.Unavailable {
		t.Fatalf("Authenticate err = %v, want UNAVAILABLE", err)
	}
}

func TestAPIKeyRevocationWithinCacheTTL(t *testing.T) {
	f := newFakeAuth()
	f.addKey(t, "k1")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	ts := authn.NewTokenSource(conn, "svc", "s3cret-s3cret")
	const ttl = 10 * time.Second
	v := authn.NewVerifier(conn, ts, authn.VerifierConfig{Issuer: issuer, Audience: audience, APIKeyCacheTTL: ttl, Now: c.Now})
	key := authn.APIKeyPrefix + "abcdefghijklmnopqrstuvwxyz234567"
	f.setAPIKey(key, &authn.Principal{Subject: "u_7", Role: authn.RoleAdmin, APIKeyID: "k_1"})
	ctx := t.Context()

	p, err := v.ResolveAPIKey(ctx, key)
	if err != nil || p.Subject != "u_7" || p.Role != authn.RoleAdmin || p.APIKeyID != "k_1" || p.Tier() != "admin" {
		t.Fatalf("ResolveAPIKey = %+v, %v", p, err)
	}
	if got := <-f.seenAuth; len(got) < len("Bearer x") || got[:7] != "Bearer " {
		t.Fatalf("ResolveApiKey was called with authorization %q, want a service token", got)
	}
	f.setAPIKey(key, nil) // revoked
	if _, err := v.ResolveAPIKey(ctx, key); err != nil {
		t.Fatalf("within the cache TTL the old answer stands: %v", err)
	}
	c.Advance(ttl + time.Millisecond)
	if _, err := v.ResolveAPIKey(ctx, key); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("after the cache TTL err = %v, want ErrUnauthenticated", err)
	}
	calls := f.resolveCalls.Load()
	if _, err := v.ResolveAPIKey(ctx, key); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("negative answer not cached: %v", err)
	}
	if f.resolveCalls.Load() != calls {
		t.Fatal("a negative answer was not cached")
	}
	if _, err := v.ResolveAPIKey(ctx, "not-a-key"); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("malformed key err = %v", err)
	}
}

func TestAPIKeyCacheTTLIsBounded(t *testing.T) {
	f := newFakeAuth()
	f.addKey(t, "k1")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	ts := authn.NewTokenSource(conn, "svc", "s3cret-s3cret")
	v := authn.NewVerifier(conn, ts, authn.VerifierConfig{Issuer: issuer, Audience: audience, APIKeyCacheTTL: time.Hour, Now: c.Now})
	key := authn.APIKeyPrefix + "bcdefghijklmnopqrstuvwxyz2345672"
	f.setAPIKey(key, &authn.Principal{Subject: "u_8", Role: authn.RoleUser, APIKeyID: "k_2"})
	if _, err := v.ResolveAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	f.setAPIKey(key, nil)
	c.Advance(authn.MaxAPIKeyCacheTTL + time.Millisecond)
	if _, err := v.ResolveAPIKey(t.Context(), key); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("a key revoked 30 s ago still resolves: %v", err)
	}
}

func TestAuthenticateOverGRPC(t *testing.T) {
	f := newFakeAuth()
	priv := f.addKey(t, "k1")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	client := authv1.NewAuthServiceClient(conn)
	key := authn.APIKeyPrefix + "cdefghijklmnopqrstuvwxyz23456723"
	f.setAPIKey(key, &authn.Principal{Subject: "u_9", Role: authn.RoleUser, APIKeyID: "k_9"})
	good := signToken(t, priv, "k1", jwt.SigningMethodEdDSA, claims("u_1", authn.RoleAdmin, c.Now(), time.Hour))
	expired := signToken(t, priv, "k1", jwt.SigningMethodEdDSA, claims("u_1", authn.RoleAdmin, c.Now().Add(-2*time.Hour), time.Hour))

	tests := []struct {
		name     string
		md       []string
		code     codes.Code
		sub      string
		tier     string
		apiKeyID string
	}{
		{"no credential is anonymous", nil, codes.OK, "", "anonymous", ""},
		{"bearer token", []string{"authorization", "Bearer " + good}, codes.OK, "u_1", "admin", ""},
		{"lower-case scheme", []string{"authorization", "bearer " + good}, codes.OK, "u_1", "admin", ""},
		{"api key", []string{"x-api-key", key}, codes.OK, "u_9", "user", "k_9"},
		{"expired token", []string{"authorization", "Bearer " + expired}, codes.Unauthenticated, "", "", ""},
		{"garbage token", []string{"authorization", "Bearer x.y.z"}, codes.Unauthenticated, "", "", ""},
		{"basic scheme", []string{"authorization", "Basic dTpw"}, codes.Unauthenticated, "", "", ""},
		{"empty bearer", []string{"authorization", "Bearer "}, codes.Unauthenticated, "", "", ""},
		{"unknown api key", []string{"x-api-key", authn.APIKeyPrefix + "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}, codes.Unauthenticated, "", "", ""},
		{"two credentials", []string{"authorization", "Bearer " + good, "x-api-key", key}, codes.Unauthenticated, "", "", ""},
		{"two tokens", []string{"authorization", "Bearer " + good, "authorization", "Bearer " + good}, codes.Unauthenticated, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
			}
			u, err := client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
			if status.Code(err) != tt.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tt.code)
			}
			if err != nil {
				if r := apierr.Reason(err); r != authn.ReasonUnauthenticated {
					t.Fatalf("reason = %q", r)
				}
				return
			}
			if u.GetId() != tt.sub || u.GetDisplayName() != tt.tier || u.GetEmail() != tt.apiKeyID+"|127.0.0.1" {
				t.Fatalf("principal = id %q tier %q key|addr %q", u.GetId(), u.GetDisplayName(), u.GetEmail())
			}
		})
	}
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name   string
		p      *authn.Principal
		roles  []authn.Role
		code   codes.Code
		reason string
	}{
		{"anyone lets anonymous in", nil, []authn.Role{authn.RoleAnonymous}, codes.OK, ""},
		{"anyone lets users in", &authn.Principal{Subject: "u", Role: authn.RoleUser}, []authn.Role{authn.RoleAnonymous}, codes.OK, ""},
		{"anonymous needs a credential", nil, []authn.Role{authn.RoleUser, authn.RoleAdmin}, codes.Unauthenticated, "UNAUTHENTICATED"},
		{"user is not admin", &authn.Principal{Subject: "u", Role: authn.RoleUser}, []authn.Role{authn.RoleAdmin}, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"service is not user", &authn.Principal{Subject: "s", Role: authn.RoleService}, []authn.Role{authn.RoleUser, authn.RoleAdmin}, codes.PermissionDenied, "PERMISSION_DENIED"},
		{"admin", &authn.Principal{Subject: "a", Role: authn.RoleAdmin}, []authn.Role{authn.RoleAdmin}, codes.OK, ""},
		{"service", &authn.Principal{Subject: "s", Role: authn.RoleService}, []authn.Role{authn.RoleService}, codes.OK, ""},
		{"no roles", &authn.Principal{Subject: "a", Role: authn.RoleAdmin}, nil, codes.PermissionDenied, "PERMISSION_DENIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.p != nil {
				ctx = authn.NewContext(ctx, *tt.p)
			}
			err := authn.Require(ctx, tt.roles...)
			if status.Code(err) != tt.code || apierr.Reason(err) != tt.reason {
				t.Fatalf("Require = %v (reason %q), want %v %q", err, apierr.Reason(err), tt.code, tt.reason)
			}
		})
	}
	if p := authn.FromContext(t.Context()); p.Role != authn.RoleAnonymous || p.Tier() != "anonymous" || !p.Anonymous() {
		t.Fatalf("FromContext of a bare context = %+v", p)
	}
}

func TestTokenSource(t *testing.T) {
	f := newFakeAuth()
	f.addKey(t, "k1")
	c := newClock()
	conn := f.serve(t, baseConfig(c))
	ts := authn.NewTokenSource(conn, "svc", "s3cret-s3cret")
	// A connection that sends the source's token on every call, including
	// the call that fetches the token, which must not recurse.
	lisAddr := conn.Target()
	self := authn.NewTokenSource(conn, "svc", "s3cret-s3cret")
	selfConn, err := grpc.NewClient(lisAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(self.PerRPCCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer selfConn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u, err := authv1.NewAuthServiceClient(selfConn).GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if u.GetId() != "svc" || u.GetDisplayName() != "service" {
		t.Fatalf("service principal = %q %q", u.GetId(), u.GetDisplayName())
	}

	before := f.tokenCalls.Load()
	t1, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := ts.Token(ctx)
	if err != nil || t1 != t2 {
		t.Fatalf("the token was not reused: %v", err)
	}
	if n := f.tokenCalls.Load() - before; n != 1 {
		t.Fatalf("CreateToken called %d times, want 1", n)
	}

	bad := authn.NewTokenSource(conn, "svc", "wrong-secret")
	if _, err := bad.Token(ctx); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong secret err = %v", err)
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := authn.ParsePrefixes([]string{"10.0.0.0/8", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer ignores the header", "203.0.113.9:4000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer without header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"trusted peer", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"right-most untrusted hop wins", "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several values", "127.0.0.1:4000", []string{"1.1.1.1", "198.51.100.2"}, "198.51.100.2"},
		{"malformed hop stops the walk", "10.1.2.3:4000", []string{"198.51.100.1, junk"}, "10.1.2.3"},
		{"ipv6 peer", "[2001:db8::1]:4000", nil, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tt.peer)
			ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: net.TCPAddrFromAddrPort(ap)})
			if tt.xff != nil {
				md := metadata.MD{}
				for _, v := range tt.xff {
					md.Append("x-forwarded-for", v)
				}
				ctx = metadata.NewIncomingContext(ctx, md)
			}
			if got := authn.ClientAddr(ctx, trusted); got != tt.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := authn.ParsePrefixes([]string{"nonsense"}); err == nil {
		t.Fatal("ParsePrefixes accepted nonsense")
	}
}

func TestRoleProto(t *testing.T) {
	for _, r := range []authn.Role{authn.RoleUser, authn.RoleAdmin, authn.RoleService} {
		if got := authn.RoleFromProto(r.Proto()); got != r {
			t.Fatalf("round trip of %q = %q", r, got)
		}
	}
	if authn.RoleAnonymous.Proto() != authv1.Role_ROLE_UNSPECIFIED || authn.RoleFromProto(authv1.Role(42)) != "" {
		t.Fatal("unexpected mapping of anonymous or unknown roles")
	}
}
