package auth

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/citymesh/citymesh/topic"
)

// ACL is an Authorizer that decides by an ordered list of rules.
//
// Rules are evaluated in order; the first rule that applies to the client and
// whose filter matches the topic decides, allowing or denying; when none
// does, the default given to NewACL decides. The rules carried by the
// client's credential (Identity.Grants) come before the configured rules and
// are evaluated the same way, except that their subjects are ignored: they
// belong to that identity.
//
// A rule applies to an identity when it names no subjects, or the identity's
// User is in Users, or one of its Groups is in Groups, or its Tenant is in
// Tenants, or Anonymous is set and the identity is anonymous. The user name
// of an anonymous identity is not authenticated and counts as empty, both
// for Users and for %u.
//
// A filter may use the placeholders %u (the user name), %c (the client
// identifier) and %t (the tenant), each as a whole topic level ("energy/%u/#").
// They are replaced by the identity's values; when a value is empty, contains
// '+', '#' or '/', or begins with '$' and would become the first level, the
// rule matches nothing for that identity, so that no name chosen by a client
// can widen a rule.
//
// For Publish and Receive the topic is a topic name, and a rule's filter
// matches it as topic.Match says: a filter beginning with a wildcard does
// not match a name beginning with '$' [MQTT-4.7.2-1]. For Subscribe the topic
// is a topic filter, and a rule matches it when its filter covers it
// (topic.Covers): every topic the subscription can match, the rule matches.
// So with the rules "deny subscribe secret/#" and "allow subscribe #", a
// subscription to "#" is allowed and one to "secret/x" denied; Receive rules
// then keep what a wide subscription may not read from its subscriber.
//
// An ACL does not change once made and is safe for concurrent use. The
// Access values of For keep a small cache of decisions and are for one
// goroutine at a time, as Authorizer requires.
//
// NewACL compiles the rules into a tree over the levels of their filters,
// placeholders included, so that a decision visits only the branches that
// match the topic and takes the first rule in order among those found that
// apply to the client; For only works out which rules' subjects include the
// client (a bitset shared by every client that no subject names), and the
// values of its placeholders.
type ACL struct {
	root         *aclNode // the rules in a trie over the levels of their filters
	defaultAllow bool

	// Subject index: which rules apply to an identity. everyone has the
	// bits of the rules without subjects; the maps and anonymous have the
	// other rules by subject.
	everyone  []uint64
	byUser    map[string]*ruleSet
	byGroup   map[string]*ruleSet
	byTenant  map[string]*ruleSet
	anonymous ruleSet
}

// ruleSet is a set of rules by order: a list, or a bitset when that is
// smaller.
type ruleSet struct {
	list []int32
	bits []uint64
}

// add adds order, the greatest so far, to s while s is a list.
func (s *ruleSet) add(order int32) {
	if n := len(s.list); n == 0 || s.list[n-1] != order { // a subject named twice
		s.list = append(s.list, order)
	}
}

// compact turns s into a bitset of words words if that is smaller.
func (s *ruleSet) compact(words int) {
	if len(s.list) <= 2*words {
		return
	}
	s.bits = make([]uint64, words)
	for _, o := range s.list {
		s.bits[o/64] |= 1 << (o % 64)
	}
	s.list = nil
}

// addTo adds s to the bitset bits.
func (s *ruleSet) addTo(bits []uint64) {
	for i, w := range s.bits {
		bits[i] |= w
	}
	for _, o := range s.list {
		bits[o/64] |= 1 << (o % 64)
	}
}

func (s *ruleSet) empty() bool { return s == nil || len(s.list) == 0 && s.bits == nil }

