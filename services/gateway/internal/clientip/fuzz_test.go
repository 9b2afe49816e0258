package clientip_test

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/services/gateway/internal/clientip"
)

// FuzzClientAddr: the client address decides the anonymous rate-limit
// bucket, so a client must not be able to choose it. Whatever RemoteAddr and
// X-Forwarded-For are: behind no trusted proxy the answer is the peer itself;
// behind one it is the peer or one of the forwarded hops, never text the
// client wrote that is not an address; and it never panics.
//
// (Addresses are compared as the resolver prints them: IPv4-mapped IPv6
// unmapped.)
func FuzzClientAddr(f *testing.F) {
	for _, s := range [][2]string{
		{"203.0.113.9", ""},
		{"10.0.0.1", "198.51.100.7"},
		{"10.0.0.1", "1.2.3.4, 10.0.0.2, 198.51.100.7"},
		{"10.0.0.1", "evil, 198.51.100.7"},
		{"10.0.0.1", "10.0.0.3,10.0.0.2"},
		{"::ffff:10.0.0.1", "::ffff:192.0.2.1"},
		{"fe80::1%eth0", "fe80::2%lo"},
		{"10.0.0.1", "\x00,\xff, ,,"},
		{"10.9.9.9", strings.Repeat("1.1.1.1,", 100)},
	} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fe80::/10")}
	f.Fuzz(func(t *testing.T, peerIP, xff string, second bool) {
		// net/http always sets RemoteAddr to the connection's ip:port.
		ip, err := netip.ParseAddr(peerIP)
		if err != nil {
			return
		}
		remote := netip.AddrPortFrom(ip, 1234).String()
		peer := ip.Unmap()
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header.Add("X-Forwarded-For", xff)
			if second {
				r.Header.Add("X-Forwarded-For", "192.0.2.55")
			}
		}
		for i, res := range []*clientip.Resolver{clientip.New(nil), clientip.New(trusted)} {
			got := res.ClientAddr(r)
			if i == 0 || !slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(peer) }) {
				if got != peer.String() {
					t.Fatalf("untrusted peer %s, X-Forwarded-For %q: client address %q", peer, xff, got)
				}
				continue
			}
			a, err := netip.ParseAddr(got)
			if err != nil {
				t.Fatalf("peer %s, X-Forwarded-For %q: client address %q is not an address", peer, xff, got)
			}
			hops := map[netip.Addr]bool{peer: true}
			for _, v := range r.Header.Values("X-Forwarded-For") {
				for _, part := range strings.Split(v, ",") {
					if h, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil {
						hops[h.Unmap()] = true
					}
				}
			}
			if !hops[a] {
				t.Fatalf("peer %s, X-Forwarded-For %q: client address %q is neither", peer, xff, got)
			}
		}
	})
}
