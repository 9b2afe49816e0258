// Package mongostore keeps signing keys, refresh tokens and refresh-token
// families in MongoDB (collections "signing_keys", "refresh_tokens" and
// "refresh_families" of the auth database).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/services/auth/internal/token"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Collection names.
const (
	KeysCollection     = "signing_keys"
	RefreshCollection  = "refresh_tokens"
	FamiliesCollection = "refresh_families"
)

// Store implements token.KeyStore and token.RefreshStore.
type Store struct {
	keys     *mongo.Collection
	refresh  *mongo.Collection
	families *mongo.Collection
}

var (
	_ token.KeyStore     = (*Store)(nil)
	_ token.RefreshStore = (*Store)(nil)
)

// New returns a Store on the client's database.
func New(c *mongodb.Client) *Store {
	return &Store{
		keys:     c.DB.Collection(KeysCollection),
		refresh:  c.DB.Collection(RefreshCollection),
		families: c.DB.Collection(FamiliesCollection),
	}
}

// EnsureIndexes creates the indexes the queries need; it is idempotent.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	for _, ix := range []struct {
		coll *mongo.Collection
		key  string
	}{
		{s.refresh, "expire_time"},
		{s.refresh, "family"},
		{s.families, "user_id"},
	} {
		_, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: ix.key, Value: 1}}, Options: options.Index().SetName(ix.key),
		})
		if err != nil {
			return fmt.Errorf("creating index %s on %s: %w", ix.key, ix.coll.Name(), err)
		}
	}
	return nil
}

type keyDoc struct {
	ID            string    `bson:"_id"`
	Alg           string    `bson:"alg"`
	Public        []byte    `bson:"public"`
	SealedPrivate []byte    `bson:"sealed_private"`
	Nonce         []byte    `bson:"nonce"`
	CreateTime    time.Time `bson:"create_time"`
	SignUntil     time.Time `bson:"sign_until"`
	VerifyUntil   time.Time `bson:"verify_until"`
}

// InsertKey implements token.KeyStore.
func (s *Store) InsertKey(ctx context.Context, k token.StoredKey) error {
	_, err := s.keys.InsertOne(ctx, keyDoc{
		ID: k.ID, Alg: "EdDSA", Public: k.Public, SealedPrivate: k.SealedPrivate, Nonce: k.Nonce,
		CreateTime: k.CreateTime.UTC(), SignUntil: k.SignUntil.UTC(), VerifyUntil: k.VerifyUntil.UTC(),
	})
	if err != nil {
		return fmt.Errorf("inserting signing key: %w", err)
	}
	return nil
}

// ListKeys implements token.KeyStore.
func (s *Store) ListKeys(ctx context.Context) ([]token.StoredKey, error) {
	cur, err := s.keys.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	var docs []keyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	out := make([]token.StoredKey, 0, len(docs))
	for _, d := range docs {
		out = append(out, token.StoredKey{
			ID: d.ID, Public: d.Public, SealedPrivate: d.SealedPrivate, Nonce: d.Nonce,
			CreateTime: d.CreateTime.UTC(), SignUntil: d.SignUntil.UTC(), VerifyUntil: d.VerifyUntil.UTC(),
		})
	}
	return out, nil
}

// DeleteKeysBefore implements token.KeyStore.
func (s *Store) DeleteKeysBefore(ctx context.Context, t time.Time) error {
	_, err := s.keys.DeleteMany(ctx, bson.D{{Key: "verify_until", Value: bson.D{{Key: "$lt", Value: t.UTC()}}}})
	if err != nil {
		return fmt.Errorf("deleting signing keys: %w", err)
	}
	return nil
}

type familyDoc struct {
	ID         string    `bson:"_id"`
	UserID     string    `bson:"user_id"`
	Revoked    bool      `bson:"revoked"`
	CreateTime time.Time `bson:"create_time"`
}

