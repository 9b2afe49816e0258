package bleveindex

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
	"sync"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/query"
)

// The table is an in-memory column store of the fields that discovery
// filters, sorts and counts: about 100 bytes a movie. Bleve's numeric sort
// and facets visit doc values for every hit, which for discovery is the whole
// catalogue (hundreds of ms at a million movies); a scan of these columns
// costs a few ms and computes the page, the total and both facets at once.
// The inverted index still answers every text query.

// dicts intern genres and directors shared by all partitions' tables.
type dicts struct {
	mu sync.RWMutex
	// genres: canonical key -> ordinal; display holds the first spelling seen.
	genreOrd     map[string]uint16
	genreDisplay []string
	genreRaw     map[string]uint16 // as spelled in movies, to skip analysis
	// directors: id + "\x00" + canonical name -> ordinal. A rename makes a
	// new ordinal, so movies that still carry the old name keep matching it
	// until their own update arrives.
	dirOrd  map[string]int32
	dirID   []string
	dirName []string
	dirRaw  map[[2]string]int32 // (id, name as spelled), to skip analysis
}

func newDicts() *dicts {
	return &dicts{genreOrd: map[string]uint16{}, dirOrd: map[string]int32{},
		genreRaw: map[string]uint16{}, dirRaw: map[[2]string]int32{}}
}

func (d *dicts) genreCount() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.genreDisplay)
}

// genre returns the ordinal of a genre as spelled in a movie.
func (d *dicts) genre(raw string, a *analysis.Analyzer) uint16 {
	d.mu.RLock()
	o, ok := d.genreRaw[raw]
	d.mu.RUnlock()
	if ok {
		return o
	}
	key := a.Key(raw)
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok = d.genreOrd[key]
	if !ok {
		o = uint16(len(d.genreDisplay))
		d.genreOrd[key] = o
		d.genreDisplay = append(d.genreDisplay, raw)
	}
	d.genreRaw[raw] = o
	return o
}

// director returns the ordinal of a director as given in a movie.
func (d *dicts) director(id, name string, a *analysis.Analyzer) int32 {
	raw := [2]string{id, name}
	d.mu.RLock()
	o, ok := d.dirRaw[raw]
	d.mu.RUnlock()
	if ok {
		return o
	}
	nameKey := a.Key(name)
	k := id + "\x00" + nameKey
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok = d.dirOrd[k]
	if !ok {
		o = int32(len(d.dirID))
		d.dirOrd[k] = o
		d.dirID = append(d.dirID, id)
		d.dirName = append(d.dirName, nameKey)
	}
	d.dirRaw[raw] = o
	return o
}

// maxGenreBits genres fit the bit mask; rarer ones go to an overflow list.
const maxGenreBits = 64

// table holds one partition's columns. Rows are reused after deletes.
type table struct {
	mu       sync.RWMutex
	byID     map[string]int32
	id       []string
	live     []bool
	gen      []uint32
	pop      []float64
	score    []float64
	year     []int16
	genres   []uint64
	genresX  map[int32][]uint16
	titleKey []string
	title    []string
	dirs     [][]int32
	free     []int32
	// Facet counts of all live rows, kept up to date by put and remove, so
	// an unfiltered discovery does not count them row by row.
	genreCounts  []int64
	decadeCounts [40]int64
}

func newTable() *table {
	return &table{byID: map[string]int32{}, genresX: map[int32][]uint16{}}
}

// row is what put needs about a movie, computed outside the table lock.
type row struct {
	id, title, titleKey string
	pop, score          float64
	year                int16
	genres              uint64
	genresX             []uint16
	dirs                []int32
}

// makeRow computes a movie's row; titleKey is its canonical title when
// already known ("" to compute it).
func makeRow(m *catalogv1.Movie, titleKey string, a *analysis.Analyzer, d *dicts) row {
	if titleKey == "" {
		titleKey = a.Key(m.GetTitle())
	}
	r := row{
		id: m.GetId(), title: m.GetTitle(), titleKey: titleKey,
		pop: optional(m.Popularity), score: optional(m.ImdbScore), year: -1,
	}
	if m.Year != nil {
		r.year = int16(m.GetYear())
	}
	for _, g := range m.GetGenres() {
		o := d.genre(g, a)
		if o < maxGenreBits {
			r.genres |= 1 << o
		} else if !slices.Contains(r.genresX, o) {
			r.genresX = append(r.genresX, o)
		}
	}
	for _, dr := range m.GetDirectors() {
		r.dirs = append(r.dirs, d.director(dr.GetId(), dr.GetName(), a))
	}
	return r
}

