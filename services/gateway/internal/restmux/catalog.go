package restmux

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

// catalogClient is the catalog client the REST handlers call. It carries the
// HTTP headers that have a field in the request over into that field —
// Idempotency-Key into request_id, If-Match into etag — and starts the
// export before any byte is written, so that its failure is a proper error
// response rather than an error chunk after a 200.
type catalogClient struct {
	catalogv1.CatalogServiceClient
}

func (c *catalogClient) CreateMovie(ctx context.Context, in *catalogv1.CreateMovieRequest, opts ...grpc.CallOption) (*catalogv1.Movie, error) {
	id, err := requestID(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	in.RequestId = id
	return c.CatalogServiceClient.CreateMovie(ctx, in, opts...)
}

func (c *catalogClient) BatchCreateMovies(ctx context.Context, in *catalogv1.BatchCreateMoviesRequest, opts ...grpc.CallOption) (*catalogv1.BatchCreateMoviesResponse, error) {
	id, err := requestID(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	in.RequestId = id
	return c.CatalogServiceClient.BatchCreateMovies(ctx, in, opts...)
}

func (c *catalogClient) UpdateMovie(ctx context.Context, in *catalogv1.UpdateMovieRequest, opts ...grpc.CallOption) (*catalogv1.Movie, error) {
	if in.GetMovie() != nil {
		tag, err := conditionalETag(ctx, in.GetMovie().GetEtag())
		if err != nil {
			return nil, err
		}
		if tag != "" {
			in.Movie.Etag = proto.String(tag)
		}
	}
	return c.CatalogServiceClient.UpdateMovie(ctx, in, opts...)
}

func (c *catalogClient) DeleteMovie(ctx context.Context, in *catalogv1.DeleteMovieRequest, opts ...grpc.CallOption) (*emptypb.Empty, error) {
	tag, err := conditionalETag(ctx, in.GetEtag())
	if err != nil {
		return nil, err
	}
	in.Etag = tag
	return c.CatalogServiceClient.DeleteMovie(ctx, in, opts...)
}

func (c *catalogClient) UpdateDirector(ctx context.Context, in *catalogv1.UpdateDirectorRequest, opts ...grpc.CallOption) (*catalogv1.Director, error) {
	if in.GetDirector() != nil {
		tag, err := conditionalETag(ctx, in.GetDirector().GetEtag())
		if err != nil {
			return nil, err
		}
		if tag != "" {
			in.Director.Etag = proto.String(tag)
		}
	}
	return c.CatalogServiceClient.UpdateDirector(ctx, in, opts...)
}

// ExportMovies waits for the first chunk (or the failure) before handing the
// stream to grpc-gateway: authorization and other early failures then reach
// the error handler and become a problem document with the right status.
func (c *catalogClient) ExportMovies(ctx context.Context, in *catalogv1.ExportMoviesRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[httpbody.HttpBody], error) {
	s, err := c.CatalogServiceClient.ExportMovies(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	first, err := s.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &prefetched{ServerStreamingClient: s, first: first, firstErr: err}, nil
}

type prefetched struct {
	grpc.ServerStreamingClient[httpbody.HttpBody]
	first    *httpbody.HttpBody
	firstErr error
	used     bool
}

func (p *prefetched) Recv() (*httpbody.HttpBody, error) {
	if !p.used {
		p.used = true
		return p.first, p.firstErr
	}
	return p.ServerStreamingClient.Recv()
}

// maxRequestIDLen mirrors the limit catalog applies to request_id.
const maxRequestIDLen = 100

// requestID merges the Idempotency-Key header with a request_id sent in the
// body or query: either may be used, but two different keys are an error.
func requestID(ctx context.Context, fromRequest string) (string, error) {
	key := strings.TrimSpace(reqinfo.From(ctx).IdempotencyKey)
	switch {
	case key == "":
		return fromRequest, nil
	case len(key) > maxRequestIDLen:
		return "", apierr.InvalidArgument(problem.ReasonInvalidArgument, "the Idempotency-Key header is too long",
			apierr.Field("Idempotency-Key", "must be at most 100 characters"))
	case fromRequest != "" && fromRequest != key:
		return "", apierr.InvalidArgument(problem.ReasonInvalidArgument, "Idempotency-Key and request_id disagree",
			apierr.Field("request_id", "must equal the Idempotency-Key header when both are sent"))
	}
	return key, nil
}

// conditionalETag merges the If-Match header with an etag sent in the
// request. "*" asks for no condition beyond existence, which the write
// checks anyway. Two different tags cannot both match the current one, so
// that request fails as a mismatch without asking the catalog.
func conditionalETag(ctx context.Context, fromRequest string) (string, error) {
	raw := strings.TrimSpace(reqinfo.From(ctx).IfMatch)
	if raw == "" || raw == "*" {
		return fromRequest, nil
	}
	if strings.Contains(raw, ",") {
		return "", apierr.InvalidArgument(problem.ReasonInvalidArgument, "If-Match with several entity tags is not supported",
			apierr.Field("If-Match", "give exactly one entity tag"))
	}
	if strings.HasPrefix(raw, "W/") {
		// If-Match uses the strong comparison: a weak tag never matches.
		return "", apierr.New(codes.Aborted, problem.ReasonEtagMismatch, "a weak entity tag never matches If-Match")
	}
	tag := QuoteETag(raw)
	if fromRequest != "" && QuoteETag(fromRequest) != tag {
		return "", apierr.New(codes.Aborted, problem.ReasonEtagMismatch, "the If-Match header and the etag in the request differ")
	}
	return tag, nil
}
