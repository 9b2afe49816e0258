package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// TokenSource hands out a bearer token: the administrator's (writes,
// preparation, the uncached-path baselines) or a simulated client's; ""
// means none (the requests then go out anonymous).
type TokenSource interface {
	Token() string
}

// StaticToken is a token given on the command line.
type StaticToken string

// Token returns the token.
func (s StaticToken) Token() string { return string(s) }

// passwordTokens signs in with the password grant through the gateway and
// signs in again when the access token nears its expiry, so a run longer
// than a token's lifetime keeps its authenticated traffic authenticated.
type passwordTokens struct {
	client          *http.Client
	base            string
	email, password string

	mu       sync.Mutex
	token    string
	expires  time.Time
	renewing bool
	err      error
}

// PasswordTokens signs in as email at the gateway base now (an error is
// returned when that fails) and keeps the token fresh afterwards.
func PasswordTokens(ctx context.Context, client *http.Client, base, email, password string) (TokenSource, error) {
	p := &passwordTokens{client: client, base: base, email: email, password: password}
	if err := p.signIn(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Token returns the current token, renewing it a minute before it expires.
// A failed renewal keeps the old token (the run then counts 401s, which the
// report shows) rather than stopping the load.
func (p *passwordTokens) Token() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Until(p.expires) < time.Minute && !p.renewing {
		// One caller renews; the others keep using the current token.
		p.renewing = true
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = p.signIn(ctx) // kept in p.err for the report
		cancel()
		p.mu.Lock()
		p.renewing = false
	}
	return p.token
}

func (p *passwordTokens) signIn(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"grantType": "password", "username": p.email, "password": p.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/auth/token", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("signing in: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return p.fail(fmt.Errorf("signing in as %s: %w", p.email, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return p.fail(fmt.Errorf("signing in as %s: %s: %s", p.email, resp.Status, bytes.TrimSpace(b)))
	}
	var out struct {
		AccessToken string          `json:"accessToken"`
		ExpiresIn   json.RawMessage `json:"expiresIn"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" {
		return p.fail(fmt.Errorf("signing in as %s: unexpected answer %.200s", p.email, b))
	}
	// protojson writes int64 as a string; accept a number too.
	secs, err := strconv.ParseInt(string(bytes.Trim(out.ExpiresIn, `"`)), 10, 64)
	if err != nil || secs <= 0 {
		secs = 15 * 60
	}
	p.mu.Lock()
	p.token, p.expires, p.err = out.AccessToken, time.Now().Add(time.Duration(secs)*time.Second), nil
	p.mu.Unlock()
	return nil
}

func (p *passwordTokens) fail(err error) error {
	p.mu.Lock()
	p.err = err
	// Try again in a minute rather than on every request.
	if p.token != "" {
		p.expires = time.Now().Add(2 * time.Minute)
	}
	p.mu.Unlock()
	return err
}
