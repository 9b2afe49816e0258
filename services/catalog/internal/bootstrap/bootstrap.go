// Package bootstrap prepares the catalogue's database: it creates every
// index (the List combinations of QUERIES.md, the change feed's, the rename
// fan-out's, tombstone purging) and, when connected to a mongos, enables
// sharding and shards movies and directors on {_id: "hashed"}, with optional
// zones. It is idempotent: `catalog migrate` and the Kubernetes Job run it
// on every deploy.
//
// The commands are built by pure functions (IndexCommands,
// ShardingCommands) so tests can check exactly what a mongos receives; Run
// only sends them and tolerates the "already done" answers.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Command is one database command and the database it runs against.
type Command struct {
	DB  string
	Cmd bson.D
}

func keys(fields ...string) bson.D {
	d := bson.D{}
	for _, f := range fields {
		d = append(d, bson.E{Key: f, Value: 1})
	}
	return d
}

func index(name string, key bson.D) bson.D {
	return bson.D{{Key: "name", Value: name}, {Key: "key", Value: key}}
}

// IndexCommands returns the createIndexes commands for db. On a mongos the
// hashed _id indexes that sharding needs come first.
func IndexCommands(db string, engine mongodb.Engine) []Command {
	var movieIdx, directorIdx bson.A
	if engine == mongodb.EngineMongos {
		movieIdx = append(movieIdx, index("_id_hashed", bson.D{{Key: "_id", Value: "hashed"}}))
		directorIdx = append(directorIdx, index("_id_hashed", bson.D{{Key: "_id", Value: "hashed"}}))
	}
	for _, ix := range movie.MovieIndexes {
		movieIdx = append(movieIdx, index(ix.Name, keys(ix.Keys...)))
	}
	movieIdx = append(movieIdx, index("delete_time", keys("delete_time")))
	directorIdx = append(directorIdx,
		index("name_lower_id", keys("name_lower", "_id")),
		index("pending_rename_started", keys("pending_rename.started")),
	)
	return []Command{
		{DB: db, Cmd: bson.D{{Key: "createIndexes", Value: mongostore.MoviesCollection}, {Key: "indexes", Value: movieIdx}}},
		{DB: db, Cmd: bson.D{{Key: "createIndexes", Value: mongostore.DirectorsCollection}, {Key: "indexes", Value: directorIdx}}},
	}
}

// ParseZones parses catalog.shard_zones: a comma-separated list of
// SHARD=ZONE pairs, such as "rs-eu-0=eu,rs-us-0=us".
func ParseZones(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		shard, zone, ok := strings.Cut(part, "=")
		shard, zone = strings.TrimSpace(shard), strings.TrimSpace(zone)
		if !ok || shard == "" || zone == "" {
			return nil, fmt.Errorf("parsing shard zone %q: want SHARD=ZONE", part)
		}
		out[shard] = zone
	}
	return out, nil
}

// ShardingCommands returns the commands that shard db's collections on a
// mongos: enableSharding, shardCollection on {_id: "hashed"} for movies and
// directors, then addShardToZone per configured zone (zone key ranges are an
// operator's decision and stay outside this step).
func ShardingCommands(db string, zones map[string]string) []Command {
	cmds := []Command{
		{DB: "admin", Cmd: bson.D{{Key: "enableSharding", Value: db}}},
	}
	for _, coll := range []string{mongostore.MoviesCollection, mongostore.DirectorsCollection} {
		cmds = append(cmds, Command{DB: "admin", Cmd: bson.D{
			{Key: "shardCollection", Value: db + "." + coll},
			{Key: "key", Value: bson.D{{Key: "_id", Value: "hashed"}}},
		}})
	}
	shards := make([]string, 0, len(zones))
	for s := range zones {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	for _, s := range shards {
		cmds = append(cmds, Command{DB: "admin", Cmd: bson.D{{Key: "addShardToZone", Value: s}, {Key: "zone", Value: zones[s]}}})
	}
	return cmds
}

// Options configures Run.
type Options struct {
	// Zones is the parsed catalog.shard_zones.
	Zones  map[string]string
	Logger *slog.Logger
}

// Run bootstraps c's database for its engine and logs what it did.
func Run(ctx context.Context, c *mongodb.Client, opts Options) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := c.DB.Name()
	logger.InfoContext(ctx, "bootstrapping catalog database", "engine", string(c.Engine), "database", db)
	for _, cmd := range IndexCommands(db, c.Engine) {
		err := c.Database(cmd.DB).RunCommand(ctx, cmd.Cmd).Err()
		if err != nil && c.Engine == mongodb.EngineFerretDB {
			// FerretDB scans every query anyway; an index it cannot build
			// costs nothing but is worth a line in the log.
			logger.WarnContext(ctx, "index not created on FerretDB", "command", cmd.Cmd[0].Value, "error", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("creating indexes on %v: %w", cmd.Cmd[0].Value, err)
		}
		logger.InfoContext(ctx, "indexes ensured", "collection", cmd.Cmd[0].Value)
	}
	if err := seedGenreCounts(ctx, mongostore.New(c), logger); err != nil {
		return err
	}
	if c.Engine != mongodb.EngineMongos {
		if len(opts.Zones) > 0 {
			logger.WarnContext(ctx, "shard zones configured but the engine is not a mongos; ignoring them", "engine", string(c.Engine))
		}
		logger.InfoContext(ctx, "not sharding: the engine is not a mongos", "engine", string(c.Engine))
		return nil
	}
	for _, cmd := range ShardingCommands(db, opts.Zones) {
		err := c.Database(cmd.DB).RunCommand(ctx, cmd.Cmd).Err()
		if err != nil && !alreadyDone(err) {
			return fmt.Errorf("running %s: %w", cmd.Cmd[0].Key, err)
		}
		logger.InfoContext(ctx, "sharding command applied", "command", cmd.Cmd[0].Key, "target", cmd.Cmd[0].Value,
			"already", err != nil)
	}
	return nil
}

// seedGenreCounts counts the genres of a catalogue whose genres were never
// counted (one that predates the counts), before any replica serves them.
func seedGenreCounts(ctx context.Context, store *mongostore.Store, logger *slog.Logger) error {
	if _, counted, err := store.GenresCountedAt(ctx); err != nil || counted {
		return err
	}
	gs, err := store.CountGenres(ctx)
	if err != nil {
		return fmt.Errorf("counting genres: %w", err)
	}
	if err := store.SetGenreCounts(ctx, gs, time.Now()); err != nil {
		return err
	}
	logger.InfoContext(ctx, "genre counts seeded", "genres", len(gs))
	return nil
}

// alreadyDone recognises the answers older servers give to repeating a
// sharding step (newer ones answer ok).
func alreadyDone(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		return false
	}
	// 20 AlreadyInitialized, 23 AlreadyInitialized (enableSharding on 4.x).
	return ce.Code == 20 || ce.Code == 23 || strings.Contains(ce.Message, "already sharded") ||
		strings.Contains(ce.Message, "already enabled")
}
