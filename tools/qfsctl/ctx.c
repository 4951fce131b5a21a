/* What the commands share: configuration, the NATS connection, reading the stream, publishing with
 * a PubAck, and a libuv loop for the AWS, cache store and Qualys clients. */
#include <stdlib.h>
#include <string.h>

#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfsctl.h"

#define NS_PER_MS 1000000LL
/* A stored message not seen this long after the previous one means NATS is in trouble. */
#define READ_STALL_MS 10000
#define MAX_SERVERS 16

qfs_status qfsctl_load_config(struct qfsctl_ctx *c)
{
    if (c->cfg_loaded) return QFS_OK;
    if (qfs_config_load(qfsctl_config_vars, qfsctl_config_nvars, &c->cfg, stderr) != QFS_OK) {
        fprintf(stderr, "qfsctl: fix the variables above (qfsctl --help lists them, qfsctl config shows them)\n");
        qfs_config_cleanup(qfsctl_config_vars, qfsctl_config_nvars, &c->cfg);
        return QFS_PROTOCOL;
    }
    c->cfg_loaded = true;
    qfs_log_init("qfsctl", (enum qfs_log_level)c->cfg.log_level);
    return QFS_OK;
}

qfs_status qfsctl_nats_open(struct qfsctl_ctx *c)
{
    if (c->nc) return QFS_OK;
    char *urls = qfs_xstrdup(c->cfg.nats_url);
    const char *servers[MAX_SERVERS];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(urls, ",", &save); tok && n < MAX_SERVERS;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (*tok) servers[n++] = tok;
    }
    natsOptions *o = NULL;
    natsStatus s = n ? natsOptions_Create(&o) : NATS_INVALID_ARG;
    if (s == NATS_OK) s = natsOptions_SetServers(o, servers, n);
    if (s == NATS_OK) s = natsOptions_SetName(o, "qfsctl");
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 3000);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, 5);
    if (s == NATS_OK) s = natsConnection_Connect(&c->nc, o);
    if (s == NATS_OK) s = natsConnection_JetStream(&c->js, c->nc, NULL);
    natsOptions_Destroy(o);
    free(urls);
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl: cannot connect to NATS at %s (QFS_NATS_URL): %s; is nats-server running "
                        "and is the URL right?\n", c->cfg.nats_url, natsStatus_GetText(s));
        jsCtx_Destroy(c->js);
        natsConnection_Destroy(c->nc);
        c->js = NULL;
        c->nc = NULL;
        return QFS_UNAVAILABLE;
    }
    return QFS_OK;
}

void qfsctl_ctx_cleanup(struct qfsctl_ctx *c)
{
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
    c->js = NULL;
    c->nc = NULL;
    if (c->cfg_loaded) qfs_config_cleanup(qfsctl_config_vars, qfsctl_config_nvars, &c->cfg);
    c->cfg_loaded = false;
}

void qfsctl_msg_from(natsMsg *raw, struct qfsctl_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->subject = natsMsg_GetSubject(raw);
    m->data = natsMsg_GetData(raw);
    m->len = (size_t)natsMsg_GetDataLength(raw);
    if (!m->data) m->data = "";
    const char *trace = NULL;
    if (natsMsgHeader_Get(raw, QFS_HDR_TRACE_ID, &trace) == NATS_OK) m->trace_id = trace;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, raw) == NATS_OK) {
        m->seq = meta->Sequence.Stream;
        m->time_ms = meta->Timestamp / NS_PER_MS;
        jsMsgMetaData_Destroy(meta);
    } else {
        /* A message fetched by sequence (js_GetMsg) carries them directly. */
        m->seq = natsMsg_GetSequence(raw);
        m->time_ms = natsMsg_GetTime(raw) / NS_PER_MS;
    }
}

static qfs_status stream_last_seq(struct qfsctl_ctx *c, uint64_t *last)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, QFS_STREAM_NAME, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return QFS_NOT_FOUND;
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl: cannot read the stream %s: %s\n", QFS_STREAM_NAME, natsStatus_GetText(s));
        return QFS_UNAVAILABLE;
    }
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return QFS_OK;
}

qfs_status qfsctl_stream_read(struct qfsctl_ctx *c, const struct qfsctl_read *r, qfsctl_msg_fn fn, void *arg)
{
    uint64_t last = 0;
    qfs_status st = stream_last_seq(c, &last);
    if (st != QFS_OK || last == 0) return st;

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = QFS_STREAM_NAME;
    so.Ordered = true;
    if (r->since_ms > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartTime;
        so.Config.OptStartTime = (qfs_now_ms() - r->since_ms) * NS_PER_MS;
    } else if (r->start_seq > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = r->start_seq;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&sub, c->js, r->filter, NULL, &so, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl: cannot read %s from the stream: %s (%s)\n", r->filter, natsStatus_GetText(s),
                nats_GetLastError(NULL));
        return QFS_UNAVAILABLE;
    }
    /* What the consumer holds: still pending, plus what it may already have pushed to us. */
    jsConsumerInfo *ci = NULL;
    s = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);
    bool any = s != NATS_OK || ci->NumPending + ci->Delivered.Consumer > 0;
    if (ci) jsConsumerInfo_Destroy(ci);
    st = QFS_OK;
    while (any) {
        natsMsg *raw = NULL;
        s = natsSubscription_NextMsg(&raw, sub, READ_STALL_MS);
        if (s != NATS_OK) {
            fprintf(stderr, "qfsctl: reading %s stopped: %s\n", r->filter, natsStatus_GetText(s));
            st = s == NATS_TIMEOUT ? QFS_TIMED_OUT : QFS_UNAVAILABLE;
            break;
        }
        struct qfsctl_msg m;
        qfsctl_msg_from(raw, &m);
        jsMsgMetaData *meta = NULL;
        uint64_t pending = 0;
        if (natsMsg_GetMetaData(&meta, raw) == NATS_OK) {
            pending = meta->NumPending;
            jsMsgMetaData_Destroy(meta);
        }
        bool go_on = m.seq <= last && fn(arg, raw, &m);
        natsMsg_Destroy(raw);
        if (!go_on || pending == 0 || m.seq >= last) break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return st;
}

