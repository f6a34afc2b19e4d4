package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// Backlog mode builds and drains a backlog of queued messages in persistent
// sessions, to measure what a durable broker does with it: how fast it
// stores it, how long a restart with it takes, and how fast it drains.
//
//	citymesh bench --backlog 10000 --backlog-messages 100   # fill: 10,000 offline sessions, 100 messages each
//	citymesh bench --drain 10000 --backlog-messages 100     # drain: the sessions return and take their messages
//
// Session k has client identifier backlog-k and subscribes to
// bench/backlog/k at QoS 1; message j of session k carries k and j, so the
// drain finds lost, duplicated and reordered messages per session.

// backlogClientID is the client identifier of backlog session k.
func backlogClientID(k int) string { return "backlog-" + strconv.Itoa(k) }

func backlogTopic(k int) string { return "bench/backlog/" + strconv.Itoa(k) }

// forEachParallel runs fn(k) for k in [0, n) on up to par goroutines and
// returns the first error.
func forEachParallel(ctx context.Context, n, par int, fn func(k int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(par, 1) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n || ctx.Err() != nil {
					return
				}
				if err := fn(k); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// backlogOptions returns the options of backlog session k: resumed and kept
// for a day, or with clean set started anew and ended when it disconnects.
func (c *benchConfig) backlogOptions(addr string, v byte, k int, clean bool) client.Options {
	o := client.Options{Addr: addr, Version: v, ClientID: backlogClientID(k), CleanStart: clean, SessionExpiry: 86400,
		KeepAlive: 300 * time.Second, Logger: slog.New(slog.DiscardHandler), ReadBufferSize: 4 << 10, WriteBufferSize: 4 << 10}
	if clean {
		o.SessionExpiry = 0
	}
	return o
}

// benchBacklogFill creates c.backlog offline persistent sessions and queues
// c.backlogMessages QoS 1 messages for each.
func benchBacklogFill(ctx context.Context, c benchConfig, addr string, v byte) (benchResult, error) {
	res := benchResult{Pattern: "backlog", Subscribers: c.backlog, Publishers: c.pubs, QoS: 1, Size: c.size, Expected: -1}
	start := time.Now()
	err := forEachParallel(ctx, c.backlog, c.connectParallel, func(k int) error {
		// Clean Start 0 from the first connection: some brokers (Mosquitto
		// 2.0) do not restore after a restart a session that began with a
		// clean start. A session left by an interrupted run keeps its
		// messages; --drain empties and ends them.
		cl, err := c.dial(ctx, c.backlogOptions(addr, v, k, false))
		if err != nil {
			return fmt.Errorf("session %d: %w", k, err)
		}
		defer cl.Disconnect(ctx, 0)
		if _, err := cl.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: backlogTopic(k), QoS: 1}); err != nil {
			return fmt.Errorf("session %d: subscribe: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	// Publishers take the sessions in turn; each pipelines its messages.
	start = time.Now()
	var sent, errs atomic.Int64
	err = forEachParallel(ctx, c.pubs, c.pubs, func(i int) error {
		cl, err := c.dial(ctx, client.Options{Addr: addr, Version: v, CleanStart: true, ClientID: fmt.Sprintf("backlog-pub-%d", i),
			MaxInflight: c.inflight, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		defer cl.Disconnect(context.Background(), 0)
		window := make(chan struct{}, max(c.inflight, 1))
		payload := make([]byte, c.size)
		p := &mqtt.Publish{QoS: 1, Payload: payload}
		for j := range c.backlogMessages {
			for k := i; k < c.backlog; k += c.pubs {
				binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				binary.BigEndian.PutUint32(payload[8:], uint32(k))
				binary.BigEndian.PutUint32(payload[12:], uint32(j))
				p.Topic = backlogTopic(k)
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				cl.PublishAsync(p, func(err error) {
					if err != nil {
						errs.Add(1)
					} else {
						sent.Add(1)
					}
					<-window
				})
			}
		}
		for range cap(window) { // wait for the last acknowledgements
			window <- struct{}{}
		}
		return nil
	})
	res.Seconds = time.Since(start).Seconds()
	res.Sent, res.Errors = sent.Load(), errs.Load()
	res.SentPerSec = float64(res.Sent) / res.Seconds
	return res, err
}

// backlogSession counts what one draining session received.
type backlogSession struct {
	received atomic.Int64
	next     int64 // the next message index expected
	dups     int64
	ooo      int64
}

// benchBacklogDrain reconnects c.drain backlog sessions and takes their
// messages until each has c.backlogMessages, or none arrives for -grace.
// The sessions end afterwards.
func benchBacklogDrain(ctx context.Context, c benchConfig, addr string, v byte) (benchResult, error) {
	n := c.drain
	res := benchResult{Pattern: "drain", Subscribers: n, QoS: 1, Size: c.size, Expected: int64(n) * int64(c.backlogMessages)}
	sessions := make([]backlogSession, n)
	clients := make([]*client.Client, n)
	var total atomic.Int64
	var lastAt atomic.Int64
	start := time.Now()
	err := forEachParallel(ctx, n, c.connectParallel, func(k int) error {
		st := &sessions[k]
		opts := c.backlogOptions(addr, v, k, false)
		opts.ReuseMessages = true
		opts.OnMessage = func(p *mqtt.Publish) {
			if len(p.Payload) >= 16 {
				switch j := int64(binary.BigEndian.Uint32(p.Payload[12:])); {
				case j == st.next:
					st.next++
				case j < st.next:
					st.dups++
				default:
					st.ooo++
					st.next = j + 1
				}
			}
			st.received.Add(1)
			total.Add(1)
			lastAt.Store(time.Now().UnixNano())
		}
		cl, err := c.dial(ctx, opts)
		if err != nil {
			return fmt.Errorf("session %d: %w", k, err)
		}
		if !cl.Server().SessionPresent {
			cl.Disconnect(ctx, 0)
			return fmt.Errorf("session %d (%s): no session on the broker; fill it first with --backlog", k, backlogClientID(k))
		}
		clients[k] = cl
		return nil
	})
	defer func() {
		for k, cl := range clients {
			if cl != nil {
				cl.Disconnect(context.Background(), 0)
				// End the session: a clean start discards it.
				if cl, err := c.dial(context.Background(), c.backlogOptions(addr, v, k, true)); err == nil {
					cl.Disconnect(context.Background(), 0)
				}
			}
		}
	}()
	if err != nil {
		return res, err
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	lastAt.Store(time.Now().UnixNano())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for total.Load() < res.Expected {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		if time.Since(time.Unix(0, lastAt.Load())) > c.grace {
			break
		}
	}
	end := time.Unix(0, lastAt.Load())
	res.Seconds = end.Sub(start).Seconds()
	res.Received = total.Load()
	res.ReceivedPerSec = float64(res.Received) / res.Seconds
	for k := range sessions {
		st := &sessions[k]
		res.Duplicates += st.dups
		res.OutOfOrder += st.ooo
		if got := min(st.next, int64(c.backlogMessages)); got < int64(c.backlogMessages) {
			res.Lost += int64(c.backlogMessages) - got
		}
	}
	return res, nil
}
