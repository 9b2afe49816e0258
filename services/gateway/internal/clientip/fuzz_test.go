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
func FuzzClientAddr(f *testing.F) {
	for _, s := range [][2]string{
		{"203.0.113.9:1234", ""},
		{"10.0.0.1:443", "198.51.100.7"},
		{"10.0.0.1:443", "1.2.3.4, 10.0.0.2, 198.51.100.7"},
		{"10.0.0.1:443", "evil, 198.51.100.7"},
		{"10.0.0.1:443", "10.0.0.3,10.0.0.2"},
		{"[::ffff:10.0.0.1]:80", "::ffff:192.0.2.1"},
		{"[fe80::1%eth0]:80", "fe80::2%lo"},
		{"not-an-address", "1.1.1.1"},
		{"10.0.0.1:443", "\x00,\xff, ,,"},
		{"@", strings.Repeat("1.1.1.1,", 100)},
	} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fe80::/10")}
	f.Fuzz(func(t *testing.T, remote, xff string, second bool) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header.Add("X-Forwarded-For", xff)
			if second {
				r.Header.Add("X-Forwarded-For", "192.0.2.55")
			}
		}
		peer, peerOK := parsePeer(remote)
		for _, res := range []*clientip.Resolver{clientip.New(nil), clientip.New(trusted)} {
			got := res.ClientAddr(r)
			if !peerOK {
				if got != remote {
					t.Fatalf("RemoteAddr %q is no address, answer %q", remote, got)
				}
				continue
			}
			if !slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(peer) }) || res == nil {
				if got != peer.String() {
					t.Fatalf("untrusted peer %s, X-Forwarded-For %q: client address %q", peer, xff, got)
				}
				continue
			}
			a, err := netip.ParseAddr(got)
			if err != nil {
				t.Fatalf("peer %s, X-Forwarded-For %q: client address %q is not an address", peer, xff, got)
			}
			if a != peer && !strings.Contains(strings.Join(r.Header.Values("X-Forwarded-For"), ","), strings.TrimPrefix(a.String(), "::ffff:")) {
				t.Fatalf("peer %s, X-Forwarded-For %q: client address %q is neither", peer, xff, got)
			}
		}
	})
}

// parsePeer reads RemoteAddr as the resolver must: host:port or a bare
// address, IPv4-mapped addresses unmapped.
func parsePeer(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.HasPrefix(s, "[") {
		host = strings.Trim(s[:i], "[]")
	} else if i >= 0 && strings.Count(s, ":") == 1 {
		host = s[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
