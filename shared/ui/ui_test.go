package ui_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/shared/ui"
)

const (
	indexHTML = `<!doctype html><html><head><link rel="stylesheet" href="/assets/main-ABCDEF12.css"></head>` +
		`<body><script src="/assets/main-ABCDEF12.js"></script></body></html>`
	hashedJS  = "main-ABCDEF12.js"
	hashedCSS = "main-ABCDEF12.css"
)

// testFS looks like a build: index.html, hashed assets, an unhashed one, a tiny one and the .keep placeholder.
func testFS() fstest.MapFS {
	js := strings.Repeat("console.log('iot center dashboard');\n", 200)
	css := strings.Repeat(".plot { width: 100%; }\n", 100)
	return fstest.MapFS{
		".keep":                        {Data: nil},
		"index.html":                   {Data: []byte(strings.Repeat(indexHTML, 5))},
		"assets/" + hashedJS:           {Data: []byte(js)},
		"assets/" + hashedCSS:          {Data: []byte(css)},
		"assets/logo.svg":              {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
		"assets/main-ABCDEF12.map":     {Data: []byte(`{"version":3}`)},
		"assets/img/icon-ZZZZ9999.png": {Data: []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 600))},
	}
}

func newService(t *testing.T, fsys fstest.MapFS) *ui.Service {
	t.Helper()
	s, err := ui.NewService(fsys)
	if err != nil {
		t.Fatalf("ui.NewService: %v", err)
	}
	return s
}

func newHandler(t *testing.T, fsys fstest.MapFS) http.Handler {
	t.Helper()
	return newService(t, fsys).Routes()
}

func get(t *testing.T, h http.Handler, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func TestIndexServedAtRoot(t *testing.T) {
	fsys := testFS()
	rec := get(t, newHandler(t, fsys), "/", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / status = %d, want 200", rec.Code)
	}
	if got, want := rec.Body.String(), string(fsys["index.html"].Data); got != want {
		t.Errorf("GET / body = %q, want index.html", got)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          ui.CacheIndex,
		"X-Content-Type-Options": "nosniff",
		"Vary":                   "Accept-Encoding",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("GET / %s = %q, want %q", k, got, want)
		}
	}
	if got := rec.Header().Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
		t.Errorf("GET / Content-Security-Policy = %q, want script-src 'self'", got)
	}
}

func TestContentTypesAndCacheHeaders(t *testing.T) {
	h := newHandler(t, testFS())
	tests := []struct {
		path, contentType, cache string
	}{
		{"/assets/" + hashedJS, "text/javascript; charset=utf-8", ui.CacheImmutable},
		{"/assets/" + hashedCSS, "text/css; charset=utf-8", ui.CacheImmutable},
		{"/assets/main-ABCDEF12.map", "application/json; charset=utf-8", ui.CacheImmutable},
		{"/assets/logo.svg", "image/svg+xml", ui.CachePlain},
		{"/assets/img/icon-ZZZZ9999.png", "image/png", ui.CacheImmutable},
		{"/", "text/html; charset=utf-8", ui.CacheIndex},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(t, h, tc.path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if got := rec.Header().Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.cache)
			}
			if rec.Header().Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}
}

func TestGzipWhenAccepted(t *testing.T) {
	fsys := testFS()
	h := newHandler(t, fsys)
	js := fsys["assets/"+hashedJS].Data
	tests := []struct {
		acceptEncoding string
		wantGzip       bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"gzip;q=0", false},
		{"gzip;q=0.0, br", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"identity", false},
		{"br, deflate", false},
		{"gzip;q=abc", false},
	}
	for _, tc := range tests {
		t.Run(tc.acceptEncoding, func(t *testing.T) {
			rec := get(t, h, "/assets/"+hashedJS, map[string]string{"Accept-Encoding": tc.acceptEncoding})
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			gotGzip := rec.Header().Get("Content-Encoding") == "gzip"
			if gotGzip != tc.wantGzip {
				t.Fatalf("Content-Encoding = %q, want gzip %v", rec.Header().Get("Content-Encoding"), tc.wantGzip)
			}
			body := rec.Body.Bytes()
			if gotGzip {
				if len(body) >= len(js) {
					t.Errorf("gzip body %d bytes, not smaller than %d", len(body), len(js))
				}
				body = gunzip(t, body)
			}
			if !bytes.Equal(body, js) {
				t.Errorf("body (decoded) differs from the file: %d vs %d bytes", len(body), len(js))
			}
			if got, want := rec.Header().Get("Content-Length"), rec.Body.Len(); got != strconv.Itoa(want) {
				t.Errorf("Content-Length = %s, want %d", got, want)
			}
		})
	}
}

func TestTinyAndBinaryFilesNotGzipped(t *testing.T) {
	h := newHandler(t, testFS())
	for _, p := range []string{"/assets/logo.svg", "/assets/img/icon-ZZZZ9999.png"} {
		rec := get(t, h, p, map[string]string{"Accept-Encoding": "gzip"})
		if got := rec.Header().Get("Content-Encoding"); got != "" {
			t.Errorf("%s Content-Encoding = %q, want none", p, got)
		}
	}
}

func TestUnknownAssetIs404JSON(t *testing.T) {
	h := newHandler(t, testFS())
	tests := []string{
		"/assets/missing.js",
		"/assets/",
		"/assets/.keep",
		"/assets/../index.html",
		"/assets/%2e%2e/index.html",
		"/assets/main-abcdef12.js", // case matters
		"/assets/" + strings.Repeat("a", 300) + ".js",
		"/index.html",
		"/favicon.ico",
		"/api/devices",
	}
	for _, p := range tests {
		t.Run(p, func(t *testing.T) {
			rec := get(t, h, p, nil)
			if rec.Code != http.StatusNotFound {
				t.Fatalf("status = %d, want 404 (body %q)", rec.Code, rec.Body.String())
			}
			assertJSONError(t, rec)
		})
	}
}

