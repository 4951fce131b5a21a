# syntax=docker/dockerfile:1
# The development stack's simulators (tests/sim: aws-sim, qualys-sim) and the one-shot bootstrap
# (tools/stack-bootstrap.js), with the test tooling's locked Node modules. Built by
# deploy/compose/docker-compose.yml with the repository root as context; never deployed.
FROM node:20-bookworm-slim
WORKDIR /qfs/tests/sim
COPY tests/sim/package.json tests/sim/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && npm cache clean --force
WORKDIR /qfs
COPY tests/sim/aws-sim tests/sim/aws-sim
COPY tests/sim/qualys-sim tests/sim/qualys-sim
COPY tests/sim/seed tests/sim/seed
COPY tools/stack-bootstrap.js tools/
COPY deploy/event-patterns.json deploy/
USER node
CMD ["node", "tests/sim/aws-sim/server.js", "--help"]
