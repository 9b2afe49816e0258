// Package problem turns failures into RFC 9457 problem documents
// (application/problem+json), the one error format of the REST API.
//
// Backend failures arrive as gRPC status errors; FromError maps them by code
// and, where the canonical mapping is wrong for this API, by the
// google.rpc.ErrorInfo reason (an etag mismatch is 412, not 409; an expired
// change-feed position is 410). Failures the gateway finds itself (a bad
// route, an oversized body, a rate limit) are built with New. No problem is
// ever written with a 2xx status, and the message of an internal failure
// never reaches the client.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI.
const TypeBase = "https://marquee.dev/problems/"

// Domain is the ErrorInfo domain of Marquee's own errors; only their messages
// are trusted to be written for clients when the code is not a client error.
const Domain = "marquee.dev"

// Reasons the gateway itself uses, besides those the services send.
const (
	ReasonNotFound         = "NOT_FOUND"
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	ReasonPayloadTooLarge  = "PAYLOAD_TOO_LARGE"
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonRateLimited      = "RATE_LIMITED"
	ReasonOverloaded       = "OVERLOADED"
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonUnavailable      = "BACKEND_UNAVAILABLE"
	ReasonTimeout          = "DEADLINE_EXCEEDED"
	ReasonInternal         = "INTERNAL"
	ReasonEtagMismatch     = "ETAG_MISMATCH"
	ReasonFeedExpired      = "FEED_POSITION_EXPIRED"
	ReasonUnsupportedQuery = "UNSUPPORTED_QUERY"
)

// FieldError names one invalid field of a request.
type FieldError struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// Problem is an RFC 9457 problem document plus the response headers that go
// with it. It is an error, so middleware can return one.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Code   string       `json:"code,omitempty"`
	Reason string       `json:"reason,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
	// RequestID repeats X-Request-Id so a pasted error body can be traced.
	RequestID string `json:"requestId,omitempty"`

	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration `json:"-"`
	// Allow is sent as Allow with a 405.
	Allow []string `json:"-"`
	// Challenge is sent as WWW-Authenticate with a 401.
	Challenge string `json:"-"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%d %s: %s", p.Status, p.Reason, p.Detail)
}

// New returns a problem with the given HTTP status, gRPC-style code name,
// reason and detail.
func New(httpStatus int, code codes.Code, reason, detail string) *Problem {
	return &Problem{
		Type:   TypeBase + slug(httpStatus, reason),
		Title:  title(httpStatus),
		Status: httpStatus,
		Detail: detail,
		Code:   codeName(code),
		Reason: reason,
	}
}

// Challenge is the WWW-Authenticate value for a request with no credential;
// InvalidTokenChallenge is the one for a request whose credential was refused
// (RFC 6750 section 3).
const (
	Challenge             = `Bearer realm="marquee"`
	InvalidTokenChallenge = `Bearer realm="marquee", error="invalid_token"`
)

// FromError maps err to a problem. A *Problem is returned as it is; a gRPC
// status is mapped by code and ErrorInfo reason; context errors become 504 or
// 499; anything else is a 500 whose message is not shown.
func FromError(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		// grpc-gateway's way to report a malformed path escape.
		inner := FromError(hse.Err)
		inner.Status = hse.HTTPStatus
		inner.Title = title(hse.HTTPStatus)
		inner.Type = TypeBase + slug(hse.HTTPStatus, inner.Reason)
		return inner
	}
	if _, ok := status.FromError(err); !ok {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			err = status.Error(codes.DeadlineExceeded, "")
		case errors.Is(err, context.Canceled):
			err = status.Error(codes.Canceled, "")
		}
	}
	return FromStatus(status.Convert(err))
}

