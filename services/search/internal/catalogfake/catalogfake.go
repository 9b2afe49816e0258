// Package catalogfake is an in-memory catalog service for tests of the
// search service: it keeps movies in a map and implements the change feed
// (ListMovieChanges with position tokens, WatchMovieChanges, the NDJSON
// export and batch reads) with the semantics of the real service, so the
// sync loop can be tested without the catalog and its database.
package catalogfake

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
)

// Catalog is the fake service.
type Catalog struct {
	catalogv1.UnimplementedCatalogServiceServer

	mu      sync.Mutex
	movies  map[string]*catalogv1.Movie
	changes []*catalogv1.MovieChange // changes[i] has position i+1
	expired int                      // positions below this are expired
	notify  chan struct{}            // closed and replaced on every change
	nextID  int

	// RequireToken makes ExportMovies and WatchMovieChanges demand an
	// "authorization: Bearer ..." header, as the real service does.
	RequireToken bool
	// ExportChunk is the size of the export's HttpBody chunks (default 700
	// bytes, so lines straddle chunks).
	ExportChunk int

	// Calls counts RPCs by method name.
	calls sync.Map
}

// New returns an empty catalog.
func New() *Catalog {
	return &Catalog{movies: map[string]*catalogv1.Movie{}, notify: make(chan struct{})}
}

func (c *Catalog) count(method string) {
	v, _ := c.calls.LoadOrStore(method, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Calls returns how many times method was called.
func (c *Catalog) Calls(method string) int64 {
	v, ok := c.calls.Load(method)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// Serve starts a gRPC server for c on a free loopback port and returns its
// address; it stops when ctx ends.
func (c *Catalog) Serve(ctx context.Context) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(s, c)
	go func() { _ = s.Serve(lis) }()
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	return lis.Addr().String(), nil
}

// record appends a change; the caller holds mu.
func (c *Catalog) record(id string, kind catalogv1.ChangeKind, etag string) {
	c.changes = append(c.changes, &catalogv1.MovieChange{Id: id, Kind: kind, UpdateTime: timestamppb.Now(), Etag: etag})
	close(c.notify)
	c.notify = make(chan struct{})
}

// Create stores a copy of m with a new id (unless it has one) and returns it.
func (c *Catalog) Create(m *catalogv1.Movie) *catalogv1.Movie {
	c.mu.Lock()
	defer c.mu.Unlock()
	m = proto.Clone(m).(*catalogv1.Movie)
	if m.Id == "" {
		c.nextID++
		m.Id = fmt.Sprintf("m_%06d", c.nextID)
	}
	m.Etag = proto.String(`"1"`)
	c.movies[m.Id] = m
	c.record(m.Id, catalogv1.ChangeKind_CHANGE_KIND_UPSERTED, m.GetEtag())
	return proto.Clone(m).(*catalogv1.Movie)
}

// Update changes a movie through fn.
func (c *Catalog) Update(id string, fn func(*catalogv1.Movie)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.movies[id]
	if !ok {
		return false
	}
	fn(m)
	m.Etag = proto.String(bump(m.GetEtag()))
	c.record(id, catalogv1.ChangeKind_CHANGE_KIND_UPSERTED, m.GetEtag())
	return true
}

func bump(etag string) string {
	n, _ := strconv.Atoi(strings.Trim(etag, `"`))
	return `"` + strconv.Itoa(n+1) + `"`
}

// Delete removes a movie.
func (c *Catalog) Delete(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.movies[id]; !ok {
		return false
	}
	delete(c.movies, id)
	c.record(id, catalogv1.ChangeKind_CHANGE_KIND_DELETED, "")
	return true
}

// RenameDirector renames a director in every movie that embeds it, each
// movie appearing in the feed, as the real service does.
func (c *Catalog) RenameDirector(directorID, name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range c.sortedIDs() {
		m := c.movies[id]
		changed := false
		for _, d := range m.Directors {
			if d.GetId() == directorID {
				d.Name = name
				changed = true
			}
		}
		if changed {
			m.Etag = proto.String(bump(m.GetEtag()))
			c.record(id, catalogv1.ChangeKind_CHANGE_KIND_UPSERTED, m.GetEtag())
			n++
		}
	}
	return n
}

// Expire makes every current feed position older than the retention.
func (c *Catalog) Expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expired = len(c.changes) + 1
}

// Snapshot returns a copy of every movie, by id.
func (c *Catalog) Snapshot() map[string]*catalogv1.Movie {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*catalogv1.Movie, len(c.movies))
	for id, m := range c.movies {
		out[id] = proto.Clone(m).(*catalogv1.Movie)
	}
	return out
}

