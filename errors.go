package vigil

import (
	"fmt"
	"strings"
)

// The person-facing errors of vigil's operations. The API maps each to its
// HTTP status (404, 400, 409) and the CLI to its exit code; their messages
// say what to do next.

// UnknownNameError is a name or id that does not exist; the message lists
// what does, so a person can correct the call.
type UnknownNameError struct {
	Kind  string
	Name  string
	Known []string
}

func (e *UnknownNameError) Error() string {
	known := "none configured"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("unknown %s %q (known: %s)", e.Kind, e.Name, known)
}

// InvalidError is a request that cannot be carried out as given.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Invalidf returns an InvalidError with a formatted message.
func Invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// ConflictError is a request that does not fit the record's current state.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }
