package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/vigil-backup/vigil"
)

// Notification subscribes one channel to events. Exactly one of Webhook,
// Email, Command and NATS is set.
type Notification struct {
	Name string `yaml:"name"`
	// Events lists event types, or ["*"] for all.
	Events  []string  `yaml:"events"`
	Webhook *Webhook  `yaml:"webhook"`
	Email   *Email    `yaml:"email"`
	Command []string  `yaml:"command"`
	NATS    *NATS     `yaml:"nats"`
	Retry   RetryRule `yaml:"retry"`
}

// Webhook POSTs each event as JSON, signed with HMAC-SHA256 when a secret
// is set, or as the message a chat service's incoming webhook takes.
type Webhook struct {
	URL string `yaml:"url"`
	// Format is the body's shape: "json" (vigil's event, the default) or
	// one of the chat services in WebhookFormats.
	Format     string            `yaml:"format"`
	SecretEnv  string            `yaml:"secret_env"`
	SecretFile string            `yaml:"secret_file"`
	Headers    map[string]string `yaml:"headers"`
	Timeout    Duration          `yaml:"timeout"` // per attempt, default 10s

	// Secret is read from SecretEnv or SecretFile by LoadPasswords.
	Secret string `yaml:"-" json:"-"`
}

// Webhook formats besides vigil's own JSON: the payloads of the chat
// services' incoming webhooks.
const (
	FormatJSON    = "json"
	FormatSlack   = "slack"
	FormatDiscord = "discord"
	FormatNtfy    = "ntfy"
	FormatGotify  = "gotify"
)

// WebhookFormats lists the values of Webhook.Format, as errors offer them.
var WebhookFormats = []string{FormatJSON, FormatSlack, FormatDiscord, FormatNtfy, FormatGotify}

// NATS publishes each event as JSON to a subject of a NATS server, through
// JetStream (and its ack) when a stream covers the subject.
type NATS struct {
	// URL is nats://host:port or tls://host:port; several, separated by
	// commas, are servers of one cluster.
	URL string `yaml:"url"`
	// Subject is a text/template over the event ("vigil.{{.Type}}", the
	// default).
	Subject string `yaml:"subject"`
	// CredsFile is a NATS .creds file (a user JWT and its NKey seed).
	CredsFile   string   `yaml:"creds_file"`
	TokenEnv    string   `yaml:"token_env"`
	User        string   `yaml:"user"`
	PasswordEnv string   `yaml:"password_env"`
	Timeout     Duration `yaml:"timeout"` // per attempt, default 10s

	// Token and Password are read from TokenEnv and PasswordEnv by
	// LoadPasswords.
	Token    string `yaml:"-" json:"-"`
	Password string `yaml:"-" json:"-"`
}

// DefaultNATSSubject is the subject of a NATS notification that names none.
const DefaultNATSSubject = "vigil.{{.Type}}"

