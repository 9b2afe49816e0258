package fakebackend

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Special movie ids that make the fake catalog misbehave on GetMovie.
const (
	// SlowID blocks until the call's deadline.
	SlowID = "m_slow"
	// BoomID fails with an internal error whose message must not leak.
	BoomID = "m_boom"
	// SecretMessage is that internal error's message.
	SecretMessage = "mongo: pool exhausted talking to 10.1.2.3:27017"
)

// Catalog is a fake CatalogService over a few movies in memory. It is safe
// for concurrent use.
type Catalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	Recorder

	mu         sync.Mutex
	movies     map[string]*catalogv1.Movie
	order      []string
	revisions  map[string]int
	requestIDs map[string]*catalogv1.Movie
	seq        int
	subs       map[chan *catalogv1.MovieChange]struct{}
	// ExportChunk, when set, shapes each export chunk's bytes (tests use it
	// to send lines without a trailing newline).
	ExportChunk func(line []byte) []byte
}

// NewCatalog returns a catalog holding movies m_1 … m_n titled "Movie i".
func NewCatalog(n int) *Catalog {
	c := &Catalog{
		movies:     map[string]*catalogv1.Movie{},
		revisions:  map[string]int{},
		requestIDs: map[string]*catalogv1.Movie{},
		subs:       map[chan *catalogv1.MovieChange]struct{}{},
	}
	for i := 1; i <= n; i++ {
		c.put(&catalogv1.Movie{
			Title:     fmt.Sprintf("Movie %d", i),
			Year:      proto.Int32(int32(1990 + i)),
			Genres:    []string{"Drama"},
			Directors: []*catalogv1.DirectorRef{{Id: "d_1", Name: "Jane Director"}},
			ImdbScore: proto.Float64(7.5),
		}, fmt.Sprintf("m_%d", i))
	}
	return c
}

// put stores m under id (new or replaced), bumps its revision and tells the
// watchers. The caller holds no lock.
func (c *Catalog) put(m *catalogv1.Movie, id string) *catalogv1.Movie {
	c.mu.Lock()
	if _, ok := c.movies[id]; !ok {
		c.order = append(c.order, id)
	}
	c.revisions[id]++
	m = proto.Clone(m).(*catalogv1.Movie)
	m.Id = id
	m.Etag = proto.String(strconv.Quote(strconv.Itoa(c.revisions[id])))
	now := timestamppb.New(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	m.CreateTime, m.UpdateTime = now, now
	c.movies[id] = m
	c.mu.Unlock()
	c.notify(&catalogv1.MovieChange{Id: id, Kind: catalogv1.ChangeKind_CHANGE_KIND_UPSERTED, Etag: m.GetEtag()})
	return proto.Clone(m).(*catalogv1.Movie)
}

func (c *Catalog) notify(ch *catalogv1.MovieChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sub := range c.subs {
		select {
		case sub <- ch:
		default: // a slow watcher misses it; tests do not make watchers slow
		}
	}
}

// Watchers returns how many WatchMovieChanges streams are open.
func (c *Catalog) Watchers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// Rename changes a movie's title directly, as another writer would, and
// tells the watchers.
func (c *Catalog) Rename(id, title string) {
	c.mu.Lock()
	m := proto.Clone(c.movies[id]).(*catalogv1.Movie)
	c.mu.Unlock()
	m.Title = title
	c.put(m, id)
}

func (c *Catalog) get(id string) (*catalogv1.Movie, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.movies[id]
	if !ok {
		return nil, apierr.New(codes.NotFound, "MOVIE_NOT_FOUND", fmt.Sprintf("movie %q not found", id))
	}
	return proto.Clone(m).(*catalogv1.Movie), nil
}

// GetMovie returns one movie.
func (c *Catalog) GetMovie(ctx context.Context, in *catalogv1.GetMovieRequest) (*catalogv1.Movie, error) {
	c.record(ctx, "GetMovie")
	switch in.GetId() {
	case SlowID:
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case BoomID:
		return nil, status.Error(codes.Internal, SecretMessage)
	}
	return c.get(in.GetId())
}

// BatchGetMovies returns several movies in order.
func (c *Catalog) BatchGetMovies(ctx context.Context, in *catalogv1.BatchGetMoviesRequest) (*catalogv1.BatchGetMoviesResponse, error) {
	c.record(ctx, "BatchGetMovies")
	out := &catalogv1.BatchGetMoviesResponse{}
	for _, id := range in.GetIds() {
		m, err := c.get(id)
		if err != nil {
			return nil, err
		}
		out.Movies = append(out.Movies, m)
	}
	return out, nil
}

// ListMovies pages through the movies in creation order; the page token is
// the offset. The filter "unsupported" is refused as catalog refuses filters
// its indexes do not serve.
func (c *Catalog) ListMovies(ctx context.Context, in *catalogv1.ListMoviesRequest) (*catalogv1.ListMoviesResponse, error) {
	c.record(ctx, "ListMovies")
	if in.GetPageSize() < 0 {
		return nil, apierr.InvalidArgument("INVALID_ARGUMENT", "page_size must not be negative",
			apierr.Field("page_size", "must not be negative"))
	}
	if strings.Contains(in.GetFilter(), "unsupported") {
		return nil, apierr.InvalidArgument("UNSUPPORTED_QUERY", "this filter is not served by catalog; use /v1/search/movies",
			apierr.Field("filter", "not supported by catalog"))
	}
	size := int(in.GetPageSize())
	if size == 0 {
		size = 20
	}
	start := 0
	if t := in.GetPageToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, apierr.InvalidArgument("INVALID_PAGE_TOKEN", "the page token is not valid",
				apierr.Field("page_token", "not a token of this query"))
		}
		start = n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &catalogv1.ListMoviesResponse{}
	for i := start; i < len(c.order) && len(out.Movies) < size; i++ {
		out.Movies = append(out.Movies, proto.Clone(c.movies[c.order[i]]).(*catalogv1.Movie))
	}
	if next := start + len(out.Movies); next < len(c.order) {
		out.NextPageToken = strconv.Itoa(next)
	}
	return out, nil
}

