#!/usr/bin/env bash
# backup-vs-restic.sh measures, in one run, restic, cp -a and vigil's vault
# package (bench/vaultbench) backing up and restoring the same folder, RUNS
# times each, interleaved, and prints a markdown table of the medians.
#
#   bench/backup-vs-restic.sh [-n RUNS] [-s SOURCE] [-w WORKDIR] [-t TOOLS]
#
#   -n RUNS    runs per tool (default 5)
#   -s SOURCE  folder to back up (default /usr/local/go)
#   -w WORKDIR where repositories and restores go (default: a new folder
#              under $TMPDIR, or /var/tmp); it is emptied at the end
#   -t TOOLS   tools to measure, in order (default "restic cp vault vigil")
#
# Each tool is a function bench_<tool> DIR that prints "measure seconds"
# lines; the script measures repository sizes with du. `vault` is the vault
# package alone (bench/vaultbench); `vigil` is the whole product through its
# CLI and a running server.
#
# Memory: restic's peak resident memory is taken from a second, untimed
# first backup into a repository of its own (GNU time's maximum RSS);
# vigil's is `vigil serve`'s VmHWM (its peak since it started, which the
# first backup sets) read after its timed first backup.
#
# Every repository is initialised before its timed backup, untimed. Caches
# are warm: the source is read once before the first run and stays in the
# page cache, for every tool alike (dropping caches needs privileges that a
# benchmark should not assume). Before each timed step the script runs sync,
# so no step pays for writing back what an earlier one left dirty.
set -euo pipefail

runs=5
source_dir=/usr/local/go
work=""
tools="restic cp vault vigil"

while getopts "n:s:w:t:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	s) source_dir=$OPTARG ;;
	w) work=$OPTARG ;;
	t) tools=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-bench.XXXXXX")}
mkdir -p "$work"
results="$work/results.tsv"
: >"$results"

# timed CMD... runs CMD after a sync and prints its wall time in seconds.
timed() {
	sync
	local start end
	start=$(date +%s%N)
	"$@" >/dev/null
	end=$(date +%s%N)
	awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

# peak_rss CMD... runs CMD and prints its peak resident memory in kB (its
# maximum RSS, as the kernel keeps it); the wall time is not taken here.
peak_rss() {
	/usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null
	cat "$work/rss"
}

bench_restic() {
	local dir=$1
	export RESTIC_REPOSITORY="$dir/repo" RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$dir/cache"
	restic init -q >/dev/null
	echo "first_backup_s $(timed restic backup -q "$source_dir")"
	# the peak memory of a first backup, in a repository of its own, untimed
	RESTIC_REPOSITORY="$dir/repo-rss" restic init -q >/dev/null
	echo "first_backup_rss_kb $(RESTIC_REPOSITORY="$dir/repo-rss" peak_rss restic backup -q "$source_dir")"
	rm -rf "$dir/repo-rss"
	echo "unchanged_open_s $(timed restic backup -q "$source_dir")"
	echo "restore_s $(timed restic restore -q latest --target "$dir/restore")"
	echo "repo_bytes $(du -sb "$dir/repo" | cut -f1)"
	unset RESTIC_REPOSITORY RESTIC_PASSWORD RESTIC_CACHE_DIR
}

bench_cp() {
	local dir=$1
	echo "restore_s $(timed cp -a "$source_dir" "$dir/copy")"
}

bench_vault() {
	local dir=$1
	sync
	# vaultbench times its own steps (see its doc comment); unchanged_open_s
	# is the one comparable to a fresh restic process.
	"$work/vaultbench" -source "$source_dir" -work "$dir" | grep -v -e '^files' -e '^source_bytes' -e '^vault_'
	echo "repo_bytes $(du -sb "$dir/vault" | cut -f1)"
}

# bench_vigil runs the whole product: `vigil serve` with the vault open, and
# the CLI starting each job and waiting for it (`--wait`), so the figures
# include the API, the job queue and the catalog. The vault is initialised,
# untimed, by a first backup of an empty folder.
bench_vigil() {
	local dir=$1 port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$dir/empty"
	cat >"$dir/vigil.yaml" <<-EOF
		server: {listen: "127.0.0.1:$port"}
		data_dir: ./data
		vaults:
		  - {name: bench, storage: ./vault, password_env: VIGIL_VAULT_PASSWORD}
		resources:
		  - {name: init, type: directory, path: ./empty}
		  - {name: source, type: directory, path: "$source_dir"}
	EOF
	export VIGIL_CONFIG="$dir/vigil.yaml" VIGIL_VAULT_PASSWORD=bench
	"$work/vigil" serve 2>"$dir/serve.log" &
	local pid=$!
	for _ in $(seq 1 100); do
		"$work/vigil" vault list >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$work/vigil" backup start --resource init --vault bench --wait >/dev/null
	echo "first_backup_s $(timed "$work/vigil" backup start --resource source --vault bench --wait)"
	# the server's peak resident memory since it started (VmHWM), which
	# its first backup sets; read after it, so nothing samples meanwhile
	echo "first_backup_rss_kb $(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")"
	echo "unchanged_backup_s $(timed "$work/vigil" backup start --resource source --vault bench --wait)"
	local rp
	rp=$("$work/vigil" recovery-points list --resource source --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
	echo "restore_s $(timed "$work/vigil" restore start --recovery-point "$rp" --set "target_path=$dir/restore" --wait)"
	echo "repo_bytes $(du -sb "$dir/vault" | cut -f1)"
	kill "$pid"
	wait "$pid" || true
	unset VIGIL_CONFIG VIGIL_VAULT_PASSWORD
}

# bench_vigilgc100 is bench_vigil with Go's default garbage collector
# target (GOGC=100) instead of vigil's 50, to see what the lower target
# costs and saves.
bench_vigilgc100() {
	export GOGC=100
	bench_vigil "$1"
	unset GOGC
}

for tool in $tools; do
	if ! declare -F "bench_$tool" >/dev/null; then
		echo "no function bench_$tool" >&2
		exit 2
	fi
done

case " $tools " in
*" restic "*) command -v restic >/dev/null || {
	echo "restic not found: apt-get install -y restic" >&2
	exit 1
} ;;
esac

