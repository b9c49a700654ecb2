package notify_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

const webhookSecret = "whsec-do-not-leak-7f3a"

// receivedRequest is what a test receiver saw of one request.
type receivedRequest struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server that records requests and answers with
// answer (a status and body) for each.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []receivedRequest
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, receivedRequest{r.Method, r.Header.Clone(), body})
		n := len(rc.requests)
		rc.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) received() []receivedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedRequest(nil), rc.requests...)
}

func webhookNotification(url, secret string) config.Notification {
	return config.Notification{
		Name:   "ops-hook",
		Events: []string{"*"},
		Webhook: &config.Webhook{
			URL:     url,
			Secret:  secret,
			Headers: map[string]string{"X-Team": "storage", "Authorization": "Bearer hook-token"},
			Timeout: config.Duration(2 * time.Second),
		},
	}
}

// noSecret fails the test when err's text holds the webhook secret.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error holds the secret %q: %v", s, err)
		}
	}
}

func TestWebhookDelivers(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ev := testEvent()
	if err := notify.Send(t.Context(), webhookNotification(rc.URL+"/hooks/vigil", webhookSecret), ev); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rc.received()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost {
		t.Errorf("method %s, want POST", r.method)
	}
	if !notify.Verify(webhookSecret, r.body, r.header.Get(notify.HeaderSignature)) {
		t.Errorf("signature %q does not verify", r.header.Get(notify.HeaderSignature))
	}
	for k, want := range map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "vigil",
		notify.HeaderEvent:    "BACKUP_JOB_COMPLETED",
		notify.HeaderEventSeq: "42",
		"X-Team":              "storage",
		"Authorization":       "Bearer hook-token",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var got vigil.Event
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body is not an event: %v\n%s", err, r.body)
	}
	sameEvent(t, got, ev)
}

func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {})
	if err := notify.Send(t.Context(), webhookNotification(rc.URL, ""), testEvent()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sig := rc.received()[0].header.Get(notify.HeaderSignature); sig != "" {
		t.Errorf("unsigned webhook sent %s: %q", notify.HeaderSignature, sig)
	}
}

func TestWebhookServerErrorThenSuccess(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "database is down", http.StatusInternalServerError)
		}
	})
	n := webhookNotification(rc.URL, webhookSecret)
	err := notify.Send(t.Context(), n, testEvent())
	if err == nil {
		t.Fatal("Send to a receiver answering 500 succeeded")
	}
	for _, want := range []string{rc.URL, "500 Internal Server Error", "database is down"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("Send: %v", err)
	noSecret(t, err, webhookSecret)
	if err := notify.Send(t.Context(), n, testEvent()); err != nil {
		t.Fatalf("second Send, answered 200: %v", err)
	}
	if got := len(rc.received()); got != 2 {
		t.Errorf("receiver got %d requests, want 2", got)
	}
}

func TestWebhookLongAnswerIsCut(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "bad event: "+strings.Repeat("é", 5000))
	})
	err := notify.Send(t.Context(), webhookNotification(rc.URL, webhookSecret), testEvent())
	if err == nil {
		t.Fatal("Send to a receiver answering 400 succeeded")
	}
	if !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "bad event: ééé") {
		t.Errorf("error does not quote the answer: %v", err)
	}
	if len(err.Error()) > 400 {
		t.Errorf("error is %d bytes long, want the answer cut near 200: %v", len(err.Error()), err)
	}
}

func TestWebhookUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The path carries a token, as Slack-style webhook URLs do: errors are
	// stored and shown, so they name the scheme and host only.
	host := "http://" + l.Addr().String()
	url := host + "/services/T0/B0/token-in-the-path"
	l.Close() // nothing listens there now
	err = notify.Send(t.Context(), webhookNotification(url, webhookSecret), testEvent())
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("error does not say %s is unreachable: %v", host, err)
	}
	if strings.Contains(err.Error(), "token-in-the-path") {
		t.Errorf("error shows the URL's path: %v", err)
	}
	t.Logf("Send: %v", err)
	noSecret(t, err, webhookSecret)
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	n := webhookNotification(rc.URL, webhookSecret)
	n.Webhook.Timeout = config.Duration(200 * time.Millisecond)
	err := notify.Send(t.Context(), n, testEvent())
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("Send to a silent receiver: %v, want no answer within 200ms", err)
	}
	t.Logf("Send: %v", err)
	noSecret(t, err, webhookSecret)
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	})
	err := notify.Send(t.Context(), webhookNotification(rc.URL, webhookSecret), testEvent())
	if err == nil {
		t.Fatal("Send answered with a redirect succeeded")
	}
	if !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), other.URL) || strings.Contains(err.Error(), "/collect") {
		t.Errorf("error does not name the redirect and its Location: %v", err)
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the event was sent on to the redirect's host")
	}
	t.Logf("Send: %v", err)
	noSecret(t, err, webhookSecret)
}

func TestWebhookURLPasswordStaysOut(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	url := strings.Replace(rc.URL, "http://", "http://hook:url-pass-9d1c@", 1)
	err := notify.Send(t.Context(), webhookNotification(url, webhookSecret), testEvent())
	if err == nil {
		t.Fatal("Send answered 403 succeeded")
	}
	t.Logf("Send: %v", err)
	noSecret(t, err, webhookSecret, "url-pass-9d1c", "hook-token")
}
