package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the authentication part of a node's YAML configuration:
//
//	auth:
//	  allow_anonymous: false
//	  password_file: /etc/citymesh/passwd     # managed with citymesh passwd
//	  jwt:                                    # tokens in the MQTT password field
//	    public_keys: [/etc/citymesh/idp.pem]
//	  certificates:                           # mutual TLS on mqtts/wss
//	    username_from: cn
//	    tenant_from: o
//
// Back ends are tried in the order certificates, JWT, password file; the
// first that recognises the client's credentials decides.
type Config struct {
	// AllowAnonymous lets clients without credentials in. When no back end
	// is configured anonymous access is the only way in, and allowed.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// PasswordFile is a password file (see PasswordFile).
	PasswordFile string `yaml:"password_file"`
	// JWT configures JSON Web Token authentication.
	JWT *JWTConfig `yaml:"jwt"`
	// Certificates configures authentication by client certificate.
	Certificates *CertificateAuth `yaml:"certificates"`
}

// Enabled reports whether any back end is configured.
func (c *Config) Enabled() bool {
	return c.PasswordFile != "" || c.JWT != nil || c.Certificates != nil
}

// Build returns the chain of the configured back ends, and a function that
// reloads their files (password file, JWT keys) for SIGHUP. It returns a nil
// chain when no back end is configured.
func (c *Config) Build() (*Chain, func() error, error) {
	if !c.Enabled() {
		return nil, func() error { return nil }, nil
	}
	chain := &Chain{AllowAnonymous: c.AllowAnonymous}
	var reloads []func() error
	if c.Certificates != nil {
		if err := c.Certificates.Validate(); err != nil {
			return nil, nil, err
		}
		chain.Backends = append(chain.Backends, c.Certificates)
	}
	if c.JWT != nil {
		j, err := NewJWT(*c.JWT)
		if err != nil {
			return nil, nil, err
		}
		chain.Backends = append(chain.Backends, j)
		reloads = append(reloads, j.Reload)
	}
	if c.PasswordFile != "" {
		pf, err := LoadPasswordFile(c.PasswordFile)
		if err != nil {
			return nil, nil, err
		}
		chain.Backends = append(chain.Backends, pf)
		reloads = append(reloads, pf.Reload)
	}
	reload := func() error {
		var errs []error
		for _, r := range reloads {
			errs = append(errs, r())
		}
		return errors.Join(errs...)
	}
	return chain, reload, nil
}

// ACLConfig is the access control part of a node's YAML configuration:
//
//	acl:
//	  default: deny              # when no rule applies
//	  rules:
//	    - allow: [publish]
//	      topics: [energy/%u/#]  # %u user, %c client id, %t tenant
//	      groups: [meters]
//	    - deny: [read]           # read = subscribe and receive
//	      topics: [billing/#]
//	    - allow: [read]
//	      topics: ["#"]
//
// Rules apply in order; the first whose topics match and whose subjects
// (users, groups, tenants, anonymous; none means everyone) include the client
// decides.
type ACLConfig struct {
	// Default is "deny" (the default once rules are given) or "allow".
	Default string       `yaml:"default"`
	Rules   []RuleConfig `yaml:"rules"`
}

// RuleConfig is one ACL rule as written in the configuration: Allow or Deny
// lists actions (publish, subscribe, receive, read = subscribe and receive,
// write = publish, all), Topics the filters, and the subjects.
type RuleConfig struct {
	Allow     []string `yaml:"allow"`
	Deny      []string `yaml:"deny"`
	Topics    []string `yaml:"topics"`
	Users     []string `yaml:"users"`
	Groups    []string `yaml:"groups"`
	Tenants   []string `yaml:"tenants"`
	Anonymous bool     `yaml:"anonymous"`
}

// Enabled reports whether access control is configured.
func (a *ACLConfig) Enabled() bool { return len(a.Rules) > 0 || a.Default != "" }

// Build compiles the rules; it returns nil when access control is not
// configured (everything is allowed).
func (a *ACLConfig) Build() (*ACL, error) {
	if !a.Enabled() {
		return nil, nil
	}
	var defaultAllow bool
	switch a.Default {
	case "", "deny":
	case "allow":
		defaultAllow = true
	default:
		return nil, fmt.Errorf("acl: default %q: want allow or deny", a.Default)
	}
	var rules []Rule
	for i, rc := range a.Rules {
		if (len(rc.Allow) == 0) == (len(rc.Deny) == 0) {
			return nil, fmt.Errorf("acl: rule %d: give either allow or deny, with the actions", i+1)
		}
		names := rc.Allow
		if len(names) == 0 {
			names = rc.Deny
		}
		var actions Action
		for _, n := range names {
			act, err := parseActions(n)
			if err != nil {
				return nil, fmt.Errorf("acl: rule %d: %w", i+1, err)
			}
			actions |= act
		}
		if len(rc.Topics) == 0 {
			return nil, fmt.Errorf("acl: rule %d: no topics", i+1)
		}
		for _, t := range rc.Topics {
			rules = append(rules, Rule{Allow: len(rc.Allow) > 0, Actions: actions, Filter: t,
				Users: rc.Users, Groups: rc.Groups, Tenants: rc.Tenants, Anonymous: rc.Anonymous})
		}
	}
	acl, err := NewACL(rules, defaultAllow)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	return acl, nil
}

// parseActions reads one action name of a rule.
func parseActions(name string) (Action, error) {
	switch strings.ToLower(name) {
	case "publish", "write":
		return Publish, nil
	case "subscribe":
		return Subscribe, nil
	case "receive":
		return Receive, nil
	case "read":
		return Subscribe | Receive, nil
	case "all":
		return Publish | Subscribe | Receive, nil
	}
	return 0, fmt.Errorf("action %q: want publish, subscribe, receive, read, write or all", name)
}
