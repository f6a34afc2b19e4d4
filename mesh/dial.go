package mesh

import (
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

// Reconnect back-off: from minBackoff, doubling up to maxBackoff, with a
// quarter of random jitter either way so that many edges coming back after a
// core's outage do not reconnect in step; a link that stayed up for
// stableAfter starts again from minBackoff.
const (
	minBackoff  = 500 * time.Millisecond
	maxBackoff  = 30 * time.Second
	stableAfter = 30 * time.Second
)

func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.5*float64(d))
}

// dialLoop keeps the link of plan up until ctx ends: it dials the peers in
// order, serves the link while it lasts, and waits a growing, jittered
// back-off between failures.
func (n *Node) dialLoop(ctx context.Context, plan dialPlan) {
	backoff := minBackoff
	for ctx.Err() == nil {
		for i := range plan.peers {
			p := &plan.peers[i]
			start := time.Now()
			err := n.dialOnce(ctx, plan.link, p)
			if ctx.Err() != nil {
				return
			}
			n.mu.Lock()
			if ls := n.links[plan.link.Peer]; ls != nil && err != nil {
				ls.lastErr = err.Error()
				if ls.refused != "" { // this end closed it: its reason, not the connection's end
					ls.lastErr, err = ls.refused, errors.New(ls.refused)
					ls.refused = ""
				}
			}
			n.mu.Unlock()
			if time.Since(start) > stableAfter {
				backoff = minBackoff
			}
			if err != nil {
				n.log.Warn("mesh: link failed", "link", plan.link.Peer, "peer", p.Name, "url", p.URL, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// dialOnce connects to p and serves the link until the connection ends.
func (n *Node) dialOnce(ctx context.Context, l *broker.Link, p *PeerConfig) error {
	nc, err := dialPeer(ctx, p.URL, p.CAFile, p.Cert, p.Key)
	if err != nil {
		return err
	}
	n.mu.Lock()
	if ls := n.links[l.Peer]; ls != nil {
		ls.url = p.URL
	}
	n.mu.Unlock()
	if l.Role == broker.ToUpstream {
		l.SetGrants(broker.Grants{Export: p.Export, Import: p.Import})
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	_, err = l.Serve(nc, n.connectPacket(p.Username, p.Password))
	return err
}

// connectPacket is the CONNECT of this node's end of a link.
func (n *Node) connectPacket(user, password string) *mqtt.Connect {
	cp := &mqtt.Connect{Version: mqtt.V5, ClientID: broker.LinkSessionPrefix + n.cfg.Node, KeepAlive: 30,
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
