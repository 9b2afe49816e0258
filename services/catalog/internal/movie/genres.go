package movie

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Genre counts are maintained as writes happen rather than counted on
// request: counting reads every live movie, which at 25 million movies no
// request may wait for. Every committed create, update and delete adds its
// difference to the stored counts right after the movie write. The two
// writes are not one transaction, so a crash between them (or a failed
// count write, which is logged) leaves a count off by one until the next
// recount, which replaces the counts with an exact aggregation: bootstrap
// seeds the counts of a catalogue never counted, and the replicas recount
// when the last count is older than catalog.changes.genre_recount_interval.

// genreDelta adds to d the count change of replacing before by after (nil,
// or a tombstone, is no movie).
func genreDelta(d map[string]int64, before, after *Movie) {
	if before != nil && !before.Deleted() {
		for _, g := range before.Genres {
			d[g]--
		}
	}
	if after != nil && !after.Deleted() {
		for _, g := range after.Genres {
			d[g]++
		}
	}
}

// countGenres stores the count changes of committed writes. A failure is
// logged rather than returned: the movie write has committed, and the next
// recount repairs the count.
func (s *Service) countGenres(ctx context.Context, d map[string]int64) {
	for g, n := range d {
		if n == 0 {
			delete(d, g)
		}
	}
	if len(d) == 0 {
		return
	}
	wctx, cancel := s.writeCtx(context.WithoutCancel(ctx))
	defer cancel()
	if err := s.store.AddGenreCounts(wctx, d); err != nil {
		s.logger.ErrorContext(ctx, "updating genre counts; the next recount repairs them", "error", err)
	}
}

// ListGenres returns every genre with its live movie count, most common
// first. Answers are reused for the memo's TTL (5s by default).
func (s *Service) ListGenres(ctx context.Context) ([]GenreCount, error) {
	s.genresMu.Lock()
	defer s.genresMu.Unlock()
	if s.genres != nil && s.now().Sub(s.genresAt) < s.genresTTL {
		return slices.Clone(s.genres), nil
	}
	gs, err := s.store.GenreCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading genre counts: %w", err)
	}
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].Count != gs[j].Count {
			return gs[i].Count > gs[j].Count
		}
		return gs[i].Name < gs[j].Name
	})
	if gs == nil {
		gs = []GenreCount{}
	}
	s.genres, s.genresAt = gs, s.now()
	return slices.Clone(gs), nil
}

// RecountGenres replaces the maintained counts with an exact count of the
// live movies. Writes that commit while it runs may be counted twice or
// not at all, until the next recount.
func (s *Service) RecountGenres(ctx context.Context) error {
	gs, err := s.store.CountGenres(ctx)
	if err != nil {
		return fmt.Errorf("counting genres: %w", err)
	}
	if err := s.store.SetGenreCounts(ctx, gs, s.clock()); err != nil {
		return fmt.Errorf("storing genre counts: %w", err)
	}
	s.genresMu.Lock()
	s.genres = nil
	s.genresMu.Unlock()
	return nil
}

// RecountGenresIfDue recounts when the last full count is older than
// interval, or there never was one. Every replica asks on start and then
// periodically, so a fleet that restarts more often than interval still
// recounts, and replicas that ask after one has recounted do nothing.
func (s *Service) RecountGenresIfDue(ctx context.Context, interval time.Duration) error {
	at, ok, err := s.store.GenresCountedAt(ctx)
	if err != nil {
		return err
	}
	if ok && s.now().Sub(at) < interval {
		return nil
	}
	return s.RecountGenres(ctx)
}
