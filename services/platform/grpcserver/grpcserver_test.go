package grpcserver_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/grpcserver"
	"github.com/marquee-dev/marquee/services/platform/logging"
)

// probeServer implements a hand-written test service, so these tests need no
// generated code.
type probeServer struct{}

// Panic panics.
func (probeServer) Panic(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	var m map[string]int
	m["boom"]++ // nil map write: a real runtime panic
	return nil, nil
}

// Deadline reports how long the handler has left.
func (probeServer) Deadline(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return wrapperspb.String("none"), nil
	}
	return wrapperspb.String(time.Until(dl).Round(time.Second).String()), nil
}

type probeService interface {
	Panic(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	Deadline(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

func unaryMethod(name string, call func(probeService, context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, req any) (any, error) {
				return call(srv.(probeService), ctx, req.(*wrapperspb.StringValue))
			}
			if interceptor == nil {
				return handler(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Probe/" + name}, handler)
		},
	}
}

var probeDesc = grpc.ServiceDesc{
	ServiceName: "test.Probe",
	HandlerType: (*probeService)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod("Panic", probeService.Panic),
		unaryMethod("Deadline", probeService.Deadline),
	},
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type running struct {
	conn   *grpc.ClientConn
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, opts grpcserver.Options) *running {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = logging.New(logs, config.LogConfig{Level: "info"})
	srv := grpcserver.New(opts)
	srv.RegisterService(&probeDesc, probeServer{})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx, lis) }()

	r.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.conn.Close()
		cancel()
		<-r.done
	})
	return r
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHealthLifecycle(t *testing.T) {
	r := start(t, grpcserver.Options{GracePeriod: 2 * time.Second})
	health := healthpb.NewHealthClient(r.conn)
	ctx := callCtx(t)

	for _, svc := range []string{"", "test.Probe"} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, want SERVING", svc, resp.GetStatus())
		}
	}

	// A watcher sees NOT_SERVING when shutdown begins, before the server goes
	// away: that is what lets load balancers drain the instance.
	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: "test.Probe"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first watch update = %v, %v; want SERVING", first, err)
	}
	r.cancel()
	next, err := watch.Recv()
	if err != nil {
		t.Fatalf("watch after shutdown began: %v", err)
	}
	if next.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("status after shutdown began = %v, want NOT_SERVING", next.GetStatus())
	}

	// The open watch stream holds GracefulStop; Serve must still return
	// after the grace period, cleanly.
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return within the grace period")
	}
	if !strings.Contains(r.logs.String(), "graceful stop timed out") {
		t.Errorf("expected a graceful-stop timeout log, got:\n%s", r.logs.String())
	}
}

func TestServeReturnsPromptlyWhenIdle(t *testing.T) {
	r := start(t, grpcserver.Options{GracePeriod: time.Minute})
	ctx := callCtx(t)
	if _, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	r.done <- nil
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("idle shutdown took %v, want GracefulStop to finish without the grace period", d)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	r := start(t, grpcserver.Options{})
	out := new(wrapperspb.StringValue)
	err := r.conn.Invoke(callCtx(t), "/test.Probe/Panic", wrapperspb.String("x"), out, grpc.WaitForReady(true))
	if got := status.Code(err); got != codes.Internal {
		t.Fatalf("code = %v (%v), want Internal", got, err)
	}
	if strings.Contains(status.Convert(err).Message(), "nil map") {
		t.Errorf("panic detail leaked to the client: %v", err)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "grpc handler panicked") || !strings.Contains(logs, "grpcserver_test.probeServer.Panic") {
		t.Errorf("panic not logged with its stack:\n%s", logs)
	}

	// The server survived and still serves.
	if err := r.conn.Invoke(callCtx(t), "/test.Probe/Deadline", wrapperspb.String("x"), out); err != nil {
		t.Errorf("call after panic: %v", err)
	}
}

func TestDefaultDeadline(t *testing.T) {
	r := start(t, grpcserver.Options{DefaultDeadline: 42 * time.Second})

	// No deadline on the call: the server applies its default.
	out := new(wrapperspb.StringValue)
	if err := r.conn.Invoke(context.Background(), "/test.Probe/Deadline", wrapperspb.String("x"), out, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if out.GetValue() != "42s" {
		t.Errorf("deadline without one from the client = %q, want 42s", out.GetValue())
	}

	// The caller's own deadline is kept.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.conn.Invoke(ctx, "/test.Probe/Deadline", wrapperspb.String("x"), out); err != nil {
		t.Fatal(err)
	}
	if out.GetValue() != "3s" {
		t.Errorf("deadline with the client's 3s = %q, want 3s", out.GetValue())
	}

	logs := r.logs.String()
	if !strings.Contains(logs, `"method":"/test.Probe/Deadline"`) || !strings.Contains(logs, `"code":"OK"`) {
		t.Errorf("access log missing:\n%s", logs)
	}
}

func TestCallerInterceptorsRunAfterBuiltins(t *testing.T) {
	var sawDeadline bool
	r := start(t, grpcserver.Options{
		UnaryInterceptors: []grpc.UnaryServerInterceptor{
			func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if info.FullMethod == "/test.Probe/Deadline" {
					_, sawDeadline = ctx.Deadline()
					return nil, status.Error(codes.Unauthenticated, "no token")
				}
				return h(ctx, req)
			},
		},
	})
	err := r.conn.Invoke(context.Background(), "/test.Probe/Deadline", wrapperspb.String("x"), new(wrapperspb.StringValue), grpc.WaitForReady(true))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("code = %v, want Unauthenticated from the caller's interceptor", status.Code(err))
	}
	if !sawDeadline {
		t.Error("caller interceptor ran before the default deadline")
	}
}

func TestReflectionRegistered(t *testing.T) {
	r := start(t, grpcserver.Options{})
	stream, err := reflectionpb.NewServerReflectionClient(r.conn).ServerReflectionInfo(callCtx(t), grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	joined := strings.Join(names, ",")
	for _, want := range []string{"grpc.health.v1.Health", "test.Probe"} {
		if !strings.Contains(joined, want) {
			t.Errorf("reflection lists %v, want %s", names, want)
		}
	}
}