// RuleError is the error of NewACL for a rule it refuses.
type RuleError struct {
	// Index is the position of the rule in the list given to NewACL.
	Index int
	// Filter is the rule's filter.
	Filter string
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *RuleError) Error() string {
	return fmt.Sprintf("auth: ACL rule %d (filter %q): %v", e.Index, e.Filter, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *RuleError) Unwrap() error { return e.Err }

// Placeholder kinds, also the index of the value in aclAccess.vals.
const (
	varUser = iota
	varClient
	varTenant
	numVars
)

const (
	allActions = Publish | Subscribe | Receive
	noRule     = math.MaxInt32
	// The decision cache of an Access holds at most cacheSize topics of
	// at most cacheMaxTopic bytes, cacheMaxBytes in all; a full cache is
	// cleared. Longer topics are decided every time.
	cacheSize     = 256
	cacheMaxTopic = 1 << 10
	cacheMaxBytes = 16 << 10
)

// aclRule is a rule as checked by compileRule.
type aclRule struct {
	allow   bool
	actions Action
	filter  string
	levels  []string // the filter's levels; nil for a rule without placeholders
}

// ruleRef is what a trie node keeps of a rule whose filter ends there.
type ruleRef struct {
	order   int32
	allow   bool
	actions Action
}

// aclNode is a node of the rule trie: a filter prefix. The rules whose
// filter is exactly that prefix are in rules; those ending in "#" after it
// are in hash.rules.
type aclNode struct {
	children map[string]*aclNode
	plus     *aclNode
	hash     *aclNode
	vars     [numVars]*aclNode // %u, %c, %t
	hasVars  bool
	rules    []ruleRef
	min      int32 // the lowest order of a rule in this subtree
}

// NewACL compiles rules, in order of precedence, into an ACL; defaultAllow
// decides what no rule decides. It refuses, with a *RuleError naming the
// rule's index, a rule without actions or with unknown ones, a filter that
// is not a valid topic filter once its placeholders are replaced, a
// placeholder other than %u, %c and %t or not alone in its level, a shared
// subscription filter, and an empty subject name.
func NewACL(rules []Rule, defaultAllow bool) (*ACL, error) {
	if len(rules) >= noRule {
		return nil, fmt.Errorf("auth: ACL of %d rules: too many", len(rules))
	}
	words := (len(rules) + 63) / 64
	acl := &ACL{
		root:         &aclNode{},
		defaultAllow: defaultAllow,
		everyone:     make([]uint64, words),
		byUser:       make(map[string]*ruleSet),
		byGroup:      make(map[string]*ruleSet),
		byTenant:     make(map[string]*ruleSet),
	}
	set := func(m map[string]*ruleSet, name string) *ruleSet {
		s := m[name]
		if s == nil {
			s = &ruleSet{}
			m[name] = s
		}
		return s
	}
	for i, r := range rules {
		c, err := compileRule(r)
		if err == nil {
			err = checkSubjects(r)
		}
		if err != nil {
			return nil, &RuleError{Index: i, Filter: r.Filter, Err: err}
		}
		order := int32(i)
		acl.root.insert(c.filter, ruleRef{order: order, allow: c.allow, actions: c.actions})
		if len(r.Users) == 0 && len(r.Groups) == 0 && len(r.Tenants) == 0 && !r.Anonymous {
			acl.everyone[i/64] |= 1 << (i % 64)
			continue
		}
		for _, u := range r.Users {
			set(acl.byUser, u).add(order)
		}
		for _, g := range r.Groups {
			set(acl.byGroup, g).add(order)
		}
		for _, t := range r.Tenants {
			set(acl.byTenant, t).add(order)
		}
		if r.Anonymous {
			acl.anonymous.add(order)
		}
	}
	for _, m := range []map[string]*ruleSet{acl.byUser, acl.byGroup, acl.byTenant} {
		for _, s := range m {
			s.compact(words)
		}
	}
	acl.anonymous.compact(words)
	acl.root.computeMin()
	return acl, nil
}

var (
	errNoActions      = errors.New("no actions")
	errUnknownActions = errors.New("unknown actions")
	errPlaceholder    = errors.New("placeholder must be %u, %c or %t, alone in its topic level")
	errShared         = errors.New("a shared subscription filter cannot be a rule's filter")
	errEmptySubject   = errors.New("empty subject name")
)

// compileRule checks r's actions and filter and compiles them.
func compileRule(r Rule) (aclRule, error) {
	c := aclRule{allow: r.Allow, actions: r.Actions, filter: r.Filter}
	switch {
	case r.Actions == 0:
		return c, errNoActions
	case r.Actions&^allActions != 0:
		return c, fmt.Errorf("%w: %#x", errUnknownActions, uint8(r.Actions&^allActions))
	case r.Filter == "$share" || strings.HasPrefix(r.Filter, "$share/"):
		return c, errShared
	}
	check := r.Filter
	if strings.IndexByte(r.Filter, '%') >= 0 {
		c.levels = strings.Split(r.Filter, "/")
		lits := make([]string, len(c.levels))
		for i, l := range c.levels {
			lits[i] = l
			if strings.IndexByte(l, '%') < 0 {
				continue
			}
			if placeholder(l) < 0 {
				return c, fmt.Errorf("%w: level %d is %q", errPlaceholder, i, l)
			}
			lits[i] = "x" // a placeholder stands for one literal level
		}
		check = strings.Join(lits, "/")
	}
	if err := topic.ValidFilter(check); err != nil {
		return c, fmt.Errorf("invalid topic filter: %w", err)
	}
	return c, nil
}

// checkSubjects refuses empty names among r's subjects: they would match
// identities without a user name or tenant.
func checkSubjects(r Rule) error {
	for _, s := range [...]struct {
		what  string
		names []string
	}{{"Users", r.Users}, {"Groups", r.Groups}, {"Tenants", r.Tenants}} {
		for i, n := range s.names {
			if n == "" {
				return fmt.Errorf("%w: %s[%d]", errEmptySubject, s.what, i)
			}
		}
	}
	return nil
}

// placeholder returns the kind of placeholder level l is, or -1.
func placeholder(l string) int {
	switch l {
	case "%u":
		return varUser
	case "%c":
		return varClient
	case "%t":
		return varTenant
	}
	return -1
}

// validValue reports whether v may replace a placeholder.
func validValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "+#/")
}

