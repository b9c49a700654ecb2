package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/worker"
)

const testToken = "the-api-token"

// sessionBundle is a console on a real SQLite catalog, served over real
// HTTP, with a clock the test sets.
type sessionBundle struct {
	t       *testing.T
	console *Console
	catalog *catalog.Catalog
	url     string
	client  *http.Client

	mu  sync.Mutex
	now time.Time
}

func setupSessions(t *testing.T) *sessionBundle {
	t.Helper()
	return setupSessionsOn(t, httptest.NewServer)
}

// setupSessionsOn serves the console with start: httptest.NewServer, or
// httptest.NewTLSServer.
func setupSessionsOn(t *testing.T, start func(http.Handler) *httptest.Server) *sessionBundle {
	t.Helper()
	cfg, err := config.Parse([]byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	b := &sessionBundle{t: t, catalog: cat, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	// No engine: these tests use the pages and forms that need none.
	b.console = New(cfg, cat, nil, testToken, make(chan struct{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.console.now = func() time.Time { b.mu.Lock(); defer b.mu.Unlock(); return b.now }
	srv := start(b.console)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	b.client = srv.Client()
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b
}

func (b *sessionBundle) advance(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = b.now.Add(d)
}

// do sends a request with the session cookie (if any) and headers, and
// returns the status, the Location and the body.
func (b *sessionBundle) do(method, path, cookie string, form url.Values, headers map[string]string) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(text)
}

// signIn signs in with the token and returns the session cookie.
func (b *sessionBundle) signIn() string {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.url+"/login", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			tls := resp.TLS != nil
			if resp.StatusCode != http.StatusSeeOther || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure != tls {
				b.t.Fatalf("sign-in: %d, cookie %+v; want 303 and an HttpOnly, SameSite=Strict cookie for /, Secure over TLS (TLS: %v)", resp.StatusCode, ck, tls)
			}
			return ck.Value
		}
	}
	b.t.Fatalf("sign-in: %d and no session cookie", resp.StatusCode)
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the CSRF token from a page of the session.
func (b *sessionBundle) csrf(cookie string) string {
	b.t.Helper()
	status, _, page := b.do(http.MethodGet, "/recovery-points", cookie, nil, nil)
	m := csrfField.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		b.t.Fatalf("a signed-in page: %d, no CSRF token in %q", status, page)
	}
	return m[1]
}

// requireSignedIn checks that cookie opens a page (or not: the sign-in page).
func (b *sessionBundle) requireSignedIn(cookie string, want bool) {
	b.t.Helper()
	status, location, _ := b.do(http.MethodGet, "/recovery-points", cookie, nil, nil)
	switch {
	case want && status != http.StatusOK:
		b.t.Fatalf("a live session got %d (to %q), want 200", status, location)
	case !want && (status != http.StatusSeeOther || location != "/login"):
		b.t.Fatalf("a dead session got %d (to %q), want 303 to /login", status, location)
	}
}

// TestSignOutEndsSession: after sign-out the old cookie opens nothing,
// even sent again as it was; each sign-in has its own cookie and CSRF
// token.
func TestSignOutEndsSession(t *testing.T) {
	t.Parallel()
	b := setupSessions(t)
	first, second := b.signIn(), b.signIn()
	if first == second || len(first) != 64 {
		t.Fatalf("two sign-ins gave cookies %q and %q: want two random 32-byte ids", first, second)
	}
	csrf := b.csrf(first)
	if csrf == b.csrf(second) {
		t.Fatal("two sessions have the same CSRF token")
	}
	// The catalog holds no cookie: only its hash.
	if _, err := b.catalog.GetConsoleSession(context.Background(), first); !errors.Is(err, vigil.ErrNotFound) {
		t.Fatalf("the catalog finds the session by the cookie itself (%v): it must hold only a hash", err)
	}

	status, location, _ := b.do(http.MethodPost, "/logout", first, url.Values{"csrf": {csrf}}, nil)
	if status != http.StatusSeeOther || location != "/login" {
		t.Fatalf("sign-out: %d to %q", status, location)
	}
	b.requireSignedIn(first, false)
	if status, _, _ := b.do(http.MethodPost, "/logout", first, url.Values{"csrf": {csrf}}, nil); status != http.StatusSeeOther {
		t.Fatalf("a form of the ended session: %d, want 303 to the sign-in page", status)
	}
	b.requireSignedIn(second, true)
}

// TestSessionExpiry: a session ends after 12 hours without use and 7
// days after sign-in however much it is used, and is then deleted.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	b := setupSessions(t)
	ctx := context.Background()

	idle := b.signIn()
	b.advance(11 * time.Hour)
	b.requireSignedIn(idle, true) // used: its idle time starts again
	b.advance(11 * time.Hour)
	b.requireSignedIn(idle, true)
	b.advance(12 * time.Hour)
	b.requireSignedIn(idle, false)
	if _, err := b.catalog.GetConsoleSession(ctx, hashSessionID(idle)); !errors.Is(err, vigil.ErrNotFound) {
		t.Fatalf("the expired session is still in the catalog: %v", err)
	}

	busy := b.signIn()
	for range 15 { // 165 hours, used every 11
		b.advance(11 * time.Hour)
		b.requireSignedIn(busy, true)
	}
	b.advance(3 * time.Hour) // 7 days after sign-in
	b.requireSignedIn(busy, false)

	// Sessions nobody comes back with are deleted at the next sign-in.
	gone := b.signIn()
	b.advance(13 * time.Hour)
	b.signIn()
	if _, err := b.catalog.GetConsoleSession(ctx, hashSessionID(gone)); !errors.Is(err, vigil.ErrNotFound) {
		t.Fatalf("an expired session was not deleted at the next sign-in: %v", err)
	}
}

// TestSessionCSRF: a form without its session's CSRF token changes
// nothing, the token of another session included.
func TestSessionCSRF(t *testing.T) {
	t.Parallel()
	b := setupSessions(t)
	mine, other := b.signIn(), b.signIn()
	for name, token := range map[string][]string{
		"missing": nil, "wrong": {strings.Repeat("0", 64)}, "another session's": {b.csrf(other)},
	} {
		status, _, body := b.do(http.MethodPost, "/logout", mine, url.Values{"csrf": token}, nil)
		if status != http.StatusForbidden || !strings.Contains(body, "CSRF token is missing or wrong") {
			t.Errorf("sign-out with the %s CSRF token: %d %q, want 403", name, status, body)
		}
	}
	b.requireSignedIn(mine, true)
}

// TestSessionCrossOrigin: a POST from a page that is not the console's
// own is refused, even with a live cookie and the right CSRF token, as a
// page of the same host on another port would send; a sign-in from one
// too. The console's own pages, and clients that send neither header,
// are served.
func TestSessionCrossOrigin(t *testing.T) {
	t.Parallel()
	b := setupSessions(t)
	cookie := b.signIn()
	csrf := b.csrf(cookie)
	u, _ := url.Parse(b.url)
	port, _ := strconv.Atoi(u.Port())
	other := fmt.Sprintf("http://%s:%d", u.Hostname(), port^1) // the same host, another port

	for _, h := range []map[string]string{
		{"Origin": other},
		{"Origin": other, "Sec-Fetch-Site": "same-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "null"},
		{"Origin": "http://localhost:" + u.Port()},
	} {
		status, _, body := b.do(http.MethodPost, "/logout", cookie, url.Values{"csrf": {csrf}}, h)
		if status != http.StatusForbidden || !strings.Contains(body, "takes forms only from its own pages") {
			t.Errorf("sign-out with %v: %d %q, want 403", h, status, body)
		}
		status, _, _ = b.do(http.MethodPost, "/login", "", url.Values{"token": {testToken}}, h)
		if status != http.StatusForbidden {
			t.Errorf("sign-in with %v: %d, want 403", h, status)
		}
	}
	b.requireSignedIn(cookie, true)

	status, location, _ := b.do(http.MethodPost, "/logout", cookie, url.Values{"csrf": {csrf}},
		map[string]string{"Origin": b.url, "Sec-Fetch-Site": "same-origin"})
	if status != http.StatusSeeOther || location != "/login" {
		t.Fatalf("sign-out from the console's own page: %d to %q", status, location)
	}
	b.requireSignedIn(cookie, false)
}

// TestSessionOverTLS: over TLS the cookie is Secure, and a form from the
// plain-HTTP page of the same host and port is refused.
func TestSessionOverTLS(t *testing.T) {
	t.Parallel()
	b := setupSessionsOn(t, httptest.NewTLSServer)
	cookie := b.signIn()
	csrf := b.csrf(cookie)
	plain := "http://" + strings.TrimPrefix(b.url, "https://")
	if status, _, _ := b.do(http.MethodPost, "/logout", cookie, url.Values{"csrf": {csrf}}, map[string]string{"Origin": plain}); status != http.StatusForbidden {
		t.Fatalf("sign-out from %s: %d, want 403", plain, status)
	}
	b.requireSignedIn(cookie, true)
	if status, _, _ := b.do(http.MethodPost, "/logout", cookie, url.Values{"csrf": {csrf}}, map[string]string{"Origin": b.url}); status != http.StatusSeeOther {
		t.Fatalf("sign-out from %s: %d, want 303", b.url, status)
	}
	b.requireSignedIn(cookie, false)
}

// withEngine gives the console a real engine, never started, over the
// bundle's catalog: the overview reads its start-up warnings and the jobs
// page its events.
func (b *sessionBundle) withEngine() {
	b.t.Helper()
	b.console.cfg.Current().DataDir = b.t.TempDir()
	eng, err := worker.New(b.console.cfg.Current(), b.catalog, worker.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	b.console.engine = eng
}

// insertPendingCleanup records restore tests whose copy waits to be
// deleted: rj-left on node w1 (its worker killed), rj-retried on node
// gone, which no worker record names any more.
func insertPendingCleanup(t *testing.T, cat *catalog.Catalog, at time.Time) {
	t.Helper()
	for _, j := range []vigil.RestoreJob{
		{ID: "rj-left", Resource: "app", Node: "w1", Status: vigil.RestoreAborted, ValidationStatus: vigil.ValidationAborted,
			DeletionStatus: vigil.DeletionDeleting, DeletionMessage: "clean-up pending on node w1", TotalSeconds: 30},
		{ID: "rj-retried", Resource: "db", Node: "gone", Status: vigil.RestoreCompleted, ValidationStatus: vigil.ValidationSuccessful,
			DeletionStatus: vigil.DeletionFailed, DeletionMessage: "deleting the new resource failed: busy; vigil tries again every 1m0s (attempt 1 of 10)", TotalSeconds: 60},
		{ID: "rj-validating", Resource: "app", Node: "w1", Status: vigil.RestoreCompleted, ValidationStatus: vigil.ValidationValidating},
		{ID: "rj-done", Resource: "app", Node: "w1", Status: vigil.RestoreCompleted, ValidationStatus: vigil.ValidationSuccessful, DeletionStatus: vigil.DeletionSuccessful},
	} {
		j.RestoreTest, j.CreatedAt, j.StartedAt = true, at, &at
		if err := cat.InsertRestoreJob(context.Background(), &j); err != nil {
			t.Fatal(err)
		}
	}
}
