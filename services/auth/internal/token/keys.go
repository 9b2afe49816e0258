// Package token issues Marquee's access tokens and manages what they rest on:
// the Ed25519 signing keys (kept in MongoDB with their private halves sealed
// under the key-encryption key, rotated on a schedule, published as a JWKS
// until the last token they signed has expired) and the refresh tokens
// (opaque, stored hashed, rotating, revoked by family when one is reused).
package token

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
)

// KEKSize is the size of the key-encryption key: AES-256.
const KEKSize = 32

// StoredKey is a signing key as the KeyStore keeps it.
type StoredKey struct {
	ID            string
	Public        []byte // Ed25519 public key
	SealedPrivate []byte // AES-256-GCM(KEK, nonce, seed, aad = ID)
	Nonce         []byte
	CreateTime    time.Time
	// SignUntil is when the key stops signing: CreateTime plus the rotation
	// interval.
	SignUntil time.Time
	// VerifyUntil is when the key leaves the JWKS: SignUntil plus the
	// longest token lifetime plus clock-skew leeway.
	VerifyUntil time.Time
}

// KeyStore keeps signing keys.
type KeyStore interface {
	InsertKey(ctx context.Context, k StoredKey) error
	// ListKeys returns every stored key.
	ListKeys(ctx context.Context) ([]StoredKey, error)
	// DeleteKeysBefore removes keys whose VerifyUntil is before t.
	DeleteKeysBefore(ctx context.Context, t time.Time) error
}

// KeyOptions configure Keys.
type KeyOptions struct {
	// RotationInterval is how long a key signs (auth.key_rotation_interval).
	RotationInterval time.Duration
	// MaxTokenTTL is the longest lifetime of a token signed by these keys,
	// which keeps a retired key in the JWKS for that long.
	MaxTokenTTL time.Duration
	// Leeway is added to MaxTokenTTL for clock skew between services.
	Leeway time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// signingKey is a key in memory.
type signingKey struct {
	id          string
	public      ed25519.PublicKey
	private     ed25519.PrivateKey // nil when it could not be unsealed
	signUntil   time.Time
	verifyUntil time.Time
	create      time.Time
}

// Keys manages the signing keys. It is safe for concurrent use.
type Keys struct {
	store KeyStore
	aead  cipher.AEAD
	opts  KeyOptions

	mu     sync.Mutex
	keys   []signingKey // newest first
	loaded time.Time
}

// reloadAfter bounds how stale this replica's view of the key collection may
// be, so that a key created by another replica is published and used soon.
const reloadAfter = 15 * time.Second

// NewKeys returns Keys stored in store, sealed under kek (32 bytes).
func NewKeys(store KeyStore, kek []byte, opts KeyOptions) (*Keys, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("the key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("creating the key-encryption cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating the key-encryption cipher: %w", err)
	}
	if opts.RotationInterval <= 0 {
		return nil, errors.New("the key rotation interval must be positive")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Keys{store: store, aead: aead, opts: opts}, nil
}

// ParseKEK decodes a base64 (standard or URL, padded or not) key-encryption
// key of 32 bytes.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KEKSize {
				return nil, fmt.Errorf("the key-encryption key must decode to %d bytes, got %d", KEKSize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("the key-encryption key must be base64")
}

// load reads the keys from the store; the caller holds mu.
func (k *Keys) load(ctx context.Context) error {
	stored, err := k.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	keys := make([]signingKey, 0, len(stored))
	for _, s := range stored {
		if len(s.Public) != ed25519.PublicKeySize {
			continue
		}
		sk := signingKey{id: s.ID, public: ed25519.PublicKey(s.Public), signUntil: s.SignUntil,
			verifyUntil: s.VerifyUntil, create: s.CreateTime}
		seed, err := k.aead.Open(nil, s.Nonce, s.SealedPrivate, []byte(s.ID))
		if err == nil && len(seed) == ed25519.SeedSize {
			priv := ed25519.NewKeyFromSeed(seed)
			if priv.Public().(ed25519.PublicKey).Equal(sk.public) {
				sk.private = priv
			}
		} else {
			// Sealed under another key-encryption key: this replica can
			// still publish it, but not sign with it.
			k.opts.Logger.Warn("a signing key cannot be unsealed with the configured key-encryption key", "kid", s.ID)
		}
		keys = append(keys, sk)
	}
	slices.SortFunc(keys, func(a, b signingKey) int { return b.create.Compare(a.create) })
	k.keys = keys
	k.loaded = k.opts.Now()
	return nil
}

func (k *Keys) create(ctx context.Context) (signingKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return signingKey{}, fmt.Errorf("generating a signing key: %w", err)
	}
	now := k.opts.Now().UTC()
	id := "k" + now.Format("20060102") + "-" + strings.ToLower(rand.Text()[:10])
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return signingKey{}, fmt.Errorf("reading a nonce: %w", err)
	}
	signUntil := now.Add(k.opts.RotationInterval)
	verifyUntil := signUntil.Add(k.opts.MaxTokenTTL + k.opts.Leeway)
	err = k.store.InsertKey(ctx, StoredKey{
		ID: id, Public: pub, Nonce: nonce, SealedPrivate: k.aead.Seal(nil, nonce, priv.Seed(), []byte(id)),
		CreateTime: now, SignUntil: signUntil, VerifyUntil: verifyUntil,
	})
	if err != nil {
		return signingKey{}, fmt.Errorf("storing a signing key: %w", err)
	}
	k.opts.Logger.Info("created a signing key", "kid", id, "sign_until", signUntil, "verify_until", verifyUntil)
	return signingKey{id: id, public: pub, private: priv, signUntil: signUntil, verifyUntil: verifyUntil, create: now}, nil
}

