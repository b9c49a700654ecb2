// Package email delivers vigil's events as plain-text e-mails through an
// SMTP server. It drives the SMTP conversation step by step so that each
// error names the server and the step that failed.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

// subjectPrefix starts every subject, for people's mail filters.
const subjectPrefix = "[vigil] "

// Notifier sends each event as a plain-text message through an SMTP
// server. A message is delivered once the server accepts its DATA.
type Notifier struct {
	cfg *config.Email
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns the Notifier of cfg.
func New(cfg *config.Email) *Notifier {
	return &Notifier{cfg: cfg}
}

// Notify sends ev to the recipients, once.
func (n *Notifier) Notify(ctx context.Context, ev vigil.Event) error {
	m := n.cfg
	u, err := url.Parse(m.SMTP)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || u.Port() == "" {
		return errors.New("email: smtp is not smtp://host:port or smtps://host:port: fix it in the configuration")
	}
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return fmt.Errorf("email: from %q is not an e-mail address: %w", m.From, err)
	}
	var to []*mail.Address
	for _, s := range m.To {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return fmt.Errorf("email: to %q is not an e-mail address: %w", s, err)
		}
		to = append(to, a)
	}
	if len(to) == 0 {
		return errors.New("email: no recipient: list them in email.to")
	}
	msg, err := composeMessage(from, to, ev, time.Now())
	if err != nil {
		return fmt.Errorf("email: compose message: %w", err)
	}
	timeout := time.Duration(m.Timeout)
	if timeout <= 0 {
		timeout = config.DefaultEmailTimeout
	}
	s := smtpSession{server: u.Host, host: u.Hostname(), implicitTLS: u.Scheme == "smtps", timeout: timeout}
	err = s.send(ctx, m.Username, m.Password, from.Address, to, msg)
	return notify.RedactSecret(err, m.Password)
}

// smtpSession is one attempt at sending one message to one server.
type smtpSession struct {
	server      string // host:port, as errors name it
	host        string // for TLS and PLAIN auth
	implicitTLS bool   // smtps://
	timeout     time.Duration
}

// send speaks SMTP from the greeting to QUIT. Each error names the server
// and the step that failed, as "smtp host:port: RCPT TO a@b: 550 …".
func (s smtpSession) send(ctx context.Context, username, password, from string, to []*mail.Address, msg []byte) error {
	attempt, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	fail := func(step string, err error) error {
		if ended := notify.AttemptEnded(ctx, attempt, s.timeout, err); ended != nil {
			err = ended
		}
		return fmt.Errorf("smtp %s: %s: %w", s.server, step, err)
	}

	conn, err := s.dial(attempt)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	// One deadline for the whole conversation; the caller's cancellation
	// moves it to now, which unblocks whatever read or write is waiting.
	deadline, _ := attempt.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(attempt, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(heloName()); err != nil {
		return fail("EHLO", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(&tls.Config{ServerName: s.host}); err != nil {
				return fail("STARTTLS", err)
			}
		}
	}
	if username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fail("AUTH", errors.New("the server offers no authentication: remove email.username, or check the server's settings"))
		}
		if err := c.Auth(smtp.PlainAuth("", username, password, s.host)); err != nil {
			if err.Error() == "unencrypted connection" {
				err = errors.New("refusing to send the password over an unencrypted connection: the server offers no STARTTLS; use smtps:// or enable TLS on the server")
			}
			return fail("AUTH PLAIN as "+username, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fail("MAIL FROM "+from, err)
	}
	for _, a := range to {
		if err := c.Rcpt(a.Address); err != nil {
			return fail("RCPT TO "+a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil { // the server's verdict on the message
		return fail("end of DATA", err)
	}
	// The server took the message: a failed QUIT must not make the caller
	// send it twice.
	c.Quit()
	return nil
}

// dial opens the connection, with TLS from the start for smtps://.
func (s smtpSession) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{}
	if s.implicitTLS {
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: s.host}}
		return td.DialContext(ctx, "tcp", s.server)
	}
	return d.DialContext(ctx, "tcp", s.server)
}

// heloName is the name vigil greets SMTP servers with.
func heloName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// composeMessage writes the whole message, headers and a quoted-printable
// body: ev.Message, a blank line and a footer naming the event.
func composeMessage(from *mail.Address, to []*mail.Address, ev vigil.Event, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	var rcpts []string
	for _, a := range to {
		rcpts = append(rcpts, a.String())
	}
	header("To", strings.Join(rcpts, ", "))
	header("Subject", encodeHeader(subjectPrefix+ev.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", messageID(from, ev))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header(notify.HeaderEvent, encodeHeader(string(ev.Type)))
	header(notify.HeaderEventSeq, fmt.Sprint(ev.Seq))
	b.WriteString("\r\n")

	body := strings.TrimRight(ev.Message, "\r\n")
	if body != "" {
		body += "\n\n"
	}
	body += fmt.Sprintf("event %d %s at %s\n", ev.Seq, ev.Type, ev.Time.Format(time.RFC3339))
	qp := quotedprintable.NewWriter(&b) // also turns line breaks into CRLF
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeHeader makes s one safe header value: line breaks, which would
// start new headers, become spaces, and non-ASCII text is Q-encoded.
func encodeHeader(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	for _, r := range s {
		if r >= utf8.RuneSelf {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// messageID is a new Message-ID in the sender's domain.
func messageID(from *mail.Address, ev vigil.Event) string {
	domain := "vigil.invalid"
	if _, d, ok := strings.Cut(from.Address, "@"); ok && d != "" {
		domain = d
	}
	return fmt.Sprintf("<vigil.%d.%s@%s>", ev.Seq, strings.ToLower(rand.Text()), domain)
}
