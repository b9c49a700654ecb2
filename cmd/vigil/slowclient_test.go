package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestServerCutsOffSlowClients: connections that trickle the body of a
// POST /login are closed by the server once its read timeout (here 2s)
// is up, those beyond max_unauthenticated at once with a 503; while they
// trickle, a request with the API token is answered, and a long poll of
// events and the console's event stream outlast the read and write
// timeouts to bring the event they waited for. Before, the server set only ReadHeaderTimeout: such
// connections stayed open as long as their client liked.
func TestServerCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	listen := "server:\n  listen: " + e.listen + "\n"
	cfg := strings.Replace(string(b), listen, listen+"  read_timeout: 2s\n  write_timeout: 2s\n  idle_timeout: 2s\n  max_unauthenticated: 8\n", 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.serve()
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	// Signed in before the flood: sign-ins are what it holds back.
	session := e.consoleSession(strings.TrimSpace(string(token)))

	const slow = 40
	type outcome struct {
		status string // the first line of the answer, if any
		err    error  // how the connection ended
	}
	outcomes := make(chan outcome, slow)
	stop := make(chan struct{})
	defer close(stop)
	var opened sync.WaitGroup
	for range slow {
		c, err := net.Dial("tcp", e.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntoken=", e.listen)
		opened.Add(1)
		go func() {
			opened.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		go func() {
			r := bufio.NewReader(c)
			line, _ := r.ReadString('\n')
			_, err := r.WriteTo(discard{})
			outcomes <- outcome{strings.TrimSpace(line), err}
		}()
	}
	opened.Wait()

	// While they trickle: the API answers a request with its token.
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")

	// A long poll outlasts the 2s timeouts: the event it waits for comes
	// after them.
	polled := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.listen+"/api/v1/events?since=0&type=BACKUP_JOB_STARTED&wait=50s", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			polled <- fmt.Errorf("long poll: %v", err)
			return
		}
		defer resp.Body.Close()
		var page vigil.EventPage
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK || len(page.Events) == 0 {
			polled <- fmt.Errorf("long poll answered %s with %d events (%v): it was cut off before its event came", resp.Status, len(page.Events), err)
			return
		}
		polled <- nil
	}()
	// So does the console's event stream.
	streamed := make(chan error, 1)
	go func() { streamed <- e.awaitStreamed(session, vigil.EventBackupJobStarted) }()

	time.Sleep(3 * time.Second) // past both timeouts, so that the poll and the stream must have outlasted them
	e.backup("docs")
	if err := <-polled; err != nil {
		t.Error(err)
	}
	if err := <-streamed; err != nil {
		t.Error(err)
	}

	// Every slow connection is closed by the server; none is closed by
	// this test before the end.
	refused := 0
	deadline := time.After(60 * time.Second)
	for i := range slow {
		select {
		case o := <-outcomes:
			if strings.HasPrefix(o.status, "HTTP/1.1 503") {
				refused++
			}
		case <-deadline:
			t.Fatalf("%d of %d connections trickling a POST /login are still open after 60s: the server does not cut them off", slow-i, slow)
		}
	}
	t.Logf("%d of %d slow sign-ins were refused at once with 503 (max_unauthenticated: 8); the others were cut off by the read timeout", refused, slow)

	// And the server is as it was.
	resp, err := http.Get("http://" + e.listen + "/login")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login after the slow clients: %v %v", resp, err)
	}
	resp.Body.Close()
	e.stop()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// consoleSession signs in to the console with token and returns the
// session's cookies.
func (e *testEnv) consoleSession(token string) []*http.Cookie {
	e.t.Helper()
	base := "http://" + e.listen
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatalf("sign in: %v", err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) == 0 {
		e.t.Fatalf("sign in: %s and no session cookie", resp.Status)
	}
	return resp.Cookies()
}

// awaitStreamed follows the console's event stream with the session's
// cookies until an event of type typ comes.
func (e *testEnv) awaitStreamed(session []*http.Cookie, typ vigil.EventType) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.listen+"/events/stream", nil)
	for _, c := range session {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("event stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("event stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), string(typ)) {
			return nil
		}
	}
	return fmt.Errorf("the event stream ended (%v) before its %s came: it was cut off", sc.Err(), typ)
}
