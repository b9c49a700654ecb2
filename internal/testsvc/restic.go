package testsvc

import "testing"

// Restic returns the path of the restic program the foreign-vault tests
// make repositories with and read them through: on PATH, else where `go
// install` puts it (.ci/run installs restic 0.18.1 there).
func Restic(t testing.TB) string {
	t.Helper()
	bin, err := binary("restic")
	if err != nil {
		t.Fatalf("restic is needed to make and read restic repositories (%v): "+
			"go install github.com/restic/restic/cmd/restic@v0.18.1", err)
	}
	return bin
}
