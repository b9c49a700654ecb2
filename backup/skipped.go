package backup

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/vault"
)

// skippedOf is the recovery point's record of what the backup left out,
// nil when it left out nothing.
func skippedOf(s vault.Skipped) *vigil.Skipped {
	if s.Total == 0 {
		return nil
	}
	out := &vigil.Skipped{Total: s.Total, ByKind: maps.Clone(s.ByKind)}
	for _, e := range s.Entries {
		out.Entries = append(out.Entries, vigil.SkippedEntry{Path: e.Path, Kind: e.Kind})
	}
	return out
}

// describeSkipped says, for the job's log, what was left out and why.
func describeSkipped(s *vigil.Skipped) string {
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(s.ByKind)) {
		kinds = append(kinds, fmt.Sprintf("%d %s", s.ByKind[k], plural(s.ByKind[k], k)))
	}
	var names []string
	for _, e := range s.Entries {
		names = append(names, fmt.Sprintf("%s (%s)", e.Path, e.Kind))
	}
	more := ""
	if n := s.Total - int64(len(s.Entries)); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("skipped %d %s that no snapshot can hold (%s): %s%s; a restore does not bring them back: the programs that made them make them again when they start",
		s.Total, plural(s.Total, "entry"), strings.Join(kinds, ", "), strings.Join(names, ", "), more)
}

func plural(n int64, word string) string {
	switch {
	case n == 1:
		return word
	case strings.HasSuffix(word, "y"):
		return word[:len(word)-1] + "ies"
	}
	return word + "s"
}
