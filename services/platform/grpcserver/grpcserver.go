// Package grpcserver builds the gRPC server every service runs: OpenTelemetry
// instrumentation, panic recovery, a default deadline, access logging, the
// standard health service and server reflection, and a Serve method with the
// shutdown order the platform relies on (readiness off first, then a bounded
// graceful stop).
package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// Defaults for the zero values of Options.
const (
	DefaultDeadline         = 10 * time.Second
	DefaultGracePeriod      = 10 * time.Second
	DefaultMaxConnectionAge = 5 * time.Minute
)

// Options configures New. The zero value is usable.
type Options struct {
	// Logger receives access logs and recovered panics; nil discards them.
	Logger *slog.Logger
	// Telemetry supplies the tracer and meter providers for the otelgrpc
	// stats handler; nil records nothing.
	Telemetry *telemetry.Provider
	// DefaultDeadline is applied to unary calls that arrive without a
	// deadline (default 10s). Streaming calls are left alone: the export
	// stream legitimately runs for minutes and bounds itself.
	DefaultDeadline time.Duration
	// GracePeriod is the GracefulStop budget before Stop (default 10s).
	GracePeriod time.Duration
	// MaxConnectionAge closes connections after this long (default 5m), so
	// clients re-resolve and rebalance onto new replicas.
	MaxConnectionAge time.Duration
	// UnaryInterceptors and StreamInterceptors run after the built-ins
	// (authentication goes here).
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// ServerOptions are appended to the options New builds.
	ServerOptions []grpc.ServerOption
}

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server

	logger      *slog.Logger
	gracePeriod time.Duration
}

// New builds a server with, in order: the otelgrpc stats handler, panic
// recovery (a panic becomes codes.Internal and is logged with its stack),
// the default deadline, access logging (method, code, duration), then the
// caller's interceptors. It registers grpc.health.v1 and server reflection.
// Register the services, then call Serve.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = logging.Discard()
	}
	if opts.Telemetry == nil {
		opts.Telemetry = telemetry.Noop()
	}
	if opts.DefaultDeadline <= 0 {
		opts.DefaultDeadline = DefaultDeadline
	}
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.MaxConnectionAge <= 0 {
		opts.MaxConnectionAge = DefaultMaxConnectionAge
	}
	logger := opts.Logger

	unary := append([]grpc.UnaryServerInterceptor{
		recoverUnary(logger),
		deadlineUnary(opts.DefaultDeadline),
		accessLogUnary(logger),
	}, opts.UnaryInterceptors...)
	stream := append([]grpc.StreamServerInterceptor{
		recoverStream(logger),
		accessLogStream(logger),
	}, opts.StreamInterceptors...)

	serverOpts := append([]grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(opts.Telemetry.TracerProvider),
			otelgrpc.WithMeterProvider(opts.Telemetry.MeterProvider),
			otelgrpc.WithPropagators(opts.Telemetry.Propagator),
		)),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      opts.MaxConnectionAge,
			MaxConnectionAgeGrace: opts.GracePeriod,
		}),
		// grpcclient pings every 30 s even without active calls; the
		// server default (5 min, no idle pings) would answer that with
		// GOAWAY "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             15 * time.Second,
			PermitWithoutStream: true,
		}),
	}, opts.ServerOptions...)

	s := &Server{
		Server:      grpc.NewServer(serverOpts...),
		Health:      health.NewServer(),
		logger:      logger,
		gracePeriod: opts.GracePeriod,
	}
	healthpb.RegisterHealthServer(s.Server, s.Health)
	reflection.Register(s.Server)
	// Nothing is ready until Serve runs.
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s
}

// Serve marks the server and every registered service SERVING, serves on lis
// until ctx ends, then marks them NOT_SERVING (so health checks and load
// balancers drain the instance), stops gracefully within the grace period,
// and finally stops hard. It returns nil on a clean shutdown and the serve
// error if serving fails; lis is closed either way.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	for name := range s.GetServiceInfo() {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(lis) }()

	select {
	case err := <-errc:
		s.Health.Shutdown()
		s.Server.Stop()
		if err != nil {
			return fmt.Errorf("serving grpc: %w", err)
		}
		return nil
	case <-ctx.Done():
	}

	// Shutdown sets every service NOT_SERVING and keeps it so.
	s.Health.Shutdown()

	stopped := make(chan struct{})
	go func() {
		s.Server.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.gracePeriod)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("grpc graceful stop timed out; closing remaining connections",
			slog.Duration("grace_period", s.gracePeriod))
		s.Server.Stop()
		<-stopped
	}
	// After GracefulStop/Stop, Serve returns nil.
	if err := <-errc; err != nil {
		return fmt.Errorf("serving grpc: %w", err)
	}
	return nil
}

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicError(ctx, logger, info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicError(ss.Context(), logger, info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}

// panicError logs a recovered panic with its stack and returns the error the
// client sees, which carries no internals.
func panicError(ctx context.Context, logger *slog.Logger, method string, p any) error {
	logger.ErrorContext(ctx, "grpc handler panicked",
		slog.String("method", method),
		slog.String("code", codes.Internal.String()),
		slog.Any("panic", p),
		slog.String("stack", string(debug.Stack())),
	)
	return status.Error(codes.Internal, "internal error")
}

func deadlineUnary(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return handler(ctx, req)
	}
}

func accessLogUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, logger, info.FullMethod, start, err)
		return resp, err
	}
}

func accessLogStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), logger, info.FullMethod, start, err)
		return err
	}
}

// logCall writes one access-log record. Server faults log at ERROR, client
// mistakes at INFO, so alerts can key on the level.
func logCall(ctx context.Context, logger *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Unimplemented:
		level = slog.LevelWarn
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	logger.LogAttrs(ctx, level, "grpc call", attrs...)
}
