package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/vigil-backup/vigil"
)

// Client calls a vigil server's API.
type Client struct {
	// BaseURL is the server, such as http://127.0.0.1:8420.
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// ResponseError is an error the server answered with. Its message already
// says what to do next.
type ResponseError struct {
	Status  int
	Message string
	// Unknown is the name the server does not know, in a 404 that says
	// so.
	Unknown *UnknownName
}

func (e *ResponseError) Error() string { return e.Message }

// UnreachableError means no answer came from the server at all.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the vigil server at %s: %v: is 'vigil serve' running? (set --server or VIGIL_SERVER)", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	base := strings.TrimRight(c.BaseURL, "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{URL: base, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

// Health reports whether the server answers.
func (c *Client) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/healthz", nil)
	if err != nil {
		return err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &UnreachableError{URL: c.BaseURL, Err: err}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &ResponseError{Status: resp.StatusCode, Message: "health check answered " + resp.Status}
	}
	return nil
}

func (c *Client) Resources(ctx context.Context) (out []Resource, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/resources", nil, &out)
}

func (c *Client) Vaults(ctx context.Context) (out []Vault, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/vaults", nil, &out)
}

// Workers lists the processes that run jobs; see GET /api/v1/workers.
func (c *Client) Workers(ctx context.Context) (out []Worker, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/workers", nil, &out)
}

// RepairVault repairs a damaged vault; see POST /api/v1/vaults/{name}/repair.
func (c *Client) RepairVault(ctx context.Context, name string) (out RepairResult, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/vaults/"+url.PathEscape(name)+"/repair", struct{}{}, &out)
}

// SyncVault is POST /api/v1/vaults/{name}/sync.
func (c *Client) SyncVault(ctx context.Context, name string) (out vigil.VaultSync, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/vaults/"+url.PathEscape(name)+"/sync", struct{}{}, &out)
}

// VaultCoverage is GET /api/v1/vaults/{name}/coverage.
func (c *Client) VaultCoverage(ctx context.Context, name string) (out vigil.VaultCoverage, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/vaults/"+url.PathEscape(name)+"/coverage", nil, &out)
}

func (c *Client) VerifyVault(ctx context.Context, name string, req VerifyRequest) (out VerifyResult, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/vaults/"+url.PathEscape(name)+"/verify", req, &out)
}

func (c *Client) StartBackup(ctx context.Context, req StartBackupRequest) (out vigil.BackupJob, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/backup-jobs", req, &out)
}

func (c *Client) BackupJob(ctx context.Context, id string) (out vigil.BackupJob, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/backup-jobs/"+url.PathEscape(id), nil, &out)
}

func (c *Client) BackupJobs(ctx context.Context, q url.Values) (out []vigil.BackupJob, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/backup-jobs?"+q.Encode(), nil, &out)
}

func (c *Client) StartCopy(ctx context.Context, req StartCopyRequest) (out vigil.CopyJob, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/copy-jobs", req, &out)
}

func (c *Client) CopyJob(ctx context.Context, id string) (out vigil.CopyJob, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/copy-jobs/"+url.PathEscape(id), nil, &out)
}

func (c *Client) CopyJobs(ctx context.Context, q url.Values) (out []vigil.CopyJob, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/copy-jobs?"+q.Encode(), nil, &out)
}

func (c *Client) StartRestore(ctx context.Context, req StartRestoreRequest) (out vigil.RestoreJob, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/restore-jobs", req, &out)
}

func (c *Client) RestoreJob(ctx context.Context, id string) (out vigil.RestoreJob, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/restore-jobs/"+url.PathEscape(id), nil, &out)
}

func (c *Client) RestoreJobs(ctx context.Context, q url.Values) (out []vigil.RestoreJob, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/restore-jobs?"+q.Encode(), nil, &out)
}

func (c *Client) RecoveryPoints(ctx context.Context, q url.Values) (out []vigil.RecoveryPoint, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/recovery-points?"+q.Encode(), nil, &out)
}

// RetentionPreview returns what backup plan plan's retention rules keep
// and what the lifecycle job's next pass removes.
func (c *Client) RetentionPreview(ctx context.Context, plan string) (out vigil.RetentionPreview, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/backup-plans/"+url.PathEscape(plan)+"/retention", nil, &out)
}

func (c *Client) RecoveryPoint(ctx context.Context, id string) (out vigil.RecoveryPoint, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/recovery-points/"+url.PathEscape(id), nil, &out)
}

