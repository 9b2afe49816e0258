package respcache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

// Watcher is the part of the catalog client Follow needs.
type Watcher interface {
	WatchMovieChanges(ctx context.Context, in *catalogv1.WatchMovieChangesRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[catalogv1.WatchMovieChangesResponse], error)
}

// Follow applies the catalog's change feed to the cache until ctx ends:
// every changed movie is invalidated. When the stream breaks it reconnects
// from the last position it saw, so no change is missed; when that position
// has expired, changes may have been missed and the whole cache is purged. opts carry the gateway's service credentials.
func (c *Cache) Follow(ctx context.Context, w Watcher, opts ...grpc.CallOption) {
	const (
		minBackoff = 100 * time.Millisecond
		maxBackoff = 10 * time.Second
	)
	backoff := minBackoff
	token := ""
	for ctx.Err() == nil {
		received, err := c.followOnce(ctx, w, &token, opts...)
		if ctx.Err() != nil {
			return
		}
		if received {
			backoff = minBackoff
		}
		switch {
		case apierr.Reason(err) == "FEED_POSITION_EXPIRED":
			c.opts.Logger.WarnContext(ctx, "change feed position expired; purging the response cache")
			token = ""
			c.Purge()
		case token == "" && received:
			// A stream that delivered changes but never a position cannot
			// be resumed: what changed since may be missed.
			c.Purge()
		}
		// A stream that never opened (the catalog down, no credentials)
		// purges nothing: entries stored meanwhile are bounded by max-age,
		// and stale-if-error keeps serving them while the backend fails.
		// The catalog sends a reader that starts from now its position at
		// once, so an opened stream always leaves one to resume from.
		level := slog.LevelWarn
		if status.Code(err) == codes.Unavailable || errors.Is(err, io.EOF) {
			level = slog.LevelInfo
		}
		c.opts.Logger.Log(ctx, level, "change feed interrupted; reconnecting",
			slog.String("error", errString(err)), slog.Duration("backoff", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func errString(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}

// followOnce reads one stream until it fails, advancing *token. It reports
// whether any batch arrived.
func (c *Cache) followOnce(ctx context.Context, w Watcher, token *string, opts ...grpc.CallOption) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := w.WatchMovieChanges(ctx, &catalogv1.WatchMovieChangesRequest{PageToken: *token}, opts...)
	if err != nil {
		return false, err
	}
	received := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			return received, err
		}
		received = true
		for _, ch := range resp.GetChanges() {
			c.InvalidateMovie(ch.GetId())
		}
		if t := resp.GetNextPageToken(); t != "" {
			*token = t
		}
	}
}