func TestMethodOtherThanGetIs404(t *testing.T) {
	h := newHandler(t, testFS())
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req := httptest.NewRequest(m, "/assets/"+hashedJS, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			t.Errorf("%s status = 200, want a refusal", m)
		}
	}
}

func TestHeadHasNoBody(t *testing.T) {
	h := newHandler(t, testFS())
	req := httptest.NewRequest(http.MethodHead, "/assets/"+hashedJS, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD status %d body %d bytes, want 200 and empty", rec.Code, rec.Body.Len())
	}
}

func TestConditionalGet(t *testing.T) {
	h := newHandler(t, testFS())
	for _, ae := range []string{"", "gzip"} {
		first := get(t, h, "/", map[string]string{"Accept-Encoding": ae})
		etag := first.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("Accept-Encoding %q: no ETag", ae)
		}
		again := get(t, h, "/", map[string]string{"Accept-Encoding": ae, "If-None-Match": etag})
		if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("Accept-Encoding %q: If-None-Match status %d body %d, want 304 empty", ae, again.Code, again.Body.Len())
		}
		stale := get(t, h, "/", map[string]string{"Accept-Encoding": ae, "If-None-Match": `"stale"`})
		if stale.Code != http.StatusOK {
			t.Errorf("Accept-Encoding %q: stale If-None-Match status %d, want 200", ae, stale.Code)
		}
	}
	plain := get(t, h, "/", nil).Header().Get("ETag")
	gz := get(t, h, "/", map[string]string{"Accept-Encoding": "gzip"}).Header().Get("ETag")
	if plain == gz {
		t.Errorf("identity and gzip representations share the ETag %s", plain)
	}
}

func TestNotBuiltAnswers404JSON(t *testing.T) {
	svc := newService(t, fstest.MapFS{".keep": {Data: nil}})
	rec := get(t, svc.Routes(), "/", nil)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", rec.Code)
	}
	if msg := assertJSONError(t, rec); !strings.Contains(msg, "make ui") {
		t.Errorf("error = %q, want a hint to run make ui", msg)
	}
	if n := len(svc.Assets()); n != 0 {
		t.Errorf("assets = %d, want 0 (.keep is not served)", n)
	}
}

func TestTooLargeFileRefused(t *testing.T) {
	_, err := ui.NewService(fstest.MapFS{"assets/big-AAAAAAAA.js": {Data: make([]byte, 5<<20)}})
	if err == nil {
		t.Fatal("ui.NewService accepted a 5 MB asset, want an error (Lambda response limit)")
	}
}

// builtDist returns functions/ui/dist, running `make ui` first when the front end has not been built (the build
// script swaps the new files in with renames, so a concurrent go build embedding dist never sees half of it).
func builtDist(t testing.TB) string {
	t.Helper()
	root, err := devstack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "functions/ui/dist")
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err == nil {
		return dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "ui")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the front end (make ui): %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		t.Fatalf("make ui left no index.html: %v", err)
	}
	return dir
}

// TestBuiltDist checks the real build (made here when missing): index.html references hashed assets that exist.
func TestBuiltDist(t *testing.T) {
	fsys := os.DirFS(builtDist(t))
	svc, err := ui.NewService(fsys)
	if err != nil {
		t.Fatalf("ui.NewService(dist): %v", err)
	}
	h := svc.Routes()
	index := get(t, h, "/", nil).Body.String()
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d assets, want a script and a stylesheet", len(refs))
	}
	for _, m := range refs {
		rec := get(t, h, m[1], map[string]string{"Accept-Encoding": "gzip"})
		if rec.Code != http.StatusOK {
			t.Errorf("%s status = %d, want 200", m[1], rec.Code)
		}
		if got := rec.Header().Get("Cache-Control"); got != ui.CacheImmutable {
			t.Errorf("%s Cache-Control = %q, want immutable (hashed name)", m[1], got)
		}
		if got := rec.Header().Get("Content-Encoding"); got != "gzip" {
			t.Errorf("%s Content-Encoding = %q, want gzip", m[1], got)
		}
	}
}

func assertJSONError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Errorf("body %q is not {\"error\": ...}: %v", rec.Body.String(), err)
	}
	return body.Error
}

// BenchmarkServeAsset measures serving the largest asset (gzip) and reports the bytes a browser downloads.
func BenchmarkServeAsset(b *testing.B) {
	fsys := fstest.MapFS{}
	dir := os.DirFS(builtDist(b))
	entries, err := fs.ReadDir(dir, "assets")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(dir, "assets/"+e.Name())
		if err != nil {
			b.Fatal(err)
		}
		fsys["assets/"+e.Name()] = &fstest.MapFile{Data: data}
	}
	svc, err := ui.NewService(fsys)
	if err != nil {
		b.Fatal(err)
	}
	h := svc.Routes()
	var largest string
	var size int
	for p, f := range fsys {
		if strings.HasSuffix(p, ".js") && len(f.Data) > size {
			largest, size = strings.TrimPrefix(p, "assets/"), len(f.Data)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/assets/"+largest, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	var sent int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		sent = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/raw")
	b.ReportMetric(float64(sent), "bytes/resp")
	b.ReportMetric(float64(size)/float64(max(sent, 1)), "x_smaller")
}
