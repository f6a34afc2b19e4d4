// Package web is citymesh's dashboard: static pages and plain JavaScript
// modules, embedded in the binary, that read the node's HTTP APIs and follow
// its retained topics over MQTT over WebSocket. The front-end libraries are
// vendored in static/vendor by scripts/vendor-web.sh; nothing is built.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy the dashboard's pages are served with:
// scripts and styles from the node only, no inline ones; connections to the
// node and to MQTT over WebSocket (on its own port).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the dashboard has; an unknown
// extension is served as application/octet-stream.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
	".svg":  "image/svg+xml",
	".json": "application/json",
	".md":   "text/plain; charset=utf-8",
	"":      "text/plain; charset=utf-8", // LICENSE, VERSIONS
}

// Pages returns the paths of the dashboard's pages: "/" (index.html) and
// "/{name}" for every other static/{name}.html ("/login", "/map", …), in
// lexical order. Mount Handler at "GET /{$}", "GET /static/" and each of
// them but "/".
func Pages() []string {
	ents, err := fs.ReadDir(files, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	pages := []string{"/"}
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".html"); ok && !e.IsDir() && name != "index" {
			pages = append(pages, "/"+name)
		}
	}
	return pages
}

// Handler serves the dashboard: index.html at /, static/{name}.html at
// /{name} and the files of static/ at /static/…. Vendored libraries are
// cached as immutable (their versions are pinned and change only with a
// new binary); the dashboard's own files are revalidated on every load.
// Mount it as Pages says.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := "index.html"
		switch rest, ok := strings.CutPrefix(r.URL.Path, "/static/"); {
		case r.URL.Path == "/":
		case ok:
			if rest == "" || strings.HasSuffix(rest, "/") {
				http.NotFound(w, r)
				return
			}
			name = path.Clean(rest)
		default:
			// A page: /login is static/login.html; /index, /login.html
			// and anything with another slash are not.
			page := strings.TrimPrefix(r.URL.Path, "/")
			if page == "index" || page == "" || strings.ContainsAny(page, "/.") {
				http.NotFound(w, r)
				return
			}
			name = page + ".html"
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(name, "vendor/") {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		if ct == contentTypes[".html"] {
			h.Set("Content-Security-Policy", CSP)
			h.Set("Referrer-Policy", "no-referrer")
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	})
}