// grow makes slot i exist; the caller holds mu.
func (t *table) grow(i int32) {
	for int32(len(t.id)) <= i {
		t.id = append(t.id, "")
		t.live = append(t.live, false)
		t.gen = append(t.gen, 0)
		t.pop = append(t.pop, 0)
		t.score = append(t.score, 0)
		t.year = append(t.year, 0)
		t.genres = append(t.genres, 0)
		t.titleKey = append(t.titleKey, "")
		t.title = append(t.title, "")
		t.dirs = append(t.dirs, nil)
	}
}

// reserve returns the slot for id: its current one, else a free or new one
// that stays invisible to scans until put. The slot number is indexed with
// the document, so text hits find their row without a lookup by id.
func (t *table) reserve(id string) int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.byID[id]; ok {
		return i
	}
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		return i
	}
	i := int32(len(t.id))
	t.grow(i)
	return i
}

// put stores r in slot i and returns the slot's new generation.
func (t *table) put(i int32, r row) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.grow(i)
	if t.live[i] {
		t.addFacets(i, -1)
	}
	t.byID[r.id] = i
	t.id[i], t.live[i] = r.id, true
	t.gen[i]++
	t.pop[i], t.score[i], t.year[i] = r.pop, r.score, r.year
	t.genres[i] = r.genres
	if len(r.genresX) > 0 {
		t.genresX[i] = r.genresX
	} else {
		delete(t.genresX, i)
	}
	t.titleKey[i], t.title[i] = r.titleKey, r.title
	t.dirs[i] = r.dirs
	t.addFacets(i, 1)
	return t.gen[i]
}

// addFacets adds delta to the facet counts of row i; the caller holds mu.
func (t *table) addFacets(i int32, delta int64) {
	forFacets(t, i, func(o int) {
		for len(t.genreCounts) <= o {
			t.genreCounts = append(t.genreCounts, 0)
		}
		t.genreCounts[o] += delta
	}, func(d int) { t.decadeCounts[d] += delta })
}

// forFacets calls genre for each genre ordinal of row i and decade for its
// decade index.
func forFacets(t *table, i int32, genre func(int), decade func(int)) {
	for g := t.genres[i]; g != 0; g &= g - 1 {
		genre(bits.TrailingZeros64(g))
	}
	for _, o := range t.genresX[i] {
		genre(int(o))
	}
	if y := t.year[i]; y >= decadeBase {
		if d := (int(y) - decadeBase) / 10; d < len(t.decadeCounts) {
			decade(d)
		}
	}
}

// collectFree lists the empty slots after a load.
func (t *table) collectFree() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.free = t.free[:0]
	for i := len(t.live) - 1; i >= 0; i-- {
		if !t.live[i] {
			t.free = append(t.free, int32(i))
		}
	}
}

func (t *table) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.byID[id]
	if !ok {
		return
	}
	t.addFacets(i, -1)
	delete(t.byID, id)
	delete(t.genresX, i)
	t.live[i] = false
	t.gen[i]++
	t.id[i], t.titleKey[i], t.title[i], t.dirs[i] = "", "", "", nil
	t.free = append(t.free, i)
}

func (t *table) current(i int32, gen uint32) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int(i) < len(t.live) && t.live[i] && t.gen[i]&refGenMask == gen
}

func (t *table) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byID)
}

// pred is a compiled filter over one table's rows.
type pred func(t *table, i int32) bool

