package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
)

// security is what `citymesh serve` builds from the tls, auth, acl, audit
// and limits parts of its configuration, and reloads on SIGHUP.
type security struct {
	tls        *auth.TLS
	chain      *auth.Chain
	reloadAuth func() error
	acl        *aclSwitch // nil without access control
	audit      *slog.Logger
	auditFile  io.Closer
}

// aclSwitch is an Authorizer whose rules can be replaced while the node
// runs: connections made afterwards get the new rules.
type aclSwitch struct{ p atomic.Pointer[auth.ACL] }

// For implements auth.Authorizer.
func (a *aclSwitch) For(id *auth.Identity) auth.Access { return a.p.Load().For(id) }

func newSecurity(cfg *serveConfig, log *slog.Logger) (*security, error) {
	s := &security{audit: slog.New(slog.DiscardHandler)}
	if cfg.TLS != nil {
		t, err := auth.NewTLS(*cfg.TLS)
		if err != nil {
			return nil, err
		}
		s.tls = t
	}
	chain, reload, err := cfg.Auth.Build()
	if err != nil {
		return nil, err
	}
	s.chain, s.reloadAuth = chain, reload
	if cfg.Auth.Certificates != nil && (cfg.TLS == nil || cfg.TLS.ClientCA == "") {
		log.Warn("auth certificates is configured but tls has no client_ca: no client presents a certificate")
	}
	acl, err := cfg.ACL.Build()
	if err != nil {
		return nil, err
	}
	if acl != nil {
		s.acl = &aclSwitch{}
		s.acl.p.Store(acl)
	}
	switch cfg.Audit {
	case "":
	case "-":
		s.audit = slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("log", "audit")
	default:
		f, err := os.OpenFile(cfg.Audit, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		s.audit, s.auditFile = slog.New(slog.NewJSONHandler(f, nil)), f
	}
	switch {
	case chain == nil:
		log.Warn("no authentication configured: every client is anonymous (listeners are on loopback unless --allow-remote-anonymous)")
	case chain.AllowAnonymous:
		log.Warn("anonymous clients are allowed alongside authenticated ones")
	}
	return s, nil
}

// authenticator returns the configured chain, or nil (everyone anonymous).
func (s *security) authenticator() auth.Authenticator {
	if s.chain == nil {
		return nil
	}
	return s.chain
}

// authorizer returns the access control, or nil (everything allowed).
func (s *security) authorizer() auth.Authorizer {
	if s.acl == nil {
		return nil
	}
	return s.acl
}

// limits translates the configuration's limits for the broker.
func (s *security) limits(l limits) broker.Limits {
	return broker.Limits{
		MaxConnections: l.MaxConnections, MaxConnectionsPerAddress: l.MaxConnectionsPerAddress,
		ConnectRate: l.ConnectRate, ConnectBurst: l.ConnectBurst,
		LoginFailures: l.LoginFailures, MaxLoginBackoff: l.MaxLoginBackoff,
		PublishRate: l.PublishRate, PublishBurst: l.PublishBurst, PublishBandwidth: l.PublishBandwidth,
		MaxSubscriptions: l.MaxSubscriptions, MaxTopicLength: l.MaxTopicLength, MaxTopicLevels: l.MaxTopicLevels,
	}
}

// reload reads certificates, the password file and JWT keys again, and the
// ACL rules from configFile. Each part that fails keeps its previous state;
// the errors are returned together.
func (s *security) reload(configFile string) error {
	var errs []error
	if s.tls != nil {
		errs = append(errs, s.tls.Reload())
	}
	if s.reloadAuth != nil {
		errs = append(errs, s.reloadAuth())
	}
	if s.acl != nil && configFile != "" {
		var cfg serveConfig
		if err := loadServeConfig(configFile, &cfg); err != nil {
			errs = append(errs, err)
		} else if acl, err := cfg.ACL.Build(); err != nil {
			errs = append(errs, err)
		} else if acl == nil {
			errs = append(errs, errors.New("acl: the configuration no longer has rules; restart to turn access control off"))
		} else {
			s.acl.p.Store(acl)
		}
	}
	return errors.Join(errs...)
}

func (s *security) close() {
	if s.auditFile != nil {
		s.auditFile.Close()
	}
}
