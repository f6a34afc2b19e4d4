package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

func init() {
	register("sub", "subscribe and print messages, with the flags of mosquitto_sub", func(ctx context.Context, args []string) error {
		return exitStatus("sub", runSub(ctx, args, os.Stdout, os.Stderr))
	})
}

// topicList is a repeatable -t flag.
type topicList []string

func (t *topicList) String() string     { return strings.Join(*t, ",") }
func (t *topicList) Set(s string) error { *t = append(*t, s); return nil }

// runSub is citymesh sub: connect, subscribe, print one line per message
// until -C messages arrived, -W seconds passed, or ctx ends.
func runSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	args, props, err := extractProps(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := connFlags{props: props}
	cf.register(fs)
	var topics, unsub topicList
	fs.Var(&topics, "t", "`topic` filter to subscribe to (repeatable)")
	fs.Var(&unsub, "U", "`topic` filter to unsubscribe from before subscribing (repeatable)")
	count := fs.Int("C", 0, "exit after `N` messages")
	timeout := fs.Int("W", 0, "exit with status 27 after `seconds` unless -C messages arrived first")
	verbose := fs.Bool("v", false, "print the topic, a space, then the payload")
	noEOL := fs.Bool("N", false, "do not add an end of line after each payload")
	noRetained := fs.Bool("R", false, "do not print retained messages (stale ones from before the subscription)")
	retainedOnly := fs.Bool("retained-only", false, "print only retained messages, and exit at the first live one")
	exitAfterSub := fs.Bool("E", false, "exit once the subscriptions are acknowledged")
	noLocal := fs.Bool("nl", false, "no local: do not receive this client's own publishes (MQTT 5)")
	rap := fs.Bool("rap", false, "retain as published (MQTT 5)")
	var rh int
	fs.IntVar(&rh, "rh", 0, "retain `handling` (MQTT 5): 0 always send retained, 1 only for new subscriptions, 2 never")
	fs.IntVar(&rh, "retain-handling", 0, "same as -rh")
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
	if urlTopic != "" {
		topics = append(topics, urlTopic)
	}
	if len(topics) == 0 && len(unsub) == 0 {
		return errors.New("a topic is needed: -t topic")
	}
	if err := checkFilters("-t", topics); err != nil {
		return err
	}
	if err := checkFilters("-U", unsub); err != nil {
		return err
	}
	if rh < 0 || rh > 2 {
		return fmt.Errorf("-rh %d: must be 0, 1 or 2", rh)
	}
	if opts.Version >= mqtt.V5 {
		opts.UserProperties = cf.userProps
	}

	// OnMessage runs on the client's read goroutine and flushes each line, so
	// nothing else touches out.
	out := bufio.NewWriter(stdout)
	finished := make(chan struct{}) // -C reached, or --retained-only saw a live message
	received, stopped := 0, false
	opts.ReuseMessages = true // printed and forgotten
	opts.OnMessage = func(p *mqtt.Publish) {
		if stopped || (*noRetained && p.Retain) {
			return
		}
		if *retainedOnly && !p.Retain {
			stopped = true
			close(finished)
			return
		}
		if *verbose {
			out.WriteString(p.Topic)
			out.WriteByte(' ')
		}
		out.Write(p.Payload)
		if !*noEOL {
			out.WriteByte('\n')
		}
		out.Flush()
		received++
		if *count > 0 && received == *count {
			stopped = true
			close(finished)
		}
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		return connectError(err, opts)
	}
	cf.debugf(stderr, "connected to %s as %q (MQTT level %d, session present %v)", opts.Addr, c.ClientID(), opts.Version, c.Server().SessionPresent)
	defer c.Disconnect(context.Background(), mqtt.NormalDisconnection)
	// The timeout starts once connected, as in mosquitto_sub.
	var expired <-chan time.Time
	if *timeout > 0 {
		t := time.NewTimer(time.Duration(*timeout) * time.Second)
		defer t.Stop()
		expired = t.C
	}
	if len(unsub) > 0 {
		if _, err := c.Unsubscribe(ctx, unsub...); err != nil {
			return err
		}
		cf.debugf(stderr, "unsubscribed from %s", strings.Join(unsub, ", "))
	}
	if len(topics) > 0 {
		subs := make([]mqtt.Subscription, len(topics))
		for i, t := range topics {
			subs[i] = mqtt.Subscription{Filter: t, QoS: byte(cf.qos), NoLocal: *noLocal, RetainAsPublished: *rap, RetainHandling: byte(rh)}
		}
		var sp mqtt.Properties
		if opts.Version >= mqtt.V5 {
			sp = props.merged("subscribe")
		}
		ack, err := c.Subscribe(ctx, sp, subs...)
		if err != nil {
			var se *client.ServerError
			if errors.As(err, &se) {
				return fmt.Errorf("all subscription requests were denied: %w", err)
			}
			return err
		}
		for i, code := range ack.ReasonCodes {
			if i >= len(topics) {
				break
			}
			if code.IsError() {
				fmt.Fprintf(stderr, "subscription to %s denied: %s (0x%02X)\n", topics[i], code, byte(code))
				continue
			}
			cf.debugf(stderr, "subscribed to %s, granted qos %d", topics[i], code)
		}
	}
	if *exitAfterSub {
		return nil
	}
	select {
	case <-finished:
		return nil
	case <-c.Done():
		return fmt.Errorf("connection lost: %w", c.Err())
	case <-expired:
		return &exitError{code: exitTimeout, err: fmt.Errorf("timed out after %d s", *timeout)}
	case <-ctx.Done():
		return nil
	}
}
