package baseline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/tools/internal/generator"
)

// ConnectMongo connects the raw driver to uri with nothing added: no
// monitor, no read preference, the driver's defaults.
func ConnectMongo(ctx context.Context, uri string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(2 * time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", uri, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("pinging %s: %w", uri, err)
	}
	return client, nil
}

// FindOneByID loads coll with FindOne({_id}) for the ids next returns: the
// raw driver's cost of the catalog's GetMovie.
func FindOneByID(ctx context.Context, coll *mongo.Collection, next func() string, lim Limits) (Result, error) {
	res, err := ClosedLoop(ctx, "mongo-findone", lim, func(ctx context.Context, _ int, _ int64) (string, int64, error) {
		var doc bson.Raw
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: next()}}).Decode(&doc)
		if err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				return "not_found", 0, err
			}
			return "error", 0, err
		}
		return "ok", 1, nil
	})
	res.What = "raw driver FindOne by _id"
	return res, err
}

// SortedPage loads coll with the catalog's listing shape: one genre, the
// most popular first, a page of 20 (genres, popularity desc, _id), the
// query that a sharded MongoDB serves from the genres_popularity_id index
// and that the embedded engine answers with a scan and a sort.
func SortedPage(ctx context.Context, coll *mongo.Collection, genres []string, lim Limits) (Result, error) {
	if len(genres) == 0 {
		return Result{}, errors.New("sorted page: no genres to filter on")
	}
	opts := options.Find().SetSort(bson.D{{Key: "popularity", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(20)
	res, err := ClosedLoop(ctx, "mongo-sorted-page", lim, func(ctx context.Context, _ int, i int64) (string, int64, error) {
		cur, err := coll.Find(ctx, bson.D{{Key: "genres", Value: genres[int(i)%len(genres)]}}, opts)
		if err != nil {
			return "error", 0, err
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			return "error", 0, err
		}
		return "ok", int64(len(docs)), nil
	})
	res.What = "raw driver find(genre) sort(popularity desc) limit 20"
	return res, err
}

// InsertMany loads coll with InsertMany of batchSize documents, batches
// times, documents built by doc(i) for a global index i; ItemsPerSecond is
// documents per second.
func InsertMany(ctx context.Context, coll *mongo.Collection, batches, batchSize int, doc func(i int) any, lim Limits) (Result, error) {
	lim.MaxOps = int64(batches)
	res, err := ClosedLoop(ctx, "mongo-insertmany", lim, func(ctx context.Context, _ int, b int64) (string, int64, error) {
		docs := make([]any, batchSize)
		for j := range docs {
			docs[j] = doc(int(b)*batchSize + j)
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return "error", 0, err
		}
		return "ok", int64(batchSize), nil
	})
	res.What = fmt.Sprintf("raw driver InsertMany, %d documents a call (documents/s)", batchSize)
	return res, err
}

// MovieDoc is generated movie m as the catalog stores it (the fields and
// names of its MongoDB documents), with id as _id.
func MovieDoc(id string, m generator.Movie, now time.Time) bson.D {
	directors := make(bson.A, 0, len(m.Directors))
	for _, name := range m.Directors {
		directors = append(directors, bson.D{{Key: "id", Value: "d_" + strings.ToLower(strings.ReplaceAll(name, " ", "_"))}, {Key: "name", Value: name}})
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "title", Value: m.Title},
		{Key: "title_lower", Value: strings.ToLower(m.Title)},
		{Key: "year", Value: m.Year},
		{Key: "runtime_minutes", Value: m.RuntimeMinutes},
		{Key: "genres", Value: m.Genres},
		{Key: "directors", Value: directors},
		{Key: "cast", Value: m.Cast},
		{Key: "imdb_score", Value: m.ImdbScore},
		{Key: "votes", Value: m.Votes},
		{Key: "popularity", Value: m.Popularity},
		{Key: "revision", Value: int64(1)},
		{Key: "create_time", Value: now},
		{Key: "update_time", Value: now},
	}
}

// CurveOptions configure EngineCurve.
type CurveOptions struct {
	// Sizes are the catalogue sizes to measure at, ascending (1,000,
	// 10,000 and 30,000 in the full run).
	Sizes []int
	// Database is the scratch database the curve fills and drops.
	Database string
	// FindOne and Sorted bound each measurement at each size.
	FindOne, Sorted Limits
	// DataDir, when set, is the engine's data directory, whose size is
	// reported at each step.
	DataDir string
	// Seed selects the generated catalogue.
	Seed uint64
}

// CurvePoint is the engine measured at one catalogue size.
type CurvePoint struct {
	Movies int `json:"movies"`
	// InsertDocsPerS is the rate at which this step's documents went in
	// (InsertMany, 1,000 a call).
	InsertDocsPerS float64 `json:"insert_docs_per_s"`
	FindOne        Result  `json:"findone_by_id"`
	SortedPage     Result  `json:"sorted_page"`
	DiskBytes      int64   `json:"disk_bytes,omitempty"`
}

// Curve is the engine's own scaling: latency and disk by catalogue size,
// and the growth each follows.
type Curve struct {
	Points []CurvePoint `json:"points"`
	// Exponents are the slopes of p50 latency (and disk) against size on
	// log-log axes between the smallest and largest size: 0 is constant, 1
	// linear; Growth names them.
	FindOneExponent float64 `json:"findone_exponent"`
	FindOneGrowth   string  `json:"findone_growth"`
	SortedExponent  float64 `json:"sorted_page_exponent"`
	SortedGrowth    string  `json:"sorted_page_growth"`
	DiskExponent    float64 `json:"disk_exponent,omitempty"`
	DiskGrowth      string  `json:"disk_growth,omitempty"`
}

// EngineCurve fills a scratch collection with generated movies up to each
// size in turn and measures FindOne by _id and a sorted page at each: the
// embedded engine's own limit, which is not Marquee's (every query scans on
// it; a real MongoDB uses the indexes). The scratch database is dropped at
// the end.
func EngineCurve(ctx context.Context, client *mongo.Client, opts CurveOptions) (Curve, error) {
	var curve Curve
	if len(opts.Sizes) == 0 {
		return curve, errors.New("engine curve: no sizes")
	}
	if opts.Database == "" {
		opts.Database = "bench_engine"
	}
	profile, err := generator.DefaultProfile()
	if err != nil {
		return curve, fmt.Errorf("loading generator profile: %w", err)
	}
	gen, err := generator.New(profile, generator.Options{Seed: opts.Seed})
	if err != nil {
		return curve, fmt.Errorf("creating generator: %w", err)
	}
	db := client.Database(opts.Database)
	defer func() { _ = db.Drop(context.WithoutCancel(ctx)) }()
	coll := db.Collection("movies")
	// The catalog's index for this query; the embedded engine ignores it,
	// a real MongoDB answers the sorted page from it.
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "genres", Value: 1}, {Key: "popularity", Value: 1}, {Key: "_id", Value: 1}},
	}); err != nil {
		return curve, fmt.Errorf("creating index: %w", err)
	}
	genres := gen.Genres()
	if len(genres) > 8 {
		genres = genres[:8]
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	have := 0
	for _, size := range opts.Sizes {
		if size <= have {
			return curve, fmt.Errorf("engine curve: sizes must ascend (%d after %d)", size, have)
		}
		start := time.Now()
		const batch = 1000
		for have < size {
			n := min(batch, size-have)
			docs := make([]any, n)
			for j := range docs {
				docs[j] = MovieDoc(curveID(have+j), gen.Movie(uint64(have+j)), now)
			}
			if _, err := coll.InsertMany(ctx, docs); err != nil {
				return curve, fmt.Errorf("inserting movies %d-%d: %w", have, have+n, err)
			}
			have += n
		}
		p := CurvePoint{Movies: size}
		if s := time.Since(start).Seconds(); s > 0 {
			p.InsertDocsPerS = float64(size-prevSize(curve)) / s
		}
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(opts.Seed, uint64(size)))
		next := func() string {
			mu.Lock()
			defer mu.Unlock()
			return curveID(rng.IntN(size))
		}
		if p.FindOne, err = FindOneByID(ctx, coll, next, opts.FindOne); err != nil {
			return curve, err
		}
		if p.SortedPage, err = SortedPage(ctx, coll, genres, opts.Sorted); err != nil {
			return curve, err
		}
		if opts.DataDir != "" {
			p.DiskBytes = dirSize(opts.DataDir)
		}
		curve.Points = append(curve.Points, p)
	}
	first, last := curve.Points[0], curve.Points[len(curve.Points)-1]
	curve.FindOneExponent, curve.FindOneGrowth = Growth(first.Movies, last.Movies, first.FindOne.P50Ms, last.FindOne.P50Ms)
	curve.SortedExponent, curve.SortedGrowth = Growth(first.Movies, last.Movies, first.SortedPage.P50Ms, last.SortedPage.P50Ms)
	if first.DiskBytes > 0 {
		curve.DiskExponent, curve.DiskGrowth = Growth(first.Movies, last.Movies, float64(first.DiskBytes), float64(last.DiskBytes))
	}
	return curve, nil
}

func prevSize(c Curve) int {
	if len(c.Points) == 0 {
		return 0
	}
	return c.Points[len(c.Points)-1].Movies
}

func curveID(i int) string { return fmt.Sprintf("m_bench%019d", i) }

// Growth is the slope of v against n on log-log axes between two points,
// and its name: about 0 is constant, about 1 linear, in between sublinear
// (a logarithmic cost looks like a small slope over a decade).
func Growth(n1, n2 int, v1, v2 float64) (float64, string) {
	if n1 <= 0 || n2 <= n1 || v1 <= 0 || v2 <= 0 {
		return 0, "unknown"
	}
	k := math.Log(v2/v1) / math.Log(float64(n2)/float64(n1))
	k = math.Round(k*100) / 100
	switch {
	case k < 0.15:
		return k, "constant"
	case k < 0.7:
		return k, "sublinear (logarithmic-like)"
	case k < 1.3:
		return k, "linear"
	default:
		return k, "superlinear"
	}
}

func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil //nolint:nilerr // a file vanishing mid-walk is not worth failing the report
		}
		if info, err := d.Info(); err == nil {
			total += info.Size()
		}
		return nil
	})
	return total
}
