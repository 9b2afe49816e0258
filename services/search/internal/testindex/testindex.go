// Package testindex builds small indexes of the fixture movies for tests
// of the packages above the index.
package testindex

import (
	"context"
	"testing"
	"time"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/fixtures"
	"github.com/marquee-dev/marquee/services/search/internal/index/bleveindex"
)

// Fixtures returns an index of every fixture movie, built through the
// offline builder as a bootstrap does, and the movies. It is closed when
// the test ends.
func Fixtures(t testing.TB, partitions int) (*bleveindex.Index, []*catalogv1.Movie) {
	t.Helper()
	movies, err := fixtures.Movies()
	if err != nil {
		t.Fatal(err)
	}
	return Of(t, partitions, movies), movies
}

// Of returns an index of movies.
func Of(t testing.TB, partitions int, movies []*catalogv1.Movie) *bleveindex.Index {
	t.Helper()
	x, err := Build(t.TempDir(), partitions, movies)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return x
}

// Build returns an index of movies in dir, for TestMain functions that
// share one index between tests.
func Build(dir string, partitions int, movies []*catalogv1.Movie) (*bleveindex.Index, error) {
	x, err := bleveindex.Open(context.Background(), bleveindex.Options{Dir: dir, Partitions: partitions, SuggestInterval: 20 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	err = x.Replace(context.Background(), func(ctx context.Context, add func(*catalogv1.Movie) error) (string, error) {
		for _, m := range movies {
			if err := add(m); err != nil {
				return "", err
			}
		}
		return "test-checkpoint", nil
	})
	if err != nil {
		_ = x.Close()
		return nil, err
	}
	return x, nil
}

// Poll calls cond until it returns true or timeout passes, and reports
// whether it did.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}
