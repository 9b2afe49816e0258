package movie

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Tokens signs and verifies opaque, tamper-evident tokens: a JSON payload
// and a truncated HMAC-SHA256 over the purpose, the payload and the binding
// (the query a page token belongs to), base64url-encoded. Every replica must
// share the key (config catalog.page_token_key).
type Tokens struct {
	key []byte
}

// NewTokens returns a signer with key.
func NewTokens(key []byte) *Tokens { return &Tokens{key: append([]byte(nil), key...)} }

const macLen = 16

var errBadToken = errors.New("bad token")

func (t *Tokens) mac(purpose, binding string, payload []byte) []byte {
	h := hmac.New(sha256.New, t.key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(binding))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:macLen]
}

// Seal encodes v as a token for purpose, bound to binding.
func (t *Tokens) Seal(purpose, binding string, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	raw := append(t.mac(purpose, binding, payload), payload...)
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// Open verifies tok against purpose and binding and decodes it into v.
func (t *Tokens) Open(purpose, binding, tok string, v any) error {
	if len(tok) > maxPageTokenChars {
		return errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= macLen {
		return errBadToken
	}
	if !hmac.Equal(raw[:macLen], t.mac(purpose, binding, raw[macLen:])) {
		return errBadToken
	}
	if err := json.Unmarshal(raw[macLen:], v); err != nil {
		return errBadToken
	}
	return nil
}

// cursorToken is the payload of a ListMovies page token.
type cursorToken struct {
	K ValueKind `json:"k"`
	I int64     `json:"i,omitempty"`
	F float64   `json:"f,omitempty"`
	S string    `json:"s,omitempty"`
	T int64     `json:"t,omitempty"` // unix ms
	D string    `json:"d"`           // the last _id
}

const purposeListMovies = "movies"

// EncodeCursor returns the page token that resumes q after c.
func (t *Tokens) EncodeCursor(q *Query, c Cursor) (string, error) {
	ct := cursorToken{K: c.Value.Kind, I: c.Value.Int, F: c.Value.Flt, S: c.Value.Str, D: c.ID}
	if c.Value.Kind == KindTime {
		ct.T = c.Value.Time.UnixMilli()
	}
	return t.Seal(purposeListMovies, q.Key(), ct)
}

// DecodeCursor verifies tok for q and returns its cursor.
func (t *Tokens) DecodeCursor(q *Query, tok string) (*Cursor, error) {
	var ct cursorToken
	if err := t.Open(purposeListMovies, q.Key(), tok, &ct); err != nil {
		return nil, invalidPageToken("pageToken")
	}
	v := Value{Kind: ct.K, Int: ct.I, Flt: ct.F, Str: ct.S}
	if ct.K == KindTime {
		v.Time = time.UnixMilli(ct.T).UTC()
	}
	if ct.K < KindNull || ct.K > KindTime || ct.D == "" {
		return nil, invalidPageToken("pageToken")
	}
	return &Cursor{Value: v, ID: ct.D}, nil
}
