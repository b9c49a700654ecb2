#!/usr/bin/env bash
# restore-vs-cp.sh times, in one run, a restore by vigil's vault package
# (bench/vaultbench -restore), `restic restore` and `cp -a` of the same
# trees, RUNS times each, interleaved, and prints a markdown table of the
# medians and of vigil's ratio to cp -a.
#
#   bench/restore-vs-cp.sh [-n RUNS] [-w WORKDIR] [-d DATASETS] [-t TOOLS]
#
#   -n RUNS      runs per tool and data set (default 5)
#   -w WORKDIR   where the source trees, repositories and restores go; all
#                of them live there, so -w /dev/shm/x measures on tmpfs and
#                -w /var/tmp/x on the disk (default: a new folder under
#                $TMPDIR, or /var/tmp). Emptied at the end.
#   -d DATASETS  data sets, in order (default "go tiny large"):
#                go     a copy of /usr/local/go (15,000 files, 270 MB)
#                tiny   100,000 files of a few bytes in 100 folders
#                large  1 GiB of random bytes and a 1 GiB sparse file
#                       holding 4 MiB of data
#   -t TOOLS     tools, in order (default "cp restic vigil"); "base" is
#                vigil's restore by the vaultbench binary named in
#                $BASE_VAULTBENCH (built from an older commit, with this
#                vaultbench's main.go), for a before/after in one run
#
# VAULTBENCH_FLAGS, when set, is passed to every vigil restore (for example
# "-restore-parallel 4"); RESTORE_PROFILE=FILE writes a CPU profile of the
# last vigil restore of each data set to FILE.<dataset>.
#
# Backups are untimed and made once per data set. vigil's figure is the
# restore alone, the vault already open, as in `vigil serve`; restic's is
# the whole `restic restore` process, whose repository opening costs about
# as much as vigil's password key derivation (0.1 s). Caches are warm: the
# source and the repositories were just written. Before each timed step the
# script runs sync, and each restored tree is deleted, untimed, before the
# next step starts. The large data set's sparse file is checked after every
# restore: its allocated blocks (stat -c %b) must be at most the source's
# plus 64 KiB.
set -euo pipefail

runs=5
work=""
datasets="go tiny large"
tools="cp restic vigil"

while getopts "n:w:d:t:" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	w) work=$OPTARG ;;
	d) datasets=$OPTARG ;;
	t) tools=$OPTARG ;;
	*) exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-restore-bench.XXXXXX")}
mkdir -p "$work"
results="$work/results.tsv"
: >"$results"

case " $tools " in
*" restic "*) command -v restic >/dev/null || {
	echo "restic not found: go install github.com/restic/restic/cmd/restic@v0.18.1" >&2
	exit 1
} ;;
esac

(cd "$here/.." && go build -o "$work/vaultbench" ./bench/vaultbench)

# timed CMD... runs CMD after a sync and prints its wall time in seconds.
timed() {
	sync
	local start end
	start=$(date +%s%N)
	"$@" >/dev/null
	end=$(date +%s%N)
	awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

make_go() {
	cp -a /usr/local/go "$1"
}

make_tiny() {
	python3 - "$1" <<-'EOF'
		import os, sys
		top = sys.argv[1]
		for d in range(100):
		    folder = os.path.join(top, "d%03d" % d)
		    os.makedirs(folder)
		    for f in range(1000):
		        with open(os.path.join(folder, "f%04d" % f), "w") as out:
		            out.write("file %d of folder %d\n" % (f, d))
	EOF
}

make_large() {
	mkdir -p "$1"
	head -c 1G /dev/urandom >"$1/random"
	truncate -s 1G "$1/sparse"
	local off
	for off in 0 100 300 700; do # MiB offsets, 1 MiB of data each
		head -c 1M /dev/urandom | dd of="$1/sparse" bs=1M seek="$off" conv=notrunc status=none
	done
}

# sparse_check DATASET TOOL TREE records the restored sparse file's blocks.
sparse_check() {
	local ds=$1 tool=$2 tree=$3
	[ "$ds" = large ] || return 0
	local got want
	got=$(stat -c %b "$tree/sparse")
	want=$(stat -c %b "$work/src/large/sparse")
	echo -e "$ds\t$tool\tsparse_blocks\t$got" >>"$results"
	if [ "$got" -gt $((want + 128)) ]; then
		echo "$tool: restored sparse file takes $got blocks, the source $want" >&2
	fi
}

restore_cp() {
	cp -a "$work/src/$1" "$2"
}

restore_restic() {
	RESTIC_REPOSITORY="$work/restic-$1" RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$work/restic-cache" \
		restic restore -q latest --target "$2"
}

# restic restores the absolute source path below its target
restored_tree() {
	case $2 in
	restic) echo "$3$work/src/$1" ;;
	*) echo "$3" ;;
	esac
}

