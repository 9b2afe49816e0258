// Package cache is the read-through cache in front of the movie store for
// Get and BatchGet: an in-process, bounded TinyLFU cache (otter) and,
// when configured, Redis shared by the replicas. Concurrent misses for one
// id collapse into one database read (singleflight).
//
// Invalidation never lets an older revision overwrite a newer one: an
// invalidation leaves a short-lived marker holding the new revision, and a
// value loaded concurrently is stored only if its revision is at least
// every marker's and every stored value's (atomically, with otter's Compute
// locally and a Lua script in Redis). Every replica invalidates from the
// change feed (Follow), so a write through any replica reaches every cache
// within the feed's poll interval; the writing replica also invalidates
// directly. If following fails, the local cache is dropped before it resumes.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
)

// Options configures a Cache.
type Options struct {
	// MaxEntries bounds the in-process cache (catalog.cache.max_entries).
	MaxEntries int
	// TTL bounds how long a value lives without invalidation, a safety
	// net only (default 10m).
	TTL time.Duration
	// Redis is the shared cache; nil disables it.
	Redis  *redis.Client
	Logger *slog.Logger
}

// entry is a cached movie, or (m == nil) a marker left by an invalidation.
type entry struct {
	m   *movie.Movie
	rev int64
}

// Cache wraps a movie.Reader. Returned movies are shared and must not be
// modified.
type Cache struct {
	inner  movie.Reader
	local  *otter.Cache[string, entry]
	sf     singleflight.Group
	redis  *redis.Client
	ttl    time.Duration
	logger *slog.Logger
}

var _ movie.Reader = (*Cache)(nil)

const markerTTL = time.Minute

// New returns a Cache over inner.
func New(inner movie.Reader, opts Options) (*Cache, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ttl := opts.TTL
	local, err := otter.New(&otter.Options[string, entry]{
		MaximumSize: opts.MaxEntries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
			if e.Value.m == nil {
				return markerTTL
			}
			return ttl
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("building cache: %w", err)
	}
	return &Cache{inner: inner, local: local, redis: opts.Redis, ttl: ttl, logger: opts.Logger}, nil
}

// Close stops the cache's background goroutines.
func (c *Cache) Close() { c.local.StopAllGoroutines() }

// GetMovie implements movie.Reader.
func (c *Cache) GetMovie(ctx context.Context, id string) (*movie.Movie, error) {
	if e, ok := c.local.GetIfPresent(id); ok && e.m != nil {
		return e.m, nil
	}
	v, err, _ := c.sf.Do(id, func() (any, error) {
		// The caller that started the load may go away; the others still
		// want the answer.
		ctx := context.WithoutCancel(ctx)
		if m := c.redisGet(ctx, id); m != nil {
			c.storeLocal(m)
			return m, nil
		}
		m, err := c.inner.GetMovie(ctx, id)
		if err != nil {
			return nil, err
		}
		c.storeLocal(m)
		c.redisSet(ctx, m)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*movie.Movie), nil
}

// GetMovies implements movie.Reader: local hits, then one Redis MGET, then
// one database read for the rest.
func (c *Cache) GetMovies(ctx context.Context, ids []string) (map[string]*movie.Movie, error) {
	out := make(map[string]*movie.Movie, len(ids))
	var missing []string
	for _, id := range ids {
		if e, ok := c.local.GetIfPresent(id); ok && e.m != nil {
			out[id] = e.m
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	missing = c.redisGetMany(ctx, missing, out)
	if len(missing) == 0 {
		return out, nil
	}
	found, err := c.inner.GetMovies(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, m := range found {
		out[id] = m
		c.storeLocal(m)
		c.redisSet(ctx, m)
	}
	return out, nil
}

// storeLocal caches m unless a newer revision (value or marker) is there.
func (c *Cache) storeLocal(m *movie.Movie) {
	c.local.Compute(m.ID, func(old entry, found bool) (entry, otter.ComputeOp) {
		if found && old.rev > m.Revision {
			return old, otter.CancelOp
		}
		return entry{m: m, rev: m.Revision}, otter.WriteOp
	})
}

// Invalidate drops id and remembers that revision rev exists, so a load
// already in flight cannot store anything older.
func (c *Cache) Invalidate(ctx context.Context, id string, rev int64) {
	c.local.Compute(id, func(old entry, found bool) (entry, otter.ComputeOp) {
		if found && old.rev > rev {
			return old, otter.CancelOp
		}
		return entry{rev: rev}, otter.WriteOp
	})
	if c.redis != nil {
		if err := setIfNotNewer.Run(ctx, c.redis, []string{redisKey(id)}, rev, strconv.FormatInt(rev, 10)+"|",
			markerTTL.Milliseconds()).Err(); err != nil {
			c.logger.WarnContext(ctx, "invalidating movie in redis", "id", id, "error", err)
		}
	}
}

// InvalidateAll empties the local cache.
func (c *Cache) InvalidateAll() { c.local.InvalidateAll() }

// Follow invalidates from the change feed until ctx ends. On a failure it
// empties the local cache (it may have missed changes) and starts again
// from now.
func (c *Cache) Follow(ctx context.Context, f *feed.Feed) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := f.Tail(ctx, "", func(changes []feed.Change, _ string) error {
			for _, ch := range changes {
				c.Invalidate(ctx, ch.ID, ch.Revision)
			}
			backoff = time.Second
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		c.logger.WarnContext(ctx, "following the change feed; dropping the local cache", "error", err)
		c.InvalidateAll()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func redisKey(id string) string { return "marquee:catalog:movie:" + id }

// setIfNotNewer stores ARGV[2] ("<rev>|<payload>") unless the key holds a
// higher revision. A payload-less value is an invalidation marker.
var setIfNotNewer = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local r = tonumber(string.match(cur, '^(%d+)|'))
  if r and r > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

func (c *Cache) redisSet(ctx context.Context, m *movie.Movie) {
	if c.redis == nil {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	val := strconv.FormatInt(m.Revision, 10) + "|" + string(b)
	if err := setIfNotNewer.Run(ctx, c.redis, []string{redisKey(m.ID)}, m.Revision, val, c.ttl.Milliseconds()).Err(); err != nil {
		c.logger.WarnContext(ctx, "caching movie in redis", "id", m.ID, "error", err)
	}
}

func decodeRedis(s string) *movie.Movie {
	_, payload, ok := strings.Cut(s, "|")
	if !ok || payload == "" {
		return nil
	}
	var m movie.Movie
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return nil
	}
	return &m
}

func (c *Cache) redisGet(ctx context.Context, id string) *movie.Movie {
	if c.redis == nil {
		return nil
	}
	s, err := c.redis.Get(ctx, redisKey(id)).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			c.logger.WarnContext(ctx, "reading movie from redis", "id", id, "error", err)
		}
		return nil
	}
	return decodeRedis(s)
}

// redisGetMany fills out from Redis and returns the ids still missing.
func (c *Cache) redisGetMany(ctx context.Context, ids []string, out map[string]*movie.Movie) []string {
	if c.redis == nil {
		return ids
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = redisKey(id)
	}
	vals, err := c.redis.MGet(ctx, keys...).Result()
	if err != nil {
		c.logger.WarnContext(ctx, "reading movies from redis", "error", err)
		return ids
	}
	var missing []string
	for i, v := range vals {
		s, _ := v.(string)
		if m := decodeRedis(s); m != nil {
			out[ids[i]] = m
			c.storeLocal(m)
		} else {
			missing = append(missing, ids[i])
		}
	}
	return missing
}
