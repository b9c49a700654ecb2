#!/usr/bin/env bash
# listing.sh times vigil's lists on a catalog of 100,000 backup jobs,
# 100,000 restore jobs and about 95,000 recovery points, on SQLite and on
# PostgreSQL (bench/listing), RUNS times, and prints the median of each
# request in milliseconds. With -b it drops the indexes of migration 012
# after the fill, to measure the catalog as it was before them.
#
#   bench/listing.sh [-n RUNS] [-t BENCHTIME] [-b] [-r REGEXP]
#   bench/listing.sh -n 5 -t 5x          # after: the schema as vigil makes it
#   bench/listing.sh -n 5 -t 5x -b       # before: without migration 012's indexes
#   bench/listing.sh -f FILE             # medians of a saved `go test -bench` output
#
# PostgreSQL is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
# in a fresh schema dropped at the end. The raw output is kept in
# $TMPDIR/vigil-listing.txt (else /var/tmp).
set -euo pipefail

runs=5
benchtime=5x
before=""
pattern=Listing
file=""
status=0

while getopts "n:t:br:f:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	t) benchtime=$OPTARG ;;
	b) before=1 ;;
	r) pattern=$OPTARG ;;
	f) file=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)

# The indexes migration 012 adds (catalog/migrations/012_listing_indexes.sql).
if [ -z "$file" ]; then
	indexes_012=$(sed -n 's/^CREATE INDEX \([a-z_0-9]*\) ON.*/\1/p' "$here/../catalog/migrations/012_listing_indexes.sql" | tr '\n' ' ')
	file="${TMPDIR:-/var/tmp}/vigil-listing.txt"
	env=()
	if [ -n "$before" ]; then
		env=(VIGIL_LISTING_DROP_INDEXES="$indexes_012")
	fi
	# A failed request still leaves the others' figures to print.
	(cd "$here/listing" && env "${env[@]}" go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$runs" -timeout 60m .) | tee "$file" >&2 || status=$?
fi

# Median per benchmark, in ms; the -N suffix (GOMAXPROCS) is dropped.
awk '
/^Benchmark/ && $4 == "ns/op" {
	name = $1; sub(/^BenchmarkListing\//, "", name); sub(/-[0-9]+$/, "", name)
	split(name, part, "/"); dialect = part[1]; sub(/^[a-z]+\//, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	v[name, dialect, ++c[name, dialect]] = $3 / 1e6
}
function median(name, dialect,   k, i, j, t, a) {
	k = c[name, dialect]
	if (k == 0) return "–"
	for (i = 1; i <= k; i++) a[i] = v[name, dialect, i]
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return sprintf("%.2f", k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2)
}
END {
	print "| request | SQLite, ms | PostgreSQL, ms |"
	print "|---|---|---|"
	for (i = 1; i <= n; i++) printf "| %s | %s | %s |\n", order[i], median(order[i], "sqlite"), median(order[i], "postgres")
}' "$file"
exit "$status"
