package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// ConsoleSession is a signed-in session of the web console. The catalog
// holds a hash of the session's id, never the id: the id is the browser's
// cookie, and a copy of the catalog must give no one a live session. When
// a session expires is the console's to decide; the catalog keeps the
// times it decides by.
type ConsoleSession struct {
	// IDHash is the hex SHA-256 of the session id.
	IDHash     string    `json:"id_hash"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	UserAgent  string    `json:"user_agent"`
}

// InsertConsoleSession records a new session.
func (r records) InsertConsoleSession(ctx context.Context, s ConsoleSession) error {
	_, err := r.db.exec(ctx, `INSERT INTO vigil_console_session (id_hash, created_at, last_seen_at, user_agent)
		VALUES (?, ?, ?, ?)`, s.IDHash, micros(s.CreatedAt), micros(s.LastSeenAt), s.UserAgent)
	if err != nil {
		return fmt.Errorf("record console session: %w", err)
	}
	return nil
}

// GetConsoleSession returns the session whose id hashes to idHash, or an
// error wrapping vigil.ErrNotFound.
func (r records) GetConsoleSession(ctx context.Context, idHash string) (ConsoleSession, error) {
	s := ConsoleSession{IDHash: idHash}
	var created, seen int64
	err := r.db.queryRow(ctx, `SELECT created_at, last_seen_at, user_agent FROM vigil_console_session WHERE id_hash = ?`,
		idHash).Scan(&created, &seen, &s.UserAgent)
	if errors.Is(err, errNoRows) {
		return ConsoleSession{}, fmt.Errorf("get console session: %w", vigil.ErrNotFound)
	}
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("get console session: %w", err)
	}
	s.CreatedAt, s.LastSeenAt = fromMicros(created), fromMicros(seen)
	return s, nil
}

// TouchConsoleSession sets the session's last use to at, unless it is
// already later (another node saw it since). A session that is gone is
// no error: the next GetConsoleSession says so.
func (r records) TouchConsoleSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := r.db.exec(ctx, `UPDATE vigil_console_session SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?`,
		micros(at), idHash, micros(at))
	if err != nil {
		return fmt.Errorf("record use of console session: %w", err)
	}
	return nil
}

// DeleteConsoleSession ends a session. Ending one that is already gone is
// no error, so that signing out twice, or on two nodes, succeeds.
func (r records) DeleteConsoleSession(ctx context.Context, idHash string) error {
	if _, err := r.db.exec(ctx, `DELETE FROM vigil_console_session WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}

// DeleteExpiredConsoleSessions deletes the sessions last used before
// lastSeenBefore or created before createdBefore, and returns how many.
func (r records) DeleteExpiredConsoleSessions(ctx context.Context, lastSeenBefore, createdBefore time.Time) (int64, error) {
	n, err := r.db.exec(ctx, `DELETE FROM vigil_console_session WHERE last_seen_at < ? OR created_at < ?`,
		micros(lastSeenBefore), micros(createdBefore))
	if err != nil {
		return 0, fmt.Errorf("delete expired console sessions: %w", err)
	}
	return n, nil
}
