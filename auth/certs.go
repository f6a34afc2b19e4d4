package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ALPNProtocol is the application-layer protocol name of MQTT, as registered
// with IANA for TLS ALPN (RFC 7301). A server made by TLS selects it when a
// client offers it; clients that offer no ALPN, or only other protocols, are
// not refused.
const ALPNProtocol = "mqtt"

// TLSConfig is the TLS part of a listener's configuration in the node's YAML
// file. File names are read by NewTLS and again by each Reload.
type TLSConfig struct {
	// Cert is the PEM file of the server certificate chain: the server's
	// certificate first, then the intermediate certificates that issued it.
	Cert string `yaml:"cert"`
	// Key is the PEM file of the server certificate's private key (PKCS #1,
	// PKCS #8 or SEC 1, unencrypted).
	Key string `yaml:"key"`
	// ClientCA is a PEM bundle of the certificate authorities that sign
	// client certificates. Empty means that clients are not asked for
	// certificates.
	ClientCA string `yaml:"client_ca"`
	// ClientAuth says what the server does with client certificates:
	// "none" (do not ask for one), "request" (ask for one and verify it
	// against ClientCA if the client sends it, but let clients without one
	// connect) or "require" (mutual TLS: refuse clients without a valid
	// certificate). Empty means "none" without ClientCA and "request" with
	// one.
	ClientAuth string `yaml:"client_auth"`
	// MinVersion is the lowest TLS version accepted: "1.2" (the default)
	// or "1.3". Older versions are never accepted.
	MinVersion string `yaml:"min_version"`
	// CipherSuites restricts the TLS 1.2 cipher suites, by the names
	// crypto/tls gives them (for example
	// "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"). Empty means Go's
	// defaults, which are safe. Suites Go deems insecure are refused, and so
	// are TLS 1.3 suites, which are always enabled and cannot be chosen.
	CipherSuites []string `yaml:"cipher_suites"`
}

// TLS is the TLS configuration of a listener, loaded from the files a
// TLSConfig names. It hands out a *tls.Config whose certificate and client
// CA pool can be replaced by Reload while the listener runs. A TLS is safe
// for concurrent use.
type TLS struct {
	cfg        TLSConfig
	minVersion uint16
	clientAuth tls.ClientAuthType
	suites     []uint16

	reloadMu sync.Mutex // serializes Reload
	current  atomic.Pointer[tlsSnapshot]
}

// tlsSnapshot is what one generation of the files gave: the configurations
// handshakes use, with and without the MQTT ALPN protocol.
type tlsSnapshot struct {
	leaf        *x509.Certificate
	withALPN    *tls.Config
	withoutALPN *tls.Config
}

// NewTLS checks cfg and loads the files it names. It refuses, with an error
// naming the file and the problem, a missing or unreadable file, a file
// without the expected PEM blocks, a key that does not match the
// certificate, a server certificate that is expired or not yet valid or
// whose extended key usage excludes TLS servers, a chain in the wrong
// order, and unknown or unsafe settings.
func NewTLS(cfg TLSConfig) (*TLS, error) {
	t := &TLS{cfg: cfg}
	if cfg.Cert == "" {
		return nil, errors.New("auth: tls: no certificate file (cert)")
	}
	if cfg.Key == "" {
		return nil, errors.New("auth: tls: no key file (key)")
	}
	switch cfg.MinVersion {
	case "", "1.2":
		t.minVersion = tls.VersionTLS12
	case "1.3":
		t.minVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("auth: tls: min_version %q: want \"1.2\" or \"1.3\"", cfg.MinVersion)
	}
	switch cfg.ClientAuth {
	case "":
		t.clientAuth = tls.NoClientCert
		if cfg.ClientCA != "" {
			t.clientAuth = tls.VerifyClientCertIfGiven
		}
	case "none":
		if cfg.ClientCA != "" {
			return nil, fmt.Errorf("auth: tls: client_ca %s is set but client_auth is \"none\"; use \"request\" or \"require\", or remove client_ca", cfg.ClientCA)
		}
		t.clientAuth = tls.NoClientCert
	case "request":
		t.clientAuth = tls.VerifyClientCertIfGiven
	case "require":
		t.clientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("auth: tls: client_auth %q: want \"none\", \"request\" or \"require\"", cfg.ClientAuth)
	}
	if t.clientAuth != tls.NoClientCert && cfg.ClientCA == "" {
		return nil, fmt.Errorf("auth: tls: client_auth %q needs client_ca, the CAs that sign client certificates", cfg.ClientAuth)
	}
	suites, err := tlsCipherSuites(cfg.CipherSuites, t.minVersion)
	if err != nil {
		return nil, err
	}
	t.suites = suites
	s, err := t.load()
	if err != nil {
		return nil, err
	}
	t.current.Store(s)
	return t, nil
}