// current returns the newest key that may sign now; the caller holds mu.
func (k *Keys) current(now time.Time) (signingKey, bool) {
	for _, sk := range k.keys {
		if sk.private != nil && now.Before(sk.signUntil) {
			return sk, true
		}
	}
	return signingKey{}, false
}

// signer returns the key to sign with, creating one when none may sign.
func (k *Keys) signer(ctx context.Context) (signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Now()
	if k.loaded.IsZero() || now.Sub(k.loaded) > reloadAfter || now.Before(k.loaded) {
		if err := k.load(ctx); err != nil {
			if sk, ok := k.current(now); ok {
				return sk, nil // a store hiccup does not stop sign-in
			}
			return signingKey{}, err
		}
	}
	if sk, ok := k.current(now); ok {
		return sk, nil
	}
	// Another replica may have rotated first; look before creating.
	if err := k.load(ctx); err != nil {
		return signingKey{}, err
	}
	if sk, ok := k.current(now); ok {
		return sk, nil
	}
	sk, err := k.create(ctx)
	if err != nil {
		return signingKey{}, err
	}
	k.keys = append([]signingKey{sk}, k.keys...)
	return sk, nil
}

// Ensure makes sure a key that may sign exists; run it at start-up so the
// JWKS is never empty.
func (k *Keys) Ensure(ctx context.Context) error {
	_, err := k.signer(ctx)
	return err
}

// JWKS returns the public keys that may have signed a token still valid.
func (k *Keys) JWKS(ctx context.Context) ([]*authv1.Jwk, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Now()
	// Read the store every few seconds at most: verifiers ask for the JWKS
	// when they meet an unknown kid, which may be a key another replica just
	// created.
	if k.loaded.IsZero() || now.Sub(k.loaded) > 2*time.Second || now.Before(k.loaded) {
		if err := k.load(ctx); err != nil && k.loaded.IsZero() {
			return nil, err
		}
	}
	out := make([]*authv1.Jwk, 0, len(k.keys))
	for _, sk := range k.keys {
		if now.Before(sk.verifyUntil) {
			out = append(out, &authv1.Jwk{
				Kty: "OKP", Crv: "Ed25519", Use: "sig", Alg: "EdDSA", Kid: sk.id,
				X: base64.RawURLEncoding.EncodeToString(sk.public),
			})
		}
	}
	return out, nil
}

// Maintain creates a new key when the current one is due to stop signing and
// deletes keys that have left the JWKS.
func (k *Keys) Maintain(ctx context.Context) error {
	if _, err := k.signer(ctx); err != nil {
		return err
	}
	if err := k.store.DeleteKeysBefore(ctx, k.opts.Now().Add(-time.Hour)); err != nil {
		return fmt.Errorf("deleting retired signing keys: %w", err)
	}
	return nil
}
