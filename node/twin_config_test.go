package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/twin/remotewrite"
)

// TestTwinConfigRefused: each mistake in the twin section is refused, with
// the setting's key.
func TestTwinConfigRefused(t *testing.T) {
	on := func(edit func(*node.TwinConfig)) func(*node.Config) {
		return func(c *node.Config) {
			c.Twin = node.TwinConfig{Enabled: true, Campus: "campus.yaml"}
			edit(&c.Twin)
		}
	}
	tests := []struct {
		name  string
		edit  func(*node.Config)
		field string
		want  string
	}{
		{"settings but not enabled", func(c *node.Config) { c.Twin.Campus = "campus.yaml" }, "twin.enabled", "enabled is not true"},
		{"no campus", on(func(t *node.TwinConfig) { t.Campus = "" }), "twin.campus", "required"},
		{"negative copies", on(func(t *node.TwinConfig) { t.Copies = -1 }), "twin.copies", "want 1 to"},
		{"prefix with a slash", on(func(t *node.TwinConfig) { t.Prefix = "a/b" }), "twin.prefix", ""},
		{"publish interval without a unit", on(func(t *node.TwinConfig) { t.PublishEvery = 5 }), "twin.publish_every", "want at least 10ms"},
		{"negative recover timeout", on(func(t *node.TwinConfig) { t.RecoverTimeout = -time.Second }), "twin.recover_timeout", "want at least"},
		{"short retention", on(func(t *node.TwinConfig) { t.History.Retention = time.Second }), "twin.history.retention", "want at least 1m"},
		{"kind retention", on(func(t *node.TwinConfig) { t.History.KindRetention = map[string]time.Duration{"room": time.Second} }), "twin.history.kind_retention.room", "want at least 1m"},
		{"history of a memory node", func(c *node.Config) {
			c.Store = "memory"
			c.Twin = node.TwinConfig{Enabled: true, Campus: "campus.yaml"}
		}, "twin.history.dir", "no data directory"},
		{"remote write queue of a memory node", func(c *node.Config) {
			c.Store = "memory"
			c.Twin = node.TwinConfig{Enabled: true, Campus: "campus.yaml", History: node.TwinHistoryConfig{Off: true},
				RemoteWrite: &remotewrite.Config{URL: "http://vm:8428/api/v1/write"}}
		}, "twin.remote_write.dir", "no data directory"},
		{"remote write without url", on(func(t *node.TwinConfig) { t.RemoteWrite = &remotewrite.Config{} }), "twin.remote_write.url", "required"},
		{"remote write of another scheme", on(func(t *node.TwinConfig) { t.RemoteWrite = &remotewrite.Config{URL: "ftp://x/"} }), "twin.remote_write.url", "want http"},
		{"remote write with two auths", on(func(t *node.TwinConfig) {
			t.RemoteWrite = &remotewrite.Config{URL: "http://x/", BearerToken: "a", BearerTokenFile: "b"}
		}), "twin.remote_write", "exclusive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := node.Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			var fe *node.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Error(), tc.want) {
				t.Fatalf("Validate() = %v; want a FieldError of %s saying %q", err, tc.field, tc.want)
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		for _, edit := range []func(*node.Config){
			on(func(t *node.TwinConfig) {}),
			on(func(t *node.TwinConfig) {
				t.History.Off = true
				t.RemoteWrite = &remotewrite.Config{URL: "http://vm:8428/api/v1/write"}
			}),
			func(c *node.Config) {
				c.Connectors.Campus = "campus.yaml"
				c.Twin = node.TwinConfig{Enabled: true}
			},
			func(c *node.Config) {
				c.Store = "memory"
				c.Twin = node.TwinConfig{Enabled: true, Campus: "campus.yaml", History: node.TwinHistoryConfig{Off: true}}
			},
		} {
			cfg := node.Default()
			edit(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		}
	})
}

// TestTwinConfigYAML: the twin section as a file says it, history: off
// included, and unknown keys in it refused with their line.
func TestTwinConfigYAML(t *testing.T) {
	tests := []struct {
		name, yaml string
		check      func(node.TwinConfig) bool
		err        string
	}{
		{"full", "twin:\n  enabled: true\n  campus: c.yaml\n  publish_every: 2s\n  history:\n    retention: 720h\n    kind_retention: {room: 168h}\n    out_of_order_window: 1h\n  remote_write:\n    url: http://vm:8428/api/v1/write\n",
			func(c node.TwinConfig) bool {
				return c.Enabled && c.PublishEvery == 2*time.Second && c.History.Retention == 720*time.Hour &&
					c.History.KindRetention["room"] == 168*time.Hour && c.RemoteWrite != nil && c.RemoteWrite.URL == "http://vm:8428/api/v1/write"
			}, ""},
		{"history off", "twin:\n  enabled: true\n  history: off\n", func(c node.TwinConfig) bool { return c.History.Off }, ""},
		{"unknown key in history", "twin:\n  enabled: true\n  history:\n    retension: 1h\n", nil, "line 4"},
		{"history of a wrong kind", "twin:\n  history: sometimes\n", nil, "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := node.Parse([]byte(tc.yaml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse = %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(cfg.Twin) {
				t.Fatalf("Parse = %+v, %v", cfg.Twin, err)
			}
		})
	}
}

