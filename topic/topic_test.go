package topic

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestMatchSpecExamples checks the examples of MQTT 5.0 §4.7.
func TestMatchSpecExamples(t *testing.T) {
	tests := []struct {
		filter, name string
		want         bool
	}{
		{"sport/tennis/player1/#", "sport/tennis/player1", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"sport/#", "sport", true}, // '#' includes the parent level
		{"#", "sport/tennis", true},
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player2", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/+", "sport", false},
		{"sport/+", "sport/", true},
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"+/tennis/#", "sport/tennis", true},
		{"#", "$SYS/broker", false}, // [MQTT-4.7.2-1]
		{"+/monitor/Clients", "$SYS/monitor/Clients", false},
		{"$SYS/#", "$SYS/monitor/Clients", true},
		{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
		{"a/b", "a/b", true},
		{"a/b", "a/B", false},
		{"a/b", "a/b/c", false},
		{"a/+/c", "a//c", true},
		{"+", "", true},
	}
	for _, tc := range tests {
		if got := Match(tc.filter, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, tc.name, got, tc.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"a/b", nil},
		{"/", nil},
		{"$SYS/x", nil},
		{"", ErrEmpty},
		{"a/+", ErrWildcardInName},
		{"a/#", ErrWildcardInName},
		{"a\x00b", ErrNull},
		{"a\xffb", ErrInvalidUTF8},
		{strings.Repeat("a", 65536), ErrTooLong},
	}
	for _, tc := range tests {
		if err := ValidName(tc.name); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ValidName(%.20q) = %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		filter string
		err    error
	}{
		{"a/b", nil},
		{"#", nil},
		{"+", nil},
		{"a/+/c", nil},
		{"a/#", nil},
		{"+/+", nil},
		{"/#", nil},
		{"$share/g/a/#", nil},
		{"$share/g/#", nil},
		{"", ErrEmpty},
		{"a/#/b", ErrBadWildcard},
		{"a#", ErrBadWildcard},
		{"a/b+", ErrBadWildcard},
		{"sport+", ErrBadWildcard},
		{"$share/g", ErrBadShare},
		{"$share//a", ErrBadShare},
		{"$share/g+/a", ErrBadShare},
		{"$share/g/", ErrBadShare},
		{"$share", ErrBadShare},
		{"$share/g/a#", ErrBadWildcard},
		{"a\x00", ErrNull},
	}
	for _, tc := range tests {
		if err := ValidFilter(tc.filter); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ValidFilter(%q) = %v, want %v", tc.filter, err, tc.err)
		}
	}
}

func TestParseShared(t *testing.T) {
	g, f, ok := ParseShared("$share/workers/city/+/energy/#")
	if !ok || g != "workers" || f != "city/+/energy/#" {
		t.Fatalf("got %q %q %v", g, f, ok)
	}
	if _, _, ok := ParseShared("city/#"); ok {
		t.Fatal("a plain filter parsed as shared")
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a/#", "a/b/+", true},
		{"a/#", "a", true},
		{"a/+", "a/#", false},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"+/b", "a/b", true},
		{"a/b", "+/b", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"a/b/#", "a/b", true},
		{"a/b", "a/b", true},
		{"a", "a/b", false},
	}
	for _, tc := range tests {
		if got := Covers(tc.a, tc.b); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

type opts struct{ qos byte }

func entries(es []Entry[string, opts]) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s:%s:%d", e.Sub, e.Filter, e.Value.qos))
	}
	slices.Sort(out)
	return out
}

func TestIndexSubscribeMatchUnsubscribe(t *testing.T) {
	ix := NewIndex[string, opts]()
	if ix.Subscribe("a/+/c", "s1", opts{1}) {
		t.Fatal("first subscribe reported a replacement")
	}
	if !ix.Subscribe("a/+/c", "s1", opts{2}) {
		t.Fatal("second subscribe to the same filter did not replace")
	}
	ix.Subscribe("a/#", "s2", opts{0})
	ix.Subscribe("a/b/c", "s2", opts{1})
	ix.Subscribe("#", "s3", opts{0})
	ix.Subscribe("$share/g/a/b/+", "s4", opts{1})
	ix.Subscribe("$share/g/a/b/+", "s5", opts{1})
	ix.Subscribe("$SYS/#", "s6", opts{0})
	if ix.Len() != 7 {
		t.Fatalf("Len = %d, want 7", ix.Len())
	}
	got := entries(ix.Match("a/b/c", nil))
	want := []string{"s1:a/+/c:2", "s2:a/#:0", "s2:a/b/c:1", "s3:#:0", "s4:$share/g/a/b/+:1", "s5:$share/g/a/b/+:1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Match = %v\nwant %v", got, want)
	}
	for _, e := range ix.Match("a/b/c", nil) {
		if strings.HasPrefix(e.Filter, "$share/") != (e.Group == "g") {
			t.Fatalf("entry %+v: wrong Group", e)
		}
	}
	if got := entries(ix.Match("$SYS/broker", nil)); fmt.Sprint(got) != "[s6:$SYS/#:0]" {
		t.Fatalf("$SYS match = %v", got)
	}
	if got := entries(ix.Match("a", nil)); fmt.Sprint(got) != "[s2:a/#:0 s3:#:0]" {
		t.Fatalf("parent-level match = %v", got)
	}
	if ix.Unsubscribe("a/+/c", "nobody") {
		t.Fatal("unsubscribed a subscription that did not exist")
	}
	for _, u := range []struct{ f, s string }{{"a/+/c", "s1"}, {"a/#", "s2"}, {"a/b/c", "s2"}, {"#", "s3"},
		{"$share/g/a/b/+", "s4"}, {"$share/g/a/b/+", "s5"}, {"$SYS/#", "s6"}} {
		if !ix.Unsubscribe(u.f, u.s) {
			t.Fatalf("Unsubscribe(%q, %q) found nothing", u.f, u.s)
		}
	}
	if ix.Len() != 0 || !ix.root.empty() {
		t.Fatalf("index not empty after unsubscribing everything: len %d", ix.Len())
	}
}