// CreateMovie creates a movie (admin); a retried request_id returns the first
// result.
func (c *Catalog) CreateMovie(ctx context.Context, in *catalogv1.CreateMovieRequest) (*catalogv1.Movie, error) {
	c.record(ctx, "CreateMovie")
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.GetMovie().GetTitle()) == "" {
		return nil, apierr.InvalidArgument("INVALID_ARGUMENT", "the movie is not valid", apierr.Field("movie.title", "is required"))
	}
	c.mu.Lock()
	if m, ok := c.requestIDs[in.GetRequestId()]; ok && in.GetRequestId() != "" {
		c.mu.Unlock()
		return proto.Clone(m).(*catalogv1.Movie), nil
	}
	c.seq++
	id := fmt.Sprintf("m_new%d", c.seq)
	c.mu.Unlock()
	m := c.put(in.GetMovie(), id)
	if in.GetRequestId() != "" {
		c.mu.Lock()
		c.requestIDs[in.GetRequestId()] = m
		c.mu.Unlock()
	}
	return m, nil
}

// BatchCreateMovies creates several movies (admin).
func (c *Catalog) BatchCreateMovies(ctx context.Context, in *catalogv1.BatchCreateMoviesRequest) (*catalogv1.BatchCreateMoviesResponse, error) {
	c.record(ctx, "BatchCreateMovies")
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	out := &catalogv1.BatchCreateMoviesResponse{}
	for i, r := range in.GetRequests() {
		rid := ""
		if in.GetRequestId() != "" {
			rid = fmt.Sprintf("%s/%d", in.GetRequestId(), i)
		}
		m, err := c.CreateMovie(ctx, &catalogv1.CreateMovieRequest{Movie: r.GetMovie(), RequestId: rid})
		if err != nil {
			return nil, err
		}
		out.Movies = append(out.Movies, m)
	}
	return out, nil
}

func (c *Catalog) checkEtag(id, etag string) error {
	cur, err := c.get(id)
	if err != nil {
		return err
	}
	if etag != "" && etag != cur.GetEtag() {
		return apierr.New(codes.Aborted, "ETAG_MISMATCH", fmt.Sprintf("the etag %s does not match the current %s", etag, cur.GetEtag()))
	}
	return nil
}

// UpdateMovie applies the fields in the mask (admin), conditional on the etag.
func (c *Catalog) UpdateMovie(ctx context.Context, in *catalogv1.UpdateMovieRequest) (*catalogv1.Movie, error) {
	c.record(ctx, "UpdateMovie")
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	id := in.GetMovie().GetId()
	if err := c.checkEtag(id, in.GetMovie().GetEtag()); err != nil {
		return nil, err
	}
	cur, _ := c.get(id)
	for _, p := range in.GetUpdateMask().GetPaths() {
		switch p {
		case "title":
			cur.Title = in.GetMovie().GetTitle()
		case "year":
			cur.Year = in.GetMovie().Year
		case "genres":
			cur.Genres = in.GetMovie().GetGenres()
		default:
			return nil, apierr.InvalidArgument("INVALID_ARGUMENT", "the update mask is not valid",
				apierr.Field("update_mask", fmt.Sprintf("%q cannot be updated", p)))
		}
	}
	return c.put(cur, id), nil
}

