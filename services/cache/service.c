/* qfs-cache as a service: configuration, the cache store, and the three consumers. */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/service.h"
#include "qfs/util.h"

/* When a publish of the outputs fails, the input is tried again after this long. */
#define PUBLISH_RETRY_MS 2000

struct cache_config {
    struct qfs_kv_config kv;
    int64_t tag_ttl_s;
    int64_t inflight_ttl_s;
    bool fail_closed;
};

#define CC(f) QFS_CFG_FIELD(struct cache_config, f)
static const struct qfs_config_var cache_vars[] = {
    QFS_KV_CONFIG_VARS(struct cache_config, kv),
    {"QFS_CACHE_TAG_TTL_SECONDS", QFS_CFG_INT, "3600", 1, QFS_KV_MAX_TTL_SECONDS,
     "How long a result stored under a tag (image known without its digest) is reused, in "
     "seconds; capped by QFS_CACHE_TTL_SECONDS.", false, false, CC(tag_ttl_s), NULL},
    {"QFS_INFLIGHT_TTL_SECONDS", QFS_CFG_INT, "7200", 60, QFS_KV_MAX_TTL_SECONDS,
     "The longest a scan may take, in seconds: the in-flight marker and the deploys that join a "
     "running scan expire after it.", false, false, CC(inflight_ttl_s), NULL},
    {"QFS_CACHE_FAIL_CLOSED", QFS_CFG_BOOL, "0", 0, 0,
     "When the cache store is unreachable, retry image records later instead of requesting the "
     "scan anyway (fail open, flagged cache_fail_open).", false, false, CC(fail_closed), NULL},
};

/* The clients of the running service. */
struct cache_state {
    struct qfs_http *http; /* DynamoDB only */
    struct qfs_aws *aws;   /* DynamoDB only */
    struct qfs_kv *kv;
    struct cache core;
    /* Set once stop begins: the deliveries of jobs still running were settled by the drain (or
     * returned by its deadline), so their outcomes are dropped. */
    bool stopping;
    struct qfs_svc *svc;
    void (*done)(struct qfs_svc *svc);
};

/* The counter of each decision (NULL: not counted), in qfs_svc_metrics. */
static const char *const decision_counters[] = {
    [CACHE_CACHED] = "cache_hits",
    [CACHE_REQUESTED] = "cache_misses",
    [CACHE_IN_FLIGHT] = "inflight_joins",
    [CACHE_FAIL_OPEN] = "fail_open",
    [CACHE_STORED] = "results_stored",
    [CACHE_STORED_KEPT] = "results_stored",
    [CACHE_RELEASED] = "markers_released",
};
#define NDECISIONS (sizeof(decision_counters) / sizeof(decision_counters[0]))

/* One message a job is working on. */
struct pending {
    struct cache_state *st;
    struct qfs_delivery *d;
    struct qfs_metrics *metrics;
};

static void on_done(void *arg, struct cache_outcome *out)
{
    struct pending *p = arg;
    struct qfs_delivery *d = p->d;
    bool stopping = p->st->stopping;
    struct qfs_metrics *m = p->metrics;
    free(p);
    if (stopping) return;
    /* A redelivered request (CACHE_OWN_MARKER) is not a second miss: the runtime counts it. */
    if ((size_t)out->decision < NDECISIONS && decision_counters[out->decision])
        qfs_metrics_count(m, decision_counters[out->decision], 1);
    switch (out->action) {
    case CACHE_ACT_FINISH:
        qfs_delivery_finish(d, &out->outbox, PUBLISH_RETRY_MS);
        break;
    case CACHE_ACT_RETRY:
        qfs_delivery_retry(d, out->retry_delay_ms, out->status, out->reason);
        break;
    case CACHE_ACT_DEAD_LETTER:
        qfs_delivery_dead_letter(d, out->status, out->reason);
        break;
    }
}

typedef void (*cache_handler_fn)(struct cache *c, const struct cache_input *in, cache_done_fn cb,
                                 void *arg);

