package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func init() {
	register("model", "run a domain model on your own files: model <name> [flags] (model help lists them)", runModel)
}

// modelCommand is one model of `citymesh model`: it reads a person's files
// (CSV, GeoJSON, YAML) and writes JSON, GeoJSON or PNG.
type modelCommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

var models = map[string]modelCommand{}

// registerModel adds a model; each model's file calls it from init.
func registerModel(name, summary string, run func(ctx context.Context, args []string, stdout io.Writer) error) {
	if _, dup := models[name]; dup {
		panic("model registered twice: " + name)
	}
	models[name] = modelCommand{summary: summary, run: run}
}

// runModel implements `citymesh model NAME ...`.
func runModel(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		modelUsage(os.Stderr)
		if len(args) == 0 {
			return fmt.Errorf("model: name a model")
		}
		return nil
	}
	m, ok := models[args[0]]
	if !ok {
		modelUsage(os.Stderr)
		return fmt.Errorf("model %q: no such model", args[0])
	}
	return m.run(ctx, args[1:], os.Stdout)
}

func modelUsage(w io.Writer) {
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: citymesh model <name> [flags]; 'citymesh model <name> -help' for its flags\n\nmodels:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-14s %s\n", n, models[n].summary)
	}
	b.WriteString("\nFormats, sources and limits: docs/models.md.\n")
	io.WriteString(w, b.String())
}

// readModelFile opens path and parses it with read, naming the file in
// errors.
func readModelFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// writeModelFile creates path and writes it with write.
func writeModelFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeModelJSON writes v as indented JSON to path, or to stdout when path
// is empty.
func writeModelJSON(path string, stdout io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
