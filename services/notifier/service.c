/* qfs-notifier as a service: configuration, the clients (cache store, SNS) and the handlers of
 * qfs.scans.completed.> and qfs.scans.failed.>. The skips of each deploy come from the store,
 * where the parser lists them (skips:<event id>). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.h"
#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/proto_notification.h"
#include "qfs/service.h"
#include "qfs/util.h"

struct notifier_config {
    struct qfs_kv_config kv;
    char *topic_arn;
    int min_severity; /* index into severity_choices */
    bool new_only;
    bool notify_failures;
};

static const char *const severity_choices[] = {"critical", "high", "medium", "low", "info", NULL};

#define NC(f) QFS_CFG_FIELD(struct notifier_config, f)
static const struct qfs_config_var notifier_vars[] = {
    QFS_KV_CONFIG_VARS(struct notifier_config, kv),
    {"QFS_SNS_TOPIC_ARN", QFS_CFG_STRING, NULL, 0, 0,
     "SNS topic the notifications are published to.", false, true, NC(topic_arn), NULL},
    {"QFS_NOTIFY_MIN_SEVERITY", QFS_CFG_ENUM, "high", 0, 0,
     "Lowest severity found that makes a completed scan worth a notification.", false, false,
     NC(min_severity), severity_choices},
    {"QFS_NOTIFY_NEW_ONLY", QFS_CFG_BOOL, "0", 0, 0,
     "Notify only when findings at or above the threshold are new to the repository's last scan.",
     false, false, NC(new_only), NULL},
    {"QFS_NOTIFY_FAILURES", QFS_CFG_BOOL, "1", 0, 0,
     "Notify when a scan fails (timeout, Qualys errors, no registry, ...).", false, false,
     NC(notify_failures), NULL},
};

/* A message being worked on. */
struct pending {
    struct notifier_state *st;
    struct qfs_delivery *d;
    struct pending *prev, *next;
};

struct notifier_state {
    struct qfs_svc *svc;
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct qfs_kv *kv;
    struct notifier_rules rules;
    struct notifier_deps deps;
    struct pending *pending;
    bool closing;  /* the runtime may have returned the deliveries: never touch them again */
    bool orphaned; /* stopped with jobs still out: the last one frees the state */
};

/* One SNS Publish, counted when it ends. */
struct sns_call {
    qfs_sns_publish_fn cb;
    void *arg;
    struct qfs_metrics *metrics;
};

static void on_sns_published(const struct qfs_aws_response *r, const char *message_id, void *arg)
{
    struct sns_call *c = arg;
    qfs_metrics_count(c->metrics, r->status == QFS_OK ? "notifications_sent" : "notifications_failed", 1);
    qfs_sns_publish_fn cb = c->cb;
    void *cb_arg = c->arg;
    free(c);
    cb(r, message_id, cb_arg);
}

/* The SNS port: qfs_sns_publish over the state's AWS client, counting what SNS accepted. */
static qfs_status publish_sns(void *ctx, const struct qfs_sns_publish *p, qfs_sns_publish_fn cb,
                              void *arg)
{
    struct notifier_state *st = ctx;
    struct sns_call *c = qfs_xcalloc(1, sizeof(*c));
    c->cb = cb;
    c->arg = arg;
    c->metrics = qfs_svc_metrics(st->svc);
    qfs_status s = qfs_sns_publish(st->aws, p, on_sns_published, c);
    if (s != QFS_OK) {
        qfs_metrics_count(c->metrics, "notifications_failed", 1);
        free(c);
    }
    return s;
}

/* Counts the outcomes deliberately not sent, by reason, from the notification records in ob. */
static void count_not_sent(struct qfs_metrics *m, const struct qfs_outbox *ob)
{
    const char *schema = qfs_schema_name(QFS_SCHEMA_NOTIFICATION);
    for (size_t i = 0; ob && i < ob->n; i++) {
        const struct qfs_outbox_msg *msg = &ob->items[i];
        if (!msg->schema || strcmp(msg->schema, schema) != 0) continue;
        struct qfs_notification rec;
        char err[128];
        if (qfs_notification_decode(msg->data, msg->len, &rec, err, sizeof(err)) != QFS_OK) continue;
        if (rec.decision == QFS_NOTIFY_NOT_SENT) {
            char name[QFS_METRICS_NAME_MAX];
            snprintf(name, sizeof(name), "notifications_not_sent.%s", qfs_notify_reason_str(rec.reason));
            qfs_metrics_count(m, "notifications_not_sent", 1);
            qfs_metrics_count(m, name, 1);
        }
        qfs_notification_cleanup(&rec);
    }
}

