package query

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// tokenVersion changes whenever the token layout does, so old tokens are
// rejected cleanly instead of being misread.
const tokenVersion = 1

// maxTokenLength bounds what is decoded; real tokens are a few hundred bytes.
const maxTokenLength = 4096

const macSize = 16

// pageToken is what a page token carries. It is bound to its query by
// Fingerprint and signed, so a client can neither forge a position nor
// reuse a token with another query.
type pageToken struct {
	V           int     `json:"v"`
	Fingerprint string  `json:"f"`
	Offset      int     `json:"o,omitempty"`
	Cursor      *Cursor `json:"c,omitempty"`
}

// TokenCodec signs and verifies page tokens with HMAC-SHA256.
type TokenCodec struct {
	key []byte
}

// NewTokenCodec returns a codec keyed with secret. Replicas that serve the
// same clients must share the secret, or a token from one is refused by
// another. An empty secret gets a random key (tokens then only work on
// this process).
func NewTokenCodec(secret []byte) *TokenCodec {
	key := make([]byte, 32)
	if len(secret) == 0 {
		_, _ = rand.Read(key) // crypto/rand.Read never fails on supported platforms
	} else {
		m := hmac.New(sha256.New, []byte("marquee search page token v1"))
		m.Write(secret)
		key = m.Sum(nil)
	}
	return &TokenCodec{key: key}
}

func (c *TokenCodec) mac(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)[:macSize]
}

// Encode returns the opaque form of t.
func (c *TokenCodec) Encode(t pageToken) string {
	t.V = tokenVersion
	b, _ := json.Marshal(t) // a struct of strings and numbers always marshals
	return base64.RawURLEncoding.EncodeToString(append(c.mac(b), b...))
}

// Decode verifies and opens a token.
func (c *TokenCodec) Decode(s string) (pageToken, error) {
	bad := invalid("page_token", ReasonInvalidPageToken, "is not a token this service issued")
	if len(s) > maxTokenLength {
		return pageToken{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= macSize {
		return pageToken{}, bad
	}
	sum, body := raw[:macSize], raw[macSize:]
	if !hmac.Equal(sum, c.mac(body)) {
		return pageToken{}, bad
	}
	var t pageToken
	if err := json.Unmarshal(body, &t); err != nil || t.V != tokenVersion {
		return pageToken{}, bad
	}
	return t, nil
}

// fingerprint identifies what a token may be used with: the analyzed text,
// the filter and the order. The page size may change between pages.
func fingerprint(key, filter string, relevance bool, order []OrderKey) string {
	var b strings.Builder
	b.WriteString(key)
	b.WriteByte(0)
	b.WriteString(filter)
	b.WriteByte(0)
	if relevance {
		b.WriteString("relevance")
	}
	for _, k := range order {
		b.WriteString(string(k.Field))
		b.WriteString(strconv.FormatBool(k.Desc))
		b.WriteByte(',')
	}
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
