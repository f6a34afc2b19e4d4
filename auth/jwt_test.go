package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gopkg.in/yaml.v3"
)

// testSecret is the HS256 secret of the tests, and of the fuzz seeds.
const testSecret = "citymesh-test-secret-0123456789abcdef"

// jwtTestKeys are the keys the tests sign with, generated once.
type jwtTestKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
}

var testKeys = sync.OnceValue(func() *jwtTestKeys {
	k := &jwtTestKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// pkixPEM returns the PEM encoding of a public key.
func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data to a file named name in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign returns a token of claims signed with method and key.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtFixture is a JWT back end with every kind of key, and the key files.
type jwtFixture struct {
	dir            string
	rsaPEM, ecPEM  string // paths
	rsa2PEM, ec2PM string
	cfg            JWTConfig
}

func newJWTFixture(t testing.TB) *jwtFixture {
	t.Helper()
	k := testKeys()
	dir := t.TempDir()
	f := &jwtFixture{dir: dir}
	f.rsaPEM = writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey))
	f.ecPEM = writeFile(t, dir, "ec.pem", pkixPEM(t, &k.ec.PublicKey))
	f.rsa2PEM = writeFile(t, dir, "rsa2.pem", pkixPEM(t, &k.rsa2.PublicKey))
	f.ec2PM = writeFile(t, dir, "ec2.pem", pkixPEM(t, &k.ec2.PublicKey))
	f.cfg = JWTConfig{Secret: testSecret, PublicKeys: []string{f.rsaPEM, f.ecPEM}}
	return f
}

