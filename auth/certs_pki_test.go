package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// certsCA is a test certificate authority.
type certsCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	// path is the CA certificate's PEM file.
	path string
}

// certsSpec describes a certificate to issue.
type certsSpec struct {
	cn          string
	org, ou     []string
	emails, dns []string
	ips         []net.IP
	uris        []string
	eku         []x509.ExtKeyUsage
	unknownEKU  bool
	notBefore   time.Time
	notAfter    time.Time
	key         crypto.Signer // generated if nil
	isCA        bool
}

// certsIssued is an issued certificate and its PEM files.
type certsIssued struct {
	cert     *x509.Certificate
	key      crypto.Signer
	certPath string
	keyPath  string
}

// pair returns the certificate as a tls.Certificate.
func (c *certsIssued) pair() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert}
}

func certsKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func certsSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func certsWritePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newCertsCA makes a self-signed CA and writes its certificate to
// dir/name-ca.pem.
func newCertsCA(t testing.TB, dir, name string) *certsCA {
	t.Helper()
	key := certsKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          certsSerial(t),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+"-ca.pem")
	certsWritePEM(t, path, "CERTIFICATE", der)
	return &certsCA{cert: cert, key: key, path: path}
}

// pool returns a pool holding the CA.
func (ca *certsCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue signs a certificate described by spec. When name is not empty the
// certificate and key are written to dir/name.pem and dir/name-key.pem.
func (ca *certsCA) issue(t testing.TB, dir, name string, spec certsSpec) *certsIssued {
	t.Helper()
	key := spec.key
	if key == nil {
		key = certsKey(t)
	}
	notBefore, notAfter := spec.notBefore, spec.notAfter
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(12 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   certsSerial(t),
		Subject:        pkix.Name{CommonName: spec.cn, Organization: spec.org, OrganizationalUnit: spec.ou},
		NotBefore:      notBefore,
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    spec.eku,
		EmailAddresses: spec.emails,
		DNSNames:       spec.dns,
		IPAddresses:    spec.ips,
	}
	if spec.unknownEKU {
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}}
	}
	for _, u := range spec.uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	if spec.isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := &certsIssued{cert: cert, key: key}
	if name != "" {
		c.certPath = filepath.Join(dir, name+".pem")
		c.keyPath = filepath.Join(dir, name+"-key.pem")
		certsWritePEM(t, c.certPath, "CERTIFICATE", der)
		pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certsWritePEM(t, c.keyPath, "PRIVATE KEY", pkcs8)
	}
	return c
}

// certsServerSpec is the spec of a server certificate for the loopback
// addresses.
func certsServerSpec() certsSpec {
	return certsSpec{
		cn:  "localhost",
		dns: []string{"localhost"},
		ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// certsClientSpec is the spec of a client certificate named cn.
func certsClientSpec(cn string) certsSpec {
	return certsSpec{cn: cn, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

// certsCopy copies file src over dst.
func certsCopy(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// certsServer is a TLS echo server on loopback.
type certsServer struct {
	ln     net.Listener
	addr   string
	states chan tls.ConnectionState

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// startCertsServer listens on 127.0.0.1 with cfg and echoes what each
// client sends. The state of each completed handshake is sent to states.
func startCertsServer(t testing.TB, cfg *tls.Config) *certsServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &certsServer{ln: ln, addr: ln.Addr().String(), states: make(chan tls.ConnectionState, 64)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				select {
				case s.states <- tc.ConnectionState():
				default:
				}
				_, _ = io.Copy(tc, tc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// certsClientConfig is a client configuration that trusts ca and, if
// client is not nil, always presents it (even when the server asks for
// certificates of other CAs).
func certsClientConfig(ca *certsCA, client *certsIssued) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.pool(), ServerName: "localhost"}
	if client != nil {
		pair := client.pair()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &pair, nil
		}
	}
	return cfg
}

// certsDial connects to addr and checks that the connection echoes. With
// TLS 1.3 a server's refusal of the client's certificate reaches the
// client after its handshake, so the echo is part of the check.
func certsDial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := certsEcho(conn, "ping"); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// certsEcho writes msg to conn and reads it back.
func certsEcho(conn net.Conn, msg string) error {
	if _, err := io.WriteString(conn, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo: got " + string(buf) + ", want " + msg)
	}
	return nil
}