type refreshDoc struct {
	Hash       string    `bson:"_id"`
	Family     string    `bson:"family"`
	UserID     string    `bson:"user_id"`
	CreateTime time.Time `bson:"create_time"`
	ExpireTime time.Time `bson:"expire_time"`
	Used       bool      `bson:"used"`
}

// InsertFamily implements token.RefreshStore.
func (s *Store) InsertFamily(ctx context.Context, f token.Family) error {
	_, err := s.families.InsertOne(ctx, familyDoc{ID: f.ID, UserID: f.UserID, Revoked: f.Revoked, CreateTime: f.CreateTime.UTC()})
	if err != nil {
		return fmt.Errorf("inserting refresh family: %w", err)
	}
	return nil
}

// GetFamily implements token.RefreshStore.
func (s *Store) GetFamily(ctx context.Context, id string) (token.Family, error) {
	var d familyDoc
	err := s.families.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return token.Family{}, token.ErrNotFound
	}
	if err != nil {
		return token.Family{}, fmt.Errorf("finding refresh family: %w", err)
	}
	return token.Family{ID: d.ID, UserID: d.UserID, Revoked: d.Revoked, CreateTime: d.CreateTime.UTC()}, nil
}

// RevokeFamily implements token.RefreshStore.
func (s *Store) RevokeFamily(ctx context.Context, id string) error {
	_, err := s.families.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}}}})
	if err != nil {
		return fmt.Errorf("revoking refresh family: %w", err)
	}
	return nil
}

// RevokeUserFamilies implements token.RefreshStore.
func (s *Store) RevokeUserFamilies(ctx context.Context, userID string) error {
	_, err := s.families.UpdateMany(ctx, bson.D{{Key: "user_id", Value: userID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}}}})
	if err != nil {
		return fmt.Errorf("revoking refresh families: %w", err)
	}
	return nil
}

// InsertRefresh implements token.RefreshStore.
func (s *Store) InsertRefresh(ctx context.Context, t token.RefreshToken) error {
	_, err := s.refresh.InsertOne(ctx, refreshDoc{
		Hash: t.Hash, Family: t.Family, UserID: t.UserID, CreateTime: t.CreateTime.UTC(), ExpireTime: t.ExpireTime.UTC(), Used: t.Used,
	})
	if err != nil {
		return fmt.Errorf("inserting refresh token: %w", err)
	}
	return nil
}

// GetRefresh implements token.RefreshStore.
func (s *Store) GetRefresh(ctx context.Context, hash string) (token.RefreshToken, error) {
	var d refreshDoc
	err := s.refresh.FindOne(ctx, bson.D{{Key: "_id", Value: hash}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return token.RefreshToken{}, token.ErrNotFound
	}
	if err != nil {
		return token.RefreshToken{}, fmt.Errorf("finding refresh token: %w", err)
	}
	return token.RefreshToken{
		Hash: d.Hash, Family: d.Family, UserID: d.UserID, CreateTime: d.CreateTime.UTC(), ExpireTime: d.ExpireTime.UTC(), Used: d.Used,
	}, nil
}

// MarkRefreshUsed implements token.RefreshStore with an update conditional on
// the token being unused (atomic on MongoDB; the caller serialises per family
// for FerretDB).
func (s *Store) MarkRefreshUsed(ctx context.Context, hash string) (bool, error) {
	res, err := s.refresh.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: hash}, {Key: "used", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "used", Value: true}}}})
	if err != nil {
		return false, fmt.Errorf("marking refresh token used: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// DeleteExpired implements token.RefreshStore. Families are kept: they are
// small and revoking an old family must still work.
func (s *Store) DeleteExpired(ctx context.Context, t time.Time) error {
	_, err := s.refresh.DeleteMany(ctx, bson.D{{Key: "expire_time", Value: bson.D{{Key: "$lt", Value: t.UTC()}}}})
	if err != nil {
		return fmt.Errorf("deleting expired refresh tokens: %w", err)
	}
	return nil
}
