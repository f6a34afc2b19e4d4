package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// TestPingAnswersInOrder: each Ping is answered by the PINGRESP of its own
// PINGREQ, not by one for an earlier PINGREQ.
func TestPingAnswersInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, accept := fakeServer(t)
	res := dialAsync(ctx, client.Options{Addr: addr, Version: mqtt.V311, KeepAlive: -1})
	f := accept()
	f.handshake(&mqtt.Connack{})
	c := (<-res).must(t)

	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- c.Ping(ctx) }()
	if _, ok := f.read().(*mqtt.Pingreq); !ok {
		t.Fatal("want the first PINGREQ")
	}
	go func() { second <- c.Ping(ctx) }()
	if _, ok := f.read().(*mqtt.Pingreq); !ok {
		t.Fatal("want the second PINGREQ")
	}
	f.write(&mqtt.Pingresp{})
	if err := <-first; err != nil {
		t.Fatalf("first Ping: %v", err)
	}
	select {
	case err := <-second:
		t.Fatalf("second Ping returned (%v) on the first PINGREQ's answer", err)
	case <-time.After(100 * time.Millisecond):
	}
	f.write(&mqtt.Pingresp{})
	if err := <-second; err != nil {
		t.Fatalf("second Ping: %v", err)
	}

	// A server that closes the connection instead of answering.
	go func() { first <- c.Ping(ctx) }()
	f.read()
	f.nc.Close()
	if err := <-first; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Ping on a closed connection: %v, want ErrClosed", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Ping after the end: %v, want ErrClosed", err)
	}
}

// TestPingAfterRefusedPublish: a QoS 0 publish that the real broker refuses
// by closing the connection makes the next Ping fail, so a caller can tell
// the message was lost.
func TestPingAfterRefusedPublish(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler), MaxPacketSize: 1024})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	go b.Serve(sctx, ln)
	t.Cleanup(func() { stop(); b.Close() })
	addr := ln.Addr().String()

	tests := []struct {
		name    string
		version byte
		p       mqtt.Publish
		code    mqtt.ReasonCode // of the server's DISCONNECT; 0 when it just closes
	}{
		{"fine", mqtt.V5, mqtt.Publish{Topic: "ok/1", Payload: []byte("x")}, 0},
		{"wildcard in the topic, 5.0", mqtt.V5, mqtt.Publish{Topic: "bad/#", Payload: []byte("x")}, mqtt.TopicNameInvalid},
		{"wildcard in the topic, 3.1.1", mqtt.V311, mqtt.Publish{Topic: "bad/+", Payload: []byte("x")}, 0},
		{"over the maximum packet size, 3.1.1", mqtt.V311, mqtt.Publish{Topic: "big", Payload: bytes.Repeat([]byte("x"), 2000)}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, client.Options{Addr: addr, Version: tc.version, CleanStart: true, ClientID: "ping-test"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Publish(ctx, &tc.p); err != nil {
				t.Fatalf("QoS 0 publish: %v (it is only buffered)", err)
			}
			err = c.Ping(ctx)
			if tc.name == "fine" {
				if err != nil {
					t.Fatalf("Ping: %v", err)
				}
				return
			}
			if !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Ping after a refused publish: %v, want ErrClosed", err)
			}
			var se *client.ServerError
			if tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code) {
				t.Fatalf("Ping: %v, want the server's DISCONNECT %#x", err, byte(tc.code))
			}
		})
	}
}

// TestDialTLSPortWithoutTLS: a plain client on the real broker's TLS
// listener is told the server closed the connection before CONNACK.
func TestDialTLSPortWithoutTLS(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, pool := selfSigned(t)
	sctx, stop := context.WithCancel(context.Background())
	go b.Serve(sctx, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { stop(); b.Close() })
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = client.Dial(ctx, client.Options{Addr: addr})
	if !errors.Is(err, client.ErrNoConnack) {
		t.Fatalf("plain client on a TLS port: %v, want ErrNoConnack", err)
	}
	c, err := client.Dial(ctx, client.Options{Addr: "mqtts://" + addr, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping over TLS: %v", err)
	}
	c.Disconnect(ctx, mqtt.NormalDisconnection)
}

// selfSigned returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
