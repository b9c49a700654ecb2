#!/usr/bin/env bash
# database.sh measures, in one run, vigil backing up and restoring a
# PostgreSQL database against pg_dump and pg_restore doing the same, and
# prints markdown tables of the medians and vigil's overhead.
#
#   bench/database.sh [-n RUNS] [-s SCALE] [-d DIR]
#
#   -n RUNS   runs of every step (default 5)
#   -s SCALE  pgbench scale of the database (default 10: 1,000,000 rows
#             in pgbench_accounts)
#   -d DIR    file system for the dump files, the vaults and vigil's data
#             dir, all on the same one (default /dev/shm); a new folder in
#             it is removed at the end
#
#   VIGIL=/path/to/vigil   the binary to measure (default: built from this
#                          tree into the work folder)
#   PGHOST, PGPORT, PGUSER the server (default 127.0.0.1, 5432, postgres;
#                          no password: trust auth)
#
# The database is made once with createdb + pgbench -i, under a new name,
# and dropped at the end. Each run times, alternating:
#
#   backup   pg_dump -Fc -f FILE (the bare tool, default compression);
#            vigil backup start --wait into a vault of its own, new and
#            empty (every chunk of the dump is compressed and written);
#            pg_dump -Fc -Z0 -f FILE (reference: what compression costs);
#            vigil backup start --wait into a vault that already holds
#            the unchanged database (every chunk deduplicates)
#   restore  createdb NEW && pg_restore -d NEW FILE (from the -Fc file);
#            vigil restore start --set target_database=NEW --wait;
#            createdb NEW && cat FILE | pg_restore -d NEW (reference: the
#            -Z0 file through a pipe, as vigil feeds pg_restore)
#
# vigil runs as `vigil serve` with one vault per run plus the shared one,
# and no restore testing plan. Each vigil step is timed twice: the CLI
# command's wall clock, and the job's own started_at → completed_at.
# Every new database is checked (row count) and dropped right after its
# step, untimed. Before each timed step the script runs a CHECKPOINT and
# sync, so no step pays for writing back an earlier one's data, and waits
# until the machine is idle, so no step shares the 2 cores with leftover
# work or someone else's. Besides wall time it records CPU seconds: the
# whole machine's (/proc/stat), PostgreSQL's backends', the bare tools',
# and for vigil the server's own (kopia, Go) and its tools' (pg_dump,
# pg_restore, which it runs as children); and the machine's context
# switches. So it must run on the database server's machine.
set -euo pipefail

runs=5
scale=10
dir=/dev/shm
while getopts "n:s:d:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	s) scale=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) exit 2 ;;
	esac
done

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
for tool in pg_dump pg_restore pgbench createdb dropdb psql jq python3; do
	command -v "$tool" >/dev/null || {
		echo "$tool not found (postgresql-client, postgresql-contrib for pgbench, jq, python3)" >&2
		exit 1
	}
done
psql -d postgres -Atqc 'SELECT 1' >/dev/null || {
	echo "PostgreSQL does not answer at $PGUSER@$PGHOST:$PGPORT" >&2
	exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "$dir/vigil-dbbench.XXXXXX")
results="$work/results.tsv"
: >"$results"
db="vigil_bench_$(date +%s)_$$"
dbs=()
serve_pid=""