/* ---- settling -------------------------------------------------------------------------------- */

static struct pending *pending_new(struct notifier_state *st, struct qfs_delivery *d)
{
    struct pending *p = qfs_xcalloc(1, sizeof(*p));
    p->st = st;
    p->d = d;
    p->next = st->pending;
    if (st->pending) st->pending->prev = p;
    st->pending = p;
    return p;
}

static void pending_free(struct pending *p)
{
    struct notifier_state *st = p->st;
    if (p->prev) p->prev->next = p->next;
    else st->pending = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p);
}

/* Back off 2 s, 4 s, ... up to five minutes: a store, SNS or a topic policy recovers. */
static int64_t retry_delay(struct qfs_delivery *d)
{
    uint64_t count = qfs_delivery_count(d);
    int64_t delay = 2000LL << (count < 8 ? count - 1 : 8);
    return delay > 300000 ? 300000 : delay;
}

static void on_done(void *arg, qfs_status s, const char *reason, struct qfs_outbox *ob)
{
    struct pending *p = arg;
    struct notifier_state *st = p->st;
    struct qfs_delivery *d = p->d;
    pending_free(p);
    if (st->closing) {
        if (st->orphaned && !st->pending) free(st);
        return;
    }
    if (s == QFS_OK) count_not_sent(qfs_svc_metrics(st->svc), ob);
    if (s == QFS_OK) qfs_delivery_finish(d, ob, 2000);
    else if (notifier_status_is_retryable(s)) qfs_delivery_retry(d, retry_delay(d), s, reason);
    else qfs_delivery_dead_letter(d, s, reason);
}

/* ---- handlers -------------------------------------------------------------------------------- */

static void handle_outcome(struct qfs_svc *svc, struct qfs_delivery *d, enum qfs_notify_source src)
{
    struct notifier_state *st = qfs_svc_data(svc);
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    struct notifier_outcome o;
    memset(&o, 0, sizeof(o));
    o.source = src;
    char err[256];
    qfs_status s = src == QFS_NOTIFY_SOURCE_SCAN_RESULT
                       ? qfs_scan_result_decode(data, len, &o.result, err, sizeof(err))
                       : qfs_scan_failure_decode(data, len, &o.failure, err, sizeof(err));
    if (s != QFS_OK) {
        qfs_delivery_dead_letter(d, QFS_PROTOCOL, err);
        return;
    }
    struct pending *p = pending_new(st, d);
    notifier_handle_outcome(&st->deps, &o, on_done, p);
}

static void handle_completed(void *ctx, struct qfs_delivery *d)
{
    handle_outcome(ctx, d, QFS_NOTIFY_SOURCE_SCAN_RESULT);
}

static void handle_failed(void *ctx, struct qfs_delivery *d)
{
    handle_outcome(ctx, d, QFS_NOTIFY_SOURCE_SCAN_FAILURE);
}

/* ---- start and stop -------------------------------------------------------------------------- */

