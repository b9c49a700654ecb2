package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
)

// Engine carries out the operations the API starts, and answers what only
// it knows: events with their deliveries, and the vaults. Jobs, recovery
// points and logs the API reads from the catalog itself.
//
// Every method honours ctx, which ends when the client goes. An error that
// is or wraps *vigil.UnknownNameError or vigil.ErrNotFound is answered 404,
// *vigil.InvalidError 400, *vigil.ConflictError 409, and any other 500 (and
// logged); the message is shown to the client as it is, so it says what to
// do next.
//
// ListEvents waits up to q.Wait for an event after q.AfterSeq; when ctx
// ends during that wait it returns an empty page and no error, which is how
// a long poll ends when the server stops. VerifyVault returns an error
// wrapping vault.ErrCorrupt together with a result that lists the damage:
// that is the check's answer, not a failure.
type Engine interface {
	StartBackup(ctx context.Context, req vigil.BackupRequest) (vigil.BackupJob, error)
	StartCopy(ctx context.Context, req vigil.CopyRequest) (vigil.CopyJob, error)
	StartRestore(ctx context.Context, req vigil.RestoreRequest) (vigil.RestoreJob, error)
	RestoreMetadata(ctx context.Context, rpID string) (map[string]string, error)
	StartRestoreTest(ctx context.Context, req vigil.RestoreTestRequest) (vigil.RestoreJob, error)
	ReportValidation(ctx context.Context, id string, status vigil.ValidationStatus, message string) (vigil.RestoreJob, error)
	ListEvents(ctx context.Context, q vigil.EventQuery) (vigil.EventPage, error)
	Vaults(ctx context.Context) ([]vigil.VaultInfo, error)
	VerifyVault(ctx context.Context, name string, readDataPercent float64) (vault.VerifyResult, error)
	RepairVault(ctx context.Context, name string) (vault.RepairResult, error)
	// VaultCoverage reads the vault's index (it opens the vault) and the
	// catalog's record of which packs were read back.
	VaultCoverage(ctx context.Context, name string) (vigil.VaultCoverage, error)
	// SyncVault lists a foreign vault's snapshots as recovery points
	// (running its tool: restic, or Kopia read-only).
	SyncVault(ctx context.Context, name string) (vigil.VaultSync, error)
	Browser
	RetentionPreview(ctx context.Context, plan string) (vigil.RetentionPreview, error)
	RetentionKeptBy(ctx context.Context) (map[string][]string, error)
	// Cancel cancels job id on behalf of who: at once when it is queued,
	// where it runs when it runs (it ends there, after its clean-up). A
	// job that has ended is a *vigil.ConflictError.
	Cancel(ctx context.Context, id, who string) error
	// Reload reads the config file again and puts it in effect, or
	// refuses it (a *vigil.InvalidError) and keeps the running one.
	Reload(ctx context.Context) (vigil.Reload, error)
}

// Server serves the API under /api/v1, and /healthz. Every route but
// /healthz needs the bearer token.
type Server struct {
	cfg     config.Source
	catalog *catalog.Catalog
	engine  Engine
	token   string
	logger  *slog.Logger
	mux     *http.ServeMux

	// stopping closes when the server begins to stop, ending long polls
	// so that they do not hold up a graceful shutdown.
	stopping <-chan struct{}
}

