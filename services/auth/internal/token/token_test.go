package token_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/auth/internal/token"
	"github.com/marquee-dev/marquee/services/auth/internal/token/mongostore"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var kek = bytes.Repeat([]byte{7}, token.KEKSize)

func TestKeyRotationKeepsOldKeysUntilTheirTokensExpire(t *testing.T) {
	mc := testenv.Mongo(t)
	store := mongostore.New(mc)
	c := &clock{t: time.Now()}
	const rotation, ttl = 10 * time.Minute, 15 * time.Minute
	keys, err := token.NewKeys(store, kek, token.KeyOptions{RotationInterval: rotation, MaxTokenTTL: ttl, Leeway: 30 * time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	issuer := token.NewIssuer(keys, "iss", "aud", c.Now)
	verifier := authn.NewVerifierWithBackend(keysOnly{keys}, authn.VerifierConfig{
		Issuer: "iss", Audience: "aud", JWKSRefreshMinInterval: -1, TokenCacheSize: -1, Now: c.Now,
	})

	old, _, err := issuer.Issue(ctx, "u_1", authn.RoleUser, ttl)
	if err != nil {
		t.Fatal(err)
	}
	jwks1, _ := keys.JWKS(ctx)
	if len(jwks1) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(jwks1))
	}
	if _, err := verifier.VerifyToken(ctx, old); err != nil {
		t.Fatal(err)
	}

	c.Advance(rotation + time.Minute) // the first key has stopped signing
	fresh, _, err := issuer.Issue(ctx, "u_1", authn.RoleUser, ttl)
	if err != nil {
		t.Fatal(err)
	}
	jwks2, _ := keys.JWKS(ctx)
	if len(jwks2) != 2 {
		t.Fatalf("after rotation the JWKS has %d keys, want 2 (old and new)", len(jwks2))
	}
	for name, tok := range map[string]string{"old key": old, "new key": fresh} {
		if _, err := verifier.VerifyToken(ctx, tok); err != nil {
			t.Fatalf("token of the %s rejected: %v", name, err)
		}
	}

	c.Advance(ttl) // past the old key's last token
	if _, err := verifier.VerifyToken(ctx, old); err == nil {
		t.Fatal("an expired token of the old key still verifies")
	}
	if err := keys.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	jwks3, _ := keys.JWKS(ctx)
	for _, k := range jwks3 {
		if k.GetKid() == jwks1[0].GetKid() {
			t.Fatalf("the old key is still published after its last token expired: %v", jwks3)
		}
	}
	c.Advance(2 * time.Hour)
	if err := keys.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := mongostore.New(mc).ListKeys(ctx)
	if len(after) != 1 {
		t.Fatalf("%d keys stored two hours on, want only the current one", len(after))
	}
}

type keysOnly struct{ k *token.Keys }

func (b keysOnly) JWKS(ctx context.Context) ([]*authv1.Jwk, error) { return b.k.JWKS(ctx) }
func (keysOnly) ResolveAPIKey(context.Context, string) (authn.Principal, error) {
	return authn.Principal{}, authn.ErrUnauthenticated
}

