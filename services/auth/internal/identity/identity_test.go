package identity_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/marquee-dev/marquee/services/auth/internal/identity"
	"github.com/marquee-dev/marquee/services/auth/internal/identity/mongostore"
	"github.com/marquee-dev/marquee/services/platform/authn"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func newService(t *testing.T) (*identity.Service, *identity.Hasher) {
	t.Helper()
	store := mongostore.New(testenv.Mongo(t))
	if err := store.EnsureIndexes(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := identity.NewHasher(identity.DefaultParams)
	s, err := identity.NewService(store, identity.Options{Hasher: h})
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

func TestAuthenticateAnswersAlike(t *testing.T) {
	s, h := newService(t)
	ctx := t.Context()
	if _, err := s.Register(ctx, "Grace@Example.com", "tangerine-otter-92", "Grace"); err != nil {
		t.Fatal(err)
	}
	u, err := s.Authenticate(ctx, " grace@EXAMPLE.com", "tangerine-otter-92")
	if err != nil || u.Email != "grace@example.com" || u.Role != authn.RoleUser {
		t.Fatalf("Authenticate = %+v, %v", u, err)
	}
	// Every failure costs exactly one hash and says the same thing.
	for _, tt := range []struct{ name, email, pw string }{
		{"wrong password", "grace@example.com", "tangerine-otter-93"},
		{"unknown user", "nobody@example.com", "tangerine-otter-92"},
		{"malformed email", "not an email", "tangerine-otter-92"},
	} {
		before := h.Count()
		_, err := s.Authenticate(ctx, tt.email, tt.pw)
		if !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Errorf("%s: err = %v, want ErrInvalidCredentials", tt.name, err)
		}
		if n := h.Count() - before; n != 1 {
			t.Errorf("%s: %d password hashes, want 1", tt.name, n)
		}
	}
	admin, _, err := s.EnsureAdmin(ctx, "root@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	disabled := true
	if _, err := s.Update(ctx, admin.ID, u.ID, identity.Update{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	before := h.Count()
	if _, err := s.Authenticate(ctx, "grace@example.com", "tangerine-otter-92"); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("disabled user: err = %v, want ErrInvalidCredentials", err)
	}
	if n := h.Count() - before; n != 1 {
		t.Fatalf("disabled user: %d password hashes, want 1", n)
	}
}

func TestConcurrentRegistrationOneEmail(t *testing.T) {
	s, _ := newService(t)
	emails := []string{"race@example.com", "RACE@example.com", " race@example.com", "Race@Example.Com"}
	var wg sync.WaitGroup
	errs := make([]error, len(emails))
	for i, e := range emails {
		wg.Go(func() { _, errs[i] = s.Register(t.Context(), e, "tangerine-otter-92", "") })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, identity.ErrEmailTaken):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations succeeded, want exactly 1", ok)
	}
}

func TestEnsureAdminIsIdempotent(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	u1, gen, err := s.EnsureAdmin(ctx, "Admin@Example.com", "")
	if err != nil || gen == "" || u1.Role != authn.RoleAdmin {
		t.Fatalf("first EnsureAdmin = %+v, generated %t, %v", u1, gen != "", err)
	}
	if _, err := s.Authenticate(ctx, "admin@example.com", gen); err != nil {
		t.Fatalf("the generated password does not work: %v", err)
	}
	u2, gen2, err := s.EnsureAdmin(ctx, "admin@example.com", "")
	if err != nil || gen2 != "" || u2.ID != u1.ID {
		t.Fatalf("second EnsureAdmin = %+v, generated %t, %v", u2, gen2 != "", err)
	}
	// An existing user named as admin is promoted, keeping its password.
	if _, err := s.Register(ctx, "ops@example.com", "tangerine-otter-92", ""); err != nil {
		t.Fatal(err)
	}
	u3, gen3, err := s.EnsureAdmin(ctx, "ops@example.com", "another-password-1")
	if err != nil || gen3 != "" || u3.Role != authn.RoleAdmin {
		t.Fatalf("promotion = %+v, %v", u3, err)
	}
	if _, err := s.Authenticate(ctx, "ops@example.com", "tangerine-otter-92"); err != nil {
		t.Fatalf("the promoted user's password changed: %v", err)
	}
	if _, _, err := s.EnsureAdmin(ctx, "new@example.com", "short"); err == nil {
		t.Fatal("a weak admin password was accepted")
	}
}

func TestUpdateRules(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	admin, _, err := s.EnsureAdmin(ctx, "root@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	user := authn.RoleUser
	yes := true
	if _, err := s.Update(ctx, admin.ID, admin.ID, identity.Update{Role: &user}); !errors.Is(err, identity.ErrCannotModifySelf) {
		t.Fatalf("self-demotion err = %v", err)
	}
	if _, err := s.Update(ctx, admin.ID, admin.ID, identity.Update{Disabled: &yes}); !errors.Is(err, identity.ErrCannotModifySelf) {
		t.Fatalf("self-disable err = %v", err)
	}
	if _, err := s.Update(ctx, admin.ID, "u_missing", identity.Update{Disabled: &yes}); !errors.Is(err, identity.ErrUserNotFound) {
		t.Fatalf("unknown user err = %v", err)
	}
	svc := authn.RoleService
	var inv *identity.InvalidInputError
	if _, err := s.Update(ctx, admin.ID, admin.ID, identity.Update{Role: &svc}); !errors.As(err, &inv) {
		t.Fatalf("role service err = %v", err)
	}
}
