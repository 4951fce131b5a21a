/* qfsctl status: services up or down, consumer lag, scans in flight and the DLQ. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/http.h"
#include "qfs/proto_dlq.h"
#include "qfsctl.h"

#define NS_PER_MS 1000000LL
/* Pull requests are looked for this many times, this far apart, before a consumer is judged. */
#define SAMPLES 6
#define SAMPLE_GAP_MS 200

static struct qfsctl_service_stat *service_of(struct qfsctl_status *st, const char *name, size_t len)
{
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++)
        if (strlen(st->services[i].name) == len && strncmp(st->services[i].name, name, len) == 0)
            return &st->services[i];
    return NULL;
}

/* Messages stored per subject under filter: fn(arg, subject, count) for each. */
static qfs_status subject_counts(struct qfsctl_ctx *c, const char *filter,
                                 void (*fn)(struct qfsctl_status *, const char *, uint64_t),
                                 struct qfsctl_status *st)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = filter;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, QFS_STREAM_NAME, &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return QFS_NOT_FOUND;
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl status: cannot read the stream: %s\n", natsStatus_GetText(s));
        return QFS_UNAVAILABLE;
    }
    if (si->State.Subjects)
        for (int i = 0; i < si->State.Subjects->Count; i++)
            fn(st, si->State.Subjects->List[i].Subject, si->State.Subjects->List[i].Msgs);
    jsStreamInfo_Destroy(si);
    return QFS_OK;
}

static void count_dlq(struct qfsctl_status *st, const char *subject, uint64_t n)
{
    struct qfs_subject_parts p;
    if (qfs_subject_parse(subject, &p) != QFS_OK || p.kind != QFS_SUBJECT_DLQ) return;
    st->dlq_total += n;
    struct qfsctl_service_stat *s = service_of(st, p.service, strlen(p.service));
    if (s) s->dlq += n;
    else st->dlq_other += n;
}

static void count_scans(struct qfsctl_status *st, const char *subject, uint64_t n)
{
    struct qfs_subject_parts p;
    if (qfs_subject_parse(subject, &p) != QFS_OK) return;
    if (p.kind == QFS_SUBJECT_SCANS_REQUESTED) st->requested += n;
    else if (p.kind == QFS_SUBJECT_SCANS_COMPLETED) st->completed += n;
    else if (p.kind == QFS_SUBJECT_SCANS_FAILED) st->failed += n;
}

static void fill_consumer(struct qfsctl_consumer_stat *k, const jsConsumerInfo *ci)
{
    k->pending = ci->NumPending;
    k->ack_pending = ci->NumAckPending;
    k->redelivered = ci->NumRedelivered;
    if (ci->NumWaiting > k->waiting) k->waiting = ci->NumWaiting;
    k->push_bound = ci->PushBound;
    k->max_ack_pending = ci->Config ? ci->Config->MaxAckPending : 0;
    k->last_active_ms = ci->Delivered.Last / NS_PER_MS;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct qfsctl_consumer_stat *)a)->name, ((const struct qfsctl_consumer_stat *)b)->name);
}

/* The durable consumers of the six services, found by name ("<service>-..."). */
static qfs_status read_consumers(struct qfsctl_ctx *c, struct qfsctl_status *st)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Consumers(&list, c->js, QFS_STREAM_NAME, NULL, &jerr);
    if (s == NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) return QFS_OK; /* none yet */
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl status: cannot list the consumers: %s\n", natsStatus_GetText(s));
        return QFS_UNAVAILABLE;
    }
    for (int i = 0; i < list->Count; i++) {
        const jsConsumerInfo *ci = list->List[i];
        const char *durable = ci->Config ? ci->Config->Durable : NULL;
        if (!durable) continue;
        const char *dash = NULL;
        struct qfsctl_service_stat *svc = NULL;
        /* The longest service name that prefixes it ("scanner-poller-ready"). */
        for (const char *p = strchr(durable, '-'); p; p = strchr(p + 1, '-')) {
            struct qfsctl_service_stat *m = service_of(st, durable, (size_t)(p - durable));
            if (m) {
                svc = m;
                dash = p;
            }
        }
        if (!svc || !dash || svc->nconsumers >= QFSCTL_MAX_CONSUMERS) continue;
        struct qfsctl_consumer_stat *k = &svc->consumers[svc->nconsumers++];
        memset(k, 0, sizeof(*k));
        snprintf(k->name, sizeof(k->name), "%s", durable);
        snprintf(k->filter, sizeof(k->filter), "%s", ci->Config->FilterSubject ? ci->Config->FilterSubject : "");
        fill_consumer(k, ci);
    }
    jsConsumerInfoList_Destroy(list);
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++)
        qsort(st->services[i].consumers, st->services[i].nconsumers, sizeof(st->services[i].consumers[0]),
              by_name);
    return QFS_OK;
}

