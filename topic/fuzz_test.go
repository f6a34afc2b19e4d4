package topic

import "testing"

// FuzzMatch checks that validation and matching never panic and that the
// index agrees with Match for any valid filter and name.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"a/+/c", "a/b/c"}, {"#", "$SYS/x"}, {"sport/#", "sport"}, {"$share/g/a/#", "a/b"}, {"+/+", "/x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		ferr := ValidFilter(filter)
		nerr := ValidName(name)
		if ferr != nil || nerr != nil {
			return
		}
		inner := filter
		if _, f, ok := ParseShared(filter); ok {
			inner = f
		}
		want := Match(inner, name)
		ix := NewIndex[int, struct{}]()
		ix.Subscribe(filter, 1, struct{}{})
		got := len(ix.Match(name, nil)) == 1
		if got != want {
			t.Fatalf("filter %q name %q: index %v, Match %v", filter, name, got, want)
		}
		if want && !Covers(inner, inner) {
			t.Fatalf("a filter does not cover itself: %q", inner)
		}
		if !ix.Unsubscribe(filter, 1) || ix.Len() != 0 || !ix.root.empty() {
			t.Fatalf("unsubscribe left state behind for %q", filter)
		}
	})
}
