package api

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestLimitUnauthenticated: while max requests before sign-in are being
// served, one more is answered 503 with Retry-After and its connection
// closed; requests with the token, with a session cookie, and to /healthz
// still get through; and a slot frees when a request ends.
func TestLimitUnauthenticated(t *testing.T) {
	const max = 3
	release := make(chan struct{})
	entered := make(chan struct{}, max)
	h := LimitUnauthenticated(testToken, max, 7, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	serve := func(method, path string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	var wg sync.WaitGroup
	for range max {
		wg.Go(func() {
			if w := serve(http.MethodPost, "/login"); w.Code != http.StatusOK {
				t.Errorf("a sign-in within the limit: %d %s", w.Code, w.Body)
			}
		})
	}
	for range max {
		<-entered
	}

	for _, tc := range []struct {
		name   string
		method string
		path   string
		header []string
	}{
		{"a sign-in", http.MethodPost, "/login", nil},
		{"a sign-in with a cookie", http.MethodPost, "/login", []string{"Cookie", "vigil_session=x"}},
		{"a console page without a cookie", http.MethodGet, "/jobs", nil},
		{"an API call with a wrong token", http.MethodPost, "/api/v1/backup-jobs", []string{"Authorization", "Bearer wrong"}},
	} {
		w := serve(tc.method, tc.path, tc.header...)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "7" || w.Header().Get("Connection") != "close" {
			t.Errorf("%s while the limit is reached: %d, Retry-After %q, Connection %q; want 503, 7, close", tc.name, w.Code, w.Header().Get("Retry-After"), w.Header().Get("Connection"))
		}
	}
	for _, tc := range []struct {
		name   string
		path   string
		header []string
	}{
		{"an API call with the token", "/api/v1/resources", []string{"Authorization", "Bearer " + testToken}},
		{"a console page with a session cookie", "/jobs", []string{"Cookie", "vigil_session=x"}},
		{"the health check", "/healthz", nil},
	} {
		if w := serve(http.MethodGet, tc.path, tc.header...); w.Code != http.StatusOK {
			t.Errorf("%s while the limit is reached: %d, want 200", tc.name, w.Code)
		}
	}

	close(release)
	wg.Wait()
	if w := serve(http.MethodGet, "/jobs"); w.Code != http.StatusOK {
		t.Errorf("a request after the sign-ins ended: %d, want 200", w.Code)
	}
}
