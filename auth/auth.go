// Package auth decides who may connect to a citymesh node and what they may
// do there: authentication back ends (a password file with argon2id or bcrypt
// hashes, JWT, client certificates), per-topic access control lists with
// user, group and tenant rules, and tenant namespaces. It knows nothing of
// the broker's internals; the broker asks it through the Authenticator and
// Authorizer interfaces and acts on the answers.
package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// Identity is who a connected client is, once authenticated.
type Identity struct {
	// User is the authenticated user name; "" for an anonymous client.
	User string
	// ClientID is the MQTT client identifier.
	ClientID string
	// Groups are the user's groups, for ACL rules.
	Groups []string
	// Tenant is the tenant the client belongs to; "" for none. A tenant's
	// clients live in their own topic namespace (see Namespace).
	Tenant string
	// Admin marks an administrator: it may use $SYS/ and every tenant's
	// namespace.
	Admin bool
	// Grants are rules carried by the credential itself (JWT claims),
	// checked before the configured ACL.
	Grants []Rule
	// Method names the back end that authenticated the client: "password",
	// "jwt", "certificate" or "anonymous".
	Method string
}

// Anonymous reports whether the client connected without credentials.
func (id *Identity) Anonymous() bool { return id.Method == "anonymous" }

// ConnectRequest is what a client presents when it connects.
type ConnectRequest struct {
	ClientID    string
	Username    string
	HasUsername bool
	Password    []byte
	HasPassword bool
	// Remote is the client's network address.
	Remote net.Addr
	// Certificates is the verified client certificate chain of a TLS
	// connection (leaf first), nil without one.
	Certificates []*x509.Certificate
	// Listener names the listener the client came through ("mqtt", "mqtts",
	// "ws", "wss"), for rules that differ by listener.
	Listener string
}

// Authenticator checks a client's credentials.
type Authenticator interface {
	// Authenticate returns the client's identity, or an error: ErrNoCredentials
	// when the request carries nothing this back end handles (the next back
	// end is tried), ErrBadCredentials when they are wrong, ErrNotAuthorized
	// when they are right but the client may not connect.
	Authenticate(ctx context.Context, req *ConnectRequest) (*Identity, error)
}

// Errors of Authenticate. The broker answers ErrBadCredentials with reason
// code 0x86 Bad User Name or Password (3.1.1: return code 4) and
// ErrNotAuthorized with 0x87 Not authorized (3.1.1: 5).
var (
	ErrNoCredentials  = errors.New("auth: no credentials for this method")
	ErrBadCredentials = errors.New("auth: bad user name or password")
	ErrNotAuthorized  = errors.New("auth: not authorized")
)

// Action is what a client wants to do with a topic.
type Action uint8

// Actions. Receive is the delivery of a message to a subscriber: checked
// for every message, so that a subscription cannot reach what its filter
// covers but the client may not read (retained messages included).
const (
	Publish Action = 1 << iota
	Subscribe
	Receive
)

// String names the action as ACL files do.
func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	case Receive:
		return "receive"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Authorizer makes the access checker of each connected client.
type Authorizer interface {
	// For returns the access checker of the client with identity id. It is
	// called once per connection, after authentication; the checker is used
	// by that connection only.
	For(id *Identity) Access
}

// Access decides what one client may do. topic is a topic name for Publish
// and Receive and a topic filter (without a $share/ prefix) for Subscribe,
// as the client sees it: inside its tenant's namespace, before the broker
// adds the namespace prefix. An Access is used by one connection at a time.
type Access interface {
	Allow(action Action, topic string) bool
}

// AllowAll is an Authorizer that allows everything, the broker's behaviour
// without access control.
type AllowAll struct{}

// For implements Authorizer.
func (AllowAll) For(*Identity) Access { return allowAll{} }

type allowAll struct{}

func (allowAll) Allow(Action, string) bool { return true }

// Chain tries authenticators in order: the first that recognises the
// credentials decides. When none does, the client is anonymous, allowed only
// if AllowAnonymous is set.
type Chain struct {
	Backends       []Authenticator
	AllowAnonymous bool
}

// Authenticate implements Authenticator.
func (c *Chain) Authenticate(ctx context.Context, req *ConnectRequest) (*Identity, error) {
	for _, b := range c.Backends {
		id, err := b.Authenticate(ctx, req)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		if err != nil {
			return nil, err
		}
		id.ClientID = req.ClientID
		return id, nil
	}
	if !c.AllowAnonymous {
		if req.HasUsername || req.HasPassword {
			return nil, fmt.Errorf("%w: no back end accepts these credentials", ErrBadCredentials)
		}
		return nil, fmt.Errorf("%w: anonymous access is off", ErrNotAuthorized)
	}
	return &Identity{ClientID: req.ClientID, User: req.Username, Method: "anonymous"}, nil
}
