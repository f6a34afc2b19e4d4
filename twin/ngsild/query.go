package ngsild

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The q query language subset (ETSI GS CIM 009 V1.8.1, clause 4.9):
//
//	Query      = Term *( (";" / "|") Term )   ; ";" and, "|" or; ";" binds tighter
//	Term       = "(" Query ")" / Comparison / ["!"] Attribute
//	Comparison = Attribute Operator Value
//	Operator   = "==" / "!=" / "<" / "<=" / ">" / ">=" / "~=" / "!~="
//	Value      = Number / String / "true" / "false" / List / Range / Date
//	List       = Value "," Value *("," Value)   ; == any of, != none of
//	Range      = Value ".." Value               ; == within, != outside (inclusive)
//
// An Attribute is a property's or relationship's name; a relationship
// compares by its object (the target's entity id). A String is in double
// quotes; other unquoted values that are not numbers or booleans compare
// as text (a date-time, an entity id). A term on an attribute the entity
// lacks, or whose value is of another type, is false. Not supported:
// attribute paths (a.b, a[b]), metadata (observedAt), and the
// language/JSON-LD compaction rules.

// maxQueryLen bounds q's length and nesting, as a server may (the
// TooComplexQuery error).
const (
	maxQueryLen   = 2048
	maxQueryDepth = 16
)

// errQuery is a syntax error of q.
var errQuery = errors.New("q")

// qExpr is a parsed q expression.
type qExpr interface {
	match(e *entity) bool
}

type qAnd []qExpr
type qOr []qExpr

func (a qAnd) match(e *entity) bool {
	for _, x := range a {
		if !x.match(e) {
			return false
		}
	}
	return true
}

func (o qOr) match(e *entity) bool {
	for _, x := range o {
		if x.match(e) {
			return true
		}
	}
	return false
}

// qValue is one literal: a number, a text or a boolean.
type qValue struct {
	num    float64
	isNum  bool
	text   string
	isBool bool
	b      bool
}

type qTerm struct {
	attr   string
	op     string // "" existence, "!" non-existence
	values []qValue
	rng    bool // values[0]..values[1]
	re     *regexp.Regexp
}

// parseQ parses a q expression.
func parseQ(s string) (qExpr, error) {
	if len(s) > maxQueryLen {
		return nil, fmt.Errorf("%w: longer than %d characters", errQuery, maxQueryLen)
	}
	p := &qParser{s: s}
	x, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.s) {
		return nil, fmt.Errorf("%w: unexpected %q at %d", errQuery, p.s[p.i:], p.i)
	}
	return x, nil
}

type qParser struct {
	s string
	i int
}

func (p *qParser) peek(t string) bool { return strings.HasPrefix(p.s[p.i:], t) }

func (p *qParser) or(depth int) (qExpr, error) {
	if depth > maxQueryDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errQuery, maxQueryDepth)
	}
	var or qOr
	for {
		a, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		or = append(or, a)
		if !p.peek("|") {
			break
		}
		p.i++
	}
	if len(or) == 1 {
		return or[0], nil
	}
	return or, nil
}

func (p *qParser) and(depth int) (qExpr, error) {
	var and qAnd
	for {
		t, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		and = append(and, t)
		if !p.peek(";") {
			break
		}
		p.i++
	}
	if len(and) == 1 {
		return and[0], nil
	}
	return and, nil
}

func (p *qParser) term(depth int) (qExpr, error) {
	if p.peek("(") {
		p.i++
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("%w: missing ) at %d", errQuery, p.i)
		}
		p.i++
		return x, nil
	}
	not := false
	if p.peek("!") && !p.peek("!=") && !p.peek("!~=") {
		not = true
		p.i++
	}
	start := p.i
	for p.i < len(p.s) && isAttrChar(p.s[p.i]) {
		p.i++
	}
	name := p.s[start:p.i]
	if name == "" || !isLetter(name[0]) {
		return nil, fmt.Errorf("%w: want an attribute name at %d", errQuery, start)
	}
	t := &qTerm{attr: name}
	for _, op := range []string{"==", "!=", "<=", ">=", "!~=", "~=", "<", ">"} {
		if p.peek(op) {
			t.op = op
			p.i += len(op)
			break
		}
	}
	if t.op == "" {
		if p.i < len(p.s) && !strings.ContainsRune(";|)", rune(p.s[p.i])) {
			return nil, fmt.Errorf("%w: unknown operator at %d: %q", errQuery, p.i, p.s[p.i:])
		}
		if not {
			t.op = "!"
		}
		return t, nil
	}
	if not {
		return nil, fmt.Errorf("%w: \"!\" negates an attribute's existence, not a comparison", errQuery)
	}
	if err := p.values(t); err != nil {
		return nil, err
	}
	return t, nil
}

