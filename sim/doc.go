// Package sim simulates the Bildungscampus in Heilbronn: its weather, its
// vineyards' soil, its buildings' meters and rooms, and its patrol robot,
// with faults on demand, for demonstrations and load tests.
//
// Every model is deterministic: its values are functions of a seed, its
// configuration and the time, and the same seed and times give
// byte-identical results whatever order the times are asked in. Random
// numbers are hashed from (seed, purpose, key) rather than drawn from a
// generator, so a value never depends on what was computed before it.
// Models that integrate over time (meter registers, soil water, room
// temperatures) step with a fixed step from a start instant and start over
// when asked for an earlier time.
//
// The models:
//
//   - Weather (NewWeather): air temperature, humidity, dew point, rain as an
//     event process, leaf wetness, wind, sun position, irradiance,
//     illuminance, UV index and pressure for a site near Heilbronn, with
//     scenarios that favour downy or powdery mildew.
//   - SoilField and SoilProbe: a vineyard plot's P, K, N, pH and EC as smooth
//     random fields, and per probe an hourly water balance and soil
//     temperature, reported with sensor noise.
//   - Building and Meter: electricity, heat, cooling, gas, water and PV by
//     occupancy, day type, holidays and weather, integrated into cumulative
//     registers with width, resolution and rollover.
//   - Room: occupancy from a timetable and a single-zone thermal, CO2 and
//     humidity balance with setpoints, valve, windows and lights.
//   - Robot: patrols of a robot.Route with checks, battery and GPS error.
//   - FaultSet: leaks, resets, rollovers, exchanges, out-of-order and
//     duplicated readings, silent devices, gateway outages, mildew weather,
//     a robot off its corridor and failing checks with a picture.
//   - Scheduler, Clock and Runner: which source emits when, in real or
//     accelerated time, without a goroutine per source.
//
// The models take plain parameters (coordinates, areas, kinds) and know
// nothing of the broker or of the campus description. The Player wires
// them up: it builds the models from a campus model (package campus),
// schedules every source and publishes what the real sources publish
// through Outputs — LoRaWAN uplinks as The Things Stack v3 and ChirpStack
// v4 write them (with the device codecs' bytes, frame counters and radio
// metadata), building gateway readings, room values and statuses, the
// robot's positions, checks and pictures — with a ground truth of every
// value, a load mode and copies of the campus for scale tests.
// MQTTOutput, BusOutput, MemoryOutput and DiscardOutput carry the messages;
// citymesh sim is the command. docs/simulator.md describes each model, its
// parameters and sources, which numbers are estimates, and the player.
package sim
