package restic

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// CompareResult is what Compare checked: the entries of each kind, the
// bytes of the files, and what differs (at most maxMismatches, then a
// count of the rest).
type CompareResult struct {
	Files, Dirs, Symlinks, Bytes int64
	Mismatches                   []string
}

const maxMismatches = 20

// Compare checks folder dir, a restore of folder root of snapshot id,
// against restic's listing of that folder: every entry is there with its
// type, and a file with its size, permissions and modification time; the
// copy has nothing the snapshot lacks. It reads no content: a restore with
// RestoreOptions.Verify has had restic read back every file it wrote and
// check it against the snapshot, and this finds what that does not look
// at (an entry missing, left over, or of another kind or mode). A link is
// checked to be a link: restic's listing does not give its target.
func (r *Repo) Compare(ctx context.Context, id, root, dir string) (CompareResult, error) {
	nodes, err := r.List(ctx, id)
	if err != nil {
		return CompareResult{}, err
	}
	want := map[string]Node{}
	prefix := strings.TrimSuffix(root, "/") + "/"
	for _, n := range nodes {
		if rel, ok := strings.CutPrefix(n.Path, prefix); ok && rel != "" {
			want[rel] = n
		}
	}
	var res CompareResult
	var mismatches []string
	seen := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel := filepath.ToSlash(p[len(dir)+1:])
		n, ok := want[rel]
		if !ok {
			mismatches = append(mismatches, rel+": in the copy, not in snapshot "+short(id))
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		seen[rel] = true
		info, err := d.Info()
		if err != nil {
			return err
		}
		if got := kind(info.Mode()); got != n.Type {
			mismatches = append(mismatches, fmt.Sprintf("%s: a %s in the copy, a %s in snapshot %s", rel, got, n.Type, short(id)))
			return nil
		}
		switch n.Type {
		case "dir":
			res.Dirs++
		case "symlink":
			res.Symlinks++
		case "file":
			res.Files++
			res.Bytes += info.Size()
			if info.Size() != n.Size {
				mismatches = append(mismatches, fmt.Sprintf("%s: size %d in the copy, %d in snapshot %s", rel, info.Size(), n.Size, short(id)))
			}
			if !info.ModTime().Equal(n.MTime) {
				mismatches = append(mismatches, fmt.Sprintf("%s: modified %s in the copy, %s in snapshot %s", rel, info.ModTime().UTC().Format("2006-01-02T15:04:05.999999999Z"), n.MTime.UTC().Format("2006-01-02T15:04:05.999999999Z"), short(id)))
			}
		}
		if n.Type != "symlink" && perm(info.Mode()) != perm(os.FileMode(n.Mode)) {
			mismatches = append(mismatches, fmt.Sprintf("%s: mode %v in the copy, %v in snapshot %s", rel, perm(info.Mode()), perm(os.FileMode(n.Mode)), short(id)))
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("compare %s with snapshot %s of restic repository %s: %w", dir, short(id), r.cfg.Repository, err)
	}
	var missing []string
	for rel := range want {
		// below a folder the copy lacks, only the folder is named
		if parent := path.Dir(rel); !seen[rel] && (parent == "." || seen[parent]) {
			missing = append(missing, rel)
		}
	}
	slices.Sort(missing)
	for _, rel := range missing {
		mismatches = append(mismatches, fmt.Sprintf("%s: in snapshot %s, missing from the copy", rel, short(id)))
	}
	if len(mismatches) > maxMismatches {
		mismatches = append(mismatches[:maxMismatches], fmt.Sprintf("and %d more", len(mismatches)-maxMismatches))
	}
	res.Mismatches = mismatches
	return res, nil
}

// kind is restic's name for the type of an entry of mode m.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	case m&os.ModeNamedPipe != 0:
		return "fifo"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "chardev"
	case m&os.ModeDevice != 0:
		return "dev"
	}
	return "irregular"
}

// perm is what of a mode Compare compares: permissions, setuid, setgid
// and sticky. restic's listing gives modes in Go's os.FileMode encoding.
func perm(m os.FileMode) os.FileMode {
	return m & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

func short(id string) string { return id[:min(len(id), 8)] }
