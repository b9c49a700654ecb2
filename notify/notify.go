// Package notify delivers vigil's events to the people and systems that
// want them. It defines Notifier, which each channel implements in a
// package of its own (notify/webhook, notify/email, notify/command,
// notify/nats), and
// what the channels share: the headers that name an event, the waits
// between retries, and how an attempt's errors read. notify/channels
// builds the Notifier of a configured notification.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// Notifier delivers events to one configured channel.
//
// Notify makes one attempt at delivering ev and never retries on its own:
// remembering deliveries and retrying them is the caller's work, waiting
// Backoff between attempts. A nil error means the channel took the event.
// An error means this attempt failed, and says why in words a person
// fixing the configuration or the receiver can act on; it may be a
// wrapped error. As a failed attempt is tried again, an event may arrive
// more than once; every channel hands receivers the event's Seq to
// recognise it.
//
// Notify must honour ctx: once ctx ends it stops what it is doing and
// returns an error soon. It also bounds each attempt with a timeout of its
// own, so a receiver that never answers cannot hold back the deliveries
// queued behind it.
//
// An error never holds a secret: not a webhook secret, an SMTP password,
// nor a token in a URL's path or a command's arguments. Errors are stored
// in the catalog, logged and shown in the console; RedactSecret is the
// last line of defence.
//
// A channel's constructor takes its configuration as loaded, validated
// already, and does not check it again: whatever Notify still cannot use,
// it reports as a failed attempt, so that the reason is recorded with the
// delivery where a person looks for it.
//
// A Notifier may be used by several goroutines at once.
type Notifier interface {
	Notify(ctx context.Context, ev vigil.Event) error
}

// Headers that name the event in webhook requests and e-mails, for
// receivers and mail filters.
const (
	HeaderEvent    = "X-Vigil-Event"
	HeaderEventSeq = "X-Vigil-Event-Seq"
)

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
	// Compared before each doubling and before the jitter is added, so
	// that long waits (max_backoff can be up to 290 years) never wrap
	// around to a negative one.
	d := min(base, limit)
	for i := 1; i < attempt && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	if jitter > limit-d {
		return limit
	}
	return d + jitter
}

// AttemptEnded explains why an attempt bounded by timeout failed when the
// reason is one of its contexts ending: the caller's (parent) or the
// attempt's own timeout. err is what the attempt failed with; an I/O
// deadline taken from the attempt's context counts as the timeout. It
// returns nil when the failure is err's own. Channels share it so that a
// stop and a timeout read the same whichever channel failed.
func AttemptEnded(parent, attempt context.Context, timeout time.Duration, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("stopped: %w", context.Cause(parent))
	case attempt.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no answer within %s", timeout)
	}
	return nil
}

// RedactSecret replaces secret in err's text, should a library or a server
// ever repeat it. Errors from a Notifier end up in the catalog and in logs.
func RedactSecret(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]"))
}

// Failure reports whether ev tells of something that went wrong: a failed
// job, a damaged recovery point, a restore test's copy left behind, or a
// restore test whose verdict is not SUCCESSFUL. Chat formats give such
// events a higher priority, so that a phone rings for them and not for
// every completed backup.
func Failure(ev vigil.Event) bool {
	switch {
	case strings.HasSuffix(string(ev.Type), "_FAILED"), ev.Type == vigil.EventRecoveryPointDamaged:
		return true
	case ev.Type == vigil.EventRestoreTestStatus:
		var job struct {
			Status vigil.ValidationStatus `json:"validation_status"`
		}
		if err := json.Unmarshal(ev.Data, &job); err != nil {
			return true // a verdict vigil cannot read is not a success
		}
		return job.Status != vigil.ValidationSuccessful
	}
	return false
}
