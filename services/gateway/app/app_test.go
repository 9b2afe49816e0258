package app_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/gateway/internal/fakebackend"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

func TestGetMovieHeadersAndConditionalGet(t *testing.T) {
	s := startStack(t)
	resp, body := s.do("GET", "/v1/movies/m_1", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body %s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	for _, k := range []string{"id", "title", "imdbScore", "createTime", "etag"} {
		if _, ok := m[k]; !ok {
			t.Errorf("movie JSON lacks %q (lowerCamelCase): %s", k, body)
		}
	}
	if _, ok := m["imdb_score"]; ok {
		t.Errorf("movie JSON uses proto names: %s", body)
	}
	if _, ok := m["originalTitle"]; ok {
		t.Errorf("movie JSON emits unpopulated fields: %s", body)
	}
	h := resp.Header
	checks := map[string]string{
		"Content-Type":           "application/json",
		"ETag":                   `"1"`,
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "public, max-age=30, stale-while-revalidate=30, stale-if-error=300",
		"RateLimit-Policy":       `"anonymous";q=60;w=60`,
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(h.Get("RateLimit"), `"anonymous";r=59;t=`) {
		t.Errorf("RateLimit = %q", h.Get("RateLimit"))
	}
	if len(h.Get("X-Request-Id")) < 16 {
		t.Errorf("X-Request-Id = %q", h.Get("X-Request-Id"))
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "grpc-") {
			t.Errorf("gRPC metadata leaked as %s: %v", k, h[k])
		}
	}
	if h.Get("Server") != "" || h.Get("Strict-Transport-Security") != "" {
		t.Errorf("Server %q / HSTS %q on plain HTTP", h.Get("Server"), h.Get("Strict-Transport-Security"))
	}

	// The client already has it: 304 with the validator and no body.
	resp, body = s.do("GET", "/v1/movies/m_1", nil, header("If-None-Match", `"1"`))
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != `"1"` {
		t.Errorf("If-None-Match: status %d, ETag %q, body %q", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
	if resp.Header.Get("RateLimit") == "" {
		t.Errorf("304 lacks RateLimit")
	}
	resp, _ = s.do("GET", "/v1/movies/m_1", nil, header("If-None-Match", `"0", W/"1"`))
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("weak If-None-Match list: status %d, want 304", resp.StatusCode)
	}
	resp, _ = s.do("GET", "/v1/movies/m_1", nil, header("If-None-Match", `"2"`))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stale If-None-Match: status %d, want 200", resp.StatusCode)
	}

	// Authenticated: the same bytes, but private, and still conditional.
	tok := s.token("u_1", authn.RoleUser)
	resp, _ = s.do("GET", "/v1/movies/m_1", nil, bearer(tok))
	if cc := resp.Header.Get("Cache-Control"); cc != "private, no-cache" {
		t.Errorf("authenticated Cache-Control = %q", cc)
	}
	if p := resp.Header.Get("RateLimit-Policy"); p != `"user";q=600;w=60` {
		t.Errorf("authenticated RateLimit-Policy = %q", p)
	}
	resp, body = s.do("GET", "/v1/movies/m_1", nil, bearer(tok), header("If-None-Match", `"1"`))
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("authenticated If-None-Match: status %d body %q", resp.StatusCode, body)
	}

	// HEAD is GET without the body.
	resp, body = s.do("HEAD", "/v1/movies/m_1", nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("ETag") != `"1"` {
		t.Errorf("HEAD: status %d, ETag %q, body %q", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
}

func TestRequestIDAcceptedOrGenerated(t *testing.T) {
	s := startStack(t)
	resp, _ := s.do("GET", "/v1/genres", nil, header("X-Request-Id", "client-chosen-id-123"))
	if got := resp.Header.Get("X-Request-Id"); got != "client-chosen-id-123" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
	calls := s.catalog.Calls("ListGenres")
	if len(calls) == 0 || strings.Join(calls[len(calls)-1].Get("x-request-id"), ",") != "client-chosen-id-123" {
		t.Errorf("catalog saw x-request-id %v", calls)
	}
	resp, _ = s.do("GET", "/v1/genres", nil, header("X-Request-Id", "bad id\twith spaces"))
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("X-Request-Id = %q, want a generated one", got)
	}
}

func TestProblems(t *testing.T) {
	s := startStack(t, withConfig(func(c *app.Config) { c.RequestTimeout = 300 * time.Millisecond }))
	admin := bearer(s.token("admin_1", authn.RoleAdmin))
	user := bearer(s.token("u_1", authn.RoleUser))
	big := `{"title":"` + strings.Repeat("x", app.MaxBodyBytes) + `"}`

	tests := []struct {
		name        string
		method      string
		path        string
		body        any
		opts        []reqOpt
		status      int
		reason      string
		allow       string
		checkDetail func(t *testing.T, p problemDoc)
	}{
		{name: "unknown path", method: "GET", path: "/v1/nope", status: 404, reason: "NOT_FOUND"},
		{name: "root", method: "GET", path: "/", status: 404},
		{name: "unknown movie", method: "GET", path: "/v1/movies/m_404", status: 404, reason: "MOVIE_NOT_FOUND",
			checkDetail: func(t *testing.T, p problemDoc) {
				if !strings.Contains(p.Detail, "m_404") || p.Code != "NOT_FOUND" {
					t.Errorf("detail %q code %q", p.Detail, p.Code)
				}
			}},
		{name: "method not allowed", method: "DELETE", path: "/v1/genres", status: 405, reason: "METHOD_NOT_ALLOWED", allow: "GET, HEAD"},
		{name: "method not allowed on a movie", method: "PUT", path: "/v1/movies/m_1", body: "{}", status: 405, allow: "GET, HEAD, PATCH, DELETE"},
		{name: "method not allowed on openapi", method: "POST", path: "/openapi.json", body: "{}", status: 405, allow: "GET, HEAD"},
		{name: "body over 1 MiB", method: "POST", path: "/v1/movies", body: big, opts: []reqOpt{admin}, status: 413, reason: "PAYLOAD_TOO_LARGE"},
		{name: "unknown field", method: "POST", path: "/v1/movies", body: `{"title":"x","colour":"red"}`, opts: []reqOpt{admin}, status: 400,
			checkDetail: func(t *testing.T, p problemDoc) {
				if !strings.Contains(p.Detail, "colour") {
					t.Errorf("detail %q does not name the unknown field", p.Detail)
				}
			}},
		{name: "malformed JSON", method: "POST", path: "/v1/movies", body: `{"title":`, opts: []reqOpt{admin}, status: 400},
		{name: "wrong type", method: "POST", path: "/v1/movies", body: `{"title":"x","year":"nineteen"}`, opts: []reqOpt{admin}, status: 400},
		{name: "bad UTF-8", method: "POST", path: "/v1/movies", body: []byte("{\"title\":\"\xff\xfe\"}"), opts: []reqOpt{admin}, status: 400},
		{name: "bad query parameter", method: "GET", path: "/v1/movies?page_size=abc", status: 400},
		{name: "negative page size", method: "GET", path: "/v1/movies?pageSize=-1", status: 400, reason: "INVALID_ARGUMENT",
			checkDetail: func(t *testing.T, p problemDoc) {
				if len(p.Errors) != 1 || p.Errors[0].Field != "page_size" {
					t.Errorf("errors = %+v", p.Errors)
				}
			}},
		{name: "validation", method: "POST", path: "/v1/movies", body: `{"title":" "}`, opts: []reqOpt{admin}, status: 400,
			checkDetail: func(t *testing.T, p problemDoc) {
				if len(p.Errors) != 1 || p.Errors[0].Field != "movie.title" {
					t.Errorf("errors = %+v", p.Errors)
				}
			}},
		{name: "unsupported query", method: "GET", path: "/v1/movies?filter=unsupported", status: 400, reason: "UNSUPPORTED_QUERY"},
		{name: "anonymous write", method: "POST", path: "/v1/movies", body: `{"title":"x"}`, status: 401, reason: "UNAUTHENTICATED"},
		{name: "user write", method: "POST", path: "/v1/movies", body: `{"title":"x"}`, opts: []reqOpt{user}, status: 403, reason: "PERMISSION_DENIED"},
		{name: "forged token", method: "GET", path: "/v1/movies/m_1", opts: []reqOpt{bearer("eyJhbGciOiJFZERTQSJ9.e30.c2ln")}, status: 401, reason: "UNAUTHENTICATED"},
		{name: "expired token", method: "GET", path: "/v1/genres", opts: []reqOpt{bearer(s.keys.Token("u_1", authn.RoleUser, -2*time.Hour))}, status: 401},
		{name: "not bearer", method: "GET", path: "/v1/genres", opts: []reqOpt{header("Authorization", "Basic dXNlcjpwYXNz")}, status: 401},
		{name: "unknown API key", method: "GET", path: "/v1/genres", opts: []reqOpt{header("X-API-Key", "mk_0123456789abcdef0123")}, status: 401},
		{name: "two credentials", method: "GET", path: "/v1/genres", opts: []reqOpt{user, header("X-API-Key", "mk_0123456789abcdef0123")}, status: 401},
		{name: "expired feed position", method: "GET", path: "/v1/movies:changes?page_token=expired", status: 410, reason: "FEED_POSITION_EXPIRED"},
		{name: "stale If-Match", method: "PATCH", path: "/v1/movies/m_2?update_mask=title", body: `{"title":"x"}`,
			opts: []reqOpt{admin, header("If-Match", `"9"`)}, status: 412, reason: "ETAG_MISMATCH"},
		{name: "stale etag in body", method: "PATCH", path: "/v1/movies/m_2?update_mask=title", body: `{"title":"x","etag":"\"9\""}`,
			opts: []reqOpt{admin}, status: 412, reason: "ETAG_MISMATCH"},
		{name: "stale etag on delete", method: "DELETE", path: "/v1/movies/m_2?etag=%229%22", opts: []reqOpt{admin}, status: 412, reason: "ETAG_MISMATCH"},
		{name: "stale If-Match on delete", method: "DELETE", path: "/v1/movies/m_2", opts: []reqOpt{admin, header("If-Match", `"9"`)}, status: 412},
		{name: "internal failure", method: "GET", path: "/v1/movies/" + fakebackend.BoomID, status: 500, reason: "INTERNAL",
			checkDetail: func(t *testing.T, p problemDoc) {
				if strings.Contains(p.Detail, "mongo") || strings.Contains(p.Detail, "10.1.2.3") {
					t.Errorf("internal message leaked: %q", p.Detail)
				}
			}},
		{name: "deadline", method: "GET", path: "/v1/movies/" + fakebackend.SlowID, status: 504},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.do(tc.method, tc.path, tc.body, tc.opts...)
			p := wantProblem(t, resp, body, tc.status, tc.reason)
			if tc.allow != "" && resp.Header.Get("Allow") != tc.allow {
				t.Errorf("Allow = %q, want %q", resp.Header.Get("Allow"), tc.allow)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer realm=") {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if resp.Header.Get("RateLimit") == "" {
				t.Errorf("no RateLimit header")
			}
			if tc.checkDetail != nil {
				tc.checkDetail(t, p)
			}
		})
	}

	t.Run("chunked body over 1 MiB", func(t *testing.T) {
		// No Content-Length: the limit is found while decoding.
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, big)
			_ = pw.Close()
		}()
		req, _ := http.NewRequest("POST", s.base+"/v1/movies", pr)
		req.Header.Set("Authorization", "Bearer "+s.token("admin_1", authn.RoleAdmin))
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("posting: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantProblem(t, resp, body, 413, "PAYLOAD_TOO_LARGE")
	})
}

