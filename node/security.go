package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/citymesh/citymesh/auth"
)

// security is what a node builds from the tls, auth, acl and audit parts of
// its configuration, and reloads.
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

// newSecurity loads the certificates, the authentication back ends, the ACL
// and opens the audit log. Its errors name the setting.
func newSecurity(cfg *Config, log *slog.Logger) (*security, error) {
	s := &security{audit: slog.New(slog.DiscardHandler)}
	if cfg.TLS != nil {
		t, err := auth.NewTLS(*cfg.TLS)
		if err != nil {
			return nil, fieldError("tls", err)
		}
		s.tls = t
	}
	chain, reload, err := cfg.Auth.Build()
	if err != nil {
		return nil, fieldError("auth", err)
	}
	s.chain, s.reloadAuth = chain, reload
	if cfg.Auth.Certificates != nil && (cfg.TLS == nil || cfg.TLS.ClientCA == "") {
		log.Warn("auth certificates is configured but tls has no client_ca: no client presents a certificate")
	}
	acl, err := cfg.ACL.Build()
	if err != nil {
		return nil, fieldError("acl", err)
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
			return nil, &FieldError{Field: "audit", Err: err}
		}
		s.audit, s.auditFile = slog.New(slog.NewJSONHandler(f, nil)), f
	}
	switch {
	case chain == nil:
		log.Warn("no authentication configured: every client is anonymous (listeners are on loopback unless allow_remote_anonymous)")
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

// reload reads the certificates, the password file and JWT keys again, and
// takes the ACL rules of cfg. Each part that fails keeps its previous state;
// the errors are returned together. It reports whether it applied cfg's ACL.
func (s *security) reload(cfg *Config) (aclApplied bool, err error) {
	var errs []error
	if s.tls != nil {
		if err := s.tls.Reload(); err != nil {
			errs = append(errs, fieldError("tls", err))
		}
	}
	if s.reloadAuth != nil {
		if err := s.reloadAuth(); err != nil {
			errs = append(errs, fieldError("auth", err))
		}
	}
	if s.acl != nil {
		acl, err := cfg.ACL.Build()
		switch {
		case err != nil:
			errs = append(errs, fieldError("acl", err))
		case acl == nil:
			errs = append(errs, errors.New("acl: the configuration no longer has rules; restart to turn access control off"))
		default:
			s.acl.p.Store(acl)
			aclApplied = true
		}
	}
	return aclApplied, errors.Join(errs...)
}

// summary describes the authentication for the start-up log: the back ends,
// the users of the password file, and whether anonymous clients get in.
func (s *security) summary() []any {
	backends := []string{}
	users := 0
	anonymous := true
	if s.chain != nil {
		anonymous = s.chain.AllowAnonymous
		for _, b := range s.chain.Backends {
			switch b := b.(type) {
			case *auth.CertificateAuth:
				backends = append(backends, "certificates")
			case *auth.JWT:
				backends = append(backends, "jwt")
			case *auth.PasswordFile:
				backends = append(backends, "password_file")
				users = len(b.Users())
			default:
				backends = append(backends, fmt.Sprintf("%T", b))
			}
		}
	}
	if len(backends) == 0 {
		backends = append(backends, "none")
	}
	return []any{"backends", backends, "users", users, "anonymous", anonymous}
}

func (s *security) close() {
	if s.auditFile != nil {
		s.auditFile.Close()
	}
}
