package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/auth/app"
	"github.com/marquee-dev/marquee/services/auth/internal/throttle"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/config"
)

func wantStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || (reason != "" && apierr.Reason(err) != reason) {
		t.Fatalf("err = %v (reason %q), want %v %s", err, apierr.Reason(err), code, reason)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	email := e.email("refresher")
	e.register(email)
	first := e.login(email, userPassword)
	if first.GetTokenType() != "Bearer" || first.GetExpiresIn() != 900 || !strings.HasPrefix(first.GetRefreshToken(), "mr_") {
		t.Fatalf("password grant = %v", first)
	}
	refresh := func(rt string) (*authv1.CreateTokenResponse, error) {
		return e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "refresh_token", RefreshToken: rt})
	}
	second, err := refresh(first.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	if second.GetRefreshToken() == first.GetRefreshToken() || second.GetAccessToken() == "" {
		t.Fatal("the refresh token did not rotate")
	}
	if _, err := e.client.GetCurrentUser(bearer(ctx, second.GetAccessToken()), &authv1.GetCurrentUserRequest{}); err != nil {
		t.Fatalf("the refreshed access token does not work: %v", err)
	}
	third, err := refresh(second.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	// Replaying the first token shows it was stolen: the whole family goes.
	_, err = refresh(first.GetRefreshToken())
	wantStatus(t, err, codes.Unauthenticated, "REFRESH_TOKEN_REUSED")
	_, err = refresh(third.GetRefreshToken())
	wantStatus(t, err, codes.Unauthenticated, "INVALID_GRANT")

	// A separate sign-in is a separate family, and RevokeToken ends it.
	other := e.login(email, userPassword)
	if _, err := e.client.RevokeToken(bearer(ctx, other.GetAccessToken()), &authv1.RevokeTokenRequest{RefreshToken: other.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	_, err = refresh(other.GetRefreshToken())
	wantStatus(t, err, codes.Unauthenticated, "INVALID_GRANT")

	_, err = refresh("mr_garbage")
	wantStatus(t, err, codes.Unauthenticated, "INVALID_GRANT")
	_, err = refresh("")
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")

	// Only hashes are stored.
	raw, err := e.mc.DB.Collection("refresh_tokens").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := raw.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(docs)
	for _, rt := range []string{first.GetRefreshToken(), third.GetRefreshToken(), other.GetRefreshToken()} {
		if strings.Contains(string(dump), rt) || strings.Contains(string(dump), rt[3:]) {
			t.Fatal("a refresh token is stored in the clear")
		}
	}
}

// TestDisabledUserBounds checks how quickly a disabled user loses each kind
// of credential: sign-in and refresh at once, API keys within the
// verifier's cache TTL (30 s), access tokens within their lifetime.
func TestDisabledUserBounds(t *testing.T) {
	c := newClock()
	e := start(t, nil, nil, app.WithClock(c.Now))
	ctx := e.ctx()
	admin := e.adminToken()
	email := e.email("suspended")
	u := e.register(email)
	tok := e.login(email, userPassword)
	key, err := e.client.CreateApiKey(bearer(ctx, tok.GetAccessToken()), &authv1.CreateApiKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	remote := e.remoteVerifier(authn.VerifierConfig{Now: c.Now, JWKSRefreshMinInterval: -1})
	if p, err := remote.ResolveAPIKey(ctx, key.GetKey()); err != nil || p.Subject != u.GetId() || p.Tier() != "user" {
		t.Fatalf("ResolveAPIKey = %+v, %v", p, err)
	}
	if _, err := remote.VerifyToken(ctx, tok.GetAccessToken()); err != nil {
		t.Fatal(err)
	}

	if _, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{
		User: &authv1.User{Id: u.GetId(), Disabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
	}); err != nil {
		t.Fatal(err)
	}

	// At once: sign-in, refresh, and auth's own RPCs.
	_, err = e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "password", Username: email, Password: userPassword})
	wantStatus(t, err, codes.Unauthenticated, "INVALID_CREDENTIALS")
	_, err = e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "refresh_token", RefreshToken: tok.GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated, "INVALID_GRANT")
	_, err = e.client.GetCurrentUser(bearer(ctx, tok.GetAccessToken()), &authv1.GetCurrentUserRequest{})
	wantStatus(t, err, codes.Unauthenticated, "ACCOUNT_INACTIVE")
	_, err = e.client.ResolveApiKey(bearer(ctx, e.serviceToken("search", searchSecret)), &authv1.ResolveApiKeyRequest{Key: key.GetKey()})
	wantStatus(t, err, codes.NotFound, "API_KEY_NOT_FOUND")

	// Elsewhere the API key lasts until the cache entry expires, 30 s at most.
	if _, err := remote.ResolveAPIKey(ctx, key.GetKey()); err != nil {
		t.Fatalf("within the cache TTL: %v", err)
	}
	c.Advance(authn.MaxAPIKeyCacheTTL + time.Millisecond)
	if _, err := remote.ResolveAPIKey(ctx, key.GetKey()); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("30 s after disabling, the API key still resolves: %v", err)
	}

	// The access token lasts its lifetime (plus the clock-skew leeway).
	if _, err := remote.VerifyToken(ctx, tok.GetAccessToken()); err != nil {
		t.Fatalf("within its lifetime the access token is still valid elsewhere: %v", err)
	}
	c.Advance(e.cfg.AccessTokenTTL + authn.DefaultLeeway)
	if _, err := remote.VerifyToken(ctx, tok.GetAccessToken()); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("after its lifetime the access token still verifies: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	e := start(t, func(c *app.Config) { c.APIKeyCacheTTL = 200 * time.Millisecond }, nil)
	ctx := e.ctx()
	email := e.email("keyholder")
	u := e.register(email)
	tok := e.login(email, userPassword).GetAccessToken()

	var created []*authv1.ApiKey
	for _, name := range []string{"laptop", "ci", "cron"} {
		k, err := e.client.CreateApiKey(bearer(ctx, tok), &authv1.CreateApiKeyRequest{ApiKey: &authv1.ApiKey{DisplayName: name}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k.GetKey(), "mk_") || len(k.GetKey()) != 55 || k.GetPrefix() != k.GetKey()[:11] || k.GetDisplayName() != name {
			t.Fatalf("created key = id %q prefix %q len %d", k.GetId(), k.GetPrefix(), len(k.GetKey()))
		}
		created = append(created, k)
	}

	page1, err := e.client.ListApiKeys(bearer(ctx, tok), &authv1.ListApiKeysRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page1.GetApiKeys()) != 2 || page1.GetNextPageToken() == "" {
		t.Fatalf("page 1 = %d keys, next %q", len(page1.GetApiKeys()), page1.GetNextPageToken())
	}
	page2, err := e.client.ListApiKeys(bearer(ctx, tok), &authv1.ListApiKeysRequest{PageSize: 2, PageToken: page1.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if len(page2.GetApiKeys()) != 1 || page2.GetNextPageToken() != "" {
		t.Fatalf("page 2 = %d keys, next %q", len(page2.GetApiKeys()), page2.GetNextPageToken())
	}
	for i, k := range append(page1.GetApiKeys(), page2.GetApiKeys()...) {
		if k.GetKey() != "" {
			t.Fatal("ListApiKeys returned a secret")
		}
		if k.GetId() != created[i].GetId() {
			t.Fatalf("key %d is %s, want %s (creation order)", i, k.GetId(), created[i].GetId())
		}
	}
	_, err = e.client.ListApiKeys(bearer(ctx, tok), &authv1.ListApiKeysRequest{PageSize: -1})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	otherEmail := e.email("other")
	e.register(otherEmail)
	otherTok := e.login(otherEmail, userPassword).GetAccessToken()
	_, err = e.client.ListApiKeys(bearer(ctx, otherTok), &authv1.ListApiKeysRequest{PageToken: page1.GetNextPageToken()})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
	// Another user cannot revoke the key.
	_, err = e.client.DeleteApiKey(bearer(ctx, otherTok), &authv1.DeleteApiKeyRequest{Id: created[0].GetId()})
	wantStatus(t, err, codes.NotFound, "API_KEY_NOT_FOUND")

	// Only SHA-256 hashes are stored.
	cur, err := e.mc.DB.Collection("api_keys").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(docs)
	for _, k := range created {
		sum := sha256.Sum256([]byte(k.GetKey()))
		if strings.Contains(string(dump), k.GetKey()[11:]) || !strings.Contains(string(dump), hex.EncodeToString(sum[:])) {
			t.Fatal("an API key is stored other than as its SHA-256")
		}
	}

	// The key acts as its owner, with the owner's tier, here and elsewhere.
	me, err := e.client.GetCurrentUser(apiKey(ctx, created[0].GetKey()), &authv1.GetCurrentUserRequest{})
	if err != nil || me.GetId() != u.GetId() {
		t.Fatalf("GetCurrentUser with the key = %v, %v", me, err)
	}
	const ttl = 300 * time.Millisecond
	remote := e.remoteVerifier(authn.VerifierConfig{APIKeyCacheTTL: ttl})
	p, err := remote.ResolveAPIKey(ctx, created[0].GetKey())
	if err != nil || p.Subject != u.GetId() || p.Role != authn.RoleUser || p.APIKeyID != created[0].GetId() {
		t.Fatalf("ResolveAPIKey = %+v, %v", p, err)
	}

	// Promoting the owner promotes the key, within the cache TTL.
	if _, err := e.client.UpdateUser(bearer(ctx, e.adminToken()), &authv1.UpdateUserRequest{
		User: &authv1.User{Id: u.GetId(), Role: authv1.Role_ROLE_ADMIN}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"role"}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the key carrying its owner's new role", func() bool {
		p, err := remote.ResolveAPIKey(ctx, created[0].GetKey())
		return err == nil && p.Tier() == "admin"
	})

	// Revocation takes effect within the cache TTL, at auth and elsewhere.
	if _, err := e.client.DeleteApiKey(bearer(ctx, tok), &authv1.DeleteApiKeyRequest{Id: created[0].GetId()}); err != nil {
		t.Fatal(err)
	}
	// (TestDisabledUserBounds checks the bound itself with a test clock.)
	eventually(t, 10*time.Second, "the revoked key being refused elsewhere", func() bool {
		_, err := remote.ResolveAPIKey(ctx, created[0].GetKey())
		return errors.Is(err, authn.ErrUnauthenticated)
	})
	eventually(t, 10*time.Second, "the revoked key being refused by auth", func() bool {
		_, err := e.client.GetCurrentUser(apiKey(ctx, created[0].GetKey()), &authv1.GetCurrentUserRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
	if _, err := remote.ResolveAPIKey(ctx, created[1].GetKey()); err != nil {
		t.Fatalf("revoking one key revoked another: %v", err)
	}
}

// TestKeyRotation checks that tokens signed by the previous key stay valid
// until they expire, and that the previous key then leaves the JWKS.
func TestKeyRotation(t *testing.T) {
	c := newClock()
	const rotation = 10 * time.Minute
	e := start(t, func(cfg *app.Config) { cfg.KeyRotationInterval = rotation }, nil, app.WithClock(c.Now))
	ctx := e.ctx()
	remote := e.remoteVerifier(authn.VerifierConfig{Now: c.Now, JWKSRefreshMinInterval: -1, TokenCacheSize: -1})
	kidOf := func(tok string) string {
		parsed, _, err := jwt.NewParser().ParseUnverified(tok, &authn.Claims{})
		if err != nil {
			t.Fatal(err)
		}
		return parsed.Header["kid"].(string)
	}
	jwksKids := func() map[string]bool {
		resp, err := e.client.GetJwks(ctx, &authv1.GetJwksRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range resp.GetKeys() {
			if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != "EdDSA" || k.GetUse() != "sig" {
				t.Fatalf("unexpected JWK %v", k)
			}
			out[k.GetKid()] = true
		}
		return out
	}

	old := e.adminToken()
	if _, err := remote.VerifyToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	c.Advance(rotation + time.Minute)
	fresh := e.adminToken()
	if kidOf(fresh) == kidOf(old) {
		t.Fatal("the signing key did not rotate")
	}
	if kids := jwksKids(); !kids[kidOf(old)] || !kids[kidOf(fresh)] {
		t.Fatalf("JWKS %v lacks the old or the new key", kids)
	}
	for name, tok := range map[string]string{"previous key": old, "new key": fresh} {
		if _, err := remote.VerifyToken(ctx, tok); err != nil {
			t.Fatalf("token of the %s rejected by another service: %v", name, err)
		}
		if _, err := e.client.GetCurrentUser(bearer(ctx, tok), &authv1.GetCurrentUserRequest{}); err != nil {
			t.Fatalf("token of the %s rejected by auth: %v", name, err)
		}
	}
	// Past the old token's expiry the old key is no longer published.
	c.Advance(e.cfg.AccessTokenTTL + authn.DefaultLeeway)
	if _, err := remote.VerifyToken(ctx, old); err == nil {
		t.Fatal("the old token outlived its expiry")
	}
	if jwksKids()[kidOf(old)] {
		t.Fatal("the previous key is still in the JWKS after its last token expired")
	}
}

func TestConcurrentRegistrationOneEmail(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	variants := []string{"dup@example.com", "DUP@example.com", "Dup@Example.com", " dup@example.com ", "dup@EXAMPLE.COM", "dUp@example.com"}
	var wg sync.WaitGroup
	errs := make([]error, len(variants))
	for i, v := range variants {
		wg.Go(func() {
			_, errs[i] = e.client.CreateUser(ctx, &authv1.CreateUserRequest{Email: v, Password: userPassword})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantStatus(t, err, codes.AlreadyExists, "EMAIL_TAKEN")
	}
	if ok != 1 {
		t.Fatalf("%d registrations succeeded, want exactly 1", ok)
	}
}

func TestInputValidation(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	admin := e.adminToken()
	self, err := e.client.GetCurrentUser(bearer(ctx, admin), &authv1.GetCurrentUserRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
		field  string
	}{
		{"bad email", func() error {
			_, err := e.client.CreateUser(ctx, &authv1.CreateUserRequest{Email: "nope", Password: userPassword})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "email"},
		{"short password", func() error {
			_, err := e.client.CreateUser(ctx, &authv1.CreateUserRequest{Email: e.email("v"), Password: "Sh0rt!"})
			return err
		}, codes.InvalidArgument, "WEAK_PASSWORD", "password"},
		{"common password", func() error {
			_, err := e.client.CreateUser(ctx, &authv1.CreateUserRequest{Email: e.email("v"), Password: "Password1234"})
			return err
		}, codes.InvalidArgument, "WEAK_PASSWORD", "password"},
		{"long display name", func() error {
			_, err := e.client.CreateUser(ctx, &authv1.CreateUserRequest{Email: e.email("v"), Password: userPassword, DisplayName: strings.Repeat("n", 101)})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "display_name"},
		{"no grant type", func() error {
			_, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "grant_type"},
		{"unknown grant type", func() error {
			_, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "implicit"})
			return err
		}, codes.InvalidArgument, "UNSUPPORTED_GRANT_TYPE", "grant_type"},
		{"password grant without password", func() error {
			_, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "password", Username: "a@b.c"})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "password"},
		{"update without mask", func() error {
			_, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{User: &authv1.User{Id: self.GetId()}})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "update_mask"},
		{"update of email", func() error {
			_, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{
				User: &authv1.User{Id: self.GetId(), Email: "x@y.z"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "update_mask"},
		{"role service", func() error {
			_, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{
				User: &authv1.User{Id: self.GetId(), Role: authv1.Role_ROLE_SERVICE}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"role"}}})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "user.role"},
		{"self-demotion", func() error {
			_, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{
				User: &authv1.User{Id: self.GetId(), Role: authv1.Role_ROLE_USER}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"role"}}})
			return err
		}, codes.FailedPrecondition, "CANNOT_MODIFY_SELF", ""},
		{"unknown user", func() error {
			_, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{
				User: &authv1.User{Id: "u_nobody", Disabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}}})
			return err
		}, codes.NotFound, "USER_NOT_FOUND", ""},
		{"empty API key", func() error {
			_, err := e.client.ResolveApiKey(bearer(ctx, e.serviceToken("search", searchSecret)), &authv1.ResolveApiKeyRequest{})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantStatus(t, err, tt.code, tt.reason)
			if tt.field != "" {
				v := apierr.Violations(err)
				if len(v) == 0 || v[0].Field != tt.field {
					t.Fatalf("violations = %v, want field %s", v, tt.field)
				}
			}
		})
	}
}

func TestLoginThrottleAndEnumeration(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Throttle.LoginAccount = throttle.Limit{Burst: 3, Every: time.Hour} }, nil)
	ctx := e.ctx()
	email := e.email("target")
	e.register(email)
	try := func(user, pw string) error {
		_, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "password", Username: user, Password: pw})
		return err
	}
	wrong := try(email, "not-the-password-1")
	unknown := try(e.email("ghost"), userPassword)
	if status.Code(wrong) != codes.Unauthenticated || status.Convert(wrong).Message() != status.Convert(unknown).Message() ||
		apierr.Reason(wrong) != apierr.Reason(unknown) || status.Code(unknown) != codes.Unauthenticated {
		t.Fatalf("wrong password (%v) and unknown user (%v) answer differently", wrong, unknown)
	}
	for range 2 {
		wantStatus(t, try(email, "not-the-password-1"), codes.Unauthenticated, "INVALID_CREDENTIALS")
	}
	// Three failures: the account is locked for now, even with the right
	// password, and the answer says when to retry.
	err := try(email, userPassword)
	wantStatus(t, err, codes.ResourceExhausted, "TOO_MANY_ATTEMPTS")
	if md := apierr.Info(err).GetMetadata(); md["retry_after_seconds"] == "" {
		t.Fatalf("no retry_after_seconds in %v", md)
	}
	// Other accounts are unaffected.
	e.login(adminEmail, adminPassword)
}

func TestThrottlePerClientAddress(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Throttle.SignupAddress = throttle.Limit{Burst: 2, Every: time.Hour}
		c.TrustedProxies = []string{"127.0.0.0/8"}
	}, nil)
	ctx := e.ctx()
	signup := func(addr string) error {
		c := metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", addr)
		_, err := e.client.CreateUser(c, &authv1.CreateUserRequest{Email: e.email("s"), Password: userPassword})
		return err
	}
	for range 2 {
		if err := signup("198.51.100.7"); err != nil {
			t.Fatal(err)
		}
	}
	wantStatus(t, signup("198.51.100.7"), codes.ResourceExhausted, "TOO_MANY_ATTEMPTS")
	if err := signup("198.51.100.8"); err != nil {
		t.Fatalf("another client address is limited too: %v", err)
	}
	// A client cannot escape by prepending addresses: the proxy's entry is
	// the right-most one.
	wantStatus(t, signup("203.0.113.1, 198.51.100.7"), codes.ResourceExhausted, "TOO_MANY_ATTEMPTS")
}

