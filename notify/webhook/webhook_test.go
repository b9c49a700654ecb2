package webhook_test

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
	"github.com/vigil-backup/vigil/notify/notifytest"
	"github.com/vigil-backup/vigil/notify/webhook"
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

func webhookConfig(url, secret string) *config.Webhook {
	return &config.Webhook{
		URL:     url,
		Secret:  secret,
		Headers: map[string]string{"X-Team": "storage", "Authorization": "Bearer hook-token"},
		Timeout: config.Duration(2 * time.Second),
	}
}

func TestWebhookDelivers(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ev := notifytest.Event()
	if err := webhook.New(webhookConfig(rc.URL+"/hooks/vigil", webhookSecret)).Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	reqs := rc.received()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost {
		t.Errorf("method %s, want POST", r.method)
	}
	if !webhook.Verify(webhookSecret, r.body, r.header.Get(webhook.HeaderSignature)) {
		t.Errorf("signature %q does not verify", r.header.Get(webhook.HeaderSignature))
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
	notifytest.SameEvent(t, got, ev)
}

func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {})
	if err := webhook.New(webhookConfig(rc.URL, "")).Notify(t.Context(), notifytest.Event()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if sig := rc.received()[0].header.Get(webhook.HeaderSignature); sig != "" {
		t.Errorf("unsigned webhook sent %s: %q", webhook.HeaderSignature, sig)
	}
}

func TestWebhookServerErrorThenSuccess(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "database is down", http.StatusInternalServerError)
		}
	})
	hook := webhook.New(webhookConfig(rc.URL, webhookSecret))
	err := hook.Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send to a receiver answering 500 succeeded")
	}
	for _, want := range []string{rc.URL, "500 Internal Server Error", "database is down"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("Notify: %v", err)
	notifytest.NoSecret(t, err, webhookSecret)
	if err := hook.Notify(t.Context(), notifytest.Event()); err != nil {
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
	err := webhook.New(webhookConfig(rc.URL, webhookSecret)).Notify(t.Context(), notifytest.Event())
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
	err = webhook.New(webhookConfig(url, webhookSecret)).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("error does not say %s is unreachable: %v", host, err)
	}
	if strings.Contains(err.Error(), "token-in-the-path") {
		t.Errorf("error shows the URL's path: %v", err)
	}
	t.Logf("Notify: %v", err)
	notifytest.NoSecret(t, err, webhookSecret)
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := webhookConfig(rc.URL, webhookSecret)
	cfg.Timeout = config.Duration(200 * time.Millisecond)
	err := webhook.New(cfg).Notify(t.Context(), notifytest.Event())
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("Send to a silent receiver: %v, want no answer within 200ms", err)
	}
	t.Logf("Notify: %v", err)
	notifytest.NoSecret(t, err, webhookSecret)
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	})
	err := webhook.New(webhookConfig(rc.URL, webhookSecret)).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send answered with a redirect succeeded")
	}
	if !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), other.URL) || strings.Contains(err.Error(), "/collect") {
		t.Errorf("error does not name the redirect and its Location: %v", err)
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the event was sent on to the redirect's host")
	}
	t.Logf("Notify: %v", err)
	notifytest.NoSecret(t, err, webhookSecret)
}

func TestWebhookURLPasswordStaysOut(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	url := strings.Replace(rc.URL, "http://", "http://hook:url-pass-9d1c@", 1)
	err := webhook.New(webhookConfig(url, webhookSecret)).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send answered 403 succeeded")
	}
	t.Logf("Notify: %v", err)
	notifytest.NoSecret(t, err, webhookSecret, "url-pass-9d1c", "hook-token")
}

func TestSign(t *testing.T) {
	t.Parallel()
	// openssl: printf hello | openssl dgst -sha256 -hmac key
	const want = "sha256=9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
	if got := webhook.Sign("key", []byte("hello")); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"seq":1}`)
	good := webhook.Sign("s3cret", body)
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"valid", "s3cret", body, good, true},
		{"valid with spaces", "s3cret", body, " " + good + " ", true},
		{"other body", "s3cret", []byte(`{"seq":2}`), good, false},
		{"other secret", "other", body, good, false},
		{"no prefix", "s3cret", body, good[len("sha256="):], false},
		{"other algorithm", "s3cret", body, "sha1=" + good[len("sha256="):], false},
		{"not hex", "s3cret", body, "sha256=zz", false},
		{"truncated", "s3cret", body, good[:len(good)-2], false},
		{"empty", "s3cret", body, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webhook.Verify(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("Verify(%q, %s, %q) = %v, want %v", tt.secret, tt.body, tt.header, got, tt.want)
			}
		})
	}
}
