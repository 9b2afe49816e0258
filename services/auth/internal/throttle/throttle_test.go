package throttle_test

import (
	"sync"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/auth/internal/throttle"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Now()}
	l := throttle.New(throttle.Limit{Burst: 3, Every: time.Minute}, c.now)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("4th attempt = %v, wait %v; want refused with a wait of at most a minute", ok, wait)
	}
	if ok, _ := l.Check("a"); ok {
		t.Fatal("Check reports an attempt left")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key is limited too")
	}
	c.add(time.Minute)
	if ok, _ := l.Check("a"); !ok {
		t.Fatal("no attempt back after the interval")
	}
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("attempt refused after the interval")
	}
	off := throttle.New(throttle.Limit{}, c.now)
	for range 100 {
		if ok, _ := off.Allow("x"); !ok {
			t.Fatal("a zero limit limits")
		}
	}
}
