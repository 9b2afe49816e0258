// Package grpcclient dials the platform's gRPC services with the settings
// every caller should share: client-side round-robin over all resolved
// addresses, retries of UNAVAILABLE, keepalive and OpenTelemetry
// instrumentation.
package grpcclient

import (
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// ServiceConfig balances calls round-robin across every address the resolver
// returns (a headless Kubernetes service resolves to all pods) and retries
// calls that fail with UNAVAILABLE, which is what a client sees when a pod is
// going away or a connection has just been reset. Only UNAVAILABLE is
// retried: the call either never reached a handler or the server refused it
// before doing anything, so a retry cannot apply a write twice.
const ServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Dial creates a client for target: "dns:///host:port", "passthrough:///…",
// or a bare "host:port", which gets "dns:///" prepended so round_robin sees
// every address. It uses ServiceConfig, keepalive pings every 30 s (also
// without active calls, so dead connections are noticed before a call is
// made on them), the otelgrpc stats handler with tp's providers (nil: none)
// and plaintext transport; pass grpc.WithTransportCredentials in extra for
// TLS, since later options override earlier ones. Dial does not connect:
// the first call does.
func Dial(target string, tp *telemetry.Provider, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if target == "" {
		return nil, fmt.Errorf("dialing grpc: empty target")
	}
	if !strings.Contains(target, ":///") {
		target = "dns:///" + target
	}
	if tp == nil {
		tp = telemetry.Noop()
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(ServiceConfig),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(tp.TracerProvider),
			otelgrpc.WithMeterProvider(tp.MeterProvider),
			otelgrpc.WithPropagators(tp.Propagator),
		)),
	}, extra...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing grpc %s: %w", target, err)
	}
	return conn, nil
}
