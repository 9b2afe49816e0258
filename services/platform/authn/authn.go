// Package authn is how every Marquee service learns who is calling it and
// decides whether the caller may do what it asks.
//
// A Verifier reads the caller's credential from incoming gRPC metadata
// (`authorization: Bearer <access token>` or `x-api-key: <key>`), checks it and
// puts a Principal in the context; Require, called at the top of each handler,
// answers UNAUTHENTICATED or PERMISSION_DENIED when the principal's role is not
// allowed. A request with no credential is anonymous; a request with a bad,
// expired or forged credential is UNAUTHENTICATED and never anonymous.
//
// Access tokens are EdDSA (Ed25519) JWTs signed by the auth service. They are
// verified locally against auth's JSON Web Key Set, fetched through
// AuthService.GetJwks, cached, and fetched again when a token names a key id
// the cache does not hold (at most once per JWKSRefreshMinInterval, so forged
// key ids cannot flood auth). Only the EdDSA algorithm is accepted (RFC 8725):
// "none", HS256 and every other algorithm are refused before any key is used.
// The issuer, audience, expiry (required), not-before and issued-at claims are
// checked with a small leeway for clock skew.
//
// API keys are resolved through AuthService.ResolveApiKey, authenticated with a
// service token from a TokenSource, and the answer (positive or negative) is
// cached for APIKeyCacheTTL, at most 30 seconds.
//
// # How quickly a disabled, deleted or demoted user loses access
//
// Access tokens are checked locally, with no round trip to auth, so they stay
// valid until they expire: a disabled or deleted user's access tokens keep
// working in other services for at most their lifetime (auth.access_token_ttl,
// 15 minutes by default), and a role change reaches them within the same bound.
// Auth itself looks the user up on every call that acts on the caller's
// account, so there the effect is immediate.
//
// API keys and refresh tokens are checked against auth's database: a refresh
// token of a disabled or deleted user is refused at once (auth checks the user
// on every refresh), and an API key stops working within APIKeyCacheTTL (30
// seconds at most, the bound enforced by NewVerifier) because that is how long
// a Verifier may remember auth's answer.
//
// Service tokens (role service, from the client_credentials grant) live five
// minutes; a TokenSource refreshes them before they expire.
package authn

import (
	"context"
	"errors"
	"slices"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

// Role sets what a principal may do and its rate-limit tier.
type Role string

// The roles. RoleAnonymous is the role of a caller without a credential.
const (
	RoleAnonymous Role = "anonymous"
	RoleUser      Role = "user"
	RoleAdmin     Role = "admin"
	RoleService   Role = "service"
)

// Reasons of the status errors this package returns (google.rpc.ErrorInfo).
const (
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonPermissionDenied = "PERMISSION_DENIED"
	ReasonAuthUnavailable  = "AUTH_UNAVAILABLE"
)

// APIKeyPrefix starts every API key, so a key is recognisable in logs and by
// secret scanners and cannot be mistaken for a token.
const APIKeyPrefix = "mk_"

// ErrUnauthenticated is wrapped by every error that means "this credential is
// not valid": malformed, forged, expired, revoked.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrUnavailable is wrapped by errors that mean the credential could not be
// checked now (auth unreachable); the caller may retry.
var ErrUnavailable = errors.New("auth unavailable")

// Principal is the caller of a request.
type Principal struct {
	// Subject is the user id, the service id, or "" when anonymous.
	Subject string
	// Role is the caller's role; RoleAnonymous without a credential.
	Role Role
	// APIKeyID is set when the caller authenticated with an API key.
	APIKeyID string
	// ClientAddr is the client's IP address: the gRPC peer's, or the one a
	// trusted proxy put in `x-forwarded-for`.
	ClientAddr string
}

// Tier returns the caller's rate-limit tier: "anonymous", "user", "admin" or
// "service". An API key carries its owner's tier.
func (p Principal) Tier() string {
	switch p.Role {
	case RoleUser, RoleAdmin, RoleService:
		return string(p.Role)
	default:
		return string(RoleAnonymous)
	}
}

// Anonymous reports whether the caller presented no credential.
func (p Principal) Anonymous() bool { return p.Tier() == string(RoleAnonymous) }

type principalKey struct{}

// FromContext returns the principal in ctx, or an anonymous principal when
// there is none.
func FromContext(ctx context.Context) Principal {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p
	}
	return Principal{Role: RoleAnonymous}
}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	if p.Role == "" {
		p.Role = RoleAnonymous
	}
	return context.WithValue(ctx, principalKey{}, p)
}

// Require returns nil when the context's principal has one of roles, else a
// status error: UNAUTHENTICATED (reason UNAUTHENTICATED) for an anonymous
// caller, PERMISSION_DENIED (reason PERMISSION_DENIED) otherwise. Listing
// RoleAnonymous lets everyone through, so every handler can state its rule
// with one call, even the public ones.
func Require(ctx context.Context, roles ...Role) error {
	p := FromContext(ctx)
	if slices.Contains(roles, RoleAnonymous) || slices.Contains(roles, Role(p.Tier())) {
		return nil
	}
	if p.Anonymous() {
		return apierr.New(codes.Unauthenticated, ReasonUnauthenticated, "this call needs a credential")
	}
	return apierr.New(codes.PermissionDenied, ReasonPermissionDenied, "the caller's role may not make this call")
}

// Claims are the claims of a Marquee access token: the registered ones (iss,
// sub, aud, exp, nbf, iat, jti) and the role. Auth signs them; verifiers read
// them.
type Claims struct {
	jwt.RegisteredClaims
	Role Role `json:"role"`
}

// RoleFromProto maps the API's role to a Role; ROLE_UNSPECIFIED and unknown
// values map to "".
func RoleFromProto(r authv1.Role) Role {
	switch r {
	case authv1.Role_ROLE_USER:
		return RoleUser
	case authv1.Role_ROLE_ADMIN:
		return RoleAdmin
	case authv1.Role_ROLE_SERVICE:
		return RoleService
	default:
		return ""
	}
}

// Proto maps r to the API's role; RoleAnonymous and unknown roles map to
// ROLE_UNSPECIFIED.
func (r Role) Proto() authv1.Role {
	switch r {
	case RoleUser:
		return authv1.Role_ROLE_USER
	case RoleAdmin:
		return authv1.Role_ROLE_ADMIN
	case RoleService:
		return authv1.Role_ROLE_SERVICE
	default:
		return authv1.Role_ROLE_UNSPECIFIED
	}
}
