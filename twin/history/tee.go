package history

import (
	"context"
	"errors"
)

// Tee returns a Sink that hands every batch to each of sinks in turn: the
// embedded history and a remote write queue, for example. Its Append
// returns nil when every sink took the batch, and otherwise the joined
// errors; the caller then hands the batch again, so a sink that took it
// the first time takes it twice. The embedded history keeps a sample of
// the same series, time and value once, and remote write receivers do the
// same with a repeated sample, so a repeated batch is harmless.
func Tee(sinks ...Sink) Sink {
	if len(sinks) == 1 {
		return sinks[0]
	}
	return tee(sinks)
}

type tee []Sink

func (t tee) Append(ctx context.Context, samples []Sample) error {
	var errs []error
	for _, s := range t {
		if err := s.Append(ctx, samples); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
