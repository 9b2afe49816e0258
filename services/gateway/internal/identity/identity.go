// Package identity finds out who is calling the gateway.
//
// An `Authorization: Bearer` access token is verified locally (signature,
// issuer, audience, expiry against auth's JWKS); an `X-API-Key` is resolved
// through auth, with the verifier's short cache. The principal decides the
// rate-limit tier, the shedding priority and whether a response may be cached
// publicly. The gateway does not authorize: the caller's credential travels on
// to the backend as gRPC metadata and each service decides on its own.
//
// A bad, expired or forged credential is never downgraded to anonymous: the
// request is answered 401 with WWW-Authenticate. Identify only records the
// failure, so the rate limiter still counts the request (against the client
// address) before Enforce answers it.
package identity

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Verifier checks credentials; *authn.Verifier implements it.
type Verifier interface {
	VerifyToken(ctx context.Context, raw string) (authn.Principal, error)
	ResolveAPIKey(ctx context.Context, key string) (authn.Principal, error)
}

var _ Verifier = (*authn.Verifier)(nil)

// Identifier is the identity middleware.
type Identifier struct {
	v Verifier
}

// New returns an Identifier that checks credentials with v.
func New(v Verifier) *Identifier { return &Identifier{v: v} }

// Authenticate returns the principal of r: anonymous without a credential,
// or an error (a *problem.Problem, 401 or 503) when the credential is not
// valid or cannot be checked now.
func (id *Identifier) Authenticate(r *http.Request) (authn.Principal, error) {
	auths := r.Header.Values("Authorization")
	keys := r.Header.Values("X-Api-Key") // the canonical form: no allocation
	switch {
	case len(auths) == 0 && len(keys) == 0:
		return authn.Principal{Role: authn.RoleAnonymous}, nil
	case len(auths)+len(keys) > 1:
		// Two credentials would leave it unclear whose request this is.
		return authn.Principal{}, unauthenticated("send exactly one credential: Authorization or X-API-Key")
	case len(auths) == 1:
		scheme, tok, ok := strings.Cut(strings.TrimSpace(auths[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return authn.Principal{}, unauthenticated(`the Authorization header must be "Bearer <access token>"`)
		}
		p, err := id.v.VerifyToken(r.Context(), strings.TrimSpace(tok))
		return p, credentialError(err)
	default:
		p, err := id.v.ResolveAPIKey(r.Context(), strings.TrimSpace(keys[0]))
		return p, credentialError(err)
	}
}

func credentialError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, authn.ErrUnauthenticated):
		msg := strings.TrimPrefix(err.Error(), authn.ErrUnauthenticated.Error()+": ")
		return unauthenticated(msg)
	default:
		// Auth could not be asked (or answered oddly): the credential may be
		// fine, so this is the gateway's failure, not the client's.
		p := problem.New(http.StatusServiceUnavailable, codes.Unavailable, authn.ReasonAuthUnavailable,
			"credentials cannot be checked right now; retry later")
		p.RetryAfter = 2 * time.Second
		return p
	}
}

func unauthenticated(detail string) *problem.Problem {
	p := problem.New(http.StatusUnauthorized, codes.Unauthenticated, problem.ReasonUnauthenticated, detail)
	p.Challenge = problem.InvalidTokenChallenge
	return p
}

// Identify records the caller in the request's reqinfo: the principal, or
// the credential's failure for Enforce to answer.
func (id *Identifier) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, info := reqinfo.Ensure(r)
		p, err := id.Authenticate(r)
		if err != nil {
			info.AuthErr = err
		} else {
			p.ClientAddr = info.ClientAddr
			info.Principal = p
		}
		next.ServeHTTP(w, r)
	})
}

// Enforce answers requests whose credential failed.
func Enforce(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := reqinfo.From(r.Context()).AuthErr; err != nil {
			problem.Write(w, r, problem.FromError(err))
			return
		}
		next.ServeHTTP(w, r)
	})
}
