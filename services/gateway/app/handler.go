package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc/codes"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/proto/gen/go/openapi"
	"github.com/marquee-dev/marquee/services/gateway/internal/accesslog"
	"github.com/marquee-dev/marquee/services/gateway/internal/clientip"
	"github.com/marquee-dev/marquee/services/gateway/internal/docs"
	"github.com/marquee-dev/marquee/services/gateway/internal/identity"
	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/ratelimit"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/gateway/internal/respcache"
	"github.com/marquee-dev/marquee/services/gateway/internal/restmux"
	"github.com/marquee-dev/marquee/services/gateway/internal/routes"
	"github.com/marquee-dev/marquee/services/gateway/internal/secure"
	"github.com/marquee-dev/marquee/services/gateway/internal/shed"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// backends are the clients the gateway calls.
type backends struct {
	catalog catalogv1.CatalogServiceClient
	search  searchv1.SearchServiceClient
	auth    authv1.AuthServiceClient
}

// edge is the assembled HTTP side of the gateway.
type edge struct {
	handler http.Handler
	cache   *respcache.Cache
	limiter *ratelimit.Limiter
	ready   *atomic.Bool
}

func (e *edge) close() {
	e.cache.Close()
	e.limiter.Close()
}

// buildEdge assembles the handler chain, outermost first:
//
//	otelhttp        span per request, continued into gRPC by otelgrpc
//	accesslog       request id, panic recovery, access log, RED metrics
//	secure          nosniff, HSTS under TLS, CSP, CORS
//	gzhttp          gzip / zstd by Accept-Encoding
//	probes          /healthz, /readyz (not limited, not shed)
//	clientip        client address from the peer and trusted proxies
//	identity        Bearer / X-API-Key -> principal (failure noted)
//	ratelimit       per-tier GCRA, RateLimit headers, 429
//	identity.Enforce 401 for a failed credential
//	shed            concurrency limit by tier, 503
//	docs            /openapi.json, /docs
//	respcache       cached public GETs, ETag, 304
//	limits          body size (413), HEAD as GET, request deadline
//	restmux         grpc-gateway -> catalog, search, auth
func buildEdge(ctx context.Context, cfg Config, b backends, v identity.Verifier, rdb redis.UniversalClient,
	logger *slog.Logger, tp *telemetry.Provider) (*edge, error) {
	meter := tp.MeterProvider.Meter("github.com/marquee-dev/marquee/services/gateway")
	trusted, err := authn.ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("parsing gateway.trusted_proxies: %w", err)
	}

	table, err := routes.NewTable(routes.FromFiles(
		catalogv1.File_marquee_catalog_v1_catalog_proto,
		searchv1.File_marquee_search_v1_search_proto,
		authv1.File_marquee_auth_v1_auth_proto,
	))
	if err != nil {
		return nil, err
	}
	problems := &problem.Handler{Logger: logger, Allow: table.Allow}
	policy := respcache.Policy{
		MaxAge:               cfg.Cache.MaxAge,
		StaleWhileRevalidate: cfg.Cache.StaleWhileRevalidate,
		StaleIfError:         cfg.Cache.StaleIfError,
	}
	mux, err := restmux.New(ctx, restmux.Options{
		Catalog: b.catalog, Search: b.search, Auth: b.auth,
		Problems: problems, Policy: policy,
	})
	if err != nil {
		return nil, err
	}
	cache, err := respcache.New(respcache.Options{
		MaxBytes: uint64(cfg.Cache.MaxBytes), Policy: policy, Logger: logger, Meter: meter,
	})
	if err != nil {
		return nil, err
	}
	limiter, err := ratelimit.New(ratelimit.Options{
		Redis: rdb,
		Policies: ratelimit.Policies{
			Anonymous: cfg.RateLimit.AnonymousPerMinute,
			User:      cfg.RateLimit.UserPerMinute,
			Admin:     cfg.RateLimit.AdminPerMinute,
			Token:     cfg.RateLimit.TokenPerMinute,
		},
		IsTokenEndpoint: func(r *http.Request) bool {
			return r.Method == http.MethodPost && r.URL.Path == "/v1/auth/token"
		},
		Logger: logger,
		Meter:  meter,
	})
	if err != nil {
		cache.Close()
		return nil, err
	}
	e := &edge{cache: cache, limiter: limiter, ready: &atomic.Bool{}}
	shedder, err := shed.New(cfg.MaxConcurrency, meter)
	if err != nil {
		e.close()
		return nil, err
	}
	reference, err := docs.New(openapi.FS)
	if err != nil {
		e.close()
		return nil, err
	}
	access, err := accesslog.New(accesslog.Options{Logger: logger, Meter: meter, Quiet: []string{"/healthz", "/readyz"}})
	if err != nil {
		e.close()
		return nil, err
	}
	compress, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1024),
		// A compressed representation needs its own strong ETag.
		gzhttp.SuffixETag("-gzip"),
	)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("creating compression middleware: %w", err)
	}
	ids := identity.New(v)

	api := cache.Middleware(limits(mux, cfg.RequestTimeout))
	routed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reference.Handles(r.URL.Path) {
			route := "/docs/*"
			if r.URL.Path == "/openapi.json" {
				route = r.URL.Path
			}
			reqinfo.From(r.Context()).Route = route
			reference.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
	guarded := clientip.New(trusted).Middleware(
		ids.Identify(
			limiter.Middleware(
				identity.Enforce(
					shedder.Middleware(routed)))))
	probed := probes(e.ready, guarded)
	var h http.Handler = compress(probed)
	h = secure.New(secure.Options{AllowedOrigins: cfg.CORSAllowedOrigins}).Handler(h)
	h = access.Handler(h)
	h = otelhttp.NewHandler(h, "gateway",
		otelhttp.WithTracerProvider(tp.TracerProvider),
		// The RED metrics of accesslog, per route template and tier,
		// replace otelhttp's own, which know neither.
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()),
		otelhttp.WithPropagators(tp.Propagator),
		// Cache hits are not traced (see respcache.WouldHit): the span
		// would cost more than the answer. Everything that reaches a
		// backend is.
		otelhttp.WithFilter(func(r *http.Request) bool { return !cache.WouldHit(r) }),
	)
	e.handler = h
	return e, nil
}

