// Package apikey manages API keys: long-lived credentials that act as their
// owner. A key is "mk_" followed by 32 random bytes in base32 (256 bits); the
// service stores only its SHA-256 and a short prefix to recognise it by, so
// the secret is shown once, when it is created, and never again.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Errors of the service and its Store.
var (
	ErrNotFound = errors.New("API key not found")
	// ErrTooManyKeys caps the keys of one user, so a leaked credential
	// cannot mint keys without end.
	ErrTooManyKeys = errors.New("too many API keys")
	// ErrInvalidPageToken: the page token is malformed or belongs to
	// another listing.
	ErrInvalidPageToken = errors.New("invalid page token")
)

// InvalidInputError reports a field the caller got wrong.
type InvalidInputError struct{ Field, Description string }

func (e *InvalidInputError) Error() string { return e.Field + ": " + e.Description }

// Limits.
const (
	MaxKeysPerUser    = 100
	MaxDisplayNameLen = 100
	DefaultPageSize   = 20
	MaxPageSize       = 100
	prefixLen         = len(authn.APIKeyPrefix) + 8
	secretLen         = len(authn.APIKeyPrefix) + 52 // base32 of 32 bytes, unpadded
)

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key is an API key without its secret.
type Key struct {
	ID          string
	UserID      string
	DisplayName string
	Prefix      string // the secret's first characters, "mk_" and 8 more
	Hash        string // hex SHA-256 of the secret
	CreateTime  time.Time
}

// Store keeps API keys.
type Store interface {
	// InsertKey stores k.
	InsertKey(ctx context.Context, k Key) error
	// GetKeyByHash returns the key with the hash, or ErrNotFound.
	GetKeyByHash(ctx context.Context, hash string) (Key, error)
	// ListKeys returns up to limit keys of userID with ids above afterID, in
	// id order (which is creation order).
	ListKeys(ctx context.Context, userID, afterID string, limit int) ([]Key, error)
	// CountKeys returns how many keys userID has.
	CountKeys(ctx context.Context, userID string) (int64, error)
	// DeleteKey removes the key id of userID, or returns ErrNotFound.
	DeleteKey(ctx context.Context, userID, id string) error
	// DeleteUserKeys removes every key of userID.
	DeleteUserKeys(ctx context.Context, userID string) error
}

// Owner is what resolution needs to know about a key's owner.
type Owner struct {
	Role   authn.Role
	Active bool
}

// OwnerFunc looks a user up; it returns ok false when the user is gone.
type OwnerFunc func(ctx context.Context, userID string) (o Owner, ok bool, err error)

// Service is the API keys' domain logic.
type Service struct {
	store Store
	owner OwnerFunc
	now   func() time.Time
}

// NewService returns a Service over store that asks owner about key owners.
func NewService(store Store, owner OwnerFunc, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, owner: owner, now: now}
}

// Hash returns the stored form of a key's secret.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create makes a key for userID and returns it with its secret, which is not
// kept.
func (s *Service) Create(ctx context.Context, userID, displayName string) (Key, string, error) {
	displayName = strings.TrimSpace(displayName)
	if utf8.RuneCountInString(displayName) > MaxDisplayNameLen {
		return Key{}, "", &InvalidInputError{"api_key.display_name", fmt.Sprintf("must be at most %d characters", MaxDisplayNameLen)}
	}
	if strings.ContainsFunc(displayName, unicode.IsControl) {
		return Key{}, "", &InvalidInputError{"api_key.display_name", "must not contain control characters"}
	}
	n, err := s.store.CountKeys(ctx, userID)
	if err != nil {
		return Key{}, "", fmt.Errorf("counting API keys: %w", err)
	}
	if n >= MaxKeysPerUser {
		return Key{}, "", ErrTooManyKeys
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	secret := authn.APIKeyPrefix + strings.ToLower(encoding.EncodeToString(b))
	k := Key{
		ID:          "k_" + ulid.Make().String(),
		UserID:      userID,
		DisplayName: displayName,
		Prefix:      secret[:prefixLen],
		Hash:        Hash(secret),
		CreateTime:  s.now().UTC(),
	}
	if err := s.store.InsertKey(ctx, k); err != nil {
		return Key{}, "", fmt.Errorf("storing API key: %w", err)
	}
	return k, secret, nil
}

// List returns a page of userID's keys and the token of the next page ("" on
// the last). Page tokens are bound to the user.
func (s *Service) List(ctx context.Context, userID string, pageSize int, pageToken string) ([]Key, string, error) {
	switch {
	case pageSize < 0:
		return nil, "", &InvalidInputError{"page_size", "must not be negative"}
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	after := ""
	if pageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil {
			return nil, "", ErrInvalidPageToken
		}
		owner, last, ok := strings.Cut(string(raw), "\x00")
		if !ok || owner != userID || last == "" {
			return nil, "", ErrInvalidPageToken
		}
		after = last
	}
	keys, err := s.store.ListKeys(ctx, userID, after, pageSize+1)
	if err != nil {
		return nil, "", fmt.Errorf("listing API keys: %w", err)
	}
	next := ""
	if len(keys) > pageSize {
		keys = keys[:pageSize]
		next = base64.RawURLEncoding.EncodeToString([]byte(userID + "\x00" + keys[len(keys)-1].ID))
	}
	return keys, next, nil
}

// Delete revokes userID's key id.
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	if id == "" {
		return &InvalidInputError{"id", "is required"}
	}
	return s.store.DeleteKey(ctx, userID, id)
}

// DeleteUserKeys revokes every key of userID.
func (s *Service) DeleteUserKeys(ctx context.Context, userID string) error {
	return s.store.DeleteUserKeys(ctx, userID)
}

// Resolve returns the key with secret and its owner's principal; ErrNotFound
// when the key is malformed, unknown or revoked, or its owner is disabled or
// gone.
func (s *Service) Resolve(ctx context.Context, secret string) (Key, authn.Principal, error) {
	if len(secret) != secretLen || !strings.HasPrefix(secret, authn.APIKeyPrefix) {
		return Key{}, authn.Principal{}, ErrNotFound
	}
	k, err := s.store.GetKeyByHash(ctx, Hash(secret))
	if err != nil {
		return Key{}, authn.Principal{}, err
	}
	o, ok, err := s.owner(ctx, k.UserID)
	if err != nil {
		return Key{}, authn.Principal{}, fmt.Errorf("loading the key's owner: %w", err)
	}
	if !ok || !o.Active {
		return Key{}, authn.Principal{}, ErrNotFound
	}
	return k, authn.Principal{Subject: k.UserID, Role: o.Role, APIKeyID: k.ID}, nil
}
