/* DynamoDB backend of the cache store: items {pk: S, v: S or L, ttl: N} through qfs_aws_call,
 * conditional writes, and readers that check ttl themselves (aws-wire.md §2.3). */
#include "qfs/kv.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define TARGET_PREFIX "DynamoDB_20120810."
/* A value of QFS_KV_MAX_VALUE bytes may grow sixfold when escaped as JSON. */
#define MAX_BODY (8 * QFS_KV_MAX_VALUE)
#define MAX_TABLE 255

/* ---- encoders ------------------------------------------------------------------------------- */

static qfs_status put_json(struct qfs_buf *b, const char *s, size_t n)
{
    if (memchr(s, '\0', n) || !qfs_utf8_is_valid(s, n)) return QFS_INVALID_ARG;
    return qfs_buf_json_string(b, s, n);
}

/* Appends {"TableName":...,"Key":{"pk":{"S":...}} without the closing brace. */
static qfs_status open_request(struct qfs_buf *b, const char *table, const char *key,
                               const char *member)
{
    qfs_status st = qfs_buf_puts(b, "{\"TableName\":");
    if (st == QFS_OK) st = put_json(b, table, strlen(table));
    if (st == QFS_OK) st = qfs_buf_printf(b, ",\"%s\":{\"pk\":{\"S\":", member);
    if (st == QFS_OK) st = put_json(b, key, strlen(key));
    if (st == QFS_OK) st = qfs_buf_puts(b, "}");
    return st;
}

qfs_status qfs_kv_ddb_encode_get(struct qfs_buf *out, const char *table, const char *key)
{
    qfs_status st = open_request(out, table, key, "Key");
    if (st == QFS_OK) st = qfs_buf_puts(out, "},\"ConsistentRead\":true}");
    return st;
}

qfs_status qfs_kv_ddb_encode_put(struct qfs_buf *out, const char *table, const char *key,
                                 const char *value, size_t len, int64_t expires_s, bool if_absent,
                                 int64_t now_s)
{
    qfs_status st = open_request(out, table, key, "Item");
    if (st == QFS_OK) st = qfs_buf_puts(out, ",\"v\":{\"S\":");
    if (st == QFS_OK) st = put_json(out, value, len);
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    if (st == QFS_OK && expires_s)
        st = qfs_buf_printf(out, ",\"ttl\":{\"N\":\"%" PRId64 "\"}", expires_s);
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    if (st == QFS_OK && if_absent)
        st = qfs_buf_printf(out,
                            ",\"ConditionExpression\":\"attribute_not_exists(#k) OR #t < :now\","
                            "\"ExpressionAttributeNames\":{\"#k\":\"pk\",\"#t\":\"ttl\"},"
                            "\"ExpressionAttributeValues\":{\":now\":{\"N\":\"%" PRId64 "\"}}",
                            now_s);
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    return st;
}

qfs_status qfs_kv_ddb_encode_delete(struct qfs_buf *out, const char *table, const char *key,
                                    const char *expected, size_t len, int64_t now_s)
{
    qfs_status st = open_request(out, table, key, "Key");
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    if (st == QFS_OK && expected) {
        st = qfs_buf_puts(out, ",\"ConditionExpression\":\"#v = :v AND (attribute_not_exists(#t) "
                               "OR #t >= :now)\",\"ExpressionAttributeNames\":{\"#v\":\"v\","
                               "\"#t\":\"ttl\"},\"ExpressionAttributeValues\":{\":v\":{\"S\":");
        if (st == QFS_OK) st = put_json(out, expected, len);
        if (st == QFS_OK) st = qfs_buf_printf(out, "},\":now\":{\"N\":\"%" PRId64 "\"}}", now_s);
    }
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    return st;
}

