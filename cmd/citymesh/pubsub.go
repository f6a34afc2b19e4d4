package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

func init() {
	register("pub", "publish messages, with the flags of mosquitto_pub", runPub)
	register("sub", "subscribe and print messages, with the flags of mosquitto_sub", runSub)
}

// connFlags are the connection flags that pub and sub share, named as in
// mosquitto_pub and mosquitto_sub.
type connFlags struct {
	host, id, user, pass, version, url string
	port, keepalive, qos               int
	noClean, debug                     bool
	expiry                             uint
	willTopic, willPayload             string
	willQoS                            int
	willRetain                         bool
	props                              propFlags
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.host, "h", "localhost", "broker `host`")
	fs.IntVar(&f.port, "p", 1883, "broker `port`")
	fs.StringVar(&f.url, "L", "", "`URL` mqtt://host:port/topic or ws://host:port/mqtt/topic (instead of -h -p -t)")
	fs.StringVar(&f.id, "i", "", "client `id` (default: generated or assigned by the broker)")
	fs.StringVar(&f.user, "u", "", "`username`")
	fs.StringVar(&f.pass, "P", "", "`password`")
	fs.StringVar(&f.version, "V", "311", "protocol `version`: 5 (mqttv5), 311 (mqttv311) or 31 (mqttv31)")
	fs.IntVar(&f.keepalive, "k", 60, "keep alive in `seconds`")
	fs.IntVar(&f.qos, "q", 0, "`qos` 0, 1 or 2")
	fs.BoolVar(&f.noClean, "c", false, "persistent session: disable clean session / clean start")
	fs.UintVar(&f.expiry, "x", 0, "session expiry interval in `seconds` (MQTT 5)")
	fs.BoolVar(&f.debug, "d", false, "print debug messages")
	fs.StringVar(&f.willTopic, "will-topic", "", "will `topic`")
	fs.StringVar(&f.willPayload, "will-payload", "", "will `payload`")
	fs.IntVar(&f.willQoS, "will-qos", 0, "will `qos`")
	fs.BoolVar(&f.willRetain, "will-retain", false, "retain the will")
}

// propFlags collects mosquitto's -D options: -D command property value [value].
type propFlags map[string][]mqtt.Properties

// extractProps removes every "-D command name value [value]" from args, as
// mosquitto_pub and mosquitto_sub take them, and returns the rest.
func extractProps(args []string) ([]string, propFlags, error) {
	out := propFlags{}
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] != "-D" && args[i] != "--property" {
			rest = append(rest, args[i])
			continue
		}
		if i+3 >= len(args) {
			return nil, nil, fmt.Errorf("-D needs: command property value")
		}
		cmd, name := args[i+1], args[i+2]
		var p mqtt.Properties
		n := 3
		switch name {
		case "user-property":
			if i+4 >= len(args) {
				return nil, nil, fmt.Errorf("-D %s user-property needs a key and a value", cmd)
			}
			p.User = []mqtt.UserProperty{{Key: args[i+3], Value: args[i+4]}}
			n = 4
		case "content-type":
			p.ContentType = args[i+3]
		case "response-topic":
			p.ResponseTopic = args[i+3]
		case "correlation-data":
			p.CorrelationData = []byte(args[i+3])
		case "payload-format-indicator":
			v, err := strconv.ParseUint(args[i+3], 10, 8)
			if err != nil {
				return nil, nil, fmt.Errorf("-D %s %s: %w", cmd, name, err)
			}
			p.PayloadFormat = byte(v)
			p.Set(mqtt.PropPayloadFormat)
		case "message-expiry-interval", "session-expiry-interval", "will-delay-interval", "maximum-packet-size",
			"receive-maximum", "topic-alias-maximum", "subscription-identifier":
			v, err := strconv.ParseUint(args[i+3], 10, 32)
			if err != nil {
				return nil, nil, fmt.Errorf("-D %s %s: %w", cmd, name, err)
			}
			switch name {
			case "message-expiry-interval":
				p.MessageExpiry = uint32(v)
				p.Set(mqtt.PropMessageExpiry)
			case "session-expiry-interval":
				p.SessionExpiry = uint32(v)
			case "will-delay-interval":
				p.WillDelay = uint32(v)
			case "maximum-packet-size":
				p.MaximumPacketSize = uint32(v)
			case "receive-maximum":
				p.ReceiveMaximum = uint16(v)
			case "topic-alias-maximum":
				p.TopicAliasMaximum = uint16(v)
			case "subscription-identifier":
				p.SubscriptionIDs = []uint32{uint32(v)}
			}
		default:
			return nil, nil, fmt.Errorf("-D: unknown property %q", name)
		}
		out[cmd] = append(out[cmd], p)
		i += n
	}
	return rest, out, nil
}

