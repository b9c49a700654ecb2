package notify

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// webhookAnswerLimit is how much of a failed answer an error quotes: enough
// for a receiver's reason, short enough for a delivery record.
const webhookAnswerLimit = 200

// webhookClient never follows redirects: a 307 to another host would
// carry the signed event where nobody configured it to go, and a 301 or
// 303 would turn the POST into a GET. A redirect is a failure that names
// its Location, so a person can fix the URL.
var webhookClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// sendWebhook POSTs ev as JSON to w.URL; any 2xx answer is a delivery.
func sendWebhook(ctx context.Context, w *config.Webhook, ev vigil.Event) error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook: url is not an http:// or https:// URL: fix it in the configuration")
	}
	// Errors name only the scheme and host: a webhook's path and query
	// often carry a token (Slack-style /services/T/B/<token>), and errors
	// are stored and shown.
	target := u.Scheme + "://" + u.Host
	err = postWebhook(ctx, w, u, ev)
	if err != nil {
		return redactSecret(fmt.Errorf("webhook %s: %w", target, err), w.Secret)
	}
	return nil
}

// postWebhook makes the request; its errors follow the URL in a message.
func postWebhook(ctx context.Context, w *config.Webhook, u *url.URL, ev vigil.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
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
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil")
	req.Header.Set(HeaderEvent, string(ev.Type))
	req.Header.Set(HeaderEventSeq, strconv.FormatInt(ev.Seq, 10))
	if w.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(w.Secret, body))
	}

	resp, err := webhookClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is already named, maybe with a password
		}
		if ended := attemptEnded(ctx, attempt, timeout, err); ended != nil {
			return ended
		}
		return fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, webhookAnswerLimit+1))
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
	cut := len(b) > webhookAnswerLimit
	if cut {
		b = b[:webhookAnswerLimit]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		s = strings.TrimSuffix(s, "\uFFFD") + "…" // a character split by the cut
	}
	return strings.TrimSpace(s)
}
