// Package movie is the catalogue's domain: movies with their directors and
// genres embedded, canonical directors, validation, the listing rules and the
// write logic (optimistic concurrency, idempotent creates, tombstones and the
// director rename fan-out). It declares the Store it needs; mongostore
// implements it.
//
// # Identifiers
//
// Movie ids are "m_" followed by 26 characters of Crockford base32
// (0-9, A-Z without I, L, O, U):
//
//   - A create that carries a request_id gets the id
//     "m_" + crockford32(sha256(request_id))[:26]. A retried or re-imported
//     create therefore collides on _id (a duplicate-key answer, fast on every
//     engine and routed to one shard under hashed _id sharding) and returns the
//     movie stored by that same request_id. Importers choose request_id from a
//     movie's natural key (normalised title, year, directors) so that
//     re-running an import adds nothing.
//   - In BatchCreateMovies an item without its own request_id inherits
//     "<batch request_id>/<index>" when the batch has one.
//   - A create without a request_id gets a time-ordered random id (48 bits of
//     milliseconds then 80 random bits, encoded the same way).
//
// Director ids are "d_" + crockford32(sha256(NormalizeName(name)))[:26], where
// NormalizeName applies Unicode NFKC, collapses runs of white space to one
// space, trims, and lower-cases. Resolving a director given by name first
// looks for a director whose current normalised name matches, then upserts
// the derived id, so concurrent creates of the same new director converge on
// one document. A renamed director keeps its id, so its old name keeps
// resolving to it.
//
// # Listing
//
// ListMovies accepts only queries that one index answers in order on a
// sharded cluster (QUERIES.md next to go.mod has the full table): a
// conjunction of at most one equality (the index prefix) and comparisons on
// the sort field, ordered by one field with id as the tie-breaker.
//
//	filter                                       order_by                                index
//	none                                         none/id                                 _id
//	[range on the sort field]                    imdbScore|popularity|year|title|updateTime {field, _id}
//	year|imdbScore|popularity|title = v          none/id                                 {field, _id}
//	genres:"G"                                   none/id                                 {genres, _id}
//	genres:"G" [+ range on the sort field]       imdbScore|popularity|year|title         {genres, field, _id}
//	directors.id = "d_…"                         none/id, year [+ year range]            {directors.id, [year,] _id}
//	directors.name = "Name"                      none/id, year [+ year range]            {directors.name, [year,] _id}
//
// Anything else is an InvalidError with reason UNSUPPORTED_QUERY pointing to
// search. The filter is parsed with go.einride.tech/aip and planned into a
// typed [Query] (see [Planner]); user input only ever becomes a typed value,
// never an operator or a field name. [MovieIndexes] is the single list the
// planner checks and bootstrap creates.
package movie

import (
	"strconv"
	"time"
)

// DirectorRef is a director as embedded in a movie.
type DirectorRef struct {
	ID   string
	Name string
}

// Movie is one catalogue entry. Optional numbers are pointers so that "not
// known" differs from zero.
type Movie struct {
	ID             string
	Title          string
	OriginalTitle  string
	Year           *int32
	RuntimeMinutes *int32
	Genres         []string
	Directors      []DirectorRef
	Cast           []string
	IMDbScore      *float64
	Votes          *int64
	Popularity     *float64

	Revision   int64
	CreateTime time.Time
	UpdateTime time.Time
	// DeleteTime is set on tombstones.
	DeleteTime *time.Time
	// RequestID is the idempotency key of the create that made the movie.
	RequestID string
	// Voided marks the tombstone of a create undone because its batch
	// failed: the movie never existed for the caller, so its request id
	// may create it again.
	Voided bool
}

// Deleted reports whether m is a tombstone.
func (m *Movie) Deleted() bool { return m.DeleteTime != nil }

// ETag returns the entity tag of m's revision, such as `"7"`.
func (m *Movie) ETag() string { return FormatETag(m.Revision) }

// Clone returns a deep copy of m, so cached values are never shared mutably.
func (m *Movie) Clone() *Movie {
	if m == nil {
		return nil
	}
	c := *m
	c.Year = clonePtr(m.Year)
	c.RuntimeMinutes = clonePtr(m.RuntimeMinutes)
	c.IMDbScore = clonePtr(m.IMDbScore)
	c.Votes = clonePtr(m.Votes)
	c.Popularity = clonePtr(m.Popularity)
	c.DeleteTime = clonePtr(m.DeleteTime)
	c.Genres = append([]string(nil), m.Genres...)
	c.Directors = append([]DirectorRef(nil), m.Directors...)
	c.Cast = append([]string(nil), m.Cast...)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Director is a canonical director.
type Director struct {
	ID         string
	Name       string
	Revision   int64
	CreateTime time.Time
	UpdateTime time.Time
	// PendingRename is set while a rename is being fanned out to the movies
	// that embed the director; a crash leaves it set and the next start (or
	// the next rename) finishes the work.
	PendingRename *PendingRename
	// MovieCount is computed on read.
	MovieCount int64
}

// ETag returns the entity tag of d's revision.
func (d *Director) ETag() string { return FormatETag(d.Revision) }

// PendingRename marks a rename whose fan-out has not finished.
type PendingRename struct {
	Name    string
	Started time.Time
}

// GenreCount is a genre with the number of live movies carrying it.
type GenreCount struct {
	Name  string
	Count int64
}

// FormatETag renders a revision as a strong entity tag.
func FormatETag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// ParseETag parses a strong or weak entity tag into a revision.
func ParseETag(etag string) (int64, bool) {
	s := etag
	if len(s) > 2 && s[0] == 'W' && s[1] == '/' {
		s = s[2:]
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	rev, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rev < 0 {
		return 0, false
	}
	return rev, true
}
