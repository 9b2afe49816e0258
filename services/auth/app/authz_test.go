package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"sort"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/auth/app"
	"github.com/marquee-dev/marquee/services/auth/internal/token"
	tokenstore "github.com/marquee-dev/marquee/services/auth/internal/token/mongostore"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// TestAuthorizationOfEveryRPC calls every RPC as each kind of caller and
// checks who gets through (OK, or a domain error past the authorization
// check) and who is refused.
func TestAuthorizationOfEveryRPC(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	admin := e.adminToken()

	userEmail := e.email("user")
	u := e.register(userEmail)
	user := e.login(userEmail, userPassword).GetAccessToken()
	key, err := e.client.CreateApiKey(bearer(ctx, user), &authv1.CreateApiKeyRequest{ApiKey: &authv1.ApiKey{DisplayName: "ci"}})
	if err != nil {
		t.Fatal(err)
	}

	disabledEmail := e.email("disabled")
	d := e.register(disabledEmail)
	disabled := e.login(disabledEmail, userPassword).GetAccessToken()
	if _, err := e.client.UpdateUser(bearer(ctx, admin), &authv1.UpdateUserRequest{
		User: &authv1.User{Id: d.GetId(), Disabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
	}); err != nil {
		t.Fatal(err)
	}

	deletedEmail := e.email("deleted")
	e.register(deletedEmail)
	deleted := e.login(deletedEmail, userPassword).GetAccessToken()
	if _, err := e.client.DeleteCurrentUser(bearer(ctx, deleted), &authv1.DeleteCurrentUserRequest{}); err != nil {
		t.Fatal(err)
	}

	service := e.serviceToken("search", searchSecret)

	callers := map[string]func(context.Context) context.Context{
		"anonymous": func(c context.Context) context.Context { return c },
		"user":      func(c context.Context) context.Context { return bearer(c, user) },
		"admin":     func(c context.Context) context.Context { return bearer(c, admin) },
		"disabled":  func(c context.Context) context.Context { return bearer(c, disabled) },
		"deleted":   func(c context.Context) context.Context { return bearer(c, deleted) },
		"service":   func(c context.Context) context.Context { return bearer(c, service) },
		"api key":   func(c context.Context) context.Context { return apiKey(c, key.GetKey()) },
	}
	const (
		OK      = codes.OK
		unauth  = codes.Unauthenticated
		denied  = codes.PermissionDenied
		missing = codes.NotFound
	)
	junkRefresh := token.RefreshPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	rpcs := []struct {
		name string
		call func(context.Context) error
		want map[string]codes.Code // callers left out are not tried
	}{
		{"CreateUser", func(c context.Context) error {
			_, err := e.client.CreateUser(c, &authv1.CreateUserRequest{Email: e.email("new"), Password: userPassword})
			return err
		}, map[string]codes.Code{"anonymous": OK, "user": OK, "admin": OK, "disabled": OK, "deleted": OK, "service": OK, "api key": OK}},
		{"CreateToken", func(c context.Context) error {
			_, err := e.client.CreateToken(c, &authv1.CreateTokenRequest{GrantType: "client_credentials", ClientId: "search", ClientSecret: searchSecret})
			return err
		}, map[string]codes.Code{"anonymous": OK, "user": OK, "admin": OK, "disabled": OK, "deleted": OK, "service": OK, "api key": OK}},
		{"RevokeToken", func(c context.Context) error {
			_, err := e.client.RevokeToken(c, &authv1.RevokeTokenRequest{RefreshToken: junkRefresh})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": OK, "admin": OK, "disabled": unauth, "deleted": unauth, "service": denied, "api key": OK}},
		{"GetCurrentUser", func(c context.Context) error {
			_, err := e.client.GetCurrentUser(c, &authv1.GetCurrentUserRequest{})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": OK, "admin": OK, "disabled": unauth, "deleted": unauth, "service": denied, "api key": OK}},
		{"DeleteCurrentUser", func(c context.Context) error {
			_, err := e.client.DeleteCurrentUser(c, &authv1.DeleteCurrentUserRequest{})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "disabled": unauth, "deleted": unauth, "service": denied, "api key": denied}},
		{"UpdateUser", func(c context.Context) error {
			_, err := e.client.UpdateUser(c, &authv1.UpdateUserRequest{
				User: &authv1.User{Id: u.GetId(), DisplayName: "Renamed"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": denied, "admin": OK, "disabled": denied, "deleted": denied, "service": denied, "api key": denied}},
		{"CreateApiKey", func(c context.Context) error {
			_, err := e.client.CreateApiKey(c, &authv1.CreateApiKeyRequest{})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": OK, "admin": OK, "disabled": unauth, "deleted": unauth, "service": denied, "api key": denied}},
		{"ListApiKeys", func(c context.Context) error {
			_, err := e.client.ListApiKeys(c, &authv1.ListApiKeysRequest{})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": OK, "admin": OK, "disabled": unauth, "deleted": unauth, "service": denied, "api key": OK}},
		{"DeleteApiKey", func(c context.Context) error {
			_, err := e.client.DeleteApiKey(c, &authv1.DeleteApiKeyRequest{Id: "k_missing"})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": missing, "admin": missing, "disabled": unauth, "deleted": unauth, "service": denied, "api key": missing}},
		{"ResolveApiKey", func(c context.Context) error {
			_, err := e.client.ResolveApiKey(c, &authv1.ResolveApiKeyRequest{Key: key.GetKey()})
			return err
		}, map[string]codes.Code{"anonymous": unauth, "user": denied, "admin": denied, "disabled": denied, "deleted": denied, "service": OK, "api key": denied}},
		{"GetJwks", func(c context.Context) error {
			_, err := e.client.GetJwks(c, &authv1.GetJwksRequest{})
			return err
		}, map[string]codes.Code{"anonymous": OK, "user": OK, "admin": OK, "disabled": OK, "deleted": OK, "service": OK, "api key": OK}},
	}
	// Every RPC of the service is in the table.
	var names []string
	sd := authv1.File_marquee_auth_v1_auth_proto.Services().Get(0).Methods()
	for i := range sd.Len() {
		names = append(names, string(sd.Get(i).Name()))
	}
	var covered []string
	for _, r := range rpcs {
		covered = append(covered, r.name)
	}
	sort.Strings(names)
	sort.Strings(covered)
	if len(names) != len(covered) {
		t.Fatalf("RPCs %v, table covers %v", names, covered)
	}

	for _, r := range rpcs {
		for caller, want := range r.want {
			t.Run(r.name+"/"+caller, func(t *testing.T) {
				err := r.call(callers[caller](ctx))
				if got := status.Code(err); got != want {
					t.Fatalf("code = %v (%v), want %v", got, err, want)
				}
				if err != nil && apierr.Reason(err) == "" {
					t.Fatalf("error without an ErrorInfo reason: %v", err)
				}
			})
		}
	}
}

// TestDeleteCurrentUser deletes an account and checks that everything it had
// stops working.
func TestDeleteCurrentUser(t *testing.T) {
	e := start(t, func(c *app.Config) { c.APIKeyCacheTTL = 200 * time.Millisecond }, nil)
	ctx := e.ctx()
	email := e.email("leaver")
	e.register(email)
	tok := e.login(email, userPassword)
	key, err := e.client.CreateApiKey(bearer(ctx, tok.GetAccessToken()), &authv1.CreateApiKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetCurrentUser(apiKey(ctx, key.GetKey()), &authv1.GetCurrentUserRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteCurrentUser(bearer(ctx, tok.GetAccessToken()), &authv1.DeleteCurrentUserRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "password", Username: email, Password: userPassword}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("sign-in after deletion: %v", err)
	}
	if _, err := e.client.CreateToken(ctx, &authv1.CreateTokenRequest{GrantType: "refresh_token", RefreshToken: tok.GetRefreshToken()}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("refresh after deletion: %v", err)
	}
	eventually(t, 10*time.Second, "the deleted user's API key being refused", func() bool {
		_, err := e.client.GetCurrentUser(apiKey(ctx, key.GetKey()), &authv1.GetCurrentUserRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
	n, err := e.mc.DB.Collection("api_keys").CountDocuments(ctx, map[string]any{})
	if err != nil || n != 0 {
		t.Fatalf("%d API keys left after deletion (%v)", n, err)
	}
	e.register(email) // the address is free again
}

// TestForgedTokens presents tokens that must not be accepted.
func TestForgedTokens(t *testing.T) {
	e := start(t, nil, nil)
	ctx := e.ctx()
	email := e.email("victim")
	u := e.register(email)

	// Tokens signed with the service's own key, through its own issuer with
	// a moved clock or other names, read from the same database.
	keys, err := token.NewKeys(tokenstore.New(e.mc), kekBytes, token.KeyOptions{RotationInterval: time.Hour, MaxTokenTTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(now time.Time, iss, aud string, role authn.Role) string {
		tok, _, err := token.NewIssuer(keys, iss, aud, func() time.Time { return now }).Issue(ctx, u.GetId(), role, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	good := sign(now, e.cfg.Issuer, e.cfg.Audience, authn.RoleUser)
	kid := func() string {
		p := jwt.NewParser()
		tok, _, err := p.ParseUnverified(good, &authn.Claims{})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Header["kid"].(string)
	}()
	jwks, err := e.client.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil || len(jwks.GetKeys()) == 0 {
		t.Fatalf("GetJwks: %v", err)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(jwks.GetKeys()[0].GetX())

	claims := authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: e.cfg.Issuer, Subject: u.GetId(), Audience: jwt.ClaimStrings{e.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), ID: "x",
		},
		Role: authn.RoleAdmin,
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	withKid := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name string
		tok  string
		want codes.Code
	}{
		{"genuine", good, codes.OK},
		{"another key", withKid(jwt.SigningMethodEdDSA, stranger), codes.Unauthenticated},
		{"alg none", withKid(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), codes.Unauthenticated},
		{"HS256 keyed with the public key", withKid(jwt.SigningMethodHS256, pub), codes.Unauthenticated},
		{"HS256 keyed with the JWK x", withKid(jwt.SigningMethodHS256, []byte(jwks.GetKeys()[0].GetX())), codes.Unauthenticated},
		{"expired", sign(now.Add(-time.Hour), e.cfg.Issuer, e.cfg.Audience, authn.RoleUser), codes.Unauthenticated},
		{"not yet valid", sign(now.Add(10*time.Minute), e.cfg.Issuer, e.cfg.Audience, authn.RoleUser), codes.Unauthenticated},
		{"wrong audience", sign(now, e.cfg.Issuer, "another-api", authn.RoleUser), codes.Unauthenticated},
		{"wrong issuer", sign(now, "https://evil.example", e.cfg.Audience, authn.RoleUser), codes.Unauthenticated},
		{"tampered payload", good[:len(good)-60] + "A" + good[len(good)-59:], codes.Unauthenticated},
	}
	remote := e.remoteVerifier(authn.VerifierConfig{TokenCacheSize: -1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.GetCurrentUser(bearer(ctx, tt.tok), &authv1.GetCurrentUserRequest{})
			if status.Code(err) != tt.want {
				t.Fatalf("at auth: code = %v (%v), want %v", status.Code(err), err, tt.want)
			}
			_, err = remote.VerifyToken(ctx, tt.tok)
			if (err == nil) != (tt.want == codes.OK) {
				t.Fatalf("at another service: err = %v", err)
			}
		})
	}
}