// NewServer builds the API's handler; token is the API token. Close
// stopping before http.Server.Shutdown: every waiting long poll then
// answers at once (with what it has, usually nothing), and new ones answer
// without waiting.
func NewServer(cfg config.Source, cat *catalog.Catalog, eng Engine, token string, stopping <-chan struct{}, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, catalog: cat, engine: eng, token: token, logger: logger, mux: http.NewServeMux(), stopping: stopping}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	s.handle("GET /api/v1/resources", s.listResources)
	s.handle("GET /api/v1/vaults", s.listVaults)
	s.handle("GET /api/v1/workers", s.listWorkers)
	s.handleLong("POST /api/v1/vaults/{name}/verify", s.verifyVault, 0)
	s.handleLong("POST /api/v1/vaults/{name}/repair", s.repairVault, 0)
	s.handle("GET /api/v1/vaults/{name}/coverage", s.vaultCoverage)
	s.handleLong("POST /api/v1/vaults/{name}/sync", s.syncVault, 0)
	s.handle("POST /api/v1/backup-jobs", s.startBackup)
	s.handle("GET /api/v1/backup-jobs", s.listBackupJobs)
	s.handle("GET /api/v1/backup-jobs/{id}", s.getBackupJob)
	s.handle("POST /api/v1/copy-jobs", s.startCopy)
	s.handle("GET /api/v1/copy-jobs", s.listCopyJobs)
	s.handle("GET /api/v1/copy-jobs/{id}", s.getCopyJob)
	s.handle("POST /api/v1/restore-jobs", s.startRestore)
	s.handle("GET /api/v1/restore-jobs", s.listRestoreJobs)
	s.handle("GET /api/v1/restore-jobs/{id}", s.getRestoreJob)
	s.handle("PUT /api/v1/restore-jobs/{id}/validation", s.reportValidation)
	s.handle("POST /api/v1/restore-tests", s.startRestoreTest)
	s.handleLong("GET /api/v1/events", s.listEvents, maxEventWait+30*time.Second)
	s.handle("GET /api/v1/recovery-points", s.listRecoveryPoints)
	s.handle("GET /api/v1/recovery-points/{id}", s.getRecoveryPoint)
	s.handle("GET /api/v1/recovery-points/{id}/restore-metadata", s.restoreMetadata)
	s.handle("GET /api/v1/recovery-points/{id}/files", s.listFiles)
	s.mux.Handle("GET /api/v1/recovery-points/{id}/files/content", RequireToken(s.token, noToken, http.HandlerFunc(s.fileContent)))
	s.handle("GET /api/v1/recovery-points/{id}/diff", s.diffRecoveryPoints)
	s.handle("GET /api/v1/backup-plans/{name}/retention", s.retentionPreview)
	s.handle("GET /api/v1/jobs/{id}/logs", s.jobLogs)
	s.handle("POST /api/v1/jobs/{id}/cancel", s.cancelJob)
	s.handle("GET /api/v1/plans", s.listPlans)
	s.handle("POST /api/v1/plans/{name}/pause", s.pausePlan)
	s.handle("POST /api/v1/plans/{name}/resume", s.resumePlan)
	// The start-up checks of the new config wait up to
	// startcheck.SourceTimeout for each database.
	s.handleLong("POST /api/v1/reload", func(r *http.Request) (any, error) { return s.engine.Reload(r.Context()) }, 2*time.Minute)
	s.handle("/api/", func(r *http.Request) (any, error) {
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("no API route %s %s: see docs/api.md", r.Method, r.URL.Path)}
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc returns the response body, or an error mapped to a status.
type handlerFunc func(r *http.Request) (any, error)

// noToken answers an API request without the token.
const noToken = "missing or wrong API token: pass it as 'Authorization: Bearer <token>' (the token is in <data_dir>/api-token)"

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.Handle(pattern, RequireToken(s.token, noToken, s.serve(h)))
}

// handleLong serves a route whose requests may outlast the HTTP server's
// write timeout, which runs from the end of the request's headers: a long
// poll, a vault verification that reads for as long as it takes. Such a
// request gets write for its answer instead (0: no limit). Only a request
// with the token gets that far; its body is still bound by the read
// timeout, which net/http lifts by itself once the body is read.
func (s *Server) handleLong(pattern string, h handlerFunc, write time.Duration) {
	serve := s.serve(h)
	s.mux.Handle(pattern, RequireToken(s.token, noToken, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var deadline time.Time
		if write > 0 {
			deadline = time.Now().Add(write)
		}
		// An error means a ResponseWriter without deadlines (a test's
		// recorder): nothing to lift.
		http.NewResponseController(w).SetWriteDeadline(deadline)
		serve(w, r)
	})))
}

// serve answers a request with h's body or error.
func (s *Server) serve(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := h(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if r.Method == http.MethodPost {
			status = http.StatusCreated
		}
		writeJSON(w, status, body)
	}
}