func TestIndexFilters(t *testing.T) {
	ix := NewIndex[string, opts]()
	ix.Subscribe("a/b", "x", opts{})
	ix.Subscribe("a/b", "y", opts{})
	ix.Subscribe("$share/g/a/b", "z", opts{})
	ix.Subscribe("+/#", "x", opts{})
	got := map[string]int{}
	ix.Filters(func(f string, n int) bool { got[f] = n; return true })
	want := map[string]int{"a/b": 2, "$share/g/a/b": 1, "+/#": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Filters = %v, want %v", got, want)
	}
}

// randomLevel draws from a small alphabet so that filters and names collide.
func randomLevel(r *rand.Rand) string {
	return []string{"a", "b", "c", "", "$x"}[r.IntN(5)]
}

func randomFilter(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	var levels []string
	for i := range n {
		switch k := r.IntN(6); {
		case k == 0:
			levels = append(levels, "+")
		case k == 1 && i == n-1:
			levels = append(levels, "#")
		default:
			levels = append(levels, randomLevel(r))
		}
	}
	return strings.Join(levels, "/")
}

func randomName(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	levels := make([]string, n)
	for i := range levels {
		levels[i] = randomLevel(r)
	}
	return strings.Join(levels, "/")
}

// TestIndexAgreesWithMatch is a property test: the index returns exactly the
// subscriptions whose filter Match accepts.
func TestIndexAgreesWithMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ix := NewIndex[string, opts]()
	filters := map[string]bool{}
	for range 400 {
		f := randomFilter(r)
		if ValidFilter(f) != nil {
			continue
		}
		filters[f] = true
		ix.Subscribe(f, f, opts{})
	}
	for range 2000 {
		name := randomName(r)
		var want []string
		for f := range filters {
			if Match(f, name) {
				want = append(want, f)
			}
		}
		var got []string
		for _, e := range ix.Match(name, nil) {
			got = append(got, e.Sub)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("name %q: index %v, Match %v", name, got, want)
		}
	}
}

func TestIndexChurnPrunes(t *testing.T) {
	ix := NewIndex[int, opts]()
	for round := range 3 {
		for i := range 1000 {
			ix.Subscribe(fmt.Sprintf("city/b%d/+/m%d/#", i%37, i), i, opts{})
		}
		for i := range 1000 {
			if !ix.Unsubscribe(fmt.Sprintf("city/b%d/+/m%d/#", i%37, i), i) {
				t.Fatalf("round %d: %d not found", round, i)
			}
		}
		if !ix.root.empty() || ix.Len() != 0 {
			t.Fatalf("round %d: index not empty", round)
		}
	}
}

func TestIndexConcurrent(t *testing.T) {
	ix := NewIndex[int, opts]()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				f := fmt.Sprintf("w%d/%d/#", w, i%50)
				ix.Subscribe(f, i, opts{})
				ix.Match(fmt.Sprintf("w%d/%d/x", w, i%50), nil)
				ix.Unsubscribe(f, i)
			}
		})
	}
	wg.Wait()
	if ix.Len() != 0 {
		t.Fatalf("Len = %d after balanced churn", ix.Len())
	}
}

func TestIndexMatchZeroAllocs(t *testing.T) {
	ix := NewIndex[int, opts]()
	ix.Subscribe("city/+/energy/#", 1, opts{})
	ix.Subscribe("city/b7/energy/m1", 2, opts{})
	dst := make([]Entry[int, opts], 0, 16)
	if n := testing.AllocsPerRun(100, func() { dst = ix.Match("city/b7/energy/m1", dst[:0]) }); n != 0 {
		t.Fatalf("Match allocates %v times", n)
	}
}
