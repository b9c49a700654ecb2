package cli

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/config"
)

// Shell completion ('vigil completion bash|zsh|fish|powershell', from
// cobra) completes names as well as flags. Resource, vault and plan names
// come from the config file, which client and server share, so they
// complete without a running server; job and recovery point ids only the
// server knows, so those are its recent ones (the newest completionLimit of
// each kind), and none when it cannot be reached in completionTimeout.
const (
	completionLimit   = 20
	completionTimeout = 3 * time.Second
)

// completer completes one argument or flag value.
type completer func(g *globalOptions, cmd *cobra.Command) []string

// flagCompleters complete a flag of that name on any command.
var flagCompleters = map[string]completer{
	"resource":       completeResources,
	"vault":          completeVaults,
	"to":             completeVaults,
	"plan":           completePlanNames,
	"recovery-point": completeRecoveryPoints,
}

// commandFlagCompleters complete a flag of one command, by its path
// without "vigil ", where flagCompleters' is too wide: retention is a
// backup plan's, a restore test takes a restore testing plan's settings.
var commandFlagCompleters = map[string]map[string]completer{
	"retention preview":  {"plan": completeBackupPlans},
	"restore-test start": {"plan": completeTestPlans},
}

// argCompleters complete the positional arguments of a command, by its
// path without "vigil ".
var argCompleters = map[string]completer{
	"jobs show":                completeJobs,
	"logs":                     completeJobs,
	"vault verify":             completeVaults,
	"vault repair":             completeVaults,
	"plans pause":              completePlanNames,
	"plans resume":             completePlanNames,
	"recovery-points show":     completeRecoveryPoints,
	"recovery-points metadata": completeRecoveryPoints,
	"recovery-points copy":     completeRecoveryPoints,
	"recovery-points ls":       completeRecoveryPoints,
	"recovery-points dump":     completeRecoveryPoints,
	"recovery-points diff":     completeRecoveryPoints,
}

// addCompletions wires the completers into the command tree below root.
func addCompletions(g *globalOptions, root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		path := strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ")
		for name, complete := range flagCompleters {
			if c, ok := commandFlagCompleters[path][name]; ok {
				complete = c
			}
			if cmd.LocalNonPersistentFlags().Lookup(name) != nil {
				cmd.RegisterFlagCompletionFunc(name, completion(g, complete, 0))
			}
		}
		if complete, ok := argCompleters[path]; ok && cmd.ValidArgsFunction == nil {
			cmd.ValidArgsFunction = completion(g, complete, max(maxCompletedArgs[path], 1))
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// maxCompletedArgs is how many positional arguments take a name, where
// that is not one: diff compares two recovery points.
var maxCompletedArgs = map[string]int{"recovery-points diff": 2}

// completion adapts a completer for cobra: candidates that start with what
// is typed, no file names, and nothing once the command has maxArgs
// positional arguments (0: a flag's value, no limit).
func completion(g *globalOptions, complete completer, maxArgs int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if maxArgs > 0 && len(args) >= maxArgs {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, c := range complete(g, cmd) {
			if strings.HasPrefix(c, toComplete) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionConfig is the config the command would use, or nil when it
// cannot be read: a completion never prints an error into a shell.
func (g *globalOptions) completionConfig() *config.Config {
	cfg, err := config.Load(config.Locate(g.ConfigPath))
	if err != nil {
		return nil
	}
	return cfg
}

func completeResources(g *globalOptions, _ *cobra.Command) []string {
	if cfg := g.completionConfig(); cfg != nil {
		return cfg.ResourceNames()
	}
	return nil
}

func completeVaults(g *globalOptions, _ *cobra.Command) []string {
	if cfg := g.completionConfig(); cfg != nil {
		return cfg.VaultNames()
	}
	return nil
}

func completePlanNames(g *globalOptions, _ *cobra.Command) []string {
	if cfg := g.completionConfig(); cfg != nil {
		return cfg.PlanNames()
	}
	return nil
}

func completeBackupPlans(g *globalOptions, _ *cobra.Command) []string {
	cfg := g.completionConfig()
	if cfg == nil {
		return nil
	}
	var out []string
	for _, p := range cfg.BackupPlans {
		out = append(out, p.Name)
	}
	return out
}

func completeTestPlans(g *globalOptions, _ *cobra.Command) []string {
	cfg := g.completionConfig()
	if cfg == nil {
		return nil
	}
	var out []string
	for _, p := range cfg.RestoreTesting {
		out = append(out, p.Name)
	}
	return out
}

// completeJobs asks the server for its newest backup, restore and copy
// jobs, each as "id<TAB>what it is", newest first.
func completeJobs(g *globalOptions, cmd *cobra.Command) []string {
	c, err := g.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	q := url.Values{"limit": {strconv.Itoa(completionLimit)}}
	type job struct {
		id, what string
		at       time.Time
	}
	var jobs []job
	if bs, err := c.BackupJobs(ctx, q); err == nil {
		for _, j := range bs {
			jobs = append(jobs, job{j.ID, "backup of " + j.Resource + ", " + string(j.Status), j.CreatedAt})
		}
	}
	if rs, err := c.RestoreJobs(ctx, q); err == nil {
		for _, j := range rs {
			what := "restore of "
			if j.RestoreTest {
				what = "restore test of "
			}
			jobs = append(jobs, job{j.ID, what + j.Resource + ", " + string(j.Status), j.CreatedAt})
		}
	}
	if cs, err := c.CopyJobs(ctx, q); err == nil {
		for _, j := range cs {
			jobs = append(jobs, job{j.ID, "copy of " + j.Resource + " to " + j.Vault + ", " + string(j.Status), j.CreatedAt})
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].at.After(jobs[b].at) })
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.id + "\t" + printable(j.what)
	}
	return out
}

// completeRecoveryPoints asks the server for its newest recovery points.
func completeRecoveryPoints(g *globalOptions, cmd *cobra.Command) []string {
	c, err := g.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	rps, err := c.RecoveryPoints(ctx, url.Values{"limit": {strconv.Itoa(completionLimit)}})
	if err != nil {
		return nil
	}
	out := make([]string, len(rps))
	for i, rp := range rps {
		out[i] = rp.ID + "\t" + printable(rp.Resource+" in "+rp.Vault+", "+formatTime(&rp.CreatedAt))
	}
	return out
}
