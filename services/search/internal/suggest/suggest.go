// Package suggest completes title prefixes, most popular first, fast enough
// for a search box (well under 10 ms at a million titles).
//
// A Snapshot is an array of entries sorted by canonical title, cut into
// blocks that each keep their entries' indexes ordered by popularity. A
// prefix is a contiguous range of the array; its best entries come from a
// k-way merge of the popularity lists of the blocks the range covers, plus
// the ragged ends, so a lookup costs O(blocks + limit * log blocks) however
// many titles share the prefix. Snapshots are immutable and rebuilt in the
// background; writes made since the last rebuild sit in a small overlay that
// is scanned linearly, and entries that have since been deleted or renamed
// are skipped through a validity check, so completions follow writes at once.
package suggest

import (
	"cmp"
	"container/heap"
	"slices"
	"sort"
	"strings"
	"sync"
)

// blockSize shapes the snapshot: each block keeps the order of all
// its entries by popularity, and lookups merge those lists.
const blockSize = 256

// Entry is one completable title of one movie.
type Entry struct {
	// Key is the canonical title text that prefixes are matched against.
	Key string
	// Ref lets the owner of the data tell whether the entry is still current.
	Ref        uint64
	ID         string
	Title      string
	Year       int32
	Popularity float64
}

// better orders entries for output: more popular first, then by key and id
// so that the order is total and stable.
func better(a, b *Entry) bool {
	if a.Popularity != b.Popularity {
		return a.Popularity > b.Popularity
	}
	if a.Key != b.Key {
		return a.Key < b.Key
	}
	return a.ID < b.ID
}

// Snapshot is an immutable completion structure.
type Snapshot struct {
	entries []Entry
	// byPop[b] lists the indexes of block b's entries, best first.
	byPop [][]int32
}

// Build makes a snapshot of entries (which it sorts in place and keeps).
func Build(entries []Entry) *Snapshot {
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if better(&a, &b) {
			return -1
		}
		if better(&b, &a) {
			return 1
		}
		return 0
	})
	nb := (len(entries) + blockSize - 1) / blockSize
	s := &Snapshot{entries: entries, byPop: make([][]int32, nb)}
	idx := make([]int32, len(entries))
	for i := range idx {
		idx[i] = int32(i)
	}
	for b := 0; b < nb; b++ {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(entries))
		list := idx[lo:hi]
		slices.SortFunc(list, func(x, y int32) int { return s.compare(x, y) })
		s.byPop[b] = list
	}
	return s
}

func (s *Snapshot) compare(x, y int32) int {
	switch {
	case better(&s.entries[x], &s.entries[y]):
		return -1
	case better(&s.entries[y], &s.entries[x]):
		return 1
	}
	return 0
}

// Len returns the number of entries.
func (s *Snapshot) Len() int { return len(s.entries) }

// prefixRange returns the entries whose key starts with p.
func (s *Snapshot) prefixRange(p string) (lo, hi int) {
	n := len(s.entries)
	lo = sort.Search(n, func(i int) bool { return s.entries[i].Key >= p })
	hi = lo + sort.Search(n-lo, func(i int) bool { return !strings.HasPrefix(s.entries[lo+i].Key, p) })
	return lo, hi
}

// cursor walks one list of entry indexes, best first.
type cursor struct {
	list []int32
	pos  int
}

type cursorHeap struct {
	s  *Snapshot
	cs []cursor
}

func (h *cursorHeap) Len() int { return len(h.cs) }
func (h *cursorHeap) Less(i, j int) bool {
	return better(&h.s.entries[h.cs[i].list[h.cs[i].pos]], &h.s.entries[h.cs[j].list[h.cs[j].pos]])
}
func (h *cursorHeap) Swap(i, j int) { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *cursorHeap) Push(x any)    { h.cs = append(h.cs, x.(cursor)) }
func (h *cursorHeap) Pop() any {
	c := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return c
}