// Config returns a configuration for tls.NewListener or http.Server. Every
// handshake reads the certificate, the client CA pool and the other
// settings from the snapshot Reload last stored, so connections accepted
// after a Reload use the new files and established connections are left
// alone. Changing the returned Config does not change the handshakes.
//
// The server selects ALPNProtocol when the client offers it and no protocol
// otherwise: a client that offers only other protocols (a browser offering
// "h2" and "http/1.1" to a WebSocket listener) is not refused and gets
// HTTP/1.1.
func (t *TLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion:         t.minVersion,
		CipherSuites:       slices.Clone(t.suites),
		GetConfigForClient: t.configForClient,
	}
}

func (t *TLS) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	s := t.current.Load()
	if slices.Contains(hello.SupportedProtos, ALPNProtocol) {
		return s.withALPN, nil
	}
	return s.withoutALPN, nil
}

// Reload reads the files again and, if they are all valid, makes new
// handshakes use them; established connections keep the certificates they
// were made with. A failed Reload changes nothing and returns the reason.
// It is meant to be called on SIGHUP, after the certificate and key files
// have both been replaced (preferably each by an atomic rename). The
// settings of the TLSConfig (file names, client_auth, versions, suites)
// stay those given to NewTLS. A client resuming a TLS session made before
// the Reload has its certificate chain checked again against the new
// client CAs by crypto/tls.
func (t *TLS) Reload() error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	s, err := t.load()
	if err != nil {
		return err
	}
	t.current.Store(s)
	return nil
}

// Certificate returns the server certificate new handshakes present, for
// logging and for watching its expiry. The caller must not modify it.
func (t *TLS) Certificate() *x509.Certificate {
	return t.current.Load().leaf
}

// load reads and checks the files of t.cfg.
func (t *TLS) load() (*tlsSnapshot, error) {
	certPEM, chain, err := tlsReadCertificates(t.cfg.Cert, "certificate")
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(t.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: key: %w", err)
	}
	if err := tlsCheckKeyPEM(t.cfg.Key, keyPEM); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: key %s with certificate %s: %w", t.cfg.Key, t.cfg.Cert, err)
	}
	leaf := chain[0]
	pair.Leaf = leaf
	if err := tlsCheckServerCertificate(t.cfg.Cert, chain, time.Now()); err != nil {
		return nil, err
	}
	if err := tlsCheckSuitesFitKey(t.cfg.CipherSuites, t.minVersion, t.cfg.Cert, leaf); err != nil {
		return nil, err
	}
	var pool *x509.CertPool
	if t.cfg.ClientCA != "" {
		_, cas, err := tlsReadCertificates(t.cfg.ClientCA, "client CA")
		if err != nil {
			return nil, err
		}
		pool = x509.NewCertPool()
		for _, ca := range cas {
			pool.AddCert(ca)
		}
	}
	base := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   t.minVersion,
		CipherSuites: slices.Clone(t.suites),
		ClientAuth:   t.clientAuth,
		ClientCAs:    pool,
	}
	withALPN := base.Clone()
	withALPN.NextProtos = []string{ALPNProtocol}
	return &tlsSnapshot{leaf: leaf, withALPN: withALPN, withoutALPN: base}, nil
}

