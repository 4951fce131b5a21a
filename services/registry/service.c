/* qfs-registry as a service: configuration, the store and Qualys clients as the rules' ports, and
 * the qfs.scans.requested.> handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/qualys.h"
#include "qfs/service.h"
#include "qfs/util.h"
#include "registry.h"

/* How long a failed publish of the outputs waits before the request is tried again. */
#define PUBLISH_RETRY_MS 2000

static const char *const account_types[] = {"Global", "US_Gov", NULL};

struct registry_svc_config {
    struct qfs_kv_config kv;
    struct qfs_qualys_config qualys;
    char *role_name;
    int account_type; /* index into account_types */
};

#define RC(f) QFS_CFG_FIELD(struct registry_svc_config, f)
static const struct qfs_config_var registry_vars[] = {
    QFS_KV_CONFIG_VARS(struct registry_svc_config, kv),
    QFS_QUALYS_CONFIG_VARS(struct registry_svc_config, qualys),
    {"QFS_ECR_ROLE_NAME", QFS_CFG_STRING, "QualysEcrScanRole", 0, 0,
     "Role in each member account that Qualys assumes to read its ECR registries.", false, false,
     RC(role_name), NULL},
    {"QFS_QUALYS_ACCOUNT_TYPE", QFS_CFG_ENUM, "Global", 0, 0,
     "accountType of the AWS connectors and registries created: Global, or US_Gov for GovCloud.",
     false, false, RC(account_type), account_types},
};

/* The clients of the running service. */
struct registry_state {
    struct qfs_http *http;
    struct qfs_aws *aws; /* only for a Qualys secret or the DynamoDB store */
    struct qfs_kv *kv;
    struct qfs_qualys *qualys;
    struct registry *reg;
    struct qfs_svc *svc;
    void (*done)(struct qfs_svc *svc);
};

/* ---- the ports over qfs_kv and qfs_qualys ------------------------------------------------------ */

static qfs_status kv_get(void *impl, const char *key, qfs_kv_fn cb, void *arg)
{
    return qfs_kv_get(impl, key, cb, arg);
}

static qfs_status kv_put(void *impl, const char *key, const char *value, size_t len, int64_t ttl_seconds,
                         qfs_kv_fn cb, void *arg)
{
    return qfs_kv_put(impl, key, value, len, ttl_seconds, cb, arg);
}

static qfs_status kv_put_if_absent(void *impl, const char *key, const char *value, size_t len,
                                   int64_t ttl_seconds, qfs_kv_fn cb, void *arg)
{
    return qfs_kv_put_if_absent(impl, key, value, len, ttl_seconds, cb, arg);
}

static qfs_status kv_del_if_value(void *impl, const char *key, const char *expected, size_t len,
                                  qfs_kv_fn cb, void *arg)
{
    return qfs_kv_del_if_value(impl, key, expected, len, cb, arg);
}

static qfs_status q_find_registry(void *impl, const char *registry, qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_find_registry(impl, registry, cb, arg);
}

static qfs_status q_create_registry(void *impl, const char *account, const char *region,
                                    const char *role_arn, const char *name, const char *account_type,
                                    qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_create_registry(impl, account, region, role_arn, name, account_type, cb, arg);
}

static qfs_status q_list_connectors(void *impl, qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_list_connectors(impl, cb, arg);
}

static qfs_status q_aws_base(void *impl, qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_aws_base(impl, cb, arg);
}

static qfs_status q_create_connector(void *impl, const char *name, const char *role_arn,
                                     const char *external_id, const char *account_type,
                                     qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_create_connector(impl, name, role_arn, external_id, account_type, cb, arg);
}

/* ---- the handler ------------------------------------------------------------------------------ */

struct job {
    struct qfs_delivery *d;
    struct qfs_scan_request req;
    struct qfs_metrics *metrics;
};

