// Package ui serves the dashboard's built front end (index.html and hashed assets) from an fs.FS, normally the
// files embedded in the ui function's binary. Everything is read, compressed and hashed once at cold start, so a
// request is a map lookup and a write.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

const (
	// CacheImmutable is for asset names that carry a content hash: a new build gets new names.
	CacheImmutable = "public, max-age=31536000, immutable"
	// CacheIndex makes browsers revalidate index.html on every load, so a deploy is seen at once.
	CacheIndex = "no-cache"
	// CachePlain is for assets whose name carries no hash (a short time, then revalidate).
	CachePlain = "public, max-age=300"

	// maxFileBytes keeps a Lambda response (6 MB, base64 inflates binary bodies by 4/3) within limits.
	maxFileBytes = 4 << 20
	// maxPathLen caps the {proxy+} segment looked up; longer is unknown by definition.
	maxPathLen = 256
	// minGzipBytes: below this gzip's header costs more than it saves.
	minGzipBytes = 256
)

// csp allows only the app's own scripts, styles and API calls; the favicon is an inline data: URL.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// hashedName matches esbuild's '[name]-[hash]' output: a dash then 8 base32 characters before the extension.
var hashedName = regexp.MustCompile(`-[A-Z0-9]{8}\.[a-z0-9]+$`)

// file is one servable file, hashed at start; its gzip form is made on first use (BestCompression of every asset
// at start would cost the cold start more than its init goal).
type file struct {
	body        []byte
	gzOnce      sync.Once
	gz          []byte // nil when gzip would not help
	contentType string
	etag        string
	cache       string
}

// Service serves GET / (index.html) and GET /assets/{proxy+}, open to every caller.
type Service struct {
	index  *file
	assets map[string]*file // key: path below assets/
	mux    *api.Mux
}

// NewService prepares every file of fsys: index.html at its root, assets below assets/. Dot files (dist/.keep) are
// skipped. A missing index.html is allowed (a clean clone before `make ui`): / then answers 404 JSON saying so.
func NewService(fsys fs.FS) (*Service, error) {
	h := &Service{assets: map[string]*file{}}
	switch b, err := fs.ReadFile(fsys, "index.html"); {
	case err == nil:
		if h.index, err = prepare("index.html", b, CacheIndex); err != nil {
			return nil, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("ui: reading index.html: %w", err)
	}
	err := fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "assets" && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		cache := CachePlain
		if hashedName.MatchString(d.Name()) {
			cache = CacheImmutable
		}
		f, err := prepare(p, b, cache)
		if err != nil {
			return err
		}
		h.assets[strings.TrimPrefix(p, "assets/")] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: reading assets: %w", err)
	}

	mux := api.NewMux()
	mux.HandleFunc("GET /{$}", h.serveIndex)
	mux.HandleFunc("GET /assets/{proxy...}", h.serveAsset)
	mux.NotFound("no such page")
	h.mux = mux
	return h, nil
}

// Routes serves the dashboard's files.
func (h *Service) Routes() *api.Mux { return h.mux }

// Assets lists the asset paths served below /assets/ (for tests and logs).
func (h *Service) Assets() []string {
	out := make([]string, 0, len(h.assets))
	for k := range h.assets {
		out = append(out, k)
	}
	return out
}

func (h *Service) serveIndex(w http.ResponseWriter, r *http.Request) {
	if h.index == nil {
		api.WriteError(w, r, api.Errorf(api.NotFound, "the dashboard is not built into this binary (run make ui)"))
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	serve(w, r, h.index)
}

func (h *Service) serveAsset(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("proxy")
	f := (*file)(nil)
	if len(p) <= maxPathLen {
		f = h.assets[p]
	}
	if f == nil {
		api.WriteError(w, r, api.Errorf(api.NotFound, "no such asset"))
		return
	}
	serve(w, r, f)
}

// serve writes f, gzip-compressed when the client accepts it, or 304 when the client's copy is current.
func serve(w http.ResponseWriter, r *http.Request, f *file) {
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", f.cache)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Vary", "Accept-Encoding")
	useGzip := api.AcceptsEncoding(r.Header, "gzip") && f.gzipped() != nil
	etag := f.etag
	if useGzip {
		// A distinct validator per representation, as RFC 9110 asks for content-coded responses.
		etag = strings.TrimSuffix(f.etag, `"`) + `-gz"`
	}
	hd.Set("ETag", etag)
	if api.NoneMatch(r.Header, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if useGzip {
		hd.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func prepare(name string, b []byte, cache string) (*file, error) {
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("ui: %s is %d bytes, over the %d-byte limit of one Lambda response", name, len(b), maxFileBytes)
	}
	ct := ContentType(name)
	sum := sha256.Sum256(b)
	return &file{body: b, contentType: ct, cache: cache, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}, nil
}

// gzipped is f's body gzip-compressed, made once; nil when gzip would not help.
func (f *file) gzipped() []byte {
	f.gzOnce.Do(func() {
		if !compressible(f.contentType) || len(f.body) < minGzipBytes {
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(f.body); err != nil || zw.Close() != nil {
			return // served uncompressed: writes to a bytes.Buffer do not fail
		}
		if buf.Len() < len(f.body) {
			f.gz = buf.Bytes()
		}
	})
	return f.gz
}

// contentTypes is fixed for what the build emits: mime.TypeByExtension alone would depend on the host's mime.types.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".map":   "application/json; charset=utf-8",
	".json":  "application/json; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

// ContentType is the Content-Type served for a file name.
func ContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

func compressible(ct string) bool {
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "javascript") || strings.Contains(ct, "json") ||
		strings.Contains(ct, "svg") || strings.Contains(ct, "wasm")
}
