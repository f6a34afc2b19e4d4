//go:build race

package sim

// raceEnabled is set when the tests run under the race detector, which
// makes each scheduled emission about twenty times slower; the long
// scheduler test then covers a shorter stretch.
const raceEnabled = true
