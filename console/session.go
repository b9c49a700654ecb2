package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// Sessions keeps the console's sessions. *catalog.Catalog is one: kept
// in the catalog, a session made on one node is known to every node
// sharing it, and a sign-out on one ends it on all.
//
// GetConsoleSession returns an error wrapping vigil.ErrNotFound for a
// session it does not hold. TouchConsoleSession never moves a session's
// last use backwards. DeleteConsoleSession of a session already gone is
// no error.
type Sessions interface {
	InsertConsoleSession(ctx context.Context, s catalog.ConsoleSession) error
	GetConsoleSession(ctx context.Context, idHash string) (catalog.ConsoleSession, error)
	TouchConsoleSession(ctx context.Context, idHash string, at time.Time) error
	DeleteConsoleSession(ctx context.Context, idHash string) error
	DeleteExpiredConsoleSessions(ctx context.Context, lastSeenBefore, createdBefore time.Time) (int64, error)
}

var _ Sessions = (*catalog.Catalog)(nil)

const (
	// sessionIDBytes is the size of a session id, from crypto/rand.
	sessionIDBytes = 32

	// touchEvery is how often a session's use is written to the catalog:
	// not at every request, which would make every page load a write.
	// The idle limit is therefore kept to within this much.
	touchEvery = time.Minute

	// userAgentMax bounds the User-Agent kept with a session.
	userAgentMax = 200
)

// session is the signed-in session of a request.
type session struct {
	idHash string
	// csrf is the token the session's forms carry: an HMAC keyed with the
	// session's id, so it is the session's own, changes with every
	// sign-in, and needs no storing.
	csrf string
}

type sessionKey struct{}

// sessionOf returns the session signedIn found for r, or nil.
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func csrfToken(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("vigil console csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// newSession records a new session and returns its id, the cookie's value.
func (c *Console) newSession(ctx context.Context, userAgent string) (string, error) {
	var raw [sessionIDBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("make a session id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	now := c.now().UTC()
	err := c.sessions.InsertConsoleSession(ctx, catalog.ConsoleSession{
		IDHash: hashSessionID(id), CreatedAt: now, LastSeenAt: now, UserAgent: shortUserAgent(userAgent),
	})
	if err != nil {
		return "", err
	}
	// Sign-ins are rare, so each one clears the sessions that expired
	// since the last: none lingers in the catalog for long.
	if _, err := c.sessions.DeleteExpiredConsoleSessions(ctx, now.Add(-c.idle()), now.Add(-c.maxAge())); err != nil {
		c.logger.Warn("console: delete expired sessions", "err", err)
	}
	return id, nil
}

// session returns the live session the request's cookie names, or nil
// when it names none (no cookie, unknown, signed out or expired). touch
// records the use, for requests a person made.
func (c *Console) session(r *http.Request, touch bool) (*session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || len(ck.Value) != 2*sessionIDBytes {
		return nil, nil
	}
	if _, err := hex.DecodeString(ck.Value); err != nil {
		return nil, nil
	}
	s := &session{idHash: hashSessionID(ck.Value), csrf: csrfToken(ck.Value)}
	live, err := c.live(r.Context(), s.idHash, touch)
	if !live {
		return nil, err
	}
	return s, nil
}

// live reports whether the session whose id hashes to idHash exists and
// has not expired; an expired one it deletes.
func (c *Console) live(ctx context.Context, idHash string, touch bool) (bool, error) {
	rec, err := c.sessions.GetConsoleSession(ctx, idHash)
	if errors.Is(err, vigil.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the console session: %w", err)
	}
	now := c.now()
	if now.Sub(rec.LastSeenAt) >= c.idle() || now.Sub(rec.CreatedAt) >= c.maxAge() {
		if err := c.sessions.DeleteConsoleSession(ctx, idHash); err != nil {
			c.logger.Warn("console: delete expired session", "err", err)
		}
		return false, nil
	}
	if touch && now.Sub(rec.LastSeenAt) >= touchEvery {
		if err := c.sessions.TouchConsoleSession(ctx, idHash, now.UTC()); err != nil {
			return false, err
		}
	}
	return true, nil
}

func (c *Console) idle() time.Duration   { return time.Duration(c.cfg.Current().Console.SessionIdle) }
func (c *Console) maxAge() time.Duration { return time.Duration(c.cfg.Current().Console.SessionMax) }

// csrfOK reports whether a form carries its session's CSRF token.
func csrfOK(r *http.Request, s *session) bool {
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) == 1
}

// crossOrigin says why r, a state-changing request, did not come from
// one of the console's own pages, or returns "" when it did or cannot be
// told. SameSite=Strict keeps the cookie from other sites, but a page of
// the same host on another port (http://127.0.0.1:OTHER) is the same site
// and gets it sent; its Origin and Sec-Fetch-Site tell it apart. A request
// with neither (curl, an old browser) is left to the CSRF token. Only the
// host is compared when the console itself is served without TLS, as
// behind a proxy that ends TLS the page's origin is https.
func crossOrigin(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none": // none: the person's own action (a bookmark, the address bar)
	default:
		return fmt.Sprintf("the browser says it came from a page that is not the console's (Sec-Fetch-Site: %s)", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host || (r.TLS != nil && u.Scheme != "https") {
		return fmt.Sprintf("it came from a page of %s", origin)
	}
	return ""
}

// ownOrigin is the console's address as the request names it.
func ownOrigin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// shortUserAgent keeps at most userAgentMax bytes of valid UTF-8, which
// PostgreSQL's TEXT requires.
func shortUserAgent(ua string) string {
	if len(ua) > userAgentMax {
		ua = ua[:userAgentMax] // a rune cut in two is invalid, and dropped below
	}
	return strings.ToValidUTF8(strings.ReplaceAll(ua, "\x00", ""), "")
}
