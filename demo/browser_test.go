package demo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/node"
)

// The dashboard's browser tests share one running demo of the small
// campus and one headless Chromium: starting either takes seconds, and
// the machine running the tests has two cores. Each test opens its own
// browser tab (a fresh target, with its own console listener).

// dashDemo is the demo the browser tests share.
type dashDemo struct {
	d    *demo.Demo
	base string // http://127.0.0.1:port, the node's HTTP listener
}

var (
	dashOnce sync.Once
	dashErr  error
	dash     *dashDemo
	// dashStop ends the shared demo and browser; TestMain calls it.
	dashStop []func()

	browserOnce sync.Once
	browserErr  error
	browserCtx  context.Context
)

// TestMain runs the package's tests, then stops the shared demo and
// browser.
func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(dashStop) - 1; i >= 0; i-- {
		dashStop[i]()
	}
	os.Exit(code)
}

// sharedDemo returns the demo the browser tests share, starting it on the
// first call: the small campus at half an hour a second, with the
// simulator's faults of examples/sim/campus-faults.yaml that fall in its
// first hours.
func sharedDemo(t *testing.T) *dashDemo {
	t.Helper()
	dashOnce.Do(func() {
		dir, err := os.MkdirTemp("", "citymesh-dashboard-")
		if err != nil {
			dashErr = err
			return
		}
		opts := options(t)
		opts.Data = dir
		d, err := demo.New(opts)
		if err != nil {
			os.RemoveAll(dir)
			dashErr = err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := d.Start(ctx); err != nil {
			cancel()
			d.Close()
			os.RemoveAll(dir)
			dashErr = err
			return
		}
		dashStop = append(dashStop, func() {
			cancel()
			if err := d.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "demo: close:", err)
			}
			os.RemoveAll(dir)
		})
		dash = &dashDemo{d: d, base: "http://" + d.Addr(node.ListenerHTTP).String()}
	})
	if dashErr != nil {
		t.Fatalf("the shared demo: %v", dashErr)
	}
	return dash
}

// tab is one browser tab of the shared Chromium, with the console errors
// and exceptions its pages raised.
type tab struct {
	t   *testing.T
	ctx context.Context // the tab's, with the test's deadline

	mu       sync.Mutex
	problems []string
}

// newTab opens a tab in the shared headless Chromium (skipping the test
// without one), closed at the end of the test, which then fails on any
// console error or exception its pages had.
func newTab(t *testing.T) *tab {
	t.Helper()
	exe := chromium(t)
	browserOnce.Do(func() {
		actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-gpu", true))...)
		bctx, bcancel := chromedp.NewContext(actx)
		dashStop = append(dashStop, func() { bcancel(); acancel() })
		// The first run starts the browser, which lives as long as bctx.
		browserErr = chromedp.Do(bctx, chromedp.Navigate("about:blank"))
		browserCtx = bctx
	})
	if browserErr != nil {
		t.Fatalf("start %s: %v", exe, browserErr)
	}
	tb := &tab{t: t}
	cctx, ccancel := chromedp.NewContext(browserCtx, chromedp.WithListener(func(ev any) { // a new tab

		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				tb.problems = append(tb.problems, "console.error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			tb.problems = append(tb.problems, "exception: "+msg+" at "+d.URL)
		}
	}))
	tctx, tcancel := context.WithTimeout(cctx, 120*time.Second)
	tb.ctx = tctx
	if err := chromedp.Do(tctx, chromedp.Navigate("about:blank")); err != nil { // opens the tab
		t.Fatalf("open a tab: %v", err)
	}
	t.Cleanup(func() {
		tcancel()
		ccancel()
		for _, p := range tb.Problems() {
			t.Errorf("in the browser: %s", p)
		}
	})
	return tb
}

// Problems returns the console errors and exceptions seen so far.
func (tb *tab) Problems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

// Do runs chromedp actions in the tab, failing the test on an error.
func (tb *tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// Open navigates to url and waits until the view says it has its first
// data (body[data-ready="true"], set by common.js's firstData).
func (tb *tab) Open(url string) {
	tb.t.Helper()
	tb.Do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
}

// Text returns the trimmed text of the first element matching the CSS
// selector sel.
func (tb *tab) Text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// Eval evaluates a JavaScript expression in the page and returns its value.
func Eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Login signs in through the sign-in page as user with password and waits
// for the page it lands on to be ready.
func (tb *tab) Login(base, user, password string) {
	tb.t.Helper()
	tb.Do("sign in as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), user),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		// A click on the button, as a person does: chromedp.Submit calls
		// the form's submit(), which skips its submit handler.
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
}

// Screenshot writes a full-page PNG of the tab as name.png to the folder
// CITYMESH_SCREENSHOTS names (docs/screenshots for the documentation's),
// or to a temporary folder, and logs where.
func (tb *tab) Screenshot(name string) {
	tb.t.Helper()
	dir := os.Getenv("CITYMESH_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "citymesh-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(dir, name+".png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot of %s: %s", name, out)
}
