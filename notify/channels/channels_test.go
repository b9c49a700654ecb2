package channels_test

import (
	"reflect"
	"testing"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
	"github.com/vigil-backup/vigil/notify/channels"
	"github.com/vigil-backup/vigil/notify/command"
	"github.com/vigil-backup/vigil/notify/email"
	"github.com/vigil-backup/vigil/notify/nats"
	"github.com/vigil-backup/vigil/notify/webhook"
)

func TestNewWithoutChannel(t *testing.T) {
	t.Parallel()
	_, err := channels.New(config.Notification{Name: "nothing"})
	if err == nil {
		t.Fatal("New for a notification without channel succeeded")
	}
	if want := `notification "nothing" has no channel: set one of webhook, email, command, nats`; err.Error() != want {
		t.Errorf("New: %v, want %s", err, want)
	}
}

// TestNewPicksChannel checks that each kind the configuration knows gets
// its own channel's Notifier.
func TestNewPicksChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    config.Notification
		want notify.Notifier
	}{
		{config.Notification{Name: "hook", Webhook: &config.Webhook{URL: "https://example.com/hook"}}, &webhook.Notifier{}},
		{config.Notification{Name: "mail", Email: &config.Email{SMTP: "smtp://mail.example.com:25"}}, &email.Notifier{}},
		{config.Notification{Name: "script", Command: []string{"/bin/true"}}, &command.Notifier{}},
		{config.Notification{Name: "bus", NATS: &config.NATS{URL: "nats://127.0.0.1:4222"}}, &nats.Notifier{}},
	}
	for _, tt := range tests {
		t.Run(tt.n.Kind(), func(t *testing.T) {
			got, err := channels.New(tt.n)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(tt.want) {
				t.Errorf("New(%s) = %T, want %T", tt.n.Kind(), got, tt.want)
			}
		})
	}
}
