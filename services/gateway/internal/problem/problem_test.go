package problem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

func TestFromStatusMapping(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantReason string
		wantDetail string // "" means: not checked
		hidden     string // must not appear in the detail
	}{
		{"not found", apierr.New(codes.NotFound, "MOVIE_NOT_FOUND", `movie "m_1" not found`), 404, "not-found", "MOVIE_NOT_FOUND", `movie "m_1" not found`, ""},
		{"invalid argument", apierr.InvalidArgument("INVALID_ARGUMENT", "bad", apierr.Field("page_size", "must not be negative")), 400, "invalid-argument", "INVALID_ARGUMENT", "bad", ""},
		{"unsupported query", apierr.InvalidArgument("UNSUPPORTED_QUERY", "use search"), 400, "unsupported-query", "UNSUPPORTED_QUERY", "use search", ""},
		{"etag mismatch is 412, not 409", apierr.New(codes.Aborted, "ETAG_MISMATCH", "stale"), 412, "etag-mismatch", "ETAG_MISMATCH", "stale", ""},
		{"etag mismatch as failed precondition", apierr.New(codes.FailedPrecondition, "ETAG_MISMATCH", "stale"), 412, "etag-mismatch", "ETAG_MISMATCH", "", ""},
		{"feed expired is 410", apierr.New(codes.FailedPrecondition, "FEED_POSITION_EXPIRED", "resync"), 410, "feed-position-expired", "FEED_POSITION_EXPIRED", "resync", ""},
		{"other failed precondition", apierr.New(codes.FailedPrecondition, "DIRECTOR_IN_USE", "in use"), 400, "invalid-argument", "DIRECTOR_IN_USE", "in use", ""},
		{"aborted", apierr.New(codes.Aborted, "CONFLICT", "retry"), 409, "conflict", "CONFLICT", "", ""},
		{"already exists", status.Error(codes.AlreadyExists, "dup"), 409, "conflict", "ALREADY_EXISTS", "dup", ""},
		{"unauthenticated", apierr.New(codes.Unauthenticated, "UNAUTHENTICATED", "needs a credential"), 401, "unauthenticated", "UNAUTHENTICATED", "", ""},
		{"permission denied", apierr.New(codes.PermissionDenied, "PERMISSION_DENIED", "admins only"), 403, "permission-denied", "PERMISSION_DENIED", "", ""},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "slow down"), 429, "rate-limited", "RESOURCE_EXHAUSTED", "slow down", ""},
		{"out of range", status.Error(codes.OutOfRange, "past the end"), 400, "invalid-argument", "OUT_OF_RANGE", "", ""},
		{"internal hides its message", status.Error(codes.Internal, "mongo: 10.0.0.1 refused"), 500, "internal-server-error", "INTERNAL", "", "mongo"},
		{"internal with our reason still hides", apierr.New(codes.Internal, "STORE_FAILED", "mongo: 10.0.0.1 refused"), 500, "internal-server-error", "STORE_FAILED", "", "mongo"},
		{"unknown hides its message", errors.New("driver: secret"), 500, "internal-server-error", "INTERNAL", "", "secret"},
		{"data loss", status.Error(codes.DataLoss, "disk 3 gone"), 500, "internal-server-error", "INTERNAL", "", "disk"},
		{"unavailable hides transport detail", status.Error(codes.Unavailable, "dial tcp 10.0.0.2:9091: connection refused"), 503, "unavailable", "BACKEND_UNAVAILABLE", "", "10.0.0.2"},
		{"unavailable from a service shows its message", apierr.New(codes.Unavailable, "AUTH_UNAVAILABLE", "credentials cannot be checked"), 503, "unavailable", "AUTH_UNAVAILABLE", "credentials cannot be checked", ""},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), 504, "timeout", "DEADLINE_EXCEEDED", "", ""},
		{"context deadline", fmt.Errorf("calling catalog: %w", context.DeadlineExceeded), 504, "timeout", "DEADLINE_EXCEEDED", "", ""},
		{"canceled", status.Error(codes.Canceled, "gone"), 499, "client-closed-request", "CANCELLED", "", ""},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown service marquee.x"), 501, "not-implemented", "UNIMPLEMENTED", "", "marquee.x"},
		{"ok is still a failure", status.Error(codes.OK, ""), 500, "internal-server-error", "INTERNAL", "", ""},
		{"routing 400", &runtime.HTTPStatusError{HTTPStatus: 400, Err: status.Error(codes.InvalidArgument, "bad escape")}, 400, "invalid-argument", "INVALID_ARGUMENT", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := problem.FromError(tc.err)
			if p.Status != tc.wantStatus {
				t.Errorf("status = %d, want %d", p.Status, tc.wantStatus)
			}
			if p.Status < 400 {
				t.Errorf("a failure mapped to %d", p.Status)
			}
			if want := problem.TypeBase + tc.wantType; p.Type != want {
				t.Errorf("type = %q, want %q", p.Type, want)
			}
			if p.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", p.Reason, tc.wantReason)
			}
			if tc.wantDetail != "" && p.Detail != tc.wantDetail {
				t.Errorf("detail = %q, want %q", p.Detail, tc.wantDetail)
			}
			if tc.hidden != "" && strings.Contains(p.Detail, tc.hidden) {
				t.Errorf("detail %q leaks %q", p.Detail, tc.hidden)
			}
			if p.Title != http.StatusText(p.Status) && p.Status != 499 {
				t.Errorf("title = %q", p.Title)
			}
		})
	}
}

