package validate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

func sqlValidator(query string, set func(*config.SQLCheck)) config.Validator {
	c := &config.SQLCheck{Query: query, Timeout: config.Duration(time.Second)}
	set(c)
	return config.Validator{SQL: c}
}

func expect(s string) func(*config.SQLCheck) { return func(c *config.SQLCheck) { c.Expect = &s } }
func expectRows(n int64) func(*config.SQLCheck) {
	return func(c *config.SQLCheck) { c.ExpectRows = &n }
}
func expectTrue(c *config.SQLCheck) { c.ExpectTrue = true }

// fixedAnswers is a database that answers each query with fixed rows.
func fixedAnswers(answers map[string][][]string) func(context.Context, string) ([]string, [][]string, error) {
	return func(_ context.Context, q string) ([]string, [][]string, error) {
		rows, ok := answers[q]
		if !ok {
			return nil, nil, fmt.Errorf("ERROR: relation %q does not exist (SQLSTATE 42P01)", q)
		}
		return []string{"c"}, rows, nil
	}
}

func TestSQLCheck(t *testing.T) {
	db := fixedAnswers(map[string][][]string{
		"count":  {{"100000"}},
		"pg":     {{"t"}},
		"mysql":  {{"1"}},
		"no":     {{"f"}},
		"three":  {{"a"}, {"b"}, {"c"}},
		"wide":   {{"1", "2"}},
		"null":   {{"NULL"}},
		"nested": {{"true"}},
	})
	tests := []struct {
		name   string
		v      config.Validator
		status vigil.ValidationStatus
		msg    string
	}{
		{"value", sqlValidator("count", expect("100000")), vigil.ValidationSuccessful, `= "100000"`},
		{"wrong value", sqlValidator("count", expect("99999")), vigil.ValidationFailed, `expected "99999", got "100000"`},
		{"postgres boolean as text", sqlValidator("pg", expect("true")), vigil.ValidationSuccessful, ""},
		{"mysql boolean", sqlValidator("mysql", expectTrue), vigil.ValidationSuccessful, "true"},
		{"false is not true", sqlValidator("no", expectTrue), vigil.ValidationFailed, `expected true, got "f"`},
		{"null is not true", sqlValidator("null", expectTrue), vigil.ValidationFailed, `got "NULL"`},
		{"rows", sqlValidator("three", expectRows(3)), vigil.ValidationSuccessful, "3 rows"},
		{"wrong rows", sqlValidator("three", expectRows(2)), vigil.ValidationFailed, "expected 2 rows, got 3"},
		{"not one value", sqlValidator("wide", expect("1")), vigil.ValidationFailed, "expected a single value, got 1 rows of 2 columns"},
		{"query error", sqlValidator("missing_table", expect("1")), vigil.ValidationFailed, "the query failed: ERROR: relation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := Run(t.Context(), []config.Validator{tt.v}, Target{SQL: db}, 5*time.Second)
			if r.Status != tt.status || !strings.Contains(r.Message, tt.msg) {
				t.Fatalf("got %s %q, want %s with %q", r.Status, r.Message, tt.status, tt.msg)
			}
			// A database's answer does not change: a wrong one is final.
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %s: a wrong answer must not be retried until the window closes", d)
			}
		})
	}
}

func TestSQLCheckRetriesWhenTheDatabaseDoesNotAnswer(t *testing.T) {
	var calls atomic.Int32
	db := func(context.Context, string) ([]string, [][]string, error) {
		if calls.Add(1) < 3 {
			return nil, nil, fmt.Errorf("%w: connection refused", ErrNoAnswer)
		}
		return []string{"n"}, [][]string{{"1"}}, nil
	}
	r := Run(t.Context(), []config.Validator{sqlValidator("select 1", expect("1"))}, Target{SQL: db}, 5*time.Second)
	if r.Status != vigil.ValidationSuccessful || calls.Load() != 3 {
		t.Fatalf("got %s %q after %d calls", r.Status, r.Message, calls.Load())
	}

	down := func(context.Context, string) ([]string, [][]string, error) {
		return nil, nil, errors.Join(ErrNoAnswer, errors.New("connection refused"))
	}
	r = Run(t.Context(), []config.Validator{sqlValidator("select 1", expect("1"))}, Target{SQL: down}, 200*time.Millisecond)
	if r.Status != vigil.ValidationTimedOut {
		t.Fatalf("a database that never answers: %s %q, want TIMED_OUT", r.Status, r.Message)
	}
}

func TestSQLCheckNeedsADatabase(t *testing.T) {
	r := Run(t.Context(), []config.Validator{sqlValidator("select 1", expect("1"))}, Target{Dir: "/x"}, time.Second)
	if r.Status != vigil.ValidationFailed || !strings.Contains(r.Message, "not a database") {
		t.Fatalf("got %s %q", r.Status, r.Message)
	}
}
