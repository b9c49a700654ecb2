package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
)

// records holds the record methods shared by Catalog and Tx, which differ
// only in the handle the queries run on.
type records struct {
	db dbtx
}

// scanner is a row being read: a row or the current row of rows.
type scanner interface {
	Scan(dest ...any) error
}

// micros is how a time is stored: unix microseconds, which compare and
// index the same way on both databases, unlike their timestamp types.
func micros(t time.Time) int64 { return t.UnixMicro() }

// microsOrNull stores a nil time as NULL.
func microsOrNull(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromMicrosOrNull(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := fromMicros(*v)
	return &t
}

// now is the current time as the catalog stores it, so a value set on a
// record by an insert equals the value read back.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// jsonOrNull stores a nil map as NULL and any other map, empty included,
// as JSON, so a record reads back exactly as it was written.
func jsonOrNull(m map[string]string) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func fromJSONOrNull(v *string) (map[string]string, error) {
	if v == nil {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(*v), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// filter builds the WHERE, ORDER BY and LIMIT of a list query from the
// fields of a filter that are set.
type filter struct {
	conditions []string
	args       []any
}

// equal adds "column = value" unless value is empty.
func (f *filter) equal(column, value string) {
	if value == "" {
		return
	}
	f.conditions = append(f.conditions, column+" = ?")
	f.args = append(f.args, value)
}

// in adds "column IN (values…)" unless values is empty.
func in[S ~string](f *filter, column string, values []S) {
	if len(values) == 0 {
		return
	}
	marks := strings.Repeat("?, ", len(values))
	f.conditions = append(f.conditions, fmt.Sprintf("%s IN (%s)", column, marks[:len(marks)-2]))
	for _, v := range values {
		f.args = append(f.args, string(v))
	}
}

// before adds "column < t" (and not NULL) unless t is nil.
func (f *filter) before(column string, t *time.Time) {
	if t == nil {
		return
	}
	f.conditions = append(f.conditions, column+" IS NOT NULL AND "+column+" < ?")
	f.args = append(f.args, micros(*t))
}

// after adds "column >= t" unless t is nil.
func (f *filter) after(column string, t *time.Time) {
	if t == nil {
		return
	}
	f.conditions = append(f.conditions, column+" >= ?")
	f.args = append(f.args, micros(*t))
}

// startingAfter adds the condition that selects the records listed after
// the one with id, newest first, unless id is empty: keyset paging, which
// reads a deep page from an index as fast as the first, where an OFFSET
// would read every row before it. It returns an error wrapping
// vigil.ErrNotFound when table holds no record with id.
func (f *filter) startingAfter(ctx context.Context, db dbtx, table, id string) error {
	if id == "" {
		return nil
	}
	var at int64
	err := db.queryRow(ctx, "SELECT created_at FROM "+table+" WHERE id = ?", id).Scan(&at)
	if errors.Is(err, errNoRows) {
		return fmt.Errorf("start after %s: %w", id, vigil.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("start after %s: %w", id, err)
	}
	// Written so that created_at alone bounds an index range on both
	// databases; the rest breaks ties as newestFirst's ORDER BY does.
	f.conditions = append(f.conditions, "created_at <= ? AND (created_at < ? OR id < ?)")
	f.args = append(f.args, at, at, id)
	return nil
}

// newestFirst completes selectSQL with the conditions, newest record first
// (id breaks ties between records created in the same microsecond), and a
// limit when limit > 0.
func (f *filter) newestFirst(selectSQL string, limit int) (string, []any) {
	var b strings.Builder
	b.WriteString(selectSQL)
	if len(f.conditions) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(joinAnd(f.conditions))
	}
	b.WriteString(" ORDER BY created_at DESC, id DESC")
	args := f.args
	if limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, limit)
	}
	return b.String(), args
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func joinAnd(conditions []string) string { return strings.Join(conditions, " AND ") }
