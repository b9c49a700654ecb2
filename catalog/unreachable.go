package catalog

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnreachable marks the error of a transaction (Catalog.InTx) that
// failed because the PostgreSQL catalog could not be reached, before any
// of it was committed: the server was down, restarting or cut off. The
// transaction may be run again as a whole once the server answers. Test
// for it with errors.Is; the error's text is the driver's own.
var ErrUnreachable = errors.New("the catalog cannot be reached")

type unreachableError struct{ err error }

func (e unreachableError) Error() string        { return e.err.Error() }
func (e unreachableError) Unwrap() error        { return e.err }
func (e unreachableError) Is(target error) bool { return target == ErrUnreachable }

// markUnreachable marks err ErrUnreachable when it says the connection to
// the server failed and nothing of the transaction can have been
// committed. A failed commit is committed or not, as the server had it
// when the connection broke, unless pgx knows it sent nothing of it.
func markUnreachable(err error, atCommit bool) error {
	if !lostConnection(err) || atCommit && !pgconn.SafeToRetry(err) {
		return err
	}
	return unreachableError{err}
}

// lostConnection reports whether err is the connection to the server
// failing: refused, reset, closed, or ended by the server shutting down
// or starting up.
func lostConnection(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		connect *pgconn.ConnectError
		pgErr   *pgconn.PgError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &pgErr):
		// Class 08 is connection exceptions; 57P01-57P03 the server
		// shutting down, crashed, or not yet accepting connections.
		return pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	case errors.As(err, &connect), errors.As(err, &netErr), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}
