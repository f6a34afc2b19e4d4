package main

import (
	"strings"
	"testing"
)

func TestExtractProps(t *testing.T) {
	rest, props, err := extractProps([]string{"-t", "a", "-D", "publish", "user-property", "k", "v", "-D", "publish", "content-type", "text/plain", "-q", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rest, " ") != "-t a -q 1" {
		t.Fatalf("rest = %v", rest)
	}
	p := props.merged("publish")
	if len(p.User) != 1 || p.User[0].Key != "k" || p.ContentType != "text/plain" {
		t.Fatalf("props = %+v", p)
	}
	for _, bad := range [][]string{{"-D", "publish"}, {"-D", "publish", "user-property", "k"}, {"-D", "publish", "nonsense", "x"}} {
		if _, _, err := extractProps(bad); err == nil {
			t.Errorf("extractProps(%v) accepted bad input", bad)
		}
	}
}
