package live

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/sim"
)

const (
	campusFile = "../../examples/campus/campus.yaml"
	routeFile  = "../../examples/campus/loomi-route.yaml"
)

var berlin, _ = time.LoadLocation("Europe/Berlin")

// simStart is a Tuesday at midnight in Heilbronn: patrols at 00:00, 02:00.
var simStart = time.Date(2026, 5, 12, 0, 0, 0, 0, berlin)

// simFaults are the faults of the recorded runs: the escape route of b01
// blocked for both patrols, the lecture hall's setpoint wrong in the
// second, and the robot off its corridor for 90 s in the first.
func simFaults(t testing.TB) *sim.FaultSet {
	t.Helper()
	var fs []sim.Fault
	for _, s := range []string{
		"kind=check_fails,asset=b01-escape,start=2026-05-11T22:00:00Z,duration=4h",
		"kind=check_fails,asset=b02-hvac,start=2026-05-12T00:00:00Z,duration=2h",
		"kind=robot_off_corridor,asset=loomi,start=2026-05-11T22:06:00Z,duration=90s,offset_m=15",
	} {
		f, err := sim.ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	set, err := sim.NewFaultSet(fs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// record plays the small campus's robot for d from simStart with the
// faults, into memory, and returns what the robot published.
func record(t testing.TB, d time.Duration, pics sim.PictureStore) []sim.Recorded {
	t.Helper()
	m, err := campus.Load(campusFile)
	if err != nil {
		t.Fatal(err)
	}
	out := &sim.MemoryOutput{}
	if pics == nil {
		pics = &sim.MemoryPictures{}
	}
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: m, Seed: 7, Start: simStart, Until: simStart.Add(d), Faults: simFaults(t),
		Outputs: sim.Outputs{Robot: out}, Pictures: pics})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out.Messages()
}

func contains(p []byte, s string) bool { return strings.Contains(string(p), s) }

// replaceTime returns the event with its time member set to t.
func replaceTime(p []byte, t time.Time) []byte {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		panic(err)
	}
	m["time"] = t.Format(time.RFC3339Nano)
	out, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return out
}
