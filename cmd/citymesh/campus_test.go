package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/campus"
)

const campusExamples = "../../examples/campus/"

// campus generate writes what is checked in; validate and stats read it.
func TestCampusCommands(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := campusMain([]string{"generate", "-o", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "35666 information points") {
		t.Errorf("generate: %s", out.String())
	}
	for _, name := range []string{campus.CampusFile, campus.GeometryFile, campus.RouteFile} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(campusExamples + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from examples/campus/%s", name, name)
		}
	}
	out.Reset()
	if err := campusMain([]string{"validate", campusExamples + "campus.yaml"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), ": ok, campus bildungscampus-heilbronn: 35666 information points of 4915 assets") {
		t.Errorf("validate: %s", out.String())
	}
	out.Reset()
	if err := campusMain([]string{"stats", "-json", campusExamples + "small/campus.yaml"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var s campus.Stats
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Points != campus.SmallPoints || len(s.Groups) == 0 {
		t.Errorf("stats -json: %+v %v", s, err)
	}
	out.Reset()
	if err := campusMain([]string{"stats", campusExamples + "campus.yaml"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "room room                  3572    28576") {
		t.Errorf("stats:\n%s", out.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr: %s", errOut.String())
	}
}

func TestCampusCommandErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	err := campusMain([]string{"validate", "../../campus/testdata/minimal/bad-coordinates-swapped.yaml"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 mistakes") || !strings.Contains(errOut.String(), "bad-coordinates-swapped.yaml:33:106: devices[0].location:") ||
		!strings.Contains(errOut.String(), "look swapped") {
		t.Errorf("bad file: %v\n%s", err, errOut.String())
	}
	for name, args := range map[string][]string{
		"no subcommand":    {},
		"unknown":          {"draw"},
		"generate no -o":   {"generate"},
		"generate small":   {"generate", "-o", t.TempDir(), "-points", "10"},
		"generate extra":   {"generate", "-o", t.TempDir(), "x"},
		"validate no file": {"validate"},
		"validate two":     {"validate", "a.yaml", "b.yaml"},
		"validate missing": {"validate", "no-such-campus.yaml"},
		"stats bad flag":   {"stats", "-yaml", "x"},
	} {
		if err := campusMain(args, &out, &errOut); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	errOut.Reset()
	if err := campusMain([]string{"help"}, &out, &errOut); err != nil || !strings.Contains(errOut.String(), "generate") {
		t.Errorf("help: %v %s", err, errOut.String())
	}
	if err := campusMain([]string{"stats", "-help"}, &out, &errOut); err != nil {
		t.Errorf("-help: %v", err)
	}
}
