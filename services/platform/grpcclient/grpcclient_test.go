package grpcclient_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/services/platform/grpcserver"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// flaky fails the first failures calls with the given code, then succeeds.
type flaky struct {
	calls    atomic.Int32
	failures int32
	code     codes.Code
}

type flakyService interface{ flaky() *flaky }

func (f *flaky) flaky() *flaky { return f }

var flakyDesc = grpc.ServiceDesc{
	ServiceName: "test.Flaky",
	HandlerType: (*flakyService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			f := srv.(flakyService).flaky()
			if n := f.calls.Add(1); n <= f.failures {
				return nil, status.Errorf(f.code, "attempt %d refused", n)
			}
			return wrapperspb.String("ok"), nil
		},
	}},
}

func serve(t *testing.T, f *flaky) string {
	t.Helper()
	srv := grpcserver.New(grpcserver.Options{})
	srv.RegisterService(&flakyDesc, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return lis.Addr().String()
}

func TestDialRetries(t *testing.T) {
	tests := []struct {
		name      string
		failures  int32
		code      codes.Code
		wantCode  codes.Code
		wantCalls int32
	}{
		{name: "unavailable twice then ok", failures: 2, code: codes.Unavailable, wantCode: codes.OK, wantCalls: 3},
		{name: "unavailable beyond max attempts", failures: 5, code: codes.Unavailable, wantCode: codes.Unavailable, wantCalls: 3},
		{name: "other codes are not retried", failures: 1, code: codes.Internal, wantCode: codes.Internal, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{failures: tt.failures, code: tt.code}
			addr := serve(t, f) // bare host:port: exercises the dns:/// default

			conn, err := grpcclient.Dial(addr, telemetry.Noop())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = conn.Invoke(ctx, "/test.Flaky/Call", wrapperspb.String("x"), new(wrapperspb.StringValue), grpc.WaitForReady(true))
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if got := f.calls.Load(); got != tt.wantCalls {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestDialTargets(t *testing.T) {
	f := &flaky{}
	addr := serve(t, f)
	for _, target := range []string{"dns:///" + addr, "passthrough:///" + addr} {
		conn, err := grpcclient.Dial(target, nil)
		if err != nil {
			t.Fatalf("Dial(%q): %v", target, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = conn.Invoke(ctx, "/test.Flaky/Call", wrapperspb.String("x"), new(wrapperspb.StringValue), grpc.WaitForReady(true))
		cancel()
		conn.Close()
		if err != nil {
			t.Errorf("call via %q: %v", target, err)
		}
	}
	if _, err := grpcclient.Dial("", nil); err == nil {
		t.Error("Dial(\"\") succeeded")
	}
}
