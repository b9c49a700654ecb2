#!/usr/bin/env bash
# restore-test-loop.sh measures vigil's restore-test loop against the same
# work done by hand in the shell, in one run, and prints markdown tables of
# the medians.
#
#   bench/restore-test-loop.sh [-n RUNS] [-s SOURCE] [-w WORKDIR] [-c CONCURRENT]
#
#   -n RUNS        loops per side (default 5)
#   -s SOURCE      the app's data folder (default /usr/local/go)
#   -w WORKDIR     where vaults, repositories and restores go (default: a new
#                  folder under $TMPDIR or /var/tmp); removed at the end
#   -c CONCURRENT  how many tiny apps to restore-test at once (default 20)
#   -k             instead: time a directory restore test with
#                  `checksum: {sample_percent: 100}` against a plain restore
#                  of the same recovery point (see checksum_bench below)
#   -B VIGIL       with -k, also time the same with this other vigil binary
#                  (one built from main, say), in the same run
#
# The app is the same on both sides: python3 -m http.server serving the
# restored folder, and a check that GET /VERSION answers 200.
#
# vigil: `vigil serve` with a restore testing plan on_backup_completed. Each
# loop is an (unchanged) backup; the loop is timed from the backup's
# BACKUP_JOB_COMPLETED event to its test's RESTORE_TEST_STATUS event, and
# split with the restore job's own measurements.
#
# shell: restic restore latest + start the app + curl until 200 + kill +
# rm -rf, each step timed. restic's repository holds the same data,
# backed up untimed beforehand.
#
# The two sides alternate, and sync runs before each loop.
set -euo pipefail

runs=5
source_dir=/usr/local/go
work=""
concurrent=20
checksum_mode=0
other_vigil=""
while getopts "n:s:w:c:kB:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	s) source_dir=$OPTARG ;;
	w) work=$OPTARG ;;
	c) concurrent=$OPTARG ;;
	k) checksum_mode=1 ;;
	B) other_vigil=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-loop.XXXXXX")}
mkdir -p "$work"
results="$work/results.tsv"
: >"$results"

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building vigil" >&2
(cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil)
vigil="$work/vigil"

