package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Keys: "s/" + client id for sessions, "r/" + topic for retained messages.
// Values are JSON, which keeps records readable with ordinary tools while the
// schema settles.
const (
	sessionPrefix  = "s/"
	retainedPrefix = "r/"
)

// Disk is a Store on the embedded Pebble engine in a directory. Every write
// is synced before it returns.
type Disk struct {
	db *pebble.DB
}

// OpenDisk opens (or creates) the store in dir.
func OpenDisk(dir string) (*Disk, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Disk{db: db}, nil
}

// Close closes the store.
func (d *Disk) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func (d *Disk) put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", key, err)
	}
	if err := d.db.Set([]byte(key), b, pebble.Sync); err != nil {
		return fmt.Errorf("store: write %s: %w", key, err)
	}
	return nil
}

func (d *Disk) del(key string) error {
	if err := d.db.Delete([]byte(key), pebble.Sync); err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// scan decodes every value under prefix with decode; a record that does not
// decode is reported, not skipped.
func (d *Disk) scan(prefix string, decode func(key, value []byte) error) error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: []byte(prefix[:len(prefix)-1] + "0")})
	if err != nil {
		return fmt.Errorf("store: scan %s: %w", prefix, err)
	}
	var errs []error
	for it.First(); it.Valid(); it.Next() {
		if err := decode(it.Key(), it.Value()); err != nil {
			errs = append(errs, fmt.Errorf("store: record %q is corrupt: %w", it.Key(), err))
		}
	}
	errs = append(errs, it.Close())
	return errors.Join(errs...)
}

// PutSession implements Store.
func (d *Disk) PutSession(s Session) error { return d.put(sessionPrefix+s.ClientID, s) }

// DeleteSession implements Store.
func (d *Disk) DeleteSession(clientID string) error { return d.del(sessionPrefix + clientID) }

// Sessions implements Store.
func (d *Disk) Sessions() ([]Session, error) {
	var out []Session
	err := d.scan(sessionPrefix, func(_, v []byte) error {
		var s Session
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// PutRetained implements Store.
func (d *Disk) PutRetained(m Message) error { return d.put(retainedPrefix+m.Topic, m) }

// DeleteRetained implements Store.
func (d *Disk) DeleteRetained(topic string) error { return d.del(retainedPrefix + topic) }

// Retained implements Store.
func (d *Disk) Retained() ([]Message, error) {
	var out []Message
	err := d.scan(retainedPrefix, func(_, v []byte) error {
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// quietLogger keeps Pebble's informational messages out of the broker's log;
// errors still reach it through returned errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("store: pebble: "+format, args...))
}
