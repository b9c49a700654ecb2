package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
)

// crumb is one folder on the way to the folder shown.
type crumb struct{ Name, Path string }

// recoveryPoint is a recovery point's page: what it is, its restore
// tests, and a browser of its files at ?path=, each file downloadable
// and the folder shown restorable on its own.
func (c *Console) recoveryPoint(w http.ResponseWriter, r *http.Request) {
	id, p := r.PathValue("id"), r.URL.Query().Get("path")
	rp, err := c.catalog.GetRecoveryPoint(r.Context(), id)
	if err != nil {
		c.failStatus(w, r, err)
		return
	}
	tests, err := c.catalog.ListRestoreJobs(r.Context(), catalog.RestoreJobFilter{RecoveryPointID: rp.ID, RestoreTest: true, Limit: 10})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := map[string]any{"RP": rp, "Tests": tests, "Path": p, "Crumbs": crumbs(p)}
	if f := rp.Foreign; f != nil && f.Tool == config.KindRestic {
		// vigil reads a restic repository only to restore and test it;
		// restic itself lists the snapshot's files.
		vc, _ := c.cfg.Current().Vault(rp.Vault)
		data["ResticLs"] = fmt.Sprintf("restic -r %s ls %s", vc.Repository, rp.SnapshotID)
	} else if browser, ok := c.engine.(api.Browser); ok && rp.Status != vigil.RecoveryPointExpired && rp.Status != vigil.RecoveryPointDeleting {
		_, at, entries, err := browser.Files(r.Context(), id, p, false)
		if err != nil {
			// The page still says what the point is; the listing says why
			// it is missing.
			data["FilesError"] = err.Error()
		} else {
			data["At"], data["Entries"] = at, entries
		}
	}
	c.render(w, r, http.StatusOK, "recoverypoint", data)
}

// download sends one file of a recovery point, streamed from the vault.
func (c *Console) download(w http.ResponseWriter, r *http.Request) {
	browser, ok := c.engine.(api.Browser)
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", map[string]any{"Error": "this server cannot read files from vaults"})
		return
	}
	rc, e, err := browser.OpenFile(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"))
	if err != nil {
		c.failStatus(w, r, err)
		return
	}
	defer rc.Close()
	if err := api.SendFile(w, rc, e); err != nil && r.Context().Err() == nil {
		c.logger.Error("console: download", "path", r.URL.Path, "err", err)
	}
}

// crumbs are the folders from the root to p.
func crumbs(p string) []crumb {
	out := []crumb{{Name: "/", Path: ""}}
	if p = strings.Trim(path.Clean("/"+p), "/"); p == "" {
		return out
	}
	parts := strings.Split(p, "/")
	for i, name := range parts {
		out = append(out, crumb{Name: name, Path: strings.Join(parts[:i+1], "/")})
	}
	return out
}

// failStatus shows err with the status it calls for: a missing record or
// path is 404, a path outside the snapshot or another refused request
// 400, anything else 500.
func (c *Console) failStatus(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *vigil.InvalidError
	var unknown *vigil.UnknownNameError
	var badPath *vault.PathError
	switch {
	case errors.As(err, &badPath) && badPath.Missing:
		c.render(w, r, http.StatusNotFound, "error", map[string]any{"Error": err.Error()})
	case errors.As(err, &badPath):
		c.render(w, r, http.StatusBadRequest, "error", map[string]any{"Error": err.Error()})
	case errors.Is(err, vigil.ErrNotFound), errors.As(err, &unknown):
		c.render(w, r, http.StatusNotFound, "error", map[string]any{"Error": err.Error()})
	case errors.As(err, &invalid):
		c.render(w, r, http.StatusBadRequest, "error", map[string]any{"Error": err.Error()})
	default:
		c.fail(w, r, err)
	}
}

// Verifier verifies a vault, recording the outcome that the vaults page
// shows.
type Verifier interface {
	VerifyVault(ctx context.Context, name string, readDataPercent float64) (vault.VerifyResult, error)
}

// verifyVault is the vaults page's "Verify now": it verifies the vault,
// reading the percent of its file data the form asks, and shows the
// vaults page with the outcome. A verify of a large vault outlasts the
// write timeout, which is lifted.
func (c *Console) verifyVault(w http.ResponseWriter, r *http.Request) {
	v, ok := c.engine.(Verifier)
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", map[string]any{"Error": "this server cannot verify vaults"})
		return
	}
	percent := 0.0
	if s := r.PostFormValue("read_data_percent"); s != "" {
		p, err := strconv.ParseFloat(s, 64)
		if err != nil || p < 0 || p > 100 {
			c.render(w, r, http.StatusBadRequest, "error", map[string]any{"Error": "read_data_percent " + strconv.Quote(s) + " must be a number from 0 to 100"})
			return
		}
		percent = p
	}
	// A verify of a large vault outlasts the write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	if _, err := v.VerifyVault(r.Context(), r.PathValue("name"), percent); err != nil {
		var unknown *vigil.UnknownNameError
		if errors.As(err, &unknown) {
			c.failStatus(w, r, err)
			return
		}
		// Damage found is recorded as the vault's last check, which the
		// vaults page shows; other failures are said on their own.
		c.logger.Warn("console: verify vault", "vault", r.PathValue("name"), "err", err)
	}
	http.Redirect(w, r, "/vaults#vault-"+r.PathValue("name"), http.StatusSeeOther)
}
