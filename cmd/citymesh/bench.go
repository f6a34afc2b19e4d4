package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

func init() {
	register("bench", "load an MQTT broker and measure throughput and latency", runBench)
}

// benchConfig holds the bench flags.
type benchConfig struct {
	host            string
	port            int
	url             string
	subHost         string
	subPort         int
	subURL          string
	subWait         time.Duration
	grace           time.Duration
	version         string
	pubs, subs      int
	qos             int
	size            int
	rate            float64
	duration        time.Duration
	count           int
	pattern         string
	topic, subTopic string
	topics          int
	inflight        int
	connections     int
	pid             int
	hold            time.Duration
	jsonOut, quiet  bool
	connectParallel int
	persistent      bool
	backlog, drain  int
	backlogMessages int
	tls             tlsFlags
	tlsConfig       *tls.Config
	user, pass      string

	// subAddr is where subscribers connect when it is not where publishers
	// do (--sub-url, --sub-h, --sub-p), with its own TLS settings; "" puts
	// every client on one broker.
	subAddr      string
	subTLSConfig *tls.Config
}

// benchResult is what a run measured; --json prints it.
type benchResult struct {
	Pattern         string  `json:"pattern"`
	Publishers      int     `json:"publishers"`
	Subscribers     int     `json:"subscribers"`
	QoS             int     `json:"qos"`
	Size            int     `json:"size"`
	Seconds         float64 `json:"seconds"`
	Sent            int64   `json:"sent"`
	Received        int64   `json:"received"`
	Expected        int64   `json:"expected"`
	SentPerSec      float64 `json:"sent_per_sec"`
	ReceivedPerSec  float64 `json:"received_per_sec"`
	Lost            int64   `json:"lost"`
	Duplicates      int64   `json:"duplicates"`
	OutOfOrder      int64   `json:"out_of_order"`
	LatencyP50us    float64 `json:"latency_p50_us"`
	LatencyP90us    float64 `json:"latency_p90_us"`
	LatencyP99us    float64 `json:"latency_p99_us"`
	LatencyMaxus    float64 `json:"latency_max_us"`
	Connections     int     `json:"connections,omitempty"`
	ConnectPerSec   float64 `json:"connect_per_sec,omitempty"`
	RSSPerConnBytes float64 `json:"rss_per_connection_bytes,omitempty"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	PropagateSecs   float64 `json:"propagate_seconds,omitempty"`
	Stalled         bool    `json:"publishers_stalled,omitempty"`
	Errors          int64   `json:"errors"`
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c benchConfig
	fs.StringVar(&c.host, "h", "localhost", "broker `host`")
	fs.IntVar(&c.port, "p", 1883, "broker `port`")
	fs.StringVar(&c.url, "url", "", "broker `URL` mqtt://host:port or ws://host:port/mqtt (instead of -h -p)")
	fs.StringVar(&c.subHost, "sub-h", "", "subscribers' broker `host`, when it is another node than the publishers' (default -h)")
	fs.IntVar(&c.subPort, "sub-p", 0, "subscribers' broker `port` (default -p)")
	fs.StringVar(&c.subURL, "sub-url", "", "subscribers' broker `URL`, as -url (instead of -sub-h -sub-p); bench then waits until a probe published at the publishers' node reaches every subscriber")
	fs.DurationVar(&c.subWait, "sub-wait", 10*time.Second, "with subscribers on another node: how long to wait for their subscriptions to reach the publishers' node")
	fs.StringVar(&c.version, "V", "311", "protocol `version`: 5 or 311")
	fs.IntVar(&c.pubs, "pub", 1, "`number` of publishers")
	fs.IntVar(&c.subs, "sub", 1, "`number` of subscribers")
	fs.IntVar(&c.qos, "qos", 0, "`qos` of publishes and subscriptions")
	fs.IntVar(&c.size, "size", 64, "payload size in `bytes` (at least 16)")
	fs.Float64Var(&c.rate, "rate", 0, "messages per second per publisher (`0` = as fast as possible)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long publishers publish")
	fs.DurationVar(&c.grace, "grace", 2*time.Second, "how long to wait for stragglers after publishing ends")
	fs.IntVar(&c.count, "count", 0, "messages per publisher (instead of -duration)")
	fs.StringVar(&c.pattern, "pattern", "pairs", "`pattern`: pairs, fanout, fanin, wildcard or custom")
	fs.StringVar(&c.topic, "topic", "", "custom publish topic `template`: {i} publisher index, {j} message index modulo -topics")
	fs.StringVar(&c.subTopic, "sub-topic", "", "custom subscription `filter` template: {i} subscriber index")
	fs.IntVar(&c.topics, "topics", 10, "distinct {j} values in topic templates")
	fs.IntVar(&c.inflight, "inflight", 1024, "maximum QoS 1/2 messages inflight per publisher")
	fs.IntVar(&c.connections, "connections", 0, "idle connection mode: open `N` connections and report the connect rate")
	fs.IntVar(&c.pid, "pid", 0, "broker `pid`, to report its memory per idle connection")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "idle connection mode: how long to hold the connections")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines")
	fs.IntVar(&c.connectParallel, "connect-parallel", 64, "concurrent connection attempts")
	fs.BoolVar(&c.persistent, "persistent", false, "subscribers keep persistent sessions (Clean Start 0, Session Expiry 300 s with MQTT 5), so a durable broker stores their messages; the sessions are ended after the run")
	c.tls.register(fs)
	fs.StringVar(&c.user, "u", "", "`username` of every bench client")
	fs.StringVar(&c.pass, "P", "", "`password` of every bench client")
	fs.IntVar(&c.backlog, "backlog", 0, "backlog mode: create `N` offline persistent sessions (backlog-0 …) and queue --backlog-messages QoS 1 messages for each, with --pub publishers")
	fs.IntVar(&c.drain, "drain", 0, "drain mode: reconnect `N` backlog sessions, take their messages and report the drain rate; the sessions end afterwards")
	fs.IntVar(&c.backlogMessages, "backlog-messages", 100, "messages per backlog session")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := parseVersion(c.version)
	if err != nil {
		return err
	}
	if c.size < 16 {
		return errors.New("-size must be at least 16 bytes (timestamp and sequence)")
	}
	if c.qos < 0 || c.qos > 2 {
		return fmt.Errorf("-qos %d: must be 0, 1 or 2", c.qos)
	}
	if c.pubs < 1 || c.subs < 0 {
		return errors.New("-pub must be at least 1 and -sub at least 0")
	}
	addr := net.JoinHostPort(c.host, strconv.Itoa(c.port))
	if c.tlsConfig, err = c.tls.config(c.host); err != nil {
		return err
	}
	if c.tls.enabled() {
		addr = "mqtts://" + addr
	}
	if c.url != "" {
		addr = c.url
		if u, err := url.Parse(c.url); err == nil && c.tlsConfig != nil {
			c.tlsConfig.ServerName = u.Hostname()
		}
	}
	if err := c.subscriberAddress(addr); err != nil {
		return err
	}
	var res benchResult
	switch {
	case c.backlog > 0:
		res, err = benchBacklogFill(ctx, c, addr, v)
	case c.drain > 0:
		res, err = benchBacklogDrain(ctx, c, addr, v)
	case c.connections > 0:
		res, err = benchIdle(ctx, c, addr, v)
	default:
		res, err = benchTraffic(ctx, c, addr, v)
	}
	if err != nil {
		return err
	}
	if c.jsonOut {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	printResult(res)
	return nil
}

func printResult(r benchResult) {
	switch r.Pattern {
	case "backlog":
		fmt.Printf("backlog: %d sessions created in %.2f s; %d messages queued by %d publishers in %.2f s = %.0f msgs/s, errors %d\n",
			r.Subscribers, r.ConnectSeconds, r.Sent, r.Publishers, r.Seconds, r.SentPerSec, r.Errors)
		return
	case "drain":
		fmt.Printf("drain: %d sessions reconnected in %.2f s; %d messages in %.2f s = %.0f msgs/s (expected %d: lost %d, duplicates %d, out of order %d)\n",
			r.Subscribers, r.ConnectSeconds, r.Received, r.Seconds, r.ReceivedPerSec, r.Expected, r.Lost, r.Duplicates, r.OutOfOrder)
		return
	}
	if r.Connections > 0 {
		fmt.Printf("connections: %d in %.2f s = %.0f connects/s", r.Connections, r.Seconds, r.ConnectPerSec)
		if r.RSSPerConnBytes > 0 {
			fmt.Printf(", broker RSS %.2f KiB per connection", r.RSSPerConnBytes/1024)
		}
		fmt.Printf(", errors %d\n", r.Errors)
		return
	}
	fmt.Printf("%s: %d pub, %d sub, qos %d, %d B, %.1f s (connect and subscribe %.0f ms)\n",
		r.Pattern, r.Publishers, r.Subscribers, r.QoS, r.Size, r.Seconds, r.ConnectSeconds*1e3)
	if r.PropagateSecs > 0 {
		fmt.Printf("routes   every subscription reached the publishers' node %.1f ms after the last SUBACK\n", r.PropagateSecs*1e3)
	}
	fmt.Printf("sent     %d msgs, %.0f msgs/s\n", r.Sent, r.SentPerSec)
	if r.Expected >= 0 {
		fmt.Printf("received %d msgs, %.0f msgs/s (expected %d: lost %d (%.2f%%), duplicates %d, out of order %d)\n",
			r.Received, r.ReceivedPerSec, r.Expected, r.Lost, 100*float64(r.Lost)/float64(max(r.Expected, 1)), r.Duplicates, r.OutOfOrder)
	} else {
		fmt.Printf("received %d msgs, %.0f msgs/s (duplicates %d, out of order %d)\n", r.Received, r.ReceivedPerSec, r.Duplicates, r.OutOfOrder)
	}
	fmt.Printf("latency  p50 %.0f µs, p90 %.0f µs, p99 %.0f µs, max %.0f µs\n", r.LatencyP50us, r.LatencyP90us, r.LatencyP99us, r.LatencyMaxus)
	if r.Errors > 0 {
		fmt.Printf("errors   %d\n", r.Errors)
	}
	if r.Stalled {
		fmt.Println("note     the broker was still holding publishers back at the end of the grace period; their connections were closed")
	}
}

// expand fills a topic template.
func expand(tmpl string, i, j int) string {
	s := strings.ReplaceAll(tmpl, "{i}", strconv.Itoa(i))
	return strings.ReplaceAll(s, "{j}", strconv.Itoa(j))
}

// plan returns the publish topic template, the subscription filter of
// subscriber k, and how many subscribers receive each message.
func (c *benchConfig) plan() (pubTopic func(i, j int) string, subFilter func(k int) string, fanout int, err error) {
	switch c.pattern {
	case "pairs":
		if c.subs != c.pubs {
			c.subs = c.pubs
		}
		return func(i, _ int) string { return "bench/" + strconv.Itoa(i) },
			func(k int) string { return "bench/" + strconv.Itoa(k) }, 1, nil
	case "fanout":
		c.pubs = 1
		return func(int, int) string { return "bench/fanout" }, func(int) string { return "bench/fanout" }, c.subs, nil
	case "fanin":
		c.subs = 1
		return func(i, _ int) string { return "bench/fanin/" + strconv.Itoa(i) }, func(int) string { return "bench/fanin/#" }, 1, nil
	case "wildcard":
		filter := func(int) string { return "city/+/energy/#" }
		if c.subTopic != "" {
			filter, fanout = func(k int) string { return expand(c.subTopic, k, 0) }, -1
		} else {
			fanout = c.subs
		}
		return func(i, j int) string { return "city/b" + strconv.Itoa(i) + "/energy/m" + strconv.Itoa(j%c.topics) },
			filter, fanout, nil
	case "custom":
		if c.topic == "" || c.subTopic == "" {
			return nil, nil, 0, errors.New("-pattern custom needs -topic and -sub-topic")
		}
		return func(i, j int) string { return expand(c.topic, i, j%c.topics) },
			func(k int) string { return expand(c.subTopic, k, 0) }, -1, nil
	}
	return nil, nil, 0, fmt.Errorf("unknown pattern %q", c.pattern)
}

// histogram is a log-linear latency histogram with about 3% resolution:
// 32 linear sub-buckets per power of two of nanoseconds.
type histogram struct {
	counts [64 * 32]int64
	max    int64
	n      int64
}

func bucketOf(ns int64) int {
	if ns < 32 {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 1 // ns in [2^e, 2^(e+1))
	sub := int((ns >> (e - 5)) & 31)
	return e*32 + sub
}

func bucketValue(b int) float64 {
	if b < 32 {
		return float64(b)
	}
	e, sub := b/32, b%32
	return math.Ldexp(1+float64(sub)/32, e)
}

func (h *histogram) add(ns int64) {
	h.counts[bucketOf(ns)]++
	h.n++
	h.max = max(h.max, ns)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	target := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= target {
			return bucketValue(i)
		}
	}
	return float64(h.max)
}

// subscriberState tracks what one subscriber received from each publisher.
// Only the subscriber's read goroutine writes it, except received, which the
// progress printer reads.
type subscriberState struct {
	mu       sync.Mutex
	hist     histogram
	lastSeq  []int64 // per publisher, -1 before the first
	received atomic.Int64
	dups     int64
	ooo      int64
	last     atomic.Int64 // time of the last message, UnixNano
	probed   atomic.Bool  // a probe arrived (see awaitRoutes)
}

// record takes one benchmark payload: send time, publisher, sequence.
func (st *subscriberState) record(payload []byte) {
	now := time.Now().UnixNano()
	if len(payload) < 16 {
		return
	}
	sent := int64(binary.BigEndian.Uint64(payload))
	pub := int(binary.BigEndian.Uint32(payload[8:]))
	seq := int64(binary.BigEndian.Uint32(payload[12:]))
	st.mu.Lock()
	st.hist.add(now - sent)
	if pub < len(st.lastSeq) {
		switch last := st.lastSeq[pub]; {
		case seq == last:
			st.dups++
		case seq < last:
			st.ooo++ // or a redelivered duplicate of an earlier message
		default:
			st.lastSeq[pub] = seq
		}
	}
	st.mu.Unlock()
	st.received.Add(1)
	st.last.Store(now)
}

// publishTopics returns publisher i's topics: one per {j} value.
func publishTopics(pubTopic func(i, j int) string, i, n int) []string {
	t := make([]string, n)
	for j := range t {
		t[j] = pubTopic(i, j)
	}
	return t
}

func benchTraffic(ctx context.Context, c benchConfig, addr string, v byte) (benchResult, error) {
	pubTopic, subFilter, fanout, err := c.plan()
	if err != nil {
		return benchResult{}, err
	}
	var errs atomic.Int64
	quietLog := slog.New(slog.DiscardHandler)
	subAddr := addr
	if c.subAddr != "" {
		subAddr = c.subAddr
	}
	subs := make([]*subscriberState, c.subs)
	var subClients []*client.Client
	var persistentIDs []string
	defer func() {
		for _, sc := range subClients {
			sc.Disconnect(context.Background(), 0)
		}
		// End the persistent sessions: a clean start discards them.
		for _, id := range persistentIDs {
			if cl, err := c.dial(context.Background(), client.Options{Addr: subAddr, Version: v, CleanStart: true, ClientID: id, Logger: quietLog}); err == nil {
				cl.Disconnect(context.Background(), 0)
			}
		}
	}()
	// Subscribers connect and subscribe before any publisher starts.
	connectStart := time.Now()
	for k := range c.subs {
		st := &subscriberState{lastSeq: make([]int64, c.pubs)}
		for i := range st.lastSeq {
			st.lastSeq[i] = -1
		}
		subs[k] = st
		opts := client.Options{Addr: subAddr, Version: v, CleanStart: true, ClientID: fmt.Sprintf("bench-sub-%d-%d", os.Getpid(), k),
			Logger: quietLog, ReuseMessages: true, OnMessage: func(p *mqtt.Publish) {
				if isProbe(p.Payload) {
					st.probed.Store(true)
					return
				}
				st.record(p.Payload)
			}}
		if c.persistent {
			opts.CleanStart, opts.SessionExpiry = false, 300
			persistentIDs = append(persistentIDs, opts.ClientID)
		}
		cl, err := c.dial(ctx, opts)
		if err != nil {
			return benchResult{}, fmt.Errorf("subscriber %d: %w", k, err)
		}
		subClients = append(subClients, cl)
		if _, err := cl.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: subFilter(k), QoS: byte(c.qos)}); err != nil {
			return benchResult{}, fmt.Errorf("subscriber %d: %w", k, err)
		}
	}
	subscribed := time.Now()
	pubClients := make([]*client.Client, c.pubs)
	defer func() {
		for _, pc := range pubClients {
			if pc != nil {
				pc.Disconnect(context.Background(), 0)
			}
		}
	}()
	for i := range c.pubs {
		cl, err := c.dial(ctx, client.Options{Addr: addr, Version: v, CleanStart: true, Logger: quietLog,
			MaxInflight: c.inflight, ClientID: fmt.Sprintf("bench-pub-%d-%d", os.Getpid(), i)})
		if err != nil {
			return benchResult{}, fmt.Errorf("publisher %d: %w", i, err)
		}
		pubClients[i] = cl
	}
	connectTime := time.Since(connectStart)
	var propagate time.Duration
	if c.subAddr != "" && c.subs > 0 {
		if err := awaitRoutes(ctx, c, pubClients, pubTopic, subFilter, subs); err != nil {
			return benchResult{}, err
		}
		propagate = time.Since(subscribed)
	}

	var sent atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if c.count == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(runCtx, c.duration)
		defer cancel()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, pc := range pubClients {
		topics := publishTopics(pubTopic, i, max(c.topics, 1))
		wg.Go(func() {
			// window bounds this publisher's unacknowledged messages below
			// the client's own limit, the server's Receive Maximum.
			window := make(chan struct{}, max(c.inflight, 1))
			acked := func(err error) {
				if err != nil {
					errs.Add(1)
				}
				<-window
			}
			payload := make([]byte, c.size)
			binary.BigEndian.PutUint32(payload[8:], uint32(i))
			var interval time.Duration
			if c.rate > 0 {
				interval = time.Duration(float64(time.Second) / c.rate)
			}
			var timer *time.Timer
			next := time.Now()
			p := &mqtt.Publish{QoS: byte(c.qos), Payload: payload}
			for j := 0; c.count == 0 || j < c.count; j++ {
				if runCtx.Err() != nil {
					break
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						if timer == nil {
							timer = time.NewTimer(d)
						} else {
							timer.Reset(d)
						}
						select {
						case <-timer.C:
						case <-runCtx.Done():
						}
					}
					next = next.Add(interval)
				}
				binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				binary.BigEndian.PutUint32(payload[12:], uint32(j))
				p.Topic = topics[j%len(topics)]
				if c.qos == 0 {
					pc.PublishAsync(p, nil)
					select {
					case <-pc.Done():
						errs.Add(1)
						return
					default:
					}
				} else {
					window <- struct{}{}
					pc.PublishAsync(p, acked)
				}
				sent.Add(1)
			}
			if c.qos == 0 {
				return
			}
			// Wait for the last acknowledgements.
			deadline := time.NewTimer(c.grace + 5*time.Second)
			defer deadline.Stop()
			for range cap(window) {
				select {
				case window <- struct{}{}:
				case <-deadline.C:
					errs.Add(1)
					return
				}
			}
		})
	}
	received := func() int64 {
		var n int64
		for _, s := range subs {
			n += s.received.Load()
		}
		return n
	}
	progressDone := make(chan struct{})
	progressStopped := make(chan struct{})
	go func() {
		defer close(progressStopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastS, lastR int64
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				s, r := sent.Load(), received()
				if !c.quiet {
					fmt.Fprintf(os.Stderr, "%4.0fs  sent %9d msgs/s  received %9d msgs/s\n", time.Since(start).Seconds(), s-lastS, r-lastR)
				}
				lastS, lastR = s, r
			}
		}
	}()
	// Publishers that flood a broker faster than it reads stay blocked in
	// their writes after the end; past the grace period their connections
	// are closed, and what they had not yet written counts as lost.
	pubsDone := make(chan struct{})
	go func() { wg.Wait(); close(pubsDone) }()
	stalled := false
	if c.count == 0 {
		select {
		case <-pubsDone:
		case <-time.After(c.duration + c.grace):
			stalled = true
			for _, pc := range pubClients {
				pc.Close()
			}
			<-pubsDone
		}
	} else {
		<-pubsDone
	}
	pubElapsed := time.Since(start)
	expected := int64(-1)
	if fanout > 0 {
		expected = sent.Load() * int64(fanout)
	}
	// Wait for stragglers: until everything expected arrived, at most
	// -grace.
	graceEnd := time.Now().Add(c.grace)
	for (expected < 0 || received() < expected) && time.Now().Before(graceEnd) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	close(progressDone)
	<-progressStopped

	res := benchResult{Pattern: c.pattern, Publishers: c.pubs, Subscribers: c.subs, QoS: c.qos, Size: c.size,
		Seconds: pubElapsed.Seconds(), Sent: sent.Load(), Expected: expected, Errors: errs.Load(),
		ConnectSeconds: connectTime.Seconds(), PropagateSecs: propagate.Seconds(), Stalled: stalled}
	res.SentPerSec = float64(res.Sent) / pubElapsed.Seconds()
	var h histogram
	var lastMsg int64
	for _, s := range subs {
		s.mu.Lock()
		h.merge(&s.hist)
		res.Duplicates += s.dups
		res.OutOfOrder += s.ooo
		res.Received += s.received.Load()
		s.mu.Unlock()
		lastMsg = max(lastMsg, s.last.Load())
	}
	// Received messages per second over the time from the start to the
	// last message, but at least the publishing time.
	recvElapsed := max(time.Unix(0, lastMsg).Sub(start), pubElapsed)
	res.ReceivedPerSec = float64(res.Received) / recvElapsed.Seconds()
	if expected >= 0 {
		res.Lost = max(expected-(res.Received-res.Duplicates), 0)
	}
	res.LatencyP50us = h.quantile(0.50) / 1e3
	res.LatencyP90us = h.quantile(0.90) / 1e3
	res.LatencyP99us = h.quantile(0.99) / 1e3
	res.LatencyMaxus = float64(h.max) / 1e3
	return res, nil
}

// rss reads a process's resident set size in bytes from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS line")
}

// benchIdle opens c.connections idle connections and reports the connect
// rate and, with -pid, the broker's memory per connection.
func benchIdle(ctx context.Context, c benchConfig, addr string, v byte) (benchResult, error) {
	var before int64
	if c.pid > 0 {
		var err error
		if before, err = rss(c.pid); err != nil {
			return benchResult{}, fmt.Errorf("broker memory: %w", err)
		}
	}
	var mu sync.Mutex
	conns := make([]*client.Client, 0, c.connections)
	var errs atomic.Int64
	var firstErr atomic.Pointer[error] // errors of any type (atomic.Value panics on a second type)
	sem := make(chan struct{}, max(c.connectParallel, 1))
	var wg sync.WaitGroup
	start := time.Now()
	for k := range c.connections {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cl, err := c.dial(ctx, client.Options{Addr: addr, Version: v, CleanStart: true, KeepAlive: 300 * time.Second, Logger: slog.New(slog.DiscardHandler),
				ClientID: fmt.Sprintf("idle-%d-%d", os.Getpid(), k), ReadBufferSize: 256, WriteBufferSize: 256})
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			mu.Lock()
			conns = append(conns, cl)
			mu.Unlock()
		})
		if !c.quiet && (k+1)%1000 == 0 {
			fmt.Fprintf(os.Stderr, "%d connections\n", k+1)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := benchResult{Pattern: "idle", Connections: len(conns), Seconds: elapsed.Seconds(), Errors: errs.Load()}
	res.ConnectPerSec = float64(len(conns)) / elapsed.Seconds()
	select {
	case <-time.After(c.hold):
	case <-ctx.Done():
	}
	if c.pid > 0 && len(conns) > 0 {
		after, err := rss(c.pid)
		if err == nil {
			res.RSSPerConnBytes = float64(after-before) / float64(len(conns))
		}
	}
	for _, cl := range conns {
		cl.Close()
	}
	if e := firstErr.Load(); e != nil && !c.quiet {
		fmt.Fprintf(os.Stderr, "first connection error: %v\n", *e)
	}
	return res, nil
}

// subscriberAddress sets c.subAddr from --sub-url, --sub-h and --sub-p:
// the node the subscribers connect to, when it is not pubAddr, the
// publishers' node.
func (c *benchConfig) subscriberAddress(pubAddr string) error {
	if c.subURL == "" && c.subHost == "" && c.subPort == 0 {
		return nil
	}
	if c.backlog > 0 || c.drain > 0 || c.connections > 0 {
		return errors.New("-sub-url, -sub-h and -sub-p are for traffic runs, not for backlog, drain or idle connection mode")
	}
	host, port := c.subHost, c.subPort
	if host == "" {
		host = c.host
	}
	if port == 0 {
		port = c.port
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if c.tls.enabled() {
		addr = "mqtts://" + addr
	}
	if c.subURL != "" {
		u, err := url.Parse(c.subURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-sub-url %q: want mqtt://host:port or ws://host:port/mqtt", c.subURL)
		}
		addr, host = c.subURL, u.Hostname()
	}
	if c.tlsConfig != nil {
		c.subTLSConfig = c.tlsConfig.Clone()
		c.subTLSConfig.ServerName = host
	}
	if addr != pubAddr {
		c.subAddr = addr
	}
	return nil
}

// probePayload marks the messages that check, before a run, that the
// subscriptions have reached the publishers' node. It is shorter than a
// benchmark payload, so subscribers never count it as one.
var probePayload = []byte("citymesh-probe")

func isProbe(payload []byte) bool { return string(payload) == string(probePayload) }

// awaitRoutes publishes probes until every subscriber that a publisher's
// topic reaches has received one. With subscribers on another node of an
// event mesh, a subscription takes effect at the publishers' node only once
// its interest has crossed the links between them; publishing before that
// would measure messages that nobody beyond the first node wanted yet.
// Subscriber k is probed on the first publisher topic its filter matches,
// through that topic's publisher (QoS 0, each distinct topic once a
// millisecond while someone still waits for it); subscribers that no
// publisher topic reaches are not waited for. It fails after c.subWait.
func awaitRoutes(ctx context.Context, c benchConfig, pubs []*client.Client, pubTopic func(i, j int) string,
	subFilter func(k int) string, subs []*subscriberState) error {
	type route struct {
		pub   int
		topic string
	}
	routes := make([]route, len(subs))
	n := max(c.topics, 1)
	for k := range subs {
		routes[k].pub = -1
		f := subFilter(k)
		if _, inner, shared := topic.ParseShared(f); shared {
			f = inner
		}
	search:
		for d := range len(pubs) { // publisher k first: the pairs pattern's
			i := (k + d) % len(pubs)
			for j := range n {
				if t := pubTopic(i, j); topic.Match(f, t) {
					routes[k] = route{i, t}
					break search
				}
			}
		}
	}
	deadline := time.NewTimer(c.subWait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	p := &mqtt.Publish{Payload: probePayload}
	for {
		sent := make(map[route]bool)
		waiting := 0
		for k, r := range routes {
			if r.pub < 0 || subs[k].probed.Load() {
				continue
			}
			waiting++
			if !sent[r] {
				sent[r] = true
				p.Topic = r.topic
				pubs[r.pub].PublishAsync(p, nil)
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%d of %d subscriptions did not reach the publishers' node within -sub-wait %s (is it linked to the subscribers' node?)",
				waiting, len(subs), c.subWait)
		}
	}
}

// dial connects a bench client with the run's TLS settings and credentials.
func (c *benchConfig) dial(ctx context.Context, o client.Options) (*client.Client, error) {
	o.TLSConfig = c.tlsConfig
	if c.subAddr != "" && o.Addr == c.subAddr {
		o.TLSConfig = c.subTLSConfig
	}
	if c.user != "" {
		o.Username = c.user
	}
	if c.pass != "" {
		o.Password = []byte(c.pass)
	}
	return client.Dial(ctx, o)
}
