#!/usr/bin/env bash
# tune.sh runs vaultbench once per setting, RUNS times each, interleaved, and
# prints the median of every measure per setting. Each setting is one line of
# vaultbench flags; the first is the baseline.
#
#   bench/tune.sh [-n RUNS] [-s SOURCE] [-w WORKDIR] -- 'FLAGS' 'FLAGS' ...
#   bench/tune.sh -n 5 -- '' '-compressor zstd' '-compressor s2-default'
#
# The "--" keeps getopts from reading the settings. VAR=value words at the
# start of a setting are set in the environment for that run only, as in
# 'GOGC=200 -upload-parallel 8'. The working folder (default: a new folder
# under $TMPDIR, else /var/tmp) keeps results.tsv; the trees are deleted at
# the end. See README.md for why nothing is deleted earlier.
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
shift $((OPTIND - 1))

if [ $# -eq 0 ]; then
	set -- ""
fi

here=$(cd "$(dirname "$0")" && pwd)
work=${work:-$(mktemp -d "${TMPDIR:-/var/tmp}/vigil-tune.XXXXXX")}
mkdir -p "$work"
results="$work/results.tsv"
: >"$results"

(cd "$here/.." && go build -o "$work/vaultbench" ./bench/vaultbench)

for run in $(seq 1 "$runs"); do
	i=0
	for setting in "$@"; do
		i=$((i + 1))
		dir="$work/run$run-setting$i"
		mkdir -p "$dir"
		env_words=()
		flags=()
		for word in $setting; do
			if [[ ${#flags[@]} -eq 0 && $word == *=* && $word != -* ]]; then
				env_words+=("$word")
			else
				flags+=("$word")
			fi
		done
		# settle the file system: flush what earlier runs left dirty
		sync
		env "${env_words[@]}" "$work/vaultbench" -source "$source_dir" -work "$dir" "${flags[@]}" |
			awk -v s="$i" '{ print s "\t" $1 "\t" $2 }' >>"$results"
	done
done

i=0
for setting in "$@"; do
	i=$((i + 1))
	printf '%s\t%s\n' "$i" "${setting:-(defaults)}"
done

printf '\nsetting\tmeasure\tmedian of %s\n' "$runs"
sort -k1,1n -k2,2 -k3,3g "$results" | awk -F'\t' '
	function flush() {
		if (n == 0) return
		m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		printf "%s\t%s\t%.3f\n", key1, key2, m
		n = 0
	}
	{ if ($1 != key1 || $2 != key2) { flush(); key1 = $1; key2 = $2 } v[++n] = $3 }
	END { flush() }'

# the measurements are printed; the trees are not needed any more
rm -rf "$work"/run*
