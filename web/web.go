// Package web serves strata's web UI: a single-page application whose
// sources live in web/ui and whose built assets, committed under web/ui/dist,
// are embedded in the binary. Nothing is fetched from the network at runtime.
//
// Rebuild the assets with `make ui` (npm ci and the esbuild bundle); the Go
// build alone needs only the committed files.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed ui/dist
var dist embed.FS

// distDir is the directory of dist that holds the assets.
const distDir = "ui/dist"

// apiPrefixes are paths the UI never answers: an unknown API path gets a 404
// rather than the application's page.
var apiPrefixes = []string{"/api/", "/-/", "/debug/", "/metrics"}

// asset is one embedded file, with its ETag and, for text worth
// compressing, its gzip encoding, both computed once.
type asset struct {
	body []byte
	gz   []byte
	etag string
}

// gzipMinBytes is the size from which an asset is also kept gzipped.
const gzipMinBytes = 1024

// Handler serves the UI: the files of web/ui/dist by path, and index.html for
// every other GET path (the application's own routes, such as /graph or
// /cluster/ring), so that a shared or reloaded URL opens the right page. Mount
// it at "/" below the API routes, which take precedence as more specific
// patterns.
func Handler() http.Handler {
	files := map[string]asset{}
	// Reading the embedded tree cannot fail: the files are in the binary.
	_ = fs.WalkDir(dist, distDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if len(b) >= gzipMinBytes {
			a.gz = gzipped(b)
		}
		files[strings.TrimPrefix(p, distDir)] = a
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		for _, prefix := range apiPrefixes {
			if strings.HasPrefix(p, prefix) {
				http.NotFound(w, r)
				return
			}
		}
		a, ok := files[p]
		name := p
		if !ok || p == "/index.html" {
			if path.Ext(p) != "" && p != "/index.html" {
				// A missing asset, not an application route.
				http.NotFound(w, r)
				return
			}
			a, ok = files["/index.html"]
			name = "/index.html"
			if !ok {
				http.Error(w, "the web UI was not built into this binary: run make ui", http.StatusNotFound)
				return
			}
		}
		// Assets keep their names across builds, so browsers revalidate them
		// with the ETag rather than cache them blindly.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Add("Vary", "Accept-Encoding")
		body, etag := a.body, a.etag
		if a.gz != nil && acceptsGzip(r) {
			body, etag = a.gz, `W/`+a.etag
			w.Header().Set("Content-Encoding", "gzip")
			// ServeContent would guess the type from the compressed bytes.
			if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
				w.Header().Set("Content-Type", ct)
			}
		}
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// gzipped returns b gzip-compressed at the best compression.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level
	// Writes to a bytes.Buffer cannot fail.
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}
