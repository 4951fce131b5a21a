/* The service runtime: command line, config, loop, bus, health heartbeat, metrics and graceful
 * drain. */
#include "qfs/service.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfs/aws.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/proto.h"
#include "qfs/util.h"

#ifndef QFS_VERSION
#define QFS_VERSION "0.0.0"
#endif

#define HEARTBEAT_MS 1000
#define HEALTH_STALE_MS 5000
#define DRAIN_POLL_MS 20

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define RT(field) QFS_CFG_FIELD(struct qfs_runtime_config, field)
static const struct qfs_config_var runtime_vars[] = {
    {"QFS_NATS_URL", QFS_CFG_STRING, "nats://127.0.0.1:4222", 0, 0,
     "NATS server URLs, comma-separated.", false, false, RT(nats_url), NULL},
    {"QFS_LOG_LEVEL", QFS_CFG_ENUM, "info", 0, 0, "Lowest log level written to stderr.", false, false,
     RT(log_level), log_levels},
    {"QFS_DRAIN_TIMEOUT_MS", QFS_CFG_INT, "25000", 100, 600000,
     "On SIGTERM, how long in-flight work may take before the process exits anyway (keep it under "
     "the ECS stopTimeout).", false, false, RT(drain_timeout_ms), NULL},
    {"QFS_STREAM_MAX_AGE", QFS_CFG_DURATION, "7d", 60000, 365LL * 86400000,
     "How long the QFS stream keeps messages (the audit log).", false, false, RT(stream_max_age_ms), NULL},
    {"QFS_STREAM_DUPLICATE_WINDOW", QFS_CFG_DURATION, "10m", 1000, 86400000,
     "Window in which JetStream drops a republished Nats-Msg-Id.", false, false,
     RT(duplicate_window_ms), NULL},
    /* 256 rather than 64: a burst goes through in larger rounds (make bench: 0.23-0.25 -> 0.215-0.224
     * CPU-ms per cache-hit event over the whole pipeline), for a few hundred KiB of held messages. */
    {"QFS_MAX_ACK_PENDING", QFS_CFG_INT, "256", 1, 100000,
     "Unacknowledged messages per consumer (backpressure), shared by the replicas, and the most one "
     "process holds.", false, false, RT(max_ack_pending), NULL},
    {"QFS_ACK_WAIT", QFS_CFG_DURATION, "60s", 1000, 3600000,
     "How long the server waits for an ack before redelivering.", false, false, RT(ack_wait_ms), NULL},
    {"QFS_MAX_DELIVER", QFS_CFG_INT, "50", 2, 100000,
     "Deliveries of one message before it goes to the dead-letter subject.", false, false,
     RT(max_deliver), NULL},
    {"QFS_PUBLISH_TIMEOUT", QFS_CFG_DURATION, "5s", 100, 120000,
     "How long a publish waits for its PubAck.", false, false, RT(publish_timeout_ms), NULL},
    {"QFS_MAX_OUTSTANDING_PUBLISHES", QFS_CFG_INT, "256", 1, 65536,
     "Publishes awaiting a PubAck at once; more wait in a queue.", false, false, RT(max_outstanding), NULL},
    {"QFS_RUN_DIR", QFS_CFG_STRING, "/tmp", 0, 0,
     "Where the running service writes its health heartbeat for --health.", false, false, RT(run_dir), NULL},
    {"QFS_METRICS_INTERVAL", QFS_CFG_DURATION, "60s", 0, 86400000,
     "How often metrics go to stdout as CloudWatch Embedded Metric Format lines and to "
     "qfs.stats.<service> (and once more at shutdown); 0 turns them off.", false, false,
     RT(metrics_interval_ms), NULL},
};
#define NRUNTIME_VARS (sizeof(runtime_vars) / sizeof(runtime_vars[0]))

enum svc_state { SVC_STARTING, SVC_RUNNING, SVC_DRAINING, SVC_CLOSING };

