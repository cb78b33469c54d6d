#!/usr/bin/env bash
# Install actionlint (the GitHub Actions workflow linter) through the Go module proxy into a cache
# directory, skipping the build when that version is already there. Prints the binary's path on
# stdout, so CI can run: export ACTIONLINT="$(bash scripts/install-actionlint.sh)"
set -euo pipefail

version="${ACTIONLINT_VERSION:-v1.7.7}"
cache_dir="${ACTIONLINT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trading-dr/actionlint-${version}}"
binary="${cache_dir}/actionlint"

if [ -x "${binary}" ]; then
  echo "${binary}"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-actionlint: go is required (actionlint is built from the Go module proxy)" >&2
  exit 1
fi
mkdir -p "${cache_dir}"
GOBIN="${cache_dir}" \
  go install "github.com/rhysd/actionlint/cmd/actionlint@${version}" >&2
echo "${binary}"
