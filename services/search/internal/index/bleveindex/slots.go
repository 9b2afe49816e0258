package bleveindex

import (
	"fmt"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	bleveindexapi "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"

	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// slotCache maps the documents of each immutable Bleve segment to their
// table slots. Reading the row doc value for every hit costs about half of
// a broad text search (a chunk lookup and decode per hit); segments never
// change, so their slots are read once, into 4 bytes a document, and a hit
// then costs an array lookup.
type slotCache struct {
	mu   sync.Mutex
	segs map[segment.Segment][]int32
}

func newSlotCache() *slotCache { return &slotCache{segs: map[segment.Segment][]int32{}} }

// forSnapshot returns, for each segment of snap, its slots and the global
// number of its first document, and forgets segments no longer in use.
func (c *slotCache) forSnapshot(snap *scorch.IndexSnapshot) (slots [][]int32, offsets []uint64, err error) {
	segs := snap.Segments()
	slots = make([][]int32, len(segs))
	offsets = make([]uint64, len(segs))
	var running uint64
	live := make(map[segment.Segment]bool, len(segs))
	for i, ss := range segs {
		seg := ss.Segment()
		live[seg] = true
		offsets[i] = running
		running += seg.Count() // scorch numbers documents across segments this way
		if slots[i], err = c.get(seg); err != nil {
			return nil, nil, err
		}
	}
	c.mu.Lock()
	if len(c.segs) > 2*len(live)+8 {
		for s := range c.segs {
			if !live[s] {
				delete(c.segs, s)
			}
		}
	}
	c.mu.Unlock()
	return slots, offsets, nil
}

func (c *slotCache) get(seg segment.Segment) ([]int32, error) {
	c.mu.Lock()
	s, ok := c.segs[seg]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	dvv, ok := seg.(segment.DocValueVisitable)
	if !ok {
		return nil, fmt.Errorf("segment type %T has no doc values", seg)
	}
	n := seg.Count()
	s = make([]int32, n)
	fields := []string{query.FieldRow}
	var state segment.DocVisitState
	for local := uint64(0); local < n; local++ {
		slot := int32(-1)
		var err error
		state, err = dvv.VisitDocValues(local, fields, func(_ string, term []byte) {
			if v, ok := termRow(term); ok {
				slot = v
			}
		}, state)
		if err != nil {
			return nil, fmt.Errorf("reading slots: %w", err)
		}
		s[local] = slot
	}
	c.mu.Lock()
	c.segs[seg] = s
	c.mu.Unlock()
	return s, nil
}

// slotLookup finds the slot of a hit; hits come in increasing document
// order, so the current segment only moves forward.
type slotLookup struct {
	slots   [][]int32
	offsets []uint64
	seg     int
}

func (l *slotLookup) slot(id bleveindexapi.IndexInternalID) (int32, bool) {
	num := id.Value()
	if len(l.offsets) == 0 {
		return 0, false
	}
	if num < l.offsets[l.seg] {
		l.seg = 0
	}
	for l.seg+1 < len(l.offsets) && num >= l.offsets[l.seg+1] {
		l.seg++
	}
	local := num - l.offsets[l.seg]
	s := l.slots[l.seg]
	if local >= uint64(len(s)) || s[local] < 0 {
		return 0, false
	}
	return s[local], true
}
