package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/web"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, cache string
		csp          bool
		body         string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", "no-cache", true, `<main id="main"`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", "no-cache", true, ""},
		{"GET", "/static/overview.js", 200, "text/javascript; charset=utf-8", "no-cache", false, "import uPlot"},
		{"GET", "/static/app.css", 200, "text/css; charset=utf-8", "no-cache", false, ".tile"},
		{"GET", "/static/vendor/mqtt/mqtt.esm.js", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", false, "export default"},
		{"GET", "/static/vendor/uplot/uPlot.min.css", 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", false, ".uplot"},
		{"GET", "/static/vendor/leaflet/images/marker-icon.png", 200, "image/png", "public, max-age=31536000, immutable", false, "PNG"},
		{"GET", "/static/vendor/uplot/LICENSE", 200, "text/plain; charset=utf-8", "public, max-age=31536000, immutable", false, "MIT"},
		{"GET", "/static/", 404, "", "", false, ""},
		{"GET", "/static/vendor/", 404, "", "", false, ""},
		{"GET", "/static/nope.js", 404, "", "", false, ""},
		{"GET", "/static/../web.go", 404, "", "", false, ""},
		{"GET", "/index.html", 404, "", "", false, ""},
		{"GET", "/login", 200, "text/html; charset=utf-8", "no-cache", true, `<form id="login"`},
		{"GET", "/static/site.json", 200, "application/json", "no-cache", false, "{}"},
		{"GET", "/static/common.js", 200, "text/javascript; charset=utf-8", "no-cache", false, "export async function session"},
		{"GET", "/index", 404, "", "", false, ""},
		{"GET", "/login.html", 404, "", "", false, ""},
		{"GET", "/nope", 404, "", "", false, ""},
		{"GET", "/login/x", 404, "", "", false, ""},
		{"POST", "/", 405, "", "", false, ""},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := tc.method + " " + tc.path
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", name, got, tc.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != tc.cache {
			t.Errorf("%s: Cache-Control %q, want %q", name, got, tc.cache)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", name, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); (got == web.CSP) != tc.csp {
			t.Errorf("%s: Content-Security-Policy %q", name, got)
		}
		if !strings.Contains(string(b), tc.body) {
			t.Errorf("%s: body lacks %q", name, tc.body)
		}
	}
}

// TestNoInlineScriptsOrStyles: the page works under script-src 'self';
// style-src 'self', so it has no inline script, style element or
// attribute, and no event handler attribute.
func TestNoInlineScriptsOrStyles(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := strings.ToLower(string(b))
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	for rest := page; ; {
		i := strings.Index(rest, "<script")
		if i < 0 {
			break
		}
		tag := rest[i : i+strings.Index(rest[i:], ">")]
		if !strings.Contains(tag, " src=") {
			t.Errorf("an inline script: %s", tag)
		}
		rest = rest[i+len(tag):]
	}
}

// TestPages: every page of the dashboard but / is a static/{name}.html.
func TestPages(t *testing.T) {
	pages := web.Pages()
	if len(pages) < 2 || pages[0] != "/" || !slices.Contains(pages, "/login") {
		t.Fatalf("Pages() = %v", pages)
	}
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	for _, p := range pages {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestOptions: the tile server setting is checked (a template with {z},
// {x}, {y}; an http(s) URL or a path on the node; nothing that could
// break out of the CSP), reaches the pages in /static/site.json, and
// only its origin is added to the pages' img-src.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		o      web.Options
		err    string // "" for valid
		imgSrc string // the pages' img-src when valid
	}{
		{web.Options{}, "", "img-src 'self' data:;"},
		{web.Options{MapTiles: "https://tile.openstreetmap.org/{z}/{x}/{y}.png", MapAttribution: "© OpenStreetMap contributors"}, "",
			"img-src 'self' data: https://tile.openstreetmap.org;"},
		{web.Options{MapTiles: "https://{s}.tiles.example.org:8443/base/{z}/{x}/{y}{r}.png"}, "", "img-src 'self' data: https://*.tiles.example.org:8443;"},
		{web.Options{MapTiles: "http://127.0.0.1:9000/{z}/{x}/{y}.png"}, "", "img-src 'self' data: http://127.0.0.1:9000;"},
		{web.Options{MapTiles: "/tiles/{z}/{x}/{y}.png"}, "", "img-src 'self' data:;"},
		{web.Options{MapAttribution: "© somebody"}, "map_attribution: an attribution without map_tiles", ""},
		{web.Options{MapTiles: "https://tiles.example.org/{z}/{x}.png"}, "map_tiles: \"https://tiles.example.org/{z}/{x}.png\" has no {y}", ""},
		{web.Options{MapTiles: "ftp://tiles.example.org/{z}/{x}/{y}.png"}, "want an https:// or http:// URL", ""},
		{web.Options{MapTiles: "//tiles.example.org/{z}/{x}/{y}.png"}, "want an https:// or http:// URL", ""},
		{web.Options{MapTiles: "tiles/{z}/{x}/{y}.png"}, "want an https:// or http:// URL", ""},
		{web.Options{MapTiles: "https://a.example; script-src *; x/{z}/{x}/{y}"}, "spaces, quotes, commas and semicolons", ""},
		{web.Options{MapTiles: "https://user:pw@tiles.example.org/{z}/{x}/{y}.png"}, "no credentials", ""},
		{web.Options{MapTiles: "https://tiles{z}.example.org/{z}/{x}/{y}.png"}, "only {s}. may stand in the host", ""},
	} {
		err := tc.o.Validate()
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.o, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		srv := httptest.NewServer(web.Handler(tc.o))
		resp, err := http.Get(srv.URL + "/map")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, tc.imgSrc) || strings.Count(csp, "img-src") != 1 {
			t.Errorf("%+v: the page's CSP %q, want %q in it", tc.o, csp, tc.imgSrc)
		}
		resp, err = http.Get(srv.URL + "/static/site.json")
		if err != nil {
			t.Fatal(err)
		}
		var got web.Options
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got != tc.o {
			t.Errorf("site.json: %+v (%v), want %+v", got, err, tc.o)
		}
		resp.Body.Close()
		srv.Close()
	}
}
