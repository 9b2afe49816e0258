package movie

import (
	"context"
	"time"
)

// Reader is the read path that a cache can wrap.
type Reader interface {
	// GetMovie returns the movie or tombstone with id, or a NotFoundError.
	GetMovie(ctx context.Context, id string) (*Movie, error)
	// GetMovies returns the movies and tombstones among ids, keyed by id;
	// missing ids are absent.
	GetMovies(ctx context.Context, ids []string) (map[string]*Movie, error)
}

// Store is the persistence the domain needs. Writes are conditional on the
// revision the caller read, so concurrent writers never lose an update.
type Store interface {
	Reader

	// InsertMovies inserts ms (unordered) and returns, per movie, nil or
	// ErrDuplicate when its _id exists; the second result is any other
	// failure.
	InsertMovies(ctx context.Context, ms []*Movie) ([]error, error)
	// ReplaceMovie stores m in place of the revision prevRevision. It
	// returns ErrConflict when the stored revision differs and a
	// NotFoundError when the movie does not exist.
	ReplaceMovie(ctx context.Context, m *Movie, prevRevision int64) error
	// ListMovies runs a planned query over live movies.
	ListMovies(ctx context.Context, q *Query) ([]*Movie, error)
	// CountGenres counts live movies per genre by reading every one of
	// them: only for a recount.
	CountGenres(ctx context.Context) ([]GenreCount, error)
	// GenreCounts returns the maintained per-genre counts above zero.
	GenreCounts(ctx context.Context) ([]GenreCount, error)
	// AddGenreCounts adds deltas to the maintained counts.
	AddGenreCounts(ctx context.Context, deltas map[string]int64) error
	// SetGenreCounts makes the maintained counts exactly counts (genres
	// not in it count zero) and records at as the time of the count.
	SetGenreCounts(ctx context.Context, counts []GenreCount, at time.Time) error
	// GenresCountedAt returns when the counts were last set from a full
	// count, and false when they never were.
	GenresCountedAt(ctx context.Context) (time.Time, bool, error)
	// MoviesByDirector returns live movies embedding directorID, by _id,
	// after afterID.
	MoviesByDirector(ctx context.Context, directorID, afterID string, limit int) ([]*Movie, error)
	// CountMoviesByDirector counts live movies embedding directorID.
	CountMoviesByDirector(ctx context.Context, directorID string) (int64, error)

	// GetDirector returns a director or a NotFoundError.
	GetDirector(ctx context.Context, id string) (*Director, error)
	// GetDirectors returns the directors among ids, keyed by id.
	GetDirectors(ctx context.Context, ids []string) (map[string]*Director, error)
	// FindDirectorsByNamesOrIDs reads, in one query, the directors whose
	// normalised current name is one of names (keyed by that name, the
	// smallest id winning a tie) and those among ids (keyed by id).
	FindDirectorsByNamesOrIDs(ctx context.Context, names, ids []string) (byName, byID map[string]*Director, err error)
	// InsertDirectors inserts ds, skipping those whose _id exists, and
	// returns the ids it skipped.
	InsertDirectors(ctx context.Context, ds []*Director) (existed []string, err error)
	// ReplaceDirector stores d in place of the revision prevRevision, or
	// returns ErrConflict.
	ReplaceDirector(ctx context.Context, d *Director, prevRevision int64) error
	// ListDirectors runs a directors query ordered by normalised name, id.
	ListDirectors(ctx context.Context, q *DirectorQuery) ([]*Director, error)
	// PendingRenames returns directors whose rename fan-out is unfinished.
	PendingRenames(ctx context.Context) ([]*Director, error)
}

// DirectorQuery lists directors by normalised name then id.
type DirectorQuery struct {
	// NameEquals, when set, keeps directors whose normalised name equals it.
	NameEquals string
	// NameContains, when set, keeps directors whose normalised name
	// contains it (a literal substring, never a pattern).
	NameContains string
	AfterName    string
	AfterID      string
	Limit        int
}
