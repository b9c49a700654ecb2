package retention

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// at parses a point's time in UTC, and names the point after it.
func at(s string) Point {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return Point{ID: s, Time: t}
}

func points(times ...string) []Point {
	var out []Point
	for _, s := range times {
		out = append(out, at(s))
	}
	return out
}

func damaged(p Point) Point  { p.Damaged = true; return p }
func lastGood(p Point) Point { p.LastGood = true; return p }

// resticExample is the example of restic's documentation (060_forget.rst,
// "Removing snapshots according to a policy"): backups every weekday for
// two weeks, an extra one on Fridays, none on the last Wednesday.
var resticExample = points(
	"2025-04-21 11:00", "2025-04-22 11:00", "2025-04-23 11:00", "2025-04-24 11:00",
	"2025-04-25 11:00", "2025-04-25 23:00", "2025-04-28 11:00", "2025-04-29 11:00",
	"2025-05-01 11:00", "2025-05-02 11:00", "2025-05-02 23:00",
)

func TestApply(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load time zone Europe/Berlin (install tzdata): %v", err)
	}
	tests := []struct {
		name   string
		points []Point
		policy Policy
		loc    *time.Location
		// keep maps each kept point to its rules, joined by "+"; every
		// other point goes.
		keep map[string]string
	}{
		{
			// restic's documented answer: one per day for the last five
			// days that have one; the Friday before stands in for the
			// missing Wednesday.
			name: "restic's keep-daily 5", points: resticExample, policy: Policy{Daily: 5},
			keep: map[string]string{
				"2025-05-02 23:00": "keep_daily", "2025-05-01 11:00": "keep_daily", "2025-04-29 11:00": "keep_daily",
				"2025-04-28 11:00": "keep_daily", "2025-04-25 23:00": "keep_daily",
			},
		},
		{
			name: "keep_last keeps the newest", points: resticExample, policy: Policy{Last: 3},
			keep: map[string]string{"2025-05-02 23:00": "keep_last", "2025-05-02 11:00": "keep_last", "2025-05-01 11:00": "keep_last"},
		},
		{
			// Weeks run Monday to Sunday: the Friday 25th and the Monday
			// 28th are in different weeks, the 21st and the 25th in one.
			name: "weekly boundary", points: resticExample, policy: Policy{Weekly: 2},
			keep: map[string]string{"2025-05-02 23:00": "keep_weekly", "2025-04-25 23:00": "keep_weekly"},
		},
		{
			// 30 December 2024 is in ISO week 1 of 2025, with 2 January;
			// 29 December is the last week of 2024. Years are calendar
			// years. One point kept by two rules names both.
			name:   "year change, weeks and years",
			points: points("2024-12-29 12:00", "2024-12-30 12:00", "2025-01-02 12:00"), policy: Policy{Weekly: 2, Yearly: 2},
			keep: map[string]string{
				"2025-01-02 12:00": "keep_weekly+keep_yearly", "2024-12-30 12:00": "keep_yearly", "2024-12-29 12:00": "keep_weekly",
			},
		},
		{
			name:   "monthly boundary",
			points: points("2025-01-31 12:00", "2025-02-01 12:00", "2025-02-28 12:00", "2025-03-01 12:00"), policy: Policy{Monthly: 2},
			keep: map[string]string{"2025-03-01 12:00": "keep_monthly", "2025-02-28 12:00": "keep_monthly"},
		},
		{
			// In UTC all three are on 1 March: the newest is that day's,
			// and the oldest is kept as the rule still has a count left.
			name:   "days in UTC",
			points: points("2025-03-01 21:00", "2025-03-01 22:00", "2025-03-01 23:30"), policy: Policy{Daily: 2}, loc: time.UTC,
			keep: map[string]string{"2025-03-01 23:30": "keep_daily", "2025-03-01 21:00": "keep_daily (oldest)"},
		},
		{
			// In Berlin (UTC+1) 23:30 UTC is already 2 March: two days.
			name:   "days in the plan's time zone",
			points: points("2025-03-01 21:00", "2025-03-01 22:00", "2025-03-01 23:30"), policy: Policy{Daily: 2}, loc: berlin,
			keep: map[string]string{"2025-03-01 23:30": "keep_daily", "2025-03-01 22:00": "keep_daily"},
		},
		{
			name:   "several rules keep one point",
			points: resticExample, policy: Policy{Last: 1, Daily: 2, Weekly: 1, Monthly: 2, Yearly: 1},
			keep: map[string]string{
				"2025-05-02 23:00": "keep_last+keep_daily+keep_weekly+keep_monthly+keep_yearly",
				"2025-05-01 11:00": "keep_daily", "2025-04-29 11:00": "keep_monthly",
			},
		},
		{
			// A damaged point counts for nothing: the days are filled by
			// good points. The newer one stays for repair; the one older
			// than every kept point goes.
			name: "damaged points are not counted",
			points: []Point{damaged(at("2025-05-03 11:00")), at("2025-05-02 11:00"), at("2025-05-01 11:00"),
				at("2025-04-30 11:00"), damaged(at("2025-04-29 11:00"))},
			policy: Policy{Daily: 2},
			keep:   map[string]string{"2025-05-03 11:00": "damaged (not counted)", "2025-05-02 11:00": "keep_daily", "2025-05-01 11:00": "keep_daily"},
		},
		{
			name:   "the last good point is kept outside every rule",
			points: []Point{lastGood(at("2025-04-21 11:00")), at("2025-04-22 11:00"), at("2025-04-23 11:00")}, policy: Policy{Last: 1},
			keep: map[string]string{"2025-04-23 11:00": "keep_last", "2025-04-21 11:00": "last good"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			got := Apply(tt.points, tt.policy, loc)
			if len(got) != len(tt.points) {
				t.Fatalf("%d decisions for %d points", len(got), len(tt.points))
			}
			for i, d := range got {
				if i > 0 && d.Time.After(got[i-1].Time) {
					t.Errorf("decisions not newest first: %s after %s", d.ID, got[i-1].ID)
				}
				if want, kept := strings.Join(d.KeptBy, "+"), tt.keep[d.ID]; want != kept {
					t.Errorf("%s: kept by %q, want %q", d.ID, want, kept)
				}
			}
		})
	}
}

