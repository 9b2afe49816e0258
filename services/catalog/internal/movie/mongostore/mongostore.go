// Package mongostore stores the catalogue in MongoDB (or FerretDB): the
// movies collection with directors and genres embedded, the directors
// collection, and the change-feed reads over (update_time, _id).
//
// Every write is a single-document compare-and-set on revision, serialized
// per document in-process by mongodb.DocLocks (a no-op on MongoDB, where the
// compare-and-set is atomic; required on FerretDB, where it is not). The
// rename fan-out rewrites a movie's whole directors array under the same
// compare-and-set rather than using the positional `$` operator: it must bump
// revision and update_time anyway, and one code path works on both engines.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Collection names.
const (
	MoviesCollection      = "movies"
	DirectorsCollection   = "directors"
	GenreCountsCollection = "genre_counts"
	// MetaCollection holds the catalogue's bookkeeping documents.
	MetaCollection = "catalog_meta"
)

// Store implements movie.Store and feed.Source.
type Store struct {
	movies      *mongo.Collection
	directors   *mongo.Collection
	genreCounts *mongo.Collection
	meta        *mongo.Collection
	// feedMovies reads the change feed from the primary: a lagging
	// secondary would show a write later than the settle window allows.
	feedMovies *mongo.Collection
	locks      *mongodb.DocLocks
}

var (
	_ movie.Store = (*Store)(nil)
	_ feed.Source = (*Store)(nil)
)

// New returns a Store over c's database.
func New(c *mongodb.Client) *Store {
	return &Store{
		movies:      c.DB.Collection(MoviesCollection),
		directors:   c.DB.Collection(DirectorsCollection),
		genreCounts: c.DB.Collection(GenreCountsCollection),
		meta:        c.DB.Collection(MetaCollection),
		feedMovies:  c.DB.Collection(MoviesCollection, options.Collection().SetReadPreference(readpref.Primary())),
		locks:       c.Locks,
	}
}

type directorRefDoc struct {
	ID   string `bson:"id"`
	Name string `bson:"name"`
}

type movieDoc struct {
	ID             string           `bson:"_id"`
	Title          string           `bson:"title"`
	TitleLower     string           `bson:"title_lower"`
	OriginalTitle  string           `bson:"original_title,omitempty"`
	Year           *int32           `bson:"year,omitempty"`
	RuntimeMinutes *int32           `bson:"runtime_minutes,omitempty"`
	Genres         []string         `bson:"genres,omitempty"`
	Directors      []directorRefDoc `bson:"directors,omitempty"`
	Cast           []string         `bson:"cast,omitempty"`
	IMDbScore      *float64         `bson:"imdb_score,omitempty"`
	Votes          *int64           `bson:"votes,omitempty"`
	Popularity     *float64         `bson:"popularity,omitempty"`
	Revision       int64            `bson:"revision"`
	CreateTime     time.Time        `bson:"create_time"`
	UpdateTime     time.Time        `bson:"update_time"`
	DeleteTime     *time.Time       `bson:"delete_time,omitempty"`
	RequestID      string           `bson:"request_id,omitempty"`
	Voided         bool             `bson:"voided,omitempty"`
}

func toDoc(m *movie.Movie) *movieDoc {
	d := &movieDoc{
		ID: m.ID, Title: m.Title, TitleLower: movie.TitleKey(m.Title), OriginalTitle: m.OriginalTitle,
		Year: m.Year, RuntimeMinutes: m.RuntimeMinutes, Genres: m.Genres, Cast: m.Cast,
		IMDbScore: m.IMDbScore, Votes: m.Votes, Popularity: m.Popularity, Revision: m.Revision,
		CreateTime: m.CreateTime.UTC(), UpdateTime: m.UpdateTime.UTC(), DeleteTime: m.DeleteTime, RequestID: m.RequestID,
		Voided: m.Voided,
	}
	for _, r := range m.Directors {
		d.Directors = append(d.Directors, directorRefDoc(r))
	}
	return d
}

