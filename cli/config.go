package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/worker"
)

func newConfigCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the configuration"}
	check := &cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Run every start-up check without serving, and list every problem",
		Long: `Run the checks 'vigil serve' runs at start, without serving: the file's
keys and values (an unknown key is named with the key it was probably meant
to be), the password sources, the database tools, each vault (opened
read-only with its password; a new one is not created), the programs that
restore tests and notifications run, and each resource's data (its folder
or file, or its database server). It may run while vigil serves.

Every problem is listed, each as an error (vigil serve refuses to start) or
a warning (it starts, and says so in its log and on the console's overview:
a folder that does not exist now, a database that does not answer now).

Exits 0 when there are no errors, 1 when there are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := config.Locate(g.ConfigPath)
			problems := checkConfig(cmd.Context(), path)
			if g.JSON {
				if problems == nil {
					problems = []vigil.Problem{}
				}
				if err := g.printJSON(problems); err != nil {
					return err
				}
			} else {
				printProblems(g.stdout, path, problems)
			}
			if hard := vigil.HardProblems(problems); len(hard) > 0 {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("config %s: %s: vigil serve would refuse to start", path, countProblems(len(hard), "error"))}
			}
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

// checkConfig runs every check of the config at path. Errors in the file
// itself come first; the vaults, programs and resources are checked only
// once the file can be read.
func checkConfig(ctx context.Context, path string) []vigil.Problem {
	cfg, err := config.Load(path)
	if err != nil {
		return hardProblems(err)
	}
	var problems []vigil.Problem
	if err := cfg.LoadPasswords(); err != nil {
		problems = append(problems, hardProblems(err)...)
	}
	if err := cfg.LookupTools(); err != nil {
		problems = append(problems, hardProblems(err)...)
	}
	return append(problems, worker.CheckConfig(ctx, cfg)...)
}

// hardProblems turns an error of the config package, which joins one
// error per problem under "config FILE: ", into one problem each.
func hardProblems(err error) []vigil.Problem {
	var out []vigil.Problem
	for _, e := range splitErrors(err) {
		out = append(out, vigil.Problem{Hard: true, Message: e.Error()})
	}
	return out
}

// splitErrors returns the errors joined (errors.Join) in err, below the
// one wrapper that names the file; an error that joins none is itself.
func splitErrors(err error) []error {
	if inner := errors.Unwrap(err); inner != nil {
		if _, joined := inner.(interface{ Unwrap() []error }); joined {
			err = inner
		}
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		out = append(out, e)
	}
	walk(err)
	return out
}

// printProblems lists the problems for a person, errors first.
func printProblems(w io.Writer, path string, problems []vigil.Problem) {
	hard := vigil.HardProblems(problems)
	warnings := len(problems) - len(hard)
	fmt.Fprintf(w, "config %s\n", path)
	for _, want := range []bool{true, false} {
		for _, p := range problems {
			if p.Hard != want {
				continue
			}
			label := "warning"
			if p.Hard {
				label = "error  "
			}
			fmt.Fprintf(w, "  %s  %s\n", label, strings.ReplaceAll(p.String(), "\n", "\n           "))
		}
	}
	switch {
	case len(hard) > 0 && warnings > 0:
		fmt.Fprintf(w, "%s and %s: vigil serve would refuse to start\n", countProblems(len(hard), "error"), countProblems(warnings, "warning"))
	case len(hard) > 0:
		fmt.Fprintf(w, "%s: vigil serve would refuse to start\n", countProblems(len(hard), "error"))
	case warnings > 0:
		fmt.Fprintf(w, "%s, no errors: vigil serve would start, and warn\n", countProblems(warnings, "warning"))
	default:
		fmt.Fprintln(w, "no problems found")
	}
}

// countProblems writes "1 error", "3 errors".
func countProblems(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// listProblems writes one problem a line, indented.
func listProblems(ps []vigil.Problem) string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = "  " + p.String()
	}
	return strings.Join(lines, "\n")
}
