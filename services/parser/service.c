/* qfs-parser as a service: configuration, the qfs.events.> handler and --explain. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"
#include "qfs/aws.h"
#include "qfs/aws_sts.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/proto_dlq.h"
#include "qfs/service.h"
#include "qfs/util.h"

#define EXPLAIN_MAX_BYTES (64 * 1024 * 1024)

struct parser_config {
    char *describe_role;
    char *hub_account;
    int64_t taskdef_ttl_s;
    struct qfs_kv_config kv;
};

#define PC(f) QFS_CFG_FIELD(struct parser_config, f)
static const struct qfs_config_var parser_vars[] = {
    QFS_KV_CONFIG_VARS(struct parser_config, kv),
    {"QFS_ECS_DESCRIBE_ROLE_NAME", QFS_CFG_STRING, "QfsEcsDescribeRole", 0, 0,
     "Role the parser assumes in member accounts for ECS DescribeTaskDefinition and ECR "
     "DescribeImages.", false, false, PC(describe_role), NULL},
    {"QFS_HUB_ACCOUNT_ID", QFS_CFG_STRING, NULL, 0, 0,
     "The account qfs runs in: its lookups use the task role itself; unset, every account's role "
     "is assumed.", false, false, PC(hub_account), NULL},
    {"QFS_TASKDEF_CACHE_TTL_SECONDS", QFS_CFG_INT, "604800", 60, 31536000,
     "How long the images of a registered task definition are remembered.", false, false,
     PC(taskdef_ttl_s), NULL},
};

/* Clients of the running service (or of --explain). */
struct parser_state {
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct qfs_aws_sts *sts;
    struct qfs_kv *kv;
    struct parser_digests *digests;
    struct parser_deps deps;
};

static qfs_status state_open(struct qfs_svc *svc, struct parser_state *st, bool need_aws, bool with_cache)
{
    struct parser_config *cfg = qfs_svc_config(svc);
    memset(st, 0, sizeof(*st));
    if (cfg->hub_account && !qfs_proto_is_account(cfg->hub_account)) {
        qfs_error("QFS_HUB_ACCOUNT_ID must be 12 digits");
        return QFS_INVALID_ARG;
    }
    st->deps.role_name = cfg->describe_role;
    st->deps.hub_account = cfg->hub_account;
    st->deps.taskdef_ttl_s = cfg->taskdef_ttl_s;
    if (!need_aws) return QFS_OK;
    qfs_status s = qfs_http_new(qfs_svc_loop(svc), NULL, &st->http);
    struct qfs_aws_options ao = {0};
    if (s == QFS_OK) s = qfs_aws_new(qfs_svc_loop(svc), st->http, &ao, &st->aws);
    struct qfs_aws_sts_options so = {.session_name = "qfs-parser"};
    if (s == QFS_OK) s = qfs_aws_sts_new(qfs_svc_loop(svc), st->aws, &so, &st->sts);
    /* The task definition cache is the service's; --explain asks ECS every time. */
    if (s == QFS_OK && with_cache) s = qfs_kv_new(qfs_svc_loop(svc), &cfg->kv, st->aws, &st->kv);
    st->digests = parser_digests_new(PARSER_DIGESTS_MAX, PARSER_DIGESTS_MAX_AGE_MS);
    st->deps.aws = st->aws;
    st->deps.sts = st->sts;
    st->deps.kv = st->kv;
    st->deps.digests = st->digests;
    return s;
}

static void state_close(struct parser_state *st)
{
    qfs_kv_free(st->kv, NULL, NULL);
    qfs_aws_sts_free(st->sts);
    qfs_aws_free(st->aws);
    qfs_http_free(st->http);
    /* Last: the lookups cancelled above end their flights. */
    parser_digests_free(st->digests);
    memset(st, 0, sizeof(*st));
}

/* ---- the service ------------------------------------------------------------------------------ */

/* One event being resolved. */
struct job {
    struct qfs_svc *svc;
    struct qfs_delivery *d;
};