// compile turns a filter into a row predicate. Director conditions are
// resolved against the dictionary once, into a set of ordinals.
func compile(e query.Expr, d *dicts) pred {
	switch x := e.(type) {
	case nil:
		return nil
	case query.And:
		ps := make([]pred, len(x))
		for i, s := range x {
			ps[i] = compile(s, d)
		}
		return func(t *table, i int32) bool {
			for _, p := range ps {
				if !p(t, i) {
					return false
				}
			}
			return true
		}
	case query.Or:
		ps := make([]pred, len(x))
		for i, s := range x {
			ps[i] = compile(s, d)
		}
		return func(t *table, i int32) bool {
			for _, p := range ps {
				if p(t, i) {
					return true
				}
			}
			return false
		}
	case query.Not:
		p := compile(x.X, d)
		return func(t *table, i int32) bool { return !p(t, i) }
	case query.Cmp:
		return compileCmp(x, d)
	}
	return func(*table, int32) bool { return false }
}

func compileCmp(c query.Cmp, d *dicts) pred {
	none := func(*table, int32) bool { return false }
	switch c.Field {
	case query.FieldGenres:
		d.mu.RLock()
		o, ok := d.genreOrd[c.Str]
		d.mu.RUnlock()
		if !ok {
			return none
		}
		if o < maxGenreBits {
			bit := uint64(1) << o
			return func(t *table, i int32) bool { return t.genres[i]&bit != 0 }
		}
		return func(t *table, i int32) bool { return slices.Contains(t.genresX[i], o) }
	case query.FieldTitle:
		v := c.Str
		if v == "" {
			return none
		}
		if c.Op == query.OpEq {
			return func(t *table, i int32) bool { return t.titleKey[i] == v }
		}
		return func(t *table, i int32) bool { return containsWords(t.titleKey[i], v) }
	case query.FieldDirectorID, query.FieldDirectorName:
		if c.Str == "" {
			return none
		}
		d.mu.RLock()
		set := make([]bool, len(d.dirID))
		for o := range d.dirID {
			switch {
			case c.Field == query.FieldDirectorID:
				set[o] = d.dirID[o] == c.Str
			case c.Op == query.OpEq:
				set[o] = d.dirName[o] == c.Str
			default:
				set[o] = containsWords(d.dirName[o], c.Str)
			}
		}
		d.mu.RUnlock()
		return func(t *table, i int32) bool {
			for _, o := range t.dirs[i] {
				if int(o) < len(set) && set[o] {
					return true
				}
			}
			return false
		}
	}
	lo, hi := query.NumericBounds(c.Op, c.Num)
	if lo > hi {
		return none
	}
	switch c.Field {
	case query.FieldYear:
		return func(t *table, i int32) bool { y := float64(t.year[i]); return y >= lo && y <= hi }
	case query.FieldImdbScore:
		return func(t *table, i int32) bool { v := t.score[i]; return v >= lo && v <= hi }
	case query.FieldPopularity:
		return func(t *table, i int32) bool { v := t.pop[i]; return v >= lo && v <= hi }
	}
	return none
}

// containsWords reports whether the canonical text s contains the canonical
// words w consecutively, as a phrase query on the analyzed field would.
func containsWords(s, w string) bool {
	for off := 0; ; {
		j := strings.Index(s[off:], w)
		if j < 0 {
			return false
		}
		j += off
		end := j + len(w)
		if (j == 0 || s[j-1] == ' ') && (end == len(s) || s[end] == ' ') {
			return true
		}
		off = j + 1
	}
}

// cmpRows orders rows by the request's keys then by id.
type cmpRows func(t *table, a, b int32) int

func orderOf(keys []query.OrderKey) cmpRows {
	return func(t *table, a, b int32) int {
		for _, k := range keys {
			var c int
			switch k.Field {
			case query.SortPopularity:
				c = cmp.Compare(t.pop[a], t.pop[b])
			case query.SortImdbScore:
				c = cmp.Compare(t.score[a], t.score[b])
			case query.SortYear:
				c = cmp.Compare(t.year[a], t.year[b])
			case query.SortTitle:
				c = strings.Compare(t.titleKey[a], t.titleKey[b])
			}
			if c != 0 {
				if k.Desc {
					return -c
				}
				return c
			}
		}
		return strings.Compare(t.id[a], t.id[b])
	}
}

