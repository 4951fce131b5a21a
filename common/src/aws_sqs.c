/* SQS over the JSON protocol (aws-wire.md §2.1): pure encoders and decoders plus call wrappers. */
#include "qfs/aws_sqs.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define MAX_ID 128
#define MAX_RECEIPT 8192
#define MAX_MD5 64
#define MAX_URL 2048
#define MAX_CODE 256
#define MAX_MESSAGE 4096
#define MAX_SYSTEM_ATTRIBUTES 16
#define RECEIVE_RESPONSE_CAP (16 * 1024 * 1024) /* 10 bodies of 1 MiB, escaped */
#define REQUEST_CAP (QFS_SQS_MAX_BODY * 6 + 64 * 1024)

static const char *region_of(struct qfs_aws *aws, const char *queue_url, char *buf, size_t n)
{
    /* https://sqs.<region>.amazonaws.com[.cn]/<account>/<name> */
    const char *h = strstr(queue_url, "://");
    if (h && strncmp(h + 3, "sqs.", 4) == 0) {
        const char *r = h + 7;
        size_t len = strcspn(r, ".");
        if (len < n && strncmp(r + len, ".amazonaws.com", 14) == 0) {
            snprintf(buf, n, "%.*s", (int)len, r);
            if (qfs_aws_region_is_valid(buf)) return buf;
        }
    }
    return qfs_aws_region(aws);
}

/* Sends the encoded request b as target (the JSON 1.0 protocol) to the region of queue_url.
 * timeout_ms and max_response: 0 for the client's defaults. */
static qfs_status sqs_call(struct qfs_aws *aws, const char *queue_url, const char *target,
                           const struct qfs_buf *b, unsigned timeout_ms, size_t max_response,
                           qfs_aws_done_fn done, void *arg)
{
    char region[40];
    struct qfs_aws_call c = {
        .service = QFS_AWS_SQS,
        .region = region_of(aws, queue_url, region, sizeof(region)),
        .protocol = QFS_AWS_JSON_1_0,
        .target = target,
        .body = b->data,
        .body_len = b->len,
        .timeout_ms = timeout_ms,
        .max_response = max_response,
    };
    return qfs_aws_call(aws, &c, done, arg);
}

static bool url_ok(const char *url)
{
    return url && *url && strlen(url) <= MAX_URL && qfs_utf8_is_valid(url, strlen(url));
}

/* Reads a string member that must be present. */
static qfs_status need_string(const cJSON *o, const char *key, size_t max, char **out)
{
    qfs_status st = qfs_aws_json_string(o, key, max, out);
    return st == QFS_NOT_FOUND ? QFS_PROTOCOL : st;
}

/* Reads an optional string member holding a decimal number (SQS attributes are strings). */
static qfs_status attr_number(const cJSON *attrs, const char *key, int64_t *out)
{
    *out = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(attrs, key);
    if (!v) return QFS_OK;
    if (!cJSON_IsString(v) || !v->valuestring || !*v->valuestring || strlen(v->valuestring) > 18)
        return QFS_PROTOCOL;
    int64_t n = 0;
    for (const char *p = v->valuestring; *p; p++) {
        if (*p < '0' || *p > '9') return QFS_PROTOCOL;
        n = n * 10 + (*p - '0');
    }
    *out = n;
    return QFS_OK;
}

/* ---- ReceiveMessage ---- */

qfs_status qfs_sqs_receive_encode(const struct qfs_sqs_receive_params *p, struct qfs_buf *out)
{
    if (!p || !url_ok(p->queue_url) || p->max_messages < 1 || p->max_messages > 10 ||
        p->wait_seconds > 20 || p->visibility_timeout < -1 || p->visibility_timeout > 43200)
        return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "QueueUrl", p->queue_url);
    if (st == QFS_OK)
        st = qfs_buf_printf(out, ",\"MaxNumberOfMessages\":%u,\"WaitTimeSeconds\":%u",
                            p->max_messages, p->wait_seconds);
    if (st == QFS_OK && p->visibility_timeout >= 0)
        st = qfs_buf_printf(out, ",\"VisibilityTimeout\":%d", p->visibility_timeout);
    if (st == QFS_OK && p->system_attributes && p->system_attributes[0]) {
        st = qfs_buf_puts(out, ",\"MessageSystemAttributeNames\":[");
        for (size_t i = 0; st == QFS_OK && p->system_attributes[i]; i++) {
            if (i >= MAX_SYSTEM_ATTRIBUTES) st = QFS_INVALID_ARG;
            if (st == QFS_OK && i) st = qfs_buf_puts(out, ",");
            if (st == QFS_OK && !qfs_utf8_is_valid(p->system_attributes[i], strlen(p->system_attributes[i])))
                st = QFS_INVALID_ARG;
            if (st == QFS_OK)
                st = qfs_buf_json_string(out, p->system_attributes[i], strlen(p->system_attributes[i]));
        }
        if (st == QFS_OK) st = qfs_buf_puts(out, "]");
    }
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    return st;
}

