package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
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

	"github.com/golang-jwt/jwt/v5"

	"github.com/citymesh/citymesh/topic"
)

// The algorithms the JWT back end supports. No other is ever accepted, and
// "none" in particular never is.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// DefaultJWTLeeway is the clock skew allowed for the exp, nbf and iat claims
// when JWTConfig.Leeway is zero.
const DefaultJWTLeeway = 30 * time.Second

// minHMACSecret is the shortest HS256 secret accepted: RFC 7518 section 3.2
// requires a key at least as long as the hash output, 256 bits.
const minHMACSecret = 32

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// JWTConfig configures the JWT back end (see NewJWT). It is part of a node's
// YAML configuration, for example:
//
//	jwt:
//	  public_keys: [/etc/citymesh/idp.pem]
//	  issuer: https://idp.example.com
//	  audience: citymesh
//	  leeway: 30s
//
// At least one key must be configured: Secret or SecretFile for HS256,
// PublicKeys for RS256 and ES256.
type JWTConfig struct {
	// Secret is the HS256 shared secret, at least 32 bytes long. Set it or
	// SecretFile, not both.
	Secret string `yaml:"secret"`
	// SecretFile is the path of a file that holds the HS256 shared secret;
	// trailing line breaks are ignored. It is read again by Reload.
	SecretFile string `yaml:"secret_file"`
	// PublicKeys are paths of PEM files holding the public keys that verify
	// RS256 tokens (RSA keys of at least 2048 bits) and ES256 tokens (EC
	// P-256 keys), as "PUBLIC KEY" or "RSA PUBLIC KEY" blocks or as
	// certificates ("CERTIFICATE" blocks, whose public key is used). A file
	// may hold several blocks. A token is accepted if any key of its
	// algorithm's type verifies it. The files are read again by Reload.
	PublicKeys []string `yaml:"public_keys"`
	// Algorithms are the signature algorithms accepted, among HS256, RS256
	// and ES256; each needs a key of its type. The default is every one of
	// them for which a key is configured. "none" is never accepted.
	Algorithms []string `yaml:"algorithms"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be in the token's aud claim.
	Audience string `yaml:"audience"`
	// UsernameClaim names the claim that holds the user name; default "sub".
	UsernameClaim string `yaml:"username_claim"`
	// TenantClaim names the claim that holds the tenant (a string); default
	// "tenant".
	TenantClaim string `yaml:"tenant_claim"`
	// GroupsClaim names the claim that holds the user's groups (an array of
	// strings); default "groups". Members of the group "admin" are
	// administrators.
	GroupsClaim string `yaml:"groups_claim"`
	// ACLClaim names the claim that holds the rules the token grants (see
	// JWT for its format); default "acl".
	ACLClaim string `yaml:"acl_claim"`
	// Leeway is the clock skew allowed when checking the exp, nbf and iat
	// claims, a duration such as "30s" in YAML. Zero means DefaultJWTLeeway;
	// a negative value means none.
	Leeway time.Duration `yaml:"leeway"`
	// RequireExpiry says whether a token without an exp claim is refused.
	// Unset (nil) means true; set it to false to accept tokens that never
	// expire.
	RequireExpiry *bool `yaml:"require_expiry"`
}

// JWT is an Authenticator that accepts a JSON Web Token (RFC 7519) in the
// MQTT password field, signed with HS256, RS256 or ES256. Create it with
// NewJWT; it is safe for concurrent use.
//
// The token's claims give the client's identity: the user name (claim "sub"
// by default), the tenant ("tenant"), the groups ("groups", an array of
// strings; "admin" among them makes an administrator) and the rules the token
// grants ("acl"), which become Identity.Grants. An ACL claim looks like this:
//
//	"acl": {
//	  "pub":  ["energy/%u/#"],
//	  "sub":  ["alerts/#", "energy/%u/commands"],
//	  "all":  ["scratch/%c/#"],
//	  "deny": {"pub": ["energy/%u/firmware"], "sub": [], "all": []}
//	}
//
// "pub" allows Publish, "sub" allows Subscribe and Receive, and "all" allows
// all three; "deny" holds the same keys for rules that deny. The grants are
// the deny rules first ("pub", "sub", "all" in that order), then the allow
// rules in the same order, each list in its given order, so that a deny rule
// always wins. Every entry is a topic filter as the client sees topics,
// inside its tenant's namespace; a level that is exactly %u, %c or %t stands
// for the user name, client identifier or tenant (see Rule), and '%' may
// appear nowhere else. Any other key, a filter that is not valid, or a shared
// subscription filter makes the token refused.
type JWT struct {
	cfg     JWTConfig // as given to NewJWT, defaults applied
	leeway  time.Duration
	requExp bool

	reload sync.Mutex // serialises Reload
	keys   atomic.Pointer[jwtKeys]
}

// jwtKeys is one loaded set of keys, replaced as a whole by Reload.
type jwtKeys struct {
	secret  []byte
	rsa     []jwt.VerificationKey
	ec      []jwt.VerificationKey
	methods []string // the algorithms accepted, in the order HS256, RS256, ES256
}

// NewJWT returns the JWT back end configured by cfg, with its keys loaded.
// An error names the file at fault and what is wrong with it.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	cfg.PublicKeys = slices.Clone(cfg.PublicKeys)
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "sub"
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tenant"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.ACLClaim == "" {
		cfg.ACLClaim = "acl"
	}
	if cfg.Secret != "" && cfg.SecretFile != "" {
		return nil, errors.New("auth: jwt: set secret or secret_file, not both")
	}
	j := &JWT{cfg: cfg, leeway: cfg.Leeway, requExp: true}
	switch {
	case cfg.Leeway == 0:
		j.leeway = DefaultJWTLeeway
	case cfg.Leeway < 0:
		j.leeway = 0
	}
	if cfg.RequireExpiry != nil {
		j.requExp = *cfg.RequireExpiry
	}
	keys, err := j.load()
	if err != nil {
		return nil, err
	}
	j.keys.Store(keys)
	return j, nil
}

// Reload reads the secret file and the public key files again and replaces
// the keys in use by the new ones, at once. If any file cannot be read or is
// not valid, the keys in use are kept and the error says why.
func (j *JWT) Reload() error {
	j.reload.Lock()
	defer j.reload.Unlock()
	keys, err := j.load()
	if err != nil {
		return err
	}
	j.keys.Store(keys)
	return nil
}

// load reads the configured keys.
func (j *JWT) load() (*jwtKeys, error) {
	k := &jwtKeys{}
	switch {
	case j.cfg.Secret != "":
		k.secret = []byte(j.cfg.Secret)
		if len(k.secret) < minHMACSecret {
			return nil, fmt.Errorf("auth: jwt: secret is %d bytes long; HS256 needs at least %d", len(k.secret), minHMACSecret)
		}
	case j.cfg.SecretFile != "":
		b, err := os.ReadFile(j.cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("auth: jwt: secret file: %w", err)
		}
		k.secret = bytes.TrimRight(b, "\r\n")
		if len(k.secret) < minHMACSecret {
			return nil, fmt.Errorf("auth: jwt: secret file %s: secret is %d bytes long; HS256 needs at least %d", j.cfg.SecretFile, len(k.secret), minHMACSecret)
		}
	}
	for _, path := range j.cfg.PublicKeys {
		if err := k.loadPEM(path); err != nil {
			return nil, err
		}
	}

	have := map[string]bool{
		algHS256: k.secret != nil,
		algRS256: len(k.rsa) > 0,
		algES256: len(k.ec) > 0,
	}
	if len(j.cfg.Algorithms) == 0 {
		for _, alg := range []string{algHS256, algRS256, algES256} {
			if have[alg] {
				k.methods = append(k.methods, alg)
			}
		}
		if len(k.methods) == 0 {
			return nil, errors.New("auth: jwt: no key configured: set secret, secret_file or public_keys")
		}
		return k, nil
	}
	for _, a := range j.cfg.Algorithms {
		alg := strings.ToUpper(strings.TrimSpace(a))
		switch alg {
		case algHS256, algRS256, algES256:
		case "NONE":
			return nil, errors.New(`auth: jwt: algorithm "none" is never accepted`)
		default:
			return nil, fmt.Errorf("auth: jwt: algorithm %q is not supported (HS256, RS256, ES256)", a)
		}
		if !have[alg] {
			what := map[string]string{
				algHS256: "secret or secret_file",
				algRS256: "an RSA public key in public_keys",
				algES256: "an EC P-256 public key in public_keys",
			}[alg]
			return nil, fmt.Errorf("auth: jwt: algorithm %s needs %s", alg, what)
		}
		if !slices.Contains(k.methods, alg) {
			k.methods = append(k.methods, alg)
		}
	}
	order := []string{algHS256, algRS256, algES256}
	slices.SortFunc(k.methods, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return k, nil
}

// loadPEM adds the public keys of the PEM file at path.
func (k *jwtKeys) loadPEM(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("auth: jwt: public key: %w", err)
	}
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				pub = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return fmt.Errorf("auth: jwt: public key file %s: PEM block %d is a private key (%s); configure the public key only", path, n, block.Type)
		default:
			return fmt.Errorf("auth: jwt: public key file %s: PEM block %d is a %q, not a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", path, n, block.Type)
		}
		if err != nil {
			return fmt.Errorf("auth: jwt: public key file %s: PEM block %d (%s): %w", path, n, block.Type, err)
		}
		switch pub := pub.(type) {
		case *rsa.PublicKey:
			if bits := pub.N.BitLen(); bits < minRSABits {
				return fmt.Errorf("auth: jwt: public key file %s: PEM block %d: RSA key of %d bits; RS256 needs at least %d", path, n, bits, minRSABits)
			}
			k.rsa = append(k.rsa, pub)
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				return fmt.Errorf("auth: jwt: public key file %s: PEM block %d: EC key on curve %s; ES256 needs P-256", path, n, pub.Curve.Params().Name)
			}
			k.ec = append(k.ec, pub)
		default:
			return fmt.Errorf("auth: jwt: public key file %s: PEM block %d: %T keys are not supported; use RSA (RS256) or EC P-256 (ES256)", path, n, pub)
		}
	}
	if n == 0 {
		return fmt.Errorf("auth: jwt: public key file %s: no PEM data found", path)
	}
	return nil
}

// Authenticate implements Authenticator. The token is the MQTT password; a
// password that does not look like a JWT (three base64url segments separated
// by dots, the first a JSON object with an "alg" member) is not this back
// end's: the answer is ErrNoCredentials. When the client sends a non-empty
// user name, it must equal the token's user name claim.
func (j *JWT) Authenticate(_ context.Context, req *ConnectRequest) (*Identity, error) {
	if !req.HasPassword {
		return nil, ErrNoCredentials
	}
	id, _, err := j.Verify(string(req.Password), time.Now())
	if err != nil {
		return nil, err
	}
	if req.HasUsername && req.Username != "" && req.Username != id.User {
		return nil, fmt.Errorf("%w: jwt: user name does not match the token", ErrBadCredentials)
	}
	id.ClientID = req.ClientID
	return id, nil
}

// Verify checks token as of now: its signature, its exp, nbf and iat claims
// (with the configured leeway), its issuer and audience when configured, and
// its identity claims. It returns the identity the token gives and its expiry
// time (the zero time for a token without exp), so that a client can be
// disconnected when its token expires. The error is ErrNoCredentials if
// token does not look like a JWT, and otherwise ErrBadCredentials wrapped
// with the reason the token is refused; it never contains the token.
func (j *JWT) Verify(token string, now time.Time) (*Identity, time.Time, error) {
	alg, err := jwtHeader(token)
	if err != nil {
		return nil, time.Time{}, err
	}
	keys := j.keys.Load()
	if !slices.Contains(keys.methods, alg) {
		if strings.EqualFold(alg, "none") {
			return nil, time.Time{}, refuse(`algorithm "none" is never accepted`)
		}
		return nil, time.Time{}, refuse(fmt.Sprintf("algorithm %s is not accepted (%s)", clip(alg), strings.Join(keys.methods, ", ")))
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(keys.methods),
		jwt.WithLeeway(j.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuedAt(),
	}
	if j.requExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if j.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(j.cfg.Issuer))
	}
	if j.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(j.cfg.Audience))
	}
	claims := jwt.MapClaims{}
	_, err = jwt.NewParser(opts...).ParseWithClaims(token, claims, keys.keyFunc)
	if err != nil {
		return nil, time.Time{}, refuse(j.reason(err, claims))
	}

	var expiry time.Time
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		expiry = exp.Time
	}
	id, err := j.identity(claims)
	if err != nil {
		return nil, time.Time{}, err
	}
	return id, expiry, nil
}

// keyFunc gives the keys that may verify a token: only those of the type
// its algorithm needs, so that a key is never used with another algorithm
// (an RSA public key as an HMAC secret, say).
func (k *jwtKeys) keyFunc(t *jwt.Token) (any, error) {
	var keys []jwt.VerificationKey
	switch t.Method.Alg() {
	case algHS256:
		if k.secret != nil && slices.Contains(k.methods, algHS256) {
			return k.secret, nil
		}
	case algRS256:
		if slices.Contains(k.methods, algRS256) {
			keys = k.rsa
		}
	case algES256:
		if slices.Contains(k.methods, algES256) {
			keys = k.ec
		}
	}
	switch len(keys) {
	case 0:
		return nil, errors.New("no key for this algorithm")
	case 1:
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// jwtHeader returns the alg of token's header, or ErrNoCredentials if token
// does not look like a JWT: three segments of base64url characters separated
// by dots, the first two non-empty (the signature is empty with alg "none"),
// the first decoding to a JSON object with an "alg" member. A password with
// two dots in it is thus still a password. The header is decoded by the jwt
// package's ParseUnverified; its other complaints (claims that are not JSON,
// an algorithm it does not know) are left to the verification, which
// refuses the token with its reason.
func jwtHeader(token string) (string, error) {
	head, rest, _ := strings.Cut(token, ".")
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || head == "" || payload == "" || !base64URL(head) || !base64URL(payload) || !base64URL(sig) {
		return "", ErrNoCredentials
	}
	t, _, _ := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if t == nil || t.Header == nil {
		return "", ErrNoCredentials // the header is not base64url-encoded JSON object
	}
	a, ok := t.Header["alg"]
	if !ok {
		return "", ErrNoCredentials
	}
	alg, ok := a.(string)
	if !ok {
		return "", refuse("malformed token header: alg is not a string")
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 section 4.1.11: extensions listed in crit must be
		// understood, and this back end understands none.
		return "", refuse("token header has critical extensions (crit), none of which is supported")
	}
	return alg, nil
}

// base64URL reports whether s has only characters of the unpadded base64url
// alphabet.
func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// refuse returns ErrBadCredentials with reason.
func refuse(reason string) error {
	return fmt.Errorf("%w: jwt: %s", ErrBadCredentials, reason)
}

// reason says why the parser refused a token, from its error and the claims
// it decoded.
func (j *JWT) reason(err error, claims jwt.MapClaims) string {
	at := func(name string) string {
		if d, _ := claimTime(claims, name); d != nil {
			return d.UTC().Format(time.RFC3339)
		}
		return "?"
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token (not base64url-encoded JSON)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified: unknown algorithm or no key for it"
	case errors.Is(err, jwt.ErrInvalidType):
		for _, name := range []string{"exp", "nbf", "iat"} {
			if _, err := claimTime(claims, name); err != nil {
				return fmt.Sprintf("malformed claims: %s is not a number", name)
			}
		}
		for _, name := range []string{"iss", "aud"} {
			if _, ok := claims[name]; ok {
				return fmt.Sprintf("malformed claims: %s is not a string or an array of strings", name)
			}
		}
		return "malformed claims"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired at " + at("exp")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid before " + at("nbf")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future, at " + at("iat")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		iss, _ := claims["iss"].(string)
		return fmt.Sprintf("token issuer %s is not %q", clip(iss), j.cfg.Issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Sprintf("token audience does not include %q", j.cfg.Audience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if d, _ := claims.GetExpirationTime(); d == nil && j.requExp {
			return "token has no expiry (exp)"
		}
		if iss, _ := claims.GetIssuer(); iss == "" && j.cfg.Issuer != "" {
			return fmt.Sprintf("token has no issuer (iss), %q expected", j.cfg.Issuer)
		}
		return fmt.Sprintf("token has no audience (aud), %q expected", j.cfg.Audience)
	}
	return "invalid token"
}

// claimTime returns the time claim name (exp, nbf or iat) of claims.
func claimTime(claims jwt.MapClaims, name string) (*jwt.NumericDate, error) {
	switch name {
	case "exp":
		return claims.GetExpirationTime()
	case "nbf":
		return claims.GetNotBefore()
	}
	return claims.GetIssuedAt()
}

// clip quotes s, a value from a token, cut to a length fit for a log line.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// identity makes the identity of verified claims.
func (j *JWT) identity(claims jwt.MapClaims) (*Identity, error) {
	id := &Identity{Method: "jwt"}
	switch u := claims[j.cfg.UsernameClaim].(type) {
	case nil:
		return nil, refuse(fmt.Sprintf("token has no user name claim (%s)", j.cfg.UsernameClaim))
	case string:
		if u == "" {
			return nil, refuse(fmt.Sprintf("token's user name claim (%s) is empty", j.cfg.UsernameClaim))
		}
		id.User = u
	default:
		return nil, refuse(fmt.Sprintf("token's user name claim (%s) is not a string", j.cfg.UsernameClaim))
	}
	switch t := claims[j.cfg.TenantClaim].(type) {
	case nil:
	case string:
		id.Tenant = t
	default:
		return nil, refuse(fmt.Sprintf("token's tenant claim (%s) is not a string", j.cfg.TenantClaim))
	}
	if g, ok := claims[j.cfg.GroupsClaim]; ok && g != nil {
		groups, err := stringList(g)
		if err != nil {
			return nil, refuse(fmt.Sprintf("token's groups claim (%s) %v", j.cfg.GroupsClaim, err))
		}
		for _, g := range groups {
			if g == "" || slices.Contains(id.Groups, g) {
				continue
			}
			id.Groups = append(id.Groups, g)
			if g == "admin" {
				id.Admin = true
			}
		}
	}
	if a, ok := claims[j.cfg.ACLClaim]; ok && a != nil {
		rules, err := aclRules(a)
		if err != nil {
			return nil, refuse(fmt.Sprintf("token's acl claim (%s): %v", j.cfg.ACLClaim, err))
		}
		id.Grants = rules
	}
	return id, nil
}

// stringList converts a decoded JSON array of strings.
func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("is not an array of strings")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("is not an array of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// aclKinds are the keys of an ACL claim, in the order of their rules, with
// the actions each covers.
var aclKinds = []struct {
	key     string
	actions Action
}{
	{"pub", Publish},
	{"sub", Subscribe | Receive},
	{"all", Publish | Subscribe | Receive},
}

// aclRules converts a decoded ACL claim (see JWT) to rules: deny rules
// first, then allow rules.
func aclRules(v any) ([]Rule, error) {
	acl, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	var deny map[string]any
	for key, val := range acl {
		switch key {
		case "pub", "sub", "all":
		case "deny":
			if val == nil {
				continue
			}
			if deny, ok = val.(map[string]any); !ok {
				return nil, errors.New("deny is not a JSON object")
			}
			for key := range deny {
				if key != "pub" && key != "sub" && key != "all" {
					return nil, fmt.Errorf("unknown key deny.%s (pub, sub, all)", clip(key))
				}
			}
		default:
			return nil, fmt.Errorf("unknown key %s (pub, sub, all, deny)", clip(key))
		}
	}
	var rules []Rule
	add := func(m map[string]any, allow bool, prefix string) error {
		for _, k := range aclKinds {
			val, ok := m[k.key]
			if !ok || val == nil {
				continue
			}
			filters, err := stringList(val)
			if err != nil {
				return fmt.Errorf("%s%s %v", prefix, k.key, err)
			}
			for _, f := range filters {
				if err := validACLFilter(f); err != nil {
					return fmt.Errorf("%s%s: invalid topic filter %s: %v", prefix, k.key, clip(f), err)
				}
				rules = append(rules, Rule{Allow: allow, Actions: k.actions, Filter: f})
			}
		}
		return nil
	}
	if err := add(deny, false, "deny."); err != nil {
		return nil, err
	}
	if err := add(acl, true, ""); err != nil {
		return nil, err
	}
	return rules, nil
}

// validACLFilter checks a filter of an ACL claim: a valid topic filter once
// each level that is exactly a %u, %c or %t placeholder is taken for a plain
// level, no '%' elsewhere, and no shared subscription filter (Access sees
// filters without their $share/ prefix). These are the filters NewACL
// accepts: a grant it refused would be ignored, which for a deny rule would
// allow what the token's issuer meant to deny.
func validACLFilter(f string) error {
	if f == "$share" || strings.HasPrefix(f, "$share/") {
		return errors.New("shared subscription filters have no place in an ACL")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "%u" || l == "%c" || l == "%t":
			levels[i] = "x"
		case strings.IndexByte(l, '%') >= 0:
			return errors.New("a placeholder must be %u, %c or %t, alone in its topic level")
		}
	}
	if err := topic.ValidFilter(strings.Join(levels, "/")); err != nil {
		// The topic package's message quotes the filter with the placeholders
		// replaced; the caller names the original, so keep only the reason.
		for _, e := range []error{topic.ErrEmpty, topic.ErrTooLong, topic.ErrInvalidUTF8, topic.ErrNull, topic.ErrBadWildcard, topic.ErrBadShare} {
			if errors.Is(err, e) {
				return e
			}
		}
		return err
	}
	return nil
}