# checksum_bench: a directory resource whose only validator is `checksum:
# {sample_percent: 100}`. Each run restores its recovery point twice, in
# turn: a plain restore (`vigil restore start --wait`; timed from the
# job's started_at to its completed_at) and a restore test (`vigil
# restore-test start --wait`; its total_seconds, from its start to its
# verdict: restore, then the checksum check). Both write into the same
# file system, under WORKDIR. With -B, a second vigil serve runs the same
# on its own vault and catalog, and the sides alternate.
checksum_bench() {
	local sides=(this)
	serve_pids=() # global: the EXIT trap runs after the function returns
	[ -n "$other_vigil" ] && sides+=(other)
	declare -A bin=([this]="$vigil" [other]="$other_vigil") url rp spid
	for side in "${sides[@]}"; do
		local dir="$work/$side" port
		port=$(free_port)
		mkdir -p "$dir"
		cat >"$dir/vigil.yaml" <<YAML
server: {listen: 127.0.0.1:$port}
data_dir: ./data
vaults:
  - {name: bench, storage: ./vault, password_env: VIGIL_BENCH_PASSWORD}
resources:
  - name: go-dir
    type: directory
    path: $source_dir
    validate:
      - checksum: {sample_percent: 100}
restore_testing:
  - name: checked
    resources: [go-dir]
    validation_window: 10m
YAML
		url[$side]="http://127.0.0.1:$port"
		VIGIL_CONFIG="$dir/vigil.yaml" VIGIL_BENCH_PASSWORD=bench "${bin[$side]}" serve >"$dir/serve.log" 2>&1 &
		serve_pids+=($!)
		spid[$side]=$!
	done
	trap 'for p in "${serve_pids[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$work"' EXIT
	for side in "${sides[@]}"; do
		for _ in $(seq 100); do curl -fs "${url[$side]}/healthz" >/dev/null && break; sleep 0.1; done
		rp[$side]=$(VIGIL_CONFIG="$work/$side/vigil.yaml" VIGIL_SERVER="${url[$side]}" "${bin[$side]}" backup start --resource go-dir --vault bench --wait --json | jq -r .recovery_point_id)
	done
	# cpu is the CPU time (user + system) vigil serve has used, in seconds:
	# on a loaded machine it varies far less than the wall-clock time.
	cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
	span() { python3 -c "from datetime import datetime as d; f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print('%.3f' % (f('$2')-f('$1')).total_seconds())"; }
	for run in $(seq 1 "$runs"); do
		for side in "${sides[@]}"; do
			local v="${bin[$side]}" job target="$work/$side/plain-$run"
			export VIGIL_CONFIG="$work/$side/vigil.yaml" VIGIL_SERVER="${url[$side]}"
			echo "run $run: $side" >&2
			local c0 c1
			sync
			c0=$(cpu "${spid[$side]}")
			job=$("$v" restore start --recovery-point "${rp[$side]}" --set "target_path=$target" --wait --json)
			c1=$(cpu "${spid[$side]}")
			printf '%s\tplain_s\t%s\n' "$side" "$(span "$(jq -r .started_at <<<"$job")" "$(jq -r .completed_at <<<"$job")")" >>"$results"
			printf '%s\tplain_cpu\t%s\n' "$side" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" >>"$results"
			rm -rf "$target"
			sync
			c0=$(cpu "${spid[$side]}")
			job=$("$v" restore-test start --resource go-dir --recovery-point "${rp[$side]}" --plan checked --wait --json)
			c1=$(cpu "${spid[$side]}")
			printf '%s\ttest_cpu\t%s\n' "$side" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" >>"$results"
			[ "$(jq -r .validation_status <<<"$job")" = SUCCESSFUL ] || { echo "restore test: $(jq -r .validation_message <<<"$job")" >&2; exit 1; }
			jq -r --arg s "$side" '"\($s)\ttest_s\t\(.total_seconds)\n\($s)\trestore_s\t\(.restore_seconds)\n\($s)\tcheck_s\t\(.validation_seconds)\n\($s)\tread_mb\t\((.vault_read_bytes // 0) / 1e6)\n\($s)\twritten_mb\t\((.written_bytes // 0) / 1e6)"' <<<"$job" >>"$results"
		done
	done
	median() {
		awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m { print $3 }' "$results" | sort -n |
			awk '{ v[NR] = $1 } END { if (NR == 0) { print "-" } else if (NR % 2) { printf "%.3f\n", v[(NR + 1) / 2] } else { printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
	}
	echo
	echo "Directory restore test with checksum 100% on $source_dir ($(du -sh "$source_dir" | cut -f1), $(find "$source_dir" -type f | wc -l) files), WORKDIR on $(df --output=fstype "$work" | tail -1), median of $runs runs:"
	echo
	echo "| vigil | plain restore | restore test | ratio | its restore | its check | CPU: plain restore | CPU: restore test (incl. clean-up) | CPU ratio | read from vault (MB) | written (MB) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	for side in "${sides[@]}"; do
		local p t pc tc
		p=$(median "$side" plain_s) t=$(median "$side" test_s) pc=$(median "$side" plain_cpu) tc=$(median "$side" test_cpu)
		echo "| $side | $p s | $t s | $(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.2f", a / b }') × | $(median "$side" restore_s) s | $(median "$side" check_s) s | $pc s | $tc s | $(awk -v a="$tc" -v b="$pc" 'BEGIN { printf "%.2f", a / b }') × | $(median "$side" read_mb) | $(median "$side" written_mb) |"
	done
	echo
	echo "ratio per run (restore test / plain restore, same run), and their median:"
	for side in "${sides[@]}"; do
		local ratios
		ratios=$(awk -F'\t' -v s="$side" '$1 == s && $2 == "plain_s" { p[++n] = $3 } $1 == s && $2 == "test_s" { t[++k] = $3 } END { for (i = 1; i <= n; i++) printf "%.2f\n", t[i] / p[i] }' "$results")
		echo "  $side: $(tr '\n' ' ' <<<"$ratios")(median $(sort -n <<<"$ratios" | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }') ×)"
	done
}
if [ "$checksum_mode" = 1 ]; then
	checksum_bench
	exit 0
