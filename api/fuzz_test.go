package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"testing"

	"github.com/vigil-backup/vigil"
)

// fuzzRoutes are the API's routes that take a request body; id fills
// the {id} or {name} of their path.
var fuzzRoutes = []struct {
	method, path string
	withID       bool
}{
	{http.MethodPost, "/api/v1/backup-jobs", false},
	{http.MethodPost, "/api/v1/restore-jobs", false},
	{http.MethodPost, "/api/v1/restore-tests", false},
	{http.MethodPut, "/api/v1/restore-jobs/%s/validation", true},
	{http.MethodPost, "/api/v1/vaults/%s/verify", true},
	{http.MethodPost, "/api/v1/copy-jobs", false},
}

// FuzzAPIRequestBodies sends any body to every route that decodes one,
// through the real handlers over a real catalog and engine: no input may
// panic or get a 500, and every answer is JSON.
func FuzzAPIRequestBodies(f *testing.F) {
	s := newTestServer(f)
	rp := vigil.RecoveryPoint{ID: "rp-fuzz", Vault: "v", Resource: "docs", ResourceType: "directory", Status: vigil.RecoveryPointAvailable, SnapshotID: "k0"}
	if err := s.catalog.InsertRecoveryPoint(context.Background(), &rp); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		route uint8
		id    string
		body  string
	}{
		{0, "", `{"resource": "docs", "vault": "v"}`},
		{0, "", `{"resource": "docs", "vault": "v", "expire_after_seconds": 3600}`},
		{0, "", `{"resource": "docs", "vault": "v", "expire_after_seconds": -18446744073}`},
		{0, "", `{"resource": "docs", "VAULT": "v"} {}`},
		{1, "", `{"recovery_point_id": "rp-fuzz", "metadata": {"target_path": "/tmp/vigil-fuzz-restore/{restore_job_id}"}}`},
		{1, "", `{"recovery_point_id": "rp-fuzz", "metadata": {"target_path": "relative"}}`},
		{1, "", `null`},
		{2, "", `{"resource": "docs", "recovery_point_id": "rp-fuzz", "plan": ""}`},
		{2, "", `{"resource": "docs", "plan": "no-such-plan"}`},
		{3, "rj-1", `{"status": "SUCCESSFUL", "message": "\u001b[31mok"}`},
		{4, "v", `{"read_data_percent": 10}`},
		{4, "v", `{"read_data_percent": 1e400}`},
		{4, "nope", `{"read_data_percent": -1}`},
		{5, "", `{"recovery_point_id": "rp-fuzz", "vault": "v"}`},
		{5, "", `{"recovery_point_id": "rp-fuzz", "vault": "w", "expire_after_seconds": 99999999999}`},
	} {
		f.Add(seed.route, seed.id, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, id string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		target := rt.path
		if rt.withID {
			if id == "" {
				return // another route: the mux answers 404 or 405
			}
			target = fmt.Sprintf(rt.path, url.PathEscape(id))
			if path.Clean(target) != target {
				return // "." or "..": the mux redirects to the clean path
			}
		}
		code, answer := call(s, rt.method, target, string(body))
		if code == http.StatusInternalServerError {
			t.Fatalf("%s %s %q: 500 %s", rt.method, target, body, answer)
		}
		switch code {
		case http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
		default:
			t.Fatalf("%s %s %q: unexpected %d %s", rt.method, target, body, code, answer)
		}
		if !json.Valid([]byte(answer)) {
			t.Fatalf("%s %s %q: %d with a body that is not JSON: %s", rt.method, target, body, code, answer)
		}
		if code >= 400 {
			var e Error
			if json.Unmarshal([]byte(answer), &e); e.Message == "" {
				t.Fatalf("%s %s %q: %d without a message: %s", rt.method, target, body, code, answer)
			}
		}
	})
}
