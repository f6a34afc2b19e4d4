package history

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestEventLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	l, err := OpenEventLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	evs := []Event{
		{Asset: "b", Type: "alarm", Time: at(10), Data: json.RawMessage(`{"level":"high"}`)},
		{Asset: "a", Type: "status", Time: at(30), Data: json.RawMessage(`"down"`)},
		{Asset: "a", Type: "status", Time: at(10), Data: json.RawMessage(`"up"`)},
		{Asset: "a", Type: "picture", Time: at(20), Data: json.RawMessage(`{"ref":"s3://cam/1.jpg"}`)},
		{Asset: "a", Type: "incident", Time: at(20), Source: "twin/a/incident"}, // same time
		{Asset: "ab", Type: "status", Time: at(15)},                             // a prefix of "ab" is "a"
		{Asset: "a", Type: "status", Time: time.Unix(-100, 0)},                  // before 1970
	}
	if err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Event{{Type: "x"}, {Asset: "a\x00b"}, {Asset: "a", Data: json.RawMessage(`{`)}} {
		if err := l.Append(ctx, []Event{evs[0], bad}); err == nil {
			t.Errorf("event %+v taken", bad)
		}
	}
	types := func(es []Event) (out []string) {
		for _, e := range es {
			out = append(out, e.Type+"@"+e.Time.UTC().Format("15:04:05"))
		}
		return out
	}
	check := func(l *EventLog) {
		t.Helper()
		tests := []struct {
			asset    string
			from, to time.Time
			limit    int
			want     []string
		}{
			{"a", at(0), at(60), 0, []string{"status@00:00:10", "picture@00:00:20", "incident@00:00:20", "status@00:00:30"}},
			{"a", at(10), at(30), 0, []string{"status@00:00:10", "picture@00:00:20", "incident@00:00:20"}},
			{"a", at(0), at(60), 2, []string{"status@00:00:10", "picture@00:00:20"}},
			{"a", time.Unix(-1000, 0), at(0), 0, []string{"status@23:58:20"}},
			{"ab", at(0), at(60), 0, []string{"status@00:00:15"}},
			{"b", at(0), at(60), 0, []string{"alarm@00:00:10"}},
			{"b", at(11), at(60), 0, nil},
			{"c", at(0), at(60), 0, nil},
			{"a", at(60), at(0), 0, nil},
		}
		for _, tt := range tests {
			got, err := l.Query(ctx, tt.asset, tt.from, tt.to, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if g := types(got); !slices.Equal(g, tt.want) {
				t.Errorf("Query(%s, %s, %s, %d) = %v, want %v", tt.asset, tt.from, tt.to, tt.limit, g, tt.want)
			}
		}
	}
	check(l)
	got, _ := l.Query(ctx, "b", at(0), at(60), 0)
	if len(got) != 1 || string(got[0].Data) != `{"level":"high"}` {
		t.Errorf("data not kept: %+v", got)
	}
	// Restart.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenEventLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check(l)
	// Retention: a's oldest event says nothing of a kind, so the
	// default applies: keep 40 s back from at(60).
	if err := l.applyRetention(at(60), 40*time.Second, map[string]time.Duration{"": time.Hour}); err != nil {
		t.Fatal(err)
	}
	got, _ = l.Query(ctx, "a", time.Unix(-1000, 0), at(60), 0)
	if g := types(got); !slices.Equal(g, []string{"picture@00:00:20", "incident@00:00:20", "status@00:00:30"}) {
		t.Errorf("after retention: %v", g)
	}
	got, _ = l.Query(ctx, "ab", at(0), at(60), 0)
	if len(got) != 0 {
		t.Errorf("ab after retention: %v", types(got))
	}
}
