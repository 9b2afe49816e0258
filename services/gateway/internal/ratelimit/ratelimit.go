// Package ratelimit limits requests per tier with the generic cell rate
// algorithm (GCRA).
//
// Anonymous callers are counted by client address, users and admins (and their
// API keys) by user id, each tier with its own requests-per-minute quota and a
// burst of the whole quota. The counters live in Redis
// (github.com/go-redis/redis_rate), so every gateway replica shares them. When
// Redis is not configured, or fails, the same algorithm runs in process: a
// failure is logged and counted, never shown to the client, and Redis is tried
// again a second later.
//
// Every response carries the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-09, computed for that request; a
// request over its quota is answered 429 with Retry-After and a problem.
// The token endpoint has its own, stricter quota per client address on top of
// the tier's, against password guessing.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"

	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

// Policies are the quotas in requests per minute; 0 means unlimited.
type Policies struct {
	Anonymous int
	User      int
	Admin     int
	// Token is the token endpoint's quota per client address.
	Token int
}

// Result is the outcome of one check.
type Result struct {
	Allowed bool
	// Limit is the quota in requests per minute.
	Limit int
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter is when the next request will be allowed; negative when
	// this one was.
	RetryAfter time.Duration
	// ResetAfter is when the quota will be whole again.
	ResetAfter time.Duration
}

// Store names, as reported in metrics.
const (
	StoreRedis = "redis"
	StoreLocal = "local"
)

// Options configure a Limiter.
type Options struct {
	// Redis holds the shared counters; nil means per-process counting only.
	Redis redis.UniversalClient
	// RedisTimeout bounds one Redis round trip (default 100ms): a slow Redis
	// must not slow every request down.
	RedisTimeout time.Duration
	// RetryRedisAfter is how long the limiter counts in process after a Redis
	// failure before trying Redis again (default 1s).
	RetryRedisAfter time.Duration
	Policies        Policies
	// IsTokenEndpoint selects the requests that also spend the Token quota.
	IsTokenEndpoint func(r *http.Request) bool
	Logger          *slog.Logger
	Meter           metric.Meter
	// Now is the clock of the per-process limiter (nil: time.Now).
	Now func() time.Time
}

// Limiter checks quotas. It is safe for concurrent use.
type Limiter struct {
	opts   Options
	redis  *redis_rate.Limiter
	local  *localGCRA
	logger *slog.Logger

	redisDownUntil atomic.Int64 // unix nanos; 0 when Redis is believed up
	lastLog        atomic.Int64 // unix nanos of the last fallback log line

	decisions metric.Int64Counter
	fallbacks metric.Int64Counter
	// attrs caches the attribute sets of the decisions counter, so that
	// counting costs no allocation per request.
	attrsMu sync.RWMutex
	attrs   map[decisionKey]metric.MeasurementOption
}

type decisionKey struct {
	policy, store string
	allowed       bool
}

func (l *Limiter) decisionAttrs(policy string, allowed bool, store string) metric.MeasurementOption {
	k := decisionKey{policy: policy, store: store, allowed: allowed}
	l.attrsMu.RLock()
	opt, ok := l.attrs[k]
	l.attrsMu.RUnlock()
	if ok {
		return opt
	}
	decision := "allowed"
	if !allowed {
		decision = "limited"
	}
	opt = metric.WithAttributeSet(attribute.NewSet(
		attribute.String("policy", policy),
		attribute.String("decision", decision),
		attribute.String("store", store)))
	l.attrsMu.Lock()
	l.attrs[k] = opt
	l.attrsMu.Unlock()
	return opt
}