// TestNodeTwinRestart: a node restarted on the same data directory has the
// twin's state again (recovered from the retained snapshots in the store)
// and its history (on disk), before anything new is published; the
// recovery's figures are logged.
func TestNodeTwinRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := twinConfig(t, false)
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	base := "http://" + n.Addr(node.ListenerHTTP).String()
	publishTwinEvents(t, ctx, n.Addr(node.ListenerMQTT).String(), "", 22.25, 3.6, time.Now().Add(-time.Minute))
	waitFor(t, 10*time.Second, "the points in the twin API", func() bool {
		return pointHasValue(t, base, roomPoint) && pointHasValue(t, base, devicePoint)
	})
	waitFor(t, 10*time.Second, "the snapshots published", func() bool { return n.Twin().Service().Stats().Published >= 2 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Data, "history")); err != nil {
		t.Fatalf("the history is not in the data directory: %v", err)
	}

	start := time.Now()
	n = startNode(t, cfg, nil)
	took := time.Since(start)
	base = "http://" + n.Addr(node.ListenerHTTP).String()
	rec := n.Twin().Service().Recovered()
	if rec == nil || !rec.Complete || rec.Assets < 2 || rec.Points < 2 {
		t.Fatalf("recovered %+v", rec)
	}
	if !pointHasValue(t, base, roomPoint) || !pointHasValue(t, base, devicePoint) {
		t.Fatal("the restarted node's twin lacks the values")
	}
	if got := promSeries(t, base, "", "citymesh_point_value"); !sameSet(got, []string{roomPoint, devicePoint}) {
		t.Fatalf("the restarted node's history: %v", got)
	}
	t.Logf("restart: node started in %v, twin recovered %d assets (%d points) in %v", took.Round(time.Millisecond), rec.Assets, rec.Points, rec.Duration.Round(time.Microsecond))
}

// TestReloadTwinNeedsRestart: Reload applies nothing of the twin section
// and names each changed setting as needing a restart.
func TestReloadTwinNeedsRestart(t *testing.T) {
	cfg := twinConfig(t, false)
	n := startNode(t, cfg, nil)
	next := cfg
	next.Twin.PublishEvery = 2 * time.Second
	next.Twin.History.Retention = 720 * time.Hour
	next.Twin.RemoteWrite = &remotewrite.Config{URL: "http://vm:8428/api/v1/write"}
	notApplied, err := n.Reload(&next)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"twin.publish_every", "twin.history.retention", "twin.remote_write"}
	if !sameSet(notApplied, want) {
		t.Errorf("Reload: not applied %v, want %v", notApplied, want)
	}
	if got := n.Config().Twin.PublishEvery; got != cfg.Twin.PublishEvery {
		t.Errorf("the running publish_every became %v", got)
	}
}

// TestNodeTwinRemoteWrite: with remote_write the twin's samples reach a
// remote write receiver (decoded here with golang/snappy and prompb, not
// the writer's code), beside the local history or, with history: off,
// instead of it (and /prometheus/ is then not served).
func TestNodeTwinRemoteWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		historyOff bool
	}{{"with history", false}, {"history off", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			got := map[string]float64{}
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				raw, err := snappy.Decode(nil, body)
				var wr prompb.WriteRequest
				if err == nil {
					err = wr.Unmarshal(raw)
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				mu.Lock()
				for _, ts := range wr.Timeseries {
					for _, l := range ts.Labels {
						if l.Name == "point" && len(ts.Samples) > 0 {
							got[l.Value] = ts.Samples[len(ts.Samples)-1].Value
						}
					}
				}
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer recv.Close()
			cfg := twinConfig(t, false)
			cfg.Twin.History.Off = tc.historyOff
			cfg.Twin.RemoteWrite = &remotewrite.Config{URL: recv.URL + "/api/v1/write", BatchWait: 20 * time.Millisecond}
			n := startNode(t, cfg, nil)
			base := "http://" + n.Addr(node.ListenerHTTP).String()
			publishTwinEvents(t, context.Background(), n.Addr(node.ListenerMQTT).String(), "", 20.5, 3.3, time.Now().Add(-time.Minute))
			waitFor(t, 10*time.Second, "the samples at the receiver", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return got[roomPoint] == 20.5 && got[devicePoint] == 3.3
			})
			if tc.historyOff {
				if code, _ := twinGet(t, "GET", base+"/prometheus/api/v1/query?query=up", ""); code != http.StatusNotFound {
					t.Errorf("/prometheus/ with history off: %d, want 404", code)
				}
				if _, err := os.Stat(filepath.Join(cfg.Data, "history")); err == nil {
					t.Error("history: off made a history directory")
				}
			} else if got := promSeries(t, base, "", "citymesh_point_value"); !sameSet(got, []string{roomPoint, devicePoint}) {
				t.Errorf("the local history has %v", got)
			}
			if _, err := os.Stat(filepath.Join(cfg.Data, "remote-write")); err != nil {
				t.Errorf("the queue is not in {data}/remote-write: %v", err)
			}
			code, body := twinGet(t, "GET", base+"/metrics", "")
			if code != 200 || !strings.Contains(string(body), "citymesh_remote_write_") || !strings.Contains(string(body), "citymesh_twin_samples_sunk_total") {
				t.Errorf("/metrics lacks the twin's or remote write's metrics: %d", code)
			}
		})
	}
}
