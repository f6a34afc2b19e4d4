package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

func init() {
	register("pub", "publish messages, with the flags of mosquitto_pub", func(ctx context.Context, args []string) error {
		return exitStatus("pub", runPub(ctx, args, os.Stdin, os.Stdout, os.Stderr))
	})
}

// Exit statuses that mosquitto_pub and mosquitto_sub use besides a refused
// connection's return code.
const (
	exitFailure = 1  // any other error
	exitTimeout = 27 // MOSQ_ERR_TIMEOUT: sub -W ran out
)

// exitError is an error that ends the process with a given exit status, as
// mosquitto's tools do: a refused connection exits with the CONNACK's code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitStatus prints err and ends the process with its exit status when it
// is an *exitError; other errors go back to main, which exits with 1.
func exitStatus(cmd string, err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "citymesh %s: %v\n", cmd, ee.err)
		os.Exit(ee.code)
	}
	return err
}

// connectError turns a failed Dial into what mosquitto prints and exits
// with: the CONNACK's return code (3.1.1) or reason code (5) when the server
// refused, 1 otherwise. Where the server did not speak the protocol asked
// for, it says which one to try: a server that closes the connection
// before CONNACK is usually TLS on the port, and one whose first answer is
// no TLS record is usually plain MQTT.
func connectError(err error, o client.Options) error {
	var se *client.ServerError
	if errors.As(err, &se) && se.Packet == mqtt.CONNACK {
		code := int(se.Code)
		if o.Version < mqtt.V5 {
			code = int(client.V3ReturnCode(se.Code))
		}
		return &exitError{code: code, err: fmt.Errorf("Connection error: Connection Refused: %s (%d)", strings.ToLower(se.Code.String()), code)}
	}
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, client.ErrNoConnack) && !usesTLS(o):
		err = fmt.Errorf("%w; is this a TLS port? try mqtts:// (-L mqtts://host:port/topic) or --cafile", err)
	case usesTLS(o) && (errors.As(err, &rh) || (!errors.Is(err, client.ErrNoConnack) &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)))):
		// No TLS record came back, or the server hung up on the handshake.
		err = fmt.Errorf("%w; the server does not speak TLS here: is this a plain MQTT port? try without --cafile and --cert, or mqtt://", err)
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("Error: %w", err)}
}

// usesTLS reports whether the client options connect with TLS.
func usesTLS(o client.Options) bool {
	scheme, _, ok := strings.Cut(o.Addr, "://")
	if !ok {
		return o.TLSConfig != nil
	}
	switch scheme {
	case "mqtts", "tls", "ssl", "wss":
		return true
	}
	return false
}

// checkPublishTopic refuses a topic name that no server takes, before
// connecting, as mosquitto_pub does: a server closes the connection of a
// client that publishes to it, and a QoS 0 message would be lost.
func checkPublishTopic(name string) error {
	err := topic.ValidName(name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, topic.ErrWildcardInName):
		return fmt.Errorf("invalid publish topic %q: it contains a wildcard (+ or #); wildcards are for subscriptions", name)
	}
	return fmt.Errorf("invalid publish topic: %w", err)
}

// checkFilters refuses invalid topic filters before connecting.
func checkFilters(flag string, filters []string) error {
	for _, f := range filters {
		if err := topic.ValidFilter(f); err != nil {
			return fmt.Errorf("invalid topic filter for %s: %w (+ and # stand for whole levels; # only last)", flag, err)
		}
	}
	return nil
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
	userProps                          userPropList
	props                              propFlags
	tls                                tlsFlags
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.host, "h", "localhost", "broker `host`")
	f.tls.register(fs)
	fs.IntVar(&f.port, "p", 0, "broker `port` (default 1883, or 8883 with TLS)")
	fs.StringVar(&f.url, "L", "", "`URL` mqtt://[user[:password]@]host[:port]/topic, or ws://host:port/path/topic for WebSocket (instead of -h -p -t)")
	fs.StringVar(&f.id, "i", "", "client `id` (default: generated, or assigned by an MQTT 5 broker)")
	fs.StringVar(&f.user, "u", "", "`username`")
	fs.StringVar(&f.pass, "P", "", "`password`")
	fs.StringVar(&f.version, "V", "311", "protocol `version`: 5 (mqttv5), 311 (mqttv311) or 31 (mqttv31)")
	fs.IntVar(&f.keepalive, "k", 60, "keep alive in `seconds` (0 disables)")
	fs.IntVar(&f.qos, "q", 0, "`qos` 0, 1 or 2")
	fs.BoolVar(&f.noClean, "c", false, "persistent session: disable clean session / clean start")
	fs.UintVar(&f.expiry, "x", 0, "session expiry interval in `seconds` (MQTT 5; 4294967295 never expires)")
	fs.BoolVar(&f.debug, "d", false, "print debug messages to stderr")
	fs.StringVar(&f.willTopic, "will-topic", "", "will `topic`")
	fs.StringVar(&f.willPayload, "will-payload", "", "will `payload`")
	fs.IntVar(&f.willQoS, "will-qos", 0, "will `qos`")
	fs.BoolVar(&f.willRetain, "will-retain", false, "retain the will")
	fs.Var(&f.userProps, "user-property", "MQTT 5 user property `key=value` (repeatable); on PUBLISH for pub, on SUBSCRIBE for sub")
}

