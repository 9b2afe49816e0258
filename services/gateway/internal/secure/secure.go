// Package secure sets the response headers that protect browsers and answers
// cross-origin (CORS) requests for an allow-list of origins.
//
// Every response gets X-Content-Type-Options: nosniff, a restrictive
// Content-Security-Policy (the docs page sets its own), Referrer-Policy and
// X-Frame-Options; Strict-Transport-Security only when the request came over
// TLS (sent over plain HTTP it would be ignored, and behind a TLS-terminating
// proxy that proxy owns it). Go's server sends no Server header, so no version
// is announced.
//
// CORS is off unless gateway.cors_allowed_origins lists origins ("*" allows
// any). Credentials travel in headers, never cookies, so
// Access-Control-Allow-Credentials is never sent.
package secure

import (
	"net/http"
	"slices"
	"strings"
)

// Options configure the middleware.
type Options struct {
	// AllowedOrigins are the origins allowed to call the API from a browser,
	// such as "https://app.example.com"; "*" allows every origin.
	AllowedOrigins []string
}

// Headers is the middleware.
type Headers struct {
	nosniff, csp, referrer, frame, hsts []string

	origins []string
	any     bool
	expose  string
	methods string
	headers string
	maxAgeS string
}

// New returns the middleware.
func New(opts Options) *Headers {
	h := &Headers{
		nosniff:  []string{"nosniff"},
		csp:      []string{"default-src 'none'; frame-ancestors 'none'"},
		referrer: []string{"no-referrer"},
		frame:    []string{"DENY"},
		hsts:     []string{"max-age=63072000; includeSubDomains"},
		expose:   "ETag, Link, Location, RateLimit, RateLimit-Policy, Retry-After, X-Request-Id",
		methods:  "GET, HEAD, POST, PATCH, DELETE",
		headers:  "Authorization, Content-Type, X-API-Key, Idempotency-Key, If-Match, If-None-Match, X-Request-Id",
		maxAgeS:  "600",
	}
	for _, o := range opts.AllowedOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			h.any = true
		default:
			h.origins = append(h.origins, strings.ToLower(o))
		}
	}
	return h
}

func (h *Headers) allowed(origin string) bool {
	return h.any || slices.Contains(h.origins, strings.ToLower(origin))
}

// Handler wraps next.
func (h *Headers) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		// Shared, clipped value slices: no allocation per request, and an
		// Add by a later handler copies instead of writing into them.
		hdr["X-Content-Type-Options"] = h.nosniff
		hdr["Content-Security-Policy"] = h.csp
		hdr["Referrer-Policy"] = h.referrer
		hdr["X-Frame-Options"] = h.frame
		if r.TLS != nil {
			hdr["Strict-Transport-Security"] = h.hsts
		}

		origin := r.Header.Get("Origin")
		if origin == "" || (!h.any && len(h.origins) == 0) {
			next.ServeHTTP(w, r)
			return
		}
		hdr.Add("Vary", "Origin")
		ok := h.allowed(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight: answered here, whatever the path.
			hdr.Add("Vary", "Access-Control-Request-Method")
			hdr.Add("Vary", "Access-Control-Request-Headers")
			if ok {
				hdr.Set("Access-Control-Allow-Origin", h.originValue(origin))
				hdr.Set("Access-Control-Allow-Methods", h.methods)
				hdr.Set("Access-Control-Allow-Headers", h.headers)
				hdr.Set("Access-Control-Max-Age", h.maxAgeS)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			hdr.Set("Access-Control-Allow-Origin", h.originValue(origin))
			hdr.Set("Access-Control-Expose-Headers", h.expose)
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Headers) originValue(origin string) string {
	if h.any {
		return "*"
	}
	return origin
}
