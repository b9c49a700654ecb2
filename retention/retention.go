// Package retention decides which recovery points a backup plan's keep
// rules keep, with the semantics of restic's `forget --keep-*`, so that a
// policy that people wrote for restic keeps the same points here. It is
// pure: the lifecycle job, the preview and the listings all call Apply,
// which is why what a preview shows is what the lifecycle job removes.
package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxKeep bounds each keep count: far more points than any plan makes,
// small enough that no count is a typo of a much larger number.
const MaxKeep = 100000

// Policy is a plan's keep rules. Each count is how many points it keeps:
// Last the newest ones; Hourly, Daily, Weekly, Monthly and Yearly the
// newest point of each of that many hours, days, ISO weeks (Monday to
// Sunday), months or years that have points. A point needs one rule to be
// kept; the rules' results are ORed. 0 turns a rule off.
type Policy struct {
	Last    int `json:"keep_last,omitempty"`
	Hourly  int `json:"keep_hourly,omitempty"`
	Daily   int `json:"keep_daily,omitempty"`
	Weekly  int `json:"keep_weekly,omitempty"`
	Monthly int `json:"keep_monthly,omitempty"`
	Yearly  int `json:"keep_yearly,omitempty"`
}

// Empty reports whether no rule keeps anything.
func (p Policy) Empty() bool { return p == Policy{} }

// String lists the rules that are on, as they are written in the config:
// "keep_last 3, keep_daily 7".
func (p Policy) String() string {
	var parts []string
	for _, r := range p.rules() {
		if r.count > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r.name, r.count))
		}
	}
	if len(parts) == 0 {
		return "no rules"
	}
	return strings.Join(parts, ", ")
}

type rule struct {
	name   string
	count  int
	bucket func(t time.Time, nr int) int
}

func (p Policy) rules() []rule {
	return []rule{
		{"keep_last", p.Last, func(_ time.Time, nr int) int { return nr }},
		{"keep_hourly", p.Hourly, func(t time.Time, _ int) int { return ((t.Year()*100+int(t.Month()))*100+t.Day())*100 + t.Hour() }},
		{"keep_daily", p.Daily, func(t time.Time, _ int) int { return (t.Year()*100+int(t.Month()))*100 + t.Day() }},
		{"keep_weekly", p.Weekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }},
		{"keep_monthly", p.Monthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }},
		{"keep_yearly", p.Yearly, func(t time.Time, _ int) int { return t.Year() }},
	}
}

// Point is what the rules look at of one recovery point.
type Point struct {
	ID   string
	Time time.Time
	// Damaged points are not counted: a day whose only point is damaged
	// is a day without a point, so that an older good one is kept in its
	// place.
	Damaged bool
	// LastGood marks the resource's last good point, which is kept
	// whatever the rules say.
	LastGood bool
}

// Reasons a point is kept besides a rule's name.
const (
	// ReasonLastGood: the resource's newest point with a SUCCESSFUL
	// restore test.
	ReasonLastGood = "last good"
	// ReasonDamaged: a damaged point newer than the oldest point a rule
	// keeps stays for `vigil vault repair` and inspection.
	ReasonDamaged = "damaged (not counted)"
	// oldestSuffix marks the oldest point, kept by a rule that still had
	// counts left although it shares the bucket of a newer kept point
	// (restic's "oldest daily snapshot"): it makes the history as long as
	// the rule allows.
	oldestSuffix = " (oldest)"
)

// Decision is what the rules decided about one point.
type Decision struct {
	Point
	// KeptBy names every rule that keeps the point ("keep_last",
	// "keep_daily", "keep_daily (oldest)", ReasonLastGood,
	// ReasonDamaged); empty when the point goes.
	KeptBy []string
}

// Keep reports whether the point stays.
func (d Decision) Keep() bool { return len(d.KeptBy) > 0 }

// Apply decides about each of points (one group: one resource's points in
// one vault), in the time zone loc, newest first. Points of the same time
// are ordered by id, so that every run decides the same.
//
// Like restic, the rules walk the points from the newest: a bucket rule
// keeps a point whose hour, day, week, month or year differs from that of
// the last point it kept, until its count is spent; and a rule with counts
// left when the walk reaches the oldest point keeps that one too.
func Apply(points []Point, p Policy, loc *time.Location) []Decision {
	out := make([]Decision, len(points))
	for i, pt := range points {
		out[i] = Decision{Point: pt}
	}
	slices.SortStableFunc(out, func(a, b Decision) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})

	var counted []*Decision
	for i := range out {
		if !out[i].Damaged {
			counted = append(counted, &out[i])
		}
	}
	rules := p.rules()
	left := make([]int, len(rules))
	last := make([]int, len(rules))
	for i, r := range rules {
		left[i], last[i] = r.count, -1
	}
	oldestKept := time.Time{}
	for nr, d := range counted {
		oldest := nr == len(counted)-1
		for i, r := range rules {
			if left[i] == 0 {
				continue
			}
			b := r.bucket(d.Time.In(loc), nr)
			if b == last[i] && !oldest {
				continue
			}
			reason := r.name
			if b == last[i] {
				reason += oldestSuffix
			}
			d.KeptBy = append(d.KeptBy, reason)
			last[i] = b
			left[i]--
		}
		if d.Keep() {
			oldestKept = d.Time
		}
	}

	for i := range out {
		d := &out[i]
		if d.LastGood {
			d.KeptBy = append(d.KeptBy, ReasonLastGood)
		}
		if d.Damaged && (oldestKept.IsZero() || d.Time.After(oldestKept)) {
			d.KeptBy = append(d.KeptBy, ReasonDamaged)
		}
	}
	return out
}
