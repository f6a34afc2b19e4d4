package remotewrite

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults for the Config fields left at their zero value.
const (
	DefaultMaxSamplesPerSend = 5000
	DefaultBatchWait         = time.Second
	DefaultTimeout           = 30 * time.Second
	DefaultMinBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff        = 10 * time.Second
	DefaultMaxQueueSamples   = 50_000_000
	DefaultMaxQueueBytes     = 4 << 30
)

// Config configures a Writer. The zero value of every field but URL and Dir
// takes the default named after it; it is read from the node's YAML
// configuration (yaml tags) and from code.
type Config struct {
	// URL is the receiver's remote write endpoint, e.g.
	// http://victoria:8428/api/v1/write or http://mimir/api/v1/push.
	URL string `yaml:"url"`
	// Dir is the directory of the durable queue; it is created if missing.
	// Only one Writer may have it open at a time.
	Dir string `yaml:"dir"`

	// BasicAuth, when set, authenticates every request with HTTP basic
	// authentication. BearerToken and BearerTokenFile, when set (only one
	// of them, and not with BasicAuth), send "Authorization: Bearer ...".
	BasicAuth       *BasicAuth `yaml:"basic_auth,omitempty"`
	BearerToken     string     `yaml:"bearer_token,omitempty"`
	BearerTokenFile string     `yaml:"bearer_token_file,omitempty"`
	// Headers are added to every request, e.g. X-Scope-OrgID for a
	// multi-tenant Mimir or Cortex. They cannot override the protocol's
	// own headers.
	Headers map[string]string `yaml:"headers,omitempty"`
	// TLS configures the client side of TLS for https URLs.
	TLS TLSConfig `yaml:"tls,omitempty"`
	// Timeout bounds one request (DefaultTimeout).
	Timeout time.Duration `yaml:"timeout,omitempty"`

	// MaxSamplesPerSend is the largest number of samples in one request
	// (DefaultMaxSamplesPerSend).
	MaxSamplesPerSend int `yaml:"max_samples_per_send,omitempty"`
	// BatchWait is how long the sender waits for a request to fill up
	// before it sends a smaller one (DefaultBatchWait).
	BatchWait time.Duration `yaml:"batch_wait,omitempty"`
	// MinBackoff and MaxBackoff bound the wait between two attempts of a
	// failed request; it doubles from MinBackoff up to MaxBackoff, with
	// jitter (DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff time.Duration `yaml:"min_backoff,omitempty"`
	MaxBackoff time.Duration `yaml:"max_backoff,omitempty"`

	// MaxQueueSamples and MaxQueueBytes are the queue's quota: an Append
	// that would take the queue over either fails with ErrQueueFull
	// (DefaultMaxQueueSamples, DefaultMaxQueueBytes). Bytes count the
	// encoded records, before Pebble's own compression.
	MaxQueueSamples int64 `yaml:"max_queue_samples,omitempty"`
	MaxQueueBytes   int64 `yaml:"max_queue_bytes,omitempty"`

	// Logger receives the sender's warnings (slog.Default when nil).
	Logger *slog.Logger `yaml:"-"`
	// Transport, when set, replaces the HTTP transport built from TLS
	// (for tests and for callers with their own proxies).
	Transport http.RoundTripper `yaml:"-"`
}

// BasicAuth is a user name and a password, given inline or in a file.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
}

// TLSConfig is the client side of TLS: the authorities trusted for the
// receiver's certificate (the system's when CAFile is empty), a client
// certificate for mutual TLS, and the name to verify.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
}

// withDefaults returns c with its zero fields set to the defaults, checked.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("remotewrite: url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, fmt.Errorf("remotewrite: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("remotewrite: url %q: want http:// or https:// with a host", c.URL)
	}
	if c.Dir == "" {
		return c, errors.New("remotewrite: dir (the queue's directory) is required")
	}
	auths := 0
	if c.BasicAuth != nil {
		auths++
		if c.BasicAuth.Password != "" && c.BasicAuth.PasswordFile != "" {
			return c, errors.New("remotewrite: basic_auth: password and password_file are exclusive")
		}
	}
	if c.BearerToken != "" {
		auths++
	}
	if c.BearerTokenFile != "" {
		auths++
	}
	if auths > 1 {
		return c, errors.New("remotewrite: basic_auth, bearer_token and bearer_token_file are exclusive")
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"max_samples_per_send", int64(c.MaxSamplesPerSend)},
		{"batch_wait", int64(c.BatchWait)},
		{"timeout", int64(c.Timeout)},
		{"min_backoff", int64(c.MinBackoff)},
		{"max_backoff", int64(c.MaxBackoff)},
		{"max_queue_samples", c.MaxQueueSamples},
		{"max_queue_bytes", c.MaxQueueBytes},
	} {
		if n.v < 0 {
			return c, fmt.Errorf("remotewrite: %s must not be negative", n.name)
		}
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	def(&c.BatchWait, DefaultBatchWait)
	def(&c.Timeout, DefaultTimeout)
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.MaxSamplesPerSend == 0 {
		c.MaxSamplesPerSend = DefaultMaxSamplesPerSend
	}
	if c.MaxQueueSamples == 0 {
		c.MaxQueueSamples = DefaultMaxQueueSamples
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for k := range c.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "Authorization", "Content-Length":
			return c, fmt.Errorf("remotewrite: headers: %s is set by the writer", k)
		}
	}
	return c, nil
}

// authorization returns the Authorization header's value ("" for none),
// reading the secret files once, when the Writer opens.
func (c Config) authorization() (user, pass, bearer string, err error) {
	switch {
	case c.BasicAuth != nil:
		pass = c.BasicAuth.Password
		if c.BasicAuth.PasswordFile != "" {
			b, err := os.ReadFile(c.BasicAuth.PasswordFile)
			if err != nil {
				return "", "", "", fmt.Errorf("remotewrite: basic_auth: %w", err)
			}
			pass = strings.TrimSpace(string(b))
		}
		return c.BasicAuth.Username, pass, "", nil
	case c.BearerTokenFile != "":
		b, err := os.ReadFile(c.BearerTokenFile)
		if err != nil {
			return "", "", "", fmt.Errorf("remotewrite: bearer_token_file: %w", err)
		}
		return "", "", strings.TrimSpace(string(b)), nil
	default:
		return "", "", c.BearerToken, nil
	}
}

// client builds the HTTP client for c.
func (c Config) client() (*http.Client, error) {
	if c.Transport != nil {
		return &http.Client{Transport: c.Transport, Timeout: c.Timeout}, nil
	}
	tc := &tls.Config{
		ServerName:         c.TLS.ServerName,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("remotewrite: tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("remotewrite: tls ca_file %s: no PEM certificate", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("remotewrite: tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{Transport: tr, Timeout: c.Timeout}, nil
}
