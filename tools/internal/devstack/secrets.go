package devstack

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// secrets are the dev stack's generated credentials, kept in the data
// directory (mode 0600) so a restart can still decrypt its signing keys and
// the services still recognise each other. Production takes every one of
// them from a Kubernetes Secret instead.
type secrets struct {
	KeyEncryptionKey string `json:"key_encryption_key"`
	CatalogSecret    string `json:"catalog_client_secret"`
	SearchSecret     string `json:"search_client_secret"`
	GatewaySecret    string `json:"gateway_client_secret"`
	PageTokenKey     string `json:"page_token_key"`
	AdminPassword    string `json:"admin_password"`

	// showPassword is true on the start that generated the admin password,
	// the one time it is printed.
	showPassword bool
}

func loadSecrets(path string) (*secrets, error) {
	var s secrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	changed := false
	fill := func(v *string, n int) {
		if *v == "" {
			*v = random(n)
			changed = true
		}
	}
	fill(&s.KeyEncryptionKey, 32)
	fill(&s.CatalogSecret, 24)
	fill(&s.SearchSecret, 24)
	fill(&s.GatewaySecret, 24)
	fill(&s.PageTokenKey, 32)
	if s.AdminPassword == "" {
		s.AdminPassword = random(18)
		s.showPassword = true
		changed = true
	}
	if changed {
		b, err := json.MarshalIndent(&s, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encoding secrets: %w", err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return &s, nil
}

// random returns n random bytes in standard base64, the form the auth
// service expects for its key-encryption key.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b)
}