func TestPrivateKeysAreSealed(t *testing.T) {
	mc := testenv.Mongo(t)
	store := mongostore.New(mc)
	ctx := t.Context()
	opts := token.KeyOptions{RotationInterval: time.Hour, MaxTokenTTL: time.Minute}
	keys, err := token.NewKeys(store, kek, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := store.ListKeys(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatalf("ListKeys = %d keys, %v", len(stored), err)
	}
	k := stored[0]
	if len(k.SealedPrivate) != 32+16 || len(k.Nonce) != 12 {
		t.Fatalf("sealed private key of %d bytes with a %d-byte nonce, want AES-GCM of a 32-byte seed", len(k.SealedPrivate), len(k.Nonce))
	}

	// A replica with another key-encryption key publishes the key but signs
	// with a key of its own.
	other, err := token.NewKeys(store, bytes.Repeat([]byte{9}, token.KEKSize), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := token.NewIssuer(other, "i", "a", nil).Issue(ctx, "u", authn.RoleUser, time.Minute); err != nil {
		t.Fatal(err)
	}
	jwks, err := other.JWKS(ctx)
	if err != nil || len(jwks) != 2 {
		t.Fatalf("JWKS = %d keys, %v; want both", len(jwks), err)
	}
	if _, err := token.NewKeys(store, []byte("short"), opts); err == nil {
		t.Fatal("a short key-encryption key was accepted")
	}
	if _, err := token.ParseKEK("c2hvcnQ="); err == nil {
		t.Fatal("ParseKEK accepted 5 bytes")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	mc := testenv.Mongo(t)
	store := mongostore.New(mc)
	if err := store.EnsureIndexes(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	r := token.NewRefresher(store, mc.Locks, time.Hour, c.Now)
	ctx := t.Context()
	active := func(context.Context, string) (bool, error) { return true, nil }

	r1, err := r.Start(ctx, "u_1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetRefresh(ctx, r1); !errors.Is(err, token.ErrNotFound) {
		t.Fatal("the raw refresh token is stored")
	}
	uid, r2, err := r.Rotate(ctx, r1, active)
	if err != nil || uid != "u_1" || r2 == r1 {
		t.Fatalf("Rotate = %q, %v", uid, err)
	}
	_, r3, err := r.Rotate(ctx, r2, active)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Rotate(ctx, r1, active); !errors.Is(err, token.ErrRefreshTokenReused) {
		t.Fatalf("reuse err = %v, want ErrRefreshTokenReused", err)
	}
	if _, _, err := r.Rotate(ctx, r3, active); !errors.Is(err, token.ErrInvalidRefreshToken) {
		t.Fatalf("after reuse the family's newest token: err = %v, want ErrInvalidRefreshToken", err)
	}

	// Another family is untouched.
	o1, _ := r.Start(ctx, "u_1")
	if _, _, err := r.Rotate(ctx, o1, active); err != nil {
		t.Fatal(err)
	}

	// Expiry.
	e1, _ := r.Start(ctx, "u_2")
	c.Advance(time.Hour + time.Second)
	if _, _, err := r.Rotate(ctx, e1, active); !errors.Is(err, token.ErrInvalidRefreshToken) {
		t.Fatalf("expired token: err = %v", err)
	}

	// A disabled user's token fails and its family is revoked.
	d1, _ := r.Start(ctx, "u_3")
	inactive := func(context.Context, string) (bool, error) { return false, nil }
	if _, _, err := r.Rotate(ctx, d1, inactive); !errors.Is(err, token.ErrInvalidRefreshToken) {
		t.Fatalf("inactive user: err = %v", err)
	}

	for _, junk := range []string{"", "mr_short", "xx_" + r1[3:]} {
		if _, _, err := r.Rotate(ctx, junk, active); !errors.Is(err, token.ErrInvalidRefreshToken) {
			t.Fatalf("junk %q: err = %v", junk, err)
		}
	}
}

func TestConcurrentRefreshOneWins(t *testing.T) {
	mc := testenv.Mongo(t)
	store := mongostore.New(mc)
	r := token.NewRefresher(store, mc.Locks, time.Hour, nil)
	ctx := t.Context()
	active := func(context.Context, string) (bool, error) { return true, nil }
	r1, err := r.Start(ctx, "u_1")
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, _, errs[i] = r.Rotate(ctx, r1, active) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, token.ErrRefreshTokenReused), errors.Is(err, token.ErrInvalidRefreshToken):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent uses of one refresh token succeeded, want 1", ok)
	}
}

func TestRevoke(t *testing.T) {
	mc := testenv.Mongo(t)
	store := mongostore.New(mc)
	r := token.NewRefresher(store, mc.Locks, time.Hour, nil)
	ctx := t.Context()
	active := func(context.Context, string) (bool, error) { return true, nil }
	a, _ := r.Start(ctx, "u_a")
	b, _ := r.Start(ctx, "u_b")
	if err := r.Revoke(ctx, a, "u_b", false); err != nil { // not u_b's: a no-op
		t.Fatal(err)
	}
	if _, _, err := r.Rotate(ctx, a, active); err != nil {
		t.Fatalf("another user revoked u_a's token: %v", err)
	}
	if err := r.Revoke(ctx, b, "u_b", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Rotate(ctx, b, active); !errors.Is(err, token.ErrInvalidRefreshToken) {
		t.Fatalf("revoked token: err = %v", err)
	}
	c, _ := r.Start(ctx, "u_c")
	if err := r.RevokeUser(ctx, "u_c"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Rotate(ctx, c, active); !errors.Is(err, token.ErrInvalidRefreshToken) {
		t.Fatalf("token of a revoked user: err = %v", err)
	}
}