static bool all_waiting(const struct qfsctl_status *st)
{
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++)
        for (size_t c = 0; c < st->services[i].nconsumers; c++)
            if (st->services[i].consumers[c].waiting <= 0) return false;
    return true;
}

static void note_stats(struct qfsctl_status *st, natsSubscription *stats)
{
    natsMsg *m = NULL;
    while (stats && natsSubscription_NextMsg(&m, stats, 0) == NATS_OK) {
        struct qfs_subject_parts p;
        if (qfs_subject_parse(natsMsg_GetSubject(m), &p) == QFS_OK && p.kind == QFS_SUBJECT_STATS) {
            struct qfsctl_service_stat *s = service_of(st, p.service, strlen(p.service));
            if (s) s->stats_seen_ms = qfs_now_ms();
        }
        natsMsg_Destroy(m);
    }
}

/* A fetching service keeps a pull request waiting almost all the time: look a few times. */
static void sample(struct qfsctl_ctx *c, struct qfsctl_status *st, natsSubscription *stats)
{
    for (int round = 1; round < SAMPLES && !all_waiting(st); round++) {
        nats_Sleep(SAMPLE_GAP_MS);
        note_stats(st, stats);
        for (size_t i = 0; i < QFSCTL_NSERVICES; i++) {
            struct qfsctl_service_stat *s = &st->services[i];
            for (size_t k = 0; k < s->nconsumers; k++) {
                if (s->consumers[k].waiting > 0) continue;
                jsConsumerInfo *ci = NULL;
                jsErrCode jerr = 0;
                if (js_GetConsumerInfo(&ci, c->js, QFS_STREAM_NAME, s->consumers[k].name, NULL, &jerr) == NATS_OK)
                    fill_consumer(&s->consumers[k], ci);
                if (ci) jsConsumerInfo_Destroy(ci);
            }
        }
    }
    note_stats(st, stats);
}

/* ---- connections, from nats-server's monitoring endpoint ------------------------------------ */

struct connz {
    struct qfsctl_status *st;
    bool done;
    bool ok;
};

static void on_connz(const struct qfs_http_response *r, void *arg)
{
    struct connz *z = arg;
    z->done = true;
    if (r->status != QFS_OK) {
        fprintf(stderr, "qfsctl status: QFS_NATS_MONITOR_URL did not answer (%s): connections unknown\n",
                r->error ? r->error : qfs_status_str(r->status));
        return;
    }
    cJSON *root = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *conns = cJSON_GetObjectItemCaseSensitive(root, "connections");
    if (!cJSON_IsArray(conns)) {
        fprintf(stderr, "qfsctl status: QFS_NATS_MONITOR_URL/connz is not nats-server's: connections unknown\n");
        cJSON_Delete(root);
        return;
    }
    z->ok = true;
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) z->st->services[i].connections = 0;
    const cJSON *conn;
    cJSON_ArrayForEach(conn, conns) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(conn, "name");
        if (!cJSON_IsString(name) || strncmp(name->valuestring, "qfs-", 4) != 0) continue;
        struct qfsctl_service_stat *s = service_of(z->st, name->valuestring + 4, strlen(name->valuestring + 4));
        if (s) s->connections++;
    }
    cJSON_Delete(root);
}

static void read_connections(struct qfsctl_ctx *c, struct qfsctl_status *st)
{
    const char *base = c->cfg.nats_monitor_url;
    if (!base || !*base) return;
    struct qfsctl_io io;
    if (qfsctl_io_open(&io, &c->cfg, 0) == QFS_OK) {
        char *url = qfs_xasprintf("%s%sconnz?limit=100000", base, base[strlen(base) - 1] == '/' ? "" : "/");
        struct connz z = {.st = st};
        struct qfs_http_request req = {.method = "GET", .url = url, .timeout_ms = 3000, .max_attempts = 2,
                                       .max_response = 64 * 1024 * 1024};
        if (qfs_http_request(io.http, &req, on_connz, &z) == QFS_OK) qfsctl_io_wait(&io, &z.done);
        else fprintf(stderr, "qfsctl status: QFS_NATS_MONITOR_URL is not an http(s) URL: connections unknown\n");
        free(url);
    }
    qfsctl_io_close(&io);
}