void qfs_sqs_messages_cleanup(struct qfs_sqs_messages *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->items[i].message_id);
        free(m->items[i].receipt_handle);
        free(m->items[i].md5_of_body);
        free(m->items[i].body);
    }
    free(m->items);
    m->items = NULL;
    m->count = 0;
}

static qfs_status decode_message(const cJSON *o, struct qfs_sqs_message *m)
{
    if (!cJSON_IsObject(o)) return QFS_PROTOCOL;
    qfs_status st = need_string(o, "MessageId", MAX_ID, &m->message_id);
    if (st == QFS_OK) st = need_string(o, "ReceiptHandle", MAX_RECEIPT, &m->receipt_handle);
    if (st == QFS_OK) st = need_string(o, "Body", QFS_SQS_MAX_BODY, &m->body);
    if (st == QFS_OK) m->body_len = strlen(m->body);
    if (st == QFS_OK) {
        st = qfs_aws_json_string(o, "MD5OfBody", MAX_MD5, &m->md5_of_body);
        if (st == QFS_NOT_FOUND) {
            m->md5_of_body = qfs_xstrdup("");
            st = QFS_OK;
        }
    }
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(o, "Attributes");
    if (st == QFS_OK && attrs && !cJSON_IsObject(attrs)) st = QFS_PROTOCOL;
    int64_t count = 0;
    if (st == QFS_OK && attrs) st = attr_number(attrs, "ApproximateReceiveCount", &count);
    if (st == QFS_OK && attrs) st = attr_number(attrs, "SentTimestamp", &m->sent_timestamp_ms);
    if (st == QFS_OK) m->receive_count = count > 1000000000 ? 1000000000u : (unsigned)count;
    return st;
}

qfs_status qfs_sqs_receive_decode(const char *body, size_t len, struct qfs_sqs_messages *out)
{
    out->items = NULL;
    out->count = 0;
    qfs_status st = QFS_OK;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        st = QFS_PROTOCOL;
        goto out;
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "Messages");
    if (!msgs || cJSON_IsNull(msgs)) goto out;
    if (!cJSON_IsArray(msgs)) {
        st = QFS_PROTOCOL;
        goto out;
    }
    int n = cJSON_GetArraySize(msgs);
    if (n > QFS_SQS_MAX_BATCH) {
        st = QFS_PROTOCOL;
        goto out;
    }
    out->items = qfs_xcalloc((size_t)(n ? n : 1), sizeof(*out->items));
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        st = decode_message(m, &out->items[out->count++]);
        if (st != QFS_OK) break;
    }
out:
    cJSON_Delete(root);
    return st;
}

struct receive_ctx {
    qfs_sqs_receive_fn cb;
    void *arg;
};

static void on_received(const struct qfs_aws_response *r, void *arg)
{
    struct receive_ctx *x = arg;
    struct qfs_sqs_messages m = {0};
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK) {
        r = qfs_aws_response_decoded(r, qfs_sqs_receive_decode(r->body, r->body_len, &m),
                                     "ReceiveMessage", &scratch);
    }
    x->cb(r, r->status == QFS_OK ? &m : NULL, x->arg);
    qfs_sqs_messages_cleanup(&m);
    free(x);
}

qfs_status qfs_sqs_receive(struct qfs_aws *aws, const struct qfs_sqs_receive_params *p,
                           qfs_sqs_receive_fn cb, void *arg)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 64 * 1024);
    qfs_status st = qfs_sqs_receive_encode(p, &b);
    struct receive_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    st = sqs_call(aws, p->queue_url, "AmazonSQS.ReceiveMessage", &b,
                  (p->wait_seconds + 10) * 1000 /* above the long poll */, RECEIVE_RESPONSE_CAP,
                  on_received, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}

/* ---- DeleteMessageBatch ---- */

static bool batch_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 1 || n > 80) return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

