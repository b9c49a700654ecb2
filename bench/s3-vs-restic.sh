#!/usr/bin/env bash
# s3-vs-restic.sh measures, in one run, vigil (the whole product: `vigil
# serve` and its CLI) and restic backing up and restoring the same folder
# into S3 buckets of one versitygw server on loopback, RUNS times each,
# interleaved, and prints a markdown table of the medians.
#
#   bench/s3-vs-restic.sh [-n RUNS] [-s SOURCE] [-w WORKDIR]
#
#   -n RUNS    runs per tool (default 3)
#   -s SOURCE  folder to back up (default /usr/local/go)
#   -w WORKDIR where versitygw's buckets, catalogs and restores go (default:
#              a new folder under $TMPDIR, or /var/tmp); emptied at the end
#
# Needs versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)
# and restic (go install github.com/restic/restic/cmd/restic@v0.18.1), curl
# and python3. Each run gives both tools an empty prefix of the bucket; each
# repository is initialised before its timed backup, untimed (restic init;
# for vigil, a first backup of an empty folder). The restic cache is empty at
# the start of each run and kept between its steps, as restic keeps it.
set -euo pipefail

runs=3
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

gobin=$(go env GOPATH)/bin
export PATH="$PATH:$gobin"
for tool in versitygw restic curl python3; do
	command -v "$tool" >/dev/null || {
		echo "$tool not found: see the head of $0 for how to install it" >&2
		exit 1
	}
done

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-bench-s3.XXXXXX")}
mkdir -p "$work/s3"
results="$work/results.tsv"
: >"$results"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

access=bench-access secret=bench-secret-key bucket=bench
s3port=$(free_port)
versitygw --access "$access" --secret "$secret" --port "127.0.0.1:$s3port" posix "$work/s3" >"$work/versitygw.log" 2>&1 &
s3pid=$!
stop() {
	kill "$s3pid" 2>/dev/null || true
	wait "$s3pid" 2>/dev/null || true
	rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 1 100); do
	curl -fs -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" "http://127.0.0.1:$s3port/" && break
	sleep 0.1
done
curl -fsS -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" -H "x-amz-content-sha256: $(printf "" | sha256sum | cut -d" " -f1)" -X PUT "http://127.0.0.1:$s3port/$bucket"

(cd "$here/.." && go build -o "$work/vigil" ./cmd/vigil)

# gets prints how many GET requests versitygw has answered so far; its
# request log (stdout) has one line per request.
gets() {
	grep -c '| GET |' "$work/versitygw.log" || true
}

# timed CMD... runs CMD after a sync and prints its wall time in seconds.
timed() {
	sync
	local start end
	start=$(date +%s%N)
	"$@" >/dev/null
	end=$(date +%s%N)
	awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

bench_restic() {
	local dir=$1 run=$2
	export RESTIC_REPOSITORY="s3:http://127.0.0.1:$s3port/$bucket/restic-$run" RESTIC_PASSWORD=bench \
		RESTIC_CACHE_DIR="$dir/cache" AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret
	restic init -q >/dev/null
	echo "first_backup_s $(timed restic backup -q "$source_dir")"
	echo "unchanged_backup_s $(timed restic backup -q "$source_dir")"
	local before
	before=$(gets)
	echo "restore_s $(timed restic restore -q latest --target "$dir/restore")"
	echo "restore_gets $(($(gets) - before))"
	echo "repo_bytes $(du -sb "$work/s3/$bucket/restic-$run" | cut -f1)"
	unset RESTIC_REPOSITORY RESTIC_PASSWORD RESTIC_CACHE_DIR AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

# bench_vigil: `vigil serve` with the S3 vault open, the CLI starting each
# job and waiting for it (`--wait`), as bench/backup-vs-restic.sh does for a
# folder vault.
bench_vigil() {
	local dir=$1 run=$2 port
	port=$(free_port)
	mkdir -p "$dir/empty"
	cat >"$dir/vigil.yaml" <<-EOF
		server: {listen: "127.0.0.1:$port"}
		data_dir: ./data
		vaults:
		  - name: bench
		    storage: s3://$bucket/vigil-$run
		    endpoint: 127.0.0.1:$s3port
		    insecure: true
		    access_key_env: BENCH_S3_ACCESS
		    secret_key_env: BENCH_S3_SECRET
		    password_env: VIGIL_VAULT_PASSWORD
		resources:
		  - {name: init, type: directory, path: ./empty}
		  - {name: source, type: directory, path: "$source_dir"}
	EOF
	export VIGIL_CONFIG="$dir/vigil.yaml" VIGIL_VAULT_PASSWORD=bench BENCH_S3_ACCESS=$access BENCH_S3_SECRET=$secret
	"$work/vigil" serve 2>"$dir/serve.log" &
	local pid=$!
	for _ in $(seq 1 100); do
		"$work/vigil" vault list >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$work/vigil" backup start --resource init --vault bench --wait >/dev/null
	echo "first_backup_s $(timed "$work/vigil" backup start --resource source --vault bench --wait)"
	echo "unchanged_backup_s $(timed "$work/vigil" backup start --resource source --vault bench --wait)"
	local rp before
	rp=$("$work/vigil" recovery-points list --resource source --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
	before=$(gets)
	echo "restore_s $(timed "$work/vigil" restore start --recovery-point "$rp" --set "target_path=$dir/restore" --wait)"
	echo "restore_gets $(($(gets) - before))"
	echo "repo_bytes $(du -sb "$work/s3/$bucket/vigil-$run" | cut -f1)"
	kill "$pid"
	wait "$pid" || true
	unset VIGIL_CONFIG VIGIL_VAULT_PASSWORD BENCH_S3_ACCESS BENCH_S3_SECRET
}

# warm the page cache with the source, for both
tar -cf - "$source_dir" 2>/dev/null | cat >/dev/null

for run in $(seq 1 "$runs"); do
	for tool in restic vigil; do
		dir="$work/run$run/$tool"
		mkdir -p "$dir"
		"bench_$tool" "$dir" "$run" | awk -v t="$tool" '{ print t "\t" $1 "\t" $2 }' >>"$results"
	done
	echo "run $run of $runs done" >&2
done

median() {
	awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $2 == m { print $3 }' "$results" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-" } else if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}
spread() {
	awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $2 == m { print $3 }' "$results" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'
}

echo
echo "$(restic version | head -1); versitygw $(command -v versitygw); source $source_dir ($(du -sh "$source_dir" | cut -f1), $(find "$source_dir" -type f | wc -l) files); median of $runs runs (min–max)"
echo
echo "| measure | restic | vigil (CLI) | vigil ÷ restic |"
echo "|---|---|---|---|"
for m in first_backup_s unchanged_backup_s restore_s; do
	r=$(median restic $m) v=$(median vigil $m)
	echo "| ${m%_s}, s | $r ($(spread restic $m)) | $v ($(spread vigil $m)) | $(awk -v r="$r" -v v="$v" 'BEGIN { printf "%.2f", v / r }') |"
done
r=$(median restic restore_gets) v=$(median vigil restore_gets)
echo "| GET requests of the restore | $r | $v | $(awk -v r="$r" -v v="$v" 'BEGIN { printf "%.1f", v / r }') |"
r=$(median restic repo_bytes) v=$(median vigil repo_bytes)
echo "| bucket prefix size, MB | $(awk -v b="$r" 'BEGIN { printf "%.1f", b / 1e6 }') | $(awk -v b="$v" 'BEGIN { printf "%.1f", b / 1e6 }') | $(awk -v r="$r" -v v="$v" 'BEGIN { printf "%.2f", v / r }') |"
