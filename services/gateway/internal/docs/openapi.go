// Package docs serves the API's reference: /openapi.json, one OpenAPI 3.1
// document merged from the documents generated for each service, completed
// with what only the gateway knows (servers, the two ways to authenticate,
// the problem format of every error, the rate-limit and caching headers);
// and /docs, an interactive page built from swagger-ui-dist, vendored and
// embedded so that the page loads nothing from outside the gateway.
package docs

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// dottedParam matches a path parameter bound to a nested field, such as
// {movie.id}, which grpc-gateway uses for updates.
var dottedParam = regexp.MustCompile(`\{([A-Za-z0-9_]+\.)+([A-Za-z0-9_]+)\}`)

// BuildOpenAPI merges every *.openapi.json under fsys into one document.
func BuildOpenAPI(fsys fs.FS) ([]byte, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".openapi.json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing openapi documents: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("listing openapi documents: none found")
	}
	// Catalog first: the page lists the tags in the order of the files.
	rank := func(f string) int {
		for i, svc := range []string{"catalog", "search", "auth"} {
			if strings.Contains(f, "/"+svc+"/") || strings.HasPrefix(f, svc+"/") {
				return i
			}
		}
		return 3
	}
	sort.Slice(files, func(i, j int) bool {
		if ri, rj := rank(files[i]), rank(files[j]); ri != rj {
			return ri < rj
		}
		return files[i] < files[j]
	})

	paths := map[string]any{}
	schemas := map[string]any{}
	var tags []any
	seenTags := map[string]bool{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", f, err)
		}
		for p, item := range obj(doc["paths"]) {
			p, item := normalizePath(p, obj(item))
			merged := obj(paths[p])
			if merged == nil {
				merged = map[string]any{}
			}
			for k, v := range item {
				if _, dup := merged[k]; dup && slices.Contains(httpMethods, k) {
					return nil, fmt.Errorf("merging %s: %s %s is defined twice", f, strings.ToUpper(k), p)
				}
				merged[k] = v
			}
			paths[p] = merged
		}
		maps.Copy(schemas, obj(obj(doc["components"])["schemas"]))
		for _, t := range arr(doc["tags"]) {
			name, _ := obj(t)["name"].(string)
			if !seenTags[name] {
				seenTags[name] = true
				tags = append(tags, t)
			}
		}
	}

	schemas["Problem"] = problemSchema()
	for p, item := range paths {
		for _, m := range httpMethods {
			if op := obj(obj(item)[m]); op != nil {
				decorate(p, m, op)
			}
		}
	}

	out := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Marquee API",
			"version": "v1",
			"description": "The public REST API of Marquee: movies, search and accounts.\n\n" +
				"Errors are `application/problem+json` (RFC 9457). Every response carries `RateLimit-Policy` and " +
				"`RateLimit` headers; a request over its quota gets `429` with `Retry-After`. Anonymous callers are " +
				"limited by address; send `Authorization: Bearer <access token>` (from `POST /v1/auth/token`) or " +
				"`X-API-Key` to use your own quota.",
		},
		"servers": []any{map[string]any{"url": "/", "description": "This gateway"}},
		"security": []any{
			map[string]any{},
			map[string]any{"bearerAuth": []any{}},
			map[string]any{"apiKeyAuth": []any{}},
		},
		"tags":  tags,
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{
					"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
					"description": "A short-lived access token from `POST /v1/auth/token`.",
				},
				"apiKeyAuth": map[string]any{
					"type": "apiKey", "in": "header", "name": "X-API-Key",
					"description": "An API key from `POST /v1/users/me/apiKeys`; it acts as its owner.",
				},
			},
			"headers":    componentHeaders(),
			"responses":  componentResponses(),
			"parameters": componentParameters(),
		},
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding openapi document: %w", err)
	}
	return b, nil
}

