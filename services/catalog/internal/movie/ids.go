package movie

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// crockford is Crockford's base32 alphabet, as ULIDs use.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

const idChars = 26

// MovieIDForRequest derives the id of the movie created by request_id.
func MovieIDForRequest(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return "m_" + crockford.EncodeToString(sum[:])[:idChars]
}

// NewMovieID returns a time-ordered random id for a create without a
// request_id.
func NewMovieID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+).
	return "m_" + crockford.EncodeToString(b[:])[:idChars]
}

// DirectorIDForName derives a director's id from its name.
func DirectorIDForName(name string) string {
	sum := sha256.Sum256([]byte(NormalizeName(name)))
	return "d_" + crockford.EncodeToString(sum[:])[:idChars]
}

// NormalizeName folds a name for identity and equality: Unicode NFKC, runs
// of white space collapsed to one space, trimmed, lower-cased.
func NormalizeName(name string) string {
	return strings.ToLower(strings.Join(strings.Fields(norm.NFKC.String(name)), " "))
}

// ValidMovieID reports whether id has the shape of a movie id.
func ValidMovieID(id string) bool { return validID(id, "m_") }

// ValidDirectorID reports whether id has the shape of a director id.
func ValidDirectorID(id string) bool { return validID(id, "d_") }

func validID(id, prefix string) bool {
	if len(id) != len(prefix)+idChars || !strings.HasPrefix(id, prefix) {
		return false
	}
	for _, c := range id[len(prefix):] {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) {
			return false
		}
	}
	return true
}
