package dashboardtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
)

// TestDashboardMap opens the Campus map of a demo with faults: the page
// loads without console errors or CSP violations and draws the campus's
// own shapes without tiles: the building coloured by its load with the
// load in kW in its label and the side table, the plot by its disease
// risk, the robot's route; the robot's marker moves on screen within
// seconds as the simulator moves it; the blocked escape route's incident
// is a focusable marker; the legend gives units; the layer control is a
// list of labelled check boxes that the keyboard switches (a soil map
// drawn on a canvas when switched on). It logs the page's frame times
// and the browser's CPU over a few seconds (10 s, and the figures for
// docs/benchmarks.md, with CITYMESH_FIGURES=1). CITYMESH_DASHBOARD runs
// it against a running demo; CITYMESH_SCREENSHOTS writes map.png.
func TestDashboardMap(t *testing.T) {
	chromium(t)
	base, _ := dashboardTarget(t)
	tb := targetTab(t, base)
	tb.Open(base + "/map")
	firstMS := Eval[float64](tb, `performance.getEntriesByName("citymesh:first-data")[0].startTime`)
	t.Logf("first data on the map %.0f ms after navigation start", firstMS)

	// No tiles: only the campus's shapes.
	if n := Eval[int](tb, `document.querySelectorAll("#map img.leaflet-tile").length`); n != 0 {
		t.Errorf("%d map tiles", n)
	}
	waitDemo(t, "a building's load in kW", func() bool {
		_, err := strconv.ParseFloat(strings.ReplaceAll(tb.Text("#buildings tbody tr td.num"), ",", ""), 64)
		return err == nil && strings.Contains(textOf(tb, "#map .building-label"), " kW")
	}, func() string { return tb.Text("#buildings") + " | " + textOf(tb, "#map .building-label") })
	fill := Eval[string](tb, `[...document.querySelectorAll("#map path.leaflet-interactive")].map((p) => p.getAttribute("fill")).join(" ")`)
	if !strings.Contains(fill, "#") {
		t.Errorf("shapes' fills: %q", fill)
	}
	waitDemo(t, "the plot's risk", func() bool {
		s := tb.Text("#plots tbody tr")
		return strings.Contains(s, "Wartberg") && !strings.Contains(s, "–\t")
	}, func() string { return tb.Text("#plots") })
	if l := tb.Text("#legend"); !strings.Contains(l, "kW") || !strings.Contains(l, "moderate") || !strings.Contains(l, "very low") {
		t.Errorf("legend: %q", l)
	}

	// The robot moves on screen.
	waitDemo(t, "the robot's position", func() bool { return tb.Text("#robot-pos") != "–" }, func() string { return tb.Text("#robot-pos") })
	pos, d := tb.Text("#robot-pos"), Eval[string](tb, `document.querySelector("#map path.robot-marker")?.getAttribute("d") ?? ""`)
	if d == "" {
		t.Fatal("no robot marker on the map")
	}
	moved := time.Now()
	waitDemo(t, "the robot to move on screen", func() bool {
		return tb.Text("#robot-pos") != pos && Eval[string](tb, `document.querySelector("#map path.robot-marker").getAttribute("d")`) != d
	}, func() string { return "still at " + pos })
	t.Logf("the robot moved on screen within %v", time.Since(moved).Round(time.Millisecond))
	if n := Eval[int](tb, `document.querySelectorAll("#map path.route-line").length`); n == 0 {
		t.Error("no route on the map")
	}

	// The incident: a marker the keyboard reaches, with its details.
	waitDemo(t, "an incident marker", func() bool {
		return Eval[int](tb, `document.querySelectorAll("#map .badge-inc[tabindex='0']").length`) > 0
	}, func() string { return tb.Text("#n-incidents") + " open incidents" })

	// The layer control: labelled check boxes; Space switches the pH soil map on.
	labels := Eval[[]string](tb, `[...document.querySelectorAll("#map .leaflet-control-layers label")].map((l) => l.textContent.trim())`)
	if len(labels) < 8 {
		t.Errorf("layer control: %q", labels)
	}
	Eval[bool](tb, `(() => { const i = [...document.querySelectorAll("#map .leaflet-control-layers label")].find((l) => l.textContent.includes("pH")).querySelector("input"); i.id = "soil-ph"; return true; })()`)
	soilAt := time.Now()
	tb.Do("switch the pH soil map on with the keyboard", chromedp.Focus(chromedp.CSS("#soil-ph")), chromedp.KeyEvent(" "))
	waitDemo(t, "the soil maps on a canvas", func() bool {
		return Eval[bool](tb, `document.querySelector("#soil-ph").checked && document.body.dataset.soilph === "loaded" && !!document.querySelector("#map .leaflet-soil-pane canvas")`)
	}, func() string {
		return "pH checked: " + Eval[string](tb, `String(document.querySelector("#soil-ph").checked)`)
	})
	t.Logf("the pH soil maps of %d plots fetched and drawn %v after the key press",
		Eval[int](tb, `document.querySelectorAll("#plots tbody tr").length`), time.Since(soilAt).Round(time.Millisecond))

	// Back to the default layers; zoom to the campus (the site of the
	// buildings) with its button: labels are shown where they have room.
	tb.Do("switch the soil map off", chromedp.Focus(chromedp.CSS("#soil-ph")), chromedp.KeyEvent(" "))
	site := Eval[string](tb, `(() => { const b = [...document.querySelectorAll("#map .zoomto button")].find((b) => b.textContent === "campus"); if (b) b.id = "zoom-campus"; return b ? b.id : ""; })()`)
	if site == "" {
		t.Fatal("no button to zoom to the campus")
	}
	tb.Do("zoom to the campus", chromedp.Click(chromedp.CSS("#zoom-campus")))
	waitDemo(t, "the building labels at the campus's zoom", func() bool {
		return Eval[bool](tb, `!document.querySelector("#map").classList.contains("labels-off") && [...document.querySelectorAll("#map .building-label")].some((l) => l.offsetWidth > 0)`)
	}, func() string { return "labels off" })
	if os.Getenv("CITYMESH_SCREENSHOTS") != "" {
		time.Sleep(400 * time.Millisecond) // the zoom's animation
		tb.Screenshot("map")
	}

	time.Sleep(time.Second) // the zoom settled (the figures are of the page streaming, not zooming)
	window := 3 * time.Second
	if os.Getenv("CITYMESH_FIGURES") != "" {
		window = 10 * time.Second
	}
	f := measurePage(tb, window)
	t.Logf("map page over %v each while the campus streams: frames p50 %.1f ms, p95 %.1f ms, max %.1f ms (%d frames, %d over 50 ms); "+
		"renderer main thread busy %.1f %% of a core (TaskDuration; script %.1f %%, layout %.1f %%); all Chromium processes %.1f %% of a core (/proc); %d robot fixes drawn",
		window, f.p50, f.p95, f.max, f.frames, f.long, f.taskPct, f.scriptPct, f.layoutPct, f.procPct, f.fixes)
}

