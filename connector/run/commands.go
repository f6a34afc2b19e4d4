package run

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/event"
)

// CommandEvent is the last topic level of a device's downlink commands:
// {domain}/{site}/device/{device}/command.
const CommandEvent = "command"

// CommandFilter is the filter the connectors subscribe to on the bus.
const CommandFilter = "+/+/device/+/" + CommandEvent

// Command is a downlink for a device, published as JSON on the device's
// command topic, {domain}/{site}/device/{device}/command (the device's
// measurement topic with command as its last level). The connector of
// the device's application queues it at the network server.
//
//	{"f_port": 2, "payload": "AQAEsA==", "confirmed": true}
//	{"data": {"interval": 1200}}            (encoded by the device type's codec)
//
// Over MQTT 5, a command with a Response Topic gets the results there (a
// CommandResult each, with the command's Correlation Data): queued or
// refused at once, then sent, acknowledged, not_acknowledged or failed as
// the network server reports them.
type Command struct {
	// ID is the sender's id of the command, at most 128 characters,
	// repeated in its results.
	ID string `json:"id,omitempty"`
	// FPort is the LoRaWAN port, 1 to 223; required with Payload. With
	// Data, the codec's encoder chooses when it is 0.
	FPort uint8 `json:"f_port,omitempty"`
	// Payload is the FRMPayload, base64 (standard, with padding), at most
	// 242 bytes (the most any region allows).
	Payload []byte `json:"payload,omitempty"`
	// Data is the downlink as an object, for the device type's codec's
	// encodeDownlink. Payload or Data, not both.
	Data map[string]any `json:"data,omitempty"`
	// Confirmed asks the device to acknowledge the downlink.
	Confirmed bool `json:"confirmed,omitempty"`
	// Priority is The Things Stack's scheduling priority: LOWEST, LOW,
	// BELOW_NORMAL, NORMAL (default), ABOVE_NORMAL, HIGH, HIGHEST.
	// ChirpStack has none and ignores it.
	Priority string `json:"priority,omitempty"`
	// Replace replaces the device's downlink queue instead of adding to it
	// (The Things Stack's down/replace; ChirpStack refuses it).
	Replace bool `json:"replace,omitempty"`
}

// CommandResult is what happened to a command, published on the
// command's response topic.
type CommandResult struct {
	// ID is the command's id.
	ID string `json:"id,omitempty"`
	// Device is the device's id in the campus model.
	Device string `json:"device"`
	// State is queued (given to the network server), refused (not: Detail
	// says why), sent (transmitted by a gateway), acknowledged (a
	// confirmed downlink the device acknowledged), not_acknowledged, or
	// failed (the network server gave up: Detail says why).
	State string `json:"state"`
	// Detail explains a refusal or failure.
	Detail string `json:"detail,omitempty"`
	// FPort and Payload are what was queued (after the codec, for Data).
	FPort   uint8  `json:"f_port,omitempty"`
	Payload []byte `json:"payload,omitempty"`
	// Time is when the connector learnt it.
	Time time.Time `json:"time"`
}

// Downlink results, as CommandResult.State says them.
const (
	resultQueued = iota
	resultRefused
	resultSent
	resultAcknowledged
	resultNotAcknowledged
	resultFailed
	numDownlinkResults
)

var resultNames = [numDownlinkResults]string{"queued", "refused", "sent", "acknowledged", "not_acknowledged", "failed"}

// maxDownlinkBytes is the largest FRMPayload of any region's highest data
// rate (LoRaWAN Regional Parameters: 242 bytes).
const maxDownlinkBytes = 242

// correlationPrefix starts the correlation id a downlink carries at The
// Things Stack, which reports it back in down/sent, down/ack, ...
const correlationPrefix = "citymesh:downlink:"

// commandFromCorrelation returns the downlink reference in correlation
// ids, "" if none.
func commandFromCorrelation(ids []string) string {
	for _, c := range ids {
		if ref, ok := strings.CutPrefix(c, correlationPrefix); ok {
			return ref
		}
	}
	return ""
}

// downlink is a command on its way: its reference at the network server
// and its bytes.
type downlink struct {
	Command
	ref   string // a UUID: ChirpStack's queue item id, in The Things Stack's correlation ids
	bytes []byte
}

// pending is a downlink whose later results go to a response topic.
type pending struct {
	id, device    string
	responseTopic string
	correlation   []byte
	confirmed     bool
	expires       time.Time
	// queued is set once the queued result is out; the server's results
	// that come before it wait in early, so that results arrive in order.
	queued bool
	early  []CommandResult
}

// maxPending bounds the downlinks whose results are awaited.
const maxPending = 10000