// afterCursor reports whether row i comes after the cursor.
func afterCursor(keys []query.OrderKey, cur *query.Cursor) func(t *table, i int32) bool {
	return func(t *table, i int32) bool {
		for n, k := range keys {
			v := cur.Values[n]
			var c int
			switch k.Field {
			case query.SortPopularity:
				c = cmp.Compare(t.pop[i], v.Num)
			case query.SortImdbScore:
				c = cmp.Compare(t.score[i], v.Num)
			case query.SortYear:
				c = cmp.Compare(float64(t.year[i]), v.Num)
			case query.SortTitle:
				c = strings.Compare(t.titleKey[i], v.Str)
			}
			if c != 0 {
				if k.Desc {
					return c < 0
				}
				return c > 0
			}
		}
		return t.id[i] > cur.ID
	}
}

func cursorOf(keys []query.OrderKey, t *table, i int32) *query.Cursor {
	c := &query.Cursor{ID: t.id[i], Values: make([]query.Value, len(keys))}
	for n, k := range keys {
		switch k.Field {
		case query.SortPopularity:
			c.Values[n].Num = t.pop[i]
		case query.SortImdbScore:
			c.Values[n].Num = t.score[i]
		case query.SortYear:
			c.Values[n].Num = float64(t.year[i])
		case query.SortTitle:
			c.Values[n].Str = t.titleKey[i]
		}
	}
	return c
}

// decadeBase is the first decade counted (the catalog starts at 1870).
const decadeBase = 1800

// cand is a matching row and its text score (0 in discovery).
type cand struct {
	row   int32
	score float64
}

// collector accumulates one table's share of a search: the total, both
// facets, and the best k candidates after the cursor. Discovery feeds it
// every row; a text search feeds it the rows of its hits. The caller holds
// the table's read lock.
type collector struct {
	t         *table
	pred      pred
	keys      []query.OrderKey
	order     cmpRows
	relevance bool
	isAfter   func(*table, int32) bool
	k         int

	total   int64
	after   int64
	genres  []int64 // by genre ordinal
	decades []int64 // by (year-decadeBase)/10
	heap    []cand
	top     []*hitRow

	// noFacets: the caller takes the facets from the table's running counts.
	noFacets bool
	// For one numeric key, col is its column and bound the value of the
	// heap's worst row once the heap is full: rows strictly worse are
	// skipped with one comparison.
	col   []float64
	desc  bool
	bound float64
	full  bool
}

func newCollector(t *table, p pred, r *query.Request, k, nGenres int) *collector {
	c := &collector{t: t, pred: p, keys: r.Order, order: orderOf(r.Order), relevance: r.Relevance, k: k,
		genres: make([]int64, nGenres+1), decades: make([]int64, 40)}
	if r.After != nil && !r.Relevance {
		c.isAfter = afterCursor(r.Order, r.After)
	}
	if !r.Relevance && len(r.Order) == 1 {
		switch r.Order[0].Field {
		case query.SortPopularity:
			c.col = t.pop
		case query.SortImdbScore:
			c.col = t.score
		}
		c.desc = r.Order[0].Desc
	}
	return c
}

// compare orders candidates: by score, then popularity, then id for
// relevance; by the order keys then id otherwise.
func (c *collector) compare(a, b cand) int {
	t := c.t
	if c.relevance {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		if p := cmp.Compare(t.pop[b.row], t.pop[a.row]); p != 0 {
			return p
		}
		return strings.Compare(t.id[a.row], t.id[b.row])
	}
	return c.order(t, a.row, b.row)
}

// add offers row i with its score.
func (c *collector) add(i int32, score float64) {
	t := c.t
	if int(i) >= len(t.live) || !t.live[i] || (c.pred != nil && !c.pred(t, i)) {
		return
	}
	c.total++
	if !c.noFacets {
		// Inline rather than forFacets: this runs for every matching row.
		for g := t.genres[i]; g != 0; g &= g - 1 {
			if o := bits.TrailingZeros64(g); o < len(c.genres) {
				c.genres[o]++
			}
		}
		if len(t.genresX) > 0 {
			for _, o := range t.genresX[i] {
				if int(o) < len(c.genres) {
					c.genres[o]++
				}
			}
		}
		if y := t.year[i]; y >= decadeBase {
			if d := (int(y) - decadeBase) / 10; d < len(c.decades) {
				c.decades[d]++
			}
		}
	}
	if c.isAfter != nil && !c.isAfter(t, i) {
		return
	}
	c.after++
	if c.k == 0 {
		return
	}
	if c.full && c.col != nil {
		if v := c.col[i]; (c.desc && v < c.bound) || (!c.desc && v > c.bound) {
			return
		}
	}
	x := cand{row: i, score: score}
	// A heap on "worse": the root is the worst of the best k so far.
	h := c.heap
	if len(h) < c.k {
		h = append(h, x)
		for j := len(h) - 1; j > 0; {
			p := (j - 1) / 2
			if c.compare(h[j], h[p]) <= 0 {
				break
			}
			h[j], h[p] = h[p], h[j]
			j = p
		}
		c.heap = h
		c.setBound()
		return
	}
	if c.compare(x, h[0]) >= 0 {
		return
	}
	h[0] = x
	for j := 0; ; {
		l, r, w := 2*j+1, 2*j+2, j
		if l < len(h) && c.compare(h[l], h[w]) > 0 {
			w = l
		}
		if r < len(h) && c.compare(h[r], h[w]) > 0 {
			w = r
		}
		if w == j {
			break
		}
		h[j], h[w] = h[w], h[j]
		j = w
	}
	c.setBound()
}

