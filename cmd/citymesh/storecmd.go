package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/disk"
)

func init() {
	register("store", "inspect the node's store offline: store check --data DIR", runStore)
}

// runStore implements `citymesh store check`: it opens the store of a node
// that is not running, reads and decodes every record, verifies the engine's
// own checksums, and reports what it found and every record that cannot be
// read. It fails when any is damaged.
func runStore(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: citymesh store check --data DIR")
	}
	fs := flag.NewFlagSet("store check", flag.ContinueOnError)
	data := fs.String("data", "./data", "data `directory` of the node (not running)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	dir := filepath.Join(*data, "store")
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		return fmt.Errorf("no store in %s: %w", *data, err)
	}
	st, err := disk.Open(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return checkStore(ctx, os.Stdout, dir, st)
}

// checkStore reads everything in st, prints a summary to w, and returns an
// error naming every damaged record.
func checkStore(ctx context.Context, w io.Writer, name string, st *store.Store) error {
	snap, loadErr := st.Load()
	errs := []error{loadErr}
	subs, queued, bytes, inbound := 0, 0, 0, 0
	for _, s := range snap.Sessions {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		subs += len(s.Subscriptions)
		inbound += len(s.Inbound)
		// Decode every entry, beyond the checksum Load verified.
		for from := s.Queue.First; ; {
			page, next, err := st.Queue(nil, s.ClientID, from, 1024)
			errs = append(errs, err)
			for _, e := range page {
				queued++
				bytes += e.Size
			}
			if next == from || len(page) == 0 && err == nil {
				break
			}
			from = next
		}
	}
	if c, ok := st.Engine().(interface{ Check() error }); ok {
		errs = append(errs, c.Check())
	}
	fmt.Fprintf(w, "%s: %d sessions with %d subscriptions, %d queued messages (%d bytes), %d inbound QoS 2 exchanges, %d retained messages, %d wills\n",
		name, len(snap.Sessions), subs, queued, bytes, inbound, len(snap.Retained), len(snap.Wills))
	if e, ok := st.Engine().(interface{ WALTail() string }); ok && e.WALTail() != "" {
		fmt.Fprintln(w, "note:", e.WALTail())
	}
	if snap.Orphans > 0 {
		fmt.Fprintf(w, "warning: %d queue records belong to no session\n", snap.Orphans)
	}
	if err := errors.Join(errs...); err != nil {
		for _, e := range flattenErr(err) {
			fmt.Fprintln(w, "damaged:", e)
		}
		return fmt.Errorf("store %s is damaged", name)
	}
	fmt.Fprintln(w, "ok")
	return nil
}

// flattenErr returns the errors joined in err, recursively.
func flattenErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErr(e)...)
		}
		return out
	}
	return []error{err}
}
