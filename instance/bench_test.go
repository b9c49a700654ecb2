package instance

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// BenchmarkIsolation measures what isolation adds to a copy's start (to
// the app's first line of output: namespaces, loopback and the private
// mounts included) and to its removal, against a copy in the host's
// network.
func BenchmarkIsolation(b *testing.B) {
	for _, network := range []string{config.NetworkHost, config.NetworkNone} {
		res := config.Resource{Name: "app", Type: "app", Run: []string{"sh", "-c", "echo up; exec sleep 60"}, Isolation: config.Isolation{Network: network}}
		for _, step := range []string{"start", "remove"} {
			b.Run(network+"/"+step, func(b *testing.B) {
				parent := b.TempDir()
				b.StopTimer()
				for n := range b.N {
					i, err := Create(parent, fmt.Sprintf("rj-bench-%d", n))
					if err != nil {
						b.Fatal(err)
					}
					up := make(chan struct{}, 1)
					if step == "start" {
						b.StartTimer()
					}
					if _, err := i.Start(res, func(line string) {
						if line == "app: up" {
							up <- struct{}{}
						}
					}); err != nil {
						b.Fatal(err)
					}
					select {
					case <-up:
					case <-time.After(10 * time.Second):
						b.Fatal("the app never said it was up")
					}
					if step == "start" {
						b.StopTimer()
					} else {
						b.StartTimer()
					}
					if err := i.Remove(time.Second); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
				}
				b.StartTimer()
			})
		}
	}
}
