#!/usr/bin/env bash
# Fetch the official Kubernetes OpenAPI v3 spec (api/openapi-spec/v3/*.json of the k8s.io/kubernetes
# release) through the Go module proxy, once, into a cache directory; print that directory.
#
# The module download is verified against the Go checksum database (the h1: hash is recorded in
# the cache's VERSION file), so the tests validate manifests against exactly what the Kubernetes
# release published. Nothing is vendored into git. Idempotent: a complete cache is reused as is.
#   K8S_OPENAPI_VERSION  release to fetch (default below; keep it a release EKS runs or will run)
#   K8S_OPENAPI_DIR      where to put it (default ~/.cache/trading-dr/k8s-openapi-<version>)
set -euo pipefail

version="${K8S_OPENAPI_VERSION:-v1.36.3}"
cache_dir="${K8S_OPENAPI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trading-dr/k8s-openapi-${version}}"

if [ -f "${cache_dir}/VERSION" ]; then
  echo "${cache_dir}"
  exit 0
fi

go_bin=$(command -v go || true)
[ -n "${go_bin}" ] || go_bin=/usr/local/go/bin/go
if [ ! -x "${go_bin}" ]; then
  echo "fetch-k8s-schema: a Go toolchain is required (the spec comes from the Go module proxy)" >&2
  exit 1
fi

# Outside any module, `go mod download -json module@version` downloads (or reuses) the module and
# reports where it was extracted and its checksum.
info=$(cd / && GOTOOLCHAIN=local GOFLAGS=-modcacherw "${go_bin}" mod download -json \
  "k8s.io/kubernetes@${version}")
read -r module_dir module_sum < <(printf '%s' "${info}" | python3 -c \
  'import json, sys; d = json.load(sys.stdin); print(d.get("Dir", ""), d.get("Sum", ""))')
spec="${module_dir}/api/openapi-spec/v3"
if [ -z "${module_dir}" ] || [ ! -f "${spec}/apis__batch__v1_openapi.json" ]; then
  echo "fetch-k8s-schema: k8s.io/kubernetes@${version} has no ${spec}: ${info}" >&2
  exit 1
fi

mkdir -p "$(dirname "${cache_dir}")"
partial=$(mktemp -d "${cache_dir}.partial.XXXXXX")
trap 'rm -rf "${partial}"' EXIT
cp "${spec}"/*.json "${partial}/"
chmod -R u+w "${partial}"
printf 'k8s.io/kubernetes %s %s\n' "${version}" "${module_sum}" >"${partial}/VERSION"
rm -rf "${cache_dir}"
mv "${partial}" "${cache_dir}"
trap - EXIT
echo "${cache_dir}"