func TestViolationsAndRetryInfo(t *testing.T) {
	p := problem.FromError(apierr.InvalidArgument("INVALID_ARGUMENT", "bad",
		apierr.Field("page_size", "must not be negative"), apierr.Field("filter", "unknown field")))
	if len(p.Errors) != 2 || p.Errors[0].Field != "page_size" || p.Errors[1].Description != "unknown field" {
		t.Errorf("errors = %+v", p.Errors)
	}
	st, _ := status.New(codes.ResourceExhausted, "too many sign-ups").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(42 * time.Second)})
	if p := problem.FromStatus(st); p.RetryAfter != 42*time.Second {
		t.Errorf("RetryAfter = %v, want 42s", p.RetryAfter)
	}
	if p := problem.FromError(apierr.WithMetadata(codes.ResourceExhausted, "SIGNUP_THROTTLED", "later", map[string]string{"retry_after": "7"})); p.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter from metadata = %v, want 7s", p.RetryAfter)
	}
	if p := problem.FromError(status.Error(codes.Unavailable, "x")); p.RetryAfter <= 0 {
		t.Errorf("503 without RetryAfter")
	}
}

func TestWrite(t *testing.T) {
	r := httptest.NewRequest("GET", "/v1/movies/x", nil)
	r, info := reqinfo.New(r)
	info.RequestID = "req-1"
	w := httptest.NewRecorder()
	w.Header().Set("ETag", `"1"`)
	w.Header().Set("Link", "</x>; rel=next")
	p := problem.New(http.StatusTooManyRequests, codes.ResourceExhausted, problem.ReasonRateLimited, "slow down")
	p.RetryAfter = 1500 * time.Millisecond
	problem.Write(w, r, p)
	if w.Code != 429 || w.Header().Get("Content-Type") != problem.ContentType || w.Header().Get("Retry-After") != "2" ||
		w.Header().Get("ETag") != "" || w.Header().Get("Link") != "" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("response %d %v", w.Code, w.Header())
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if got["requestId"] != "req-1" || got["status"] != float64(429) || got["code"] != "RESOURCE_EXHAUSTED" {
		t.Errorf("body %v", got)
	}

	// A problem built with a success status is still written as a failure.
	w = httptest.NewRecorder()
	problem.Write(w, r, &problem.Problem{Status: 200, Title: "OK"})
	if w.Code != 500 {
		t.Errorf("a 2xx problem was written as %d", w.Code)
	}

	// 401 always carries a challenge.
	w = httptest.NewRecorder()
	problem.Write(w, r, problem.New(401, codes.Unauthenticated, "UNAUTHENTICATED", "no"))
	if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
	}
}

func TestHandlerAnswers413WhenTheBodyWasTooLarge(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/movies", nil)
	r, info := reqinfo.New(r)
	info.BodyTooLarge = true
	w := httptest.NewRecorder()
	(&problem.Handler{}).WriteError(w, r, status.Error(codes.InvalidArgument, "http: request body too large"))
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", w.Code)
	}
}

func TestRoutingErrors(t *testing.T) {
	h := &problem.Handler{Allow: func(*http.Request) []string { return []string{"GET", "HEAD"} }}
	for _, tc := range []struct {
		status int
		allow  string
	}{{404, ""}, {405, "GET, HEAD"}, {400, ""}} {
		w := httptest.NewRecorder()
		r, _ := reqinfo.New(httptest.NewRequest("PUT", "/v1/genres", nil))
		h.RoutingErrorHandler(r.Context(), nil, nil, w, r, tc.status)
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow || w.Header().Get("Content-Type") != problem.ContentType {
			t.Errorf("routing %d: got %d, Allow %q", tc.status, w.Code, w.Header().Get("Allow"))
		}
	}
}