// writeError answers a request with err, as statusOf maps it; a 500 is
// logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		s.logger.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := Error{Message: err.Error()}
	if unknown := (*vigil.UnknownNameError)(nil); errors.As(err, &unknown) {
		body.Unknown = &UnknownName{Kind: unknown.Kind, Name: unknown.Name}
	}
	writeJSON(w, status, body)
}

// noDeadline lifts a write deadline.
var noDeadline time.Time

// RequireToken serves h only to requests with 'Authorization: Bearer
// <token>', and answers any other 401 with an Error whose message is
// unauthorized, which says how to pass the token. What is served beside
// the API with the API's token (the metrics) uses it too, so that every
// 401 has the same shape.
func RequireToken(token, unauthorized string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, Error{Message: unauthorized})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(body)
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func statusOf(err error) int {
	var he *httpError
	var unknown *vigil.UnknownNameError
	var invalid *vigil.InvalidError
	var conflict *vigil.ConflictError
	var badPath *vault.PathError
	switch {
	case errors.As(err, &conflict):
		return http.StatusConflict
	case errors.As(err, &badPath):
		if badPath.Missing {
			return http.StatusNotFound
		}
		return http.StatusBadRequest
	case errors.As(err, &he):
		return he.status
	case errors.As(err, &unknown), errors.Is(err, vigil.ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &invalid):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled):
		return 499
	}
	return http.StatusInternalServerError
}

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func (s *Server) listResources(*http.Request) (any, error) {
	out := []Resource{}
	for _, r := range s.cfg.Current().Resources {
		out = append(out, Resource{Name: r.Name, Type: r.Type, Path: r.Path})
	}
	return out, nil
}

func (s *Server) listVaults(r *http.Request) (any, error) {
	vs, err := s.engine.Vaults(r.Context())
	if err != nil {
		return nil, err
	}
	out := []Vault{}
	for _, v := range vs {
		out = append(out, Vault(v))
	}
	return out, nil
}

func (s *Server) listWorkers(r *http.Request) (any, error) {
	ws, err := s.catalog.ListWorkers(r.Context())
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingCleanup(r.Context())
	if err != nil {
		return nil, err
	}
	out := []Worker{}
	at := time.Now().UTC()
	for _, w := range ws {
		// The latest worker of a node is listed first: the clean-up
		// falls to it, or to the node's next process.
		out = append(out, Worker{ID: w.ID, Node: w.Node, Host: w.Host, PID: w.PID, StartedAt: w.StartedAt,
			LastHeartbeatAt: w.LastHeartbeatAt, Concurrency: w.Concurrency, Running: w.Running, StoppedAt: w.StoppedAt, ReapedBy: w.ReapedBy,
			State: w.State(at, heartbeatTimeout(s.cfg.Current())), PendingCleanup: pending[w.Node]})
		delete(pending, w.Node)
	}
	return out, nil
}

