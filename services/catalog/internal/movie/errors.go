package movie

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the domain. grpcapi maps them to status codes; nothing
// else in the service does.
var (
	// ErrNotFound matches every NotFoundError.
	ErrNotFound = errors.New("not found")
	// ErrETagMismatch means the caller's etag no longer matches.
	ErrETagMismatch = errors.New("etag mismatch")
	// ErrInvalidPageToken means a page token was malformed, forged, or made
	// for another query.
	ErrInvalidPageToken = errors.New("invalid page token")
	// ErrAlreadyExists means a create collided with a movie made by another
	// request, or replayed a create whose movie has since been deleted.
	ErrAlreadyExists = errors.New("already exists")

	// ErrConflict is returned by a Store when a conditional write found
	// another revision.
	ErrConflict = errors.New("revision conflict")
	// ErrDuplicate is returned by a Store when an insert hit an existing _id.
	ErrDuplicate = errors.New("duplicate id")
	// ErrUnreachable is wrapped by a Store around failures to reach the
	// database at all: nothing can be read back or undone until it returns.
	ErrUnreachable = errors.New("database unreachable")
)

// NotFoundError names the missing resource.
type NotFoundError struct {
	Kind string // "movie" or "director"
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.ID) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// FieldViolation names one invalid request field by its proto JSON path,
// such as "movie.imdbScore" or "requests[3].movie.title".
type FieldViolation struct {
	Field       string
	Description string
}

// InvalidError is bad input: a reason (INVALID_ARGUMENT unless more
// specific) and the fields at fault.
type InvalidError struct {
	Reason     string
	Message    string
	Violations []FieldViolation
}

func (e *InvalidError) Error() string {
	if len(e.Violations) == 0 {
		return e.Message
	}
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// Unwrap lets errors.Is find ErrInvalidPageToken behind a token error.
func (e *InvalidError) Unwrap() error {
	if e.Reason == ReasonInvalidPageToken {
		return ErrInvalidPageToken
	}
	return nil
}

// Reasons carried by InvalidError.
const (
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonInvalidPageToken = "INVALID_PAGE_TOKEN"
	ReasonUnsupportedQuery = "UNSUPPORTED_QUERY"
	ReasonInvalidFilter    = "INVALID_FILTER"
	ReasonInvalidOrderBy   = "INVALID_ORDER_BY"
)

func invalid(field, desc string) *InvalidError {
	return &InvalidError{
		Reason:     ReasonInvalidArgument,
		Message:    "invalid request",
		Violations: []FieldViolation{{Field: field, Description: desc}},
	}
}

func invalidPageToken(field string) *InvalidError {
	return &InvalidError{
		Reason:     ReasonInvalidPageToken,
		Message:    "the page token is invalid or belongs to another query",
		Violations: []FieldViolation{{Field: field, Description: "not a page token of this query"}},
	}
}

// unsupported builds the answer to a query that no index serves.
func unsupported(why string) *InvalidError {
	return &InvalidError{
		Reason: ReasonUnsupportedQuery,
		Message: why + "; the catalogue lists only the filter and order combinations its indexes serve " +
			"(see QUERIES.md): use GET /v1/search/movies for any other filter or order",
		Violations: []FieldViolation{{Field: "filter", Description: why}},
	}
}

// violations accumulates field violations during validation.
type violations []FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Reason: ReasonInvalidArgument, Message: "invalid request", Violations: v}
}
