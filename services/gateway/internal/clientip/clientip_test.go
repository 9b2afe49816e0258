package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/marquee-dev/marquee/services/gateway/internal/clientip"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

func TestClientAddr(t *testing.T) {
	trusted, err := authn.ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	res := clientip.New(trusted)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"no proxy", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted peer's XFF is ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer, one hop", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"rightmost untrusted hop wins", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"spoofed left entries are ignored", "10.1.2.3:4000", []string{"1.1.1.1", "198.51.100.1"}, "198.51.100.1"},
		{"bare trusted address", "192.0.2.1:80", []string{"198.51.100.7"}, "198.51.100.7"},
		{"all hops trusted", "10.1.2.3:4000", []string{"10.2.2.2, 10.3.3.3"}, "10.2.2.2"},
		{"malformed hop stops the chain", "10.1.2.3:4000", []string{"198.51.100.1, garbage, 10.4.4.4"}, "10.4.4.4"},
		{"trusted peer without XFF", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"IPv6 peer", "[2001:db8::1]:443", []string{"2001:db9::5"}, "2001:db9::5"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:443", []string{"198.51.100.2"}, "198.51.100.2"},
		{"untrusted IPv6", "[2002::1]:443", []string{"198.51.100.2"}, "2002::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := res.ClientAddr(r); got != tc.want {
				t.Errorf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNoTrustedProxiesByDefault(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := clientip.New(nil).ClientAddr(r); got != "127.0.0.1" {
		t.Errorf("ClientAddr = %q, want the peer", got)
	}
}

func TestMiddlewareHandsOnTheClientAddress(t *testing.T) {
	trusted, _ := authn.ParsePrefixes([]string{"10.0.0.0/8"})
	var seenRemote, seenXFF, seenInfo string
	h := clientip.New(trusted).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenRemote, seenXFF = r.RemoteAddr, r.Header.Get("X-Forwarded-For")
		seenInfo = reqinfo.From(r.Context()).ClientAddr
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "1.1.1.1, 198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seenRemote != "198.51.100.1:0" || seenXFF != "" || seenInfo != "198.51.100.1" {
		t.Errorf("inner request: RemoteAddr %q XFF %q info %q", seenRemote, seenXFF, seenInfo)
	}
	if r.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("the caller's request was modified")
	}
}
