package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// TestParkingSurvivesDescriptorReuse churns connections the way a fleet of
// reconnecting clients does: each client connects, disconnects and at once
// connects again with the same identifier (a takeover when the broker has not
// seen the first one leave), then subscribes. Sockets close and their
// descriptor numbers go to new connections while others park and wake; every
// SUBSCRIBE must still be answered. (A connection that parked under a number
// another connection had just given up was once lost to the poller.)
func TestParkingSurvivesDescriptorReuse(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	const clients, workers = 6000, 64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	quiet := slog.New(slog.DiscardHandler)
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= clients || ctx.Err() != nil {
					return
				}
				id := fmt.Sprint("churn-", k)
				o := client.Options{Addr: addr, Version: mqtt.V5, ClientID: id, CleanStart: true, SessionExpiry: 600, KeepAlive: 300 * time.Second, Logger: quiet}
				cl, err := client.Dial(ctx, o)
				if err != nil {
					failed.Store(fmt.Errorf("%s: first connect: %w", id, err))
					cancel()
					return
				}
				cl.Disconnect(ctx, 0)
				o.CleanStart = false
				if cl, err = client.Dial(ctx, o); err != nil {
					failed.Store(fmt.Errorf("%s: second connect: %w", id, err))
					cancel()
					return
				}
				sctx, stop := context.WithTimeout(ctx, 5*time.Second)
				_, err = cl.Subscribe(sctx, mqtt.Properties{}, mqtt.Subscription{Filter: "churn/" + id, QoS: 1})
				stop()
				cl.Disconnect(ctx, 0)
				if err != nil {
					failed.Store(fmt.Errorf("%s: SUBSCRIBE not answered: %w", id, err))
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatal(err)
	}
}