/* Counts what the parser made of one event: the event, its image records, its skips by reason. */
static void count_parsed(struct qfs_svc *svc, const struct parser_plan *plan, size_t nimages)
{
    struct qfs_metrics *m = qfs_svc_metrics(svc);
    qfs_metrics_count(m, "events", 1);
    qfs_metrics_count(m, "images", nimages);
    for (size_t i = 0; i < plan->nskips; i++) {
        char name[QFS_METRICS_NAME_MAX];
        snprintf(name, sizeof(name), "skips.%s", qfs_skip_reason_str(plan->skips[i].reason));
        qfs_metrics_count(m, name, 1);
    }
}

/* An event's outputs, held while its skips are listed for the notifier. */
struct listing {
    struct qfs_delivery *d;
    struct qfs_outbox ob;
    size_t pending;
    qfs_status failed; /* the first failed append, QFS_OK when none */
    char key[QFS_KV_MAX_KEY];
};

static void listing_done(struct listing *l)
{
    if (l->failed != QFS_OK && qfs_delivery_count(l->d) < 3) {
        char why[128];
        snprintf(why, sizeof(why), "cache store: listing the deploy's skips: %s", qfs_status_str(l->failed));
        qfs_outbox_cleanup(&l->ob);
        qfs_delivery_retry(l->d, 2000, l->failed, why);
    } else {
        /* After a few tries the images go out anyway: a notification then just cannot name the
         * deploy's images that were not scanned. */
        if (l->failed != QFS_OK)
            qfs_warn("the deploy's skips are not listed; its notifications will not name them", "key",
                     l->key, "status", qfs_status_str(l->failed));
        qfs_delivery_finish(l->d, &l->ob, 2000);
    }
    free(l);
}

static void on_listed(const struct qfs_kv_result *r, void *arg)
{
    struct listing *l = arg;
    if (r->status != QFS_OK && l->failed == QFS_OK) l->failed = r->status;
    if (r->status == QFS_OK && r->dropped) qfs_info("skip list full; a skip is not listed", "key", l->key);
    if (--l->pending == 0) listing_done(l);
}

/* Appends the event's skips to skips:<event id> before its image records go out, so the
 * notification of any of its images finds them; then publishes the outputs. */
static void list_skips(struct parser_state *st, const struct parser_plan *plan, struct listing *l)
{
    qfs_deploy_skips_key(plan->deploy.event_id, l->key, sizeof(l->key));
    l->pending = 1; /* held while the appends start */
    for (size_t i = 0; i < plan->nskips && st->kv; i++) {
        if (!qfs_deploy_skip_is_kept(&plan->skips[i])) continue;
        char *json = NULL;
        if (qfs_deploy_skip_entry(&plan->skips[i], &json) != QFS_OK) continue; /* logged by the codec */
        l->pending++;
        if (qfs_kv_append(st->kv, l->key, json, strlen(json), QFS_DEPLOY_SKIPS_TTL_S, QFS_DEPLOY_SKIPS_MAX,
                          on_listed, l) != QFS_OK) {
            l->pending--;
            if (l->failed == QFS_OK) l->failed = QFS_UNAVAILABLE;
        }
        free(json);
    }
    if (--l->pending == 0) listing_done(l);
}

static void on_resolved(void *arg, qfs_status st, const char *reason, struct parser_plan *plan,
                        struct parser_image *images, size_t n)
{
    struct job *job = arg;
    struct qfs_svc *svc = job->svc;
    struct qfs_delivery *d = job->d;
    free(job);
    if (st != QFS_OK) {
        /* Back off 2 s, 4 s, ... up to a minute: a throttled or unavailable AWS recovers. */
        uint64_t count = qfs_delivery_count(d);
        int64_t delay = 2000LL << (count < 5 ? count - 1 : 5);
        qfs_delivery_retry(d, delay > 60000 ? 60000 : delay, st, reason);
        return;
    }
    struct listing *l = qfs_xcalloc(1, sizeof(*l));
    l->d = d;
    qfs_outbox_init(&l->ob);
    if (parser_build(plan, images, n, &l->ob) != QFS_OK) {
        qfs_outbox_cleanup(&l->ob);
        free(l);
        qfs_delivery_dead_letter(d, QFS_INTERNAL, "the parser could not encode its outputs");
        return;
    }
    char nimg[24], nskip[24];
    snprintf(nimg, sizeof(nimg), "%zu", n);
    snprintf(nskip, sizeof(nskip), "%zu", plan->nskips);
    count_parsed(svc, plan, n);
    qfs_info("parsed", "trace_id", plan->deploy.event_id, "event", plan->deploy.event_name, "images",
             nimg, "skips", nskip);
    list_skips(qfs_svc_data(svc), plan, l);
}

