package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/treediff"
)

// TestConsoleRecoveryPointPage: a recovery point id links to its page,
// which says what the point is and browses its files: a folder opens, a
// file downloads byte for byte, and "Restore this folder" opens the
// restore form with the folder's path filled in, which restores that
// folder alone. The vaults page's "Verify now" verifies a vault.
func TestConsoleRecoveryPointPage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	blob := make([]byte, 300<<10)
	rand.Read(blob)
	for p, body := range map[string][]byte{"guide/intro.txt": []byte("intro\n"), "guide/deep/blob.bin": blob, "top.txt": []byte("top\n")} {
		os.MkdirAll(filepath.Dir(e.path("docs/"+p)), 0o755)
		if err := os.WriteFile(e.path("docs/"+p), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.serve()
	b := e.backup("docs")
	ctx := browser(t)
	base := signIn(t, ctx, e)

	// From the list, the id is a link to the point's page.
	var listing string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/recovery-points"),
		chromedp.Click(`tr[data-recovery-point="`+b.RecoveryPointID+`"] a.id`, chromedp.ByQuery),
		chromedp.WaitVisible(`#files`, chromedp.ByID),
		chromedp.Text(`#files`, &listing, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"guide/", "top.txt", "readme.txt", "Download"} {
		if !strings.Contains(listing, want) {
			t.Errorf("the recovery point's root listing lacks %q:\n%s", want, listing)
		}
	}
	err = chromedp.Run(ctx,
		chromedp.Click(`tr[data-path="guide"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-path="guide/deep"]`, chromedp.ByQuery),
		chromedp.Click(`tr[data-path="guide/deep"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-path="guide/deep/blob.bin"]`, chromedp.ByQuery),
		chromedp.Text(`#crumbs`, &listing, chromedp.ByID),
	)
	if err != nil || !strings.Contains(listing, "guide") || !strings.Contains(listing, "deep") {
		t.Fatalf("opening guide/deep: crumbs %q, %v", listing, err)
	}
	screenshot(t, ctx, "console-recovery-point")

	// The file's link downloads it, with the session.
	var href string
	if err := chromedp.Run(ctx, chromedp.AttributeValue(`tr[data-path="guide/deep/blob.bin"] a.download`, "href", &href, nil, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+href, nil)
	req.AddCookie(&http.Cookie{Name: "vigil_session", Value: sessionCookie(t, ctx)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) || !strings.Contains(resp.Header.Get("Content-Disposition"), "blob.bin") {
		t.Fatalf("download of guide/deep/blob.bin: %d, %d bytes (want %d), %q", resp.StatusCode, len(got), len(blob), resp.Header.Get("Content-Disposition"))
	}
	// A path out of the point is refused, and names what a path is.
	req, _ = http.NewRequest(http.MethodGet, base+"/recovery-points/"+b.RecoveryPointID+"/download?path=../etc/passwd", nil)
	req.AddCookie(&http.Cookie{Name: "vigil_session", Value: sessionCookie(t, ctx)})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("download of ../etc/passwd: %v %v; want 400", resp.StatusCode, err)
	}

	// Restore this folder: the form has its path, and the restore holds
	// that folder alone.
	target := filepath.Join(t.TempDir(), "guide-restored")
	var path string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/recovery-points/"+b.RecoveryPointID+"?path=guide"),
		chromedp.Click(`#restore-folder`, chromedp.ByID),
		chromedp.WaitVisible(`#meta-path`, chromedp.ByID),
		chromedp.Value(`#meta-path`, &path, chromedp.ByID),
		chromedp.SetValue(`#meta-target_path`, target, chromedp.ByID),
		chromedp.Submit(`#restore-form`, chromedp.ByID),
		chromedp.WaitVisible(`#status`, chromedp.ByID),
	)
	if err != nil || path != "guide" {
		t.Fatalf("restore this folder: path field %q, %v; want guide", path, err)
	}
	waitText(t, ctx, `#status`, "COMPLETED")
	if diffs, err := treediff.Compare(e.path("docs/guide"), filepath.Join(target, "guide"), treediff.Options{}); err != nil || len(diffs) > 0 {
		t.Errorf("the restored folder is not docs/guide: %v %v", err, diffs)
	}
	if left, _ := os.ReadDir(target); len(left) != 1 {
		t.Errorf("the restore of guide wrote %v into its target; want guide alone", left)
	}

	// Verify now, from the vaults page, reading all of the data.
	var row string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/vaults"),
		chromedp.SetValue(`#vault-lab-vault input[name="read_data_percent"]`, "100", chromedp.ByQuery),
		chromedp.Submit(`#vault-lab-vault form.verify`, chromedp.ByQuery),
		chromedp.WaitVisible(`#vault-lab-vault`, chromedp.ByQuery),
		chromedp.Text(`#vault-lab-vault`, &row, chromedp.ByQuery),
	)
	if err != nil || !strings.Contains(row, "no damage found") || !strings.Contains(row, "100% of the file data read") {
		t.Errorf("Verify now on the vaults page: %q, %v; want no damage found, 100%% of the data read", row, err)
	}
	screenshot(t, ctx, "console-vaults-verified")
	e.stop()
}

// TestConsoleCancel: a running job's page has "Cancel this job"; a
// restore test cancelled there while it validates ends ABORTED, saying it
// was cancelled in the console and why, and its copy is deleted; the
// page of an ended job has no such form.
func TestConsoleCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{extra: cancelConfig()})
	t.Cleanup(e.killLeaks)
	writeSite(t, e.path("site"))
	os.MkdirAll(e.path("big"), 0o755)
	e.env = append(e.env, cancelPauses...)
	e.serve()
	b := e.backup("web")
	test := e.testOf(b.RecoveryPointID)
	waitFor(t, time.Minute, "restore test "+test.ID+" to validate", func() bool {
		return strings.Contains(e.logText(test.ID), "before validate (VIGIL_TEST_PAUSE)")
	})
	ctx := browser(t)
	base := signIn(t, ctx, e)
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/jobs/"+test.ID),
		chromedp.WaitVisible(`#cancel-form`, chromedp.ByID),
		chromedp.SetValue(`#cancel-reason`, "tested by hand already", chromedp.ByID),
		chromedp.Submit(`#cancel-form`, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	verdict := waitText(t, ctx, `#validation`, "ABORTED")
	if !strings.Contains(verdict, "cancelled in the console: tested by hand already") {
		t.Errorf("the cancelled test's verdict on its page: %q; want it cancelled in the console, with the reason", verdict)
	}
	test = e.waitTest(test.ID)
	if test.ValidationStatus != vigil.ValidationAborted || test.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("the cancelled test: %s, deletion %s; want ABORTED, its copy deleted", test.ValidationStatus, test.DeletionStatus)
	}
	e.requireNoLeak()
	var forms int
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/jobs/"+test.ID), chromedp.WaitVisible(`#log`, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll('#cancel-form').length`, &forms)); err != nil || forms != 0 {
		t.Errorf("the ended test's page has %d cancel forms (%v); want none", forms, err)
	}
	e.stop()
}
