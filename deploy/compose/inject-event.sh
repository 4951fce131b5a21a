#!/usr/bin/env bash
# inject-event.sh: puts an ECS deploy event on the default bus of the development stack's aws-sim,
# as CloudTrail would. The rule the bootstrap created sends it to the qfs-events queue, where
# qfs-ingest picks it up; follow it with `nats sub 'qfs.>'`.
#
# usage: deploy/compose/inject-event.sh [EVENT.json]    (default: deploy/compose/sample-event.json)
# Extra arguments for docker compose (e.g. -p NAME) go in QFS_COMPOSE_ARGS.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
event=${1:-$here/sample-event.json}
[[ -r $event ]] || {
  printf 'inject-event: cannot read %s\n' "$event" >&2
  exit 2
}
read -r -a extra <<<"${QFS_COMPOSE_ARGS:-}"

# aws-sim's admin API is reachable only inside the compose network, so the POST runs in its container.
docker compose -f "$here/docker-compose.yml" "${extra[@]}" exec -T aws-sim node -e '
  let body = "";
  process.stdin.on("data", (d) => { body += d; }).on("end", async () => {
    const r = await fetch("http://127.0.0.1:4566/_sim/events/deliver", {
      method: "POST", headers: { "content-type": "application/json" }, body });
    process.stdout.write(await r.text() + "\n");
    process.exit(r.ok ? 0 : 1);
  });' <"$event"
