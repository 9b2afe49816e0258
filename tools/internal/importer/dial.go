package importer

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DialConfig says how to reach the catalog.
type DialConfig struct {
	// Token is the bearer access token sent with every call (an admin's);
	// a leading "Bearer " is accepted.
	Token string
	// TLS turns on transport security with the system's roots; the dev
	// stack's loopback addresses are plaintext.
	TLS bool
	// MaxAttempts bounds the attempts of one call on UNAVAILABLE and
	// RESOURCE_EXHAUSTED; 5 by default.
	MaxAttempts int
	// InitialBackoff and MaxBackoff bound the randomised exponential
	// backoff between attempts; 250ms and 5s by default.
	InitialBackoff, MaxBackoff time.Duration
}

// Dial returns a client connection to the catalog at addr whose calls are
// retried with backoff, by gRPC's own retry policy, when the catalog is
// unavailable or sheds load. Creates are safe to retry because each carries
// its request id. Calls also wait for the connection to be ready instead of
// failing at once while the catalog starts.
func Dial(addr string, cfg DialConfig) (*grpc.ClientConn, error) {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.InitialBackoff {
		cfg.MaxBackoff = cfg.InitialBackoff
	}
	serviceConfig := fmt.Sprintf(`{"methodConfig": [{
		"name": [{"service": "marquee.catalog.v1.CatalogService"}],
		"waitForReady": true,
		"retryPolicy": {
			"maxAttempts": %d,
			"initialBackoff": "%.3fs",
			"maxBackoff": "%.3fs",
			"backoffMultiplier": 2,
			"retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
		}
	}]}`, cfg.MaxAttempts, cfg.InitialBackoff.Seconds(), cfg.MaxBackoff.Seconds())

	opts := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithMaxCallAttempts(cfg.MaxAttempts),
		// A batch of 100 movies with full casts is a few hundred kilobytes;
		// retries need the whole request buffered.
		grpc.WithDefaultCallOptions(grpc.MaxRetryRPCBufferSize(8 << 20)),
	}
	if cfg.TLS {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if tok := strings.TrimSpace(cfg.Token); tok != "" {
		tok = strings.TrimSpace(strings.TrimPrefix(tok, "Bearer "))
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: tok, secure: cfg.TLS}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the catalog at %s: %w", addr, err)
	}
	return conn, nil
}

// bearer sends an access token as the authorization metadata.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false for plaintext connections, which the
// dev stack uses on loopback addresses.
func (b bearer) RequireTransportSecurity() bool { return b.secure }
