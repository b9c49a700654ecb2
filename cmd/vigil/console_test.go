package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// browser starts a headless Chromium for the test (Debian's chromium,
// which .ci/run installs) and returns a context to drive it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: the console tests drive a real browser; install it with apt-get install chromium (.ci/run does)")
	}
	// Not t.TempDir: Chromium's helper processes may still write into
	// the profile for a moment after the browser has exited, which made
	// TempDir's own clean-up fail the test ("directory not empty").
	profile, err := os.MkdirTemp("", "vigil-console-test-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 720),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Generous: on a loaded 2-core machine, Chromium itself is slow.
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
		removeProfile(t, profile)
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// removeProfile removes a Chromium profile once its last writer has
// gone, trying again for a few seconds.
func removeProfile(t *testing.T, dir string) {
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
	}
	t.Errorf("remove the browser's profile %s: %v", dir, err)
}

// screenshot writes the page as a PNG into the test's artifacts
// (go test -artifacts keeps them).
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s at %s", path, time.Now().Format("15:04:05.000"))
	return path
}

// TestConsoleSignIn: without the token the console shows the sign-in page
// and no data; a wrong token is refused; the right one opens the overview,
// where each resource shows its last backup, its last restore test and its
// targets, red where one is missed.
func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
    targets: {rto: 5m, rpo: 24h}
`)
	e.serve()
	b := e.backup("docs")
	test := e.waitTest(e.testOf(b.RecoveryPointID).ID)
	if test.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test: %+v", test)
	}
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + e.listen
	// serve says at start where the console is and where its token is.
	if want := "console: open " + base + "/ and sign in with the token in " + e.path("vigil-data/api-token"); !strings.Contains(e.serverLog.String(), want) {
		t.Errorf("the server's log does not say %q:\n%s", want, e.serverLog)
	}
	ctx := browser(t)

	// No session: the sign-in page, and nothing about the resources.
	var url, body string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Location(&url),
		chromedp.Text(`body`, &body, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(url, "/login") || strings.Contains(body, "docs") || strings.Contains(body, b.ID) {
		t.Fatalf("without signing in: at %s, page %q", url, body)
	}

	// A wrong token: refused, still no data.
	var errText string
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#token`, "not-the-token", chromedp.ByID),
		// Submit, not a click at the button's coordinates: on a loaded
		// machine the style sheet may arrive between measuring and
		// clicking, and move the button.
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`#login-error`, chromedp.ByID),
		chromedp.Text(`#login-error`, &errText, chromedp.ByID),
		chromedp.Text(`body`, &body, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "not this server's API token") || strings.Contains(body, "docs") {
		t.Fatalf("wrong token: %q / %q", errText, body)
	}
	screenshot(t, ctx, "console-wrong-token")

	// The right token: the overview.
	var docsRow, missingRow, summary string
	err = chromedp.Run(ctx,
		chromedp.SetValue(`#token`, strings.TrimSpace(string(token)), chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`h1`, chromedp.ByQuery),
		chromedp.Text(`body`, &body, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "Overview") {
		t.Fatalf("after signing in: %q", body)
	}
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`#resources`, chromedp.ByID),
		chromedp.Text(`tr[data-resource="docs"]`, &docsRow, chromedp.ByQuery),
		chromedp.Text(`tr[data-resource="missing"]`, &missingRow, chromedp.ByQuery),
		chromedp.Text(`#summary`, &summary, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"COMPLETED", "SUCCESSFUL", "target 24h00m", "target 5m00s"} {
		if !strings.Contains(docsRow, want) {
			t.Errorf("docs row %q lacks %q", docsRow, want)
		}
	}
	var docsClass, missingClass string
	chromedp.Run(ctx,
		chromedp.AttributeValue(`tr[data-resource="docs"]`, "class", &docsClass, nil, chromedp.ByQuery),
		chromedp.AttributeValue(`tr[data-resource="missing"]`, "class", &missingClass, nil, chromedp.ByQuery),
	)
	if docsClass != "ok" || missingClass != "red" || !strings.Contains(missingRow, "never backed up") || !strings.Contains(summary, "1 needs attention") {
		t.Errorf("docs %q (%s), missing %q (%s), summary %q", docsRow, docsClass, missingRow, missingClass, summary)
	}
	screenshot(t, ctx, "console-overview")

	// The session cookie is HttpOnly: the page's scripts cannot read it.
	var cookies string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.cookie`, &cookies)); err != nil || cookies != "" {
		t.Errorf("document.cookie = %q, %v: the session must be HttpOnly", cookies, err)
	}
	e.stop()
}

// signIn signs the browser in with the server's token.
func signIn(t *testing.T, ctx context.Context, e *testEnv) string {
	t.Helper()
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + e.listen
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.SetValue(`#token`, strings.TrimSpace(string(token)), chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`#resources`, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return base
}

