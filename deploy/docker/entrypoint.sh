#!/usr/bin/env bash
# qfs-entrypoint: the container image's entry point. The command names what the container runs (a
# qfs service or nats-server), and `health` answers the container health check for it.
set -euo pipefail

# QFS_ENTRYPOINT_BIN lets tests run this script against a build tree.
readonly BIN=${QFS_ENTRYPOINT_BIN:-/usr/local/bin}
readonly SERVICES="ingest parser cache registry scanner-poller notifier"
# What this container started, for a health check that names nothing (Dockerfile HEALTHCHECK).
readonly STATE=${QFS_RUN_DIR:-/tmp}/qfs-entrypoint.service

usage() {
  cat <<EOF
usage: qfs-entrypoint COMMAND [ARGS...]

  qfs-<service> [ARGS]   run a qfs service: ${SERVICES// /, }
                         (the bare name, e.g. "parser", works too); ARGS go to the service,
                         e.g. --help, --check-config, --version
  nats-server [ARGS]     run nats-server (e.g. --config FILE, or -js -sd DIR)
  qfsctl [ARGS]          the operator command line, where the image has it
  health [NAME]          exit 0 when NAME (default: what this container runs) is healthy
  help                   this text
EOF
}

die() {
  printf 'qfs-entrypoint: %s\n' "$*" >&2
  exit 2
}

is_service() {
  case " $SERVICES " in
    *" $1 "*) return 0 ;;
  esac
  return 1
}

remember() {
  printf '%s\n' "$1" >"$STATE" 2>/dev/null || true
}

# nats_healthy asks the monitoring port (QFS_NATS_MONITOR_PORT, default 8222) for /healthz, which
# answers 200 once the server, and JetStream when enabled, is ready.
nats_healthy() {
  local port=${QFS_NATS_MONITOR_PORT:-8222} status=""
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 3 status <&3 || true
  exec 3<&-
  [[ $status =~ ^HTTP/1\.[01]\ 200 ]]
}

health() {
  local name=${1:-}
  if [[ -z $name ]]; then
    [[ -r $STATE ]] || die "nothing was started here to check"
    name=$(<"$STATE")
  fi
  name=${name#qfs-}
  if [[ $name == nats || $name == nats-server ]]; then
    nats_healthy
    return
  fi
  is_service "$name" || die "unknown service: $name"
  exec "$BIN/qfs-$name" --health
}

main() {
  local cmd=${1:-help}
  (($#)) && shift
  case $cmd in
    help | --help | -h)
      usage
      ;;
    health)
      health "$@"
      ;;
    nats-server | nats)
      remember nats
      exec nats-server "$@"
      ;;
    qfsctl)
      [[ -x $BIN/qfsctl ]] || die "this image has no qfsctl"
      exec "$BIN/qfsctl" "$@"
      ;;
    *)
      local name=${cmd#qfs-}
      is_service "$name" || {
        usage >&2
        die "unknown command: $cmd"
      }
      remember "$name"
      exec "$BIN/qfs-$name" "$@"
      ;;
  esac
}

main "$@"
