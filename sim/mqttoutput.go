package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// MQTTOptions configures an MQTTOutput.
type MQTTOptions struct {
	// URL names the broker: mqtt://host:port or tcp://, mqtts:// or
	// tls:// for TLS, ws:// or wss:// for MQTT over WebSocket (client.Options.Addr).
	URL string
	// TLSConfig is used for TLS URLs; nil means the system's roots.
	TLSConfig *tls.Config
	// Username and Password authenticate every connection, when set.
	Username string
	Password []byte
	// Version is mqtt.V311 (the default; what The Things Stack's and
	// ChirpStack's MQTT servers speak) or mqtt.V5 (content type and the
	// CloudEvents user properties of city events travel then).
	Version byte
	// PerPublisher opens one connection per publisher, with the
	// publisher's id as client id and its will, as real building gateways
	// and robots connect. Otherwise every message goes through one
	// connection with client id ClientID.
	PerPublisher bool
	// ClientID is the shared connection's client id (default
	// "citymesh-sim"); ClientIDPrefix is put before every publisher's id.
	ClientID, ClientIDPrefix string
	// SessionExpiry is the MQTT 5 session expiry interval in seconds of
	// every connection; with it (or with MQTT 3.1.1) sessions are
	// persistent, as docs/events.md asks of building gateways.
	SessionExpiry uint32
	// MaxInflight bounds each connection's unacknowledged QoS 1 and 2
	// messages (default 256).
	MaxInflight int
	// RetryAfter is how long a publisher whose connection failed waits
	// before dialling again; its messages fail meanwhile (default 1 s).
	RetryAfter time.Duration
	// Logger receives connection events (default slog.Default()).
	Logger *slog.Logger
}

// MQTTOutput publishes over MQTT with citymesh's client: QoS 1 and 2
// messages are pipelined, their acknowledgements counted as they come. It
// connects on first use and again after a connection broke. Safe for
// concurrent use, except that one publisher's Publish and Drop must not
// run at the same time (the player calls both from its goroutine).
type MQTTOutput struct {
	statsCounter
	opts MQTTOptions
	log  *slog.Logger

	inflight sync.WaitGroup // QoS 1 and 2 messages not yet acknowledged

	mu     sync.Mutex
	conns  map[string]*mqttConn // by client id
	closed bool
}

type mqttConn struct {
	c        *client.Client
	retryAt  time.Time
	inflight *sync.WaitGroup // the connection's unacknowledged messages
}

// NewMQTTOutput returns an output to the broker in opts.URL; it connects
// on the first message (Probe connects at once).
func NewMQTTOutput(opts MQTTOptions) (*MQTTOutput, error) {
	if opts.URL == "" {
		return nil, errors.New("mqtt output: URL is empty")
	}
	if opts.Version == 0 {
		opts.Version = mqtt.V311
	}
	if opts.ClientID == "" {
		opts.ClientID = "citymesh-sim"
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 256
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &MQTTOutput{opts: opts, log: opts.Logger.With("broker", opts.URL), conns: map[string]*mqttConn{}}, nil
}

// clientID returns the client id messages from from travel under.
func (o *MQTTOutput) clientID(from *Publisher) string {
	if !o.opts.PerPublisher || from == nil {
		return o.opts.ClientID
	}
	return o.opts.ClientIDPrefix + from.ID
}

// Probe connects the shared connection (or a short-lived one, per
// publisher) to check that the broker takes the output's credentials.
func (o *MQTTOutput) Probe(ctx context.Context) error {
	if !o.opts.PerPublisher {
		_, _, err := o.conn(ctx, nil)
		return err
	}
	c, err := client.Dial(ctx, o.options(o.opts.ClientID+"-probe", nil))
	if err != nil {
		return fmt.Errorf("mqtt output %s: %w", o.opts.URL, err)
	}
	return c.Disconnect(ctx, mqtt.NormalDisconnection)
}

func (o *MQTTOutput) options(id string, will *Message) client.Options {
	co := client.Options{
		Addr: o.opts.URL, TLSConfig: o.opts.TLSConfig, ClientID: id, Version: o.opts.Version,
		Username: o.opts.Username, Password: o.opts.Password, HasPassword: o.opts.Password != nil,
		SessionExpiry: o.opts.SessionExpiry, MaxInflight: o.opts.MaxInflight, Logger: o.log,
	}
	if will != nil {
		co.Will = &mqtt.Will{QoS: will.QoS, Retain: will.Retain, Topic: will.Topic, Payload: will.Payload}
		if o.opts.Version == mqtt.V5 {
			co.Will.Props = props(will)
		}
	}
	return co
}

// conn returns from's live connection, dialling it when there is none.
func (o *MQTTOutput) conn(ctx context.Context, from *Publisher) (*client.Client, *sync.WaitGroup, error) {
	id := o.clientID(from)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, nil, errors.New("mqtt output: closed")
	}
	mc := o.conns[id]
	if mc == nil {
		mc = &mqttConn{}
		o.conns[id] = mc
	}
	if mc.c != nil {
		select {
		case <-mc.c.Done():
			o.log.Warn("sim: connection lost, reconnecting", "client_id", id, "err", mc.c.Err())
			mc.c = nil
		default:
			return mc.c, mc.inflight, nil
		}
	}
	if time.Now().Before(mc.retryAt) {
		return nil, nil, fmt.Errorf("mqtt output %s: %s is not connected (retrying)", o.opts.URL, id)
	}
	var will *Message
	if o.opts.PerPublisher && from != nil {
		will = from.Will
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, o.options(id, will))
	if err != nil {
		mc.retryAt = time.Now().Add(o.opts.RetryAfter)
		return nil, nil, fmt.Errorf("mqtt output %s: %w", o.opts.URL, err)
	}
	mc.c, mc.inflight = c, &sync.WaitGroup{}
	return mc.c, mc.inflight, nil
}

