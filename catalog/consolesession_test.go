package catalog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// TestConsoleSessions: a session recorded through one catalog is read,
// used and ended through another on the same database, as two nodes
// sharing a catalog do; expired ones are deleted and live ones kept.
func TestConsoleSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		nodeA, nodeB := db.open(t), db.open(t)

		s := catalog.ConsoleSession{IDHash: "aa", CreatedAt: at(1), LastSeenAt: at(1), UserAgent: "Chromium"}
		requireNoError(t, nodeA.InsertConsoleSession(ctx, s))
		got, err := nodeB.GetConsoleSession(ctx, "aa")
		requireNoError(t, err)
		requireEqual(t, got, s)
		if _, err := nodeB.GetConsoleSession(ctx, "bb"); !errors.Is(err, vigil.ErrNotFound) {
			t.Fatalf("an unknown session: %v, want ErrNotFound", err)
		}

		// Use moves last_seen_at forward only: a node with an older view
		// does not move it back.
		requireNoError(t, nodeB.TouchConsoleSession(ctx, "aa", at(5)))
		requireNoError(t, nodeA.TouchConsoleSession(ctx, "aa", at(3)))
		got, err = nodeA.GetConsoleSession(ctx, "aa")
		requireNoError(t, err)
		requireEqual(t, got.LastSeenAt, at(5))
		requireEqual(t, got.CreatedAt, at(1))

		// Expired: idle since before minute 10, or created before minute 2.
		for _, o := range []catalog.ConsoleSession{
			{IDHash: "idle", CreatedAt: at(4), LastSeenAt: at(9)},
			{IDHash: "old", CreatedAt: at(1), LastSeenAt: at(20)},
			{IDHash: "live", CreatedAt: at(4), LastSeenAt: at(10)},
		} {
			requireNoError(t, nodeA.InsertConsoleSession(ctx, o))
		}
		n, err := nodeB.DeleteExpiredConsoleSessions(ctx, at(10), at(2))
		requireNoError(t, err)
		requireEqual(t, n, int64(3)) // aa (seen at 5), idle, old
		for id, want := range map[string]bool{"aa": false, "idle": false, "old": false, "live": true} {
			_, err := nodeA.GetConsoleSession(ctx, id)
			if (err == nil) != want {
				t.Errorf("session %s after the purge: %v, want kept %v", id, err, want)
			}
		}

		// Sign-out on one node ends the session on the other; twice is fine.
		requireNoError(t, nodeB.DeleteConsoleSession(ctx, "live"))
		requireNoError(t, nodeA.DeleteConsoleSession(ctx, "live"))
		if _, err := nodeA.GetConsoleSession(ctx, "live"); !errors.Is(err, vigil.ErrNotFound) {
			t.Fatalf("a session ended on the other node: %v, want ErrNotFound", err)
		}
	})
}