// merged returns the properties given for command cmd, merged into one set.
func (pf propFlags) merged(cmd string) mqtt.Properties {
	var m mqtt.Properties
	for _, p := range pf[cmd] {
		m.User = append(m.User, p.User...)
		m.SubscriptionIDs = append(m.SubscriptionIDs, p.SubscriptionIDs...)
		if p.ContentType != "" {
			m.ContentType = p.ContentType
		}
		if p.ResponseTopic != "" {
			m.ResponseTopic = p.ResponseTopic
		}
		if p.CorrelationData != nil {
			m.CorrelationData = p.CorrelationData
		}
		if p.Has(mqtt.PropPayloadFormat) {
			m.PayloadFormat = p.PayloadFormat
			m.Set(mqtt.PropPayloadFormat)
		}
		if p.Has(mqtt.PropMessageExpiry) {
			m.MessageExpiry = p.MessageExpiry
			m.Set(mqtt.PropMessageExpiry)
		}
		m.SessionExpiry = max(m.SessionExpiry, p.SessionExpiry)
		m.WillDelay = max(m.WillDelay, p.WillDelay)
		m.MaximumPacketSize = max(m.MaximumPacketSize, p.MaximumPacketSize)
		m.ReceiveMaximum = max(m.ReceiveMaximum, p.ReceiveMaximum)
		m.TopicAliasMaximum = max(m.TopicAliasMaximum, p.TopicAliasMaximum)
	}
	return m
}

// parseVersion accepts the spellings of mosquitto's -V.
func parseVersion(s string) (byte, error) {
	switch strings.ToLower(s) {
	case "5", "mqttv5", "50":
		return mqtt.V5, nil
	case "311", "mqttv311", "4":
		return mqtt.V311, nil
	case "31", "mqttv31", "3":
		return mqtt.V31, nil
	}
	return 0, fmt.Errorf("unknown protocol version %q (use 5, 311 or 31)", s)
}

// options builds client options from the flags; topic is the topic taken
// from -L, if any.
func (f *connFlags) options() (client.Options, string, error) {
	v, err := parseVersion(f.version)
	if err != nil {
		return client.Options{}, "", err
	}
	if f.qos < 0 || f.qos > 2 {
		return client.Options{}, "", fmt.Errorf("qos %d: must be 0, 1 or 2", f.qos)
	}
	o := client.Options{
		Addr:      net.JoinHostPort(f.host, strconv.Itoa(f.port)),
		ClientID:  f.id,
		Version:   v,
		KeepAlive: time.Duration(f.keepalive) * time.Second,
		Username:  f.user,
	}
	if f.pass != "" {
		o.Password = []byte(f.pass)
	}
	o.CleanStart = !f.noClean
	var topic string
	if f.url != "" {
		u, err := url.Parse(f.url)
		if err != nil {
			return o, "", fmt.Errorf("-L: %w", err)
		}
		topic = strings.TrimPrefix(u.Path, "/")
		switch u.Scheme {
		case "mqtt", "tcp":
			o.Addr = u.Host
		case "ws", "wss":
			// The first path element is the WebSocket path, the rest the topic.
			path, t, _ := strings.Cut(topic, "/")
			o.Addr = u.Scheme + "://" + u.Host + "/" + path
			topic = t
		default:
			return o, "", fmt.Errorf("-L: unsupported scheme %q", u.Scheme)
		}
		if u.User != nil {
			o.Username = u.User.Username()
			if pw, ok := u.User.Password(); ok {
				o.Password = []byte(pw)
			}
		}
	}
	if v >= mqtt.V5 {
		o.Props = f.props.merged("connect")
		if f.expiry > 0 {
			o.Props.SessionExpiry = uint32(f.expiry)
		}
	}
	if f.willTopic != "" {
		o.Will = &mqtt.Will{Topic: f.willTopic, Payload: []byte(f.willPayload), QoS: byte(f.willQoS), Retain: f.willRetain}
		if v >= mqtt.V5 {
			o.Will.Props = f.props.merged("will")
		}
	}
	return o, topic, nil
}