struct qfs_svc {
    const struct qfs_service_def *def;
    struct qfs_runtime_config rt;
    void *config;
    void *data;
    uv_loop_t loop;
    struct qfs_bus *bus;
    struct qfs_consumer_def *consumers;
    uv_signal_t sigterm, sigint;
    uv_timer_t heartbeat, drain_poll, drain_deadline, metrics_timer;
    uv_prepare_t log_flush; /* writes the loop turn's log lines before the loop waits */
    struct qfs_metrics *metrics;
    uint64_t started_mono_ms;
    enum svc_state state;
    bool fetchers_stopped;
    bool deadline_passed;
    int exit_code;
    char health_path[512];
};

uv_loop_t *qfs_svc_loop(struct qfs_svc *svc) { return &svc->loop; }
struct qfs_bus *qfs_svc_bus(struct qfs_svc *svc) { return svc->bus; }
const char *qfs_svc_name(const struct qfs_svc *svc) { return svc->def->name; }
void *qfs_svc_config(struct qfs_svc *svc) { return svc->config; }
const struct qfs_runtime_config *qfs_svc_runtime_config(const struct qfs_svc *svc) { return &svc->rt; }
void *qfs_svc_data(struct qfs_svc *svc) { return svc->data; }
void qfs_svc_set_data(struct qfs_svc *svc, void *data) { svc->data = data; }
bool qfs_svc_is_draining(const struct qfs_svc *svc) { return svc->state >= SVC_DRAINING; }
struct qfs_metrics *qfs_svc_metrics(struct qfs_svc *svc) { return svc->metrics; }

void qfs_svc_health_path(const char *run_dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/qfs-%s.health", run_dir, name);
}

/* ---- command line ---------------------------------------------------------------------------- */

static void print_help(const struct qfs_service_def *def, FILE *out)
{
    fprintf(out, "qfs-%s %s: %s\n\n", def->name, QFS_VERSION, def->summary);
    fprintf(out, "Usage: qfs-%s [--help | --version | --check-config | --health]\n", def->name);
    if (def->usage) fprintf(out, "%s", def->usage);
    fprintf(out,
            "\n  --help            this text\n"
            "  --version         print the version\n"
            "  --check-config    print the effective configuration (secrets masked); exit 0, or 2\n"
            "                    naming each bad variable\n"
            "  --health          exit 0 when a running qfs-%s here is connected and its loop alive\n",
            def->name);
    fprintf(out, "\nEnvironment (shared by every qfs service):\n");
    qfs_config_print_help(runtime_vars, NRUNTIME_VARS, out);
    if (def->nconfig) {
        fprintf(out, "\nEnvironment (qfs-%s):\n", def->name);
        qfs_config_print_help(def->config, def->nconfig, out);
    }
    fprintf(out, "\nEnvironment (AWS, the SDKs' standard names):\n");
    for (const struct qfs_aws_env_doc *d = qfs_aws_env_docs; d->name; d++)
        fprintf(out, "  %-34s %s\n", d->name, d->meaning);
}

static int check_health(const struct qfs_svc *svc)
{
    FILE *f = fopen(svc->health_path, "r");
    if (!f) {
        printf("unhealthy: no heartbeat at %s (is qfs-%s running?)\n", svc->health_path, svc->def->name);
        return 1;
    }
    long pid = 0;
    long long ts = 0;
    int connected = 0;
    int n = fscanf(f, "%ld %lld %d", &pid, &ts, &connected);
    fclose(f);
    if (n != 3) {
        printf("unhealthy: unreadable heartbeat %s\n", svc->health_path);
        return 1;
    }
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        printf("unhealthy: process %ld is gone\n", pid);
        return 1;
    }
    long long age = (long long)qfs_now_ms() - ts;
    if (age > HEALTH_STALE_MS) {
        printf("unhealthy: loop heartbeat is %lld ms old\n", age);
        return 1;
    }
    if (!connected) {
        printf("unhealthy: not connected to NATS\n");
        return 1;
    }
    printf("healthy: pid %ld, heartbeat %lld ms ago, connected\n", pid, age);
    return 0;
}

