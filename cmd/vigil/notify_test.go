package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

// TestNotifyNATSAndNtfy runs a backup and its restore test under `vigil
// serve` with three notifications: a NATS subject a JetStream stream
// covers, an ntfy topic, and a NATS server that is down. The stream holds
// the verdict's event, acked; the topic got the verdict as ntfy reads it;
// the dead server's deliveries are retried, then recorded as FAILED with
// the reason.
func TestNotifyNATSAndNtfy(t *testing.T) {
	t.Parallel()
	nc, err := natsgo.Connect("nats://127.0.0.1:4222", natsgo.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("this test needs a NATS server with JetStream on 127.0.0.1:4222: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "vigil" + hex.EncodeToString(b)
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: strings.ToUpper(prefix), Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	defer js.DeleteStream(t.Context(), strings.ToUpper(prefix))

	type ntfyPost struct {
		path, title, priority, tags, body string
	}
	posts := make(chan ntfyPost, 8)
	ntfy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- ntfyPost{r.URL.Path, r.Header.Get("Title"), r.Header.Get("Priority"), r.Header.Get("Tags"), string(body)}
		w.Write([]byte(`{"id":"x","event":"message"}`))
	}))
	defer ntfy.Close()

	e := newTestEnv(t, fmt.Sprintf(`restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
notifications:
  - name: bus
    events: ["*"]
    nats: {url: "nats://127.0.0.1:4222", subject: "%s.{{.Resource}}.{{.Type}}"}
  - name: phone
    events: [RESTORE_TEST_STATUS]
    webhook: {url: %q, format: ntfy}
  - name: down-bus
    events: [BACKUP_JOB_COMPLETED]
    nats: {url: "nats://%s", timeout: 2s}
    retry: {attempts: 2, backoff: 100ms}
`, prefix, ntfy.URL+"/vigil-backups", freeAddr(t)))
	e.serve()
	backup := e.backup("docs")
	test := e.waitTest(e.testOf(backup.RecoveryPointID).ID)
	if test.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test: %+v", test)
	}

	// The stream took the verdict, as vigil's event JSON.
	subject := prefix + ".docs.RESTORE_TEST_STATUS"
	var msg *jetstream.RawStreamMsg
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if msg, err = stream.GetLastMsgForSubject(t.Context(), subject); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream has no message on %s: %v", subject, err)
		}
	}
	var ev vigil.Event
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.Type != vigil.EventRestoreTestStatus || ev.JobID != test.ID {
		t.Errorf("stream message %s: %v", msg.Data, err)
	}
	if msg.Header.Get("Nats-Msg-Id") != fmt.Sprintf("vigil-event-%d", ev.Seq) {
		t.Errorf("the message was not published through JetStream: headers %v", msg.Header)
	}

	// The topic got the verdict with a title, at ntfy's default priority.
	select {
	case p := <-posts:
		if p.path != "/vigil-backups" || !strings.Contains(p.title, "Restore test SUCCESSFUL") || p.priority != "3" ||
			p.tags != "restore_test_status" || !strings.Contains(p.body, test.RecoveryPointID) {
			t.Errorf("ntfy got %+v", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ntfy topic got nothing")
	}

	// Deliveries: the bus and the phone DELIVERED, the dead server FAILED
	// after its two attempts, saying why.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var page api.EventPage
		e.mustJSON(&page, "events", "list")
		status := map[string][]vigil.Delivery{}
		for _, d := range page.Deliveries {
			status[d.Notification] = append(status[d.Notification], d)
		}
		done := len(status["down-bus"]) == 1 && status["down-bus"][0].Status == vigil.DeliveryFailed &&
			len(status["phone"]) == 1 && status["phone"][0].Status == vigil.DeliveryDelivered
		for _, d := range status["bus"] {
			done = done && d.Status == vigil.DeliveryDelivered
		}
		if done {
			if d := status["down-bus"][0]; d.Attempts != 2 || !strings.Contains(d.LastError, "connect:") {
				t.Errorf("failed delivery: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries did not settle: %+v", page.Deliveries)
		}
	}
	e.stop()
}