// New returns a Limiter.
func New(opts Options) (*Limiter, error) {
	if opts.RedisTimeout <= 0 {
		opts.RedisTimeout = 100 * time.Millisecond
	}
	if opts.RetryRedisAfter <= 0 {
		opts.RetryRedisAfter = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{opts: opts, local: newLocalGCRA(opts.Now), logger: opts.Logger,
		attrs: map[decisionKey]metric.MeasurementOption{}}
	if opts.Redis != nil {
		l.redis = redis_rate.NewLimiter(opts.Redis)
	}
	if opts.Meter != nil {
		var err error
		l.decisions, err = opts.Meter.Int64Counter("marquee.gateway.ratelimit.decisions",
			metric.WithDescription("Rate-limit decisions by policy, decision (allowed or limited) and store (redis or local)."),
			metric.WithUnit("{decision}"))
		if err != nil {
			return nil, fmt.Errorf("creating ratelimit decisions counter: %w", err)
		}
		l.fallbacks, err = opts.Meter.Int64Counter("marquee.gateway.ratelimit.fallbacks",
			metric.WithDescription("Rate-limit checks answered in process because Redis was unavailable."),
			metric.WithUnit("{check}"))
		if err != nil {
			return nil, fmt.Errorf("creating ratelimit fallbacks counter: %w", err)
		}
	}
	return l, nil
}

// Close releases the per-process limiter's background work.
func (l *Limiter) Close() { l.local.close() }

// Allow spends one request of key's quota of perMinute requests a minute and
// returns the outcome and the store that decided. It never fails: when Redis
// cannot answer, the per-process limiter does.
func (l *Limiter) Allow(ctx context.Context, key string, perMinute int) (Result, string) {
	if l.redis != nil && l.redisUp() {
		rctx, cancel := context.WithTimeout(ctx, l.opts.RedisTimeout)
		res, err := l.redis.Allow(rctx, "marquee:gw:"+key, redis_rate.PerMinute(perMinute))
		cancel()
		if err == nil {
			return Result{
				Allowed:    res.Allowed > 0,
				Limit:      perMinute,
				Remaining:  res.Remaining,
				RetryAfter: res.RetryAfter,
				ResetAfter: res.ResetAfter,
			}, StoreRedis
		}
		if ctx.Err() == nil {
			// The client going away is not Redis failing.
			l.redisFailed(ctx, err)
		}
	}
	if l.redis != nil && l.fallbacks != nil {
		l.fallbacks.Add(ctx, 1)
	}
	return l.local.allow(key, perMinute), StoreLocal
}

func (l *Limiter) redisUp() bool {
	until := l.redisDownUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

func (l *Limiter) redisFailed(ctx context.Context, err error) {
	now := time.Now()
	l.redisDownUntil.Store(now.Add(l.opts.RetryRedisAfter).UnixNano())
	// One line per period is enough to tell an operator; the counter has
	// the rest.
	last := l.lastLog.Load()
	if now.UnixNano()-last >= int64(30*time.Second) && l.lastLog.CompareAndSwap(last, now.UnixNano()) {
		reason := "error"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "timeout"
		}
		l.logger.WarnContext(ctx, "rate limiting in process: redis unavailable",
			slog.String("reason", reason), slog.String("error", err.Error()))
	}
}

// check is one quota applied to a request.
type check struct {
	policy string // "anonymous", "user", "admin", "service", "token"
	key    string
	limit  int
	res    Result
}

// Middleware limits every request it serves; probes should not pass through
// it. The caller's tier comes from the request's reqinfo; a request whose
// credential failed counts as anonymous (by address), so bad credentials
// cannot be tried without limit.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		var buf [2]check
		checks := l.checksFor(buf[:0], r, info)
		allowed := true
		var retry time.Duration
		for i := range checks {
			c := &checks[i]
			var store string
			c.res, store = l.Allow(r.Context(), c.key, c.limit)
			if l.decisions != nil {
				l.decisions.Add(r.Context(), 1, l.decisionAttrs(c.policy, c.res.Allowed, store))
			}
			if !c.res.Allowed {
				allowed = false
				retry = max(retry, c.res.RetryAfter)
				// The stricter quota answered; the next need not be spent.
				checks = checks[:i+1]
				break
			}
		}
		setHeaders(w.Header(), checks)
		if !allowed {
			p := problem.New(http.StatusTooManyRequests, codes.ResourceExhausted, problem.ReasonRateLimited,
				fmt.Sprintf("too many requests; retry in %s seconds", problem.RetryAfterSeconds(retry)))
			p.RetryAfter = retry
			problem.Write(w, r, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (l *Limiter) checksFor(checks []check, r *http.Request, info *reqinfo.Info) []check {
	p := l.opts.Policies
	tier := info.Tier()
	if info.AuthErr != nil {
		tier = "anonymous"
	}
	switch tier {
	case "user":
		checks = append(checks, check{policy: "user", key: "user:" + info.Principal.Subject, limit: p.User})
	case "admin":
		checks = append(checks, check{policy: "admin", key: "admin:" + info.Principal.Subject, limit: p.Admin})
	case "service":
		// Services calling through the public edge get the admin quota.
		checks = append(checks, check{policy: "service", key: "service:" + info.Principal.Subject, limit: p.Admin})
	default:
		checks = append(checks, check{policy: "anonymous", key: "anon:" + info.ClientAddr, limit: p.Anonymous})
	}
	if l.opts.IsTokenEndpoint != nil && l.opts.IsTokenEndpoint(r) {
		checks = append(checks, check{policy: "token", key: "token:" + info.ClientAddr, limit: p.Token})
	}
	out := checks[:0]
	for _, c := range checks {
		if c.limit > 0 {
			out = append(out, c)
		}
	}
	return out
}

// setHeaders writes the RateLimit-Policy and RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers-09): one list member per quota, q the
// quota and w the window in seconds; r the remaining requests and t the
// seconds until they grow (until the next request is allowed when none is
// left, else until the quota is whole again).
func setHeaders(h http.Header, checks []check) {
	if len(checks) == 0 {
		return
	}
	var policy, state strings.Builder
	for i, c := range checks {
		if i > 0 {
			policy.WriteString(", ")
			state.WriteString(", ")
		}
		policy.WriteString(`"` + c.policy + `";q=` + strconv.Itoa(c.limit) + ";w=60")
		t := c.res.ResetAfter
		switch {
		case !c.res.Allowed:
			t = c.res.RetryAfter
		case c.res.Remaining == 0:
			// The next request fits once one emission interval of the
			// burst has drained.
			emission := time.Minute / time.Duration(c.limit)
			t = c.res.ResetAfter - time.Duration(c.limit-1)*emission
		}
		state.WriteString(`"` + c.policy + `";r=` + strconv.Itoa(max(c.res.Remaining, 0)) + ";t=" + seconds(t))
	}
	// The canonical forms of RateLimit-Policy and RateLimit, assigned
	// directly: Set would canonicalize (and allocate) on every request.
	h["Ratelimit-Policy"] = []string{policy.String()}
	h["Ratelimit"] = []string{state.String()}
}

func seconds(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}
