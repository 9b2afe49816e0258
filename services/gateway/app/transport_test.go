package app_test

import (
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/marquee-dev/marquee/services/gateway/app"
)

func TestCompressionByAcceptEncoding(t *testing.T) {
	s := startStack(t)
	path := "/v1/movies?pageSize=20" // several KiB of JSON
	_, plain := s.do("GET", path, nil)
	resp0, _ := s.do("GET", path, nil)
	etag := resp0.Header.Get("ETag")

	for _, tc := range []struct {
		accept, encoding string
		decode           func(io.Reader) ([]byte, error)
	}{
		{"gzip", "gzip", func(r io.Reader) ([]byte, error) {
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, err
			}
			return io.ReadAll(zr)
		}},
		{"zstd", "zstd", func(r io.Reader) ([]byte, error) {
			zr, err := zstd.NewReader(r)
			if err != nil {
				return nil, err
			}
			defer zr.Close()
			return io.ReadAll(zr)
		}},
		{"gzip, zstd", "zstd", nil},
		{"br", "", nil},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			resp, body := s.do("GET", path, nil, header("Accept-Encoding", tc.accept))
			if got := resp.Header.Get("Content-Encoding"); got != tc.encoding {
				t.Fatalf("Content-Encoding = %q, want %q", got, tc.encoding)
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary = %q", resp.Header.Get("Vary"))
			}
			if tc.encoding == "" {
				return
			}
			if got := resp.Header.Get("ETag"); got == etag || !strings.HasPrefix(got, strings.TrimSuffix(etag, `"`)) {
				t.Errorf("compressed ETag = %q, identity %q: a strong ETag must differ per encoding", got, etag)
			}
			if tc.decode != nil {
				got, err := tc.decode(strings.NewReader(string(body)))
				if err != nil || string(got) != string(plain) {
					t.Errorf("decoded body differs (%v)", err)
				}
			}
			// Revalidating the compressed representation works.
			resp, body = s.do("GET", path, nil, header("Accept-Encoding", tc.accept), header("If-None-Match", resp.Header.Get("ETag")))
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("revalidation: %d %d bytes", resp.StatusCode, len(body))
			}
		})
	}
}

func TestHTTP2WithoutTLS(t *testing.T) {
	s := startStack(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protocols}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(s.base + "/v1/movies/m_1")
	if err != nil {
		t.Fatalf("h2c request: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Errorf("proto %s status %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS sent over cleartext")
	}
}

func TestHTTP2OverTLS(t *testing.T) {
	certFile, keyFile := selfSignedCert(t)
	s := startStack(t, withConfig(func(c *app.Config) {
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
	}))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test's own self-signed certificate
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	url := strings.Replace(s.base, "http://", "https://", 1) + "/v1/movies/m_1"
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("TLS request: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Errorf("proto %s status %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q", hsts)
	}
}

func selfSignedCert(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encoding key: %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCORSAllowList(t *testing.T) {
	s := startStack(t, withConfig(func(c *app.Config) { c.CORSAllowedOrigins = []string{"https://app.example.com"} }))

	resp, _ := s.do("OPTIONS", "/v1/movies/m_1", nil, header("Origin", "https://app.example.com"),
		header("Access-Control-Request-Method", "PATCH"), header("Access-Control-Request-Headers", "authorization, if-match"))
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "If-Match") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = s.do("GET", "/v1/movies/m_1", nil, header("Origin", "https://app.example.com"))
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "RateLimit") ||
		!strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("allowed request headers: %v", resp.Header)
	}
	resp, _ = s.do("OPTIONS", "/v1/movies/m_1", nil, header("Origin", "https://evil.example.com"),
		header("Access-Control-Request-Method", "DELETE"))
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a foreign origin was allowed: %v", resp.Header)
	}
	resp, _ = s.do("GET", "/v1/movies/m_1", nil, header("Origin", "https://evil.example.com"))
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a foreign origin was allowed: %v", resp.Header)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	s := startStack(t)
	resp, body := s.do("GET", "/openapi.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") == "" {
		t.Fatalf("openapi.json: %d %v", resp.StatusCode, resp.Header)
	}
	var doc struct {
		OpenAPI    string                    `json:"openapi"`
		Servers    []map[string]any          `json:"servers"`
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) == 0 {
		t.Errorf("openapi %q servers %v", doc.OpenAPI, doc.Servers)
	}
	// Every route of API.md's table.
	for _, r := range []string{
		"GET /v1/movies", "GET /v1/movies/{id}", "GET /v1/movies:batchGet", "POST /v1/movies", "PATCH /v1/movies/{id}",
		"DELETE /v1/movies/{id}", "GET /v1/movies:changes", "GET /v1/movies:export", "POST /v1/movies:batchCreate",
		"GET /v1/genres", "GET /v1/directors/{id}", "GET /v1/directors", "PATCH /v1/directors/{id}",
		"GET /v1/search/movies", "GET /v1/search/suggest", "POST /v1/users", "POST /v1/auth/token", "POST /v1/auth/revoke",
		"GET /v1/users/me", "DELETE /v1/users/me", "POST /v1/users/me/apiKeys", "GET /v1/users/me/apiKeys",
		"DELETE /v1/users/me/apiKeys/{id}", "PATCH /v1/users/{id}", "GET /.well-known/jwks.json",
	} {
		method, path, _ := strings.Cut(r, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("the document lacks %s", r)
		}
	}
	if _, ok := doc.Paths["/v1/movies/{movie.id}"]; ok {
		t.Errorf("the document keeps a {movie.id} path beside {id}")
	}
	for _, k := range []string{"bearerAuth", "apiKeyAuth"} {
		if doc.Components.SecuritySchemes[k] == nil {
			t.Errorf("no security scheme %s", k)
		}
	}
	if doc.Components.Schemas["Problem"] == nil || doc.Components.Schemas["marquee.catalog.v1.Movie"] == nil {
		t.Errorf("schemas lack Problem or Movie")
	}
	get := doc.Paths["/v1/movies/{id}"]["get"].(map[string]any)
	responses := get["responses"].(map[string]any)
	ok := responses["200"].(map[string]any)
	if h := ok["headers"].(map[string]any); h["RateLimit"] == nil || h["ETag"] == nil {
		t.Errorf("GetMovie 200 headers %v", h)
	}
	if responses["default"] == nil || responses["304"] == nil || responses["429"] == nil {
		t.Errorf("GetMovie responses %v", responses)
	}
}
