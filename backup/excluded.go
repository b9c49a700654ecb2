package backup

import (
	"fmt"
	"strings"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/vault"
)

// describeExcluded says, for the job's log, what the resource's exclude
// rules left out. Unlike what a backup skipped (entries no snapshot can
// hold), this was asked for, and a restore test does not miss it: the
// restored copy is compared with the snapshot.
func describeExcluded(e vault.Excluded, cfg config.Resource) string {
	if e.Total == 0 {
		return "excluded nothing: no entry matched the resource's exclude rules"
	}
	var rules []string
	if n := e.ByRule[vault.ExcludedByPattern]; n > 0 {
		rules = append(rules, fmt.Sprintf("%d by pattern", n))
	}
	if n := e.ByRule[vault.ExcludedByMarker]; n > 0 {
		rules = append(rules, units.Plural(int(n), "folder")+" holding "+cfg.ExcludeIfPresent)
	}
	if n := e.ByRule[vault.ExcludedByFileSystem]; n > 0 {
		rules = append(rules, fmt.Sprintf("%d on another file system", n))
	}
	if n := e.ByRule[vault.ExcludedBySize]; n > 0 {
		rules = append(rules, fmt.Sprintf("%d larger than %s", n, units.Bytes(int64(cfg.ExcludeLargerThan))))
	}
	more := ""
	if n := e.Total - int64(len(e.Paths)); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("excluded %d %s by the resource's exclude rules (%s; %s of files): %s%s; they are not in the recovery point",
		e.Total, plural(e.Total, "entry"), strings.Join(rules, ", "), units.Bytes(e.Bytes), strings.Join(e.Paths, ", "), more)
}
