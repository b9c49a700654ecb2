// Command vigil is the backup service whose every backup is proven
// restorable: `vigil serve` runs it, every other command is its client.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/vigil-backup/vigil/cli"
)

// gcPercent is the garbage collector's target unless GOGC says otherwise.
// A backup's heap is mostly byte buffers: collecting when it has grown by
// half rather than doubled keeps the server's peak memory near restic's
// (which sets the same) for no measurable CPU, as the buffers hold no
// pointers to scan (bench/README.md, "Memory").
const gcPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
