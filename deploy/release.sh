#!/usr/bin/env bash
# Builds vigil's release binaries, linux/amd64 and linux/arm64, statically
# linked (no cgo), into dist/, with their SHA-256 sums in dist/SHA256SUMS:
#
#   bash deploy/release.sh [NAME]
#
# NAME goes into the file names (default: git describe). Each binary
# carries the commit it was built from (`vigil version`). .ci/run builds
# both, so a change that breaks the arm64 build fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
rm -rf dist
mkdir -p dist
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -buildvcs=auto -trimpath -ldflags '-s -w' \
    -o "dist/vigil-$name-linux-$arch" ./cmd/vigil
done
(cd dist && sha256sum vigil-* > SHA256SUMS)
ls -l dist
