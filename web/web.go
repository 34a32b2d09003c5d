// Package web serves strata's web UI: a single-page application whose
// sources live in web/ui and whose built assets, committed under web/ui/dist,
// are embedded in the binary. Nothing is fetched from the network at runtime.
//
// Rebuild the assets with `make ui` (npm ci and the esbuild bundle); the Go
// build alone needs only the committed files.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
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

// asset is one embedded file, with its ETag computed once.
type asset struct {
	body []byte
	etag string
}

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
		files[strings.TrimPrefix(p, distDir)] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
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
		w.Header().Set("ETag", a.etag)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
