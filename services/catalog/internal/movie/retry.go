package movie

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Bounds of the compare-and-set retries of writes made without an etag.
const (
	conflictFirstWait = 2 * time.Millisecond
	conflictMaxWait   = 100 * time.Millisecond
	conflictMaxTries  = 40
)

// retryConflicts runs attempt again while it fails with ErrConflict (another
// writer changed the document between attempt's read and its write), until
// it succeeds, fails otherwise, or contention outlasts the write timeout.
// The waits grow and are jittered: writers that collided and retried at
// once would mostly collide again, which is how a burst of concurrent
// PATCHes without an etag used to exhaust its attempts. ErrConflict comes
// back only when the retries are exhausted.
func (s *Service) retryConflicts(ctx context.Context, attempt func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = conflictFirstWait
	b.MaxInterval = conflictMaxWait
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := attempt()
		if err != nil && !errors.Is(err, ErrConflict) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(conflictMaxTries), backoff.WithMaxElapsedTime(s.writeTimeout))
	return err
}

// casFailure classifies the error of a compare-and-set write: nil stays nil;
// a conflict is the caller's stale etag when it sent one (never retried) and
// a conflict to retry when it did not; anything else is wrapped with what.
func casFailure(err error, hasETag bool, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrConflict) && hasETag:
		return ErrETagMismatch
	case errors.Is(err, ErrConflict):
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// replaceMovie writes m in place of revision prev within the write timeout.
func (s *Service) replaceMovie(ctx context.Context, m *Movie, prev int64) error {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	return s.store.ReplaceMovie(wctx, m, prev)
}

// replaceDirector writes d in place of revision prev within the write
// timeout.
func (s *Service) replaceDirector(ctx context.Context, d *Director, prev int64) error {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	return s.store.ReplaceDirector(wctx, d, prev)
}
