/* The service runtime: qfs_service_main() turns a service definition into a process with config,
 * logging, a libuv loop, the bus, health reporting and a graceful drain on SIGTERM. */
#ifndef QFS_SERVICE_H
#define QFS_SERVICE_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <uv.h>

#include "qfs/bus.h"
#include "qfs/config.h"
#include "qfs/status.h"

struct qfs_metrics;
struct qfs_svc;

/* Settings every service has (the first rows of every --help). */
struct qfs_runtime_config {
    char *nats_url;
    int log_level;
    int64_t drain_timeout_ms;
    int64_t stream_max_age_ms;
    int64_t duplicate_window_ms;
    int64_t max_ack_pending;
    int64_t ack_wait_ms;
    int64_t max_deliver;
    int64_t publish_timeout_ms;
    int64_t max_outstanding;
    char *run_dir;
    int64_t metrics_interval_ms; /* 0: no metrics */
};

struct qfs_service_def {
    const char *name;    /* "parser": the binary is qfs-parser, its DLQ qfs.dlq.parser */
    const char *summary; /* one line for --help */
    const struct qfs_config_var *config;
    size_t nconfig;
    size_t config_size;  /* the service's own config struct, filled from config */
    /* Consumers; zero max_ack_pending, ack_wait_ms and max_deliver take the QFS_ defaults. The
     * handlers get the struct qfs_svc * as their ctx. */
    const struct qfs_consumer_def *consumers;
    size_t nconsumers;
    /* Checks that span several variables (one credential source, ...), after every variable was
     * read: writes one line per problem naming the variables to err and returns non-OK. Runs in
     * every mode, so --check-config exits 2 for them too. NULL: none. */
    qfs_status (*check_config)(const void *config, FILE *err);
    /* On the loop, once config is loaded and the bus connected, before any message arrives. */
    qfs_status (*start)(struct qfs_svc *svc);
    /* On the loop after the drain: release clients, closing handles; call done(svc) when closed. */
    void (*stop)(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc));
    /* Work the service holds outside the bus (e.g. ingest's SQS batches); the drain waits until
     * it is 0. NULL: none. */
    size_t (*busy)(struct qfs_svc *svc);
    /* On the loop before each metrics flush, the last one included (which comes after the drain
     * and before stop): set counters from totals kept elsewhere, such as a client's stats struct
     * (qfs_metrics_set_http, qfs_metrics_set_qualys). NULL: none. */
    void (*collect)(struct qfs_svc *svc, struct qfs_metrics *m);
    /* Extra command-line modes (e.g. --explain). Returns an exit code, or -1 when argv holds none
     * of its options. Config has been loaded when it runs. */
    int (*command)(struct qfs_svc *svc, int argc, char **argv);
    const char *usage; /* extra lines for --help describing those modes */
};

/* Runs the service; returns the process exit code: 0 after a clean drain, 2 for bad config. */
int qfs_service_main(const struct qfs_service_def *def, int argc, char **argv);

uv_loop_t *qfs_svc_loop(struct qfs_svc *svc);
struct qfs_bus *qfs_svc_bus(struct qfs_svc *svc);
const char *qfs_svc_name(const struct qfs_svc *svc);
/* The service's own config struct (def->config_size bytes) and the common settings. */
void *qfs_svc_config(struct qfs_svc *svc);
const struct qfs_runtime_config *qfs_svc_runtime_config(const struct qfs_svc *svc);
/* A pointer the service keeps for itself (its clients). */
void *qfs_svc_data(struct qfs_svc *svc);
void qfs_svc_set_data(struct qfs_svc *svc, void *data);
/* True once SIGTERM was received: handlers should finish what they hold, not start new work. */
bool qfs_svc_is_draining(const struct qfs_svc *svc);
/* The service's metrics registry (qfs/metrics.h), owned by the runtime, which counts the bus's
 * work in it and flushes it every QFS_METRICS_INTERVAL and at shutdown: an EMF line on stdout and
 * the totals on qfs.stats.<service>. Valid, loop thread only, until qfs_service_main returns, so
 * callbacks that run after stop may still count. */
struct qfs_metrics *qfs_svc_metrics(struct qfs_svc *svc);

/* The health file a running service refreshes and `--health` reads. */
void qfs_svc_health_path(const char *run_dir, const char *name, char *out, size_t n);

#endif
