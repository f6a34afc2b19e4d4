package live

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
)

func TestPicturePrune(t *testing.T) {
	now := simStart
	st := service.NewMemoryStore().State("robot")
	p, err := openPictures(st, PicturesConfig{MaxBytes: 1 << 20, MaxTotalBytes: 1 << 22, Retention: time.Hour}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	png := pngBytes(t)
	old, _, err := p.put(png, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	kept, _, err := p.put(append(png, 1), "")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	young, _, err := p.put(append(png, 2), "")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(45 * time.Minute)
	keep := map[string]bool{strings.TrimPrefix(kept.Hash, "sha256:"): true}
	if n, err := p.prune(keep); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	for _, c := range []struct {
		m    pictureMeta
		here bool
	}{{old, false}, {kept, true}, {young, true}} {
		if _, _, err := p.get(strings.TrimPrefix(c.m.Hash, "sha256:")); (err == nil) != c.here {
			t.Errorf("%s: %v, want here %v", c.m.Hash, err, c.here)
		}
	}
	// What was pruned is gone from the state too.
	p2, err := openPictures(st, p.cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if n, total := p2.usage(); n != 2 || total != kept.Size+young.Size {
		t.Errorf("after reopening: %d pictures, %d bytes", n, total)
	}
}

// TestPictureElsewhere: a picture event whose bytes are stored elsewhere
// makes the picture's URL here redirect there.
func TestPictureElsewhere(t *testing.T) {
	b, _ := testBroker(t)
	r := startService(t, b, service.NewMemoryStore().State("robot"), testConfig(t), nil)
	pub, err := bus.NewLocal(b, "loomi")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	hx := strings.Repeat("ab", 32)
	pic := &event.Picture{Header: event.Header{Time: simStart, Asset: "loomi", Source: event.Source{Type: event.SourceRobot}},
		Hash: "sha256:" + hx, ContentType: "image/jpeg", Size: 1000, URL: "https://pictures.example/" + hx + ".jpg"}
	m, err := event.NewMessage(event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", event.EventPicture), pic)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r.sync(t, pub, "p")
	srv := httptest.NewServer(r.s.HTTPHandler())
	defer srv.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + PicturePath(pic.Hash))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != pic.URL {
		t.Errorf("%s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
}
