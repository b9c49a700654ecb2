package worker

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/startcheck"
)

// Reload reads the config file again and puts it in effect, or refuses it
// and keeps the running one. It refuses what serve would refuse to start
// with (errors in the file, an unreadable secret, a missing tool, a hard
// problem of the start-up checks) and a change to what only a restart
// changes (restartOnly). What it changes takes effect for the work that
// starts after it: a job that runs keeps the config it started with, and
// the plans are scheduled again from the new one.
//
// Only this process reloads: on a shared catalog every vigil serve and
// vigil worker reads its own file, and each is reloaded by its own signal.
func (e *Engine) Reload(ctx context.Context) (vigil.Reload, error) {
	// Two reloads at once (a SIGHUP and a `vigil reload`) would each
	// compare with the same running config; one waits for the other.
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	cur := e.cfg.Current()
	refused := func(format string, args ...any) error {
		return vigil.Invalidf("reload of %s refused, the running config stays: "+format, append([]any{cur.Path}, args...)...)
	}
	if cur.Path == "" {
		return vigil.Reload{}, refused("this config was not read from a file")
	}
	next, err := config.Load(cur.Path)
	if err != nil {
		return vigil.Reload{}, refused("%v", err)
	}
	if e.adjust != nil {
		e.adjust(next)
	}
	if err := next.LoadPasswords(); err != nil {
		return vigil.Reload{}, refused("%v", err)
	}
	if err := next.LookupTools(); err != nil {
		return vigil.Reload{}, refused("%v", err)
	}
	if changed := restartOnly(cur, next); len(changed) > 0 {
		return vigil.Reload{}, refused("it changes what only a restart of this process changes (%s): undo that to reload the rest, or restart it (systemctl restart vigil)",
			strings.Join(changed, ", "))
	}
	problems := startcheck.Run(ctx, next, startcheck.Options{
		Resources: e.resources,
		// The vaults are the running ones (restartOnly): open already.
		Vault: func(ctx context.Context, v config.Vault) error {
			return e.openVault(ctx, v)
		},
	})
	if hard := vigil.HardProblems(problems); len(hard) > 0 {
		var lines []string
		for _, p := range hard {
			lines = append(lines, "  "+p.Subject+": "+p.Message)
		}
		return vigil.Reload{}, refused("the start-up checks found %d problem(s) to fix first:\n%s", len(hard), strings.Join(lines, "\n"))
	}
	next.UnsetSecretEnv()
	e.cfg.Swap(next)
	e.schedulePlans(cur, next)
	e.warningsMu.Lock()
	e.warnings, e.checkedAt = problems, now()
	e.warningsMu.Unlock()
	r := vigil.Reload{Config: next.Path, Changed: changes(cur, next), Warnings: problems, At: now()}
	if r.Changed == nil {
		r.Changed = []string{}
	}
	if r.Warnings == nil {
		r.Warnings = []vigil.Problem{}
	}
	e.logger.Info("config reloaded", "config", next.Path, "changes", len(r.Changed), "changed", strings.Join(r.Changed, "; "))
	for _, p := range problems {
		e.logger.Warn("reload check: "+p.Subject, "warning", p.Message)
	}
	return r, nil
}

// restartOnly names the parts of the config that differ between cur and
// next and that a running process cannot take on: where it listens, its
// data and catalog, its name, how many jobs it runs, its log, and the
// vaults, which are open (a changed password or storage under running
// backups would mix two vaults).
func restartOnly(cur, next *config.Config) []string {
	var out []string
	for _, f := range []struct {
		key      string
		cur, new any
	}{
		{"server", cur.Server, next.Server},
		{"data_dir", cur.DataDir, next.DataDir},
		{"catalog", cur.Catalog, next.Catalog},
		{"node", cur.Node, next.Node},
		{"workers", cur.Workers, next.Workers},
		{"log", cur.Log, next.Log},
		{"lifecycle", cur.Lifecycle, next.Lifecycle},
	} {
		if !reflect.DeepEqual(f.cur, f.new) {
			out = append(out, f.key+" changed")
		}
	}
	for _, c := range diffByName(asWritten(cur.Vaults), asWritten(next.Vaults), func(v config.Vault) string { return v.Name }) {
		out = append(out, "vault "+c)
	}
	return out
}

// asWritten is vaults without what was parsed from them (a verify
// schedule's time zone is loaded anew by each parse), so that comparing
// two parses of one file finds no change.
func asWritten(vaults []config.Vault) []config.Vault {
	out := slices.Clone(vaults)
	for i := range out {
		if v := out[i].Verify; v != nil {
			written := *v
			written.Cron = nil
			out[i].Verify = &written
		}
		if s := out[i].Sync; s != nil {
			written := *s
			written.Cron = nil
			out[i].Sync = &written
		}
	}
	return out
}

// changes lists what a reload changes, in the file's order of sections.
func changes(cur, next *config.Config) []string {
	var out []string
	add := func(kind string, diffs []string) {
		for _, d := range diffs {
			out = append(out, kind+" "+d)
		}
	}
	add("resource", diffByName(cur.Resources, next.Resources, func(r config.Resource) string { return r.Name }))
	add("backup plan", diffByName(cur.BackupPlans, next.BackupPlans, func(p config.BackupPlan) string { return p.Name }))
	add("restore testing plan", diffByName(cur.RestoreTesting, next.RestoreTesting, func(p config.RestoreTestPlan) string { return p.Name }))
	add("notification", diffByName(cur.Notifications, next.Notifications, func(n config.Notification) string { return n.Name }))
	if !reflect.DeepEqual(cur.Console, next.Console) {
		out = append(out, "console changed")
	}
	return out
}

// diffByName compares two lists of named entries: `"x" added`, `"y"
// removed`, `"z" changed`. Secrets count (a new password is a change) but
// are never printed.
func diffByName[T any](cur, next []T, name func(T) string) []string {
	old := map[string]T{}
	for _, v := range cur {
		old[name(v)] = v
	}
	var out []string
	seen := map[string]bool{}
	for _, v := range next {
		n := name(v)
		seen[n] = true
		o, ok := old[n]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%q added", n))
		case !reflect.DeepEqual(o, v):
			out = append(out, fmt.Sprintf("%q changed", n))
		}
	}
	for _, v := range cur {
		if n := name(v); !seen[n] {
			out = append(out, fmt.Sprintf("%q removed", n))
		}
	}
	return out
}

// schedulePlans replaces the periodic jobs of cur's plans by next's. River
// enqueues periodic jobs only in the leader among the processes sharing
// the catalog, but every one keeps its list, ready to lead.
func (e *Engine) schedulePlans(cur, next *config.Config) {
	if e.periodic == nil {
		return // this process schedules nothing (serve --workers 0)
	}
	var ids []string
	for _, j := range planJobs(cur) {
		ids = append(ids, j.id)
	}
	e.periodic.RemoveManyByID(ids)
	for _, j := range planJobs(next) {
		e.periodic.Add(j.job)
	}
}

// planJob is a plan's periodic job and its River id.
type planJob struct {
	id  string
	job *river.PeriodicJob
}
