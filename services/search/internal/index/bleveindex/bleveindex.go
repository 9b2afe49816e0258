// Package bleveindex is the one-machine implementation of index.Index: the
// catalogue split into N Bleve partitions (by a hash of the movie id) that
// are searched in parallel, so one replica uses all its cores, plus an
// in-memory column table per partition for discovery (filter, sort, facets
// without text) and a completion structure for title suggestions.
//
// On disk, dir holds generations: dir/CURRENT names the live one
// (dir/gen-<n>), which holds meta.json, one Bleve index per partition
// (p0, p1, ...) and the change-feed checkpoint. A rebuild writes a new
// generation beside the live one and switches CURRENT when it is complete.
package bleveindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	bleveindexapi "github.com/blevesearch/bleve_index_api"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/query"
	"github.com/marquee-dev/marquee/services/search/internal/suggest"
)

var _ index.Index = (*Index)(nil)

// Options configure an Index.
type Options struct {
	// Dir is the index directory.
	Dir string
	// Partitions is the number of partitions of a new index; 0 means one per
	// CPU. An existing index keeps the number it was built with.
	Partitions int
	// Logger receives progress and errors of background work.
	Logger *slog.Logger
	// SuggestInterval is how often the completion structure is rebuilt when
	// titles have changed (default 2s); rebuilds also wait for at least four
	// times the last rebuild's duration, so a large index spends at most a
	// fifth of one core on them. Changes are visible at once regardless.
	SuggestInterval time.Duration
	// Fresh ignores an existing index and starts empty (for a rebuild, which
	// must work even when the existing index cannot be opened); the old
	// generation is deleted once the new one is live.
	Fresh bool
	// BuildBatchSize is the number of documents per segment when building
	// offline (default 50,000: at most ten segments per partition of a
	// million movies, merged in a single pass).
	BuildBatchSize int
}

// Index is a partitioned Bleve index. It is safe for concurrent use; Apply
// and Replace are serialised internally.
type Index struct {
	opts     Options
	log      *slog.Logger
	analyzer *analysis.Analyzer
	docs     *docMaker

	writeMu sync.Mutex // serialises Apply and Replace

	mu     sync.RWMutex // guards cur; searches hold it for reading
	cur    *generation
	closed bool

	stop chan struct{}
	done chan struct{}
}

type generation struct {
	dir   string
	parts []*partition
	dicts *dicts
	sugg  *suggest.Suggester
	// checkpoint is the stored feed position: Apply writes it (under
	// writeMu) while searches and Checkpoint read it (under mu's read lock).
	checkpoint atomic.Pointer[string]

	suggestMu   sync.Mutex // one rebuild at a time
	lastBuild   time.Time
	lastBuildIn time.Duration
}

type partition struct {
	idx   bleve.Index
	tbl   *table
	slots *slotCache
}

type meta struct {
	Format     int `json:"format"`
	Partitions int `json:"partitions"`
}

const (
	formatVersion  = 1
	currentFile    = "CURRENT"
	metaFile       = "meta.json"
	checkpointFile = "checkpoint"
)

