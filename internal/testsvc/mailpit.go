// Package testsvc starts the real services that vigil's tests talk to, one
// private instance per test on free loopback ports, stopped when the test
// ends. A test that cannot start its service fails and says how to install
// it; it never passes silently.
package testsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// MailpitVersion is the mailpit that .ci/run installs.
const MailpitVersion = "v1.33.1"

const mailpitInstall = "go install github.com/axllent/mailpit@" + MailpitVersion

// Mailpit is a running mailpit: an SMTP server that keeps every message it
// takes, and an HTTP API to read them.
type Mailpit struct {
	SMTP string // "smtp://127.0.0.1:PORT"
	API  string // "http://127.0.0.1:PORT"
}

// StartMailpit starts a mailpit for the test and stops it at cleanup. The
// SMTP server needs no authentication and accepts any username and password
// when a client authenticates anyway, over plain connections too. It fails
// the test, with install instructions, when mailpit is not installed.
func StartMailpit(t testing.TB) *Mailpit {
	t.Helper()
	return startMailpit(t, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
}

// StartMailpitAuth is StartMailpit with an SMTP server that requires AUTH
// as username with password, and refuses messages from anyone else. PLAIN
// authentication over plain connections is allowed.
func StartMailpitAuth(t testing.TB, username, password string) *Mailpit {
	t.Helper()
	file := filepath.Join(t.TempDir(), "smtp-auth")
	if err := os.WriteFile(file, []byte(username+":"+password+"\n"), 0o600); err != nil {
		t.Fatalf("write mailpit password file: %v", err)
	}
	return startMailpit(t, "--smtp-auth-file", file, "--smtp-auth-allow-insecure")
}

func startMailpit(t testing.TB, extra ...string) *Mailpit {
	t.Helper()
	bin, err := binary("mailpit")
	if err != nil {
		t.Fatalf("mailpit, the SMTP server the e-mail tests send to, is not installed: %v\ninstall it with: %s", err, mailpitInstall)
	}
	dir := t.TempDir()
	// A free port may be taken between closing its probe and mailpit
	// binding it; try again with new ones.
	var log string
	for try := 0; try < 3; try++ {
		smtpAddr, apiAddr := freePort(t), freePort(t)
		args := append([]string{
			"--smtp", smtpAddr,
			"--listen", apiAddr,
			"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", try)),
			"--disable-version-check",
			"--smtp-disable-rdns",
		}, extra...)
		var proc *process
		proc, log = runServer(t, "mailpit", bin, args, smtpAddr, apiAddr)
		if proc != nil {
			return &Mailpit{SMTP: "smtp://" + smtpAddr, API: "http://" + apiAddr}
		}
	}
	t.Fatalf("mailpit did not start; its output:\n%s", log)
	return nil
}

// binary finds a program on PATH, else where `go install` puts it.
func binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(lines) == 2 {
			if lines[0] != "" {
				dirs = append(dirs, lines[0])
			}
			for _, p := range filepath.SplitList(lines[1]) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	seen := map[string]bool{}
	var looked []string
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		looked = append(looked, d)
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("not on PATH nor in " + strings.Join(looked, ", "))
}

// freePort is a loopback address with a port nobody listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Message is a message as mailpit took it. From and To are bare addresses;
// Text is the decoded plain-text body.
type Message struct {
	ID, Subject, From string
	To                []string
	Text              string
	// Headers are the message's headers as sent, by canonical name.
	Headers map[string][]string
}

// Messages returns every message mailpit took, oldest first.
func (m *Mailpit) Messages(t testing.TB) []Message {
	t.Helper()
	var list struct {
		Messages []struct{ ID string }
	}
	m.get(t, "/api/v1/messages?limit=1000", &list)
	var msgs []Message
	for _, s := range slices.Backward(list.Messages) { // mailpit lists the newest first
		var full struct {
			ID      string
			Subject string
			From    struct{ Address string }
			To      []struct{ Address string }
			Text    string
		}
		m.get(t, "/api/v1/message/"+url.PathEscape(s.ID), &full)
		msg := Message{ID: full.ID, Subject: full.Subject, From: full.From.Address, Text: full.Text}
		for _, a := range full.To {
			msg.To = append(msg.To, a.Address)
		}
		m.get(t, "/api/v1/message/"+url.PathEscape(s.ID)+"/headers", &msg.Headers)
		msgs = append(msgs, msg)
	}
	return msgs
}

// WaitMessages polls until at least n messages arrived or timeout passed,
// and returns what arrived either way: the caller judges.
func (m *Mailpit) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := m.Messages(t)
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get reads one JSON answer of mailpit's API into v.
func (m *Mailpit) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(m.API + path)
	if err != nil {
		t.Fatalf("mailpit API: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit API GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit API GET %s: decode answer: %v", path, err)
	}
}
