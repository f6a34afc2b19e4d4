package alarm

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/service"
)

// TestPublishedAlarmsMatchTheSchema validates the alarm of every step of a
// lifecycle, as it is published, against alarm.schema.json, and checks bad
// documents are refused.
func TestPublishedAlarmsMatchTheSchema(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, service.NewMemoryStore().State("x"), newMemBus())
	var docs [][]byte
	add := func(a Alarm, _ Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(a)
		docs = append(docs, b)
	}
	add(m.Raise(ctx, Condition{Key: key, Severity: Minor, Time: t0, Category: "environment", Data: map[string]any{"kW": 412.5}}))
	add(m.Raise(ctx, Condition{Key: key, Severity: Critical, Time: t0.Add(1)}))
	add(m.Acknowledge(ctx, key, "anna", "on it"))
	add(m.Clear(ctx, key, t0.Add(2), "back to normal"))
	for i, d := range docs {
		if err := ValidateJSON(d); err != nil {
			t.Errorf("alarm %d: %v\n%s", i, err, d)
		}
	}
	bad := []struct{ name, doc string }{
		{"not JSON", `{`},
		{"unknown member", strings.Replace(string(docs[0]), `"count":`, `"cnt":1,"count":`, 1)},
		{"bad severity", strings.Replace(string(docs[0]), `"minor"`, `"high"`, 1)},
		{"no audit", strings.Replace(string(docs[0]), `"audit":[`, `"audit0":[`, 1)},
	}
	for _, b := range bad {
		if err := ValidateJSON([]byte(b.doc)); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}

// TestSchemaInDocs keeps the schema printed in docs/events.md the same as
// the file.
func TestSchemaInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```json\n"+string(Schema)+"```") {
		t.Error("docs/events.md does not print alarm/alarm.schema.json as it is")
	}
}
