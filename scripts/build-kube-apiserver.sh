#!/usr/bin/env bash
# Builds the real kube-apiserver for the local harness from the Go module proxy, once, into
# ${DRKIT_CACHE:-~/.cache/drkit}/kube-apiserver-<version>/kube-apiserver.
#
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging modules with local
# paths), so drkit/local/kube-apiserver is a tiny module that imports the release's
# cmd/kube-apiserver/app and replaces each staging module by its published v0.X.Y twin. The
# flags mirror the release build (hack/lib/golang.sh): static (CGO_ENABLED=0), -trimpath,
# -s -w, tags selinux,notest,grpcnotrace, and the version stamped in with -X so the server reports
# the release it is. Idempotent: an existing binary that reports the pinned version is kept.
# Cold (empty Go module and build caches) it takes 10-16 minutes on 2 cores; with warm caches a
# rebuild takes about 12 s, and an existing binary is kept in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

module_dir=drkit/local/kube-apiserver
version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$module_dir/go.mod")
if [[ ! "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
  echo "build-kube-apiserver: no k8s.io/kubernetes vX.Y.Z requirement in $module_dir/go.mod" >&2
  exit 1
fi
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

cache=${DRKIT_CACHE:-$HOME/.cache/drkit}
out_dir="$cache/kube-apiserver-$version"
binary="$out_dir/kube-apiserver"

if [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -qx "Kubernetes $version"; then
  echo "kube-apiserver $version: cached at $binary"
  exit 0
fi

go_bin=$(command -v go || true)
[ -n "$go_bin" ] || go_bin=/usr/local/go/bin/go
if [ ! -x "$go_bin" ]; then
  echo "build-kube-apiserver: no Go toolchain (looked on PATH and at /usr/local/go/bin/go)" >&2
  exit 1
fi

mkdir -p "$out_dir"
exec 9>"$out_dir.lock"
flock 9
# Another build may have finished while this one waited for the lock.
if [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -qx "Kubernetes $version"; then
  echo "kube-apiserver $version: cached at $binary"
  exit 0
fi

echo "kube-apiserver $version: building with $("$go_bin" version) (a cold build takes minutes)"
started=$(date +%s)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X '$pkg.gitVersion=$version' -X '$pkg.gitMajor=$major' -X '$pkg.gitMinor=$minor'"
  ldflags+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=1970-01-01T00:00:00Z'"
done
partial="$binary.partial.$$"
trap 'rm -f "$partial"' EXIT
(
  cd "$module_dir"
  # GOTOOLCHAIN=local: never fetch another Go toolchain behind our back; a too-old Go fails here
  # with the version go.mod needs. -mod=readonly: go.sum is committed, the build may not edit it.
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
    "$go_bin" build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" \
    -o "$partial" .
)
mv -f "$partial" "$binary"
echo "kube-apiserver $version: built $binary in $(($(date +%s) - started))s" \
  "($(du -h "$binary" | cut -f1))"