// FromStatus maps a gRPC status to a problem (see the package comment).
func FromStatus(st *status.Status) *Problem {
	code := st.Code()
	var info *errdetails.ErrorInfo
	var violations []FieldError
	var retryAfter time.Duration
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if info == nil {
				info = d
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				violations = append(violations, FieldError{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			retryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	reason := info.GetReason()
	ours := info != nil && info.GetDomain() == Domain

	httpStatus := HTTPStatus(code, reason)
	detail := st.Message()
	if !showMessage(code, ours) {
		detail = genericDetail(code)
	}
	if reason == "" {
		reason = defaultReason(code)
	}
	p := New(httpStatus, code, reason, detail)
	p.Errors = violations
	switch httpStatus {
	case http.StatusTooManyRequests:
		if retryAfter <= 0 {
			retryAfter = secondsFromMetadata(info.GetMetadata()["retry_after"], time.Second)
		}
		p.RetryAfter = retryAfter
	case http.StatusServiceUnavailable:
		if retryAfter <= 0 {
			retryAfter = 2 * time.Second
		}
		p.RetryAfter = retryAfter
	case http.StatusUnauthorized:
		p.Challenge = Challenge
	}
	return p
}

// HTTPStatus maps a gRPC code, refined by the ErrorInfo reason, to an HTTP
// status. It never returns a 2xx status.
func HTTPStatus(code codes.Code, reason string) int {
	switch reason {
	case ReasonEtagMismatch:
		return http.StatusPreconditionFailed
	case ReasonFeedExpired:
		return http.StatusGone
	case ReasonUnsupportedQuery:
		return http.StatusBadRequest
	}
	switch code {
	case codes.OK:
		// A status error with code OK is a bug somewhere; it is still a
		// failure, never a success.
		return http.StatusInternalServerError
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss and codes this version does not know
		return http.StatusInternalServerError
	}
}

// showMessage reports whether a status message may be shown to the client:
// always for client errors (they describe the request), never for internal
// failures, and for the rest only when one of Marquee's services wrote it
// (transport errors name internal addresses).
func showMessage(code codes.Code, ours bool) bool {
	switch code {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.Aborted, codes.OutOfRange,
		codes.ResourceExhausted:
		return true
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.OK:
		return false
	default:
		return ours
	}
}

func genericDetail(code codes.Code) string {
	switch code {
	case codes.Unavailable:
		return "the service is temporarily unavailable; retry later"
	case codes.DeadlineExceeded:
		return "the service did not answer in time"
	case codes.Canceled:
		return "the request was canceled"
	case codes.Unimplemented:
		return "not implemented"
	default:
		return "an internal error occurred"
	}
}

func defaultReason(code codes.Code) string {
	switch code {
	case codes.Unavailable:
		return ReasonUnavailable
	case codes.DeadlineExceeded:
		return ReasonTimeout
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.OK:
		return ReasonInternal
	default:
		return codeName(code)
	}
}

// codeName is the canonical upper-snake name of a gRPC code, such as
// "NOT_FOUND".
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	case codes.Unknown:
		return "UNKNOWN"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.Aborted:
		return "ABORTED"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	case codes.Unimplemented:
		return "UNIMPLEMENTED"
	case codes.Internal:
		return "INTERNAL"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.DataLoss:
		return "DATA_LOSS"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	default:
		return "UNKNOWN"
	}
}

// slug names the problem type: the reason for the few that have their own
// meaning over HTTP, else the HTTP status.
func slug(httpStatus int, reason string) string {
	switch reason {
	case ReasonEtagMismatch, ReasonFeedExpired, ReasonUnsupportedQuery, ReasonRateLimited, ReasonOverloaded:
		return strings.ReplaceAll(strings.ToLower(reason), "_", "-")
	}
	switch httpStatus {
	case 499:
		return "client-closed-request"
	case http.StatusBadRequest:
		return "invalid-argument"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "permission-denied"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusMethodNotAllowed:
		return "method-not-allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload-too-large"
	case http.StatusTooManyRequests:
		return "rate-limited"
	case http.StatusNotImplemented:
		return "not-implemented"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "timeout"
	default:
		if t := http.StatusText(httpStatus); t != "" {
			return strings.ToLower(strings.ReplaceAll(t, " ", "-"))
		}
		return "internal"
	}
}

func title(httpStatus int) string {
	if httpStatus == 499 {
		return "Client Closed Request"
	}
	if t := http.StatusText(httpStatus); t != "" {
		return t
	}
	return "Error"
}

func secondsFromMetadata(v string, def time.Duration) time.Duration {
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(strings.TrimSuffix(v, "s"), 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return def
	}
	return time.Duration(n * float64(time.Second))
}

// RetryAfterSeconds renders a Retry-After delay in whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// Write sends p as the response. Headers that describe a successful
// representation (ETag, Link, Content-Length) are removed; the problem is
// never cached.
func Write(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Status < 400 {
		// A problem is a failure: a bug that builds one with another
		// status still answers with a failure.
		p.Status = http.StatusInternalServerError
		p.Title = title(p.Status)
	}
	info := reqinfo.From(r.Context())
	if p.RequestID == "" {
		p.RequestID = info.RequestID
	}
	h := w.Header()
	for _, k := range []string{"ETag", "Link", "Content-Length", "Last-Modified", "Trailer", "Transfer-Encoding"} {
		h.Del(k)
	}
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", RetryAfterSeconds(p.RetryAfter))
	}
	if len(p.Allow) > 0 {
		h.Set("Allow", strings.Join(p.Allow, ", "))
	}
	if p.Status == http.StatusUnauthorized {
		c := p.Challenge
		if c == "" {
			c = Challenge
		}
		h.Set("WWW-Authenticate", c)
	}
	body, err := json.Marshal(p)
	if err != nil {
		// A Problem holds only strings and ints; this cannot fail.
		body = []byte(`{"type":"` + TypeBase + `internal","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// Handler writes problems for grpc-gateway: it is the mux's error, routing
// error and stream error handler.
type Handler struct {
	// Logger receives the real message of internal failures.
	Logger *slog.Logger
	// Allow returns the methods the path of r accepts, for 405 answers.
	Allow func(r *http.Request) []string
}

// ErrorHandler is a runtime.ErrorHandlerFunc.
func (h *Handler) ErrorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	// The route template is known once grpc-gateway matched the request;
	// failures are counted per route like successes.
	if pat, ok := runtime.HTTPPathPattern(ctx); ok {
		reqinfo.From(r.Context()).Route = pat
	}
	h.WriteError(w, r, err)
}

// WriteError maps err and writes it, answering 413 when the request body went
// over its limit (the decoder reports that as a plain decode error).
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	info := reqinfo.From(r.Context())
	if info.BodyTooLarge {
		Write(w, r, New(http.StatusRequestEntityTooLarge, codes.InvalidArgument, ReasonPayloadTooLarge,
			"the request body is larger than the limit"))
		return
	}
	p := FromError(err)
	if p.Status >= 500 && h.Logger != nil {
		h.Logger.LogAttrs(r.Context(), slog.LevelWarn, "request failed",
			slog.String("request_id", info.RequestID),
			slog.String("route", info.Route),
			slog.Int("status", p.Status),
			slog.String("error", err.Error()))
	}
	if p.Status == http.StatusUnauthorized && hasCredential(r) {
		p.Challenge = InvalidTokenChallenge
	}
	Write(w, r, p)
}

// RoutingErrorHandler is a runtime.RoutingErrorHandlerFunc: 404 for an unknown
// path, 405 with Allow for a known path and another method, 400 for a
// malformed one.
func (h *Handler) RoutingErrorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	reqinfo.From(r.Context()).Route = "unmatched"
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		p := New(http.StatusMethodNotAllowed, codes.Unimplemented, ReasonMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		if h.Allow != nil {
			p.Allow = h.Allow(r)
		}
		Write(w, r, p)
	case http.StatusBadRequest:
		Write(w, r, New(http.StatusBadRequest, codes.InvalidArgument, ReasonInvalidArgument, "the request path is malformed"))
	default:
		Write(w, r, New(http.StatusNotFound, codes.NotFound, ReasonNotFound, "no resource at "+r.URL.Path))
	}
}

// StreamErrorHandler hides internal messages in errors that end a stream
// after it started.
func (h *Handler) StreamErrorHandler(ctx context.Context, err error) *status.Status {
	st := status.Convert(err)
	p := FromStatus(st)
	if p.Status >= 500 && h.Logger != nil {
		h.Logger.WarnContext(ctx, "stream failed", slog.String("error", err.Error()))
	}
	return status.New(st.Code(), p.Detail)
}

func hasCredential(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Header.Get("X-API-Key") != ""
}