// Email sends each event as a plain-text message through an SMTP server.
type Email struct {
	// SMTP is smtp://host:port (STARTTLS when the server offers it) or
	// smtps://host:port (TLS from the start).
	SMTP         string   `yaml:"smtp"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	PasswordEnv  string   `yaml:"password_env"`
	PasswordFile string   `yaml:"password_file"`
	Timeout      Duration `yaml:"timeout"` // per attempt, default 30s

	// Password is read from PasswordEnv or PasswordFile by LoadPasswords.
	Password string `yaml:"-" json:"-"`
}

// RetryRule says how a failed delivery is tried again: up to Attempts
// times in all, waiting Backoff, then twice that, up to MaxBackoff.
type RetryRule struct {
	Attempts   int      `yaml:"attempts"`    // default 8
	Backoff    Duration `yaml:"backoff"`     // default 5s
	MaxBackoff Duration `yaml:"max_backoff"` // default 10m
}

// Notification defaults.
const (
	DefaultRetryAttempts   = 8
	DefaultRetryBackoff    = 5 * time.Second
	DefaultRetryMaxBackoff = 10 * time.Minute
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultEmailTimeout    = 30 * time.Second
	DefaultNATSTimeout     = 10 * time.Second
)

// Kind names the channel, as written in YAML.
func (n Notification) Kind() string {
	switch {
	case n.Webhook != nil:
		return "webhook"
	case n.Email != nil:
		return "email"
	case len(n.Command) > 0:
		return "command"
	case n.NATS != nil:
		return "nats"
	}
	return ""
}

// Wants reports whether the notification subscribes to events of type t.
func (n Notification) Wants(t vigil.EventType) bool {
	return slices.Contains(n.Events, "*") || slices.Contains(n.Events, string(t))
}

// Notification returns the notification called name.
func (c *Config) Notification(name string) (Notification, bool) {
	return byName(c.Notifications, name, func(n Notification) string { return n.Name })
}

func (n *Notification) setDefaults() {
	if n.Retry.Attempts == 0 {
		n.Retry.Attempts = DefaultRetryAttempts
	}
	if n.Retry.Backoff == 0 {
		n.Retry.Backoff = Duration(DefaultRetryBackoff)
	}
	if n.Retry.MaxBackoff == 0 {
		n.Retry.MaxBackoff = Duration(DefaultRetryMaxBackoff)
	}
	if n.Webhook != nil && n.Webhook.Timeout == 0 {
		n.Webhook.Timeout = Duration(DefaultWebhookTimeout)
	}
	if n.Email != nil && n.Email.Timeout == 0 {
		n.Email.Timeout = Duration(DefaultEmailTimeout)
	}
	if n.Webhook != nil && n.Webhook.Format == "" {
		n.Webhook.Format = FormatJSON
	}
	if n.NATS != nil {
		if n.NATS.Timeout == 0 {
			n.NATS.Timeout = Duration(DefaultNATSTimeout)
		}
		if n.NATS.Subject == "" {
			n.NATS.Subject = DefaultNATSSubject
		}
	}
}

func (c *Config) validateNotifications(add func(field, format string, args ...any)) {
	seen := map[string]bool{}
	var types []string
	for _, t := range vigil.EventTypes {
		types = append(types, string(t))
	}
	for i, n := range c.Notifications {
		f := fmt.Sprintf("notifications[%d]", i)
		checkName(add, f, "notification", n.Name, seen)
		if len(n.Events) == 0 {
			add(f+".events", "is empty: list event types, or [\"*\"] for all")
		}
		for _, e := range n.Events {
			if e != "*" && !slices.Contains(types, e) {
				add(f+".events", "unknown event %q (known: %s)", e, strings.Join(types, ", "))
			}
		}
		kinds := 0
		if n.Webhook != nil {
			kinds++
		}
		if n.Email != nil {
			kinds++
		}
		if len(n.Command) > 0 {
			kinds++
		}
		if n.NATS != nil {
			kinds++
		}
		if kinds != 1 {
			add(f, "needs exactly one of webhook, email, command, nats")
		}
		if w := n.Webhook; w != nil {
			if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(f+".webhook.url", "%q is not an http:// or https:// URL", w.URL)
			}
			if w.Timeout < 0 {
				add(f+".webhook.timeout", "must not be negative")
			}
			if w.SecretEnv != "" && w.SecretFile != "" {
				add(f+".webhook", "has both secret_env and secret_file: keep one")
			}
			validateWebhookFormat(add, f+".webhook", w)
		}
		if s := n.NATS; s != nil {
			validateNATS(add, f+".nats", s)
		}
		if m := n.Email; m != nil {
			if u, err := url.Parse(m.SMTP); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || u.Port() == "" {
				add(f+".email.smtp", "%q is not smtp://host:port or smtps://host:port", m.SMTP)
			} else if u.User != nil {
				add(f+".email.smtp", "must not hold credentials: use username and password_env or password_file")
			}
			if _, err := mail.ParseAddress(m.From); err != nil {
				add(f+".email.from", "%q is not an e-mail address", m.From)
			}
			if len(m.To) == 0 {
				add(f+".email.to", "is empty: list who gets the messages")
			}
			for _, to := range m.To {
				if _, err := mail.ParseAddress(to); err != nil {
					add(f+".email.to", "%q is not an e-mail address", to)
				}
			}
			if m.Timeout < 0 {
				add(f+".email.timeout", "must not be negative")
			}
			if m.PasswordEnv != "" && m.PasswordFile != "" {
				add(f+".email", "has both password_env and password_file: keep one")
			}
			if (m.PasswordEnv != "" || m.PasswordFile != "") && m.Username == "" {
				add(f+".email.username", "is missing: a password needs a username")
			}
		}
		if n.Retry.Attempts < 0 || n.Retry.Backoff < 0 || n.Retry.MaxBackoff < 0 {
			add(f+".retry", "attempts, backoff and max_backoff must not be negative")
		}
	}
}

// loadNotificationSecrets reads webhook secrets and SMTP passwords.
func (c *Config) loadNotificationSecrets() []error {
	var errs []error
	for i := range c.Notifications {
		n := &c.Notifications[i]
		f := fmt.Sprintf("notifications[%d]", i)
		if w := n.Webhook; w != nil && (w.SecretEnv != "" || w.SecretFile != "") {
			s, err := readSecret(f+".webhook", "secret", w.SecretEnv, w.SecretFile)
			errs = append(errs, err)
			w.Secret = s
		}
		if m := n.Email; m != nil && (m.PasswordEnv != "" || m.PasswordFile != "") {
			s, err := readSecret(f+".email", "password", m.PasswordEnv, m.PasswordFile)
			errs = append(errs, err)
			m.Password = s
		}
		if s := n.NATS; s != nil && s.CredsFile != "" {
			// Read now, as the other secrets are, so that an unreadable
			// file stops the start rather than every delivery; the
			// library reads it again at each connection.
			_, err := readSecret(f+".nats", "creds", "", s.CredsFile)
			errs = append(errs, err)
		}
		if s := n.NATS; s != nil && s.TokenEnv != "" {
			v, err := readSecret(f+".nats", "token", s.TokenEnv, "")
			errs = append(errs, err)
			s.Token = v
		}
		if s := n.NATS; s != nil && s.PasswordEnv != "" {
			v, err := readSecret(f+".nats", "password", s.PasswordEnv, "")
			errs = append(errs, err)
			s.Password = v
		}
	}
	return errs
}

// readSecret reads a secret from an environment variable or a file; field
// and what name it in the error.
func readSecret(field, what, env, file string) (string, error) {
	if env != "" {
		s := getenv(env)
		if s == "" {
			noun := what
			if what == "dsn" {
				noun = "database's DSN"
			}
			return "", fmt.Errorf("%s.%s_env: environment variable %s is empty or unset: export it with the %s", field, what, env, noun)
		}
		return s, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s.%s_file: cannot read the %s: %w", field, what, what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s.%s_file: %s is empty", field, what, file)
	}
	return s, nil
}

// SecretEnv lists the environment variables the config reads secrets from.
func (c *Config) SecretEnv() []string {
	var names []string
	for _, v := range c.Vaults {
		names = append(names, v.PasswordEnv, v.AccessKeyEnv, v.SecretKeyEnv)
	}
	for _, r := range c.Resources {
		names = append(names, r.DSNEnv)
	}
	for _, n := range c.Notifications {
		if n.Webhook != nil {
			names = append(names, n.Webhook.SecretEnv)
		}
		if n.Email != nil {
			names = append(names, n.Email.PasswordEnv)
		}
		if n.NATS != nil {
			names = append(names, n.NATS.TokenEnv, n.NATS.PasswordEnv)
		}
	}
	return slices.DeleteFunc(names, func(s string) bool { return s == "" })
}

// UnsetSecretEnv removes the secret variables from this process's
// environment, once LoadPasswords has read them, so that the programs vigil
// starts do not inherit them. Their values stay with this process, out of
// its environment: a reload reads them again (the environment of a running
// process cannot change, so a reload finds the values it started with).
func (c *Config) UnsetSecretEnv() {
	unsetEnv.Lock()
	defer unsetEnv.Unlock()
	for _, name := range c.SecretEnv() {
		if v, ok := os.LookupEnv(name); ok {
			unsetEnv.values[name] = v
			os.Unsetenv(name)
		}
	}
}

// unsetEnv holds the secret variables UnsetSecretEnv took out of the
// environment.
var unsetEnv = struct {
	sync.Mutex
	values map[string]string
}{values: map[string]string{}}

// getenv reads a secret variable from the environment or, once
// UnsetSecretEnv has taken it out, from what it kept.
func getenv(name string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	unsetEnv.Lock()
	defer unsetEnv.Unlock()
	return unsetEnv.values[name]
}

func validateWebhookFormat(add func(field, format string, args ...any), f string, w *Webhook) {
	if w.Format != "" && !slices.Contains(WebhookFormats, w.Format) {
		add(f+".format", "unknown format %q (known: %s)", w.Format, strings.Join(WebhookFormats, ", "))
		return
	}
	if w.Format == "" || w.Format == FormatJSON {
		return
	}
	// The chat services check no signature, and a receiver that does
	// cannot be a chat service: a secret there would only look like
	// protection.
	if w.SecretEnv != "" || w.SecretFile != "" {
		add(f, "has a secret with format %s: only vigil's own json format is signed; remove secret_env/secret_file, or put the service's own token in the url or headers", w.Format)
	}
	if w.Format == FormatGotify {
		u, err := url.Parse(w.URL)
		if err != nil {
			return // reported with the url
		}
		hasKey := false
		for k := range w.Headers {
			hasKey = hasKey || strings.EqualFold(k, "X-Gotify-Key")
		}
		if u.Query().Get("token") == "" && !hasKey {
			add(f+".url", "has no gotify application token: end it with /message?token=<token>, or set the header X-Gotify-Key")
		}
	}
}

func validateNATS(add func(field, format string, args ...any), f string, s *NATS) {
	if s.URL == "" {
		add(f+".url", "is missing: nats://host:4222")
	}
	for _, one := range strings.Split(s.URL, ",") {
		if s.URL == "" {
			break
		}
		u, err := url.Parse(strings.TrimSpace(one))
		switch {
		case err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "":
			add(f+".url", "%q is not nats://host:port or tls://host:port", strings.TrimSpace(one))
		case u.User != nil:
			add(f+".url", "must not hold credentials: use creds_file, token_env, or user and password_env")
		}
	}
	if s.Subject != "" {
		if _, err := NATSSubject(s.Subject, sampleEvent); err != nil {
			add(f+".subject", "%v", err)
		}
	}
	ways := 0
	for _, set := range []bool{s.CredsFile != "", s.TokenEnv != "", s.User != "" || s.PasswordEnv != ""} {
		if set {
			ways++
		}
	}
	if ways > 1 {
		add(f, "has more than one way to log in: keep one of creds_file, token_env, or user with password_env")
	}
	if (s.User == "") != (s.PasswordEnv == "") {
		add(f, "needs both user and password_env, or neither")
	}
	if s.Timeout < 0 {
		add(f+".timeout", "must not be negative")
	}
}

// sampleEvent is what a subject template is tried on when the
// configuration is checked: every field set, as a real event may have.
var sampleEvent = vigil.Event{
	Seq: 1, Type: vigil.EventBackupJobCompleted, Time: time.Unix(0, 0).UTC(),
	Resource: "resource", JobID: "bj-0", RecoveryPointID: "rp-0",
	Subject: "subject", Message: "message",
}

// NATSSubject renders the subject template tmpl for ev and checks that the
// result is a subject one can publish to: dot-separated tokens, none
// empty, no spaces, no wildcards.
func NATSSubject(tmpl string, ev vigil.Event) (string, error) {
	t, err := template.New("subject").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("is not a template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, ev); err != nil {
		return "", fmt.Errorf("cannot be rendered: %w (fields: .Type, .Resource, .JobID, .RecoveryPointID)", err)
	}
	subject := b.String()
	for _, tok := range strings.Split(subject, ".") {
		switch {
		case tok == "":
			return "", fmt.Errorf("renders to %q, which has an empty token: a subject is tokens separated by single dots", subject)
		case tok == "*" || tok == ">":
			return "", fmt.Errorf("renders to %q, which has a wildcard: one publishes to a plain subject", subject)
		case strings.ContainsAny(tok, " \t\r\n"):
			return "", fmt.Errorf("renders to %q, which has white space", subject)
		}
	}
	return subject, nil
}
