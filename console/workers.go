package console

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// Workers lists the processes that run jobs on the catalog, the latest
// started first, each with the vigil jobs it ran at its last heartbeat.
type Workers interface {
	ListWorkers(ctx context.Context) ([]catalog.Worker, error)
}

var _ Workers = (*catalog.Catalog)(nil)

// workerRow is a worker with its state at the time of the page.
type workerRow struct {
	catalog.Worker
	State string
}

func (c *Console) workersPage(w http.ResponseWriter, r *http.Request) {
	ws, err := c.workers.ListWorkers(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	timeout := time.Duration(c.cfg.Workers.HeartbeatTimeout)
	if timeout <= 0 {
		timeout = config.DefaultHeartbeatTimeout
	}
	at := c.now()
	rows := make([]workerRow, 0, len(ws))
	for _, wk := range ws {
		rows = append(rows, workerRow{wk, wk.State(at, timeout)})
	}
	c.render(w, r, http.StatusOK, "workers", map[string]any{"Rows": rows, "Timeout": timeout})
}
