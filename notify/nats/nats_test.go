package nats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/notify/nats"
	"github.com/vigil-backup/vigil/notify/notifytest"
)

// serverURL is the NATS server (with JetStream) the tests publish to.
const serverURL = "nats://127.0.0.1:4222"

// connect opens the test's own connection to the server, to make streams
// and subscribe, or fails naming the server that is missing.
func connect(t *testing.T) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(serverURL, natsgo.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("these tests need a NATS server with JetStream on %s (nats-server -a 127.0.0.1 -p 4222 -js): %v", serverURL, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// unique is a subject token no other test, nor another run, uses.
func unique(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// newStream makes a stream over prefix.> that is deleted when the test
// ends.
func newStream(t *testing.T, js jetstream.JetStream, prefix string, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	cfg.Name = strings.ToUpper(prefix)
	cfg.Subjects = []string{prefix + ".>"}
	cfg.Storage = jetstream.MemoryStorage
	s, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatalf("create stream %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { js.DeleteStream(t.Context(), cfg.Name) })
	return s
}

func notifier(subject string) *nats.Notifier {
	return nats.New(&config.NATS{URL: serverURL, Subject: subject, Timeout: config.Duration(5 * time.Second)})
}

// TestJetStreamPublishIsAcked publishes to a subject a stream covers and
// reads the message back from the stream: the event's JSON, under the
// subject the template renders, with the event's headers; the same event
// again (a retry after a lost ack) stays one message.
func TestJetStreamPublishIsAcked(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	js, _ := jetstream.New(nc)
	prefix := unique(t)
	stream := newStream(t, js, prefix, jetstream.StreamConfig{})

	ev := notifytest.Event()
	n := notifier(prefix + ".{{.Resource}}.{{.Type}}")
	for range 2 {
		if err := n.Notify(t.Context(), ev); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	subject := prefix + ".postgres-main.BACKUP_JOB_COMPLETED"
	msg, err := stream.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatalf("stream has no message on %s: %v", subject, err)
	}
	var got vigil.Event
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("message is not an event's JSON: %v\n%s", err, msg.Data)
	}
	notifytest.SameEvent(t, got, ev)
	if h := msg.Header; h.Get("X-Vigil-Event") != "BACKUP_JOB_COMPLETED" || h.Get("X-Vigil-Event-Seq") != "42" || h.Get("Nats-Msg-Id") != "vigil-event-42" {
		t.Errorf("headers = %v", h)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages after the event was published twice, want 1", info.State.Msgs)
	}
}

// TestJetStreamRefusalFails checks that Notify waits for the stream's
// answer: a stream that is full and discards new messages refuses the
// second event, which a core publish would have reported as sent.
func TestJetStreamRefusalFails(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	js, _ := jetstream.New(nc)
	prefix := unique(t)
	newStream(t, js, prefix, jetstream.StreamConfig{MaxMsgs: 1, Discard: jetstream.DiscardNew})

	n := notifier(prefix + ".{{.Type}}")
	ev := notifytest.Event()
	if err := n.Notify(t.Context(), ev); err != nil {
		t.Fatalf("first Notify: %v", err)
	}
	ev.Seq++
	err := n.Notify(t.Context(), ev)
	if err == nil {
		t.Fatal("Notify to a full stream succeeded")
	}
	if want := "stream " + strings.ToUpper(prefix) + " did not take the message"; !strings.Contains(err.Error(), want) {
		t.Errorf("Notify: %v, want it to say %q", err, want)
	}
}

// TestCorePublishWithoutStream publishes to a subject no stream covers
// and checks a subscriber got the event.
func TestCorePublishWithoutStream(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	prefix := unique(t)
	sub, err := nc.SubscribeSync(prefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ev := notifytest.Event()
	ev.Type = vigil.EventBackupJobFailed
	if err := notifier(prefix+".{{.Type}}").Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no message arrived: %v", err)
	}
	if msg.Subject != prefix+".BACKUP_JOB_FAILED" {
		t.Errorf("subject = %s", msg.Subject)
	}
	var got vigil.Event
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("message is not an event's JSON: %v", err)
	}
	notifytest.SameEvent(t, got, ev)
	if msg.Header.Get("Nats-Msg-Id") != "" {
		t.Errorf("a core publish carries JetStream's message id: %v", msg.Header)
	}
}

// TestUnreachableServerFails checks that a server nobody listens on fails
// the attempt soon, naming the server, and never shows the token.
func TestUnreachableServerFails(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const token = "nats-token-do-not-leak"
	n := nats.New(&config.NATS{URL: "nats://" + addr, Subject: "vigil.{{.Type}}", Token: token, Timeout: config.Duration(2 * time.Second)})
	start := time.Now()
	err = n.Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Notify to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "nats nats://"+addr+": connect:") {
		t.Errorf("Notify: %v, want it to name the server and the connect", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Notify took %s", d)
	}
	notifytest.NoSecret(t, err, token)
}

// TestTokenLogin starts a NATS server of its own that wants a token, and
// checks that the configured token logs in and a wrong one fails with
// the server's reason, the token kept out of the error.
func TestTokenLogin(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const token = "s3cret-nats-token"
	srv := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "--auth", token)
	if err := srv.Start(); err != nil {
		t.Fatalf("this test needs nats-server (%s): %v", bin, err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen on %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cfg := func(tok string) *config.NATS {
		return &config.NATS{URL: url, Subject: "vigil.{{.Type}}", Token: tok, Timeout: config.Duration(3 * time.Second)}
	}
	if err := nats.New(cfg(token)).Notify(t.Context(), notifytest.Event()); err != nil {
		t.Fatalf("Notify with the token: %v", err)
	}
	const wrong = "wrong-nats-token"
	err = nats.New(cfg(wrong)).Notify(t.Context(), notifytest.Event())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("Notify with a wrong token = %v, want the server's authorization violation", err)
	}
	notifytest.NoSecret(t, err, wrong, token)
}

// TestStopEndsConnect checks that Notify honours its context while it
// connects: a server that accepts the connection and never speaks holds
// the handshake, and a stop must end the attempt well before its
// timeout.
func TestStopEndsConnect(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	n := nats.New(&config.NATS{URL: "nats://" + l.Addr().String(), Subject: "vigil.{{.Type}}", Timeout: config.Duration(30 * time.Second)})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = n.Notify(ctx, notifytest.Event())
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Notify returned %s after the stop", d-300*time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "stopped:") {
		t.Errorf("Notify = %v, want it stopped", err)
	}
}