// pendingCleanup returns, by node, the restore jobs whose files are still
// to be deleted there (catalog.ListPendingCleanup).
func (s *Server) pendingCleanup(ctx context.Context) (map[string][]string, error) {
	pending, err := s.catalog.ListPendingCleanup(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, p := range pending {
		out[p.Node] = append(out[p.Node], p.JobID)
	}
	return out, nil
}

// heartbeatTimeout is workers.heartbeat_timeout, or its default for a
// config built in code.
func heartbeatTimeout(cfg *config.Config) time.Duration {
	if cfg.Workers.HeartbeatTimeout <= 0 {
		return config.DefaultHeartbeatTimeout
	}
	return time.Duration(cfg.Workers.HeartbeatTimeout)
}

func (s *Server) verifyVault(r *http.Request) (any, error) {
	var req VerifyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	res, err := s.engine.VerifyVault(r.Context(), name, req.ReadDataPercent)
	// Damage is the check's answer, not a failure of the request: the
	// result lists every problem found.
	if err != nil && !errors.Is(err, vault.ErrCorrupt) {
		return nil, err
	}
	return VerifyResult{
		Vault: name, OK: len(res.Errors) == 0, Summary: res.Summary(), Advice: res.Advice,
		Snapshots: res.Snapshots, Files: res.Files, Dirs: res.Dirs,
		FilesRead: res.FilesRead, BytesRead: res.BytesRead, Errors: append([]string{}, res.Errors...),
	}, nil
}

func (s *Server) syncVault(r *http.Request) (any, error) {
	return s.engine.SyncVault(r.Context(), r.PathValue("name"))
}

func (s *Server) vaultCoverage(r *http.Request) (any, error) {
	return s.engine.VaultCoverage(r.Context(), r.PathValue("name"))
}

func (s *Server) repairVault(r *http.Request) (any, error) {
	name := r.PathValue("name")
	res, err := s.engine.RepairVault(r.Context(), name)
	if err != nil {
		return nil, err
	}
	out := RepairResult{Vault: name, Contents: res.Contents, DamagedContents: res.DamagedContents,
		RecoveredPacks: res.RecoveredPacks, Snapshots: []RepairedSnapshot{}}
	for _, sn := range res.Snapshots {
		out.Snapshots = append(out.Snapshots, RepairedSnapshot(sn))
	}
	return out, nil
}

func (s *Server) startBackup(r *http.Request) (any, error) {
	var req StartBackupRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Resource == "" {
		return nil, badRequest("a backup needs a resource: give resource (and vault, when there is more than one)")
	}
	expiry, err := vigil.ExpiryOf("expire_after_seconds", req.ExpireAfterSeconds, time.Second)
	if err != nil {
		return nil, err
	}
	return s.engine.StartBackup(r.Context(), vigil.BackupRequest{Resource: req.Resource, Vault: req.Vault, Expiry: expiry, OnDemand: true})
}

func (s *Server) listBackupJobs(r *http.Request) (any, error) {
	q := r.URL.Query()
	f := catalog.BackupJobFilter{Resource: q.Get("resource"), Vault: q.Get("vault"), CreatedBy: q.Get("created_by")}
	for _, st := range q["status"] {
		f.Status = append(f.Status, vigil.BackupJobStatus(strings.ToUpper(st)))
	}
	var err error
	if f.Limit, err = limit(q.Get("limit")); err != nil {
		return nil, err
	}
	f.StartingAfter = q.Get("starting_after")
	jobs, err := s.catalog.ListBackupJobs(r.Context(), f)
	if err != nil {
		return nil, pageError(err, "backup job", f.StartingAfter)
	}
	if jobs == nil {
		jobs = []vigil.BackupJob{}
	}
	return jobs, err
}

func (s *Server) getBackupJob(r *http.Request) (any, error) {
	job, err := s.catalog.GetBackupJob(r.Context(), r.PathValue("id"))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, notFound("no backup job %s: list them with 'vigil jobs list --type backup'", r.PathValue("id"))
	}
	return job, err
}

func (s *Server) startCopy(r *http.Request) (any, error) {
	var req StartCopyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.RecoveryPointID == "" || req.Vault == "" {
		return nil, badRequest("a copy needs a recovery_point_id and a vault to copy it into")
	}
	expiry, err := vigil.ExpiryOf("expire_after_seconds", req.ExpireAfterSeconds, time.Second)
	if err != nil {
		return nil, err
	}
	return s.engine.StartCopy(r.Context(), vigil.CopyRequest{RecoveryPointID: req.RecoveryPointID, Vault: req.Vault, Expiry: expiry})
}

func (s *Server) listCopyJobs(r *http.Request) (any, error) {
	q := r.URL.Query()
	f := catalog.CopyJobFilter{Resource: q.Get("resource"), Vault: q.Get("vault"), CreatedBy: q.Get("created_by"),
		SourceRecoveryPointID: q.Get("source_recovery_point_id")}
	for _, st := range q["status"] {
		f.Status = append(f.Status, vigil.BackupJobStatus(strings.ToUpper(st)))
	}
	var err error
	if f.Limit, err = limit(q.Get("limit")); err != nil {
		return nil, err
	}
	f.StartingAfter = q.Get("starting_after")
	jobs, err := s.catalog.ListCopyJobs(r.Context(), f)
	if err != nil {
		return nil, pageError(err, "copy job", f.StartingAfter)
	}
	if jobs == nil {
		jobs = []vigil.CopyJob{}
	}
	return jobs, err
}

