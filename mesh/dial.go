package mesh

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
)

// dialPlan is a link this node dials: to one core peer, or to the first
// answering core of an edge's upstream list.
type dialPlan struct {
	link  *broker.Link
	peers []PeerConfig
}

// Reconnect back-off. After a failed attempt the dialer waits minBackoff,
// doubling with each further failure up to maxBackoff, each wait with a
// quarter of random jitter either way so that many edges coming back after a
// core's outage do not reconnect in step. A connection that was up for
// stableAfter and then ended starts the back-off again from minBackoff: the
// first attempt after losing a link comes quickly, also when the link had
// failed often before it came up (a core that crashes soon after an outage
// is dialed again within a second of its restart, not after the long waits
// of the outage). A connection that ends sooner, or that a hello refused,
// counts as a failure, so a link that cannot stay up is not redialed in a
// tight loop.
const (
	minBackoff  = 500 * time.Millisecond
	maxBackoff  = 30 * time.Second
	stableAfter = time.Second
)

func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.5*float64(d))
}

// backoff is the reconnect back-off of one dialer: the zero value starts at
// minBackoff and grows to maxBackoff; a node's tests may use shorter bounds.
type backoff struct {
	min, max time.Duration // 0: minBackoff and maxBackoff
	next     time.Duration // the wait after the next failure, before jitter
}

// wait returns how long to wait after a failed attempt, and doubles the next
// wait.
func (b *backoff) wait() time.Duration {
	lo, hi := cmp.Or(b.min, minBackoff), cmp.Or(b.max, maxBackoff)
	if b.next < lo {
		b.next = lo
	}
	d := jitter(b.next)
	b.next = min(2*b.next, hi)
	return d
}

// reset starts the back-off again from its minimum: a connection was up.
func (b *backoff) reset() { b.next = 0 }

// dialLoop keeps the link of plan up until ctx ends: it dials the peers in
// order, serves the link while it lasts, and waits a jittered back-off
// before the next round, which grows over rounds that fail and starts again
// small after a link that was up.
func (n *Node) dialLoop(ctx context.Context, plan dialPlan) {
	retry := n.backoff
	for ctx.Err() == nil {
		for i := range plan.peers {
			p := &plan.peers[i]
			up, err := n.dialOnce(ctx, plan.link, p)
			if ctx.Err() != nil {
				return
			}
			n.mu.Lock()
			if ls := n.links[plan.link.Peer]; ls != nil {
				if err != nil {
					ls.lastErr = err.Error()
				}
				if ls.refused != "" { // this end closed it: its reason, not the connection's end
					ls.lastErr, err = ls.refused, errors.New(ls.refused)
					ls.refused, up = "", 0
				}
			}
			n.mu.Unlock()
			if up >= stableAfter {
				retry.reset()
			}
			if err != nil {
				n.log.Warn("mesh: link failed", "link", plan.link.Peer, "peer", p.Name, "url", p.URL, "err", err, "up", up.Round(time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.wait()):
		}
	}
}

// dialOnce connects to p and serves the link until the connection ends. It
// returns how long the link was up (0 if the peer did not accept it) and why
// it ended.
func (n *Node) dialOnce(ctx context.Context, l *broker.Link, p *PeerConfig) (time.Duration, error) {
	nc, err := dialPeer(ctx, p.URL, p.CAFile, p.Cert, p.Key)
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	if ls := n.links[l.Peer]; ls != nil {
		ls.url = p.URL
	}
	n.mu.Unlock()
	if l.Kind == broker.KindUpstream {
		l.SetGrants(broker.Grants{Export: p.Export, Import: p.Import})
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	return serveTimed(l, nc, n.connectPacket(p.Username, p.Password))
}

// serveTimed runs l.Serve and returns how long the link was up: from the
// CONNACK that accepted it (approximately: from the start, the handshake
// being short) to its end; 0 if it was not accepted.
func serveTimed(l *broker.Link, nc net.Conn, cp *mqtt.Connect, subscribe ...mqtt.Subscription) (time.Duration, error) {
	start := time.Now()
	ack, err := l.Serve(nc, cp, subscribe...)
	if ack == nil || ack.ReasonCode.IsError() {
		return 0, err
	}
	return time.Since(start), err
}

// connectPacket is the CONNECT of this node's end of a link.
func (n *Node) connectPacket(user, password string) *mqtt.Connect {
	cp := &mqtt.Connect{Version: mqtt.V5, ClientID: broker.LinkSessionPrefix + n.cfg.Node, KeepAlive: uint16(n.cfg.LinkKeepAlive / time.Second),
		Props: mqtt.Properties{SessionExpiry: broker.NeverExpire, ReceiveMaximum: 1024,
			User: []mqtt.UserProperty{{Key: "citymesh-node", Value: n.cfg.Node}, {Key: "citymesh-role", Value: n.cfg.Role}}}}
	if user != "" {
		cp.Username, cp.HasUsername = user, true
	}
	if password != "" {
		cp.Password, cp.HasPassword = []byte(password), true
	}
	return cp
}

// dialPeer opens the network connection to an mqtt:// or mqtts:// URL.
func dialPeer(ctx context.Context, raw, cafile, cert, key string) (net.Conn, error) {
	u, err := dialAddress(raw)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}
	if u.Scheme == "mqtt" || u.Scheme == "tcp" {
		return d.DialContext(ctx, "tcp", u.Host)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, NextProtos: []string{"mqtt"}}
	if cafile != "" {
		pem, err := os.ReadFile(cafile)
		if err != nil {
			return nil, fmt.Errorf("cafile: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cafile %s: no certificates", cafile)
		}
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("cert and key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	td := tls.Dialer{NetDialer: &d, Config: tc}
	return td.DialContext(ctx, "tcp", u.Host)
}
