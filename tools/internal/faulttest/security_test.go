package faulttest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

// TestNoSQLInjectionThroughREST sends MongoDB operators where REST clients
// put values — JSON bodies, filters, ids, query parameters in the bracket
// style some frameworks turn into objects — through the real gateway and
// catalog: every one is refused 400 with a problem document or treated as
// literal text, none is a 5xx, and no movie is read or changed that the
// request did not name.
func TestNoSQLInjectionThroughREST(t *testing.T) {
	k := newKeys(t)
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	ids := seedMovies(t, k, cat.addr, 3)
	gw := startGateway(t, k, gatewayConfig(cat.addr, "127.0.0.1:1"))
	admin := "Bearer " + k.token(t, authn.RoleAdmin)

	refused := func(what string, r reply) {
		t.Helper()
		if r.status != http.StatusBadRequest || !strings.Contains(r.header.Get("Content-Type"), "problem+json") {
			t.Errorf("%s: %v, want 400 with a problem document", what, r)
		}
	}
	for _, body := range []string{
		`{"title": {"$gt": ""}}`,
		`{"title": "x", "genres": {"$ne": null}}`,
		`{"title": "x", "year": {"$gt": 0}}`,
		`{"title": "x", "$where": "sleep(1000)"}`,
		`{"title": "x", "directors": [{"id": {"$ne": ""}}]}`,
	} {
		refused("POST "+body, gw.doRaw(t, http.MethodPost, "/v1/movies", body, "Authorization", admin))
		refused("PATCH "+body, gw.doRaw(t, http.MethodPatch, "/v1/movies/"+ids[0]+"?update_mask=title", body, "Authorization", admin))
	}
	// Auth's JSON endpoints decode the same way; the gateway refuses the
	// body before anything is asked of auth.
	for _, body := range []string{
		`{"grantType": "password", "username": {"$gt": ""}, "password": {"$gt": ""}}`,
		`{"email": {"$ne": null}, "password": "x", "displayName": "y"}`,
	} {
		path := "/v1/auth/token"
		if strings.Contains(body, "email") {
			path = "/v1/users"
		}
		refused("POST "+path+" "+body, gw.doRaw(t, http.MethodPost, path, body))
	}
	for _, q := range []string{
		"filter=" + url.QueryEscape(`{"$gt": ""}`),
		"filter=" + url.QueryEscape(`$where = "1"`),
		"filter=" + url.QueryEscape(`title.$ne = ""`),
		"order_by=" + url.QueryEscape(`$natural`),
		"page_token=" + url.QueryEscape(`{"$gt":""}`),
		"page_size[$gt]=1",
		"filter[$ne]=x",
	} {
		r := gw.do(t.Context(), http.MethodGet, "/v1/movies?"+q, nil)
		if r.status >= 500 || (r.status == http.StatusOK && strings.Contains(q, "filter=")) {
			t.Errorf("GET /v1/movies?%s: %v", q, r)
		}
	}
	// An operator-shaped value in a valid filter is a literal: it matches
	// nothing here.
	r := gw.do(t.Context(), http.MethodGet, "/v1/movies?filter="+url.QueryEscape(`genres:"{\"$ne\": null}"`), nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), ids[0]) {
		t.Errorf("operator-shaped genre: %v", r)
	}
	for _, id := range []string{`{"$gt":""}`, "$ne", "m_$gt"} {
		r := gw.do(t.Context(), http.MethodGet, "/v1/movies/"+url.PathEscape(id), nil)
		if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
			t.Errorf("GET /v1/movies/%s: %v", id, r)
		}
		r = gw.do(t.Context(), http.MethodGet, "/v1/movies:batchGet?ids="+ids[0]+"&ids="+url.QueryEscape(id), nil)
		if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
			t.Errorf("batchGet with %s: %v", id, r)
		}
	}
	// Nothing changed.
	for _, id := range ids {
		r := gw.do(t.Context(), http.MethodGet, "/v1/movies/"+id, nil, "Authorization", admin)
		if r.status != http.StatusOK || r.header.Get("ETag") != `"1"` {
			t.Errorf("movie %s after the attempts: %v (ETag %s)", id, r, r.header.Get("ETag"))
		}
	}
}

// doRaw sends a raw JSON body.
func (g *gateway) doRaw(t *testing.T, method, path, body string, headers ...string) reply {
	t.Helper()
	return g.do(t.Context(), method, path, json.RawMessage(body), headers...)
}

// TestOpenAPIListsEverythingExposed: the OpenAPI document served by the
// gateway lists exactly the REST routes that the services' protos map
// (every google.api.http binding of catalog, search and auth, and nothing
// else), and the gateway answers nothing outside it: an unknown path is a
// 404 problem, and the admin endpoints (metrics, probes of the services) are
// not on the public port.
func TestOpenAPIListsEverythingExposed(t *testing.T) {
	k := newKeys(t)
	cat := startCatalog(t, k, catalogConfig(t, testenv.MongoURI(t), testenv.DatabaseName(t.Name())))
	gw := startGateway(t, k, gatewayConfig(cat.addr, "127.0.0.1:1"))

	r := gw.do(t.Context(), http.MethodGet, "/openapi.json", nil)
	if r.status != http.StatusOK {
		t.Fatalf("openapi.json: %v", r)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	verbs := []string{"get", "put", "post", "delete", "patch"}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for verb := range ops {
			if slices.Contains(verbs, verb) {
				documented[strings.ToUpper(verb)+" "+normalizePath(path)] = true
			}
		}
	}
	mapped := map[string]bool{}
	for _, fd := range []protoreflect.FileDescriptor{
		catalogv1.File_marquee_catalog_v1_catalog_proto, searchv1.File_marquee_search_v1_search_proto, authv1.File_marquee_auth_v1_auth_proto,
	} {
		for i := range fd.Services().Len() {
			methods := fd.Services().Get(i).Methods()
			for j := range methods.Len() {
				rule, _ := proto.GetExtension(methods.Get(j).Options(), annotations.E_Http).(*annotations.HttpRule)
				for _, b := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					if m, p := binding(b); m != "" {
						mapped[m+" "+normalizePath(p)] = true
					}
				}
			}
		}
	}
	for route := range mapped {
		if !documented[route] {
			t.Errorf("%s is served but not in the OpenAPI document", route)
		}
	}
	for route := range documented {
		if !mapped[route] && !strings.HasPrefix(route, "GET /.well-known/") {
			t.Errorf("%s is documented but no service maps it", route)
		}
	}
	for _, p := range []string{"/metrics", "/v1/admin", "/v2/movies", "/v1/movies/x/y/z", "/debug/pprof/", "/.env"} {
		r := gw.do(t.Context(), http.MethodGet, p, nil)
		if r.status != http.StatusNotFound || !strings.Contains(r.header.Get("Content-Type"), "problem+json") {
			t.Errorf("GET %s on the public port: %v", p, r)
		}
	}
}

func binding(r *annotations.HttpRule) (method, path string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	}
	return "", ""
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// normalizePath writes every path parameter as {} ({movie.id} and {id}
// name the same segment).
func normalizePath(p string) string { return pathParam.ReplaceAllString(p, "{}") }
