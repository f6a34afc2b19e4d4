package main

// End-to-end security tests: the real binary with a configuration file (TLS
// with client certificates, a password file, JWT, ACL rules, audit log),
// driven by mosquitto_pub/mosquitto_sub, Eclipse Paho and citymesh's own
// client; and reloads on SIGHUP.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/golang-jwt/jwt/v5"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/node"

	"github.com/citymesh/citymesh/internal/testproc"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// nodeProc is a citymesh serve process of a test.
type nodeProc struct {
	cmd                 *exec.Cmd
	mqtt, mqtts, wss    string
	dir, config, passwd string
	audit               string
	out                 *testproc.Buffer
}

// secureNode starts the binary with TLS, a password file, JWT, client
// certificates, ACL rules and an audit log. pki holds the CA and the
// certificates.
func secureNode(t *testing.T, p *testPKI) *nodeProc {
	t.Helper()
	n := &nodeProc{dir: t.TempDir(), mqtt: freePort(t), mqtts: freePort(t), wss: freePort(t), out: new(testproc.Buffer)}
	n.passwd = filepath.Join(n.dir, "passwd")
	n.audit = filepath.Join(n.dir, "audit.log")
	for _, u := range []struct{ user, password, extra string }{
		{"ops", "ops-pw", "--groups=admin"},
		{"meter-7", "meter-pw", "--groups=meters"},
		{"tenant-alice", "alice-pw", "--tenant=acme"},
	} {
		args := []string{"-b", u.extra, n.passwd, u.user, u.password}
		if _, err := os.Stat(n.passwd); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if err := runPasswd(context.Background(), args); err != nil {
			t.Fatalf("citymesh passwd %v: %v", args, err)
		}
	}
	n.config = filepath.Join(n.dir, "citymesh.yaml")
	cfg := fmt.Sprintf(`mqtt: %s
mqtts: %s
ws: "off"
wss: %s
http: "off"
data: %s
tls:
  cert: %s
  key: %s
  client_ca: %s
  client_auth: request
auth:
  password_file: %s
  jwt:
    secret: %q
  certificates:
    username_from: cn
    tenant_from: o
    tenants: {acme: acme, city: ""}
audit: %s
acl:
  default: deny
  rules:
    - allow: [publish]
      topics: [energy/%%u/#]
      groups: [meters]
    - allow: [publish]
      topics: [energy/%%u/#]
      users: [sensor-jwt, meter-cert]
    - allow: [read]
      topics: ["#"]
      tenants: [acme]
    - allow: [publish]
      topics: ["#"]
      tenants: [acme]
`, n.mqtt, n.mqtts, n.wss, filepath.Join(n.dir, "data"), p.serverCert, p.serverKey, p.ca.file, n.passwd, jwtSecret, n.audit)
	if err := os.WriteFile(n.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(testproc.Binary(t), "serve", "--config", n.config, "--log", "warn")
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		if t.Failed() {
			t.Logf("node output:\n%s", n.out)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", n.mqtts)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not start: %v\n%s", err, n.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// testPKI is the certificates of a secure node's test.
type testPKI struct {
	ca, other                 *testCA
	serverCert, serverKey     string
	meterCert, meterKey       string // CN meter-cert, O city: no tenant
	aliceCert, aliceKey       string // CN alice-device, O acme
	strangerCert, strangerKey string // signed by another CA
}

func newTestPKI(t *testing.T) *testPKI {
	dir := t.TempDir()
	p := &testPKI{ca: newTestCA(t, dir, "city-ca"), other: newTestCA(t, dir, "other-ca")}
	p.serverCert, p.serverKey, _ = p.ca.issue(t, dir, "server", "", true)
	p.meterCert, p.meterKey, _ = p.ca.issue(t, dir, "meter-cert", "city", false)
	p.aliceCert, p.aliceKey, _ = p.ca.issue(t, dir, "alice-device", "acme", false)
	p.strangerCert, p.strangerKey, _ = p.other.issue(t, dir, "stranger", "", false)
	return p
}

const jwtSecret = "a-test-secret-of-at-least-32-bytes-length!"

func signJWT(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func needMosquitto(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Skip("mosquitto clients not installed (apt-get install mosquitto-clients); .ci/run installs them")
	}
}

// mosquitto runs a mosquitto client program with args and returns its
// combined output and exit status.
func mosquitto(t *testing.T, prog string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return string(out), code
}

func hostPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}

func TestSecureNodeWithRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	needMosquitto(t)
	p := newTestPKI(t)
	n := secureNode(t, p)
	host, tlsPort := hostPort(n.mqtts)
	_, plainPort := hostPort(n.mqtt)

	// An administrator watches everything, over TLS.
	watch := exec.Command("mosquitto_sub", "-h", host, "-p", tlsPort, "--cafile", p.ca.file, "-u", "ops", "-P", "ops-pw",
		"-V", "mqttv5", "-t", "#", "-t", "$tenant/#", "-v", "-W", "60")
	var watched testproc.Buffer
	watch.Stdout, watch.Stderr = &watched, &watched
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	// Wait until its subscription is in place.
	waitUntil(t, "the watcher to subscribe", func() bool {
		if out, code := mosquitto(t, "mosquitto_pub", "-h", host, "-p", tlsPort, "--cafile", p.ca.file, "-u", "ops", "-P", "ops-pw", "-t", "ready", "-m", "r"); code != 0 {
			t.Logf("ready publish: %d %s", code, out)
		}
		return strings.Contains(watched.String(), "ready r")
	})

	tests := []struct {
		name     string
		prog     string
		args     []string
		wantCode int    // exit status; 0 = success, -1 = any failure
		wantOut  string // in the output
		seen     string // in the watcher's output afterwards
	}{
		{name: "TLS with the CA and a password", prog: "mosquitto_pub",
			args: []string{"-h", host, "-p", tlsPort, "--cafile", p.ca.file, "-u", "meter-7", "-P", "meter-pw", "-t", "energy/meter-7/reading", "-m", "tls-ok", "-q", "1"},
			seen: "energy/meter-7/reading tls-ok"},
		{name: "TLS without the CA", prog: "mosquitto_pub",
			args:     []string{"-h", host, "-p", tlsPort, "--cafile", p.other.file, "-u", "meter-7", "-P", "meter-pw", "-t", "energy/meter-7/x", "-m", "x"},
			wantCode: -1, wantOut: "TLS error"},
		{name: "wrong password, 3.1.1", prog: "mosquitto_pub",
			args:     []string{"-h", host, "-p", plainPort, "-u", "meter-7", "-P", "nope", "-t", "energy/meter-7/x", "-m", "x"},
			wantCode: 4, wantOut: "bad user name or password"},
		{name: "wrong password, 5.0", prog: "mosquitto_pub",
			args:     []string{"-h", host, "-p", plainPort, "-V", "mqttv5", "-u", "meter-7", "-P", "nope", "-t", "energy/meter-7/x", "-m", "x"},
			wantCode: 134, wantOut: "Bad User Name or Password"},
		{name: "anonymous is off", prog: "mosquitto_pub",
			args:     []string{"-h", host, "-p", plainPort, "-V", "mqttv5", "-t", "energy/x", "-m", "x"},
			wantCode: 135, wantOut: "Not authorized"},
		{name: "mutual TLS: the certificate is the identity", prog: "mosquitto_pub",
			args: []string{"-h", host, "-p", tlsPort, "--cafile", p.ca.file, "--cert", p.meterCert, "--key", p.meterKey, "-t", "energy/meter-cert/reading", "-m", "cert-ok", "-q", "1"},
			seen: "energy/meter-cert/reading cert-ok"},
		{name: "a certificate from another CA", prog: "mosquitto_pub",
			args:     []string{"-h", host, "-p", tlsPort, "--cafile", p.ca.file, "--cert", p.strangerCert, "--key", p.strangerKey, "-t", "energy/stranger/x", "-m", "x"},
			wantCode: -1},
		{name: "ACL: publishing outside one's own topics", prog: "mosquitto_pub",
			args:     []string{"-h", host, "-p", plainPort, "-V", "mqttv5", "-u", "meter-7", "-P", "meter-pw", "-t", "energy/meter-8/reading", "-m", "forged", "-q", "1"},
			wantCode: 0, wantOut: "Not authorized"},
		{name: "JWT in the password field", prog: "mosquitto_pub",
			args: []string{"-h", host, "-p", plainPort, "-u", "sensor-jwt", "-P", signJWT(t, jwt.MapClaims{"sub": "sensor-jwt", "exp": time.Now().Add(time.Hour).Unix()}),
				"-t", "energy/sensor-jwt/reading", "-m", "jwt-ok", "-q", "1"},
			seen: "energy/sensor-jwt/reading jwt-ok"},
		{name: "expired JWT", prog: "mosquitto_pub",
			args: []string{"-h", host, "-p", plainPort, "-V", "mqttv5", "-u", "sensor-jwt", "-P", signJWT(t, jwt.MapClaims{"sub": "sensor-jwt", "exp": time.Now().Add(-time.Hour).Unix()}),
				"-t", "energy/sensor-jwt/reading", "-m", "x"},
			wantCode: 134, wantOut: "Bad User Name or Password"},
		{name: "tenant by certificate: its topics stay in its namespace", prog: "mosquitto_pub",
			args: []string{"-h", host, "-p", tlsPort, "--cafile", p.ca.file, "--cert", p.aliceCert, "--key", p.aliceKey, "-t", "meters/1", "-m", "acme-ok", "-q", "1"},
			seen: "$tenant/acme/meters/1 acme-ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := mosquitto(t, tc.prog, tc.args...)
			if (tc.wantCode < 0 && code == 0) || (tc.wantCode >= 0 && code != tc.wantCode) || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d, output %q; want exit %d and %q", code, out, tc.wantCode, tc.wantOut)
			}
			if tc.seen != "" {
				waitUntil(t, "the message at the watcher", func() bool { return strings.Contains(watched.String(), tc.seen) })
			}
		})
	}
	if strings.Contains(watched.String(), "forged") {
		t.Fatal("a refused publish reached a subscriber")
	}

	t.Run("Paho over TLS", func(t *testing.T) {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(p.ca.file)
		pool.AppendCertsFromPEM(pem)
		conn, err := tls.Dial("tcp", n.mqtts, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		// tls.Conn is not safe for concurrent writes of one packet in
		// parts: Paho asks for its wrapper.
		c := paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(conn)})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ack, err := c.Connect(ctx, &paho.Connect{ClientID: "paho-meter", CleanStart: true, KeepAlive: 30,
			Username: "meter-7", UsernameFlag: true, Password: []byte("meter-pw"), PasswordFlag: true})
		if err != nil || ack.ReasonCode != 0 {
			t.Fatalf("connect: %v %+v", err, ack)
		}
		if _, err := c.Publish(ctx, &paho.Publish{Topic: "energy/meter-7/paho", QoS: 1, Payload: []byte("paho-ok")}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "Paho's message", func() bool { return strings.Contains(watched.String(), "energy/meter-7/paho paho-ok") })
		c.Disconnect(&paho.Disconnect{})
	})

	t.Run("MQTT over WebSocket over TLS", func(t *testing.T) {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(p.ca.file)
		pool.AppendCertsFromPEM(pem)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Options{Addr: "wss://" + n.wss + "/mqtt", TLSConfig: &tls.Config{RootCAs: pool},
			Username: "meter-7", Password: []byte("meter-pw"), CleanStart: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(ctx, 0)
		if err := c.Publish(ctx, &mqtt.Publish{Topic: "energy/meter-7/wss", QoS: 1, Payload: []byte("wss-ok")}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the message over wss", func() bool { return strings.Contains(watched.String(), "energy/meter-7/wss wss-ok") })
	})

	t.Run("audit log", func(t *testing.T) {
		raw, err := os.ReadFile(n.audit)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"msg":"connect","client"`, `"reason":"bad_credentials"`, `"msg":"denied","action":"publish","topic":"energy/meter-8/reading"`,
			`"method":"certificate"`, `"method":"jwt"`, `"tenant":"acme"`} {
			if !bytes.Contains(raw, []byte(want)) {
				t.Errorf("audit log lacks %s:\n%s", want, raw)
			}
		}
	})
}

// TestReloadOnSIGHUP rotates the server certificate, adds a user and
// changes the ACL, sends SIGHUP, and checks that new connections see the new
// configuration while an established one goes on.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newTestPKI(t)
	n := secureNode(t, p)
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(p.ca.file)
	pool.AppendCertsFromPEM(pem)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	serialOf := func() string {
		c, err := tls.Dial("tcp", n.mqtts, tlsConf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serialOf()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 16)
	held, err := client.Dial(ctx, client.Options{Addr: "mqtts://" + n.mqtts, TLSConfig: tlsConf, Username: "ops", Password: []byte("ops-pw"),
		CleanStart: true, OnMessage: func(pk *mqtt.Publish) { got <- string(pk.Payload) }})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Disconnect(ctx, 0)
	if _, err := held.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "reload/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}

	// New certificate (same files), a new user, and a rule for it.
	dir := filepath.Dir(p.serverCert)
	newCert, newKey, newLeaf := p.ca.issue(t, dir, "server-2", "", true)
	for _, f := range [][2]string{{newCert, p.serverCert}, {newKey, p.serverKey}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := runPasswd(ctx, []string{"-b", n.passwd, "newcomer", "new-pw"}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(n.config)
	cfg = append(cfg, []byte("    - allow: [publish]\n      topics: [reload/#]\n      users: [newcomer]\n")...)
	if err := os.WriteFile(n.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new certificate", func() bool { return serialOf() == newLeaf.SerialNumber.String() })
	if before == newLeaf.SerialNumber.String() {
		t.Fatal("the certificate did not change")
	}
	// The newcomer can log in and publish under the new rule; the held
	// connection, made before the reload, still works and receives it.
	pub, err := client.Dial(ctx, client.Options{Addr: "mqtts://" + n.mqtts, TLSConfig: tlsConf, Username: "newcomer", Password: []byte("new-pw"), CleanStart: true})
	if err != nil {
		t.Fatalf("the user added before SIGHUP cannot log in: %v", err)
	}
	defer pub.Disconnect(ctx, 0)
	if err := pub.Publish(ctx, &mqtt.Publish{Topic: "reload/x", QoS: 1, Payload: []byte("after-reload")}); err != nil {
		t.Fatalf("publish under the new rule: %v", err)
	}
	select {
	case m := <-got:
		if m != "after-reload" {
			t.Fatalf("got %q", m)
		}
	case <-ctx.Done():
		t.Fatal("the connection made before the reload received nothing")
	}
	// A broken reload keeps the working configuration.
	if err := os.WriteFile(p.serverKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the failed reload to be logged", func() bool { return strings.Contains(n.out.String(), "reload failed") })
	if serialOf() != newLeaf.SerialNumber.String() {
		t.Fatal("a failed reload changed the certificate")
	}
}

// waitUntil waits up to 30 s for cond; explain, if given, says what was
// seen instead when it times out.
func waitUntil(t *testing.T, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, e := range explain {
				what += " (" + e() + ")"
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestExampleConfigIsValid keeps docs/citymesh.example.yaml in step with
// the code: it must parse with every key known, and its rules compile.
func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := node.Load("../../docs/citymesh.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if acl, err := cfg.ACL.Build(); err != nil || acl == nil {
		t.Fatalf("example acl: %v", err)
	}
	if cfg.Auth.Certificates == nil || cfg.Auth.Certificates.Validate() != nil {
		t.Fatal("example certificates section does not validate")
	}
	if cfg.Limits.Limits.MaxLoginBackoff != time.Minute || cfg.TLS == nil || cfg.TLS.ClientAuth != "request" {
		t.Fatalf("example read as %+v", cfg)
	}
	if err := cfg.Mesh.Validate(); err != nil || cfg.Mesh.LinkKeepAlive != 2*time.Second {
		t.Fatalf("example mesh section: %v, link keep alive %v", err, cfg.Mesh.LinkKeepAlive)
	}
	if c := cfg.Connectors; len(c.TTS) != 1 || len(c.ChirpStack) != 1 || c.TTS[0].Application != "wartberg-ttn" ||
		c.Liveness.OfflineAfter(20*time.Minute) != 42*time.Minute || c.CodecLimits.Timeout != 100*time.Millisecond {
		t.Fatalf("example connectors section read as %+v", c)
	}
}