qfs_status qfs_sqs_delete_batch_encode(const char *queue_url, const struct qfs_sqs_delete_entry *e,
                                       size_t n, struct qfs_buf *out)
{
    if (!url_ok(queue_url) || !e || n < 1 || n > QFS_SQS_MAX_BATCH) return QFS_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        if (!batch_id_ok(e[i].id) || !e[i].receipt_handle || !*e[i].receipt_handle) return QFS_INVALID_ARG;
        for (size_t j = 0; j < i; j++)
            if (strcmp(e[i].id, e[j].id) == 0) return QFS_INVALID_ARG;
    }
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "QueueUrl", queue_url);
    if (st == QFS_OK) st = qfs_buf_puts(out, ",\"Entries\":[");
    for (size_t i = 0; st == QFS_OK && i < n; i++) {
        st = qfs_buf_puts(out, i ? ",{" : "{");
        if (st == QFS_OK) st = qfs_aws_json_put(out, "Id", e[i].id);
        if (st == QFS_OK) st = qfs_buf_puts(out, ",");
        if (st == QFS_OK) st = qfs_aws_json_put(out, "ReceiptHandle", e[i].receipt_handle);
        if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    }
    if (st == QFS_OK) st = qfs_buf_puts(out, "]}");
    return st;
}

void qfs_sqs_batch_result_cleanup(struct qfs_sqs_batch_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nsuccessful; i++) free(r->successful[i]);
    for (size_t i = 0; i < r->nfailed; i++) {
        free(r->failed[i].id);
        free(r->failed[i].code);
        free(r->failed[i].message);
    }
    free(r->successful);
    free(r->failed);
    memset(r, 0, sizeof(*r));
}

/* Checks an optional array member and returns its size, or -1 when it is malformed or too long. */
static int bounded_array(const cJSON *root, const char *key, const cJSON **arr)
{
    *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!*arr || cJSON_IsNull(*arr)) {
        *arr = NULL;
        return 0;
    }
    if (!cJSON_IsArray(*arr)) return -1;
    int n = cJSON_GetArraySize(*arr);
    return n > QFS_SQS_MAX_BATCH ? -1 : n;
}

qfs_status qfs_sqs_batch_decode(const char *body, size_t len, struct qfs_sqs_batch_result *out)
{
    memset(out, 0, sizeof(*out));
    qfs_status st = QFS_OK;
    const cJSON *ok, *failed, *it;
    cJSON *root = cJSON_ParseWithLength(body, len);
    int nok = -1, nfailed = -1;
    if (cJSON_IsObject(root)) {
        nok = bounded_array(root, "Successful", &ok);
        nfailed = bounded_array(root, "Failed", &failed);
    }
    if (nok < 0 || nfailed < 0) {
        st = QFS_PROTOCOL;
        goto out;
    }
    out->successful = qfs_xcalloc((size_t)nok + 1, sizeof(char *));
    out->failed = qfs_xcalloc((size_t)nfailed + 1, sizeof(*out->failed));
    if (ok) {
        cJSON_ArrayForEach(it, ok)
        {
            if (!cJSON_IsObject(it)) st = QFS_PROTOCOL;
            if (st == QFS_OK) st = need_string(it, "Id", MAX_ID, &out->successful[out->nsuccessful]);
            if (st != QFS_OK) goto out;
            out->nsuccessful++;
        }
    }
    if (failed) {
        cJSON_ArrayForEach(it, failed)
        {
            struct qfs_sqs_batch_failure *f = &out->failed[out->nfailed++];
            if (!cJSON_IsObject(it)) st = QFS_PROTOCOL;
            if (st == QFS_OK) st = need_string(it, "Id", MAX_ID, &f->id);
            if (st == QFS_OK) st = need_string(it, "Code", MAX_CODE, &f->code);
            if (st == QFS_OK) {
                st = qfs_aws_json_string(it, "Message", MAX_MESSAGE, &f->message);
                if (st == QFS_NOT_FOUND) {
                    f->message = qfs_xstrdup("");
                    st = QFS_OK;
                }
            }
            const cJSON *sf = cJSON_GetObjectItemCaseSensitive(it, "SenderFault");
            if (st == QFS_OK && sf && !cJSON_IsBool(sf)) st = QFS_PROTOCOL;
            if (st != QFS_OK) goto out;
            f->sender_fault = cJSON_IsTrue(sf);
        }
    }
out:
    cJSON_Delete(root);
    return st;
}

struct batch_ctx {
    qfs_sqs_batch_fn cb;
    void *arg;
};

