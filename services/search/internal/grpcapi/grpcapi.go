// Package grpcapi maps the SearchService RPCs onto the index and is the one
// place where domain errors become gRPC statuses.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// Suggest limits (search.proto).
const (
	maxPrefixLength    = 100
	defaultSuggestions = 10
	maxSuggestions     = 50
)

// Options tune the server.
type Options struct {
	// SearchTimeout bounds one search, whatever deadline the caller sent
	// (default 5s): the cost of a query is bounded by time as well as by the
	// parser's limits.
	SearchTimeout time.Duration
	Logger        *slog.Logger
}

// Server implements searchv1.SearchServiceServer. Every method is open to
// anonymous callers.
type Server struct {
	searchv1.UnimplementedSearchServiceServer
	idx    index.Index
	parser *query.Parser
	opts   Options
}

// New returns a Server over idx.
func New(idx index.Index, parser *query.Parser, opts Options) *Server {
	if opts.SearchTimeout <= 0 {
		opts.SearchTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{idx: idx, parser: parser, opts: opts}
}

// SearchMovies implements the RPC.
func (s *Server) SearchMovies(ctx context.Context, req *searchv1.SearchMoviesRequest) (*searchv1.SearchMoviesResponse, error) {
	r, err := s.parser.Parse(query.Input{
		Q: req.GetQ(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.SearchTimeout)
	defer cancel()
	res, err := s.idx.Search(ctx, r)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := &searchv1.SearchMoviesResponse{TotalSize: res.Total, Facets: &searchv1.Facets{}}
	for _, h := range res.Hits {
		out.Results = append(out.Results, &searchv1.SearchResult{Movie: h.Movie, Score: h.Score})
	}
	for _, f := range res.Genres {
		out.Facets.Genres = append(out.Facets.Genres, &searchv1.FacetCount{Value: f.Value, Count: f.Count})
	}
	for _, f := range res.Decades {
		out.Facets.Decades = append(out.Facets.Decades, &searchv1.FacetCount{Value: f.Value, Count: f.Count})
	}
	if res.More {
		out.NextPageToken = s.parser.NextToken(r, r.Offset+len(res.Hits), res.Last)
	}
	return out, nil
}

// SuggestTitles implements the RPC.
func (s *Server) SuggestTitles(ctx context.Context, req *searchv1.SuggestTitlesRequest) (*searchv1.SuggestTitlesResponse, error) {
	p := req.GetPrefix()
	switch {
	case !utf8.ValidString(p):
		return nil, apierr.InvalidArgument(query.ReasonInvalidArgument, "prefix must be valid UTF-8", apierr.Field("prefix", "must be valid UTF-8"))
	case p == "":
		return nil, apierr.InvalidArgument(query.ReasonInvalidArgument, "prefix is required", apierr.Field("prefix", "is required"))
	case utf8.RuneCountInString(p) > maxPrefixLength:
		return nil, apierr.InvalidArgument(query.ReasonInvalidArgument, "prefix is too long", apierr.Field("prefix", "must be at most 100 characters"))
	case req.GetLimit() < 0:
		return nil, apierr.InvalidArgument(query.ReasonInvalidArgument, "limit must not be negative", apierr.Field("limit", "must not be negative"))
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = defaultSuggestions
	}
	limit = min(limit, maxSuggestions)
	ss, err := s.idx.Suggest(ctx, p, limit)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := &searchv1.SuggestTitlesResponse{}
	for _, x := range ss {
		sg := &searchv1.Suggestion{Id: x.ID, Title: x.Title, Popularity: x.Popularity}
		if x.Year != 0 {
			sg.Year = proto.Int32(x.Year)
		}
		out.Suggestions = append(out.Suggestions, sg)
	}
	return out, nil
}

// toStatus is the error boundary.
func (s *Server) toStatus(ctx context.Context, err error) error {
	var ie *query.InvalidError
	switch {
	case errors.As(err, &ie):
		return apierr.InvalidArgument(ie.Reason, ie.Error(), apierr.Field(ie.Field, ie.Msg))
	case errors.Is(err, context.DeadlineExceeded):
		return apierr.New(codes.DeadlineExceeded, "DEADLINE_EXCEEDED", "the search took too long; narrow the query")
	case errors.Is(err, context.Canceled):
		return apierr.New(codes.Canceled, "CANCELLED", "the call was cancelled")
	case errors.Is(err, index.ErrClosed):
		return apierr.New(codes.Unavailable, "UNAVAILABLE", "the search index is shutting down")
	}
	s.opts.Logger.ErrorContext(ctx, "search failed", "error", err)
	return apierr.New(codes.Internal, "INTERNAL", "internal error")
}

// Register registers s on g.
func Register(g *grpc.Server, s *Server) {
	searchv1.RegisterSearchServiceServer(g, s)
}
