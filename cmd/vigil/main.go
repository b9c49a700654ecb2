// Command vigil is the backup service whose every backup is proven
// restorable: `vigil serve` runs it, every other command is its client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-backup/vigil/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
