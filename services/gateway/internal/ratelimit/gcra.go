package ratelimit

import (
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// localGCRA is the per-process limiter: the same generic cell rate algorithm
// as redis_rate's script (so a client sees the same behaviour whichever store
// answers), with the theoretical arrival times in a bounded in-memory cache.
type localGCRA struct {
	now   func() time.Time
	mu    [64]sync.Mutex // striped: the check-and-set of one key must be atomic
	cells *otter.Cache[string, int64]
}

// localMaxKeys bounds the memory of the per-process limiter; the keys least
// likely to be used again go first, and a forgotten key starts afresh, which
// errs on the side of letting a request through.
const localMaxKeys = 200_000

func newLocalGCRA(now func() time.Time) *localGCRA {
	return &localGCRA{
		now: now,
		cells: otter.Must(&otter.Options[string, int64]{
			MaximumSize: localMaxKeys,
			// An entry is needed only until its bucket is full again.
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, int64]) time.Duration {
				d := time.Duration(e.Value - now().UnixNano())
				return max(d, time.Second)
			}),
		}),
	}
}

func (l *localGCRA) stripe(key string) *sync.Mutex {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return &l.mu[h%uint32(len(l.mu))]
}

// allow spends one unit of key's quota of perMinute requests a minute, with a
// burst of the whole quota.
func (l *localGCRA) allow(key string, perMinute int) Result {
	period := time.Minute
	emission := period / time.Duration(perMinute)
	burstOffset := emission * time.Duration(perMinute)

	mu := l.stripe(key)
	mu.Lock()
	defer mu.Unlock()

	now := l.now().UnixNano()
	tat := now
	if v, ok := l.cells.GetIfPresent(key); ok && v > now {
		tat = v
	}
	newTAT := tat + int64(emission)
	allowAt := newTAT - int64(burstOffset)
	diff := now - allowAt
	if diff < 0 {
		return Result{
			Allowed:    false,
			Limit:      perMinute,
			Remaining:  0,
			RetryAfter: time.Duration(-diff),
			ResetAfter: time.Duration(tat - now),
		}
	}
	l.cells.Set(key, newTAT)
	return Result{
		Allowed:    true,
		Limit:      perMinute,
		Remaining:  int(diff / int64(emission)),
		RetryAfter: -1,
		ResetAfter: time.Duration(newTAT - now),
	}
}

func (l *localGCRA) close() {
	l.cells.StopAllGoroutines()
}
