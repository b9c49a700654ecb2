// Package testpause reads the pauses that tests, and only tests, set in
// vigil's environment to hold a job at a named step, so that they can
// kill vigil there rather than at a random moment.
package testpause

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Steps says how long to pause before each step it names.
type Steps map[string]time.Duration

// Read reads environment variable env, such as "restore=2s,cleanup=1s",
// whose steps must be among steps. A bad value is refused, so that a test
// notices; an unset one pauses nowhere.
func Read(env string, steps ...string) (Steps, error) {
	v := os.Getenv(env)
	if v == "" {
		return nil, nil
	}
	out := Steps{}
	for _, part := range strings.Split(v, ",") {
		step, d, ok := strings.Cut(part, "=")
		dur, err := time.ParseDuration(d)
		switch {
		case !ok || err != nil:
			return nil, fmt.Errorf("%s=%q: write it like %s=2s", env, v, steps[0])
		case !slices.Contains(steps, step):
			return nil, fmt.Errorf("%s: unknown step %q (one of %s)", env, step, strings.Join(steps, ", "))
		}
		out[step] = dur
	}
	return out, nil
}

// At pauses before step, if s names it, until its time is up or ctx ends;
// log is told first. It returns how long it paused.
func (s Steps) At(ctx context.Context, step string, log func(d time.Duration)) time.Duration {
	d, ok := s[step]
	if !ok {
		return 0
	}
	log(d)
	begin := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return time.Since(begin)
}
