// Package identity holds Marquee's users: registration, password sign-in,
// roles, disabling and deletion, and the admin bootstrap. It declares the
// Store it needs; mongostore implements it.
package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Errors returned by the Service and its Store.
var (
	ErrUserNotFound = errors.New("user not found")
	ErrEmailTaken   = errors.New("email already registered")
	// ErrInvalidCredentials answers a sign-in with an unknown email, a wrong
	// password or a disabled account alike, so the answer tells nothing about
	// which accounts exist.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrCannotModifySelf stops an administrator from demoting or disabling
	// their own account, which could leave nobody able to manage users.
	ErrCannotModifySelf = errors.New("an administrator cannot demote or disable their own account")
)

// Reasons carried by InvalidInputError.
const (
	ReasonInvalidArgument = "INVALID_ARGUMENT"
	ReasonWeakPassword    = "WEAK_PASSWORD"
)

// InvalidInputError reports a field the caller got wrong.
type InvalidInputError struct {
	Field       string
	Reason      string // ReasonInvalidArgument or ReasonWeakPassword
	Description string
}

func (e *InvalidInputError) Error() string { return e.Field + ": " + e.Description }

func invalid(field, desc string) error {
	return &InvalidInputError{Field: field, Reason: ReasonInvalidArgument, Description: desc}
}

// Limits on user input.
const (
	MaxEmailLen       = 254 // RFC 5321 path limit
	MaxDisplayNameLen = 100 // characters
)

// User is a registered user.
type User struct {
	ID           string
	Email        string // normalised: trimmed, lower case
	DisplayName  string
	Role         authn.Role // RoleUser or RoleAdmin
	Disabled     bool
	PasswordHash string // PHC string; never leaves this service
	CreateTime   time.Time
	UpdateTime   time.Time
}

// Active reports whether the user may act: not disabled.
func (u User) Active() bool { return !u.Disabled }

// Store keeps users. Emails are unique (the caller passes them normalised).
type Store interface {
	// CreateUser inserts u; ErrEmailTaken when the email is registered.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user with id, or ErrUserNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail returns the user with the normalised email, or
	// ErrUserNotFound.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// UpdateUser applies update to the stored user and saves it; updates of
	// one user are serialised. It returns the saved user or ErrUserNotFound.
	UpdateUser(ctx context.Context, id string, update func(*User) error) (User, error)
	// DeleteUser removes the user, or returns ErrUserNotFound.
	DeleteUser(ctx context.Context, id string) error
}

// Update lists the fields of an UpdateUser call; nil fields stay as they are.
type Update struct {
	DisplayName *string
	Role        *authn.Role
	Disabled    *bool
}

// Options configure a Service.
type Options struct {
	Hasher *Hasher          // nil means NewHasher(DefaultParams)
	Now    func() time.Time // nil means time.Now
	Policy *PasswordPolicy  // nil means NewPasswordPolicy()
}

// Service is the users' domain logic.
type Service struct {
	store     Store
	hasher    *Hasher
	policy    *PasswordPolicy
	now       func() time.Time
	dummyHash string
}

// NewService returns a Service over store.
func NewService(store Store, opts Options) (*Service, error) {
	s := &Service{store: store, hasher: opts.Hasher, policy: opts.Policy, now: opts.Now}
	if s.hasher == nil {
		s.hasher = NewHasher(DefaultParams)
	}
	if s.policy == nil {
		s.policy = NewPasswordPolicy()
	}
	if s.now == nil {
		s.now = time.Now
	}
	// Signing in with an unknown email checks the password against this
	// hash, so that it takes as long as a wrong password does.
	dummy, err := s.hasher.Hash(context.Background(), rand.Text())
	if err != nil {
		return nil, fmt.Errorf("hashing the dummy password: %w", err)
	}
	s.dummyHash = dummy
	return s, nil
}

// NewUserID returns a new opaque, time-ordered user id ("u_01HZX…").
func NewUserID() string { return "u_" + ulid.Make().String() }

// NormalizeEmail trims and lower-cases an email address and checks that it is
// a bare address.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	switch {
	case e == "":
		return "", invalid("email", "is required")
	case len(e) > MaxEmailLen:
		return "", invalid("email", fmt.Sprintf("must be at most %d bytes", MaxEmailLen))
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", invalid("email", "must be an email address such as name@example.com")
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" {
		return "", invalid("email", "must be an email address such as name@example.com")
	}
	return e, nil
}

func checkDisplayName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", invalid("display_name", "must be valid UTF-8")
	}
	if utf8.RuneCountInString(name) > MaxDisplayNameLen {
		return "", invalid("display_name", fmt.Sprintf("must be at most %d characters", MaxDisplayNameLen))
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", invalid("display_name", "must not contain control characters")
		}
	}
	return name, nil
}

// Register creates a user with the role user.
func (s *Service) Register(ctx context.Context, email, password, displayName string) (User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	displayName, err = checkDisplayName(displayName)
	if err != nil {
		return User{}, err
	}
	if err := s.policy.Check(password, email); err != nil {
		return User{}, err
	}
	return s.create(ctx, email, password, displayName, authn.RoleUser)
}

