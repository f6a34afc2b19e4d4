package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// certsFixture is a PKI in a temporary directory: a CA with a server
// certificate and client certificates, and a second CA.
type certsFixture struct {
	dir     string
	ca      *certsCA
	other   *certsCA
	server  *certsIssued
	valid   *certsIssued // alice, signed by ca
	foreign *certsIssued // mallory, signed by other
	expired *certsIssued // bob, signed by ca, expired
	noEKU   *certsIssued // carol, signed by ca, server-auth EKU only
}

func newCertsFixture(t *testing.T) *certsFixture {
	t.Helper()
	dir := t.TempDir()
	f := &certsFixture{dir: dir}
	f.ca = newCertsCA(t, dir, "main")
	f.other = newCertsCA(t, dir, "other")
	f.server = f.ca.issue(t, dir, "server", certsServerSpec())
	f.valid = f.ca.issue(t, dir, "alice", certsClientSpec("alice"))
	f.foreign = f.other.issue(t, dir, "mallory", certsClientSpec("mallory"))
	expired := certsClientSpec("bob")
	expired.notBefore = time.Now().Add(-48 * time.Hour)
	expired.notAfter = time.Now().Add(-24 * time.Hour)
	f.expired = f.ca.issue(t, dir, "bob", expired)
	noEKU := certsClientSpec("carol")
	noEKU.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	f.noEKU = f.ca.issue(t, dir, "carol", noEKU)
	return f
}

// config returns a TLSConfig with the fixture's server certificate and
// client CA, with client_auth mode.
func (f *certsFixture) config(mode string) TLSConfig {
	cfg := TLSConfig{Cert: f.server.certPath, Key: f.server.keyPath, ClientAuth: mode}
	if mode != "none" {
		cfg.ClientCA = f.ca.path
	}
	return cfg
}

// start makes a TLS from cfg and serves it on loopback.
func (f *certsFixture) start(t *testing.T, cfg TLSConfig) (*TLS, *certsServer) {
	t.Helper()
	tl, err := NewTLS(cfg)
	if err != nil {
		t.Fatalf("NewTLS: %v", err)
	}
	return tl, startCertsServer(t, tl.Config())
}

// certsState waits for the server's state of the last handshake.
func certsState(t *testing.T, s *certsServer) tls.ConnectionState {
	t.Helper()
	select {
	case st := <-s.states:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake on the server")
	}
	panic("unreachable")
}

func TestTLSMutualHandshake(t *testing.T) {
	f := newCertsFixture(t)
	for _, mode := range []string{"request", "require"} {
		t.Run(mode, func(t *testing.T) {
			_, srv := f.start(t, f.config(mode))
			conn, err := certsDial(srv.addr, certsClientConfig(f.ca, f.valid))
			if err != nil {
				t.Fatalf("handshake with a valid client certificate: %v", err)
			}
			defer conn.Close()
			st := certsState(t, srv)
			if len(st.VerifiedChains) == 0 || st.VerifiedChains[0][0].SerialNumber.Cmp(f.valid.cert.SerialNumber) != 0 {
				t.Fatalf("server verified chains %v, want alice's certificate", st.VerifiedChains)
			}
			if got := conn.ConnectionState().Version; got < tls.VersionTLS12 {
				t.Errorf("version %x, want TLS 1.2 or later", got)
			}
			// The verified chain is what the broker hands to CertificateAuth.
			id, err := (&CertificateAuth{}).Authenticate(context.Background(), &ConnectRequest{Certificates: st.VerifiedChains[0]})
			if err != nil || id.User != "alice" || id.Method != "certificate" {
				t.Fatalf("Authenticate = %+v, %v; want user alice by certificate", id, err)
			}
		})
	}
}