// probes answers /healthz (the process is up) and /readyz (this gateway
// accepts traffic: it is not starting or draining). Readiness is the
// gateway's own: a backend that is down makes its routes answer 503, it never
// takes gateways out of service.
func probes(ready *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			reqinfo.From(r.Context()).Route = r.URL.Path
			writeProbe(w, r, http.StatusOK, "ok")
		case "/readyz":
			reqinfo.From(r.Context()).Route = r.URL.Path
			if ready.Load() {
				writeProbe(w, r, http.StatusOK, "ready")
				return
			}
			p := problem.New(http.StatusServiceUnavailable, codes.Unavailable, "NOT_READY", "the gateway is starting or shutting down")
			p.RetryAfter = time.Second
			problem.Write(w, r, p)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeProbe(w http.ResponseWriter, r *http.Request, status int, body string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		p := problem.New(http.StatusMethodNotAllowed, codes.Unimplemented, problem.ReasonMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		p.Allow = []string{http.MethodGet, http.MethodHead}
		problem.Write(w, r, p)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// limits applies the request limits just before grpc-gateway: bodies over
// MaxBodyBytes are refused (413, found while decoding when the length was not
// announced), HEAD is served as GET (net/http drops the body), and unary
// calls get the request deadline (a miss is 504). The export streams for as
// long as the client reads.
func limits(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		if r.ContentLength > MaxBodyBytes {
			problem.Write(w, r, problem.New(http.StatusRequestEntityTooLarge, codes.InvalidArgument, problem.ReasonPayloadTooLarge,
				fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)))
			return
		}
		ctx := r.Context()
		if r.URL.Path != "/v1/movies:export" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		inner := r.WithContext(ctx)
		if r.Body != nil && r.Body != http.NoBody {
			inner.Body = &bodyLimit{ReadCloser: http.MaxBytesReader(w, r.Body, MaxBodyBytes), info: info}
		}
		if r.Method == http.MethodHead {
			inner.Method = http.MethodGet
		}
		next.ServeHTTP(w, inner)
	})
}

// bodyLimit notes in reqinfo that the body went over the limit, so the error
// handler answers 413 instead of the decoder's 400.
type bodyLimit struct {
	io.ReadCloser
	info *reqinfo.Info
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if err != nil && errors.As(err, &tooLarge) {
		b.info.BodyTooLarge = true
	}
	return n, err
}
