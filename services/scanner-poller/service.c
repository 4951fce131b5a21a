/* qfs-scanner-poller as a service: configuration, clients, and the qfs.scans.ready.> handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poller.h"
#include "qfs/aws.h"
#include "qfs/aws_sts.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/proto_scan.h"
#include "qfs/qualys.h"
#include "qfs/service.h"
#include "qfs/util.h"

/* One Qualys call is bounded by these (3 attempts of 15 s, 429 waits of at most 30 s: about two
 * minutes at worst), and a check makes at most three calls plus a few store operations, usually
 * in well under a second. The server redelivers a message held this long: a crashed check. */
#define QUALYS_TIMEOUT_MS 15000
#define QUALYS_MAX_ATTEMPTS 3
#define QUALYS_MAX_WAIT_MS 30000
/* A check longer than a third of this is reported in progress by the bus; a poller that dies
 * mid-check delays that scan by this much at most. */
#define CHECK_ACK_WAIT_MS (30 * 1000)
/* Deliveries beyond QFS_MAX_POLL_ATTEMPTS, so that the server never gives up before the timeout
 * failure is published (a retried store or publish failure also costs a delivery). */
#define EXTRA_DELIVERIES 10
/* After a failed publish of the outcome, try again this much later. */
#define PUBLISH_RETRY_MS 2000

struct poller_config {
    struct qfs_kv_config kv;
    struct qfs_qualys_config qualys;
    int64_t max_checks;
    int64_t interval_s;
    char *first_delays;
    int64_t inflight_ttl_s;
    char *describe_role;
    char *hub_account;
    int64_t top_findings;
};

#define PC(f) QFS_CFG_FIELD(struct poller_config, f)
static const struct qfs_config_var poller_vars[] = {
    QFS_KV_CONFIG_VARS(struct poller_config, kv),
    QFS_QUALYS_CONFIG_VARS(struct poller_config, qualys),
    {"QFS_MAX_POLL_ATTEMPTS", QFS_CFG_INT, "30", 1, 1000,
     "Checks of a scan before it fails as a timeout.", false, false, PC(max_checks), NULL},
    {"QFS_POLL_INTERVAL_SECONDS", QFS_CFG_INT, "60", 1, 3600,
     "Seconds between two checks of an unfinished scan.", false, false, PC(interval_s), NULL},
    {"QFS_POLL_FIRST_DELAYS", QFS_CFG_STRING, "5,10,20", 0, 0,
     "Seconds before the second, third, ... check (comma-separated, each capped by the interval); "
     "later checks wait the interval.", false, false, PC(first_delays), NULL},
    {"QFS_INFLIGHT_TTL_SECONDS", QFS_CFG_INT, "7200", 60, QFS_KV_MAX_TTL_SECONDS,
     "The longest a scan may take: how long a submission record is kept (as the in-flight marker).",
     false, false, PC(inflight_ttl_s), NULL},
    {"QFS_ECS_DESCRIBE_ROLE_NAME", QFS_CFG_STRING, "QfsEcsDescribeRole", 0, 0,
     "Role assumed in an image's account for ECR DescribeImages (the tag of a digest-only image).",
     false, false, PC(describe_role), NULL},
    {"QFS_HUB_ACCOUNT_ID", QFS_CFG_STRING, NULL, 0, 0,
     "The account qfs runs in: its ECR lookups use the task role itself; unset, the role is always "
     "assumed.", false, false, PC(hub_account), NULL},
    {"QFS_SCAN_TOP_FINDINGS", QFS_CFG_INT, "20", 0, QFS_SCAN_MAX_FINDINGS,
     "Most severe findings listed in a scan result.", false, false, PC(top_findings), NULL},
};

/* The one consumer. max_deliver depends on QFS_MAX_POLL_ATTEMPTS: poller_start sets it before the
 * runtime reads this table. */
static void handle_ready(void *ctx, struct qfs_delivery *d);
static struct qfs_consumer_def poller_consumers[] = {
    {.durable = "scanner-poller-ready", .subject = QFS_SUBJECT_SCANS_READY,
     .ack_wait_ms = CHECK_ACK_WAIT_MS, .max_deliver = 30 + EXTRA_DELIVERIES, .handle = handle_ready},
};

struct poller_state {
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct qfs_aws_sts *sts;
    struct qfs_kv *kv;
    struct qfs_qualys *qualys;
    struct poller_ecr ecr;
    struct poller_deps deps;
    size_t checks;                          /* running */
    void (*stopped)(struct qfs_svc *svc);   /* the runtime's, called once all is released */
    bool clients_freed;
    struct qfs_svc *svc;
};

/* ---- the handler ----------------------------------------------------------------------------- */

struct running {
    struct poller_state *st;
    struct qfs_delivery *d;
    struct qfs_metrics *metrics;
    int64_t deployed_ms; /* the requesting deploy's event_time; 0 when unknown */
};

