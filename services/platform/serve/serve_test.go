package serve_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/platform/serve"
)

func TestRunStopsEveryTaskWhenOneFails(t *testing.T) {
	l, err := serve.Listen(t.Context(), "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var gotMain, gotAdmin string
	boom := errors.New("boom")
	stopped := make(chan struct{})
	tasks := []serve.Task{
		serve.Job(func(ctx context.Context) {
			<-ctx.Done()
			close(stopped)
		}),
		serve.Admin(l, nil, nil),
		func(context.Context) error { return boom },
		nil, // skipped
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	err = serve.Run(t.Context(), logger, l, func(m, a string) { gotMain, gotAdmin = m, a }, tasks)
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the failing task's error", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the background job was not stopped")
	}
	if m, a := l.Addrs(); gotMain != m || gotAdmin != a || a == "" {
		t.Fatalf("onListening got %q %q, want %q %q", gotMain, gotAdmin, m, a)
	}
}

func TestRunReturnsNilOnShutdown(t *testing.T) {
	l, err := serve.Listen(t.Context(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Admin != nil || serve.Admin(l, nil, nil) != nil {
		t.Fatal("an empty admin address made an admin listener")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := serve.Run(ctx, slog.New(slog.DiscardHandler), l, nil, []serve.Task{serve.Job(func(ctx context.Context) { <-ctx.Done() })}); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestListenFailsCleanly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	if _, err := serve.Listen(t.Context(), "127.0.0.1:0", taken.Addr().String()); err == nil {
		t.Fatal("Listen on a taken admin port succeeded")
	}
}

func TestEveryKeepsGoingAfterFailures(t *testing.T) {
	l, err := serve.Listen(t.Context(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	every := serve.Every(time.Millisecond, slog.New(slog.DiscardHandler), "failing", func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return errors.New("fails every time")
	})
	if err := serve.Run(ctx, slog.New(slog.DiscardHandler), l, nil, []serve.Task{every}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls < 3 {
		t.Fatalf("f ran %d times, want it to keep running after failures", calls)
	}
	if serve.Every(0, nil, "", nil) != nil {
		t.Fatal("a zero interval made a task")
	}
}