// tlsReadCertificates reads the CERTIFICATE blocks of a PEM file. what names
// the file's role in errors.
func tlsReadCertificates(path, what string) ([]byte, []*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: tls: %s: %w", what, err)
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: tls: %s %s: certificate %d: %w", what, path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("auth: tls: %s %s: no CERTIFICATE PEM block", what, path)
	}
	return data, certs, nil
}

// tlsCheckKeyPEM checks that a key file holds an unencrypted private key, so
// that the error names the real problem rather than a key mismatch.
func tlsCheckKeyPEM(path string, data []byte) error {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return fmt.Errorf("auth: tls: key %s: no PRIVATE KEY PEM block", path)
		}
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY", block.Headers["Proc-Type"] == "4,ENCRYPTED":
			return fmt.Errorf("auth: tls: key %s: the key is encrypted; give an unencrypted key", path)
		case block.Type == "PRIVATE KEY" || strings.HasSuffix(block.Type, " PRIVATE KEY"):
			return nil
		}
	}
}

// tlsCheckServerCertificate checks the server's chain: its leaf must be
// valid now and usable by a TLS server, and each certificate must be issued
// by the next.
func tlsCheckServerCertificate(path string, chain []*x509.Certificate, now time.Time) error {
	leaf := chain[0]
	const layout = time.RFC3339
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("auth: tls: certificate %s (%s) expired at %s", path, leaf.Subject, leaf.NotAfter.UTC().Format(layout))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("auth: tls: certificate %s (%s) is not valid before %s", path, leaf.Subject, leaf.NotBefore.UTC().Format(layout))
	}
	if !certHasUsage(leaf, x509.ExtKeyUsageServerAuth) {
		return fmt.Errorf("auth: tls: certificate %s (%s): its extended key usage does not allow TLS servers (serverAuth)", path, leaf.Subject)
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("auth: tls: certificate %s: certificate %d (%s) is not issued by certificate %d (%s); list the server certificate first, then each issuer: %w",
				path, i+1, chain[i].Subject, i+2, chain[i+1].Subject, err)
		}
	}
	return nil
}

// certHasUsage reports whether c may be used for usage: it has no extended
// key usage restriction, or its restriction includes usage or "any".
func certHasUsage(c *x509.Certificate, usage x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, usage) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// tlsCipherSuites maps cipher suite names to IDs, refusing insecure and TLS
// 1.3 suites.
func tlsCipherSuites(names []string, minVersion uint16) ([]uint16, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if minVersion >= tls.VersionTLS13 {
		return nil, errors.New("auth: tls: cipher_suites only apply to TLS 1.2; with min_version \"1.3\" leave them out")
	}
	var ids []uint16
	for _, name := range names {
		if i := slices.IndexFunc(tls.InsecureCipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == name }); i >= 0 {
			return nil, fmt.Errorf("auth: tls: cipher suite %s is insecure", name)
		}
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("auth: tls: unknown cipher suite %q", name)
		}
		s := tls.CipherSuites()[i]
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			return nil, fmt.Errorf("auth: tls: cipher suite %s is a TLS 1.3 suite; those are always enabled and cannot be chosen", name)
		}
		if !slices.Contains(ids, s.ID) {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// tlsCheckSuitesFitKey checks that a TLS 1.2 client can use the server's key
// with one of the configured cipher suites.
func tlsCheckSuitesFitKey(names []string, minVersion uint16, path string, leaf *x509.Certificate) error {
	if len(names) == 0 || minVersion >= tls.VersionTLS13 {
		return nil
	}
	var prefix, kind string
	switch leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		prefix, kind = "TLS_ECDHE_RSA_", "RSA"
	case *ecdsa.PublicKey, ed25519.PublicKey:
		prefix, kind = "TLS_ECDHE_ECDSA_", "ECDSA or Ed25519"
	default:
		return nil
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) }) {
		return nil
	}
	return fmt.Errorf("auth: tls: certificate %s has an %s key but no cipher suite in cipher_suites starts with %s; TLS 1.2 clients could not connect", path, kind, prefix)
}

