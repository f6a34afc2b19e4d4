package robot

import (
	"fmt"
	"sort"
)

// IncidentReport is the result of running a patrol's check results and
// people's events through an incident book.
type IncidentReport struct {
	Checks    int        `json:"checks"`
	Passed    int        `json:"passed"`
	Anomalies []Anomaly  `json:"anomalies"`
	Incidents []Incident `json:"incidents"`
	// Outcomes counts what the anomalies did: opened, updated, reopened.
	Outcomes      map[Outcome]int `json:"outcomes"`
	ResponseTimes ResponseStats   `json:"response_times"`
	ByKind        []ResponseStats `json:"response_times_by_kind"`
}

// RunIncidents evaluates the observations against the route, records the
// anomalies in a new book and applies the events, all in time order (at
// equal times observations come first, so a person can act on an incident
// opened at the same instant). Observations and events keep their input
// order among equal times.
func RunIncidents(r *Route, obs []Observation, events []Event, cfg BookConfig) (IncidentReport, error) {
	obs = append([]Observation(nil), obs...)
	events = append([]Event(nil), events...)
	sort.SliceStable(obs, func(i, j int) bool { return obs[i].Time.Before(obs[j].Time) })
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	book := NewBook(cfg)
	rep := IncidentReport{Checks: len(obs), Anomalies: []Anomaly{}, Outcomes: map[Outcome]int{}}
	i, j := 0, 0
	for i < len(obs) || j < len(events) {
		if j >= len(events) || (i < len(obs) && !events[j].Time.Before(obs[i].Time)) {
			ev, err := Evaluate(r, obs[i])
			if err != nil {
				return IncidentReport{}, fmt.Errorf("checks: %w", err)
			}
			i++
			if ev.OK {
				rep.Passed++
				continue
			}
			rep.Anomalies = append(rep.Anomalies, *ev.Anomaly)
			_, out, err := book.Record(*ev.Anomaly)
			if err != nil {
				return IncidentReport{}, fmt.Errorf("checks: %w", err)
			}
			rep.Outcomes[out]++
			continue
		}
		if err := book.Apply(events[j]); err != nil {
			return IncidentReport{}, fmt.Errorf("events: %w", err)
		}
		j++
	}
	rep.Incidents = book.Incidents()
	rep.ResponseTimes, rep.ByKind = ResponseTimes(rep.Incidents)
	return rep, nil
}