func (c *Catalog) sortedIDs() []string {
	ids := make([]string, 0, len(c.movies))
	for id := range c.movies {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func token(pos int) string { return "pos-" + strconv.Itoa(pos) }

func (c *Catalog) parseToken(t string) (int, error) {
	if t == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(t, "pos-"))
	if err != nil || !strings.HasPrefix(t, "pos-") || n < 0 {
		return 0, status.Error(codes.InvalidArgument, "invalid page token")
	}
	if n < c.expired-1 {
		st, _ := status.New(codes.FailedPrecondition, "feed position expired").WithDetails(
			&errdetails.ErrorInfo{Reason: "FEED_POSITION_EXPIRED", Domain: "marquee.dev"})
		return 0, st.Err()
	}
	return n, nil
}

func requireToken(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if strings.HasPrefix(v, "Bearer ") && len(v) > len("Bearer ") {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "a service token is required")
}

// GetMovie implements the RPC.
func (c *Catalog) GetMovie(_ context.Context, r *catalogv1.GetMovieRequest) (*catalogv1.Movie, error) {
	c.count("GetMovie")
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.movies[r.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "movie %q not found", r.GetId())
	}
	return proto.Clone(m).(*catalogv1.Movie), nil
}

// BatchGetMovies implements the RPC: an unknown id fails the whole call.
func (c *Catalog) BatchGetMovies(_ context.Context, r *catalogv1.BatchGetMoviesRequest) (*catalogv1.BatchGetMoviesResponse, error) {
	c.count("BatchGetMovies")
	if len(r.GetIds()) > 100 {
		return nil, status.Error(codes.InvalidArgument, "at most 100 ids")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &catalogv1.BatchGetMoviesResponse{}
	for _, id := range r.GetIds() {
		m, ok := c.movies[id]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "movie %q not found", id)
		}
		out.Movies = append(out.Movies, proto.Clone(m).(*catalogv1.Movie))
	}
	return out, nil
}

// ListMovieChanges implements the RPC.
func (c *Catalog) ListMovieChanges(_ context.Context, r *catalogv1.ListMovieChangesRequest) (*catalogv1.ListMovieChangesResponse, error) {
	c.count("ListMovieChanges")
	c.mu.Lock()
	defer c.mu.Unlock()
	pos, err := c.parseToken(r.GetPageToken())
	if err != nil {
		return nil, err
	}
	if pos < 0 {
		pos = max(c.expired-1, 0)
	}
	size := int(r.GetPageSize())
	if size <= 0 {
		size = 100
	}
	end := min(pos+size, len(c.changes))
	out := &catalogv1.ListMovieChangesResponse{NextPageToken: token(end)}
	for _, ch := range c.changes[min(pos, end):end] {
		out.Changes = append(out.Changes, proto.Clone(ch).(*catalogv1.MovieChange))
	}
	return out, nil
}

// WatchMovieChanges implements the RPC: batches of at most 50 changes as
// they happen, after the given position (empty means now).
func (c *Catalog) WatchMovieChanges(r *catalogv1.WatchMovieChangesRequest, stream grpc.ServerStreamingServer[catalogv1.WatchMovieChangesResponse]) error {
	c.count("WatchMovieChanges")
	if c.RequireToken {
		if err := requireToken(stream.Context()); err != nil {
			return err
		}
	}
	c.mu.Lock()
	pos, err := c.parseToken(r.GetPageToken())
	if pos < 0 {
		pos = len(c.changes)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		c.mu.Lock()
		wake := c.notify
		var batch []*catalogv1.MovieChange
		end := min(pos+50, len(c.changes))
		for _, ch := range c.changes[min(pos, end):end] {
			batch = append(batch, proto.Clone(ch).(*catalogv1.MovieChange))
		}
		c.mu.Unlock()
		if len(batch) > 0 {
			if err := stream.Send(&catalogv1.WatchMovieChangesResponse{Changes: batch, NextPageToken: token(end)}); err != nil {
				return err
			}
			pos = end
			continue
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-wake:
		}
	}
}

// ExportMovies implements the RPC: NDJSON of ExportRecords, the last one
// holding the feed position taken before the movies were read.
func (c *Catalog) ExportMovies(_ *catalogv1.ExportMoviesRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	c.count("ExportMovies")
	if c.RequireToken {
		if err := requireToken(stream.Context()); err != nil {
			return err
		}
	}
	c.mu.Lock()
	pos := len(c.changes)
	var buf []byte
	n := int64(0)
	for _, id := range c.sortedIDs() {
		b, err := protojson.Marshal(&catalogv1.ExportRecord{Record: &catalogv1.ExportRecord_Movie{Movie: c.movies[id]}})
		if err != nil {
			c.mu.Unlock()
			return err
		}
		buf = append(append(buf, b...), '\n')
		n++
	}
	c.mu.Unlock()
	b, _ := protojson.Marshal(&catalogv1.ExportRecord{Record: &catalogv1.ExportRecord_End{End: &catalogv1.ExportEnd{ChangesPageToken: token(pos), MovieCount: n}}})
	buf = append(append(buf, b...), '\n')
	chunk := c.ExportChunk
	if chunk <= 0 {
		chunk = 700
	}
	for len(buf) > 0 {
		k := min(chunk, len(buf))
		if err := stream.Send(&httpbody.HttpBody{ContentType: "application/x-ndjson", Data: buf[:k]}); err != nil {
			return err
		}
		buf = buf[k:]
	}
	return nil
}