static void handle_event(void *ctx, struct qfs_delivery *d)
{
    struct qfs_svc *svc = ctx;
    struct parser_state *st = qfs_svc_data(svc);
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    struct qfs_event ev;
    char err[256];
    if (qfs_event_decode(data, len, &ev, err, sizeof(err)) != QFS_OK) {
        qfs_delivery_dead_letter(d, QFS_PROTOCOL, err);
        return;
    }
    struct parser_plan plan;
    parser_plan(&ev, &plan);
    plan.stored_ms = qfs_delivery_stored_ms(d);
    qfs_event_cleanup(&ev);
    struct job *job = qfs_xcalloc(1, sizeof(*job));
    job->svc = svc;
    job->d = d;
    /* After a few tries, publish what is known rather than hold the deploy back on ECR. */
    parser_resolve(&st->deps, &plan, qfs_delivery_count(d) < 3, NULL, on_resolved, job);
}

static qfs_status parser_start(struct qfs_svc *svc)
{
    struct parser_state *st = qfs_xcalloc(1, sizeof(*st));
    qfs_status s = state_open(svc, st, true, true);
    qfs_svc_set_data(svc, st);
    /* Listed (as 0) from the first metrics line on. */
    static const char *const listed[] = {"events", "images"};
    qfs_metrics_declare(qfs_svc_metrics(svc), listed, sizeof(listed) / sizeof(listed[0]));
    return s;
}

static void parser_collect(struct qfs_svc *svc, struct qfs_metrics *m)
{
    struct parser_state *st = qfs_svc_data(svc);
    if (!st || !st->http) return;
    qfs_metrics_read_http(m, st->http);
    struct parser_digest_stats ds;
    parser_digests_stats(st->digests, &ds);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "ecr_tag_lookups"), ds.lookups);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "ecr_tag_answers_shared"), ds.reused);
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, "ecr_tag_lookups_waited"), ds.queued);
}

static void parser_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    struct parser_state *st = qfs_svc_data(svc);
    if (st) state_close(st);
    free(st);
    qfs_svc_set_data(svc, NULL);
    done(svc);
}

/* ---- --explain -------------------------------------------------------------------------------- */

struct explain {
    struct parser_state st;
    struct qfs_event_text *inputs;
    size_t next, count;
    FILE *out;
    bool pumping;  /* explain_pump is on the stack */
    bool resolved; /* the input in hand has been printed */
};

static void explain_pump(struct explain *x);

static void print_dlq(FILE *out, const char *payload, size_t len, const char *reason)
{
    struct qfs_dlq_entry e;
    memset(&e, 0, sizeof(e));
    char ts[32];
    qfs_format_time_ms(qfs_now_ms(), ts);
    snprintf(e.service, sizeof(e.service), "parser");
    e.reason = (char *)reason;
    e.status = QFS_PROTOCOL;
    e.payload = (char *)payload;
    e.payload_len = len;
    e.delivery_count = 1;
    e.time = ts;
    char *json = NULL;
    char subject[QFS_SUBJECT_MAX];
    if (qfs_dlq_entry_encode(&e, &json) != QFS_OK ||
        qfs_subject_dlq(subject, sizeof(subject), "parser") != QFS_OK) {
        free(json);
        fprintf(out, "{\"error\":\"cannot encode the DLQ entry\"}\n");
        return;
    }
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "subject", subject);
    cJSON_AddItemToObject(line, "message", cJSON_Parse(json));
    char *text = cJSON_PrintUnformatted(line);
    fprintf(out, "%s\n", text);
    free(text);
    free(json);
    cJSON_Delete(line);
}

static void explain_needs_lookup(void *arg, const char *arn)
{
    struct explain *x = arg;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "needs_lookup", arn);
    char *text = cJSON_PrintUnformatted(line);
    fprintf(x->out, "%s\n", text);
    free(text);
    cJSON_Delete(line);
}