func claimsAt(now time.Time, extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestJWTVerify(t *testing.T) {
	k := testKeys()
	f := newJWTFixture(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hs := func(extra jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodHS256, []byte(testSecret), claimsAt(now, extra))
	}
	rsaPub, err := os.ReadFile(f.rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(now, nil))
	valid := hs(nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999}`)) + "." + parts[2]
	critHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","crit":["exp"]}`))
	withCrit := critHeader + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name    string
		cfg     func(*JWTConfig)
		token   string
		now     time.Time // default now
		wantErr error
		wantMsg string // in the error
		check   func(t *testing.T, id *Identity, exp time.Time)
	}{
		{name: "HS256", token: valid, check: func(t *testing.T, id *Identity, exp time.Time) {
			if id.User != "alice" || id.Method != "jwt" || id.Admin || id.Tenant != "" || id.Groups != nil || id.Grants != nil {
				t.Errorf("identity %+v", id)
			}
			if !exp.Equal(now.Add(time.Hour)) {
				t.Errorf("expiry %v, want %v", exp, now.Add(time.Hour))
			}
		}},
		{name: "RS256", token: sign(t, jwt.SigningMethodRS256, k.rsa, claimsAt(now, nil))},
		{name: "ES256", token: sign(t, jwt.SigningMethodES256, k.ec, claimsAt(now, nil))},
		{name: "RS256 second key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, claimsAt(now, nil)),
			cfg: func(c *JWTConfig) { c.PublicKeys = append(c.PublicKeys, f.rsa2PEM) }},
		{name: "ES256 second key", token: sign(t, jwt.SigningMethodES256, k.ec2, claimsAt(now, nil)),
			cfg: func(c *JWTConfig) { c.PublicKeys = append(c.PublicKeys, f.ec2PM) }},

		{name: "expired", token: hs(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()}),
			wantErr: ErrBadCredentials, wantMsg: "token expired at 2026-03-01T11:00:00Z"},
		{name: "expired within leeway", token: hs(jwt.MapClaims{"exp": now.Add(-20 * time.Second).Unix()})},
		{name: "expired beyond custom leeway", token: hs(jwt.MapClaims{"exp": now.Add(-20 * time.Second).Unix()}),
			cfg: func(c *JWTConfig) { c.Leeway = 10 * time.Second }, wantErr: ErrBadCredentials, wantMsg: "expired"},
		{name: "expired without leeway", token: hs(jwt.MapClaims{"exp": now.Add(-time.Second).Unix()}),
			cfg: func(c *JWTConfig) { c.Leeway = -1 }, wantErr: ErrBadCredentials, wantMsg: "expired"},
		{name: "expires exactly now", token: hs(jwt.MapClaims{"exp": now.Unix()}),
			cfg: func(c *JWTConfig) { c.Leeway = -1 }, wantErr: ErrBadCredentials, wantMsg: "expired"},
		{name: "not yet valid", token: hs(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}),
			wantErr: ErrBadCredentials, wantMsg: "token not valid before 2026-03-01T13:00:00Z"},
		{name: "not yet valid within leeway", token: hs(jwt.MapClaims{"nbf": now.Add(20 * time.Second).Unix()})},
		{name: "issued in the future", token: hs(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}),
			wantErr: ErrBadCredentials, wantMsg: "issued in the future"},
		{name: "issued in the future within leeway", token: hs(jwt.MapClaims{"iat": now.Add(20 * time.Second).Unix()})},
		{name: "no exp", token: hs(jwt.MapClaims{"exp": nil}),
			wantErr: ErrBadCredentials, wantMsg: "no expiry (exp)"},
		{name: "no exp allowed", token: hs(jwt.MapClaims{"exp": nil}),
			cfg: func(c *JWTConfig) { c.RequireExpiry = new(false) },
			check: func(t *testing.T, id *Identity, exp time.Time) {
				if !exp.IsZero() {
					t.Errorf("expiry %v, want none", exp)
				}
			}},
		{name: "exp not a number", token: hs(jwt.MapClaims{"exp": "tomorrow"}),
			wantErr: ErrBadCredentials, wantMsg: "exp is not a number"},

		{name: "issuer", token: hs(jwt.MapClaims{"iss": "https://idp.example.com"}),
			cfg: func(c *JWTConfig) { c.Issuer = "https://idp.example.com" }},
		{name: "wrong issuer", token: hs(jwt.MapClaims{"iss": "https://evil.example.com"}),
			cfg:     func(c *JWTConfig) { c.Issuer = "https://idp.example.com" },
			wantErr: ErrBadCredentials, wantMsg: `issuer "https://evil.example.com" is not "https://idp.example.com"`},
		{name: "no issuer", token: hs(nil),
			cfg:     func(c *JWTConfig) { c.Issuer = "https://idp.example.com" },
			wantErr: ErrBadCredentials, wantMsg: "no issuer"},
		{name: "audience", token: hs(jwt.MapClaims{"aud": []string{"other", "citymesh"}}),
			cfg: func(c *JWTConfig) { c.Audience = "citymesh" }},
		{name: "wrong audience", token: hs(jwt.MapClaims{"aud": "other"}),
			cfg:     func(c *JWTConfig) { c.Audience = "citymesh" },
			wantErr: ErrBadCredentials, wantMsg: `audience does not include "citymesh"`},
		{name: "no audience", token: hs(nil),
			cfg:     func(c *JWTConfig) { c.Audience = "citymesh" },
			wantErr: ErrBadCredentials, wantMsg: "no audience"},
		{name: "audience ignored unless configured", token: hs(jwt.MapClaims{"aud": "other", "iss": "x"})},

		{name: "HS256 wrong secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdefghij"), claimsAt(now, nil)),
			wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "RS256 wrong key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, claimsAt(now, nil)),
			wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "ES256 wrong key", token: sign(t, jwt.SigningMethodES256, k.ec2, claimsAt(now, nil)),
			wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "tampered claims", token: tampered, wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "no signature", token: parts[0] + "." + parts[1] + ".", wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "alg none", token: none, wantErr: ErrBadCredentials, wantMsg: `"none" is never accepted`},
		{name: "alg none with only public keys", token: none,
			cfg: func(c *JWTConfig) { c.Secret = "" }, wantErr: ErrBadCredentials, wantMsg: `"none" is never accepted`},
		// The algorithm confusion attack: the attacker knows the RSA public
		// key and uses it as an HMAC secret.
		{name: "HS256 signed with the RSA public key", token: sign(t, jwt.SigningMethodHS256, rsaPub, claimsAt(now, nil)),
			cfg: func(c *JWTConfig) { c.Secret = "" }, wantErr: ErrBadCredentials, wantMsg: `algorithm "HS256" is not accepted (RS256, ES256)`},
		{name: "HS256 signed with the RSA public key, HS256 on", token: sign(t, jwt.SigningMethodHS256, rsaPub, claimsAt(now, nil)),
			wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "HS256 signed with the RSA public key, HS256 listed", token: sign(t, jwt.SigningMethodHS256, rsaPub, claimsAt(now, nil)),
			cfg: func(c *JWTConfig) { c.Algorithms = []string{"RS256", "HS256"} }, wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "algorithm not allowed", token: sign(t, jwt.SigningMethodES256, k.ec, claimsAt(now, nil)),
			cfg:     func(c *JWTConfig) { c.Algorithms = []string{"RS256", "hs256"} },
			wantErr: ErrBadCredentials, wantMsg: `algorithm "ES256" is not accepted (HS256, RS256)`},
		{name: "algorithm not supported", token: sign(t, jwt.SigningMethodHS512, []byte(testSecret), claimsAt(now, nil)),
			wantErr: ErrBadCredentials, wantMsg: `algorithm "HS512" is not accepted`},
		{name: "RS256 header on an ES256 signature", token: func() string {
			es := strings.Split(sign(t, jwt.SigningMethodES256, k.ec, claimsAt(now, nil)), ".")
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + es[1] + "." + es[2]
		}(), wantErr: ErrBadCredentials, wantMsg: "bad signature"},
		{name: "crit header", token: withCrit, wantErr: ErrBadCredentials, wantMsg: "crit"},
		{name: "alg not a string", token: base64.RawURLEncoding.EncodeToString([]byte(`{"alg":1}`)) + "." + parts[1] + "." + parts[2],
			wantErr: ErrBadCredentials, wantMsg: "alg is not a string"},
		{name: "claims not JSON", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + parts[2],
			wantErr: ErrBadCredentials, wantMsg: "malformed token"},

		{name: "no user name claim", token: hs(jwt.MapClaims{"sub": nil}),
			wantErr: ErrBadCredentials, wantMsg: "no user name claim (sub)"},
		{name: "empty user name claim", token: hs(jwt.MapClaims{"sub": ""}),
			wantErr: ErrBadCredentials, wantMsg: "is empty"},
		{name: "user name claim not a string", token: hs(jwt.MapClaims{"sub": 42}),
			wantErr: ErrBadCredentials, wantMsg: "not a string"},
		{name: "custom user name claim", token: hs(jwt.MapClaims{"preferred_username": "bob"}),
			cfg: func(c *JWTConfig) { c.UsernameClaim = "preferred_username" },
			check: func(t *testing.T, id *Identity, _ time.Time) {
				if id.User != "bob" {
					t.Errorf("user %q, want bob", id.User)
				}
			}},
		{name: "custom user name claim missing", token: hs(nil),
			cfg:     func(c *JWTConfig) { c.UsernameClaim = "preferred_username" },
			wantErr: ErrBadCredentials, wantMsg: "no user name claim (preferred_username)"},

		{name: "tenant and groups", token: hs(jwt.MapClaims{"tenant": "north", "groups": []string{"meters", "admin", "meters", ""}}),
			check: func(t *testing.T, id *Identity, _ time.Time) {
				if id.Tenant != "north" || !id.Admin || !slices.Equal(id.Groups, []string{"meters", "admin"}) {
					t.Errorf("identity %+v", id)
				}
			}},
		{name: "not admin", token: hs(jwt.MapClaims{"groups": []string{"administrators"}}),
			check: func(t *testing.T, id *Identity, _ time.Time) {
				if id.Admin {
					t.Errorf("identity %+v is admin", id)
				}
			}},
		{name: "custom tenant and groups claims", token: hs(jwt.MapClaims{"org": "south", "roles": []string{"admin"}, "tenant": "north"}),
			cfg: func(c *JWTConfig) { c.TenantClaim, c.GroupsClaim = "org", "roles" },
			check: func(t *testing.T, id *Identity, _ time.Time) {
				if id.Tenant != "south" || !id.Admin {
					t.Errorf("identity %+v", id)
				}
			}},
		{name: "groups not an array", token: hs(jwt.MapClaims{"groups": "admin"}),
			wantErr: ErrBadCredentials, wantMsg: "groups claim (groups) is not an array of strings"},
		{name: "groups not strings", token: hs(jwt.MapClaims{"groups": []any{"a", 1}}),
			wantErr: ErrBadCredentials, wantMsg: "not an array of strings"},
		{name: "tenant not a string", token: hs(jwt.MapClaims{"tenant": []string{"a"}}),
			wantErr: ErrBadCredentials, wantMsg: "tenant claim (tenant) is not a string"},

		{name: "acl", token: hs(jwt.MapClaims{"acl": map[string]any{
			"all":  []string{"scratch/%c/#"},
			"sub":  []string{"alerts/#", "energy/%u/commands"},
			"pub":  []string{"energy/%u/#"},
			"deny": map[string]any{"pub": []string{"energy/%u/firmware"}, "all": []string{"$SYS/#"}, "sub": []string{}},
		}}), check: func(t *testing.T, id *Identity, _ time.Time) {
			want := []Rule{
				{Allow: false, Actions: Publish, Filter: "energy/%u/firmware"},
				{Allow: false, Actions: Publish | Subscribe | Receive, Filter: "$SYS/#"},
				{Allow: true, Actions: Publish, Filter: "energy/%u/#"},
				{Allow: true, Actions: Subscribe | Receive, Filter: "alerts/#"},
				{Allow: true, Actions: Subscribe | Receive, Filter: "energy/%u/commands"},
				{Allow: true, Actions: Publish | Subscribe | Receive, Filter: "scratch/%c/#"},
			}
			if len(id.Grants) != len(want) {
				t.Fatalf("grants %+v, want %+v", id.Grants, want)
			}
			if _, err := NewACL(id.Grants, false); err != nil {
				t.Errorf("NewACL refuses the grants: %v", err)
			}
			for i := range want {
				g := id.Grants[i]
				if g.Allow != want[i].Allow || g.Actions != want[i].Actions || g.Filter != want[i].Filter ||
					g.Users != nil || g.Groups != nil || g.Tenants != nil || g.Anonymous {
					t.Errorf("grant %d: %+v, want %+v", i, g, want[i])
				}
			}
		}},
		{name: "acl custom claim", token: hs(jwt.MapClaims{"mqtt": map[string]any{"sub": []string{"+/%t/+"}}}),
			cfg: func(c *JWTConfig) { c.ACLClaim = "mqtt" },
			check: func(t *testing.T, id *Identity, _ time.Time) {
				if len(id.Grants) != 1 || !id.Grants[0].Allow || id.Grants[0].Actions != Subscribe|Receive || id.Grants[0].Filter != "+/%t/+" {
					t.Errorf("grants %+v", id.Grants)
				}
			}},
		{name: "acl null", token: hs(jwt.MapClaims{"acl": map[string]any{"pub": nil, "deny": nil}})},
		{name: "acl bad wildcard", token: hs(jwt.MapClaims{"acl": map[string]any{"pub": []string{"ok/#", "energy/#/x"}}}),
			wantErr: ErrBadCredentials, wantMsg: `pub: invalid topic filter "energy/#/x"`},
		{name: "acl bad plus", token: hs(jwt.MapClaims{"acl": map[string]any{"deny": map[string]any{"sub": []string{"a+/b"}}}}),
			wantErr: ErrBadCredentials, wantMsg: `deny.sub: invalid topic filter "a+/b"`},
		{name: "acl placeholder inside a level with a wildcard", token: hs(jwt.MapClaims{"acl": map[string]any{"pub": []string{"a/%u#"}}}),
			wantErr: ErrBadCredentials, wantMsg: `invalid topic filter "a/%u#"`},
		{name: "acl unknown placeholder", token: hs(jwt.MapClaims{"acl": map[string]any{"deny": map[string]any{"pub": []string{"a/%x/b"}}}}),
			wantErr: ErrBadCredentials, wantMsg: `deny.pub: invalid topic filter "a/%x/b": a placeholder must be`},
		{name: "acl placeholder inside a level", token: hs(jwt.MapClaims{"acl": map[string]any{"pub": []string{"meter-%u/x"}}}),
			wantErr: ErrBadCredentials, wantMsg: `invalid topic filter "meter-%u/x"`},
		{name: "acl empty filter", token: hs(jwt.MapClaims{"acl": map[string]any{"all": []string{""}}}),
			wantErr: ErrBadCredentials, wantMsg: `all: invalid topic filter ""`},
		{name: "acl shared filter", token: hs(jwt.MapClaims{"acl": map[string]any{"sub": []string{"$share/g/a"}}}),
			wantErr: ErrBadCredentials, wantMsg: "shared subscription"},
		{name: "acl unknown key", token: hs(jwt.MapClaims{"acl": map[string]any{"publish": []string{"a"}}}),
			wantErr: ErrBadCredentials, wantMsg: `unknown key "publish"`},
		{name: "acl unknown deny key", token: hs(jwt.MapClaims{"acl": map[string]any{"deny": map[string]any{"subscribe": []string{"a"}}}}),
			wantErr: ErrBadCredentials, wantMsg: `unknown key deny."subscribe"`},
		{name: "acl not an object", token: hs(jwt.MapClaims{"acl": []string{"a/#"}}),
			wantErr: ErrBadCredentials, wantMsg: "not a JSON object"},
		{name: "acl list not an array", token: hs(jwt.MapClaims{"acl": map[string]any{"pub": "a/#"}}),
			wantErr: ErrBadCredentials, wantMsg: "pub is not an array of strings"},
		{name: "acl deny not an object", token: hs(jwt.MapClaims{"acl": map[string]any{"deny": []string{"a"}}}),
			wantErr: ErrBadCredentials, wantMsg: "deny is not a JSON object"},

		{name: "plain password", token: "hunter2", wantErr: ErrNoCredentials},
		{name: "password with dots", token: "my.pass.word", wantErr: ErrNoCredentials},
		{name: "two segments", token: parts[0] + "." + parts[1], wantErr: ErrNoCredentials},
		{name: "four segments", token: valid + ".x", wantErr: ErrNoCredentials},
		{name: "padded", token: parts[0] + "=." + parts[1] + "." + parts[2], wantErr: ErrNoCredentials},
		{name: "empty", token: "", wantErr: ErrNoCredentials},
		{name: "dots", token: "..", wantErr: ErrNoCredentials},
		{name: "header not an object", token: base64.RawURLEncoding.EncodeToString([]byte(`["alg"]`)) + "." + parts[1] + "." + parts[2],
			wantErr: ErrNoCredentials},
		{name: "header without alg", token: base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
			wantErr: ErrNoCredentials},
		{name: "header null", token: base64.RawURLEncoding.EncodeToString([]byte(`null`)) + "." + parts[1] + "." + parts[2],
			wantErr: ErrNoCredentials},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte(`alg=HS256`)) + "." + parts[1] + "." + parts[2],
			wantErr: ErrNoCredentials},
		{name: "signature not base64url", token: parts[0] + "." + parts[1] + ".a+b",
			wantErr: ErrNoCredentials},
		{name: "claims not base64", token: parts[0] + ".@@@." + parts[2],
			wantErr: ErrNoCredentials},
		{name: "claims base64url but not base64 of anything", token: parts[0] + ".a." + parts[2],
			wantErr: ErrBadCredentials, wantMsg: "malformed token"},
		{name: "alg unknown to the jwt package", token: base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XS999"}`)) + "." + parts[1] + "." + parts[2],
			wantErr: ErrBadCredentials, wantMsg: `algorithm "XS999" is not accepted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.PublicKeys = slices.Clone(cfg.PublicKeys)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			j, err := NewJWT(cfg)
			if err != nil {
				t.Fatal(err)
			}
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			id, exp, err := j.Verify(tt.token, at)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.User == "" || id.Method != "jwt" {
					t.Errorf("identity %+v", id)
				}
				if tt.check != nil {
					tt.check(t, id, exp)
				}
				return
			}
			t.Log(err)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify: error %v, want %v", err, tt.wantErr)
			}
			if id != nil {
				t.Errorf("identity %+v with error", id)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q contains the token", err)
			}
			if tt.wantErr == ErrNoCredentials && err != ErrNoCredentials {
				t.Errorf("error %q, want ErrNoCredentials itself", err)
			}
		})
	}
}

func TestJWTAuthenticate(t *testing.T) {
	f := newJWTFixture(t)
	j, err := NewJWT(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	token := []byte(sign(t, jwt.SigningMethodES256, testKeys().ec, claimsAt(now, jwt.MapClaims{"tenant": "north"})))
	expired := []byte(sign(t, jwt.SigningMethodHS256, []byte(testSecret), claimsAt(now, jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})))

	tests := []struct {
		name    string
		req     ConnectRequest
		wantErr error
		wantMsg string
	}{
		{name: "token, no user name", req: ConnectRequest{Password: token, HasPassword: true}},
		{name: "token, empty user name", req: ConnectRequest{Username: "", HasUsername: true, Password: token, HasPassword: true}},
		{name: "token, same user name", req: ConnectRequest{Username: "alice", HasUsername: true, Password: token, HasPassword: true}},
		{name: "token for another user", req: ConnectRequest{Username: "bob", HasUsername: true, Password: token, HasPassword: true},
			wantErr: ErrBadCredentials, wantMsg: "user name does not match the token"},
		{name: "expired", req: ConnectRequest{Username: "alice", HasUsername: true, Password: expired, HasPassword: true},
			wantErr: ErrBadCredentials, wantMsg: "expired"},
		{name: "no password", req: ConnectRequest{Username: "alice", HasUsername: true}, wantErr: ErrNoCredentials},
		{name: "plain password", req: ConnectRequest{Username: "alice", HasUsername: true, Password: []byte("s3cret"), HasPassword: true},
			wantErr: ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.ClientID = "meter-1"
			id, err := j.Authenticate(context.Background(), &tt.req)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if id.User != "alice" || id.Tenant != "north" || id.ClientID != "meter-1" || id.Method != "jwt" || id.Anonymous() {
					t.Errorf("identity %+v", id)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Authenticate: error %v, want %v saying %q", err, tt.wantErr, tt.wantMsg)
			}
			if len(tt.req.Password) > 0 && strings.Contains(err.Error(), string(tt.req.Password)) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// staticBackend accepts one user name and password.
type staticBackend struct{ user, password string }

func (b staticBackend) Authenticate(_ context.Context, req *ConnectRequest) (*Identity, error) {
	if !req.HasPassword {
		return nil, ErrNoCredentials
	}
	if req.Username != b.user || string(req.Password) != b.password {
		return nil, ErrBadCredentials
	}
	return &Identity{User: req.Username, Method: "password"}, nil
}

func TestJWTInChain(t *testing.T) {
	f := newJWTFixture(t)
	j, err := NewJWT(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Chain{Backends: []Authenticator{j, staticBackend{"bob", "pass.with.dots"}}}
	token := sign(t, jwt.SigningMethodRS256, testKeys().rsa, claimsAt(time.Now(), nil))
	for _, tc := range []struct {
		user, password, method string
	}{
		{"", token, "jwt"},
		{"bob", "pass.with.dots", "password"},
	} {
		id, err := c.Authenticate(context.Background(), &ConnectRequest{
			ClientID: "c", Username: tc.user, HasUsername: tc.user != "", Password: []byte(tc.password), HasPassword: true,
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		if id.Method != tc.method {
			t.Errorf("method %q, want %q", id.Method, tc.method)
		}
	}
}

func TestNewJWTErrors(t *testing.T) {
	dir := t.TempDir()
	k := testKeys()
	ed, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	garbage := writeFile(t, dir, "garbage.pem", []byte("this is not PEM\n"))
	edPEM := writeFile(t, dir, "ed25519.pem", pkixPEM(t, ed))
	p384PEM := writeFile(t, dir, "p384.pem", pkixPEM(t, &p384.PublicKey))
	smallPEM := writeFile(t, dir, "small.pem", pkixPEM(t, &small.PublicKey))
	private := writeFile(t, dir, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	csr := writeFile(t, dir, "csr.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}))
	badDER := writeFile(t, dir, "bad-der.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))
	rsaPEM := writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey))
	shortSecret := writeFile(t, dir, "short.secret", []byte("short\n"))

	tests := []struct {
		name string
		cfg  JWTConfig
		want []string // in the error
	}{
		{"no key", JWTConfig{}, []string{"no key configured"}},
		{"missing file", JWTConfig{PublicKeys: []string{missing}}, []string{missing, "no such file"}},
		{"not PEM", JWTConfig{PublicKeys: []string{garbage}}, []string{garbage, "no PEM data found"}},
		{"Ed25519 key", JWTConfig{PublicKeys: []string{edPEM}}, []string{edPEM, "ed25519.PublicKey keys are not supported"}},
		{"P-384 key", JWTConfig{PublicKeys: []string{p384PEM}}, []string{p384PEM, "curve P-384", "ES256 needs P-256"}},
		{"small RSA key", JWTConfig{PublicKeys: []string{smallPEM}}, []string{smallPEM, "1024 bits"}},
		{"private key", JWTConfig{PublicKeys: []string{private}}, []string{private, "private key"}},
		{"certificate request", JWTConfig{PublicKeys: []string{rsaPEM, csr}}, []string{csr, `"CERTIFICATE REQUEST"`}},
		{"bad DER", JWTConfig{PublicKeys: []string{badDER}}, []string{badDER, "PEM block 1 (PUBLIC KEY)"}},
		{"missing secret file", JWTConfig{SecretFile: missing}, []string{"secret file", missing}},
		{"short secret", JWTConfig{Secret: "short"}, []string{"5 bytes", "at least 32"}},
		{"short secret file", JWTConfig{SecretFile: shortSecret}, []string{shortSecret, "5 bytes"}},
		{"secret and secret file", JWTConfig{Secret: testSecret, SecretFile: shortSecret}, []string{"not both"}},
		{"alg none", JWTConfig{Secret: testSecret, Algorithms: []string{"HS256", "none"}}, []string{`"none" is never accepted`}},
		{"alg unsupported", JWTConfig{Secret: testSecret, Algorithms: []string{"PS256"}}, []string{`"PS256" is not supported`}},
		{"alg without key", JWTConfig{Secret: testSecret, Algorithms: []string{"HS256", "RS256"}}, []string{"RS256 needs an RSA public key"}},
		{"ES256 without key", JWTConfig{PublicKeys: []string{rsaPEM}, Algorithms: []string{"ES256"}}, []string{"ES256 needs an EC P-256 public key"}},
		{"HS256 without secret", JWTConfig{PublicKeys: []string{rsaPEM}, Algorithms: []string{"HS256"}}, []string{"HS256 needs secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := NewJWT(tt.cfg)
			if err == nil {
				t.Fatalf("NewJWT succeeded: %+v", j)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestJWTKeyFormats(t *testing.T) {
	dir := t.TempDir()
	k := testKeys()
	now := time.Now()

	// A self-signed certificate for the EC key, and the RSA key as PKCS #1,
	// together in one file.
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idp"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec.PublicKey, k.ec)
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})...)
	secret := writeFile(t, dir, "secret", []byte(testSecret+"\r\n"))
	j, err := NewJWT(JWTConfig{SecretFile: secret, PublicKeys: []string{writeFile(t, dir, "bundle.pem", bundle)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method jwt.SigningMethod
		key    any
	}{
		{jwt.SigningMethodES256, k.ec},
		{jwt.SigningMethodRS256, k.rsa},
		{jwt.SigningMethodHS256, []byte(testSecret)},
	} {
		if _, _, err := j.Verify(sign(t, tc.method, tc.key, claimsAt(now, nil)), now); err != nil {
			t.Errorf("%s: %v", tc.method.Alg(), err)
		}
	}
}

func TestJWTReload(t *testing.T) {
	f := newJWTFixture(t)
	k := testKeys()
	now := time.Now()
	secretFile := writeFile(t, f.dir, "secret", []byte(testSecret))
	j, err := NewJWT(JWTConfig{SecretFile: secretFile, PublicKeys: []string{f.rsaPEM}})
	if err != nil {
		t.Fatal(err)
	}
	tok1 := sign(t, jwt.SigningMethodRS256, k.rsa, claimsAt(now, nil))
	tok2 := sign(t, jwt.SigningMethodRS256, k.rsa2, claimsAt(now, nil))
	newSecret := "another-secret-0123456789abcdefghij"
	hs1 := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claimsAt(now, nil))
	hs2 := sign(t, jwt.SigningMethodHS256, []byte(newSecret), claimsAt(now, nil))
	verify := func(token string, ok bool) {
		t.Helper()
		_, _, err := j.Verify(token, now)
		if ok && err != nil {
			t.Errorf("Verify: %v", err)
		}
		if !ok && !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Verify: error %v, want ErrBadCredentials", err)
		}
	}

	// A bad key file: the old keys stay.
	writeFile(t, f.dir, "rsa.pem", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	writeFile(t, f.dir, "secret", []byte(newSecret))
	if err := j.Reload(); err == nil || !strings.Contains(err.Error(), f.rsaPEM) {
		t.Fatalf("Reload: error %v, want one naming %s", err, f.rsaPEM)
	}
	verify(tok1, true)
	verify(hs1, true)
	verify(hs2, false)

	// A missing file: the old keys stay.
	if err := os.Remove(f.rsaPEM); err != nil {
		t.Fatal(err)
	}
	if err := j.Reload(); err == nil {
		t.Fatal("Reload succeeded without the key file")
	}
	verify(tok1, true)

	// Good files: the new keys replace the old.
	writeFile(t, f.dir, "rsa.pem", pkixPEM(t, &k.rsa2.PublicKey))
	if err := j.Reload(); err != nil {
		t.Fatal(err)
	}
	verify(tok1, false)
	verify(tok2, true)
	verify(hs1, false)
	verify(hs2, true)
}

func TestJWTConcurrent(t *testing.T) {
	f := newJWTFixture(t)
	j, err := NewJWT(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tokens := []string{
		sign(t, jwt.SigningMethodHS256, []byte(testSecret), claimsAt(now, nil)),
		sign(t, jwt.SigningMethodES256, testKeys().ec, claimsAt(now, nil)),
		sign(t, jwt.SigningMethodRS256, testKeys().rsa, claimsAt(now, nil)),
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, _, err := j.Verify(tokens[(g+i)%len(tokens)], now); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := j.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func TestJWTConfigYAML(t *testing.T) {
	const doc = `
secret_file: /etc/citymesh/jwt.secret
public_keys: [/etc/citymesh/idp.pem]
algorithms: [RS256]
issuer: https://idp.example.com
audience: citymesh
username_claim: preferred_username
tenant_claim: org
groups_claim: roles
acl_claim: mqtt
leeway: 1m
require_expiry: false
`
	var cfg JWTConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	want := JWTConfig{
		SecretFile:    "/etc/citymesh/jwt.secret",
		PublicKeys:    []string{"/etc/citymesh/idp.pem"},
		Algorithms:    []string{"RS256"},
		Issuer:        "https://idp.example.com",
		Audience:      "citymesh",
		UsernameClaim: "preferred_username",
		TenantClaim:   "org",
		GroupsClaim:   "roles",
		ACLClaim:      "mqtt",
		Leeway:        time.Minute,
	}
	if cfg.RequireExpiry == nil || *cfg.RequireExpiry {
		t.Errorf("require_expiry %v, want false", cfg.RequireExpiry)
	}
	cfg.RequireExpiry = nil
	if cfg.SecretFile != want.SecretFile || !slices.Equal(cfg.PublicKeys, want.PublicKeys) || !slices.Equal(cfg.Algorithms, want.Algorithms) ||
		cfg.Issuer != want.Issuer || cfg.Audience != want.Audience || cfg.UsernameClaim != want.UsernameClaim ||
		cfg.TenantClaim != want.TenantClaim || cfg.GroupsClaim != want.GroupsClaim || cfg.ACLClaim != want.ACLClaim || cfg.Leeway != want.Leeway {
		t.Errorf("config %+v, want %+v", cfg, want)
	}
}

// fuzzSecret signs the tokens of the seed corpus in testdata/fuzz/FuzzJWT,
// which expire in 2100.
const fuzzSecret = "citymesh-fuzz-secret-0123456789abcdef"

func FuzzJWT(f *testing.F) {
	k := testKeys()
	dir := f.TempDir()
	j, err := NewJWT(JWTConfig{
		Secret:     fuzzSecret,
		PublicKeys: []string{writeFile(f, dir, "rsa.pem", pkixPEM(f, &k.rsa.PublicKey)), writeFile(f, dir, "ec.pem", pkixPEM(f, &k.ec.PublicKey))},
	})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	rich := claimsAt(now, jwt.MapClaims{
		"tenant": "north", "groups": []string{"admin"},
		"acl": map[string]any{"pub": []string{"a/%u/#"}, "deny": map[string]any{"sub": []string{"+/x"}}},
	})
	f.Add("", []byte(sign(f, jwt.SigningMethodHS256, []byte(fuzzSecret), rich)))
	f.Add("alice", []byte(sign(f, jwt.SigningMethodRS256, k.rsa, rich)))
	f.Add("bob", []byte(sign(f, jwt.SigningMethodES256, k.ec, rich)))
	f.Add("", []byte(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, rich)))
	f.Add("alice", []byte("hunter2"))
	f.Add("", []byte("a.b.c"))

	f.Fuzz(func(t *testing.T, username string, password []byte) {
		req := &ConnectRequest{ClientID: "fuzz", Username: username, HasUsername: username != "", Password: password, HasPassword: true}
		id, err := j.Authenticate(context.Background(), req)
		if err != nil {
			if id != nil {
				t.Fatalf("identity %+v with error %v", id, err)
			}
			if !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("error %v is neither ErrNoCredentials nor ErrBadCredentials", err)
			}
			if len(password) >= 16 && strings.Contains(err.Error(), string(password)) {
				t.Fatalf("error %q contains the password", err)
			}
			return
		}
		if id.User == "" || id.Method != "jwt" || id.ClientID != "fuzz" {
			t.Fatalf("identity %+v", id)
		}
		if username != "" && username != id.User {
			t.Fatalf("user %q accepted with a token for %q", username, id.User)
		}
		if id.Admin != slices.Contains(id.Groups, "admin") {
			t.Fatalf("identity %+v: admin does not follow groups", id)
		}
		// Every grant must be one the ACL accepts: a refused grant would be
		// ignored, and an ignored deny rule allows.
		if _, err := NewACL(id.Grants, false); err != nil {
			t.Fatalf("grants %+v refused by NewACL: %v", id.Grants, err)
		}
	})
}

func BenchmarkJWTVerify(b *testing.B) {
	f := newJWTFixture(b)
	j, err := NewJWT(f.cfg)
	if err != nil {
		b.Fatal(err)
	}
	k := testKeys()
	now := time.Now()
	claims := claimsAt(now, jwt.MapClaims{
		"iss": "https://idp.example.com", "tenant": "north", "groups": []string{"meters"},
		"acl": map[string]any{"pub": []string{"energy/%u/#"}, "sub": []string{"alerts/#"}},
	})
	for _, bc := range []struct {
		method jwt.SigningMethod
		key    any
	}{
		{jwt.SigningMethodHS256, []byte(testSecret)},
		{jwt.SigningMethodES256, k.ec},
		{jwt.SigningMethodRS256, k.rsa},
	} {
		token := sign(b, bc.method, bc.key, claims)
		b.Run(bc.method.Alg(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := j.Verify(token, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestJWTFuzzSeeds checks that the seed corpus of FuzzJWT reaches what it
// is meant to: its tokens are signed with fuzzSecret, so the valid ones pass
// and the others fail for their own reason.
func TestJWTFuzzSeeds(t *testing.T) {
	j, err := NewJWT(JWTConfig{Secret: fuzzSecret})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // seed file: "" if accepted, else in the error
		"valid_hs256":     "",
		"valid_same_user": "",
		"other_user":      "user name does not match",
		"expired":         "token expired at 2001-09-09T01:46:40Z",
		"not_yet_valid":   "not valid before",
		"no_exp":          "no expiry",
		"alg_none":        `"none" is never accepted`,
		"bad_signature":   "bad signature",
		"bad_acl":         "acl claim",
		"crit":            "crit",
		"exp_string":      "exp is not a number",
		"hs512":           `"HS512" is not accepted`,
		"plain_password":  ErrNoCredentials.Error(),
		"dotted_password": ErrNoCredentials.Error(),
	}
	for name, msg := range want {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzJWT", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		user, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		pass, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: cannot read the seed: %v %v", name, err1, err2)
		}
		req := &ConnectRequest{Username: user, HasUsername: user != "", Password: []byte(pass), HasPassword: true}
		_, err = j.Authenticate(context.Background(), req)
		switch {
		case msg == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case msg != "" && (err == nil || !strings.Contains(err.Error(), msg)):
			t.Errorf("%s: error %v, want one saying %q", name, err, msg)
		}
	}
}

// TestJWTGrantsInACL checks the grants of a token through the ACL: deny
// rules win over allow rules, placeholders take the token's values.
func TestJWTGrantsInACL(t *testing.T) {
	j, err := NewJWT(JWTConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	token := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claimsAt(now, jwt.MapClaims{
		"tenant": "north",
		"acl": map[string]any{
			"pub":  []string{"energy/%u/#"},
			"sub":  []string{"alerts/%t/#"},
			"deny": map[string]any{"pub": []string{"energy/%u/firmware"}},
		},
	}))
	id, err := j.Authenticate(context.Background(), &ConnectRequest{ClientID: "m1", Password: []byte(token), HasPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	acl, err := NewACL(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	access := acl.For(id)
	for _, c := range []struct {
		action Action
		topic  string
		want   bool
	}{
		{Publish, "energy/alice/power", true},
		{Publish, "energy/alice/firmware", false},
		{Publish, "energy/bob/power", false},
		{Subscribe, "alerts/north/#", true},
		{Receive, "alerts/north/fire", true},
		{Publish, "alerts/north/fire", false},
		{Subscribe, "alerts/south/#", false},
	} {
		if got := access.Allow(c.action, c.topic); got != c.want {
			t.Errorf("Allow(%v, %q) = %v, want %v", c.action, c.topic, got, c.want)
		}
	}
}
