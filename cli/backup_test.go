package cli

import (
	"strings"
	"testing"
	"time"
)

// TestBackupExpiry: --expire-days and --expire-after are range-checked
// before the days are multiplied into a duration; before, a negative
// --expire-after was refused but 292 years of it was not, and the days'
// bound was a separate copy of the API's.
func TestBackupExpiry(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts backupStartOptions
		want time.Duration
		err  string
	}{
		{"none", backupStartOptions{}, 0, ""},
		{"days", backupStartOptions{ExpireDays: 35}, 35 * 24 * time.Hour, ""},
		{"100 years of days", backupStartOptions{ExpireDays: 36500}, 36500 * 24 * time.Hour, ""},
		{"duration", backupStartOptions{ExpireAfter: 36 * time.Hour}, 36 * time.Hour, ""},
		{"negative days", backupStartOptions{ExpireDays: -1}, 0, "--expire-days -1 is out of range"},
		{"days that wrap around", backupStartOptions{ExpireDays: 106752}, 0, "--expire-days 106752 is out of range: give a whole number from 0 to 36500"},
		{"negative duration", backupStartOptions{ExpireAfter: -time.Hour}, 0, "--expire-after -1h0m0s is out of range"},
		{"duration beyond 100 years", backupStartOptions{ExpireAfter: 1 << 62}, 0, "--expire-after 1281023h53m38.427387904s is out of range"},
		{"shorter than a second", backupStartOptions{ExpireAfter: time.Millisecond}, 0, "--expire-after 1ms is out of range"},
		{"both", backupStartOptions{ExpireDays: 1, ExpireAfter: time.Hour}, 0, "not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := backupExpiry(tt.opts)
			if tt.err == "" && (err != nil || got != tt.want) {
				t.Fatalf("backupExpiry = %s, %v; want %s", got, err, tt.want)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("backupExpiry = %s, %v; want an error saying %q", got, err, tt.err)
			}
		})
	}
}
