package authn_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// The fuzz targets hold the verifier to its promise: a token is accepted only
// when the trusted key signed it with EdDSA over claims that name this issuer
// and audience, a subject, a known role and an expiry still ahead; anything
// else is ErrUnauthenticated, and a request carrying a credential is never
// served as anonymous. The keys derive from fixed seeds and the clock is
// fixed, so the committed corpus (valid tokens included) stays meaningful.

// fuzzNow is the verifier's clock in every fuzz run.
var fuzzNow = time.Unix(1_800_000_000, 0)

func fuzzKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
}

var (
	trustedKey = fuzzKey(0) // published as "k1"
	rogueKey   = fuzzKey(1) // never published
)

// fuzzAPIKey is the one API key the backend knows.
const fuzzAPIKey = authn.APIKeyPrefix + "fuzzfuzzfuzzfuzzfuzzfuzz"

// staticBackend publishes trustedKey and resolves fuzzAPIKey.
type staticBackend struct{}

func (staticBackend) JWKS(context.Context) ([]*authv1.Jwk, error) {
	pub := trustedKey.Public().(ed25519.PublicKey)
	return []*authv1.Jwk{{Kty: "OKP", Crv: "Ed25519", Kid: "k1", Alg: "EdDSA", Use: "sig",
		X: base64.RawURLEncoding.EncodeToString(pub)}}, nil
}

func (staticBackend) ResolveAPIKey(_ context.Context, key string) (authn.Principal, error) {
	if key == fuzzAPIKey {
		return authn.Principal{Subject: "u_key", Role: authn.RoleUser, APIKeyID: "k_1"}, nil
	}
	return authn.Principal{}, authn.ErrUnauthenticated
}

func fuzzVerifier() *authn.Verifier {
	return authn.NewVerifierWithBackend(staticBackend{}, authn.VerifierConfig{
		Issuer: issuer, Audience: audience, JWKSRefreshMinInterval: -1, TokenCacheSize: -1,
		Now: func() time.Time { return fuzzNow },
	})
}

func fuzzClaims(role authn.Role) authn.Claims {
	return authn.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Subject: "u_1", Audience: jwt.ClaimStrings{audience},
		ExpiresAt: jwt.NewNumericDate(fuzzNow.Add(15 * time.Minute)), IssuedAt: jwt.NewNumericDate(fuzzNow),
		ID: "jti",
	}, Role: role}
}

// mustAccept checks that v accepts a genuine token, so that the properties
// below are not met by a verifier that refuses everything.
func mustAccept(f *testing.F, v *authn.Verifier) {
	f.Helper()
	p, err := v.VerifyToken(f.Context(), signToken(f, trustedKey, "k1", jwt.SigningMethodEdDSA, fuzzClaims(authn.RoleAdmin)))
	if err != nil || p.Role != authn.RoleAdmin || p.Subject != "u_1" {
		f.Fatalf("a genuine token: %+v, %v", p, err)
	}
}

// addTokenSeeds adds valid tokens and the classic forgeries.
func addTokenSeeds(f *testing.F, add func(string)) {
	for _, role := range []authn.Role{authn.RoleUser, authn.RoleAdmin, authn.RoleService, "root", authn.RoleAnonymous} {
		add(signToken(f, trustedKey, "k1", jwt.SigningMethodEdDSA, fuzzClaims(role)))
		add(signToken(f, rogueKey, "k1", jwt.SigningMethodEdDSA, fuzzClaims(role)))
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, fuzzClaims(authn.RoleAdmin)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	add(none)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, fuzzClaims(authn.RoleAdmin))
	hs.Header["kid"] = "k1"
	hsTok, _ := hs.SignedString([]byte(trustedKey.Public().(ed25519.PublicKey)))
	add(hsTok)
	add(signToken(f, trustedKey, "../../k1", jwt.SigningMethodEdDSA, fuzzClaims(authn.RoleAdmin)))
	add(signToken(f, trustedKey, "", jwt.SigningMethodEdDSA, fuzzClaims(authn.RoleAdmin)))
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJ.eyJ.x", "Bearer x", strings.Repeat("A", 5000)} {
		add(s)
	}
}

// FuzzVerifyToken: VerifyToken never panics; it accepts a string only when
// it is three base64url parts whose header says EdDSA and a published key id
// and whose signature the trusted public key verifies (checked here with
// crypto/ed25519 directly), and the principal has a subject and a signed-in
// role.
func FuzzVerifyToken(f *testing.F) {
	addTokenSeeds(f, func(s string) { f.Add(s) })
	v := fuzzVerifier()
	mustAccept(f, v)
	pub := trustedKey.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.VerifyToken(t.Context(), raw)
		if err != nil {
			if !errors.Is(err, authn.ErrUnauthenticated) {
				t.Fatalf("VerifyToken(%q): %v, want ErrUnauthenticated", raw, err)
			}
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q with %d parts", raw, len(parts))
		}
		var header struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		hb, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "EdDSA" || header.Kid != "k1" {
			t.Fatalf("accepted %q with header %s", raw, hb)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted %q without the trusted key's signature", raw)
		}
		if p.Subject == "" || !slices.Contains([]authn.Role{authn.RoleUser, authn.RoleAdmin, authn.RoleService}, p.Role) {
			t.Fatalf("accepted %q as %+v", raw, p)
		}
	})
}