func fromDoc(d *movieDoc) *movie.Movie {
	m := &movie.Movie{
		ID: d.ID, Title: d.Title, OriginalTitle: d.OriginalTitle, Year: d.Year, RuntimeMinutes: d.RuntimeMinutes,
		Genres: d.Genres, Cast: d.Cast, IMDbScore: d.IMDbScore, Votes: d.Votes, Popularity: d.Popularity,
		Revision: d.Revision, CreateTime: d.CreateTime.UTC(), UpdateTime: d.UpdateTime.UTC(), RequestID: d.RequestID,
		Voided: d.Voided,
	}
	if d.DeleteTime != nil {
		t := d.DeleteTime.UTC()
		m.DeleteTime = &t
	}
	for _, r := range d.Directors {
		m.Directors = append(m.Directors, movie.DirectorRef(r))
	}
	return m
}

// live matches movies that are not tombstones.
var live = bson.E{Key: "delete_time", Value: nil}

// GetMovie implements movie.Reader.
func (s *Store) GetMovie(ctx context.Context, id string) (*movie.Movie, error) {
	var d movieDoc
	err := s.movies.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &movie.NotFoundError{Kind: "movie", ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("reading movie %s: %w", id, err)
	}
	return fromDoc(&d), nil
}

// GetMovies implements movie.Reader.
func (s *Store) GetMovies(ctx context.Context, ids []string) (map[string]*movie.Movie, error) {
	out := make(map[string]*movie.Movie, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ms, err := s.findMovies(ctx, s.movies, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading movies: %w", err)
	}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out, nil
}

func (s *Store) findMovies(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder) ([]*movie.Movie, error) {
	if opts == nil {
		opts = options.Find()
	}
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []movieDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make([]*movie.Movie, len(docs))
	for i := range docs {
		out[i] = fromDoc(&docs[i])
	}
	return out, nil
}

// InsertMovies implements movie.Store.
func (s *Store) InsertMovies(ctx context.Context, ms []*movie.Movie) ([]error, error) {
	docs := make([]any, len(ms))
	for i, m := range ms {
		docs[i] = toDoc(m)
	}
	perItem := make([]error, len(ms))
	_, err := s.movies.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return perItem, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		if len(ms) == 1 && mongodb.IsDuplicateKey(err) {
			perItem[0] = movie.ErrDuplicate
			return perItem, nil
		}
		if mongodb.IsUnavailable(err) {
			return nil, fmt.Errorf("%w: %w", movie.ErrUnreachable, err)
		}
		return nil, err
	}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(ms) {
			return nil, err
		}
		if mongodb.IsDuplicateKey(mongo.WriteException{WriteErrors: []mongo.WriteError{we.WriteError}}) {
			perItem[we.Index] = movie.ErrDuplicate
		} else {
			perItem[we.Index] = we
		}
	}
	return perItem, nil
}

