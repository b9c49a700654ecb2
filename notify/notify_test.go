package notify_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

// testEvent is an event as the catalog would hand it over.
func testEvent() vigil.Event {
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

// sameEvent fails the test unless got and want encode to the same JSON,
// which is what a receiver sees.
func sameEvent(t *testing.T, got, want vigil.Event) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("event differs:\n got %s\nwant %s", g, w)
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	// openssl: printf hello | openssl dgst -sha256 -hmac key
	const want = "sha256=9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
	if got := notify.Sign("key", []byte("hello")); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"seq":1}`)
	good := notify.Sign("s3cret", body)
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"valid", "s3cret", body, good, true},
		{"valid with spaces", "s3cret", body, " " + good + " ", true},
		{"other body", "s3cret", []byte(`{"seq":2}`), good, false},
		{"other secret", "other", body, good, false},
		{"no prefix", "s3cret", body, good[len("sha256="):], false},
		{"other algorithm", "s3cret", body, "sha1=" + good[len("sha256="):], false},
		{"not hex", "s3cret", body, "sha256=zz", false},
		{"truncated", "s3cret", body, good[:len(good)-2], false},
		{"empty", "s3cret", body, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notify.Verify(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("Verify(%q, %s, %q) = %v, want %v", tt.secret, tt.body, tt.header, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	rule := config.RetryRule{Attempts: 8, Backoff: config.Duration(5 * time.Second), MaxBackoff: config.Duration(time.Minute)}
	tests := []struct {
		attempt int
		want    time.Duration // before jitter
	}{
		{0, 5 * time.Second},
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{3, 20 * time.Second},
		{4, 40 * time.Second},
		{5, time.Minute}, // 80s, capped
		{6, time.Minute},
		{200, time.Minute}, // no overflow on doubling
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempt), func(t *testing.T) {
			lo := tt.want - tt.want/10
			hi := min(tt.want+tt.want/10, time.Duration(rule.MaxBackoff))
			seen := map[time.Duration]bool{}
			for range 100 {
				got := notify.Backoff(rule, tt.attempt)
				if got < lo || got > hi {
					t.Fatalf("Backoff(attempt %d) = %s, want %s ±10%%, at most %s", tt.attempt, got, tt.want, time.Duration(rule.MaxBackoff))
				}
				seen[got] = true
			}
			if len(seen) < 2 {
				t.Errorf("Backoff(attempt %d) gave %d distinct waits in 100 calls: no jitter", tt.attempt, len(seen))
			}
		})
	}
}

func TestBackoffDefaults(t *testing.T) {
	t.Parallel()
	got := notify.Backoff(config.RetryRule{}, 1)
	if lo, hi := config.DefaultRetryBackoff*9/10, config.DefaultRetryBackoff*11/10; got < lo || got > hi {
		t.Errorf("Backoff(zero rule, 1) = %s, want about %s", got, config.DefaultRetryBackoff)
	}
	if got := notify.Backoff(config.RetryRule{}, 100); got > config.DefaultRetryMaxBackoff {
		t.Errorf("Backoff(zero rule, 100) = %s, above the default cap %s", got, config.DefaultRetryMaxBackoff)
	}
}

func TestSendWithoutChannel(t *testing.T) {
	t.Parallel()
	err := notify.Send(t.Context(), config.Notification{Name: "nothing"}, testEvent())
	if err == nil {
		t.Fatal("Send to a notification without channel succeeded")
	}
}
