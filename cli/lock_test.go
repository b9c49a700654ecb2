package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdLock takes dir's lock as another process would (flock locks belong
// to an open file, so a second open in this process competes like one).
func holdLock(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLockWaitsForAKilledVigil: a vigil started right after another was
// killed gets the data dir once the old one's last process lets go,
// rather than refusing at once; one that stays is still refused.
func TestLockWaitsForAKilledVigil(t *testing.T) {
	defer func(d time.Duration) { lockWait = d }(lockWait)
	lockWait = 5 * time.Second
	dir := t.TempDir()
	old := holdLock(t, dir)
	time.AfterFunc(200*time.Millisecond, func() { old.Close() })
	f, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("the lock was let go of 200ms later, yet: %v", err)
	}
	f.Close()

	lockWait = 100 * time.Millisecond
	other := holdLock(t, dir)
	defer other.Close()
	_, err = lockDataDir(dir)
	var exit *ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "is in use by another vigil serve") {
		t.Errorf("a lock held throughout: %v, want the refusal saying the data dir is in use", err)
	}
}