// CertificateAuth authenticates clients by the certificate they presented
// in the TLS handshake (mutual TLS). It trusts that the chain in
// ConnectRequest.Certificates was verified by the handshake against the
// listener's client CAs (see TLSConfig.ClientCA) and only maps its leaf to
// an identity. As a second line of defence it refuses a leaf that is not
// valid now or whose extended key usage does not allow TLS clients (a leaf
// without extended key usage allows everything); the handshake refuses
// those too.
//
// The zero CertificateAuth names users by their certificate's subject
// common name and gives them no tenant, groups or administrator rights.
type CertificateAuth struct {
	// UsernameFrom says which part of the certificate names the user:
	// "cn" (the default, the subject common name), "san-email",
	// "san-dns" or "san-uri" (the first subject alternative name of that
	// kind). A certificate without it is refused with ErrBadCredentials,
	// and so is a name holding the MQTT wildcards '+' or '#', a NUL, or
	// invalid UTF-8, since names are substituted into ACL topic filters.
	UsernameFrom string `yaml:"username_from"`
	// TenantFrom says which subject attribute gives the tenant: "o"
	// (Organization), "ou" (OrganizationalUnit) or "" (no tenant from
	// certificates).
	TenantFrom string `yaml:"tenant_from"`
	// Tenants maps values of the TenantFrom attribute to tenants. When it
	// is nil, the attribute's value is the tenant itself, and a
	// certificate must carry exactly one such value. When it is not nil, a
	// certificate none of whose values is in it, or whose values map to
	// different tenants, is refused with ErrNotAuthorized; a value mapped
	// to "" gives no tenant.
	Tenants map[string]string `yaml:"tenants"`
	// AdminUsers are the certificate names of administrators.
	AdminUsers []string `yaml:"admin_users"`
	// Groups maps certificate names to the users' groups.
	Groups map[string][]string `yaml:"groups"`
	// AllowUsernameOverride lets a client connect with an MQTT user name
	// other than its certificate's name, which then becomes the identity's
	// user. Without it such a client is refused with ErrBadCredentials.
	// Administrator rights, groups and tenant still come from the
	// certificate, but user-based ACL rules follow the chosen name, so set
	// it only when every certificate holder may act as any user (a
	// gateway connecting on behalf of devices).
	AllowUsernameOverride bool `yaml:"allow_username_override"`
}

// Validate reports a configuration error: an unknown UsernameFrom or
// TenantFrom, Tenants without TenantFrom, or a tenant name that cannot be
// one.
func (a *CertificateAuth) Validate() error {
	switch a.UsernameFrom {
	case "", "cn", "san-email", "san-dns", "san-uri":
	default:
		return fmt.Errorf("auth: certificate: username_from %q: want \"cn\", \"san-email\", \"san-dns\" or \"san-uri\"", a.UsernameFrom)
	}
	switch a.TenantFrom {
	case "":
		if len(a.Tenants) > 0 {
			return errors.New("auth: certificate: tenants are set but tenant_from is empty; set it to \"o\" or \"ou\"")
		}
	case "o", "ou":
	default:
		return fmt.Errorf("auth: certificate: tenant_from %q: want \"o\", \"ou\" or \"\"", a.TenantFrom)
	}
	for value, tenant := range a.Tenants {
		if tenant != "" && !certValidTenant(tenant) {
			return fmt.Errorf("auth: certificate: tenants: %q maps to %q, which is not a valid tenant name", value, tenant)
		}
	}
	return nil
}