static void handle(struct qfs_svc *svc, struct qfs_delivery *d, cache_handler_fn fn)
{
    struct cache_state *st = qfs_svc_data(svc);
    struct pending *p = qfs_xcalloc(1, sizeof(*p));
    p->st = st;
    p->d = d;
    p->metrics = qfs_svc_metrics(svc);
    struct cache_input in = {
        .trace_id = qfs_delivery_trace_id(d),
        .stream_seq = qfs_delivery_stream_seq(d),
        .delivery = qfs_delivery_count(d),
    };
    in.data = qfs_delivery_data(d, &in.len);
    fn(&st->core, &in, on_done, p);
}

static void handle_image(void *ctx, struct qfs_delivery *d)
{
    handle(ctx, d, cache_on_image);
}

static void handle_completed(void *ctx, struct qfs_delivery *d)
{
    handle(ctx, d, cache_on_completed);
}

static void handle_failed(void *ctx, struct qfs_delivery *d)
{
    handle(ctx, d, cache_on_failed);
}

static qfs_status cache_start(struct qfs_svc *svc)
{
    struct cache_config *cfg = qfs_svc_config(svc);
    struct cache_state *st = qfs_xcalloc(1, sizeof(*st));
    st->svc = svc;
    qfs_svc_set_data(svc, st);
    uv_loop_t *loop = qfs_svc_loop(svc);
    qfs_status s = QFS_OK;
    if (cfg->kv.backend == QFS_KV_DYNAMODB) {
        s = qfs_http_new(loop, NULL, &st->http);
        struct qfs_aws_options ao = {0};
        if (s == QFS_OK) s = qfs_aws_new(loop, st->http, &ao, &st->aws);
    }
    if (s == QFS_OK) s = qfs_kv_new(loop, &cfg->kv, st->aws, &st->kv);
    if (s != QFS_OK) return s;
    cache_store_init_kv(&st->core.store, st->kv);
    st->core.set = (struct cache_settings){
        .result_ttl_s = cfg->kv.ttl_seconds,
        .tag_ttl_s = cfg->tag_ttl_s,
        .inflight_ttl_s = cfg->inflight_ttl_s,
        .fail_closed = cfg->fail_closed,
    };
    for (size_t i = 0; i < NDECISIONS; i++)
        if (decision_counters[i]) qfs_metrics_count(qfs_svc_metrics(svc), decision_counters[i], 0);
    qfs_info("cache store ready", "backend", qfs_kv_backend_name(st->kv), "on_store_failure",
             cfg->fail_closed ? "retry (fail closed)" : "scan anyway (fail open)");
    return QFS_OK;
}

static void cache_collect(struct qfs_svc *svc, struct qfs_metrics *m)
{
    struct cache_state *st = qfs_svc_data(svc);
    if (st) qfs_metrics_read_http(m, st->http); /* HTTP only with DynamoDB */
}

static void on_kv_closed(void *arg)
{
    struct cache_state *st = arg;
    struct qfs_svc *svc = st->svc;
    void (*done)(struct qfs_svc *) = st->done;
    qfs_aws_free(st->aws);
    qfs_http_free(st->http);
    free(st);
    qfs_svc_set_data(svc, NULL);
    done(svc);
}

static void cache_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    struct cache_state *st = qfs_svc_data(svc);
    if (!st) {
        done(svc);
        return;
    }
    st->stopping = true;
    st->done = done;
    if (st->kv) qfs_kv_free(st->kv, on_kv_closed, st); /* ends every running job */
    else on_kv_closed(st);
}

static const struct qfs_consumer_def cache_consumers[] = {
    {.durable = "cache-images", .subject = QFS_SUBJECT_IMAGES, .handle = handle_image},
    {.durable = "cache-completed", .subject = QFS_SUBJECT_SCANS_COMPLETED, .handle = handle_completed},
    {.durable = "cache-failed", .subject = QFS_SUBJECT_SCANS_FAILED, .handle = handle_failed},
};

const struct qfs_service_def cache_service = {
    .name = "cache",
    .summary = "answers image records from the scan cache or requests a scan; stores scan outcomes",
    .config = cache_vars,
    .nconfig = sizeof(cache_vars) / sizeof(cache_vars[0]),
    .config_size = sizeof(struct cache_config),
    .consumers = cache_consumers,
    .nconsumers = sizeof(cache_consumers) / sizeof(cache_consumers[0]),
    .start = cache_start,
    .stop = cache_stop,
    .collect = cache_collect,
};
