package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestRateLimitsPerTier(t *testing.T) {
	s := startStack(t, withConfig(func(c *app.Config) {
		c.RateLimit.AnonymousPerMinute = 3
		c.RateLimit.UserPerMinute = 5
		c.RateLimit.AdminPerMinute = 0 // unlimited
		c.RateLimit.TokenPerMinute = 2
	}))
	for i, want := range []string{`"anonymous";r=2;t=`, `"anonymous";r=1;t=`, `"anonymous";r=0;t=`} {
		resp, body := s.do("GET", "/v1/genres", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("RateLimit"); !strings.HasPrefix(got, want) {
			t.Errorf("request %d: RateLimit = %q, want prefix %q", i, got, want)
		}
		if got := resp.Header.Get("RateLimit-Policy"); got != `"anonymous";q=3;w=60` {
			t.Errorf("RateLimit-Policy = %q", got)
		}
	}
	resp, body := s.do("GET", "/v1/genres", nil)
	wantProblem(t, resp, body, 429, "RATE_LIMITED")
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	if got := resp.Header.Get("RateLimit"); !strings.HasPrefix(got, `"anonymous";r=0;t=`) || strings.HasSuffix(got, "t=0") {
		t.Errorf("429 RateLimit = %q", got)
	}
	// Bad credentials count against the address too.
	resp, body = s.do("GET", "/v1/genres", nil, bearer("not-a-token"))
	wantProblem(t, resp, body, 429, "RATE_LIMITED")

	// A user has a bucket of its own, and so does the next user.
	for _, sub := range []string{"u_1", "u_2"} {
		tok := s.token(sub, authn.RoleUser)
		for i := range 5 {
			resp, body := s.do("GET", "/v1/genres", nil, bearer(tok))
			if resp.StatusCode != 200 {
				t.Fatalf("%s request %d: %d %s", sub, i, resp.StatusCode, body)
			}
		}
		resp, body := s.do("GET", "/v1/genres", nil, bearer(tok))
		wantProblem(t, resp, body, 429, "RATE_LIMITED")
	}
	// Admins are unlimited here: no policy to announce.
	admin := s.token("admin_1", authn.RoleAdmin)
	for range 10 {
		resp, _ := s.do("GET", "/v1/genres", nil, bearer(admin))
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Policy") != "" {
			t.Fatalf("admin: %d policy %q", resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
		}
	}
	// The token endpoint has its own stricter quota per address, on top of
	// the tier's (an admin token does not lift it: it is per address).
	grant := `{"grantType":"password","username":"a@example.com","password":"correct horse battery"}`
	for i := range 2 {
		resp, body := s.do("POST", "/v1/auth/token", grant, bearer(admin))
		if resp.StatusCode != 200 {
			t.Fatalf("token %d: %d %s", i, resp.StatusCode, body)
		}
		if p := resp.Header.Get("RateLimit-Policy"); !strings.Contains(p, `"token";q=2;w=60`) {
			t.Errorf("token RateLimit-Policy = %q", p)
		}
	}
	resp, body = s.do("POST", "/v1/auth/token", grant, bearer(admin))
	wantProblem(t, resp, body, 429, "RATE_LIMITED")
	resp, _ = s.do("GET", "/v1/genres", nil, bearer(admin))
	if resp.StatusCode != 200 {
		t.Errorf("after the token limit other routes answer %d", resp.StatusCode)
	}
}

func TestRateLimitsSharedThroughRedisAndFallBack(t *testing.T) {
	addr := testenv.Redis(t)
	a := startStack(t, withTelemetry(), withConfig(func(c *app.Config) {
		c.RedisAddr = addr
		c.RateLimit.AnonymousPerMinute = 4
	}))
	b := startStack(t, withBackends(a), withConfig(func(c *app.Config) {
		c.RedisAddr = addr
		c.RateLimit.AnonymousPerMinute = 4
	}))
	for i, s := range []*stack{a, b, a, b} {
		resp, body := s.do("GET", "/v1/genres", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	// The quota is shared: both replicas now refuse.
	for _, s := range []*stack{a, b} {
		resp, body := s.do("GET", "/v1/genres", nil)
		wantProblem(t, resp, body, 429, "RATE_LIMITED")
	}

	// Redis goes away: requests are still answered (each replica counts on
	// its own), and the fallback is counted.
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	_ = rdb.Do(context.Background(), "SHUTDOWN", "NOSAVE").Err() // the connection drops as Redis exits
	eventually(t, 10*time.Second, "redis to stop", func() bool {
		return rdb.Ping(context.Background()).Err() != nil
	})
	for i := range 3 {
		resp, body := a.do("GET", "/v1/genres", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d with Redis down: %d %s", i, resp.StatusCode, body)
		}
		if resp.Header.Get("RateLimit") == "" {
			t.Errorf("no RateLimit header with Redis down")
		}
	}
	metrics := scrape(t, a)
	for _, want := range []string{
		"marquee_gateway_ratelimit_fallbacks_total",
		`marquee_gateway_ratelimit_decisions_total{decision="limited",`,
		`store="local"`,
		`store="redis"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, s *stack) string {
	t.Helper()
	resp, err := s.client.Get("http://" + s.admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping: %d", resp.StatusCode)
	}
	return string(b)
}
