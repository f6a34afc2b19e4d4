package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/citymesh/citymesh/robot"
)

func init() {
	registerModel("route", "patrol robot track against its route: corridor deviation, progress, missed waypoints", runRouteModel)
	registerModel("incidents", "patrol check results to anomalies and incidents, with people's events and response times", runIncidentsModel)
}

// routeOutput is the JSON `citymesh model route` writes.
type routeOutput struct {
	Model string `json:"model"`
	Route string `json:"route"`
	Track string `json:"track"`
	robot.TrackReport
}

func runRouteModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model route", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		routePath = fs.String("route", "", "route file, YAML (required)")
		trackPath = fs.String("track", "", "robot fixes, CSV: time,lat,lon (required)")
		out       = fs.String("o", "", "write the JSON here instead of stdout")
		corridor  = fs.Float64("corridor-m", 0, "corridor half-width in metres (0: the route file's corridor_m)")
		arrival   = fs.Float64("arrival-m", 0, "default arrival radius in metres (0: the route file's arrival_m)")
		lookahead = fs.Float64("lookahead-m", robot.DefaultLookaheadM, "metres along the route searched ahead of the previous position")
		positions = fs.Bool("positions", true, "include one entry per fix in the output")
		geoPath   = fs.String("geojson", "", "also write the route, waypoint outcomes, track and off-route fixes as GeoJSON here")
	)
	if help, err := parseRobotFlags(fs, args); help || err != nil {
		return err
	}
	if *routePath == "" || *trackPath == "" {
		return errors.New("model route: -route FILE.yaml and -track FILE.csv are required")
	}
	if *corridor < 0 || *arrival < 0 || !(*lookahead > 0) {
		return errors.New("model route: -corridor-m and -arrival-m must not be negative, -lookahead-m must be positive")
	}
	rt, err := readModelFile(*routePath, robot.ReadRoute)
	if err != nil {
		return fmt.Errorf("model route: %w", err)
	}
	fixes, err := readModelFile(*trackPath, robot.ReadTrackCSV)
	if err != nil {
		return fmt.Errorf("model route: %w", err)
	}
	rep, err := robot.Track(rt, fixes, robot.TrackerConfig{CorridorM: *corridor, ArrivalM: *arrival, LookaheadM: *lookahead})
	if err != nil {
		return fmt.Errorf("model route: %s: %w", *trackPath, err)
	}
	if *geoPath != "" {
		f, err := os.Create(*geoPath)
		if err != nil {
			return fmt.Errorf("model route: %w", err)
		}
		err = robot.WriteTrackGeoJSON(f, rt, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("model route: %s: %w", *geoPath, err)
		}
	}
	if !*positions {
		rep.Positions = nil
	}
	return writeModelJSON(*out, stdout, routeOutput{Model: "route", Route: *routePath, Track: *trackPath, TrackReport: rep})
}

// incidentsOutput is the JSON `citymesh model incidents` writes.
type incidentsOutput struct {
	Model         string  `json:"model"`
	Route         string  `json:"route"`
	ChecksFile    string  `json:"checks_file"`
	EventsFile    string  `json:"events_file,omitempty"`
	ReopenWindowS float64 `json:"reopen_window_s"`
	robot.IncidentReport
}

func runIncidentsModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model incidents", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		routePath  = fs.String("route", "", "route file, YAML (required)")
		checksPath = fs.String("checks", "", "check results, CSV: time,check,value[,waypoint,picture,note] (required)")
		eventsPath = fs.String("events", "", "people's events, CSV: time,action,actor and incident or asset,kind[,note]")
		out        = fs.String("o", "", "write the JSON here instead of stdout")
		reopen     = fs.Duration("reopen-window", 7*24*time.Hour, "a recurrence at most this long after resolution reopens the incident (0: never)")
		actor      = fs.String("actor", "robot", "actor recorded for changes the robot's anomalies make")
		pictures   = fs.Int("max-pictures", robot.DefaultMaxPictures, "picture references kept per incident")
	)
	if help, err := parseRobotFlags(fs, args); help || err != nil {
		return err
	}
	if *routePath == "" || *checksPath == "" {
		return errors.New("model incidents: -route FILE.yaml and -checks FILE.csv are required")
	}
	if *reopen < 0 || *pictures < 1 || *actor == "" {
		return errors.New("model incidents: -reopen-window must not be negative, -max-pictures at least 1, -actor not empty")
	}
	rt, err := readModelFile(*routePath, robot.ReadRoute)
	if err != nil {
		return fmt.Errorf("model incidents: %w", err)
	}
	obs, err := readModelFile(*checksPath, robot.ReadChecksCSV)
	if err != nil {
		return fmt.Errorf("model incidents: %w", err)
	}
	var events []robot.Event
	if *eventsPath != "" {
		if events, err = readModelFile(*eventsPath, robot.ReadEventsCSV); err != nil {
			return fmt.Errorf("model incidents: %w", err)
		}
	}
	rep, err := robot.RunIncidents(rt, obs, events, robot.BookConfig{ReopenWindow: *reopen, MaxPictures: *pictures, SystemActor: *actor})
	if err != nil {
		return fmt.Errorf("model incidents: %w", err)
	}
	return writeModelJSON(*out, stdout, incidentsOutput{Model: "incidents", Route: *routePath, ChecksFile: *checksPath,
		EventsFile: *eventsPath, ReopenWindowS: reopen.Seconds(), IncidentReport: rep})
}

// parseRobotFlags parses the flags of a robot model command, whose FlagSet
// is named "model <name>". help is set when -h was asked for (the usage is
// already printed); stray arguments are an error.
func parseRobotFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return false, nil
}
