package baseline

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
)

// DialCatalog opens a plain gRPC connection to the catalog at addr
// ("127.0.0.1:9091"): no interceptors, no telemetry, no retries, so the
// baseline is the cost of the call itself.
func DialCatalog(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dialing catalog at %s: %w", addr, err)
	}
	return conn, nil
}

// CatalogGetMovie loads the catalog's GetMovie directly over gRPC, with the
// ids next returns (Zipf-distributed in the bench, like the gateway's load),
// carrying token as the caller's bearer credential when it is not empty.
func CatalogGetMovie(ctx context.Context, conn grpc.ClientConnInterface, next func() string, token string, lim Limits) (Result, error) {
	client := catalogv1.NewCatalogServiceClient(conn)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	res, err := ClosedLoop(ctx, "catalog-grpc-get", lim, func(ctx context.Context, _ int, _ int64) (string, int64, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := client.GetMovie(cctx, &catalogv1.GetMovieRequest{Id: next()})
		return status.Code(err).String(), 1, err
	})
	res.What = "GetMovie over gRPC straight to catalog (warm catalog cache)"
	return res, err
}

// CatalogBatchCreate loads the catalog's BatchCreateMovies with batches of
// movies built by batch (each with its own request id), as an administrator
// (token), and reports documents per second. It returns the ids created so
// the caller can delete them.
func CatalogBatchCreate(ctx context.Context, conn grpc.ClientConnInterface, token string, batches int,
	batch func(i int) *catalogv1.BatchCreateMoviesRequest, lim Limits,
) (Result, []string, error) {
	client := catalogv1.NewCatalogServiceClient(conn)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	lim.MaxOps = int64(batches)
	created := make(chan []string, batches)
	res, err := ClosedLoop(ctx, "catalog-grpc-batch-create", lim, func(ctx context.Context, _ int, i int64) (string, int64, error) {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		req := batch(int(i))
		resp, err := client.BatchCreateMovies(cctx, req)
		if err != nil {
			return status.Code(err).String(), 0, err
		}
		ids := make([]string, 0, len(resp.GetMovies()))
		for _, m := range resp.GetMovies() {
			ids = append(ids, m.GetId())
		}
		created <- ids
		return "OK", int64(len(ids)), nil
	})
	close(created)
	var ids []string
	for b := range created {
		ids = append(ids, b...)
	}
	res.What = "BatchCreateMovies over gRPC straight to catalog (documents/s)"
	return res, ids, err
}

// CatalogDelete deletes ids through the catalog as an administrator, to
// undo CatalogBatchCreate; it returns the first error after trying them all.
func CatalogDelete(ctx context.Context, conn grpc.ClientConnInterface, token string, ids []string) error {
	client := catalogv1.NewCatalogServiceClient(conn)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	var first error
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := client.DeleteMovie(cctx, &catalogv1.DeleteMovieRequest{Id: id})
		cancel()
		// Already gone (a retried create answered twice) is what we want.
		if err != nil && status.Code(err) != codes.NotFound && first == nil {
			first = fmt.Errorf("deleting movie %s: %w", id, err)
		}
	}
	return first
}