// Authenticate implements Authenticator. It returns ErrNoCredentials when
// the client presented no certificate.
func (a *CertificateAuth) Authenticate(ctx context.Context, req *ConnectRequest) (*Identity, error) {
	if len(req.Certificates) == 0 {
		return nil, ErrNoCredentials
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	leaf := req.Certificates[0]
	if leaf == nil {
		return nil, fmt.Errorf("%w: empty client certificate", ErrBadCredentials)
	}
	now := time.Now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("%w: client certificate %q is valid only from %s to %s",
			ErrBadCredentials, leaf.Subject.String(), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if !certHasUsage(leaf, x509.ExtKeyUsageClientAuth) {
		return nil, fmt.Errorf("%w: client certificate %q: its extended key usage does not allow TLS clients (clientAuth)", ErrBadCredentials, leaf.Subject.String())
	}
	name, err := a.name(leaf)
	if err != nil {
		return nil, err
	}
	user := name
	if req.Username != "" && req.Username != name {
		if !a.AllowUsernameOverride {
			return nil, fmt.Errorf("%w: user name %q differs from the client certificate's name %q", ErrBadCredentials, req.Username, name)
		}
		if !certValidName(req.Username) {
			return nil, fmt.Errorf("%w: user name %q holds '+', '#', a NUL or invalid UTF-8", ErrBadCredentials, req.Username)
		}
		user = req.Username
	}
	tenant, err := a.tenant(leaf)
	if err != nil {
		return nil, err
	}
	return &Identity{
		User:     user,
		ClientID: req.ClientID,
		Groups:   slices.Clone(a.Groups[name]),
		Tenant:   tenant,
		Admin:    slices.Contains(a.AdminUsers, name),
		Method:   "certificate",
	}, nil
}

// name returns the user name the certificate gives.
func (a *CertificateAuth) name(leaf *x509.Certificate) (string, error) {
	var name, from string
	switch a.UsernameFrom {
	case "", "cn":
		name, from = leaf.Subject.CommonName, "subject common name"
	case "san-email":
		from = "e-mail subject alternative name"
		if len(leaf.EmailAddresses) > 0 {
			name = leaf.EmailAddresses[0]
		}
	case "san-dns":
		from = "DNS subject alternative name"
		if len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		}
	case "san-uri":
		from = "URI subject alternative name"
		if len(leaf.URIs) > 0 && leaf.URIs[0] != nil {
			name = leaf.URIs[0].String()
		}
	}
	if name == "" {
		return "", fmt.Errorf("%w: client certificate %q has no %s to name the user", ErrBadCredentials, leaf.Subject.String(), from)
	}
	if !certValidName(name) {
		return "", fmt.Errorf("%w: client certificate %q: its %s %q holds '+', '#', a NUL or invalid UTF-8", ErrBadCredentials, leaf.Subject.String(), from, name)
	}
	return name, nil
}

// tenant returns the tenant the certificate gives.
func (a *CertificateAuth) tenant(leaf *x509.Certificate) (string, error) {
	var values []string
	var attr string
	switch a.TenantFrom {
	case "":
		return "", nil
	case "o":
		values, attr = leaf.Subject.Organization, "organization (O)"
	case "ou":
		values, attr = leaf.Subject.OrganizationalUnit, "organizational unit (OU)"
	}
	subject := leaf.Subject.String()
	var tenants []string
	for _, v := range values {
		t := v
		if a.Tenants != nil {
			var ok bool
			if t, ok = a.Tenants[v]; !ok {
				continue
			}
		} else if !certValidTenant(v) {
			return "", fmt.Errorf("%w: client certificate %q: its %s %q is not a valid tenant name", ErrNotAuthorized, subject, attr, v)
		}
		if !slices.Contains(tenants, t) {
			tenants = append(tenants, t)
		}
	}
	switch len(tenants) {
	case 0:
		if len(values) == 0 {
			return "", fmt.Errorf("%w: client certificate %q has no %s to give its tenant", ErrNotAuthorized, subject, attr)
		}
		return "", fmt.Errorf("%w: client certificate %q: no tenant is configured for its %s %q", ErrNotAuthorized, subject, attr, values)
	case 1:
		return tenants[0], nil
	}
	return "", fmt.Errorf("%w: client certificate %q: its %s %q gives several tenants %q", ErrNotAuthorized, subject, attr, values, tenants)
}

// certValidName reports whether a user name may be substituted into topic
// filters: valid UTF-8 without NUL and without the wildcards '+' and '#'.
func certValidName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsAny(s, "+#\x00")
}

// certValidTenant reports whether s can name a tenant's topic namespace: a
// valid name that is one topic level and does not start with '$'.
func certValidTenant(s string) bool {
	return s != "" && certValidName(s) && !strings.Contains(s, "/") && !strings.HasPrefix(s, "$")
}

var _ Authenticator = (*CertificateAuth)(nil)