func (f *connFlags) debugf(format string, args ...any) {
	if f.debug {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func runPub(ctx context.Context, args []string) error {
	args, props, err := extractProps(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	cf := connFlags{props: props}
	cf.register(fs)
	topic := fs.String("t", "", "`topic` to publish to")
	msg := fs.String("m", "", "`message` payload")
	file := fs.String("f", "", "send the contents of `file` as the message")
	null := fs.Bool("n", false, "send a null (zero length) message")
	stdin := fs.Bool("s", false, "read the message from stdin, sending it whole")
	lines := fs.Bool("l", false, "read messages from stdin, one per line")
	retain := fs.Bool("r", false, "retain the message")
	repeat := fs.Int("repeat", 1, "publish the message `N` times")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, urlTopic, err := cf.options()
	if err != nil {
		return err
	}
	if *topic == "" {
		*topic = urlTopic
	}
	if *topic == "" {
		return errors.New("a topic is needed: -t topic")
	}
	sources := 0
	for _, b := range []bool{*msg != "", *file != "", *null, *stdin, *lines} {
		if b {
			sources++
		}
	}
	if sources != 1 {
		return errors.New("give exactly one of -m, -f, -n, -s or -l")
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		return err
	}
	cf.debugf("connected to %s as %q", opts.Addr, c.ClientID())
	defer c.Disconnect(context.Background(), mqtt.NormalDisconnection)
	p := mqtt.Publish{Topic: *topic, QoS: byte(cf.qos), Retain: *retain}
	if opts.Version >= mqtt.V5 {
		p.Props = props.merged("publish")
	}
	send := func(payload []byte) error {
		q := p
		q.Payload = payload
		if err := c.Publish(ctx, &q); err != nil {
			return fmt.Errorf("publish to %s: %w", *topic, err)
		}
		cf.debugf("published %d bytes to %s (qos %d)", len(payload), *topic, cf.qos)
		return nil
	}
	switch {
	case *lines:
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		for sc.Scan() {
			if err := send(append([]byte(nil), sc.Bytes()...)); err != nil {
				return err
			}
		}
		return sc.Err()
	case *stdin:
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		return send(b)
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		return send(b)
	case *null:
		return send(nil)
	}
	for range max(*repeat, 1) {
		if err := send([]byte(*msg)); err != nil {
			return err
		}
	}
	return nil
}

// topicList is a repeatable -t flag.
type topicList []string

func (t *topicList) String() string     { return strings.Join(*t, ",") }
func (t *topicList) Set(s string) error { *t = append(*t, s); return nil }

func runSub(ctx context.Context, args []string) error {
	args, props, err := extractProps(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	cf := connFlags{props: props}
	cf.register(fs)
	var topics, unsub topicList
	fs.Var(&topics, "t", "`topic` filter to subscribe to (repeatable)")
	fs.Var(&unsub, "U", "`topic` filter to unsubscribe from (repeatable)")
	count := fs.Int("C", 0, "exit after `N` messages")
	timeout := fs.Int("W", 0, "exit after `seconds` without finishing")
	verbose := fs.Bool("v", false, "print the topic before each payload")
	noRetained := fs.Bool("R", false, "do not print retained messages")
	retainedOnly := fs.Bool("retained-only", false, "print only retained messages, then exit at the first live one")
	noLocal := fs.Bool("nl", false, "no local (MQTT 5)")
	rap := fs.Bool("rap", false, "retain as published (MQTT 5)")
	rh := fs.Int("rh", 0, "retain handling (MQTT 5): 0 always, 1 only for new subscriptions, 2 never")
	eol := fs.Bool("N", false, "do not add an end of line after each payload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, urlTopic, err := cf.options()
	if err != nil {
		return err
	}
	if urlTopic != "" {
		topics = append(topics, urlTopic)
	}
	if len(topics) == 0 && len(unsub) == 0 {
		return errors.New("a topic is needed: -t topic")
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*timeout)*time.Second)
		defer cancel()
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	got := make(chan struct{}, 1)
	stop := make(chan struct{})
	received := 0
	opts.OnMessage = func(p *mqtt.Publish) {
		if *count > 0 && received >= *count {
			return
		}
		if (*noRetained && p.Retain) || (*retainedOnly && !p.Retain) {
			if *retainedOnly {
				select {
				case <-stop:
				default:
					close(stop)
				}
			}
			return
		}
		if *verbose {
			out.WriteString(p.Topic)
			out.WriteByte(' ')
		}
		out.Write(p.Payload)
		if !*eol {
			out.WriteByte('\n')
		}
		out.Flush()
		received++
		if *count > 0 && received >= *count {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		return err
	}
	cf.debugf("connected to %s as %q (session present %v)", opts.Addr, c.ClientID(), c.Connack.SessionPresent)
	defer c.Disconnect(context.Background(), mqtt.NormalDisconnection)
	if len(unsub) > 0 {
		if _, err := c.Unsubscribe(ctx, unsub...); err != nil {
			return fmt.Errorf("unsubscribe: %w", err)
		}
	}
	if len(topics) > 0 {
		subs := make([]mqtt.Subscription, len(topics))
		for i, t := range topics {
			subs[i] = mqtt.Subscription{Filter: t, QoS: byte(cf.qos), NoLocal: *noLocal, RetainAsPublished: *rap, RetainHandling: byte(*rh)}
		}
		var sp mqtt.Properties
		if opts.Version >= mqtt.V5 {
			sp = props.merged("subscribe")
		}
		ack, err := c.Subscribe(ctx, sp, subs...)
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		for i, code := range ack.ReasonCodes {
			if code >= 0x80 {
				return fmt.Errorf("subscribe %s refused: %s (0x%02X)", topics[i], code, byte(code))
			}
			cf.debugf("subscribed to %s, granted qos %d", topics[i], code)
		}
	}
	select {
	case <-got:
		return nil
	case <-stop:
		return nil
	case <-c.Done():
		return fmt.Errorf("connection lost: %w", c.Err())
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %d s with %d messages", *timeout, received)
		}
		return nil
	}
}
