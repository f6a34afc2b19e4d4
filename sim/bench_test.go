package sim

import (
	"testing"
	"time"
)

// BenchmarkWeatherAt measures one weather computation at a new instant
// (no cache hit).
func BenchmarkWeatherAt(b *testing.B) {
	w := mustWeather(b, 1, WeatherConfig{})
	t0 := date(2026, 1, 1)
	for i := range b.N {
		w.At(t0.Add(time.Duration(i) * 61 * time.Second))
	}
}

// BenchmarkBuildingDay integrates a lecture hall's loads over a day
// (1,440 minutes) and reads its three meters every 15 minutes.
func BenchmarkBuildingDay(b *testing.B) {
	w := mustWeather(b, 1, WeatherConfig{})
	t0 := date(2026, 1, 1)
	bl := mustBuilding(b, 1, w, lectureHall(t0, nil))
	day := 0
	for b.Loop() {
		d := t0.Add(time.Duration(day) * 24 * time.Hour) // whole days: local midnights would step back an hour at the change to summer time, and a room asked for an earlier time starts over
		for q := range 96 {
			for _, m := range bl.Meters() {
				m.Read(d.Add(time.Duration(q) * 15 * time.Minute))
			}
		}
		day++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(day*1440), "ns/building-minute")
}

// BenchmarkRoomDay steps a lecture room through a day (288 five-minute
// steps) and reads its points every 5 minutes.
func BenchmarkRoomDay(b *testing.B) {
	w := mustWeather(b, 1, WeatherConfig{})
	t0 := date(2026, 1, 1)
	r := mustRoom(b, w, RoomConfig{ID: "r", Kind: RoomLecture, AreaM2: 150, Start: t0})
	day := 0
	for b.Loop() {
		d := t0.Add(time.Duration(day) * 24 * time.Hour) // whole days: local midnights would step back an hour at the change to summer time, and a room asked for an earlier time starts over
		for s := range 288 {
			r.At(d.Add(time.Duration(s) * 5 * time.Minute))
		}
		day++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(day*288), "ns/room-step")
}

// BenchmarkRobotFix computes the robot's position once a second.
func BenchmarkRobotFix(b *testing.B) {
	r := mustRobot(b, RobotConfig{Route: exampleRoute(b)})
	for i := range b.N {
		r.Fix(patrolStart.Add(time.Duration(i) * time.Second))
	}
}

// BenchmarkRoomsShareWeather steps 100 rooms of one site through a day:
// the rooms share the weather of each step (the weather's cache), which is
// how a campus runs.
func BenchmarkRoomsShareWeather(b *testing.B) {
	w := mustWeather(b, 1, WeatherConfig{})
	t0 := date(2026, 1, 1)
	var rooms []*Room
	for i := range 100 {
		rooms = append(rooms, mustRoom(b, w, RoomConfig{ID: "r" + string(rune('A'+i%26)) + string(rune('a'+i/26)), Kind: RoomOffice, AreaM2: 20, Start: t0}))
	}
	day := 0
	for b.Loop() {
		d := t0.Add(time.Duration(day) * 24 * time.Hour) // whole days: local midnights would step back an hour at the change to summer time, and a room asked for an earlier time starts over
		for s := range 288 {
			for _, r := range rooms {
				r.At(d.Add(time.Duration(s) * 5 * time.Minute))
			}
		}
		day++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(day*288*len(rooms)), "ns/room-step")
}
