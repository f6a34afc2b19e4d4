package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/citymesh/citymesh/campus"
)

func init() {
	register("campus", "the campus model: campus generate, validate, stats (campus help lists them)", runCampus)
}

// campusCommands are the subcommands of `citymesh campus`.
var campusCommands = map[string]struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}{
	"generate": {"write the reference campus (Bildungscampus Heilbronn, 35,666 points) or a smaller one", runCampusGenerate},
	"validate": {"load a campus file, expand and check it; every mistake with file, line and field", runCampusValidate},
	"stats":    {"a campus file's composition: assets and points by kind, template and quantity", runCampusStats},
}

// runCampus implements `citymesh campus NAME ...`.
func runCampus(ctx context.Context, args []string) error {
	return campusMain(args, os.Stdout, os.Stderr)
}

func campusMain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		campusUsage(stderr)
		if len(args) == 0 {
			return errors.New("campus: name a subcommand")
		}
		return nil
	}
	c, ok := campusCommands[args[0]]
	if !ok {
		campusUsage(stderr)
		return fmt.Errorf("campus %q: no such subcommand", args[0])
	}
	return c.run(args[1:], stdout, stderr)
}

func campusUsage(w io.Writer) {
	names := make([]string, 0, len(campusCommands))
	for n := range campusCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: citymesh campus <subcommand> [flags]; 'citymesh campus <subcommand> -help' for its flags\n\nsubcommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-9s %s\n", n, campusCommands[n].summary)
	}
	b.WriteString("\nThe campus file's format: docs/campus.md.\n")
	io.WriteString(w, b.String())
}

// parseCampusFlags parses a subcommand's flags; help is true for -help.
func parseCampusFlags(name string, fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("campus %s: %w", name, err)
	}
	return false, nil
}

func runCampusGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campus generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "directory to write campus.yaml, geometry.geojson and loomi-route.yaml into (required)")
	points := fs.Int("points", campus.ReferencePoints, fmt.Sprintf("exact number of information points, %d..%d", campus.MinGeneratePoints, campus.MaxGeneratePoints))
	if help, err := parseCampusFlags("generate", fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("campus generate: unexpected argument %q (the directory goes after -o)", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("campus generate: -o DIR is required")
	}
	files, err := campus.Generate(campus.GenerateOptions{Points: *points})
	if err != nil {
		return err
	}
	// Check what is written before writing it.
	m, err := files.Model()
	if err != nil {
		return fmt.Errorf("campus generate: the generated campus does not load: %w", err)
	}
	if err := files.WriteDir(*out); err != nil {
		return fmt.Errorf("campus generate: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d information points; buildings %d, rooms %d, meters %d, devices %d, robots %d\n",
		filepath.Join(*out, campus.CampusFile), len(m.Points), len(m.Buildings), len(m.Rooms), len(m.Meters), len(m.Devices), len(m.Robots))
	return nil
}

// loadCampusArg loads the one campus file a subcommand takes; its
// mistakes go to stderr one per line, and the error says how many.
func loadCampusArg(name string, fs *flag.FlagSet, stderr io.Writer) (*campus.Model, error) {
	if fs.NArg() != 1 {
		return nil, fmt.Errorf("campus %s: want one campus file, got %d arguments", name, fs.NArg())
	}
	path := fs.Arg(0)
	m, err := campus.Load(path)
	var errs campus.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		more := ""
		if len(errs) >= campus.MaxErrors {
			more = " (the first ones; fix these and run again)"
		}
		return nil, fmt.Errorf("campus %s: %s: %d mistakes%s", name, path, len(errs), more)
	}
	if err != nil {
		return nil, fmt.Errorf("campus %s: %w", name, err)
	}
	return m, nil
}

func runCampusValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campus validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: citymesh campus validate FILE.yaml") }
	if help, err := parseCampusFlags("validate", fs, args); help || err != nil {
		return err
	}
	m, err := loadCampusArg("validate", fs, stderr)
	if err != nil {
		return err
	}
	assets := len(m.Buildings) + len(m.Rooms) + len(m.Meters) + len(m.Gateways) + len(m.Plots) + len(m.Devices) + len(m.Robots)
	fmt.Fprintf(stdout, "%s: ok, campus %s: %d information points of %d assets\n", fs.Arg(0), m.ID, len(m.Points), assets)
	return nil
}

func runCampusStats(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campus stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "write JSON instead of tables")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: citymesh campus stats [-json] FILE.yaml")
		fs.PrintDefaults()
	}
	if help, err := parseCampusFlags("stats", fs, args); help || err != nil {
		return err
	}
	m, err := loadCampusArg("stats", fs, stderr)
	if err != nil {
		return err
	}
	s := m.Stats()
	if *asJSON {
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(data, '\n'))
		return err
	}
	return s.WriteText(stdout)
}
