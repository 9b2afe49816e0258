package token

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Issuer signs access tokens.
type Issuer struct {
	keys     *Keys
	issuer   string
	audience string
	now      func() time.Time
}

// NewIssuer returns an Issuer that signs with keys, naming issuer and
// audience in every token.
func NewIssuer(keys *Keys, issuer, audience string, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{keys: keys, issuer: issuer, audience: audience, now: now}
}

// Issue returns a token for subject with role, valid for ttl, and its expiry.
func (i *Issuer) Issue(ctx context.Context, subject string, role authn.Role, ttl time.Duration) (string, time.Time, error) {
	sk, err := i.keys.signer(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(ttl)
	claims := authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{i.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Role: role,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = sk.id
	raw, err := tok.SignedString(sk.private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing token: %w", err)
	}
	return raw, exp, nil
}