func TestTLSRefusesBadClientCertificates(t *testing.T) {
	f := newCertsFixture(t)
	clients := []struct {
		name  string
		cert  *certsIssued
		alert string
	}{
		{"other CA", f.foreign, "unknown certificate authority"},
		{"expired", f.expired, "expired certificate"},
		{"no client-auth EKU", f.noEKU, "bad certificate"},
	}
	for _, mode := range []string{"request", "require"} {
		_, srv := f.start(t, f.config(mode))
		for _, c := range clients {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				t.Run(mode+"/"+c.name+"/"+tls.VersionName(v), func(t *testing.T) {
					ccfg := certsClientConfig(f.ca, c.cert)
					ccfg.MaxVersion = v
					conn, err := certsDial(srv.addr, ccfg)
					if err == nil {
						conn.Close()
						t.Fatal("handshake succeeded, want it refused")
					}
					if !strings.Contains(err.Error(), c.alert) {
						t.Fatalf("error %q, want the alert %q", err, c.alert)
					}
				})
			}
		}
	}
}

func TestTLSRequireRefusesNoCertificate(t *testing.T) {
	f := newCertsFixture(t)
	_, srv := f.start(t, f.config("require"))
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		ccfg := certsClientConfig(f.ca, nil)
		ccfg.MaxVersion = v
		conn, err := certsDial(srv.addr, ccfg)
		if err == nil {
			conn.Close()
			t.Fatalf("%s handshake without a client certificate succeeded in require mode", tls.VersionName(v))
		}
		if !strings.Contains(err.Error(), "remote error: tls:") {
			t.Fatalf("%s: error %q, want a TLS alert from the server", tls.VersionName(v), err)
		}
	}
}

func TestTLSRequestAcceptsNoCertificate(t *testing.T) {
	f := newCertsFixture(t)
	for _, mode := range []string{"request", ""} {
		t.Run(fmt.Sprintf("%q", mode), func(t *testing.T) {
			_, srv := f.start(t, f.config(mode))
			conn, err := certsDial(srv.addr, certsClientConfig(f.ca, nil))
			if err != nil {
				t.Fatalf("handshake without a client certificate: %v", err)
			}
			conn.Close()
			if st := certsState(t, srv); len(st.PeerCertificates) != 0 {
				t.Fatalf("server saw %d client certificates, want none", len(st.PeerCertificates))
			}
		})
	}
}

func TestTLSNoneIgnoresClientCertificates(t *testing.T) {
	f := newCertsFixture(t)
	_, srv := f.start(t, f.config("none"))
	conn, err := certsDial(srv.addr, certsClientConfig(f.ca, f.foreign))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	conn.Close()
	if st := certsState(t, srv); len(st.PeerCertificates) != 0 {
		t.Fatalf("server received %d client certificates without asking", len(st.PeerCertificates))
	}
}

func TestTLSVersions(t *testing.T) {
	f := newCertsFixture(t)
	tests := []struct {
		min      string
		client   uint16
		accepted bool
	}{
		{"", tls.VersionTLS10, false},
		{"", tls.VersionTLS11, false},
		{"", tls.VersionTLS12, true},
		{"", tls.VersionTLS13, true},
		{"1.2", tls.VersionTLS11, false},
		{"1.2", tls.VersionTLS12, true},
		{"1.3", tls.VersionTLS12, false},
		{"1.3", tls.VersionTLS13, true},
	}
	servers := map[string]*certsServer{}
	for _, min := range []string{"", "1.2", "1.3"} {
		cfg := f.config("none")
		cfg.MinVersion = min
		_, servers[min] = f.start(t, cfg)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("min %q client %s", tt.min, tls.VersionName(tt.client)), func(t *testing.T) {
			srv := servers[tt.min]
			ccfg := certsClientConfig(f.ca, nil)
			ccfg.MinVersion, ccfg.MaxVersion = tt.client, tt.client
			conn, err := certsDial(srv.addr, ccfg)
			if conn != nil {
				if v := conn.ConnectionState().Version; v != tt.client {
					t.Errorf("negotiated %s, want %s", tls.VersionName(v), tls.VersionName(tt.client))
				}
				conn.Close()
			}
			if accepted := err == nil; accepted != tt.accepted {
				t.Fatalf("accepted = %v (%v), want %v", accepted, err, tt.accepted)
			}
			if err != nil && !strings.Contains(err.Error(), "protocol version not supported") {
				t.Fatalf("error %q, want the alert \"protocol version not supported\"", err)
			}
		})
	}
}

