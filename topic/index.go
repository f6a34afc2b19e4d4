package topic

import (
	"strings"
	"sync"
)

// Index is a subscription index: a tree over the levels of topic filters that
// finds every subscription matching a topic name while visiting only the
// branches that can match. S identifies a subscriber (a session, say) and V is
// what the caller keeps per subscription (its options). An Index is safe for
// concurrent use; create it with NewIndex.
type Index[S comparable, V any] struct {
	mu   sync.RWMutex
	root *node[S, V]
	n    int
}

// Entry is one subscription that matched.
type Entry[S comparable, V any] struct {
	Sub   S
	Value V
	// Filter is the filter as subscribed, with any $share prefix.
	Filter string
	// Group is the share name of a shared subscription, "" otherwise.
	Group string
}

type member[S comparable, V any] struct {
	sub S
	val V
}

type group[S comparable, V any] struct {
	name    string
	filter  string // "$share/name/inner"
	members []member[S, V]
}

type node[S comparable, V any] struct {
	parent   *node[S, V]
	level    string
	filter   string // the inner filter this node stands for, set while it has subscribers
	children map[string]*node[S, V]
	plus     *node[S, V]
	hash     *node[S, V]
	subs     []member[S, V]
	groups   []*group[S, V]
}

// NewIndex returns an empty index.
func NewIndex[S comparable, V any]() *Index[S, V] {
	return &Index[S, V]{root: &node[S, V]{}}
}

func (n *node[S, V]) empty() bool {
	return len(n.children) == 0 && n.plus == nil && n.hash == nil && len(n.subs) == 0 && len(n.groups) == 0
}

// child returns the child of n for level, creating it when create is set.
func (n *node[S, V]) child(level string, create bool) *node[S, V] {
	var c *node[S, V]
	switch level {
	case "+":
		c = n.plus
	case "#":
		c = n.hash
	default:
		c = n.children[level]
	}
	if c != nil || !create {
		return c
	}
	c = &node[S, V]{parent: n, level: level}
	switch level {
	case "+":
		n.plus = c
	case "#":
		n.hash = c
	default:
		if n.children == nil {
			n.children = make(map[string]*node[S, V])
		}
		n.children[level] = c
	}
	return c
}

// find walks to the node of inner filter f, creating nodes when create is set.
func (ix *Index[S, V]) find(f string, create bool) *node[S, V] {
	n := ix.root
	for {
		level, tail, more := strings.Cut(f, "/")
		if n = n.child(level, create); n == nil {
			return nil
		}
		if !more {
			return n
		}
		f = tail
	}
}

