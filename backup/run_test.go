package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/backup"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/directory"
	"github.com/vigil-backup/vigil/resource/resourcetest"
	"github.com/vigil-backup/vigil/vault"
)

// journal is the Lab's journal, which also reads a backup job's log the
// moment its completion is committed: what anyone polling the job then
// sees.
type journal struct {
	*resourcetest.Lab
	queued      []string
	atCompleted []string
}

func (j *journal) QueueBackup(_ context.Context, _ *catalog.Tx, id string) error {
	j.queued = append(j.queued, id)
	return nil
}

func (j *journal) QueueCopy(_ context.Context, _ *catalog.Tx, id string) error { return nil }

func (j *journal) Record(ctx context.Context, update func(context.Context, *catalog.Tx) error, events ...vigil.Event) error {
	err := j.Lab.Record(ctx, update, events...)
	for _, ev := range events {
		if ev.Type == vigil.EventBackupJobCompleted && err == nil {
			lines, lerr := j.Catalog.Logs(ctx, ev.JobID)
			if lerr != nil {
				return lerr
			}
			for _, l := range lines {
				j.atCompleted = append(j.atCompleted, l.Message)
			}
		}
	}
	return err
}

func (j *journal) Vault(_ context.Context, name string) (*vault.Vault, error) {
	return j.Lab.Vault, nil
}

func (j *journal) Open(cfg config.Resource) (resource.Resource, error) {
	return j.Lab.Open(cfg.Name), nil
}

// TestCompletedBackupHasItsLog: once a backup job is COMPLETED, its log
// already says what it skipped and that it completed, so a person (or
// `backup start --wait` followed by `logs`) never reads a completed job
// whose log stops short.
func TestCompletedBackupHasItsLog(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "docs")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "readme.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		DataDir:   filepath.Join(dir, "data"),
		Vaults:    []config.Vault{{Name: resourcetest.VaultName}},
		Resources: []config.Resource{{Name: "docs", Type: "directory", Path: src}},
	}
	lab := resourcetest.NewLab(t, cfg, directory.Type{})
	j := &journal{Lab: lab}
	r, err := backup.New(backup.Options{Config: cfg, Catalog: lab.Catalog, Journal: j, Vaults: j, Resources: j, Tests: lab.Tester})
	if err != nil {
		t.Fatal(err)
	}
	job, err := r.Start(t.Context(), vigil.BackupRequest{Resource: "docs", Vault: resourcetest.VaultName})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	log := strings.Join(j.atCompleted, "\n")
	for _, want := range []string{"skipped 1", "completed in "} {
		if !strings.Contains(log, want) {
			t.Errorf("when the job was committed COMPLETED its log did not say %q yet:\n%s", want, log)
		}
	}
}
