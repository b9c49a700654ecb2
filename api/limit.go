package api

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
)

// LimitUnauthenticated serves h, letting at most n requests that come
// before any sign-in run at once; one more is answered 503 with
// Retry-After, and its connection closed. Such a request is one to
// /login, which reads a form before it knows who sent it, or one with
// neither the right API token nor a cookie. Requests with the token, and
// the console's requests with a session cookie (checked before any body
// is read), are never held back, so that a flood of slow sign-ins (each
// cut off by the server's read timeout) does not lock out the operators
// and their scripts. /healthz is never held back either: it reads nothing.
func LimitUnauthenticated(token string, n int, retryAfterSeconds int, h http.Handler) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !preAuth(r, token) {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			// The body is not read: the connection goes, so that the
			// server does not wait for the rest of it.
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusServiceUnavailable, Error{Message: "too many requests without the API token or a session are being served: try again in " + strconv.Itoa(retryAfterSeconds) + "s"})
		}
	})
}

// preAuth reports whether r is served before anyone is known.
func preAuth(r *http.Request, token string) bool {
	if r.URL.Path == "/healthz" {
		return false
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
		return false
	}
	return r.URL.Path == "/login" || r.Header.Get("Cookie") == ""
}
