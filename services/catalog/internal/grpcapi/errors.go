package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Reasons this service answers with, beyond the domain's InvalidError ones.
const (
	ReasonMovieNotFound          = "MOVIE_NOT_FOUND"
	ReasonDirectorNotFound       = "DIRECTOR_NOT_FOUND"
	ReasonETagMismatch           = "ETAG_MISMATCH"
	ReasonMovieAlreadyExists     = "MOVIE_ALREADY_EXISTS"
	ReasonFeedPositionExpired    = "FEED_POSITION_EXPIRED"
	ReasonConcurrentModification = "CONCURRENT_MODIFICATION"
	ReasonInternal               = "INTERNAL"
	ReasonDatabaseUnavailable    = "DATABASE_UNAVAILABLE"
)

// toStatus is the one place a domain error becomes a gRPC status. Internal
// failures are logged here and answered without their details.
func toStatus(ctx context.Context, logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (authn, or a canceled stream)
	}
	var inv *movie.InvalidError
	var nf *movie.NotFoundError
	switch {
	case errors.As(err, &inv):
		vs := make([]apierr.FieldViolation, len(inv.Violations))
		for i, v := range inv.Violations {
			vs[i] = apierr.Field(v.Field, v.Description)
		}
		return apierr.InvalidArgument(inv.Reason, inv.Error(), vs...)
	case errors.As(err, &nf):
		reason := ReasonMovieNotFound
		if nf.Kind == "director" {
			reason = ReasonDirectorNotFound
		}
		return apierr.New(codes.NotFound, reason, nf.Error())
	case errors.Is(err, movie.ErrETagMismatch):
		return apierr.New(codes.Aborted, ReasonETagMismatch, "the etag no longer matches: read the resource again")
	case errors.Is(err, movie.ErrAlreadyExists):
		return apierr.New(codes.AlreadyExists, ReasonMovieAlreadyExists, err.Error())
	case errors.Is(err, feed.ErrPositionExpired):
		return apierr.New(codes.FailedPrecondition, ReasonFeedPositionExpired,
			"the change-feed position is older than the retention period: resynchronise from /v1/movies:export")
	case errors.Is(err, movie.ErrConflict):
		return apierr.New(codes.Aborted, ReasonConcurrentModification, "the resource kept changing concurrently: retry")
	case mongodb.IsUnavailable(err):
		return apierr.New(codes.Unavailable, ReasonDatabaseUnavailable, "the catalog's database is unreachable: retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	}
	logger.ErrorContext(ctx, "internal error", "error", err)
	return apierr.New(codes.Internal, ReasonInternal, "internal error")
}
