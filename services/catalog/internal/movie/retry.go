package movie

import (
	"context"
	"errors"
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
