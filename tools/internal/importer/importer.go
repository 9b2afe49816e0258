// Package importer loads movie files into the catalog through its gRPC API:
// records are read as a stream, sent with BatchCreateMovies in batches by a
// few concurrent workers, and each carries a request id derived from its
// natural key, so running an import twice adds nothing the second time.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// MaxBatchSize is the most movies BatchCreateMovies accepts at once.
const MaxBatchSize = 100

// Config tunes an import. The zero value is usable.
type Config struct {
	// BatchSize is the number of movies per BatchCreateMovies call, 1 to
	// MaxBatchSize (the default).
	BatchSize int
	// Workers is the number of batches in flight at once; 4 by default.
	Workers int
	// CallTimeout bounds one call, its retries included; 1 minute by default.
	CallTimeout time.Duration
	// MaxRejectionDetails is how many rejected records the summary lists
	// one by one (all are counted); 100 by default.
	MaxRejectionDetails int
	// OnProgress, when set, is called after every batch with the counts so
	// far (without the rejection details). Calls may come from several
	// goroutines but never at the same time.
	OnProgress func(Summary)
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 || c.BatchSize > MaxBatchSize {
		c.BatchSize = MaxBatchSize
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = time.Minute
	}
	if c.MaxRejectionDetails <= 0 {
		c.MaxRejectionDetails = 100
	}
	return c
}

// Summary is the outcome of an import.
type Summary struct {
	// Read is the number of well-formed records read.
	Read int64
	// Inserted is the number of movies this import created.
	Inserted int64
	// Skipped is the number of records already in the catalog.
	Skipped int64
	// Rejected is the number of records the catalog refused.
	Rejected int64
	// Rejections details the first rejected records, by line.
	Rejections []Rejection
	// Elapsed is the duration of the import.
	Elapsed time.Duration
}

// Rejection is a record the catalog refused, and why.
type Rejection struct {
	Line   int
	Title  string
	Reason string
}

// Importer sends records to a catalog.
type Importer struct {
	client catalogv1.CatalogServiceClient
	cfg    Config
}

// New returns an Importer that writes through client.
func New(client catalogv1.CatalogServiceClient, cfg Config) *Importer {
	return &Importer{client: client, cfg: cfg.withDefaults()}
}

// item is one record ready to send.
type item struct {
	line  int
	title string
	req   *catalogv1.CreateMovieRequest
}

// run is the state of one Run.
type run struct {
	im    *Importer
	start time.Time

	mu  sync.Mutex
	sum Summary
}

// Run reads every record of r and sends it to the catalog. It returns the
// summary and, when the input is malformed (a *moviedata.ParseError naming
// the line) or the catalog fails in a way that is not about one record, an
// error. The batches read before a malformed record are still sent. Records
// the catalog rejects are counted in the summary and do not make Run fail.
func (im *Importer) Run(ctx context.Context, r moviedata.Reader) (Summary, error) {
	ru := &run{im: im, start: time.Now()}
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan []item, im.cfg.Workers)
	for range im.cfg.Workers {
		g.Go(func() error {
			for b := range batches {
				if err := ru.send(gctx, b); err != nil {
					return err
				}
			}
			return nil
		})
	}

	readErr := ru.produce(gctx, r, batches)
	close(batches)
	sendErr := g.Wait()

	ru.mu.Lock()
	defer ru.mu.Unlock()
	sum := ru.sum
	sum.Elapsed = time.Since(ru.start)
	sort.SliceStable(sum.Rejections, func(i, j int) bool { return sum.Rejections[i].Line < sum.Rejections[j].Line })
	switch {
	case sendErr != nil:
		return sum, sendErr
	case readErr != nil:
		return sum, readErr
	case ctx.Err() != nil:
		return sum, fmt.Errorf("importing: %w", ctx.Err())
	}
	return sum, nil
}

// produce reads records, keys them and hands out full batches until the
// input ends, is malformed, or ctx is done.
func (ru *run) produce(ctx context.Context, r moviedata.Reader, out chan<- []item) error {
	keyer := NewKeyer()
	size := ru.im.cfg.BatchSize
	batch := make([]item, 0, size)
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case out <- batch:
			batch = make([]item, 0, size)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			flush()
			return nil
		}
		if err != nil {
			flush()
			return err
		}
		ru.mu.Lock()
		ru.sum.Read++
		ru.mu.Unlock()
		batch = append(batch, item{
			line:  rec.Line,
			title: rec.Title,
			req:   &catalogv1.CreateMovieRequest{Movie: toMovie(rec), RequestId: keyer.RequestID(rec)},
		})
		if len(batch) == size && !flush() {
			return nil
		}
	}
}

