package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/topic"
)

// RemoteOptions configures a Remote bus.
type RemoteOptions struct {
	// URL of the broker: mqtt://host:port, tls://host:port or ws://host:port/mqtt.
	URL string
	// ClientID identifies the service; it should be stable so that its
	// session (and the messages queued while it was away) survive a restart.
	ClientID string
	// Username and Password authenticate the service, if the broker asks.
	Username string
	Password []byte
	// SessionExpiry is how long the broker keeps the service's session while
	// it is disconnected. Default 1 hour.
	SessionExpiry time.Duration
	// KeepAlive is the MQTT keep alive. Default 30 s.
	KeepAlive time.Duration
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// TLSConfig is the TLS of tls://, ssl://, mqtts:// and wss:// URLs;
	// nil means the system's roots and the URL's host name.
	TLSConfig *tls.Config
}

// Remote is a Bus that talks MQTT 5 to a broker over the network. It
// reconnects by itself and resubscribes after every reconnection; with a
// persistent session the broker queues QoS 1 and 2 messages meanwhile.
type Remote struct {
	cm  *autopaho.ConnectionManager
	log *slog.Logger
	ctx context.Context
	end context.CancelFunc

	mu   sync.RWMutex
	subs map[string]remoteSub // filter → subscription

	wg sync.WaitGroup // the resubscriptions after reconnections
}

type remoteSub struct {
	inner string // the filter without a $share prefix, for matching
	qos   byte
	h     Handler
}

// DialRemote connects to the broker in opts.URL and waits for the first
// connection until ctx ends.
func DialRemote(ctx context.Context, opts RemoteOptions) (*Remote, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("bus: broker URL: %w", err)
	}
	if opts.SessionExpiry == 0 {
		opts.SessionExpiry = time.Hour
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	rctx, end := context.WithCancel(context.Background())
	r := &Remote{log: opts.Logger, ctx: rctx, end: end, subs: make(map[string]remoteSub)}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(opts.KeepAlive / time.Second),
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(opts.SessionExpiry / time.Second),
		ConnectUsername:               opts.Username,
		ConnectPassword:               opts.Password,
		TlsCfg:                        opts.TLSConfig,
		ReconnectBackoff:              backoff,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			r.log.Info("bus connected", "broker", opts.URL, "client", opts.ClientID)
			r.wg.Go(func() { r.resubscribe(cm) })
		},
		OnConnectError: func(err error) { r.log.Warn("bus connection failed", "broker", opts.URL, "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID: opts.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) { r.dispatch(pr.Packet); return true, nil },
			},
		},
	}
	cm, err := autopaho.NewConnection(rctx, cfg)
	if err != nil {
		end()
		return nil, fmt.Errorf("bus: connect %s: %w", opts.URL, err)
	}
	r.cm = cm
	if err := cm.AwaitConnection(ctx); err != nil {
		end()
		return nil, fmt.Errorf("bus: connect %s: %w", opts.URL, err)
	}
	return r, nil
}

// backoff waits longer after each failed attempt, up to 30 s, with jitter.
func backoff(attempt int) time.Duration {
	d := time.Duration(1<<min(attempt, 5)) * time.Second
	return d/2 + time.Duration(time.Now().UnixNano()%int64(d/2))
}

func (r *Remote) resubscribe(cm *autopaho.ConnectionManager) {
	r.mu.RLock()
	var subs []paho.SubscribeOptions
	for f, s := range r.subs {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: s.qos, RetainHandling: 1})
	}
	r.mu.RUnlock()
	if len(subs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		r.log.Warn("bus resubscribe failed", "err", err)
	}
}

func (r *Remote) dispatch(p *paho.Publish) {
	m := Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain}
	if pp := p.Properties; pp != nil {
		m.ContentType = pp.ContentType
		m.ResponseTopic = pp.ResponseTopic
		m.CorrelationData = pp.CorrelationData
		if pp.MessageExpiry != nil {
			m.Expiry = time.Duration(*pp.MessageExpiry) * time.Second
		}
		for _, u := range pp.User {
			m.Properties = append(m.Properties, Property{Key: u.Key, Value: u.Value})
		}
	}
	r.mu.RLock()
	var hs []Handler
	for _, s := range r.subs {
		if topic.Match(s.inner, p.Topic) {
			hs = append(hs, s.h)
		}
	}
	r.mu.RUnlock()
	for _, h := range hs {
		h(r.ctx, m)
	}
}

// Publish implements Bus.
func (r *Remote) Publish(ctx context.Context, m Message) error {
	p := &paho.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain, Properties: &paho.PublishProperties{
		ContentType: m.ContentType, ResponseTopic: m.ResponseTopic, CorrelationData: m.CorrelationData,
	}}
	if m.Expiry > 0 {
		e := uint32((m.Expiry + time.Second - 1) / time.Second)
		p.Properties.MessageExpiry = &e
	}
	for _, kv := range m.Properties {
		p.Properties.User = append(p.Properties.User, paho.UserProperty{Key: kv.Key, Value: kv.Value})
	}
	if _, err := r.cm.Publish(ctx, p); err != nil {
		return fmt.Errorf("bus: publish %s: %w", m.Topic, err)
	}
	return nil
}

// Subscribe implements Bus.
func (r *Remote) Subscribe(ctx context.Context, filter string, qos byte, h Handler) error {
	if err := topic.ValidFilter(filter); err != nil {
		return fmt.Errorf("bus: subscribe: %w", err)
	}
	inner := filter
	if _, f, ok := topic.ParseShared(filter); ok {
		inner = f
	}
	r.mu.Lock()
	r.subs[filter] = remoteSub{inner: inner, qos: qos, h: h}
	r.mu.Unlock()
	ack, err := r.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil {
		return fmt.Errorf("bus: subscribe %s: %w", filter, err)
	}
	if len(ack.Reasons) == 1 && ack.Reasons[0] >= 0x80 {
		r.mu.Lock()
		delete(r.subs, filter)
		r.mu.Unlock()
		return fmt.Errorf("bus: subscribe %s: refused with reason code 0x%02X", filter, ack.Reasons[0])
	}
	return nil
}

// Unsubscribe implements Bus.
func (r *Remote) Unsubscribe(ctx context.Context, filter string) error {
	r.mu.Lock()
	_, ok := r.subs[filter]
	delete(r.subs, filter)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("bus: unsubscribe %q: no such subscription", filter)
	}
	if _, err := r.cm.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{filter}}); err != nil {
		return fmt.Errorf("bus: unsubscribe %s: %w", filter, err)
	}
	return nil
}

// Close implements Bus: it disconnects normally, so no will is published.
func (r *Remote) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.cm.Disconnect(ctx)
	r.end()
	// Wait for the connection manager's goroutines and the resubscriptions.
	select {
	case <-r.cm.Done():
	case <-ctx.Done():
	}
	r.wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("bus: disconnect: %w", err)
	}
	return nil
}