// DeleteMovie deletes a movie (admin), conditional on the etag.
func (c *Catalog) DeleteMovie(ctx context.Context, in *catalogv1.DeleteMovieRequest) (*emptypb.Empty, error) {
	c.record(ctx, "DeleteMovie")
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	if err := c.checkEtag(in.GetId(), in.GetEtag()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	delete(c.movies, in.GetId())
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == in.GetId() })
	c.mu.Unlock()
	c.notify(&catalogv1.MovieChange{Id: in.GetId(), Kind: catalogv1.ChangeKind_CHANGE_KIND_DELETED})
	return &emptypb.Empty{}, nil
}

// ListMovieChanges answers FEED_POSITION_EXPIRED for the token "expired" and
// an empty, caught-up page otherwise.
func (c *Catalog) ListMovieChanges(ctx context.Context, in *catalogv1.ListMovieChangesRequest) (*catalogv1.ListMovieChangesResponse, error) {
	c.record(ctx, "ListMovieChanges")
	if in.GetPageToken() == "expired" {
		return nil, apierr.New(codes.FailedPrecondition, "FEED_POSITION_EXPIRED",
			"the change-feed position is older than the retention; resync from the export")
	}
	return &catalogv1.ListMovieChangesResponse{NextPageToken: "pos-1"}, nil
}

// WatchMovieChanges streams every change from now on (services and admins).
func (c *Catalog) WatchMovieChanges(in *catalogv1.WatchMovieChangesRequest, stream grpc.ServerStreamingServer[catalogv1.WatchMovieChangesResponse]) error {
	ctx := stream.Context()
	c.record(ctx, "WatchMovieChanges")
	if err := authn.Require(ctx, authn.RoleService, authn.RoleAdmin); err != nil {
		return err
	}
	sub := make(chan *catalogv1.MovieChange, 64)
	c.mu.Lock()
	c.subs[sub] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, sub)
		c.mu.Unlock()
	}()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ch := <-sub:
			n++
			err := stream.Send(&catalogv1.WatchMovieChangesResponse{
				Changes: []*catalogv1.MovieChange{ch}, NextPageToken: fmt.Sprintf("pos-%d", n),
			})
			if err != nil {
				return err
			}
		}
	}
}

// ExportMovies streams every movie as an NDJSON line, then the end record
// (signed-in callers only).
func (c *Catalog) ExportMovies(_ *catalogv1.ExportMoviesRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	ctx := stream.Context()
	c.record(ctx, "ExportMovies")
	if err := authn.Require(ctx, authn.RoleUser, authn.RoleAdmin, authn.RoleService); err != nil {
		return err
	}
	c.mu.Lock()
	var movies []*catalogv1.Movie
	for _, id := range c.order {
		movies = append(movies, proto.Clone(c.movies[id]).(*catalogv1.Movie))
	}
	c.mu.Unlock()
	send := func(rec *catalogv1.ExportRecord) error {
		line, err := protojson.Marshal(rec)
		if err != nil {
			return err
		}
		line = append(line, '\n')
		if c.ExportChunk != nil {
			line = c.ExportChunk(line)
		}
		return stream.Send(&httpbody.HttpBody{ContentType: "application/x-ndjson", Data: line})
	}
	for _, m := range movies {
		if err := send(&catalogv1.ExportRecord{Record: &catalogv1.ExportRecord_Movie{Movie: m}}); err != nil {
			return err
		}
	}
	return send(&catalogv1.ExportRecord{Record: &catalogv1.ExportRecord_End{End: &catalogv1.ExportEnd{
		ChangesPageToken: "pos-0", MovieCount: int64(len(movies)),
	}}})
}

// ListGenres counts genres.
func (c *Catalog) ListGenres(ctx context.Context, _ *catalogv1.ListGenresRequest) (*catalogv1.ListGenresResponse, error) {
	c.record(ctx, "ListGenres")
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[string]int64{}
	for _, m := range c.movies {
		for _, g := range m.GetGenres() {
			counts[g]++
		}
	}
	out := &catalogv1.ListGenresResponse{}
	for g, n := range counts {
		out.Genres = append(out.Genres, &catalogv1.Genre{Name: g, MovieCount: n})
	}
	slices.SortFunc(out.Genres, func(a, b *catalogv1.Genre) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// GetDirector returns the one director.
func (c *Catalog) GetDirector(ctx context.Context, in *catalogv1.GetDirectorRequest) (*catalogv1.Director, error) {
	c.record(ctx, "GetDirector")
	if in.GetId() != "d_1" {
		return nil, apierr.New(codes.NotFound, "DIRECTOR_NOT_FOUND", fmt.Sprintf("director %q not found", in.GetId()))
	}
	return &catalogv1.Director{Id: "d_1", Name: "Jane Director", MovieCount: 1, Etag: proto.String(`"1"`)}, nil
}