func TestClientCredentials(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	resp, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "client_credentials", ClientId: "search", ClientSecret: searchSecret})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetExpiresIn() != 300 || resp.GetRefreshToken() != "" {
		t.Fatalf("service token: expires_in %d, refresh %q", resp.GetExpiresIn(), resp.GetRefreshToken())
	}
	p, err := e.remoteVerifier(authn.VerifierConfig{}).VerifyToken(ctx, resp.GetAccessToken())
	if err != nil || p.Subject != "search" || p.Role != authn.RoleService || p.Tier() != "service" {
		t.Fatalf("service principal = %+v, %v", p, err)
	}
	for _, c := range []struct{ id, secret string }{{"search", "wrong"}, {"nobody", searchSecret}, {"gateway", searchSecret}} {
		_, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "client_credentials", ClientId: c.id, ClientSecret: c.secret})
		wantStatus(t, err, codes.Unauthenticated, "INVALID_CLIENT")
	}
	// A TokenSource keeps its token and sends it.
	ts := authn.NewTokenSource(e.conn, "gateway", gatewaySecret)
	t1, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := ts.Token(ctx)
	if t1 != t2 {
		t.Fatal("the TokenSource fetched a new token while the old one was fresh")
	}
}

func TestAdminBootstrapGeneratesPasswordOnce(t *testing.T) {
	mc := start(t, func(c *app.Config) { c.AdminEmail = "" }, nil).mc // an empty database
	first := start(t, func(c *app.Config) { c.AdminEmail = "root@marquee.test"; c.AdminPassword = "" }, mc)
	var generated string
	for _, line := range strings.Split(first.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if pw, ok := rec["generated_password"].(string); ok {
			if rec["level"] != "WARN" {
				t.Fatalf("the generated password is logged at %v, want WARN", rec["level"])
			}
			generated = pw
		}
	}
	if generated == "" {
		t.Fatalf("no generated password in the logs:\n%s", first.logs.String())
	}
	tok := first.login("root@marquee.test", generated)
	me, err := first.client.GetCurrentUser(bearer(first.ctx(), tok.GetAccessToken()), &authv1.GetCurrentUserRequest{})
	if err != nil || me.GetRole() != authv1.Role_ROLE_ADMIN {
		t.Fatalf("bootstrapped admin = %v, %v", me, err)
	}
	second := start(t, func(c *app.Config) { c.AdminEmail = "root@marquee.test"; c.AdminPassword = "" }, mc)
	if strings.Contains(second.logs.String(), "generated_password") {
		t.Fatal("a second start generated another password")
	}
	second.login("root@marquee.test", generated)
}

