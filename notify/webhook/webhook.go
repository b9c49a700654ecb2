// Package webhook delivers vigil's events as signed JSON POSTs to an
// HTTP receiver, or as the messages of chat services' incoming webhooks
// (Slack, Discord, ntfy, Gotify). It also holds the receiving side of the signature,
// Verify, so that a receiver written in Go checks what this package signs
// with the same code.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

// HeaderSignature carries Sign's signature of the request's body, when the
// webhook has a secret.
const HeaderSignature = "X-Vigil-Signature"

// signaturePrefix names the algorithm in a signature header, as GitHub's
// X-Hub-Signature-256 does, so receivers can reuse their checks.
const signaturePrefix = "sha256="

// answerLimit is how much of a failed answer an error quotes: enough for a
// receiver's reason, short enough for a delivery record.
const answerLimit = 200

// client never follows redirects: a 307 to another host would carry the
// signed event where nobody configured it to go, and a 301 or 303 would
// turn the POST into a GET. A redirect is a failure that names its
// Location, so a person can fix the URL.
var client = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Notifier POSTs each event to a webhook's URL, shaped by the webhook's
// format; any 2xx answer is a delivery.
type Notifier struct {
	cfg *config.Webhook
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns the Notifier of cfg.
func New(cfg *config.Webhook) *Notifier {
	return &Notifier{cfg: cfg}
}

// Notify POSTs ev to the webhook, once.
func (n *Notifier) Notify(ctx context.Context, ev vigil.Event) error {
	u, err := url.Parse(n.cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook: url is not an http:// or https:// URL: fix it in the configuration")
	}
	// Errors name only the scheme and host: a webhook's path and query
	// often carry a token (Slack-style /services/T/B/<token>), and errors
	// are stored and shown.
	target := u.Scheme + "://" + u.Host
	err = n.post(ctx, u, ev)
	if err != nil {
		return notify.RedactSecret(fmt.Errorf("webhook %s: %w", target, err), n.cfg.Secret)
	}
	return nil
}

// post makes the request; its errors follow the URL in a message.
func (n *Notifier) post(ctx context.Context, u *url.URL, ev vigil.Event) error {
	w := n.cfg
	p, err := encode(w.Format, ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	body := p.body
	timeout := time.Duration(w.Timeout)
	if timeout <= 0 {
		timeout = config.DefaultWebhookTimeout
	}
	attempt, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(attempt, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, v := range w.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	// Set after the configured headers: these describe the body and must
	// not be overridden by configuration.
	req.Header.Set("Content-Type", p.contentType)
	for k, v := range p.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "vigil")
	req.Header.Set(notify.HeaderEvent, string(ev.Type))
	req.Header.Set(notify.HeaderEventSeq, strconv.FormatInt(ev.Seq, 10))
	// Only vigil's own JSON is signed (the configuration refuses a
	// secret with another format): a signature of a chat message would
	// be checked by nobody.
	if w.Secret != "" && (w.Format == "" || w.Format == config.FormatJSON) {
		req.Header.Set(HeaderSignature, Sign(w.Secret, body))
	}

	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is already named, maybe with a password
		}
		if ended := notify.AttemptEnded(ctx, attempt, timeout, err); ended != nil {
			return ended
		}
		return fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, answerLimit+1))
	// Read a little more so the connection can be reused; a receiver that
	// answers megabytes is not waited for.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc := resp.Header.Get("Location")
		if loc == "" {
			loc = "nowhere"
		} else if l, err := u.Parse(loc); err == nil {
			loc = l.Scheme + "://" + l.Host + "/…"
		}
		return fmt.Errorf("answered %s, redirecting to %s: vigil does not follow redirects; set the webhook url to the final address", resp.Status, loc)
	}
	if len(answer) == 0 {
		return fmt.Errorf("answered %s with an empty body", resp.Status)
	}
	return fmt.Errorf("answered %s: %q", resp.Status, quoteAnswer(answer))
}

// quoteAnswer is the start of a receiver's answer, marked when cut.
func quoteAnswer(b []byte) string {
	cut := len(b) > answerLimit
	if cut {
		b = b[:answerLimit]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		s = strings.TrimSuffix(s, "\uFFFD") + "…" // a character split by the cut
	}
	return strings.TrimSpace(s)
}

// Sign returns the X-Vigil-Signature header value for body:
// "sha256=" followed by the hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header is a valid X-Vigil-Signature of body for
// secret. It compares in constant time; receivers of webhooks use it.
func Verify(secret string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok {
		return false
	}
	sum, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(sum, mac.Sum(nil))
}
