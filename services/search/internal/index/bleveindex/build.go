package bleveindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/analysis"
	"github.com/marquee-dev/marquee/services/search/internal/index"
)

// BuildOptions configure an offline build.
type BuildOptions struct {
	// Dir is the generation directory to create.
	Dir        string
	Partitions int
	// BatchSize is the number of documents per segment before the final merge.
	BatchSize int
	Logger    *slog.Logger
}

// Build writes a complete generation from src with Bleve's offline builder:
// one builder per partition, each on its own goroutine, fed by src through a
// channel; each builder writes large segments and merges them into one at
// the end, which is several times faster than batches on a live index and
// leaves one segment per partition to search.
func Build(ctx context.Context, opts BuildOptions, src index.Source) (count int64, checkpoint string, err error) {
	analysis.Register()
	if opts.Partitions <= 0 {
		return 0, "", errors.New("build needs at least one partition")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50000
	}
	// Building allocates heavily and keeps little; a higher GC target
	// trades memory for about a fifth of the build's CPU.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := writeMeta(opts.Dir, opts.Partitions); err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	im := newMapping()
	dm, err := newDocMaker(im, analysis.NewAnalyzer())
	if err != nil {
		return 0, "", err
	}
	mappingJSON, err := json.Marshal(im)
	if err != nil {
		return 0, "", fmt.Errorf("encoding the index mapping: %w", err)
	}
	chans := make([]chan *catalogv1.Movie, opts.Partitions)
	errs := make([]error, opts.Partitions)
	var wg sync.WaitGroup
	var n atomic.Int64
	for p := range chans {
		ch := make(chan *catalogv1.Movie, 1024)
		chans[p] = ch
		wg.Go(func() {
			// The builder starts with the partition's first movie: Bleve's
			// builder cannot finish a segment with no documents, which is
			// what a partition of an empty or tiny catalogue would get.
			var b *scorch.Builder
			seen := make(map[string]struct{})
			var ferr error
			var slot int32
			for m := range ch {
				if ferr != nil {
					continue // drain so the producer never blocks
				}
				if _, dup := seen[m.GetId()]; dup {
					continue
				}
				seen[m.GetId()] = struct{}{}
				if b == nil {
					if b, ferr = newPartitionBuilder(partitionDir(opts.Dir, p), mappingJSON, opts); ferr != nil {
						ferr = fmt.Errorf("starting builder for partition %d: %w", p, ferr)
						cancel(ferr)
						continue
					}
				}
				d, err := dm.document(m, slot)
				if err == nil {
					err = b.Index(d)
				}
				slot++
				if err != nil {
					ferr = fmt.Errorf("indexing movie %s: %w", m.GetId(), err)
					cancel(ferr)
					continue
				}
				n.Add(1)
			}
			switch {
			case b == nil && ferr == nil:
				ferr = emptyPartition(partitionDir(opts.Dir, p))
			case b != nil:
				if err := b.Close(); err != nil && ferr == nil {
					ferr = fmt.Errorf("finishing partition %d: %w", p, err)
				}
			}
			errs[p] = ferr
		})
	}
	checkpoint, srcErr := src(ctx, func(m *catalogv1.Movie) error {
		if m.GetId() == "" {
			return errors.New("movie without an id")
		}
		select {
		case chans[partitionOf(m.GetId(), len(chans))] <- m:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	if err := errors.Join(append([]error{srcErr}, errs...)...); err != nil {
		return 0, "", fmt.Errorf("building index: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(opts.Dir, checkpointFile), []byte(checkpoint)); err != nil {
		return 0, "", err
	}
	return n.Load(), checkpoint, nil
}

// newPartitionBuilder starts Bleve's offline segment builder for one
// partition. It is set up here rather than through bleve.NewBuilder, whose
// Index takes a value to walk with the mapping: this one takes documents
// already made by docMaker. The directory gets what bleve.Open expects: the
// index metadata, and the mapping in the store's internal data.
func newPartitionBuilder(dir string, mappingJSON []byte, opts BuildOptions) (*scorch.Builder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	meta := []byte(`{"storage":"` + scorch.Name + `","index_type":"` + scorch.Name + `"}`)
	if err := writeFileAtomic(filepath.Join(dir, "index_meta.json"), meta); err != nil {
		return nil, err
	}
	return scorch.NewBuilder(map[string]any{
		"path":            filepath.Join(dir, "store"),
		"batchSize":       opts.BatchSize,
		"buildPathPrefix": opts.Dir,
		"internal":        map[string][]byte{"_mapping": mappingJSON},
	})
}

// emptyPartition replaces dir with an empty index using the same mapping.
func emptyPartition(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing empty partition %s: %w", dir, err)
	}
	idx, err := bleve.New(dir, newMapping())
	if err != nil {
		return fmt.Errorf("creating empty partition %s: %w", dir, err)
	}
	return idx.Close()
}
