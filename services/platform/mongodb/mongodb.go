// Package mongodb connects services to MongoDB (or a MongoDB-compatible
// engine such as FerretDB) with the platform's settings: majority writes,
// bounded pools and timeouts, a span per command, and detection of the engine
// so that callers can use features only where they exist and guard against
// the engine's gaps (see DocLocks).
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/telemetry"
)

// Config configures Connect.
type Config struct {
	// URI is the connection string; it may hold credentials.
	URI string `mapstructure:"uri" secret:"true"`
	// Database is the database the service works in.
	Database string `mapstructure:"database"`
	// MaxPoolSize caps connections per server.
	MaxPoolSize uint64 `mapstructure:"max_pool_size"`
	// ConnectTimeout bounds dialing a server and the initial ping.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// ServerSelectionTimeout bounds the wait for a usable server when the
	// cluster has none (an outage, an election). Shorter than a request's
	// deadline, so callers get a prompt "unavailable, retry" instead of a
	// timeout.
	ServerSelectionTimeout time.Duration `mapstructure:"server_selection_timeout"`
	// OperationTimeout is the driver's client-side timeout for each
	// operation (including its retries) whose context has no deadline.
	OperationTimeout time.Duration `mapstructure:"operation_timeout"`
	// ReadPreference is "primary", "primaryPreferred", "secondary",
	// "secondaryPreferred" or "nearest".
	ReadPreference string `mapstructure:"read_preference"`
	// MaxStaleness, when non-zero, excludes secondaries lagging more than
	// this (at least 90s, by the server selection spec). It cannot be used
	// with "primary".
	MaxStaleness time.Duration `mapstructure:"max_staleness"`
}

// DefaultConfig returns the defaults: a local server, pool of 100, 10s to
// connect, 5s per operation, primary reads. Database has no default.
func DefaultConfig() Config {
	return Config{
		URI:                    "mongodb://127.0.0.1:27017",
		MaxPoolSize:            100,
		ConnectTimeout:         10 * time.Second,
		ServerSelectionTimeout: time.Second,
		OperationTimeout:       5 * time.Second,
		ReadPreference:         "primary",
	}
}

// withDefaults fills zero fields from DefaultConfig, so callers building a
// Config by hand (tests, tools) need only set URI and Database.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.URI == "" {
		c.URI = d.URI
	}
	if c.MaxPoolSize == 0 {
		c.MaxPoolSize = d.MaxPoolSize
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.OperationTimeout <= 0 {
		c.OperationTimeout = d.OperationTimeout
	}
	if c.ServerSelectionTimeout <= 0 {
		c.ServerSelectionTimeout = d.ServerSelectionTimeout
	}
	if c.ReadPreference == "" {
		c.ReadPreference = d.ReadPreference
	}
	return c
}

// readPref builds the read preference, rejecting combinations the driver
// would only refuse at the first read.
func (c Config) readPref() (*readpref.ReadPref, error) {
	mode, err := readpref.ModeFromString(c.ReadPreference)
	if err != nil {
		return nil, fmt.Errorf("parsing read_preference %q: %w", c.ReadPreference, err)
	}
	if c.MaxStaleness == 0 {
		return readpref.New(mode)
	}
	if mode == readpref.PrimaryMode {
		return nil, errors.New("max_staleness cannot be used with read_preference primary")
	}
	if c.MaxStaleness < 90*time.Second {
		return nil, fmt.Errorf("max_staleness %s is below the 90s minimum", c.MaxStaleness)
	}
	return readpref.New(mode, readpref.WithMaxStaleness(c.MaxStaleness))
}

// Engine is the kind of server the client talks to.
type Engine string

// The engines Connect tells apart.
const (
	EngineMongos     Engine = "mongos"
	EngineReplicaSet Engine = "replicaset"
	EngineStandalone Engine = "standalone"
	EngineFerretDB   Engine = "ferretdb"
)

// Client is a connected client with the service's database and the engine
// it detected.
type Client struct {
	*mongo.Client
	Engine Engine
	DB     *mongo.Database
	// Locks serializes writes per document; a no-op unless Engine is
	// EngineFerretDB.
	Locks *DocLocks
}

