// Package mongostore keeps API keys in MongoDB (collection "api_keys" of the
// auth database): the SHA-256 of each secret under a unique index, never the
// secret.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/services/auth/internal/apikey"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Collection is the name of the API keys collection.
const Collection = "api_keys"

// Store implements apikey.Store.
type Store struct{ coll *mongo.Collection }

var _ apikey.Store = (*Store)(nil)

// New returns a Store on the client's database.
func New(c *mongodb.Client) *Store { return &Store{coll: c.DB.Collection(Collection)} }

// EnsureIndexes creates the indexes; it is idempotent. They are created one
// at a time because FerretDB fails createIndexes naming several indexes that
// already exist.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	for _, ix := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "hash", Value: 1}}, Options: options.Index().SetUnique(true).SetName("hash_unique")},
		{Keys: bson.D{{Key: "user_id", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("user_id")},
	} {
		if _, err := s.coll.Indexes().CreateOne(ctx, ix); err != nil {
			return fmt.Errorf("creating API key indexes: %w", err)
		}
	}
	return nil
}

type keyDoc struct {
	ID          string    `bson:"_id"`
	UserID      string    `bson:"user_id"`
	DisplayName string    `bson:"display_name"`
	Prefix      string    `bson:"prefix"`
	Hash        string    `bson:"hash"`
	CreateTime  time.Time `bson:"create_time"`
}

func (d keyDoc) key() apikey.Key {
	return apikey.Key{ID: d.ID, UserID: d.UserID, DisplayName: d.DisplayName, Prefix: d.Prefix, Hash: d.Hash, CreateTime: d.CreateTime.UTC()}
}

// InsertKey implements apikey.Store.
func (s *Store) InsertKey(ctx context.Context, k apikey.Key) error {
	_, err := s.coll.InsertOne(ctx, keyDoc{
		ID: k.ID, UserID: k.UserID, DisplayName: k.DisplayName, Prefix: k.Prefix, Hash: k.Hash, CreateTime: k.CreateTime.UTC(),
	})
	if err != nil {
		return fmt.Errorf("inserting API key: %w", err)
	}
	return nil
}

// GetKeyByHash implements apikey.Store.
func (s *Store) GetKeyByHash(ctx context.Context, hash string) (apikey.Key, error) {
	var d keyDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "hash", Value: hash}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return apikey.Key{}, apikey.ErrNotFound
	}
	if err != nil {
		return apikey.Key{}, fmt.Errorf("finding API key: %w", err)
	}
	return d.key(), nil
}

// ListKeys implements apikey.Store.
func (s *Store) ListKeys(ctx context.Context, userID, afterID string, limit int) ([]apikey.Key, error) {
	filter := bson.D{{Key: "user_id", Value: userID}}
	if afterID != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: afterID}}})
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	var docs []keyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	out := make([]apikey.Key, len(docs))
	for i, d := range docs {
		out[i] = d.key()
	}
	return out, nil
}

// CountKeys implements apikey.Store.
func (s *Store) CountKeys(ctx context.Context, userID string) (int64, error) {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("counting API keys: %w", err)
	}
	return n, nil
}

// DeleteKey implements apikey.Store.
func (s *Store) DeleteKey(ctx context.Context, userID, id string) error {
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}})
	if err != nil {
		return fmt.Errorf("deleting API key: %w", err)
	}
	if res.DeletedCount == 0 {
		return apikey.ErrNotFound
	}
	return nil
}

// DeleteUserKeys implements apikey.Store.
func (s *Store) DeleteUserKeys(ctx context.Context, userID string) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}}); err != nil {
		return fmt.Errorf("deleting the user's API keys: %w", err)
	}
	return nil
}