// Lookup returns up to limit current entries whose key starts with prefix,
// best first, at most one per movie id. seen, when not nil, holds ids to skip
// and receives the ids returned.
func (s *Snapshot) Lookup(prefix string, limit int, valid func(uint64) bool, seen map[string]bool) []Entry {
	if s == nil || limit <= 0 {
		return nil
	}
	lo, hi := s.prefixRange(prefix)
	if lo >= hi {
		return nil
	}
	if seen == nil {
		seen = make(map[string]bool, limit)
	}
	h := &cursorHeap{s: s}
	// The ragged ends are sorted on the spot; whole blocks use their lists.
	partial := func(a, b int) {
		if a >= b {
			return
		}
		list := make([]int32, 0, b-a)
		for i := a; i < b; i++ {
			list = append(list, int32(i))
		}
		slices.SortFunc(list, func(x, y int32) int { return s.compare(x, y) })
		h.cs = append(h.cs, cursor{list: list})
	}
	bl, bh := lo/blockSize, (hi-1)/blockSize
	if bl == bh {
		partial(lo, hi)
	} else {
		firstFull, lastFull := bl, bh
		if lo%blockSize != 0 {
			partial(lo, (bl+1)*blockSize)
			firstFull++
		}
		// A short last block of the array is whole when the range reaches it.
		if hi%blockSize != 0 && hi != len(s.entries) {
			partial(bh*blockSize, hi)
			lastFull--
		}
		for b := firstFull; b <= lastFull; b++ {
			h.cs = append(h.cs, cursor{list: s.byPop[b]})
		}
	}
	heap.Init(h)
	out := make([]Entry, 0, limit)
	for h.Len() > 0 && len(out) < limit {
		c := &h.cs[0]
		e := &s.entries[c.list[c.pos]]
		if !seen[e.ID] && (valid == nil || valid(e.Ref)) {
			seen[e.ID] = true
			out = append(out, *e)
		}
		c.pos++
		if c.pos == len(c.list) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	return out
}

// Suggester serves lookups from the current snapshot plus the entries
// written since it was built. It is safe for concurrent use.
type Suggester struct {
	mu    sync.RWMutex
	snap  *Snapshot
	delta []deltaEntry
	seq   uint64
}

type deltaEntry struct {
	Entry
	seq uint64
}

// New returns an empty Suggester.
func New() *Suggester { return &Suggester{} }

// Add records entries written after the current snapshot was taken.
func (s *Suggester) Add(es ...Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.seq++
		s.delta = append(s.delta, deltaEntry{Entry: e, seq: s.seq})
	}
}

// Seq returns the sequence number of the last Add; a snapshot built from
// data read after this call covers every entry added up to it.
func (s *Suggester) Seq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Pending returns the number of entries added since the current snapshot.
func (s *Suggester) Pending() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.delta)
}

// Install replaces the snapshot with snap, which covers every entry added up
// to sequence number upTo.
func (s *Suggester) Install(snap *Snapshot, upTo uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
	kept := s.delta[:0]
	for _, d := range s.delta {
		if d.seq > upTo {
			kept = append(kept, d)
		}
	}
	clear(s.delta[len(kept):])
	s.delta = kept
}

// Lookup returns up to limit completions of prefix (already canonical),
// best first, one per movie, skipping entries for which valid is false.
func (s *Suggester) Lookup(prefix string, limit int, valid func(uint64) bool) []Entry {
	s.mu.RLock()
	snap := s.snap
	var fresh []Entry
	for i := range s.delta {
		if strings.HasPrefix(s.delta[i].Key, prefix) {
			fresh = append(fresh, s.delta[i].Entry)
		}
	}
	s.mu.RUnlock()
	seen := map[string]bool{}
	// Newer entries of a movie replace older ones, so the overlay goes first
	// when it comes to de-duplication, but the output is merged by rank.
	slices.SortFunc(fresh, func(a, b Entry) int {
		if better(&a, &b) {
			return -1
		}
		if better(&b, &a) {
			return 1
		}
		return 0
	})
	var top []Entry
	for _, e := range fresh {
		if len(top) == limit {
			break
		}
		if !seen[e.ID] && (valid == nil || valid(e.Ref)) {
			seen[e.ID] = true
			top = append(top, e)
		}
	}
	top = append(top, snap.Lookup(prefix, limit, valid, seen)...)
	slices.SortStableFunc(top, func(a, b Entry) int {
		return cmp.Compare(b.Popularity, a.Popularity)
	})
	if len(top) > limit {
		top = top[:limit]
	}
	return top
}
