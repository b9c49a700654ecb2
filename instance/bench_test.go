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
// network; and what limits add on top (their cgroup files, and on hybrid
// hosts the v1 cgroups the app joins).
func BenchmarkIsolation(b *testing.B) {
	for _, v := range []struct {
		name      string
		isolation config.Isolation
		limits    config.Limits
	}{
		{config.NetworkHost, config.Isolation{Network: config.NetworkHost}, config.Limits{}},
		{config.NetworkNone, config.Isolation{Network: config.NetworkNone}, config.Limits{}},
		{"none+limits", config.Isolation{Network: config.NetworkNone}, config.Limits{Memory: 256 << 20, PIDs: 64}},
	} {
		res := config.Resource{Name: "app", Type: "app", Run: []string{"sh", "-c", "echo up; exec sleep 60"}, Isolation: v.isolation, Limits: v.limits}
		for _, step := range []string{"start", "remove"} {
			b.Run(v.name+"/"+step, func(b *testing.B) {
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
