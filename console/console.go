// Package console is vigil's web console: server-rendered pages behind the
// API token, embedded in the binary, loading nothing from outside.
//
// # Signing in
//
// The sign-in page takes the API token and starts a session: a random id
// in the cookie, and in the catalog only a hash of it, so a copy of the
// catalog signs no one in and every node sharing the catalog knows the
// session. A session ends at sign-out, after console.session_idle without
// use, and console.session_max after sign-in. The cookie is HttpOnly and
// SameSite=Strict, and Secure over TLS. Every POST must come from the
// console's own pages (its Origin and Sec-Fetch-Site say so, when the
// browser sends them: a page of the same host on another port is the same
// site, and gets the cookie sent), and a signed-in form carries its
// session's CSRF token.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/metrics"
)

//go:embed templates/*.html templates/*.css templates/*.js
var files embed.FS

// cookieName is the session cookie.
const cookieName = "vigil_session"

// Engine carries out the operations the console's forms start, and lists
// the events the pages show and stream. Jobs, recovery points and logs
// the console reads from the catalog itself.
//
// Every method honours ctx, which ends when the browser goes. An error's
// message is shown on the page as it is, so it says what to do next.
// ListEvents waits up to q.Wait for an event after q.AfterSeq; when ctx
// ends during that wait it returns an empty page and no error, which is how
// an event stream ends when the server stops.
type Engine interface {
	StartBackup(ctx context.Context, req vigil.BackupRequest) (vigil.BackupJob, error)
	StartRestore(ctx context.Context, req vigil.RestoreRequest) (vigil.RestoreJob, error)
	RestoreMetadata(ctx context.Context, rpID string) (map[string]string, error)
	StartRestoreTest(ctx context.Context, req vigil.RestoreTestRequest) (vigil.RestoreJob, error)
	ListEvents(ctx context.Context, q vigil.EventQuery) (vigil.EventPage, error)
	// StartWarnings are the problems the start-up checks found that did
	// not stop the start, and when they ran.
	StartWarnings() ([]vigil.Problem, time.Time)
}

// Console serves the pages.
type Console struct {
	cfg      config.Source
	catalog  *catalog.Catalog
	sessions Sessions
	workers  Workers
	engine   Engine
	// stopping closes when the server begins to stop: event streams end.
	stopping <-chan struct{}
	token    string
	logger   *slog.Logger
	pages    *template.Template
	mux      *http.ServeMux
	now      func() time.Time
	// sizes measures the vaults for the vaults page.
	sizes *metrics.VaultSizes
}

// UseVaultSizes makes the vaults page take the vaults' sizes from sizes,
// which measures S3 vaults too (by default, folder vaults only).
func (c *Console) UseVaultSizes(sizes *metrics.VaultSizes) { c.sizes = sizes }

