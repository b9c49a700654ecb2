// Package notify delivers vigil's events to the notification channels of the
// configuration: webhooks, e-mail through an SMTP server, and local
// commands. It makes one attempt per call; remembering deliveries and
// retrying them is the caller's work, with Backoff for the waits.
package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// Headers vigil adds to webhook requests; e-mails carry the first two too,
// for mail filters.
const (
	HeaderEvent     = "X-Vigil-Event"
	HeaderEventSeq  = "X-Vigil-Event-Seq"
	HeaderSignature = "X-Vigil-Signature"
)

// signaturePrefix names the algorithm in a signature header, as GitHub's
// X-Hub-Signature-256 does, so receivers can reuse their checks.
const signaturePrefix = "sha256="

// Send delivers one event to one notification, once. An error means this
// attempt failed and says why; it never holds a webhook secret or an SMTP
// password, so the caller may record and show it. The caller retries later,
// waiting Backoff.
func Send(ctx context.Context, n config.Notification, ev vigil.Event) error {
	switch {
	case n.Webhook != nil:
		return sendWebhook(ctx, n.Webhook, ev)
	case n.Email != nil:
		return sendEmail(ctx, n.Email, ev)
	case len(n.Command) > 0:
		return sendCommand(ctx, n.Command, ev)
	}
	return fmt.Errorf("notification %q has no channel: set one of webhook, email, command", n.Name)
}

// Backoff is the wait before retry number attempt (1 is the first retry):
// rule.Backoff, doubled for each further attempt, capped at rule.MaxBackoff,
// with ±10% jitter so that deliveries failing together do not retry
// together. The jitter never takes the wait above MaxBackoff. Zero fields
// of rule take the defaults of the configuration.
func Backoff(rule config.RetryRule, attempt int) time.Duration {
	base := time.Duration(rule.Backoff)
	if base <= 0 {
		base = config.DefaultRetryBackoff
	}
	limit := time.Duration(rule.MaxBackoff)
	if limit <= 0 {
		limit = config.DefaultRetryMaxBackoff
	}
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	return min(d+jitter, limit)
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

// attemptEnded explains why an attempt bounded by timeout failed when the
// reason is one of its contexts ending: the caller's (parent) or the
// attempt's own timeout. err is what the attempt failed with; an I/O
// deadline taken from the attempt's context counts as the timeout. It
// returns nil when the failure is err's own.
func attemptEnded(parent, attempt context.Context, timeout time.Duration, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("stopped: %w", context.Cause(parent))
	case attempt.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no answer within %s", timeout)
	}
	return nil
}

// redactSecret replaces secret in err's text, should a library or a server
// ever repeat it. Errors from Send end up in the catalog and in logs.
func redactSecret(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]"))
}
