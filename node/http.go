package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citymesh/citymesh/broker"
)

// httpHandler serves /healthz, Prometheus /metrics, /debug/pprof and, on a
// mesh node, GET /api/mesh.
func (n *Node) httpHandler() http.Handler {
	reg := n.reg
	// The Go runtime and the process are the HTTP listener's to report:
	// nodes embedded in one process each have their own registry. A
	// program that registered them itself keeps its own.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			n.log.Warn("metrics: cannot register a collector", "err", err)
		}
	}
	mux := http.NewServeMux()
	if n.mesh != nil {
		mux.Handle("GET /api/mesh", n.mesh)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles for `go tool pprof`; the HTTP listener is on loopback unless
	// configured otherwise.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// wsHandler serves MQTT over WebSocket on /mqtt, with the "mqtt" subprotocol
// (MQTT 5.0 section 6), for listener name bound to addr; connections end
// with ctx. Upgrades from browser pages of origins not allowed are refused
// (see originPolicy).
func (n *Node) wsHandler(ctx context.Context, name string, addr net.Addr) http.Handler {
	loopback := false
	if ta, ok := addr.(*net.TCPAddr); ok {
		loopback = ta.IP.IsLoopback()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mqtt", func(w http.ResponseWriter, r *http.Request) {
		if reason := n.origins.Load().checkUpgrade(r, loopback); reason != "" {
			n.wsRefused.WithLabelValues(reason).Inc()
			n.wsRefusedLog.Do(func() {
				n.log.Warn("websocket upgrade refused (ws_allowed_origins)", "listener", name, "remote", r.RemoteAddr,
					"reason", reason, "origin", r.Header.Get("Origin"), "host", r.Host)
			})
			http.Error(w, "forbidden: this origin may not use MQTT over WebSocket here", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols:       []string{"mqtt", "mqttv3.1"},
			InsecureSkipVerify: true, // the origin was checked above, against the node's own list
		})
		if err != nil {
			n.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		c.SetReadLimit(-1) // the broker enforces the maximum packet size
		n.b.ServeConnInfo(websocket.NetConn(ctx, c, websocket.MessageBinary), broker.ConnInfo{Listener: name, TLS: r.TLS})
	})
	return mux
}