// Connect dials cfg.URI with majority write concern, the configured pool,
// timeouts and read preference, and a command monitor that opens an
// OpenTelemetry span per command (db.system=mongodb, db.operation,
// db.mongodb.collection; never command bodies). It pings, then detects the
// engine: buildInfo has "ferretdbVersion" on FerretDB, hello says
// msg "isdbgrid" on mongos and has setName on a replica set member. tp and
// logger may be nil.
func Connect(ctx context.Context, cfg Config, tp *telemetry.Provider, logger *slog.Logger) (*Client, error) {
	cfg = cfg.withDefaults()
	if tp == nil {
		tp = telemetry.Noop()
	}
	if logger == nil {
		logger = logging.Discard()
	}
	if cfg.Database == "" {
		return nil, errors.New("connecting to mongodb: database is required")
	}
	rp, err := cfg.readPref()
	if err != nil {
		return nil, fmt.Errorf("connecting to mongodb: %w", err)
	}

	opts := options.Client().
		ApplyURI(cfg.URI).
		SetMaxPoolSize(cfg.MaxPoolSize).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetServerSelectionTimeout(cfg.ServerSelectionTimeout).
		SetTimeout(cfg.OperationTimeout).
		SetWriteConcern(writeconcern.Majority()).
		SetReadPreference(rp).
		SetMonitor(newCommandMonitor(tp))
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to mongodb: %w", err)
	}

	c, err := setup(ctx, client, cfg)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, err
	}
	logger.InfoContext(ctx, "connected to mongodb",
		slog.String("engine", string(c.Engine)),
		slog.String("database", cfg.Database),
		slog.String("read_preference", cfg.ReadPreference),
	)
	return c, nil
}

func setup(ctx context.Context, client *mongo.Client, cfg Config) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	// Each ping gives up after the (short) server selection timeout; keep
	// trying for the whole connect timeout so a service may start a little
	// before its database.
	for {
		err := client.Ping(ctx, nil)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pinging mongodb: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	engine, err := detectEngine(ctx, client.Database("admin"))
	if err != nil {
		return nil, err
	}
	return &Client{
		Client: client,
		Engine: engine,
		DB:     client.Database(cfg.Database),
		Locks:  NewDocLocks(engine == EngineFerretDB),
	}, nil
}

func detectEngine(ctx context.Context, admin *mongo.Database) (Engine, error) {
	var build bson.M
	if err := admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return "", fmt.Errorf("running buildInfo: %w", err)
	}
	if _, ok := build["ferretdbVersion"]; ok {
		return EngineFerretDB, nil
	}
	var hello struct {
		Msg     string `bson:"msg"`
		SetName string `bson:"setName"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return "", fmt.Errorf("running hello: %w", err)
	}
	switch {
	case hello.Msg == "isdbgrid":
		return EngineMongos, nil
	case hello.SetName != "":
		return EngineReplicaSet, nil
	default:
		return EngineStandalone, nil
	}
}

// duplicateKeyCodes are the server codes meaning a unique index rejected a
// write (see mongo.IsDuplicateKeyError).
var duplicateKeyCodes = map[int]bool{11000: true, 11001: true, 12582: true}

// sqliteUniqueViolation is how FerretDB's SQLite backend words a unique index
// violation it does not translate: an update that moves a document onto a
// taken key fails with InternalError (code 1) carrying this message.
const sqliteUniqueViolation = "UNIQUE constraint failed"

// IsUnavailable reports whether err means the database could not be
// reached (no server to select, a network failure): a condition to answer
// "unavailable, retry later", not an internal error.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var sse topology.ServerSelectionError
	var psse *topology.ServerSelectionError
	return mongo.IsNetworkError(err) || errors.As(err, &sse) || errors.As(err, &psse)
}

// IsDuplicateKey reports whether err is a unique index violation, as
// MongoDB and FerretDB report it from inserts, updates, upserts, bulk writes
// and find-and-modify.
func IsDuplicateKey(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	isDup := func(code int, msg string) bool {
		return duplicateKeyCodes[code] || strings.Contains(msg, sqliteUniqueViolation)
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) && isDup(int(ce.Code), ce.Message) {
		return true
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		for _, e := range we.WriteErrors {
			if isDup(e.Code, e.Message) {
				return true
			}
		}
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		for _, e := range bwe.WriteErrors {
			if isDup(e.Code, e.Message) {
				return true
			}
		}
	}
	return false
}
