package vault

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/ignorefs"
	"github.com/kopia/kopia/fs/virtualfs"
	"github.com/kopia/kopia/snapshot/policy"
)

// Excludes are the rules by which a backup leaves entries of its folder
// out on purpose. The zero value leaves nothing out.
type Excludes struct {
	// Patterns are gitignore-style, as the lines of a .kopiaignore file
	// at the top of the folder ("*.tmp", "node_modules/", "cache/**");
	// kopia matches them.
	Patterns []string
	// IfPresent, when set, leaves out every folder below the top that
	// holds a file or folder of this name (".nobackup"), with all it holds.
	IfPresent string
	// OneFileSystem leaves out what is mounted inside the folder: the
	// mount point and all below it.
	OneFileSystem bool
	// LargerThan, when more than 0, leaves out files larger than this many
	// bytes.
	LargerThan int64
}

// The rules an Excluded counts by.
const (
	ExcludedByPattern    = "pattern"
	ExcludedByMarker     = "marker"
	ExcludedByFileSystem = "other file system"
	ExcludedBySize       = "size"
)

// maxExcludedListed bounds the excluded entries a backup names one by one.
const maxExcludedListed = 20

// Excluded counts the entries a backup's exclude rules left out. An
// excluded folder counts once: what it holds is never read.
type Excluded struct {
	Total int64
	// ByRule counts them by the rule that left them out: ExcludedByPattern
	// (a pattern, or a .kopiaignore file in the folder), ExcludedByMarker,
	// ExcludedByFileSystem, ExcludedBySize.
	ByRule map[string]int64
	// Bytes is the size of the excluded files, not counting what excluded
	// folders hold.
	Bytes int64
	// Paths names the first maxExcludedListed of them, relative to the
	// folder, in the order the backup met them.
	Paths []string
}

// excludeRecorder counts what the exclude rules leave out. Kopia applies
// the patterns and reports each entry they leave out to the upload's
// progress; the other rules vigil applies below kopia, as it reads the
// folder (see rulesDir): kopia's own MaxFileSize and OneFileSystem leave
// entries out without reporting them, and a backup must say what it lacks.
type excludeRecorder struct {
	rules Excludes

	mu       sync.Mutex
	excluded Excluded
	// seen holds the paths counted: kopia reads a folder twice when it
	// first walks the tree to estimate its size.
	seen map[string]bool
}

func (r *excludeRecorder) add(p, rule string, size int64) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.seen[p] {
		return
	}

	if r.seen == nil {
		r.seen = map[string]bool{}
		r.excluded.ByRule = map[string]int64{}
	}

	r.seen[p] = true
	r.excluded.Total++
	r.excluded.ByRule[rule]++
	r.excluded.Bytes += size

	if len(r.excluded.Paths) < maxExcludedListed {
		r.excluded.Paths = append(r.excluded.Paths, p)
	}
}

func (r *excludeRecorder) result() Excluded {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.excluded
}

// policyOverride is the policy that has kopia match the patterns, as the
// source's own policy.
func (r *excludeRecorder) policyOverride() *policy.Policy {
	if len(r.rules.Patterns) == 0 {
		return nil
	}

	return &policy.Policy{FilesPolicy: policy.FilesPolicy{IgnoreRules: r.rules.Patterns}}
}

// excludes reports whether the rules vigil applies itself leave out e, an
// entry of parent (at rel below the source), and counts it if so.
func (r *excludeRecorder) excludes(ctx context.Context, parent fs.Directory, rel string, e fs.Entry) bool {
	if r == nil {
		return false
	}

	p := path.Join(rel, e.Name())

	if r.rules.OneFileSystem && e.Device().Dev != parent.Device().Dev {
		r.add(p, ExcludedByFileSystem, 0)
		return true
	}

	if r.rules.LargerThan > 0 && e.Mode().IsRegular() && e.Size() > r.rules.LargerThan {
		r.add(p, ExcludedBySize, e.Size())
		return true
	}

	if d, ok := e.(fs.Directory); ok && r.rules.IfPresent != "" {
		if _, err := d.Child(ctx, r.rules.IfPresent); err == nil {
			r.add(p, ExcludedByMarker, 0)
			return true
		}
	}

	return false
}

// CheckPatterns reports the first of patterns that kopia cannot read
// (an unclosed "[", a trailing "\"), so that a bad pattern is found when
// vigil starts rather than by every backup of the resource.
func CheckPatterns(ctx context.Context, patterns []string) error {
	for _, p := range patterns {
		tree := policy.BuildTree(map[string]*policy.Policy{
			".": {FilesPolicy: policy.FilesPolicy{IgnoreRules: []string{p}}},
		}, policy.DefaultPolicy)
		// Listing a folder through kopia's ignore rules parses them.
		it, err := ignorefs.New(virtualfs.NewStaticDirectory(".", nil), tree).Iterate(ctx)
		if err != nil {
			return fmt.Errorf("exclude pattern %q: %w", p, errors.Unwrap(err))
		}
		it.Close()
	}

	return nil
}