// ReplaceMovie implements movie.Store.
func (s *Store) ReplaceMovie(ctx context.Context, m *movie.Movie, prevRevision int64) error {
	defer s.locks.Lock(MoviesCollection + "/" + m.ID)()
	res, err := s.movies.ReplaceOne(ctx, bson.D{{Key: "_id", Value: m.ID}, {Key: "revision", Value: prevRevision}}, toDoc(m))
	if err != nil {
		return fmt.Errorf("replacing movie %s: %w", m.ID, err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	n, err := s.movies.CountDocuments(ctx, bson.D{{Key: "_id", Value: m.ID}})
	if err != nil {
		return fmt.Errorf("checking movie %s: %w", m.ID, err)
	}
	if n == 0 {
		return &movie.NotFoundError{Kind: "movie", ID: m.ID}
	}
	return movie.ErrConflict
}

// ListMovies implements movie.Store.
func (s *Store) ListMovies(ctx context.Context, q *movie.Query) ([]*movie.Movie, error) {
	opts := options.Find().SetSort(MovieSort(q)).SetLimit(int64(q.Limit))
	return s.findMovies(ctx, s.movies, MovieFilter(q), opts)
}

// bsonValue converts a typed value to BSON; only typed values ever reach a
// query.
func bsonValue(v movie.Value) any {
	switch v.Kind {
	case movie.KindInt:
		return v.Int
	case movie.KindFloat:
		return v.Flt
	case movie.KindString:
		return v.Str
	case movie.KindTime:
		return v.Time.UTC()
	}
	return nil
}

// MovieFilter builds the query filter of q: live movies, the equality, the
// range on the sort field and the keyset condition after the cursor.
func MovieFilter(q *movie.Query) bson.D {
	f := bson.D{live}
	if q.EqField != "" {
		f = append(f, bson.E{Key: q.EqField, Value: bsonValue(q.EqValue)})
	}
	var rng bson.D
	if q.Lower != nil {
		op := "$gt"
		if q.Lower.Inclusive {
			op = "$gte"
		}
		rng = append(rng, bson.E{Key: op, Value: bsonValue(q.Lower.Value)})
	}
	if q.Upper != nil {
		op := "$lt"
		if q.Upper.Inclusive {
			op = "$lte"
		}
		rng = append(rng, bson.E{Key: op, Value: bsonValue(q.Upper.Value)})
	}
	if len(rng) > 0 {
		f = append(f, bson.E{Key: q.SortField, Value: rng})
	}
	if q.After != nil {
		f = append(f, keyset(q.SortField, q.Desc, q.After.Value, q.After.ID)...)
	}
	return f
}

// keyset returns the condition "after (v, id)" in the order (field, _id),
// both ascending or both descending. A missing value sorts before every
// value, as MongoDB sorts null.
func keyset(field string, desc bool, v movie.Value, id string) bson.D {
	idCmp, valCmp := "$gt", "$gt"
	if desc {
		idCmp, valCmp = "$lt", "$lt"
	}
	if field == movie.FieldID {
		return bson.D{{Key: "_id", Value: bson.D{{Key: idCmp, Value: id}}}}
	}
	sameValueLaterID := func(val any) bson.D {
		return bson.D{{Key: field, Value: val}, {Key: "_id", Value: bson.D{{Key: idCmp, Value: id}}}}
	}
	switch {
	case v.Kind == movie.KindNull && !desc:
		return bson.D{{Key: "$or", Value: bson.A{
			sameValueLaterID(nil),
			bson.D{{Key: field, Value: bson.D{{Key: "$ne", Value: nil}}}},
		}}}
	case v.Kind == movie.KindNull && desc:
		return sameValueLaterID(nil)
	case !desc:
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: field, Value: bson.D{{Key: valCmp, Value: bsonValue(v)}}}},
			sameValueLaterID(bsonValue(v)),
		}}}
	default:
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: field, Value: bson.D{{Key: valCmp, Value: bsonValue(v)}}}},
			sameValueLaterID(bsonValue(v)),
			bson.D{{Key: field, Value: nil}},
		}}}
	}
}

// MovieSort is the sort document of q.
func MovieSort(q *movie.Query) bson.D {
	dir := 1
	if q.Desc {
		dir = -1
	}
	if q.SortField == movie.FieldID {
		return bson.D{{Key: "_id", Value: dir}}
	}
	return bson.D{{Key: q.SortField, Value: dir}, {Key: "_id", Value: dir}}
}

// Genres implements movie.Store with $unwind and $group $sum, which
// CountGenres implements movie.Store: one aggregation over every live
// movie, for the occasional recount only.
func (s *Store) CountGenres(ctx context.Context) ([]movie.GenreCount, error) {
	cur, err := s.movies.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{live}}},
		{{Key: "$unwind", Value: "$genres"}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$genres"}, {Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return nil, err
	}
	return decodeGenreCounts(ctx, cur)
}

