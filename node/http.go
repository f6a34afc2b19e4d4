package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citymesh/citymesh/api"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/web"
)

// httpHandler serves /healthz, Prometheus /metrics, /debug/pprof, the
// API's sessions and broker routes (package api), the dashboard at /, MQTT
// over WebSocket at /mqtt (for the dashboard's pages, on their own origin)
// and, on a mesh node, GET /api/mesh (also at GET /api/v1/mesh), every answer with the browsers'
// security headers.
func (n *Node) httpHandler(ctx context.Context, addr net.Addr) http.Handler {
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
	access := n.httpAccess()
	mux.Handle("/mqtt", n.wsHandler(ctx, ListenerHTTP, addr))
	o := api.Options{Auth: access.authn, Open: access.open, Broker: n.b, Listeners: n.listenerList}
	if n.sec.acl != nil {
		o.Authorizer = n.sec.acl
	}
	if n.mesh != nil {
		o.Mesh = n.mesh
	}
	n.mu.Lock()
	_, o.Documents = n.apiParts()
	n.mu.Unlock()
	for _, rt := range api.Routes(o) {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	n.mu.Lock()
	dashboard, site := true, n.mu.cfg.Dashboard
	for _, h := range n.mu.handlers {
		mux.Handle(h.pattern, h.h)
		if claimsDashboard(h.pattern) {
			dashboard = false
		}
	}
	n.mu.Unlock()
	// The dashboard (package web), at / and /static/, unless the program
	// serves its own pages there.
	if dashboard {
		d := web.Handler(site)
		mux.Handle("GET /{$}", d)
		mux.Handle("GET /static/", d)
		for _, p := range web.Pages()[1:] {
			handleUnlessTaken(mux, "GET "+p, d)
		}
	}
	return api.Headers(mux)
}

// listenerList lists the node's bound listeners for the API.
func (n *Node) listenerList() []api.Listener {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]api.Listener, 0, len(n.mu.listeners))
	for name, ln := range n.mu.listeners {
		out = append(out, api.Listener{Name: name, Address: ln.Addr().String(), TLS: name == ListenerMQTTS || name == ListenerWSS})
	}
	return out
}

// httpAccess is the access check of the node's HTTP APIs, made once: the
// broker's users, and the browsers' sessions.
func (n *Node) httpAccess() *TwinAccess {
	n.accessOnce.Do(func() {
		n.sessions = api.NewSessions(0, 0)
		n.sessions.OnEnd(n.sessionConns.end)
		n.access = newHTTPAccess(n.sec.chain, n.sec.acl != nil, n.sessions)
		// HTTP Basic credentials wait out the same back-off as logins
		// and MQTT CONNECTs from their address.
		n.access.authn.Guard = n.b
	})
	return n.access
}

// handleUnlessTaken adds h to mux under pattern unless a handler of the
// program already serves requests that pattern would (ServeMux refuses
// such a pattern by panicking before it changes anything).
func handleUnlessTaken(mux *http.ServeMux, pattern string, h http.Handler) {
	defer func() { _ = recover() }()
	mux.Handle(pattern, h)
}

// claimsDashboard reports whether a program's handler pattern serves the
// root or /static/, where the node would otherwise serve the dashboard.
func claimsDashboard(pattern string) bool {
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = strings.TrimLeft(p, " ")
	}
	if i := strings.IndexByte(path, '/'); i > 0 {
		path = path[i:] // a host pattern: example.org/
	}
	return path == "/" || path == "/{$}" || strings.HasPrefix(path, "/static/") || path == "/static"
}

// handler is an HTTP handler a program added to the node's HTTP listener.
type handler struct {
	pattern string
	h       http.Handler
}

// builtinPatterns are the HTTP listener's own patterns.
var builtinPatterns = append([]string{"GET /api/mesh", "/mqtt", "GET /healthz", "GET /metrics", "/debug/pprof/", "/debug/pprof/profile",
	"/debug/pprof/symbol", "/debug/pprof/trace"}, apiPatterns()...)

// apiPatterns are the patterns of the API's routes (package api).
func apiPatterns() []string {
	var p []string
	for _, rt := range api.Routes(api.Options{}) {
		p = append(p, rt.Pattern)
	}
	return p
}

// Handle adds h to the node's HTTP listener under pattern (an
// http.ServeMux pattern: "GET /pictures/", "/dashboard/"), beside
// /healthz, /metrics and the rest: a program that embeds a node serves its
// own pages there (a demo its robot's pictures, a dashboard). It must be
// called before Start; a pattern that is not valid or conflicts with
// another is an error.
func (n *Node) Handle(pattern string, h http.Handler) (err error) {
	if h == nil {
		return fmt.Errorf("node: Handle %q: nil handler", pattern)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.started || n.mu.closed {
		return fmt.Errorf("node: Handle %q after Start", pattern)
	}
	// Register every pattern on a scratch mux first: ServeMux panics on a
	// bad or conflicting pattern, which is the caller's mistake to hear.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("node: Handle %q: %v", pattern, r)
		}
	}()
	mux := http.NewServeMux()
	nop := http.NotFoundHandler()
	for _, p := range builtinPatterns {
		mux.Handle(p, nop)
	}
	for _, x := range n.mu.handlers {
		mux.Handle(x.pattern, nop)
	}
	mux.Handle(pattern, nop)
	n.mu.handlers = append(n.mu.handlers, handler{pattern, h})
	return nil
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
		info := broker.ConnInfo{Listener: name, TLS: r.TLS}
		nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
		if x, ok := n.httpAccess().authn.Session(r); ok {
			// A browser of the dashboard: its session says who it is,
			// as long as the session lasts.
			id := *x.Identity
			id.Method = "session"
			info.Identity = &id
			nc = n.sessionConns.add(x.ID, nc)
		}
		n.b.ServeConnInfo(nc, info)
	})
	return mux
}

// sessionConns are the MQTT over WebSocket connections of browser
// sessions, by session id. The zero value is ready.
type sessionConns struct {
	mu sync.Mutex
	m  map[string]map[*sessionConn]struct{}
}

// add registers nc as a connection of session sid and returns it wrapped:
// its Close unregisters it.
func (s *sessionConns) add(sid string, nc net.Conn) net.Conn {
	c := &sessionConn{Conn: nc, sid: sid, set: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]map[*sessionConn]struct{})
	}
	if s.m[sid] == nil {
		s.m[sid] = make(map[*sessionConn]struct{})
	}
	s.m[sid][c] = struct{}{}
	return c
}

// end closes the connections of session sid, which ended (logout or
// expiry): the broker sees them go as any dropped connection.
func (s *sessionConns) end(sid string) {
	s.mu.Lock()
	conns := s.m[sid]
	delete(s.m, sid)
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// sessionConn is a connection of a browser session.
type sessionConn struct {
	net.Conn
	sid  string
	set  *sessionConns
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *sessionConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		if m := c.set.m[c.sid]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(c.set.m, c.sid)
			}
		}
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}
