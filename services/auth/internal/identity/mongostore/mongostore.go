// Package mongostore keeps users in MongoDB (collection "users" of the auth
// database), with a unique index on the normalised email so that of two
// concurrent registrations with one email exactly one succeeds.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/services/auth/internal/identity"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/mongodb"
)

// Collection is the name of the users collection.
const Collection = "users"

// Store implements identity.Store.
type Store struct {
	coll  *mongo.Collection
	locks *mongodb.DocLocks
}

var _ identity.Store = (*Store)(nil)

// New returns a Store on the client's database.
func New(c *mongodb.Client) *Store {
	return &Store{coll: c.DB.Collection(Collection), locks: c.Locks}
}

// EnsureIndexes creates the unique email index; it is idempotent.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "email", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("email_unique"),
	})
	if err != nil {
		return fmt.Errorf("creating the users email index: %w", err)
	}
	return nil
}

type userDoc struct {
	ID           string    `bson:"_id"`
	Email        string    `bson:"email"`
	DisplayName  string    `bson:"display_name"`
	Role         string    `bson:"role"`
	Disabled     bool      `bson:"disabled"`
	PasswordHash string    `bson:"password_hash"`
	CreateTime   time.Time `bson:"create_time"`
	UpdateTime   time.Time `bson:"update_time"`
	// Version makes updates conditional, so two replicas updating one user
	// at once cannot lose a change.
	Version int64 `bson:"version"`
}

func toDoc(u identity.User, version int64) userDoc {
	return userDoc{
		ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: string(u.Role), Disabled: u.Disabled,
		PasswordHash: u.PasswordHash, CreateTime: u.CreateTime.UTC(), UpdateTime: u.UpdateTime.UTC(), Version: version,
	}
}

func (d userDoc) user() identity.User {
	return identity.User{
		ID: d.ID, Email: d.Email, DisplayName: d.DisplayName, Role: authn.Role(d.Role), Disabled: d.Disabled,
		PasswordHash: d.PasswordHash, CreateTime: d.CreateTime.UTC(), UpdateTime: d.UpdateTime.UTC(),
	}
}

// CreateUser implements identity.Store.
func (s *Store) CreateUser(ctx context.Context, u identity.User) error {
	if _, err := s.coll.InsertOne(ctx, toDoc(u, 1)); err != nil {
		if mongodb.IsDuplicateKey(err) {
			return identity.ErrEmailTaken
		}
		return fmt.Errorf("inserting user: %w", err)
	}
	return nil
}

func (s *Store) findOne(ctx context.Context, filter bson.D) (userDoc, error) {
	var d userDoc
	err := s.coll.FindOne(ctx, filter).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return userDoc{}, identity.ErrUserNotFound
	}
	if err != nil {
		return userDoc{}, fmt.Errorf("finding user: %w", err)
	}
	return d, nil
}

// GetUser implements identity.Store.
func (s *Store) GetUser(ctx context.Context, id string) (identity.User, error) {
	d, err := s.findOne(ctx, bson.D{{Key: "_id", Value: id}})
	return d.user(), err
}

// GetUserByEmail implements identity.Store.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (identity.User, error) {
	d, err := s.findOne(ctx, bson.D{{Key: "email", Value: email}})
	return d.user(), err
}

// UpdateUser implements identity.Store with a read, the update and a write
// conditional on the version read, retried when another writer won.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(*identity.User) error) (identity.User, error) {
	unlock := s.locks.Lock(Collection + "/" + id)
	defer unlock()
	for range 5 {
		d, err := s.findOne(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			return identity.User{}, err
		}
		u := d.user()
		if err := update(&u); err != nil {
			return identity.User{}, err
		}
		u.ID = d.ID // the id is not the update's to change
		res, err := s.coll.ReplaceOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "version", Value: d.Version}},
			toDoc(u, d.Version+1))
		if err != nil {
			if mongodb.IsDuplicateKey(err) {
				return identity.User{}, identity.ErrEmailTaken
			}
			return identity.User{}, fmt.Errorf("updating user: %w", err)
		}
		if res.MatchedCount == 1 {
			return u, nil
		}
	}
	return identity.User{}, fmt.Errorf("updating user %s: too many concurrent updates", id)
}

// DeleteUser implements identity.Store.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("deleting user: %w", err)
	}
	if res.DeletedCount == 0 {
		return identity.ErrUserNotFound
	}
	return nil
}