// Open opens the index in opts.Dir, creating an empty one if there is none.
func Open(ctx context.Context, opts Options) (*Index, error) {
	if opts.Dir == "" {
		return nil, errors.New("index directory not set")
	}
	if opts.Partitions <= 0 {
		opts.Partitions = runtime.NumCPU()
	}
	if opts.Partitions > 255 {
		return nil, errors.New("at most 255 partitions")
	}
	if opts.SuggestInterval <= 0 {
		opts.SuggestInterval = 2 * time.Second
	}
	if opts.BuildBatchSize <= 0 {
		opts.BuildBatchSize = 50000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	analysis.Register()
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating index directory: %w", err)
	}
	x := &Index{opts: opts, log: opts.Logger, analyzer: analysis.NewAnalyzer(),
		stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if x.docs, err = newDocMaker(newMapping(), x.analyzer); err != nil {
		return nil, err
	}
	name, err := os.ReadFile(filepath.Join(opts.Dir, currentFile))
	if opts.Fresh {
		err = os.ErrNotExist
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		g, err := x.createEmpty()
		if err != nil {
			return nil, err
		}
		x.cur = g
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", currentFile, err)
	default:
		g, err := x.openGeneration(ctx, filepath.Join(opts.Dir, strings.TrimSpace(string(name))))
		if err != nil {
			return nil, err
		}
		x.cur = g
	}
	x.removeStale()
	go x.suggestLoop()
	return x, nil
}

func newGenerationDir(root string) string {
	return filepath.Join(root, "gen-"+strconv.FormatInt(time.Now().UnixNano(), 10))
}

// createEmpty makes and activates an empty generation.
func (x *Index) createEmpty() (*generation, error) {
	dir := newGenerationDir(x.opts.Dir)
	if err := writeMeta(dir, x.opts.Partitions); err != nil {
		return nil, err
	}
	g := &generation{dir: dir, dicts: newDicts(), sugg: suggest.New()}
	for p := 0; p < x.opts.Partitions; p++ {
		idx, err := bleve.New(partitionDir(dir, p), newMapping())
		if err != nil {
			g.close()
			return nil, fmt.Errorf("creating partition %d: %w", p, err)
		}
		g.parts = append(g.parts, &partition{idx: idx, tbl: newTable(), slots: newSlotCache()})
	}
	g.sugg.Install(suggest.Build(nil), 0)
	if err := writeFileAtomic(filepath.Join(x.opts.Dir, currentFile), []byte(filepath.Base(dir))); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func partitionDir(gen string, p int) string { return filepath.Join(gen, "p"+strconv.Itoa(p)) }

func writeMeta(dir string, partitions int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	b, _ := json.Marshal(meta{Format: formatVersion, Partitions: partitions})
	return writeFileAtomic(filepath.Join(dir, metaFile), b)
}

// openGeneration opens a generation and loads its tables and completions.
func (x *Index) openGeneration(ctx context.Context, dir string) (*generation, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("reading index metadata: %w", err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil || m.Partitions <= 0 || m.Partitions > 255 {
		return nil, fmt.Errorf("index metadata in %s is corrupt", dir)
	}
	if m.Format != formatVersion {
		return nil, fmt.Errorf("index in %s has format %d, this build reads %d: rebuild it", dir, m.Format, formatVersion)
	}
	if m.Partitions != x.opts.Partitions {
		x.log.Info("index keeps the partition count it was built with", "partitions", m.Partitions, "configured", x.opts.Partitions)
	}
	g := &generation{dir: dir, dicts: newDicts(), sugg: suggest.New()}
	for p := 0; p < m.Partitions; p++ {
		idx, err := bleve.Open(partitionDir(dir, p))
		if err != nil {
			g.close()
			return nil, fmt.Errorf("opening partition %d: %w", p, err)
		}
		g.parts = append(g.parts, &partition{idx: idx, tbl: newTable(), slots: newSlotCache()})
	}
	cp, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		g.close()
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	cps := string(cp)
	g.checkpoint.Store(&cps)
	start := time.Now()
	if err := x.loadTables(ctx, g); err != nil {
		g.close()
		return nil, err
	}
	x.rebuildSuggest(g)
	x.log.Info("index opened", "dir", dir, "partitions", len(g.parts), "movies", g.count(), "load_time", time.Since(start).String())
	return g, nil
}

// loadTables fills the column tables from the stored movies, one goroutine
// per partition.
func (x *Index) loadTables(ctx context.Context, g *generation) error {
	errs := make([]error, len(g.parts))
	var wg sync.WaitGroup
	for i, p := range g.parts {
		wg.Go(func() { errs[i] = x.loadTable(ctx, g, p) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (x *Index) loadTable(ctx context.Context, g *generation, p *partition) error {
	adv, err := p.idx.Advanced()
	if err != nil {
		return fmt.Errorf("opening partition reader: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return fmt.Errorf("opening partition reader: %w", err)
	}
	defer func() { _ = r.Close() }()
	ids, err := r.DocIDReaderAll()
	if err != nil {
		return fmt.Errorf("listing documents: %w", err)
	}
	defer func() { _ = ids.Close() }()
	dv, err := r.DocValueReader([]string{query.FieldRow})
	if err != nil {
		return fmt.Errorf("reading document slots: %w", err)
	}
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		iid, err := ids.Next()
		if err != nil {
			return fmt.Errorf("listing documents: %w", err)
		}
		if iid == nil {
			p.tbl.collectFree()
			return nil
		}
		ext, err := r.ExternalID(iid)
		if err != nil {
			return fmt.Errorf("reading document id: %w", err)
		}
		slot, found := int32(0), false
		if err := dv.VisitDocValues(iid, func(_ string, term []byte) { slot, found = termRow(term) }); err != nil {
			return fmt.Errorf("reading the slot of %s: %w", ext, err)
		}
		if !found {
			return fmt.Errorf("document %s has no table slot; rebuild the index", ext)
		}
		m, titleKey, err := loadMovie(r, ext)
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		p.tbl.put(slot, makeRow(m, titleKey, x.analyzer, g.dicts))
	}
}

// loadMovie reads a stored movie and its stored canonical title; nil when
// the document is gone.
func loadMovie(r bleveindexapi.IndexReader, id string) (*catalogv1.Movie, string, error) {
	doc, err := r.Document(id)
	if err != nil {
		return nil, "", fmt.Errorf("reading document %s: %w", id, err)
	}
	if doc == nil {
		return nil, "", nil
	}
	var key string
	doc.VisitFields(func(f bleveindexapi.Field) {
		if f.Name() == query.FieldTitleKey {
			key = string(f.Value())
		}
	})
	m, err := storedMovie(id, doc)
	return m, key, err
}

// storedMovie decodes the movie stored in a document.
func storedMovie(id string, doc bleveindexapi.Document) (*catalogv1.Movie, error) {
	var src []byte
	doc.VisitFields(func(f bleveindexapi.Field) {
		if f.Name() == query.FieldSource {
			src = f.Value()
		}
	})
	if src == nil {
		return nil, fmt.Errorf("movie %s has no stored source", id)
	}
	m := &catalogv1.Movie{}
	if err := proto.Unmarshal(src, m); err != nil {
		return nil, fmt.Errorf("decoding movie %s: %w", id, err)
	}
	return m, nil
}

func (g *generation) count() int64 {
	var n int64
	for _, p := range g.parts {
		n += int64(p.tbl.count())
	}
	return n
}

func (g *generation) close() {
	for _, p := range g.parts {
		_ = p.idx.Close()
	}
}

// partitionOf routes an id to its partition.
func partitionOf(id string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// A suggestion's Ref packs partition, row and the row's generation so a
// stale entry (deleted or changed movie) can be recognised and skipped.
const refGenMask = 1<<24 - 1

func makeRef(part int, row int32, gen uint32) uint64 {
	return uint64(part)<<56 | uint64(uint32(row))<<24 | uint64(gen&refGenMask)
}

func (g *generation) valid(ref uint64) bool {
	part := int(ref >> 56)
	row := int32(uint32(ref >> 24))
	if part >= len(g.parts) {
		return false
	}
	return g.parts[part].tbl.current(row, uint32(ref&refGenMask))
}

// leadingArticles are skipped for a second completion entry, so "godf"
// completes "The Godfather".
var leadingArticles = []string{"the ", "a ", "an "}

func suggestEntries(key string, ref uint64, id, title string, year int16, pop float64, out []suggest.Entry) []suggest.Entry {
	e := suggest.Entry{Key: key, Ref: ref, ID: id, Title: title, Popularity: pop}
	if year > 0 {
		e.Year = int32(year)
	}
	out = append(out, e)
	for _, a := range leadingArticles {
		if rest, ok := strings.CutPrefix(key, a); ok && rest != "" {
			e.Key = rest
			out = append(out, e)
			break
		}
	}
	return out
}

// rebuildSuggest rebuilds g's completion snapshot from its tables.
func (x *Index) rebuildSuggest(g *generation) {
	g.suggestMu.Lock()
	defer g.suggestMu.Unlock()
	start := time.Now()
	seq := g.sugg.Seq()
	var entries []suggest.Entry
	for pi, p := range g.parts {
		t := p.tbl
		t.mu.RLock()
		for i := range t.id {
			if t.live[i] {
				entries = suggestEntries(t.titleKey[i], makeRef(pi, int32(i), t.gen[i]), t.id[i], t.title[i], t.year[i], t.pop[i], entries)
			}
		}
		t.mu.RUnlock()
	}
	g.sugg.Install(suggest.Build(entries), seq)
	g.lastBuild, g.lastBuildIn = time.Now(), time.Since(start)
}

func (x *Index) suggestLoop() {
	defer close(x.done)
	t := time.NewTicker(x.opts.SuggestInterval)
	defer t.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-t.C:
		}
		x.mu.RLock()
		g := x.cur
		x.mu.RUnlock()
		if g == nil || g.sugg.Pending() == 0 || time.Since(g.lastBuild) < 4*g.lastBuildIn {
			continue
		}
		x.rebuildSuggest(g)
	}
}

// acquire returns the live generation with the read lock held.
func (x *Index) acquire() (*generation, func(), error) {
	x.mu.RLock()
	if x.closed {
		x.mu.RUnlock()
		return nil, nil, index.ErrClosed
	}
	return x.cur, x.mu.RUnlock, nil
}

// Count returns the number of movies indexed.
func (x *Index) Count() int64 {
	g, release, err := x.acquire()
	if err != nil {
		return 0
	}
	defer release()
	return g.count()
}

// Checkpoint returns the stored change-feed position.
func (x *Index) Checkpoint(context.Context) (string, error) {
	g, release, err := x.acquire()
	if err != nil {
		return "", err
	}
	defer release()
	return g.loadCheckpoint(), nil
}

// Apply indexes upserts, removes deletes and stores the checkpoint. Bleve
// batches on a persistent index return once persisted, so the checkpoint
// file is written only after the changes it follows are durable.
func (x *Index) Apply(ctx context.Context, c index.Changes) error {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	g, release, err := x.acquire()
	if err != nil {
		return err
	}
	defer release()
	n := len(g.parts)
	type work struct {
		ups  []*catalogv1.Movie
		dels []string
	}
	ws := make([]work, n)
	for _, m := range c.Upserts {
		p := partitionOf(m.GetId(), n)
		ws[p].ups = append(ws[p].ups, m)
	}
	for _, id := range c.Deletes {
		p := partitionOf(id, n)
		ws[p].dels = append(ws[p].dels, id)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for p := range ws {
		if len(ws[p].ups) == 0 && len(ws[p].dels) == 0 {
			continue
		}
		wg.Go(func() {
			part := g.parts[p]
			b := part.idx.NewBatch()
			slots := make([]int32, len(ws[p].ups))
			for i, m := range ws[p].ups {
				slots[i] = part.tbl.reserve(m.GetId())
				d, err := x.docs.document(m, slots[i])
				if err == nil {
					err = b.IndexAdvanced(d)
				}
				if err != nil {
					errs[p] = fmt.Errorf("indexing movie %s: %w", m.GetId(), err)
					return
				}
			}
			for _, id := range ws[p].dels {
				b.Delete(id)
			}
			if err := part.idx.Batch(b); err != nil {
				errs[p] = fmt.Errorf("writing partition %d: %w", p, err)
				return
			}
			var entries []suggest.Entry
			for i, m := range ws[p].ups {
				r := makeRow(m, "", x.analyzer, g.dicts)
				gen := part.tbl.put(slots[i], r)
				entries = suggestEntries(r.titleKey, makeRef(p, slots[i], gen), r.id, r.title, r.year, r.pop, entries)
			}
			for _, id := range ws[p].dels {
				part.tbl.remove(id)
			}
			g.sugg.Add(entries...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.Checkpoint != "" && c.Checkpoint != g.loadCheckpoint() {
		if err := writeFileAtomic(filepath.Join(g.dir, checkpointFile), []byte(c.Checkpoint)); err != nil {
			return fmt.Errorf("storing checkpoint: %w", err)
		}
		cp := c.Checkpoint
		g.checkpoint.Store(&cp)
	}
	return nil
}

// Replace builds a new generation from src and swaps it in.
func (x *Index) Replace(ctx context.Context, src index.Source) error {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	x.mu.RLock()
	parts := len(x.cur.parts)
	x.mu.RUnlock()
	if parts != x.opts.Partitions {
		parts = x.opts.Partitions // a rebuild adopts the configured count
	}
	dir := newGenerationDir(x.opts.Dir)
	start := time.Now()
	count, checkpoint, err := Build(ctx, BuildOptions{Dir: dir, Partitions: parts, BatchSize: x.opts.BuildBatchSize, Logger: x.log}, src)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	g, err := x.openGeneration(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	if err := writeFileAtomic(filepath.Join(x.opts.Dir, currentFile), []byte(filepath.Base(dir))); err != nil {
		g.close()
		_ = os.RemoveAll(dir)
		return err
	}
	x.mu.Lock()
	old := x.cur
	x.cur = g
	x.mu.Unlock()
	old.close()
	if err := os.RemoveAll(old.dir); err != nil {
		x.log.Warn("removing the previous index generation", "dir", old.dir, "error", err)
	}
	x.log.Info("index rebuilt", "movies", count, "checkpoint_set", checkpoint != "", "took", time.Since(start).String())
	return nil
}

// removeStale deletes generation directories other than the live one, left
// behind by an interrupted rebuild.
func (x *Index) removeStale() {
	entries, err := os.ReadDir(x.opts.Dir)
	if err != nil {
		return
	}
	live := filepath.Base(x.cur.dir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "gen-") && e.Name() != live {
			_ = os.RemoveAll(filepath.Join(x.opts.Dir, e.Name()))
		}
	}
}

// Close stops background work and closes the partitions.
func (x *Index) Close() error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	g := x.cur
	x.mu.Unlock()
	close(x.stop)
	<-x.done
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	var errs []error
	for _, p := range g.parts {
		errs = append(errs, p.idx.Close())
	}
	return errors.Join(errs...)
}

// writeFileAtomic replaces path with data: a temporary file, fsync, rename,
// then fsync of the directory so the rename itself survives a crash.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func (g *generation) loadCheckpoint() string {
	if p := g.checkpoint.Load(); p != nil {
		return *p
	}
	return ""
}
