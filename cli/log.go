package cli

import (
	"io"
	"log/slog"

	"github.com/vigil-backup/vigil/config"
)

// newLogger is the log of serve and worker, in the config's log.format:
// slog's key=value text, or one JSON object per line for a collector.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	if cfg.Log.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
