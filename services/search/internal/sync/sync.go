// Package sync keeps the index a copy of the catalogue. It bootstraps from
// the catalog's export, then follows the change feed: a WatchMovieChanges
// stream wakes it when something changes, ListMovieChanges catches up after
// a (re)connection, and BatchGetMovies fetches the movies that changed. Each
// batch is applied to the index together with the feed position after it,
// so a restart resumes where it stopped instead of rebuilding.
package sync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdsync "sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/index"
)

// ReasonFeedExpired is the catalog's reason for a feed position older than
// its retention.
const ReasonFeedExpired = "FEED_POSITION_EXPIRED"

// feedStart is the checkpoint stored when an export ends without a feed
// position: the feed is then read from its oldest retained change, which
// replays changes already in the export harmlessly. An empty checkpoint
// means the index was never filled.
const feedStart = "start-of-feed"

func wireToken(t string) string {
	if t == feedStart {
		return ""
	}
	return t
}

// Options configure a Syncer.
type Options struct {
	// MaxLag is how far behind the catalogue the index may be and still
	// report ready.
	MaxLag time.Duration
	// PageSize is the number of changes read per ListMovieChanges call.
	PageSize int32
	// Recheck is how long an idle watch runs before the feed is read again
	// with ListMovieChanges, which guards against a stream that died
	// silently. Default MaxLag/3.
	Recheck time.Duration
	// Backoff bounds the wait between attempts after errors.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Meter                  metric.Meter
}

// Syncer follows the catalog's change feed into an index.
type Syncer struct {
	catalog catalogv1.CatalogServiceClient
	idx     index.Index
	opts    Options
	log     *slog.Logger

	mu         stdsync.Mutex
	caughtUpAt time.Time // the last time the index was known to hold every change
	streaming  bool      // a watch is open and every change it sent is applied
	lastErr    error

	applied metric.Int64Counter
}

// New returns a Syncer.
func New(catalog catalogv1.CatalogServiceClient, idx index.Index, opts Options) (*Syncer, error) {
	if opts.MaxLag <= 0 {
		opts.MaxLag = 30 * time.Second
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	if opts.Recheck <= 0 {
		opts.Recheck = max(opts.MaxLag/3, 100*time.Millisecond)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Meter == nil {
		opts.Meter = noop.NewMeterProvider().Meter("search")
	}
	s := &Syncer{catalog: catalog, idx: idx, opts: opts, log: opts.Logger}
	var err error
	s.applied, err = opts.Meter.Int64Counter("search.sync.changes",
		metric.WithDescription("Changes of the catalog's feed applied to the index."))
	if err != nil {
		return nil, fmt.Errorf("creating metrics: %w", err)
	}
	_, err = opts.Meter.Float64ObservableGauge("search.sync.lag",
		metric.WithUnit("s"),
		metric.WithDescription("How far the index may be behind the catalogue: 0 while a watch is open and drained, else the time since it was last caught up."),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(s.Lag().Seconds())
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("creating metrics: %w", err)
	}
	return s, nil
}

// Lag returns how far behind the index may be.
func (s *Syncer) Lag() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streaming {
		return 0
	}
	if s.caughtUpAt.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(s.caughtUpAt)
}

// Ready returns nil once the index has caught up with the feed and has not
// fallen more than MaxLag behind since.
func (s *Syncer) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.streaming:
		return nil
	case s.caughtUpAt.IsZero():
		if s.lastErr != nil {
			return fmt.Errorf("index not synchronised yet: %w", s.lastErr)
		}
		return errors.New("index not synchronised yet")
	case time.Since(s.caughtUpAt) > s.opts.MaxLag:
		return fmt.Errorf("index is more than %s behind the catalogue", s.opts.MaxLag)
	}
	return nil
}

func (s *Syncer) markCaughtUp() {
	s.mu.Lock()
	s.caughtUpAt, s.lastErr = time.Now(), nil
	s.mu.Unlock()
}

func (s *Syncer) setStreaming(v bool) {
	s.mu.Lock()
	if s.streaming && !v {
		s.caughtUpAt = time.Now() // it was current until this moment
	}
	s.streaming = v
	s.mu.Unlock()
}