// Subscribe adds sub's subscription to filter with value v, or replaces it
// if sub already has one to exactly this filter, and reports whether it
// replaced one. filter may be a shared subscription filter
// ($share/group/filter). The filter is not validated; see ValidFilter.
func (ix *Index[S, V]) Subscribe(filter string, sub S, v V) (replaced bool) {
	name, inner, shared := ParseShared(filter)
	if !shared {
		inner = filter
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.find(inner, true)
	// Only nodes with subscribers keep their filter: storing it on every node
	// would cost memory quadratic in the number of levels.
	n.filter = inner
	list := &n.subs
	if shared {
		var g *group[S, V]
		for _, x := range n.groups {
			if x.name == name {
				g = x
				break
			}
		}
		if g == nil {
			g = &group[S, V]{name: name, filter: filter}
			n.groups = append(n.groups, g)
		}
		list = &g.members
	}
	for i := range *list {
		if (*list)[i].sub == sub {
			(*list)[i].val = v
			return true
		}
	}
	*list = append(*list, member[S, V]{sub, v})
	ix.n++
	return false
}

// Unsubscribe removes sub's subscription to filter and reports whether there
// was one. Nodes left empty are removed, so churn does not grow the index.
func (ix *Index[S, V]) Unsubscribe(filter string, sub S) bool {
	name, inner, shared := ParseShared(filter)
	if !shared {
		inner = filter
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.find(inner, false)
	if n == nil {
		return false
	}
	found := false
	if shared {
		for gi, g := range n.groups {
			if g.name != name {
				continue
			}
			g.members, found = remove(g.members, sub)
			if len(g.members) == 0 {
				n.groups = append(n.groups[:gi], n.groups[gi+1:]...)
				if len(n.groups) == 0 {
					n.groups = nil
				}
			}
			break
		}
	} else {
		n.subs, found = remove(n.subs, sub)
	}
	if found {
		ix.n--
	}
	for n.parent != nil && n.empty() {
		p := n.parent
		switch n.level {
		case "+":
			p.plus = nil
		case "#":
			p.hash = nil
		default:
			delete(p.children, n.level)
			if len(p.children) == 0 {
				p.children = nil
			}
		}
		n = p
	}
	return found
}

func remove[S comparable, V any](list []member[S, V], sub S) ([]member[S, V], bool) {
	for i := range list {
		if list[i].sub == sub {
			last := len(list) - 1
			list[i] = list[last]
			var zero member[S, V]
			list[last] = zero
			list = list[:last]
			if len(list) == 0 {
				list = nil
			}
			return list, true
		}
	}
	return list, false
}

// Match appends to dst every subscription whose filter matches topic name
// and returns the extended slice. Every member of a matching shared
// subscription group is appended, with Group set, so the caller can choose
// one. Match does not allocate when dst has room.
func (ix *Index[S, V]) Match(name string, dst []Entry[S, V]) []Entry[S, V] {
	ix.mu.RLock()
	dollar := name != "" && name[0] == '$'
	dst = ix.root.match(name, dollar, dst)
	ix.mu.RUnlock()
	return dst
}

func (n *node[S, V]) match(name string, skipWild bool, dst []Entry[S, V]) []Entry[S, V] {
	level, tail, more := strings.Cut(name, "/")
	if !skipWild {
		if n.hash != nil {
			dst = n.hash.appendAll(dst)
		}
		if n.plus != nil {
			dst = n.plus.descend(tail, more, dst)
		}
	}
	if c := n.children[level]; c != nil {
		dst = c.descend(tail, more, dst)
	}
	return dst
}

// descend continues matching below n, or collects n's subscriptions when the
// name has no more levels ('#' below n matches the parent level too).
func (n *node[S, V]) descend(tail string, more bool, dst []Entry[S, V]) []Entry[S, V] {
	if more {
		return n.match(tail, false, dst)
	}
	dst = n.appendAll(dst)
	if n.hash != nil {
		dst = n.hash.appendAll(dst)
	}
	return dst
}

// appendAll appends the subscriptions held at n itself.
func (n *node[S, V]) appendAll(dst []Entry[S, V]) []Entry[S, V] {
	for i := range n.subs {
		dst = append(dst, Entry[S, V]{Sub: n.subs[i].sub, Value: n.subs[i].val, Filter: n.filter})
	}
	for _, g := range n.groups {
		for i := range g.members {
			dst = append(dst, Entry[S, V]{Sub: g.members[i].sub, Value: g.members[i].val, Filter: g.filter, Group: g.name})
		}
	}
	return dst
}

// Len reports the number of subscriptions.
func (ix *Index[S, V]) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// Filters calls fn for each distinct filter that has subscribers, with their
// number, until fn returns false. Shared filters are reported with their
// $share prefix. fn must not call the index.
func (ix *Index[S, V]) Filters(fn func(filter string, subscribers int) bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.root.walk(fn)
}

func (n *node[S, V]) walk(fn func(string, int) bool) bool {
	if len(n.subs) > 0 && !fn(n.filter, len(n.subs)) {
		return false
	}
	for _, g := range n.groups {
		if !fn(g.filter, len(g.members)) {
			return false
		}
	}
	for _, c := range n.children {
		if !c.walk(fn) {
			return false
		}
	}
	if n.plus != nil && !n.plus.walk(fn) {
		return false
	}
	if n.hash != nil && !n.hash.walk(fn) {
		return false
	}
	return true
}
