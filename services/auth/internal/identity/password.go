package identity

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams are OWASP's minimum for argon2id (Password Storage Cheat
// Sheet): 19 MiB of memory, 2 iterations, parallelism 1.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read back from a stored hash, so a corrupted record
// cannot make one sign-in allocate gigabytes.
const (
	maxMemory  = 1 << 20 // 1 GiB in KiB
	maxTime    = 16
	maxKeyLen  = 128
	maxSaltLen = 128
)

// Hasher hashes and checks passwords with argon2id. Each hash holds its
// Memory for the time it runs, so at most a few run at once: the others wait
// (or give up when their context ends) instead of exhausting memory under a
// flood of sign-ins.
type Hasher struct {
	params Params
	sem    chan struct{}
	hashes atomic.Uint64
}

// Count returns how many hashes (new or checks) the Hasher has computed.
func (h *Hasher) Count() uint64 { return h.hashes.Load() }

// NewHasher returns a Hasher with p, running at most GOMAXPROCS hashes at once.
func NewHasher(p Params) *Hasher {
	return &Hasher{params: p, sem: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	select {
	case h.sem <- struct{}{}:
		return func() { <-h.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
}

// Hash returns the PHC string of password:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, base64 without padding.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	p := h.params
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.hashes.Add(1)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string encoded, comparing
// in constant time.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	h.hashes.Add(1)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var errBadHash = errors.New("malformed password hash")

func parsePHC(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, errBadHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, errBadHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return Params{}, nil, nil, errBadHash
	}
	if p.Memory == 0 || p.Memory > maxMemory || p.Time == 0 || p.Time > maxTime || p.Threads == 0 ||
		len(key) < 16 || len(key) > maxKeyLen || len(salt) < 8 || len(salt) > maxSaltLen {
		return Params{}, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// Password limits.
const (
	MinPasswordLen = 12  // characters
	MaxPasswordLen = 256 // bytes; longer inputs only cost hashing time
)

//go:embed common-passwords.txt
var commonPasswordsFile string

// PasswordPolicy decides whether a new password is acceptable: long enough,
// not one of the commonest passwords, not a trivial pattern, not the email.
type PasswordPolicy struct {
	common map[string]struct{}
}

// NewPasswordPolicy returns the policy with the embedded list of common
// passwords (see common-passwords.txt for where it comes from).
func NewPasswordPolicy() *PasswordPolicy {
	common := make(map[string]struct{}, 4096)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		common[strings.ToLower(line)] = struct{}{}
	}
	return &PasswordPolicy{common: common}
}

// Len returns the number of passwords in the list.
func (p *PasswordPolicy) Len() int { return len(p.common) }

func weak(desc string) error {
	return &InvalidInputError{Field: "password", Reason: ReasonWeakPassword, Description: desc}
}

// Check returns nil when password may be used by the account email.
func (p *PasswordPolicy) Check(password, email string) error {
	switch {
	case password == "":
		return invalid("password", "is required")
	case len(password) > MaxPasswordLen:
		return invalid("password", fmt.Sprintf("must be at most %d bytes", MaxPasswordLen))
	case !utf8.ValidString(password):
		return invalid("password", "must be valid UTF-8")
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return weak(fmt.Sprintf("must be at least %d characters", MinPasswordLen))
	}
	lower := strings.ToLower(password)
	if _, ok := p.common[lower]; ok {
		return weak("is one of the most common passwords")
	}
	if repeats(lower) {
		return weak("is a short sequence repeated")
	}
	if email != "" {
		local, _, _ := strings.Cut(email, "@")
		if lower == email || (len(local) >= 4 && strings.Contains(lower, local) && len(lower)-len(local) < 6) {
			return weak("is too close to the email address")
		}
	}
	return nil
}

// repeats reports whether s is one to four characters repeated
// ("aaaaaaaaaaaa", "abcabcabcabc").
func repeats(s string) bool {
	r := []rune(s)
	for n := 1; n <= 4 && n < len(r); n++ {
		if len(r)%n != 0 {
			continue
		}
		same := true
		for i := n; i < len(r) && same; i++ {
			same = r[i] == r[i-n]
		}
		if same {
			return true
		}
	}
	return false
}