static void on_resolved(void *arg, const struct registry_outcome *o)
{
    struct job *job = arg;
    struct qfs_delivery *d = job->d;
    if (o->verdict == REGISTRY_RETRY) {
        qfs_delivery_retry(d, o->delay_ms, o->status, o->detail);
        goto out;
    }
    qfs_metrics_count(job->metrics, o->verdict == REGISTRY_READY ? "scans_ready" : "registry_failures", 1);
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    qfs_status s;
    if (o->verdict == REGISTRY_READY) {
        s = registry_build_ready(&job->req, o->uuid, &ob);
    } else {
        char now[32];
        qfs_format_time_ms(qfs_now_ms(), now);
        qfs_warn("no registry for the scan", "trace_id", qfs_delivery_trace_id(d), "reason",
                 qfs_scan_failure_reason_str(o->reason), "detail", o->detail, "error_code", o->error_code);
        s = registry_build_failure(&job->req, o, now, &ob);
    }
    if (s != QFS_OK) {
        qfs_outbox_cleanup(&ob);
        qfs_delivery_dead_letter(d, QFS_INTERNAL, "qfs-registry could not encode its output");
        goto out;
    }
    qfs_delivery_finish(d, &ob, PUBLISH_RETRY_MS);
out:
    qfs_scan_request_cleanup(&job->req);
    free(job);
}

static void handle_request(void *ctx, struct qfs_delivery *d)
{
    struct qfs_svc *svc = ctx;
    struct registry_state *st = qfs_svc_data(svc);
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    struct job *job = qfs_xcalloc(1, sizeof(*job));
    job->d = d;
    job->metrics = qfs_svc_metrics(svc);
    char err[256];
    if (qfs_scan_request_decode(data, len, &job->req, err, sizeof(err)) != QFS_OK) {
        free(job);
        qfs_delivery_dead_letter(d, QFS_PROTOCOL, err);
        return;
    }
    uint64_t count = qfs_delivery_count(d);
    int max = qfs_delivery_max_deliver(d);
    bool last = max > 0 && count >= (uint64_t)max;
    qfs_status s = registry_resolve(st->reg, job->req.image.account, job->req.image.region, count, last,
                                    on_resolved, job);
    if (s == QFS_OK) return;
    /* The store refused the read at once (it is shutting down, or the request is malformed). */
    struct registry_outcome o = {
        .verdict = s == QFS_PROTOCOL || last ? REGISTRY_FAILED : REGISTRY_RETRY,
        .reason = QFS_SCAN_FAILURE_REGISTRY_FAILED,
        .status = s,
        .detail = s == QFS_PROTOCOL ? "the image's account or region cannot name a registry"
                                    : "the store did not accept the read",
        .error_code = "",
        .error_message = "",
        .delay_ms = registry_retry_delay_ms(false, count),
    };
    on_resolved(job, &o);
}

/* ---- start and stop --------------------------------------------------------------------------- */

static qfs_status registry_start(struct qfs_svc *svc)
{
    struct registry_svc_config *cfg = qfs_svc_config(svc);
    struct registry_state *st = qfs_xcalloc(1, sizeof(*st));
    qfs_svc_set_data(svc, st);
    st->svc = svc;
    uv_loop_t *loop = qfs_svc_loop(svc);
    qfs_status s = qfs_http_new(loop, NULL, &st->http);
    bool need_aws = (cfg->qualys.secret_arn && *cfg->qualys.secret_arn) || cfg->kv.backend == QFS_KV_DYNAMODB;
    struct qfs_aws_options ao = {0};
    if (s == QFS_OK && need_aws) s = qfs_aws_new(loop, st->http, &ao, &st->aws);
    if (s == QFS_OK) s = qfs_kv_new(loop, &cfg->kv, st->aws, &st->kv);
    struct qfs_qualys_options qo;
    qfs_qualys_options_from_config(&cfg->qualys, st->aws, &qo);
    if (s == QFS_OK) s = qfs_qualys_new(loop, st->http, &qo, &st->qualys);
    if (s != QFS_OK) return s;

    char host[128] = "";
    if (gethostname(host, sizeof(host)) != 0 || !host[0]) snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    char holder[160];
    snprintf(holder, sizeof(holder), "%s:%ld", host, (long)getpid());
    struct registry_config rc = {
        .role_name = cfg->role_name,
        .account_type = account_types[cfg->account_type],
        .holder = holder,
    };
    struct registry_store store = {st->kv, kv_get, kv_put, kv_put_if_absent, kv_del_if_value};
    struct registry_qualys qualys = {st->qualys,  q_find_registry, q_create_registry,
                                     q_list_connectors, q_aws_base, q_create_connector};
    struct qfs_metrics *m = qfs_svc_metrics(svc);
    static const char *const listed[] = {"scans_ready", "registry_failures", "registries_found",
                                         "registries_created", "connectors_created"};
    qfs_metrics_declare(m, listed, sizeof(listed) / sizeof(listed[0]));
    s = registry_new(&rc, &store, &qualys, &st->reg);
    if (s != QFS_OK) qfs_error("QFS_ECR_ROLE_NAME is not a usable IAM role name", "variable", "QFS_ECR_ROLE_NAME");
    return s;
}

