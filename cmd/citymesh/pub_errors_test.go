package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
)

// serveBroker starts an in-process broker on ln and returns its host and
// port.
func serveBroker(t *testing.T, opts broker.Options, ln net.Listener, addr net.Addr) (host, port string) {
	t.Helper()
	opts.SysInterval, opts.Logger = -1, slog.New(slog.DiscardHandler)
	b := broker.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	go b.Serve(ctx, ln)
	t.Cleanup(func() { cancel(); b.Close() })
	host, port, _ = net.SplitHostPort(addr.String())
	return host, port
}

// exitCode is the exit status err gives the command: the code of an
// *exitError, 1 for another error, 0 for none.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case err != nil:
		return 1
	}
	return 0
}

// TestPubSubRefuseInvalidTopics: topics no server takes are refused before
// connecting, with exit status 1, as mosquitto_pub and mosquitto_sub do
// (nothing listens on the port: the check comes first).
func TestPubSubRefuseInvalidTopics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	conn := []string{"-h", "127.0.0.1", "-p", port}
	tests := []struct {
		cmd  string
		args []string
		want string
	}{
		{"pub", []string{"-t", "bad/#", "-m", "x"}, `invalid publish topic "bad/#": it contains a wildcard`},
		{"pub", []string{"-t", "a/+/b", "-m", "x", "-q", "1"}, "contains a wildcard"},
		{"pub", []string{"-L", "mqtt://127.0.0.1:" + port + "/city/#", "-m", "x"}, "contains a wildcard"},
		{"pub", []string{"-t", "a\x00b", "-m", "x"}, "invalid publish topic: topic: contains U+0000"},
		{"sub", []string{"-t", "a/#/b"}, "invalid topic filter for -t"},
		{"sub", []string{"-t", "ok/#", "-t", "x+"}, "invalid topic filter for -t"},
		{"sub", []string{"-t", "$share//a"}, "invalid shared subscription"},
		{"sub", []string{"-U", "a#", "-t", "ok"}, "invalid topic filter for -U"},
	}
	for _, tc := range tests {
		t.Run(tc.cmd+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			args := append(append([]string(nil), conn...), tc.args...)
			if tc.args[0] == "-L" {
				args = tc.args
			}
			if tc.cmd == "pub" {
				err = runPub(ctx, args, strings.NewReader(""), &out, &errOut)
			} else {
				err = runSub(ctx, args, &out, &errOut)
			}
			if exitCode(err) != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s %q: exit %d, %v; want exit 1 and %q", tc.cmd, args, exitCode(err), err, tc.want)
			}
		})
	}
}

// TestPubFailsWhenTheServerCloses: a QoS 0 message that the server refuses
// by closing the connection (here, one over its maximum packet size, which
// an MQTT 3.1.1 client is not told) fails the command instead of being
// lost with exit status 0.
func TestPubFailsWhenTheServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port := serveBroker(t, broker.Options{MaxPacketSize: 1024}, ln, ln.Addr())
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name string
		args []string
		want string // "" for success
	}{
		{"QoS 0 fits", []string{"-q", "0", "-m", "small"}, ""},
		{"QoS 0 too large, 3.1.1", []string{"-q", "0", "-m", big}, "the server did not confirm the messages"},
		{"QoS 0 too large, from stdin lines", []string{"-q", "0", "-l"}, "the server did not confirm the messages"},
		{"QoS 1 too large, 3.1.1", []string{"-q", "1", "-m", big}, "connection closed"},
		{"QoS 0 too large, 5.0", []string{"-q", "0", "-V", "5", "-m", big}, "Maximum Packet Size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			args := append([]string{"-h", host, "-p", port, "-t", "cli/closed"}, tc.args...)
			err := runPub(ctx, args, strings.NewReader("one\n"+big+"\nthree\n"), &out, &errOut)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("pub: %v", err)
				}
				return
			}
			if exitCode(err) == 0 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("pub: exit %d, %v; want a failure with %q", exitCode(err), err, tc.want)
			}
		})
	}
}

// TestPubSubHintAtTLS: a plain client on the broker's TLS listener is told
// to try TLS, and a TLS client on a plain listener to try without.
func TestPubSubHintAtTLS(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSignedFiles(t, dir)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, tlsPort := serveBroker(t, broker.Options{}, tls.NewListener(tln, &tls.Config{Certificates: []tls.Certificate{cert}}), tln.Addr())
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, plainPort := serveBroker(t, broker.Options{}, pln, pln.Addr())
	tests := []struct {
		name string
		cmd  string
		args []string
		want string // "" for success
	}{
		{"pub, plain on TLS", "pub", []string{"-p", tlsPort, "-t", "a", "-m", "x"}, "is this a TLS port? try mqtts://"},
		{"sub, plain on TLS", "sub", []string{"-p", tlsPort, "-t", "a", "-E"}, "--cafile"},
		{"pub, TLS", "pub", []string{"-p", tlsPort, "--cafile", caFile, "-t", "a", "-m", "x"}, ""},
		{"sub, TLS", "sub", []string{"-p", tlsPort, "--cafile", caFile, "-t", "a", "-E"}, ""},
		{"pub, -L mqtts", "pub", []string{"-L", "mqtts://" + host + ":" + tlsPort + "/a", "--cafile", caFile, "-m", "x"}, ""},
		{"pub, TLS on plain", "pub", []string{"-p", plainPort, "--cafile", caFile, "-t", "a", "-m", "x"}, "is this a plain MQTT port?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			args := append([]string{"-h", host}, tc.args...)
			if tc.args[0] == "-L" {
				args = tc.args
			}
			var err error
			if tc.cmd == "pub" {
				err = runPub(ctx, args, strings.NewReader(""), &out, &errOut)
			} else {
				err = runSub(ctx, args, &out, &errOut)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%s: %v", tc.cmd, err)
				}
				return
			}
			if exitCode(err) != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: exit %d, %v; want exit 1 and %q", tc.cmd, exitCode(err), err, tc.want)
			}
		})
	}
}

// selfSignedFiles makes a self-signed certificate for 127.0.0.1 and writes
// it, as the CA file a client trusts, to dir.
func selfSignedFiles(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}
