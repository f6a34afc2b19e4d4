package broker

import (
	"strings"
	"sync"
)

// retainedStore keeps the last retained message of every topic
// [MQTT-3.3.1-5] in a tree of topic levels, so that a subscription's filter
// visits only the branches it can match, not every retained message.
type retainedStore struct {
	mu    sync.RWMutex
	root  *retainedNode
	count int
}

type retainedNode struct {
	children map[string]*retainedNode
	msg      *Message
}

func (r *retainedStore) init() { r.root = &retainedNode{} }

// set stores msg as the retained message of its topic, replacing the previous
// one [MQTT-3.3.1-5]; an empty payload removes it instead [MQTT-3.3.1-6] and
// is itself not stored [MQTT-3.3.1-7].
func (r *retainedStore) set(msg *Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(msg.Payload) == 0 {
		r.remove(r.root, msg.Topic)
		return
	}
	n := r.root
	rest := msg.Topic
	for {
		level, tail, more := strings.Cut(rest, "/")
		child := n.children[level]
		if child == nil {
			if n.children == nil {
				n.children = make(map[string]*retainedNode)
			}
			child = &retainedNode{}
			n.children[level] = child
		}
		n = child
		if !more {
			break
		}
		rest = tail
	}
	if n.msg == nil {
		r.count++
	}
	n.msg = msg
}

// remove deletes the retained message of name below n and prunes empty nodes.
// It reports whether n became empty.
func (r *retainedStore) remove(n *retainedNode, name string) bool {
	level, tail, more := strings.Cut(name, "/")
	child := n.children[level]
	if child != nil {
		if more {
			if r.remove(child, tail) {
				delete(n.children, level)
			}
		} else {
			if child.msg != nil {
				child.msg = nil
				r.count--
			}
			if len(child.children) == 0 {
				delete(n.children, level)
			}
		}
	}
	return n.msg == nil && len(n.children) == 0
}

// match calls fn for every retained message whose topic matches filter.
// Wildcards at the first level do not match topics that begin with '$'
// [MQTT-4.7.2-1].
func (r *retainedStore) match(filter string, fn func(*Message)) {
	var found []*Message
	r.mu.RLock()
	found = r.walk(r.root, filter, true, found)
	r.mu.RUnlock()
	for _, m := range found {
		fn(m)
	}
}

func (r *retainedStore) walk(n *retainedNode, filter string, first bool, out []*Message) []*Message {
	level, tail, more := strings.Cut(filter, "/")
	switch level {
	case "#":
		// '#' matches the parent level too [MQTT-4.7.1-2].
		if !first && n.msg != nil {
			out = append(out, n.msg)
		}
		return r.all(n, first, out)
	case "+":
		for name, child := range n.children {
			if first && strings.HasPrefix(name, "$") {
				continue
			}
			out = r.step(child, tail, more, out)
		}
	default:
		if child := n.children[level]; child != nil {
			out = r.step(child, tail, more, out)
		}
	}
	return out
}

func (r *retainedStore) step(child *retainedNode, tail string, more bool, out []*Message) []*Message {
	if !more {
		if child.msg != nil {
			out = append(out, child.msg)
		}
		return out
	}
	return r.walk(child, tail, false, out)
}

// all appends every message below n (not n's own).
func (r *retainedStore) all(n *retainedNode, first bool, out []*Message) []*Message {
	for name, child := range n.children {
		if first && strings.HasPrefix(name, "$") {
			continue
		}
		if child.msg != nil {
			out = append(out, child.msg)
		}
		out = r.all(child, false, out)
	}
	return out
}

// len reports the number of retained messages.
func (r *retainedStore) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}
