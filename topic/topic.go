// Package topic handles MQTT topic names and topic filters: validation,
// matching, shared subscription filters, and the subscription index that
// finds every subscription matching a topic name.
package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors returned by ValidName and ValidFilter, wrapped with detail.
var (
	ErrEmpty          = errors.New("topic: empty")
	ErrTooLong        = errors.New("topic: longer than 65535 bytes")
	ErrInvalidUTF8    = errors.New("topic: invalid UTF-8")
	ErrNull           = errors.New("topic: contains U+0000")
	ErrWildcardInName = errors.New("topic: wildcard in topic name")
	ErrBadWildcard    = errors.New("topic: wildcard not alone in its level, or # not last")
	ErrBadShare       = errors.New("topic: invalid shared subscription filter")
)

const sharePrefix = "$share/"

func validString(s string) error {
	switch {
	case s == "":
		return ErrEmpty
	case len(s) > 0xFFFF:
		return ErrTooLong
	case !utf8.ValidString(s):
		return ErrInvalidUTF8
	case strings.IndexByte(s, 0) >= 0:
		return ErrNull
	}
	return nil
}

// ValidName reports whether name is a valid topic name for PUBLISH: at least
// one character [MQTT-4.7.3-1], no wildcard characters [MQTT-3.3.2-2], no
// U+0000 [MQTT-4.7.3-2], valid UTF-8 of at most 65535 bytes [MQTT-1.5.4-1].
func ValidName(name string) error {
	if err := validString(name); err != nil {
		return fmt.Errorf("%w: %q", err, name)
	}
	if strings.ContainsAny(name, "+#") {
		return fmt.Errorf("%w: %q", ErrWildcardInName, name)
	}
	return nil
}

// ValidFilter reports whether filter is a valid topic filter: '#' only as the
// whole last level [MQTT-4.7.1-1], '+' only as a whole level [MQTT-4.7.1-2],
// and for a shared subscription $share/{ShareName}/{filter} a ShareName of at
// least one character without '/', '+' or '#' followed by a valid filter
// [MQTT-4.8.2-1][MQTT-4.8.2-2].
func ValidFilter(filter string) error {
	if err := validString(filter); err != nil {
		return fmt.Errorf("%w: %q", err, filter)
	}
	inner := filter
	if strings.HasPrefix(filter, sharePrefix) {
		group, f, ok := strings.Cut(filter[len(sharePrefix):], "/")
		if !ok || group == "" || f == "" || strings.ContainsAny(group, "+#") {
			return fmt.Errorf("%w: %q", ErrBadShare, filter)
		}
		inner = f
	} else if filter == "$share" {
		return fmt.Errorf("%w: %q", ErrBadShare, filter)
	}
	for rest := inner; ; {
		level, tail, more := strings.Cut(rest, "/")
		if len(level) > 1 && strings.ContainsAny(level, "+#") {
			return fmt.Errorf("%w: %q", ErrBadWildcard, filter)
		}
		if level == "#" && more {
			return fmt.Errorf("%w: %q", ErrBadWildcard, filter)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// ParseShared splits a shared subscription filter "$share/group/filter" into
// its share name and inner filter; ok is false for other filters. It does not
// validate.
func ParseShared(filter string) (group, inner string, ok bool) {
	if !strings.HasPrefix(filter, sharePrefix) {
		return "", "", false
	}
	group, inner, ok = strings.Cut(filter[len(sharePrefix):], "/")
	return group, inner, ok
}

// Match reports whether topic name matches filter. A filter that starts with
// a wildcard does not match a name that starts with '$' [MQTT-4.7.2-1]. '#'
// also matches the parent level ("a/#" matches "a"). filter must not be a
// shared subscription filter; use the inner filter from ParseShared.
func Match(filter, name string) bool {
	if name != "" && name[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, ftail, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		nl, ntail, nmore := strings.Cut(name, "/")
		if fl != "+" && fl != nl {
			return false
		}
		switch {
		case !fmore && !nmore:
			return true
		case !nmore:
			return ftail == "#" // "a/#" matches "a" [MQTT-4.7.1-2]
		case !fmore:
			return false
		}
		filter, name = ftail, ntail
	}
}

// Covers reports whether every topic name matched by filter b is also matched
// by filter a. It is exact for filters without '$' rules and conservative
// otherwise: a false answer means "not known to cover".
func Covers(a, b string) bool {
	if a == b {
		return true
	}
	if b != "" && b[0] == '$' && a != "" && (a[0] == '+' || a[0] == '#') {
		return false // b can match $-names that a cannot
	}
	for {
		al, atail, amore := strings.Cut(a, "/")
		bl, btail, bmore := strings.Cut(b, "/")
		switch {
		case al == "#":
			return true
		case bl == "#":
			return false // b goes deeper than a non-# level of a
		case al == "+":
		case bl == "+" || al != bl:
			return false
		}
		switch {
		case !amore && !bmore:
			return true
		case !amore:
			return false
		case !bmore:
			// b ends here; a covers it only if the rest of a is "#".
			return atail == "#"
		}
		a, b = atail, btail
	}
}
