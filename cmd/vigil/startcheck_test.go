package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestStartChecks: what would fail tonight's backup is found at start.
// An app whose program does not exist stops `vigil serve`; a folder that
// does not exist now and a database server that does not answer are
// warnings, in the server's log and on the console's overview. `vigil
// config check` lists them all without serving (also while vigil serves),
// with "did you mean" for a mistyped key, and exits 1 only for errors.
func TestStartChecks(t *testing.T) {
	t.Parallel()
	downDB := "postgres://nobody@" + freeAddr(t) + "/orders" // nothing listens there
	base := `  - name: orders
    type: postgres
    dsn: ` + downDB + "\n"
	e := newTestEnv(t, base+`  - name: web
    type: app
    path: ./docs
    run: ["vigil-no-such-program", "--port", "{{.Port}}"]
`)

	// Without serving: every problem, errors and warnings.
	r := e.run("config", "check")
	for _, want := range []string{
		`error    resource "web": run: program vigil-no-such-program is not on PATH: install it, or give its full path`,
		`warning  resource "missing": folder ` + e.path("no-such-folder") + ` does not exist now, so its backups fail until it does`,
		`warning  resource "orders": cannot reach the database ` + downDB,
		"1 error and 2 warnings: vigil serve would refuse to start",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check does not say %q; it printed:\n%s", want, r.stdout)
		}
	}
	if r.code != 1 {
		t.Errorf("config check with an error: exit %d, want 1", r.code)
	}
	// The vault is new: checking it created nothing.
	if _, err := os.Stat(e.path("vaults")); !os.IsNotExist(err) {
		t.Errorf("config check created the vault's folder: %v", err)
	}

	// serve refuses, naming the program.
	code, out := e.serveRefused()
	if code != 2 || !strings.Contains(out, "vigil-no-such-program is not on PATH") || strings.Contains(out, "vigil serving") {
		t.Errorf("serve with an unknown program: exit %d, output:\n%s", code, out)
	}

	// Without the app, only warnings: config check exits 0, and serve
	// starts, warning in its log and on the overview.
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	noApp := strings.Replace(string(cfg), `  - name: web
    type: app
    path: ./docs
    run: ["vigil-no-such-program", "--port", "{{.Port}}"]
`, "", 1)
	if err := os.WriteFile(e.config, []byte(noApp), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("config", "check")
	if r.code != 0 || !strings.Contains(r.stdout, "2 warnings, no errors: vigil serve would start") {
		t.Errorf("config check with warnings only: exit %d, output:\n%s", r.code, r.stdout)
	}
	e.serve()
	for _, want := range []string{
		`level=WARN msg="start-up check: resource \"missing\"" warning="folder ` + e.path("no-such-folder") + ` does not exist now`,
		`level=WARN msg="start-up check: resource \"orders\"" warning="cannot reach the database ` + downDB,
	} {
		if !strings.Contains(e.serverLog.String(), want) {
			t.Errorf("the server's log does not say %q; it is:\n%s", want, e.serverLog)
		}
	}
	page := e.consolePage("/")
	for _, want := range []string{`id="start-warnings"`, "2 start-up warnings", `resource &#34;missing&#34;`, e.path("no-such-folder") + " does not exist now"} {
		if !strings.Contains(page, want) {
			t.Errorf("the overview does not show %q; it is:\n%s", want, page)
		}
	}
	// While vigil serves, with its vault open: the check still opens it.
	if r := e.run("config", "check"); r.code != 0 {
		t.Errorf("config check while serving: exit %d, output:\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.stop()

	// The vault exists now: a wrong password is an error.
	e.password = "not the password"
	r = e.run("config", "check")
	if r.code != 1 || !strings.Contains(r.stdout, `error    vault "lab-vault": open vault "lab-vault": wrong vault password: check that password_env or password_file`) {
		t.Errorf("config check with a wrong password: exit %d, output:\n%s", r.code, r.stdout)
	}

	// A mistyped key: named, with the key it was meant to be, and the
	// other problems of the file with it.
	typo := strings.Replace(noApp, "    storage: ./vaults/lab-vault\n", "    storag: ./vaults/lab-vault\n", 1)
	typo = strings.Replace(typo, "    path: ./docs\n", "    path: ./docs\n    valdate: [{checksum: {}}]\n", 1)
	if err := os.WriteFile(e.path("typo.yaml"), []byte(typo), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("config", "check", "--config", e.path("typo.yaml"))
	for _, want := range []string{
		`unknown key "storag" in a vault: did you mean "storage"?`,
		`unknown key "valdate" in a resource: did you mean "validate"?`,
		"vaults[0].storage: is missing",
		"3 errors: vigil serve would refuse to start",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check of a mistyped file does not say %q; it printed:\n%s", want, r.stdout)
		}
	}
	if r.code != 1 {
		t.Errorf("config check of a mistyped file: exit %d, want 1", r.code)
	}
}

// consolePage signs in to the console with the API token and returns the
// page at path.
func (e *testEnv) consolePage(path string) string {
	e.t.Helper()
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		e.t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	base := "http://" + e.listen
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"token": {strings.TrimSpace(string(token))}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(base + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("console %s: status %d: %s", path, resp.StatusCode, b.String())
	}
	return b.String()
}
