package routes_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/routes"
)

func TestRoutesAndAllow(t *testing.T) {
	rs := routes.FromFiles(catalogv1.File_marquee_catalog_v1_catalog_proto, searchv1.File_marquee_search_v1_search_proto,
		authv1.File_marquee_auth_v1_auth_proto)
	var export routes.Route
	for _, r := range rs {
		if r.RPC == "/marquee.catalog.v1.CatalogService/WatchMovieChanges" || r.RPC == "/marquee.auth.v1.AuthService/ResolveApiKey" {
			t.Errorf("internal RPC %s has a route", r.RPC)
		}
		if r.Pattern == "/v1/movies:export" {
			export = r
		}
	}
	if !export.ServerStreaming || export.Method != "GET" {
		t.Errorf("export route = %+v", export)
	}
	table, err := routes.NewTable(rs)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/movies":               "GET, HEAD, POST",
		"/v1/movies/m_1":           "GET, HEAD, PATCH, DELETE",
		"/v1/movies:batchGet":      "GET, HEAD",
		"/v1/movies:batchCreate":   "POST",
		"/v1/users/me":             "GET, HEAD, PATCH, DELETE", // PATCH is UpdateUser with id "me"
		"/v1/users/u_1":            "PATCH",
		"/v1/users/me/apiKeys/k_1": "DELETE",
		"/.well-known/jwks.json":   "GET, HEAD",
		"/v1/nothing":              "",
		"/v1/movies/m_1/extra":     "",
	} {
		got := strings.Join(table.Allow(httptest.NewRequest("PUT", path, nil)), ", ")
		if got != want {
			t.Errorf("Allow(%s) = %q, want %q", path, got, want)
		}
	}
	if !slices.ContainsFunc(rs, func(r routes.Route) bool { return r.Pattern == "/v1/movies/{movie.id}" && r.Method == "PATCH" }) {
		t.Errorf("no PATCH /v1/movies/{movie.id} among %d routes", len(rs))
	}
}