/* Registries found and created, and every Qualys and HTTP count, from the clients' stats: a
 * registry found in Qualys is a find_registry call answered OK, one created a create_registry
 * call answered OK (registries known from the store make no call). */
static void registry_collect(struct qfs_svc *svc, struct qfs_metrics *m)
{
    struct registry_state *st = qfs_svc_data(svc);
    if (!st) return;
    qfs_metrics_read_http(m, st->http);
    if (!st->qualys) return;
    struct qfs_qualys_stats qs;
    qfs_metrics_read_qualys(m, st->qualys, &qs);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "registries_found"),
                                  qs.calls[QFS_QUALYS_CALL_FIND_REGISTRY][QFS_OK]);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "registries_created"),
                                  qs.calls[QFS_QUALYS_CALL_CREATE_REGISTRY][QFS_OK]);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "connectors_created"),
                                  qs.calls[QFS_QUALYS_CALL_CREATE_CONNECTOR][QFS_OK]);
}

static void on_kv_closed(void *arg)
{
    struct registry_state *st = arg;
    struct qfs_svc *svc = st->svc;
    void (*done)(struct qfs_svc *) = st->done;
    qfs_aws_free(st->aws);
    qfs_http_free(st->http);
    free(st);
    qfs_svc_set_data(svc, NULL);
    done(svc);
}

static void on_rules_closed(void *arg)
{
    struct registry_state *st = arg;
    st->reg = NULL;
    qfs_qualys_free(st->qualys);
    st->qualys = NULL;
    if (st->kv) qfs_kv_free(st->kv, on_kv_closed, st);
    else on_kv_closed(st);
}

static void registry_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    struct registry_state *st = qfs_svc_data(svc);
    if (!st) {
        done(svc);
        return;
    }
    st->done = done;
    /* The rules first (no outcome reaches a delivery the runtime has settled, and the locks of
     * abandoned lookups are released), then the clients, whose pending callbacks end the lookups. */
    if (st->reg) registry_close(st->reg, on_rules_closed, st);
    else on_rules_closed(st);
}

static const struct qfs_consumer_def registry_consumers[] = {
    {.durable = "registry-requests", .subject = QFS_SUBJECT_SCANS_REQUESTED, .handle = handle_request},
};

/* One Qualys credential source and a known gateway: checked with every variable read. */
static qfs_status registry_check_config(const void *config, FILE *err)
{
    const struct registry_svc_config *cfg = config;
    return qfs_qualys_config_check(&cfg->qualys, err);
}

const struct qfs_service_def registry_service = {
    .name = "registry",
    .summary = "finds or creates the Qualys registry of each image's ECR account and region",
    .config = registry_vars,
    .nconfig = sizeof(registry_vars) / sizeof(registry_vars[0]),
    .config_size = sizeof(struct registry_svc_config),
    .consumers = registry_consumers,
    .nconsumers = 1,
    .check_config = registry_check_config,
    .start = registry_start,
    .stop = registry_stop,
    .collect = registry_collect,
};
