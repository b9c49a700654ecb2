#!/usr/bin/env bash
# foreign-restic.sh measures how long vigil takes to sync a restic
# repository that restic wrote and restore-test its snapshot, against
# `restic restore` of the same snapshot alone, in one run, and prints a
# markdown table of the medians.
#
#   bench/foreign-restic.sh [-n RUNS] [-s SOURCE] [-w WORKDIR]
#
#   -n RUNS     runs per side (default 5)
#   -s SOURCE   the folder restic backs up (default /usr/local/go)
#   -w WORKDIR  where the repository, vigil's data and the restores go
#               (default: a new folder under $TMPDIR or /var/tmp); removed
#               at the end
#
# The repository is made once, untimed, with `restic backup SOURCE`. Each
# run then, in turn:
#
#   vigil: a new `vigil serve` (new catalog, cold restic cache) with the
#   repository as a vault of kind restic and a directory resource with
#   source: {vault, path: SOURCE} and its default validator, checksum.
#   Timed: `vigil vault sync` (restic snapshots, and restic ls of the new
#   snapshot to find its folder), then `vigil restore-test start --wait`
#   (restic restore --verify into the copy, the copy checked against
#   restic's listing, the copy deleted). The job's own restore and
#   validation seconds are reported too.
#
#   restic: `restic restore latest:SOURCE --target T` with a cold cache,
#   and the same with --verify, which is what the restore test runs.
set -euo pipefail

runs=5
source_dir=/usr/local/go
work=""
while getopts "n:s:w:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	s) source_dir=$OPTARG ;;
	w) work=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-foreign.XXXXXX")}
mkdir -p "$work"
results="$work/results.tsv"
: >"$results"
serve_pid=""
cleanup() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

restic=$(command -v restic || echo "$(go env GOPATH)/bin/restic")
[ -x "$restic" ] || { echo "restic not found: go install github.com/restic/restic/cmd/restic@v0.18.1" >&2; exit 1; }
echo "building vigil; restic is $("$restic" version)" >&2
(cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil)
vigil="$work/vigil"

export RESTIC_PASSWORD="bench password"
repo="$work/repo"
"$restic" --repo "$repo" init --quiet
"$restic" --repo "$repo" --no-cache backup --quiet "$source_dir"
size=$(du -sb "$source_dir" | cut -f1)
files=$(find "$source_dir" | wc -l)

run_vigil() {
	local dir="$work/vigil-run" port
	rm -rf "$dir"
	mkdir -p "$dir"
	port=$(free_port)
	cat >"$dir/vigil.yaml" <<EOF
server: {listen: 127.0.0.1:$port}
data_dir: $dir/data
vaults:
  - name: restic-prod
    kind: restic
    repository: $repo
    restic_path: $restic
    password_env: RESTIC_PASSWORD
    sync: {schedule: "@every 24h"}
EOF
	export VIGIL_CONFIG="$dir/vigil.yaml"
	# The sync at start finds no resource to list; the resource comes
	# with a reload, after the restic cache is removed, so that the timed
	# sync is a first one: restic snapshots, and restic ls to find the
	# snapshot's folder, with a cold cache.
	"$vigil" serve >"$dir/serve.log" 2>&1 &
	serve_pid=$!
	for _ in $(seq 100); do "$vigil" vault list >/dev/null 2>&1 && break; sleep 0.1; done
	sleep 1
	rm -rf "$dir/data/cache/restic-restic-prod"
	cat >>"$dir/vigil.yaml" <<EOF
resources:
  - name: tree
    type: directory
    source: {vault: restic-prod, path: $source_dir}
EOF
	"$vigil" reload >/dev/null
	local t0 t1 t2
	t0=$(now)
	"$vigil" vault sync restic-prod >/dev/null
	t1=$(now)
	"$vigil" restore-test start --resource tree --wait --json >"$dir/test.json"
	t2=$(now)
	python3 - "$dir/test.json" "$(secs $((t1 - t0)))" "$(secs $((t2 - t1)))" "$(secs $((t2 - t0)))" >>"$results" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["validation_status"] == "SUCCESSFUL", j
print(f"vigil\tsync\t{sys.argv[2]}\nvigil\trestore-test\t{sys.argv[3]}\nvigil\tsync+restore-test\t{sys.argv[4]}")
print(f"vigil\tjob restore\t{j['restore_seconds']:.3f}\nvigil\tjob validation\t{j['validation_seconds']:.3f}")
PY
	kill "$serve_pid"
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=""
}

run_restic() {
	local verify=$1 target="$work/restic-target" t0 t1 label=restore
	rm -rf "$target" "$work/restic-cache"
	[ -n "$verify" ] && label="restore --verify"
	t0=$(now)
	"$restic" --repo "$repo" --cache-dir "$work/restic-cache" restore --quiet $verify "latest:$source_dir" --target "$target"
	t1=$(now)
	printf 'restic\t%s\t%s\n' "$label" "$(secs $((t1 - t0)))" >>"$results"
	rm -rf "$target"
}

for i in $(seq "$runs"); do
	echo "run $i of $runs" >&2
	sync
	run_vigil
	sync
	run_restic ""
	sync
	run_restic --verify
done

echo
echo "Source: $source_dir, $files entries, $size bytes; $runs runs, medians (seconds)."
echo
echo "| side | step | median | runs |"
echo "|---|---|---|---|"
python3 - "$results" <<'PY'
import statistics, sys, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    side, step, v = line.rstrip("\n").split("\t")
    rows.setdefault((side, step), []).append(float(v))
for (side, step), vs in rows.items():
    print(f"| {side} | {step} | {statistics.median(vs):.3f} | {', '.join(f'{v:.2f}' for v in vs)} |")
PY
