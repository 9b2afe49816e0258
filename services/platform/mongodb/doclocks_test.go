package mongodb_test

import (
	"sync"
	"testing"

	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

func TestDocLocksDisabledIsNoop(t *testing.T) {
	for _, l := range []*mongodb.DocLocks{nil, mongodb.NewDocLocks(false)} {
		if l.Enabled() {
			t.Error("Enabled() = true")
		}
		// Would deadlock if it locked.
		u1 := l.Lock("movies/1")
		u2 := l.Lock("movies/1")
		u1()
		u2()
	}
}

func TestDocLocksSerializeOneKey(t *testing.T) {
	l := mongodb.NewDocLocks(true)
	// A plain int, deliberately unsynchronised: the race detector and the
	// final count both fail if two holders of the same key overlap.
	counter := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				unlock := l.Lock("movies/42")
				counter++
				unlock()
			}
		})
	}
	wg.Wait()
	if counter != 8*200 {
		t.Errorf("counter = %d, want %d", counter, 8*200)
	}
}

func TestDocLocksUnlockTwice(t *testing.T) {
	l := mongodb.NewDocLocks(true)
	unlock := l.Lock("k")
	unlock()
	unlock() // must not panic with "unlock of unlocked mutex"
	l.Lock("k")()
}