// FuzzVerifySignedClaims signs arbitrary header and payload bytes: with the
// rogue key the token is always refused; with the trusted key it is accepted
// only when the header is EdDSA with kid k1 and the claims hold this issuer,
// this audience, a subject, a signed-in role and an expiry ahead of the clock
// (within the leeway), and then the principal is exactly the claims'.
func FuzzVerifySignedClaims(f *testing.F) {
	h := `{"alg":"EdDSA","kid":"k1","typ":"JWT"}`
	good := `{"iss":"` + issuer + `","aud":"` + audience + `","sub":"u_1","role":"admin","exp":1800000900,"iat":1800000000}`
	f.Add(h, good, true)
	f.Add(h, good, false)
	f.Add(`{"alg":"none","kid":"k1"}`, good, true)
	f.Add(`{"alg":"EdDSA","kid":"k1","crit":["exp"]}`, good, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":["x","`+audience+`"],"sub":"u_1","role":"user","exp":1800000001}`, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":"`+audience+`","sub":"u_1","role":"admin","exp":"1800000900"}`, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":"`+audience+`","sub":"u_1","role":"admin","exp":1799999000}`, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":"`+audience+`","sub":"","role":"admin","exp":1800000900}`, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":"`+audience+`","sub":"u_1","role":"ADMIN","exp":1800000900}`, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":"`+audience+`","sub":"u_1","role":"admin","exp":1e300}`, true)
	f.Add(h, `{"iss":"`+issuer+`","aud":"`+audience+`","sub":"u_1","role":"admin","role":"user","exp":1800000900}`, true)
	v := fuzzVerifier()
	mustAccept(f, v)
	f.Fuzz(func(t *testing.T, header, payload string, trusted bool) {
		signing := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		key := rogueKey
		if trusted {
			key = trustedKey
		}
		raw := signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing)))
		p, err := v.VerifyToken(t.Context(), raw)
		if err != nil {
			if !errors.Is(err, authn.ErrUnauthenticated) {
				t.Fatalf("%s.%s: %v, want ErrUnauthenticated", header, payload, err)
			}
			return
		}
		if !trusted {
			t.Fatalf("accepted %s.%s signed by a key that is not published", header, payload)
		}
		var hd struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		if json.Unmarshal([]byte(header), &hd) != nil || hd.Alg != "EdDSA" || hd.Kid != "k1" {
			t.Fatalf("accepted header %s", header)
		}
		var c authn.Claims
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatalf("accepted claims that do not decode (%v): %s", err, payload)
		}
		leeway := authn.DefaultLeeway
		switch {
		case c.Issuer != issuer, !slices.Contains(c.Audience, audience), c.Subject == "",
			c.ExpiresAt == nil, !c.ExpiresAt.Add(leeway).After(fuzzNow),
			c.NotBefore != nil && c.NotBefore.After(fuzzNow.Add(leeway)),
			c.IssuedAt != nil && c.IssuedAt.After(fuzzNow.Add(leeway)):
			t.Fatalf("accepted claims %s", payload)
		}
		if p.Subject != c.Subject || p.Role != c.Role || p.APIKeyID != "" {
			t.Fatalf("claims %s gave principal %+v", payload, p)
		}
		if !slices.Contains([]authn.Role{authn.RoleUser, authn.RoleAdmin, authn.RoleService}, p.Role) {
			t.Fatalf("accepted role %q", p.Role)
		}
	})
}

// FuzzAuthenticate: a request that carries any credential (authorization or
// x-api-key metadata) is either refused UNAUTHENTICATED or runs as a
// signed-in principal; it is never silently served as anonymous.
func FuzzAuthenticate(f *testing.F) {
	addTokenSeeds(f, func(s string) {
		f.Add("Bearer "+s, "")
		f.Add("bearer  "+s+" ", "")
	})
	f.Add("", fuzzAPIKey)
	f.Add("", fuzzAPIKey+" ")
	f.Add("", authn.APIKeyPrefix+"guess")
	f.Add("", "")
	f.Add("Basic dXNlcjpwYXNz", "")
	f.Add("Bearer", "")
	f.Add("Bearer "+signToken(f, trustedKey, "k1", jwt.SigningMethodEdDSA, fuzzClaims(authn.RoleAdmin)), fuzzAPIKey)
	v := fuzzVerifier()
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		md := metadata.MD{}
		if authorization != "" {
			md.Append("authorization", authorization)
		}
		if apiKey != "" {
			md.Append("x-api-key", apiKey)
		}
		ctx, err := v.Authenticate(metadata.NewIncomingContext(t.Context(), md))
		if err != nil {
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("authorization %q, x-api-key %q: %v, want UNAUTHENTICATED", authorization, apiKey, err)
			}
			return
		}
		p := authn.FromContext(ctx)
		if len(md) == 0 {
			if !p.Anonymous() {
				t.Fatalf("no credential gave %+v", p)
			}
			return
		}
		if p.Anonymous() || p.Subject == "" {
			t.Fatalf("authorization %q, x-api-key %q ran as %+v", authorization, apiKey, p)
		}
		if len(md) == 2 {
			t.Fatalf("two credentials accepted as %+v", p)
		}
	})
}
