// Package restmux assembles the grpc-gateway mux that maps the REST surface
// onto the catalog, search and auth services.
//
// Everything grpc-gateway would otherwise decide by default is decided here:
// JSON is protojson with lowerCamelCase names, unpopulated fields omitted and
// unknown fields rejected; errors are problem documents; only the caller's
// credentials and request id travel to the backends as metadata, and no
// backend metadata leaks into the response; responses get ETag, Link and
// Cache-Control; creates answer 201 Created (a movie with its Location);
// Idempotency-Key and If-Match become the request_id and etag fields the
// services read; the NDJSON export is streamed as it arrives.
package restmux

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/gateway/internal/respcache"
)

// NDJSON is the media type of the export.
const NDJSON = "application/x-ndjson"

// Options configure the mux.
type Options struct {
	Catalog  catalogv1.CatalogServiceClient
	Search   searchv1.SearchServiceClient
	Auth     authv1.AuthServiceClient
	Problems *problem.Handler
	Policy   respcache.Policy
}

// New returns the REST mux.
func New(ctx context.Context, opts Options) (http.Handler, error) {
	marshaler := &streamMarshaler{HTTPBodyMarshaler: runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{
			UseProtoNames:   false,
			EmitUnpopulated: false,
		},
		UnmarshalOptions: protojson.UnmarshalOptions{
			DiscardUnknown: false,
		},
	}}}
	fw := &forwarder{policy: opts.Policy}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithErrorHandler(opts.Problems.ErrorHandler),
		runtime.WithRoutingErrorHandler(opts.Problems.RoutingErrorHandler),
		runtime.WithStreamErrorHandler(opts.Problems.StreamErrorHandler),
		runtime.WithIncomingHeaderMatcher(IncomingHeader),
		runtime.WithOutgoingHeaderMatcher(dropAll),
		runtime.WithOutgoingTrailerMatcher(dropAll),
		runtime.WithForwardResponseOption(fw.forward),
		runtime.WithForwardResponseRewriter(rewrite),
		// net/http chunks a response without a length by itself (and
		// HTTP/2 has no such header); grpc-gateway's explicit header only
		// confuses HTTP/2.
		runtime.WithDisableChunkedEncoding(),
		// A form-encoded POST must not turn into a GET.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
	)
	if opts.Catalog != nil {
		if err := catalogv1.RegisterCatalogServiceHandlerClient(ctx, mux, &catalogClient{CatalogServiceClient: opts.Catalog}); err != nil {
			return nil, fmt.Errorf("registering catalog routes: %w", err)
		}
	}
	if opts.Search != nil {
		if err := searchv1.RegisterSearchServiceHandlerClient(ctx, mux, opts.Search); err != nil {
			return nil, fmt.Errorf("registering search routes: %w", err)
		}
	}
	if opts.Auth != nil {
		if err := authv1.RegisterAuthServiceHandlerClient(ctx, mux, opts.Auth); err != nil {
			return nil, fmt.Errorf("registering auth routes: %w", err)
		}
	}
	return statusHandler{mux}, nil
}

// IncomingHeader forwards the caller's API key and request id as gRPC
// metadata, and nothing else: Authorization is forwarded by grpc-gateway
// itself (as `authorization`), and x-forwarded-for is built from the client
// address (see the clientip package). Other headers, Grpc-Metadata-* included,
// never reach a backend.
func IncomingHeader(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case "X-Api-Key":
		return "x-api-key", true
	case "X-Request-Id":
		return "x-request-id", true
	}
	return "", false
}

// dropAll keeps backend header and trailer metadata out of responses: the
// gateway decides every response header itself.
func dropAll(string) (string, bool) { return "", false }

// streamMarshaler is grpc-gateway's JSON marshaler that writes HttpBody
// messages as they are. It writes no delimiter between streamed messages:
// the export's chunks are NDJSON lines already (rewrite makes sure each ends
// with a newline), so a delimiter would add blank lines.
type streamMarshaler struct {
	runtime.HTTPBodyMarshaler
}

// Delimiter implements runtime.Delimited.
func (*streamMarshaler) Delimiter() []byte { return nil }

