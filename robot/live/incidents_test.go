package live

import (
	"testing"
	"time"

	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
)

func TestIncidentPrune(t *testing.T) {
	st := service.NewMemoryStore().State("robot")
	bk, err := openBook(st, time.Hour*24*365, nil, "robot", 20)
	if err != nil {
		t.Fatal(err)
	}
	t0 := simStart
	find := func(at time.Time) finding {
		return finding{Anomaly: robot.Anomaly{Time: at, Kind: robot.AnomalyBollardWrongState, Severity: robot.SeverityHigh, Asset: "bollard-1",
			Waypoint: "wp02", Check: "bollard-1"}, Site: "campus", Robot: "loomi", Dedup: "check/campus/loomi/bollard-1", CheckKind: robot.CheckBollard}
	}
	first, out, v, err := bk.record(find(t0))
	if err != nil || out != robot.Opened || v != service.New {
		t.Fatalf("record: %v %v %v", out, v, err)
	}
	for _, a := range []string{robot.ActionResolve, robot.ActionClose} {
		if _, _, _, err := bk.act(first.ID, a, "anna", "", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := bk.prune(t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) of incidents not yet old enough", n, err)
	}
	if n, err := bk.prune(t0.Add(2 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	if _, ok := bk.get(first.ID); ok {
		t.Fatal("the pruned incident is still there")
	}
	// A late anomaly of the pruned incident opens nothing; a new one opens
	// the key's second incident, also after reopening the state.
	if inc, _, v, err := bk.record(find(t0.Add(30 * time.Minute))); err != nil || v != service.Stale || inc != nil {
		t.Errorf("late anomaly: %v %v %v", inc, v, err)
	}
	bk, err = openBook(st, time.Hour*24*365, nil, "robot", 20)
	if err != nil {
		t.Fatal(err)
	}
	second, out, _, err := bk.record(find(t0.Add(3 * time.Hour)))
	if err != nil || out != robot.Opened || second.Seq != 2 || second.ID == first.ID || second.ID != incidentID("campus", "bollard-1", robot.AnomalyBollardWrongState, 2) {
		t.Errorf("second incident %+v (%v, %v)", second, out, err)
	}
	if all := bk.list(func(*Incident) bool { return true }); len(all) != 1 {
		t.Errorf("%d incidents after reopening, want 1", len(all))
	}
}