qfs_status qfs_kv_ddb_encode_append(struct qfs_buf *out, const char *table, const char *key,
                                    const char *value, size_t len, int64_t expires_s,
                                    unsigned max_items, bool restart, int64_t now_s)
{
    const char *ttl_action = expires_s ? ", #t = :ttl" : " REMOVE #t";
    qfs_status st = open_request(out, table, key, "Key");
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    if (st == QFS_OK && restart)
        st = qfs_buf_printf(out,
                            ",\"UpdateExpression\":\"SET #v = :new%s\","
                            "\"ConditionExpression\":\"attribute_not_exists(#k) OR #t < :now\","
                            "\"ExpressionAttributeNames\":{\"#k\":\"pk\",\"#v\":\"v\",\"#t\":\"ttl\"},"
                            "\"ExpressionAttributeValues\":{",
                            ttl_action);
    else if (st == QFS_OK)
        st = qfs_buf_printf(out,
                            ",\"UpdateExpression\":\"SET #v = list_append(if_not_exists(#v, :empty), "
                            ":new)%s\",\"ConditionExpression\":\"(attribute_not_exists(#t) OR #t >= "
                            ":now) AND (attribute_not_exists(#v) OR size(#v) < :max)\","
                            "\"ExpressionAttributeNames\":{\"#v\":\"v\",\"#t\":\"ttl\"},"
                            "\"ExpressionAttributeValues\":{\":empty\":{\"L\":[]},"
                            "\":max\":{\"N\":\"%u\"},",
                            ttl_action, max_items);
    if (st == QFS_OK) st = qfs_buf_puts(out, "\":new\":{\"L\":[{\"S\":");
    if (st == QFS_OK) st = put_json(out, value, len);
    if (st == QFS_OK) st = qfs_buf_printf(out, "}]},\":now\":{\"N\":\"%" PRId64 "\"}", now_s);
    if (st == QFS_OK && expires_s)
        st = qfs_buf_printf(out, ",\":ttl\":{\"N\":\"%" PRId64 "\"}", expires_s);
    if (st == QFS_OK) st = qfs_buf_puts(out, "}}");
    return st;
}

/* ---- decoders ------------------------------------------------------------------------------- */

/* Finds the live item of a GetItem response and its v attribute. QFS_NOT_FOUND when there is no
 * item or its ttl (epoch seconds) is below now_s; QFS_PROTOCOL for any other shape. */
static qfs_status live_value(const cJSON *root, int64_t now_s, const cJSON **v)
{
    if (!cJSON_IsObject(root)) return QFS_PROTOCOL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "Item");
    if (!item || cJSON_IsNull(item)) return QFS_NOT_FOUND;
    if (!cJSON_IsObject(item)) return QFS_PROTOCOL;
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(item, "ttl");
    if (ttl) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(ttl, "N");
        if (!cJSON_IsString(n) || !n->valuestring || !*n->valuestring) return QFS_PROTOCOL;
        char *end;
        double t = strtod(n->valuestring, &end);
        if (*end || !isfinite(t)) return QFS_PROTOCOL;
        if (t < (double)now_s) return QFS_NOT_FOUND; /* expired, not yet deleted by DynamoDB */
    }
    *v = cJSON_GetObjectItemCaseSensitive(item, "v");
    return cJSON_IsObject(*v) ? QFS_OK : QFS_PROTOCOL;
}

qfs_status qfs_kv_ddb_decode_get(const char *body, size_t len, int64_t now_s, char **value,
                                 size_t *vlen)
{
    *value = NULL;
    *vlen = 0;
    const cJSON *v = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    qfs_status st = live_value(root, now_s, &v);
    if (st == QFS_OK) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "S");
        if (!cJSON_IsString(s) || !s->valuestring) st = QFS_PROTOCOL;
        else if (strlen(s->valuestring) > QFS_KV_MAX_VALUE) st = QFS_TOO_BIG;
        else {
            *vlen = strlen(s->valuestring);
            *value = qfs_xstrndup(s->valuestring, *vlen);
        }
    }
    cJSON_Delete(root);
    return st;
}

qfs_status qfs_kv_ddb_decode_list(const char *body, size_t len, int64_t now_s, char ***items,
                                  size_t **lens, size_t *n)
{
    *items = NULL;
    *lens = NULL;
    *n = 0;
    const cJSON *v = NULL;
    char **out = NULL;
    size_t *out_lens = NULL;
    size_t count = 0;
    cJSON *root = cJSON_ParseWithLength(body, len);
    qfs_status st = live_value(root, now_s, &v);
    const cJSON *l = st == QFS_OK ? cJSON_GetObjectItemCaseSensitive(v, "L") : NULL;
    if (st == QFS_OK && !cJSON_IsArray(l)) st = QFS_PROTOCOL;
    if (st == QFS_OK) {
        count = (size_t)cJSON_GetArraySize(l);
        if (count == 0) st = QFS_NOT_FOUND;
        else if (count > QFS_KV_MAX_LIST) st = QFS_TOO_BIG;
    }
    if (st == QFS_OK) {
        out = qfs_xcalloc(count, sizeof(*out));
        out_lens = qfs_xcalloc(count, sizeof(*out_lens));
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, l)
        {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "S");
            if (!cJSON_IsString(s) || !s->valuestring) st = QFS_PROTOCOL;
            else if (strlen(s->valuestring) > QFS_KV_MAX_LIST_VALUE) st = QFS_TOO_BIG;
            if (st != QFS_OK) break;
            out_lens[i] = strlen(s->valuestring);
            out[i++] = qfs_xstrdup(s->valuestring);
        }
    }
    if (st == QFS_OK) {
        *items = out;
        *lens = out_lens;
        *n = count;
        out = NULL;
        out_lens = NULL;
    }
    qfs_kv_list_free(out, out_lens, count);
    cJSON_Delete(root);
    return st;
}

