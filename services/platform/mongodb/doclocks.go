package mongodb

import (
	"hash/maphash"
	"sync"
)

// stripes is the number of mutexes DocLocks spreads documents over: enough
// that unrelated documents rarely wait on each other, few enough to cost
// nothing.
const stripes = 256

// DocLocks serializes writes to one document inside this process.
//
// MongoDB applies a single-document update atomically, so a conditional
// update ({_id, revision: n} -> revision n+1) is a safe compare-and-set and
// Lock does nothing. FerretDB v1 evaluates the filter and writes the
// document in separate steps, so two concurrent compare-and-sets can both
// succeed and one update is lost; on FerretDB, Lock takes a striped mutex
// chosen by the key's hash. This only protects writers in one process, which
// is what FerretDB deployments (the dev stack, tests) are.
//
// Hold the lock around the whole read-check-write sequence. A nil *DocLocks
// never locks.
type DocLocks struct {
	enabled bool
	seed    maphash.Seed
	mu      [stripes]sync.Mutex
}

// NewDocLocks returns DocLocks that lock when enabled is true and are no-ops
// otherwise.
func NewDocLocks(enabled bool) *DocLocks {
	return &DocLocks{enabled: enabled, seed: maphash.MakeSeed()}
}

// Enabled reports whether Lock actually locks.
func (l *DocLocks) Enabled() bool {
	return l != nil && l.enabled
}

// Lock locks the stripe for key (use "collection/id") and returns the
// function that unlocks it; calling that more than once is harmless.
func (l *DocLocks) Lock(key string) (unlock func()) {
	if !l.Enabled() {
		return func() {}
	}
	mu := &l.mu[maphash.String(l.seed, key)%stripes]
	mu.Lock()
	var once sync.Once
	return func() { once.Do(mu.Unlock) }
}
