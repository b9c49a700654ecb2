package cli

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/config"
)

// TestInitWritesAConfigThatLoads: what init writes loads with the real
// loader, passwords included, and names what the issue asks for: one
// folder vault, the --path folder, a nightly plan, a restore test of every
// backup, the data dir under --dir; the password is new and mode 0600.
func TestInitWritesAConfigThatLoads(t *testing.T) {
	root := t.TempDir()
	docs := filepath.Join(root, "my docs")
	os.Mkdir(docs, 0o755)
	dir := filepath.Join(root, "vigil")
	var stdout bytes.Buffer
	g := &globalOptions{stdout: &stdout, stderr: &stdout}
	if err := runInit(g, initOptions{Dir: dir, Paths: []string{docs}, Listen: config.DefaultListen}, strings.NewReader(""), false); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "vigil.yaml"))
	if err != nil {
		t.Fatalf("the config init wrote does not load: %v", err)
	}
	if err := cfg.LoadPasswords(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Vaults) != 1 || cfg.Vaults[0].Storage != filepath.Join(dir, "vaults/local") || len(cfg.Vaults[0].Password) < 40 {
		t.Errorf("vaults: %+v", cfg.Vaults)
	}
	if len(cfg.Resources) != 1 || cfg.Resources[0].Name != "my-docs" || cfg.Resources[0].Type != "directory" || cfg.Resources[0].Path != docs {
		t.Errorf("resources: %+v", cfg.Resources)
	}
	if len(cfg.BackupPlans) != 1 || cfg.BackupPlans[0].Schedule != "0 2 * * *" || cfg.BackupPlans[0].Vault != "local" {
		t.Errorf("backup plans: %+v", cfg.BackupPlans)
	}
	if len(cfg.RestoreTesting) != 1 || !cfg.RestoreTesting[0].OnBackupCompleted {
		t.Errorf("restore testing: %+v", cfg.RestoreTesting)
	}
	if cfg.DataDir != filepath.Join(dir, "vigil-data") {
		t.Errorf("data_dir %s, want it under %s", cfg.DataDir, dir)
	}
	info, err := os.Stat(filepath.Join(dir, "vault-password"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("vault-password: %v, mode %v; want mode 0600", err, info.Mode())
	}
	for _, want := range []string{filepath.Join(dir, "vigil.yaml"), filepath.Join(dir, "vault-password"), "cd " + dir, "vigil serve",
		"vigil backup start --resource my-docs --vault local --wait", "vigil jobs list --type restore"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("init's output does not say %q:\n%s", want, stdout.String())
		}
	}

	// A second init into another folder generates another password.
	other := filepath.Join(root, "other")
	if err := runInit(g, initOptions{Dir: other, Paths: []string{docs}, Listen: config.DefaultListen}, strings.NewReader(""), false); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "vault-password"))
	b, _ := os.ReadFile(filepath.Join(other, "vault-password"))
	if bytes.Equal(a, b) {
		t.Errorf("two inits wrote the same password %q", a)
	}
}

// TestInitRefuses: init overwrites nothing and writes nothing when it
// refuses, and says what to pass.
func TestInitRefuses(t *testing.T) {
	root := t.TempDir()
	docs := filepath.Join(root, "docs")
	os.Mkdir(docs, 0o755)
	g := &globalOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	for _, existing := range []string{"vigil.yaml", "vault-password", "vaults/local", "vigil-data"} {
		dir := filepath.Join(root, strings.ReplaceAll(existing, "/", "-"))
		os.MkdirAll(filepath.Dir(filepath.Join(dir, existing)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, existing), []byte("mine\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := runInit(g, initOptions{Dir: dir, Paths: []string{docs}, Listen: config.DefaultListen}, strings.NewReader(""), false)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, existing)+" exists already") {
			t.Errorf("init with %s present: %v, want a refusal naming it", existing, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, existing)); string(b) != "mine\n" {
			t.Errorf("init changed %s: %q", existing, b)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("init refused but wrote into %s: %v", dir, entries)
		}
	}

	for _, tt := range []struct {
		name string
		opts initOptions
		want string
	}{
		{"no --path off a terminal", initOptions{Dir: filepath.Join(root, "a")}, "pass --path FOLDER"},
		{"a folder that does not exist", initOptions{Dir: filepath.Join(root, "b"), Paths: []string{filepath.Join(root, "nope")}}, "give a folder that exists"},
		{"the vault inside the backed-up folder", initOptions{Dir: filepath.Join(docs, "vigil"), Paths: []string{docs}}, "pass --dir with a folder outside it"},
	} {
		err := runInit(g, tt.opts, strings.NewReader(""), false)
		if code := exitCode(err); err == nil || code != ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: exit %d, %v; want exit 2 saying %q", tt.name, code, err, tt.want)
		}
		if _, err := os.Stat(tt.opts.Dir); err == nil {
			t.Errorf("%s: init created %s", tt.name, tt.opts.Dir)
		}
	}
}

// TestInitAsks: on a terminal init asks for the folders (the first one
// defaulting to the current folder) and for where to write, proposing a
// folder next to the backed-up one when the current folder is inside it.
func TestInitAsks(t *testing.T) {
	cwd := "/home/ann/work"
	for _, tt := range []struct {
		name    string
		opts    initOptions
		answers string
		want    initOptions
		prompts []string
	}{
		{"all defaults", initOptions{}, "\n\n\n", initOptions{Paths: []string{"/home/ann/work"}, Dir: "/home/ann/work-vigil"},
			[]string{"Folder to back up [/home/ann/work]: ", "Another folder to back up (Enter: no more): ", "Folder for vigil.yaml, the vault and the catalog [/home/ann/work-vigil]: "}},
		{"two folders, own dir", initOptions{}, "/srv/docs\n/srv/photos\n\n/etc/vigil\n", initOptions{Paths: []string{"/srv/docs", "/srv/photos"}, Dir: "/etc/vigil"},
			[]string{"Folder to back up [/home/ann/work]: ", "[/home/ann/work]: "}},
		{"folders elsewhere: dir defaults to here", initOptions{}, "/srv/docs\n\n\n", initOptions{Paths: []string{"/srv/docs"}, Dir: "/home/ann/work"},
			[]string{"the catalog [/home/ann/work]: "}},
		{"--path given: only the folder is asked", initOptions{Paths: []string{"/srv/docs"}}, "\n", initOptions{Paths: []string{"/srv/docs"}, Dir: "/home/ann/work"},
			[]string{"the catalog [/home/ann/work]: "}},
		{"both flags: nothing is asked", initOptions{Paths: []string{"/srv/docs"}, Dir: "/x"}, "", initOptions{Paths: []string{"/srv/docs"}, Dir: "/x"}, nil},
	} {
		var out bytes.Buffer
		got, err := askInit(bufio.NewReader(strings.NewReader(tt.answers)), &out, tt.opts, cwd)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got.Dir != tt.want.Dir || strings.Join(got.Paths, ",") != strings.Join(tt.want.Paths, ",") {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		for _, p := range tt.prompts {
			if !strings.Contains(out.String(), p) {
				t.Errorf("%s: no prompt %q in:\n%s", tt.name, p, out.String())
			}
		}
		if tt.prompts == nil && out.Len() > 0 {
			t.Errorf("%s: asked %q", tt.name, out.String())
		}
	}

	// A terminal closed before the first answer writes nothing.
	if _, err := askInit(bufio.NewReader(strings.NewReader("")), &bytes.Buffer{}, initOptions{}, cwd); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("input ended before an answer: %v", err)
	}
}