// rewrite ends every streamed HttpBody chunk with a newline and gives it the
// NDJSON media type when the backend named none.
func rewrite(_ context.Context, resp proto.Message) (any, error) {
	hb, ok := resp.(*httpbody.HttpBody)
	if !ok {
		return resp, nil
	}
	if hb.GetContentType() == "" || !bytes.HasSuffix(hb.GetData(), []byte("\n")) {
		out := &httpbody.HttpBody{ContentType: hb.GetContentType(), Data: hb.GetData()}
		if out.ContentType == "" {
			out.ContentType = NDJSON
		}
		if len(out.Data) > 0 && !bytes.HasSuffix(out.Data, []byte("\n")) {
			out.Data = append(bytes.Clone(out.Data), '\n')
		}
		return out, nil
	}
	return resp, nil
}

// forwarder sets the headers of successful responses.
type forwarder struct {
	policy respcache.Policy
}

type etagged interface{ GetEtag() string }
type paged interface{ GetNextPageToken() string }

func (f *forwarder) forward(ctx context.Context, w http.ResponseWriter, msg proto.Message) error {
	info := reqinfo.From(ctx)
	if pat, ok := runtime.HTTPPathPattern(ctx); ok {
		info.Route = pat
	}
	h := w.Header()
	switch msg.(type) {
	case nil:
		// The start of a stream: nothing is known about the content yet,
		// and it is the caller's own.
		info.Streaming = true
		h.Set("Cache-Control", "private, no-store")
		h.Set("X-Accel-Buffering", "no") // tells nginx-style proxies to pass chunks on at once
		return nil
	case *httpbody.HttpBody:
		return nil // a later chunk of a stream; headers are gone
	}
	if m, ok := msg.(etagged); ok {
		if tag := m.GetEtag(); tag != "" {
			h["Etag"] = []string{QuoteETag(tag)}
		}
	}
	if m, ok := msg.(paged); ok && info.URL != nil {
		if tok := m.GetNextPageToken(); tok != "" {
			h.Set("Link", nextLink(info.URL, tok))
		}
	}
	switch info.Method {
	case http.MethodGet, http.MethodHead, "":
		h.Set("Cache-Control", f.policy.CacheControl(info.Anonymous(), info.Route))
	default:
		h.Set("Cache-Control", "no-store")
	}
	if method, ok := runtime.RPCMethod(ctx); ok && createMethods[method] {
		if m, ok := msg.(*catalogv1.Movie); ok && m.GetId() != "" {
			h.Set("Location", "/v1/movies/"+url.PathEscape(m.GetId()))
		}
		// A replayed create (same Idempotency-Key) gets the first
		// answer's movie back from catalog, so it is a 201 as well.
		if sw, ok := w.(*statusWriter); ok {
			sw.status = http.StatusCreated
		}
	}
	return nil
}

// createMethods are the RPCs answered 201 Created (RFC 9110 section 15.3.2)
// rather than grpc-gateway's 200. The batch create stays 200: its answer is
// a list, not the one resource it made.
var createMethods = map[string]bool{
	catalogv1.CatalogService_CreateMovie_FullMethodName: true,
	authv1.AuthService_CreateUser_FullMethodName:        true,
	authv1.AuthService_CreateApiKey_FullMethodName:      true,
}

// statusHandler lets forward choose the status of a successful POST.
// grpc-gateway writes a response with a bare Write after the forward
// options ran, and an error with an explicit WriteHeader, so the chosen
// status is applied on the first Write only: a failure after forward (the
// marshaler's) still answers its own status. GETs, the hot path, are not
// wrapped.
type statusHandler struct{ mux *runtime.ServeMux }

func (s statusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.mux.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	s.mux.ServeHTTP(sw, r)
	if !sw.wroteHeader && sw.status != 0 {
		sw.ResponseWriter.WriteHeader(sw.status) // an empty body
	}
}

// statusWriter answers status (when set) instead of an implicit 200.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	s.wroteHeader = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if !s.wroteHeader {
		s.wroteHeader = true
		if s.status != 0 {
			s.ResponseWriter.WriteHeader(s.status)
		}
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// QuoteETag returns a resource's etag as an HTTP entity tag: the services
// already quote it (`"7"`); a bare value is quoted.
func QuoteETag(tag string) string {
	if strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, `W/"`) {
		return tag
	}
	return `"` + tag + `"`
}

// nextLink is the RFC 8288 Link to the next page: the request's own path and
// query with the page token replaced. It is relative, so it stays right
// behind any proxy.
func nextLink(u *url.URL, token string) string {
	q := u.Query()
	q.Del("pageToken")
	q.Set("page_token", token)
	return "<" + u.EscapedPath() + "?" + q.Encode() + `>; rel="next"`
}
