package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"

	"github.com/citymesh/citymesh/internal/testproc"
)

// TestConnectionFlood opens 10,000 connections at once against the real
// binary: half of them never send CONNECT (slowloris), half do, beyond the
// node's connection limit. Meanwhile a pair of clients keeps exchanging
// messages; they must keep flowing, the excess must be refused with CONNACK
// 0x97, the silent ones closed after the connect timeout, and the node must
// take new clients afterwards.
func TestConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	const flood = 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < flood+2000 {
		lim.Cur = min(lim.Max, flood+5000)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < flood+2000 {
		t.Skipf("open file limit %d is below %d; raise it (ulimit -n) to run the flood", lim.Cur, flood+2000)
	}
	dir := t.TempDir()
	addr := freePort(t)
	cfg := fmt.Sprintf("mqtt: %s\nws: \"off\"\nhttp: \"off\"\ndata: %s\nstore: memory\nlimits:\n  max_connections: 4000\n  connect_timeout: 2s\n", addr, dir)
	cfgFile := filepath.Join(dir, "citymesh.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	cmd := exec.Command(testproc.Binary(t), "serve", "--config", cfgFile, "--log", "error")
	var out testproc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUntil(t, "the node", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The healthy pair: one message every 10 ms; the largest gap between
	// arrivals is what the flood cost them.
	var lastArrival atomic.Int64
	var maxGap atomic.Int64
	sub, err := client.Dial(ctx, client.Options{Addr: addr, CleanStart: true, ClientID: "healthy-sub", OnMessage: func(*mqtt.Publish) {
		now := time.Now().UnixNano()
		if prev := lastArrival.Swap(now); prev != 0 && now-prev > maxGap.Load() {
			maxGap.Store(now - prev)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(ctx, 0)
	sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "healthy/#", QoS: 1})
	pub, err := client.Dial(ctx, client.Options{Addr: addr, CleanStart: true, ClientID: "healthy-pub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(ctx, 0)
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPub:
				return
			case <-tick.C:
				pub.PublishAsync(&mqtt.Publish{Topic: "healthy/x", QoS: 1, Payload: []byte("x")}, nil)
			}
		}
	}()

	// The flood.
	var conns []net.Conn
	var mu sync.Mutex
	var accepted, refused, dialErrs atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	connect, _ := (&mqtt.Connect{Version: mqtt.V5, CleanStart: true, ClientID: "", KeepAlive: 60}).AppendTo(nil, mqtt.V5)
	for range 200 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= flood || ctx.Err() != nil {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				if i%2 == 0 {
					continue // slowloris: never a CONNECT
				}
				c.Write(connect)
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				r := mqtt.NewReader(c, 64)
				r.Version = mqtt.V5
				pkt, err := r.ReadPacket()
				if ack, ok := pkt.(*mqtt.Connack); err == nil && ok {
					if ack.ReasonCode == 0 {
						accepted.Add(1)
					} else if ack.ReasonCode == mqtt.QuotaExceeded {
						refused.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	// The silent half is closed after the connect timeout.
	time.Sleep(3 * time.Second)
	closedByNode := 0
	mu.Lock()
	for i, c := range conns {
		if i >= 200 {
			break
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closedByNode++
		}
	}
	mu.Unlock()
	close(stopPub)
	<-pubDone
	t.Logf("%d connections in %v: %d accepted, %d refused with 0x97, %d dial errors; healthy pair's longest gap %v; %d of the first 200 closed by the node",
		flood, took.Round(time.Millisecond), accepted.Load(), refused.Load(), dialErrs.Load(), time.Duration(maxGap.Load()).Round(time.Millisecond), closedByNode)
	if accepted.Load()+refused.Load() < flood/2-int64(dialErrs.Load()) {
		t.Errorf("only %d of %d CONNECTs were answered", accepted.Load()+refused.Load(), flood/2)
	}
	if refused.Load() == 0 {
		t.Error("no connection was refused beyond the limit of 4,000")
	}
	if gap := time.Duration(maxGap.Load()); gap > 3*time.Second {
		t.Errorf("the healthy pair waited %v for a message during the flood", gap)
	}
	if closedByNode == 0 {
		t.Error("connections that never sent CONNECT were not closed")
	}
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	// The node takes new clients.
	waitUntil(t, "a new client after the flood", func() bool {
		c, err := client.Dial(ctx, client.Options{Addr: addr, CleanStart: true, ClientID: "after"})
		if err != nil {
			return false
		}
		c.Disconnect(ctx, 0)
		return true
	})
	if cmd.ProcessState != nil {
		t.Fatalf("the node exited: %s", out.String())
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
