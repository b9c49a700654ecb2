package console

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// Workers lists the processes that run jobs on the catalog, the latest
// started first, each with the vigil jobs it ran at its last heartbeat,
// and the restore tests whose copy waits to be deleted on a node.
type Workers interface {
	ListWorkers(ctx context.Context) ([]catalog.Worker, error)
	ListPendingCleanup(ctx context.Context) ([]catalog.PendingCleanup, error)
}

var _ Workers = (*catalog.Catalog)(nil)

// workerRow is a worker with its state at the time of the page.
type workerRow struct {
	catalog.Worker
	State string
	// Pending are the restore tests whose copy waits to be deleted on the
	// worker's node. The latest worker of a node carries them, as the API
	// does: the clean-up falls to it, or to the node's next process.
	Pending []catalog.PendingCleanup
}

func (c *Console) workersPage(w http.ResponseWriter, r *http.Request) {
	ws, err := c.workers.ListWorkers(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pending, err := c.workers.ListPendingCleanup(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	byNode := map[string][]catalog.PendingCleanup{}
	for _, p := range pending {
		byNode[p.Node] = append(byNode[p.Node], p)
	}
	timeout := time.Duration(c.cfg.Current().Workers.HeartbeatTimeout)
	if timeout <= 0 {
		timeout = config.DefaultHeartbeatTimeout
	}
	at := c.now()
	rows := make([]workerRow, 0, len(ws))
	for _, wk := range ws {
		rows = append(rows, workerRow{wk, wk.State(at, timeout), byNode[wk.Node]})
		delete(byNode, wk.Node)
	}
	// A node no listed worker belongs to (its records were deleted) still
	// has its copies waiting: they are not left off the page.
	var elsewhere []catalog.PendingCleanup
	for _, p := range pending {
		if _, ok := byNode[p.Node]; ok {
			elsewhere = append(elsewhere, p)
		}
	}
	c.render(w, r, http.StatusOK, "workers", map[string]any{"Rows": rows, "Timeout": timeout, "Elsewhere": elsewhere})
}