/* ---- heartbeat ------------------------------------------------------------------------------- */

static void write_heartbeat(struct qfs_svc *svc)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", svc->health_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    bool connected = svc->bus && qfs_bus_is_connected(svc->bus) && svc->state == SVC_RUNNING;
    fprintf(f, "%ld %" PRId64 " %d\n", (long)getpid(), qfs_now_ms(), connected ? 1 : 0);
    fclose(f);
    rename(tmp, svc->health_path);
}

static void on_heartbeat(uv_timer_t *t)
{
    write_heartbeat(t->data);
}

/* ---- metrics --------------------------------------------------------------------------------- */

/* Writes the whole line with one write(2) where possible, so lines of several processes sharing
 * stdout never interleave. A closed stdout only loses metrics. */
static void write_stdout_line(const char *text)
{
    size_t len = strlen(text);
    char *line = qfs_xmalloc(len + 2);
    memcpy(line, text, len);
    line[len++] = '\n';
    line[len] = '\0';
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(STDOUT_FILENO, line + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
    free(line);
}

/* The runtime's own counters: what the bus did for each consumer, from its stats struct. */
static void collect_runtime(struct qfs_svc *svc)
{
    struct qfs_metrics *m = svc->metrics;
    if (!svc->bus) return;
    for (size_t i = 0; svc->consumers && i < svc->def->nconsumers; i++) {
        char name[QFS_METRICS_NAME_MAX];
        snprintf(name, sizeof(name), "received.%s", svc->consumers[i].durable);
        qfs_metrics_counter_set_total(qfs_metrics_counter(m, name),
                                      qfs_bus_consumer_received(svc->bus, i));
    }
    struct qfs_bus_stats bs;
    qfs_bus_read_stats(svc->bus, &bs);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "acks"), bs.acks);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "retries"), bs.retries);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "dead_letters"), bs.dead_letters);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "dead_letter_failures"), bs.dead_letter_failures);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "publishes"), bs.published);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "publish_failures"), bs.publish_failures);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "returned_at_deadline"), bs.returned);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "consumer_resets"), bs.consumer_resets);
}

/* One flush: the EMF line of the interval on stdout, the totals on qfs.stats.<service>. */
static void metrics_flush(struct qfs_svc *svc)
{
    if (svc->rt.metrics_interval_ms <= 0) return;
    collect_runtime(svc);
    if (svc->def->collect) svc->def->collect(svc, svc->metrics);
    int64_t now = qfs_now_ms();
    char *line = qfs_metrics_emf_line(svc->metrics, svc->def->name, now);
    write_stdout_line(line);
    free(line);

    char subject[QFS_SUBJECT_MAX];
    if (!svc->bus || !qfs_bus_is_connected(svc->bus) ||
        qfs_subject_stats(subject, sizeof(subject), svc->def->name) != QFS_OK)
        return;
    struct qfs_metrics_process p = {
        .service = svc->def->name,
        .version = QFS_VERSION,
        .pid = (long)getpid(),
        .now_ms = now,
        .uptime_ms = (int64_t)(qfs_mono_ms() - svc->started_mono_ms),
        .inflight = qfs_bus_inflight(svc->bus),
        .interval_ms = svc->rt.metrics_interval_ms,
    };
    char *stats = qfs_metrics_stats_json(svc->metrics, &p);
    qfs_status s = qfs_bus_publish_core(svc->bus, subject, stats, strlen(stats));
    if (s != QFS_OK) qfs_debug("stats not published", "subject", subject, "status", qfs_status_str(s));
    free(stats);
}

