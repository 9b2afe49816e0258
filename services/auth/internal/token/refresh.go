package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RefreshPrefix starts every refresh token.
const RefreshPrefix = "mr_"

// Errors of the refresh-token grant.
var (
	// ErrInvalidRefreshToken: unknown, expired, revoked, or its user is
	// disabled or gone.
	ErrInvalidRefreshToken = errors.New("refresh token not valid")
	// ErrRefreshTokenReused: the token had been used already, so its whole
	// family is now revoked (someone holds a copy).
	ErrRefreshTokenReused = errors.New("refresh token reused; its family is revoked")
	ErrNotFound           = errors.New("not found")
)

// RefreshToken is one refresh token as stored: only its hash.
type RefreshToken struct {
	Hash       string // hex SHA-256 of the token
	Family     string
	UserID     string
	CreateTime time.Time
	ExpireTime time.Time
	Used       bool
}

// Family is the chain of refresh tokens descending from one sign-in.
type Family struct {
	ID         string
	UserID     string
	Revoked    bool
	CreateTime time.Time
}

// RefreshStore keeps refresh tokens and their families.
type RefreshStore interface {
	InsertFamily(ctx context.Context, f Family) error
	// GetFamily returns the family or ErrNotFound.
	GetFamily(ctx context.Context, id string) (Family, error)
	RevokeFamily(ctx context.Context, id string) error
	// RevokeUserFamilies revokes every family of the user.
	RevokeUserFamilies(ctx context.Context, userID string) error
	InsertRefresh(ctx context.Context, t RefreshToken) error
	// GetRefresh returns the token with the hash or ErrNotFound.
	GetRefresh(ctx context.Context, hash string) (RefreshToken, error)
	// MarkRefreshUsed marks the token used when it was not; it reports
	// whether it did, so of two concurrent uses only one wins.
	MarkRefreshUsed(ctx context.Context, hash string) (bool, error)
	// DeleteExpired removes tokens that expired before t.
	DeleteExpired(ctx context.Context, t time.Time) error
}

// Locker serialises work on one key inside this process (the platform's
// mongodb.DocLocks: a no-op on MongoDB, whose conditional updates are atomic,
// a mutex on FerretDB, whose are not).
type Locker interface {
	Lock(key string) (unlock func())
}

// Refresher issues, rotates and revokes refresh tokens.
type Refresher struct {
	store RefreshStore
	locks Locker
	ttl   time.Duration
	now   func() time.Time
}

// NewRefresher returns a Refresher whose tokens live ttl after their issue.
func NewRefresher(store RefreshStore, locks Locker, ttl time.Duration, now func() time.Time) *Refresher {
	if now == nil {
		now = time.Now
	}
	return &Refresher{store: store, locks: locks, ttl: ttl, now: now}
}

// HashRefresh returns the stored form of a refresh token.
func HashRefresh(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

func newRefreshSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return RefreshPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func wellFormed(raw string) bool {
	return strings.HasPrefix(raw, RefreshPrefix) && len(raw) == len(RefreshPrefix)+43
}

// Start begins a new family for userID (a password sign-in) and returns its
// first token.
func (r *Refresher) Start(ctx context.Context, userID string) (string, error) {
	now := r.now().UTC()
	fam := Family{ID: "f_" + strings.ToLower(rand.Text()), UserID: userID, CreateTime: now}
	if err := r.store.InsertFamily(ctx, fam); err != nil {
		return "", fmt.Errorf("storing refresh family: %w", err)
	}
	return r.issue(ctx, fam, now)
}

func (r *Refresher) issue(ctx context.Context, fam Family, now time.Time) (string, error) {
	raw := newRefreshSecret()
	err := r.store.InsertRefresh(ctx, RefreshToken{
		Hash: HashRefresh(raw), Family: fam.ID, UserID: fam.UserID, CreateTime: now, ExpireTime: now.Add(r.ttl),
	})
	if err != nil {
		return "", fmt.Errorf("storing refresh token: %w", err)
	}
	return raw, nil
}

// Rotate exchanges a refresh token for a new one of the same family and
// returns the user it belongs to. active is asked whether the user may still
// sign in. A token used before revokes its family (ErrRefreshTokenReused).
func (r *Refresher) Rotate(ctx context.Context, raw string, active func(ctx context.Context, userID string) (bool, error)) (userID, next string, err error) {
	if !wellFormed(raw) {
		return "", "", ErrInvalidRefreshToken
	}
	hash := HashRefresh(raw)
	t, err := r.store.GetRefresh(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return "", "", ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", fmt.Errorf("loading refresh token: %w", err)
	}
	// One family's rotations run one at a time, so a token used twice at
	// the same moment is seen as reused even where conditional updates are
	// not atomic.
	unlock := r.locks.Lock("refresh_families/" + t.Family)
	defer unlock()

	fam, err := r.store.GetFamily(ctx, t.Family)
	if errors.Is(err, ErrNotFound) || (err == nil && fam.Revoked) {
		return "", "", ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", fmt.Errorf("loading refresh family: %w", err)
	}
	won, err := r.store.MarkRefreshUsed(ctx, hash)
	if err != nil {
		return "", "", fmt.Errorf("using refresh token: %w", err)
	}
	if !won {
		if err := r.store.RevokeFamily(ctx, fam.ID); err != nil {
			return "", "", fmt.Errorf("revoking refresh family: %w", err)
		}
		return "", "", ErrRefreshTokenReused
	}
	now := r.now().UTC()
	if !now.Before(t.ExpireTime) {
		return "", "", ErrInvalidRefreshToken
	}
	ok, err := active(ctx, fam.UserID)
	if err != nil {
		return "", "", err
	}
	if !ok {
		if err := r.store.RevokeFamily(ctx, fam.ID); err != nil {
			return "", "", fmt.Errorf("revoking refresh family: %w", err)
		}
		return "", "", ErrInvalidRefreshToken
	}
	next, err = r.issue(ctx, fam, now)
	if err != nil {
		return "", "", err
	}
	return fam.UserID, next, nil
}

// Revoke revokes the family of raw when it belongs to userID (any user's when
// admin is true). An unknown token, or another user's, is no error: the
// answer tells nothing about tokens the caller does not hold.
func (r *Refresher) Revoke(ctx context.Context, raw, userID string, admin bool) error {
	if !wellFormed(raw) {
		return nil
	}
	t, err := r.store.GetRefresh(ctx, HashRefresh(raw))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading refresh token: %w", err)
	}
	if t.UserID != userID && !admin {
		return nil
	}
	if err := r.store.RevokeFamily(ctx, t.Family); err != nil {
		return fmt.Errorf("revoking refresh family: %w", err)
	}
	return nil
}

// RevokeUser revokes every refresh token of userID.
func (r *Refresher) RevokeUser(ctx context.Context, userID string) error {
	if err := r.store.RevokeUserFamilies(ctx, userID); err != nil {
		return fmt.Errorf("revoking the user's refresh tokens: %w", err)
	}
	return nil
}

// Cleanup deletes expired tokens.
func (r *Refresher) Cleanup(ctx context.Context) error {
	return r.store.DeleteExpired(ctx, r.now().UTC())
}
