package demo_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/node"
)

// chromium finds Debian's Chromium (apt-get install chromium), or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no chromium binary (/usr/bin/chromium; Debian: apt-get install chromium): the dashboard's browser test needs one")
	return ""
}

// TestDashboardOverview opens the dashboard of a running demo in headless
// Chromium, under the node's Content-Security-Policy: the Overview loads
// without console errors or exceptions, shows the services' count, a live
// events-per-second figure that changes within seconds and its MQTT
// connection. CITYMESH_DASHBOARD=http://127.0.0.1:8080/ runs it against a
// running `citymesh demo` instead (with ?ws=… when its WebSocket is not on
// port 8083); CITYMESH_SCREENSHOT=docs/screenshots/overview.png writes a
// screenshot.
func TestDashboardOverview(t *testing.T) {
	exe := chromium(t)
	page := os.Getenv("CITYMESH_DASHBOARD")
	if page == "" {
		d, err := demo.New(options(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := d.Start(ctx); err != nil {
			cancel()
			d.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		})
		page = "http://" + d.Addr(node.ListenerHTTP).String() + "/?ws=ws://" + d.Addr(node.ListenerWS).String() + "/mqtt"
	}

	// The page is served with the CSP that forbids inline scripts and styles.
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || !strings.Contains(got, "script-src 'self'") || !strings.Contains(got, "style-src 'self'") {
		t.Fatalf("GET %s: %d, Content-Security-Policy %q", page, resp.StatusCode, got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", page, ct)
	}

	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-gpu", true))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	// The first run starts the browser, which lives as long as bctx.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	tctx, tcancel := context.WithTimeout(bctx, 90*time.Second)
	defer tcancel()

	var mu sync.Mutex
	var problems []string
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, "exception: "+msg+" at "+d.URL)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`))); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}
	firstMS, err := chromedp.Run(tctx, chromedp.Evaluate[float64](`performance.getEntriesByName("citymesh:first-data")[0].startTime`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first data rendered %.0f ms after navigation start", firstMS)

	waitDemo(t, "the services' count", func() bool {
		n, err := strconv.Atoi(text("#services-total"))
		return err == nil && n > 0
	}, func() string { return text("#services-total") })
	first := text("#eps")
	waitDemo(t, "the events per second to change", func() bool {
		s := text("#eps")
		return s != first && s != "–"
	}, func() string { return "still " + first })
	waitDemo(t, "the MQTT connection", func() bool { return text("#mqtt-state") == "connected" },
		func() string { return text("#mqtt-state") })
	waitDemo(t, "the twin's points", func() bool { return text("#points-total") != "–" },
		func() string { return text("#points-total") })

	if out := os.Getenv("CITYMESH_SCREENSHOT"); out != "" {
		// A chart with half a minute of samples.
		samples := func() int {
			n, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.dataset.samples || "0"`))
			i, _ := strconv.Atoi(n)
			return i
		}
		for deadline := time.Now().Add(60 * time.Second); samples() < 15 && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		}
		t.Logf("%d samples of events/s", samples())
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("%s: %s", page, p)
	}
}
