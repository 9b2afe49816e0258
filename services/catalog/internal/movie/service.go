package movie

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Written describes one committed write, for caches and the change feed's
// in-process wake-up.
type Written struct {
	ID       string
	Revision int64
	Deleted  bool
}

// Service implements the catalogue's use cases over a Store.
type Service struct {
	store        Store
	reads        Reader
	planner      *Planner
	tokens       *Tokens
	now          func() time.Time
	writeTimeout time.Duration
	observers    []func(context.Context, Written)
	logger       *slog.Logger

	// genres memoises ListGenres, so a burst of requests reads the stored
	// counts once.
	genresMu  sync.Mutex
	genres    []GenreCount
	genresAt  time.Time
	genresTTL time.Duration
}

// Option configures a Service.
type Option func(*Service)

// WithReader routes Get and BatchGet through r (a cache over the store).
func WithReader(r Reader) Option { return func(s *Service) { s.reads = r } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithWriteTimeout bounds every write; the change feed's settle window
// relies on writes never committing later than this after they were
// stamped.
func WithWriteTimeout(d time.Duration) Option { return func(s *Service) { s.writeTimeout = d } }

// WithObserver registers f to hear about every committed write.
func WithObserver(f func(context.Context, Written)) Option {
	return func(s *Service) { s.observers = append(s.observers, f) }
}

// WithGenresTTL sets how long ListGenres answers are reused (0 disables
// the memo).
func WithGenresTTL(d time.Duration) Option { return func(s *Service) { s.genresTTL = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.logger = l } }

// NewService builds a Service. tokens signs page tokens.
func NewService(store Store, tokens *Tokens, opts ...Option) (*Service, error) {
	p, err := NewPlanner()
	if err != nil {
		return nil, err
	}
	s := &Service{
		store: store, reads: store, planner: p, tokens: tokens,
		now: time.Now, writeTimeout: 5 * time.Second, logger: slog.New(slog.DiscardHandler),
		genresTTL: 5 * time.Second,
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Now returns the service clock truncated to BSON's millisecond precision.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// stamp returns the update time of a new revision: now, but always after
// the previous revision's, so a document's update times only grow even when
// replicas' clocks disagree (the change feed depends on it).
func (s *Service) stamp(prev time.Time) time.Time {
	now := s.clock()
	if !now.After(prev) {
		return prev.Add(time.Millisecond)
	}
	return now
}

func (s *Service) notify(ctx context.Context, ws ...Written) {
	ctx = context.WithoutCancel(ctx)
	for _, w := range ws {
		for _, f := range s.observers {
			f(ctx, w)
		}
	}
}

func (s *Service) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.writeTimeout)
}

func checkID(field, id, kind string, valid func(string) bool) error {
	switch {
	case id == "":
		return invalid(field, "is required")
	case len(id) > MaxIDChars || !utf8.ValidString(id):
		return invalid(field, fmt.Sprintf("is not a %s id", kind))
	case !valid(id):
		return &NotFoundError{Kind: kind, ID: id}
	}
	return nil
}

// GetMovie returns a live movie.
func (s *Service) GetMovie(ctx context.Context, id string) (*Movie, error) {
	if err := checkID("id", id, "movie", ValidMovieID); err != nil {
		return nil, err
	}
	m, err := s.reads.GetMovie(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Deleted() {
		return nil, &NotFoundError{Kind: "movie", ID: id}
	}
	return m, nil
}

// BatchGetMovies returns live movies in the order of ids; any unknown id
// fails the call naming it.
func (s *Service) BatchGetMovies(ctx context.Context, ids []string) ([]*Movie, error) {
	var v violations
	if len(ids) == 0 {
		v.add("ids", "is required")
	}
	if len(ids) > MaxBatch {
		v.add("ids", "must have at most %d entries, got %d", MaxBatch, len(ids))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if err := checkID(fmt.Sprintf("ids[%d]", i), id, "movie", ValidMovieID); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	found, err := s.reads.GetMovies(ctx, uniq)
	if err != nil {
		return nil, err
	}
	out := make([]*Movie, len(ids))
	for i, id := range ids {
		m, ok := found[id]
		if !ok || m.Deleted() {
			return nil, &NotFoundError{Kind: "movie", ID: id}
		}
		out[i] = m
	}
	return out, nil
}

// ListMovies runs an index-served query and returns a page and the next
// page's token ("" on the last page).
func (s *Service) ListMovies(ctx context.Context, filter, orderBy string, pageSize int32, pageToken string) ([]*Movie, string, error) {
	size, err := PageSize("pageSize", pageSize, DefaultPageSize, MaxPageSize)
	if err != nil {
		return nil, "", err
	}
	q, err := s.planner.Plan(filter, orderBy)
	if err != nil {
		return nil, "", err
	}
	if pageToken != "" {
		if q.After, err = s.tokens.DecodeCursor(q, pageToken); err != nil {
			return nil, "", err
		}
	}
	q.Limit = size + 1
	ms, err := s.store.ListMovies(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("listing movies: %w", err)
	}
	if len(ms) <= size {
		return ms, "", nil
	}
	ms = ms[:size]
	last := ms[size-1]
	next, err := s.tokens.EncodeCursor(q, Cursor{Value: SortValue(last, q.SortField), ID: last.ID})
	if err != nil {
		return nil, "", fmt.Errorf("encoding page token: %w", err)
	}
	return ms, next, nil
}

// CreateRequest is one movie to create with its idempotency key.
type CreateRequest struct {
	Movie     *Movie
	RequestID string
}

// CreateResult is the outcome of one create.
type CreateResult struct {
	Movie *Movie
	// Replayed is true when an earlier create with the same request_id
	// made the movie and this call returned it.
	Replayed bool
}

// CreateMovie creates one movie; a retry with the same request id returns
// the first result.
func (s *Service) CreateMovie(ctx context.Context, m *Movie, requestID string) (CreateResult, error) {
	rs, err := s.createMovies(ctx, []CreateRequest{{Movie: m, RequestID: requestID}}, "", true)
	if err != nil {
		return CreateResult{}, err
	}
	return rs[0], nil
}

// BatchCreateMovies creates up to MaxBatch movies after validating all of
// them. Items without a request id inherit "<batch request id>/<index>".
func (s *Service) BatchCreateMovies(ctx context.Context, reqs []CreateRequest, batchRequestID string) ([]CreateResult, error) {
	return s.createMovies(ctx, reqs, batchRequestID, false)
}

func (s *Service) createMovies(ctx context.Context, reqs []CreateRequest, batchRequestID string, single bool) ([]CreateResult, error) {
	now := s.clock()
	var v violations
	if !single {
		if len(reqs) == 0 {
			v.add("requests", "is required")
		}
		if len(reqs) > MaxBatch {
			v.add("requests", "must have at most %d entries, got %d", MaxBatch, len(reqs))
			return nil, v.err()
		}
		checkRequestID(&v, "requestId", batchRequestID)
	}
	prefix := func(i int) string {
		if single {
			return ""
		}
		return fmt.Sprintf("requests[%d].", i)
	}
	ids := make([]string, len(reqs))
	rids := make([]string, len(reqs))
	firstByID := make(map[string]int, len(reqs))
	for i, r := range reqs {
		if r.Movie == nil {
			v.add(prefix(i)+"movie", "is required")
			continue
		}
		v = append(v, normalizeMovie(r.Movie, prefix(i)+"movie", nil, now)...)
		checkRequestID(&v, prefix(i)+"requestId", r.RequestID)
		rids[i] = r.RequestID
		if rids[i] == "" && batchRequestID != "" {
			rids[i] = fmt.Sprintf("%s/%d", batchRequestID, i)
		}
		if rids[i] != "" {
			ids[i] = MovieIDForRequest(rids[i])
		} else {
			ids[i] = NewMovieID(now)
		}
		if j, dup := firstByID[ids[i]]; dup {
			v.add(prefix(i)+"requestId", "repeats the request id of requests[%d]", j)
		}
		firstByID[ids[i]] = i
	}
	if err := v.err(); err != nil {
		return nil, err
	}

	results := make([]CreateResult, len(reqs))
	// Every item goes straight to one unordered insert: a replay (retry,
	// re-import) is an existing derived _id, so the insert answers
	// duplicate-key for exactly the replays and only those are read back.
	// Looking every id up first would cost a read per batch that, on an
	// engine without secondary-index pushdown (FerretDB), scans the whole
	// collection.
	pending := make([]int, len(reqs))
	for i := range reqs {
		pending[i] = i
	}

	refs := make([][]DirectorRef, 0, len(pending))
	fields := make([]string, 0, len(pending))
	for _, i := range pending {
		refs = append(refs, reqs[i].Movie.Directors)
		fields = append(fields, prefix(i)+"movie.directors")
	}
	resolved, err := s.resolveDirectors(ctx, refs, fields, now)
	if err != nil {
		return nil, err
	}
	// Stamp after the reads, right before the bounded write: the change
	// feed's settle window counts from the stamp, so nothing unbounded may
	// run between the two.
	stamp := s.clock()
	docs := make([]*Movie, len(pending))
	for k, i := range pending {
		m := reqs[i].Movie.Clone()
		m.ID = ids[i]
		m.RequestID = rids[i]
		m.Directors = resolved[k]
		m.Revision = 1
		m.CreateTime, m.UpdateTime = stamp, stamp
		m.DeleteTime = nil
		docs[k] = m
	}
	wctx, cancel := s.writeCtx(ctx)
	perItem, err := s.store.InsertMovies(wctx, docs)
	cancel()
	if err != nil {
		// The outcome is unknown (a timeout, a write concern error): some
		// documents may have committed. When the database cannot be
		// reached at all nothing can be read back, and trying would only
		// hold the caller past its deadline.
		if !errors.Is(err, ErrUnreachable) {
			s.voidUncertain(ctx, docs)
		}
		return nil, fmt.Errorf("inserting movies: %w", err)
	}
	// A batch is all or nothing: when any item fails after others were
	// inserted, the inserted ones are voided before the error is returned,
	// so the caller sees nothing of a failed batch (see voidCreated).
	var created []*Movie
	var dups []int
	var failure error
	for k, i := range pending {
		switch {
		case perItem[k] == nil:
			results[i] = CreateResult{Movie: docs[k]}
			created = append(created, docs[k])
		case errors.Is(perItem[k], ErrDuplicate):
			dups = append(dups, k)
		case failure == nil:
			failure = fmt.Errorf("inserting movie %s: %w", docs[k].ID, perItem[k])
		}
	}
	if failure == nil && len(dups) > 0 {
		failure = s.settleDuplicates(ctx, dups, pending, docs, rids, prefix, results, &created)
	}
	if failure != nil {
		s.voidCreated(ctx, created)
		return nil, failure
	}
	written := make([]Written, len(created))
	genres := map[string]int64{}
	for k, m := range created {
		written[k] = Written{ID: m.ID, Revision: m.Revision}
		genreDelta(genres, nil, m)
	}
	s.notify(ctx, written...)
	s.countGenres(ctx, genres)
	return results, nil
}

// settleDuplicates answers the items whose derived _id already existed:
// replays of an earlier create with the same request id (or a concurrent
// retry that won the race) return the stored movie; a voided movie of the
// same request id is created again in its place; anything else fails the
// call. Movies it creates are appended to created.
func (s *Service) settleDuplicates(ctx context.Context, dups, pending []int, docs []*Movie, rids []string,
	prefix func(int) string, results []CreateResult, created *[]*Movie) error {
	ids := make([]string, len(dups))
	for n, k := range dups {
		ids[n] = docs[k].ID
	}
	existing, err := s.store.GetMovies(ctx, ids)
	if err != nil {
		return fmt.Errorf("reading replayed movies: %w", err)
	}
	for _, k := range dups {
		i := pending[k]
		e, ok := existing[docs[k].ID]
		switch {
		case !ok:
			// Purged between the insert and the read.
			return fmt.Errorf("movie %s: %w", docs[k].ID, ErrConflict)
		case e.Voided && e.RequestID == rids[i]:
			m := docs[k].Clone()
			m.Revision = e.Revision + 1
			m.CreateTime = s.stamp(e.UpdateTime)
			m.UpdateTime = m.CreateTime
			err := s.replaceMovie(ctx, m, e.Revision)
			if err != nil {
				return fmt.Errorf("creating movie %s again: %w", m.ID, err)
			}
			results[i] = CreateResult{Movie: m}
			*created = append(*created, m)
		default:
			r, err := replay(e, rids[i], prefix(i))
			if err != nil {
				return err
			}
			results[i] = r
		}
	}
	return nil
}

// voidCreated undoes the creates of a failed batch. Without multi-document
// transactions (FerretDB has none, and a sharded batch spans shards) each
// movie is replaced by a voided tombstone rather than removed: a change-feed
// reader may already have been handed the create, and the tombstone tells it
// the movie is gone. A voided tombstone keeps its request id without
// claiming it: a retry with that id creates the movie again.
func (s *Service) voidCreated(ctx context.Context, created []*Movie) {
	// The caller may have gone: the undo must happen regardless, within one
	// write timeout for the whole batch (each tombstone is stamped right
	// before its write, so no write outlives its stamp by more).
	ctx, cancel := s.writeCtx(context.WithoutCancel(ctx))
	defer cancel()
	for _, m := range created {
		ts := s.stamp(m.UpdateTime)
		tomb := &Movie{ID: m.ID, Title: m.Title, RequestID: m.RequestID, Revision: m.Revision + 1,
			CreateTime: m.CreateTime, UpdateTime: ts, DeleteTime: &ts, Voided: true}
		err := s.replaceMovie(ctx, tomb, m.Revision)
		if err != nil {
			// Only a second failure (the database lost mid-batch, or an
			// admin edited the movie within milliseconds) gets here.
			s.logger.ErrorContext(ctx, "voiding a movie of a failed batch", "movie", m.ID, "error", err)
			continue
		}
		s.notify(ctx, Written{ID: m.ID, Revision: tomb.Revision, Deleted: true})
	}
}

// voidUncertain undoes whatever part of an insert with an unknown outcome
// committed: the documents still exactly as this call wrote them (its
// revision, stamp and request id; a concurrent replay of the same request
// id would carry another stamp).
func (s *Service) voidUncertain(ctx context.Context, docs []*Movie) {
	ctx = context.WithoutCancel(ctx)
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	rctx, cancel := s.writeCtx(ctx)
	found, err := s.store.GetMovies(rctx, ids)
	cancel()
	if err != nil {
		s.logger.ErrorContext(ctx, "reading back a batch whose insert failed; movies it committed stay", "error", err)
		return
	}
	var ours []*Movie
	for _, d := range docs {
		e := found[d.ID]
		if e != nil && !e.Deleted() && e.Revision == d.Revision && e.RequestID == d.RequestID && e.CreateTime.Equal(d.CreateTime) {
			ours = append(ours, e)
		}
	}
	s.voidCreated(ctx, ours)
}

// replay answers a create whose id already exists.
func replay(e *Movie, requestID, prefix string) (CreateResult, error) {
	switch {
	case e.RequestID != requestID:
		return CreateResult{}, fmt.Errorf("movie %s exists with another request id (%srequestId): %w", e.ID, prefix, ErrAlreadyExists)
	case e.Deleted():
		return CreateResult{}, fmt.Errorf("movie %s created by this request id (%srequestId) has since been deleted: %w", e.ID, prefix, ErrAlreadyExists)
	}
	return CreateResult{Movie: e, Replayed: true}, nil
}

// resolveDirectors maps each movie's director references to canonical
// directors, creating the new ones. A reference by id must exist; a name
// resolves to the director currently carrying it, else to the director whose
// id derives from it, else to a new director with that id.
func (s *Service) resolveDirectors(ctx context.Context, refs [][]DirectorRef, fields []string, now time.Time) ([][]DirectorRef, error) {
	var byID []string
	var names []string
	seenID := map[string]bool{}
	seenName := map[string]bool{}
	for _, rs := range refs {
		for _, r := range rs {
			if r.ID != "" {
				if !seenID[r.ID] {
					seenID[r.ID] = true
					byID = append(byID, r.ID)
				}
				continue
			}
			if n := NormalizeName(r.Name); !seenName[n] {
				seenName[n] = true
				names = append(names, n)
			}
		}
	}
	canon := map[string]*Director{} // by id
	if len(byID) > 0 {
		found, err := s.store.GetDirectors(ctx, byID)
		if err != nil {
			return nil, fmt.Errorf("reading directors: %w", err)
		}
		var v violations
		for k, rs := range refs {
			for j, r := range rs {
				if r.ID != "" && found[r.ID] == nil {
					v.add(fmt.Sprintf("%s[%d].id", fields[k], j), "no director has this id")
				}
			}
		}
		if err := v.err(); err != nil {
			return nil, err
		}
		for id, d := range found {
			canon[id] = d
		}
	}
	byName := map[string]*Director{}
	if len(names) > 0 {
		// One read for the whole batch: the directors carrying the names
		// and those whose ids derive from them.
		derived := make([]string, len(names))
		for i, n := range names {
			derived[i] = DirectorIDForName(n)
		}
		current, old, err := s.store.FindDirectorsByNamesOrIDs(ctx, names, derived)
		if err != nil {
			return nil, fmt.Errorf("finding directors by name: %w", err)
		}
		var fresh []*Director
		for _, rs := range refs {
			for _, r := range rs {
				if r.ID != "" {
					continue
				}
				n := NormalizeName(r.Name)
				if byName[n] != nil {
					continue
				}
				if d := current[n]; d != nil {
					byName[n] = d
					continue
				}
				if d := old[DirectorIDForName(n)]; d != nil {
					byName[n] = d
					continue
				}
				d := &Director{ID: DirectorIDForName(n), Name: strings.Join(strings.Fields(r.Name), " "),
					Revision: 1, CreateTime: now, UpdateTime: now}
				byName[n] = d
				fresh = append(fresh, d)
			}
		}
		if len(fresh) > 0 {
			wctx, cancel := s.writeCtx(ctx)
			existed, err := s.store.InsertDirectors(wctx, fresh)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("creating directors: %w", err)
			}
			if len(existed) > 0 {
				// Another request created some of them first, maybe with
				// another spelling: use the stored ones.
				stored, err := s.store.GetDirectors(ctx, existed)
				if err != nil {
					return nil, fmt.Errorf("reading new directors: %w", err)
				}
				for n, d := range byName {
					if st := stored[d.ID]; st != nil {
						byName[n] = st
					}
				}
			}
		}
	}
	out := make([][]DirectorRef, len(refs))
	for k, rs := range refs {
		seen := map[string]bool{}
		for _, r := range rs {
			d := canon[r.ID]
			if r.ID == "" {
				d = byName[NormalizeName(r.Name)]
			}
			if seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			out[k] = append(out[k], DirectorRef{ID: d.ID, Name: d.Name})
		}
	}
	return out, nil
}

// CheckUpdateMask validates update_mask paths (proto field names).
func CheckUpdateMask(paths []string) error {
	var v violations
	if len(paths) == 0 {
		v.add("updateMask", "is required")
	}
	for _, p := range paths {
		switch {
		case outputOnlyMovieFields[p]:
			v.add("updateMask", "%q is output-only and cannot be updated", p)
		case movieFields[p] == "":
			v.add("updateMask", "%q is not a field of Movie", p)
		}
	}
	return v.err()
}

// WritableMovieFields lists the update_mask paths a full replacement ("*")
// covers.
func WritableMovieFields() []string {
	out := make([]string, 0, len(movieFields))
	for p := range movieFields {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// UpdateMovie applies the fields of in named by paths. With an etag the
// update happens only if it still matches (else ErrETagMismatch); without
// one, a concurrent write makes it re-read and re-apply, so no update is
// lost.
func (s *Service) UpdateMovie(ctx context.Context, in *Movie, paths []string, etag string) (*Movie, error) {
	if err := checkID("movie.id", in.ID, "movie", ValidMovieID); err != nil {
		return nil, err
	}
	if err := CheckUpdateMask(paths); err != nil {
		return nil, err
	}
	want, hasETag, err := parseETagField("movie.etag", etag)
	if err != nil {
		return nil, err
	}
	only := make(map[string]bool, len(paths))
	for _, p := range paths {
		only[p] = true
	}
	if v := normalizeMovie(in, "movie", only, s.clock()); len(v) > 0 {
		return nil, v.err()
	}
	var dirs []DirectorRef
	if only["directors"] {
		r, err := s.resolveDirectors(ctx, [][]DirectorRef{in.Directors}, []string{"movie.directors"}, s.clock())
		if err != nil {
			return nil, err
		}
		dirs = r[0]
	}
	var prev, out *Movie
	err = s.retryConflicts(ctx, func() error {
		cur, err := s.store.GetMovie(ctx, in.ID)
		if err != nil {
			return err
		}
		if cur.Deleted() {
			return &NotFoundError{Kind: "movie", ID: in.ID}
		}
		if hasETag && cur.Revision != want {
			return ErrETagMismatch
		}
		next := cur.Clone()
		applyMask(next, in, only)
		if only["directors"] {
			next.Directors = dirs
		}
		next.Revision = cur.Revision + 1
		next.UpdateTime = s.stamp(cur.UpdateTime)
		if err := casFailure(s.replaceMovie(ctx, next, cur.Revision), hasETag, fmt.Sprintf("updating movie %s", in.ID)); err != nil {
			return err
		}
		prev, out = cur, next
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("updating movie %s: %w", in.ID, err)
	}
	if err != nil {
		return nil, err
	}
	s.notify(ctx, Written{ID: out.ID, Revision: out.Revision})
	genres := map[string]int64{}
	genreDelta(genres, prev, out)
	s.countGenres(ctx, genres)
	return out, nil
}

func applyMask(dst, src *Movie, only map[string]bool) {
	for p := range only {
		switch p {
		case "title":
			dst.Title = src.Title
		case "original_title":
			dst.OriginalTitle = src.OriginalTitle
		case "year":
			dst.Year = clonePtr(src.Year)
		case "runtime_minutes":
			dst.RuntimeMinutes = clonePtr(src.RuntimeMinutes)
		case "genres":
			dst.Genres = slices.Clone(src.Genres)
		case "cast":
			dst.Cast = slices.Clone(src.Cast)
		case "imdb_score":
			dst.IMDbScore = clonePtr(src.IMDbScore)
		case "votes":
			dst.Votes = clonePtr(src.Votes)
		case "popularity":
			dst.Popularity = clonePtr(src.Popularity)
		}
	}
}

func parseETagField(field, etag string) (int64, bool, error) {
	if etag == "" {
		return 0, false, nil
	}
	rev, ok := ParseETag(etag)
	if !ok {
		return 0, false, invalid(field, "is not an etag of this API")
	}
	return rev, true, nil
}

// DeleteMovie replaces a movie by its tombstone: the id, title, request id
// and times stay, with delete_time set and the revision bumped, so the
// change feed reports the deletion until the retention ends.
func (s *Service) DeleteMovie(ctx context.Context, id, etag string) error {
	if err := checkID("id", id, "movie", ValidMovieID); err != nil {
		return err
	}
	want, hasETag, err := parseETagField("etag", etag)
	if err != nil {
		return err
	}
	var prev, tomb *Movie
	err = s.retryConflicts(ctx, func() error {
		cur, err := s.store.GetMovie(ctx, id)
		if err != nil {
			return err
		}
		if cur.Deleted() {
			return &NotFoundError{Kind: "movie", ID: id}
		}
		if hasETag && cur.Revision != want {
			return ErrETagMismatch
		}
		ts := s.stamp(cur.UpdateTime)
		next := &Movie{ID: cur.ID, Title: cur.Title, RequestID: cur.RequestID, Revision: cur.Revision + 1,
			CreateTime: cur.CreateTime, UpdateTime: ts, DeleteTime: &ts}
		if err := casFailure(s.replaceMovie(ctx, next, cur.Revision), hasETag, fmt.Sprintf("deleting movie %s", id)); err != nil {
			return err
		}
		prev, tomb = cur, next
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("deleting movie %s: %w", id, err)
	}
	if err != nil {
		return err
	}
	s.notify(ctx, Written{ID: id, Revision: tomb.Revision, Deleted: true})
	genres := map[string]int64{}
	genreDelta(genres, prev, tomb)
	s.countGenres(ctx, genres)
	return nil
}
