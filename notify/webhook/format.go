package webhook

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

// The limits the chat services document for the fields vigil fills; a
// longer text is cut, and marked, rather than refused by the service.
const (
	slackHeaderLimit  = 150  // a header block's plain_text, in characters
	slackSectionLimit = 3000 // a section block's text, in characters
	discordLimit      = 2000 // a message's content, in characters
	ntfyMessageLimit  = 4096 // bytes: ntfy turns a longer body into an attachment
)

// payload is a request's body and the headers that describe it.
type payload struct {
	body        []byte
	contentType string
	header      http.Header
}

// encode shapes ev as format's receiver takes it.
func encode(format string, ev vigil.Event) (payload, error) {
	switch format {
	case config.FormatSlack:
		return jsonPayload(slackMessage(ev))
	case config.FormatDiscord:
		return jsonPayload(discordMessage(ev))
	case config.FormatNtfy:
		return ntfyMessage(ev), nil
	case config.FormatGotify:
		return jsonPayload(gotifyMessage(ev))
	}
	return jsonPayload(ev)
}

func jsonPayload(v any) (payload, error) {
	b, err := json.Marshal(v)
	return payload{body: b, contentType: "application/json"}, err
}

// slackMessage is an incoming webhook's message: text, which Slack shows
// in notifications and where blocks cannot be shown, and blocks, a header
// with the subject and a section with the message.
func slackMessage(ev vigil.Event) any {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type string `json:"type"`
		Text text   `json:"text"`
	}
	// Slack's mrkdwn reads &, < and > as markup: a message quoting a
	// command's output ("<stdin>") would lose them.
	escape := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
	return struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}{
		Text: cutRunes(escape(ev.Subject+"\n"+ev.Message), slackSectionLimit),
		Blocks: []block{
			{Type: "header", Text: text{Type: "plain_text", Text: cutRunes(ev.Subject, slackHeaderLimit)}},
			{Type: "section", Text: text{Type: "mrkdwn", Text: cutRunes(escape(ev.Message), slackSectionLimit)}},
		},
	}
}

// discordMessage is an execute-webhook body: the subject in bold over the
// message, and no mentions, so that an "@everyone" in a job's output does
// not call a whole server.
func discordMessage(ev vigil.Event) any {
	type mentions struct {
		Parse []string `json:"parse"`
	}
	return struct {
		Content         string   `json:"content"`
		AllowedMentions mentions `json:"allowed_mentions"`
	}{
		Content:         cutRunes("**"+ev.Subject+"**\n"+ev.Message, discordLimit),
		AllowedMentions: mentions{Parse: []string{}},
	}
}

// ntfyMessage is a publish to a topic's URL: the message as the body, the
// subject, priority and tags as headers. A failure is priority 4 ("high")
// with the rotating_light tag, which ntfy shows as 🚨; anything else is
// priority 3, ntfy's default.
func ntfyMessage(ev vigil.Event) payload {
	priority, tags := "3", []string{strings.ToLower(string(ev.Type))}
	if notify.Failure(ev) {
		priority, tags = "4", append([]string{"rotating_light"}, tags...)
	}
	h := http.Header{}
	// Header values are ASCII; ntfy decodes RFC 2047 encoded words, so
	// a subject naming "café-db" arrives as written.
	h.Set("Title", mime.QEncoding.Encode("utf-8", ev.Subject))
	h.Set("Priority", priority)
	h.Set("Tags", strings.Join(tags, ","))
	return payload{
		body:        []byte(cutBytes(ev.Message, ntfyMessageLimit)),
		contentType: "text/plain; charset=utf-8",
		header:      h,
	}
}

// gotifyMessage is a POST /message body. Gotify's clients treat 8 and
// above as high priority and 4 to 7 as normal; its default is 5.
func gotifyMessage(ev vigil.Event) any {
	priority := 5
	if notify.Failure(ev) {
		priority = 8
	}
	type display struct {
		ContentType string `json:"contentType"`
	}
	return struct {
		Title    string             `json:"title"`
		Message  string             `json:"message"`
		Priority int                `json:"priority"`
		Extras   map[string]display `json:"extras"`
	}{
		Title:    ev.Subject,
		Message:  ev.Message,
		Priority: priority,
		// Plain text: the message is not markdown, and its "*" or "_"
		// must not turn into emphasis.
		Extras: map[string]display{"client::display": {ContentType: "text/plain"}},
	}
}

// cutRunes shortens s to at most n characters, ending a cut text with "…".
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// cutBytes shortens s to at most n bytes without splitting a character,
// ending a cut text with "…".
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-len("…")]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
