/* The cache store interface: argument checks, the key prefix, delivery on the loop and the factory. */
#include "qfs/kv.h"

#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

const char *const qfs_kv_backend_names[] = {"redis", "dynamodb", NULL};

/* The rows over a bare struct qfs_kv_config: a wrapper whose only member sits at offset 0. */
struct bare_config {
    struct qfs_kv_config c;
};
const struct qfs_config_var qfs_kv_config_vars[] = {QFS_KV_CONFIG_VARS(struct bare_config, c)};
const size_t qfs_kv_config_nvars = sizeof(qfs_kv_config_vars) / sizeof(qfs_kv_config_vars[0]);

struct qfs_kv {
    uv_loop_t *loop;
    const struct qfs_kv_backend *backend;
    void *impl;
    char *prefix;
    size_t prefix_len;
    uv_idle_t idle;                 /* delivers results that may not run inside the call */
    struct op_full *first, *last;   /* those results, in order */
    bool closing;
    bool backend_closed;
    bool idle_closed;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* An operation as kv.c holds it; the public part comes first so that backends see only that. */
struct op_full {
    struct qfs_kv_op op;
    struct qfs_kv *kv;
    qfs_kv_fn cb;
    void *arg;
    bool submitting;
    struct op_full *next;
    /* A result kept for the next loop turn, with its own copies. */
    struct qfs_kv_result kept;
    char *kept_value;
    char **kept_items;
    size_t *kept_lens;
};

/* ---- delivery ------------------------------------------------------------------------------- */

static void op_free(struct op_full *f)
{
    free(f->kept_value);
    qfs_kv_list_free(f->kept_items, f->kept_lens, f->kept.n);
    free(f);
}

static void deliver(struct op_full *f, const struct qfs_kv_result *r)
{
    if (f->cb) f->cb(r, f->arg);
    op_free(f);
}

/* Delivers every kept result; callbacks may add more, or free the store. */
static void deliver_kept(struct qfs_kv *kv)
{
    while (kv->first) {
        struct op_full *f = kv->first;
        kv->first = f->next;
        if (!kv->first) kv->last = NULL;
        deliver(f, &f->kept);
    }
}

static void on_idle(uv_idle_t *h)
{
    struct qfs_kv *kv = h->data;
    uv_idle_stop(h);
    deliver_kept(kv);
}

/* Copies r into f so that it can be delivered on the next loop turn. */
static void keep(struct op_full *f, const struct qfs_kv_result *r)
{
    f->kept = *r;
    f->kept.value = NULL;
    f->kept.items = NULL;
    f->kept.lens = NULL;
    f->kept.n = 0;
    if (r->value) {
        f->kept_value = qfs_xstrndup(r->value, r->len);
        f->kept.value = f->kept_value;
    }
    if (r->n) {
        f->kept_items = qfs_xcalloc(r->n, sizeof(char *));
        f->kept_lens = qfs_xcalloc(r->n, sizeof(size_t));
        for (size_t i = 0; i < r->n; i++) {
            f->kept_items[i] = qfs_xstrndup(r->items[i], r->lens[i]);
            f->kept_lens[i] = r->lens[i];
        }
        f->kept.items = (const char *const *)f->kept_items;
        f->kept.lens = f->kept_lens;
        f->kept.n = r->n;
    }
}

void qfs_kv_op_complete(struct qfs_kv_op *op, const struct qfs_kv_result *r)
{
    struct op_full *f = (struct op_full *)op;
    qfs_assert(r->status == QFS_OK || (!r->value && !r->n));
    if (!f->submitting) {
        deliver(f, r);
        return;
    }
    struct qfs_kv *kv = f->kv;
    keep(f, r);
    f->next = NULL;
    if (kv->last) kv->last->next = f;
    else kv->first = f;
    kv->last = f;
    uv_idle_start(&kv->idle, on_idle);
}

void qfs_kv_op_fail(struct qfs_kv_op *op, qfs_status s)
{
    struct qfs_kv_result r = {.status = s};
    qfs_kv_op_complete(op, &r);
}

/* ---- the operations ------------------------------------------------------------------------- */

static bool is_text(const char *s, size_t len)
{
    return !memchr(s, '\0', len) && qfs_utf8_is_valid(s, len);
}

/* Checks the arguments, then hands a copy to the backend. */
static qfs_status submit(struct qfs_kv *kv, enum qfs_kv_opcode code, const char *key,
                         const char *value, size_t len, int64_t ttl, unsigned max_items,
                         qfs_kv_fn cb, void *arg)
{
    if (!kv || !key || !*key) return QFS_INVALID_ARG;
    if (kv->closing) return QFS_UNAVAILABLE;
    size_t key_len = strlen(key);
    if (key_len > QFS_KV_MAX_KEY - kv->prefix_len) return QFS_TOO_BIG;
    if (!qfs_utf8_is_valid(key, key_len)) return QFS_INVALID_ARG;
    bool has_value = code == QFS_KV_OP_PUT || code == QFS_KV_OP_PUT_IF_ABSENT ||
                     code == QFS_KV_OP_DEL_IF_VALUE || code == QFS_KV_OP_APPEND;
    if (has_value) {
        if (!value || len == 0) return QFS_INVALID_ARG;
        if (len > (code == QFS_KV_OP_APPEND ? QFS_KV_MAX_LIST_VALUE : QFS_KV_MAX_VALUE))
            return QFS_TOO_BIG;
        if (!is_text(value, len)) return QFS_INVALID_ARG;
    } else {
        len = 0;
    }
    if (ttl < 0 || ttl > QFS_KV_MAX_TTL_SECONDS) return QFS_INVALID_ARG;
    if (code == QFS_KV_OP_APPEND && (max_items < 1 || max_items > QFS_KV_MAX_LIST))
        return QFS_INVALID_ARG;

    size_t full_len = kv->prefix_len + key_len;
    struct op_full *f = qfs_xcalloc(1, sizeof(*f) + full_len + 1 + len + 1);
    char *k = (char *)(f + 1);
    memcpy(k, kv->prefix, kv->prefix_len);
    memcpy(k + kv->prefix_len, key, key_len + 1);
    char *v = k + full_len + 1;
    if (has_value) memcpy(v, value, len);
    v[len] = '\0';
    f->op = (struct qfs_kv_op){.code = code, .key = k, .key_len = full_len,
                               .value = has_value ? v : NULL, .len = len, .ttl_seconds = ttl,
                               .max_items = max_items};
    f->kv = kv;
    f->cb = cb;
    f->arg = arg;
    f->submitting = true;
    kv->backend->submit(kv->impl, &f->op);
    /* If the backend completed the op at once, it waits in the kept list: f is still ours. */
    f->submitting = false;
    return QFS_OK;
}

qfs_status qfs_kv_get(struct qfs_kv *kv, const char *key, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_GET, key, NULL, 0, 0, 0, cb, arg);
}