func TestWritesCarryIdempotencyKeyAndIfMatch(t *testing.T) {
	s := startStack(t)
	admin := bearer(s.token("admin_1", authn.RoleAdmin))

	create := func(key string) map[string]any {
		t.Helper()
		resp, body := s.do("POST", "/v1/movies", `{"title":"Heat","year":1995}`, admin, header("Idempotency-Key", key))
		// A replay answers what the first create answered: 201.
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("ETag") != `"1"` {
			t.Errorf("create headers: Cache-Control %q ETag %q", resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		if want := fmt.Sprintf("/v1/movies/%v", m["id"]); resp.Header.Get("Location") != want {
			t.Errorf("Location = %q, want %q", resp.Header.Get("Location"), want)
		}
		return m
	}
	first, again := create("key-1"), create("key-1")
	if first["id"] != again["id"] {
		t.Errorf("a retried create made a second movie: %v then %v", first["id"], again["id"])
	}
	if other := create("key-2"); other["id"] == first["id"] {
		t.Errorf("another key returned the same movie")
	}
	resp, body := s.do("POST", "/v1/movies?requestId=key-3", `{"title":"Heat"}`, admin, header("Idempotency-Key", "key-4"))
	wantProblem(t, resp, body, 400, "INVALID_ARGUMENT")

	resp, body = s.do("POST", "/v1/movies:batchCreate", `{"requests":[{"movie":{"title":"A"}},{"movie":{"title":"B"}}]}`,
		admin, header("Idempotency-Key", "batch-1"))
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" {
		t.Fatalf("batch create: %d (Location %q) %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body2 := s.do("POST", "/v1/movies:batchCreate", `{"requests":[{"movie":{"title":"A"}},{"movie":{"title":"B"}}]}`,
		admin, header("Idempotency-Key", "batch-1"))
	if resp.StatusCode != 200 || !bytes.Equal(body, body2) {
		t.Errorf("retried batch differs: %s vs %s", body, body2)
	}

	// If-Match becomes the etag the catalog checks.
	resp, body = s.do("PATCH", "/v1/movies/m_3?update_mask=title", `{"title":"Renamed"}`, admin, header("If-Match", `"1"`))
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("conditional PATCH: %d ETag %q %s", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
	resp, body = s.do("PATCH", "/v1/movies/m_3?update_mask=title", `{"title":"Again"}`, admin, header("If-Match", `"1"`))
	wantProblem(t, resp, body, 412, "ETAG_MISMATCH")
	resp, body = s.do("PATCH", "/v1/movies/m_3?update_mask=title", `{"title":"Again","etag":"\"2\""}`, admin, header("If-Match", `"1"`))
	wantProblem(t, resp, body, 412, "ETAG_MISMATCH")
	resp, body = s.do("PATCH", "/v1/movies/m_3?update_mask=title", `{"title":"Again"}`, admin, header("If-Match", `"1", "2"`))
	wantProblem(t, resp, body, 400, "")
	resp, body = s.do("DELETE", "/v1/movies/m_3", nil, admin, header("If-Match", `"2"`))
	if resp.StatusCode != 200 || string(body) != "{}" {
		t.Errorf("conditional DELETE: %d %s", resp.StatusCode, body)
	}
	resp, body = s.do("DELETE", "/v1/movies/m_4", nil, admin, header("If-Match", "*"))
	if resp.StatusCode != 200 {
		t.Errorf("DELETE If-Match *: %d %s", resp.StatusCode, body)
	}
}

func TestListsLinkToTheNextPage(t *testing.T) {
	s := startStack(t)
	path := "/v1/movies?pageSize=12&filter=genres%3A%22Drama%22"
	var pages, total int
	for path != "" {
		resp, body := s.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var page struct {
			Movies        []map[string]any `json:"movies"`
			NextPageToken string           `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decoding: %v", err)
		}
		pages++
		total += len(page.Movies)
		link := resp.Header.Get("Link")
		if page.NextPageToken == "" {
			if link != "" {
				t.Errorf("last page has Link %q", link)
			}
			break
		}
		if !strings.HasPrefix(link, "</v1/movies?") || !strings.HasSuffix(link, `>; rel="next"`) ||
			!strings.Contains(link, "page_token="+page.NextPageToken) || !strings.Contains(link, "filter=") ||
			resp.Header.Get("ETag") == "" {
			t.Fatalf("Link = %q, ETag %q, next token %q", link, resp.Header.Get("ETag"), page.NextPageToken)
		}
		path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	}
	if pages != 3 || total != 30 {
		t.Errorf("pages = %d, movies = %d; want 3 and 30", pages, total)
	}
}

func TestExportStreamsNDJSON(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk func([]byte) []byte
	}{
		{"lines with newlines", nil},
		{"lines without newlines", func(b []byte) []byte { return bytes.TrimSuffix(b, []byte("\n")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t)
			s.catalog.ExportChunk = tc.chunk
			req, _ := http.NewRequest("GET", s.base+"/v1/movies:export", nil)
			req.Header.Set("Authorization", "Bearer "+s.token("u_1", authn.RoleUser))
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatalf("export: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.ContentLength != -1 {
				t.Errorf("Content-Length %d: the export was buffered", resp.ContentLength)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "private, no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			sc := bufio.NewScanner(resp.Body)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) != 31 {
				t.Fatalf("%d lines, want 31 (30 movies and the end)", len(lines))
			}
			for i, l := range lines {
				var rec map[string]json.RawMessage
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("line %d %q: %v", i, l, err)
				}
				if _, wrapped := rec["result"]; wrapped {
					t.Fatalf("line %d is wrapped: %s", i, l)
				}
			}
			if !strings.Contains(lines[30], `"end"`) {
				t.Errorf("last line %q is not the end record", lines[30])
			}
		})
	}

	t.Run("gzip", func(t *testing.T) {
		s := startStack(t)
		req, _ := http.NewRequest("GET", s.base+"/v1/movies:export", nil)
		req.Header.Set("Authorization", "Bearer "+s.token("u_1", authn.RoleUser))
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding = %q", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		n := 0
		for sc.Scan() {
			n++
		}
		if n != 31 {
			t.Errorf("%d lines, want 31", n)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		s := startStack(t)
		resp, body := s.do("GET", "/v1/movies:export", nil)
		wantProblem(t, resp, body, 401, "UNAUTHENTICATED")
	})
}

func TestCredentialsAndClientAddressReachTheBackends(t *testing.T) {
	s := startStack(t)
	tok := s.token("u_7", authn.RoleUser)
	s.keys.AddAPIKey("mk_abcdefghijklmnopqrstuv", "u_8", authn.RoleUser)

	// no-cache: past the response cache, so every request reaches catalog.
	noCache := header("Cache-Control", "no-cache")
	resp, body := s.do("GET", "/v1/movies/m_1", nil, bearer(tok), noCache,
		header("X-Forwarded-For", "203.0.113.9"), header("Grpc-Metadata-Role", "admin"), header("Cookie", "sid=1"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	md := last(t, s.catalog.Calls("GetMovie"))
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+tok {
		t.Errorf("authorization = %v", got)
	}
	if got := md.Get("x-forwarded-for"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("x-forwarded-for = %v, want the peer (the client's header is not believed)", got)
	}
	for _, k := range []string{"role", "grpc-metadata-role", "cookie", "grpcgateway-cookie"} {
		if v := md.Get(k); len(v) > 0 {
			t.Errorf("metadata %s = %v leaked from client headers", k, v)
		}
	}

	resp, body = s.do("GET", "/v1/movies/m_1", nil, header("X-API-Key", "mk_abcdefghijklmnopqrstuv"), noCache)
	if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Policy") != `"user";q=600;w=60` {
		t.Fatalf("API key: status %d, policy %q, %s", resp.StatusCode, resp.Header.Get("RateLimit-Policy"), body)
	}
	md = last(t, s.catalog.Calls("GetMovie"))
	if got := md.Get("x-api-key"); len(got) != 1 || got[0] != "mk_abcdefghijklmnopqrstuv" {
		t.Errorf("x-api-key = %v", got)
	}
	if n := s.auth.Count("ResolveApiKey"); n != 1 {
		t.Errorf("ResolveApiKey called %d times, want 1", n)
	}
	s.do("GET", "/v1/movies/m_2", nil, header("X-API-Key", "mk_abcdefghijklmnopqrstuv"), noCache)
	if n := s.auth.Count("ResolveApiKey"); n != 1 {
		t.Errorf("ResolveApiKey called %d times after a second request, want 1 (cached)", n)
	}
}

func TestTrustedProxyAddressReachesAuth(t *testing.T) {
	s := startStack(t, withConfig(func(c *app.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} }))
	resp, body := s.do("POST", "/v1/auth/token", `{"grantType":"password","username":"a@example.com","password":"correct horse battery"}`,
		header("X-Forwarded-For", "198.51.100.1, 203.0.113.9"))
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"accessToken"`
		TokenType   string `json:"tokenType"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token response %s: %v", body, err)
	}
	var md []string
	for _, c := range s.auth.Calls("CreateToken") {
		if len(c.Get("x-forwarded-for")) > 0 && c.Get("x-forwarded-for")[0] != "127.0.0.1" {
			md = c.Get("x-forwarded-for")
		}
	}
	if len(md) != 1 || md[0] != "203.0.113.9" {
		t.Errorf("auth saw x-forwarded-for %v, want [203.0.113.9]", md)
	}
	resp, body = s.do("GET", "/v1/users/me", nil, bearer(tok.AccessToken))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "a@example.com") {
		t.Errorf("me: %d %s", resp.StatusCode, body)
	}
}

func TestSearchAndAuthRoutes(t *testing.T) {
	s := startStack(t)
	for _, path := range []string{"/v1/search/movies?q=movie%201", "/v1/search/suggest?prefix=Mov", "/.well-known/jwks.json", "/v1/genres", "/v1/directors/d_1"} {
		resp, body := s.do("GET", path, nil)
		if resp.StatusCode != 200 || !json.Valid(body) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := s.do("POST", "/v1/users", `{"email":"new@example.com","password":"a long password","displayName":"New"}`)
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"role":"ROLE_USER"`) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("sign-up: %d (Cache-Control %q) %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	resp, body = s.do("POST", "/v1/users", `{"password":"a long password"}`)
	wantProblem(t, resp, body, 400, "INVALID_ARGUMENT")
	resp, body = s.do("GET", "/v1/users/me", nil)
	wantProblem(t, resp, body, 401, "UNAUTHENTICATED")

	user := bearer(s.token("u_1", authn.RoleUser))
	resp, body = s.do("POST", "/v1/users/me/apiKeys", `{"displayName":"ci"}`, user)
	var key struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &key); resp.StatusCode != 201 || err != nil || key.Key == "" || resp.Header.Get("Location") != "" {
		t.Fatalf("creating an API key: %d (Location %q) %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = s.do("POST", "/v1/users/me/apiKeys", `{"displayName":"ci"}`)
	wantProblem(t, resp, body, 401, "UNAUTHENTICATED")
	// Other POSTs keep 200.
	resp, body = s.do("POST", "/v1/auth/token", `{"grantType":"password","username":"a@example.com","password":"correct horse battery"}`)
	if resp.StatusCode != 200 {
		t.Errorf("token: %d %s", resp.StatusCode, body)
	}
}

// TestStaleListIsRevalidatedThroughTheBackend runs a background
// revalidation through the real chain (request deadline, grpc-gateway,
// gRPC): a list past its max age is served stale and refreshed once.
func TestStaleListIsRevalidatedThroughTheBackend(t *testing.T) {
	s := startStack(t, withConfig(func(c *app.Config) {
		c.Cache.MaxAge = time.Second
		c.RateLimit.AnonymousPerMinute = 0 // the test polls
	}))
	const path = "/v1/movies?pageSize=5"
	resp, first := s.do("GET", path, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, first)
	}
	eventually(t, 10*time.Second, "the list to be revalidated", func() bool {
		resp, body := s.do("GET", path, nil)
		if resp.StatusCode != 200 || string(body) != string(first) {
			t.Fatalf("while revalidating: %d %s", resp.StatusCode, body)
		}
		return s.catalog.Count("ListMovies") == 2
	})
	eventually(t, 10*time.Second, "the refreshed list to be fresh", func() bool {
		resp, _ := s.do("GET", path, nil)
		return resp.Header.Get("Age") == "0"
	})
	if n := s.catalog.Count("ListMovies"); n != 2 {
		t.Errorf("ListMovies reached catalog %d times, want 2 (the fill and one refresh)", n)
	}
}

func TestResponseCacheHitsAndFollowsTheChangeFeed(t *testing.T) {
	s := startStack(t)
	eventually(t, 10*time.Second, "the gateway to watch the change feed", func() bool { return s.catalog.Watchers() > 0 })

	get := func(path string) (*http.Response, map[string]any) {
		t.Helper()
		resp, body := s.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return resp, m
	}
	r1, m1 := get("/v1/movies/m_5")
	r2, m2 := get("/v1/movies/m_5")
	if n := s.catalog.Count("GetMovie"); n != 1 {
		t.Errorf("GetMovie reached catalog %d times, want 1 (the second from the cache)", n)
	}
	if m1["title"] != m2["title"] || r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Errorf("cached response differs: %v/%v", m1, m2)
	}
	if r1.Header.Get("X-Request-Id") == r2.Header.Get("X-Request-Id") {
		t.Errorf("X-Request-Id was cached")
	}
	if r1.Header.Get("RateLimit") == r2.Header.Get("RateLimit") {
		t.Errorf("RateLimit was cached: %q", r2.Header.Get("RateLimit"))
	}
	if r2.Header.Get("Age") == "" || r2.Header.Get("Cache-Control") != r1.Header.Get("Cache-Control") {
		t.Errorf("hit headers: Age %q Cache-Control %q", r2.Header.Get("Age"), r2.Header.Get("Cache-Control"))
	}
	resp, body := s.do("GET", "/v1/movies/m_5", nil, header("If-None-Match", r1.Header.Get("ETag")))
	if resp.StatusCode != 304 || len(body) != 0 {
		t.Errorf("conditional hit: %d %q", resp.StatusCode, body)
	}
	get("/v1/movies?pageSize=5")
	get("/v1/movies?pageSize=5")
	if n := s.catalog.Count("ListMovies"); n != 1 {
		t.Errorf("ListMovies reached catalog %d times, want 1", n)
	}

	// Another writer renames the movie: the feed invalidates it.
	s.catalog.Rename("m_5", "Renamed Elsewhere")
	eventually(t, 10*time.Second, "the cached movie to follow the change", func() bool {
		_, m := get("/v1/movies/m_5")
		return m["title"] == "Renamed Elsewhere"
	})
	r3, _ := get("/v1/movies/m_5")
	if r3.Header.Get("ETag") != `"2"` {
		t.Errorf("ETag after the change = %q", r3.Header.Get("ETag"))
	}
	// Lists are not purged by changes: they live for their freshness
	// lifetime (gateway.cache.max_age), like a CDN's copy.
	before := s.catalog.Count("ListMovies")
	get("/v1/movies?pageSize=5")
	if n := s.catalog.Count("ListMovies"); n != before {
		t.Errorf("the list was purged by an unrelated change (%d -> %d calls)", before, n)
	}
	// Other movies stay cached.
	before = s.catalog.Count("GetMovie")
	get("/v1/movies/m_5")
	if n := s.catalog.Count("GetMovie"); n != before {
		t.Errorf("an unchanged entry was not served from the cache")
	}

	// Authenticated reads of public resources share the stored bytes,
	// marked private; Cache-Control: no-cache reaches the catalog.
	before = s.catalog.Count("GetMovie")
	resp, _ = s.do("GET", "/v1/movies/m_5", nil, bearer(s.token("u_1", authn.RoleUser)))
	if n := s.catalog.Count("GetMovie"); n != before || resp.Header.Get("Cache-Control") != "private, no-cache" {
		t.Errorf("an authenticated read: %d catalog calls, Cache-Control %q; want a private cache hit",
			n-before, resp.Header.Get("Cache-Control"))
	}
	s.do("GET", "/v1/movies/m_5", nil, bearer(s.token("u_1", authn.RoleUser)), header("Cache-Control", "no-cache"))
	if n := s.catalog.Count("GetMovie"); n != before+1 {
		t.Errorf("a no-cache read was served from the cache")
	}
	// The watch authenticated as the gateway's service.
	if md := last(t, s.catalog.Calls("WatchMovieChanges")); len(md.Get("authorization")) != 1 {
		t.Errorf("watch metadata %v", md)
	}
}

func TestBackendUnavailableKeepsTheGatewayReady(t *testing.T) {
	s := startStack(t, withSearchDown())
	resp, body := s.do("GET", "/v1/search/movies?q=x", nil)
	p := wantProblem(t, resp, body, 503, "BACKEND_UNAVAILABLE")
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if strings.Contains(p.Detail, "127.0.0.1") || strings.Contains(p.Detail, "dial") {
		t.Errorf("transport detail leaked: %q", p.Detail)
	}
	for _, path := range []string{"/readyz", "/healthz"} {
		resp, body = s.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d %s", path, resp.StatusCode, body)
		}
		if resp.Header.Get("RateLimit") != "" {
			t.Errorf("%s is rate limited", path)
		}
	}
	adminResp, err := s.client.Get("http://" + s.admin + "/readyz")
	if err != nil {
		t.Fatalf("admin readyz: %v", err)
	}
	_ = adminResp.Body.Close()
	if adminResp.StatusCode != 200 {
		t.Errorf("admin /readyz = %d", adminResp.StatusCode)
	}
	resp, _ = s.do("GET", "/v1/movies/m_1", nil)
	if resp.StatusCode != 200 {
		t.Errorf("catalog routes failed with search down: %d", resp.StatusCode)
	}
}

func last[T any](t *testing.T, xs []T) T {
	t.Helper()
	if len(xs) == 0 {
		var zero T
		t.Fatalf("no calls recorded")
		return zero
	}
	return xs[len(xs)-1]
}