// waitText polls the text of sel until it holds want, and returns it.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var text string
	for time.Now().Before(deadline) {
		if err := chromedp.Run(ctx, chromedp.Text(sel, &text, chromedp.ByQuery, chromedp.AtLeast(0))); err == nil && strings.Contains(text, want) {
			return text
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q (last %q)", sel, want, text)
	return ""
}

// TestConsoleLiveJobs: an on-demand backup started from the form; its
// job turns COMPLETED and its restore test SUCCESSFUL on the jobs page
// without a reload; the job's page shows its fields and log.
func TestConsoleLiveJobs(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
`)
	// The restore test takes a few seconds to validate, so that the page
	// is seen to change while it is open.
	cfg, _ := os.ReadFile(e.config)
	cfg = []byte(strings.Replace(string(cfg), "    path: ./docs\n", "    path: ./docs\n    validate:\n      - checksum: {}\n      - command: {run: [\"sleep\", \"3\"]}\n", 1))
	os.WriteFile(e.config, cfg, 0o600)
	e.serve()
	ctx := browser(t)
	base := signIn(t, ctx, e)

	// A bad form: errors by the fields, nothing started.
	var expErr string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/jobs?tab=backup"),
		chromedp.WaitVisible(`#backup-action`, chromedp.ByID),
		chromedp.SetAttributeValue(`#backup-action`, "open", "", chromedp.ByID),
		chromedp.SetValue(`#backup-expiry`, "-2", chromedp.ByID),
		chromedp.Submit(`#backup-form`, chromedp.ByID),
		chromedp.WaitVisible(`#error-expire_days`, chromedp.ByID),
		chromedp.Text(`#error-expire_days`, &expErr, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(expErr, "must not be negative") {
		t.Fatalf("negative expiry: %q", expErr)
	}
	// So many days that a duration would wrap around to minutes.
	err = chromedp.Run(ctx,
		chromedp.SetAttributeValue(`#backup-action`, "open", "", chromedp.ByID),
		chromedp.SetValue(`#backup-expiry`, "213504", chromedp.ByID),
		chromedp.Submit(`#backup-form`, chromedp.ByID),
		chromedp.WaitVisible(`#error-expire_days`, chromedp.ByID),
		chromedp.Text(`#error-expire_days`, &expErr, chromedp.ByID),
	)
	if err != nil || !strings.Contains(expErr, "at most 36500") {
		t.Fatalf("huge expiry: %q, %v", expErr, err)
	}
	var jobs []vigil.BackupJob
	e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
	if len(jobs) != 0 {
		t.Fatalf("a refused form started %d backups", len(jobs))
	}

	// The form, filled in right.
	err = chromedp.Run(ctx,
		chromedp.SetValue(`#backup-resource`, "docs", chromedp.ByID),
		chromedp.SetValue(`#backup-vault`, "lab-vault", chromedp.ByID),
		chromedp.SetValue(`#backup-expiry`, "1", chromedp.ByID),
		chromedp.Submit(`#backup-form`, chromedp.ByID),
		chromedp.WaitVisible(`#jobs tbody tr`, chromedp.ByQuery),
		chromedp.Evaluate(`window.vigilPageLoad = Math.random()`, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	var marker float64
	chromedp.Run(ctx, chromedp.Evaluate(`window.vigilPageLoad`, &marker))
	waitText(t, ctx, `#jobs tbody tr:first-child [data-field="status"]`, "COMPLETED")
	e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
	if len(jobs) != 1 || jobs[0].Resource != "docs" || jobs[0].ExpireAt == nil || jobs[0].ExpireAt.Sub(jobs[0].CreatedAt) != 24*time.Hour {
		t.Fatalf("the form's backup: %+v", jobs)
	}

	// The restore tests tab: the test's verdict arrives without a reload.
	var atLoad string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/jobs?tab=restore"),
		chromedp.WaitVisible(`#jobs`, chromedp.ByID),
		chromedp.Evaluate(`window.vigilPageLoad = Math.random()`, nil),
		chromedp.Evaluate(`window.vigilPageLoad`, &marker),
		chromedp.Text(`#jobs tbody`, &atLoad, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `#jobs tbody tr:first-child [data-field="validation_status"]`, "SUCCESSFUL")
	waitText(t, ctx, `#jobs tbody tr:first-child [data-field="deletion_status"]`, "SUCCESSFUL")
	var after float64
	chromedp.Run(ctx, chromedp.Evaluate(`window.vigilPageLoad`, &after))
	if after != marker {
		t.Fatal("the page reloaded: the verdict must arrive live")
	}
	if strings.Contains(atLoad, "SUCCESSFUL") {
		t.Fatalf("the verdict was already there when the page loaded (%q): the test proves nothing live", atLoad)
	}
	screenshot(t, ctx, "console-jobs")

	// The job's page: its fields and its log.
	var fields, logText string
	err = chromedp.Run(ctx,
		chromedp.Click(`#jobs tbody tr:first-child a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#log`, chromedp.ByID),
		chromedp.Text(`#fields`, &fields, chromedp.ByID),
		chromedp.Text(`#log`, &logText, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"restore test (plan every-backup)", "SUCCESSFUL", "recovery time"} {
		if !strings.Contains(fields, want) {
			t.Errorf("job fields lack %q: %q", want, fields)
		}
	}
	for _, want := range []string{"restore test (plan every-backup)", "validation SUCCESSFUL", "clean-up SUCCESSFUL"} {
		if !strings.Contains(logText, want) {
			t.Errorf("job log lacks %q: %q", want, logText)
		}
	}
	screenshot(t, ctx, "console-job")
	e.stop()
}

// TestConsolePages: recovery points with the tests run on each, resources
// with their chart and the restore-test button, vaults, events, the
// restore form with its metadata; and a POST without the CSRF token
// starts nothing.
func TestConsolePages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
`)
	e.serve()
	b := e.backup("docs")
	e.waitTest(e.testOf(b.RecoveryPointID).ID)
	e.mustRun("vault", "verify", "lab-vault")
	ctx := browser(t)
	base := signIn(t, ctx, e)

	var text string
	for _, p := range []struct{ path, sel, want string }{
		{"/recovery-points", `tr[data-recovery-point="` + b.RecoveryPointID + `"]`, "SUCCESSFUL"},
		{"/vaults", `tr[data-vault="lab-vault"]`, "no damage found"},
		{"/events", `#events`, "RESTORE_TEST_STATUS"},
		{"/resources", `section[data-resource="docs"]`, "every-backup"},
	} {
		err := chromedp.Run(ctx, chromedp.Navigate(base+p.path), chromedp.WaitVisible(p.sel, chromedp.ByQuery), chromedp.Text(p.sel, &text, chromedp.ByQuery))
		if err != nil || !strings.Contains(text, p.want) {
			t.Fatalf("%s: %q, %v; want %q", p.path, text, err, p.want)
		}
	}
	var bars int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('section[data-resource="docs"] svg.chart rect.bar').length`, &bars)); err != nil || bars != 1 {
		t.Fatalf("the restore-test chart of docs has %d bars, %v; want 1", bars, err)
	}
	// With one test, the chart still reads: its axes are labelled, and
	// its bar says its value.
	var labels string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('section[data-resource="docs"] svg.chart text.tick, section[data-resource="docs"] svg.chart text.value')].map(t => t.textContent).join("|")`, &labels)); err != nil ||
		strings.Count(labels, "|") < 4 || !strings.Contains(labels, "0") {
		t.Fatalf("the restore-test chart's labels: %q, %v; want the axes' 0 and maxima, a date and the bar's value", labels, err)
	}
	screenshot(t, ctx, "console-resources")

	// Start restore test, from the resources page.
	var status string
	err := chromedp.Run(ctx,
		chromedp.Submit(`section[data-resource="docs"] form`, chromedp.ByQuery),
		chromedp.WaitVisible(`#log`, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `#validation`, "SUCCESSFUL")

	// Start restore, with its metadata shown and changed.
	target := filepath.Join(t.TempDir(), "docs-restored")
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/recovery-points/"+b.RecoveryPointID+"/restore"),
		chromedp.WaitVisible(`#meta-target_path`, chromedp.ByID),
		chromedp.SetValue(`#meta-target_path`, target, chromedp.ByID),
		chromedp.Submit(`#restore-form`, chromedp.ByID),
		chromedp.WaitVisible(`#status`, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	status = waitText(t, ctx, `#status`, "COMPLETED")
	if got, err := os.ReadFile(filepath.Join(target, "readme.txt")); err != nil || string(got) != "docs\n" {
		t.Fatalf("restore into %s (%s): %q, %v", target, status, got, err)
	}

	// A cross-site POST: the cookie alone (were it sent) starts nothing.
	jar := &http.Cookie{Name: "vigil_session", Value: sessionCookie(t, ctx)}
	var before []vigil.BackupJob
	e.mustJSON(&before, "jobs", "list", "--type", "backup")
	req, _ := http.NewRequest(http.MethodPost, base+"/backups", strings.NewReader("resource=docs&vault=lab-vault"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(jar)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var after []vigil.BackupJob
	e.mustJSON(&after, "jobs", "list", "--type", "backup")
	if resp.StatusCode != http.StatusForbidden || len(after) != len(before) {
		t.Fatalf("POST without the CSRF token: %d, backups %d → %d", resp.StatusCode, len(before), len(after))
	}
	e.stop()
}

// sessionCookie reads the browser's session cookie (HttpOnly, so not from
// the page: from the browser itself).
func sessionCookie(t *testing.T, ctx context.Context) string {
	t.Helper()
	var value string
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		cookies, err := network.GetCookies().Do(ctx)
		for _, c := range cookies {
			if c.Name == "vigil_session" {
				value = c.Value
			}
		}
		return err
	}))
	if err != nil || value == "" {
		t.Fatalf("session cookie: %q, %v", value, err)
	}
	return value
}

// noRedirects is a client that shows a redirect instead of following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// consoleRequest sends a request to the console with the session cookie,
// a form (POST) or none (GET), and headers; it returns the status, the
// Location and the body.
func consoleRequest(t *testing.T, method, url, cookie string, form neturl.Values, headers map[string]string) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "vigil_session", Value: cookie})
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// pageCSRF reads the CSRF token from a console page the cookie opens.
func pageCSRF(t *testing.T, base, cookie string) string {
	t.Helper()
	status, location, page := consoleRequest(t, http.MethodGet, base+"/jobs", cookie, nil, nil)
	m := csrfInput.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("GET /jobs with the session: %d (to %q), no CSRF token in the page", status, location)
	}
	return m[1]
}

