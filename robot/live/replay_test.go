package live

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// TestReplayShuffledDuplicatedRestart feeds the robot's recorded events of
// two patrols with faults (b01's escape route blocked in both, b02's
// setpoint wrong in the second, the robot off its corridor for 90 s in the
// first) once in order, and once shuffled, a fifth of them twice, with a
// restart of the service in the middle and people's actions before the
// restart (its state on Pebble, closed and opened again); the incidents
// are the same, byte for byte.
func TestReplayShuffledDuplicatedRestart(t *testing.T) {
	msgs := record(t, 4*time.Hour, nil)
	cfg := testConfig(t)
	now := func() time.Time { return simStart.Add(5 * time.Hour) }
	actions := func(t *testing.T, s *Service) {
		t.Helper()
		r := s.cur.Load()
		esc, ok := r.book.byKey("campus", "b01-escape-route", robot.AnomalyEscapeRouteBlocked)
		if !ok {
			t.Fatal("no escape route incident")
		}
		if _, _, err := r.act(context.Background(), esc, robot.ActionAcknowledge, "anna", "on my way"); err != nil {
			t.Fatal(err)
		}
		off, ok := r.book.byKey("campus", "loomi", robot.AnomalyOffCorridor)
		if !ok {
			t.Fatal("no corridor incident")
		}
		if _, _, err := r.act(context.Background(), off, robot.ActionResolve, "ben", "GPS shadow"); err != nil {
			t.Fatal(err)
		}
	}

	// In order.
	b, _ := testBroker(t)
	pub, err := bus.NewLocal(b, "loomi")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	st := service.NewMemoryStore()
	r := startService(t, b, st.State("robot"), cfg, now)
	publishAll(t, pub, msgs)
	r.sync(t, pub, "a")
	actions(t, r.s)
	want := snapshot(t, r.s)
	r.stop()

	// Shuffled, duplicated, restarted.
	rng := rand.New(rand.NewPCG(1, 2))
	mixed := append([]sim.Recorded(nil), msgs...)
	for i := range msgs {
		if rng.IntN(5) == 0 {
			mixed = append(mixed, msgs[i])
		}
	}
	rng.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
	// This run's state is on Pebble, closed and opened again at the
	// restart, as a process's would be.
	dir := t.TempDir()
	st2, err := service.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	half := len(mixed) / 2
	r = startService(t, b, st2.State("robot"), cfg, now)
	publishAll(t, pub, mixed[:half])
	r.sync(t, pub, "b")
	actions(t, r.s)
	r.stop()
	st2.Close()
	if st2, err = service.OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	r = startService(t, b, st2.State("robot"), cfg, now)
	defer r.stop()
	publishAll(t, pub, mixed[half:])
	r.sync(t, pub, "c")
	got := snapshot(t, r.s)

	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("incidents differ\n in order: %s\n shuffled: %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
	// What the incidents are.
	incs := r.s.cur.Load().book.list(func(*Incident) bool { return true })
	byKind := map[robot.AnomalyKind]*Incident{}
	for _, inc := range incs {
		if byKind[inc.Kind] != nil {
			t.Errorf("two incidents of %s: %s and %s", inc.Kind, byKind[inc.Kind].ID, inc.ID)
		}
		byKind[inc.Kind] = inc
	}
	if len(incs) != 3 {
		t.Fatalf("%d incidents, want 3: %s", len(incs), strings.Join(got, "\n"))
	}
	esc := byKind[robot.AnomalyEscapeRouteBlocked]
	if esc == nil || esc.Count != 2 || len(esc.Pictures) != 2 || esc.State != robot.StateAcknowledged || esc.Tenant != "swhn" {
		t.Errorf("escape route incident: %+v", esc)
	}
	if sp := byKind[robot.AnomalySetpointOutOfRange]; sp == nil || sp.Count != 1 || len(sp.Pictures) != 1 || sp.State != robot.StateNew {
		t.Errorf("setpoint incident: %+v", sp)
	}
	if off := byKind[robot.AnomalyOffCorridor]; off == nil || off.Count < 30 || off.State != robot.StateResolved {
		t.Errorf("corridor incident: %+v", off)
	}
}
