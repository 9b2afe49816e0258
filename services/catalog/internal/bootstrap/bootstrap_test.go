package bootstrap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/marquee-dev/marquee/services/catalog/internal/bootstrap"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

// TestShardingCommands pins exactly what a mongos receives.
func TestShardingCommands(t *testing.T) {
	got := bootstrap.ShardingCommands("catalog", map[string]string{"rs-us-0": "us", "rs-eu-0": "eu"})
	want := []bootstrap.Command{
		{DB: "admin", Cmd: bson.D{{Key: "enableSharding", Value: "catalog"}}},
		{DB: "admin", Cmd: bson.D{{Key: "shardCollection", Value: "catalog.movies"}, {Key: "key", Value: bson.D{{Key: "_id", Value: "hashed"}}}}},
		{DB: "admin", Cmd: bson.D{{Key: "shardCollection", Value: "catalog.directors"}, {Key: "key", Value: bson.D{{Key: "_id", Value: "hashed"}}}}},
		{DB: "admin", Cmd: bson.D{{Key: "addShardToZone", Value: "rs-eu-0"}, {Key: "zone", Value: "eu"}}},
		{DB: "admin", Cmd: bson.D{{Key: "addShardToZone", Value: "rs-us-0"}, {Key: "zone", Value: "us"}}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestIndexCommandsOnMongos(t *testing.T) {
	cmds := bootstrap.IndexCommands("catalog", mongodb.EngineMongos)
	if len(cmds) != 2 {
		t.Fatalf("got %d commands", len(cmds))
	}
	movies := cmds[0].Cmd
	if movies[0].Key != "createIndexes" || movies[0].Value != "movies" {
		t.Fatalf("first command %v", movies[0])
	}
	idx := movies[1].Value.(bson.A)
	// The hashed _id index comes first so shardCollection works on a
	// collection that already holds data.
	if got := fmt.Sprint(idx[0]); got != fmt.Sprint(bson.D{{Key: "name", Value: "_id_hashed"}, {Key: "key", Value: bson.D{{Key: "_id", Value: "hashed"}}}}) {
		t.Fatalf("first index %s", got)
	}
	if len(idx) != len(movie.MovieIndexes)+2 {
		t.Fatalf("got %d movie indexes", len(idx))
	}
	if got := fmt.Sprint(idx[1]); got != fmt.Sprint(bson.D{{Key: "name", Value: "imdb_score_id"}, {Key: "key", Value: bson.D{{Key: "imdb_score", Value: 1}, {Key: "_id", Value: 1}}}}) {
		t.Fatalf("second index %s", got)
	}
	plain := bootstrap.IndexCommands("catalog", mongodb.EngineReplicaSet)
	if len(plain[0].Cmd[1].Value.(bson.A)) != len(movie.MovieIndexes)+1 {
		t.Fatal("a replica set must not get the hashed index")
	}
}

func TestParseZones(t *testing.T) {
	z, err := bootstrap.ParseZones(" a=eu , b=us,")
	if err != nil || z["a"] != "eu" || z["b"] != "us" || len(z) != 2 {
		t.Fatalf("%v %v", z, err)
	}
	for _, bad := range []string{"a", "=eu", "a="} {
		if _, err := bootstrap.ParseZones(bad); err == nil {
			t.Errorf("ParseZones(%q) accepted", bad)
		}
	}
}

// TestRunIsIdempotent bootstraps twice on the test engine and checks the
// indexes exist.
func TestRunIsIdempotent(t *testing.T) {
	c := testenv.Mongo(t)
	for range 2 {
		if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	specs, err := c.DB.Collection(mongostore.MoviesCollection).Indexes().ListSpecifications(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	for _, ix := range movie.MovieIndexes {
		if !slices.Contains(names, ix.Name) {
			t.Errorf("index %s missing (have %v)", ix.Name, names)
		}
	}
}

// TestExplainUsesIndexes checks, on a real MongoDB (MARQUEE_TEST_MONGO_URI),
// that every supported List combination is answered by its index.
func TestExplainUsesIndexes(t *testing.T) {
	c := testenv.Mongo(t)
	if c.Engine == mongodb.EngineFerretDB {
		t.Skip("FerretDB never uses indexes; set MARQUEE_TEST_MONGO_URI to a MongoDB to run this")
	}
	if err := bootstrap.Run(t.Context(), c, bootstrap.Options{}); err != nil {
		t.Fatal(err)
	}
	p, _ := movie.NewPlanner()
	for _, tc := range []struct{ filter, order, index string }{
		{"", "imdbScore desc", "imdb_score_id"},
		{"", "popularity", "popularity_id"},
		{"year >= 1990", "year", "year_id"},
		{`title = "star*"`, "title", "title_lower_id"},
		{"", "updateTime", "update_time_id"},
		{`genres:"Drama"`, "", "genres_id"},
		{`genres:"Drama" AND imdbScore >= 8`, "imdbScore desc", "genres_imdb_score_id"},
		{`genres:"Drama"`, "popularity desc", "genres_popularity_id"},
		{`genres:"Drama"`, "year", "genres_year_id"},
		{`genres:"Drama"`, "title", "genres_title_lower_id"},
		{`directors.id = "d_X"`, "", "directors_id_id"},
		{`directors.id = "d_X"`, "year desc", "directors_id_year_id"},
		{`directors.name = "X"`, "", "directors_name_id"},
		{`directors.name = "X"`, "year", "directors_name_year_id"},
	} {
		q, err := p.Plan(tc.filter, tc.order)
		if err != nil {
			t.Fatalf("%s / %s: %v", tc.filter, tc.order, err)
		}
		q.Limit = 21
		var out bson.M
		err = c.DB.RunCommand(t.Context(), bson.D{
			{Key: "explain", Value: bson.D{
				{Key: "find", Value: mongostore.MoviesCollection},
				{Key: "filter", Value: mongostore.MovieFilter(q)},
				{Key: "sort", Value: mongostore.MovieSort(q)},
				{Key: "limit", Value: q.Limit},
			}},
			{Key: "verbosity", Value: "queryPlanner"},
		}).Decode(&out)
		if err != nil {
			t.Fatal(err)
		}
		plan := fmt.Sprint(out["queryPlanner"])
		if !strings.Contains(plan, tc.index) || strings.Contains(plan, "COLLSCAN") || strings.Contains(plan, "stage:SORT ") {
			t.Errorf("%s / %s: plan does not use %s without a scan or sort: %s", tc.filter, tc.order, tc.index, plan)
		}
	}
}