// userPropList is a repeatable key=value flag.
type userPropList []mqtt.UserProperty

func (u *userPropList) String() string {
	var s []string
	for _, p := range *u {
		s = append(s, p.Key+"="+p.Value)
	}
	return strings.Join(s, ",")
}

func (u *userPropList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("want key=value")
	}
	*u = append(*u, mqtt.UserProperty{Key: k, Value: v})
	return nil
}

// propFlags collects mosquitto's -D options by command (connect, publish,
// subscribe, unsubscribe, disconnect, will).
type propFlags map[string][]mqtt.Properties

// extractProps removes every "-D command property value [value]" from args,
// as mosquitto_pub and mosquitto_sub take them, and returns the rest. (The
// flag package cannot parse a flag with several values.)
func extractProps(args []string) ([]string, propFlags, error) {
	out := propFlags{}
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if args[i] != "-D" && args[i] != "--property" {
			rest = append(rest, args[i])
			continue
		}
		if i+3 >= len(args) {
			return nil, nil, errors.New("-D needs: command property value")
		}
		cmd, name, val := args[i+1], args[i+2], args[i+3]
		switch cmd {
		case "connect", "publish", "subscribe", "unsubscribe", "disconnect", "will":
		default:
			return nil, nil, fmt.Errorf("-D: unknown command %q", cmd)
		}
		var p mqtt.Properties
		n := 3
		num := func(bits int) (uint64, error) {
			v, err := strconv.ParseUint(val, 10, bits)
			if err != nil {
				return 0, fmt.Errorf("-D %s %s: %w", cmd, name, err)
			}
			return v, nil
		}
		var v uint64
		var err error
		switch name {
		case "user-property":
			if i+4 >= len(args) {
				return nil, nil, fmt.Errorf("-D %s user-property needs a key and a value", cmd)
			}
			p.User = []mqtt.UserProperty{{Key: val, Value: args[i+4]}}
			n = 4
		case "content-type":
			p.ContentType = val
		case "response-topic":
			p.ResponseTopic = val
		case "correlation-data":
			p.CorrelationData = []byte(val)
		case "payload-format-indicator":
			if v, err = num(8); err == nil {
				p.PayloadFormat = byte(v)
				p.Set(mqtt.PropPayloadFormat)
			}
		case "message-expiry-interval":
			if v, err = num(32); err == nil {
				p.MessageExpiry = uint32(v)
				p.Set(mqtt.PropMessageExpiry)
			}
		case "session-expiry-interval":
			if v, err = num(32); err == nil {
				p.SessionExpiry = uint32(v)
			}
		case "will-delay-interval":
			if v, err = num(32); err == nil {
				p.WillDelay = uint32(v)
			}
		case "maximum-packet-size":
			if v, err = num(32); err == nil {
				p.MaximumPacketSize = uint32(v)
			}
		case "receive-maximum":
			if v, err = num(16); err == nil {
				p.ReceiveMaximum = uint16(v)
			}
		case "topic-alias-maximum":
			if v, err = num(16); err == nil {
				p.TopicAliasMaximum = uint16(v)
			}
		case "topic-alias":
			if v, err = num(16); err == nil {
				p.TopicAlias = uint16(v)
			}
		case "subscription-identifier":
			if v, err = num(32); err == nil {
				p.SubscriptionIDs = []uint32{uint32(v)}
			}
		case "request-problem-information", "request-response-information":
			if v, err = num(8); err == nil {
				if name == "request-problem-information" {
					p.RequestProblemInfo = byte(v)
					p.Set(mqtt.PropRequestProblemInfo)
				} else {
					p.RequestResponseInfo = byte(v)
				}
			}
		default:
			return nil, nil, fmt.Errorf("-D: unknown property %q", name)
		}
		if err != nil {
			return nil, nil, err
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
		for _, id := range []mqtt.PropID{mqtt.PropPayloadFormat, mqtt.PropMessageExpiry, mqtt.PropRequestProblemInfo} {
			if p.Has(id) {
				m.Set(id)
			}
		}
		m.PayloadFormat = max(m.PayloadFormat, p.PayloadFormat)
		m.MessageExpiry = max(m.MessageExpiry, p.MessageExpiry)
		m.RequestProblemInfo = max(m.RequestProblemInfo, p.RequestProblemInfo)
		m.RequestResponseInfo = max(m.RequestResponseInfo, p.RequestResponseInfo)
		m.SessionExpiry = max(m.SessionExpiry, p.SessionExpiry)
		m.WillDelay = max(m.WillDelay, p.WillDelay)
		m.MaximumPacketSize = max(m.MaximumPacketSize, p.MaximumPacketSize)
		m.ReceiveMaximum = max(m.ReceiveMaximum, p.ReceiveMaximum)
		m.TopicAliasMaximum = max(m.TopicAliasMaximum, p.TopicAliasMaximum)
		m.TopicAlias = max(m.TopicAlias, p.TopicAlias)
	}
	return m
}

