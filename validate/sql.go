package validate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// sqlCheck runs a query against the restored database and checks its
// answer.
type sqlCheck struct {
	backoff

	cfg   config.SQLCheck
	query func(ctx context.Context, q string) ([]string, [][]string, error)
}

func newSQLCheck(cfg config.SQLCheck, t Target) check {
	c := &sqlCheck{cfg: cfg, query: t.SQL}
	if t.SQL == nil {
		return unavailable{what: c.name(), reason: "the restored copy is not a database"}
	}

	return c
}

func (c *sqlCheck) name() string {
	q := strings.Join(strings.Fields(c.cfg.Query), " ")
	if r := []rune(q); len(r) > 60 {
		q = string(r[:57]) + "…"
	}

	return "sql " + q
}

// ErrNoAnswer, wrapped in the error of a Target.SQL, says the query did
// not reach the database: the attempt is retried as "no answer", where any
// other error is the verdict.
var ErrNoAnswer = errors.New("the database did not answer")

func (c *sqlCheck) try(window context.Context) attempt {
	ctx, cancel := attemptContext(window, time.Duration(c.cfg.Timeout))
	defer cancel()

	_, rows, err := c.query(ctx, c.cfg.Query)

	switch {
	case err != nil && ctx.Err() != nil:
		return attempt{outcome: noAnswer, message: timeoutMessage(window, time.Duration(c.cfg.Timeout), "no result")}
	case errors.Is(err, ErrNoAnswer):
		return attempt{outcome: noAnswer, message: err.Error()}
	case err != nil:
		// The restored data will not change: an error now is the verdict.
		return attempt{outcome: finalFailure, message: "the query failed: " + err.Error()}
	}

	got, ok := c.judge(rows)
	if !ok {
		return attempt{outcome: finalFailure, message: got}
	}

	return attempt{outcome: passed, message: got}
}

// judge compares the rows with the expectation, and says what it saw.
func (c *sqlCheck) judge(rows [][]string) (string, bool) {
	if want := c.cfg.ExpectRows; want != nil {
		if int64(len(rows)) != *want {
			return fmt.Sprintf("expected %d rows, got %d", *want, len(rows)), false
		}

		return fmt.Sprintf("%d rows", len(rows)), true
	}

	if len(rows) != 1 || len(rows[0]) != 1 {
		cols := 0
		if len(rows) > 0 {
			cols = len(rows[0])
		}

		return fmt.Sprintf("expected a single value, got %d rows of %d columns", len(rows), cols), false
	}

	v := rows[0][0]

	if c.cfg.ExpectTrue {
		if truthy(v) {
			return "true", true
		}

		return fmt.Sprintf("expected true, got %s", quoteValue(v)), false
	}

	want := *c.cfg.Expect
	if v == want || truthy(v) && truthy(want) || falsy(v) && falsy(want) {
		return "= " + quoteValue(v), true
	}

	return fmt.Sprintf("expected %s, got %s", quoteValue(want), quoteValue(v)), false
}

// truthy and falsy read the ways databases write booleans: PostgreSQL's
// t/f, MySQL's 1/0, and the words.
func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "true", "t", "yes", "on":
		return true
	}

	n, err := strconv.ParseFloat(s, 64)

	return err == nil && n == 1
}

func falsy(s string) bool {
	switch strings.ToLower(s) {
	case "false", "f", "no", "off":
		return true
	}

	n, err := strconv.ParseFloat(s, 64)

	return err == nil && n == 0
}

func quoteValue(s string) string { return head([]byte(s)) }