func (s *Server) getCopyJob(r *http.Request) (any, error) {
	job, err := s.catalog.GetCopyJob(r.Context(), r.PathValue("id"))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, notFound("no copy job %s: list them with 'vigil jobs list --type copy'", r.PathValue("id"))
	}
	return job, err
}

func (s *Server) startRestore(r *http.Request) (any, error) {
	var req StartRestoreRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.RecoveryPointID == "" {
		return nil, badRequest("a restore needs a recovery_point_id")
	}
	return s.engine.StartRestore(r.Context(), vigil.RestoreRequest{RecoveryPointID: req.RecoveryPointID, Metadata: req.Metadata})
}

func (s *Server) listRestoreJobs(r *http.Request) (any, error) {
	q := r.URL.Query()
	f := catalog.RestoreJobFilter{Resource: q.Get("resource"), RecoveryPointID: q.Get("recovery_point_id"), RestoreTest: q.Get("restore_test") == "true"}
	for _, st := range q["status"] {
		f.Status = append(f.Status, vigil.RestoreJobStatus(strings.ToUpper(st)))
	}
	var err error
	if f.Limit, err = limit(q.Get("limit")); err != nil {
		return nil, err
	}
	f.StartingAfter = q.Get("starting_after")
	jobs, err := s.catalog.ListRestoreJobs(r.Context(), f)
	if err != nil {
		return nil, pageError(err, "restore job", f.StartingAfter)
	}
	if jobs == nil {
		jobs = []vigil.RestoreJob{}
	}
	return jobs, err
}

func (s *Server) getRestoreJob(r *http.Request) (any, error) {
	job, err := s.catalog.GetRestoreJob(r.Context(), r.PathValue("id"))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, notFound("no restore job %s: list them with 'vigil jobs list --type restore'", r.PathValue("id"))
	}
	return job, err
}

func (s *Server) listRecoveryPoints(r *http.Request) (any, error) {
	q := r.URL.Query()
	f := catalog.RecoveryPointFilter{Vault: q.Get("vault"), Resource: q.Get("resource")}
	if f.Vault != "" {
		if _, ok := s.cfg.Current().Vault(f.Vault); !ok {
			return nil, &vigil.UnknownNameError{Kind: "vault", Name: f.Vault, Known: s.cfg.Current().VaultNames()}
		}
	}
	if f.Resource != "" {
		if _, ok := s.cfg.Current().Resource(f.Resource); !ok {
			return nil, &vigil.UnknownNameError{Kind: "resource", Name: f.Resource, Known: s.cfg.Current().ResourceNames()}
		}
	}
	for _, st := range q["status"] {
		f.Status = append(f.Status, vigil.RecoveryPointStatus(strings.ToUpper(st)))
	}
	var err error
	if f.Limit, err = limit(q.Get("limit")); err != nil {
		return nil, err
	}
	f.StartingAfter = q.Get("starting_after")
	rps, err := s.catalog.ListRecoveryPoints(r.Context(), f)
	if err != nil {
		return nil, pageError(err, "recovery point", f.StartingAfter)
	}
	if rps == nil {
		rps = []vigil.RecoveryPoint{}
	}
	if err := s.keptBy(r.Context(), rps); err != nil {
		return nil, err
	}
	return rps, nil
}

func (s *Server) getRecoveryPoint(r *http.Request) (any, error) {
	rp, err := s.catalog.GetRecoveryPoint(r.Context(), r.PathValue("id"))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, notFound("no recovery point %s: list them with 'vigil recovery-points list'", r.PathValue("id"))
	}
	if err != nil {
		return nil, err
	}
	rps := []vigil.RecoveryPoint{rp}
	if err := s.keptBy(r.Context(), rps); err != nil {
		return nil, err
	}
	return rps[0], nil
}

// keptBy names, on each of rps, the retention rules that keep it.
func (s *Server) keptBy(ctx context.Context, rps []vigil.RecoveryPoint) error {
	kept, err := s.engine.RetentionKeptBy(ctx)
	if err != nil {
		return err
	}
	for i := range rps {
		rps[i].KeptBy = kept[rps[i].ID]
	}
	return nil
}

func (s *Server) retentionPreview(r *http.Request) (any, error) {
	return s.engine.RetentionPreview(r.Context(), r.PathValue("name"))
}