// pendingTTL is how long results of a downlink are awaited.
const pendingTTL = time.Hour

// commander takes downlink commands from the bus.
type commander struct {
	r   *Runtime
	ch  chan bus.Message
	wg  sync.WaitGroup
	end func() // set by start

	// sendMu guards closed, so that no handler sends on ch once it is
	// closed.
	sendMu sync.RWMutex
	closed bool

	mu struct {
		sync.Mutex
		pending map[string]*pending
	}
}

func newCommander(r *Runtime) *commander {
	c := &commander{r: r, ch: make(chan bus.Message, 64)}
	c.mu.pending = make(map[string]*pending)
	return c
}

// start subscribes to the devices' command topics.
func (c *commander) start(ctx context.Context) error {
	runCtx := c.r.srcCtx
	c.wg.Go(func() {
		for m := range c.ch {
			c.handle(runCtx, m)
		}
	})
	c.end = func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		c.r.bus.Unsubscribe(uctx, CommandFilter)
		cancel()
		c.sendMu.Lock()
		c.closed = true
		close(c.ch)
		c.sendMu.Unlock()
		c.wg.Wait()
	}
	err := c.r.bus.Subscribe(ctx, CommandFilter, event.QoS, func(_ context.Context, m bus.Message) {
		c.sendMu.RLock()
		defer c.sendMu.RUnlock()
		if c.closed {
			return
		}
		select {
		case c.ch <- m:
		case <-runCtx.Done():
		}
	})
	if err != nil {
		return fmt.Errorf("connectors: subscribe to commands: %w", err)
	}
	return nil
}

// stop ends the subscription and waits for the command in progress.
func (c *commander) stop() {
	if c.end != nil {
		c.end()
	}
}

// handle queues one command at the network server and answers it.
func (c *commander) handle(ctx context.Context, m bus.Message) {
	r := c.r
	t, err := event.ParseTopic(m.Topic)
	if err != nil || t.Kind != event.AssetDevice || t.Event != CommandEvent {
		return
	}
	d := r.byID[t.Asset]
	if d == nil {
		return // a device of another connector, or of none
	}
	res := CommandResult{Device: d.dev.ID, Time: r.clock.Now()}
	dl, err := c.prepare(ctx, d, m.Payload)
	if dl != nil {
		res.ID = dl.ID
	}
	if err == nil && t != d.dev.Topic(CommandEvent) {
		err = fmt.Errorf("the device's command topic is %s", d.dev.Topic(CommandEvent))
	}
	if err == nil {
		res.FPort, res.Payload = dl.FPort, dl.bytes
		// Remembered before it is sent: the server may report on it before
		// send returns.
		if m.ResponseTopic != "" {
			c.remember(dl.ref, &pending{id: dl.ID, device: d.dev.ID, responseTopic: m.ResponseTopic,
				correlation: m.CorrelationData, confirmed: dl.Confirmed, expires: res.Time.Add(pendingTTL)})
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = d.up.proto.send(sctx, d, dl)
		cancel()
		if err != nil {
			c.forget(dl.ref)
		}
	}
	if err != nil {
		d.up.stats.downlinks[resultRefused].Add(1)
		res.State, res.Detail = resultNames[resultRefused], truncate(err.Error(), 1024)
		r.logEvery[reasonParse].Do(func() {
			r.log.Warn("connector: downlink refused", "connector", d.up.name, "device", d.dev.ID, "err", err)
		})
		c.answer(ctx, m.ResponseTopic, m.CorrelationData, &res)
		return
	}
	d.up.stats.downlinks[resultQueued].Add(1)
	res.State = resultNames[resultQueued]
	c.answer(ctx, m.ResponseTopic, m.CorrelationData, &res)
	if m.ResponseTopic == "" {
		return
	}
	// Results the server reported while this one was on its way, in
	// order, until none waits; then the workers answer the rest.
	for {
		c.mu.Lock()
		p := c.mu.pending[dl.ref]
		if p == nil || len(p.early) == 0 {
			if p != nil {
				p.queued = true
			}
			c.mu.Unlock()
			return
		}
		early := p.early
		p.early = nil
		for _, e := range early {
			if e.State != resultNames[resultSent] || !dl.Confirmed {
				delete(c.mu.pending, dl.ref) // no more results to come
			}
		}
		c.mu.Unlock()
		for i := range early {
			c.answer(ctx, m.ResponseTopic, m.CorrelationData, &early[i])
		}
	}
}

// prepare reads a command and encodes its data with the device type's
// codec.
func (c *commander) prepare(ctx context.Context, d *device, payload []byte) (*downlink, error) {
	dl := &downlink{ref: newUUID()}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dl.Command); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("command: data after the JSON object")
	}
	cmd := &dl.Command
	switch {
	case len(cmd.ID) > 128:
		return dl, errors.New("command: id longer than 128 characters")
	case cmd.Payload != nil && cmd.Data != nil:
		return dl, errors.New("command: payload or data, not both")
	case cmd.Payload == nil && cmd.Data == nil:
		return dl, errors.New("command: payload (base64) or data (an object for the codec) is required")
	case cmd.Payload != nil && (cmd.FPort < 1 || cmd.FPort > 223):
		return dl, fmt.Errorf("command: f_port %d, want 1 to 223", cmd.FPort)
	case cmd.FPort > 223:
		return dl, fmt.Errorf("command: f_port %d, want 1 to 223", cmd.FPort)
	}
	cmd.Priority = strings.ToUpper(cmd.Priority)
	switch cmd.Priority {
	case "", "LOWEST", "LOW", "BELOW_NORMAL", "NORMAL", "ABOVE_NORMAL", "HIGH", "HIGHEST":
	default:
		return dl, fmt.Errorf("command: priority %q, want LOWEST, LOW, BELOW_NORMAL, NORMAL, ABOVE_NORMAL, HIGH or HIGHEST", cmd.Priority)
	}
	dl.bytes = cmd.Payload
	if cmd.Data != nil {
		if d.codec == nil {
			return dl, fmt.Errorf("command: data needs a codec, and there is none for %s", d.dev.Type.ID)
		}
		out, err := d.codec.EncodeDownlink(ctx, codec.DownlinkInput{Data: cmd.Data, FPort: cmd.FPort})
		if err != nil {
			return dl, fmt.Errorf("command: %w", err)
		}
		if out.FPort < 1 || out.FPort > 223 {
			return dl, fmt.Errorf("command: the codec chose f_port %d, want 1 to 223", out.FPort)
		}
		dl.bytes, cmd.FPort = out.Bytes, out.FPort
	}
	if len(dl.bytes) > maxDownlinkBytes {
		return dl, fmt.Errorf("command: %d bytes, at most %d", len(dl.bytes), maxDownlinkBytes)
	}
	return dl, nil
}

