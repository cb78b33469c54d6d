#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, idempotently:
# Debian's PostgreSQL and Redis servers, promtool (the prometheus package: the alert rules'
# tests), Chromium (headless, for the drill timeline's test), uv and the locked Python
# environment (.venv),
# and the Apache Kafka broker's and MirrorMaker 2's jars from Maven Central (cached under
# ~/.cache/drkit).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

need_debs=()
for pkg in postgresql redis-server zstd prometheus-pushgateway prometheus etcd-server influxdb chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_debs+=("$pkg")
done
command -v java >/dev/null || need_debs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_debs+=(maven)
if [ ${#need_debs[@]} -gt 0 ]; then
  step "Debian packages: ${need_debs[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${need_debs[@]}" >/dev/null
  # Packages may start their own services; the harness runs its own servers on free ports.
  for service in postgresql redis-server prometheus-pushgateway prometheus etcd influxdb; do
    $sudo_cmd service "$service" stop >/dev/null 2>&1 || true
  done
fi

if ! command -v uv >/dev/null; then
  step "uv"
  python3 -m pip install --quiet --disable-pip-version-check uv==0.13.8
fi

step "Python environment (.venv, from uv.lock)"
uv sync --frozen --all-extras --quiet

step "Kafka broker and MirrorMaker 2 jars (Maven Central, cached)"
.venv/bin/python -m drkit.local.kafka fetch

step "actionlint (Go module proxy, cached): validates .github/workflows in the tests"
bash scripts/install-actionlint.sh >/dev/null

step "kube-apiserver (built from the Go module proxy, cached; minutes when cold)"
bash scripts/build-kube-apiserver.sh

step "Kubernetes OpenAPI spec (Go module proxy, cached): validates the backup CronJob manifests"
bash scripts/fetch-k8s-schema.sh >/dev/null
echo "bootstrap: ready"
