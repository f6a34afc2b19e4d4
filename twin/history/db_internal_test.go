package history

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestWarnHandler: the TSDB's Info records are dropped, its warnings pass,
// and the two warnings of the normal course pass at Debug only.
func TestWarnHandler(t *testing.T) {
	for _, tc := range []struct {
		name   string
		level  slog.Level // of the history's logger
		rec    slog.Level
		msg    string
		logged string // "" for nothing
	}{
		{"info dropped", slog.LevelDebug, slog.LevelInfo, "compact blocks", ""},
		{"a warning", slog.LevelInfo, slog.LevelWarn, "WAL corruption", "level=WARN msg=\"WAL corruption\""},
		{"an error", slog.LevelInfo, slog.LevelError, "compaction failed", "level=ERROR"},
		{"overlap at info", slog.LevelInfo, slog.LevelWarn, "Overlapping blocks found during reloadBlocks", ""},
		{"overlap at debug", slog.LevelDebug, slog.LevelWarn, "Overlapping blocks found during reloadBlocks", "level=DEBUG"},
		{"closing at info", slog.LevelInfo, slog.LevelWarn, "aborting block compactions to persist the head block", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(warnHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})})
			log.Log(context.Background(), tc.rec, tc.msg)
			got := buf.String()
			if tc.logged == "" && got != "" || tc.logged != "" && !strings.Contains(got, tc.logged) {
				t.Errorf("logged %q, want %q", got, tc.logged)
			}
		})
	}
}
