#!/usr/bin/env bash
# Installs what qfs needs on a Debian 12 machine: apt packages that are missing, then the Node test
# tooling from the committed lockfile. Idempotent, and quick when everything is already there.
set -euo pipefail

cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libnats-dev libuv1-dev libcurl4-openssl-dev libcjson-dev libhiredis-dev libcmocka-dev libjemalloc-dev
  nats-server redis-server nodejs shellcheck curl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm ships inside some nodejs builds (NodeSource); Debian splits it out.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# redis-server's package starts a system instance where systemd runs; tests start their own.

# Node test tooling: reinstall only when the lockfile changed since the last install.
stamp=tests/sim/node_modules/.qfs-lock-stamp
want=$(sha256sum tests/sim/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci in tests/sim"
  (cd tests/sim && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
echo "setup: ok"