// substitute returns c's filter with the placeholders replaced by vals, and
// false when the rule matches nothing for these values.
func (c *aclRule) substitute(vals *[numVars]string, ok *[numVars]bool) (string, bool) {
	if c.levels == nil {
		return c.filter, true
	}
	var b strings.Builder
	b.Grow(len(c.filter) + 32)
	for i, l := range c.levels {
		if i > 0 {
			b.WriteByte('/')
		}
		k := placeholder(l)
		if k < 0 {
			b.WriteString(l)
			continue
		}
		if !ok[k] || i == 0 && vals[k][0] == '$' {
			return "", false
		}
		b.WriteString(vals[k])
	}
	return b.String(), true
}

// insert adds the rule ref with filter to the trie under n.
func (n *aclNode) insert(filter string, ref ruleRef) {
	for rest, more := filter, true; more; {
		var l string
		l, rest, more = strings.Cut(rest, "/")
		n = n.child(l)
	}
	n.rules = append(n.rules, ref)
}

// child returns n's child for filter level l, creating it.
func (n *aclNode) child(l string) *aclNode {
	p := &n.plus
	switch k := placeholder(l); {
	case l == "+":
	case l == "#":
		p = &n.hash
	case k >= 0:
		p = &n.vars[k]
		n.hasVars = true
	default:
		c := n.children[l]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*aclNode)
			}
			c = &aclNode{}
			n.children[l] = c
		}
		return c
	}
	if *p == nil {
		*p = &aclNode{}
	}
	return *p
}

// computeMin sets the min of n and of its subtree and returns n's.
func (n *aclNode) computeMin() int32 {
	n.min = noRule
	if len(n.rules) > 0 {
		n.min = n.rules[0].order
	}
	lower := func(c *aclNode) {
		if c != nil {
			n.min = min(n.min, c.computeMin())
		}
	}
	for _, c := range n.children {
		lower(c)
	}
	lower(n.plus)
	lower(n.hash)
	for _, c := range n.vars {
		lower(c)
	}
	return n.min
}

// For implements Authorizer. It computes which of the rules apply to id,
// the values of its placeholders and its grants; the rules themselves are
// shared by every Access.
func (acl *ACL) For(id *Identity) Access {
	if id == nil {
		id = &Identity{}
	}
	user := id.User
	if id.Anonymous() {
		user = ""
	}
	a := &aclAccess{
		acl:  acl,
		vals: [numVars]string{user, id.ClientID, id.Tenant},
		bits: acl.subjectBits(id, user),
	}
	for k, v := range a.vals {
		a.ok[k] = validValue(v)
	}
	for _, g := range id.Grants {
		c, err := compileRule(g)
		if err != nil {
			continue // an invalid grant matches nothing
		}
		f, ok := c.substitute(&a.vals, &a.ok)
		if !ok {
			continue
		}
		a.grants = append(a.grants, grant{allow: c.allow, actions: c.actions, filter: f})
	}
	return a
}

// subjectBits returns the set of rules that apply to id, whose user name is
// user. Identities to which only rules without subjects apply share one set.
func (acl *ACL) subjectBits(id *Identity, user string) []uint64 {
	var bits []uint64
	add := func(s *ruleSet) {
		if s.empty() {
			return
		}
		if bits == nil {
			bits = make([]uint64, len(acl.everyone))
			copy(bits, acl.everyone)
		}
		s.addTo(bits)
	}
	if user != "" {
		add(acl.byUser[user])
	}
	for _, g := range id.Groups {
		add(acl.byGroup[g])
	}
	if id.Tenant != "" {
		add(acl.byTenant[id.Tenant])
	}
	if id.Anonymous() {
		add(&acl.anonymous)
	}
	if bits == nil {
		return acl.everyone
	}
	return bits
}

// grant is a rule of Identity.Grants, substituted.
type grant struct {
	allow   bool
	actions Action
	filter  string
}