static void explain_resolved(void *arg, qfs_status st, const char *reason, struct parser_plan *plan,
                             struct parser_image *images, size_t n)
{
    struct explain *x = arg;
    if (st != QFS_OK) {
        fprintf(x->out, "{\"retry\":\"%s\"}\n", qfs_status_str(st));
        qfs_warn("the service would retry this event", "reason", reason);
    } else {
        struct qfs_outbox ob;
        qfs_outbox_init(&ob);
        if (parser_build(plan, images, n, &ob) == QFS_OK) parser_print_outbox(&ob, x->out);
        else fprintf(x->out, "{\"error\":\"cannot encode the outputs\"}\n");
        qfs_outbox_cleanup(&ob);
    }
    x->resolved = true;
    if (!x->pumping) explain_pump(x);
}

/* Explains the inputs one after the other. A lookup that answers later calls back into this; one
 * answered at once returns to the loop here, so a log of thousands of records never recurses. */
static void explain_pump(struct explain *x)
{
    x->pumping = true;
    while (x->next < x->count) {
        const struct qfs_event_text *in = &x->inputs[x->next++];
        struct qfs_event ev;
        char err[256];
        if (qfs_event_decode(in->text, in->len, &ev, err, sizeof(err)) != QFS_OK) {
            print_dlq(x->out, in->text, in->len, err);
            continue;
        }
        struct parser_plan plan;
        parser_plan(&ev, &plan);
        qfs_event_cleanup(&ev);
        x->resolved = false;
        parser_resolve(&x->st.deps, &plan, false, explain_needs_lookup, explain_resolved, x);
        if (!x->resolved) {
            x->pumping = false; /* explain_resolved goes on when the lookups answer */
            return;
        }
    }
    x->pumping = false;
    qfs_event_texts_free(x->inputs, x->count);
    x->inputs = NULL;
    x->count = x->next = 0;
    state_close(&x->st);
}

static bool aws_configured(void)
{
    const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL};
    for (size_t i = 0; vars[i]; i++)
        if (getenv(vars[i]) && *getenv(vars[i])) return true;
    return false;
}

static int parser_command(struct qfs_svc *svc, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--explain") != 0) return -1;
    const char *path = argc > 2 ? argv[2] : "-";
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "qfs-parser: cannot read %s\n", path);
        return 1;
    }
    struct qfs_buf in;
    qfs_buf_init(&in, EXPLAIN_MAX_BYTES);
    char chunk[65536];
    size_t n;
    bool too_big = false;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (qfs_buf_append(&in, chunk, n) != QFS_OK) too_big = true;
    bool failed = ferror(f);
    if (f != stdin) fclose(f);
    if (failed || too_big) {
        fprintf(stderr, "qfs-parser: cannot read %s%s\n", path, too_big ? " (over 64 MiB)" : "");
        qfs_buf_cleanup(&in);
        return 1;
    }
    static struct explain x;
    memset(&x, 0, sizeof(x));
    x.out = stdout;
    if (state_open(svc, &x.st, aws_configured(), false) != QFS_OK) {
        qfs_buf_cleanup(&in);
        state_close(&x.st);
        return 1;
    }
    qfs_status split = qfs_event_texts(in.data ? in.data : "", in.len, SIZE_MAX, &x.inputs, &x.count);
    qfs_buf_cleanup(&in);
    if (split != QFS_OK) {
        state_close(&x.st);
        return 1;
    }
    explain_pump(&x);
    /* The runtime runs the loop until the lookups end; the inputs go with the process. */
    return 0;
}

static const struct qfs_consumer_def parser_consumers[] = {
    {.durable = "parser-events", .subject = QFS_SUBJECT_EVENTS, .handle = handle_event},
};

const struct qfs_service_def parser_service = {
    .name = "parser",
    .summary = "turns ECS deploy events into image records and skip records",
    .config = parser_vars,
    .nconfig = sizeof(parser_vars) / sizeof(parser_vars[0]),
    .config_size = sizeof(struct parser_config),
    .consumers = parser_consumers,
    .nconsumers = 1,
    .start = parser_start,
    .stop = parser_stop,
    .collect = parser_collect,
    .command = parser_command,
    .usage = "       qfs-parser --explain [FILE|-]\n"
             "           print the messages one event (EventBridge event, SQS message or\n"
             "           ReceiveMessage response, or CloudTrail log file) would produce\n",
};
