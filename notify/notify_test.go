package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

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

// TestBackoffLongWaits: waits near the largest duration a config can hold
// never wrap around to a negative one, which would retry at once.
func TestBackoffLongWaits(t *testing.T) {
	t.Parallel()
	const year = 365 * 24 * time.Hour
	rule := config.RetryRule{Backoff: config.Duration(100 * year), MaxBackoff: config.Duration(290 * year)}
	for attempt := range 6 {
		for range 100 {
			if got := notify.Backoff(rule, attempt); got <= 0 || got > 290*year {
				t.Fatalf("Backoff(attempt %d) = %s, want between 0 and 290 years", attempt, got)
			}
		}
	}
}
