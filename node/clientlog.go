package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/citymesh/citymesh/broker"
)

// The node logs one line at info level when a client connects and one when
// it goes, with its user and address. A storm of connections (ten thousand
// devices coming back after a power cut) must not flood the log: the lines
// pass through a token bucket, and those held back are counted and reported
// in one line per clientLogEvery.
const (
	clientLogRate  = 20  // lines per second, sustained
	clientLogBurst = 200 // lines at once
)

// clientLogEvery is how often the count of held-back lines is reported.
var clientLogEvery = 10 * time.Second

// clientLog writes the connect and disconnect lines.
type clientLog struct {
	log        *slog.Logger
	lim        *rate.Limiter
	suppressed atomic.Int64
}

func newClientLog(log *slog.Logger) *clientLog {
	return &clientLog{log: log, lim: rate.NewLimiter(clientLogRate, clientLogBurst)}
}

// event is the broker's OnClient hook.
func (l *clientLog) event(e broker.ClientEvent) {
	if e.Link || !l.log.Enabled(context.Background(), slog.LevelInfo) {
		return // mesh links have lines of their own
	}
	if !l.lim.Allow() {
		l.suppressed.Add(1)
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("client", e.ClientID), slog.String("user", e.User))
	if e.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", e.Tenant))
	}
	attrs = append(attrs, slog.String("remote", e.Remote), slog.String("listener", e.Listener))
	msg := "client disconnected"
	if e.Connected {
		msg = "client connected"
		attrs = append(attrs, slog.String("version", versionName(e.Version)))
	} else {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
}

// report logs how many lines were held back since the last report, if any.
func (l *clientLog) report() {
	if n := l.suppressed.Swap(0); n > 0 {
		l.log.Info(fmt.Sprintf("%d client connect and disconnect lines suppressed (more than %d a second)", n, clientLogRate))
	}
}

// run reports held-back lines every clientLogEvery until ctx ends. (The
// node reports the last ones once its broker has closed.)
func (l *clientLog) run(ctx context.Context) {
	t := time.NewTicker(clientLogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.report()
		}
	}
}

// versionName names an MQTT protocol version.
func versionName(v byte) string {
	switch v {
	case 3:
		return "3.1"
	case 4:
		return "3.1.1"
	case 5:
		return "5.0"
	}
	return fmt.Sprint(v)
}
