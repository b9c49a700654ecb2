#!/usr/bin/env bash
# instant-restore-test.sh measures an instant restore test (restore:
# instant: the recovery point mounted, the app started on the mount)
# against a full one (every file restored first), in one run, for an app
# whose data is 1 GiB and 4 GiB and which reads one small file to answer
# GET /. It prints a markdown table of the medians.
#
#   bench/instant-restore-test.sh [-n RUNS] [-N RUNS_4G] [-w WORKDIR]
#
#   -n RUNS     loops per side for 1 GiB (default 5)
#   -N RUNS_4G  loops per side for 4 GiB (default 5)
#   -w WORKDIR  where the data, the vault and the copies go (default: a new
#               folder under $TMPDIR or /var/tmp); removed at the end.
#               It needs about 10 GiB. An existing one is used again.
#
# Each loop is an (unchanged) backup of the resource; the loop is timed
# from the backup's BACKUP_JOB_COMPLETED event to its test's
# RESTORE_TEST_STATUS event (the events' own times), and split with the
# restore job's measurements. The app is python3 -m http.server; its
# check is GET / (index.html, 30 bytes). The 4 GiB folder holds the 1 GiB
# file and three more, so the vault stores 4 GiB in all.
set -euo pipefail

runs=5
runs4=5
work=""
while getopts "n:N:w:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	N) runs4=$OPTARG ;;
	w) work=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-instant.XXXXXX")}
mkdir -p "$work"
results="$work/results.tsv"
: >"$results"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building vigil" >&2
(cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil)
vigil="$work/vigil"

# A work folder of an earlier run keeps its data, vault and catalog: its
# first backups are then quick.
if [ "$(stat -c %s "$work/app-4g/part-4.bin" 2>/dev/null)" != 1073741824 ]; then
	echo "writing 4 GiB of random data" >&2
	mkdir -p "$work/app-4g" "$work/app-1g"
	for i in 1 2 3 4; do
		head -c 1G /dev/urandom >"$work/app-4g/part-$i.bin"
	done
	ln -f "$work/app-4g/part-1.bin" "$work/app-1g/part-1.bin"
fi
for d in app-1g app-4g; do echo '<h1>Welcome to the app</h1>' >"$work/$d/index.html"; done

port=$(free_port)
cat >"$work/vigil.yaml" <<YAML
server: {listen: 127.0.0.1:$port}
data_dir: ./data
vaults:
  - {name: bench, storage: ./vault, password_env: VIGIL_BENCH_PASSWORD}
resources:
YAML
for size in 1g 4g; do
	for mode in instant full; do
		cat >>"$work/vigil.yaml" <<YAML
  - name: $mode-$size
    type: app
    path: $work/app-$size
    restore: $mode
    run: ["python3", "-m", "http.server", "{{.Port}}", "--bind", "{{.Host}}", "--directory", "{{.Dir}}"]
    validate:
      - http: {path: /, expect_body: "Welcome"}
YAML
	done
done
cat >>"$work/vigil.yaml" <<YAML
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: ["*"]
    validation_window: 1m
YAML
export VIGIL_CONFIG="$work/vigil.yaml" VIGIL_BENCH_PASSWORD=bench VIGIL_SERVER="http://127.0.0.1:$port"
(cd "$work" && exec "$vigil" serve >"$work/serve.log" 2>&1) &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "$VIGIL_SERVER/healthz" >/dev/null && break; sleep 0.1; done

# wait_tests waits until no restore test is still running or cleaning up.
wait_tests() {
	until "$vigil" jobs list --type restore --json |
		jq -e 'all(.[]; .deletion_status == "SUCCESSFUL" or .deletion_status == "FAILED")' >/dev/null; do
		sleep 0.5
	done
}

# The first backups (and their tests) are untimed.
echo "first backups" >&2
for r in instant-1g full-1g instant-4g full-4g; do
	"$vigil" backup start --resource "$r" --vault bench --wait >/dev/null
	sleep 1
	wait_tests
done

