package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/notify/webhook"
	"github.com/vigil-backup/vigil/sampleapp"
	"github.com/vigil-backup/vigil/worker"
)

type demoOptions struct {
	Dir  string
	Keep bool
}

func newDemoCommand(g *globalOptions) *cobra.Command {
	var opts demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the restore-test loop end to end on a sample web app, in a temporary data dir",
		Long: `Run vigil's restore-test loop end to end, needing nothing but this binary.

It makes a temporary data dir, a vault, and a small sample web app (served by
this binary; it answers 200 only while its critical file index.html is there),
and serves with a restore testing plan that tests every new backup. Then:

  1. an on-demand backup of the app, expiring in 1 day;
  2. the restore test starts by itself: the backup is restored into a new
     folder, a new copy of the app is started on a free port, GET / must answer
     200 with "Welcome", the copy is stopped and deleted, and a signed webhook
     notification reports the verdict;
  3. the app's critical file is removed and the app backed up again: the
     restore test of that backup FAILS, says why, and is still cleaned up.

It prints a timeline with each step's duration, and exits 0 only when the loop
behaved like that. With --keep the server keeps running afterwards so you can
look around with the printed commands; stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "work in this folder instead of a new temporary one (kept afterwards)")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "leave the server running afterwards")
	return cmd
}

// demoValidationWindow is short so that the failing test ends quickly.
const demoValidationWindow = 3 * time.Second

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
	hook, err := startDemoHook()
	if err != nil {
		return err
	}
	defer hook.Close()
	cfgPath, err := writeDemoSetup(dir, hook)
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
	if err := cfg.LookupTools(); err != nil {
		return err
	}
	fmt.Fprintf(out, "vigil demo in %s\n", dir)

	start := time.Now()
	line := func(at time.Time, name string, took time.Duration, detail string) {
		fmt.Fprintf(out, "  %7.3fs  %-34s %8s  %s\n", at.Sub(start).Seconds(), name, took.Round(time.Millisecond), printable(detail))
	}
	t := time.Now()
	srv, err := startServer(ctx, cfg, worker.Options{Workers: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop(context.Background())
		}
	}()
	line(time.Now(), "serve", time.Since(t), srv.URL)
	c := &api.Client{BaseURL: srv.URL, Token: srv.Token}

	fmt.Fprintln(out, "\n1-2. back up the web app; the restore test runs by itself")
	good, err := demoLoop(ctx, c, hook, line)
	if err != nil {
		return err
	}
	if good.ValidationStatus != vigil.ValidationSuccessful || good.DeletionStatus != vigil.DeletionSuccessful {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("the restore test of the intact app ended %s / deletion %s: %s", good.ValidationStatus, good.DeletionStatus, good.ValidationMessage)}
	}

	fmt.Fprintf(out, "\n3. remove the app's critical file %s, back up again\n", sampleapp.Critical)
	if err := os.Remove(filepath.Join(dir, "webapp", sampleapp.Critical)); err != nil {
		return fmt.Errorf("remove the critical file: %w", err)
	}
	bad, err := demoLoop(ctx, c, hook, line)
	if err != nil {
		return err
	}
	if bad.ValidationStatus == vigil.ValidationSuccessful || bad.DeletionStatus != vigil.DeletionSuccessful {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("the restore test of the broken app ended %s / deletion %s: it should have FAILED and been deleted", bad.ValidationStatus, bad.DeletionStatus)}
	}
	left, err := os.ReadDir(filepath.Join(cfg.DataDir, "restore-tests"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(left) > 0 {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d restored copies were left in %s", len(left), filepath.Join(cfg.DataDir, "restore-tests"))}
	}

	fmt.Fprintf(out, "\nThe notification of the failed test, as the webhook received it:\n\n%s\n", indent(printable(hook.last().Message)))
	fmt.Fprintf(out, "demo passed in %s: the good backup was proven restorable, the broken one was caught, and both copies were deleted\n",
		time.Since(start).Round(time.Millisecond))

	if !opts.Keep {
		stopped = true
		return srv.Stop(context.Background())
	}
	fmt.Fprintf(out, `
The server keeps running at %s (Ctrl-C stops it). In another shell:
  export VIGIL_CONFIG=%s VIGIL_SERVER=%s
  vigil jobs list --type restore
  vigil jobs show %s
  vigil events list
  vigil logs %s
  vigil restore-test start --resource webapp --wait
`, srv.URL, cfgPath, srv.URL, bad.ID, bad.ID)
	<-ctx.Done()
	stopped = true
	return srv.Stop(context.Background())
}

// demoLoop backs the web app up and follows the restore test that the
// backup's completion starts, printing each step.
func demoLoop(ctx context.Context, c *api.Client, hook *demoHook, line func(time.Time, string, time.Duration, string)) (vigil.RestoreJob, error) {
	t := time.Now()
	job, err := c.StartBackup(ctx, api.StartBackupRequest{Resource: "webapp", Vault: "demo-vault", ExpireAfterSeconds: 24 * 3600})
	if err != nil {
		return vigil.RestoreJob{}, err
	}
	if job, err = waitBackup(ctx, c, job.ID, nil); err != nil {
		return vigil.RestoreJob{}, err
	}
	if err := jobEnded("backup", job.ID, string(job.Status), job.StatusMessage); err != nil {
		return vigil.RestoreJob{}, err
	}
	line(*job.CompletedAt, "backup (expires in 1 day)", time.Since(t), fmt.Sprintf("%s → recovery point %s, %d files, %s", job.ID, job.RecoveryPointID, job.Files, units.Bytes(job.Bytes)))

	rj, err := findRestoreTest(ctx, c, job.RecoveryPointID)
	if err != nil {
		return rj, err
	}
	if rj, err = waitRestoreTest(ctx, c, rj.ID, nil); err != nil {
		return rj, err
	}
	at := rj.CreatedAt
	step := func(name string, secs float64, detail string) {
		d := time.Duration(secs * float64(time.Second))
		at = at.Add(d)
		line(at, name, d, detail)
	}
	queued := rj.StartedAt.Sub(rj.CreatedAt).Seconds()
	step("restore test queued → started", queued, fmt.Sprintf("%s, on BACKUP_JOB_COMPLETED", rj.ID))
	step("restore into a new folder", rj.RestoreSeconds, rj.Metadata["target_path"])
	step("start a new copy of the app", rj.StartSeconds, rj.CreatedResourceLocation)
	step("validate: GET / → 200 \"Welcome\"", rj.ValidationSeconds, fmt.Sprintf("%s: %s", rj.ValidationStatus, firstLine(rj.ValidationMessage)))
	step("stop the copy and delete it", rj.CleanupSeconds, fmt.Sprintf("%s: %s", rj.DeletionStatus, rj.DeletionMessage))
	ev, received, err := hook.wait(ctx, rj.ID)
	if err != nil {
		return rj, err
	}
	line(received, "notification (signed webhook)", received.Sub(ev.Time), fmt.Sprintf("event %d %s: %s", ev.Seq, ev.Type, ev.Subject))
	return rj, nil
}

// findRestoreTest waits for the restore test that a recovery point's
// backup started.
func findRestoreTest(ctx context.Context, c *api.Client, rpID string) (vigil.RestoreJob, error) {
	q := url.Values{"recovery_point_id": {rpID}, "restore_test": {"true"}}
	for p := newPoller(); ; {
		jobs, err := c.RestoreJobs(ctx, q)
		if err != nil {
			return vigil.RestoreJob{}, err
		}
		if len(jobs) > 0 {
			return jobs[0], nil
		}
		if time.Since(p.start) > 30*time.Second {
			return vigil.RestoreJob{}, &ExitError{Code: ExitFailed, Err: fmt.Errorf("no restore test started for recovery point %s within 30s", rpID)}
		}
		if err := sleep(ctx, p.next()); err != nil {
			return vigil.RestoreJob{}, err
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// demoHook is the webhook receiver of the demo: it checks each event's
// signature, as a real receiver should, and keeps the events.
type demoHook struct {
	*http.Server
	url    string
	secret string

	mu       sync.Mutex
	events   []vigil.Event
	received []time.Time
	bad      error
}

func startDemoHook() (*demoHook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the demo's webhook receiver: %w", err)
	}
	var secret [16]byte
	rand.Read(secret[:])
	h := &demoHook{url: "http://" + ln.Addr().String() + "/hook", secret: hex.EncodeToString(secret[:])}
	h.Server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !webhook.Verify(h.secret, body, r.Header.Get("X-Vigil-Signature")) {
			h.bad = fmt.Errorf("the webhook received an event with a wrong signature")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev vigil.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			h.bad = fmt.Errorf("the webhook received a body that is not an event: %v", err)
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		h.events = append(h.events, ev)
		h.received = append(h.received, time.Now())
	})}
	go h.Serve(ln)
	return h, nil
}

// wait returns the RESTORE_TEST_STATUS event of restore job id, and when
// it was received.
func (h *demoHook) wait(ctx context.Context, id string) (vigil.Event, time.Time, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.mu.Lock()
		bad := h.bad
		for i, ev := range h.events {
			if ev.Type == vigil.EventRestoreTestStatus && ev.JobID == id {
				h.mu.Unlock()
				return ev, h.received[i], nil
			}
		}
		h.mu.Unlock()
		if bad != nil {
			return vigil.Event{}, time.Time{}, &ExitError{Code: ExitFailed, Err: bad}
		}
		if time.Now().After(deadline) {
			return vigil.Event{}, time.Time{}, &ExitError{Code: ExitFailed, Err: fmt.Errorf("no RESTORE_TEST_STATUS notification for %s arrived within 30s (see 'vigil events list')", id)}
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return vigil.Event{}, time.Time{}, err
		}
	}
}

func (h *demoHook) last() vigil.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.events) - 1; i >= 0; i-- {
		if h.events[i].Type == vigil.EventRestoreTestStatus {
			return h.events[i]
		}
	}
	return vigil.Event{}
}

// writeDemoSetup writes the sample web app's data, a vault password, the
// webhook secret and a config into dir, and returns the config's path.
func writeDemoSetup(dir string, hook *demoHook) (string, error) {
	if err := sampleapp.WriteData(filepath.Join(dir, "webapp")); err != nil {
		return "", fmt.Errorf("write the sample app's data: %w", err)
	}
	var pw [16]byte
	rand.Read(pw[:])
	if err := os.WriteFile(filepath.Join(dir, "vault-password"), []byte(hex.EncodeToString(pw[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo vault password: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hook-secret"), []byte(hook.secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo webhook secret: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program to run the sample app: %w", err)
	}
	run, _ := json.Marshal([]string{exe, "sample-app", "--dir", "{{.Dir}}", "--listen", "{{.Host}}:{{.Port}}"})
	cfgPath := filepath.Join(dir, "vigil.yaml")
	cfg := fmt.Sprintf(`# Written by 'vigil demo'.
server:
  listen: 127.0.0.1:0          # any free port
data_dir: ./vigil-data
vaults:
  - name: demo-vault
    storage: ./vaults/demo-vault
    password_file: ./vault-password
resources:
  - name: webapp
    type: app
    path: ./webapp
    # A restored copy runs from its own folder on a free port.
    run: %s
    validate:
      - http: {path: /, expect_status: 200, expect_body: "Welcome"}
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: ["*"]
    validation_window: %s
    targets: {rto: 1m, rpo: 24h}
notifications:
  - name: demo-hook
    events: [RESTORE_TEST_STATUS, BACKUP_JOB_FAILED]
    webhook: {url: %q, secret_file: ./hook-secret}
`, run, demoValidationWindow, hook.url)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write demo config: %w", err)
	}
	return cfgPath, nil
}