// requireSignedOut checks that the cookie gets the sign-in page on /jobs.
func requireSignedOut(t *testing.T, base, cookie, why string) {
	t.Helper()
	if status, location, _ := consoleRequest(t, http.MethodGet, base+"/jobs", cookie, nil, nil); status != http.StatusSeeOther || location != "/login" {
		t.Fatalf("%s: GET /jobs with the old cookie got %d (to %q), want 303 to /login", why, status, location)
	}
}

// TestConsoleSessionEnds, in the browser: a page of the same host on
// another port, whose form carries the right CSRF token and which the
// browser sends the cookie, starts nothing; nor does a POST with a wrong
// CSRF token or a foreign Origin; after signing out, the old cookie gets
// the sign-in page.
func TestConsoleSessionEnds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	e.serve()
	ctx := browser(t)
	base := signIn(t, ctx, e)
	cookie := sessionCookie(t, ctx)
	csrf := pageCSRF(t, base, cookie)
	backups := func() int {
		var jobs []vigil.BackupJob
		e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
		return len(jobs)
	}

	// The other port's page submits the console's backup form at once.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/backups">
<input name="csrf" value="%s"><input name="resource" value="docs"><input name="vault" value="lab-vault"></form>
<script>document.getElementById("f").submit()</script>`, base, csrf)
	}))
	defer other.Close()
	if !strings.HasPrefix(other.URL, "http://127.0.0.1:") || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("the pages are at %s and %s: the test needs one host on two ports", other.URL, base)
	}
	var url, body string
	err := chromedp.Run(ctx, chromedp.Navigate(other.URL))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); !strings.HasPrefix(url, base) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		chromedp.Run(ctx, chromedp.Location(&url))
	}
	if err := chromedp.Run(ctx, chromedp.WaitReady(`body`, chromedp.ByQuery), chromedp.Text(`body`, &body, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if n := backups(); n != 0 || !strings.Contains(body, "takes forms only from its own pages") {
		t.Fatalf("the other port's form: at %s, page %q, %d backups started; want it refused", url, body, n)
	}
	screenshot(t, ctx, "console-other-origin")

	// Outside a browser: a valid cookie and CSRF token, from another port.
	status, _, text := consoleRequest(t, http.MethodPost, base+"/backups", cookie,
		neturl.Values{"csrf": {csrf}, "resource": {"docs"}, "vault": {"lab-vault"}}, map[string]string{"Origin": other.URL})
	if n := backups(); status != http.StatusForbidden || n != 0 {
		t.Fatalf("POST with Origin %s: %d %q, %d backups started; want 403", other.URL, status, text, n)
	}
	// A wrong CSRF token.
	status, _, text = consoleRequest(t, http.MethodPost, base+"/backups", cookie,
		neturl.Values{"csrf": {strings.Repeat("0", len(csrf))}, "resource": {"docs"}, "vault": {"lab-vault"}}, nil)
	if n := backups(); status != http.StatusForbidden || n != 0 {
		t.Fatalf("POST with a wrong CSRF token: %d %q, %d backups started; want 403", status, text, n)
	}

	// Sign out in the browser; the cookie it had opens nothing any more.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/jobs"),
		chromedp.WaitVisible(`#jobs`, chromedp.ByID),
		chromedp.Submit(`header form[action="/logout"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("sign out: %v", err)
	}
	requireSignedOut(t, base, cookie, "after signing out")
	e.stop()
}

// TestConsoleSessionSharedCatalog: two servers on one PostgreSQL catalog
// are two nodes of one vigil. A session made by signing in on one is
// accepted by the other, and signing out on that one ends it on the
// first.
func TestConsoleSessionSharedCatalog(t *testing.T) {
	t.Parallel()
	catalogURL, _, _ := postgresSchema(t)

	nodes := make([]*testEnv, 2)
	for i := range nodes {
		nodes[i] = newEnv(t, envOptions{catalog: catalogURL, extra: fmt.Sprintf("node: node-%d\n", i)})
		if i == 0 {
			nodes[i].mustRun("migrate") // serve on PostgreSQL migrates only when asked
		}
		nodes[i].serve()
	}
	first, second := "http://"+nodes[0].listen, "http://"+nodes[1].listen
	token, err := os.ReadFile(nodes[0].path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, first+"/login", strings.NewReader(neturl.Values{"token": {strings.TrimSpace(string(token))}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "vigil_session" {
			cookie = c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == "" {
		t.Fatalf("sign in on the first node: %d, cookie %q", resp.StatusCode, cookie)
	}

	csrf := pageCSRF(t, second, cookie) // the second node knows the session
	status, location, _ := consoleRequest(t, http.MethodPost, second+"/logout", cookie, neturl.Values{"csrf": {csrf}}, nil)
	if status != http.StatusSeeOther || location != "/login" {
		t.Fatalf("sign out on the second node: %d to %q", status, location)
	}
	requireSignedOut(t, first, cookie, "signed out on the other node")
	for _, n := range nodes {
		n.stop()
	}
}

// TestConsoleCopiesAndCleanup, in the browser: a restore test whose copy
// waits for its node to be deleted (what a killed worker of node w1
// leaves: its worker record, heartbeat long stopped, and its test ABORTED
// with the clean-up pending, written into the catalog while vigil is
// down) is named on the overview and on w1's row of the workers page; a
// copy job is listed on the jobs page's Copy jobs tab, and one started
// while the tab is open appears there and turns COMPLETED without a
// reload.
func TestConsoleCopiesAndCleanup(t *testing.T) {
	t.Parallel()
	e := newCopyEnv(t, "")
	e.serve()
	b := e.backup("docs")
	var copied vigil.CopyJob
	e.mustJSON(&copied, "recovery-points", "copy", b.RecoveryPointID, "--to", "offsite", "--wait")
	if copied.Status != vigil.BackupCompleted {
		t.Fatalf("copy of %s: %+v", b.RecoveryPointID, copied)
	}
	e.stop()

	killed := time.Now().Add(-20 * time.Minute).UTC().Truncate(time.Second)
	started := killed.Add(-time.Minute)
	left := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), RestoreTest: true, Plan: "every-backup", CreatedBy: "every-backup",
		Resource: "docs", ResourceType: "directory", RecoveryPointID: b.RecoveryPointID, Node: "w1",
		CreatedResourceLocation: "/var/lib/vigil/workers/w1/restore-tests/docs-1",
		Status:                  vigil.RestoreCompleted, CreatedAt: started, StartedAt: &started, TotalSeconds: killed.Sub(started).Seconds(),
		ValidationStatus: vigil.ValidationAborted, ValidationMessage: "interrupted during validation: worker w1-killed counted dead",
		DeletionStatus: vigil.DeletionDeleting, DeletionMessage: "clean-up pending on node w1"}
	func() {
		cat, err := catalog.Open(context.Background(), "", e.path("vigil-data"))
		if err != nil {
			t.Fatalf("open the catalog: %v", err)
		}
		defer cat.Close()
		if err := cat.RegisterWorker(context.Background(), catalog.Worker{ID: "w1-killed", Node: "w1", Host: "host-w1", PID: 4242,
			StartedAt: killed.Add(-time.Hour), LastHeartbeatAt: killed, Concurrency: map[string]int{"restore_test": 1}}); err != nil {
			t.Fatal(err)
		}
		if err := cat.InsertRestoreJob(context.Background(), &left); err != nil {
			t.Fatal(err)
		}
	}()
	e.serve()
	ctx := browser(t)
	base := signIn(t, ctx, e)

	since := killed.Local().Format("2006-01-02 15:04:05")
	text := waitText(t, ctx, `#pending-cleanup`, left.ID)
	if !strings.Contains(text, left.ID+" of docs on node w1 since "+since+" (") {
		t.Errorf("overview's clean-up pending section: %q; want %s of docs on node w1 since %s", text, left.ID, since)
	}
	screenshot(t, ctx, "console-overview-cleanup")

	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/workers"), chromedp.WaitVisible(`#workers`, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	text = waitText(t, ctx, `tr[data-worker="w1-killed"]`, "DEAD")
	if !strings.Contains(text, left.ID+" of docs") || !strings.Contains(text, "since "+since) {
		t.Errorf("w1's row of the workers page: %q; want %s pending", text, left.ID)
	}
	screenshot(t, ctx, "console-workers-cleanup")

	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/jobs?tab=copy"), chromedp.WaitVisible(`#jobs`, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	text = waitText(t, ctx, `tr[data-job="`+copied.ID+`"]`, "COMPLETED")
	for _, want := range []string{b.RecoveryPointID, "lab-vault → offsite", copied.RecoveryPointID} {
		if !strings.Contains(text, want) {
			t.Errorf("copy job row %q lacks %q", text, want)
		}
	}
	// A copy started now shows up in the open tab, and ends there.
	second := e.backup("docs")
	var live vigil.CopyJob
	e.mustJSON(&live, "recovery-points", "copy", second.RecoveryPointID, "--to", "offsite")
	text = waitText(t, ctx, `tr[data-job="`+live.ID+`"]`, "COMPLETED")
	if !strings.Contains(text, live.RecoveryPointID) || !strings.Contains(text, "lab-vault → offsite") {
		t.Errorf("the copy job started with the tab open: row %q; want its new recovery point %s", text, live.RecoveryPointID)
	}
	// Its times are written as the server writes them.
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+took \d+(ms|\.\ds|s)`).MatchString(text) {
		t.Errorf("the copy job started with the tab open: row %q; want it created and completed at 2006-01-02 15:04:05, and how long it took", text)
	}
	screenshot(t, ctx, "console-copy-jobs")

	err := chromedp.Run(ctx, chromedp.Click(`tr[data-job="`+copied.ID+`"] a`, chromedp.ByQuery), chromedp.WaitVisible(`#fields`, chromedp.ByID),
		chromedp.Text(`#fields`, &text, chromedp.ByID))
	if err != nil || !strings.Contains(text, "recovery point "+copied.RecoveryPointID+" in vault offsite") {
		t.Errorf("copy job page from its row: %q, %v", text, err)
	}
	e.stop()
}

