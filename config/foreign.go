package config

import (
	"fmt"
	"path"
	"strings"

	"github.com/robfig/cron/v3"
)

// Vault kinds. A foreign vault is a repository that another tool writes
// (restic, or Kopia itself): vigil lists its snapshots as recovery points
// and restore-tests them, and never writes, locks or maintains it.
const (
	KindVigil  = "vigil"
	KindKopia  = "kopia"
	KindRestic = "restic"
)

// DefaultSyncSchedule is how often a foreign vault's snapshots are listed
// when its sync gives no schedule.
const DefaultSyncSchedule = "@every 15m"

// VaultSync is when a foreign vault's snapshots are listed into the
// catalog. `vigil vault sync NAME` lists them at once.
type VaultSync struct {
	Schedule string `yaml:"schedule"`
	Timezone string `yaml:"timezone"`
	// Cron is the parsed schedule.
	Cron cron.Schedule `yaml:"-"`
}

// ForeignSource is where the recovery points of a resource that vigil does not
// back up come from: the snapshots of Path in a foreign vault, as the
// tool that made them recorded it (restic's and Kopia's source path).
// Host and Tags, when given, narrow them to one machine's, or to those
// carrying every tag (restic's tags; Kopia's snapshots have none).
type ForeignSource struct {
	Vault string   `yaml:"vault"`
	Path  string   `yaml:"path"`
	Host  string   `yaml:"host"`
	Tags  []string `yaml:"tags"`
}

// Foreign reports whether another tool writes the vault: vigil only reads
// it.
func (v Vault) Foreign() bool { return v.Kind == KindKopia || v.Kind == KindRestic }

// Where says where the vault's repository is, for people.
func (v Vault) Where() string {
	if v.Kind == KindRestic {
		return v.Repository
	}
	return v.Storage
}

// foreign reports whether the vault called name is foreign.
func (c *Config) foreign(name string) bool {
	v, ok := c.Vault(name)
	return ok && v.Foreign()
}

// kind names the kind of the vault called name, for messages.
func (c *Config) kind(name string) string {
	v, _ := c.Vault(name)
	return v.Kind
}

// validateKind checks what a vault's kind asks of it. A foreign vault
// keeps nothing of vigil's lifecycle: vigil never deletes, repairs or
// maintains what another tool wrote.
func validateKind(add func(field, format string, args ...any), f string, v *Vault) {
	switch v.Kind {
	case "", KindVigil:
		v.Kind = ""
		if v.Repository != "" || v.ResticPath != "" {
			add(f, "repository and restic_path are for vaults of kind: restic; vault %q is vigil's own, given by storage", v.Name)
		}
		if v.Sync != nil {
			add(f+".sync", "is for foreign vaults (kind: restic or kopia): vigil lists its own vault's recovery points as it makes them")
		}
		return
	case KindKopia, KindRestic:
	default:
		add(f+".kind", "%q is not a vault kind: leave it out for vigil's own vault, or use restic or kopia for a repository another tool writes", v.Kind)
		return
	}
	if v.ExpireDays != 0 || v.ExpireAfter != 0 {
		add(f, "a %s vault is written by another tool, which keeps its own snapshots: remove expire_days and expire_after (vigil deletes nothing in it)", v.Kind)
	}
	if v.RepairOnDamage {
		add(f+".repair_on_damage", "vigil never repairs a %s vault, which another tool writes: remove it, and repair the repository with that tool", v.Kind)
	}
	if v.Kind == KindRestic {
		switch {
		case v.Repository == "":
			add(f+".repository", "is missing: give the restic repository as restic's -r takes it (a folder, s3:…, sftp:…, rest:…)")
		case strings.HasPrefix(v.Repository, "-"):
			add(f+".repository", "%q starts with '-', which restic would read as an option: give a folder, s3:…, sftp:… or rest:…", v.Repository)
		case v.Storage != "":
			add(f+".storage", "a restic vault is given by repository, not storage: move %q there", v.Storage)
		}
		for key, set := range map[string]bool{"endpoint": v.Endpoint != "", "region": v.Region != "", "path_style": v.PathStyle != nil,
			"insecure": v.Insecure, "ca_file": v.CAFile != "", "retry_for": v.RetryFor != 0} {
			if set {
				add(f+"."+key, "is for Kopia's S3 storage: a restic vault takes its endpoint in repository (s3:http://host:port/bucket/prefix)")
			}
		}
		if v.Verify != nil {
			add(f+".verify", "rolling verification reads Kopia packs: for a restic vault, run `vigil vault verify %s --read-data-percent N`, which runs restic check --read-data-subset", v.Name)
		}
	} else if v.Repository != "" || v.ResticPath != "" {
		add(f, "repository and restic_path are for vaults of kind: restic; a kopia vault is given by storage, as vigil's own")
	}
	if v.Sync == nil {
		v.Sync = &VaultSync{}
	}
	if v.Sync.Schedule == "" {
		v.Sync.Schedule = DefaultSyncSchedule
	}
	if s, err := parseSchedule(v.Sync.Schedule, v.Sync.Timezone); err != nil {
		add(f+".sync.schedule", "%v", err)
	} else {
		v.Sync.Cron = s
	}
}

