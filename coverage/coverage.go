// Package coverage decides what a vault's rolling verification reads next
// and how much of a vault has been read back, so that every stored byte is
// read back within a window (say 30 days) without reading more than a
// daily budget (say 20 GiB) and without reading again what restore tests
// read lately.
//
// The unit is the pack, the file that stored contents are packed into,
// which is what a bad disk or a bit flip in a bucket damages and what a
// read-back has to read whole anyway. The package is pure: the caller
// keeps when each pack was last read back (in the catalog) and owns the
// clock, so a test can run a month of nights in a second.
package coverage

import (
	"cmp"
	"slices"
	"time"
)

// Pack is a pack of the vault and when it was last read back and found
// sound; a zero Read means never.
type Pack struct {
	ID     string
	Length int64
	Read   time.Time
	// Written is when the pack was stored; zero when unknown.
	Written time.Time
}

// Policy is a vault's rolling verification: every pack read back within
// Within, reading at most BytesPerDay each night.
type Policy struct {
	Within      time.Duration
	BytesPerDay int64
}

// Tonight is the night's budget: a night's bytes plus what the nights
// before left unread, up to one more night's, so that over any run of
// nights the reads average out at BytesPerDay, and a pause is not made up
// all at once.
func (p Policy) Tonight(carried int64) int64 {
	return p.BytesPerDay + min(max(carried, 0), p.BytesPerDay)
}

// Pick returns the packs to read back tonight, within budget bytes: those
// never read first, then the least recently read, skipping every pack read
// within the last day (a restore test read it: its contents were
// authenticated then). A pack larger than the whole budget is read alone,
// on a night when it comes first, so that no pack goes unread for ever.
func Pick(packs []Pack, now time.Time, budget int64) []Pack {
	due := make([]Pack, 0, len(packs))

	for _, pk := range packs {
		if pk.Read.IsZero() || now.Sub(pk.Read) >= 24*time.Hour {
			due = append(due, pk)
		}
	}

	// never read (zero time) sorts first, then oldest; ties by id, so
	// that the choice is the same every time
	slices.SortFunc(due, func(a, b Pack) int {
		if c := a.Read.Compare(b.Read); c != 0 {
			return c
		}

		return cmp.Compare(a.ID, b.ID)
	})

	var (
		picked []Pack
		bytes  int64
	)

	for _, pk := range due {
		if bytes+pk.Length > budget {
			if len(picked) == 0 {
				picked = append(picked, pk)
			}

			break
		}

		picked = append(picked, pk)
		bytes += pk.Length
	}

	return picked
}

// Report is how much of a vault has been read back within a window.
type Report struct {
	Packs, PacksRead int
	Bytes, BytesRead int64
	// UnverifiedBytes is what has not been read back within the window.
	UnverifiedBytes int64
	// Oldest is when the least recently read pack was read; zero when a
	// pack was never read (then OldestNever is set) or there are none.
	Oldest      time.Time
	OldestNever bool
	// GapBytes is what was stored longer ago than the window and not read
	// back within it: what the verification is behind on.
	GapBytes int64
	// OldestUnverified is since when the longest-unverified pack has gone
	// unchecked: its last read, or its writing if never read; zero when
	// every pack was read within the window.
	OldestUnverified time.Time
}

// Percent is the share of stored bytes read back within the window, 100
// for an empty vault.
func (r Report) Percent() float64 {
	if r.Bytes == 0 {
		return 100
	}

	return 100 * float64(r.BytesRead) / float64(r.Bytes)
}

// Measure reports the coverage of packs at now, within the window.
func Measure(packs []Pack, now time.Time, within time.Duration) Report {
	var r Report

	for _, pk := range packs {
		r.Packs++
		r.Bytes += pk.Length

		if !pk.Read.IsZero() && now.Sub(pk.Read) < within {
			r.PacksRead++
			r.BytesRead += pk.Length
		} else {
			r.UnverifiedBytes += pk.Length
			since := pk.Read
			if since.IsZero() {
				since = pk.Written
			}
			if !since.IsZero() && now.Sub(since) >= within {
				r.GapBytes += pk.Length
			}
			if !since.IsZero() && (r.OldestUnverified.IsZero() || since.Before(r.OldestUnverified)) {
				r.OldestUnverified = since
			}
		}

		switch {
		case pk.Read.IsZero():
			r.OldestNever = true
		case r.Oldest.IsZero() || pk.Read.Before(r.Oldest):
			r.Oldest = pk.Read
		}
	}

	if r.OldestNever {
		r.Oldest = time.Time{}
	}

	return r
}
