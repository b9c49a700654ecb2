package email_test

import (
	"bufio"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/testsvc"
	"github.com/vigil-backup/vigil/notify/email"
	"github.com/vigil-backup/vigil/notify/notifytest"
)

const smtpPassword = "smtp-pw-do-not-leak-c41e"

func emailConfig(smtpURL string) *config.Email {
	return &config.Email{
		SMTP:    smtpURL,
		From:    "Vigil <vigil@example.com>",
		To:      []string{"ops@example.com", "dba@example.com"},
		Timeout: config.Duration(5 * time.Second),
	}
}

// oneMessage waits for the single message mailpit should have taken.
func oneMessage(t *testing.T, mp *testsvc.Mailpit) testsvc.Message {
	t.Helper()
	msgs := mp.WaitMessages(t, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("mailpit took %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestEmailArrives(t *testing.T) {
	t.Parallel()
	mp := testsvc.StartMailpit(t)
	ev := notifytest.Event()
	// A line starting with a dot must survive SMTP's dot-stuffing, and a
	// long one quoted-printable's soft line breaks.
	ev.Message += "\n.hidden line\n" + strings.Repeat("long line ", 20)
	if err := email.New(emailConfig(mp.SMTP)).Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	m := oneMessage(t, mp)
	if want := "[vigil] Backup of postgres-main completed"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if m.From != "vigil@example.com" {
		t.Errorf("from %q, want vigil@example.com", m.From)
	}
	if want := []string{"ops@example.com", "dba@example.com"}; !slices.Equal(m.To, want) {
		t.Errorf("to %q, want %q", m.To, want)
	}
	wantText := ev.Message + "\n\nevent 42 BACKUP_JOB_COMPLETED at 2026-03-14T09:26:53Z"
	if got := strings.TrimRight(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n"); got != wantText {
		t.Errorf("body:\n%s\nwant:\n%s", got, wantText)
	}
	for _, h := range []string{"Date", "Message-Id", "Mime-Version", "Content-Type", "X-Vigil-Event"} {
		if len(m.Headers[h]) != 1 {
			t.Errorf("header %s appears %d times, want once; headers: %v", h, len(m.Headers[h]), m.Headers)
		}
	}
	if got := m.Headers["Content-Type"]; !slices.Equal(got, []string{"text/plain; charset=utf-8"}) {
		t.Errorf("Content-Type %q, want text/plain; charset=utf-8", got)
	}
}

func TestEmailNonASCIISubject(t *testing.T) {
	t.Parallel()
	mp := testsvc.StartMailpit(t)
	ev := notifytest.Event()
	ev.Subject = "Sauvegarde de « clients » échouée — 日本語"
	ev.Message = "La sauvegarde a échoué : disque plein.\nÜberprüfen Sie den Speicher."
	if err := email.New(emailConfig(mp.SMTP)).Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	m := oneMessage(t, mp)
	if want := "[vigil] " + ev.Subject; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if raw := m.Headers["Subject"]; len(raw) != 1 || !strings.HasPrefix(raw[0], "=?utf-8?q?") {
		t.Errorf("Subject header as sent is %q, want it Q-encoded", raw)
	}
	if !strings.Contains(m.Text, "disque plein.") || !strings.Contains(m.Text, "Überprüfen") {
		t.Errorf("body lost its accents:\n%s", m.Text)
	}
}

func TestEmailAuth(t *testing.T) {
	t.Parallel()
	mp := testsvc.StartMailpitAuth(t, "vigil", smtpPassword)

	t.Run("right password", func(t *testing.T) {
		cfg := emailConfig(mp.SMTP)
		cfg.Username, cfg.Password = "vigil", smtpPassword
		if err := email.New(cfg).Notify(t.Context(), notifytest.Event()); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := emailConfig(mp.SMTP)
		cfg.Username, cfg.Password = "vigil", "wrong-pw-88e0"
		err := email.New(cfg).Notify(t.Context(), notifytest.Event())
		if err == nil {
			t.Fatal("Send with a wrong password succeeded")
		}
		t.Logf("Notify: %v", err)
		if !strings.Contains(err.Error(), "AUTH") || !strings.Contains(err.Error(), "535") {
			t.Errorf("error does not say AUTH was refused: %v", err)
		}
		notifytest.NoSecret(t, err, "wrong-pw-88e0", smtpPassword)
	})
	t.Run("no username", func(t *testing.T) {
		err := email.New(emailConfig(mp.SMTP)).Notify(t.Context(), notifytest.Event())
		if err == nil {
			t.Fatal("Send without authentication to a server requiring it succeeded")
		}
		t.Logf("Notify: %v", err)
		if !strings.Contains(err.Error(), "MAIL FROM") || !strings.Contains(err.Error(), "530") {
			t.Errorf("error does not say MAIL FROM was refused: %v", err)
		}
	})
	if msgs := mp.WaitMessages(t, 1, 10*time.Second); len(msgs) != 1 {
		t.Errorf("mailpit took %d messages, want only the authenticated one", len(msgs))
	}
}

func TestEmailServerDown(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	cfg := emailConfig("smtp://" + addr)
	cfg.Username, cfg.Password = "vigil", smtpPassword
	err := email.New(cfg).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	t.Logf("Notify: %v", err)
	if !strings.Contains(err.Error(), "smtp "+addr+": connect") {
		t.Errorf("error does not name the server and step: %v", err)
	}
	notifytest.NoSecret(t, err, smtpPassword)
}

// The tests below need an SMTP server that misbehaves on cue, which
// mailpit does not; scriptedSMTP is one.

func TestEmailRecipientRefused(t *testing.T) {
	t.Parallel()
	addr := scriptedSMTP(t, func(cmd string) (string, bool) {
		if strings.HasPrefix(cmd, "RCPT TO:<dba@") {
			return "550 5.1.1 <dba@example.com>: mailbox unknown", true
		}
		return "", false
	})
	err := email.New(emailConfig("smtp://"+addr)).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send with a refused recipient succeeded")
	}
	t.Logf("Notify: %v", err)
	if want := "smtp " + addr + ": RCPT TO dba@example.com: 550"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestEmailTimeout(t *testing.T) {
	t.Parallel()
	addr := scriptedSMTP(t, func(cmd string) (string, bool) {
		if strings.HasPrefix(cmd, "MAIL FROM") {
			return "", true // no answer at all
		}
		return "", false
	})
	cfg := emailConfig("smtp://" + addr)
	cfg.Timeout = config.Duration(300 * time.Millisecond)
	start := time.Now()
	err := email.New(cfg).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send to a silent server succeeded")
	}
	t.Logf("Notify: %v", err)
	if want := "MAIL FROM vigil@example.com: no answer within 300ms"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %s despite a 300ms timeout", d)
	}
}

func TestEmailBadSMTPURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"mail.example.com:25", "smtp://mail.example.com", "imap://mail.example.com:143"} {
		err := email.New(emailConfig(u)).Notify(t.Context(), notifytest.Event())
		if err == nil {
			t.Errorf("Send with smtp %q succeeded", u)
		}
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// scriptedSMTP is a minimal SMTP server for fault injection: it accepts
// everything unless answer, given each command line, returns a reply (or
// silence when the reply is empty) with true.
func scriptedSMTP(t *testing.T, answer func(cmd string) (string, bool)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveScriptedSMTP(c, answer)
		}
	}()
	return l.Addr().String()
}

func serveScriptedSMTP(c net.Conn, answer func(string) (string, bool)) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func(s string) { c.Write([]byte(s + "\r\n")) }
	reply("220 scripted ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		if s, ok := answer(cmd); ok {
			if s == "" {
				r.ReadString('\n') // say nothing until the client hangs up
				return
			}
			reply(s)
			continue
		}
		switch verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0]); verb {
		case "EHLO", "HELO":
			reply("250 scripted")
		case "DATA":
			reply("354 go ahead")
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
			}
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}
