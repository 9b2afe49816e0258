package movie_test

import (
	"crypto/sha256"
	"encoding/base32"
)

// crockfordSHA spells out the documented derivation independently.
func crockfordSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding).EncodeToString(sum[:])[:26]
}
