package identity_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/marquee-dev/marquee/services/auth/internal/identity"
)

func TestHasher(t *testing.T) {
	h := identity.NewHasher(identity.DefaultParams)
	ctx := t.Context()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("PHC string = %q, want argon2id with m=19456,t=2,p=1", enc)
	}
	again, _ := h.Hash(ctx, "correct horse battery staple")
	if again == enc {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"", false},
	} {
		ok, err := h.Verify(ctx, tt.pw, enc)
		if err != nil || ok != tt.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
		}
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if _, err := h.Verify(ctx, "x", bad); err == nil {
			t.Errorf("Verify accepted the malformed hash %q", bad)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	p := identity.NewPasswordPolicy()
	if p.Len() < 1000 {
		t.Fatalf("the common-password list holds %d entries, want at least 1000", p.Len())
	}
	tests := []struct {
		pw     string
		reason string // "" = accepted
	}{
		{"tangerine-otter-92", ""},
		{"Zürich Wintermärchen", ""},
		{"", identity.ReasonInvalidArgument},
		{"short-pw", identity.ReasonWeakPassword},
		{"elevenchars", identity.ReasonWeakPassword},
		{"password1234", identity.ReasonWeakPassword},
		{"PASSWORD1234", identity.ReasonWeakPassword},
		{"qwertyuiop123", identity.ReasonWeakPassword},
		{"123456789012", identity.ReasonWeakPassword},
		{"iloveyou2024", identity.ReasonWeakPassword},
		{"1qaz2wsx3edc", identity.ReasonWeakPassword},
		{"abcabcabcabc", identity.ReasonWeakPassword},
		{"zzzzzzzzzzzzzzzz", identity.ReasonWeakPassword},
		{"maryjane.doe", identity.ReasonWeakPassword}, // the email's local part
		{strings.Repeat("x", identity.MaxPasswordLen+1), identity.ReasonInvalidArgument},
		{"bad\xffutf8-password", identity.ReasonInvalidArgument},
	}
	for _, tt := range tests {
		err := p.Check(tt.pw, "maryjane.doe@example.com")
		var inv *identity.InvalidInputError
		switch {
		case tt.reason == "" && err != nil:
			t.Errorf("Check(%q) = %v, want accepted", tt.pw, err)
		case tt.reason != "" && (!errors.As(err, &inv) || inv.Reason != tt.reason || inv.Field != "password"):
			t.Errorf("Check(%q) = %v, want reason %s on field password", tt.pw, err, tt.reason)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Ada@Example.COM ", "ada@example.com"},
		{"a.b+c@sub.example.org", "a.b+c@sub.example.org"},
		{"admin@localhost", "admin@localhost"},
		{"", ""},
		{"no-at-sign", ""},
		{"Ada <ada@example.com>", ""},
		{"@example.com", ""},
		{"ada@", ""},
		{strings.Repeat("a", 250) + "@x.io", ""},
	}
	for _, tt := range tests {
		got, err := identity.NormalizeEmail(tt.in)
		if tt.want == "" {
			var inv *identity.InvalidInputError
			if !errors.As(err, &inv) || inv.Field != "email" {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want an email field error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// BenchmarkPasswordHash measures one argon2id hash at the production
// parameters: slow on purpose.
func BenchmarkPasswordHash(b *testing.B) {
	h := identity.NewHasher(identity.DefaultParams)
	ctx := b.Context()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	defer func() {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		used := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
		if b.N > 0 {
			b.ReportMetric(float64(used)/float64(b.N)/1e6, "cpu-ms/op")
		}
	}()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
