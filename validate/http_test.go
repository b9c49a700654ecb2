package validate_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/validate"
)

func httpCheck(path string, status int, body string) config.Validator {
	return config.Validator{HTTP: &config.HTTPCheck{
		Method:       "GET",
		Path:         path,
		ExpectStatus: status,
		ExpectBody:   body,
		Timeout:      config.Duration(time.Second),
	}}
}

// serve runs handler on a real loopback server for the test.
func serve(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()

	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	return srv.Listener.Addr().String()
}

func TestHTTPPasses(t *testing.T) {
	t.Parallel()

	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.URL.RawQuery != "full=1" || r.Header.Get("X-Token") != "secret" || r.Host != "app.example" {
			http.Error(w, fmt.Sprintf("unexpected request %s %s %v", r.Host, r.URL, r.Header), http.StatusBadRequest)
			return
		}

		fmt.Fprint(w, "<h1>Welcome to the shop</h1>")
	})

	check := httpCheck("/health?full=1", 200, "Welcome")
	check.HTTP.Headers = map[string]string{"X-Token": "secret", "Host": "app.example"}

	target, log := newTarget(t)
	res := validate.Run(t.Context(), []config.Validator{check}, withApp(t, target, addr), 5*time.Second)

	expect(t, res, vigil.ValidationSuccessful, "check passed in ", "http GET /health?full=1 (status 200)")

	if log.count("check 1 (http GET /health?full=1) passed: status 200 in ") != 1 {
		t.Errorf("no pass line in the log:%s", log)
	}
}

func TestHTTPAppBecomesReady(t *testing.T) {
	t.Parallel()

	addr := unusedAddr(t)

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ready") })}
	t.Cleanup(func() { srv.Close() })

	time.AfterFunc(300*time.Millisecond, func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return // the check below then times out, saying so
		}

		srv.Serve(l) //nolint:errcheck
	})

	target, log := newTarget(t)
	res := validate.Run(t.Context(), []config.Validator{httpCheck("/", 200, "ready")}, withApp(t, target, addr), 5*time.Second)

	expect(t, res, vigil.ValidationSuccessful)

	if log.count("connection refused") != 1 {
		t.Errorf("want the refused attempts logged once:%s", log)
	}

	if log.count("check 1 (http GET /) passed: status 200") != 1 {
		t.Errorf("no pass line:%s", log)
	}
}

func TestHTTPWrongStatus(t *testing.T) {
	t.Parallel()

	addr := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "db down: "+strings.Repeat("x", 500), http.StatusInternalServerError)
	})

	target, log := newTarget(t)
	res := validate.Run(t.Context(), []config.Validator{httpCheck("/health", 200, "")}, withApp(t, target, addr), 500*time.Millisecond)

	expect(t, res, vigil.ValidationFailed, `check 1 (http GET /health): expected status 200, got 500 (body: "db down: xxx`, `xxx…") after `, " attempts in ")

	if len(res.Message) > 400 {
		t.Errorf("message of %d bytes: the body is not cut", len(res.Message))
	}

	// a handful of attempts in half a second, all alike: one log line
	if n := log.count("expected status 200, got 500"); n != 1 {
		t.Errorf("identical failures logged %d times, want once:%s", n, log)
	}
}

func TestHTTPBodyMismatch(t *testing.T) {
	t.Parallel()

	addr := serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "Service Unavailable, try later") })

	target, _ := newTarget(t)
	res := validate.Run(t.Context(), []config.Validator{httpCheck("/", 200, "Welcome")}, withApp(t, target, addr), 300*time.Millisecond)

	expect(t, res, vigil.ValidationFailed, `status 200, but the body does not contain "Welcome" (body: "Service Unavailable, try later")`)
}

func TestHTTPRedirectIsAnAnswer(t *testing.T) {
	t.Parallel()

	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}

		fmt.Fprint(w, "login page")
	})

	target, _ := newTarget(t)
	target = withApp(t, target, addr)

	expect(t, validate.Run(t.Context(), []config.Validator{httpCheck("/", 302, "")}, target, time.Second), vigil.ValidationSuccessful)
	expect(t, validate.Run(t.Context(), []config.Validator{httpCheck("/", 200, "")}, target, 200*time.Millisecond), vigil.ValidationFailed, "expected status 200, got 302")
}

func TestHTTPSlowAnswerTimesOut(t *testing.T) {
	t.Parallel()

	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})

	check := httpCheck("/", 200, "")
	check.HTTP.Timeout = config.Duration(100 * time.Millisecond)

	target, _ := newTarget(t)
	res := validate.Run(t.Context(), []config.Validator{check}, withApp(t, target, addr), 600*time.Millisecond)

	expect(t, res, vigil.ValidationTimedOut, "check 1 (http GET /): no answer within the 600ms validation window (", "): timed out after 100ms (the check's timeout)")
}

func TestHTTPNeverListening(t *testing.T) {
	t.Parallel()

	target, _ := newTarget(t)
	res := validate.Run(t.Context(), []config.Validator{httpCheck("/", 200, "")}, withApp(t, target, unusedAddr(t)), 400*time.Millisecond)

	expect(t, res, vigil.ValidationTimedOut, "no answer within the 400ms validation window (", "): connection refused")
}

func TestTCP(t *testing.T) {
	t.Parallel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	go func() {
		for {
			c, err := l.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}

			if err == nil {
				c.Close()
			}
		}
	}()

	check := config.Validator{TCP: &config.TCPCheck{Timeout: config.Duration(time.Second)}}

	t.Run("listening", func(t *testing.T) {
		t.Parallel()

		target, log := newTarget(t)
		res := validate.Run(t.Context(), []config.Validator{check}, withApp(t, target, l.Addr().String()), time.Second)
		expect(t, res, vigil.ValidationSuccessful, "tcp "+l.Addr().String()+" (connected)")

		if log.count("check 1 (tcp "+l.Addr().String()+") passed: connected in ") != 1 {
			t.Errorf("no pass line:%s", log)
		}
	})

	t.Run("never listening", func(t *testing.T) {
		t.Parallel()

		addr := unusedAddr(t)
		target, log := newTarget(t)
		res := validate.Run(t.Context(), []config.Validator{check}, withApp(t, target, addr), 500*time.Millisecond)
		expect(t, res, vigil.ValidationTimedOut, "check 1 (tcp "+addr+"): no answer within the 500ms validation window (", "): connection refused")

		if n := log.count("connection refused"); n != 1 {
			t.Errorf("refused attempts logged %d times, want once:%s", n, log)
		}
	})
}