qfs_status qfs_kv_put(struct qfs_kv *kv, const char *key, const char *value, size_t len,
                      int64_t ttl_seconds, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_PUT, key, value, len, ttl_seconds, 0, cb, arg);
}

qfs_status qfs_kv_put_if_absent(struct qfs_kv *kv, const char *key, const char *value, size_t len,
                                int64_t ttl_seconds, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_PUT_IF_ABSENT, key, value, len, ttl_seconds, 0, cb, arg);
}

qfs_status qfs_kv_del(struct qfs_kv *kv, const char *key, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_DEL, key, NULL, 0, 0, 0, cb, arg);
}

qfs_status qfs_kv_del_if_value(struct qfs_kv *kv, const char *key, const char *expected,
                               size_t len, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_DEL_IF_VALUE, key, expected, len, 0, 0, cb, arg);
}

qfs_status qfs_kv_append(struct qfs_kv *kv, const char *key, const char *value, size_t len,
                         int64_t ttl_seconds, unsigned max_items, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_APPEND, key, value, len, ttl_seconds, max_items, cb, arg);
}

qfs_status qfs_kv_get_list(struct qfs_kv *kv, const char *key, qfs_kv_fn cb, void *arg)
{
    return submit(kv, QFS_KV_OP_GET_LIST, key, NULL, 0, 0, 0, cb, arg);
}

