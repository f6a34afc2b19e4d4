package dashboardtest_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/web"
)

// tilePath is a tile request of the test's tile server: /tiles/{z}/{x}/{y}.png.
var tilePath = regexp.MustCompile(`^/tiles/([0-9]+)/([0-9]+)/([0-9]+)\.png$`)

// TestDashboardMapTiles runs a demo whose dashboard has a tile server
// (dashboard.map_tiles, here a server of the test's on another origin):
// the Campus map and the Robot view's track draw its tiles under the
// campus's shapes, with its attribution, and the pages' CSP lets the
// tiles in (a violation fails the test, as everywhere in this package).
func TestDashboardMapTiles(t *testing.T) {
	chromium(t)
	var tile bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = 0xe0
	}
	img.SetGray(128, 128, color.Gray{Y: 0x80})
	if err := png.Encode(&tile, img); err != nil {
		t.Fatal(err)
	}
	var served, bad atomic.Int64
	tiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tilePath.MatchString(r.URL.Path) {
			bad.Add(1)
			http.NotFound(w, r)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(tile.Bytes())
	}))
	defer tiles.Close()

	opts := options(t)
	opts.Dashboard = web.Options{MapTiles: tiles.URL + "/tiles/{z}/{x}/{y}.png", MapAttribution: "Test tiles <b>& co</b>"}
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.Addr(node.ListenerHTTP).String()
	var admin demo.User
	for _, u := range d.Users() {
		if u.Name == "admin" {
			admin = u
		}
	}

	tb := newTabAs(t, "")
	tb.Login(base, admin.Name, admin.Password)
	for _, page := range []struct{ path, mapID string }{{"/map", "map"}, {"/robot", "track"}} {
		before := served.Load()
		tb.Open(base + page.path)
		waitDemo(t, page.path+": tiles drawn", func() bool {
			return Eval[int](tb, `[...document.querySelectorAll("#`+page.mapID+` img.leaflet-tile-loaded")].filter((i) => i.naturalWidth === 256).length`) > 0
		}, func() string {
			return Eval[string](tb, `[...document.querySelectorAll("#`+page.mapID+` img.leaflet-tile")].map((i) => i.src + " " + i.className).join("\n")`)
		})
		if served.Load() == before {
			t.Errorf("%s: the tile server served nothing", page.path)
		}
		// The attribution is text, not markup.
		if a := tb.Text("#" + page.mapID + " .leaflet-control-attribution"); !strings.Contains(a, "Test tiles <b>& co</b>") {
			t.Errorf("%s: attribution %q", page.path, a)
		}
		// The campus's own shapes are still drawn over them.
		if n := Eval[int](tb, `document.querySelectorAll("#`+page.mapID+` path.leaflet-interactive").length`); n == 0 {
			t.Errorf("%s: no shapes over the tiles", page.path)
		}
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d requests to the tile server were not for tiles", n)
	}
}
