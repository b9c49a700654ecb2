package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/vault"
)

// Browser reads the files of recovery points, for the routes that list
// them, hand out one, and compare two. A bad or missing path is a
// *vault.PathError (400, or 404 when Missing).
type Browser interface {
	Files(ctx context.Context, rpID, path string, recursive bool) (vigil.RecoveryPoint, vault.Entry, []vault.Entry, error)
	OpenFile(ctx context.Context, rpID, path string) (io.ReadCloser, vault.Entry, error)
	DiffRecoveryPoints(ctx context.Context, a, b string) ([]vault.Change, error)
}

func fileEntry(e vault.Entry) FileEntry {
	return FileEntry{Path: e.Path, Name: e.Name, Type: e.Type, Mode: fmt.Sprintf("%04o", e.Mode.Perm()|e.Mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)),
		ModeString: e.Mode.String(), Size: e.Size, ModTime: e.ModTime.UTC(), LinkTarget: e.LinkTarget}
}

func (s *Server) listFiles(r *http.Request) (any, error) {
	q := r.URL.Query()
	recursive, err := boolParam(q.Get("recursive"), "recursive")
	if err != nil {
		return nil, err
	}
	p := q.Get("path")
	rp, at, list, err := s.engine.Files(r.Context(), r.PathValue("id"), p, recursive)
	if err != nil {
		return nil, err
	}
	out := FileListing{RecoveryPointID: rp.ID, Resource: rp.Resource, ResourceType: rp.ResourceType, Path: at.Path,
		Entry: fileEntry(at), Entries: []FileEntry{}}
	for _, e := range list {
		out.Entries = append(out.Entries, fileEntry(e))
	}
	if rp.Database != nil {
		name := "NAME"
		if len(out.Entries) == 1 {
			name = out.Entries[0].Path
		}
		out.Note = fmt.Sprintf("a %s recovery point holds a dump of database %q, not the database's files: "+
			"'vigil recovery-points dump %s %s' writes it out, and 'vigil restore start' loads it into a new database", rp.ResourceType, rp.Database.Database, rp.ID, name)
	}
	return out, nil
}

// fileContent streams one file of a recovery point: its bytes as the
// body, with Content-Length, read from the vault as they are sent. It may
// outlast the server's write timeout, which is lifted as for a long poll.
func (s *Server) fileContent(w http.ResponseWriter, r *http.Request) {
	rc, e, err := s.engine.OpenFile(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	if err := SendFile(w, rc, e); err != nil && r.Context().Err() == nil {
		// The status is sent; a short body (Content-Length unmet) is how
		// the client learns of it.
		s.logger.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// SendFile answers with the file e of a recovery point, read from rc as it
// is sent, as an attachment with its length. It lifts the write deadline:
// a large file outlasts the server's write timeout. The API and the
// console's downloads both send files so.
func SendFile(w http.ResponseWriter, rc io.Reader, e vault.Entry) error {
	http.NewResponseController(w).SetWriteDeadline(noDeadline)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(e.Size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": e.Name}))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, err := io.Copy(w, rc)
	return err
}

func (s *Server) diffRecoveryPoints(r *http.Request) (any, error) {
	to := r.URL.Query().Get("to")
	if to == "" {
		return nil, badRequest("a comparison needs the newer recovery point as to=ID")
	}
	changes, err := s.engine.DiffRecoveryPoints(r.Context(), r.PathValue("id"), to)
	if err != nil {
		return nil, err
	}
	out := RecoveryPointDiff{From: r.PathValue("id"), To: to, Changes: []FileChange{}}
	for _, c := range changes {
		out.Changes = append(out.Changes, FileChange{Path: c.Path, Change: c.Kind, Type: c.Type, What: c.What, Size: c.Size})
		switch c.Kind {
		case vault.ChangeAdded:
			out.Added++
		case vault.ChangeRemoved:
			out.Removed++
		default:
			out.Changed++
		}
	}
	return out, nil
}

func boolParam(v, name string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s %q must be true or false", name, v)
	}
	return b, nil
}