// normalizePath renames {movie.id}-style parameters to their last part, so
// that PATCH /v1/movies/{movie.id} and GET /v1/movies/{id} are one path, as
// OpenAPI requires of paths that differ only in parameter names.
func normalizePath(p string, item map[string]any) (string, map[string]any) {
	if !dottedParam.MatchString(p) {
		return p, item
	}
	renames := map[string]string{}
	np := dottedParam.ReplaceAllStringFunc(p, func(m string) string {
		name := strings.Trim(m, "{}")
		short := name[strings.LastIndex(name, ".")+1:]
		renames[name] = short
		return "{" + short + "}"
	})
	for _, m := range httpMethods {
		op := obj(item[m])
		for _, prm := range arr(op["parameters"]) {
			prm := obj(prm)
			if prm["in"] == "path" {
				if short, ok := renames[prm["name"].(string)]; ok {
					prm["name"] = short
				}
			}
		}
	}
	return np, item
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func arr(v any) []any {
	a, _ := v.([]any)
	return a
}

func ref(kind, name string) map[string]any {
	return map[string]any{"$ref": "#/components/" + kind + "/" + name}
}

// decorate adds to one operation what the gateway does around it.
func decorate(p, method string, op map[string]any) {
	responses := obj(op["responses"])
	if responses == nil {
		responses = map[string]any{}
		op["responses"] = responses
	}
	opID, _ := op["operationId"].(string)

	// The gateway answers these creates 201 (see restmux); the generator
	// only knows 200.
	if createOperations[opID] {
		if ok := responses["200"]; ok != nil {
			delete(responses, "200")
			responses["201"] = ok
			if opID == "CatalogService_CreateMovie" {
				headers := obj(obj(ok)["headers"])
				if headers == nil {
					headers = map[string]any{}
					obj(ok)["headers"] = headers
				}
				headers["Location"] = ref("headers", "Location")
			}
		}
	}

	for code, r := range responses {
		if !strings.HasPrefix(code, "2") {
			continue
		}
		resp := obj(r)
		headers := obj(resp["headers"])
		if headers == nil {
			headers = map[string]any{}
			resp["headers"] = headers
		}
		headers["RateLimit"] = ref("headers", "RateLimit")
		headers["RateLimit-Policy"] = ref("headers", "RateLimit-Policy")
		headers["X-Request-Id"] = ref("headers", "X-Request-Id")
		if method == "get" {
			headers["Cache-Control"] = ref("headers", "Cache-Control")
			headers["ETag"] = ref("headers", "ETag")
		}
		if schema := obj(obj(obj(resp["content"])["application/json"])["schema"]); schema != nil {
			if r, _ := schema["$ref"].(string); strings.HasSuffix(r, "Response") && strings.HasPrefix(path.Base(r), "marquee.") && method == "get" {
				headers["Link"] = ref("headers", "Link")
			}
		}
	}

	var params []any
	switch {
	case method == "get":
		params = append(params, ref("parameters", "If-None-Match"))
		responses["304"] = ref("responses", "NotModified")
	case method == "patch" || method == "delete":
		if strings.HasPrefix(p, "/v1/movies/") || strings.HasPrefix(p, "/v1/directors/") {
			params = append(params, ref("parameters", "If-Match"))
			responses["412"] = ref("responses", "PreconditionFailed")
		}
	}
	if opID == "CatalogService_CreateMovie" || opID == "CatalogService_BatchCreateMovies" {
		params = append(params, ref("parameters", "Idempotency-Key"))
	}
	if opID == "CatalogService_ListMovieChanges" {
		responses["410"] = ref("responses", "Gone")
	}
	if opID == "CatalogService_ExportMovies" {
		if ok := obj(responses["200"]); ok != nil {
			ok["description"] = "The catalogue as NDJSON, streamed: one ExportRecord per line, the last holding the change-feed position to resume from."
			ok["content"] = map[string]any{"application/x-ndjson": map[string]any{
				"schema": map[string]any{"type": "string", "description": "Newline-delimited JSON ExportRecord objects."},
			}}
		}
	}
	if len(params) > 0 {
		op["parameters"] = append(arr(op["parameters"]), params...)
	}
	if op["requestBody"] != nil {
		responses["413"] = ref("responses", "PayloadTooLarge")
	}
	responses["400"] = ref("responses", "BadRequest")
	responses["401"] = ref("responses", "Unauthorized")
	responses["429"] = ref("responses", "TooManyRequests")
	responses["503"] = ref("responses", "Unavailable")
	responses["default"] = ref("responses", "Problem")
}

// createOperations are answered 201 Created instead of 200.
var createOperations = map[string]bool{
	"CatalogService_CreateMovie": true,
	"AuthService_CreateUser":     true,
	"AuthService_CreateApiKey":   true,
}

func problemSchema() map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	return map[string]any{
		"type":        "object",
		"description": "An RFC 9457 problem document: the body of every error response.",
		"required":    []any{"type", "title", "status"},
		"properties": map[string]any{
			"type":      str("A URI naming the kind of problem, such as https://marquee.dev/problems/not-found."),
			"title":     str("The HTTP status text."),
			"status":    map[string]any{"type": "integer", "description": "The HTTP status code."},
			"detail":    str("What went wrong with this request."),
			"code":      str("The canonical gRPC code name, such as NOT_FOUND."),
			"reason":    str("A machine-readable reason, such as MOVIE_NOT_FOUND or ETAG_MISMATCH."),
			"requestId": str("The request's X-Request-Id."),
			"errors": map[string]any{
				"type":        "array",
				"description": "The invalid fields of a bad request.",
				"items": map[string]any{
					"type":     "object",
					"required": []any{"field", "description"},
					"properties": map[string]any{
						"field":       str("The field, such as page_size."),
						"description": str("Why the value is not valid."),
					},
				},
			},
		},
	}
}

