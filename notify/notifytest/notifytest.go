// Package notifytest holds what the tests of every channel under notify/
// share: the event they deliver and the checks on what arrives and on the
// errors, so that each channel is held to the same event and the same
// rules.
package notifytest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// Event is an event as the catalog would hand it over.
func Event() vigil.Event {
	return vigil.Event{
		Seq:             42,
		Type:            vigil.EventBackupJobCompleted,
		Time:            time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
		Resource:        "postgres-main",
		JobID:           "bj-3f9a0c2d51e84b7a",
		RecoveryPointID: "rp-0011223344556677",
		Subject:         "Backup of postgres-main completed",
		Message:         "The backup of postgres-main completed: 1.2 GiB in 312 files.\nRecovery point rp-0011223344556677 is AVAILABLE.",
		Data:            json.RawMessage(`{"id":"bj-3f9a0c2d51e84b7a","status":"COMPLETED"}`),
	}
}

// SameEvent fails the test unless got and want encode to the same JSON,
// which is what a receiver sees.
func SameEvent(t testing.TB, got, want vigil.Event) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("event differs:\n got %s\nwant %s", g, w)
	}
}

// NoSecret fails the test when err's text holds one of secrets.
func NoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error holds the secret %q: %v", s, err)
		}
	}
}
