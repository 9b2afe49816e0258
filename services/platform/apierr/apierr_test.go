package apierr_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-dev/marquee/services/platform/apierr"
)

func TestNew(t *testing.T) {
	err := apierr.New(codes.NotFound, "MOVIE_NOT_FOUND", "movie tt0111161 not found")
	st := status.Convert(err)
	if st.Code() != codes.NotFound || st.Message() != "movie tt0111161 not found" {
		t.Errorf("status = %v", st)
	}
	info := apierr.Info(err)
	if info.GetReason() != "MOVIE_NOT_FOUND" || info.GetDomain() != "marquee.dev" {
		t.Errorf("ErrorInfo = %v", info)
	}
	if got := apierr.Reason(err); got != "MOVIE_NOT_FOUND" {
		t.Errorf("Reason = %q", got)
	}
	if apierr.Violations(err) != nil {
		t.Error("unexpected violations")
	}
}

func TestWithMetadata(t *testing.T) {
	md := map[string]string{"etag": `"r7"`}
	err := apierr.WithMetadata(codes.FailedPrecondition, "ETAG_MISMATCH", "stale etag", md)
	if got := apierr.Metadata(err); !reflect.DeepEqual(got, md) {
		t.Errorf("Metadata = %v, want %v", got, md)
	}
}

func TestInvalidArgument(t *testing.T) {
	err := apierr.InvalidArgument("", "bad movie",
		apierr.Field("movie.title", "must not be empty"),
		apierr.Field("movie.year", "must be between 1870 and 2100"),
	)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("code = %v", status.Code(err))
	}
	if got := apierr.Reason(err); got != "INVALID_ARGUMENT" {
		t.Errorf("Reason = %q, want the default", got)
	}
	want := []apierr.FieldViolation{
		{Field: "movie.title", Description: "must not be empty"},
		{Field: "movie.year", Description: "must be between 1870 and 2100"},
	}
	if got := apierr.Violations(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Violations = %v, want %v", got, want)
	}
	// The wire form is the standard google.rpc.BadRequest.
	var found bool
	for _, d := range status.Convert(err).Details() {
		_, ok := d.(*errdetails.BadRequest)
		found = found || ok
	}
	if !found {
		t.Error("no errdetails.BadRequest detail")
	}

	withReason := apierr.InvalidArgument("INVALID_PAGE_TOKEN", "page token is not valid")
	if apierr.Reason(withReason) != "INVALID_PAGE_TOKEN" || apierr.Violations(withReason) != nil {
		t.Errorf("got reason %q violations %v", apierr.Reason(withReason), apierr.Violations(withReason))
	}
}

func TestWrappedAndForeignErrors(t *testing.T) {
	wrapped := fmt.Errorf("calling catalog: %w", apierr.New(codes.NotFound, "MOVIE_NOT_FOUND", "gone"))
	if got := apierr.Reason(wrapped); got != "MOVIE_NOT_FOUND" {
		t.Errorf("Reason(wrapped) = %q", got)
	}
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.Internal, "no details")} {
		if apierr.Reason(err) != "" || apierr.Violations(err) != nil || apierr.Metadata(err) != nil {
			t.Errorf("details found in %v", err)
		}
	}
}

func TestOKIsNotAnError(t *testing.T) {
	err := apierr.New(codes.OK, "X", "y")
	if err == nil || status.Code(err) != codes.Unknown {
		t.Errorf("New(OK) = %v, want an Unknown error", err)
	}
}