// parseVersion accepts the spellings of mosquitto's -V.
func parseVersion(s string) (byte, error) {
	switch strings.ToLower(s) {
	case "5", "mqttv5", "50", "v5":
		return mqtt.V5, nil
	case "311", "mqttv311", "4", "v311":
		return mqtt.V311, nil
	case "31", "mqttv31", "3", "v31":
		return mqtt.V31, nil
	}
	return 0, fmt.Errorf("unknown protocol version %q (use 5, 311 or 31)", s)
}

// options builds client options from the flags; topic is the topic named in
// -L, if any.
func (f *connFlags) options(stderr io.Writer) (client.Options, string, error) {
	v, err := parseVersion(f.version)
	if err != nil {
		return client.Options{}, "", err
	}
	if f.qos < 0 || f.qos > 2 {
		return client.Options{}, "", fmt.Errorf("-q %d: qos must be 0, 1 or 2", f.qos)
	}
	if f.willQoS < 0 || f.willQoS > 2 {
		return client.Options{}, "", fmt.Errorf("--will-qos %d: qos must be 0, 1 or 2", f.willQoS)
	}
	port := f.port
	if port == 0 {
		port = 1883
		if f.tls.enabled() {
			port = 8883
		}
	}
	o := client.Options{
		Addr:       net.JoinHostPort(f.host, strconv.Itoa(port)),
		ClientID:   f.id,
		Version:    v,
		CleanStart: !f.noClean,
		KeepAlive:  time.Duration(f.keepalive) * time.Second,
		Username:   f.user,
	}
	if f.keepalive == 0 {
		o.KeepAlive = -1
	}
	if f.pass != "" {
		o.Password = []byte(f.pass)
	}
	tc, err := f.tls.config(f.host)
	if err != nil {
		return o, "", err
	}
	o.TLSConfig = tc
	if f.tls.enabled() {
		o.Addr = "mqtts://" + o.Addr
	}
	var topic string
	if f.url != "" {
		u, err := url.Parse(f.url)
		if err != nil {
			return o, "", fmt.Errorf("-L: %w", err)
		}
		// The topic is the rest of the URL as written: a "#" wildcard is not
		// a URL fragment here.
		_, topic, _ = strings.Cut(strings.TrimPrefix(f.url, u.Scheme+"://"), "/")
		host := u.Host
		switch u.Scheme {
		case "mqtt", "tcp", "mqtts":
			if u.Port() == "" {
				port := "1883"
				if u.Scheme == "mqtts" {
					port = "8883"
				}
				host = net.JoinHostPort(u.Hostname(), port)
			}
			o.Addr = u.Scheme + "://" + host
		case "ws", "wss":
			// The first path element is the WebSocket path, the rest the topic.
			path, t, _ := strings.Cut(topic, "/")
			o.Addr = u.Scheme + "://" + host + "/" + path
			topic = t
		default:
			return o, "", fmt.Errorf("-L: unsupported scheme %q (use mqtt, mqtts, ws or wss)", u.Scheme)
		}
		if o.TLSConfig != nil && o.TLSConfig.ServerName == f.host {
			o.TLSConfig.ServerName = u.Hostname() // the URL names the broker, not -h
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
		o.SessionExpiry = uint32(f.expiry)
	} else if f.expiry > 0 {
		return o, "", errors.New("-x needs MQTT 5 (-V 5)")
	}
	if f.willTopic != "" {
		o.Will = &mqtt.Will{Topic: f.willTopic, Payload: []byte(f.willPayload), QoS: byte(f.willQoS), Retain: f.willRetain}
		if v >= mqtt.V5 {
			o.Will.Props = f.props.merged("will")
		}
	} else if f.willPayload != "" {
		return o, "", errors.New("--will-payload needs --will-topic")
	}
	if f.debug {
		o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, topic, nil
}

// debugf prints a debug line to stderr when -d is set.
func (f *connFlags) debugf(w io.Writer, format string, args ...any) {
	if f.debug {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// runPub is citymesh pub: connect, publish one message (or one per line of
// stdin with -l), disconnect.
func runPub(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	args, props, err := extractProps(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := connFlags{props: props}
	cf.register(fs)
	topic := fs.String("t", "", "`topic` to publish to")
	msg := fs.String("m", "", "`message` payload")
	file := fs.String("f", "", "send the contents of `file` as the message")
	null := fs.Bool("n", false, "send a null (zero length) message")
	whole := fs.Bool("s", false, "read the message from stdin, sending it whole")
	lines := fs.Bool("l", false, "read messages from stdin, one per line")
	retain := fs.Bool("r", false, "retain the message")
	repeat := fs.Int("repeat", 1, "publish the message `N` times")
	repeatDelay := fs.Float64("repeat-delay", 0, "wait `seconds` between repeated messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	opts, urlTopic, err := cf.options(stderr)
	if err != nil {
		return err
	}
	if *topic == "" {
		*topic = urlTopic
	}
	if *topic == "" {
		return errors.New("a topic is needed: -t topic")
	}
	if err := checkPublishTopic(*topic); err != nil {
		return err
	}
	sources := 0
	for _, set := range []bool{isSet(fs, "m"), *file != "", *null, *whole, *lines} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return errors.New("give exactly one of -m, -f, -n, -s or -l")
	}
	// Like mosquitto_pub, at most 20 messages inflight where the server
	// states no Receive Maximum.
	opts.MaxInflight = 20
	if opts.Version >= mqtt.V5 {
		opts.MaxInflight = 0
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		return connectError(err, opts)
	}
	cf.debugf(stderr, "connected to %s as %q (MQTT level %d)", opts.Addr, c.ClientID(), opts.Version)
	defer func() {
		c.Disconnect(context.Background(), mqtt.NormalDisconnection)
		cf.debugf(stderr, "disconnected")
	}()
	template := mqtt.Publish{Topic: *topic, QoS: byte(cf.qos), Retain: *retain}
	if opts.Version >= mqtt.V5 {
		template.Props = props.merged("publish")
		template.Props.User = append(template.Props.User, cf.userProps...)
	}

	// Publishes are pipelined; errors are collected and the first returned.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	publish := func(payload []byte) error {
		p := template
		p.Payload = payload
		wg.Add(1)
		c.PublishAsync(&p, func(err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("publish to %s: %w", *topic, err)
				}
				mu.Unlock()
				return
			}
			cf.debugf(stderr, "published %d bytes to %s (qos %d)", len(payload), *topic, cf.qos)
		})
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	switch {
	case *lines:
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		for sc.Scan() {
			if err = publish(sc.Bytes()); err != nil {
				break
			}
		}
		if err == nil {
			err = sc.Err()
		}
	case *whole:
		var b []byte
		if b, err = io.ReadAll(stdin); err == nil {
			err = publish(b)
		}
	case *file != "":
		var b []byte
		if b, err = os.ReadFile(*file); err == nil {
			err = publish(b)
		}
	case *null:
		err = publish(nil)
	default:
		for i := range max(*repeat, 1) {
			if i > 0 && *repeatDelay > 0 {
				select {
				case <-time.After(time.Duration(*repeatDelay * float64(time.Second))):
				case <-ctx.Done():
				}
			}
			if ctx.Err() != nil {
				break
			}
			if err = publish([]byte(*msg)); err != nil {
				break
			}
		}
	}
	// Wait for the acknowledgements of QoS 1 and 2 (or the connection's end).
	wg.Wait()
	if err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	if cf.qos == 0 {
		// QoS 0 has no acknowledgement: a PINGREQ answered after the
		// messages shows that the server read them all and kept the
		// connection (a server closes it on a message it refuses).
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Ping(pctx); err != nil {
			return fmt.Errorf("the server did not confirm the messages (it closed the connection or did not answer): %w", err)
		}
		cf.debugf(stderr, "the server answered PINGREQ after the messages")
	}
	return nil
}

// isSet reports whether flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
