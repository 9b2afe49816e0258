package identity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/marquee-dev/marquee/services/gateway/internal/identity"
	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// verifier accepts the token "good" and the key "mk_good"; "down" stands for
// auth being unreachable.
type verifier struct{}

func (verifier) VerifyToken(_ context.Context, raw string) (authn.Principal, error) {
	switch raw {
	case "good":
		return authn.Principal{Subject: "u_1", Role: authn.RoleUser}, nil
	case "down":
		return authn.Principal{}, fmt.Errorf("%w: fetching keys", authn.ErrUnavailable)
	}
	return authn.Principal{}, fmt.Errorf("%w: token expired", authn.ErrUnauthenticated)
}

func (verifier) ResolveAPIKey(_ context.Context, key string) (authn.Principal, error) {
	if key == "mk_good" {
		return authn.Principal{Subject: "u_2", Role: authn.RoleAdmin, APIKeyID: "k"}, nil
	}
	return authn.Principal{}, fmt.Errorf("%w: API key not valid", authn.ErrUnauthenticated)
}

func TestAuthenticate(t *testing.T) {
	id := identity.New(verifier{})
	tests := []struct {
		name    string
		headers map[string][]string
		tier    string
		status  int // 0: no error
	}{
		{"anonymous", nil, "anonymous", 0},
		{"bearer", map[string][]string{"Authorization": {"Bearer good"}}, "user", 0},
		{"bearer, any case", map[string][]string{"Authorization": {"bearer good"}}, "user", 0},
		{"API key carries its owner's tier", map[string][]string{"X-Api-Key": {"mk_good"}}, "admin", 0},
		{"bad token is never anonymous", map[string][]string{"Authorization": {"Bearer bad"}}, "", 401},
		{"bad key", map[string][]string{"X-Api-Key": {"mk_bad"}}, "", 401},
		{"other scheme", map[string][]string{"Authorization": {"Basic Zm9vOmJhcg=="}}, "", 401},
		{"empty bearer", map[string][]string{"Authorization": {"Bearer "}}, "", 401},
		{"two credentials", map[string][]string{"Authorization": {"Bearer good"}, "X-Api-Key": {"mk_good"}}, "", 401},
		{"two tokens", map[string][]string{"Authorization": {"Bearer good", "Bearer good"}}, "", 401},
		{"auth unreachable", map[string][]string{"Authorization": {"Bearer down"}}, "", 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			p, err := id.Authenticate(r)
			if tc.status == 0 {
				if err != nil || p.Tier() != tc.tier {
					t.Fatalf("got %+v, %v; want tier %s", p, err, tc.tier)
				}
				return
			}
			var pr *problem.Problem
			if !errors.As(err, &pr) || pr.Status != tc.status {
				t.Fatalf("err = %v, want a %d problem", err, tc.status)
			}
			if tc.status == 401 && pr.Challenge == "" {
				t.Errorf("401 without a challenge")
			}
		})
	}
}

func TestEnforceAnswersAfterIdentify(t *testing.T) {
	var reached bool
	h := identity.New(verifier{}).Identify(identity.Enforce(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		if got := reqinfo.From(r.Context()).Principal.Subject; got != "u_1" {
			t.Errorf("principal %q", got)
		}
	})))
	r, _ := reqinfo.New(httptest.NewRequest("GET", "/", nil))
	r.Header.Set("Authorization", "Bearer good")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !reached {
		t.Fatal("a good credential did not pass")
	}
	reached = false
	r, _ = reqinfo.New(httptest.NewRequest("GET", "/", nil))
	r.Header.Set("Authorization", "Bearer bad")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if reached || w.Code != 401 || w.Header().Get("WWW-Authenticate") != problem.InvalidTokenChallenge {
		t.Errorf("bad credential: reached %v, %d, %q", reached, w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
