package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// source is a connection to a network server's MQTT server (or to the
// broker ChirpStack publishes to) that stays up: it connects, subscribes,
// hands every message to onMessage, and after the connection ends it
// connects again, waiting longer after each failure (ReconnectMin doubling
// up to ReconnectMax, with jitter). The Things Stack speaks MQTT 3.1.1
// only, so every source does.
type source struct {
	name    string
	opts    client.Options // Addr, TLSConfig, ClientID, credentials, CleanStart
	subs    []mqtt.Subscription
	min     time.Duration
	max     time.Duration
	log     *slog.Logger
	handler func(p *mqtt.Publish) // on the client's read goroutine

	connected atomic.Bool
	connects  atomic.Uint64
	failures  atomic.Uint64
	// lastErrMsg is the last connection error logged; run's goroutine
	// only.
	lastErrMsg string

	mu  sync.Mutex
	cur *client.Client // the connection up now, nil when down
}

// run keeps the source connected until ctx ends.
func (s *source) run(ctx context.Context) {
	attempt := 0
	for {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		attempt++
		if err != nil {
			s.failures.Add(1)
			msg := err.Error()
			// A server that refuses every attempt the same way is logged at
			// its first refusal and then at warn only every tenth.
			if msg != s.lastErrMsg || attempt%10 == 1 {
				s.log.Warn("connector: connection failed", "connector", s.name, "server", s.opts.Addr, "attempt", attempt, "err", err)
			}
			s.lastErrMsg = msg
		}
		d := s.backoff(attempt)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait before attempt (1, 2, ...): min doubled attempt-1
// times, at most max, the upper half of it chosen at random.
func (s *source) backoff(attempt int) time.Duration {
	d := s.min
	for i := 1; i < attempt && d < s.max; i++ {
		d *= 2
	}
	d = min(d, s.max)
	return d/2 + rand.N(d/2+1)
}

// session connects, subscribes and waits until the connection ends or ctx
// does. It returns nil when a connection that was up ended.
func (s *source) session(ctx context.Context) error {
	opts := s.opts
	opts.OnMessage = s.handler
	c, err := client.Dial(ctx, opts)
	if err != nil {
		return err
	}
	subctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ack, err := c.Subscribe(subctx, mqtt.Properties{}, s.subs...)
	cancel()
	if err == nil {
		for i, rc := range ack.ReasonCodes {
			if rc.IsError() && i < len(s.subs) {
				err = fmt.Errorf("subscription to %s refused (%s)", s.subs[i].Filter, rc)
				break
			}
		}
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("subscribe: %w", err)
	}
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	s.connected.Store(true)
	s.connects.Add(1)
	s.lastErrMsg = ""
	s.log.Info("connector: connected", "connector", s.name, "server", s.opts.Addr, "subscriptions", len(s.subs))
	defer func() {
		s.connected.Store(false)
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
	}()
	select {
	case <-c.Done():
		err := c.Err()
		c.Close()
		s.log.Warn("connector: connection lost", "connector", s.name, "server", s.opts.Addr, "err", err)
		return nil
	case <-ctx.Done():
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c.Disconnect(dctx, 0)
		cancel()
		c.Close()
		return nil
	}
}

// errNotConnected is a downlink's error while the source is down.
var errNotConnected = errors.New("not connected to the network server")

// publish sends a message to the server over the connection that is up
// now.
func (s *source) publish(ctx context.Context, p *mqtt.Publish) error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return errNotConnected
	}
	return c.Publish(ctx, p)
}
