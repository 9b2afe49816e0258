package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/services/platform/ferretdb"
	"github.com/marquee-dev/marquee/tools/internal/baseline"
	"github.com/marquee-dev/marquee/tools/internal/generator"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
)

// helperStarter starts the bare server and the engine for the baselines.
// The spawned stack runs them as processes of their own, pinned with the
// services; without it they run inside the bench process.
type helperStarter interface {
	startBare(ctx context.Context, resp baseline.BareResponse) (base string, p Proc, stop func(), err error)
	startEngine(ctx context.Context) (uri, dataDir string, p Proc, stop func(), err error)
}

// inProcess runs the helpers inside the bench process: fine for tests and
// for a glance, but the bare server then shares the load generator's CPU,
// which the report says.
type inProcess struct{}

func (inProcess) startBare(ctx context.Context, resp baseline.BareResponse) (string, Proc, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() { errc <- baseline.ServeBare(ctx, "127.0.0.1:0", resp, func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		return "http://" + a.String(), Proc{Name: "bare net/http (in the bench process)", PID: os.Getpid()},
			func() { cancel(); <-errc }, nil
	case err := <-errc:
		cancel()
		return "", Proc{}, nil, err
	}
}

func (inProcess) startEngine(ctx context.Context) (string, string, Proc, func(), error) {
	dir, err := os.MkdirTemp("", "marquee-bench-engine-")
	if err != nil {
		return "", "", Proc{}, nil, fmt.Errorf("creating engine dir: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	srv, err := ferretdb.Start(ctx, dir, "127.0.0.1:0")
	if err != nil {
		cancel()
		_ = os.RemoveAll(dir)
		return "", "", Proc{}, nil, err
	}
	stop := func() { cancel(); srv.Wait(); _ = os.RemoveAll(dir) }
	return srv.URI, dir, Proc{Name: "engine (in the bench process)", PID: os.Getpid()}, stop, nil
}

// lockedZipf draws catalogue ids by popularity rank for the baselines,
// from any number of goroutines.
func lockedZipf(movies []Movie, s float64, seed uint64) func() string {
	var mu sync.Mutex
	z := newZipf(rand.New(rand.NewPCG(seed, 7)), s, len(movies))
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return movies[z.next()].ID
	}
}

// measurer returns a function that runs one baseline, with CPU and memory
// per process watched, and records it in r.
func measurer(cfg Config, r *Report, logf func(string, ...any)) func(string, string, []Proc, func() baseline.Result) baseline.Result {
	if r.BaselineCPU == nil {
		r.BaselineCPU = map[string][]ProcUsage{}
	}
	return func(name, what string, extra []Proc, run func() baseline.Result) baseline.Result {
		logf("baseline %s: %s", name, what)
		watch := watchProcs(append(cfg.procs(), extra...))
		res := run()
		r.BaselineCPU[name] = watch.Stop()
		res.Name, res.What = name, what
		r.Baselines = append(r.Baselines, res)
		return res
	}
}

// runBaselines measures the ceilings and their Marquee counterparts, each
// closed loop at the same concurrency for the same time, and the ratios.
func runBaselines(ctx context.Context, cfg Config, client *http.Client, w *Workload, tokens TokenSource, r *Report, logf func(string, ...any)) error {
	helpers := cfg.helpers
	if helpers == nil {
		helpers = inProcess{}
		r.Notes = append(r.Notes, "the bare server ran inside the bench process, sharing the load generator's CPU (use -spawn for separate processes)")
	}
	base := strings.TrimRight(cfg.Target, "/")
	lim := attackOptions{Workers: uint64(cfg.BaselineConcurrency), Timeout: 10 * time.Second}
	measure := measurer(cfg, r, logf)
	closed := func(tr func() LoadResult) func() baseline.Result {
		return func() baseline.Result { return tr().Result }
	}

	// 1. The cached path against a bare server writing the same bytes.
	hot := w.Movies[0].ID
	hotURL := base + "/v1/movies/" + hot
	resp, err := capture(ctx, client, hotURL)
	if err != nil {
		r.Notes = append(r.Notes, "bare-server baseline skipped: "+err.Error())
	} else {
		bareBase, bareProc, stopBare, err := helpers.startBare(ctx, resp)
		if err != nil {
			return fmt.Errorf("starting the bare server: %w", err)
		}
		bare := measure("bare-http", "bare net/http handler writing the gateway's bytes for the hottest movie", []Proc{bareProc},
			closed(func() LoadResult {
				return attack(ctx, "bare", staticTargeter(http.MethodGet, bareBase+"/v1/movies/"+hot, nil), 0, cfg.BaselineDuration, lim)
			}))
		stopBare()
		cached := measure("gateway-cached-get", "anonymous GET of the hottest movie through the gateway (response cache hit)", nil,
			closed(func() LoadResult {
				return attack(ctx, "cached", staticTargeter(http.MethodGet, hotURL, nil), 0, cfg.BaselineDuration, lim)
			}))
		r.Ratios = append(r.Ratios, baseline.NewRatio("cached_vs_bare", "cached GET throughput vs bare net/http",
			cached.Throughput, bare.Throughput, "gateway-cached-get", "bare-http").WithTarget(0.5))
		r.Ratios = append(r.Ratios, baseline.NewRatio("cached_vs_bare_p50", "cached GET p50 latency vs bare net/http (lower is better)",
			cached.P50Ms, bare.P50Ms, "gateway-cached-get", "bare-http"))
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// 2. The uncached path (an authenticated GET with Cache-Control:
	// no-cache passes the response cache: gateway, gRPC, catalog's warm
	// cache) against gRPC to catalog.
	next := lockedZipf(w.Movies, cfg.ZipfS, cfg.Seed)
	var uncached baseline.Result
	token := ""
	if tokens != nil {
		token = tokens.Token()
	}
	if token != "" {
		h := http.Header{"Authorization": {"Bearer " + token}, "Cache-Control": {"no-cache"}}
		uncached = measure("gateway-uncached-get", "authenticated GET by Zipf id with Cache-Control: no-cache through the gateway (cache bypassed, gRPC to catalog)", nil,
			closed(func() LoadResult {
				return attack(ctx, "uncached", idsTargeter(base, next, h), 0, cfg.BaselineDuration, lim)
			}))
		if cores := cpuCores(r.BaselineCPU["gateway-uncached-get"], "gateway"); cores > 0 {
			perCore := uncached.Throughput / cores
			r.Targets = append(r.Targets, TargetCheck{
				Name: "uncached GET through gRPC, requests/s per gateway core", Want: "≥ 5000", Got: round(perCore, 0), Unit: "req/s/core",
				Met: perCore >= 5000, Applies: !cfg.Smoke,
			})
		}
		if half := uncached.Throughput / 2; half >= 1 {
			res := measure("gateway-uncached-get-half", "the same at half its maximum throughput (open model)", nil,
				func() baseline.Result {
					return attack(ctx, "uncached-half", idsTargeter(base, next, h), half, cfg.BaselineDuration, attackOptions{Workers: cfg.MaxWorkers, Timeout: 10 * time.Second}).Result
				})
			r.Targets = append(r.Targets, TargetCheck{
				Name: "uncached GET p99 at half the maximum throughput", Want: "< 10 ms", Got: res.P99Ms, Unit: "ms",
				Met: res.P99Ms < 10 && res.Errors == 0, Applies: !cfg.Smoke,
			})
		}
	} else {
		r.Notes = append(r.Notes, "uncached-path baselines skipped: they need a credential (-token, or -email and -password)")
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	var grpcGet baseline.Result
	if cfg.CatalogAddr != "" {
		conn, err := baseline.DialCatalog(cfg.CatalogAddr)
		if err != nil {
			return err
		}
		defer conn.Close()
		grpcGet = measure("catalog-grpc-get", "GetMovie by Zipf id over gRPC straight to catalog (warm catalog cache)", nil, func() baseline.Result {
			res, err := baseline.CatalogGetMovie(ctx, conn, next, token, baseline.Limits{Concurrency: cfg.BaselineConcurrency, Duration: cfg.BaselineDuration})
			if err != nil {
				logf("catalog gRPC baseline: %v", err)
			}
			return res
		})
		if uncached.Requests > 0 {
			r.Ratios = append(r.Ratios,
				baseline.NewRatio("gateway_vs_grpc", "uncached GET through the gateway vs gRPC straight to catalog, throughput",
					uncached.Throughput, grpcGet.Throughput, "gateway-uncached-get", "catalog-grpc-get"),
				baseline.NewRatio("gateway_vs_grpc_p50", "the same, p50 latency (lower is better)",
					uncached.P50Ms, grpcGet.P50Ms, "gateway-uncached-get", "catalog-grpc-get"))
		}
	} else {
		r.Notes = append(r.Notes, "direct-gRPC baseline skipped: no catalog address (-catalog)")
	}

	if cfg.MongoURI != "" {
		mc, err := baseline.ConnectMongo(ctx, cfg.MongoURI)
		if err != nil {
			return err
		}
		defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
		coll := mc.Database(cfg.MongoDatabase).Collection("movies")
		raw := measure("mongo-findone", "raw driver FindOne by Zipf _id on the catalog's collection, same engine", nil, func() baseline.Result {
			res, err := baseline.FindOneByID(ctx, coll, next, baseline.Limits{Concurrency: cfg.BaselineConcurrency, Duration: cfg.BaselineDuration})
			if err != nil {
				logf("raw driver baseline: %v", err)
			}
			return res
		})
		if grpcGet.Requests > 0 {
			r.Ratios = append(r.Ratios, baseline.NewRatio("catalog_vs_driver", "catalog GetMovie (with its cache) vs raw FindOne, throughput",
				grpcGet.Throughput, raw.Throughput, "catalog-grpc-get", "mongo-findone"))
		}
	} else {
		r.Notes = append(r.Notes, "raw-driver baselines skipped: no engine URI (-mongo)")
	}
	return ctx.Err()
}

// writeBaselines compares the raw driver's InsertMany with the catalog's
// BatchCreateMovies, 100 documents a call, one call at a time; the movies
// created through the catalog are deleted afterwards and the scratch
// database dropped. It runs after the realistic mix, because the deleted
// movies' tombstones stay in the collection and every scan on the embedded
// engine pays for them.
func writeBaselines(ctx context.Context, cfg Config, tokens TokenSource, r *Report, logf func(string, ...any)) error {
	token := ""
	if tokens != nil {
		token = tokens.Token()
	}
	if token == "" || cfg.CatalogAddr == "" || cfg.MongoURI == "" {
		r.Notes = append(r.Notes, "write baselines skipped: they need an administrator's credential, -catalog and -mongo")
		return nil
	}
	conn, err := baseline.DialCatalog(cfg.CatalogAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	measure := measurer(cfg, r, logf)
	batchSize, batches := 100, 10
	if cfg.Smoke {
		// Every delete that undoes them is a scan on the embedded engine.
		batchSize, batches = 10, 2
	}
	profile, err := generator.DefaultProfile()
	if err != nil {
		return fmt.Errorf("loading generator profile: %w", err)
	}
	gen, err := generator.New(profile, generator.Options{Seed: cfg.Seed + 1000})
	if err != nil {
		return fmt.Errorf("creating generator: %w", err)
	}
	var genMu sync.Mutex
	movie := func(i int) generator.Movie {
		genMu.Lock()
		defer genMu.Unlock()
		return gen.Movie(uint64(i))
	}
	lim := baseline.Limits{Concurrency: 1}

	mc, err := baseline.ConnectMongo(ctx, cfg.MongoURI)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	scratch := mc.Database("bench_scratch")
	defer func() { _ = scratch.Drop(context.WithoutCancel(ctx)) }()
	// The same indexes as the catalogue's movies, so both sides pay the same
	// index upkeep.
	if err := copyIndexes(ctx, mc.Database(cfg.MongoDatabase).Collection("movies"), scratch.Collection("movies")); err != nil {
		r.Notes = append(r.Notes, "InsertMany baseline without the catalogue's indexes: "+err.Error())
	}
	now := time.Now().UTC()
	raw := measure("mongo-insertmany", fmt.Sprintf("raw driver InsertMany, %d documents a call (documents/s)", batchSize), nil, func() baseline.Result {
		res, err := baseline.InsertMany(ctx, scratch.Collection("movies"), batches, batchSize, func(i int) any {
			return baseline.MovieDoc(fmt.Sprintf("m_scratch%019d", i), movie(i), now)
		}, lim)
		if err != nil {
			r.Notes = append(r.Notes, "InsertMany baseline: "+err.Error())
		}
		return res
	})

	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	var created []string
	viaCatalog := measure("catalog-grpc-batch-create", fmt.Sprintf("BatchCreateMovies over gRPC, %d movies a call (documents/s)", batchSize), nil, func() baseline.Result {
		res, ids, err := baseline.CatalogBatchCreate(ctx, conn, token, batches, func(b int) *catalogv1.BatchCreateMoviesRequest {
			req := &catalogv1.BatchCreateMoviesRequest{RequestId: fmt.Sprintf("%s-%d", run, b)}
			for j := range batchSize {
				i := b*batchSize + j
				m := movie(i)
				year, runtime := m.Year, m.RuntimeMinutes
				score, pop, votes := m.ImdbScore, m.Popularity, m.Votes
				dirs := make([]*catalogv1.DirectorRef, 0, len(m.Directors))
				for _, d := range m.Directors {
					dirs = append(dirs, &catalogv1.DirectorRef{Name: d})
				}
				req.Requests = append(req.Requests, &catalogv1.CreateMovieRequest{
					RequestId: fmt.Sprintf("%s-%d-%d", run, b, j),
					Movie: &catalogv1.Movie{
						Title: m.Title, Year: &year, RuntimeMinutes: &runtime, Genres: m.Genres, Directors: dirs,
						Cast: m.Cast, ImdbScore: &score, Popularity: &pop, Votes: &votes,
					},
				})
			}
			return req
		}, lim)
		created = ids
		if err != nil {
			r.Notes = append(r.Notes, "BatchCreateMovies baseline: "+err.Error())
		}
		return res
	})
	if err := baseline.CatalogDelete(context.WithoutCancel(ctx), conn, token, created); err != nil {
		r.Notes = append(r.Notes, "deleting the movies the write baseline created: "+err.Error())
	}
	r.Ratios = append(r.Ratios, baseline.NewRatio("catalog_vs_driver_writes",
		"BatchCreateMovies into the live stack vs raw InsertMany, documents/s",
		viaCatalog.ItemsPerSecond, raw.ItemsPerSecond, "catalog-grpc-batch-create", "mongo-insertmany"))
	r.Notes = append(r.Notes, "BatchCreateMovies here writes into the running stack: search indexes every batch and "+
		"the gateway and catalog caches follow it, all reading the same embedded engine, which serialises them with "+
		"the writes. The import path alone against InsertMany (the catalog issue's 70% target) is "+
		"`cd services/catalog && go test -run '^$' -bench BatchCreateVsInsertMany ./internal/grpcapi/`.")
	return nil
}

// copyIndexes creates on dst the secondary indexes of src.
func copyIndexes(ctx context.Context, src, dst *mongo.Collection) error {
	specs, err := src.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("listing indexes: %w", err)
	}
	for _, spec := range specs {
		if spec.Name == "_id_" {
			continue
		}
		var keys bson.D
		if err := bson.Unmarshal(spec.KeysDocument, &keys); err != nil {
			return fmt.Errorf("reading index %s: %w", spec.Name, err)
		}
		opts := options.Index().SetName(spec.Name)
		if spec.Unique != nil && *spec.Unique {
			opts.SetUnique(true)
		}
		if _, err := dst.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: opts}); err != nil {
			return fmt.Errorf("creating index %s: %w", spec.Name, err)
		}
	}
	return nil
}

// runEngineCurve measures the embedded engine alone at growing sizes, on
// an engine of its own so the services' data is untouched.
func runEngineCurve(ctx context.Context, cfg Config, r *Report, logf func(string, ...any)) error {
	helpers := cfg.helpers
	if helpers == nil {
		helpers = inProcess{}
	}
	uri, dir, proc, stop, err := helpers.startEngine(ctx)
	if err != nil {
		return fmt.Errorf("starting an engine for its curve: %w", err)
	}
	defer stop()
	mc, err := baseline.ConnectMongo(ctx, uri)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	logf("engine curve at %v movies (this takes a while: every query scans)", cfg.EngineSizes)
	watch := watchProcs([]Proc{proc, {Name: "load generator (this process)", PID: os.Getpid()}})
	curve, err := baseline.EngineCurve(ctx, mc, baseline.CurveOptions{
		Sizes:   cfg.EngineSizes,
		FindOne: baseline.Limits{Concurrency: 1, Duration: 4 * time.Second, MaxOps: 400},
		Sorted:  baseline.Limits{Concurrency: 1, Duration: 8 * time.Second, MaxOps: 40},
		DataDir: dir,
		Seed:    cfg.Seed,
	})
	if r.BaselineCPU == nil {
		r.BaselineCPU = map[string][]ProcUsage{}
	}
	r.BaselineCPU["engine-curve"] = watch.Stop()
	if err != nil {
		return err
	}
	r.EngineCurve = &curve
	return nil
}

// capture fetches url twice and returns the second answer (a cache hit on
// the gateway), for the bare server to repeat.
func capture(ctx context.Context, client *http.Client, url string) (baseline.BareResponse, error) {
	var out baseline.BareResponse
	for range 2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return out, fmt.Errorf("building request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return out, fmt.Errorf("fetching %s: %w", url, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		_ = resp.Body.Close()
		if err != nil {
			return out, fmt.Errorf("reading %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return out, fmt.Errorf("fetching %s: %s", url, resp.Status)
		}
		out = baseline.BareResponse{Body: body, Header: baseline.CaptureHeaders(resp.Header)}
	}
	return out, nil
}

// cpuCores is the CPU the named process used in a window, in cores.
func cpuCores(us []ProcUsage, name string) float64 {
	for _, u := range us {
		if u.Name == name {
			return u.CPUPercent / 100
		}
	}
	return 0
}
