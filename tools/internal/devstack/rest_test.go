package devstack_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/tools/internal/devstack"
)

// client makes REST calls against the stack and decodes JSON answers.
type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path string, body string, headers ...string) (*http.Response, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return resp, out
}

func (c client) expect(want int, method, path, body string, headers ...string) map[string]any {
	c.t.Helper()
	resp, out := c.do(method, path, body, headers...)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: got %d, want %d: %v", method, path, resp.StatusCode, want, out)
	}
	if want >= 400 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			c.t.Errorf("%s %s: %d with Content-Type %q, want a problem document", method, path, want, ct)
		}
	}
	return out
}

// TestRESTScenarios walks API.md's REST scenarios end to end through the
// gateway: sign-up and sign-in, API keys, admin writes with idempotency and
// etags, and the errors each misuse earns.
func TestRESTScenarios(t *testing.T) {
	a := addrs(t)
	c := client{t: t, base: a.REST}
	email := fmt.Sprintf("reader%d@example.com", time.Now().UnixNano())

	// A user registers, signs in and sees itself, by token and by API key.
	c.expect(201, "POST", "/v1/users", `{"email":"`+email+`","password":"correct horse battery staple","displayName":"Reader"}`)
	c.expect(400, "POST", "/v1/users", `{"email":"weak@example.com","password":"password"}`)
	tok := c.expect(200, "POST", "/v1/auth/token", `{"grantType":"password","username":"`+email+`","password":"correct horse battery staple"}`)
	user := "Bearer " + tok["accessToken"].(string)
	c.expect(401, "POST", "/v1/auth/token", `{"grantType":"password","username":"`+email+`","password":"wrong password here"}`)
	me := c.expect(200, "GET", "/v1/users/me", "", "Authorization", user)
	if me["role"] != "ROLE_USER" {
		t.Errorf("a new user has role %v, want ROLE_USER", me["role"])
	}
	key := c.expect(201, "POST", "/v1/users/me/apiKeys", `{"displayName":"ci"}`, "Authorization", user)
	c.expect(200, "GET", "/v1/users/me", "", "X-API-Key", key["key"].(string))
	c.expect(401, "GET", "/v1/users/me", "", "X-API-Key", "mk_forged0000000000000000000000000000")
	resp, _ := c.do("GET", "/v1/movies?page_size=1", "", "Authorization", "Bearer not-a-token")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("a bad bearer token: got %d with WWW-Authenticate %q, want 401 with the header", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	c.expect(401, "GET", "/v1/movies:export", "")

	// The administrator writes; a user may not.
	adminTok, err := devstack.DevAdminToken(t.Context(), stack.dir, a.Auth)
	if err != nil {
		t.Fatal(err)
	}
	admin := "Bearer " + adminTok
	body := `{"title":"  Scenario Film ","year":2020,"genres":[" drama ","SCI-FI"],"directors":[{"name":"Jane Scenario"}]}`
	c.expect(403, "POST", "/v1/movies", body, "Authorization", user)
	c.expect(401, "POST", "/v1/movies", body)
	idem := fmt.Sprintf("scenario-%d", time.Now().UnixNano())
	m := c.expect(201, "POST", "/v1/movies", body, "Authorization", admin, "Idempotency-Key", idem)
	again := c.expect(201, "POST", "/v1/movies", body, "Authorization", admin, "Idempotency-Key", idem)
	if m["id"] != again["id"] {
		t.Errorf("a retried create with the same Idempotency-Key made a second movie: %v and %v", m["id"], again["id"])
	}
	if m["title"] != "Scenario Film" {
		t.Errorf("title %q, want it trimmed", m["title"])
	}
	id := m["id"].(string)
	etag := m["etag"].(string)

	// Bad input is a 4xx naming what is wrong, and changes nothing.
	c.expect(400, "POST", "/v1/movies", `{"title":"x","bogus":1}`, "Authorization", admin)
	c.expect(400, "POST", "/v1/movies", `{"title":"x","year":1500}`, "Authorization", admin)
	c.expect(400, "POST", "/v1/movies", `{"title":`, "Authorization", admin)
	c.expect(413, "POST", "/v1/movies", `{"title":"`+strings.Repeat("a", 2<<20)+`"}`, "Authorization", admin)
	c.expect(400, "PATCH", "/v1/movies/"+id+"?update_mask=createTime", `{"title":"x"}`, "Authorization", admin)

	// Conditional writes: the current etag wins once; the stale one is 412.
	c.expect(200, "PATCH", "/v1/movies/"+id+"?update_mask=title", `{"title":"Scenario Film II"}`, "Authorization", admin, "If-Match", etag)
	p := c.expect(412, "PATCH", "/v1/movies/"+id+"?update_mask=title", `{"title":"Scenario Film III"}`, "Authorization", admin, "If-Match", etag)
	if p["reason"] != "ETAG_MISMATCH" {
		t.Errorf("a stale etag's problem has reason %v, want ETAG_MISMATCH", p["reason"])
	}
	got := c.expect(200, "GET", "/v1/movies/"+id, "")
	if got["title"] != "Scenario Film II" {
		t.Errorf("after a 412 the title is %q, want the earlier update's", got["title"])
	}

	// Routing errors.
	resp, _ = c.do("PUT", "/v1/movies", "")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Errorf("PUT /v1/movies: got %d with Allow %q, want 405 with Allow", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// Delete leaves a tombstone: the movie is gone, the feed says so.
	c.expect(200, "DELETE", "/v1/movies/"+id, "", "Authorization", admin)
	c.expect(404, "GET", "/v1/movies/"+id, "")
	// Tail the feed as a client would: follow the tokens, and when caught
	// up, ask again a little later (fresh writes are delivered a bounded
	// number at a time until they settle).
	found := false
	token := ""
	for deadline := time.Now().Add(45 * time.Second); !found && time.Now().Before(deadline); {
		path := "/v1/movies:changes?page_size=1000"
		if token != "" {
			path += "&page_token=" + token
		}
		page := c.expect(200, "GET", path, "")
		changes, _ := page["changes"].([]any)
		for _, ch := range changes {
			e := ch.(map[string]any)
			if e["id"] == id && e["kind"] == "CHANGE_KIND_DELETED" {
				found = true
			}
		}
		token, _ = page["nextPageToken"].(string)
		if token == "" {
			t.Fatal("the change feed answered without a position to resume from")
		}
		if len(changes) == 0 {
			time.Sleep(500 * time.Millisecond) //nolint:forbidigo // a tailing reader's poll interval
		}
	}
	if !found {
		t.Errorf("the change feed did not report the deletion of %s within 45 s", id)
	}

	// Discovery and the public documents.
	c.expect(200, "GET", "/v1/genres", "")
	c.expect(200, "GET", "/.well-known/jwks.json", "")
	c.expect(200, "GET", "/openapi.json", "")
	resp, _ = c.do("GET", "/v1/movies:export", "", "Authorization", user)
	if resp.StatusCode != 200 {
		t.Errorf("export for a user: %d", resp.StatusCode)
	}
}
