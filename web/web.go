// Package web is citymesh's dashboard: static pages and plain JavaScript
// modules, embedded in the binary, that read the node's HTTP APIs and follow
// its retained topics over MQTT over WebSocket. The front-end libraries are
// vendored in static/vendor by scripts/vendor-web.sh; nothing is built.
package web

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy the dashboard's pages are served with
// when no tile server is configured: scripts and styles from the node only,
// no inline ones; connections to the node and to MQTT over WebSocket (on
// its own port). Options.CSP adds a tile server's origin to img-src.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options are the dashboard's settings, the node configuration's dashboard
// section. The zero value draws the maps from the campus's own shapes only.
type Options struct {
	// MapTiles, when set, is a tile server's URL template, drawn under the
	// campus's shapes on the Campus map and the Robot view's track, in
	// Leaflet's form: {z}, {x} and {y} (and optionally {s} for a
	// subdomain, {r} for "@2x" on high-density screens); an https:// or
	// http:// URL, or a path on the node ("/tiles/{z}/{x}/{y}.png"). The
	// pages' Content-Security-Policy then allows images from its origin.
	// Example: "https://tile.openstreetmap.org/{z}/{x}/{y}.png" (mind the
	// tile server's usage policy).
	MapTiles string `yaml:"map_tiles" json:"map_tiles,omitempty"`
	// MapAttribution is the tiles' attribution, shown in the map's corner
	// as text (required by most tile servers' terms, e.g. "© OpenStreetMap
	// contributors").
	MapAttribution string `yaml:"map_attribution" json:"map_attribution,omitempty"`
}

// Validate reports what is wrong with o, as "setting: what".
func (o Options) Validate() error {
	if o.MapTiles == "" {
		if o.MapAttribution != "" {
			return errors.New("map_attribution: an attribution without map_tiles")
		}
		return nil
	}
	for _, v := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(o.MapTiles, v) {
			return fmt.Errorf("map_tiles: %q has no %s (want a template such as https://tiles.example.org/{z}/{x}/{y}.png)", o.MapTiles, v)
		}
	}
	if strings.ContainsAny(o.MapTiles, " \t\r\n;,'\"") {
		return fmt.Errorf("map_tiles: %q: spaces, quotes, commas and semicolons are not allowed in the URL", o.MapTiles)
	}
	if strings.HasPrefix(o.MapTiles, "/") && !strings.HasPrefix(o.MapTiles, "//") {
		return nil // a path on the node
	}
	if _, err := tileOrigin(o.MapTiles); err != nil {
		return fmt.Errorf("map_tiles: %q: %w", o.MapTiles, err)
	}
	return nil
}

// tileOrigin returns the origin of an absolute tile URL template, with a
// {s} subdomain as a wildcard ("https://*.tile.example.org").
func tileOrigin(tmpl string) (string, error) {
	// A {s} subdomain is the one placeholder of the host; url.Parse
	// accepts no braces there.
	wild := false
	if scheme, rest, ok := strings.Cut(tmpl, "://"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if h, ok := strings.CutPrefix(host, "{s}."); ok {
			host, wild = h, true
		}
		if strings.ContainsAny(host, "{}") {
			return "", errors.New("only {s}. may stand in the host, at its start")
		}
		tmpl = scheme + "://" + host + "/" + path
	}
	u, err := url.Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return "", errors.New("want an https:// or http:// URL, or a path on the node starting with /")
	}
	if u.User != nil {
		return "", errors.New("no credentials in the URL")
	}
	if wild {
		return u.Scheme + "://*." + u.Host, nil
	}
	return u.Scheme + "://" + u.Host, nil
}

// CSP returns the Content-Security-Policy of the dashboard's pages with o:
// the constant CSP, with a tile server's origin added to img-src.
func (o Options) CSP() string {
	origin, err := tileOrigin(o.MapTiles)
	if o.MapTiles == "" || err != nil {
		return CSP
	}
	return strings.Replace(CSP, "img-src 'self' data:", "img-src 'self' data: "+origin, 1)
}

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

// SiteFile is the path, under /static/, of the pages' settings: Options
// as JSON, which the pages read at load.
const SiteFile = "site.json"

// Handler serves the dashboard with o (valid, see Options.Validate):
// index.html at /, static/{name}.html at /{name}, the files of static/ at
// /static/… and o at /static/site.json. Vendored libraries are cached as
// immutable (their versions are pinned and change only with a new
// binary); the dashboard's own files are revalidated on every load. Mount
// it as Pages says.
func Handler(o Options) http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	site, err := json.Marshal(o)
	if err != nil {
		panic(err) // two strings
	}
	csp := o.CSP()
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
		if name == SiteFile {
			b, err = site, nil
		}
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
			h.Set("Content-Security-Policy", csp)
			h.Set("Referrer-Policy", "no-referrer")
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	})
}
