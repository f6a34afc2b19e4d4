package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

func TestWebSocketListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	srv := httptest.NewServer(wsHandler(ctx, b, slog.New(slog.DiscardHandler), "ws"))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/mqtt"
	got := make(chan string, 1)
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		sub, err := client.Dial(ctx, client.Options{Addr: url, Version: v, CleanStart: true,
			OnMessage: func(p *mqtt.Publish) { got <- string(p.Payload) }})
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "ws/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		pub, err := client.Dial(ctx, client.Options{Addr: url, Version: v, CleanStart: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, &mqtt.Publish{Topic: "ws/a", QoS: 1, Payload: []byte("over websocket")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "over websocket" {
				t.Fatalf("got %q", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no message over WebSocket")
		}
		sub.Disconnect(ctx, 0)
		pub.Disconnect(ctx, 0)
	}
}

func TestHTTPHealthAndMetrics(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	srv := httptest.NewServer(httpHandler(b, nil))
	defer srv.Close()
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "citymesh_messages_dropped_total{reason=\"queue_full\"}"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1883": true, "[::1]:1883": true, "localhost:1": true,
		"0.0.0.0:1883": false, ":1883": false, "10.0.0.1:1883": false, "bad": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestExtractProps(t *testing.T) {
	rest, props, err := extractProps([]string{"-t", "a", "-D", "publish", "user-property", "k", "v", "-D", "publish", "content-type", "text/plain", "-q", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rest, " ") != "-t a -q 1" {
		t.Fatalf("rest = %v", rest)
	}
	p := props.merged("publish")
	if len(p.User) != 1 || p.User[0].Key != "k" || p.ContentType != "text/plain" {
		t.Fatalf("props = %+v", p)
	}
	for _, bad := range [][]string{{"-D", "publish"}, {"-D", "publish", "user-property", "k"}, {"-D", "publish", "nonsense", "x"}} {
		if _, _, err := extractProps(bad); err == nil {
			t.Errorf("extractProps(%v) accepted bad input", bad)
		}
	}
}
