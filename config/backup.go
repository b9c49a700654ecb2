package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Hook is a command run before or after each backup of a resource, for
// a backup that the application agrees with: flush, freeze, snapshot, then
// thaw. It runs in the resource's folder (a database file's folder; for a
// database on a server, the data dir), with VIGIL_RESOURCE and
// VIGIL_BACKUP_JOB_ID in its environment, and after the backup
// VIGIL_BACKUP_STATUS (COMPLETED or FAILED). Its process group is killed
// at Timeout.
type Hook struct {
	Run     []string          `yaml:"run"`
	Env     map[string]string `yaml:"env"`
	Timeout Duration          `yaml:"timeout"`
}

// DefaultHookTimeout is how long a hook may run when its entry says
// nothing: a flush or a freeze takes seconds, and a hook that hangs would
// hold the backup until workers.job_timeout.
const DefaultHookTimeout = time.Minute

func validateHook(add func(field, format string, args ...any), f string, h *Hook) {
	if h == nil {
		return
	}
	if len(h.Run) == 0 || h.Run[0] == "" {
		add(f+".run", "is missing: the program and its arguments, such as [\"./flush.sh\"] or [\"sqlite3\", \"app.db\", \".backup app.copy\"]")
	}
	if h.Timeout < 0 {
		add(f+".timeout", "must not be negative")
	}
}

// validateExcludes checks the exclude rules, which only a folder has.
// Whether kopia can read each pattern is checked when the resource's
// source is (resource/directory), where kopia is.
func validateExcludes(add func(field, format string, args ...any), f string, r Resource) {
	set := len(r.Exclude) > 0 || r.ExcludeIfPresent != "" || r.OneFileSystem || r.ExcludeLargerThan != 0
	if rules, _ := rulesOf(r.Type); set && rules.source != fromFolder {
		add(f, "exclude, exclude_if_present, one_file_system and exclude_larger_than leave files of a folder out: they belong to types %s, not %s",
			strings.Join(typeNames(func(r typeRules) bool { return r.source == fromFolder }), " and "), r.Type)
		return
	}
	for i, p := range r.Exclude {
		if strings.TrimSpace(p) == "" || strings.HasPrefix(p, "#") {
			add(fmt.Sprintf("%s.exclude[%d]", f, i), "%q is no pattern: write one such as \"*.tmp\", \"node_modules/\" or \"cache/**\"", p)
		}
	}
	if m := r.ExcludeIfPresent; m != "" && (strings.ContainsRune(m, '/') || m == "." || m == ".." || m != filepath.Clean(m)) {
		add(f+".exclude_if_present", "%q is not a file name: write the name of the marker file, such as .nobackup", m)
	}
	if r.ExcludeLargerThan < 0 {
		add(f+".exclude_larger_than", "must not be negative")
	}
}
