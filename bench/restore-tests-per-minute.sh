#!/usr/bin/env bash
# restore-tests-per-minute.sh measures how many restore tests vigil
# completes per minute for COUNT tiny directory resources (three small files
# each, no app), with 1, 2 and 4 workers, on an SQLite catalog (one `vigil
# serve --workers N`) and on PostgreSQL (`vigil serve --workers 0` and N
# `vigil worker --workers 1` processes), and prints a markdown table.
#
#   bench/restore-tests-per-minute.sh [-c COUNT] [-k "1 2 4"] [-C "sqlite postgres"] [-w WORKDIR]
#
#   -c COUNT    resources, and restore tests per round (default 200)
#   -k WORKERS  worker counts to measure (default "1 2 4")
#   -C CATALOGS catalogs to measure (default "sqlite postgres")
#   -w WORKDIR  data dirs and vault (default: a new folder under $TMPDIR, or
#               /var/tmp); emptied at the end
#
# PostgreSQL is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
# the script makes a new schema in it, runs `vigil migrate`, and drops the
# schema at the end. Needs go, curl, jq and psql.
#
# Each catalog gets a folder vault and one backup per resource, untimed. A
# round then starts one restore test per resource through the API (curl,
# four at a time) and ends when every one of them has a final deletion
# status; the round's time is wall time from its first request to the poll
# (every 0.5 s) that sees the last one done.
set -euo pipefail

count=200
ks="1 2 4"
catalogs="sqlite postgres"
work=""
while getopts "c:k:C:w:" opt; do
	case $opt in
	c) count=$OPTARG ;;
	k) ks=$OPTARG ;;
	C) catalogs=$OPTARG ;;
	w) work=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-bench-rtpm.XXXXXX")}
mkdir -p "$work"
pg_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
schema="vigil_bench_$$"
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
cleanup() {
	stop_all
	psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil)
vigil=$work/vigil

for i in $(seq 1 "$count"); do
	mkdir -p "$work/src/r$i"
	for f in a b c; do echo "resource $i file $f" >"$work/src/r$i/$f.txt"; done
done

now() { date +%s%N; }

# write_config CATALOG PORT writes the config for one catalog.
write_config() {
	local catalog=$1 port=$2 dsn=""
	[ "$catalog" = postgres ] && dsn="$pg_url?search_path=$schema"
	{
		echo "server: {listen: \"127.0.0.1:$port\"}"
		echo "data_dir: $work/$catalog/data"
		echo "catalog: \"$dsn\""
		echo "workers: {heartbeat_timeout: 30s}"
		echo "vaults:"
		echo "  - {name: bench, storage: $work/$catalog/vault, password_env: VIGIL_BENCH_PASSWORD}"
		echo "resources:"
		for i in $(seq 1 "$count"); do
			echo "  - {name: r$i, type: directory, path: $work/src/r$i}"
		done
		echo "restore_testing:"
		echo "  - {name: tiny, resources: [\"*\"], validation_window: 1m}"
	} >"$work/$catalog/vigil.yaml"
}

api() { # api METHOD PATH [BODY]
	curl -fsS -X "$1" -H "Authorization: Bearer $(cat "$work/$catalog/data/api-token")" \
		-H 'Content-Type: application/json' ${3:+--data "$3"} "$VIGIL_SERVER$2"
}
export -f api

wait_healthy() {
	for _ in $(seq 300); do curl -fs "$VIGIL_SERVER/healthz" >/dev/null && return; sleep 0.1; done
	echo "vigil serve did not start: see $work/$catalog/serve.log" >&2
	exit 1
}

# start_jobs N: serve (and workers) running N restore tests at once.
start_jobs() {
	local n=$1
	if [ "$catalog" = sqlite ]; then
		"$vigil" serve --workers "$n" >>"$work/$catalog/serve.log" 2>&1 &
		pids+=($!)
	else
		"$vigil" serve --workers 0 >>"$work/$catalog/serve.log" 2>&1 &
		pids+=($!)
		# serve first: it makes the vault, which processes starting at
		# the same moment would all try to make at once.
		wait_healthy
		for w in $(seq 1 "$n"); do
			"$vigil" worker --workers 1 --node "bench-$w" >>"$work/$catalog/worker-$w.log" 2>&1 &
			pids+=($!)
		done
	fi
	wait_healthy
	if [ "$catalog" = postgres ]; then
		local tries=0
		until [ "$("$vigil" workers list --json | jq '[.[] | select(.state == "ALIVE" and (.node | startswith("bench-")))] | length')" -ge "$n" ]; do
			tries=$((tries + 1))
			[ "$tries" -lt 300 ] || { echo "the workers did not start: see $work/$catalog/worker-*.log" >&2; exit 1; }
			sleep 0.2
		done
	fi
}

results="$work/results.tsv"
: >"$results"
for catalog in $catalogs; do
	mkdir -p "$work/$catalog"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	write_config "$catalog" "$port"
	export VIGIL_CONFIG="$work/$catalog/vigil.yaml" VIGIL_BENCH_PASSWORD=bench VIGIL_SERVER="http://127.0.0.1:$port" catalog work
	if [ "$catalog" = postgres ]; then
		psql -q "$pg_url" -c "CREATE SCHEMA $schema" >/dev/null
		"$vigil" migrate >/dev/null
	fi
	# Backups, untimed, four at a time.
	start_jobs 4
	seq 1 "$count" | xargs -P 4 -I{} "$vigil" backup start --resource r{} --vault bench --wait >/dev/null 2>&1
	stop_all
	for k in $ks; do
		start_jobs "$k"
		sync
		t0=$(now)
		seq 1 "$count" | xargs -P 4 -I{} bash -c 'api POST /api/v1/restore-tests "{\"resource\":\"r{}\",\"plan\":\"tiny\"}"' |
			jq -r .id >"$work/$catalog/ids-$k"
		until "$vigil" jobs list --type restore --json | jq -e --rawfile ids "$work/$catalog/ids-$k" '
			($ids | split("\n") | map(select(. != ""))) as $want
			| [.[] | select(.id | IN($want[])) | select(.deletion_status == "SUCCESSFUL" or .deletion_status == "FAILED")] | length == ($want | length)' >/dev/null; do
			sleep 0.5
		done
		t1=$(now)
		ok=$("$vigil" jobs list --type restore --json | jq --rawfile ids "$work/$catalog/ids-$k" '
			($ids | split("\n") | map(select(. != ""))) as $want
			| [.[] | select(.id | IN($want[])) | select(.validation_status == "SUCCESSFUL" and .deletion_status == "SUCCESSFUL")] | length')
		stop_all
		secs=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
		printf '%s\t%s\t%s\t%s\n' "$catalog" "$k" "$secs" "$ok" >>"$results"
		echo "$catalog, $k workers: $ok of $count SUCCESSFUL in $secs s; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	done
done

echo
echo "$count restore tests of tiny directory resources, $(nproc) cores:"
echo
echo "| catalog | workers | tests SUCCESSFUL | time, s | restore tests per minute |"
echo "|---|---|---|---|---|"
awk -F'\t' -v n="$count" '{ printf "| %s | %s | %s of %s | %s | %.0f |\n", $1, $2, $4, n, $3, $4 * 60 / $3 }' "$results"
