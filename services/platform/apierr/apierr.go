// Package apierr turns a domain failure into a gRPC status carrying the
// platform's error details: a google.rpc.ErrorInfo whose reason is the stable,
// machine-readable name of the failure (MOVIE_NOT_FOUND, ETAG_MISMATCH, ...)
// in the "marquee.dev" domain and, for bad input, a google.rpc.BadRequest
// listing the offending fields. The gateway reads the same details back to
// build problem+json responses.
package apierr

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is the ErrorInfo domain of every Marquee error.
const Domain = "marquee.dev"

// ReasonInvalidArgument is the reason InvalidArgument uses when given none.
const ReasonInvalidArgument = "INVALID_ARGUMENT"

// FieldViolation names one invalid request field (in the API's own field
// path notation, e.g. "movie.title") and says what is wrong with it.
type FieldViolation struct {
	Field       string
	Description string
}

// Field returns a FieldViolation.
func Field(field, desc string) FieldViolation {
	return FieldViolation{Field: field, Description: desc}
}

// New returns a status error with code, message msg and an ErrorInfo{reason,
// Domain}. codes.OK is not an error and becomes codes.Unknown, so New never
// returns nil.
func New(code codes.Code, reason, msg string) error {
	return WithMetadata(code, reason, msg, nil)
}

// WithMetadata is New with ErrorInfo metadata, for values a client may act
// on (the current ETag, a retry position).
func WithMetadata(code codes.Code, reason, msg string, md map[string]string) error {
	return build(code, msg, &errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: md})
}

// InvalidArgument returns a codes.InvalidArgument status with an ErrorInfo
// (reason defaults to INVALID_ARGUMENT) and, when violations are given, a
// BadRequest listing them.
func InvalidArgument(reason, msg string, violations ...FieldViolation) error {
	if reason == "" {
		reason = ReasonInvalidArgument
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: Domain}
	if len(violations) == 0 {
		return build(codes.InvalidArgument, msg, info)
	}
	br := &errdetails.BadRequest{}
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.Field,
			Description: v.Description,
		})
	}
	return build(codes.InvalidArgument, msg, info, br)
}

func build(code codes.Code, msg string, details ...protoadapt.MessageV1) error {
	if code == codes.OK {
		code = codes.Unknown
	}
	st := status.New(code, msg)
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		// Only a non-OK code and marshalable details reach here, so this
		// cannot fail; keep the bare status rather than lose the error.
		return st.Err()
	}
	return withDetails.Err()
}

// Info returns the ErrorInfo of a status error (also when wrapped), or nil.
func Info(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// Reason returns the ErrorInfo reason of a status error, "" if it has none.
func Reason(err error) string {
	return Info(err).GetReason()
}

// Metadata returns the ErrorInfo metadata of a status error, nil if none.
func Metadata(err error) map[string]string {
	return Info(err).GetMetadata()
}

// Violations returns the BadRequest field violations of a status error.
func Violations(err error) []FieldViolation {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return nil
	}
	var out []FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return out
}
