// Package cli builds vigil's command line: one file per command, each with
// an options struct and a run function that does the work. Every command but
// serve, worker, migrate and demo is a client of the API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/config"
)

// Exit codes, as the help text documents them.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the job (with --wait) did not end COMPLETED, or the operation failed
	ExitUsage       = 2 // bad usage, or an unknown name or id
	ExitUnreachable = 3 // the server cannot be reached
)

const exitCodesHelp = `Exit codes:
  0  success
  1  the job (with --wait) ended other than COMPLETED, a restore test (with --wait) was not
     SUCCESSFUL or its copy not deleted, a vault check found damage, or the operation failed
  2  bad usage, or an unknown name or id (the message lists what exists)
  3  the vigil server cannot be reached`

// ExitError carries an exit code out of a command.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// globalOptions are the flags every command takes.
type globalOptions struct {
	ConfigPath string
	Server     string
	Token      string
	JSON       bool
	stdout     io.Writer
	stderr     io.Writer
}

// NewRootCommand builds the whole command tree.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Backups that are proven restorable",
		Long: `vigil backs up resources into encrypted, deduplicated vaults and proves
each backup restorable.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Setting Version gives the root its --version flag; the template
		// makes it print what 'vigil version' prints.
		Version: "-",
	}
	root.SetVersionTemplate(versionText())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.ConfigPath, "config", "", "config file (default $VIGIL_CONFIG or ./vigil.yaml)")
	pf.StringVar(&g.Server, "server", "", "server URL (default $VIGIL_SERVER or http://<server.listen> from the config)")
	pf.StringVar(&g.Token, "token", "", "API token (default $VIGIL_TOKEN or <data_dir>/api-token from the config)")
	pf.BoolVar(&g.JSON, "json", false, "print records as JSON")

	root.AddCommand(
		newServeCommand(g),
		newWorkerCommand(g),
		newWorkersCommand(g),
		newPlansCommand(g),
		newMigrateCommand(g),
		newDemoCommand(g),
		newBackupCommand(g),
		newRestoreCommand(g),
		newRestoreTestCommand(g),
		newEventsCommand(g),
		newSampleAppCommand(),
		newRecoveryPointsCommand(g),
		newRetentionCommand(g),
		newJobsCommand(g),
		newLogsCommand(g),
		newVaultCommand(g),
		newConfigCommand(g),
		newVersionCommand(g),
		newInitCommand(g),
		newReloadCommand(g),
	)
	addCompletions(g, root)
	return root
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if f := root.PersistentFlags().Lookup("config"); f != nil {
		err = staleServer(err, f.Value.String())
	}
	code := exitCode(err)
	// An error may carry a server's message, or a job's: text from outside.
	fmt.Fprintf(stderr, "vigil: %s\n", printable(err.Error()))
	return code
}

func exitCode(err error) int {
	var exit *ExitError
	var unreachable *api.UnreachableError
	var resp *api.ResponseError
	switch {
	case errors.As(err, &exit):
		return exit.Code
	case errors.As(err, &unreachable):
		return ExitUnreachable
	case errors.As(err, &resp) && (resp.Status == http.StatusNotFound || resp.Status == http.StatusBadRequest):
		return ExitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.Contains(err.Error(), "arg(s)"), strings.HasPrefix(err.Error(), "required flag"):
		return ExitUsage
	}
	return ExitFailed
}

func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// client builds an API client from flags, environment and config, in that
// order of precedence.
func (g *globalOptions) client() (*api.Client, error) {
	server := firstNonEmpty(g.Server, os.Getenv("VIGIL_SERVER"))
	token := firstNonEmpty(g.Token, os.Getenv("VIGIL_TOKEN"))
	if server == "" || token == "" {
		path := config.Locate(g.ConfigPath)
		cfg, err := config.Load(path)
		if err != nil {
			return nil, usageError(fmt.Errorf("%w (or give --server and --token)", err))
		}
		if server == "" {
			server = "http://" + cfg.Server.Listen
		}
		if token == "" {
			b, err := os.ReadFile(filepath.Join(cfg.DataDir, tokenFile))
			if err != nil {
				return nil, usageError(fmt.Errorf("read API token: %w: start 'vigil serve' once with this config to create it, or pass --token / VIGIL_TOKEN", err))
			}
			token = strings.TrimSpace(string(b))
		}
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return &api.Client{BaseURL: server, Token: token, HTTP: &http.Client{Timeout: 0}}, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func (g *globalOptions) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatTime prints a time for a person: local, to the second.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