func (s *Server) restoreMetadata(r *http.Request) (any, error) {
	return s.engine.RestoreMetadata(r.Context(), r.PathValue("id"))
}

func (s *Server) jobLogs(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var err error
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		_, err = s.catalog.GetBackupJob(r.Context(), id)
	case strings.HasPrefix(id, vigil.PrefixRestoreJob+"-"):
		_, err = s.catalog.GetRestoreJob(r.Context(), id)
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		_, err = s.catalog.GetCopyJob(r.Context(), id)
	default:
		err = vigil.ErrNotFound
	}
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, notFound("no job %s: job ids start with bj- (backup), rj- (restore) or cj- (copy); list them with 'vigil jobs list'", id)
	}
	if err != nil {
		return nil, err
	}
	lines, err := s.catalog.Logs(r.Context(), id)
	if lines == nil {
		lines = []vigil.LogLine{}
	}
	return lines, err
}

// pageError answers a list whose starting_after names no record with a
// 400 that says what to pass; any other error is returned as it is.
func pageError(err error, kind, startingAfter string) error {
	if startingAfter != "" && errors.Is(err, vigil.ErrNotFound) {
		return badRequest("starting_after %q: no %s has this id: pass the id of the last record of the page you have, "+
			"or leave starting_after out to list from the newest", startingAfter, kind)
	}
	return err
}

func limit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("limit %q must be a whole number", s)
	}
	return n, nil
}

func (s *Server) cancelJob(r *http.Request) (any, error) {
	var req CancelRequest
	// The body is optional: a bare POST cancels with no reason.
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
	}
	id := r.PathValue("id")
	err := s.engine.Cancel(r.Context(), id, vigil.CancelledThroughAPI(req.Reason))
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, notFound("no job %s: job ids start with bj- (backup), rj- (restore) or cj- (copy); list them with 'vigil jobs list'", id)
	}
	if err != nil {
		return nil, err
	}
	out := CancelResponse{ID: id}
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		job, err := s.catalog.GetBackupJob(r.Context(), id)
		out.Status, out.StatusMessage = string(job.Status), job.StatusMessage
		return out, err
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		job, err := s.catalog.GetCopyJob(r.Context(), id)
		out.Status, out.StatusMessage = string(job.Status), job.StatusMessage
		return out, err
	default:
		job, err := s.catalog.GetRestoreJob(r.Context(), id)
		out.Status, out.StatusMessage = string(job.Status), job.StatusMessage
		return out, err
	}
}

func (s *Server) startRestoreTest(r *http.Request) (any, error) {
	var req StartRestoreTestRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Resource == "" {
		return nil, badRequest("a restore test needs a resource")
	}
	return s.engine.StartRestoreTest(r.Context(), vigil.RestoreTestRequest{Resource: req.Resource, RecoveryPointID: req.RecoveryPointID, Plan: req.Plan})
}

func (s *Server) reportValidation(r *http.Request) (any, error) {
	var req ValidationReport
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return s.engine.ReportValidation(r.Context(), r.PathValue("id"), req.Status, req.Message)
}

// maxEventWait caps a long poll, below common proxy idle timeouts.
const maxEventWait = 55 * time.Second

func (s *Server) listEvents(r *http.Request) (any, error) {
	q := r.URL.Query()
	eq := vigil.EventQuery{JobID: q.Get("job_id"), Resource: q.Get("resource")}
	var err error
	if v := q.Get("since"); v != "" {
		if eq.AfterSeq, err = strconv.ParseInt(v, 10, 64); err != nil || eq.AfterSeq < 0 {
			return nil, badRequest("since %q must be an event sequence number", v)
		}
	}
	if eq.Limit, err = limit(q.Get("limit")); err != nil {
		return nil, err
	}
	if v := q.Get("wait"); v != "" {
		if eq.Wait, err = time.ParseDuration(v); err != nil || eq.Wait < 0 {
			return nil, badRequest("wait %q must be a duration such as 30s", v)
		}
		eq.Wait = min(eq.Wait, maxEventWait)
	}
	for _, t := range q["type"] {
		eq.Types = append(eq.Types, vigil.EventType(strings.ToUpper(t)))
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return s.engine.ListEvents(ctx, eq)
}
