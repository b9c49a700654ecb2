package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/treediff"
)

type demoOptions struct {
	Dir  string
	Keep bool
}

func newDemoCommand(g *globalOptions) *cobra.Command {
	var opts demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run vigil end to end on a sample folder, in a temporary data dir",
		Long: `Run vigil end to end, needing nothing but this binary: make a temporary data
dir, a vault and a sample folder, serve, back the folder up with a 1-day
expiry, restore it into a new folder, compare every file, mode, time and
symlink, back up again unchanged, and verify the vault. Prints a timeline
with each step's duration, and exits 0 only when every step behaved.

With --keep the server keeps running afterwards so you can look around with
the printed commands; stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "work in this folder instead of a new temporary one (kept afterwards)")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "leave the server running afterwards")
	return cmd
}

func runDemo(ctx context.Context, g *globalOptions, opts demoOptions) error {
	out := g.stdout
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return fmt.Errorf("create demo folder: %w", err)
		}
		dir = d
		if !opts.Keep {
			defer os.RemoveAll(dir)
		}
	}
	cfgPath, err := writeDemoSetup(dir)
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.LoadPasswords(); err != nil {
		return err
	}
	fmt.Fprintf(out, "vigil demo in %s\n", dir)

	start := time.Now()
	step := func(name string, began time.Time, detail string) {
		fmt.Fprintf(out, "  %7.3fs  %-34s %8s  %s\n", time.Since(start).Seconds(), name,
			time.Since(began).Round(time.Millisecond), detail)
	}
	t := time.Now()
	srv, err := startServer(ctx, cfg, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop(context.Background())
		}
	}()
	step("serve", t, srv.URL)
	c := &api.Client{BaseURL: srv.URL, Token: srv.Token}
	source := filepath.Join(dir, "sample")

	t = time.Now()
	job, err := demoBackup(ctx, c)
	if err != nil {
		return err
	}
	step("backup (expires in 1 day)", t, fmt.Sprintf("%s → recovery point %s, %d files, %s", job.ID, job.RecoveryPointID, job.Files, formatBytes(job.Bytes)))

	t = time.Now()
	rj, err := c.StartRestore(ctx, api.StartRestoreRequest{RecoveryPointID: job.RecoveryPointID})
	if err != nil {
		return err
	}
	if rj, err = waitRestore(ctx, c, rj.ID); err != nil {
		return err
	}
	if err := jobEnded("restore", rj.ID, string(rj.Status), rj.StatusMessage); err != nil {
		return err
	}
	step("restore into a new folder", t, fmt.Sprintf("%s → %s", rj.ID, rj.CreatedResourceLocation))

	t = time.Now()
	diffs, err := treediff.Compare(source, rj.CreatedResourceLocation, treediff.Options{ModTimes: true})
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		for _, d := range diffs {
			fmt.Fprintf(out, "    differs: %s\n", d)
		}
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("the restored folder differs from the original in %d places", len(diffs))}
	}
	step("compare files, modes, times, links", t, "identical")

	t = time.Now()
	job2, err := demoBackup(ctx, c)
	if err != nil {
		return err
	}
	step("backup again, unchanged", t, fmt.Sprintf("%s → recovery point %s", job2.ID, job2.RecoveryPointID))

	t = time.Now()
	res, err := c.VerifyVault(ctx, "demo-vault", api.VerifyRequest{ReadDataPercent: 100})
	if err != nil {
		return err
	}
	if !res.OK {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("vault verify found damage: %v", res.Errors)}
	}
	step("verify vault, reading all data", t, fmt.Sprintf("%d recovery points intact", res.Snapshots))
	fmt.Fprintf(out, "demo passed: the backup restored to an identical copy in %s\n", time.Since(start).Round(time.Millisecond))

	if !opts.Keep {
		stopped = true
		return srv.Stop(context.Background())
	}
	fmt.Fprintf(out, `
The server keeps running at %s (Ctrl-C stops it). In another shell:
  export VIGIL_CONFIG=%s VIGIL_SERVER=%s
  vigil jobs list
  vigil recovery-points list
  vigil logs %s
`, srv.URL, cfgPath, srv.URL, job.ID)
	<-ctx.Done()
	stopped = true
	return srv.Stop(context.Background())
}

// demoBackup backs the sample up, with a 1-day expiry, and waits for it.
func demoBackup(ctx context.Context, c *api.Client) (vigil.BackupJob, error) {
	job, err := c.StartBackup(ctx, api.StartBackupRequest{Resource: "sample", Vault: "demo-vault", ExpireAfterSeconds: 24 * 3600})
	if err != nil {
		return job, err
	}
	if job, err = waitBackup(ctx, c, job.ID); err != nil {
		return job, err
	}
	return job, jobEnded("backup", job.ID, string(job.Status), job.StatusMessage)
}

// writeDemoSetup writes a sample folder, a vault password file and a config
// into dir, and returns the config's path.
func writeDemoSetup(dir string) (string, error) {
	sample := filepath.Join(dir, "sample")
	files := map[string]string{
		"README.txt":              "Sample data backed up by the vigil demo.\n",
		"site/index.html":         "<h1>Welcome</h1>\n",
		"site/css/style.css":      "body { font-family: sans-serif; }\n",
		"data/customers.csv":      "id,name\n1,Ada\n2,Grace\n",
		"bin/report.sh":           "#!/bin/sh\necho report\n",
		"data/archive/2025-q4.md": "# Quarter report\n",
	}
	for name, body := range files {
		p := filepath.Join(sample, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("write demo data: %w", err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return "", fmt.Errorf("write demo data: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(sample, "bin/report.sh"), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink("site/index.html", filepath.Join(sample, "index.html")); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("write demo data: %w", err)
	}
	var pw [16]byte
	rand.Read(pw[:])
	if err := os.WriteFile(filepath.Join(dir, "vault-password"), []byte(hex.EncodeToString(pw[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo vault password: %w", err)
	}
	cfgPath := filepath.Join(dir, "vigil.yaml")
	cfg := `# Written by 'vigil demo'.
server:
  listen: 127.0.0.1:0          # any free port
data_dir: ./vigil-data
vaults:
  - name: demo-vault
    storage: ./vaults/demo-vault
    password_file: ./vault-password
resources:
  - name: sample
    type: directory
    path: ./sample
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write demo config: %w", err)
	}
	return cfgPath, nil
}