// New returns the console's handler; token is the API token, and
// stopping closes when the server begins to stop. The sessions are kept
// in cat, and the workers listed from it.
func New(cfg config.Source, cat *catalog.Catalog, eng Engine, token string, stopping <-chan struct{}, logger *slog.Logger) *Console {
	c := &Console{cfg: cfg, catalog: cat, sessions: cat, workers: cat, engine: eng, stopping: stopping, token: token, logger: logger, mux: http.NewServeMux(), now: time.Now,
		sizes: metrics.NewVaultSizes(nil, 0, logger)}
	c.pages = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.signedIn(c.logout))
	c.mux.HandleFunc("GET /style.css", asset("templates/style.css", "text/css; charset=utf-8"))
	c.mux.HandleFunc("GET /app.js", asset("templates/app.js", "text/javascript; charset=utf-8"))
	c.mux.HandleFunc("GET /{$}", c.signedIn(c.overview))
	c.mux.HandleFunc("GET /jobs", c.signedIn(c.jobs))
	c.mux.HandleFunc("GET /jobs/{id}", c.signedIn(c.jobDetails))
	c.mux.HandleFunc("GET /jobs/{id}/log", c.signedIn(c.jobLog))
	c.mux.HandleFunc("POST /jobs/{id}/cancel", c.signedIn(c.cancelJob))
	c.mux.HandleFunc("POST /backups", c.signedIn(c.startBackup))
	c.mux.HandleFunc("GET /events/stream", c.signedIn(c.eventStream))
	c.mux.HandleFunc("GET /recovery-points", c.signedIn(c.recoveryPoints))
	c.mux.HandleFunc("GET /recovery-points/{id}", c.signedIn(c.recoveryPoint))
	c.mux.HandleFunc("GET /recovery-points/{id}/download", c.signedIn(c.download))
	c.mux.HandleFunc("GET /recovery-points/{id}/restore", c.signedIn(c.restoreForm))
	c.mux.HandleFunc("POST /recovery-points/{id}/restore", c.signedIn(c.restoreForm))
	c.mux.HandleFunc("GET /resources", c.signedIn(c.resources))
	c.mux.HandleFunc("POST /restore-tests", c.signedIn(c.startRestoreTest))
	c.mux.HandleFunc("GET /vaults", c.signedIn(c.vaults))
	c.mux.HandleFunc("POST /vaults/{name}/verify", c.signedIn(c.verifyVault))
	c.mux.HandleFunc("GET /events", c.signedIn(c.events))
	c.mux.HandleFunc("GET /workers", c.signedIn(c.workersPage))
	c.mux.HandleFunc("GET /plans", c.signedIn(c.plansPage))
	c.mux.HandleFunc("POST /plans", c.signedIn(c.pausePlan))
	c.mux.HandleFunc("/", c.signedIn(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "notfound", nil)
	}))
	return c
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The pages show what vigil holds: no caching, no framing.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		// Before any handler, sign-in included: nothing another page
		// sends changes anything.
		if why := crossOrigin(r); why != "" {
			http.Error(w, "refused: "+why+". The console takes forms only from its own pages: open it at "+ownOrigin(r)+"/ and submit the form there.", http.StatusForbidden)
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

// signedIn sends a request without a live session to the sign-in page:
// no page shows data to it. A POST must carry the session's CSRF token.
func (c *Console) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r, true)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if s == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !csrfOK(r, s) {
			http.Error(w, "the form's CSRF token is missing or wrong: reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if s, err := c.session(r, false); err == nil && s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", map[string]any{})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	// HMACs of both, compared: equal lengths, so the comparison's time
	// tells nothing, not even the token's length.
	m := hmac.New(sha256.New, []byte("vigil console login"))
	m.Write([]byte(r.PostFormValue("token")))
	got := m.Sum(nil)
	m.Reset()
	m.Write([]byte(c.token))
	if subtle.ConstantTimeCompare(got, m.Sum(nil)) != 1 {
		c.render(w, r, http.StatusUnauthorized, "login", map[string]any{
			"Error": "That is not this server's API token. It is in <data_dir>/api-token on the server.",
		})
		return
	}
	id, err := c.newSession(r.Context(), r.UserAgent())
	if err != nil {
		c.logger.Error("console: sign in", "err", err)
		c.render(w, r, http.StatusInternalServerError, "login", map[string]any{
			"Error": "Signing in failed: the session could not be recorded in the catalog (" + err.Error() + "). Check that the catalog's database is reachable and has free space, then try again.",
		})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session in the catalog, so the cookie is dead on every
// node even if the browser keeps it.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if err := c.sessions.DeleteConsoleSession(r.Context(), sessionOf(r).idHash); err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// render writes page name with data, in the layout.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["Page"] = name
	if s := sessionOf(r); s != nil {
		data["CSRF"] = s.csrf
		data["SignedIn"] = true
	}
	data["Node"] = c.cfg.Current().Node
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages.ExecuteTemplate(w, name, data); err != nil {
		c.logger.Error("console: render", "page", name, "err", err)
	}
}

// asset serves an embedded file. Assets hold no data, so they need no
// session.
func asset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := files.ReadFile(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(b)
	}
}

// contextUntil is ctx, also ended when stop closes.
func contextUntil(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
