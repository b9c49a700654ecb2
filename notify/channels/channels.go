// Package channels builds the Notifier of a configured notification. It is
// the one place that knows every channel package, which notify itself
// cannot be, as the channel packages import it. A new channel is a package
// under notify/ and one line in registry.
package channels

import (
	"fmt"
	"strings"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
	"github.com/vigil-backup/vigil/notify/command"
	"github.com/vigil-backup/vigil/notify/email"
	"github.com/vigil-backup/vigil/notify/nats"
	"github.com/vigil-backup/vigil/notify/webhook"
)

// registry lists the channels under their names in the configuration, as
// config.Notification.Kind spells them, in the order errors offer them.
var registry = []struct {
	kind  string
	build func(config.Notification) notify.Notifier
}{
	{"webhook", func(n config.Notification) notify.Notifier { return webhook.New(n.Webhook) }},
	{"email", func(n config.Notification) notify.Notifier { return email.New(n.Email) }},
	{"command", func(n config.Notification) notify.Notifier { return command.New(n.Command) }},
	{"nats", func(n config.Notification) notify.Notifier { return nats.New(n.NATS) }},
}

// New returns the Notifier of n's channel. It fails only when n has no
// channel, which a validated configuration never holds.
func New(n config.Notification) (notify.Notifier, error) {
	kind := n.Kind()
	var kinds []string
	for _, c := range registry {
		if c.kind == kind {
			return c.build(n), nil
		}
		kinds = append(kinds, c.kind)
	}
	return nil, fmt.Errorf("notification %q has no channel: set one of %s", n.Name, strings.Join(kinds, ", "))
}