# loop backs up resource $1 and follows its test; prints measure/seconds lines.
loop() {
	sync
	local bj rp rj
	bj=$("$vigil" backup start --resource "$1" --vault bench --wait --json)
	rp=$(jq -r .recovery_point_id <<<"$bj")
	rj=""
	while [ -z "$rj" ]; do
		rj=$("$vigil" jobs list --type restore --json | jq -r --arg rp "$rp" '[.[] | select(.recovery_point_id == $rp)][0].id // empty')
		[ -n "$rj" ] || sleep 0.5
	done
	until "$vigil" events list --job "$rj" --type RESTORE_TEST_STATUS --json | jq -e '.events | length > 0' >/dev/null; do sleep 0.5; done
	local job events completed status
	job=$("$vigil" jobs show "$rj" --json)
	[ "$(jq -r .validation_status <<<"$job")" = SUCCESSFUL ] || { echo "restore test $rj: $(jq -r .validation_message <<<"$job")" >&2; exit 1; }
	local log
	log=$("$vigil" logs "$rj")
	if [[ $1 == instant-* && $log != *"mounted recovery point"* ]]; then
		echo "restore test $rj was not instant:" >&2
		echo "$log" >&2
		exit 1
	fi
	events=$("$vigil" events list --json --limit 1000)
	completed=$(jq -r --arg bj "$(jq -r .id <<<"$bj")" '.events[] | select(.type == "BACKUP_JOB_COMPLETED" and .job_id == $bj) | .time' <<<"$events")
	status=$(jq -r --arg rj "$rj" '.events[] | select(.type == "RESTORE_TEST_STATUS" and .job_id == $rj) | .time' <<<"$events")
	wait_tests
	echo "loop_s $(python3 -c "from datetime import datetime as d; f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print('%.3f' % (f('$status')-f('$completed')).total_seconds())")"
	jq -r '"restore_s \(.restore_seconds)\nstart_s \(.start_seconds)\nvalidate_s \(.validation_seconds)\ncleanup_s \(.cleanup_seconds)"' <<<"$job"
}

for size in 1g 4g; do
	n=$runs
	[ "$size" = 4g ] && n=$runs4
	for run in $(seq 1 "$n"); do
		for mode in instant full; do
			echo "$size run $run: $mode" >&2
			loop "$mode-$size" | while read -r measure value; do
				printf '%s\t%s\t%s\n' "$mode-$size" "$measure" "$value" >>"$results"
			done
		done
	done
done
leaked=$(grep -c "$work/data" /proc/self/mountinfo || true)

# The floor: the same app started by hand on the 1 GiB folder, polled
# every 10 ms until GET / answers, and killed; no vigil.
now() { date +%s%N; }
for _ in $(seq 1 "$runs"); do
	p=$(free_port)
	t0=$(now)
	python3 -m http.server "$p" --bind 127.0.0.1 --directory "$work/app-1g" >/dev/null 2>&1 &
	pid=$!
	until curl -fs -o /dev/null "http://127.0.0.1:$p/"; do sleep 0.01; done
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	printf 'app alone\tloop_s\t%s\n' "$(awk -v ns="$(($(now) - t0))" 'BEGIN { printf "%.3f", ns / 1e9 }')" >>"$results"
done

median() {
	awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m { print $3 }' "$results" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-" } else if (NR % 2) { printf "%.3f\n", v[(NR + 1) / 2] } else { printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}
echo
echo "| side | BACKUP_JOB_COMPLETED → RESTORE_TEST_STATUS (app alone: start to 200 and kill) | restore (or mount) | app start | validation | clean-up |"
echo "|---|---|---|---|---|---|"
for side in instant-1g full-1g instant-4g full-4g "app alone"; do
	echo "| $side | $(median "$side" loop_s) s | $(median "$side" restore_s) s | $(median "$side" start_s) s | $(median "$side" validate_s) s | $(median "$side" cleanup_s) s |"
done
echo
echo "runs: $runs (1 GiB), $runs4 (4 GiB) per side; mounts left at the end: $leaked; load: $(cut -d' ' -f1-3 /proc/loadavg)"
