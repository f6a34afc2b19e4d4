package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/citymesh/citymesh/bus"
)

// remoteFlags are the flags of the `citymesh run` commands that connect to
// a broker through the remote bus: its URL, the client id, the user and
// the file of its password, and the TLS flags.
type remoteFlags struct {
	broker, clientID, username, passwordFile string
	tls                                      tlsFlags

	// Made by resolve.
	password []byte
	tc       *tls.Config
}

// register defines the flags on fs; the usages of --broker, --client-id
// and --username are the command's.
func (r *remoteFlags) register(fs *flag.FlagSet, brokerUsage, clientIDUsage, usernameUsage string) {
	fs.StringVar(&r.broker, "broker", "mqtt://127.0.0.1:1883", brokerUsage)
	fs.StringVar(&r.clientID, "client-id", "", clientIDUsage)
	fs.StringVar(&r.username, "username", "", usernameUsage)
	fs.StringVar(&r.passwordFile, "password-file", "", "`file` holding the password at the broker (its first line)")
	r.tls.register(fs)
}

// resolve checks the broker's URL against the TLS flags, loads the TLS
// configuration and reads the password file.
func (r *remoteFlags) resolve() error {
	u, err := url.Parse(r.broker)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--broker %q: want a URL such as mqtt://127.0.0.1:1883", r.broker)
	}
	if r.tls.enabled() && (u.Scheme == "mqtt" || u.Scheme == "tcp" || u.Scheme == "ws") {
		return fmt.Errorf("--broker %s is not a TLS URL, but TLS flags were given: use mqtts:// (tls://) or wss://", r.broker)
	}
	if r.tc, err = r.tls.config(u.Hostname()); err != nil {
		return err
	}
	if r.passwordFile != "" {
		b, err := os.ReadFile(r.passwordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		r.password = []byte(strings.TrimSpace(line))
	}
	return nil
}

// defaultClientID sets the client id, when none was given, to prefix
// followed by the host's name (dots as dashes).
func (r *remoteFlags) defaultClientID(prefix string) {
	if r.clientID == "" {
		host, _ := os.Hostname()
		r.clientID = prefix + strings.ReplaceAll(host, ".", "-")
	}
}

// dial connects to the broker as clientID (within a minute of trying).
func (r *remoteFlags) dial(ctx context.Context, log *slog.Logger, clientID string) (*bus.Remote, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return bus.DialRemote(ctx, bus.RemoteOptions{URL: r.broker, ClientID: clientID, Username: r.username,
		Password: r.password, Logger: log, TLSConfig: r.tc})
}
