// Package reqinfo carries what the gateway learns about one HTTP request as
// it passes through the middleware chain: the request id, the client address,
// the caller, the matched route, how the cache answered. Each middleware fills
// in its part; the access log, the metrics and the error handler read it.
//
// The Info is created once per request by New and shared by pointer, so a
// middleware deeper in the chain can record something (the route template)
// that an outer one (the access log) reports after the handler returns.
package reqinfo

import (
	"context"
	"net/http"
	"net/url"

	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Info is the per-request state. Fields are written by the one middleware
// that owns them, before the handlers that read them run, so no locking is
// needed: a request is served by one goroutine at a time along the chain.
type Info struct {
	// RequestID is the X-Request-Id the client sent (when acceptable) or one
	// generated for the request.
	RequestID string
	// ClientAddr is the client's IP address as computed from the peer and
	// trusted proxies.
	ClientAddr string
	// Principal is the authenticated caller; anonymous until identity runs.
	Principal authn.Principal
	// AuthErr is set when the request carried a credential that is not valid
	// (or could not be checked): the request is answered with an error once
	// rate limiting has counted it.
	AuthErr error
	// Route is the matched route template, such as "/v1/movies/{id}"; empty
	// until routing, "unmatched" when no route matched.
	Route string
	// Cache is how the response cache answered: "hit", "stale" (stored bytes
	// past their freshness: being revalidated, or standing in for a backend
	// error), "miss", "bypass" or "". A background revalidation's own Info
	// says "revalidate".
	Cache string
	// BodyTooLarge is set when the request body went over the size limit, so
	// the error handler answers 413 rather than the decoder's 400.
	BodyTooLarge bool
	// Streaming marks responses streamed to the client (the export), which
	// are neither buffered nor given the unary request deadline.
	Streaming bool
	// Method and URL are the request's, as the client sent them (the
	// gateway serves HEAD as GET inside).
	Method string
	URL    *url.URL
	// IdempotencyKey is the Idempotency-Key header, the request_id of a
	// create.
	IdempotencyKey string
	// IfMatch is the If-Match header, the etag a write is conditional on.
	IfMatch string
}

// Tier returns the caller's rate-limit tier.
func (i *Info) Tier() string { return i.Principal.Tier() }

// Anonymous reports whether the request carries no credential.
func (i *Info) Anonymous() bool { return i.AuthErr == nil && i.Principal.Anonymous() }

type key struct{}

// New returns r with a fresh Info in its context, and the Info.
func New(r *http.Request) (*http.Request, *Info) {
	info := &Info{
		Principal:      authn.Principal{Role: authn.RoleAnonymous},
		Method:         r.Method,
		URL:            r.URL,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		IfMatch:        r.Header.Get("If-Match"),
	}
	return r.WithContext(context.WithValue(r.Context(), key{}, info)), info
}

// From returns the request's Info; a fresh one when the context has none
// (handlers used on their own in tests).
func From(ctx context.Context) *Info {
	if info, ok := ctx.Value(key{}).(*Info); ok {
		return info
	}
	return &Info{Principal: authn.Principal{Role: authn.RoleAnonymous}}
}

// Ensure returns r and its Info, adding one when r has none.
func Ensure(r *http.Request) (*http.Request, *Info) {
	if info, ok := r.Context().Value(key{}).(*Info); ok {
		return r, info
	}
	return New(r)
}
