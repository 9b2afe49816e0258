package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Login is an account's email and password, for the sign-in part of the
// mix.
type Login struct {
	Email, Password string
}

// Credentials are what the authenticated kinds of the mix send: the
// administrator's token for writes, one bearer token per simulated client
// for the authenticated reads, API keys for the integrations' reads, and the
// clients' passwords for the sign-ins. An empty part leaves its kind out
// (Run moves its share and says so).
type Credentials struct {
	Admin  TokenSource
	Users  []TokenSource
	Keys   []string
	Logins []Login
}

// clientPool registers simulated clients through the gateway, as real
// clients do: each registers, signs in once with its password (one argon2id
// hash), keeps its access token and refreshes it with the refresh-token
// grant shortly before it expires, and creates an API key. Close deletes
// the accounts again (which revokes their keys and tokens).
type clientPool struct {
	client  *http.Client
	base    string
	clients []*simClient
}

// simClient is one simulated client and its sign-in.
type simClient struct {
	pool   *clientPool
	login  Login
	apiKey string

	mu       sync.Mutex
	access   string
	refresh  string
	expires  time.Time
	renewing bool
	err      error
}

// newClientPool registers n clients named after run (so that runs against
// the same stack do not collide), signs each in and gives each an API key.
func newClientPool(ctx context.Context, client *http.Client, base, run string, n int) (*clientPool, error) {
	p := &clientPool{client: client, base: strings.TrimRight(base, "/")}
	for i := range n {
		s := &simClient{pool: p, login: Login{
			Email:    fmt.Sprintf("bench-%s-%d@bench.marquee.local", run, i),
			Password: "bench-" + secret(18),
		}}
		if err := s.register(ctx); err != nil {
			_ = p.Close(ctx)
			return nil, err
		}
		p.clients = append(p.clients, s)
		if err := s.signIn(ctx, map[string]string{"grantType": "password", "username": s.login.Email, "password": s.login.Password}); err != nil {
			_ = p.Close(ctx)
			return nil, err
		}
		if err := s.createKey(ctx); err != nil {
			_ = p.Close(ctx)
			return nil, err
		}
	}
	return p, nil
}

// credentials lists the pool's tokens, keys and logins.
func (p *clientPool) credentials(c *Credentials) {
	for _, s := range p.clients {
		c.Users = append(c.Users, s)
		c.Keys = append(c.Keys, s.apiKey)
		c.Logins = append(c.Logins, s.login)
	}
}

// Close deletes every registered client; it reports the first failure.
func (p *clientPool) Close(ctx context.Context) error {
	var errs []error
	for _, s := range p.clients {
		tok := s.Token()
		if tok == "" {
			continue
		}
		status, b, err := p.do(ctx, http.MethodDelete, "/v1/users/me", nil, http.Header{"Authorization": {"Bearer " + tok}})
		if err == nil && status/100 != 2 {
			err = fmt.Errorf("%d: %.200s", status, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", s.login.Email, err))
		}
	}
	p.clients = nil
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func (p *clientPool) do(ctx context.Context, method, path string, body any, h http.Header) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return resp.StatusCode, b, errRateLimited
	}
	return resp.StatusCode, bytes.TrimSpace(b), nil
}

func (s *simClient) register(ctx context.Context) error {
	status, b, err := s.pool.do(ctx, http.MethodPost, "/v1/users",
		map[string]string{"email": s.login.Email, "password": s.login.Password, "displayName": "bench client"}, nil)
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("%d: %.200s", status, b)
	}
	if err != nil {
		return fmt.Errorf("registering %s: %w", s.login.Email, err)
	}
	return nil
}

func (s *simClient) createKey(ctx context.Context) error {
	status, b, err := s.pool.do(ctx, http.MethodPost, "/v1/users/me/apiKeys",
		map[string]string{"displayName": "bench"}, http.Header{"Authorization": {"Bearer " + s.Token()}})
	var out struct {
		Key string `json:"key"`
	}
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("%d: %.200s", status, b)
	}
	if err == nil {
		if jerr := json.Unmarshal(b, &out); jerr != nil || out.Key == "" {
			err = fmt.Errorf("unexpected answer %.200s", b)
		}
	}
	if err != nil {
		return fmt.Errorf("creating an API key for %s: %w", s.login.Email, err)
	}
	s.apiKey = out.Key
	return nil
}

// Token returns the client's access token. A minute before it expires one
// caller starts a refresh in the background (the refresh-token grant, no
// password hash), and everyone keeps the current token until it lands: a
// request never waits for a renewal, as a real client's would not.
func (s *simClient) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refresh != "" && !s.renewing && time.Until(s.expires) < time.Minute {
		s.renewing = true
		refresh := s.refresh
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.signIn(ctx, map[string]string{"grantType": "refresh_token", "refreshToken": refresh}) // kept in s.err
			s.mu.Lock()
			s.renewing = false
			s.mu.Unlock()
		}()
	}
	return s.access
}

// signIn calls POST /v1/auth/token with grant and keeps the tokens.
func (s *simClient) signIn(ctx context.Context, grant map[string]string) error {
	status, b, err := s.pool.do(ctx, http.MethodPost, "/v1/auth/token", grant, nil)
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("%d: %.200s", status, b)
	}
	var out struct {
		AccessToken  string          `json:"accessToken"`
		RefreshToken string          `json:"refreshToken"`
		ExpiresIn    json.RawMessage `json:"expiresIn"`
	}
	if err == nil {
		if jerr := json.Unmarshal(b, &out); jerr != nil || out.AccessToken == "" {
			err = fmt.Errorf("unexpected answer %.200s", b)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = fmt.Errorf("signing in as %s (%s): %w", s.login.Email, grant["grantType"], err)
		// Try again in a minute rather than on every request.
		s.expires = time.Now().Add(2 * time.Minute)
		return s.err
	}
	secs := expiresIn(out.ExpiresIn)
	s.access, s.expires, s.err = out.AccessToken, time.Now().Add(time.Duration(secs)*time.Second), nil
	if out.RefreshToken != "" {
		s.refresh = out.RefreshToken
	}
	return nil
}

// expiresIn reads a token lifetime in seconds; protojson writes int64 as a
// string, so both forms are accepted, and 15 minutes is assumed when absent.
func expiresIn(raw json.RawMessage) int64 {
	secs, err := strconv.ParseInt(string(bytes.Trim(raw, `"`)), 10, 64)
	if err != nil || secs <= 0 {
		return 15 * 60
	}
	return secs
}
