// Package clientip finds the address of the client behind a request.
//
// The connection's peer is the client unless the peer is one of the trusted
// proxies (gateway.trusted_proxies, empty by default); only then is
// X-Forwarded-For believed, read from the right, skipping the trusted proxies
// themselves: entries further left were written by whoever sent the request
// and prove nothing. The address decides the anonymous tier's rate-limit
// bucket, so a client must not be able to pick it.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

// Resolver computes client addresses. The zero value trusts no proxy.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that believes X-Forwarded-For from peers in trusted.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// ClientAddr returns the client's IP address for r (see the package comment),
// or the raw RemoteAddr when it is not an IP address.
func (res *Resolver) ClientAddr(r *http.Request) string {
	peer, ok := parseHostPort(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !res.isTrusted(peer) {
		return peer.String()
	}
	ip := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				// A malformed hop ends the part of the chain that can be
				// believed: the last good address is the answer.
				return ip.String()
			}
			hop = hop.Unmap()
			if !res.isTrusted(hop) {
				return hop.String()
			}
			ip = hop
		}
	}
	return ip.String()
}

func (res *Resolver) isTrusted(ip netip.Addr) bool {
	for _, p := range res.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func parseHostPort(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Middleware records the client address in the request's reqinfo and hands
// the inner handlers a request whose RemoteAddr is the client and that has no
// X-Forwarded-For: grpc-gateway builds the `x-forwarded-for` metadata the
// backends see (auth throttles sign-ups and logins by it) from those two, so
// it then carries exactly the address computed here.
func (res *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, info := reqinfo.Ensure(r)
		addr := res.ClientAddr(r)
		info.ClientAddr = addr
		info.Principal.ClientAddr = addr
		if r.Header.Get("X-Forwarded-For") == "" && r.Header.Get("Forwarded") == "" {
			// The common case: the peer is the client; nothing to rewrite.
			next.ServeHTTP(w, r)
			return
		}
		inner := r.Clone(r.Context())
		inner.Header.Del("X-Forwarded-For")
		inner.Header.Del("Forwarded")
		inner.RemoteAddr = net.JoinHostPort(addr, "0")
		next.ServeHTTP(w, inner)
	})
}