case " $tools " in
*" vault "*) (cd "$here/.." && go build -o "$work/vaultbench" ./bench/vaultbench) ;;
esac
case " $tools " in
*" vigil"*) (cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil) ;;
esac

# warm the page cache with the source, for everyone
tar -cf - "$source_dir" 2>/dev/null | cat >/dev/null

for run in $(seq 1 "$runs"); do
	for tool in $tools; do
		dir="$work/run$run/$tool"
		mkdir -p "$dir"
		"bench_$tool" "$dir" | awk -v t="$tool" '{ print t "\t" $1 "\t" $2 }' >>"$results"
	done
	echo "run $run of $runs done" >&2
done

# medians, one row per measure, one column per tool
sort -k1,1 -k2,2 -k3,3g "$results" | awk -F'\t' -v tools="$tools" -v runs="$runs" -v src="$source_dir" '
	function flush() {
		if (n == 0) return
		med[key1, key2] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		n = 0
	}
	{ if ($1 != key1 || $2 != key2) { flush(); key1 = $1; key2 = $2 } v[++n] = $3 }
	END {
		flush()
		nt = split(tools, t, " ")
		split("first_backup_s unchanged_backup_s unchanged_open_s restore_s repo_bytes first_backup_rss_kb", m, " ")
		label["first_backup_s"] = "first backup, s"
		label["unchanged_backup_s"] = "unchanged backup, open vault, s"
		label["unchanged_open_s"] = "unchanged backup, incl. opening, s"
		label["restore_s"] = "restore (cp -a: copy), s"
		label["repo_bytes"] = "repository size, MB"
		label["first_backup_rss_kb"] = "peak memory through the first backup, MB"
		printf "Medians of %d runs, source %s.\n\n| measure |", runs, src
		for (i = 1; i <= nt; i++) printf " %s |", t[i]
		printf "\n|---|"
		for (i = 1; i <= nt; i++) printf "---|"
		printf "\n"
		for (j = 1; j <= 6; j++) {
			printf "| %s |", label[m[j]]
			for (i = 1; i <= nt; i++) {
				if ((t[i], m[j]) in med) {
					x = med[t[i], m[j]]
					if (m[j] == "repo_bytes") printf " %.1f |", x / 1e6
					else if (m[j] ~ /_kb$/) printf " %.0f |", x * 1024 / 1e6
					else printf " %.2f |", x
				} else printf " – |"
			}
			printf "\n"
		}
	}'

# the medians are printed; the trees are not needed any more
rm -rf "$work"/run*
