package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
)

// Notification subscribes one channel to events. Exactly one of Webhook,
// Email and Command is set.
type Notification struct {
	Name string `yaml:"name"`
	// Events lists event types, or ["*"] for all.
	Events  []string  `yaml:"events"`
	Webhook *Webhook  `yaml:"webhook"`
	Email   *Email    `yaml:"email"`
	Command []string  `yaml:"command"`
	Retry   RetryRule `yaml:"retry"`
}

// Webhook POSTs each event as JSON, signed with HMAC-SHA256 when a secret
// is set.
type Webhook struct {
	URL        string            `yaml:"url"`
	SecretEnv  string            `yaml:"secret_env"`
	SecretFile string            `yaml:"secret_file"`
	Headers    map[string]string `yaml:"headers"`
	Timeout    Duration          `yaml:"timeout"` // per attempt, default 10s

	// Secret is read from SecretEnv or SecretFile by LoadPasswords.
	Secret string `yaml:"-" json:"-"`
}

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
		if kinds != 1 {
			add(f, "needs exactly one of webhook, email, command")
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
	}
	return errs
}

// readSecret reads a secret from an environment variable or a file; field
// and what name it in the error.
func readSecret(field, what, env, file string) (string, error) {
	if env != "" {
		s := os.Getenv(env)
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
	}
	return slices.DeleteFunc(names, func(s string) bool { return s == "" })
}

// UnsetSecretEnv removes the secret variables from this process's
// environment, once LoadPasswords has read them, so that the programs vigil
// starts do not inherit them.
func (c *Config) UnsetSecretEnv() {
	for _, name := range c.SecretEnv() {
		os.Unsetenv(name)
	}
}