func (s *Service) create(ctx context.Context, email, password, displayName string, role authn.Role) (User, error) {
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("hashing password: %w", err)
	}
	now := s.now().UTC()
	u := User{
		ID: NewUserID(), Email: email, DisplayName: displayName, Role: role,
		PasswordHash: hash, CreateTime: now, UpdateTime: now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	return u, nil
}

// Authenticate checks an email and password. An unknown email, a wrong
// password and a disabled account all return ErrInvalidCredentials after the
// same amount of work: one password hash.
func (s *Service) Authenticate(ctx context.Context, email, password string) (User, error) {
	norm, nerr := NormalizeEmail(email)
	var u User
	err := ErrUserNotFound
	if nerr == nil {
		u, err = s.store.GetUserByEmail(ctx, norm)
	}
	switch {
	case errors.Is(err, ErrUserNotFound):
		if _, herr := s.hasher.Verify(ctx, password, s.dummyHash); herr != nil {
			return User{}, herr
		}
		return User{}, ErrInvalidCredentials
	case err != nil:
		return User{}, fmt.Errorf("loading user: %w", err)
	}
	ok, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return User{}, fmt.Errorf("checking password: %w", err)
	}
	if !ok || u.Disabled {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// Get returns the user with id.
func (s *Service) Get(ctx context.Context, id string) (User, error) {
	if id == "" {
		return User{}, ErrUserNotFound
	}
	return s.store.GetUser(ctx, id)
}

// GetActive returns the user with id when it exists and is not disabled, and
// ErrUserNotFound otherwise.
func (s *Service) GetActive(ctx context.Context, id string) (User, error) {
	u, err := s.Get(ctx, id)
	if err != nil {
		return User{}, err
	}
	if !u.Active() {
		return User{}, ErrUserNotFound
	}
	return u, nil
}

// Update changes a user on behalf of the administrator actorID.
func (s *Service) Update(ctx context.Context, actorID, id string, upd Update) (User, error) {
	if id == "" {
		return User{}, invalid("user.id", "is required")
	}
	if upd.DisplayName != nil {
		name, err := checkDisplayName(*upd.DisplayName)
		if err != nil {
			return User{}, err
		}
		upd.DisplayName = &name
	}
	if upd.Role != nil && *upd.Role != authn.RoleUser && *upd.Role != authn.RoleAdmin {
		return User{}, invalid("user.role", "must be ROLE_USER or ROLE_ADMIN")
	}
	if id == actorID && ((upd.Role != nil && *upd.Role != authn.RoleAdmin) || (upd.Disabled != nil && *upd.Disabled)) {
		return User{}, ErrCannotModifySelf
	}
	return s.store.UpdateUser(ctx, id, func(u *User) error {
		if upd.DisplayName != nil {
			u.DisplayName = *upd.DisplayName
		}
		if upd.Role != nil {
			u.Role = *upd.Role
		}
		if upd.Disabled != nil {
			u.Disabled = *upd.Disabled
		}
		u.UpdateTime = s.now().UTC()
		return nil
	})
}

// Delete removes a user. The caller revokes its API keys and refresh tokens;
// both also stop working on their own once the user is gone, since resolving
// either looks the user up.
func (s *Service) Delete(ctx context.Context, id string) error {
	if id == "" {
		return ErrUserNotFound
	}
	return s.store.DeleteUser(ctx, id)
}

// EnsureAdmin makes sure an administrator with email exists, and is enabled
// and an administrator; it is idempotent and safe to run from several
// replicas at once. An existing account keeps its password. A new account
// gets password, or, when password is empty, a generated one, returned as
// generated so the caller can show it once.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (u User, generated string, err error) {
	email, err = NormalizeEmail(email)
	if err != nil {
		return User{}, "", err
	}
	for range 3 {
		u, err = s.store.GetUserByEmail(ctx, email)
		switch {
		case err == nil:
			if u.Role == authn.RoleAdmin && !u.Disabled {
				return u, "", nil
			}
			u, err = s.store.UpdateUser(ctx, u.ID, func(u *User) error {
				u.Role, u.Disabled, u.UpdateTime = authn.RoleAdmin, false, s.now().UTC()
				return nil
			})
			if errors.Is(err, ErrUserNotFound) {
				continue // deleted meanwhile; create it
			}
			return u, "", err
		case !errors.Is(err, ErrUserNotFound):
			return User{}, "", fmt.Errorf("loading admin user: %w", err)
		}
		pw := password
		if pw == "" {
			pw = generatePassword()
		} else if err := s.policy.Check(pw, email); err != nil {
			return User{}, "", fmt.Errorf("checking the admin password: %w", err)
		}
		u, err = s.create(ctx, email, pw, "Administrator", authn.RoleAdmin)
		if errors.Is(err, ErrEmailTaken) {
			continue // another replica created it; promote it if need be
		}
		if err != nil {
			return User{}, "", err
		}
		if password == "" {
			generated = pw
		}
		return u, generated, nil
	}
	return User{}, "", fmt.Errorf("ensuring admin user: the account kept changing")
}

// generatePassword returns a random password with about 130 bits of entropy.
func generatePassword() string { return rand.Text() }
