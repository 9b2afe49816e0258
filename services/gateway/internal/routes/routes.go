// Package routes knows the REST routes of the API, read from the
// google.api.http options of the protos the gateway serves, so that the
// gateway can answer 405 with the Allow header the grpc-gateway mux cannot
// compute, and list the routes in tests and documentation.
package routes

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Route is one REST mapping of an RPC.
type Route struct {
	// Method is the HTTP method, such as "GET".
	Method string
	// Pattern is the path template, such as "/v1/movies/{id}" or
	// "/v1/movies:batchGet".
	Pattern string
	// RPC is the full gRPC method name, "/marquee.catalog.v1.CatalogService/GetMovie".
	RPC string
	// ServerStreaming marks RPCs that stream their response.
	ServerStreaming bool
}

// FromFiles lists the routes of every service in files, in declaration order.
// Methods without an HTTP rule (internal RPCs) have no route.
func FromFiles(files ...protoreflect.FileDescriptor) []Route {
	var out []Route
	for _, f := range files {
		svcs := f.Services()
		for i := range svcs.Len() {
			svc := svcs.Get(i)
			methods := svc.Methods()
			for j := range methods.Len() {
				m := methods.Get(j)
				rule, ok := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if !ok || rule == nil {
					continue
				}
				rpc := fmt.Sprintf("/%s/%s", svc.FullName(), m.Name())
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					if method, pattern := methodAndPattern(r); method != "" {
						out = append(out, Route{Method: method, Pattern: pattern, RPC: rpc, ServerStreaming: m.IsStreamingServer()})
					}
				}
			}
		}
	}
	return out
}

func methodAndPattern(r *annotations.HttpRule) (string, string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	default:
		return "", ""
	}
}

// Table matches request paths against the routes with grpc-gateway's own
// matcher, so its answers agree with the mux that serves the requests.
type Table struct {
	probe   *runtime.ServeMux
	methods []string
}

// NewTable builds a table of routes.
func NewTable(rs []Route) (*Table, error) {
	t := &Table{probe: runtime.NewServeMux(
		runtime.WithRoutingErrorHandler(func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, _ http.ResponseWriter, _ *http.Request, _ int) {
		}),
	)}
	for _, r := range rs {
		if err := t.probe.HandlePath(r.Method, r.Pattern, func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
			if pw, ok := w.(*probeWriter); ok {
				pw.matched = true
			}
		}); err != nil {
			return nil, fmt.Errorf("adding route %s %s: %w", r.Method, r.Pattern, err)
		}
		if !slices.Contains(t.methods, r.Method) {
			t.methods = append(t.methods, r.Method)
		}
	}
	return t, nil
}

// Allow returns the methods a request path accepts, in a stable order, with
// HEAD wherever GET is allowed (the gateway answers HEAD like GET without a
// body). It is empty for a path no route matches.
func (t *Table) Allow(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if !slices.Contains(t.methods, m) {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Header: http.Header{}, Host: r.Host}
		pw := &probeWriter{header: http.Header{}}
		t.probe.ServeHTTP(pw, probe)
		if pw.matched {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return allow
}

// probeWriter records whether a route handler ran; nothing is written.
type probeWriter struct {
	header  http.Header
	matched bool
}

func (w *probeWriter) Header() http.Header         { return w.header }
func (w *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *probeWriter) WriteHeader(int)             {}