// aclAccess is the Access of ACL.For. It is not safe for concurrent use.
type aclAccess struct {
	acl  *ACL
	vals [numVars]string // user, client identifier, tenant
	ok   [numVars]bool   // whether vals[k] may replace a placeholder
	bits []uint64        // the rules that apply to the client, by order

	grants []grant

	// cache keeps decisions by topic: for each action, whether one is
	// known (cacheKnown shifted by twice the action's bit number) and
	// whether it allows (cacheAllow, shifted so too). cacheBytes is the
	// length of its keys.
	cache      map[string]uint8
	cacheBytes int
}

const (
	cacheKnown uint8 = 1 << iota
	cacheAllow
)

// Allow implements Access. An action other than Publish, Subscribe and
// Receive is denied.
func (a *aclAccess) Allow(action Action, t string) bool {
	var shift uint
	switch action {
	case Publish:
		shift = 0
	case Subscribe:
		shift = 2
	case Receive:
		shift = 4
	default:
		return false
	}
	known, allow := cacheKnown<<shift, cacheAllow<<shift
	v, hit := a.cache[t]
	if v&known != 0 {
		return v&allow != 0
	}
	ok := a.decide(action, t)
	if len(t) > cacheMaxTopic {
		return ok
	}
	switch {
	case a.cache == nil:
		a.cache = make(map[string]uint8)
	case !hit && (len(a.cache) >= cacheSize || a.cacheBytes+len(t) > cacheMaxBytes):
		clear(a.cache)
		a.cacheBytes = 0
	}
	if !hit {
		a.cacheBytes += len(t)
	}
	v |= known
	if ok {
		v |= allow
	}
	a.cache[t] = v
	return ok
}

// decide decides action on t, a topic name for Publish and Receive and a
// filter for Subscribe, without the cache.
func (a *aclAccess) decide(action Action, t string) bool {
	filter := action == Subscribe
	for _, g := range a.grants {
		if g.actions&action != 0 && (!filter && topic.Match(g.filter, t) || filter && topic.Covers(g.filter, t)) {
			return g.allow
		}
	}
	m := matcher{a: a, action: action, filter: filter, best: noRule, allow: a.acl.defaultAllow}
	m.root(a.acl.root, t)
	return m.allow
}

// applies reports whether the rule of order o applies to the client.
func (a *aclAccess) applies(o int32) bool {
	return a.bits[o/64]&(1<<(o%64)) != 0
}

// matcher finds the first rule that decides an action on a topic by walking
// the branches of the trie that match it: for a topic name (Publish,
// Receive), the rules whose filter matches it; for a filter (Subscribe), the
// rules whose filter covers it. A subtree whose rules all come after the
// best found so far is skipped.
type matcher struct {
	a      *aclAccess
	action Action
	filter bool // the topic is a filter, to be covered
	best   int32
	allow  bool
}

// take considers the rules of one node, sorted by order.
func (m *matcher) take(rs []ruleRef) {
	for _, r := range rs {
		if r.order >= m.best {
			return
		}
		if r.actions&m.action != 0 && m.a.applies(r.order) {
			m.best, m.allow = r.order, r.allow
			return
		}
	}
}

// root matches t from the trie's root, where a wildcard or placeholder does
// not match a first level beginning with '$' (nor cover one, for a filter).
func (m *matcher) root(n *aclNode, t string) {
	if t == "" || t[0] != '$' {
		m.walk(n, t, true)
		return
	}
	l, tail, more := strings.Cut(t, "/")
	if c := n.children[l]; c != nil && c.min < m.best {
		m.walk(c, tail, more)
	}
}

// walk matches the levels in rest (none unless more) from node n.
func (m *matcher) walk(n *aclNode, rest string, more bool) {
	if h := n.hash; h != nil && h.min < m.best {
		// "#" matches or covers the rest, even no level ("a/#" and "a").
		m.take(h.rules)
	}
	if !more {
		if n.min < m.best {
			m.take(n.rules)
		}
		return
	}
	l, tail, more := strings.Cut(rest, "/")
	if m.filter {
		switch l {
		case "#":
			return // covered only by "#", taken above
		case "+":
			if c := n.plus; c != nil && c.min < m.best {
				m.walk(c, tail, more) // covered only by "+" or "#"
			}
			return
		}
	}
	if c := n.children[l]; c != nil && c.min < m.best {
		m.walk(c, tail, more)
	}
	if c := n.plus; c != nil && c.min < m.best {
		m.walk(c, tail, more)
	}
	if n.hasVars {
		for k, c := range n.vars {
			if c != nil && c.min < m.best && m.a.ok[k] && m.a.vals[k] == l {
				m.walk(c, tail, more)
			}
		}
	}
}