// remember keeps a downlink's response topic for its later results,
// dropping expired ones (and, past maxPending, the oldest).
func (c *commander) remember(ref string, p *pending) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.pending) >= maxPending {
		var oldest string
		var at time.Time
		for k, q := range c.mu.pending {
			if q.expires.Before(p.expires.Add(-pendingTTL)) {
				delete(c.mu.pending, k)
				continue
			}
			if oldest == "" || q.expires.Before(at) {
				oldest, at = k, q.expires
			}
		}
		if len(c.mu.pending) >= maxPending {
			delete(c.mu.pending, oldest)
		}
	}
	c.mu.pending[ref] = p
}

// forget drops a downlink that was not sent.
func (c *commander) forget(ref string) {
	c.mu.Lock()
	delete(c.mu.pending, ref)
	c.mu.Unlock()
}

// serverResult reports what the network server said of a downlink.
func (c *commander) serverResult(ctx context.Context, d *device, result int, ref, detail string) {
	d.up.stats.downlinks[result].Add(1)
	if c == nil || ref == "" {
		return
	}
	c.mu.Lock()
	p := c.mu.pending[ref]
	now := c.r.clock.Now()
	if p == nil || now.After(p.expires) {
		delete(c.mu.pending, ref)
		c.mu.Unlock()
		return
	}
	res := CommandResult{ID: p.id, Device: p.device, State: resultNames[result], Detail: truncate(detail, 1024), Time: now}
	if !p.queued {
		// The queued result is not out yet: its sender answers this too.
		p.early = append(p.early, res)
		c.mu.Unlock()
		return
	}
	if result != resultSent || !p.confirmed {
		delete(c.mu.pending, ref) // no more results to come
	}
	c.mu.Unlock()
	c.answer(ctx, p.responseTopic, p.correlation, &res)
}

// answer publishes a result on a response topic, if there is one.
func (c *commander) answer(ctx context.Context, responseTopic string, correlation []byte, res *CommandResult) {
	if responseTopic == "" {
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		return
	}
	m := bus.Message{Topic: responseTopic, Payload: body, QoS: 1, ContentType: event.ContentType, CorrelationData: correlation}
	if err := c.r.bus.Publish(ctx, m); err != nil {
		c.r.logEvery[reasonPublish].Do(func() {
			c.r.log.Warn("connector: command result not published", "topic", responseTopic, "err", err)
		})
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