cleanup() {
	if [ -n "$serve_pid" ]; then
		kill "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	local d
	for d in "${dbs[@]}"; do dropdb --if-exists "$d" 2>/dev/null || echo "could not drop database $d" >&2; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vigil=${VIGIL:-}
if [ -z "$vigil" ]; then
	echo "building vigil" >&2
	(cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil)
	vigil="$work/vigil"
fi

echo "creating $db: pgbench -i -s $scale" >&2
dbs+=("$db")
createdb "$db"
pgbench -i -q -s "$scale" "$db" >/dev/null 2>&1
accounts=$((scale * 100000))

# --- vigil serve ----------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/empty"
{
	cat <<-EOF
		server: {listen: "127.0.0.1:$port"}
		data_dir: ./data
		vaults:
		  - {name: steady, storage: ./vaults/steady, password_env: VIGIL_BENCH_PASSWORD}
	EOF
	for run in $(seq 1 "$runs"); do
		echo "  - {name: new-$run, storage: ./vaults/new-$run, password_env: VIGIL_BENCH_PASSWORD}"
	done
	cat <<-EOF
		resources:
		  - {name: init, type: directory, path: ./empty}
		  - {name: pgbench, type: postgres, dsn: "postgres://$PGUSER@$PGHOST:$PGPORT/$db"}
	EOF
} >"$work/vigil.yaml"
export VIGIL_CONFIG="$work/vigil.yaml" VIGIL_BENCH_PASSWORD=bench
"$vigil" serve >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
	"$vigil" jobs list >/dev/null 2>&1 && break
	kill -0 "$serve_pid" 2>/dev/null || {
		echo "vigil serve exited; its output:" >&2
		cat "$work/serve.log" >&2
		exit 1
	}
	sleep 0.1
done
"$vigil" jobs list >/dev/null

# Every vault is created (and its key derived) by an untimed backup of an
# empty folder; the shared vault then gets the database once, untimed. An
# untimed pg_dump warms the same caches for the bare tool.
for v in steady $(seq -f 'new-%g' 1 "$runs"); do
	"$vigil" backup start --resource init --vault "$v" --wait >/dev/null
done
"$vigil" backup start --resource pgbench --vault steady --wait >/dev/null
pg_dump -Fc -f "$work/warm.dump" "$db"
rm -f "$work/warm.dump"

# --- measuring -------------------------------------------------------------
ticks=$(getconf CLK_TCK)
# The postmaster reaps every backend, so its children's CPU is the
# backends' (once they end). Reading it needs this machine's /proc.
postmaster=$(psql -d postgres -Atqc "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
postmaster=$(awk '/^PPid:/ { print $2 }' "/proc/$postmaster/status" 2>/dev/null) || {
	echo "the PostgreSQL server's processes are not visible: run this on the database's machine" >&2
	exit 1
}

# read_busy sets busy to the machine's busy CPU ticks so far, all cores,
# and switches to its context switches so far.
read_busy() {
	local key user nice system idle iowait irq softirq steal rest
	while read -r key user nice system idle iowait irq softirq steal rest; do
		case $key in
		cpu) busy=$((user + nice + system + irq + softirq + steal)) ;;
		ctxt)
			switches=$user
			return
			;;
		esac
	done </proc/stat
}

# read_proc PID sets self and children to the CPU ticks of process PID and
# of its children it has waited for. Builtins only: no fork to count.
read_proc() {
	local line f
	read -r line <"/proc/$1/stat"
	read -ra f <<<"${line##*) }"
	self=$((f[11] + f[12]))
	children=$((f[13] + f[14]))
}