static void on_metrics_timer(uv_timer_t *t)
{
    metrics_flush(t->data);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void close_cb_noop(uv_handle_t *h) { (void)h; }

static void on_log_flush(uv_prepare_t *p)
{
    (void)p;
    qfs_log_flush();
}

static void on_bus_closed(void *arg)
{
    struct qfs_svc *svc = arg;
    svc->bus = NULL;
    uv_close((uv_handle_t *)&svc->sigterm, close_cb_noop);
    uv_close((uv_handle_t *)&svc->sigint, close_cb_noop);
    uv_close((uv_handle_t *)&svc->heartbeat, close_cb_noop);
    uv_close((uv_handle_t *)&svc->drain_poll, close_cb_noop);
    uv_close((uv_handle_t *)&svc->drain_deadline, close_cb_noop);
    uv_close((uv_handle_t *)&svc->metrics_timer, close_cb_noop);
    uv_close((uv_handle_t *)&svc->log_flush, close_cb_noop);
}

static void on_service_stopped(struct qfs_svc *svc)
{
    unlink(svc->health_path);
    if (svc->bus) qfs_bus_close(svc->bus, on_bus_closed, svc);
    else on_bus_closed(svc);
}

static void shutdown_now(struct qfs_svc *svc)
{
    if (svc->state == SVC_CLOSING) return;
    svc->state = SVC_CLOSING;
    uv_timer_stop(&svc->drain_poll);
    uv_timer_stop(&svc->drain_deadline);
    uv_timer_stop(&svc->heartbeat);
    uv_timer_stop(&svc->metrics_timer);
    /* The last flush: the drain has settled everything, and the clients still exist. */
    metrics_flush(svc);
    qfs_info("stopped");
    if (svc->def->stop) svc->def->stop(svc, on_service_stopped);
    else on_service_stopped(svc);
}

static void on_drain_poll(uv_timer_t *t)
{
    struct qfs_svc *svc = t->data;
    if (svc->fetchers_stopped && qfs_bus_inflight(svc->bus) == 0 &&
        qfs_bus_publishes_pending(svc->bus) == 0 && (!svc->def->busy || svc->def->busy(svc) == 0))
        shutdown_now(svc);
}

static void on_drain_deadline(uv_timer_t *t)
{
    struct qfs_svc *svc = t->data;
    char n[24];
    snprintf(n, sizeof(n), "%zu", qfs_bus_inflight(svc->bus));
    qfs_warn("drain deadline passed; returning unfinished messages for redelivery", "inflight", n);
    qfs_metrics_count(svc->metrics, "drain_timeouts", 1);
    svc->deadline_passed = true;
    qfs_bus_nak_all(svc->bus);
    svc->fetchers_stopped = true;
    shutdown_now(svc);
}

static void on_fetchers_stopped(void *arg)
{
    struct qfs_svc *svc = arg;
    svc->fetchers_stopped = true;
}

static void begin_drain(struct qfs_svc *svc)
{
    svc->state = SVC_DRAINING;
    qfs_metrics_count(svc->metrics, "drains", 1);
    char n[24];
    snprintf(n, sizeof(n), "%zu", svc->bus ? qfs_bus_inflight(svc->bus) : 0);
    qfs_info("draining", "inflight", n);
    write_heartbeat(svc);
    if (!svc->bus) {
        shutdown_now(svc);
        return;
    }
    qfs_bus_stop_fetching(svc->bus, on_fetchers_stopped, svc);
    uv_timer_start(&svc->drain_poll, on_drain_poll, DRAIN_POLL_MS, DRAIN_POLL_MS);
    uv_timer_start(&svc->drain_deadline, on_drain_deadline, (uint64_t)svc->rt.drain_timeout_ms, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct qfs_svc *svc = h->data;
    if (svc->state >= SVC_DRAINING) {
        qfs_warn("second signal: exiting at once", "signal", strsignal(signum));
        unlink(svc->health_path);
        _exit(1);
    }
    qfs_info("signal received", "signal", strsignal(signum));
    begin_drain(svc);
}

static void on_bus_ready(void *arg)
{
    struct qfs_svc *svc = arg;
    if (svc->state != SVC_STARTING) return;
    svc->state = SVC_RUNNING;
    write_heartbeat(svc);
    qfs_info("running", "version", QFS_VERSION);
}

static int run(struct qfs_svc *svc)
{
    const struct qfs_service_def *def = svc->def;
    const char *const *subjects = qfs_stream_subjects();
    struct qfs_bus_options bo = {
        .url = svc->rt.nats_url,
        .name = def->name,
        .stream = QFS_STREAM_NAME,
        .subjects = subjects,
        .stream_max_age_ms = svc->rt.stream_max_age_ms,
        .duplicate_window_ms = svc->rt.duplicate_window_ms,
        .max_outstanding = (int)svc->rt.max_outstanding,
        .publish_timeout_ms = svc->rt.publish_timeout_ms,
    };
    qfs_status s = qfs_bus_new(&svc->bus, &svc->loop, &bo);
    if (s != QFS_OK) {
        qfs_error("cannot set up the bus", "status", qfs_status_str(s), "url", svc->rt.nats_url);
        return 1;
    }

    uv_signal_init(&svc->loop, &svc->sigterm);
    uv_signal_init(&svc->loop, &svc->sigint);
    svc->sigterm.data = svc->sigint.data = svc;
    uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
    uv_signal_start(&svc->sigint, on_signal, SIGINT);
    uv_timer_init(&svc->loop, &svc->heartbeat);
    uv_timer_init(&svc->loop, &svc->drain_poll);
    uv_timer_init(&svc->loop, &svc->drain_deadline);
    uv_timer_init(&svc->loop, &svc->metrics_timer);
    svc->heartbeat.data = svc->drain_poll.data = svc->drain_deadline.data = svc;
    svc->metrics_timer.data = svc;
    uv_timer_start(&svc->heartbeat, on_heartbeat, 0, HEARTBEAT_MS);
    uv_prepare_init(&svc->loop, &svc->log_flush);
    uv_prepare_start(&svc->log_flush, on_log_flush);
    qfs_log_buffer(true);
    svc->started_mono_ms = qfs_mono_ms();
    /* The counters exist from the start, so the first line already lists them (as 0). */
    static const char *const listed[] = {"drains", "drain_timeouts"};
    qfs_metrics_declare(svc->metrics, listed, sizeof(listed) / sizeof(listed[0]));
    if (svc->rt.metrics_interval_ms > 0)
        uv_timer_start(&svc->metrics_timer, on_metrics_timer, (uint64_t)svc->rt.metrics_interval_ms,
                       (uint64_t)svc->rt.metrics_interval_ms);

    if (def->start && (s = def->start(svc)) != QFS_OK) {
        qfs_error("service start failed", "status", qfs_status_str(s));
        svc->exit_code = 1;
        shutdown_now(svc);
    } else {
        svc->consumers = qfs_xcalloc(def->nconsumers ? def->nconsumers : 1, sizeof(*svc->consumers));
        for (size_t i = 0; i < def->nconsumers; i++) {
            struct qfs_consumer_def *c = &svc->consumers[i];
            *c = def->consumers[i];
            if (!c->max_ack_pending) c->max_ack_pending = (int)svc->rt.max_ack_pending;
            if (!c->ack_wait_ms) c->ack_wait_ms = svc->rt.ack_wait_ms;
            if (!c->max_deliver) c->max_deliver = (int)svc->rt.max_deliver;
        }
        s = qfs_bus_start(svc->bus, svc->consumers, def->nconsumers, svc, on_bus_ready, svc);
        if (s != QFS_OK) {
            qfs_error("cannot start consumers", "status", qfs_status_str(s));
            svc->exit_code = 1;
            shutdown_now(svc);
        }
    }

    uv_run(&svc->loop, UV_RUN_DEFAULT);
    qfs_log_buffer(false);
    free(svc->consumers);
    int rc = uv_loop_close(&svc->loop);
    if (rc != 0) {
        /* A handle outlived its owner: a leak worth failing tests over. */
        qfs_error("event loop still has open handles at exit", "error", uv_strerror(rc));
        return svc->exit_code ? svc->exit_code : 3;
    }
    return svc->exit_code;
}

int qfs_service_main(const struct qfs_service_def *def, int argc, char **argv)
{
    struct qfs_svc svc;
    memset(&svc, 0, sizeof(svc));
    svc.def = def;
    signal(SIGPIPE, SIG_IGN);

    char name[64];
    snprintf(name, sizeof(name), "qfs-%s", def->name);
    qfs_log_init(name, QFS_LOG_INFO);

    enum { MODE_RUN, MODE_HELP, MODE_VERSION, MODE_CHECK, MODE_HEALTH } mode = MODE_RUN;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) mode = MODE_HELP;
        else if (strcmp(argv[i], "--version") == 0) mode = MODE_VERSION;
        else if (strcmp(argv[i], "--check-config") == 0) mode = MODE_CHECK;
        else if (strcmp(argv[i], "--health") == 0) mode = MODE_HEALTH;
    }
    if (mode == MODE_HELP) {
        print_help(def, stdout);
        return 0;
    }
    if (mode == MODE_VERSION) {
        printf("qfs-%s %s\n", def->name, QFS_VERSION);
        return 0;
    }

    svc.config = qfs_xcalloc(1, def->config_size ? def->config_size : 1);
    svc.metrics = qfs_metrics_new();
    qfs_status rs = qfs_config_load(runtime_vars, NRUNTIME_VARS, &svc.rt, stderr);
    qfs_status ss = def->nconfig ? qfs_config_load(def->config, def->nconfig, svc.config, stderr) : QFS_OK;
    if (ss == QFS_OK && def->check_config) ss = def->check_config(svc.config, stderr);
    int code = 0;
    if (rs != QFS_OK || ss != QFS_OK) {
        fprintf(stderr, "qfs-%s: invalid configuration (see the lines above; --help lists every variable)\n",
                def->name);
        code = 2;
        goto out;
    }
    qfs_log_init(name, (enum qfs_log_level)svc.rt.log_level);
    qfs_svc_health_path(svc.rt.run_dir, def->name, svc.health_path, sizeof(svc.health_path));

    if (mode == MODE_CHECK) {
        qfs_config_print_effective(runtime_vars, NRUNTIME_VARS, &svc.rt, stdout);
        if (def->nconfig) qfs_config_print_effective(def->config, def->nconfig, svc.config, stdout);
        goto out;
    }
    if (mode == MODE_HEALTH) {
        code = check_health(&svc);
        goto out;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&svc.loop);
    code = -1;
    if (def->command) {
        /* A command mode may use the loop (e.g. for AWS lookups); it runs until its work is done. */
        code = def->command(&svc, argc, argv);
        if (code >= 0) {
            uv_run(&svc.loop, UV_RUN_DEFAULT);
            uv_loop_close(&svc.loop);
        }
    }
    if (code < 0 && argc > 1) {
        fprintf(stderr, "qfs-%s: unknown argument %s (try --help)\n", def->name, argv[1]);
        uv_loop_close(&svc.loop);
        code = 2;
    }
    if (code < 0) {
        code = run(&svc);
        nats_Close();
    }
    curl_global_cleanup();

out:
    qfs_config_cleanup(runtime_vars, NRUNTIME_VARS, &svc.rt);
    if (def->nconfig) qfs_config_cleanup(def->config, def->nconfig, svc.config);
    free(svc.config);
    qfs_metrics_free(svc.metrics);
    return code;
}