// values reads a comparison's value, list or range.
func (p *qParser) values(t *qTerm) error {
	for {
		v, err := p.value()
		if err != nil {
			return err
		}
		t.values = append(t.values, v)
		switch {
		case p.peek(".."):
			if t.rng || len(t.values) > 1 {
				return fmt.Errorf("%w: a range has two ends", errQuery)
			}
			p.i += 2
			t.rng = true
			continue
		case p.peek(","):
			if t.rng {
				return fmt.Errorf("%w: a range is not a list", errQuery)
			}
			p.i++
			continue
		}
		break
	}
	n := len(t.values)
	switch t.op {
	case "==", "!=":
	case "~=", "!~=":
		if n != 1 || t.values[0].isNum || t.values[0].isBool {
			return fmt.Errorf("%w: %s takes one pattern in quotes", errQuery, t.op)
		}
		re, err := regexp.Compile(t.values[0].text)
		if err != nil {
			return fmt.Errorf("%w: pattern: %v", errQuery, err)
		}
		t.re = re
	default:
		if n != 1 {
			return fmt.Errorf("%w: %s takes one value, not a list or range", errQuery, t.op)
		}
	}
	return nil
}

// value reads one literal.
func (p *qParser) value() (qValue, error) {
	start := p.i
	if p.peek(`"`) {
		p.i++
		var b strings.Builder
		for {
			if p.i >= len(p.s) {
				return qValue{}, fmt.Errorf("%w: unterminated string at %d", errQuery, start)
			}
			c := p.s[p.i]
			if c == '\\' && p.i+1 < len(p.s) {
				b.WriteByte(p.s[p.i+1])
				p.i += 2
				continue
			}
			p.i++
			if c == '"' {
				break
			}
			b.WriteByte(c)
		}
		return qValue{text: b.String()}, nil
	}
	for p.i < len(p.s) && !strings.ContainsRune(";|(),\"", rune(p.s[p.i])) && !p.peek("..") {
		p.i++
	}
	raw := p.s[start:p.i]
	if raw == "" {
		return qValue{}, fmt.Errorf("%w: want a value at %d", errQuery, start)
	}
	switch raw {
	case "true", "false":
		return qValue{isBool: true, b: raw == "true", text: raw}, nil
	}
	if f, err := strconv.ParseFloat(raw, 64); err == nil {
		return qValue{num: f, isNum: true, text: raw}, nil
	}
	return qValue{text: raw}, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isAttrChar(c byte) bool { return isLetter(c) || c >= '0' && c <= '9' || c == '_' }

// match evaluates the term on e.
func (t *qTerm) match(e *entity) bool {
	a, ok := e.attr(t.attr)
	switch t.op {
	case "":
		return ok
	case "!":
		return !ok
	}
	if !ok {
		return false
	}
	var vals []any
	switch v := a.value.(type) {
	case []string:
		for _, s := range v {
			vals = append(vals, s)
		}
	case nil:
		if a.kind == kindRelationship {
			vals = []any{a.object}
		}
	default:
		vals = []any{v}
	}
	if t.op == "!=" || t.op == "!~=" {
		// Not equal: no element of the value is among the values.
		pos := &qTerm{attr: t.attr, op: t.op[1:], values: t.values, rng: t.rng, re: t.re}
		if t.op == "!=" {
			pos.op = "=="
		}
		for _, v := range vals {
			if pos.one(v) {
				return false
			}
		}
		return len(vals) > 0 && pos.comparable(vals[0])
	}
	return slices.ContainsFunc(vals, t.one)
}

// comparable reports whether v is of a type the term's values compare
// with.
func (t *qTerm) comparable(v any) bool {
	_, isNum := number(v)
	_, isBool := v.(bool)
	q := t.values[0]
	return isNum == q.isNum && isBool == q.isBool || !q.isNum && !q.isBool && !isNum && !isBool
}

// one evaluates the term on one value.
func (t *qTerm) one(v any) bool {
	if t.re != nil {
		s, ok := v.(string)
		return ok && t.re.MatchString(s)
	}
	cmp := func(q qValue) (int, bool) {
		if f, ok := number(v); ok {
			if !q.isNum {
				return 0, false
			}
			switch {
			case f < q.num:
				return -1, true
			case f > q.num:
				return 1, true
			}
			return 0, true
		}
		if b, ok := v.(bool); ok {
			if !q.isBool || t.op != "==" {
				return 0, false
			}
			if b == q.b {
				return 0, true
			}
			return 1, true
		}
		s, ok := v.(string)
		if !ok || q.isNum || q.isBool {
			return 0, false
		}
		return strings.Compare(s, q.text), true
	}
	if t.rng {
		lo, ok1 := cmp(t.values[0])
		hi, ok2 := cmp(t.values[1])
		return ok1 && ok2 && lo >= 0 && hi <= 0
	}
	for _, q := range t.values {
		c, ok := cmp(q)
		if !ok {
			continue
		}
		switch t.op {
		case "==":
			if c == 0 {
				return true
			}
		case "<":
			return c < 0
		case "<=":
			return c <= 0
		case ">":
			return c > 0
		case ">=":
			return c >= 0
		}
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}
