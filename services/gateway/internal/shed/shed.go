// Package shed bounds the requests the gateway serves at once and, when it is
// saturated, refuses the lowest tier first.
//
// Each tier may fill the gateway only up to its own share of the limit:
// anonymous callers up to 60%, users up to 85%, admins and services up to all
// of it. When anonymous traffic floods in, anonymous requests are refused with
// 503 and Retry-After while users and admins still get through; when users
// fill their share as well, only admins are served. Refusing at once is
// cheaper than queueing, and the client is told when to come back.
package shed

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"

	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
)

// Shares of the limit each tier may fill, in percent.
const (
	AnonymousShare = 60
	UserShare      = 85
)

// RetryAfter is what a refused client is told to wait.
const RetryAfter = time.Second

// Limiter counts requests in flight. It is safe for concurrent use.
type Limiter struct {
	max      int64
	inflight atomic.Int64
	shed     metric.Int64Counter
}

// New returns a limiter of max concurrent requests; 0 or less means no limit.
func New(max int, meter metric.Meter) (*Limiter, error) {
	l := &Limiter{max: int64(max)}
	if meter != nil {
		var err error
		l.shed, err = meter.Int64Counter("marquee.gateway.shed.requests",
			metric.WithDescription("Requests refused because the gateway was saturated, by tier."),
			metric.WithUnit("{request}"))
		if err != nil {
			return nil, fmt.Errorf("creating shed counter: %w", err)
		}
		_, err = meter.Int64ObservableGauge("marquee.gateway.inflight",
			metric.WithDescription("Requests being served."),
			metric.WithUnit("{request}"),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(l.inflight.Load())
				return nil
			}))
		if err != nil {
			return nil, fmt.Errorf("creating inflight gauge: %w", err)
		}
	}
	return l, nil
}

// limitFor returns how many requests may be in flight when one of tier is
// admitted.
func (l *Limiter) limitFor(tier string) int64 {
	switch tier {
	case "admin", "service":
		return l.max
	case "user":
		return max(1, l.max*UserShare/100)
	default:
		return max(1, l.max*AnonymousShare/100)
	}
}

// Acquire admits a request of tier, returning the function that ends it, or
// false when the request must be refused.
func (l *Limiter) Acquire(tier string) (release func(), ok bool) {
	if !l.acquire(tier) {
		return nil, false
	}
	return l.release, true
}

func (l *Limiter) acquire(tier string) bool {
	if n := l.inflight.Add(1); l.max > 0 && n > l.limitFor(tier) {
		l.inflight.Add(-1)
		return false
	}
	return true
}

func (l *Limiter) release() { l.inflight.Add(-1) }

// InFlight returns the number of requests being served.
func (l *Limiter) InFlight() int64 { return l.inflight.Load() }

// Middleware admits or refuses each request by the caller's tier.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tier := reqinfo.From(r.Context()).Tier()
		if !l.acquire(tier) {
			if l.shed != nil {
				l.shed.Add(r.Context(), 1, metric.WithAttributes(attribute.String("tier", tier)))
			}
			p := problem.New(http.StatusServiceUnavailable, codes.Unavailable, problem.ReasonOverloaded,
				"the gateway is overloaded; retry shortly")
			p.RetryAfter = RetryAfter
			problem.Write(w, r, p)
			return
		}
		defer l.release()
		next.ServeHTTP(w, r)
	})
}
