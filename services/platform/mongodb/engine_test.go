package mongodb_test

// These tests pin down behaviour of the engine that services rely on. They
// run against the embedded FerretDB (or MARQUEE_TEST_MONGO_URI), so a FerretDB
// upgrade that changes any of it fails here first.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

// Unique indexes are enforced even when the inserts race: exactly one of
// eight concurrent inserts of the same key wins, the rest get a duplicate
// key error.
func TestEngineUniqueIndexUnderConcurrentInserts(t *testing.T) {
	ctx := testCtx(t)
	coll := testenv.Mongo(t).DB.Collection("accounts")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "email", Value: 1}},
		Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}

	const writers = 8
	var wins, dups atomic.Int32
	var other sync.Map
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "email", Value: "a@example.com"}, {Key: "writer", Value: i}})
			switch {
			case err == nil:
				wins.Add(1)
			case mongodb.IsDuplicateKey(err):
				dups.Add(1)
			default:
				other.Store(i, err)
			}
		})
	}
	wg.Wait()
	other.Range(func(k, v any) bool {
		t.Errorf("writer %v: unexpected error %v", k, v)
		return true
	})
	if wins.Load() != 1 || dups.Load() != writers-1 {
		t.Errorf("%d inserts won and %d got duplicate key, want 1 and %d", wins.Load(), dups.Load(), writers-1)
	}
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("collection holds %d documents, want 1", n)
	}
}

// Keyset pagination over a compound sort, the way list endpoints page:
// sort {year: -1, _id: 1}, and the next page starts after (year, _id) with
// {$or: [{year: {$lt: y}}, {year: y, _id: {$gt: id}}]}.
func TestEngineKeysetPaginationWithOr(t *testing.T) {
	ctx := testCtx(t)
	coll := testenv.Mongo(t).DB.Collection("movies")

	years := []int32{1994, 1972, 1994, 2008, 1972, 1994, 2003, 2008, 1999, 1994, 1972}
	var docs []any
	for i, y := range years {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("m%02d", i)}, {Key: "year", Value: y}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	type row struct {
		ID   string `bson:"_id"`
		Year int32  `bson:"year"`
	}
	sort := bson.D{{Key: "year", Value: -1}, {Key: "_id", Value: 1}}
	find := func(filter bson.D, limit int64) []row {
		t.Helper()
		cur, err := coll.Find(ctx, filter, options.Find().SetSort(sort).SetLimit(limit))
		if err != nil {
			t.Fatal(err)
		}
		var out []row
		if err := cur.All(ctx, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	all := find(bson.D{}, 0)
	if len(all) != len(years) {
		t.Fatalf("full scan returned %d rows, want %d", len(all), len(years))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.Year < b.Year || (a.Year == b.Year && a.ID >= b.ID) {
			t.Fatalf("compound sort broken at %d: %v then %v", i, a, b)
		}
	}

	var paged []row
	filter := bson.D{}
	for range len(years) { // bounded: at most one page per document
		page := find(filter, 3)
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
		last := page[len(page)-1]
		filter = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "year", Value: bson.D{{Key: "$lt", Value: last.Year}}}},
			bson.D{{Key: "year", Value: last.Year}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: last.ID}}}},
		}}}
	}
	if fmt.Sprint(paged) != fmt.Sprint(all) {
		t.Errorf("pages joined = %v\nwant          %v", paged, all)
	}
}

// Eight writers each run a compare-and-set loop (read revision n, update
// where revision == n to n+1 and count += 1) through DocLocks. On FerretDB,
// where the conditional update is not atomic, the locks are what keep every
// successful CAS from being lost: the final revision and count equal the
// number of successes.
func TestEngineDocLocksPreventLostUpdates(t *testing.T) {
	ctx := testCtx(t)
	c := testenv.Mongo(t)
	coll := c.DB.Collection("counters")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "c1"}, {Key: "revision", Value: int64(0)}, {Key: "count", Value: int64(0)}}); err != nil {
		t.Fatal(err)
	}

	const writers, attempts = 8, 10
	var successes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range attempts {
				ok, err := casIncrement(t, c, coll)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					successes.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var got struct {
		Revision int64 `bson:"revision"`
		Count    int64 `bson:"count"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "c1"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Revision != successes.Load() || got.Count != successes.Load() {
		t.Errorf("revision %d, count %d after %d successful CAS updates: updates were lost",
			got.Revision, got.Count, successes.Load())
	}
	// Under the lock no CAS can observe a stale revision.
	if c.Locks.Enabled() && successes.Load() != writers*attempts {
		t.Errorf("%d of %d CAS updates succeeded under DocLocks, want all", successes.Load(), writers*attempts)
	}
}

func casIncrement(t *testing.T, c *mongodb.Client, coll *mongo.Collection) (bool, error) {
	ctx := testCtx(t)
	unlock := c.Locks.Lock("counters/c1")
	defer unlock()
	var cur struct {
		Revision int64 `bson:"revision"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "c1"}}).Decode(&cur); err != nil {
		return false, err
	}
	res, err := coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: "c1"}, {Key: "revision", Value: cur.Revision}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "revision", Value: cur.Revision + 1}}},
			{Key: "$inc", Value: bson.D{{Key: "count", Value: int64(1)}}},
		})
	if err != nil {
		return false, err
	}
	return res.ModifiedCount == 1, nil
}
