package testpause

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	t.Setenv("VIGIL_TEST_X", "")
	if s, err := Read("VIGIL_TEST_X", "a", "b"); s != nil || err != nil {
		t.Errorf("unset: %v, %v; want no pauses", s, err)
	}
	t.Setenv("VIGIL_TEST_X", "a=2s,b=5ms")
	s, err := Read("VIGIL_TEST_X", "a", "b")
	if err != nil || s["a"] != 2*time.Second || s["b"] != 5*time.Millisecond {
		t.Errorf("a=2s,b=5ms: %v, %v", s, err)
	}
	for v, want := range map[string]string{"a": `write it like a=2s`, "a=soon": `write it like a=2s`, "c=1s": `unknown step "c" (one of a, b)`} {
		t.Setenv("VIGIL_TEST_X", v)
		if _, err := Read("VIGIL_TEST_X", "a", "b"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", v, err, want)
		}
	}
}

func TestAtEndsWithItsContext(t *testing.T) {
	s := Steps{"a": time.Hour}
	var logged time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := s.At(ctx, "a", func(d time.Duration) { logged = d }); d >= time.Hour || logged != time.Hour {
		t.Errorf("paused %s (logged %s); want a cancelled context to end an hour's pause at once, after saying so", d, logged)
	}
	if d := s.At(ctx, "b", func(time.Duration) { t.Error("logged a step that has no pause") }); d != 0 {
		t.Errorf("paused %s at a step with no pause", d)
	}
}