// pageFigures are a page's frame times and the browser's CPU over a window.
type pageFigures struct {
	frames, long, fixes           int
	p50, p95, max                 float64 // frame times, ms
	taskPct, scriptPct, layoutPct float64 // the tab's renderer main thread, % of a core
	procPct                       float64 // every Chromium process of the test, % of a core
}

// measurePage records, for window each, the CPU the browser spends on
// the page (the tab's TaskDuration, Chromium's Performance.getMetrics: the
// time the renderer's main thread ran tasks, and the user+system time of
// every Chromium process under this test, /proc/PID/stat, over the wall
// time), then the page's requestAnimationFrame deltas.
func measurePage(tb *tab, window time.Duration) pageFigures {
	tb.t.Helper()
	metrics := func() map[string]float64 {
		m, err := chromedp.Run(tb.ctx, func(ctx context.Context, t *chromedp.Target) (map[string]float64, error) {
			if _, err := cdp.Call(ctx, t, performance.Enable, performance.EnableParams{}); err != nil {
				return nil, err
			}
			res, err := cdp.Call(ctx, t, performance.GetMetrics, cdp.Empty{})
			if err != nil {
				return nil, err
			}
			out := map[string]float64{}
			for _, x := range res.Metrics {
				out[x.Name] = x.Value
			}
			return out, nil
		})
		if err != nil {
			tb.t.Fatalf("Performance.getMetrics: %v", err)
		}
		return m
	}
	// The CPU first, with the page left alone (a requestAnimationFrame
	// loop would make the browser draw every frame), then the frames.
	fixes0, _ := strconv.Atoi(Eval[string](tb, `document.body.dataset.robotFixes || "0"`))
	m0, p0, t0 := metrics(), chromiumCPU(), time.Now()
	select {
	case <-time.After(window):
	case <-tb.ctx.Done():
		tb.t.Fatal(tb.ctx.Err())
	}
	m1, p1, wall := metrics(), chromiumCPU(), time.Since(t0).Seconds()
	fixes1, _ := strconv.Atoi(Eval[string](tb, `document.body.dataset.robotFixes || "0"`))
	deltas := Eval[[]float64](tb, fmt.Sprintf(`new Promise((done) => {
  const d = []; let last = 0; const end = performance.now() + %d;
  const f = (t) => { if (last) d.push(t - last); last = t; if (t < end) requestAnimationFrame(f); else done(d); };
  requestAnimationFrame(f);
})`, window.Milliseconds()))
	f := pageFigures{frames: len(deltas), fixes: fixes1 - fixes0}
	if len(deltas) > 0 {
		s := append([]float64(nil), deltas...)
		sortFloats(s)
		f.p50, f.p95, f.max = s[len(s)/2], s[len(s)*95/100], s[len(s)-1]
		for _, x := range s {
			if x > 50 {
				f.long++
			}
		}
	}
	pct := func(k string) float64 { return 100 * (m1[k] - m0[k]) / wall }
	f.taskPct, f.scriptPct, f.layoutPct = pct("TaskDuration"), pct("ScriptDuration"), pct("LayoutDuration")
	f.procPct = 100 * (p1 - p0) / wall
	return f
}

func sortFloats(s []float64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// chromiumCPU returns the CPU seconds (user and system) of every process
// descending from this test process whose command is Chromium's: the
// browser, its GPU and utility processes and the renderers.
func chromiumCPU() float64 {
	self := os.Getpid()
	parent := map[int]int{}
	comm := map[int]string{}
	ticks := map[int]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:i]))
		f := strings.Fields(s[j+1:]) // state ppid ... utime(12) stime(13)
		if len(f) < 13 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		parent[pid], comm[pid], ticks[pid] = pp, s[i+1:j], u+st
	}
	var total float64
	for pid, c := range comm {
		if !strings.Contains(c, "chrom") {
			continue
		}
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == self {
				total += ticks[pid]
				break
			}
		}
	}
	return total / 100 // USER_HZ
}
