# syntax=docker/dockerfile:1
# qfs container image: every qfs service and nats-server, on Debian 12 slim, for linux/amd64 and
# linux/arm64 (make image; make push-image ECR_REPO=...). The command picks what runs:
#   docker run IMAGE qfs-parser            docker run IMAGE nats-server --config /etc/nats.conf
# The build stage is a Debian 12 machine prepared by the same `make setup` a developer runs, so
# building the image exercises scripts/setup.sh.

# ---- build ----------------------------------------------------------------------------------
FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
# make is what `make setup` needs before scripts/setup.sh can install the rest.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The inputs of `make setup` first, so the installs stay cached while the sources change.
COPY Makefile ./
COPY scripts/setup.sh scripts/
COPY tests/sim/package.json tests/sim/package-lock.json tests/sim/
RUN make setup \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make build \
 && mkdir -p /out \
 && for f in build/bin/qfs-* build/bin/qfsctl; do \
      [ -f "$f" ] || continue; \
      case "${f##*/}" in qfs-test-*) continue ;; esac; \
      install -m 0755 -s "$f" /out/; \
    done \
 && ls -l /out

# ---- runtime --------------------------------------------------------------------------------
FROM debian:12-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Only the libraries the binaries link (nats.c, libuv, libcurl, cJSON, hiredis, jemalloc), CA certificates
# for HTTPS, and nats-server itself.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcjson1 libcurl4 libhiredis0.14 libjemalloc2 libnats3.4 libuv1 nats-server \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 qfs \
 && useradd --system --uid 10001 --gid qfs --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin qfs \
 && install -d -o qfs -g qfs -m 0750 /data /data/jetstream
COPY --from=build /out/ /usr/local/bin/
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/qfs-entrypoint
LABEL org.opencontainers.image.title="qfs" \
      org.opencontainers.image.description="Deploy-time Qualys image scanning for Amazon ECS: qfs services and nats-server" \
      org.opencontainers.image.licenses="Apache-2.0"
# The EFS access point of the CloudFormation stacks uses the same uid and gid.
USER 10001:10001
WORKDIR /data
# nats-server's client and monitoring ports, when a container runs it.
EXPOSE 4222 8222
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/qfs-entrypoint", "health"]
ENTRYPOINT ["/usr/local/bin/qfs-entrypoint"]
CMD ["help"]
