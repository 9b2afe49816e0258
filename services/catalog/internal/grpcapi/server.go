// Package grpcapi serves marquee.catalog.v1.CatalogService: it maps protos
// to the domain and back, declares who may call each RPC (authn.Require at
// the top of every handler: reads are open, ExportMovies needs a signed-in
// caller, WatchMovieChanges a service or admin, writes an admin) and is the
// one place where domain errors become gRPC statuses (toStatus).
package grpcapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.einride.tech/aip/fieldmask"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/emptypb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// ReplayedHeader is the response header that tells a caller (the importer)
// which creates were answered from an earlier request with the same
// request_id: "true"/"false" on CreateMovie, and the comma-separated indexes
// of such requests on BatchCreateMovies.
const ReplayedHeader = "x-marquee-replayed"

// Scanner streams every live movie, for the export.
type Scanner interface {
	ScanMovies(ctx context.Context, fn func(*movie.Movie) error) error
}

// Server implements catalogv1.CatalogServiceServer.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer
	svc    *movie.Service
	feed   *feed.Feed
	scan   Scanner
	logger *slog.Logger
}

// New returns a Server.
func New(svc *movie.Service, f *feed.Feed, scan Scanner, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{svc: svc, feed: f, scan: scan, logger: logger}
}

var _ catalogv1.CatalogServiceServer = (*Server)(nil)

func (s *Server) fail(ctx context.Context, err error) error { return toStatus(ctx, s.logger, err) }