fi

# --- vigil ---------------------------------------------------------------
port=$(free_port)
cat >"$work/vigil.yaml" <<YAML
server: {listen: 127.0.0.1:$port}
data_dir: ./data
vaults:
  - {name: bench, storage: ./vault, password_env: VIGIL_BENCH_PASSWORD}
resources:
  - name: go-app
    type: app
    path: $source_dir
    run: ["python3", "-m", "http.server", "{{.Port}}", "--bind", "{{.Host}}", "--directory", "{{.Dir}}"]
    validate:
      - http: {path: /VERSION, expect_status: 200}
YAML
for i in $(seq 1 "$concurrent"); do
	cat >>"$work/vigil.yaml" <<YAML
  - name: tiny-$i
    type: app
    path: $work/tiny
    run: ["$vigil", "sample-app", "--dir", "{{.Dir}}", "--listen", "{{.Host}}:{{.Port}}"]
    validate:
      - http: {path: /, expect_body: "Welcome"}
YAML
done
cat >>"$work/vigil.yaml" <<YAML
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [go-app]
    validation_window: 1m
  - name: tiny
    resources: ["*"]
    validation_window: 1m
YAML
mkdir -p "$work/tiny"
echo '<h1>Welcome</h1>' >"$work/tiny/index.html"
export VIGIL_CONFIG="$work/vigil.yaml" VIGIL_BENCH_PASSWORD=bench VIGIL_SERVER="http://127.0.0.1:$port"
"$vigil" serve --workers "$concurrent" >"$work/serve.log" 2>&1 &
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

# The first backup (and its test) is untimed.
"$vigil" backup start --resource go-app --vault bench --wait >/dev/null
sleep 1
wait_tests

# vigil_loop backs up and follows the test; prints measure/seconds lines.
vigil_loop() {
	sync
	local bj rp rj
	bj=$("$vigil" backup start --resource go-app --vault bench --wait --json)
	rp=$(jq -r .recovery_point_id <<<"$bj")
	# Polling only decides when the script notices: the loop is timed
	# from the events' own times. It polls slowly so as not to take CPU
	# from the loop it measures.
	rj=""
	while [ -z "$rj" ]; do
		rj=$("$vigil" jobs list --type restore --json | jq -r --arg rp "$rp" '[.[] | select(.recovery_point_id == $rp)][0].id // empty')
		[ -n "$rj" ] || sleep 0.5
	done
	until "$vigil" events list --job "$rj" --type RESTORE_TEST_STATUS --json | jq -e '.events | length > 0' >/dev/null; do sleep 0.5; done
	local job events completed status
	job=$("$vigil" jobs show "$rj" --json)
	[ "$(jq -r .validation_status <<<"$job")" = SUCCESSFUL ] || { echo "restore test $rj: $(jq -r .validation_message <<<"$job")" >&2; exit 1; }
	events=$("$vigil" events list --json --limit 1000)
	completed=$(jq -r --arg bj "$(jq -r .id <<<"$bj")" '.events[] | select(.type == "BACKUP_JOB_COMPLETED" and .job_id == $bj) | .time' <<<"$events")
	status=$(jq -r --arg rj "$rj" '.events[] | select(.type == "RESTORE_TEST_STATUS" and .job_id == $rj) | .time' <<<"$events")
	wait_tests
	echo "loop_s $(python3 -c "from datetime import datetime as d; f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print('%.3f' % (f('$status')-f('$completed')).total_seconds())")"
	jq -r '"restore_s \(.restore_seconds)\nstart_s \(.start_seconds)\nvalidate_s \(.validation_seconds)\ncleanup_s \(.cleanup_seconds)"' <<<"$job"
}

