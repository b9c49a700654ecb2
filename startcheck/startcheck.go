// Package startcheck checks, before vigil serves, what its configuration
// names: that each vault opens with its password, that each program a
// restore test or a notification runs is there, and that each resource's
// data can be reached. Without it a wrong password or a missing folder
// shows only when the nightly backup fails, hours after the start.
//
// A hard problem would fail every job that meets it, and stops the start;
// the others (a folder not mounted yet, a database down) are warnings.
// `vigil serve` and `vigil config check` run the same checks; they differ
// only in how a vault is checked (serve opens it for good, config check
// looks without creating or writing anything).
package startcheck

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
)

// SourceTimeout bounds the check of one resource's data: a database server
// that does not answer within it is reported as not answering.
const SourceTimeout = 5 * time.Second

// Options say how to check what a configuration names.
type Options struct {
	// Resources opens the configured resources.
	Resources *resource.Registry
	// Vault checks one vault; its error says what is wrong and what to
	// do.
	Vault func(ctx context.Context, v config.Vault) error
}

// Run checks everything cfg names and returns the problems found, in the
// order of the file: vaults, resources, notifications. cfg's secrets and
// tools are loaded (config.LoadPasswords, config.LookupTools). The checks
// run at the same time, so one slow database does not hold up the others.
func Run(ctx context.Context, cfg *config.Config, opts Options) []vigil.Problem {
	var checks []func(context.Context) []vigil.Problem
	for _, v := range cfg.Vaults {
		checks = append(checks, func(ctx context.Context) []vigil.Problem {
			if err := opts.Vault(ctx, v); err != nil {
				if v.Foreign() {
					// Another tool's repository being away stops none of
					// vigil's own backups: its snapshots are listed once
					// it opens.
					return []vigil.Problem{{Subject: fmt.Sprintf("vault %q", v.Name), Message: err.Error() + " (a foreign vault: its snapshots are listed at its next sync once this is fixed)"}}
				}
				return []vigil.Problem{{Hard: true, Subject: fmt.Sprintf("vault %q", v.Name), Message: err.Error()}}
			}
			return nil
		})
	}
	for _, r := range cfg.Resources {
		checks = append(checks, func(ctx context.Context) []vigil.Problem { return checkResource(ctx, r, opts.Resources) })
	}
	for _, n := range cfg.Notifications {
		checks = append(checks, func(context.Context) []vigil.Problem {
			return program(fmt.Sprintf("notification %q", n.Name), "its command", n.Command)
		})
	}

	found := make([][]vigil.Problem, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() { found[i] = check(ctx) })
	}
	wg.Wait()
	var out []vigil.Problem
	for _, ps := range found {
		out = append(out, ps...)
	}
	return out
}

// checkResource checks the programs a resource's restore tests run and,
// when its type can tell, its data.
func checkResource(ctx context.Context, r config.Resource, types *resource.Registry) []vigil.Problem {
	subject := fmt.Sprintf("resource %q", r.Name)
	out := program(subject, "run", r.Run)
	for i, v := range r.Validate {
		if v.Command != nil {
			out = append(out, program(subject, fmt.Sprintf("validate[%d].command.run", i), v.Command.Run)...)
		}
	}
	res, err := types.Open(r)
	if err != nil {
		return append(out, vigil.Problem{Hard: true, Subject: subject, Message: err.Error()})
	}
	// A resource another tool backs up has no data here to reach.
	if sc, ok := res.(resource.SourceChecker); ok && r.Source == nil {
		ctx, cancel := context.WithTimeout(ctx, SourceTimeout)
		defer cancel()
		for _, p := range sc.CheckSource(ctx) {
			p.Subject = subject
			out = append(out, p)
		}
	}
	return out
}

// program checks that the program of argv, which field names, can be
// run: found on PATH for a bare name, an executable file for a path. A
// program named by a template ({{.Dir}}/start.sh) lives in the restored
// copy and cannot be checked before it exists.
func program(subject, field string, argv []string) []vigil.Problem {
	if len(argv) == 0 || strings.Contains(argv[0], "{{") {
		return nil
	}
	name := argv[0]
	if _, err := exec.LookPath(name); err != nil {
		what := "is not on PATH: install it, or give its full path"
		if strings.Contains(name, "/") {
			what = "is not an executable file: correct the path, or make it executable (chmod +x)"
		}
		return []vigil.Problem{{Hard: true, Subject: subject, Message: fmt.Sprintf("%s: program %s %s (%v)", field, name, what, err)}}
	}
	return nil
}
