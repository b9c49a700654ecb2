// Package nats delivers vigil's events as JSON messages on a NATS
// server: through JetStream, waiting for the stream's ack, when a stream
// covers the subject; as a core NATS publish otherwise.
package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify"
)

// Notifier publishes each event to the subject its template renders.
//
// Each attempt opens a connection of its own and closes it: events are a
// handful per job, and a connection held between them would need its own
// reconnecting, its own errors nobody records, and a close on reload. A
// connection per attempt fails, and is recorded, with the delivery.
type Notifier struct {
	cfg *config.NATS
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns the Notifier of cfg.
func New(cfg *config.NATS) *Notifier {
	return &Notifier{cfg: cfg}
}

// Notify publishes ev, once.
func (n *Notifier) Notify(ctx context.Context, ev vigil.Event) error {
	err := n.publish(ctx, ev)
	if err != nil {
		err = fmt.Errorf("nats %s: %w", n.cfg.URL, err)
		return notify.RedactSecret(notify.RedactSecret(err, n.cfg.Token), n.cfg.Password)
	}
	return nil
}

func (n *Notifier) publish(ctx context.Context, ev vigil.Event) error {
	c := n.cfg
	subject, err := config.NATSSubject(c.Subject, ev)
	if err != nil {
		return fmt.Errorf("subject %q %w: fix it in the configuration", c.Subject, err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	timeout := time.Duration(c.Timeout)
	if timeout <= 0 {
		timeout = config.DefaultNATSTimeout
	}
	attempt, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	opts := []natsgo.Option{
		natsgo.Name("vigil"),
		natsgo.Timeout(timeout),
		// A failed attempt is retried by the delivery, with its backoff
		// and its record; the library reconnecting in the background
		// would only hide the failure.
		natsgo.NoReconnect(),
		// The library's connect takes no context: without this, a stop
		// would wait out the timeout of a server slow to answer.
		natsgo.SetCustomDialer(ctxDialer{attempt}),
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, natsgo.UserCredentials(c.CredsFile))
	case c.Token != "":
		opts = append(opts, natsgo.Token(c.Token))
	case c.User != "":
		opts = append(opts, natsgo.UserInfo(c.User, c.Password))
	}
	nc, err := natsgo.Connect(c.URL, opts...)
	if err != nil {
		if ended := notify.AttemptEnded(ctx, attempt, timeout, err); ended != nil {
			return ended
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()

	msg := &natsgo.Msg{Subject: subject, Data: body, Header: natsgo.Header{}}
	msg.Header.Set(notify.HeaderEvent, string(ev.Type))
	msg.Header.Set(notify.HeaderEventSeq, strconv.FormatInt(ev.Seq, 10))

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream: %w", err)
	}
	stream, err := js.StreamNameBySubject(attempt, subject)
	switch {
	// A server without JetStream has nobody answering its API; that is
	// a server without streams, not a failure.
	case errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, natsgo.ErrNoResponders):
		return corePublish(ctx, attempt, timeout, nc, msg)
	case err != nil:
		if ended := notify.AttemptEnded(ctx, attempt, timeout, err); ended != nil {
			return ended
		}
		return fmt.Errorf("look up the stream of %s: %w", subject, err)
	}
	// The message id makes a retried event, whose first ack was lost, a
	// duplicate that the stream drops (within its duplicate window)
	// rather than a second message.
	_, err = js.PublishMsg(attempt, msg, jetstream.WithMsgID("vigil-event-"+strconv.FormatInt(ev.Seq, 10)), jetstream.WithExpectStream(stream))
	if err != nil {
		if ended := notify.AttemptEnded(ctx, attempt, timeout, err); ended != nil {
			return ended
		}
		return fmt.Errorf("stream %s did not take the message on %s: %w", stream, subject, err)
	}
	return nil
}

// ctxDialer dials with a context, and ends the connection's reads and
// writes when the context ends, so that a handshake with a server that
// does not answer stops with the attempt.
type ctxDialer struct {
	ctx context.Context
}

func (d ctxDialer) Dial(network, address string) (net.Conn, error) {
	c, err := new(net.Dialer).DialContext(d.ctx, network, address)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(d.ctx, func() { c.SetDeadline(time.Now()) })
	return c, nil
}

// corePublish publishes msg without a stream. The flush waits until the
// server has the message, which is all core NATS promises: a subscriber
// not listening now never gets it.
func corePublish(ctx, attempt context.Context, timeout time.Duration, nc *natsgo.Conn, msg *natsgo.Msg) error {
	if err := nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("publish to %s: %w", msg.Subject, err)
	}
	if err := nc.FlushWithContext(attempt); err != nil {
		if ended := notify.AttemptEnded(ctx, attempt, timeout, err); ended != nil {
			return ended
		}
		return fmt.Errorf("publish to %s: the server did not confirm: %w", msg.Subject, err)
	}
	return nil
}
