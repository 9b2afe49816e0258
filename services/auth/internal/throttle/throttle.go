// Package throttle limits attempts per key (an account, a client address)
// inside this process: token buckets from golang.org/x/time/rate kept in a
// bounded otter cache, so memory stays flat however many keys an attacker
// invents. With several auth replicas each keeps its own buckets; the limits
// are per replica.
package throttle

import (
	"math"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// Limit is a token bucket: Burst attempts at once, then one more every Every.
// A zero Burst disables the limit.
type Limit struct {
	Burst int           `mapstructure:"burst"`
	Every time.Duration `mapstructure:"every"`
}

// Limiter limits attempts per key. It is safe for concurrent use.
type Limiter struct {
	limit   Limit
	buckets *otter.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// maxKeys bounds the buckets kept; the least used are forgotten first.
const maxKeys = 100_000

// New returns a Limiter; now is the clock (nil means time.Now).
func New(l Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	// A bucket left alone this long is full again, so forgetting it changes
	// nothing.
	idle := time.Duration(l.Burst)*l.Every + time.Minute
	return &Limiter{
		limit: l,
		now:   now,
		buckets: otter.Must(&otter.Options[string, *rate.Limiter]{
			MaximumSize:      maxKeys,
			ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](idle),
		}),
	}
}

func (l *Limiter) bucket(key string) *rate.Limiter {
	if b, ok := l.buckets.GetIfPresent(key); ok {
		return b
	}
	b, _ := l.buckets.SetIfAbsent(key, rate.NewLimiter(rate.Every(l.limit.Every), l.limit.Burst))
	return b
}

// Allow takes one attempt from key's bucket. When none is left it returns
// false and how long until one is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l.limit.Burst <= 0 {
		return true, 0
	}
	b := l.bucket(key)
	now := l.now()
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(b, now)
}

// Check reports whether key has an attempt left without taking it, and if
// not how long until it has.
func (l *Limiter) Check(key string) (bool, time.Duration) {
	if l.limit.Burst <= 0 {
		return true, 0
	}
	b := l.bucket(key)
	now := l.now()
	if b.TokensAt(now) >= 1 {
		return true, 0
	}
	return false, l.wait(b, now)
}

func (l *Limiter) wait(b *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing * float64(l.limit.Every)))
}