func TestTLSALPN(t *testing.T) {
	f := newCertsFixture(t)
	_, srv := f.start(t, f.config("none"))
	tests := []struct {
		offer []string
		want  string
	}{
		{nil, ""},
		{[]string{"mqtt"}, "mqtt"},
		{[]string{"x-other", "mqtt"}, "mqtt"},
		{[]string{"h2", "http/1.1"}, ""},
		{[]string{"x-amzn-mqtt-ca"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.offer, ","), func(t *testing.T) {
			ccfg := certsClientConfig(f.ca, nil)
			ccfg.NextProtos = tt.offer
			conn, err := certsDial(srv.addr, ccfg)
			if err != nil {
				t.Fatalf("handshake offering %q: %v", tt.offer, err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().NegotiatedProtocol; got != tt.want {
				t.Fatalf("negotiated %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTLSCipherSuites(t *testing.T) {
	f := newCertsFixture(t)
	cfg := f.config("none")
	const name = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
	cfg.CipherSuites = []string{name}
	_, srv := f.start(t, cfg)

	ccfg := certsClientConfig(f.ca, nil)
	ccfg.MaxVersion = tls.VersionTLS12
	conn, err := certsDial(srv.addr, ccfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got := tls.CipherSuiteName(conn.ConnectionState().CipherSuite); got != name {
		t.Errorf("cipher suite %s, want %s", got, name)
	}
	conn.Close()

	ccfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	if conn, err := certsDial(srv.addr, ccfg); err == nil {
		conn.Close()
		t.Fatal("handshake with a suite outside cipher_suites succeeded")
	}
}

func TestTLSReload(t *testing.T) {
	f := newCertsFixture(t)
	tl, srv := f.start(t, f.config("require"))
	ccfg := certsClientConfig(f.ca, f.valid)
	oldSerial := f.server.cert.SerialNumber

	before, err := certsDial(srv.addr, ccfg)
	if err != nil {
		t.Fatalf("handshake before reload: %v", err)
	}
	defer before.Close()

	next := f.ca.issue(t, f.dir, "server2", certsServerSpec())
	certsCopy(t, next.certPath, f.server.certPath)
	certsCopy(t, next.keyPath, f.server.keyPath)
	if err := tl.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := tl.Certificate().SerialNumber; got.Cmp(next.cert.SerialNumber) != 0 {
		t.Fatalf("Certificate serial %v after reload, want %v", got, next.cert.SerialNumber)
	}

	// The connection made before the reload keeps working, with its
	// certificate.
	_ = before.SetDeadline(time.Now().Add(10 * time.Second))
	if err := certsEcho(before, "still here"); err != nil {
		t.Fatalf("connection made before the reload: %v", err)
	}
	if got := before.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(oldSerial) != 0 {
		t.Fatalf("old connection's certificate serial %v, want %v", got, oldSerial)
	}

	after, err := certsDial(srv.addr, ccfg)
	if err != nil {
		t.Fatalf("handshake after reload: %v", err)
	}
	defer after.Close()
	if got := after.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(next.cert.SerialNumber) != 0 {
		t.Fatalf("new connection's certificate serial %v, want the reloaded %v", got, next.cert.SerialNumber)
	}
}

func TestTLSReloadClientCA(t *testing.T) {
	f := newCertsFixture(t)
	tl, srv := f.start(t, f.config("require"))
	if conn, err := certsDial(srv.addr, certsClientConfig(f.ca, f.foreign)); err == nil {
		conn.Close()
		t.Fatal("certificate of the other CA accepted before it was added")
	}
	// A bundle of both CAs replaces the client CA file.
	a, err := os.ReadFile(f.ca.path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.other.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.ca.path, append(a, b...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tl.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, c := range []*certsIssued{f.valid, f.foreign} {
		conn, err := certsDial(srv.addr, certsClientConfig(f.ca, c))
		if err != nil {
			t.Fatalf("%s after reload: %v", c.cert.Subject.CommonName, err)
		}
		conn.Close()
	}
}

func TestTLSFailedReloadKeepsOld(t *testing.T) {
	f := newCertsFixture(t)
	tl, srv := f.start(t, f.config("require"))
	ccfg := certsClientConfig(f.ca, f.valid)
	oldSerial := f.server.cert.SerialNumber
	other := f.ca.issue(t, f.dir, "server2", certsServerSpec())
	expiredSpec := certsServerSpec()
	expiredSpec.notBefore = time.Now().Add(-48 * time.Hour)
	expiredSpec.notAfter = time.Now().Add(-time.Hour)
	expired := f.ca.issue(t, f.dir, "server-expired", expiredSpec)

	origCert, err := os.ReadFile(f.server.certPath)
	if err != nil {
		t.Fatal(err)
	}
	origKey, err := os.ReadFile(f.server.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func()
		want  string
	}{
		{"missing certificate", func() { os.Remove(f.server.certPath) }, f.server.certPath},
		{"missing client CA", func() { os.Remove(f.ca.path) }, f.ca.path},
		{"mismatched key", func() { certsCopy(t, other.certPath, f.server.certPath) }, "does not match"},
		{"garbage key", func() { os.WriteFile(f.server.keyPath, []byte("not a key\n"), 0o600) }, "no PRIVATE KEY PEM block"},
		{"expired certificate", func() {
			certsCopy(t, expired.certPath, f.server.certPath)
			certsCopy(t, expired.keyPath, f.server.keyPath)
		}, "expired"},
	}
	caPEM, err := os.ReadFile(f.ca.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spoil()
			t.Cleanup(func() {
				os.WriteFile(f.server.certPath, origCert, 0o600)
				os.WriteFile(f.server.keyPath, origKey, 0o600)
				os.WriteFile(f.ca.path, caPEM, 0o600)
			})
			err := tl.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload error %v, want one mentioning %q", err, tt.want)
			}
			if got := tl.Certificate().SerialNumber; got.Cmp(oldSerial) != 0 {
				t.Fatalf("Certificate serial %v after a failed reload, want the old %v", got, oldSerial)
			}
			conn, err := certsDial(srv.addr, ccfg)
			if err != nil {
				t.Fatalf("handshake after a failed reload: %v", err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(oldSerial) != 0 {
				t.Fatalf("certificate serial %v after a failed reload, want the old %v", got, oldSerial)
			}
		})
	}
}

func TestTLSReloadConcurrentHandshakes(t *testing.T) {
	f := newCertsFixture(t)
	tl, srv := f.start(t, f.config("require"))
	ccfg := certsClientConfig(f.ca, f.valid)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				conn, err := certsDial(srv.addr, ccfg)
				if err != nil {
					errs <- err
					return
				}
				conn.Close()
			}
		})
	}
	for range 10 {
		if err := tl.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("handshake during reloads: %v", err)
	}
}

func TestTLSHTTPServer(t *testing.T) {
	f := newCertsFixture(t)
	tl, err := NewTLS(f.config("request"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: tl.Config(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := ""
			if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
				user = r.TLS.VerifiedChains[0][0].Subject.CommonName
			}
			io.WriteString(w, user)
		}),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	ccfg := certsClientConfig(f.ca, f.valid)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: ccfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.Proto != "HTTP/1.1" || string(body) != "alice" {
		t.Fatalf("got %s %q, want HTTP/1.1 \"alice\"", resp.Proto, body)
	}
}

func TestNewTLSErrors(t *testing.T) {
	f := newCertsFixture(t)
	dir := f.dir
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.pem", "hello\n")
	encrypted := write("encrypted-key.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
	missing := filepath.Join(dir, "missing.pem")
	expiredSpec := certsServerSpec()
	expiredSpec.notBefore = time.Now().Add(-48 * time.Hour)
	expiredSpec.notAfter = time.Now().Add(-time.Hour)
	expired := f.ca.issue(t, dir, "server-expired", expiredSpec)
	futureSpec := certsServerSpec()
	futureSpec.notBefore = time.Now().Add(time.Hour)
	future := f.ca.issue(t, dir, "server-future", futureSpec)
	clientOnly := f.ca.issue(t, dir, "server-clientonly", certsClientSpec("localhost"))
	// A chain whose second certificate did not issue the first.
	serverPEM, err := os.ReadFile(f.server.certPath)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := os.ReadFile(f.other.path)
	if err != nil {
		t.Fatal(err)
	}
	badChain := write("bad-chain.pem", string(serverPEM)+string(otherPEM))

	good := f.config("require")
	with := func(change func(*TLSConfig)) TLSConfig {
		c := good
		change(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     TLSConfig
		want    []string
		notExst bool
	}{
		{"no cert", with(func(c *TLSConfig) { c.Cert = "" }), []string{"no certificate file"}, false},
		{"no key", with(func(c *TLSConfig) { c.Key = "" }), []string{"no key file"}, false},
		{"missing cert", with(func(c *TLSConfig) { c.Cert = missing }), []string{missing}, true},
		{"missing key", with(func(c *TLSConfig) { c.Key = missing }), []string{missing}, true},
		{"missing client CA", with(func(c *TLSConfig) { c.ClientCA = missing }), []string{"client CA", missing}, true},
		{"cert without PEM", with(func(c *TLSConfig) { c.Cert = garbage }), []string{garbage, "no CERTIFICATE PEM block"}, false},
		{"key without PEM", with(func(c *TLSConfig) { c.Key = garbage }), []string{garbage, "no PRIVATE KEY PEM block"}, false},
		{"key is a certificate", with(func(c *TLSConfig) { c.Key = f.server.certPath }), []string{"no PRIVATE KEY PEM block"}, false},
		{"encrypted key", with(func(c *TLSConfig) { c.Key = encrypted }), []string{encrypted, "encrypted"}, false},
		{"client CA without PEM", with(func(c *TLSConfig) { c.ClientCA = garbage }), []string{"client CA", garbage, "no CERTIFICATE PEM block"}, false},
		{"mismatched key", with(func(c *TLSConfig) { c.Key = f.valid.keyPath }), []string{f.valid.keyPath, f.server.certPath, "does not match"}, false},
		{"expired cert", with(func(c *TLSConfig) { c.Cert, c.Key = expired.certPath, expired.keyPath }), []string{expired.certPath, "expired at"}, false},
		{"future cert", with(func(c *TLSConfig) { c.Cert, c.Key = future.certPath, future.keyPath }), []string{future.certPath, "not valid before"}, false},
		{"client-only cert", with(func(c *TLSConfig) { c.Cert, c.Key = clientOnly.certPath, clientOnly.keyPath }), []string{"serverAuth"}, false},
		{"chain out of order", with(func(c *TLSConfig) { c.Cert = badChain }), []string{badChain, "not issued by certificate 2"}, false},
		{"require without CA", with(func(c *TLSConfig) { c.ClientCA = "" }), []string{"needs client_ca"}, false},
		{"none with CA", with(func(c *TLSConfig) { c.ClientAuth = "none" }), []string{"client_auth is \"none\""}, false},
		{"bad client_auth", with(func(c *TLSConfig) { c.ClientAuth = "optional" }), []string{"client_auth \"optional\""}, false},
		{"TLS 1.1", with(func(c *TLSConfig) { c.MinVersion = "1.1" }), []string{"min_version \"1.1\""}, false},
		{"TLS 1.0", with(func(c *TLSConfig) { c.MinVersion = "1.0" }), []string{"min_version \"1.0\""}, false},
		{"unknown suite", with(func(c *TLSConfig) { c.CipherSuites = []string{"TLS_FOO"} }), []string{"unknown cipher suite \"TLS_FOO\""}, false},
		{"insecure suite", with(func(c *TLSConfig) { c.CipherSuites = []string{"TLS_RSA_WITH_AES_128_GCM_SHA256"} }), []string{"insecure"}, false},
		{"TLS 1.3 suite", with(func(c *TLSConfig) { c.CipherSuites = []string{"TLS_AES_128_GCM_SHA256"} }), []string{"TLS 1.3 suite"}, false},
		{"suites with 1.3", with(func(c *TLSConfig) {
			c.MinVersion = "1.3"
			c.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
		}), []string{"only apply to TLS 1.2"}, false},
		{"suites not fitting the key", with(func(c *TLSConfig) { c.CipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"} }), []string{"ECDSA", "TLS_ECDHE_ECDSA_"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl, err := NewTLS(tt.cfg)
			if err == nil {
				t.Fatalf("NewTLS = %v, want an error", tl)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExst {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notExst)
			}
		})
	}

	if _, err := NewTLS(good); err != nil {
		t.Fatalf("NewTLS with the good configuration: %v", err)
	}
}

func TestCertificateAuth(t *testing.T) {
	dir := t.TempDir()
	ca := newCertsCA(t, dir, "main")
	leaf := func(spec certsSpec) []*x509.Certificate {
		return []*x509.Certificate{ca.issue(t, dir, "", spec).cert, ca.cert}
	}
	spec := func(change func(*certsSpec)) certsSpec {
		s := certsClientSpec("alice")
		s.emails = []string{"alice@example.org", "a@example.org"}
		s.dns = []string{"alice.devices.example.org"}
		s.uris = []string{"spiffe://example.org/device/alice"}
		s.org = []string{"Acme Corp"}
		s.ou = []string{"Sensors"}
		if change != nil {
			change(&s)
		}
		return s
	}
	alice := leaf(spec(nil))
	expiredSpec := spec(func(s *certsSpec) {
		s.notBefore = time.Now().Add(-48 * time.Hour)
		s.notAfter = time.Now().Add(-time.Hour)
	})

	tests := []struct {
		name    string
		auth    CertificateAuth
		req     ConnectRequest
		want    *Identity
		wantErr error
		errText string
	}{
		{
			name:    "no certificates",
			req:     ConnectRequest{Username: "alice", HasUsername: true},
			wantErr: ErrNoCredentials,
		},
		{
			name: "cn by default",
			req:  ConnectRequest{ClientID: "c1", Certificates: alice},
			want: &Identity{User: "alice", ClientID: "c1", Method: "certificate"},
		},
		{
			name: "cn explicit, same username",
			auth: CertificateAuth{UsernameFrom: "cn"},
			req:  ConnectRequest{Username: "alice", HasUsername: true, Certificates: alice},
			want: &Identity{User: "alice", Method: "certificate"},
		},
		{
			name: "san-email takes the first",
			auth: CertificateAuth{UsernameFrom: "san-email"},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice@example.org", Method: "certificate"},
		},
		{
			name: "san-dns",
			auth: CertificateAuth{UsernameFrom: "san-dns"},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice.devices.example.org", Method: "certificate"},
		},
		{
			name: "san-uri",
			auth: CertificateAuth{UsernameFrom: "san-uri"},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "spiffe://example.org/device/alice", Method: "certificate"},
		},
		{
			name:    "no common name",
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.cn = "" }))},
			wantErr: ErrBadCredentials,
			errText: "no subject common name",
		},
		{
			name:    "no e-mail",
			auth:    CertificateAuth{UsernameFrom: "san-email"},
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.emails = nil }))},
			wantErr: ErrBadCredentials,
			errText: "no e-mail subject alternative name",
		},
		{
			name:    "wildcard in name",
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.cn = "sensors/#" }))},
			wantErr: ErrBadCredentials,
			errText: "'#'",
		},
		{
			name:    "username mismatch",
			req:     ConnectRequest{Username: "bob", HasUsername: true, Certificates: alice},
			wantErr: ErrBadCredentials,
			errText: `"bob" differs from the client certificate's name "alice"`,
		},
		{
			name: "username override",
			auth: CertificateAuth{AllowUsernameOverride: true, AdminUsers: []string{"bob"}, Groups: map[string][]string{"alice": {"sensors"}, "bob": {"ops"}}},
			req:  ConnectRequest{Username: "bob", HasUsername: true, Certificates: alice},
			// Rights stay with the certificate's name.
			want: &Identity{User: "bob", Groups: []string{"sensors"}, Method: "certificate"},
		},
		{
			name: "empty username is no username",
			req:  ConnectRequest{Username: "", HasUsername: true, Certificates: alice},
			want: &Identity{User: "alice", Method: "certificate"},
		},
		{
			name: "admin and groups",
			auth: CertificateAuth{AdminUsers: []string{"root", "alice"}, Groups: map[string][]string{"alice": {"sensors", "ops"}, "bob": {"other"}}},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice", Admin: true, Groups: []string{"sensors", "ops"}, Method: "certificate"},
		},
		{
			name: "not admin",
			auth: CertificateAuth{AdminUsers: []string{"root"}},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice", Method: "certificate"},
		},
		{
			name: "tenant from O, mapped",
			auth: CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"Acme Corp": "acme"}},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice", Tenant: "acme", Method: "certificate"},
		},
		{
			name: "tenant from OU, mapped",
			auth: CertificateAuth{TenantFrom: "ou", Tenants: map[string]string{"Sensors": "sensors", "Acme Corp": "acme"}},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice", Tenant: "sensors", Method: "certificate"},
		},
		{
			name: "tenant from OU, direct",
			auth: CertificateAuth{TenantFrom: "ou"},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice", Tenant: "Sensors", Method: "certificate"},
		},
		{
			name: "tenant mapped to none",
			auth: CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"Acme Corp": ""}},
			req:  ConnectRequest{Certificates: alice},
			want: &Identity{User: "alice", Method: "certificate"},
		},
		{
			name: "tenant from several O values, one mapped",
			auth: CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"Acme Corp": "acme"}},
			req:  ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.org = []string{"Unrelated", "Acme Corp"} }))},
			want: &Identity{User: "alice", Tenant: "acme", Method: "certificate"},
		},
		{
			name:    "tenant unmapped",
			auth:    CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"Other": "other"}},
			req:     ConnectRequest{Certificates: alice},
			wantErr: ErrNotAuthorized,
			errText: "no tenant is configured",
		},
		{
			name:    "tenant ambiguous",
			auth:    CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"A": "a", "B": "b"}},
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.org = []string{"A", "B"} }))},
			wantErr: ErrNotAuthorized,
			errText: "several tenants",
		},
		{
			name:    "tenant attribute missing",
			auth:    CertificateAuth{TenantFrom: "ou"},
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.ou = nil }))},
			wantErr: ErrNotAuthorized,
			errText: "has no organizational unit (OU)",
		},
		{
			name:    "direct tenant not a valid name",
			auth:    CertificateAuth{TenantFrom: "o"},
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.org = []string{"a/b"} }))},
			wantErr: ErrNotAuthorized,
			errText: "not a valid tenant name",
		},
		{
			name:    "no client-auth EKU",
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }))},
			wantErr: ErrBadCredentials,
			errText: "clientAuth",
		},
		{
			name:    "only an unknown EKU",
			req:     ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.eku, s.unknownEKU = nil, true }))},
			wantErr: ErrBadCredentials,
			errText: "clientAuth",
		},
		{
			name: "no EKU at all",
			req:  ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.eku = nil }))},
			want: &Identity{User: "alice", Method: "certificate"},
		},
		{
			name: "any EKU",
			req:  ConnectRequest{Certificates: leaf(spec(func(s *certsSpec) { s.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }))},
			want: &Identity{User: "alice", Method: "certificate"},
		},
		{
			name:    "expired",
			req:     ConnectRequest{Certificates: leaf(expiredSpec)},
			wantErr: ErrBadCredentials,
			errText: "valid only from",
		},
		{
			name:    "bad configuration",
			auth:    CertificateAuth{UsernameFrom: "serial"},
			req:     ConnectRequest{Certificates: alice},
			errText: `username_from "serial"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.auth.Authenticate(context.Background(), &tt.req)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if !certsSameIdentity(id, tt.want) {
					t.Fatalf("Authenticate = %+v, want %+v", id, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Authenticate = %+v, want an error", id)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not mention %q", err, tt.errText)
			}
		})
	}
}

func certsSameIdentity(a, b *Identity) bool {
	return a.User == b.User && a.ClientID == b.ClientID && a.Tenant == b.Tenant &&
		a.Admin == b.Admin && a.Method == b.Method && slices.Equal(a.Groups, b.Groups) && len(a.Grants) == len(b.Grants)
}

func TestCertificateAuthGroupsAreCopied(t *testing.T) {
	dir := t.TempDir()
	ca := newCertsCA(t, dir, "main")
	cert := ca.issue(t, dir, "", certsClientSpec("alice")).cert
	a := &CertificateAuth{Groups: map[string][]string{"alice": {"sensors"}}}
	id, err := a.Authenticate(context.Background(), &ConnectRequest{Certificates: []*x509.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	id.Groups[0] = "changed"
	if a.Groups["alice"][0] != "sensors" {
		t.Fatal("changing the identity's groups changed the configuration")
	}
}

func TestCertificateAuthInChain(t *testing.T) {
	dir := t.TempDir()
	ca := newCertsCA(t, dir, "main")
	cert := ca.issue(t, dir, "", certsClientSpec("alice")).cert
	c := &Chain{Backends: []Authenticator{&CertificateAuth{}}}
	id, err := c.Authenticate(context.Background(), &ConnectRequest{ClientID: "dev-1", Certificates: []*x509.Certificate{cert}})
	if err != nil || id.User != "alice" || id.ClientID != "dev-1" {
		t.Fatalf("Chain.Authenticate = %+v, %v", id, err)
	}
	// Without a certificate the chain goes on, and refuses the anonymous
	// client.
	if _, err := c.Authenticate(context.Background(), &ConnectRequest{ClientID: "dev-2"}); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("Chain.Authenticate without a certificate: %v, want ErrNotAuthorized", err)
	}
}

func TestCertificateAuthValidate(t *testing.T) {
	tests := []struct {
		auth CertificateAuth
		want string
	}{
		{CertificateAuth{}, ""},
		{CertificateAuth{UsernameFrom: "san-uri", TenantFrom: "ou", Tenants: map[string]string{"X": "x", "Y": ""}}, ""},
		{CertificateAuth{UsernameFrom: "dn"}, `username_from "dn"`},
		{CertificateAuth{TenantFrom: "c"}, `tenant_from "c"`},
		{CertificateAuth{Tenants: map[string]string{"X": "x"}}, "tenant_from is empty"},
		{CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"X": "a/b"}}, "not a valid tenant name"},
		{CertificateAuth{TenantFrom: "o", Tenants: map[string]string{"X": "$SYS"}}, "not a valid tenant name"},
	}
	for _, tt := range tests {
		err := tt.auth.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: Validate: %v", tt.auth, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: Validate = %v, want an error mentioning %q", tt.auth, err, tt.want)
		}
	}
}