func TestPolicyString(t *testing.T) {
	if got, want := (Policy{Last: 3, Daily: 7, Yearly: 2}).String(), "keep_last 3, keep_daily 7, keep_yearly 2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestApplyMatchesRestic runs the snapshots of restic's own policy test
// through Apply, with each of its policies that vigil has (no tags, no
// keep-within, no unlimited), and compares the points kept and the rules
// keeping each with restic's golden files, converted in
// testdata/TestApplyMatchesRestic.
func TestApplyMatchesRestic(t *testing.T) {
	dir := filepath.Join("testdata", t.Name())
	var pts []Point
	for i, line := range dataLines(t, filepath.Join(dir, "snapshots.txt")) {
		at, err := time.Parse(time.RFC3339Nano, line)
		if err != nil {
			t.Fatal(err)
		}
		// restic sorts stably, so snapshots of one time stay in their
		// order; Apply orders them by id, descending.
		pts = append(pts, Point{ID: fmt.Sprintf("%03d", 999-i), Time: at})
	}
	policies := map[int]Policy{
		1: {Last: 10}, 2: {Last: 15}, 3: {Last: 99}, 4: {Last: 200}, 5: {Hourly: 20},
		6: {Daily: 3}, 7: {Daily: 10}, 8: {Daily: 30}, 9: {Last: 5, Daily: 5}, 10: {Last: 2, Daily: 10},
		11: {Weekly: 2}, 12: {Weekly: 4}, 13: {Daily: 3, Weekly: 4}, 14: {Monthly: 6},
		15: {Daily: 2, Weekly: 2, Monthly: 6}, 16: {Yearly: 10}, 17: {Daily: 7, Weekly: 2, Monthly: 3, Yearly: 10},
	}
	for n, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			var want []string
			for _, line := range dataLines(t, filepath.Join(dir, fmt.Sprintf("policy_%d.txt", n))) {
				i, reasons, _ := strings.Cut(line, " ")
				idx, err := strconv.Atoi(i)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("%03d %s", 999-idx, reasons))
			}
			var got []string
			for _, d := range Apply(pts, p, time.UTC) {
				if d.Keep() {
					got = append(got, d.ID+" "+strings.Join(d.KeptBy, ","))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("kept (id, rules), newest first:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// dataLines returns the lines of a testdata file but comments.
func dataLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}
