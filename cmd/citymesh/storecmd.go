package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/citymesh/citymesh/store"
)

func init() {
	register("store", "inspect the node's store offline: store check --data DIR", runStore)
}

// runStore implements `citymesh store check`: it opens the store of a node
// that is not running, reads every record and reports what it found and
// every record that cannot be read. It exits non-zero when any is corrupt.
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
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no store in %s: %w", *data, err)
	}
	st, err := store.OpenDisk(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	sessions, serr := st.Sessions()
	subs := 0
	for _, s := range sessions {
		subs += len(s.Subscriptions)
	}
	retained, rerr := st.Retained()
	fmt.Printf("%s: %d sessions with %d subscriptions, %d retained messages\n", dir, len(sessions), subs, len(retained))
	if err := errors.Join(serr, rerr); err != nil {
		return fmt.Errorf("store is damaged: %w", err)
	}
	fmt.Println("ok")
	return nil
}