now_us() { us=${EPOCHREALTIME//[.,]/}; }

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; }

# wait_quiet waits until the whole machine has been idle (under a tenth of
# a core) for half a second, so that a step neither starts behind leftover
# work (autovacuum, writeback) nor alongside someone else's; after ten
# minutes it goes ahead, and the step is counted as started on a busy
# machine.
wait_quiet() {
	local b0 start=$SECONDS
	while :; do
		read_busy
		b0=$busy
		sleep 0.5
		read_busy
		if ((busy - b0 <= ticks / 20)); then
			record "$1" busy_start 0
			return
		fi
		if ((SECONDS - start > 600)); then
			echo "the machine is still busy after 10 minutes; measuring $1 anyway" >&2
			record "$1" busy_start 1
			return
		fi
	done
}

# measure ROW CMD... runs CMD (stdout to $work/out) after a CHECKPOINT, a
# sync and a quiet machine, and records its wall time and CPU ticks: the
# machine's; PostgreSQL's backends' (those that ended, as the postmaster
# reaps them); the script's children's (the bare tools, or vigil's CLI);
# and the vigil server's own and its children's (pg_dump, pg_restore). The
# rest of the machine's CPU is "other": the checkpointer, the kernel, the
# vigil CLI, and anything else running, which the report points out.
measure() {
	local row=$1 b0 w0 c0 p0 s0 sc0 t0
	shift
	psql -d postgres -qc CHECKPOINT
	sync
	wait_quiet "$row"
	read_proc "$serve_pid"
	s0=$self sc0=$children
	read_proc "$postmaster"
	p0=$((self + children))
	read_proc $BASHPID
	c0=$children
	read_busy
	b0=$busy w0=$switches
	now_us
	t0=$us
	"$@" >"$work/out"
	now_us
	record "$row" wall_us $((us - t0))
	# The backends end just after their clients; the postmaster reaps
	# them a moment later. The CPU is read once they are counted.
	sleep 0.3
	read_busy
	record "$row" machine_ticks $((busy - b0))
	record "$row" switches $((switches - w0))
	read_proc $BASHPID
	record "$row" tool_ticks $((children - c0))
	read_proc "$postmaster"
	record "$row" postgres_ticks $((self + children - p0))
	read_proc "$serve_pid"
	record "$row" server_ticks $((self - s0))
	record "$row" server_tool_ticks $((children - sc0))
}

# job_times ROW records a vigil job's own duration and its time queued,
# from the record `--wait --json` printed into $work/out.
job_times() {
	local id job
	id=$(jq -r .id "$work/out")
	job=$("$vigil" jobs show "$id" --json)
	[ "$(jq -r .status <<<"$job")" = COMPLETED ] || {
		echo "$id: $(jq -r '.status + ": " + .status_message' <<<"$job")" >&2
		exit 1
	}
	local created started completed
	created=$(date -d "$(jq -r .created_at <<<"$job")" +%s%6N)
	started=$(date -d "$(jq -r .started_at <<<"$job")" +%s%6N)
	completed=$(date -d "$(jq -r .completed_at <<<"$job")" +%s%6N)
	record "$1" job_us $((completed - started))
	record "$1" queued_us $((started - created))
}

bare_restore() { createdb "$1" && pg_restore -d "$1" "$2"; }
pipe_restore() { createdb "$1" && cat "$2" | pg_restore -d "$1"; }

# check_and_drop NAME checks the restored copy's row count, then drops it.
check_and_drop() {
	local n
	n=$(psql -d "$1" -Atqc 'SELECT count(*) FROM pgbench_accounts')
	[ "$n" = "$accounts" ] || {
		echo "$1: pgbench_accounts has $n rows, not $accounts" >&2
		exit 1
	}
	dropdb "$1"
}

vault_bytes() { du -sb "$work/vaults/$1" | cut -f1; }

for run in $(seq 1 "$runs"); do
	echo "run $run of $runs: backups" >&2
	measure dump_fc pg_dump -Fc -f "$work/fc-$run.dump" "$db"
	record dump_fc bytes "$(stat -c %s "$work/fc-$run.dump")"

	before=$(vault_bytes "new-$run")
	measure vigil_new "$vigil" backup start --resource pgbench --vault "new-$run" --wait --json
	job_times vigil_new
	record vigil_new bytes $(($(vault_bytes "new-$run") - before))
	record vigil_new dump_bytes "$(jq -r .bytes "$work/out")"
	rp=$(jq -r .recovery_point_id "$work/out")

	measure dump_z0 pg_dump -Fc -Z0 -f "$work/z0-$run.dump" "$db"
	record dump_z0 bytes "$(stat -c %s "$work/z0-$run.dump")"

	before=$(vault_bytes steady)
	measure vigil_dedup "$vigil" backup start --resource pgbench --vault steady --wait --json
	job_times vigil_dedup
	record vigil_dedup bytes $(($(vault_bytes steady) - before))

	echo "run $run of $runs: restores" >&2
	new="${db}_r${run}_bare"
	dbs+=("$new")
	measure restore_fc bare_restore "$new" "$work/fc-$run.dump"
	check_and_drop "$new"

	new="${db}_r${run}_vigil"
	dbs+=("$new")
	measure vigil_restore "$vigil" restore start --recovery-point "$rp" --set "target_database=$new" --wait --json
	job_times vigil_restore
	check_and_drop "$new"

	new="${db}_r${run}_pipe"
	dbs+=("$new")
	measure restore_pipe pipe_restore "$new" "$work/z0-$run.dump"
	check_and_drop "$new"

	rm -f "$work/fc-$run.dump" "$work/z0-$run.dump"
done

# --- report ----------------------------------------------------------------
size=$(psql -d "$db" -Atqc "SELECT pg_size_pretty(pg_database_size(current_database()))")
echo
echo "pgbench scale $scale ($accounts rows in pgbench_accounts, database $size), $runs runs, files and vaults in $dir, $(nproc) cores, $(pg_dump --version)."
echo
busy_starts=$(awk -F'\t' '$2 == "busy_start" && $3 == 1' "$results" | wc -l)
echo "Steps that started on a busy machine (after waiting 10 minutes for quiet): $busy_starts."
echo
awk -F'\t' -v ticks="$ticks" -v ncpu="$(nproc)" '
	{ n[$1, $2]++; v[$1, $2, n[$1, $2]] = $3; rows[$1] = 1 }
	function sorted(r, m, k, i, j, t) {
		k = n[r, m]
		for (i = 1; i <= k; i++) s[i] = v[r, m, i]
		for (i = 2; i <= k; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
		return k
	}
	function median(r, m, k) {
		k = sorted(r, m)
		return (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
	}
	function sec(x, m) { return m ~ /_us$/ ? x / 1e6 : x / ticks }
	function cell(r, m) { return ((r, m) in n) ? sprintf("%.2f", sec(median(r, m), m)) : "–" }
	function range(r, m, k) { k = sorted(r, m); return sprintf("%.2f–%.2f", sec(s[1], m), sec(s[k], m)) }
	function each(r, m, i, out) {
		for (i = 1; i <= n[r, m]; i++) out = out (i > 1 ? " " : "") sprintf("%.2f", sec(v[r, m, i], m))
		return out
	}
	function mb(r, m) { return ((r, m) in n) ? sprintf("%.2f", median(r, m) / 1e6) : "–" }
	function row(r, label, size) {
		printf "| %s | **%s** | %s | %s | %s | %s | %s |\n", label, cell(r, "wall_us"), range(r, "wall_us"), each(r, "wall_us"), cell(r, "job_us"), cell(r, "queued_us"), size
	}
	function cpu(r, label) {
		printf "| %s | %s | %s | %s | %s | %s | %s | %.1f |\n", label, cell(r, "wall_us"), cell(r, "machine_ticks"), cell(r, "postgres_ticks"),
			(r ~ /^vigil/) ? cell(r, "server_tool_ticks") : cell(r, "tool_ticks"), (r ~ /^vigil/) ? cell(r, "server_ticks") : "–", cell(r, "other_ticks"),
			median(r, "switches") / 1000
	}
	function pct(a, b) { return sprintf("%+.0f%%", (a / b - 1) * 100) }
	END {
		# other: the machine CPU no measured process accounts for (the
		# checkpointer, the kernel, vigil CLI, anything else running)
		for (r in rows) for (i = 1; i <= n[r, "machine_ticks"]; i++) {
			n[r, "other_ticks"]++
			v[r, "other_ticks", i] = v[r, "machine_ticks", i] - v[r, "postgres_ticks", i] - v[r, "tool_ticks", i] - v[r, "server_ticks", i] - v[r, "server_tool_ticks", i]
		}
		print "| step | wall s, median | min–max | each run, s | vigil job s | vigil queued s | size MB |"
		print "|---|---|---|---|---|---|---|"
		row("dump_fc", "backup: pg_dump -Fc -f FILE", mb("dump_fc", "bytes") " (file)")
		row("vigil_new", "backup: vigil, into a new vault", mb("vigil_new", "bytes") " (vault growth; dump " mb("vigil_new", "dump_bytes") ")")
		row("vigil_dedup", "backup: vigil, into a vault holding it", mb("vigil_dedup", "bytes") " (vault growth)")
		row("dump_z0", "reference: pg_dump -Fc -Z0 -f FILE", mb("dump_z0", "bytes") " (file)")
		row("restore_fc", "restore: createdb && pg_restore -d NEW FILE", "")
		row("vigil_restore", "restore: vigil", "")
		row("restore_pipe", "reference: createdb && cat Z0FILE \\| pg_restore -d NEW", "")
		print ""
		print "CPU seconds and the machine'"'"'s context switches, medians (" ncpu " cores: at most " ncpu " times the wall time):"
		print ""
		print "| step | wall s | machine | PostgreSQL backends | pg_dump / pg_restore | vigil server | other | context switches, thousands |"
		print "|---|---|---|---|---|---|---|---|"
		cpu("dump_fc", "backup: pg_dump -Fc")
		cpu("vigil_new", "backup: vigil, new vault")
		cpu("vigil_dedup", "backup: vigil, vault holding it")
		cpu("dump_z0", "reference: pg_dump -Fc -Z0")
		cpu("restore_fc", "restore: pg_restore")
		cpu("vigil_restore", "restore: vigil")
		cpu("restore_pipe", "reference: pg_restore from a pipe")
		print ""
		noisy = ""
		for (r in rows) for (i = 1; i <= n[r, "other_ticks"]; i++)
			if (v[r, "other_ticks", i] > 0.2 * ticks) noisy = noisy sprintf(" %s run %d (%.2f s);", r, i, v[r, "other_ticks", i] / ticks)
		print "Steps during which more than 0.2 CPU s went to processes not measured (another workload?):" (noisy == "" ? " none." : noisy)
		print ""
		print "vigil over the bare tool (medians; job = started_at → completed_at, without the CLI and the queue):"
		print ""
		b = median("dump_fc", "wall_us"); r = median("restore_fc", "wall_us")
		printf "- backup into a new vault: wall %s, job %s (target < +15%%)\n", pct(median("vigil_new", "wall_us"), b), pct(median("vigil_new", "job_us"), b)
		printf "- backup of the unchanged database into a vault holding it: wall %s, job %s\n", pct(median("vigil_dedup", "wall_us"), b), pct(median("vigil_dedup", "job_us"), b)
		printf "- restore: wall %s, job %s (target < +15%%)\n", pct(median("vigil_restore", "wall_us"), r), pct(median("vigil_restore", "job_us"), r)
		printf "- references: pg_dump -Z0 against -Fc %s; pg_restore of the -Z0 file through a pipe against the -Fc file %s\n", pct(median("dump_z0", "wall_us"), b), pct(median("restore_pipe", "wall_us"), r)
	}' "$results"
