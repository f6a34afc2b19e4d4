package service

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestScanMemoryEqualsPebble: after the same random sets, overwrites and
// deletes, the memory store's scans (which read only their prefix's keys)
// give what Pebble's give: the same keys and values in the same order, for
// empty, short, long and absent prefixes, with ErrStop ending a scan early.
func TestScanMemoryEqualsPebble(t *testing.T) {
	disk, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	mem := NewMemoryStore()
	r := rand.New(rand.NewPCG(7, 9))
	for round := range 20 {
		var ops []struct {
			del      bool
			key, val string
		}
		for range 50 {
			k := fmt.Sprintf("%c/%02d/%c", 'a'+r.IntN(3), r.IntN(20), 'x'+r.IntN(3))
			ops = append(ops, struct {
				del      bool
				key, val string
			}{r.IntN(4) == 0, k, fmt.Sprint(round, r.IntN(100))})
		}
		for _, s := range []*Store{mem, disk} {
			st := s.State("svc")
			var b Batch
			for _, o := range ops {
				if o.del {
					b.Delete(st, o.key)
				} else {
					b.Set(st, o.key, []byte(o.val))
				}
			}
			if err := st.Apply(&b); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			prefix string
			stop   int // end the scan after this many keys; 0: never
		}{{"", 0}, {"a/", 0}, {"b/1", 0}, {"c/07/", 0}, {"c/07/y", 0}, {"d", 0}, {"a/00/x/", 0}, {"", 5}, {"b/", 3}} {
			scan := func(s *Store) []string {
				var out []string
				err := s.State("svc").Scan(tc.prefix, func(k string, v []byte) error {
					out = append(out, k+"="+string(v))
					if tc.stop > 0 && len(out) == tc.stop {
						return ErrStop
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			got, want := scan(mem), scan(disk)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, prefix %q: memory %v, Pebble %v", round, tc.prefix, got, want)
			}
			for _, kv := range got {
				if !strings.HasPrefix(kv, tc.prefix) {
					t.Errorf("prefix %q: key %s", tc.prefix, kv)
				}
			}
		}
	}
}
