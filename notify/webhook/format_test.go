package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify/notifytest"
	"github.com/vigil-backup/vigil/notify/webhook"
)

// A chat service's receiver here checks a request the way the service's
// documentation describes it, and answers 400 with the reason when it
// does not fit, as the services do, so that Notify's error says what is
// wrong.

// decodeStrict decodes body into v, refusing fields v does not name: a
// service ignores what it does not know, so vigil sending it would be a
// mistake.
func decodeStrict(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// slackReceiver checks an incoming webhook's message: JSON with text,
// and blocks of type header (plain_text, at most 150 characters) and
// section (mrkdwn, at most 3000).
func slackReceiver(r *http.Request, body []byte) (text string, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return "", fmt.Errorf("content type %q, want application/json", ct)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := decodeStrict(body, &msg); err != nil {
		return "", fmt.Errorf("invalid_payload: %v", err)
	}
	if msg.Text == "" {
		return "", fmt.Errorf("no_text")
	}
	if n := utf8.RuneCountInString(msg.Text); n > 3000 {
		return "", fmt.Errorf("text has %d characters", n)
	}
	if len(msg.Blocks) != 2 || msg.Blocks[0].Type != "header" || msg.Blocks[1].Type != "section" {
		return "", fmt.Errorf("invalid_blocks: want a header and a section")
	}
	h, s := msg.Blocks[0].Text, msg.Blocks[1].Text
	if h.Type != "plain_text" || utf8.RuneCountInString(h.Text) > 150 || h.Text == "" {
		return "", fmt.Errorf("invalid_blocks: header text must be plain_text of 1 to 150 characters")
	}
	if s.Type != "mrkdwn" || utf8.RuneCountInString(s.Text) > 3000 || s.Text == "" {
		return "", fmt.Errorf("invalid_blocks: section text must be mrkdwn of 1 to 3000 characters")
	}
	return h.Text + "\n" + s.Text, nil
}

// discordReceiver checks an execute-webhook body: content of 1 to 2000
// characters and allowed_mentions that parses none.
func discordReceiver(r *http.Request, body []byte) (string, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return "", fmt.Errorf("content type %q, want application/json", ct)
	}
	var msg struct {
		Content         string `json:"content"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	}
	if err := decodeStrict(body, &msg); err != nil {
		return "", fmt.Errorf("50109 invalid JSON: %v", err)
	}
	if n := utf8.RuneCountInString(msg.Content); n == 0 || n > 2000 {
		return "", fmt.Errorf("content: must be 2000 or fewer in length, has %d", n)
	}
	if msg.AllowedMentions == nil || msg.AllowedMentions.Parse == nil || len(msg.AllowedMentions.Parse) != 0 {
		return "", fmt.Errorf("allowed_mentions must be {\"parse\": []}")
	}
	return msg.Content, nil
}

// ntfyReceiver checks a publish to a topic: the message as the body (at
// most 4096 bytes, or ntfy makes it an attachment), Title, Priority 1 to
// 5 and Tags as headers.
func ntfyReceiver(r *http.Request, body []byte) (string, error) {
	if r.URL.Path != "/vigil-backups" {
		return "", fmt.Errorf("posted to %s, not the topic", r.URL.Path)
	}
	if len(body) == 0 || len(body) > 4096 || !utf8.Valid(body) {
		return "", fmt.Errorf("body of %d bytes: want 1 to 4096 bytes of UTF-8", len(body))
	}
	title, err := new(mime.WordDecoder).DecodeHeader(r.Header.Get("Title"))
	if err != nil || title == "" {
		return "", fmt.Errorf("title header %q: %v", r.Header.Get("Title"), err)
	}
	if p, err := strconv.Atoi(r.Header.Get("Priority")); err != nil || p < 1 || p > 5 {
		return "", fmt.Errorf("priority %q: want 1 to 5", r.Header.Get("Priority"))
	}
	if r.Header.Get("Tags") == "" {
		return "", fmt.Errorf("no tags")
	}
	return title + "\n" + string(body), nil
}

// gotifyReceiver checks a POST /message: the application token, and JSON
// with title, message (required) and priority.
func gotifyReceiver(r *http.Request, body []byte) (string, error) {
	if r.URL.Path != "/message" || r.URL.Query().Get("token") != "AbCdEf123" {
		return "", fmt.Errorf("401 unauthorized: posted to %s without the application token", r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return "", fmt.Errorf("content type %q, want application/json", ct)
	}
	var msg struct {
		Title    string `json:"title"`
		Message  string `json:"message"`
		Priority *int   `json:"priority"`
		Extras   map[string]struct {
			ContentType string `json:"contentType"`
		} `json:"extras"`
	}
	if err := decodeStrict(body, &msg); err != nil {
		return "", fmt.Errorf("invalid JSON: %v", err)
	}
	if msg.Message == "" {
		return "", fmt.Errorf("message is required")
	}
	if msg.Priority == nil || *msg.Priority < 0 || *msg.Priority > 10 {
		return "", fmt.Errorf("priority must be 0 to 10")
	}
	return msg.Title + "\n" + msg.Message, nil
}

// chatRequest is what a chat receiver kept of the one request it took.
type chatRequest struct {
	header http.Header
	body   []byte
	text   string // what the service would show
}

func newChatReceiver(t *testing.T, check func(*http.Request, []byte) (string, error)) (*httptest.Server, chan chatRequest) {
	t.Helper()
	got := make(chan chatRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			http.Error(w, "method "+r.Method+", want POST", http.StatusMethodNotAllowed)
			return
		}
		text, err := check(r, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case got <- chatRequest{r.Header.Clone(), body, text}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

var chatFormats = []struct {
	format string
	path   string
	check  func(*http.Request, []byte) (string, error)
}{
	{config.FormatSlack, "/services/T000/B000/XXXX", slackReceiver},
	{config.FormatDiscord, "/api/webhooks/123/token", discordReceiver},
	{config.FormatNtfy, "/vigil-backups", ntfyReceiver},
	{config.FormatGotify, "/message?token=AbCdEf123", gotifyReceiver},
}

func deliverChat(t *testing.T, format, path string, check func(*http.Request, []byte) (string, error), ev vigil.Event) chatRequest {
	t.Helper()
	srv, got := newChatReceiver(t, check)
	cfg := &config.Webhook{URL: srv.URL + path, Format: format, Timeout: config.Duration(5 * time.Second)}
	if err := webhook.New(cfg).Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	return <-got
}

// TestChatFormats delivers an event in each chat format to a receiver
// that checks the service's documented payload, and checks that what the
// service would show holds the event's subject and message.
func TestChatFormats(t *testing.T) {
	t.Parallel()
	for _, f := range chatFormats {
		t.Run(f.format, func(t *testing.T) {
			t.Parallel()
			ev := notifytest.Event()
			r := deliverChat(t, f.format, f.path, f.check, ev)
			if !strings.Contains(r.text, ev.Subject) || !strings.Contains(r.text, ev.Message) {
				t.Errorf("shown text lacks the subject or the message:\n%s", r.text)
			}
			if r.header.Get("X-Vigil-Signature") != "" {
				t.Errorf("a chat message is signed: %s", r.header.Get("X-Vigil-Signature"))
			}
			if r.header.Get("X-Vigil-Event") != string(ev.Type) {
				t.Errorf("X-Vigil-Event = %q, want %s", r.header.Get("X-Vigil-Event"), ev.Type)
			}
		})
	}
}

// TestChatFormatsCutLongMessages delivers a message far beyond every
// service's limit, in characters of two bytes, and checks each receiver
// took it (the limits hold) with the subject and the message's start.
func TestChatFormatsCutLongMessages(t *testing.T) {
	t.Parallel()
	for _, f := range chatFormats {
		t.Run(f.format, func(t *testing.T) {
			t.Parallel()
			ev := notifytest.Event()
			ev.Subject = "Restore test FAILED: café-db " + strings.Repeat("é", 200)
			ev.Message = "Output:\n" + strings.Repeat("ü", 20000)
			r := deliverChat(t, f.format, f.path, f.check, ev)
			if !strings.Contains(r.text, "Restore test FAILED: café-db") || !strings.Contains(r.text, "Output:\nüü") {
				t.Errorf("shown text lacks the subject's or the message's start:\n%.300s", r.text)
			}
		})
	}
}

// TestChatPriorityOfFailures checks that ntfy and Gotify get a failed
// verdict with a higher priority (and ntfy with a warning tag) than a
// successful one.
func TestChatPriorityOfFailures(t *testing.T) {
	t.Parallel()
	verdict := func(status vigil.ValidationStatus) vigil.Event {
		ev := notifytest.Event()
		ev.Type = vigil.EventRestoreTestStatus
		ev.Subject = "Restore test " + string(status) + ": postgres-main (recovery point rp-0011223344556677)"
		ev.Data = json.RawMessage(`{"id":"rt-1","validation_status":"` + string(status) + `"}`)
		return ev
	}
	ntfy := func(status vigil.ValidationStatus) (string, string) {
		r := deliverChat(t, config.FormatNtfy, "/vigil-backups", ntfyReceiver, verdict(status))
		return r.header.Get("Priority"), r.header.Get("Tags")
	}
	if p, tags := ntfy(vigil.ValidationFailed); p != "4" || tags != "rotating_light,restore_test_status" {
		t.Errorf("ntfy, FAILED verdict: priority %q, tags %q; want 4, rotating_light,restore_test_status", p, tags)
	}
	if p, tags := ntfy(vigil.ValidationSuccessful); p != "3" || tags != "restore_test_status" {
		t.Errorf("ntfy, SUCCESSFUL verdict: priority %q, tags %q; want 3, restore_test_status", p, tags)
	}
	gotify := func(status vigil.ValidationStatus) int {
		r := deliverChat(t, config.FormatGotify, "/message?token=AbCdEf123", gotifyReceiver, verdict(status))
		var msg struct{ Priority int }
		json.Unmarshal(r.body, &msg)
		return msg.Priority
	}
	if p := gotify(vigil.ValidationFailed); p != 8 {
		t.Errorf("gotify, FAILED verdict: priority %d, want 8", p)
	}
	if p := gotify(vigil.ValidationSuccessful); p != 5 {
		t.Errorf("gotify, SUCCESSFUL verdict: priority %d, want 5", p)
	}
}

// TestChatFormatRefusedNamesReason checks that a service's refusal
// reaches the delivery's error with its reason, as with vigil's JSON.
func TestChatFormatRefusedNamesReason(t *testing.T) {
	t.Parallel()
	srv, _ := newChatReceiver(t, gotifyReceiver)
	cfg := &config.Webhook{URL: srv.URL + "/message?token=wrong", Format: config.FormatGotify, Timeout: config.Duration(5 * time.Second)}
	err := webhook.New(cfg).Notify(t.Context(), notifytest.Event())
	if err == nil || !strings.Contains(err.Error(), "401 unauthorized") {
		t.Fatalf("Notify = %v, want the receiver's refusal", err)
	}
	notifytest.NoSecret(t, err, "wrong")
}

// TestNtfyHeadersAddButDoNotReplace checks that configured headers reach
// ntfy beside the format's own, and cannot lower a failure's priority.
func TestNtfyHeadersAddButDoNotReplace(t *testing.T) {
	t.Parallel()
	srv, got := newChatReceiver(t, ntfyReceiver)
	cfg := &config.Webhook{
		URL: srv.URL + "/vigil-backups", Format: config.FormatNtfy, Timeout: config.Duration(5 * time.Second),
		Headers: map[string]string{"Priority": "1", "Click": "https://vigil.example.com/"},
	}
	ev := notifytest.Event()
	ev.Type = vigil.EventBackupJobFailed
	if err := webhook.New(cfg).Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r := <-got
	if r.header.Get("Priority") != "4" || r.header.Get("Click") != "https://vigil.example.com/" {
		t.Errorf("Priority %q, Click %q; want 4 and the configured Click", r.header.Get("Priority"), r.header.Get("Click"))
	}
}