# --- shell ---------------------------------------------------------------
export RESTIC_REPOSITORY="$work/restic" RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$work/restic-cache"
restic init -q >/dev/null
restic backup -q "$source_dir" >/dev/null

shell_loop() {
	sync
	local target="$work/shell-restore" t0 t1 t2 t3 t4 p pid
	p=$(free_port)
	t0=$(now)
	restic restore -q latest --target "$target" >/dev/null
	t1=$(now)
	python3 -m http.server "$p" --bind 127.0.0.1 --directory "$target$source_dir" >/dev/null 2>&1 &
	pid=$!
	t2=$(now)
	until curl -fs -o /dev/null "http://127.0.0.1:$p/VERSION"; do sleep 0.01; done
	t3=$(now)
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$target"
	t4=$(now)
	echo "loop_s $(secs $((t4 - t0)))"
	echo "restore_s $(secs $((t1 - t0)))"
	echo "start_s $(secs $((t2 - t1)))"
	echo "validate_s $(secs $((t3 - t2)))"
	echo "cleanup_s $(secs $((t4 - t3)))"
}

for run in $(seq 1 "$runs"); do
	for side in vigil shell; do
		echo "run $run: $side" >&2
		"${side}_loop" | while read -r measure value; do
			printf '%s\t%s\t%s\n' "$side" "$measure" "$value" >>"$results"
		done
	done
done

# --- concurrent tiny apps -----------------------------------------------
for i in $(seq 1 "$concurrent"); do "$vigil" backup start --resource "tiny-$i" --vault bench --wait >/dev/null; done
sync
t0=$(now)
ids=()
for i in $(seq 1 "$concurrent"); do
	ids+=("$("$vigil" restore-test start --resource "tiny-$i" --plan tiny --json | jq -r .id)")
done
ok=0
for id in "${ids[@]}"; do
	until "$vigil" jobs show "$id" --json | jq -e '.deletion_status == "SUCCESSFUL" or .deletion_status == "FAILED"' >/dev/null; do sleep 0.05; done
	[ "$("$vigil" jobs show "$id" --json | jq -r .validation_status)" = SUCCESSFUL ] && ok=$((ok + 1))
done
t1=$(now)
leaked_dirs=$(find "$work/data/restore-tests" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
leaked_procs=0
for p in /proc/[0-9]*; do
	case "$(readlink "$p/cwd" 2>/dev/null)" in "$work/data/restore-tests"*) leaked_procs=$((leaked_procs + 1)) ;; esac
done

median() {
	awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m { print $3 }' "$results" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-" } else if (NR % 2) { printf "%.3f\n", v[(NR + 1) / 2] } else { printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}
files=$(find "$source_dir" -type f | wc -l)
size=$(du -sh "$source_dir" | cut -f1)
echo
echo "Restore-test loop on $source_dir ($size, $files files), median of $runs runs:"
echo
echo "| step | vigil | shell (restic + python3 + curl + rm) |"
echo "|---|---|---|"
for m in loop_s restore_s start_s validate_s cleanup_s; do
	echo "| ${m%_s} | $(median vigil $m) s | $(median shell $m) s |"
done
echo
echo "vigil's loop beyond its restore (median): $(awk -F'\t' '$1 == "vigil" && $2 == "loop_s" { l[++n] = $3 } $1 == "vigil" && $2 == "restore_s" { r[++k] = $3 } END { for (i = 1; i <= n; i++) print l[i] - r[i] }' "$results" | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }') s"
echo
echo "$concurrent tiny apps restore-tested at once: $ok SUCCESSFUL in $(secs $((t1 - t0))) s; left behind: $leaked_dirs folders, $leaked_procs processes"