static qfs_status notifier_start(struct qfs_svc *svc)
{
    struct notifier_config *cfg = qfs_svc_config(svc);
    struct notifier_state *st = qfs_xcalloc(1, sizeof(*st));
    st->svc = svc;
    qfs_svc_set_data(svc, st);
    if (!notifier_topic_arn_is_valid(cfg->topic_arn)) {
        qfs_error("not an SNS topic ARN", "variable", "QFS_SNS_TOPIC_ARN");
        return QFS_INVALID_ARG;
    }
    st->rules = (struct notifier_rules){
        .topic_arn = cfg->topic_arn,
        .min_severity = (enum qfs_severity)(QFS_SEVERITY_CRITICAL - cfg->min_severity),
        .new_only = cfg->new_only,
        .notify_failures = cfg->notify_failures,
    };
    qfs_status s = qfs_http_new(qfs_svc_loop(svc), NULL, &st->http);
    struct qfs_aws_options ao = {0};
    if (s == QFS_OK) s = qfs_aws_new(qfs_svc_loop(svc), st->http, &ao, &st->aws);
    if (s == QFS_OK) s = qfs_kv_new(qfs_svc_loop(svc), &cfg->kv, st->aws, &st->kv);
    /* A job waiting on SNS or the store keeps its message from redelivery through the bus, which
     * reports deliveries held long in progress: a slow Publish retried inside the AWS client is
     * never sent twice by a second delivery. */
    st->deps = (struct notifier_deps){.kv = st->kv, .rules = &st->rules, .publish = publish_sns,
                                      .publish_ctx = st};
    struct qfs_metrics *m = qfs_svc_metrics(svc);
    static const char *const listed[] = {"notifications_sent", "notifications_not_sent",
                                         "notifications_failed"};
    qfs_metrics_declare(m, listed, sizeof(listed) / sizeof(listed[0]));
    char sev[16];
    snprintf(sev, sizeof(sev), "%s", qfs_severity_str(st->rules.min_severity));
    if (s == QFS_OK)
        qfs_info("notifier ready", "topic", cfg->topic_arn, "min_severity", sev, "new_only",
                 cfg->new_only ? "1" : "0", "failures", cfg->notify_failures ? "1" : "0");
    return s;
}

static void notifier_collect(struct qfs_svc *svc, struct qfs_metrics *m)
{
    struct notifier_state *st = qfs_svc_data(svc);
    if (st) qfs_metrics_read_http(m, st->http);
}

/* Frees what is left once the store is closed. */
struct stopping {
    struct notifier_state *st;
    void (*done)(struct qfs_svc *svc);
    int left;
};

static void stop_step(struct stopping *x)
{
    if (--x->left > 0) return;
    struct notifier_state *st = x->st;
    struct qfs_svc *svc = st->svc;
    /* SNS calls still out end here (cancelled), and with them the jobs that wait on them. */
    qfs_aws_free(st->aws);
    qfs_http_free(st->http);
    st->aws = NULL;
    st->http = NULL;
    if (st->pending) st->orphaned = true; /* an AWS retry timer may still hold one */
    else free(st);
    qfs_svc_set_data(svc, NULL);
    void (*done)(struct qfs_svc *) = x->done;
    free(x);
    done(svc);
}

static void on_kv_closed(void *arg)
{
    stop_step(arg);
}

static void notifier_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    struct notifier_state *st = qfs_svc_data(svc);
    if (!st) {
        done(svc);
        return;
    }
    /* The drain may have ended by returning unsettled deliveries: from now on jobs end without
     * touching them, and every step that needs the store or SNS fails at once. */
    st->closing = true;
    st->deps.kv = NULL;
    st->deps.publish = NULL;
    struct stopping *x = qfs_xcalloc(1, sizeof(*x));
    x->st = st;
    x->done = done;
    x->left = 1 + (st->kv ? 1 : 0);
    if (st->kv) qfs_kv_free(st->kv, on_kv_closed, x);
    st->kv = NULL;
    stop_step(x);
}

static const struct qfs_consumer_def notifier_consumers[] = {
    {.durable = "notifier-completed", .subject = QFS_SUBJECT_SCANS_COMPLETED,
     .handle = handle_completed},
    {.durable = "notifier-failed", .subject = QFS_SUBJECT_SCANS_FAILED, .handle = handle_failed},
};

const struct qfs_service_def notifier_service = {
    .name = "notifier",
    .summary = "publishes scan outcomes worth a look to SNS and records every decision",
    .config = notifier_vars,
    .nconfig = sizeof(notifier_vars) / sizeof(notifier_vars[0]),
    .config_size = sizeof(struct notifier_config),
    .consumers = notifier_consumers,
    .nconsumers = sizeof(notifier_consumers) / sizeof(notifier_consumers[0]),
    .start = notifier_start,
    .stop = notifier_stop,
    .collect = notifier_collect,
};
