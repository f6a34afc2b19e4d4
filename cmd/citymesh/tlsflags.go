package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// tlsFlags are the TLS flags of pub, sub and bench, named as mosquitto_pub
// and mosquitto_sub name them. Giving --cafile or --cert makes the
// connection use TLS.
type tlsFlags struct {
	cafile, cert, key string
	insecure          bool
	version           string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cafile, "cafile", "", "PEM `file` of the CA certificates that sign the broker's certificate (turns TLS on)")
	fs.StringVar(&f.cert, "cert", "", "client certificate `file` (PEM), for brokers that ask for one (turns TLS on)")
	fs.StringVar(&f.key, "key", "", "client private key `file` (PEM) of --cert")
	fs.BoolVar(&f.insecure, "insecure", false, "do not check that the broker's certificate names the host (the chain is still verified)")
	fs.StringVar(&f.version, "tls-version", "", "lowest TLS `version`: tlsv1.2 (default) or tlsv1.3")
}

// enabled reports whether the flags ask for TLS.
func (f *tlsFlags) enabled() bool { return f.cafile != "" || f.cert != "" }

// config returns the client TLS configuration for a broker called host, or
// nil when TLS was not asked for.
func (f *tlsFlags) config(host string) (*tls.Config, error) {
	if !f.enabled() && !f.insecure && f.version == "" {
		return nil, nil
	}
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	switch f.version {
	case "", "tlsv1.2":
	case "tlsv1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("--tls-version %q: want tlsv1.2 or tlsv1.3", f.version)
	}
	if f.cafile != "" {
		pem, err := os.ReadFile(f.cafile)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile %s: no PEM certificates", f.cafile)
		}
		c.RootCAs = pool
	}
	if (f.cert == "") != (f.key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if f.insecure {
		// Verify the chain, but not the name: what mosquitto's --insecure
		// does.
		roots := c.RootCAs
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return c, nil
}
