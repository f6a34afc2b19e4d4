package sim

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustRoom(t testing.TB, w *Weather, cfg RoomConfig) *Room {
	t.Helper()
	r, err := NewRoom(3, w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoomWinterWeek(t *testing.T) {
	w := mustWeather(t, 2, WeatherConfig{})
	start := date(2026, 1, 12) // Monday, lecture period
	lect := mustRoom(t, w, RoomConfig{ID: "b1-1.12", Kind: RoomLecture, AreaM2: 150, Start: start})
	office := mustRoom(t, w, RoomConfig{ID: "b2-3.04", Kind: RoomOffice, AreaM2: 24, Start: start})
	var occCO2, emptyCO2 []float64
	var comfortT, nightT []float64
	lightsOnEmpty := 0
	for at := start; at.Before(start.AddDate(0, 0, 7)); at = at.Add(5 * time.Minute) {
		for _, r := range []*Room{lect, office} {
			s := r.At(at)
			switch {
			case s.TempC < 12 || s.TempC > 27:
				t.Fatalf("%s %v: %v °C in January", r.ID(), at, s.TempC)
			case s.RHPct < 5 || s.RHPct > 100 || s.CO2PPM < 400 || s.CO2PPM > 5000:
				t.Fatalf("%s %v: RH %v %%, CO2 %v ppm", r.ID(), at, s.RHPct, s.CO2PPM)
			case s.ValvePct < 0 || s.ValvePct > 100:
				t.Fatalf("%s %v: valve %v", r.ID(), at, s.ValvePct)
			case s.Occupied != (s.Occupants > 0):
				t.Fatalf("%s %v: occupied %v with %d people", r.ID(), at, s.Occupied, s.Occupants)
			}
			if s.LightOn && !s.Occupied {
				lightsOnEmpty++
			}
			if r != lect {
				continue
			}
			lt := at.In(Berlin)
			if s.Occupants >= 30 && lt.Hour() >= 10 {
				occCO2 = append(occCO2, s.CO2PPM)
				comfortT = append(comfortT, s.TempC)
			}
			if lt.Hour() >= 2 && lt.Hour() < 5 {
				emptyCO2 = append(emptyCO2, s.CO2PPM)
				nightT = append(nightT, s.TempC)
			}
		}
	}
	if lightsOnEmpty != 0 {
		t.Errorf("lights on in empty rooms %d times", lightsOnEmpty)
	}
	if len(occCO2) < 50 {
		t.Fatalf("the lecture room was busy in only %d steps of a lecture week", len(occCO2))
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	t.Logf("lecture room: busy %.0f ppm at %.1f °C, night %.0f ppm at %.1f °C", mean(occCO2), mean(comfortT), mean(emptyCO2), mean(nightT))
	if mean(occCO2) < 700 || mean(emptyCO2) > 600 {
		t.Errorf("CO2 %.0f ppm when busy, %.0f at night", mean(occCO2), mean(emptyCO2))
	}
	if mean(comfortT) < 19 || mean(comfortT) > 23 || mean(nightT) > mean(comfortT)-1 {
		t.Errorf("%.1f °C in lectures, %.1f °C at night", mean(comfortT), mean(nightT))
	}
	// The valve opens for the morning warm-up and the setpoint follows the
	// schedule.
	if s := lect.At(start.AddDate(0, 0, 1).Add(6*time.Hour + 30*time.Minute)); s.SetpointC != comfortC || s.ValvePct < 50 {
		t.Errorf("Tuesday 6:30: setpoint %v, valve %v %%", s.SetpointC, s.ValvePct)
	}
	if s := lect.At(start.AddDate(0, 0, 6).Add(12 * time.Hour)); s.SetpointC != roomSetbackC || s.Occupants != 0 {
		t.Errorf("Sunday noon: setpoint %v, %d people", s.SetpointC, s.Occupants)
	}
}

func TestRoomSummer(t *testing.T) {
	w := mustWeather(t, 2, WeatherConfig{})
	start := date(2026, 7, 6)
	r := mustRoom(t, w, RoomConfig{ID: "c-2.01", Kind: RoomSeminar, AreaM2: 60, HasCooling: true, Start: start})
	cooled := 0
	for at := start; at.Before(start.AddDate(0, 0, 7)); at = at.Add(10 * time.Minute) {
		s := r.At(at)
		if s.ValvePct != 0 {
			t.Fatalf("%v: heating valve %v %% in July", at, s.ValvePct)
		}
		if s.TempC < 15 || s.TempC > 32 || s.RHPct < 20 || s.RHPct > 100 {
			t.Fatalf("%v: %v °C, %v %%", at, s.TempC, s.RHPct)
		}
		if s.CoolingPct > 0 {
			cooled++
		}
	}
	t.Logf("cooling ran in %d of %d ten-minute steps", cooled, 7*144)
}

func TestRoomDeterministic(t *testing.T) {
	w := mustWeather(t, 4, WeatherConfig{})
	cfg := RoomConfig{ID: "lib-1", Kind: RoomReading, AreaM2: 200, Start: date(2026, 11, 2)}
	a := mustRoom(t, w, cfg)
	b := mustRoom(t, w, cfg)
	var times []time.Time
	for i := range 300 {
		times = append(times, cfg.Start.Add(time.Duration(i)*11*time.Minute))
	}
	got := make([]RoomState, len(times))
	for i := len(times) - 1; i >= 0; i-- {
		got[i] = b.At(times[i])
	}
	for i, at := range times {
		if s := a.At(at); !reflect.DeepEqual(s, got[i]) {
			t.Fatalf("%v: %+v and %+v", at, s, got[i])
		}
	}
}

func TestRoomOccupancy(t *testing.T) {
	w := mustWeather(t, 1, WeatherConfig{})
	start := date(2026, 5, 4)
	office := mustRoom(t, w, RoomConfig{ID: "o", Kind: RoomOffice, AreaM2: 30, Start: start})
	lab := mustRoom(t, w, RoomConfig{ID: "l", Kind: RoomLab, AreaM2: 90, Start: start})
	lect := mustRoom(t, w, RoomConfig{ID: "h", Kind: RoomLecture, AreaM2: 300, Capacity: 200, Start: start})
	days := map[DayType]int{}
	for at := start; at.Before(start.AddDate(0, 0, 28)); at = at.Add(15 * time.Minute) {
		dt := DayTypeOf(at, nil)
		n := office.Occupants(at) + lab.Occupants(at)
		if n > office.Capacity()+lab.Capacity() {
			t.Fatalf("%v: %d people in an office and a lab for %d", at, n, office.Capacity()+lab.Capacity())
		}
		if l := lect.Occupants(at); l > 200 || (dt == Sunday && l > 0) {
			t.Fatalf("%v (%s): %d in the lecture hall", at, dt, l)
		}
		if n+lect.Occupants(at) > 0 {
			days[dt]++
		}
	}
	if days[LectureDay] == 0 || days[Sunday] != 0 {
		t.Errorf("occupied quarter hours by day type: %v", days)
	}
}

func TestNewRoomRejects(t *testing.T) {
	w := mustWeather(t, 1, WeatherConfig{})
	start := date(2026, 1, 1)
	for _, tc := range []struct {
		name string
		cfg  RoomConfig
		want string
	}{
		{"id", RoomConfig{Kind: RoomOffice, AreaM2: 10, Start: start}, "id is empty"},
		{"kind", RoomConfig{ID: "x", Kind: "gym", AreaM2: 10, Start: start}, "unknown kind"},
		{"area", RoomConfig{ID: "x", Kind: RoomOffice, Start: start}, "area"},
		{"start", RoomConfig{ID: "x", Kind: RoomOffice, AreaM2: 10}, "start"},
		{"step", RoomConfig{ID: "x", Kind: RoomOffice, AreaM2: 10, Start: start, Step: 2 * time.Hour}, "step"},
		{"capacity", RoomConfig{ID: "x", Kind: RoomOffice, AreaM2: 10, Start: start, Capacity: -1}, "capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRoom(1, w, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