// props returns a message's MQTT 5 properties.
func props(m *Message) mqtt.Properties {
	var p mqtt.Properties
	p.ContentType = m.ContentType
	for _, kv := range m.Properties {
		p.User = append(p.User, mqtt.UserProperty{Key: kv.Key, Value: kv.Value})
	}
	return p
}

// Publish sends m. QoS 0 messages are written before it returns; QoS 1
// and 2 messages are acknowledged later, and a failure then is counted in
// Stats (Errors) rather than returned.
func (o *MQTTOutput) Publish(ctx context.Context, from *Publisher, m Message) error {
	c, wg, err := o.conn(ctx, from)
	if err != nil {
		o.count(&m, err)
		return err
	}
	p := &mqtt.Publish{QoS: m.QoS, Retain: m.Retain, Topic: m.Topic, Payload: m.Payload}
	if o.opts.Version == mqtt.V5 {
		p.Props = props(&m)
	}
	n := int64(len(m.Payload))
	if m.QoS == 0 {
		var perr error
		c.PublishAsync(p, func(err error) { perr = err })
		o.count(&m, perr)
		return perr
	}
	o.inflight.Add(1)
	wg.Add(1)
	c.PublishAsync(p, func(err error) {
		defer o.inflight.Done()
		defer wg.Done()
		if err != nil {
			o.errors.Add(1)
			return
		}
		o.messages.Add(1)
		o.bytes.Add(n)
	})
	return nil
}

// Drop closes from's connection without DISCONNECT, so the broker
// publishes its will. It first waits (up to 5 s, or until ctx ends) for
// the acknowledgements of what was published before, so that a fault
// loses only what its window says. With a shared connection it does
// nothing but count: other publishers' messages travel on it.
func (o *MQTTOutput) Drop(ctx context.Context, from *Publisher) error {
	o.drops.Add(1)
	if !o.opts.PerPublisher {
		return nil
	}
	o.mu.Lock()
	mc := o.conns[o.clientID(from)]
	var c *client.Client
	var wg *sync.WaitGroup
	if mc != nil {
		c, wg, mc.c = mc.c, mc.inflight, nil
	}
	o.mu.Unlock()
	if c == nil {
		return nil
	}
	acked := make(chan struct{})
	go func() { wg.Wait(); close(acked) }()
	timer := time.NewTimer(5 * time.Second)
	select {
	case <-acked:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	err := c.Close()
	<-acked // closing failed whatever was still unacknowledged
	return err
}

// Connections returns how many connections to the broker are up.
func (o *MQTTOutput) Connections() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, mc := range o.conns {
		if mc.c == nil {
			continue
		}
		select {
		case <-mc.c.Done():
		default:
			n++
		}
	}
	return n
}

// Close waits up to 10 s for outstanding acknowledgements, then
// disconnects every connection normally (no wills).
func (o *MQTTOutput) Close() error {
	o.mu.Lock()
	o.closed = true
	conns := o.conns
	o.conns = map[string]*mqttConn{}
	o.mu.Unlock()
	acked := make(chan struct{})
	go func() { o.inflight.Wait(); close(acked) }()
	timer := time.NewTimer(10 * time.Second)
	select {
	case <-acked:
	case <-timer.C:
		o.log.Warn("sim: closing with messages unacknowledged")
	}
	timer.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for id, mc := range conns {
		if mc.c == nil {
			continue
		}
		if err := mc.c.Disconnect(ctx, mqtt.NormalDisconnection); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	<-acked // disconnecting failed whatever was still unacknowledged
	return errors.Join(errs...)
}