for ds in $datasets; do
	declare -F "make_$ds" >/dev/null || {
		echo "no data set $ds" >&2
		exit 2
	}
	mkdir -p "$work/src"
	"make_$ds" "$work/src/$ds"
	if [ "$ds" = large ]; then
		echo -e "large\tsource\tsparse_blocks\t$(stat -c %b "$work/src/large/sparse")" >>"$results"
	fi
	for tool in $tools; do
		case $tool in
		restic)
			RESTIC_REPOSITORY="$work/restic-$ds" RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$work/restic-cache" \
				sh -c 'restic init -q >/dev/null && restic backup -q "$0" >/dev/null' "$work/src/$ds"
			;;
		base)
			"$BASE_VAULTBENCH" -backup-only -source "$work/src/$ds" -work "$work/base-$ds" |
				awk '$1 == "snapshot_id" { print $2 }' >"$work/base-$ds.id"
			;;
		vigil)
			"$work/vaultbench" -backup-only -source "$work/src/$ds" -work "$work/vault-$ds" |
				awk '$1 == "snapshot_id" { print $2 }' >"$work/vault-$ds.id"
			;;
		esac
	done

	for run in $(seq 1 "$runs"); do
		for tool in $tools; do
			dst="$work/restore-$ds-$tool"
			case $tool in
			cp) s=$(timed restore_cp "$ds" "$dst") ;;
			restic) s=$(timed restore_restic "$ds" "$dst") ;;
			vigil)
				profile=()
				if [ -n "${RESTORE_PROFILE:-}" ] && [ "$run" = "$runs" ]; then
					profile=(-cpuprofile "$RESTORE_PROFILE.$ds")
				fi
				sync
				# shellcheck disable=SC2086
				s=$("$work/vaultbench" -work "$work/vault-$ds" -restore "$(cat "$work/vault-$ds.id")" \
					-target "$dst" ${VAULTBENCH_FLAGS:-} "${profile[@]}" | awk '$1 == "restore_s" { print $2 }')
				;;
			base)
				sync
				s=$("$BASE_VAULTBENCH" -work "$work/base-$ds" -restore "$(cat "$work/base-$ds.id")" \
					-target "$dst" | awk '$1 == "restore_s" { print $2 }')
				;;
			*)
				echo "no tool $tool" >&2
				exit 2
				;;
			esac
			echo -e "$ds\t$tool\trestore_s\t$s" >>"$results"
			sparse_check "$ds" "$tool" "$(restored_tree "$ds" "$tool" "$dst")"
			rm -rf "$dst"
		done
		echo "$ds: run $run of $runs done" >&2
	done
	rm -rf "$work/src/$ds" "$work/restic-$ds" "$work/vault-$ds" "$work/base-$ds"
done

# medians, one row per data set, one column per tool, then vigil / cp -a
sort -k1,1 -k2,2 -k3,3 -k4,4g "$results" | awk -F'\t' -v tools="$tools" -v runs="$runs" -v datasets="$datasets" -v work="$work" '
	function flush() {
		if (n == 0) return
		med[k1, k2, k3] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		n = 0
	}
	{ if ($1 != k1 || $2 != k2 || $3 != k3) { flush(); k1 = $1; k2 = $2; k3 = $3 } v[++n] = $4 }
	END {
		flush()
		nt = split(tools, t, " ")
		nd = split(datasets, d, " ")
		printf "Restore, medians of %d runs, in %s.\n\n| data set |", runs, work
		for (i = 1; i <= nt; i++) printf " %s, s |", t[i]
		printf " vigil / cp -a |\n|---|"
		for (i = 1; i <= nt + 1; i++) printf "---|"
		printf "\n"
		for (j = 1; j <= nd; j++) {
			printf "| %s |", d[j]
			for (i = 1; i <= nt; i++) printf " %.2f |", med[d[j], t[i], "restore_s"]
			if (med[d[j], "cp", "restore_s"] > 0) printf " %.2f × |", med[d[j], "vigil", "restore_s"] / med[d[j], "cp", "restore_s"]
			else printf " – |"
			printf "\n"
		}
		if (("large", "source", "sparse_blocks") in med) {
			printf "\nSparse file, 512-byte blocks (stat -c %%b; median): source %d;", med["large", "source", "sparse_blocks"]
			for (i = 1; i <= nt; i++) printf " %s %d;", t[i], med["large", t[i], "sparse_blocks"]
			printf "\n"
		}
	}'

rm -rf "$work"/restore-* "$work/src" "$work/restic-cache"
