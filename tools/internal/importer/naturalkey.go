package importer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// requestIDPrefix versions the natural-key rule: changing the rule must
// change the prefix, or a rerun would insert every movie a second time.
const requestIDPrefix = "import-v1-"

// Keyer derives request ids from records' natural keys. The catalog derives
// a movie's id from its request id, so the same record always maps to the
// same movie and a rerun is answered as a duplicate.
//
// Records that share the whole natural key within one input (the Wikipedia
// file has 19 such pairs: remakes in the same year by the same director, or
// double entries) are told apart by their occurrence index in the input: the
// first keeps the plain key, so it also matches the same movie imported from
// another file, and the n-th repeat gets "#n". That needs one 8-byte hash per
// distinct key seen, the only state of an import that grows with the input.
// A Keyer is not safe for concurrent use.
type Keyer struct {
	fold cases.Caser
	seen map[uint64]uint32
}

// NewKeyer returns a Keyer with no records seen.
func NewKeyer() *Keyer {
	return &Keyer{fold: cases.Fold(), seen: make(map[uint64]uint32)}
}

// RequestID returns the request id of the next record of the input.
func (k *Keyer) RequestID(rec moviedata.Record) string {
	key := NaturalKey(k.fold, rec)
	sum := sha256.Sum256([]byte(key))
	h := binary.BigEndian.Uint64(sum[:8])
	n := k.seen[h]
	k.seen[h] = n + 1
	if n > 0 {
		sum = sha256.Sum256([]byte(key + "\x1f#" + strconv.FormatUint(uint64(n), 10)))
	}
	return requestIDPrefix + hex.EncodeToString(sum[:])
}

// NaturalKey is the identity of an imported movie: its normalised title,
// its year (empty when unknown) and the sorted normalised names of its
// directors, joined by control characters that normalised text cannot
// contain. fold must be a case-folding Caser (cases.Fold()); it is passed in
// because a Caser is not safe for concurrent use.
func NaturalKey(fold cases.Caser, rec moviedata.Record) string {
	var b strings.Builder
	b.WriteString(Normalize(fold, rec.Title))
	b.WriteByte(0x1f)
	if rec.Year != nil {
		b.WriteString(strconv.Itoa(int(*rec.Year)))
	}
	b.WriteByte(0x1f)
	dirs := make([]string, 0, len(rec.Directors))
	for _, d := range rec.Directors {
		if n := Normalize(fold, d); n != "" {
			dirs = append(dirs, n)
		}
	}
	sort.Strings(dirs)
	b.WriteString(strings.Join(dirs, "\x1e"))
	return b.String()
}

// Normalize puts a name in the form natural keys compare: Unicode NFC, case
// folded, runs of white space (including control characters such as tabs)
// collapsed to one space and trimmed. Folding can denormalise, hence the
// second NFC pass.
func Normalize(fold cases.Caser, s string) string {
	s = norm.NFC.String(s)
	s = fold.String(s)
	s = strings.Join(strings.FieldsFunc(s, isSeparator), " ")
	return norm.NFC.String(s)
}

func isSeparator(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