func (c *Client) RestoreMetadata(ctx context.Context, id string) (out map[string]string, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/recovery-points/"+url.PathEscape(id)+"/restore-metadata", nil, &out)
}

func (c *Client) Logs(ctx context.Context, jobID string) (out []vigil.LogLine, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(jobID)+"/logs", nil, &out)
}

func (c *Client) StartRestoreTest(ctx context.Context, req StartRestoreTestRequest) (out vigil.RestoreJob, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/restore-tests", req, &out)
}

func (c *Client) ReportValidation(ctx context.Context, id string, req ValidationReport) (out vigil.RestoreJob, err error) {
	return out, c.do(ctx, http.MethodPut, "/api/v1/restore-jobs/"+url.PathEscape(id)+"/validation", req, &out)
}

// CancelJob asks to cancel job id, with an optional reason.
func (c *Client) CancelJob(ctx context.Context, id, reason string) (out CancelResponse, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", CancelRequest{Reason: reason}, &out)
}

// Events returns events after the seq in q's "since" (the newest ones
// without it), with their deliveries; "wait" long-polls.
func (c *Client) Events(ctx context.Context, q url.Values) (out EventPage, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/events?"+q.Encode(), nil, &out)
}

// Files lists a folder of a recovery point (its root for path ""); see
// GET /api/v1/recovery-points/{id}/files.
func (c *Client) Files(ctx context.Context, id, path string, recursive bool) (out FileListing, err error) {
	q := url.Values{"path": {path}}
	if recursive {
		q.Set("recursive", "true")
	}
	return out, c.do(ctx, http.MethodGet, "/api/v1/recovery-points/"+url.PathEscape(id)+"/files?"+q.Encode(), nil, &out)
}

// FileContent copies one file of a recovery point into w as it arrives,
// and returns how many bytes it wrote; a body shorter than the server
// announced is an error.
func (c *Client) FileContent(ctx context.Context, id, path string, w io.Writer) (int64, error) {
	q := url.Values{"path": {path}}
	resp, err := c.stream(ctx, "/api/v1/recovery-points/"+url.PathEscape(id)+"/files/content?"+q.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("read %s of recovery point %s from the server after %d bytes: %w", path, id, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("read %s of recovery point %s: the server sent %d of %d bytes", path, id, n, resp.ContentLength)
	}
	return n, nil
}

// DiffRecoveryPoints lists what changed from recovery point a to b; see
// GET /api/v1/recovery-points/{id}/diff.
func (c *Client) DiffRecoveryPoints(ctx context.Context, a, b string) (out RecoveryPointDiff, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/recovery-points/"+url.PathEscape(a)+"/diff?"+url.Values{"to": {b}}.Encode(), nil, &out)
}

// stream sends a GET whose successful answer is not JSON, and returns the
// response for the caller to read and close; an error answer is read as
// do reads it.
func (c *Client) stream(ctx context.Context, path string) (*http.Response, error) {
	base := strings.TrimRight(c.BaseURL, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{URL: base, Err: err}
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// responseError is the error an answer of status 300 or more carries.
func responseError(resp *http.Response) error {
	var e Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		e.Message = fmt.Sprintf("server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return &ResponseError{Status: resp.StatusCode, Message: e.Message, Unknown: e.Unknown}
}

// Reload makes the server read its config file again; see POST
// /api/v1/reload.
func (c *Client) Reload(ctx context.Context) (out vigil.Reload, err error) {
	return out, c.do(ctx, http.MethodPost, "/api/v1/reload", nil, &out)
}

// Plans lists the backup and restore testing plans; see GET /api/v1/plans.
func (c *Client) Plans(ctx context.Context) (out []vigil.Plan, err error) {
	return out, c.do(ctx, http.MethodGet, "/api/v1/plans", nil, &out)
}

// PausePlan pauses a plan (kind "" when its name is unambiguous), or
// resumes it when pause is false; by says who.
func (c *Client) PausePlan(ctx context.Context, name string, kind vigil.PlanKind, by string, pause bool) (out vigil.Plan, err error) {
	action := "resume"
	if pause {
		action = "pause"
	}
	q := url.Values{}
	if kind != "" {
		q.Set("kind", string(kind))
	}
	if by != "" {
		q.Set("by", by)
	}
	path := "/api/v1/plans/" + url.PathEscape(name) + "/" + action
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return out, c.do(ctx, http.MethodPost, path, nil, &out)
}