// validateForeignSource checks a resource whose recovery points come
// from a foreign vault: a folder's type, a foreign vault, an absolute
// path, and nothing that only a backup by vigil would use.
func (c *Config) validateForeignSource(add func(field, format string, args ...any), f string, r Resource) {
	s := r.Source
	if rules, _ := rulesOf(r.Type); rules.source != fromFolder {
		add(f+".source", "is for folders (types %s): vigil restore-tests a %s resource only from its own backups",
			strings.Join(typeNames(func(r typeRules) bool { return r.source == fromFolder }), " and "), r.Type)
	}
	v, ok := c.Vault(s.Vault)
	switch {
	case s.Vault == "":
		add(f+".source.vault", "is missing: name the vault of kind restic or kopia that holds the snapshots")
	case !ok:
		add(f+".source.vault", "unknown vault %q (known: %s)", s.Vault, strings.Join(c.VaultNames(), ", "))
	case !v.Foreign():
		add(f+".source.vault", "vault %q is vigil's own: its recovery points are the ones vigil backs up; give the resource a path and a backup plan instead, or name a vault of kind restic or kopia", s.Vault)
	}
	if s.Path == "" || !path.IsAbs(s.Path) {
		add(f+".source.path", "%q is not an absolute path: give the folder as the other tool backed it up, such as /srv/webapp", s.Path)
	}
	if r.Path != "" {
		add(f+".path", "a resource with a source is backed up by another tool: remove path (vigil backs up nothing of it), or remove source")
	}
	if r.BeforeBackup != nil || r.AfterBackup != nil || len(r.Exclude) > 0 || r.ExcludeIfPresent != "" || r.OneFileSystem || r.ExcludeLargerThan != 0 {
		add(f, "before_backup, after_backup and the exclude settings are for backups vigil takes: resource %q is backed up by another tool", r.Name)
	}
}

// checkBackedUp refuses a backup plan that names a resource another tool
// backs up.
func (c *Config) checkBackedUp(add func(field, format string, args ...any), field string, names []string) {
	for _, n := range names {
		if r, ok := c.Resource(n); ok && r.Source != nil {
			add(field, "resource %q is backed up by another tool into vault %q: vigil only restore-tests it; remove it from the plan", n, r.Source.Vault)
		}
	}
}

// SourceMatches reports whether a foreign snapshot of path, taken on host
// with tags, is one of the resource's recovery points.
func (s ForeignSource) Matches(snapPath, host string, tags []string) bool {
	if path.Clean(snapPath) != path.Clean(s.Path) || s.Host != "" && s.Host != host {
		return false
	}
	for _, t := range s.Tags {
		if !contains(tags, t) {
			return false
		}
	}
	return true
}

// String names the source for people: restic-prod:/srv/webapp.
func (s ForeignSource) String() string { return fmt.Sprintf("%s:%s", s.Vault, s.Path) }