// GetMovie implements catalogv1.CatalogServiceServer.
func (s *Server) GetMovie(ctx context.Context, req *catalogv1.GetMovieRequest) (*catalogv1.Movie, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	m, err := s.svc.GetMovie(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return movieToProto(m), nil
}

// BatchGetMovies implements catalogv1.CatalogServiceServer.
func (s *Server) BatchGetMovies(ctx context.Context, req *catalogv1.BatchGetMoviesRequest) (*catalogv1.BatchGetMoviesResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	ms, err := s.svc.BatchGetMovies(ctx, req.GetIds())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &catalogv1.BatchGetMoviesResponse{Movies: make([]*catalogv1.Movie, len(ms))}
	for i, m := range ms {
		resp.Movies[i] = movieToProto(m)
	}
	return resp, nil
}

// ListMovies implements catalogv1.CatalogServiceServer.
func (s *Server) ListMovies(ctx context.Context, req *catalogv1.ListMoviesRequest) (*catalogv1.ListMoviesResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	ms, next, err := s.svc.ListMovies(ctx, req.GetFilter(), req.GetOrderBy(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &catalogv1.ListMoviesResponse{Movies: make([]*catalogv1.Movie, len(ms)), NextPageToken: next}
	for i, m := range ms {
		resp.Movies[i] = movieToProto(m)
	}
	return resp, nil
}

// CreateMovie implements catalogv1.CatalogServiceServer.
func (s *Server) CreateMovie(ctx context.Context, req *catalogv1.CreateMovieRequest) (*catalogv1.Movie, error) {
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	r, err := s.svc.CreateMovie(ctx, movieFromProto(req.GetMovie()), req.GetRequestId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(ReplayedHeader, strconv.FormatBool(r.Replayed)))
	return movieToProto(r.Movie), nil
}

// BatchCreateMovies implements catalogv1.CatalogServiceServer.
func (s *Server) BatchCreateMovies(ctx context.Context, req *catalogv1.BatchCreateMoviesRequest) (*catalogv1.BatchCreateMoviesResponse, error) {
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	reqs := make([]movie.CreateRequest, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		reqs[i] = movie.CreateRequest{Movie: movieFromProto(r.GetMovie()), RequestID: r.GetRequestId()}
	}
	rs, err := s.svc.BatchCreateMovies(ctx, reqs, req.GetRequestId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &catalogv1.BatchCreateMoviesResponse{Movies: make([]*catalogv1.Movie, len(rs))}
	var replayed []string
	for i, r := range rs {
		resp.Movies[i] = movieToProto(r.Movie)
		if r.Replayed {
			replayed = append(replayed, strconv.Itoa(i))
		}
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(ReplayedHeader, strings.Join(replayed, ",")))
	return resp, nil
}

// UpdateMovie implements catalogv1.CatalogServiceServer.
func (s *Server) UpdateMovie(ctx context.Context, req *catalogv1.UpdateMovieRequest) (*catalogv1.Movie, error) {
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	pm := req.GetMovie()
	if pm == nil {
		return nil, s.fail(ctx, &movie.InvalidError{Reason: movie.ReasonInvalidArgument, Message: "invalid request",
			Violations: []movie.FieldViolation{{Field: "movie", Description: "is required"}}})
	}
	paths := req.GetUpdateMask().GetPaths()
	switch {
	case len(paths) == 0:
		paths = populatedPaths(pm)
	case fieldmask.IsFullReplacement(req.GetUpdateMask()):
		paths = movie.WritableMovieFields()
	default:
		// Paths that are not fields of Movie at all; the domain then
		// refuses output-only ones.
		if err := fieldmask.Validate(req.GetUpdateMask(), pm); err != nil {
			return nil, s.fail(ctx, &movie.InvalidError{Reason: movie.ReasonInvalidArgument, Message: "invalid request",
				Violations: []movie.FieldViolation{{Field: "updateMask", Description: err.Error()}}})
		}
	}
	m, err := s.svc.UpdateMovie(ctx, movieFromProto(pm), paths, pm.GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return movieToProto(m), nil
}

// DeleteMovie implements catalogv1.CatalogServiceServer.
func (s *Server) DeleteMovie(ctx context.Context, req *catalogv1.DeleteMovieRequest) (*emptypb.Empty, error) {
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	if err := s.svc.DeleteMovie(ctx, req.GetId(), req.GetEtag()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &emptypb.Empty{}, nil
}

// ListMovieChanges implements catalogv1.CatalogServiceServer.
func (s *Server) ListMovieChanges(ctx context.Context, req *catalogv1.ListMovieChangesRequest) (*catalogv1.ListMovieChangesResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	size, err := movie.PageSize("pageSize", req.GetPageSize(), feed.DefaultPageSize, feed.MaxPageSize)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var since = req.GetSince()
	if since != nil {
		if err := since.CheckValid(); err != nil {
			return nil, s.fail(ctx, &movie.InvalidError{Reason: movie.ReasonInvalidArgument, Message: "invalid request",
				Violations: []movie.FieldViolation{{Field: "since", Description: "is not a valid timestamp"}}})
		}
	}
	var sinceTime time.Time
	if since != nil {
		sinceTime = since.AsTime()
	}
	changes, next, err := s.feed.List(ctx, sinceTime, req.GetPageToken(), size)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &catalogv1.ListMovieChangesResponse{Changes: changesToProto(changes), NextPageToken: next}, nil
}

// WatchMovieChanges implements catalogv1.CatalogServiceServer.
func (s *Server) WatchMovieChanges(req *catalogv1.WatchMovieChangesRequest, stream grpc.ServerStreamingServer[catalogv1.WatchMovieChangesResponse]) error {
	ctx := stream.Context()
	if err := authn.Require(ctx, authn.RoleService, authn.RoleAdmin); err != nil {
		return err
	}
	err := s.feed.Tail(ctx, req.GetPageToken(), func(changes []feed.Change, next string) error {
		return stream.Send(&catalogv1.WatchMovieChangesResponse{Changes: changesToProto(changes), NextPageToken: next})
	})
	if ctx.Err() != nil {
		return nil // the caller went away
	}
	return s.fail(ctx, err)
}

// exportChunk is the size at which export lines are flushed as one
// HttpBody message.
const exportChunk = 64 << 10

// ExportMovies implements catalogv1.CatalogServiceServer: NDJSON of
// ExportRecord lines, ending with the feed token taken before the scan.
func (s *Server) ExportMovies(_ *catalogv1.ExportMoviesRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	ctx := stream.Context()
	if err := authn.Require(ctx, authn.RoleUser, authn.RoleAdmin, authn.RoleService); err != nil {
		return err
	}
	tok, err := s.feed.Now()
	if err != nil {
		return s.fail(ctx, err)
	}
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		err := stream.Send(&httpbody.HttpBody{ContentType: "application/x-ndjson", Data: bytes.Clone(buf.Bytes())})
		buf.Reset()
		return err
	}
	write := func(rec *catalogv1.ExportRecord) error {
		b, err := protojson.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding export record: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
		if buf.Len() >= exportChunk {
			return flush()
		}
		return nil
	}
	var count int64
	err = s.scan.ScanMovies(ctx, func(m *movie.Movie) error {
		count++
		return write(&catalogv1.ExportRecord{Record: &catalogv1.ExportRecord_Movie{Movie: movieToProto(m)}})
	})
	if err == nil {
		err = write(&catalogv1.ExportRecord{Record: &catalogv1.ExportRecord_End{End: &catalogv1.ExportEnd{
			ChangesPageToken: tok, MovieCount: count}}})
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return s.fail(ctx, err)
	}
	return nil
}

// ListGenres implements catalogv1.CatalogServiceServer.
func (s *Server) ListGenres(ctx context.Context, _ *catalogv1.ListGenresRequest) (*catalogv1.ListGenresResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	gs, err := s.svc.ListGenres(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &catalogv1.ListGenresResponse{Genres: make([]*catalogv1.Genre, len(gs))}
	for i, g := range gs {
		resp.Genres[i] = &catalogv1.Genre{Name: g.Name, MovieCount: g.Count}
	}
	return resp, nil
}

// GetDirector implements catalogv1.CatalogServiceServer.
func (s *Server) GetDirector(ctx context.Context, req *catalogv1.GetDirectorRequest) (*catalogv1.Director, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	d, err := s.svc.GetDirector(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return directorToProto(d), nil
}

// ListDirectors implements catalogv1.CatalogServiceServer.
func (s *Server) ListDirectors(ctx context.Context, req *catalogv1.ListDirectorsRequest) (*catalogv1.ListDirectorsResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	ds, next, err := s.svc.ListDirectors(ctx, req.GetFilter(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &catalogv1.ListDirectorsResponse{Directors: make([]*catalogv1.Director, len(ds)), NextPageToken: next}
	for i, d := range ds {
		resp.Directors[i] = directorToProto(d)
	}
	return resp, nil
}

// UpdateDirector implements catalogv1.CatalogServiceServer.
func (s *Server) UpdateDirector(ctx context.Context, req *catalogv1.UpdateDirectorRequest) (*catalogv1.Director, error) {
	if err := authn.Require(ctx, authn.RoleAdmin); err != nil {
		return nil, err
	}
	d := req.GetDirector()
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 && d.GetName() != "" {
		paths = []string{"name"}
	}
	out, err := s.svc.UpdateDirector(ctx, d.GetId(), d.GetName(), d.GetEtag(), paths)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return directorToProto(out), nil
}
