// Package units writes sizes, counts and durations for people, the same way
// in the CLI, the console and job logs.
package units

import (
	"fmt"
	"time"
)

// Bytes writes n bytes for people: 512 B, 3.4 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Plural writes n things: "1 table", "4 tables".
func Plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// Duration writes d to the millisecond: "1.234s", "12ms".
func Duration(d time.Duration) string { return d.Round(time.Millisecond).String() }
