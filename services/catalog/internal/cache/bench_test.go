package cache_test

import (
	"fmt"
	"testing"

	"github.com/marquee-dev/marquee/services/catalog/internal/cache"
)

func BenchmarkGetMovie(b *testing.B) {
	s := newStore(b)
	var ids []string
	for i := range 100 {
		id := fmt.Sprintf("m_%03d", i)
		seed(b, s, id, 1)
		ids = append(ids, id)
	}
	c, err := cache.New(s, cache.Options{MaxEntries: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.GetMovie(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i%len(ids)]
			c.Invalidate(ctx, id, 1)
			if _, err := c.GetMovie(ctx, id); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("batch100-warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got, err := c.GetMovies(ctx, ids); err != nil || len(got) != len(ids) {
				b.Fatal(err)
			}
		}
	})
}
