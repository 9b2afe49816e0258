// Package index defines what the search service needs from a movie index,
// independent of the engine behind it. The Bleve implementation lives in
// bleveindex and serves one machine; an engine for catalogues beyond one
// machine implements the same interface.
package index

import (
	"context"
	"errors"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// ErrClosed is returned by an index that has been closed.
var ErrClosed = errors.New("index closed")

// Hit is one search result.
type Hit struct {
	Movie *catalogv1.Movie
	Score float64
}

// FacetCount is one facet value and the number of results that have it.
type FacetCount struct {
	Value string
	Count int64
}

// Result is one page of a search.
type Result struct {
	Hits  []Hit
	Total int64
	// Genres is most common first; Decades most recent first.
	Genres  []FacetCount
	Decades []FacetCount
	// More is true when results follow this page; Last is the cursor of the
	// page's last hit for field orders.
	More bool
	Last *query.Cursor
}

// Suggestion is one title completion.
type Suggestion struct {
	ID         string
	Title      string
	Year       int32 // 0 when unknown
	Popularity float64
}

// Changes is one batch of the change feed, applied atomically with the
// feed position that follows it.
type Changes struct {
	Upserts []*catalogv1.Movie
	Deletes []string
	// Checkpoint is the change-feed token to resume from after this batch.
	Checkpoint string
}

// Source streams a full catalogue into add and returns the change-feed
// token that follows it.
type Source func(ctx context.Context, add func(*catalogv1.Movie) error) (checkpoint string, err error)

// Index is a searchable, incrementally updated copy of the catalogue.
type Index interface {
	// Search runs a parsed request.
	Search(ctx context.Context, r *query.Request) (*Result, error)
	// Suggest completes a title prefix, most popular first.
	Suggest(ctx context.Context, prefix string, limit int) ([]Suggestion, error)
	// Apply applies a batch of changes and records its checkpoint, durably,
	// so that a restart resumes after it.
	Apply(ctx context.Context, c Changes) error
	// Checkpoint returns the stored change-feed position; "" when the index
	// has never been filled.
	Checkpoint(ctx context.Context) (string, error)
	// Replace rebuilds the whole index from src off to the side and swaps it
	// in when complete; searches keep running on the old one meanwhile.
	Replace(ctx context.Context, src Source) error
	// Count returns the number of movies indexed.
	Count() int64
	// Close releases the index.
	Close() error
}
