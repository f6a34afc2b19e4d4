package auth

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/citymesh/citymesh/topic"
)

const (
	pub = Publish
	sub = Subscribe
	rcv = Receive
	all = Publish | Subscribe | Receive
)

// naiveDecide is the reference the ACL is tested against: the documented
// semantics, evaluated rule by rule.
func naiveDecide(rules []Rule, defaultAllow bool, id *Identity, action Action, t string) bool {
	for _, g := range id.Grants {
		if allow, ok := naiveRule(g, id, action, t, false); ok {
			return allow
		}
	}
	for _, r := range rules {
		if allow, ok := naiveRule(r, id, action, t, true); ok {
			return allow
		}
	}
	return defaultAllow
}

// naiveRule reports whether r decides action on t for id, and how.
func naiveRule(r Rule, id *Identity, action Action, t string, checkSubjects bool) (allow, decides bool) {
	if r.Actions&action == 0 || checkSubjects && !naiveApplies(r, id) {
		return false, false
	}
	f, ok := naiveSubstitute(r.Filter, id)
	if !ok {
		return false, false
	}
	if action == Subscribe {
		return r.Allow, topic.Covers(f, t)
	}
	return r.Allow, topic.Match(f, t)
}

func naiveUser(id *Identity) string {
	if id.Anonymous() {
		return ""
	}
	return id.User
}

func naiveApplies(r Rule, id *Identity) bool {
	if len(r.Users) == 0 && len(r.Groups) == 0 && len(r.Tenants) == 0 && !r.Anonymous {
		return true
	}
	in := func(s string, list []string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	if u := naiveUser(id); u != "" && in(u, r.Users) {
		return true
	}
	for _, g := range id.Groups {
		if in(g, r.Groups) {
			return true
		}
	}
	return id.Tenant != "" && in(id.Tenant, r.Tenants) || r.Anonymous && id.Anonymous()
}

func naiveSubstitute(filter string, id *Identity) (string, bool) {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		var v string
		switch l {
		case "%u":
			v = naiveUser(id)
		case "%c":
			v = id.ClientID
		case "%t":
			v = id.Tenant
		default:
			continue
		}
		if v == "" || strings.ContainsAny(v, "+#/") || i == 0 && v[0] == '$' {
			return "", false
		}
		levels[i] = v
	}
	return strings.Join(levels, "/"), true
}

type aclCase struct {
	id     string
	action Action
	topic  string
	want   bool
}

var testIdentities = map[string]*Identity{
	"alice":   {User: "alice", ClientID: "alice-1", Groups: []string{"staff", "ops"}, Tenant: "acme", Method: "password"},
	"bob":     {User: "bob", ClientID: "bob-1", Groups: []string{"staff"}, Tenant: "city", Method: "password"},
	"mallory": {User: "mallory", ClientID: "m-1", Groups: []string{"ops"}, Method: "password"},
	"carol":   {User: "carol", ClientID: "carol-1", Method: "jwt"},
	// An anonymous client's user name is not authenticated: it counts as
	// empty, for Users and for %u.
	"anon": {User: "alice", ClientID: "anon-1", Method: "anonymous"},
	// Values that would widen a rule if substituted.
	"plus":    {User: "+", ClientID: "#", Tenant: "a/b", Method: "password"},
	"dollar":  {User: "$SYS", ClientID: "$SYS", Tenant: "t", Method: "password"},
	"nobody":  {Method: "certificate"},
	"granted": {User: "gina", ClientID: "g-1", Groups: []string{"staff"}, Method: "jwt"},
}

