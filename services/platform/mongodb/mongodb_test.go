package mongodb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConnectDetectsEngine(t *testing.T) {
	c := testenv.Mongo(t)
	if testenv.ExternalMongo() {
		if c.Engine == mongodb.EngineFerretDB || c.Locks.Enabled() {
			t.Errorf("engine %s, locks %v against an external MongoDB", c.Engine, c.Locks.Enabled())
		}
		return
	}
	if c.Engine != mongodb.EngineFerretDB {
		t.Errorf("Engine = %q, want ferretdb", c.Engine)
	}
	if !c.Locks.Enabled() {
		t.Error("DocLocks disabled on FerretDB")
	}
}

func TestConnectRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*mongodb.Config)
		want   string
	}{
		{"no database", func(c *mongodb.Config) { c.Database = "" }, "database is required"},
		{"bad read preference", func(c *mongodb.Config) { c.ReadPreference = "closest" }, "read_preference"},
		{"staleness with primary", func(c *mongodb.Config) { c.MaxStaleness = 2 * time.Minute }, "cannot be used with read_preference primary"},
		{"staleness too small", func(c *mongodb.Config) {
			c.ReadPreference = "nearest"
			c.MaxStaleness = 10 * time.Second
		}, "below the 90s minimum"},
		{"bad uri", func(c *mongodb.Config) { c.URI = "postgres://x" }, "connecting to mongodb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mongodb.DefaultConfig()
			cfg.Database = "x"
			tt.mutate(&cfg)
			_, err := mongodb.Connect(testCtx(t), cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Connect error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestConnectUnreachable(t *testing.T) {
	cfg := mongodb.DefaultConfig()
	cfg.URI = "mongodb://" + testenv.FreeAddr(t) + "/?directConnection=true"
	cfg.Database = "x"
	cfg.ConnectTimeout = 300 * time.Millisecond
	if _, err := mongodb.Connect(testCtx(t), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "pinging mongodb") {
		t.Fatalf("Connect to a closed port = %v, want a ping error", err)
	}
}

func TestCommandSpans(t *testing.T) {
	ctx := testCtx(t)
	rec := tracetest.NewSpanRecorder()
	tp := &telemetry.Provider{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
	}
	cfg := mongodb.DefaultConfig()
	cfg.URI = testenv.MongoURI(t)
	cfg.Database = testenv.DatabaseName(t.Name())
	c, err := mongodb.Connect(ctx, cfg, tp, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.DB.Drop(context.Background())
		_ = c.Disconnect(context.Background())
	})

	parentCtx, parent := tp.TracerProvider.Tracer("test").Start(ctx, "parent")
	if _, err := c.DB.Collection("movies").InsertOne(parentCtx, bson.D{{Key: "title", Value: "secret title"}}); err != nil {
		t.Fatal(err)
	}
	err = c.DB.RunCommand(parentCtx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err()
	if err == nil {
		t.Fatal("unknown command succeeded")
	}
	parent.End()

	var insert, failed sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "insert movies":
			insert = s
		case "noSuchCommand":
			failed = s
		}
	}
	if insert == nil || failed == nil {
		var names []string
		for _, s := range rec.Ended() {
			names = append(names, s.Name())
		}
		t.Fatalf("spans %q, want insert movies and noSuchCommand", names)
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range insert.Attributes() {
		attrs[kv.Key] = kv.Value.Emit()
		if strings.Contains(kv.Value.Emit(), "secret title") {
			t.Errorf("span attribute %s carries the document", kv.Key)
		}
	}
	want := map[attribute.Key]string{
		"db.system":             "mongodb",
		"db.operation":          "insert",
		"db.mongodb.collection": "movies",
		"db.name":               cfg.Database,
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if insert.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("command span is not a child of the caller's span")
	}
	if failed.Status().Code != otelcodes.Error {
		t.Errorf("failed command span status = %v, want Error", failed.Status())
	}
	for _, s := range rec.Started() {
		if s.EndTime().IsZero() && s.Name() != "parent" {
			t.Errorf("span %s never ended", s.Name())
		}
	}
}

func TestIsDuplicateKey(t *testing.T) {
	ctx := testCtx(t)
	c := testenv.Mongo(t)
	coll := c.DB.Collection("slugs")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "slug", Value: 1}},
		Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "slug", Value: "a"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "slug", Value: "b"}},
	}); err != nil {
		t.Fatal(err)
	}

	writes := []struct {
		name string
		do   func() error
	}{
		{"InsertOne same _id", func() error {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "slug", Value: "z"}})
			return err
		}},
		{"InsertOne same unique key", func() error {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "slug", Value: "a"}})
			return err
		}},
		{"InsertMany", func() error {
			_, err := coll.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 4}, {Key: "slug", Value: "b"}}})
			return err
		}},
		{"UpdateOne onto a taken key", func() error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "slug", Value: "a"}}}})
			return err
		}},
		{"upsert onto a taken key", func() error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 5}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "slug", Value: "a"}}}}, options.UpdateOne().SetUpsert(true))
			return err
		}},
		{"FindOneAndUpdate upsert", func() error {
			return coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 6}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "slug", Value: "b"}}}},
				options.FindOneAndUpdate().SetUpsert(true)).Err()
		}},
		{"BulkWrite", func() error {
			_, err := coll.BulkWrite(ctx, []mongo.WriteModel{
				mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: 7}, {Key: "slug", Value: "a"}}),
			})
			return err
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			err := w.do()
			if !mongodb.IsDuplicateKey(err) {
				t.Errorf("IsDuplicateKey(%v [%T]) = false, want true", err, err)
			}
		})
	}

	for _, err := range []error{nil, errors.New("E11000 lookalike"), mongo.ErrNoDocuments, context.DeadlineExceeded} {
		if mongodb.IsDuplicateKey(err) {
			t.Errorf("IsDuplicateKey(%v) = true", err)
		}
	}
}

// The update that hits a unique index on FerretDB fails as an InternalError
// and leaves the document as it was.
func TestEngineUniqueViolationOnUpdateLeavesDocument(t *testing.T) {
	ctx := testCtx(t)
	coll := testenv.Mongo(t).DB.Collection("slugs")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "slug", Value: 1}},
		Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "slug", Value: "a"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "slug", Value: "b"}, {Key: "n", Value: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "slug", Value: "a"}, {Key: "n", Value: 2}}}})
	if !mongodb.IsDuplicateKey(err) {
		t.Fatalf("update onto a taken key: %v, want a duplicate key error", err)
	}
	var got struct {
		Slug string `bson:"slug"`
		N    int32  `bson:"n"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Slug != "b" || got.N != 1 {
		t.Errorf("document after the failed update = %+v, want it unchanged", got)
	}
}