// toMovie maps a record onto the API's movie as API.md "Importing the
// original data set" describes; the catalog trims and canonicalises again.
func toMovie(rec moviedata.Record) *catalogv1.Movie {
	m := &catalogv1.Movie{
		Title:          rec.Title,
		Year:           rec.Year,
		RuntimeMinutes: rec.RuntimeMinutes,
		Genres:         rec.Genres,
		Cast:           rec.Cast,
		ImdbScore:      rec.ImdbScore,
		Votes:          rec.Votes,
		Popularity:     rec.Popularity,
	}
	for _, d := range rec.Directors {
		m.Directors = append(m.Directors, &catalogv1.DirectorRef{Name: d})
	}
	return m
}

// send creates one batch. When the catalog refuses it because of some of its
// records, those are set aside (rejected, or skipped when they already
// exist) and the rest is sent again; when it cannot say which records, they
// are sent one at a time.
func (ru *run) send(ctx context.Context, batch []item) error {
	pending := batch
	for len(pending) > 0 {
		resp, err := ru.call(ctx, pending)
		if err == nil {
			if got := len(resp.GetMovies()); got != len(pending) {
				return fmt.Errorf("creating movies (lines %d-%d): the catalog answered %d movies for %d requests",
					pending[0].line, pending[len(pending)-1].line, got, len(pending))
			}
			var inserted, skipped int64
			for _, m := range resp.GetMovies() {
				if ru.createdByThisRun(m) {
					inserted++
				} else {
					skipped++
				}
			}
			ru.record(inserted, skipped, nil)
			return nil
		}

		st := status.Convert(err)
		code := st.Code()
		if code != codes.InvalidArgument && code != codes.AlreadyExists {
			return fmt.Errorf("creating movies (lines %d-%d): %w", pending[0].line, pending[len(pending)-1].line, err)
		}
		byIndex := violationsByIndex(st, len(pending))
		if len(byIndex) == 0 {
			if len(pending) == 1 {
				ru.refused(code, pending[0], st.Message())
				return nil
			}
			for _, it := range pending {
				if err := ru.send(ctx, []item{it}); err != nil {
					return err
				}
			}
			return nil
		}
		rest := pending[:0:0]
		for i, it := range pending {
			if reasons, ok := byIndex[i]; ok {
				ru.refused(code, it, strings.Join(reasons, "; "))
			} else {
				rest = append(rest, it)
			}
		}
		pending = rest
	}
	return nil
}

func (ru *run) call(ctx context.Context, items []item) (*catalogv1.BatchCreateMoviesResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, ru.im.cfg.CallTimeout)
	defer cancel()
	reqs := make([]*catalogv1.CreateMovieRequest, len(items))
	for i, it := range items {
		reqs[i] = it.req
	}
	return ru.im.client.BatchCreateMovies(ctx, &catalogv1.BatchCreateMoviesRequest{Requests: reqs})
}

// createdByThisRun tells a movie this import created from one that a
// request id matched: the catalog answers a duplicate with the movie it
// created first, which is older than this run. The comparison is between the
// catalog's clock and this machine's, so the clocks must agree to within the
// time between two runs.
func (ru *run) createdByThisRun(m *catalogv1.Movie) bool {
	ct := m.GetCreateTime()
	return ct == nil || !ct.AsTime().Before(ru.start)
}

func (ru *run) refused(code codes.Code, it item, reason string) {
	if code == codes.AlreadyExists {
		ru.record(0, 1, nil)
		return
	}
	ru.record(0, 0, &Rejection{Line: it.line, Title: it.title, Reason: reason})
}

func (ru *run) record(inserted, skipped int64, rej *Rejection) {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	ru.sum.Inserted += inserted
	ru.sum.Skipped += skipped
	if rej != nil {
		ru.sum.Rejected++
		if len(ru.sum.Rejections) < ru.im.cfg.MaxRejectionDetails {
			ru.sum.Rejections = append(ru.sum.Rejections, *rej)
		}
	}
	if ru.im.cfg.OnProgress != nil {
		snap := ru.sum
		snap.Rejections = nil
		snap.Elapsed = time.Since(ru.start)
		ru.im.cfg.OnProgress(snap)
	}
}

// violationsByIndex collects the BadRequest field violations of st that name
// one request of the batch, such as "requests[3].movie.year", by the index of
// that request, each as "year: description".
func violationsByIndex(st *status.Status, n int) map[int][]string {
	out := make(map[int][]string)
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			i, field, ok := requestIndex(v.GetField())
			if !ok || i >= n {
				continue
			}
			reason := v.GetDescription()
			if field != "" {
				reason = field + ": " + reason
			}
			out[i] = append(out[i], reason)
		}
	}
	return out
}

// requestIndex splits "requests[3].movie.year" into 3 and "year".
func requestIndex(path string) (int, string, bool) {
	rest, ok := strings.CutPrefix(path, "requests[")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, "", false
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 {
		return 0, "", false
	}
	rest = strings.TrimPrefix(rest, ".")
	rest = strings.TrimPrefix(rest, "movie.")
	if rest == "movie" {
		rest = ""
	}
	return i, rest, true
}
