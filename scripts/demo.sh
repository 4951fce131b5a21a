#!/usr/bin/env bash
# make demo: the whole pipeline on this machine in about a minute. Starts the local stack (NATS,
# Redis, the AWS and Qualys simulators), the six services, sends three deploy events through
# EventBridge, shows every step as it happens, prints the notifications SNS received, and stops
# everything again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
BIN=${QFS_BIN_DIR:-$ROOT/$BUILD_DIR/bin}
STACK_DIR=${QFS_DEMO_DIR:-$ROOT/.demo}
SERVICES=(ingest parser cache registry scanner-poller notifier)
EXPECTED_NOTIFICATIONS=3
TIMEOUT_S=${QFS_DEMO_TIMEOUT:-120}

pids=()
tail_pid=""

step() {
  printf '\n\033[1m==> %s\033[0m\n' "$*"
}

cleanup() {
  local rc=$?
  if [[ -n $tail_pid ]]; then kill "$tail_pid" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -f $STACK_DIR/.qfs-stack ]]; then
    if [[ $rc -ne 0 ]]; then
      echo "demo: failed; the logs are kept in $STACK_DIR/logs" >&2
      "$ROOT/tools/stack" --dir "$STACK_DIR" down --keep >/dev/null 2>&1 || true
    else
      "$ROOT/tools/stack" --dir "$STACK_DIR" down >/dev/null 2>&1 || true
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting the local stack: nats-server (JetStream), redis-server, aws-sim, qualys-sim"
if [[ -e $STACK_DIR ]]; then
  "$ROOT/tools/stack" --dir "$STACK_DIR" down >/dev/null 2>&1 || rm -rf "$STACK_DIR"
fi
"$ROOT/tools/stack" --dir "$STACK_DIR" up --profile fast
# shellcheck source=/dev/null
. "$STACK_DIR/env"
export QFS_HUB_ACCOUNT_ID=111122223333 QFS_POLL_INTERVAL_SECONDS=1 QFS_POLL_FIRST_DELAYS=1
export QFS_LOG_LEVEL=info QFS_NOTIFY_MIN_SEVERITY=high QFS_METRICS_INTERVAL=0

step "Starting the six services"
for svc in "${SERVICES[@]}"; do
  "$BIN/qfs-$svc" >"$STACK_DIR/logs/qfs-$svc.out" 2>"$STACK_DIR/logs/qfs-$svc.log" &
  pids+=("$!")
done
for svc in "${SERVICES[@]}"; do
  for _ in $(seq 1 100); do
    "$BIN/qfs-$svc" --health >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! "$BIN/qfs-$svc" --health >/dev/null 2>&1; then
    tail -n 20 "$STACK_DIR/logs/qfs-$svc.log" >&2
    echo "demo: qfs-$svc did not become healthy" >&2
    exit 1
  fi
  printf '  qfs-%-15s healthy\n' "$svc"
done

step "Following qfs.> (qfsctl tail): every message of every deploy, as it is stored"
"$BIN/qfsctl" tail --since 1m &
tail_pid=$!
sleep 0.5

deliver() {
  # EventBridge puts the event on the hub's bus (forwarded from its account and region) and the
  # rule sends it to SQS, where qfs-ingest picks it up.
  local file=$1
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"event\":$(cat "$file"),\"bus\":\"default\",\"bus_account\":\"111122223333\",\"bus_region\":\"eu-west-1\"}" \
    "$QFS_SIM_AWS_URL/_sim/events/deliver"
}

step "Deploying: RegisterTaskDefinition web:42 (web, worker, and nginx from Docker Hub)"
deliver "$ROOT/demo/events/01-register-task-definition.json"
sleep 3
step "Deploying: UpdateService web -> web:42 (the same images again)"
deliver "$ROOT/demo/events/02-update-service.json"
step "Deploying: RunTask migrate:7 in account 222233334444, us-east-1"
deliver "$ROOT/demo/events/03-run-task-second-account.json"

step "Waiting for the scans to finish and SNS to receive the notifications"
deadline=$((SECONDS + TIMEOUT_S))
count=0
while ((SECONDS < deadline)); do
  count=$(curl -fsS "$QFS_SIM_AWS_URL/_sim/sns/messages" | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).messages.length))')
  ((count >= EXPECTED_NOTIFICATIONS)) && break
  sleep 1
done
sleep 1
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
tail_pid=""
if ((count < EXPECTED_NOTIFICATIONS)); then
  echo "demo: only $count of $EXPECTED_NOTIFICATIONS notifications arrived within ${TIMEOUT_S}s" >&2
  exit 1
fi

step "What SNS received (what your security team's e-mail or Slack would show)"
curl -fsS "$QFS_SIM_AWS_URL/_sim/sns/messages" | node "$ROOT/scripts/demo-summary.js"

step "Status"
"$BIN/qfsctl" status || true

step "Done: stopping everything"