/* ---- the backend ---------------------------------------------------------------------------- */

struct ddb {
    struct qfs_aws *aws;
    char *table;
    struct call *head; /* calls in flight */
};

/* One DynamoDB call for an op. After the store closes it is orphaned (d and op NULL) and freed
 * when the aws module calls back. */
struct call {
    struct ddb *d;
    struct qfs_kv_op *op;
    bool restart; /* append, second step: start a new list over an absent or expired item */
    struct call *prev, *next;
};

static void unlink_call(struct ddb *d, struct call *c)
{
    if (c->prev) c->prev->next = c->next;
    else d->head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* The one mapping of a failed DynamoDB call to a store status; the aws module logged it. */
static qfs_status map_error(const struct qfs_aws_response *r)
{
    /* ResourceNotFoundException names the table, not the key: the store is not usable. */
    if (r->status == QFS_NOT_FOUND) return QFS_UNAVAILABLE;
    if (strcmp(r->error_code, "ValidationException") == 0 &&
        strstr(r->error_message, "size has exceeded"))
        return QFS_TOO_BIG;
    return r->status;
}

static void on_done(const struct qfs_aws_response *r, void *arg);

static qfs_status send_call(struct call *c)
{
    struct qfs_kv_op *op = c->op;
    int64_t now_s = qfs_now_ms() / 1000;
    int64_t expires_s = op->ttl_seconds ? now_s + op->ttl_seconds : 0;
    const char *target = NULL;
    struct qfs_buf b;
    qfs_buf_init(&b, MAX_BODY);
    qfs_status st = QFS_INTERNAL;
    switch (op->code) {
    case QFS_KV_OP_GET:
    case QFS_KV_OP_GET_LIST:
        target = TARGET_PREFIX "GetItem";
        st = qfs_kv_ddb_encode_get(&b, c->d->table, op->key);
        break;
    case QFS_KV_OP_PUT:
    case QFS_KV_OP_PUT_IF_ABSENT:
        target = TARGET_PREFIX "PutItem";
        st = qfs_kv_ddb_encode_put(&b, c->d->table, op->key, op->value, op->len, expires_s,
                                   op->code == QFS_KV_OP_PUT_IF_ABSENT, now_s);
        break;
    case QFS_KV_OP_DEL:
    case QFS_KV_OP_DEL_IF_VALUE:
        target = TARGET_PREFIX "DeleteItem";
        st = qfs_kv_ddb_encode_delete(&b, c->d->table, op->key,
                                      op->code == QFS_KV_OP_DEL_IF_VALUE ? op->value : NULL,
                                      op->len, now_s);
        break;
    case QFS_KV_OP_APPEND:
        target = TARGET_PREFIX "UpdateItem";
        st = qfs_kv_ddb_encode_append(&b, c->d->table, op->key, op->value, op->len, expires_s,
                                      op->max_items, c->restart, now_s);
        break;
    }
    if (st == QFS_OK) {
        struct qfs_aws_call call = {
            .service = QFS_AWS_DYNAMODB,
            .protocol = QFS_AWS_JSON_1_0,
            .target = target,
            .body = b.data,
            .body_len = b.len,
            .max_response = MAX_BODY,
        };
        st = qfs_aws_call(c->d->aws, &call, on_done, c);
    }
    qfs_buf_cleanup(&b);
    return st;
}

/* Decodes a successful response into res; what it allocates goes to *value or the list. */
static void decode(const struct qfs_aws_response *r, const struct qfs_kv_op *op,
                   struct qfs_kv_result *res, char **value, char ***items, size_t **lens)
{
    int64_t now_s = qfs_now_ms() / 1000;
    struct qfs_aws_response scratch;
    qfs_status st = QFS_OK;
    if (op->code == QFS_KV_OP_GET) {
        st = qfs_kv_ddb_decode_get(r->body, r->body_len, now_s, value, &res->len);
        res->value = *value;
    } else if (op->code == QFS_KV_OP_GET_LIST) {
        st = qfs_kv_ddb_decode_list(r->body, r->body_len, now_s, items, lens, &res->n);
        res->items = (const char *const *)*items;
        res->lens = *lens;
    }
    if (st == QFS_NOT_FOUND) res->status = QFS_NOT_FOUND;
    else res->status = qfs_aws_response_decoded(r, st, "GetItem", &scratch)->status;
}

static void on_done(const struct qfs_aws_response *r, void *arg)
{
    struct call *c = arg;
    struct ddb *d = c->d;
    if (!d) { /* the store closed and already answered */
        free(c);
        return;
    }
    struct qfs_kv_op *op = c->op;
    struct qfs_kv_result res = {.status = QFS_OK};
    char *value = NULL;
    char **items = NULL;
    size_t *lens = NULL;
    if (r->status == QFS_OK) {
        decode(r, op, &res, &value, &items, &lens);
    } else if (r->condition_failed && op->code == QFS_KV_OP_PUT_IF_ABSENT) {
        res.exists = true;
    } else if (r->condition_failed && op->code == QFS_KV_OP_DEL_IF_VALUE) {
        res.not_owner = true;
    } else if (r->condition_failed && op->code == QFS_KV_OP_APPEND && !c->restart) {
        /* The list is full, or the item expired: try starting a new list. */
        c->restart = true;
        qfs_status st = send_call(c);
        if (st == QFS_OK) return;
        res.status = st;
    } else if (r->condition_failed && op->code == QFS_KV_OP_APPEND) {
        res.dropped = true; /* a live, full list */
    } else {
        res.status = map_error(r);
    }
    unlink_call(d, c);
    free(c);
    qfs_kv_op_complete(op, &res); /* may close the store: nothing touches d after this */
    free(value);
    qfs_kv_list_free(items, lens, res.n);
}

static void submit(void *impl, struct qfs_kv_op *op)
{
    struct ddb *d = impl;
    struct call *c = qfs_xcalloc(1, sizeof(*c));
    c->d = d;
    c->op = op;
    qfs_status st = send_call(c);
    if (st != QFS_OK) {
        free(c);
        qfs_warn("dynamodb call not sent", "status", qfs_status_str(st));
        qfs_kv_op_fail(op, st == QFS_INVALID_ARG ? QFS_INTERNAL : st);
        return;
    }
    c->next = d->head;
    if (d->head) d->head->prev = c;
    d->head = c;
}

static void close_backend(void *impl, void (*done)(void *arg), void *arg)
{
    struct ddb *d = impl;
    while (d->head) {
        struct call *c = d->head;
        struct qfs_kv_op *op = c->op;
        unlink_call(d, c);
        c->d = NULL;
        c->op = NULL;
        qfs_kv_op_fail(op, QFS_UNAVAILABLE);
    }
    free(d->table);
    free(d);
    done(arg);
}

static const struct qfs_kv_backend dynamodb_backend = {
    .name = "dynamodb",
    .submit = submit,
    .close = close_backend,
};

static bool table_is_valid(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n < 3 || n > MAX_TABLE) return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

qfs_status qfs_kv_dynamodb_new(uv_loop_t *loop, struct qfs_aws *aws, const char *table,
                               const char *prefix, struct qfs_kv **out)
{
    if (!loop || !aws || !out) return QFS_INVALID_ARG;
    *out = NULL;
    if (!table_is_valid(table)) {
        qfs_error("malformed DynamoDB table name", "variable", "QFS_CACHE_TABLE");
        return QFS_INVALID_ARG;
    }
    struct ddb *d = qfs_xcalloc(1, sizeof(*d));
    d->aws = aws;
    d->table = qfs_xstrdup(table);
    qfs_status st = qfs_kv_new_backend(loop, &dynamodb_backend, d, prefix, out);
    if (st != QFS_OK) {
        qfs_error("malformed cache key prefix", "variable", "QFS_CACHE_PREFIX");
        free(d->table);
        free(d);
    }
    return st;
}