func (c *collector) setBound() {
	if c.col != nil && len(c.heap) == c.k {
		c.full, c.bound = true, c.col[c.heap[0].row]
	}
}

// finish copies the candidates out of the table, best first.
func (c *collector) finish() {
	slices.SortFunc(c.heap, c.compare)
	c.top = make([]*hitRow, len(c.heap))
	for n, x := range c.heap {
		h := &hitRow{id: c.t.id[x.row], score: x.score, pop: c.t.pop[x.row]}
		if !c.relevance {
			h.cursor = cursorOf(c.keys, c.t, x.row)
		}
		c.top[n] = h
	}
	c.heap = nil
}

// hitRow is a row copied out of its table for the merge.
type hitRow struct {
	id     string
	score  float64
	pop    float64
	cursor *query.Cursor
}

// scan runs discovery over the whole table.
func (t *table) scan(p pred, r *query.Request, k, nGenres int) *collector {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := newCollector(t, p, r, k, nGenres)
	if p == nil {
		// Every live row matches: the facets are the running counts.
		c.noFacets = true
		copy(c.genres, t.genreCounts)
		copy(c.decades, t.decadeCounts[:])
	}
	for i := int32(0); i < int32(len(t.id)); i++ {
		c.add(i, 0)
	}
	c.finish()
	return c
}

// compareHits orders hits from different tables like collector.compare.
func compareHits(r *query.Request, a, b *hitRow) int {
	if r.Relevance {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		if p := cmp.Compare(b.pop, a.pop); p != 0 {
			return p
		}
		return strings.Compare(a.id, b.id)
	}
	return compareCursors(r.Order, a.cursor, b.cursor)
}

// compareCursors orders two rows from different tables by their cursors.
func compareCursors(keys []query.OrderKey, a, b *query.Cursor) int {
	for n, k := range keys {
		var c int
		if k.Field == query.SortTitle {
			c = strings.Compare(a.Values[n].Str, b.Values[n].Str)
		} else {
			c = cmp.Compare(a.Values[n].Num, b.Values[n].Num)
		}
		if c != 0 {
			if k.Desc {
				return -c
			}
			return c
		}
	}
	return strings.Compare(a.ID, b.ID)
}

// facetCounts turns counts into facet values: genres most common first
// (then by name), decades most recent first.
func facetCounts(d *dicts, genres, decades []int64) (gs, ds []index.FacetCount) {
	d.mu.RLock()
	for o, n := range genres {
		if n > 0 && o < len(d.genreDisplay) {
			gs = append(gs, index.FacetCount{Value: d.genreDisplay[o], Count: n})
		}
	}
	d.mu.RUnlock()
	sortGenreFacets(gs)
	for i := len(decades) - 1; i >= 0; i-- {
		if decades[i] > 0 {
			ds = append(ds, index.FacetCount{Value: decadeLabel(int32(decadeBase + 10*i)), Count: decades[i]})
		}
	}
	return gs, ds
}

// maxGenreFacets bounds the genre facet list.
const maxGenreFacets = 100

func sortGenreFacets(gs []index.FacetCount) {
	slices.SortFunc(gs, func(a, b index.FacetCount) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Value, b.Value)
	})
}
