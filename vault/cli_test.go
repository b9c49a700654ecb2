package vault

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.RemoveKopia()
	os.Exit(code)
}

// stockKopia is the stock kopia CLI, built from the kopia module vigil
// links.
func stockKopia(t *testing.T) string { return testsvc.Kopia(t) }

// kopiaCLI runs the stock CLI against a private config, cache and log folder.
type kopiaCLI struct {
	t      *testing.T
	binary string
	home   string
}

func (k *kopiaCLI) run(args ...string) []byte {
	k.t.Helper()

	all := append([]string{
		"--config-file", filepath.Join(k.home, "repository.config"),
		"--log-dir", filepath.Join(k.home, "logs"),
	}, args...)

	cmd := exec.Command(k.binary, all...)
	cmd.Env = append(os.Environ(),
		"HOME="+k.home,
		"KOPIA_CHECK_FOR_UPDATES=false",
		"KOPIA_PASSWORD="+testPassword,
	)

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		k.t.Fatalf("kopia %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}

	return out
}

// cliSnapshot is the part of `kopia snapshot list --json` output checked here.
type cliSnapshot struct {
	ID     string `json:"id"`
	Source struct {
		Host     string `json:"host"`
		UserName string `json:"userName"`
		Path     string `json:"path"`
	} `json:"source"`
	Tags map[string]string `json:"tags"`
}

func TestStockKopiaCLIReadsAndWritesVault(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := filepath.Join(t.TempDir(), "src")
	makeTree(t, source)

	res, err := b.vault.Backup(t.Context(), source, BackupOptions{
		Resource: "files",
		Tags:     map[string]string{"vigil:recovery-point": "rp-42"},
	})
	must(t, err)

	k := &kopiaCLI{t: t, binary: stockKopia(t), home: t.TempDir()}

	k.run("repository", "connect", "filesystem", "--path", b.cfg.Storage, "--cache-directory", filepath.Join(k.home, "cache"))

	var listed []cliSnapshot
	must(t, json.Unmarshal(k.run("snapshot", "list", "--all", "--json"), &listed))

	if len(listed) != 1 {
		t.Fatalf("stock CLI lists %d snapshots, want 1: %+v", len(listed), listed)
	}

	s := listed[0]
	if s.ID != res.SnapshotID || s.Source.Host != "vigil" || s.Source.UserName != "files" || s.Source.Path != source || s.Tags["tag:vigil:recovery-point"] != "rp-42" {
		t.Errorf("stock CLI sees %+v, want snapshot %s of files@vigil:%s tagged rp-42", s, res.SnapshotID, source)
	}

	target := filepath.Join(t.TempDir(), "restored")
	k.run("snapshot", "restore", res.SnapshotID, target)
	compareTreesExcept(t, source, target, true)

	k.run("snapshot", "verify", "--verify-files-percent=100")

	var pol struct {
		Compression struct {
			CompressorName string `json:"compressorName"`
		} `json:"compression"`
	}
	must(t, json.Unmarshal(k.run("policy", "show", "--global", "--json"), &pol))

	if pol.Compression.CompressorName != defaultCompressor {
		t.Errorf("stock CLI sees compressor %q, want %q", pol.Compression.CompressorName, defaultCompressor)
	}

	// and the other way: a snapshot the stock CLI writes is a vigil snapshot
	other := filepath.Join(t.TempDir(), "other")
	makeTree(t, other)
	k.run("snapshot", "create", other, "--tags", "origin:cli")

	var cliSnap Snapshot

	for _, s := range b.snapshots(t) {
		if s.Source == other {
			cliSnap = s
		}
	}

	if cliSnap.ID == "" || cliSnap.Tags["origin"] != "cli" {
		t.Fatalf("vigil does not list the CLI's snapshot of %s with its tag: %+v", other, b.snapshots(t))
	}

	target2 := filepath.Join(t.TempDir(), "restored-cli")
	if _, err := b.vault.Restore(t.Context(), cliSnap.ID, target2, nil); err != nil {
		t.Fatalf("restore the CLI's snapshot: %v", err)
	}

	compareTrees(t, other, target2)

	if vres, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify after the CLI wrote: %v (%+v)", err, vres)
	}
}
