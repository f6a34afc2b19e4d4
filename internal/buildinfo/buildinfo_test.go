package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestReadOverrides(t *testing.T) {
	got := read("v9.8.7", "0123456789abcdef0123")
	if got.Version != "v9.8.7" || got.Revision != "0123456789abcdef0123" || got.GoVersion == "" {
		t.Fatalf("read = %+v", got)
	}
	if s := got.String(); !strings.HasPrefix(s, "citymesh v9.8.7 (revision 0123456789ab") || !strings.HasSuffix(s, got.GoVersion) {
		t.Fatalf("String() = %q", s)
	}
}

func TestReadFromBuild(t *testing.T) {
	got := Get()
	if got.Version == "" || !strings.HasPrefix(got.GoVersion, "go") {
		t.Fatalf("Get() = %+v", got)
	}
	if got.GoVersion != runtime.Version() {
		t.Fatalf("GoVersion %q, runtime says %q", got.GoVersion, runtime.Version())
	}
}

func TestShorten(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef":       "0123456789ab",
		"0123456789abcdef+dirty": "0123456789ab+dirty",
		"abc":                    "abc",
		"abc+dirty":              "abc+dirty",
	} {
		if got := shorten(in); got != want {
			t.Errorf("shorten(%q) = %q, want %q", in, got, want)
		}
	}
}