/* ---- the latest DLQ entry -------------------------------------------------------------------- */

static void read_last_error(struct qfsctl_ctx *c, struct qfsctl_status *st)
{
    int64_t newest = -1;
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) {
        if (!st->services[i].dlq) continue;
        char subject[QFS_SUBJECT_MAX];
        if (qfs_subject_dlq(subject, sizeof(subject), st->services[i].name) != QFS_OK) continue;
        natsMsg *raw = NULL;
        jsErrCode jerr = 0;
        if (js_GetLastMsg(&raw, c->js, QFS_STREAM_NAME, subject, NULL, &jerr) != NATS_OK) continue;
        struct qfsctl_msg m;
        qfsctl_msg_from(raw, &m);
        struct qfs_dlq_entry e;
        char err[128];
        if (m.time_ms > newest && qfs_dlq_entry_decode(m.data, m.len, &e, err, sizeof(err)) == QFS_OK) {
            newest = m.time_ms;
            st->has_last_error = true;
            st->last_error_seq = m.seq;
            snprintf(st->last_error_service, sizeof(st->last_error_service), "%s", e.service);
            qfs_format_time_ms(m.time_ms, st->last_error_time);
            size_t cut = qfs_utf8_cut(e.reason, sizeof(st->last_error_reason) - 1);
            snprintf(st->last_error_reason, sizeof(st->last_error_reason), "%.*s", (int)cut, e.reason);
            qfs_dlq_entry_cleanup(&e);
        }
        natsMsg_Destroy(raw);
    }
}

int qfsctl_cmd_status(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_status_opts o;
    char err[512];
    if (qfsctl_status_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("status", err);
    if (o.help) {
        fputs(qfsctl_usage("status"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    if (qfsctl_nats_open(c) != QFS_OK) return QFSCTL_EXIT_FAIL;

    struct qfsctl_status *st = qfs_xcalloc(1, sizeof(*st));
    qfsctl_status_init(st);
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) st->services[i].checked = o.check[i];
    natsSubscription *stats = NULL;
    char stats_filter[QFS_SUBJECT_MAX];
    snprintf(stats_filter, sizeof(stats_filter), "%s", qfs_subject_filter(QFS_SUBJECT_STATS));
    if (natsConnection_SubscribeSync(&stats, c->nc, stats_filter) != NATS_OK) stats = NULL;

    int rc = QFSCTL_EXIT_OK;
    qfs_status s = subject_counts(c, qfs_subject_filter(QFS_SUBJECT_DLQ), count_dlq, st);
    if (s == QFS_OK) {
        st->stream_found = true;
        const enum qfs_subject kinds[] = {QFS_SUBJECT_SCANS_REQUESTED, QFS_SUBJECT_SCANS_COMPLETED,
                                          QFS_SUBJECT_SCANS_FAILED};
        for (size_t i = 0; i < 3 && s == QFS_OK; i++)
            s = subject_counts(c, qfs_subject_filter(kinds[i]), count_scans, st);
    }
    if (s == QFS_OK) s = read_consumers(c, st);
    if (s == QFS_OK || s == QFS_NOT_FOUND) {
        if (s == QFS_OK) {
            sample(c, st, stats);
            read_last_error(c, st);
        }
        read_connections(c, st);
        int64_t now = qfs_now_ms();
        qfsctl_status_judge(st, now, o.idle_ms, o.strict);
        struct qfs_buf out;
        qfs_buf_init(&out, 0);
        if (o.json) qfsctl_status_json(st, &out);
        else qfsctl_status_render(st, now, &out);
        fwrite(out.data, 1, out.len, stdout);
        qfs_buf_cleanup(&out);
        rc = st->healthy ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
    } else {
        rc = QFSCTL_EXIT_FAIL;
    }
    if (stats) {
        natsSubscription_Unsubscribe(stats);
        natsSubscription_Destroy(stats);
    }
    free(st);
    return rc;
}