// Run follows the feed until ctx ends, retrying with backoff after errors.
func (s *Syncer) Run(ctx context.Context) error {
	backoff := s.opts.MinBackoff
	for {
		err := s.follow(ctx)
		s.setStreaming(false)
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		s.log.Warn("following the catalog's change feed", "error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

// follow bootstraps if needed, then alternates catching up and watching
// until an error.
func (s *Syncer) follow(ctx context.Context) error {
	token, err := s.idx.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("reading checkpoint: %w", err)
	}
	if token == "" {
		if err := s.Bootstrap(ctx); err != nil {
			return err
		}
		if token, err = s.idx.Checkpoint(ctx); err != nil {
			return fmt.Errorf("reading checkpoint: %w", err)
		}
	}
	for {
		token, err = s.catchUp(ctx, token)
		if isExpired(err) {
			s.log.Warn("the index's feed position has expired; rebuilding from the export")
			if err := s.Bootstrap(ctx); err != nil {
				return err
			}
			if token, err = s.idx.Checkpoint(ctx); err != nil {
				return fmt.Errorf("reading checkpoint: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if token, err = s.watch(ctx, token); err != nil {
			return err
		}
	}
}

func isExpired(err error) bool {
	st, ok := status.FromError(errors.Unwrap(err))
	if !ok {
		st, ok = status.FromError(err)
	}
	if !ok || st.Code() != codes.FailedPrecondition {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == ReasonFeedExpired {
			return true
		}
	}
	return false
}

// catchUp reads the feed from token until it is empty.
func (s *Syncer) catchUp(ctx context.Context, token string) (string, error) {
	for {
		resp, err := s.catalog.ListMovieChanges(ctx, &catalogv1.ListMovieChangesRequest{PageToken: wireToken(token), PageSize: s.opts.PageSize})
		if err != nil {
			return token, fmt.Errorf("listing changes: %w", err)
		}
		next := resp.GetNextPageToken()
		if next == "" {
			next = token
		}
		if len(resp.GetChanges()) == 0 {
			if next != token {
				if err := s.idx.Apply(ctx, index.Changes{Checkpoint: next}); err != nil {
					return token, err
				}
			}
			s.markCaughtUp()
			return next, nil
		}
		if err := s.apply(ctx, resp.GetChanges(), next); err != nil {
			return token, err
		}
		token = next
	}
}

// watch applies the batches of a WatchMovieChanges stream until it ends,
// fails or has been idle for Recheck; it returns the position reached.
func (s *Syncer) watch(ctx context.Context, token string) (string, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.catalog.WatchMovieChanges(wctx, &catalogv1.WatchMovieChangesRequest{PageToken: wireToken(token)})
	if err != nil {
		return token, fmt.Errorf("watching changes: %w", err)
	}
	type msg struct {
		resp *catalogv1.WatchMovieChangesResponse
		err  error
	}
	msgs := make(chan msg, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			select {
			case msgs <- msg{resp, err}:
			case <-wctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	s.setStreaming(true)
	idle := time.NewTimer(s.opts.Recheck)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return token, ctx.Err()
		case <-idle.C:
			// Hand over to catchUp, which proves the stream missed nothing.
			return token, nil
		case m := <-msgs:
			if m.err != nil {
				s.setStreaming(false)
				if errors.Is(m.err, io.EOF) {
					return token, nil
				}
				return token, fmt.Errorf("watching changes: %w", m.err)
			}
			next := m.resp.GetNextPageToken()
			if next == "" {
				next = token
			}
			if err := s.apply(ctx, m.resp.GetChanges(), next); err != nil {
				s.setStreaming(false)
				return token, err
			}
			token = next
			s.markCaughtUp()
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(s.opts.Recheck)
		}
	}
}

// apply fetches the movies that changed and applies the batch.
func (s *Syncer) apply(ctx context.Context, changes []*catalogv1.MovieChange, next string) error {
	// The last change of an id decides: a movie created then deleted in the
	// same batch is a delete; an update after a delete is an upsert.
	last := make(map[string]catalogv1.ChangeKind, len(changes))
	var order []string
	for _, c := range changes {
		if c.GetId() == "" {
			continue
		}
		if _, ok := last[c.GetId()]; !ok {
			order = append(order, c.GetId())
		}
		last[c.GetId()] = c.GetKind()
	}
	var ups, dels []string
	for _, id := range order {
		if last[id] == catalogv1.ChangeKind_CHANGE_KIND_DELETED {
			dels = append(dels, id)
		} else {
			ups = append(ups, id)
		}
	}
	movies, gone, err := s.fetch(ctx, ups)
	if err != nil {
		return err
	}
	dels = append(dels, gone...)
	if err := s.idx.Apply(ctx, index.Changes{Upserts: movies, Deletes: dels, Checkpoint: next}); err != nil {
		return fmt.Errorf("applying changes: %w", err)
	}
	s.applied.Add(ctx, int64(len(changes)))
	return nil
}

// batchGetMax is BatchGetMovies' limit.
const batchGetMax = 100

// fetch reads movies by id. A movie deleted since its change was recorded
// is reported in gone: its delete is further down the feed, and removing it
// now reaches the same state.
func (s *Syncer) fetch(ctx context.Context, ids []string) (movies []*catalogv1.Movie, gone []string, err error) {
	for start := 0; start < len(ids); start += batchGetMax {
		chunk := ids[start:min(start+batchGetMax, len(ids))]
		resp, err := s.catalog.BatchGetMovies(ctx, &catalogv1.BatchGetMoviesRequest{Ids: chunk})
		if status.Code(err) == codes.NotFound {
			// One unknown id fails the whole call; fetch one by one.
			for _, id := range chunk {
				m, err := s.catalog.GetMovie(ctx, &catalogv1.GetMovieRequest{Id: id})
				switch {
				case status.Code(err) == codes.NotFound:
					gone = append(gone, id)
				case err != nil:
					return nil, nil, fmt.Errorf("fetching movie %s: %w", id, err)
				default:
					movies = append(movies, m)
				}
			}
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("fetching movies: %w", err)
		}
		movies = append(movies, resp.GetMovies()...)
	}
	return movies, gone, nil
}

// Bootstrap rebuilds the index from the catalog's export; the export's last
// line carries the feed position to continue from.
func (s *Syncer) Bootstrap(ctx context.Context) error {
	start := time.Now()
	s.log.Info("rebuilding the index from the catalog's export")
	err := s.idx.Replace(ctx, func(ctx context.Context, add func(*catalogv1.Movie) error) (string, error) {
		return s.export(ctx, add)
	})
	if err != nil {
		return fmt.Errorf("bootstrapping from the export: %w", err)
	}
	s.log.Info("index rebuilt from the export", "movies", s.idx.Count(), "took", time.Since(start).String())
	return nil
}

// maxExportLine bounds one NDJSON line (a movie is a few KB at most).
const maxExportLine = 4 << 20

func (s *Syncer) export(ctx context.Context, add func(*catalogv1.Movie) error) (string, error) {
	stream, err := s.catalog.ExportMovies(ctx, &catalogv1.ExportMoviesRequest{})
	if err != nil {
		return "", fmt.Errorf("starting the export: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			chunk, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(chunk.GetData()); err != nil {
				return
			}
		}
	}()
	defer func() { _ = pr.Close() }()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), maxExportLine)
	un := protojson.UnmarshalOptions{DiscardUnknown: true}
	var (
		end   *catalogv1.ExportEnd
		count int64
	)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if end != nil {
			return "", errors.New("reading the export: data after its last line")
		}
		var rec catalogv1.ExportRecord
		if err := un.Unmarshal(line, &rec); err != nil {
			return "", fmt.Errorf("reading the export: line %d: %w", count+1, err)
		}
		switch {
		case rec.GetMovie() != nil:
			if err := add(rec.GetMovie()); err != nil {
				return "", err
			}
			count++
		case rec.GetEnd() != nil:
			end = rec.GetEnd()
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the export: %w", err)
	}
	if end == nil {
		return "", errors.New("reading the export: it ended without its last line")
	}
	if end.GetMovieCount() != 0 && end.GetMovieCount() != count {
		return "", fmt.Errorf("reading the export: %d movies received, %d announced", count, end.GetMovieCount())
	}
	if end.GetChangesPageToken() == "" {
		return feedStart, nil
	}
	return end.GetChangesPageToken(), nil
}