// TestConsolePlans: the plans page lists each plan with its next run; its
// Pause button pauses the plan for every client (the CLI sees who paused
// it) and Resume resumes it.
func TestConsolePlans(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `backup_plans:
  - name: nightly
    schedule: "0 2 * * *"
    timezone: UTC
    resources: [docs]
    vault: lab-vault
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
`)
	e.serve()
	ctx := browser(t)
	base := signIn(t, ctx, e)
	nightly := `tr[data-plan="backup:nightly"]`
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/plans"), chromedp.WaitVisible(`#plans`, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	next := e.plans()["nightly"].NextRun
	if next == nil {
		t.Fatal("nightly has no next run")
	}
	waitText(t, ctx, nightly+" .next-run", next.Local().Format("2006-01-02 15:04:05"))
	waitText(t, ctx, nightly, "ACTIVE")
	waitText(t, ctx, `tr[data-plan="restore_test:every-backup"]`, "on each completed backup")

	if err := chromedp.Run(ctx, chromedp.Click(nightly+` button[value="pause"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, nightly, "PAUSED")
	waitText(t, ctx, nightly, "by console")
	screenshot(t, ctx, "plans")
	if p := e.plans()["nightly"]; p.Paused == nil || p.Paused.PausedBy != "console" || p.NextRun != nil {
		t.Errorf("after Pause, vigil plans list says %+v; want paused by console, no next run", p)
	}
	if err := chromedp.Run(ctx, chromedp.Click(nightly+` button[value="resume"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, nightly, "ACTIVE")
	if p := e.plans()["nightly"]; p.Paused != nil {
		t.Errorf("after Resume, vigil plans list says %+v", p)
	}
}