/* Counts how a check ended; a completed scan also gives its deploy-to-result latency. */
static void count_checked(const struct running *run, const struct poller_outcome *o)
{
    if (o->verdict != POLLER_PUBLISH || !o->what) return;
    if (strcmp(o->what, "completed") == 0) {
        qfs_metrics_count(run->metrics, "scans_completed", 1);
        int64_t now = qfs_now_ms();
        if (run->deployed_ms > 0 && now >= run->deployed_ms)
            qfs_metrics_histogram_record(qfs_metrics_histogram(run->metrics, "deploy_to_result"),
                                         (uint64_t)(now - run->deployed_ms));
        return;
    }
    char name[QFS_METRICS_NAME_MAX];
    snprintf(name, sizeof(name), "scans_failed.%s", o->what);
    qfs_metrics_count(run->metrics, "scans_failed", 1);
    qfs_metrics_count(run->metrics, name, 1);
}

/* Poll lag: how late check n runs against its schedule, that is now minus (the time the stream
 * stored the scan-ready message + the poll delays of checks 1..n-1). It grows when checks queue up
 * behind MaxAckPending or the poller is down; the time earlier checks took adds a little. */
static void record_poll_lag(struct poller_state *st, struct qfs_metrics *m, const struct qfs_delivery *d)
{
    int64_t due = qfs_delivery_stored_ms(d);
    if (due <= 0) return;
    uint64_t n = qfs_delivery_count(d);
    for (uint64_t k = 1; k < n; k++) due += poller_delay_ms(&st->deps.schedule, k);
    int64_t now = qfs_now_ms();
    qfs_metrics_histogram_record(qfs_metrics_histogram(m, "poll_lag"),
                                 now > due ? (uint64_t)(now - due) : 0);
}

static void finalize_stop(struct poller_state *st);

static void on_checked(void *arg, const struct poller_outcome *o)
{
    struct running *run = arg;
    struct poller_state *st = run->st;
    struct qfs_delivery *d = run->d;
    count_checked(run, o);
    free(run);
    st->checks--;
    /* Settled even while stopping: past the drain deadline the bus has returned the message to
     * the server already, and settling only frees the delivery. */
    switch (o->verdict) {
    case POLLER_PUBLISH: {
        char n[24];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)qfs_delivery_count(d));
        qfs_info(strcmp(o->what, "completed") == 0 ? "scan completed" : "scan failed", "trace_id",
                 qfs_delivery_trace_id(d), "outcome", o->what, "subject", o->outbox->items[0].subject,
                 "msg_id", o->outbox->items[0].msg_id, "checks", n);
        qfs_delivery_finish(d, o->outbox, PUBLISH_RETRY_MS);
        break;
    }
    case POLLER_RETRY:
        qfs_delivery_retry(d, o->delay_ms, o->status, o->reason);
        break;
    case POLLER_DEAD_LETTER:
        qfs_delivery_dead_letter(d, o->status, o->reason);
        break;
    }
    if (st->deps.stopping && st->checks == 0 && st->clients_freed) finalize_stop(st);
}

static void handle_ready(void *ctx, struct qfs_delivery *d)
{
    struct qfs_svc *svc = ctx;
    struct poller_state *st = qfs_svc_data(svc);
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    struct qfs_scan_ready ready;
    char err[256];
    if (qfs_scan_ready_decode(data, len, &ready, err, sizeof(err)) != QFS_OK) {
        qfs_delivery_dead_letter(d, QFS_PROTOCOL, err);
        return;
    }
    struct running *run = qfs_xcalloc(1, sizeof(*run));
    run->st = st;
    run->d = d;
    run->metrics = qfs_svc_metrics(svc);
    const struct qfs_scan_request *req = &ready.request;
    if (req->ndeploys == 0 || !req->deploys[0].event_time ||
        !qfs_proto_parse_timestamp(req->deploys[0].event_time, &run->deployed_ms))
        run->deployed_ms = 0;
    qfs_metrics_count(run->metrics, "polls", 1);
    record_poll_lag(st, run->metrics, d);
    st->checks++;
    poller_check(&st->deps, &ready, qfs_delivery_count(d), on_checked, run);
}

/* ---- start and stop -------------------------------------------------------------------------- */