func componentHeaders() map[string]any {
	h := func(desc string) map[string]any {
		return map[string]any{"description": desc, "schema": map[string]any{"type": "string"}}
	}
	return map[string]any{
		"RateLimit":        h(`The caller's remaining quota per policy (draft-ietf-httpapi-ratelimit-headers), such as "anonymous";r=59;t=1: r requests remain, t seconds until the quota grows.`),
		"RateLimit-Policy": h(`The caller's quota policies, such as "anonymous";q=60;w=60: q requests per w seconds.`),
		"Retry-After":      h("Seconds to wait before retrying."),
		"X-Request-Id":     h("The request's id, as sent by the client or generated."),
		"ETag":             h("The entity tag of the representation; send it in If-None-Match or If-Match."),
		"Link":             h(`The next page (RFC 8288), such as </v1/movies?page_token=...>; rel="next".`),
		"Cache-Control":    h("public with max-age for anonymous callers, private for authenticated ones."),
		"WWW-Authenticate": h(`The authentication challenge, such as Bearer realm="marquee", error="invalid_token".`),
		"Allow":            h("The methods the resource accepts."),
		"Location":         h("The created resource's path, such as /v1/movies/{id}."),
	}
}

func componentResponses() map[string]any {
	problem := func(desc string, extra ...string) map[string]any {
		headers := map[string]any{
			"RateLimit":        ref("headers", "RateLimit"),
			"RateLimit-Policy": ref("headers", "RateLimit-Policy"),
			"X-Request-Id":     ref("headers", "X-Request-Id"),
		}
		for _, e := range extra {
			headers[e] = ref("headers", e)
		}
		return map[string]any{
			"description": desc,
			"headers":     headers,
			"content": map[string]any{"application/problem+json": map[string]any{
				"schema": ref("schemas", "Problem"),
			}},
		}
	}
	return map[string]any{
		"Problem":            problem("An error."),
		"BadRequest":         problem("The request is not valid: malformed JSON, an unknown field, a wrong type, an unsupported filter or order."),
		"Unauthorized":       problem("The credential is missing where needed, or not valid (never treated as anonymous).", "WWW-Authenticate"),
		"PreconditionFailed": problem("The etag in If-Match or the request no longer matches (reason ETAG_MISMATCH)."),
		"Gone":               problem("The change-feed position is older than the retention (reason FEED_POSITION_EXPIRED): resync from the export."),
		"PayloadTooLarge":    problem("The request body is larger than 1 MiB."),
		"TooManyRequests":    problem("Over the rate limit.", "Retry-After"),
		"Unavailable":        problem("A backend is unavailable or the gateway is overloaded; retry later.", "Retry-After"),
		"NotModified": map[string]any{
			"description": "The representation matching If-None-Match is still current.",
			"headers":     map[string]any{"ETag": ref("headers", "ETag")},
		},
	}
}

func componentParameters() map[string]any {
	hdr := func(name, desc string) map[string]any {
		return map[string]any{"name": name, "in": "header", "required": false, "description": desc,
			"schema": map[string]any{"type": "string"}}
	}
	return map[string]any{
		"If-None-Match":   hdr("If-None-Match", "An ETag the client holds; the answer is 304 when it is still current."),
		"If-Match":        hdr("If-Match", "The ETag the write is conditional on; 412 when it no longer matches."),
		"Idempotency-Key": hdr("Idempotency-Key", "Sets request_id: a retry with the same key returns the first result."),
	}
}
