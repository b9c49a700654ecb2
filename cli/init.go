package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vigil-backup/vigil/config"
)

type initOptions struct {
	Dir    string
	Paths  []string
	Listen string
}

// The names init gives what it writes. They are relative to the config's
// folder in the file, so the folder can be moved as a whole.
const (
	initConfigFile   = config.DefaultPath
	initPasswordFile = "vault-password"
	initVaultName    = "local"
	initVaultDir     = "vaults/local"
	initDataDir      = "vigil-data"
	initPlanName     = "nightly"
	initTestPlanName = "every-backup"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init [--dir DIR] [--path FOLDER ...]",
		Short: "Write a first, working configuration and a vault password",
		Long: `Write a vigil.yaml that works as it is into DIR (default: the current
folder): one vault in a folder under DIR, one directory resource for each
--path, a backup of every resource each night at 02:00 (kept 35 days), a
restore test of every backup as it completes, and the catalog under DIR.
The vault's password is generated and written to DIR/vault-password (mode
0600), which the config names.

On a terminal, init asks for what the flags do not give: the folders to
back up and where to write. Otherwise it asks nothing, and --path is
required.

init never overwrites anything: when vigil.yaml, vault-password, the vault's
folder or the data folder is already in DIR it refuses, naming it.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(g, opts, os.Stdin, term.IsTerminal(int(os.Stdin.Fd())))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", "", "folder to write vigil.yaml, the password, the vault and the catalog into (default: the current folder)")
	f.StringArrayVar(&opts.Paths, "path", nil, "folder to back up (repeatable: one resource each)")
	f.StringVar(&opts.Listen, "listen", config.DefaultListen, "address the server will listen on (server.listen)")
	return cmd
}

// initFolder is one folder to back up, with its resource name.
type initFolder struct {
	Name string
	Path string
}

// initSetup is what init writes, every path absolute.
type initSetup struct {
	Dir     string
	Listen  string
	Folders []initFolder
}

func runInit(g *globalOptions, opts initOptions, in io.Reader, interactive bool) error {
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("find the current folder: %w", err)
	}
	if interactive {
		if opts, err = askInit(bufio.NewReader(in), g.stdout, opts, cwd); err != nil {
			return err
		}
	}
	setup, err := resolveInit(opts, cwd)
	if err != nil {
		return usageError(err)
	}
	if err := writeInit(setup); err != nil {
		return err
	}
	printInitDone(g.stdout, setup, cwd)
	return nil
}

// askInit asks on the terminal for what the flags left out: the folders
// to back up (the first defaults to the current folder) and, without
// --dir, where to write (by default the current folder, or next to the
// backed-up folder when the current one is inside it, as a vault inside
// the folder it backs up would back itself up).
func askInit(in *bufio.Reader, out io.Writer, opts initOptions, cwd string) (initOptions, error) {
	if len(opts.Paths) == 0 {
		p, err := ask(in, out, "Folder to back up", cwd)
		if err != nil {
			return opts, err
		}
		opts.Paths = append(opts.Paths, p)
		for {
			p, err := ask(in, out, "Another folder to back up (Enter: no more)", "")
			if err != nil || p == "" {
				break
			}
			opts.Paths = append(opts.Paths, p)
		}
	}
	if opts.Dir == "" {
		def := cwd
		if first := absFrom(cwd, opts.Paths[0]); within(cwd, first) {
			def = strings.TrimSuffix(first, string(filepath.Separator)) + "-vigil"
		}
		d, err := ask(in, out, "Folder for vigil.yaml, the vault and the catalog", def)
		if err != nil {
			return opts, err
		}
		opts.Dir = d
	}
	return opts, nil
}

// ask prints a question with its default and reads one line; an empty
// line takes the default. The end of the input before any answer is an
// error, so that a closed terminal does not write a config nobody chose.
func ask(in *bufio.Reader, out io.Writer, question, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(out, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(out, "%s: ", question)
	}
	line, err := in.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		fmt.Fprintln(out)
		return "", fmt.Errorf("read the answer: %w: nothing was written", err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return def, nil
	}
	return line, nil
}

// resolveInit checks the options and makes every path absolute: the
// folders to back up must exist, and the vault must not lie inside one
// of them.
func resolveInit(opts initOptions, cwd string) (initSetup, error) {
	if len(opts.Paths) == 0 {
		return initSetup{}, errors.New("no folder to back up: pass --path FOLDER (repeatable), for example 'vigil init --path /srv/docs'; on a terminal, init asks for it")
	}
	s := initSetup{Dir: absFrom(cwd, opts.Dir), Listen: opts.Listen}
	if s.Dir == "" {
		s.Dir = cwd
	}
	names := map[string]bool{}
	for _, p := range opts.Paths {
		path := absFrom(cwd, p)
		info, err := os.Stat(path)
		switch {
		case err != nil:
			return initSetup{}, fmt.Errorf("--path %s: %w: give a folder that exists", p, err)
		case !info.IsDir():
			return initSetup{}, fmt.Errorf("--path %s is not a folder: give the folder to back up (a single database file is an sqlite resource, see examples/sqlite.yaml)", p)
		case within(s.Dir, path):
			return initSetup{}, fmt.Errorf("--dir %s is inside the folder to back up, %s: each backup would hold the vault itself; pass --dir with a folder outside it", s.Dir, path)
		}
		s.Folders = append(s.Folders, initFolder{Name: resourceName(path, names), Path: path})
	}
	// The config init writes must load: a mistake here is vigil's, and
	// is better found now than by the person's first 'vigil serve'.
	if _, err := config.Parse([]byte(initConfig(s))); err != nil {
		return initSetup{}, fmt.Errorf("the config init would write does not load: %w", err)
	}
	return s, nil
}

// absFrom makes p absolute against dir; "" stays "".
func absFrom(dir, p string) string {
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[2:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// within reports whether path is folder or below it.
func within(path, folder string) bool {
	rel, err := filepath.Rel(folder, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resourceName names a folder's resource after its last element, with
// every character a name may not hold replaced by '-', and a number added
// when two folders end alike.
func resourceName(path string, taken map[string]bool) string {
	name := strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, filepath.Base(path)), "-.")
	if name == "" {
		name = "files"
	}
	unique := name
	for i := 2; taken[unique]; i++ {
		unique = fmt.Sprintf("%s-%d", name, i)
	}
	taken[unique] = true
	return unique
}

// initConfig is the text of the config init writes, with comments that
// say what each part does and how to change it.
func initConfig(s initSetup) string {
	var resources strings.Builder
	for _, f := range s.Folders {
		fmt.Fprintf(&resources, "  - name: %s\n    type: directory\n    path: %q\n", f.Name, f.Path)
	}
	return fmt.Sprintf(`# vigil's configuration, written by 'vigil init'. Relative paths are taken
# from this file's folder. 'vigil config check' checks it without serving.
server:
  listen: %s   # the API and the web console
data_dir: ./%s           # the catalog (SQLite), the API token, restore tests' copies

vaults:
  - name: %s
    storage: ./%s     # a Kopia repository, created by the first 'vigil serve'
    # The vault's encryption password. Keep a copy of it somewhere else:
    # without it nobody can read the backups, vigil included.
    password_file: ./%s

# What to back up: one directory resource per folder. A directory's
# restore test compares every restored file with the recovery point.
resources:
%s
backup_plans:
  - name: %s
    schedule: "0 2 * * *"   # every night at 02:00, in the server's time zone
    resources: ["*"]        # every resource above
    vault: %s
    expire_days: 35         # each recovery point is deleted 35 days after its backup

# Prove each backup restorable: as a backup completes, restore it into a
# new folder, compare it, and delete the copy.
restore_testing:
  - name: %s
    on_backup_completed: true
    resources: ["*"]
`, s.Listen, initDataDir, initVaultName, initVaultDir, initPasswordFile, resources.String(), initPlanName, initVaultName, initTestPlanName)
}

// writeInit writes the config and the password file, after checking that
// nothing init would write or create exists already: a second init must
// never replace a vault's password, which would leave its backups
// unreadable.
func writeInit(s initSetup) error {
	for _, name := range []string{initConfigFile, initPasswordFile, initVaultDir, initDataDir} {
		p := filepath.Join(s.Dir, name)
		if _, err := os.Lstat(p); err == nil {
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s exists already: vigil init never overwrites; pass --dir with a new folder, or move it away", p)}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("check %s: %w", p, err)
		}
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", s.Dir, err)
	}
	password, err := generatePassword()
	if err != nil {
		return err
	}
	if err := createFile(filepath.Join(s.Dir, initPasswordFile), password+"\n", 0o600); err != nil {
		return err
	}
	return createFile(filepath.Join(s.Dir, initConfigFile), initConfig(s), 0o644)
}

// generatePassword returns 32 random bytes, base64url: 256 bits, and text
// that survives copying by hand.
func generatePassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the vault's password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// createFile writes a new file; one that appeared since the check is
// refused (O_EXCL), not overwritten.
func createFile(path, text string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// printInitDone says where each file is and what to run next, with the
// commands as they are typed in the config's folder.
func printInitDone(w io.Writer, s initSetup, cwd string) {
	fmt.Fprintf(w, "Wrote %s\n", filepath.Join(s.Dir, initConfigFile))
	for _, f := range s.Folders {
		fmt.Fprintf(w, "  resource %s: the folder %s\n", f.Name, f.Path)
	}
	fmt.Fprintf(w, "  vault %s: %s (the first 'vigil serve' creates it)\n", initVaultName, filepath.Join(s.Dir, initVaultDir))
	fmt.Fprintf(w, "  plan %s backs up every resource at 02:00; plan %s restore-tests each backup\n", initPlanName, initTestPlanName)
	fmt.Fprintf(w, "Wrote %s (mode 0600)\n", filepath.Join(s.Dir, initPasswordFile))
	fmt.Fprintf(w, "  the vault's password: keep a copy somewhere else, the backups cannot be read without it\n")
	fmt.Fprintf(w, "\nNext:\n")
	if s.Dir != cwd {
		fmt.Fprintf(w, "  cd %s\n", s.Dir)
	}
	fmt.Fprintf(w, "  vigil config check          # every start-up check, without serving\n")
	fmt.Fprintf(w, "  vigil serve                 # API, console, scheduler and workers; leave it running\n")
	fmt.Fprintf(w, "Then, in another shell in %s:\n", s.Dir)
	fmt.Fprintf(w, "  vigil backup start --resource %s --vault %s --wait\n", s.Folders[0].Name, initVaultName)
	fmt.Fprintf(w, "  vigil jobs list --type restore                 # the restore test that backup started, and its verdict\n")
	fmt.Fprintf(w, "  vigil events list --type RESTORE_TEST_STATUS   # each verdict, as a notification would tell it\n")
}