qfs_status qfsctl_publish(struct qfsctl_ctx *c, const char *subject, const char *data, size_t len,
                          const char *msg_id, const char *trace_id, const char *schema, uint64_t *seq,
                          bool *duplicate)
{
    natsMsg *msg = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (s == NATS_OK && msg_id) s = natsMsgHeader_Set(msg, QFS_HDR_MSG_ID, msg_id);
    if (s == NATS_OK && trace_id) s = natsMsgHeader_Set(msg, QFS_HDR_TRACE_ID, trace_id);
    if (s == NATS_OK && schema) s = natsMsgHeader_Set(msg, QFS_HDR_SCHEMA, schema);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    po.ExpectStream = QFS_STREAM_NAME;
    if (s == NATS_OK) s = js_PublishMsg(&pa, c->js, msg, &po, &jerr);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl: publishing to %s failed: %s%s%s\n", subject, natsStatus_GetText(s),
                jerr == JSStreamNotFoundErr ? " (the stream QFS does not exist: start a service first)" : "",
                s == NATS_NO_RESPONDERS ? " (no stream stores this subject)" : "");
        return s == NATS_TIMEOUT ? QFS_TIMED_OUT : QFS_UNAVAILABLE;
    }
    if (seq) *seq = pa->Sequence;
    if (duplicate) *duplicate = pa->Duplicate;
    jsPubAck_Destroy(pa);
    return QFS_OK;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

qfs_status qfsctl_io_open(struct qfsctl_io *io, const struct qfsctl_config *cfg, unsigned what)
{
    memset(io, 0, sizeof(*io));
    if (uv_loop_init(&io->loop) != 0) return QFS_INTERNAL;
    io->loop_ok = true;
    qfs_status s = qfs_http_new(&io->loop, NULL, &io->http);
    bool need_aws = (what & QFSCTL_IO_AWS) ||
                    ((what & QFSCTL_IO_KV) && cfg->kv.backend == QFS_KV_DYNAMODB) ||
                    ((what & QFSCTL_IO_QUALYS) && cfg->qualys.secret_arn && *cfg->qualys.secret_arn);
    if (s == QFS_OK && (what & QFSCTL_IO_QUALYS) && qfs_qualys_config_check(&cfg->qualys, stderr) != QFS_OK)
        s = QFS_PROTOCOL;
    if (s == QFS_OK && need_aws) {
        struct qfs_aws_options ao = {0};
        s = qfs_aws_new(&io->loop, io->http, &ao, &io->aws);
        if (s == QFS_NOT_FOUND)
            fprintf(stderr, "qfsctl: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                            "(or run where the container credentials endpoint is)\n");
        else if (s != QFS_OK)
            fprintf(stderr, "qfsctl: the AWS settings cannot be used (AWS_REGION, AWS_ENDPOINT_URL*): %s\n",
                    qfs_status_str(s));
        if (s != QFS_OK) s = QFS_PROTOCOL;
    }
    if (s == QFS_OK && (what & QFSCTL_IO_KV)) {
        s = qfs_kv_new(&io->loop, &cfg->kv, io->aws, &io->kv);
        if (s != QFS_OK) {
            fprintf(stderr, "qfsctl: the cache store settings cannot be used (QFS_CACHE_BACKEND, QFS_REDIS_URL, "
                            "QFS_CACHE_TABLE)\n");
            s = QFS_PROTOCOL;
        }
    }
    if (s == QFS_OK && (what & QFSCTL_IO_QUALYS)) {
        struct qfs_qualys_options qo;
        qfs_qualys_options_from_config(&cfg->qualys, io->aws, &qo);
        qo.max_attempts = 3;
        s = qfs_qualys_new(&io->loop, io->http, &qo, &io->qualys);
        if (s != QFS_OK) {
            fprintf(stderr, "qfsctl: the Qualys settings cannot be used (QUALYS_*)\n");
            s = QFS_PROTOCOL;
        }
    }
    return s;
}

void qfsctl_io_wait(struct qfsctl_io *io, const bool *done)
{
    /* Returning unfinished means nothing was left that could finish the work: a bug, not
     * something to wait for. (The clients' own timeouts bound every call.) */
    if (!qfs_loop_run_until_flag(&io->loop, done, -1))
        fprintf(stderr, "qfsctl: internal error: the call ended without an answer\n");
}

void qfsctl_io_close(struct qfsctl_io *io)
{
    if (!io->loop_ok) return;
    qfs_qualys_free(io->qualys);
    qfs_kv_free(io->kv, NULL, NULL);
    qfs_aws_free(io->aws);
    qfs_http_free(io->http);
    io->qualys = NULL;
    io->kv = NULL;
    io->aws = NULL;
    io->http = NULL;
    uv_run(&io->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&io->loop) != 0) fprintf(stderr, "qfsctl: internal error: handles left open\n");
    io->loop_ok = false;
}

int qfsctl_usage_error(const char *cmd, const char *message)
{
    fprintf(stderr, "qfsctl %s: %s\n", cmd, message);
    return QFSCTL_EXIT_USAGE;
}