static void on_batch(const struct qfs_aws_response *r, void *arg)
{
    struct batch_ctx *x = arg;
    struct qfs_sqs_batch_result res = {0};
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK)
        r = qfs_aws_response_decoded(r, qfs_sqs_batch_decode(r->body, r->body_len, &res),
                                     "DeleteMessageBatch", &scratch);
    x->cb(r, r->status == QFS_OK ? &res : NULL, x->arg);
    qfs_sqs_batch_result_cleanup(&res);
    free(x);
}

qfs_status qfs_sqs_delete_batch(struct qfs_aws *aws, const char *queue_url,
                                const struct qfs_sqs_delete_entry *e, size_t n, qfs_sqs_batch_fn cb,
                                void *arg)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 256 * 1024);
    qfs_status st = qfs_sqs_delete_batch_encode(queue_url, e, n, &b);
    struct batch_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    st = sqs_call(aws, queue_url, "AmazonSQS.DeleteMessageBatch", &b, 0, 0, on_batch, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}

/* ---- SendMessage ---- */

qfs_status qfs_sqs_send_encode(const char *queue_url, const char *body, size_t len,
                               unsigned delay_seconds, struct qfs_buf *out)
{
    if (!url_ok(queue_url) || !body || len == 0 || delay_seconds > 900) return QFS_INVALID_ARG;
    if (len > QFS_SQS_MAX_BODY) return QFS_TOO_BIG;
    if (!qfs_utf8_is_valid(body, len) || memchr(body, '\0', len)) return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "QueueUrl", queue_url);
    if (st == QFS_OK) st = qfs_buf_puts(out, ",\"MessageBody\":");
    if (st == QFS_OK) st = qfs_buf_json_string(out, body, len);
    if (st == QFS_OK) st = qfs_buf_printf(out, ",\"DelaySeconds\":%u}", delay_seconds);
    return st;
}

qfs_status qfs_sqs_send_decode(const char *body, size_t len, char **message_id)
{
    *message_id = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    qfs_status st = cJSON_IsObject(root) ? need_string(root, "MessageId", MAX_ID, message_id)
                                         : QFS_PROTOCOL;
    if (st == QFS_OK && !**message_id) st = QFS_PROTOCOL;
    if (st != QFS_OK) {
        free(*message_id);
        *message_id = NULL;
    }
    cJSON_Delete(root);
    return st;
}

struct send_ctx {
    qfs_sqs_send_fn cb;
    void *arg;
};

static void on_sent(const struct qfs_aws_response *r, void *arg)
{
    struct send_ctx *x = arg;
    char *id = NULL;
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK)
        r = qfs_aws_response_decoded(r, qfs_sqs_send_decode(r->body, r->body_len, &id),
                                     "SendMessage", &scratch);
    x->cb(r, r->status == QFS_OK ? id : NULL, x->arg);
    free(id);
    free(x);
}

qfs_status qfs_sqs_send(struct qfs_aws *aws, const char *queue_url, const char *body, size_t len,
                        unsigned delay_seconds, qfs_sqs_send_fn cb, void *arg)
{
    struct qfs_buf b;
    qfs_buf_init(&b, REQUEST_CAP);
    qfs_status st = qfs_sqs_send_encode(queue_url, body, len, delay_seconds, &b);
    struct send_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    st = sqs_call(aws, queue_url, "AmazonSQS.SendMessage", &b, 0, 0, on_sent, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}

/* ---- ChangeMessageVisibility ---- */

qfs_status qfs_sqs_change_visibility_encode(const char *queue_url, const char *receipt_handle,
                                            unsigned timeout_seconds, struct qfs_buf *out)
{
    if (!url_ok(queue_url) || !receipt_handle || !*receipt_handle || timeout_seconds > 43200)
        return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "QueueUrl", queue_url);
    if (st == QFS_OK) st = qfs_buf_puts(out, ",");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "ReceiptHandle", receipt_handle);
    if (st == QFS_OK) st = qfs_buf_printf(out, ",\"VisibilityTimeout\":%u}", timeout_seconds);
    return st;
}

qfs_status qfs_sqs_change_visibility(struct qfs_aws *aws, const char *queue_url,
                                     const char *receipt_handle, unsigned timeout_seconds,
                                     qfs_aws_done_fn cb, void *arg)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 64 * 1024);
    qfs_status st = qfs_sqs_change_visibility_encode(queue_url, receipt_handle, timeout_seconds, &b);
    if (st == QFS_OK) st = sqs_call(aws, queue_url, "AmazonSQS.ChangeMessageVisibility", &b, 0, 0, cb, arg);
    qfs_buf_cleanup(&b);
    return st;
}
