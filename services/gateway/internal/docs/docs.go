package docs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
)

//go:embed page swaggerui
var assets embed.FS

// pageCSP lets the docs page run Swagger UI from this origin only; Swagger
// UI sets inline styles, hence 'unsafe-inline' for styles (never scripts).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// file is a static response held in memory.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves /openapi.json and /docs. It is safe for concurrent use.
type Handler struct {
	files map[string]file // by request path
}

// New builds the handler from the generated OpenAPI documents in specs.
func New(specs fs.FS) (*Handler, error) {
	spec, err := BuildOpenAPI(specs)
	if err != nil {
		return nil, err
	}
	h := &Handler{files: map[string]file{}}
	h.add("/openapi.json", spec, "application/json")
	for _, name := range []string{"page/index.html", "page/init.js", "swaggerui/swagger-ui-bundle.js",
		"swaggerui/swagger-ui.css", "swaggerui/favicon-32x32.png", "swaggerui/LICENSE", "swaggerui/NOTICE"} {
		b, err := assets.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading embedded %s: %w", name, err)
		}
		base := path.Base(name)
		ct := mime.TypeByExtension(path.Ext(base))
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		if base == "index.html" {
			h.add("/docs", b, "text/html; charset=utf-8")
			h.add("/docs/", b, "text/html; charset=utf-8")
			continue
		}
		h.add("/docs/"+base, b, ct)
	}
	return h, nil
}

func (h *Handler) add(p string, body []byte, ct string) {
	sum := sha256.Sum256(body)
	h.files[p] = file{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// Handles reports whether the handler serves path p.
func (h *Handler) Handles(p string) bool {
	if p == "/openapi.json" || p == "/docs" {
		return true
	}
	return strings.HasPrefix(p, "/docs/")
}

// ServeHTTP serves the document and the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h.files[r.URL.Path]
	if !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, codes.NotFound, problem.ReasonNotFound, "no resource at "+r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		p := problem.New(http.StatusMethodNotAllowed, codes.Unimplemented, problem.ReasonMethodNotAllowed,
			r.Method+" is not allowed on "+r.URL.Path)
		p.Allow = []string{http.MethodGet, http.MethodHead}
		problem.Write(w, r, p)
		return
	}
	hdr := w.Header()
	if strings.HasPrefix(r.URL.Path, "/docs") {
		hdr.Set("Content-Security-Policy", pageCSP)
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "public, max-age=300")
	// ServeContent answers If-None-Match against the ETag set above.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
