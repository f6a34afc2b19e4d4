package node

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Cross-site WebSocket hijacking: a web page on any site may open a
// WebSocket to any address, loopback ones included, and a WebSocket is not
// subject to the same-origin policy. Browsers therefore send the page's
// origin in the Origin header of the upgrade request, and the server must
// check it (RFC 6455 §10.2, §4.2.2; the origin's form is RFC 6454 §6.1).
// A node accepts an upgrade without Origin (not a browser), and one whose
// Origin is its own HTTP listener's (the dashboard) or in
// ws_allowed_origins; every other is refused with 403. DNS rebinding (a
// name of the attacker's that resolves to 127.0.0.1) gets past checks of
// the address but not of the Host header: a loopback listener also refuses
// a request whose Host is not a loopback name, unless its Origin is allowed.

// originPattern is one entry of ws_allowed_origins.
type originPattern struct {
	scheme string
	host   string // lower case; "*.example.org" matches every subdomain
	port   string // the port, with the scheme's default filled in; "*" is any
}

// parseOrigin reads an origin, scheme://host[:port], as browsers send it,
// or an allow-list pattern of the same form ("*" for a subdomain label or
// the port). Anything else, "null" included, is an error.
func parseOrigin(s string) (originPattern, error) {
	notOrigin := fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
	scheme, rest, ok := strings.Cut(s, "://")
	rest = strings.TrimSuffix(rest, "/")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(rest, "/?#@ ") || strings.ContainsAny(scheme, ":/") {
		return originPattern{}, notOrigin
	}
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
		if _, err := strconv.ParseUint(port, 10, 16); err != nil && port != "*" {
			return originPattern{}, notOrigin
		}
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	} else if strings.Contains(rest, ":") {
		return originPattern{}, notOrigin
	}
	scheme = strings.ToLower(scheme)
	if port == "" {
		switch scheme {
		case "http", "ws":
			port = "80"
		case "https", "wss":
			port = "443"
		}
	}
	if host == "" || strings.Contains(strings.TrimPrefix(host, "*."), "*") {
		return originPattern{}, fmt.Errorf("%q: a * may only stand for subdomains (https://*.example.org) or the port", s)
	}
	return originPattern{scheme: scheme, host: strings.ToLower(host), port: port}, nil
}

// matches reports whether origin o falls under pattern p.
func (p originPattern) matches(o originPattern) bool {
	if p.scheme != o.scheme || (p.port != "*" && p.port != o.port) {
		return false
	}
	if rest, ok := strings.CutPrefix(p.host, "*."); ok {
		return strings.HasSuffix(o.host, "."+rest)
	}
	return p.host == o.host
}

// originPolicy is the set of browser origins that may use MQTT over
// WebSocket.
type originPolicy struct {
	any      bool // "*": every origin
	patterns []originPattern
}

// newOriginPolicy returns the policy of the node's own HTTP origins and the
// configured ones (validated before).
func newOriginPolicy(own []string, allowed []string) *originPolicy {
	p := &originPolicy{}
	for _, s := range append(append([]string(nil), own...), allowed...) {
		if s == "*" {
			p.any = true
			continue
		}
		if o, err := parseOrigin(s); err == nil {
			p.patterns = append(p.patterns, o)
		}
	}
	return p
}

// allows reports whether a browser page of origin may connect.
func (p *originPolicy) allows(origin string) bool {
	if p.any {
		return true
	}
	o, err := parseOrigin(origin)
	if err != nil || o.port == "*" || strings.HasPrefix(o.host, "*.") {
		return false // "null", or not an origin
	}
	for _, pat := range p.patterns {
		if pat.matches(o) {
			return true
		}
	}
	return false
}

// ownOrigins returns the origins of pages the node's HTTP listener serves:
// configured as host (possibly empty or unspecified) and bound to port.
func ownOrigins(host, port string) []string {
	if host == "" || isLoopbackHost(host) || net.ParseIP(host).IsUnspecified() {
		return []string{"http://127.0.0.1:" + port, "http://localhost:" + port, "http://[::1]:" + port}
	}
	return []string{"http://" + net.JoinHostPort(host, port)}
}

// Reasons for refusing a WebSocket upgrade, the label of
// citymesh_ws_upgrades_refused_total.
const (
	refusedOrigin = "origin" // a browser page of an origin not allowed
	refusedHost   = "host"   // a loopback listener reached by a name that is not loopback
)

// checkUpgrade decides whether the WebSocket upgrade r to a listener
// (loopback or not) may proceed, and returns why not ("" if it may).
func (p *originPolicy) checkUpgrade(r *http.Request, loopback bool) string {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if !p.allows(origin) {
			return refusedOrigin
		}
		return ""
	}
	if loopback {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host != "" && !isLoopbackHost(strings.Trim(host, "[]")) {
			return refusedHost
		}
	}
	return ""
}
