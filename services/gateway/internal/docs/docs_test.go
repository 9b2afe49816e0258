package docs_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/marquee-dev/marquee/proto/gen/go/openapi"
	"github.com/marquee-dev/marquee/services/gateway/internal/docs"
)

func TestBuildOpenAPIMergesAndNormalizes(t *testing.T) {
	fsys := fstest.MapFS{
		"a/v1/a.openapi.json": {Data: []byte(`{"openapi":"3.1.0","paths":{
			"/v1/things/{id}":{"get":{"operationId":"A_Get","parameters":[{"name":"id","in":"path","required":true}],"responses":{"200":{"description":"ok"}}}},
			"/v1/things/{thing.id}":{"patch":{"operationId":"A_Update","parameters":[{"name":"thing.id","in":"path","required":true}],"requestBody":{},"responses":{"200":{"description":"ok"}}}}},
			"components":{"schemas":{"a.Thing":{"type":"object"}}},"tags":[{"name":"A"}]}`)},
		"b/v1/b.openapi.json": {Data: []byte(`{"openapi":"3.1.0","paths":{"/v1/other":{"get":{"operationId":"B_List","responses":{"200":{"description":"ok"}}}}},
			"components":{"schemas":{"a.Thing":{"type":"object"},"b.Other":{"type":"object"}}},"tags":[{"name":"B"},{"name":"A"}]}`)},
	}
	b, err := docs.BuildOpenAPI(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(map[string]any)
	if _, ok := paths["/v1/things/{thing.id}"]; ok {
		t.Errorf("the dotted path parameter was kept")
	}
	things := paths["/v1/things/{id}"].(map[string]any)
	patch := things["patch"].(map[string]any)
	if things["get"] == nil || patch == nil {
		t.Fatalf("GET and PATCH not merged: %v", things)
	}
	if name := patch["parameters"].([]any)[0].(map[string]any)["name"]; name != "id" {
		t.Errorf("PATCH path parameter = %v, want id", name)
	}
	responses := patch["responses"].(map[string]any)
	for _, code := range []string{"default", "400", "401", "413", "429", "503"} {
		if responses[code] == nil {
			t.Errorf("PATCH lacks the %s response", code)
		}
	}
	if len(doc["tags"].([]any)) != 2 {
		t.Errorf("tags = %v", doc["tags"])
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	if schemas["a.Thing"] == nil || schemas["b.Other"] == nil || schemas["Problem"] == nil {
		t.Errorf("schemas = %v", schemas)
	}

	// Two files defining the same operation is an error.
	fsys["c/v1/c.openapi.json"] = &fstest.MapFile{Data: []byte(`{"paths":{"/v1/other":{"get":{}}}}`)}
	if _, err := docs.BuildOpenAPI(fsys); err == nil {
		t.Errorf("a duplicate operation was accepted")
	}
}

func TestHandler(t *testing.T) {
	h, err := docs.New(openapi.FS)
	if err != nil {
		t.Fatal(err)
	}
	for path, wantType := range map[string]string{
		"/openapi.json":              "application/json",
		"/docs":                      "text/html; charset=utf-8",
		"/docs/":                     "text/html; charset=utf-8",
		"/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
		"/docs/swagger-ui.css":       "text/css; charset=utf-8",
		"/docs/init.js":              "text/javascript; charset=utf-8",
		"/docs/favicon-32x32.png":    "image/png",
		"/docs/LICENSE":              "text/plain; charset=utf-8",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 || w.Header().Get("Content-Type") != wantType || w.Header().Get("ETag") == "" {
			t.Errorf("%s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		if strings.HasPrefix(path, "/docs") && !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, w.Header().Get("Content-Security-Policy"))
		}
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("If-None-Match", w.Header().Get("ETag"))
		w2 := httptest.NewRecorder()
		h.ServeHTTP(w2, r)
		if w2.Code != http.StatusNotModified {
			t.Errorf("%s revalidation: %d", path, w2.Code)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/docs/nope.js", nil))
	if w.Code != 404 {
		t.Errorf("unknown asset: %d", w.Code)
	}
	// The page references only its own origin.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/docs", nil))
	if strings.Contains(w.Body.String(), "http://") || strings.Contains(w.Body.String(), "https://") {
		t.Errorf("the page references another origin: %s", w.Body.String())
	}
}

// TestCreatesAnswer201 checks the served document against what the gateway
// answers: the three creates are 201 (a movie with Location), the batch
// create and the token endpoint stay 200.
func TestCreatesAnswer201(t *testing.T) {
	b, err := docs.BuildOpenAPI(openapi.FS)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Headers map[string]any `json:"headers"`
				Content map[string]any `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, method, status string
		location             bool
	}{
		{"/v1/movies", "post", "201", true},
		{"/v1/users", "post", "201", false},
		{"/v1/users/me/apiKeys", "post", "201", false},
		{"/v1/movies:batchCreate", "post", "200", false},
		{"/v1/auth/token", "post", "200", false},
		{"/v1/movies/{id}", "get", "200", false},
	} {
		op, ok := doc.Paths[tc.path][tc.method]
		if !ok {
			t.Errorf("%s %s: not in the document", tc.method, tc.path)
			continue
		}
		other := map[string]string{"200": "201", "201": "200"}[tc.status]
		r, ok := op.Responses[tc.status]
		if !ok || op.Responses[other].Content != nil {
			t.Errorf("%s %s: responses %v, want %s and no %s", tc.method, tc.path, op.Responses, tc.status, other)
			continue
		}
		if r.Content["application/json"] == nil || r.Headers["RateLimit"] == nil {
			t.Errorf("%s %s %s: content %v headers %v", tc.method, tc.path, tc.status, r.Content, r.Headers)
		}
		if _, has := r.Headers["Location"]; has != tc.location {
			t.Errorf("%s %s: Location header documented = %v, want %v", tc.method, tc.path, has, tc.location)
		}
	}
}
