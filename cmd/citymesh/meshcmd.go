package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citymesh/citymesh/mesh"
)

func init() {
	register("mesh", "the state of a node's mesh links: mesh status [--http ADDR]", runMesh)
}

// runMesh implements `citymesh mesh status`: it asks a running node for GET
// /api/mesh and prints its links as a table (or the JSON with --json).
func runMesh(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "status" {
		return errors.New("usage: citymesh mesh status [--http 127.0.0.1:8080] [--json]")
	}
	fs := flag.NewFlagSet("mesh status", flag.ContinueOnError)
	addr := fs.String("http", "127.0.0.1:8080", "HTTP `address` of the node (its --http listener)")
	asJSON := fs.Bool("json", false, "print the node's JSON as it is")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the node")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := *addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/mesh", nil)
	if err != nil {
		return fmt.Errorf("mesh status: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("mesh status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("mesh status: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("mesh status: %s is not a mesh node (no mesh section in its configuration)", *addr)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("mesh status: %s answered %s", *addr, resp.Status)
	}
	if *asJSON {
		_, err := os.Stdout.Write(body)
		return err
	}
	var st mesh.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("mesh status: the answer of %s: %w", *addr, err)
	}
	return printMeshStatus(os.Stdout, &st, time.Now())
}

// printMeshStatus writes st as a table, one line per link.
func printMeshStatus(w io.Writer, st *mesh.Status, now time.Time) error {
	fmt.Fprintf(w, "node %s (%s), %d links\n", st.Node, st.Role, len(st.Links))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tROLE\tREMOTE\tSTATE\tQUEUED\tINFLIGHT\tLAG\tFORWARDED\tRECEIVED\tINTEREST\tDROPPED\tLAST ERROR")
	for _, l := range st.Links {
		state := "down"
		if l.Up {
			state = "up"
		}
		if !l.Since.IsZero() && l.Since.Unix() > 0 {
			state += " " + now.Sub(l.Since).Truncate(time.Second).String()
		}
		var drops []string
		for reason, n := range l.Dropped {
			if n > 0 {
				drops = append(drops, fmt.Sprintf("%s=%d", reason, n))
			}
		}
		sort.Strings(drops)
		dropped := "0"
		if len(drops) > 0 {
			dropped = strings.Join(drops, ",")
		}
		remote := l.Remote
		if remote == "" {
			remote = "-"
		}
		lastErr := l.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%s\n", l.Peer, l.Role, remote, state,
			l.Queued, l.Inflight, l.Lag.Truncate(time.Millisecond), l.Forwarded, l.Received, l.Interest, dropped, lastErr)
	}
	return tw.Flush()
}