func TestACLMatrix(t *testing.T) {
	testIdentities["granted"].Grants = []Rule{
		{Allow: true, Actions: pub, Filter: "secret/gina/#", Users: []string{"nobody"}}, // subjects ignored
		{Allow: false, Actions: pub | rcv, Filter: "city/closed/#"},
		{Allow: true, Actions: sub, Filter: "grants/%c/#"},
		{Allow: true, Actions: pub, Filter: "bad/x%u"}, // invalid: matches nothing
	}
	defer func() { testIdentities["granted"].Grants = nil }()

	tests := []struct {
		name         string
		rules        []Rule
		defaultAllow bool
		cases        []aclCase
	}{
		{
			name:  "no rules, default deny",
			rules: nil,
			cases: []aclCase{
				{"alice", pub, "a", false},
				{"alice", sub, "#", false},
				{"anon", rcv, "$SYS/x", false},
			},
		},
		{
			name:         "no rules, default allow",
			rules:        nil,
			defaultAllow: true,
			cases: []aclCase{
				{"alice", pub, "a", true},
				{"alice", sub, "#", true},
				{"nobody", rcv, "$SYS/x", true},
			},
		},
		{
			name: "first match: deny before allow",
			rules: []Rule{
				{Allow: false, Actions: pub, Filter: "a/b/#"},
				{Allow: true, Actions: pub, Filter: "a/#"},
			},
			cases: []aclCase{
				{"bob", pub, "a/b", false},
				{"bob", pub, "a/b/c", false},
				{"bob", pub, "a/c", true},
				{"bob", pub, "a", true},
				{"bob", rcv, "a/c", false}, // no Receive rule: default
				{"bob", pub, "b", false},
			},
		},
		{
			name: "first match: allow before deny",
			rules: []Rule{
				{Allow: true, Actions: pub, Filter: "a/b/#"},
				{Allow: false, Actions: pub, Filter: "a/#"},
			},
			defaultAllow: true,
			cases: []aclCase{
				{"bob", pub, "a/b", true},
				{"bob", pub, "a/b/c", true},
				{"bob", pub, "a/c", false},
				{"bob", pub, "a", false},
				{"bob", pub, "b", true},
				{"bob", rcv, "a", true},
			},
		},
		{
			name: "later rule does not override an earlier one on a deeper branch",
			rules: []Rule{
				{Allow: false, Actions: pub, Filter: "+/+/c"},
				{Allow: true, Actions: pub, Filter: "a/b/c"},
				{Allow: true, Actions: pub, Filter: "a/b/#"},
			},
			cases: []aclCase{
				{"bob", pub, "a/b/c", false},
				{"bob", pub, "a/b/d", true},
				{"bob", pub, "a/b", true},
				{"bob", pub, "x/y/c", false},
			},
		},
		{
			name: "substitution",
			rules: []Rule{
				{Allow: true, Actions: pub | rcv, Filter: "energy/%u/#"},
				{Allow: true, Actions: all, Filter: "clients/%c"},
				{Allow: true, Actions: all, Filter: "tenants/%t/+/%u"},
				{Allow: true, Actions: pub, Filter: "%u/inbox"},
			},
			cases: []aclCase{
				{"alice", pub, "energy/alice", true},
				{"alice", pub, "energy/alice/meter/1", true},
				{"alice", rcv, "energy/alice/meter/1", true},
				{"alice", pub, "energy/bob/meter/1", false},
				{"alice", sub, "energy/alice/#", false}, // the rule does not cover Subscribe
				{"bob", pub, "energy/bob/x", true},
				{"alice", pub, "clients/alice-1", true},
				{"alice", sub, "clients/alice-1", true},
				{"alice", pub, "clients/bob-1", false},
				{"alice", pub, "tenants/acme/x/alice", true},
				{"alice", sub, "tenants/acme/+/alice", true},
				{"alice", pub, "tenants/city/x/alice", false},
				{"bob", pub, "tenants/city/x/bob", true},
				{"carol", pub, "tenants//x/carol", false}, // no tenant
				{"alice", pub, "alice/inbox", true},
				{"anon", pub, "energy/alice/x", false}, // anonymous: no %u
				{"anon", pub, "clients/anon-1", true},
				{"nobody", pub, "energy//x", false},
				{"nobody", pub, "clients/", false},
			},
		},
		{
			name: "substituted wildcards and slashes match nothing",
			rules: []Rule{
				{Allow: true, Actions: all, Filter: "energy/%u/#"},
				{Allow: true, Actions: all, Filter: "clients/%c"},
				{Allow: true, Actions: all, Filter: "t/%t/x"},
				{Allow: true, Actions: all, Filter: "%u/#"},
				{Allow: true, Actions: all, Filter: "%c"},
			},
			cases: []aclCase{
				{"plus", pub, "energy/+", false},
				{"plus", pub, "energy/x/y", false},
				{"plus", sub, "energy/+/#", false},
				{"plus", sub, "energy/#", false},
				{"plus", pub, "clients/#", false},
				{"plus", pub, "clients/x", false},
				{"plus", sub, "clients/#", false},
				{"plus", pub, "t/a/b/x", false},
				{"plus", pub, "t/a/x", false},
				{"plus", pub, "anything", false},
				// A value beginning with '$' does not become a first level.
				{"dollar", pub, "$SYS/broker/uptime", false},
				{"dollar", rcv, "$SYS/broker/uptime", false},
				{"dollar", sub, "$SYS/#", false},
				{"dollar", pub, "$SYS", false},
				{"dollar", pub, "energy/$SYS/x", true}, // inner levels are literal
				{"dollar", pub, "clients/$SYS", true},
				{"bob", pub, "bob/x", true},
			},
		},
		{
			name: "subscribe covers",
			rules: []Rule{
				{Allow: false, Actions: sub, Filter: "secret/#"},
				{Allow: true, Actions: sub, Filter: "#"},
				{Allow: false, Actions: rcv, Filter: "secret/#"},
				{Allow: true, Actions: rcv, Filter: "#"},
			},
			cases: []aclCase{
				{"bob", sub, "#", true},
				{"bob", sub, "secret/x", false},
				{"bob", sub, "secret/#", false},
				{"bob", sub, "secret", false},
				{"bob", sub, "secret/+/y", false},
				{"bob", sub, "+/x", true},
				{"bob", rcv, "secret/x", false},
				{"bob", rcv, "secret", false},
				{"bob", rcv, "public/x", true},
				{"bob", sub, "$SYS/#", false}, // "#" does not cover $ topics
				{"bob", sub, "$SYS/broker", false},
				{"bob", rcv, "$SYS/broker", false},
				{"bob", pub, "public/x", false},
			},
		},
		{
			name: "subscribe with + levels",
			rules: []Rule{
				{Allow: true, Actions: sub, Filter: "energy/+/status"},
				{Allow: true, Actions: sub, Filter: "city/+/#"},
				{Allow: true, Actions: sub, Filter: "$SYS/#", Groups: []string{"ops"}},
			},
			cases: []aclCase{
				{"bob", sub, "energy/b1/status", true},
				{"bob", sub, "energy/+/status", true},
				{"bob", sub, "energy/#", false},
				{"bob", sub, "energy/+/+", false},
				{"bob", sub, "+/+/status", false},
				{"bob", sub, "city/a", true},
				{"bob", sub, "city/a/b/#", true},
				{"bob", sub, "city/+/b", true},
				{"bob", sub, "city/#", false}, // includes "city" itself
				{"bob", sub, "city", false},
				{"bob", sub, "$SYS/broker/#", false},
				{"alice", sub, "$SYS/broker/#", true},
				{"alice", sub, "$SYS/#", true},
				{"alice", sub, "#", false},
			},
		},
		{
			name: "dollar topics are literal",
			rules: []Rule{
				{Allow: true, Actions: pub | rcv, Filter: "#"},
				{Allow: true, Actions: rcv, Filter: "$SYS/#", Groups: []string{"ops"}},
				{Allow: true, Actions: rcv, Filter: "+/x"},
			},
			cases: []aclCase{
				{"bob", pub, "a", true},
				{"bob", pub, "$SYS/x", false},
				{"bob", rcv, "$SYS/x", false},
				{"bob", rcv, "$other/x", false},
				{"alice", rcv, "$SYS/x", true},
				{"alice", rcv, "$SYS", true},
				{"alice", pub, "$SYS/x", false},
				{"bob", pub, "a$/x", true},
			},
		},
		{
			name: "subjects",
			rules: []Rule{
				{Allow: false, Actions: all, Filter: "secret/#", Users: []string{"mallory"}},
				{Allow: true, Actions: all, Filter: "secret/#", Groups: []string{"ops"}},
				{Allow: true, Actions: pub, Filter: "city/#", Tenants: []string{"city"}},
				{Allow: true, Actions: pub, Filter: "lobby/#", Anonymous: true},
				{Allow: true, Actions: pub, Filter: "users/#", Users: []string{"alice", "carol"}},
				{Allow: true, Actions: rcv, Filter: "mixed", Users: []string{"bob"}, Groups: []string{"nope"}, Tenants: []string{"acme"}, Anonymous: true},
			},
			cases: []aclCase{
				{"mallory", pub, "secret/x", false},
				{"alice", pub, "secret/x", true},
				{"alice", sub, "secret/#", true},
				{"bob", pub, "secret/x", false},
				{"bob", pub, "city/x", true},
				{"alice", pub, "city/x", false},
				{"anon", pub, "lobby/x", true},
				{"alice", pub, "lobby/x", false},
				{"nobody", pub, "lobby/x", false},
				{"alice", pub, "users/x", true},
				{"carol", pub, "users/x", true},
				{"bob", pub, "users/x", false},
				{"anon", pub, "users/x", false}, // claims "alice", unauthenticated
				{"bob", rcv, "mixed", true},
				{"alice", rcv, "mixed", true},
				{"anon", rcv, "mixed", true},
				{"carol", rcv, "mixed", false},
				{"mallory", rcv, "mixed", false},
			},
		},
		{
			name: "grants first, subjects ignored",
			rules: []Rule{
				{Allow: false, Actions: all, Filter: "secret/#"},
				{Allow: true, Actions: pub | rcv, Filter: "city/#"},
				{Allow: false, Actions: sub, Filter: "grants/#"},
				{Allow: true, Actions: pub, Filter: "bad/#"},
			},
			cases: []aclCase{
				{"granted", pub, "secret/gina/x", true},
				{"granted", pub, "secret/other", false},
				{"granted", rcv, "secret/gina/x", false},
				{"granted", pub, "city/closed/x", false},
				{"granted", rcv, "city/closed", false},
				{"granted", pub, "city/open", true},
				{"granted", sub, "grants/g-1/#", true},
				{"granted", sub, "grants/g-2/#", false},
				{"granted", pub, "bad/xgina", true}, // the invalid grant is ignored
				{"bob", pub, "secret/gina/x", false},
				{"bob", pub, "city/closed/x", true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acl, err := NewACL(tt.rules, tt.defaultAllow)
			if err != nil {
				t.Fatal(err)
			}
			access := make(map[string]Access)
			for _, c := range tt.cases {
				id := testIdentities[c.id]
				if id == nil {
					t.Fatalf("no identity %q", c.id)
				}
				if got := naiveDecide(tt.rules, tt.defaultAllow, id, c.action, c.topic); got != c.want {
					t.Errorf("reference: %s %s %q = %v, want %v", c.id, c.action, c.topic, got, c.want)
				}
				a := access[c.id]
				if a == nil {
					a = acl.For(id)
					access[c.id] = a
				}
				// Twice: the second answer may come from the cache.
				for i := range 2 {
					if got := a.Allow(c.action, c.topic); got != c.want {
						t.Errorf("%s %s %q (try %d) = %v, want %v", c.id, c.action, c.topic, i+1, got, c.want)
					}
				}
			}
			// Again in reverse order, on fresh Access values, so that no
			// answer depends on what was asked before.
			clear(access)
			for i := len(tt.cases) - 1; i >= 0; i-- {
				c := tt.cases[i]
				a := access[c.id]
				if a == nil {
					a = acl.For(testIdentities[c.id])
					access[c.id] = a
				}
				if got := a.Allow(c.action, c.topic); got != c.want {
					t.Errorf("reverse: %s %s %q = %v, want %v", c.id, c.action, c.topic, got, c.want)
				}
			}
		})
	}
}

func TestACLUnknownAction(t *testing.T) {
	acl, err := NewACL([]Rule{{Allow: true, Actions: all, Filter: "#"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	a := acl.For(&Identity{User: "u"})
	for _, action := range []Action{0, Publish | Receive, 8} {
		if a.Allow(action, "x") {
			t.Errorf("Allow(%v) = true, want false", action)
		}
	}
	if !acl.For(nil).Allow(Publish, "x") {
		t.Error("For(nil): Allow(publish) = false, want true")
	}
}

func TestACLCacheBound(t *testing.T) {
	acl, err := NewACL([]Rule{
		{Allow: false, Actions: pub, Filter: "t/+/deny"},
		{Allow: true, Actions: pub | rcv, Filter: "t/#"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	a := acl.For(&Identity{User: "u"}).(*aclAccess)
	for round := range 3 {
		for i := range 3 * cacheSize {
			name := fmt.Sprintf("t/%d", i)
			deny := fmt.Sprintf("t/%d/deny", i)
			if !a.Allow(Publish, name) || !a.Allow(Receive, name) || a.Allow(Publish, deny) || !a.Allow(Receive, deny) {
				t.Fatalf("round %d: wrong decision for %q", round, name)
			}
			if len(a.cache) > cacheSize {
				t.Fatalf("cache holds %d decisions, more than %d", len(a.cache), cacheSize)
			}
		}
	}
	// Long topics: the cache holds no more than cacheMaxBytes of them, and
	// none longer than cacheMaxTopic.
	for _, n := range []int{cacheMaxTopic - 10, cacheMaxTopic + 1, 3 * cacheMaxTopic} {
		for i := range 100 {
			name := fmt.Sprintf("t/%d%s", i, strings.Repeat("x", n))
			for range 2 {
				if !a.Allow(Publish, name) || a.Allow(Publish, name+"/deny") || !a.Allow(Publish, name+"/deny/x") {
					t.Fatalf("wrong decision for a topic of %d bytes", len(name))
				}
			}
			bytes := 0
			for k := range a.cache {
				if len(k) > cacheMaxTopic {
					t.Fatalf("cache holds a topic of %d bytes", len(k))
				}
				bytes += len(k)
			}
			if bytes > cacheMaxBytes || bytes != a.cacheBytes {
				t.Fatalf("cache holds %d bytes of topics (counted %d), bound %d", bytes, a.cacheBytes, cacheMaxBytes)
			}
		}
	}
}

// TestACLConcurrentFor uses one ACL from many goroutines, each with its
// own Access, for the race detector.
func TestACLConcurrentFor(t *testing.T) {
	rules := randomRules(rand.New(rand.NewPCG(2, 2)), 200, true)
	acl, err := NewACL(rules, false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(3, uint64(g)))
			for range 200 {
				id := randomIdentities[r.IntN(len(randomIdentities))]
				a := acl.For(id)
				for range 10 {
					name := randomName(r)
					if got, want := a.Allow(Publish, name), naiveDecide(rules, false, id, Publish, name); got != want {
						t.Errorf("Allow(publish, %q) = %v, want %v", name, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestNewACLErrors(t *testing.T) {
	ok := Rule{Allow: true, Actions: pub, Filter: "a/#"}
	tests := []struct {
		name string
		rule Rule
		want string
		is   error
	}{
		{"empty filter", Rule{Actions: pub}, "invalid topic filter", topic.ErrEmpty},
		{"hash not last", Rule{Actions: pub, Filter: "a/#/b"}, "invalid topic filter", topic.ErrBadWildcard},
		{"hash in level", Rule{Actions: pub, Filter: "a/b#"}, "invalid topic filter", topic.ErrBadWildcard},
		{"plus in level", Rule{Actions: sub, Filter: "a+/b"}, "invalid topic filter", topic.ErrBadWildcard},
		{"NUL", Rule{Actions: sub, Filter: "a/\x00"}, "invalid topic filter", topic.ErrNull},
		{"unknown placeholder", Rule{Actions: pub, Filter: "a/%x/b"}, `level 1 is "%x"`, errPlaceholder},
		{"placeholder in level", Rule{Actions: pub, Filter: "a/x%u"}, `level 1 is "x%u"`, errPlaceholder},
		{"placeholder with suffix", Rule{Actions: pub, Filter: "%u%c"}, `level 0 is "%u%c"`, errPlaceholder},
		{"lone percent", Rule{Actions: pub, Filter: "a/%"}, `level 1 is "%"`, errPlaceholder},
		{"placeholder after hash", Rule{Actions: pub, Filter: "#/%u"}, "invalid topic filter", topic.ErrBadWildcard},
		{"zero actions", Rule{Allow: true, Filter: "a"}, "no actions", errNoActions},
		{"unknown actions", Rule{Actions: 8 | pub, Filter: "a"}, "unknown actions: 0x8", errUnknownActions},
		{"shared filter", Rule{Actions: sub, Filter: "$share/g/a"}, "shared subscription", errShared},
		{"empty user", Rule{Actions: pub, Filter: "a", Users: []string{"u", ""}}, "Users[1]", errEmptySubject},
		{"empty group", Rule{Actions: pub, Filter: "a", Groups: []string{""}}, "Groups[0]", errEmptySubject},
		{"empty tenant", Rule{Actions: pub, Filter: "a", Tenants: []string{""}}, "Tenants[0]", errEmptySubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acl, err := NewACL([]Rule{ok, ok, tt.rule, ok}, false)
			if err == nil {
				t.Fatalf("NewACL accepted %+v", tt.rule)
			}
			if acl != nil {
				t.Error("NewACL returned an ACL with its error")
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Index != 2 || re.Filter != tt.rule.Filter {
				t.Errorf("error %v (%T) is not a *RuleError for rule 2", err, err)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %q", err, tt.is)
			}
			msg := err.Error()
			if !strings.Contains(msg, "rule 2") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name rule 2 and %q", msg, tt.want)
			}
		})
	}
}

func TestNewACLValid(t *testing.T) {
	for _, f := range []string{
		"#", "+", "a", "a/b", "a/+/c", "a/#", "+/+/#", "$SYS/#", "a//b", "/", "%u", "%c/%t/%u",
		"energy/%u/#", "a/%u/b", "+/%c", "a/%t/+/#",
	} {
		if _, err := NewACL([]Rule{{Actions: pub, Filter: f}}, false); err != nil {
			t.Errorf("NewACL refused %q: %v", f, err)
		}
	}
}

// randomRules returns n random rules over a small set of levels, so that
// they overlap; withSubjects adds subjects to some of them.
func randomRules(r *rand.Rand, n int, withSubjects bool) []Rule {
	rules := make([]Rule, n)
	for i := range rules {
		rules[i] = Rule{
			Allow:   r.IntN(2) == 0,
			Actions: Action(1 + r.IntN(7)),
			Filter:  randomFilter(r, true),
		}
		if withSubjects && r.IntN(2) == 0 {
			pick := func(from ...string) []string {
				var s []string
				for _, x := range from {
					if r.IntN(3) == 0 {
						s = append(s, x)
					}
				}
				return s
			}
			rules[i].Users = pick("u", "v")
			rules[i].Groups = pick("g", "h")
			rules[i].Tenants = pick("t", "s")
			rules[i].Anonymous = r.IntN(4) == 0
		}
	}
	return rules
}

var randomLevels = []string{"a", "b", "c", "", "$SYS", "u", "c1", "t"}

// randomFilter returns a random valid filter, with placeholders if vars.
func randomFilter(r *rand.Rand, vars bool) string {
	if r.IntN(8) == 0 {
		return [...]string{"#", "+", "/", "$SYS/#", "%u/#", "+/#"}[r.IntN(6)]
	}
	n := 2 + r.IntN(3)
	levels := make([]string, n)
	for i := range levels {
		switch x := r.IntN(10); {
		case x == 0:
			levels[i] = "+"
		case x == 1 && i == n-1:
			levels[i] = "#"
		case x == 2 && vars:
			levels[i] = [...]string{"%u", "%c", "%t"}[r.IntN(3)]
		default:
			levels[i] = randomLevels[r.IntN(len(randomLevels))]
		}
	}
	return strings.Join(levels, "/")
}

func randomName(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	levels := make([]string, n)
	for i := range levels {
		levels[i] = randomLevels[r.IntN(len(randomLevels))]
	}
	return strings.Join(levels, "/")
}

var randomIdentities = []*Identity{
	{User: "u", ClientID: "c1", Tenant: "t", Groups: []string{"g"}, Method: "password"},
	{User: "v", ClientID: "a", Groups: []string{"h", "g"}, Method: "jwt"},
	{User: "a", ClientID: "b", Tenant: "s", Method: "password"},
	{User: "u", ClientID: "c1", Method: "anonymous"},
	{User: "$SYS", ClientID: "+", Tenant: "a/b", Method: "password"},
	{User: "", ClientID: "", Method: "certificate"},
}

// TestACLProperty checks that the compiled ACL decides as naiveDecide does,
// for random rules and topics.
func TestACLProperty(t *testing.T) {
	for _, withSubjects := range []bool{false, true} {
		t.Run(fmt.Sprintf("subjects=%v", withSubjects), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(fmt.Sprint(withSubjects)))))
			iterations := 2000
			if testing.Short() {
				iterations = 200
			}
			for it := range iterations {
				rules := randomRules(r, 1+r.IntN(40), withSubjects)
				def := r.IntN(2) == 0
				acl, err := NewACL(rules, def)
				if err != nil {
					t.Fatalf("NewACL(%v): %v", rules, err)
				}
				id := randomIdentities[r.IntN(len(randomIdentities))]
				a := acl.For(id)
				for range 30 {
					action := [...]Action{Publish, Receive, Subscribe}[r.IntN(3)]
					name := randomName(r)
					if action == Subscribe {
						name = randomFilter(r, false)
					}
					want := naiveDecide(rules, def, id, action, name)
					for try := range 2 {
						if got := a.Allow(action, name); got != want {
							t.Fatalf("iteration %d, try %d: rules %+v default %v, identity %+v: Allow(%v, %q) = %v, want %v",
								it, try, rules, def, id, action, name, got, want)
						}
					}
				}
			}
		})
	}
}

// FuzzACL builds an ACL from fuzzed rules, one a line ("<a|d><actions>
// <filter>", a leading 'g' making the line a grant), and checks its
// decisions on a fuzzed topic against naiveDecide.
func FuzzACL(f *testing.F) {
	f.Add("a7 #\nd1 secret/#", "secret/x", "u", "c")
	f.Add("d2 secret/#\na2 #\nd4 secret/#\na4 #", "#", "u", "c")
	f.Add("a1 energy/%u/#\na4 clients/%c/+", "energy/u/x", "u", "c")
	f.Add("ga1 %c/#\nd7 +/#", "$SYS/x", "$SYS", "+")
	f.Add("a5 a/x%u", "a/xu", "u", "c")
	f.Fuzz(func(t *testing.T, spec, name, user, client string) {
		var rules, grants []Rule
		for line := range strings.SplitSeq(spec, "\n") {
			isGrant := strings.HasPrefix(line, "g")
			if isGrant {
				line = line[1:]
			}
			if len(line) < 3 {
				continue
			}
			r := Rule{Allow: line[0] == 'a', Actions: Action(line[1] - '0'), Filter: line[3:]}
			if isGrant {
				if _, err := NewACL([]Rule{r}, false); err != nil {
					continue // invalid grants are ignored; naiveDecide does not know that
				}
				grants = append(grants, r)
			} else {
				rules = append(rules, r)
			}
		}
		acl, err := NewACL(rules, false)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || re.Index < 0 || re.Index >= len(rules) {
				t.Fatalf("NewACL error %v is not a *RuleError with a valid index", err)
			}
			return
		}
		id := &Identity{User: user, ClientID: client, Tenant: user, Method: "jwt", Grants: grants}
		a := acl.For(id)
		for _, action := range []Action{Publish, Receive, Subscribe} {
			want := naiveDecide(rules, false, id, action, name)
			for try := range 2 {
				if got := a.Allow(action, name); got != want {
					t.Fatalf("rules %+v grants %+v: Allow(%v, %q) = %v (try %d), want %v", rules, grants, action, name, got, try, want)
				}
			}
		}
	})
}
