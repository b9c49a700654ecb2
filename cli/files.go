package cli

import (
	"fmt"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/api"
)

// newRecoveryPointsFilesCommands are the commands that look inside
// recovery points: ls, dump and diff.
func newRecoveryPointsFilesCommands(g *globalOptions) []*cobra.Command {
	var recursive bool
	ls := &cobra.Command{
		Use:   "ls ID [PATH]",
		Short: "List the files of a folder in a recovery point (its root by default), as ls -l does",
		Long: `List the entries of a folder in a recovery point: mode, size in bytes (for a
folder, of the files below it), modification time and name. PATH is relative to
the recovery point's root, "/" between names ("sub/dir"); a file's path lists
that file. --json prints the listing with every entry.

` + exitCodesHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError(fmt.Errorf("%s needs a recovery point id and, optionally, a path in it (usage: %s)", cmd.CommandPath(), cmd.UseLine()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p := ""
			if len(args) == 2 {
				p = args[1]
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			l, err := c.Files(cmd.Context(), args[0], p, recursive)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(l)
			}
			if l.Note != "" {
				fmt.Fprintf(g.stderr, "%s\n", printable(l.Note))
			}
			return g.printFiles(l)
		},
	}
	ls.Flags().BoolVarP(&recursive, "recursive", "r", false, "list everything below the folder")

	dump := &cobra.Command{
		Use:   "dump ID PATH",
		Short: "Write one file of a recovery point to standard output",
		Long: `Write the content of one file of a recovery point to standard output, as it
arrives from the vault: 'vigil recovery-points dump rp-… etc/app.conf > app.conf'.
A folder is refused: list it with 'vigil recovery-points ls', restore it with
'vigil restore start --path'.

` + exitCodesHelp,
		Args: exactArgs(2, "a recovery point id and the path of a file in it"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			_, err = c.FileContent(cmd.Context(), args[0], args[1], g.stdout)
			return err
		},
	}

	diff := &cobra.Command{
		Use:   "diff ID-A ID-B",
		Short: "List the files added, removed and changed from one recovery point to another of the same resource",
		Long: `List what changed from recovery point ID-A to ID-B, two backups of one
resource in one vault, one line per path: "+" added, "-" removed, "M" changed,
with what changed (contents, mode, time, type, link target). What is below an
added or removed folder is listed too; a folder counts as changed only when its
mode does, since its time follows what it holds.

` + exitCodesHelp,
		Args: exactArgs(2, "two recovery point ids"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			d, err := c.DiffRecoveryPoints(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(d)
			}
			for _, ch := range d.Changes {
				switch ch.Change {
				case "added":
					fmt.Fprintf(g.stdout, "+ %s\n", printablePath(ch.Path))
				case "removed":
					fmt.Fprintf(g.stdout, "- %s\n", printablePath(ch.Path))
				default:
					fmt.Fprintf(g.stdout, "M %s (%s)\n", printablePath(ch.Path), strings.Join(ch.What, ", "))
				}
			}
			fmt.Fprintf(g.stdout, "%d added, %d removed, %d changed\n", d.Added, d.Removed, d.Changed)
			return nil
		},
	}
	return []*cobra.Command{ls, dump, diff}
}

// printFiles writes a listing as ls -l does: mode, size, time, name (a
// link with its target). A recursive listing names each entry by its path
// below the listed folder.
func (g *globalOptions) printFiles(l api.FileListing) error {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	entries := l.Entries
	if l.Entry.Type != "dir" {
		entries = []api.FileEntry{l.Entry}
	}
	for _, e := range entries {
		name := path.Base(e.Path)
		if l.Entry.Type == "dir" && l.Path == "" {
			name = e.Path
		} else if l.Entry.Type == "dir" {
			name = strings.TrimPrefix(e.Path, l.Path+"/")
		}
		name = printablePath(name)
		if e.Type == "symlink" {
			name += " -> " + printablePath(e.LinkTarget)
		}
		t := e.ModTime
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", e.ModeString, e.Size, formatTime(&t), name)
	}
	return w.Flush()
}