// TestNoSecretsInLogs runs every kind of credential through the service and
// checks that none of them reaches the logs.
func TestNoSecretsInLogs(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	email := e.email("quiet")
	e.register(email)
	tok := e.login(email, userPassword)
	next, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "refresh_token", RefreshToken: tok.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "refresh_token", RefreshToken: tok.GetRefreshToken()}) // reuse
	key, err := e.client.CreateApiKey(bearer(ctx, next.GetAccessToken()), &authv1.CreateApiKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	svc := e.serviceToken("search", searchSecret)
	if _, err := e.client.ResolveApiKey(bearer(ctx, svc), &authv1.ResolveApiKeyRequest{Key: key.GetKey()}); err != nil {
		t.Fatal(err)
	}
	_, _ = e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "password", Username: email, Password: "wrong-password-123"})
	_, _ = e.client.GetCurrentUser(bearer(ctx, "forged.token.value"), &authv1.GetCurrentUserRequest{})

	logs := e.logs.String()
	if !strings.Contains(logs, `"key_encryption_key":"***"`) {
		t.Fatalf("the start-up config is not logged redacted:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"user password": userPassword, "wrong password": "wrong-password-123", "admin password": adminPassword,
		"access token": tok.GetAccessToken(), "refresh token": tok.GetRefreshToken(), "rotated refresh token": next.GetRefreshToken(),
		"API key": key.GetKey(), "service token": svc, "client secret": searchSecret, "forged token": "forged.token.value",
		"key-encryption key": e.cfg.KeyEncryptionKey,
	} {
		if contains(logs, secret) {
			t.Errorf("the %s is in the logs", name)
		}
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("MARQUEE_AUTH_SERVICE_CLIENTS", "search=s1,gateway=s2")
	t.Setenv("MARQUEE_AUTH_ACCESS_TOKEN_TTL", "2m")
	t.Setenv("MARQUEE_AUTH_MONGO_URI", "mongodb://db:27017")
	t.Setenv("MARQUEE_AUTH_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.0/8")
	t.Setenv("MARQUEE_AUTH_THROTTLE_LOGIN_ACCOUNT_BURST", "4")
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, []string{"--set", "auth.admin_email=ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ServiceClients) != 2 || cfg.AccessTokenTTL != 2*time.Minute || cfg.Mongo.URI != "mongodb://db:27017" ||
		len(cfg.TrustedProxies) != 2 || cfg.Throttle.LoginAccount.Burst != 4 || cfg.AdminEmail != "ops@example.com" ||
		cfg.Mongo.Database != "auth" || cfg.GRPCAddr != ":9093" || cfg.AdminAddr != ":9193" {
		t.Fatalf("loaded config = %+v", cfg.Settings)
	}
	red := config.Redacted(cfg)
	auth := red["auth"].(map[string]any)
	if auth["service_clients"] != "***" || auth["mongo"].(map[string]any)["uri"] != "***" || auth["admin_password"] != "" {
		t.Fatalf("secrets not redacted: %v", auth)
	}
}