func decodeGenreCounts(ctx context.Context, cur *mongo.Cursor) ([]movie.GenreCount, error) {
	var rows []struct {
		Name  string `bson:"_id"`
		Count int64  `bson:"count"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, err
	}
	out := make([]movie.GenreCount, len(rows))
	for i, r := range rows {
		out[i] = movie.GenreCount{Name: r.Name, Count: r.Count}
	}
	return out, nil
}

// GenreCounts implements movie.Store.
func (s *Store) GenreCounts(ctx context.Context) ([]movie.GenreCount, error) {
	cur, err := s.genreCounts.Find(ctx, bson.D{{Key: "count", Value: bson.D{{Key: "$gt", Value: 0}}}})
	if err != nil {
		return nil, fmt.Errorf("reading genre counts: %w", err)
	}
	gs, err := decodeGenreCounts(ctx, cur)
	if err != nil {
		return nil, fmt.Errorf("reading genre counts: %w", err)
	}
	return gs, nil
}

// genresCountedID is the metadata document recording the last full count.
const genresCountedID = "genre_counts"

// GenresCountedAt implements movie.Store.
func (s *Store) GenresCountedAt(ctx context.Context) (time.Time, bool, error) {
	var d struct {
		At time.Time `bson:"counted_at"`
	}
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: genresCountedID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading when genres were counted: %w", err)
	}
	return d.At.UTC(), true, nil
}

// genreBulk bounds the updates per BulkWrite: FerretDB stalls on larger
// bulks of updates.
const genreBulk = 20

// AddGenreCounts implements movie.Store: an upserted $inc per genre. On
// FerretDB, where an $inc is a read and a write, one lock over the whole
// collection makes the increments atomic (DocLocks stripes keys over
// shared mutexes, so taking one lock per genre could deadlock).
func (s *Store) AddGenreCounts(ctx context.Context, deltas map[string]int64) error {
	return s.writeGenreCounts(ctx, deltas, "$inc")
}

// SetGenreCounts implements movie.Store. The time of the count is written
// last, so a count that fails halfway is not taken for done.
func (s *Store) SetGenreCounts(ctx context.Context, counts []movie.GenreCount, at time.Time) error {
	set := make(map[string]int64, len(counts))
	names := make([]string, 0, len(counts))
	for _, g := range counts {
		set[g.Name] = g.Count
		names = append(names, g.Name)
	}
	if err := s.writeGenreCounts(ctx, set, "$set"); err != nil {
		return err
	}
	_, err := s.genreCounts.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$nin", Value: names}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "count", Value: int64(0)}}}})
	if err != nil {
		return fmt.Errorf("zeroing genres without movies: %w", err)
	}
	_, err = s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: genresCountedID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "counted_at", Value: at.UTC()}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("recording the genre count: %w", err)
	}
	return nil
}

func (s *Store) writeGenreCounts(ctx context.Context, values map[string]int64, op string) error {
	names := make([]string, 0, len(values))
	for g, v := range values {
		if v != 0 || op == "$set" {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	defer s.locks.Lock(GenreCountsCollection)()
	for len(names) > 0 {
		chunk := names[:min(genreBulk, len(names))]
		names = names[len(chunk):]
		models := make([]mongo.WriteModel, len(chunk))
		for i, g := range chunk {
			models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: g}}).
				SetUpdate(bson.D{{Key: op, Value: bson.D{{Key: "count", Value: values[g]}}}}).SetUpsert(true)
		}
		if _, err := s.genreCounts.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return fmt.Errorf("updating genre counts: %w", err)
		}
	}
	return nil
}

// MoviesByDirector implements movie.Store.
func (s *Store) MoviesByDirector(ctx context.Context, directorID, afterID string, limit int) ([]*movie.Movie, error) {
	f := bson.D{{Key: "directors.id", Value: directorID}, live}
	if afterID != "" {
		f = append(f, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: afterID}}})
	}
	return s.findMovies(ctx, s.movies, f, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
}

// CountMoviesByDirector implements movie.Store.
func (s *Store) CountMoviesByDirector(ctx context.Context, directorID string) (int64, error) {
	return s.movies.CountDocuments(ctx, bson.D{{Key: "directors.id", Value: directorID}, live})
}

type pendingDoc struct {
	Name    string    `bson:"name"`
	Started time.Time `bson:"started"`
}

type directorDoc struct {
	ID            string      `bson:"_id"`
	Name          string      `bson:"name"`
	NameLower     string      `bson:"name_lower"`
	Revision      int64       `bson:"revision"`
	CreateTime    time.Time   `bson:"create_time"`
	UpdateTime    time.Time   `bson:"update_time"`
	PendingRename *pendingDoc `bson:"pending_rename,omitempty"`
}

func toDirectorDoc(d *movie.Director) *directorDoc {
	doc := &directorDoc{ID: d.ID, Name: d.Name, NameLower: movie.NormalizeName(d.Name), Revision: d.Revision,
		CreateTime: d.CreateTime.UTC(), UpdateTime: d.UpdateTime.UTC()}
	if d.PendingRename != nil {
		doc.PendingRename = &pendingDoc{Name: d.PendingRename.Name, Started: d.PendingRename.Started.UTC()}
	}
	return doc
}

func fromDirectorDoc(doc *directorDoc) *movie.Director {
	d := &movie.Director{ID: doc.ID, Name: doc.Name, Revision: doc.Revision,
		CreateTime: doc.CreateTime.UTC(), UpdateTime: doc.UpdateTime.UTC()}
	if doc.PendingRename != nil {
		d.PendingRename = &movie.PendingRename{Name: doc.PendingRename.Name, Started: doc.PendingRename.Started.UTC()}
	}
	return d
}

func (s *Store) findDirectors(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]*movie.Director, error) {
	if opts == nil {
		opts = options.Find()
	}
	cur, err := s.directors.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []directorDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make([]*movie.Director, len(docs))
	for i := range docs {
		out[i] = fromDirectorDoc(&docs[i])
	}
	return out, nil
}

// GetDirector implements movie.Store.
func (s *Store) GetDirector(ctx context.Context, id string) (*movie.Director, error) {
	var d directorDoc
	err := s.directors.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &movie.NotFoundError{Kind: "director", ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("reading director %s: %w", id, err)
	}
	return fromDirectorDoc(&d), nil
}

// GetDirectors implements movie.Store.
func (s *Store) GetDirectors(ctx context.Context, ids []string) (map[string]*movie.Director, error) {
	ds, err := s.findDirectors(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading directors: %w", err)
	}
	out := make(map[string]*movie.Director, len(ds))
	for _, d := range ds {
		out[d.ID] = d
	}
	return out, nil
}

// FindDirectorsByNamesOrIDs implements movie.Store.
func (s *Store) FindDirectorsByNamesOrIDs(ctx context.Context, names, ids []string) (map[string]*movie.Director, map[string]*movie.Director, error) {
	byName := map[string]*movie.Director{}
	byID := map[string]*movie.Director{}
	var or bson.A
	if len(names) > 0 {
		or = append(or, bson.D{{Key: "name_lower", Value: bson.D{{Key: "$in", Value: names}}}})
	}
	if len(ids) > 0 {
		or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	}
	if len(or) == 0 {
		return byName, byID, nil
	}
	ds, err := s.findDirectors(ctx, bson.D{{Key: "$or", Value: or}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, nil, fmt.Errorf("finding directors by name or id: %w", err)
	}
	wantName := make(map[string]bool, len(names))
	for _, n := range names {
		wantName[n] = true
	}
	wantID := make(map[string]bool, len(ids))
	for _, id := range ids {
		wantID[id] = true
	}
	for _, d := range ds {
		if n := movie.NormalizeName(d.Name); wantName[n] && byName[n] == nil {
			byName[n] = d
		}
		if wantID[d.ID] {
			byID[d.ID] = d
		}
	}
	return byName, byID, nil
}

// InsertDirectors implements movie.Store.
func (s *Store) InsertDirectors(ctx context.Context, ds []*movie.Director) ([]string, error) {
	docs := make([]any, len(ds))
	for i, d := range ds {
		docs[i] = toDirectorDoc(d)
	}
	_, err := s.directors.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 {
		var existed []string
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(ds) ||
				!mongodb.IsDuplicateKey(mongo.WriteException{WriteErrors: []mongo.WriteError{we.WriteError}}) {
				return nil, err
			}
			existed = append(existed, ds[we.Index].ID)
		}
		return existed, nil
	}
	if mongodb.IsDuplicateKey(err) {
		// No per-document detail: treat every one as possibly existing so
		// the caller reads back what is stored.
		existed := make([]string, len(ds))
		for i, d := range ds {
			existed[i] = d.ID
		}
		return existed, nil
	}
	return nil, err
}

// ReplaceDirector implements movie.Store.
func (s *Store) ReplaceDirector(ctx context.Context, d *movie.Director, prevRevision int64) error {
	defer s.locks.Lock(DirectorsCollection + "/" + d.ID)()
	res, err := s.directors.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "revision", Value: prevRevision}}, toDirectorDoc(d))
	if err != nil {
		return fmt.Errorf("replacing director %s: %w", d.ID, err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	return movie.ErrConflict
}

// DirectorFilter builds the filter of a directors query; a contains match
// is a fully escaped regular expression.
func DirectorFilter(q *movie.DirectorQuery) bson.D {
	f := bson.D{}
	switch {
	case q.NameEquals != "":
		f = append(f, bson.E{Key: "name_lower", Value: q.NameEquals})
	case q.NameContains != "":
		f = append(f, bson.E{Key: "name_lower", Value: bson.D{{Key: "$regex", Value: regexp.QuoteMeta(q.NameContains)}}})
	}
	if q.AfterID != "" {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "name_lower", Value: bson.D{{Key: "$gt", Value: q.AfterName}}}},
			bson.D{{Key: "name_lower", Value: q.AfterName}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: q.AfterID}}}},
		}})
	}
	return f
}

// ListDirectors implements movie.Store.
func (s *Store) ListDirectors(ctx context.Context, q *movie.DirectorQuery) ([]*movie.Director, error) {
	return s.findDirectors(ctx, DirectorFilter(q),
		options.Find().SetSort(bson.D{{Key: "name_lower", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(q.Limit)))
}

// PendingRenames implements movie.Store.
func (s *Store) PendingRenames(ctx context.Context) ([]*movie.Director, error) {
	// Dates compare only with dates, so this matches exactly the marked
	// directors and an index on pending_rename.started serves it.
	return s.findDirectors(ctx, bson.D{{Key: "pending_rename.started", Value: bson.D{{Key: "$gte", Value: time.Unix(0, 0).UTC()}}}}, nil)
}

// ChangesAfter implements feed.Source: movies (and tombstones) whose
// (update_time, _id) is after pos, in that order, read from the primary.
func (s *Store) ChangesAfter(ctx context.Context, pos feed.Position, limit int) ([]feed.Change, error) {
	f := bson.D{{Key: "update_time", Value: bson.D{{Key: "$gt", Value: time.UnixMilli(pos.T).UTC()}}}}
	if pos.ID != "" {
		f = bson.D{{Key: "$or", Value: bson.A{
			f,
			bson.D{{Key: "update_time", Value: time.UnixMilli(pos.T).UTC()}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: pos.ID}}}},
		}}}
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "update_time", Value: 1}, {Key: "_id", Value: 1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "revision", Value: 1}, {Key: "update_time", Value: 1}, {Key: "delete_time", Value: 1}}).
		SetLimit(int64(limit))
	cur, err := s.feedMovies.Find(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	var docs []struct {
		ID         string     `bson:"_id"`
		Revision   int64      `bson:"revision"`
		UpdateTime time.Time  `bson:"update_time"`
		DeleteTime *time.Time `bson:"delete_time"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	out := make([]feed.Change, len(docs))
	for i, d := range docs {
		out[i] = feed.Change{ID: d.ID, Revision: d.Revision, UpdateTime: d.UpdateTime.UTC(), Deleted: d.DeleteTime != nil}
	}
	return out, nil
}

// PurgeTombstones implements feed.Source.
func (s *Store) PurgeTombstones(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.movies.DeleteMany(ctx, bson.D{{Key: "delete_time", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}})
	if err != nil {
		return 0, fmt.Errorf("purging tombstones: %w", err)
	}
	return res.DeletedCount, nil
}

// ScanMovies calls fn for every live movie in _id order, in batches, for the
// export.
func (s *Store) ScanMovies(ctx context.Context, fn func(*movie.Movie) error) error {
	after := ""
	const batch = 500
	for {
		f := bson.D{live}
		if after != "" {
			f = append(f, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
		}
		ms, err := s.findMovies(ctx, s.movies, f, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(batch))
		if err != nil {
			return fmt.Errorf("scanning movies: %w", err)
		}
		for _, m := range ms {
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(ms) < batch {
			return nil
		}
		after = ms[len(ms)-1].ID
	}
}