void qfs_kv_list_free(char **items, size_t *lens, size_t n)
{
    for (size_t i = 0; items && i < n; i++) free(items[i]);
    free(items);
    free(lens);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

qfs_status qfs_kv_new_backend(uv_loop_t *loop, const struct qfs_kv_backend *backend, void *impl,
                              const char *prefix, struct qfs_kv **out)
{
    if (!loop || !backend || !backend->submit || !backend->close || !out) return QFS_INVALID_ARG;
    if (!prefix) prefix = "";
    size_t plen = strlen(prefix);
    if (plen > QFS_KV_MAX_KEY / 2 || !qfs_utf8_is_valid(prefix, plen)) return QFS_INVALID_ARG;
    struct qfs_kv *kv = qfs_xcalloc(1, sizeof(*kv));
    kv->loop = loop;
    kv->backend = backend;
    kv->impl = impl;
    kv->prefix = qfs_xstrdup(prefix);
    kv->prefix_len = plen;
    qfs_assert(uv_idle_init(loop, &kv->idle) == 0);
    kv->idle.data = kv;
    *out = kv;
    return QFS_OK;
}

static void maybe_release(struct qfs_kv *kv)
{
    if (!kv->backend_closed || !kv->idle_closed) return;
    void (*closed)(void *) = kv->closed;
    void *arg = kv->closed_arg;
    free(kv->prefix);
    free(kv);
    if (closed) closed(arg);
}

static void on_idle_closed(uv_handle_t *h)
{
    struct qfs_kv *kv = h->data;
    kv->idle_closed = true;
    maybe_release(kv);
}

static void on_backend_closed(void *arg)
{
    struct qfs_kv *kv = arg;
    kv->backend_closed = true;
    maybe_release(kv);
}

void qfs_kv_free(struct qfs_kv *kv, void (*closed)(void *arg), void *arg)
{
    if (!kv || kv->closing) return;
    kv->closing = true;
    kv->closed = closed;
    kv->closed_arg = arg;
    deliver_kept(kv);
    uv_idle_stop(&kv->idle);
    uv_close((uv_handle_t *)&kv->idle, on_idle_closed);
    kv->backend->close(kv->impl, on_backend_closed, kv);
}

const char *qfs_kv_backend_name(const struct qfs_kv *kv)
{
    return kv->backend->name;
}

/* ---- the factory ---------------------------------------------------------------------------- */

qfs_status qfs_kv_new(uv_loop_t *loop, const struct qfs_kv_config *cfg, struct qfs_aws *aws,
                      struct qfs_kv **out)
{
    if (!loop || !cfg || !out) return QFS_INVALID_ARG;
    switch (cfg->backend) {
    case QFS_KV_REDIS: {
        if (!cfg->redis_url || !*cfg->redis_url) {
            qfs_error("redis URL not set", "variable", "QFS_REDIS_URL");
            return QFS_INVALID_ARG;
        }
        struct qfs_kv_redis_options o = {.url = cfg->redis_url, .prefix = cfg->prefix};
        return qfs_kv_redis_new(loop, &o, out);
    }
    case QFS_KV_DYNAMODB:
        if (!cfg->table || !*cfg->table) {
            qfs_error("cache table not set for the dynamodb backend", "variable", "QFS_CACHE_TABLE");
            return QFS_INVALID_ARG;
        }
        if (!aws) {
            qfs_error("the dynamodb cache backend needs an AWS client", "variable",
                      "QFS_CACHE_BACKEND");
            return QFS_INVALID_ARG;
        }
        return qfs_kv_dynamodb_new(loop, aws, cfg->table, cfg->prefix, out);
    default:
        qfs_error("unknown cache backend", "variable", "QFS_CACHE_BACKEND");
        return QFS_INVALID_ARG;
    }
}