static qfs_status poller_start(struct qfs_svc *svc)
{
    struct poller_config *cfg = qfs_svc_config(svc);
    struct poller_state *st = qfs_xcalloc(1, sizeof(*st));
    st->svc = svc;
    qfs_svc_set_data(svc, st);

    struct poller_deps *deps = &st->deps;
    char err[160];
    deps->schedule.interval_s = cfg->interval_s;
    deps->schedule.max_checks = cfg->max_checks;
    deps->top_findings = (size_t)cfg->top_findings;
    deps->submission_ttl_s = cfg->inflight_ttl_s;
    if (poller_parse_first_delays(cfg->first_delays, &deps->schedule, err, sizeof(err)) != QFS_OK) {
        qfs_error("bad QFS_POLL_FIRST_DELAYS", "reason", err);
        return QFS_INVALID_ARG;
    }
    if (poller_span_s(&deps->schedule) >= cfg->inflight_ttl_s) {
        /* The record would expire while the scan is followed, and a later check submit again. */
        char span[24];
        snprintf(span, sizeof(span), "%lld", (long long)poller_span_s(&deps->schedule));
        qfs_error("QFS_INFLIGHT_TTL_SECONDS must exceed the time QFS_MAX_POLL_ATTEMPTS checks take",
                  "poll_span_seconds", span);
        return QFS_INVALID_ARG;
    }
    if (cfg->hub_account && !qfs_proto_is_account(cfg->hub_account)) {
        qfs_error("QFS_HUB_ACCOUNT_ID must be 12 digits");
        return QFS_INVALID_ARG;
    }

    poller_consumers[0].max_deliver = (int)cfg->max_checks + EXTRA_DELIVERIES;

    qfs_status s = qfs_http_new(qfs_svc_loop(svc), NULL, &st->http);
    struct qfs_aws_options ao = {0};
    if (s == QFS_OK) s = qfs_aws_new(qfs_svc_loop(svc), st->http, &ao, &st->aws);
    struct qfs_aws_sts_options so = {.session_name = "qfs-scanner-poller"};
    if (s == QFS_OK) s = qfs_aws_sts_new(qfs_svc_loop(svc), st->aws, &so, &st->sts);
    if (s == QFS_OK) s = qfs_kv_new(qfs_svc_loop(svc), &cfg->kv, st->aws, &st->kv);
    struct qfs_qualys_options qo;
    qfs_qualys_options_from_config(&cfg->qualys, st->aws, &qo);
    qo.timeout_ms = QUALYS_TIMEOUT_MS;
    qo.max_attempts = QUALYS_MAX_ATTEMPTS;
    qo.max_wait_ms = QUALYS_MAX_WAIT_MS;
    /* The client's 0 means its default, not none: ask for one and list none ourselves. */
    qo.top_findings = cfg->top_findings ? (unsigned)cfg->top_findings : 1;
    if (s == QFS_OK) s = qfs_qualys_new(qfs_svc_loop(svc), st->http, &qo, &st->qualys);
    if (s != QFS_OK) return s;

    st->ecr = (struct poller_ecr){.aws = st->aws, .sts = st->sts, .hub_account = cfg->hub_account,
                                  .role_name = cfg->describe_role};
    deps->kv = st->kv;
    poller_qualys_port_init(&deps->qualys, st->qualys);
    poller_ecr_port_init(&deps->ecr, &st->ecr);
    struct qfs_metrics *m = qfs_svc_metrics(svc);
    static const char *const listed[] = {"polls", "scans_submitted", "scans_completed", "scans_failed"};
    qfs_metrics_declare(m, listed, sizeof(listed) / sizeof(listed[0]));
    return QFS_OK;
}

/* Scans submitted (create_schedule calls Qualys answered OK), and every Qualys and HTTP count,
 * from the clients' stats. */
static void poller_collect(struct qfs_svc *svc, struct qfs_metrics *m)
{
    struct poller_state *st = qfs_svc_data(svc);
    if (!st) return;
    qfs_metrics_read_http(m, st->http);
    if (!st->qualys) return;
    struct qfs_qualys_stats qs;
    qfs_metrics_read_qualys(m, st->qualys, &qs);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "scans_submitted"),
                                  qs.calls[QFS_QUALYS_CALL_CREATE_SCHEDULE][QFS_OK]);
}

static void finalize_stop(struct poller_state *st)
{
    void (*done)(struct qfs_svc *) = st->stopped;
    struct qfs_svc *svc = st->svc;
    qfs_svc_set_data(svc, NULL);
    free(st);
    done(svc);
}

static void on_kv_closed(void *arg)
{
    struct poller_state *st = arg;
    /* Checks waiting on these clients end now or on the next loop turns, seeing deps.stopping. */
    qfs_aws_sts_free(st->sts);
    qfs_aws_free(st->aws);
    qfs_http_free(st->http);
    st->sts = NULL;
    st->aws = NULL;
    st->http = NULL;
    st->clients_freed = true;
    if (st->checks == 0) finalize_stop(st);
}

static void poller_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    struct poller_state *st = qfs_svc_data(svc);
    if (!st) {
        done(svc);
        return;
    }
    st->deps.stopping = true;
    st->stopped = done;
    qfs_qualys_free(st->qualys);
    st->qualys = NULL;
    if (st->kv) {
        struct qfs_kv *kv = st->kv;
        st->kv = NULL;
        qfs_kv_free(kv, on_kv_closed, st);
    } else {
        on_kv_closed(st);
    }
}

/* One Qualys credential source and a known gateway: checked with every variable read. */
static qfs_status poller_check_config(const void *config, FILE *err)
{
    const struct poller_config *cfg = config;
    return qfs_qualys_config_check(&cfg->qualys, err);
}

const struct qfs_service_def scanner_poller_service = {
    .name = "scanner-poller",
    .summary = "submits a Qualys scan for each ready image and follows it to a result or a failure",
    .config = poller_vars,
    .nconfig = sizeof(poller_vars) / sizeof(poller_vars[0]),
    .config_size = sizeof(struct poller_config),
    .consumers = poller_consumers,
    .nconsumers = 1,
    .check_config = poller_check_config,
    .start = poller_start,
    .stop = poller_stop,
    .collect = poller_collect,
};
