package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/tools/internal/devstack"
	"github.com/marquee-dev/marquee/tools/internal/importer"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// tokenEnv is the environment variable --token defaults to.
const tokenEnv = "MARQUEE_TOKEN"

func newImportCmd(e *env) *cobra.Command {
	var (
		addr        string
		token       string
		format      string
		mapping     string
		listSep     string
		batchSize   int
		workers     int
		useTLS      bool
		callTimeout time.Duration
		quiet       bool
		dev         bool
		authAddr    string
	)
	cmd := &cobra.Command{
		Use:   "import --format imdb|wikipedia|csv [flags] FILE",
		Short: "Import a movie file into the catalog",
		Long: `import reads FILE (gzip is detected; "-" reads standard input) as a stream and
creates its movies through the catalog's gRPC API with BatchCreateMovies.

Formats:
  imdb       the original assignment's JSON array (name, director, genre, imdb_score, 99popularity)
  wikipedia  one JSON object a line (title, year, genres, cast, directors), also what
             "marquee generate" writes
  csv        a header row, then one movie a row; --map names the columns of the fields
             title, year, genres, directors, cast, imdbScore, votes, popularity,
             runtimeMinutes (unmapped fields use a column of the same name, if any);
             multi-valued cells are split on --list-sep

Every movie carries a request id derived from its natural key (normalised title, year
and directors), so running the same import again adds nothing: those records are
reported as skipped. The command exits non-zero, naming the line, on a malformed
record (after sending the records before it), and when the catalog rejected records.`,
		Example: `  marquee import --format imdb data/imdb.json
  marquee import --dev --format wikipedia data/wikipedia-movies.ndjson.gz
  marquee generate --count 100000 | marquee import --format wikipedia -
  marquee import --format csv --map title=movie_title,year=title_year,directors=director_name movies.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := moviedata.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			opts := moviedata.Options{ListSeparator: listSep}
			if mapping != "" {
				if f != moviedata.FormatCSV {
					return errors.New("--map applies to --format csv only")
				}
				if opts.Mapping, err = moviedata.ParseMapping(mapping); err != nil {
					return fmt.Errorf("--map: %w", err)
				}
			}
			if batchSize < 1 || batchSize > importer.MaxBatchSize {
				return fmt.Errorf("--batch-size must be between 1 and %d", importer.MaxBatchSize)
			}
			if workers < 1 {
				return errors.New("--workers must be at least 1")
			}
			if token == "" {
				token = e.getenv(tokenEnv)
			}
			if token == "" && dev {
				if token, err = devstack.DevAdminToken(cmd.Context(), devDataDir(e), authAddr); err != nil {
					return fmt.Errorf("--dev: %w", err)
				}
			}

			name := args[0]
			in, size, closeInput, err := openInput(name, e.stdin)
			if err != nil {
				return err
			}
			defer closeInput()

			var bar *progressbar.ProgressBar
			if !quiet && e.isTerminal(e.stderr) {
				bar = newProgressBar(e.stderr, size)
				in = io.TeeReader(in, bar)
			}
			records, err := moviedata.NewReader(f, in, opts)
			if err != nil {
				return fmt.Errorf("reading %s: %w", name, err)
			}

			conn, err := importer.Dial(addr, importer.DialConfig{Token: token, TLS: useTLS})
			if err != nil {
				return err
			}
			defer conn.Close()
			cfg := importer.Config{BatchSize: batchSize, Workers: workers, CallTimeout: callTimeout}
			if bar != nil {
				cfg.OnProgress = func(s importer.Summary) {
					bar.Describe(fmt.Sprintf("%d inserted, %d skipped, %d rejected", s.Inserted, s.Skipped, s.Rejected))
				}
			}
			sum, runErr := importer.New(catalogv1.NewCatalogServiceClient(conn), cfg).Run(cmd.Context(), records)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(e.stderr)
			}
			printSummary(e.stdout, name, sum)
			if runErr != nil {
				return fmt.Errorf("importing %s: %w", name, runErr)
			}
			if sum.Rejected > 0 {
				return fmt.Errorf("importing %s: the catalog rejected %d records", name, sum.Rejected)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:9091", "the catalog's gRPC address")
	fl.StringVar(&token, "token", "", "an admin's bearer access token (default $"+tokenEnv+")")
	fl.StringVar(&format, "format", "", "input format: imdb, wikipedia or csv (required)")
	fl.StringVar(&mapping, "map", "", "CSV columns of the fields, as field=column,… (e.g. title=movie_title,year=title_year)")
	fl.StringVar(&listSep, "list-sep", "|", "separator of multi-valued CSV cells (genres, directors, cast)")
	fl.IntVar(&batchSize, "batch-size", importer.MaxBatchSize, "movies per BatchCreateMovies call (at most 100)")
	fl.IntVar(&workers, "workers", 4, "batches in flight at once")
	fl.BoolVar(&useTLS, "tls", false, "use TLS (the dev stack's loopback addresses are plaintext)")
	fl.DurationVar(&callTimeout, "call-timeout", time.Minute, "time limit of one batch, retries included")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	fl.BoolVar(&dev, "dev", false, "sign in as the running dev stack's administrator (credentials from $MARQUEE_DATA_DIR, default ./.data)")
	fl.StringVar(&authAddr, "auth-addr", "127.0.0.1:9093", "the auth service's gRPC address, with --dev")
	_ = cmd.MarkFlagRequired("format")
	return cmd
}

// openInput opens FILE, or standard input for "-", and returns its size
// when known (for the progress bar) or -1.
func openInput(name string, stdin io.Reader) (io.Reader, int64, func(), error) {
	if name == "-" {
		return stdin, -1, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("opening the input: %w", err)
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// newProgressBar draws the bytes of the input read so far (compressed bytes
// for a gzip file) and the counts; an unknown size shows a spinner.
func newProgressBar(w io.Writer, size int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
	)
}

// printSummary writes what the import did, and why records were rejected.
func printSummary(w io.Writer, name string, s importer.Summary) {
	rate := 0.0
	if secs := s.Elapsed.Seconds(); secs > 0 {
		rate = float64(s.Inserted+s.Skipped+s.Rejected) / secs
	}
	fmt.Fprintf(w, "%s: %d records read, %d inserted, %d skipped as duplicates, %d rejected in %s (%.0f records/s)\n",
		name, s.Read, s.Inserted, s.Skipped, s.Rejected, s.Elapsed.Round(time.Millisecond), rate)
	for _, r := range s.Rejections {
		fmt.Fprintf(w, "  rejected line %d %q: %s\n", r.Line, r.Title, strings.TrimSpace(r.Reason))
	}
	if more := s.Rejected - int64(len(s.Rejections)); more > 0 {
		fmt.Fprintf(w, "  … and %d more rejected records\n", more)
	}
}
