package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/citymesh/citymesh/event"
)

// Truth is one value the simulator produced: what an end-to-end test
// expects to find at the far end, or, when Lost is set, expects not to
// find. One record per information point and emission.
type Truth struct {
	// Time is the value's time as the far end sees it: the event's time,
	// or for an uplink the network server's receive time.
	Time time.Time `json:"time"`
	// Point is the information point's id (a copy's, with its suffix).
	Point string `json:"point"`
	// Value is the value in Unit, at the resolution it travels with
	// (Resolution, when known). Positions carry Lat and Lon instead; a
	// check that could not read its target carries only Observed.
	Value      *float64   `json:"value,omitempty"`
	Unit       event.Unit `json:"unit,omitempty"`
	Resolution float64    `json:"resolution,omitempty"`
	Lat        *float64   `json:"lat,omitempty"`
	Lon        *float64   `json:"lon,omitempty"`
	// Observed is a robot check's observation as sent ("clear", "21.5").
	Observed string `json:"observed,omitempty"`
	// Topic is where it was published and Output which output carried it
	// ("tts", "chirpstack", "building", "robot").
	Topic  string `json:"topic"`
	Output string `json:"output"`
	// DevEUI and FCnt identify the uplink that carried a device's value.
	DevEUI string  `json:"dev_eui,omitempty"`
	FCnt   *uint32 `json:"f_cnt,omitempty"`
	// Gateways are the LoRaWAN gateways that received the uplink (none
	// when it was lost).
	Gateways []string `json:"gateways,omitempty"`
	// Lost says why the value never left: "silent", "gateway_outage".
	Lost string `json:"lost,omitempty"`
	// Published is how many times the message was published: 0 when lost,
	// 2 for a duplicate.
	Published int `json:"published"`
	// Late marks a message held back and published after the source's
	// next one (the out_of_order fault).
	Late bool `json:"late,omitempty"`
}

// TruthSink receives the ground truth. The player calls it from its own
// goroutine only.
type TruthSink interface {
	Record(t *Truth) error
}

// MemoryTruth keeps the truth in memory, for tests. The zero value is
// ready to use; it is safe for concurrent use.
type MemoryTruth struct {
	mu  sync.Mutex
	all []Truth
}

// Record keeps a copy of t.
func (m *MemoryTruth) Record(t *Truth) error {
	c := *t
	c.Gateways = slices.Clone(t.Gateways)
	m.mu.Lock()
	m.all = append(m.all, c)
	m.mu.Unlock()
	return nil
}

// Records returns what was recorded, in order.
func (m *MemoryTruth) Records() []Truth {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.all)
}

// JSONLinesTruth writes the truth as JSON lines, one record a line, in the
// order the values were produced. Flush (or Close) writes what is
// buffered.
type JSONLinesTruth struct {
	w   *bufio.Writer
	c   io.Closer
	enc *json.Encoder
	n   int64
}

// NewJSONLinesTruth writes to w; Close closes w if it is an io.Closer.
func NewJSONLinesTruth(w io.Writer) *JSONLinesTruth {
	bw := bufio.NewWriterSize(w, 64<<10)
	t := &JSONLinesTruth{w: bw, enc: json.NewEncoder(bw)}
	if c, ok := w.(io.Closer); ok {
		t.c = c
	}
	return t
}

// Record writes one line.
func (j *JSONLinesTruth) Record(t *Truth) error {
	j.n++
	if err := j.enc.Encode(t); err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	return nil
}

// Records returns how many records were written.
func (j *JSONLinesTruth) Records() int64 { return j.n }

// Flush writes buffered records.
func (j *JSONLinesTruth) Flush() error { return j.w.Flush() }

// Close flushes and closes the underlying writer.
func (j *JSONLinesTruth) Close() error {
	err := j.w.Flush()
	if j.c != nil {
		if cerr := j.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// ReadTruth reads a JSON-lines truth file.
func ReadTruth(r io.Reader) ([]Truth, error) {
	dec := json.NewDecoder(r)
	var out []Truth
	for {
		var t Truth
		err := dec.Decode(&t)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("truth record %d: %w", len(out)+1, err)
		}
		out = append(out, t)
	}
}
