/* The cache store (ARCHITECTURE.md §6): an asynchronous key-value interface on the service loop
 * with a Redis backend (hiredis async) and a DynamoDB backend (the aws module's JSON 1.0 calls). */
#ifndef QFS_KV_H
#define QFS_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/config.h"
#include "qfs/status.h"
#include "qfs/util.h"

/* Bounds. Keys count with the prefix; values and list elements are UTF-8 text without NUL bytes
 * (the JSON documents callers store), never empty. A list keeps at most QFS_KV_MAX_LIST elements
 * so that a whole list stays under DynamoDB's 400 KB item limit. */
#define QFS_KV_MAX_KEY 1024
#define QFS_KV_MAX_VALUE (300 * 1024)
#define QFS_KV_MAX_LIST 100
#define QFS_KV_MAX_LIST_VALUE 3072
/* The longest TTL accepted (a year); 0 means "never expires". */
#define QFS_KV_MAX_TTL_SECONDS (366LL * 86400)

struct qfs_kv;

/* ---- configuration -------------------------------------------------------------------------- */

enum qfs_kv_backend_kind { QFS_KV_REDIS = 0, QFS_KV_DYNAMODB = 1 };

/* Filled by qfs_config_load from the rows of QFS_KV_CONFIG_VARS; strings are owned by the config
 * and freed by qfs_config_cleanup. */
struct qfs_kv_config {
    int backend;         /* enum qfs_kv_backend_kind */
    char *redis_url;     /* redis://[user:password@]host[:port][/db] */
    char *table;         /* DynamoDB table; required with the dynamodb backend */
    int64_t ttl_seconds; /* the TTL callers give scan results */
    char *prefix;        /* prepended to every key: the namespace of a stack or a test */
};

/* "redis", "dynamodb", NULL: the choices of QFS_CACHE_BACKEND. */
extern const char *const qfs_kv_backend_names[];

/* The cache settings as rows of a service's own config table, where type is the service's config
 * struct and member its struct qfs_kv_config field:
 *   static const struct qfs_config_var vars[] = { QFS_KV_CONFIG_VARS(struct cache_config, kv), ... };
 * QFS_REDIS_URL is secret (masked by --check-config) since it may carry the password. */
#define QFS_KV_CONFIG_VARS(type, member)                                                          \
    {"QFS_CACHE_BACKEND", QFS_CFG_ENUM, "redis", 0, 0, "Cache store backend.", false, false,      \
     QFS_CFG_FIELD(type, member.backend), qfs_kv_backend_names},                                  \
    {"QFS_REDIS_URL", QFS_CFG_STRING, "redis://127.0.0.1:6379", 0, 0,                             \
     "Redis for the redis backend: redis://[user:password@]host[:port][/db].", true, false,       \
     QFS_CFG_FIELD(type, member.redis_url), NULL},                                                \
    {"QFS_CACHE_TABLE", QFS_CFG_STRING, NULL, 0, 0,                                               \
     "DynamoDB table for the dynamodb backend (partition key pk, TTL attribute ttl).", false,     \
     false, QFS_CFG_FIELD(type, member.table), NULL},                                             \
    {"QFS_CACHE_TTL_SECONDS", QFS_CFG_INT, "86400", 1, QFS_KV_MAX_TTL_SECONDS,                    \
     "How long a stored scan result is reused, in seconds.", false, false,                        \
     QFS_CFG_FIELD(type, member.ttl_seconds), NULL},                                              \
    {"QFS_CACHE_PREFIX", QFS_CFG_STRING, "qfs:", 0, 0,                                            \
     "Prefix of every cache key, so that stacks sharing a store do not collide.", false, false,   \
     QFS_CFG_FIELD(type, member.prefix), NULL}

/* The same rows over a bare struct qfs_kv_config (tools and tests). */
extern const struct qfs_config_var qfs_kv_config_vars[];
extern const size_t qfs_kv_config_nvars;

/* ---- results -------------------------------------------------------------------------------- */

/* The outcome of one operation, borrowed for the duration of the callback. */
struct qfs_kv_result {
    qfs_status status;  /* QFS_OK, or QFS_NOT_FOUND (get, get_list: absent or expired), or a
                           failure: QFS_UNAVAILABLE (store down), QFS_TIMED_OUT, QFS_DENIED,
                           QFS_TOO_BIG (the store refused the size), QFS_PROTOCOL (the item is not
                           what this operation expects), QFS_INTERNAL */
    bool exists;        /* put_if_absent with QFS_OK: a live item holds the key; nothing written */
    bool not_owner;     /* del_if_value with QFS_OK: the key is absent or holds another value;
                           nothing deleted */
    bool dropped;       /* append with QFS_OK: the list was full; the value was not added */
    const char *value;  /* get: the value, NUL-terminated; NULL otherwise */
    size_t len;
    const char *const *items; /* get_list: the elements, oldest first, each NUL-terminated */
    const size_t *lens;
    size_t n;
};

/* Runs on the loop thread exactly once per accepted operation, never inside the call. */
typedef void (*qfs_kv_fn)(const struct qfs_kv_result *r, void *arg);

/* ---- the store ------------------------------------------------------------------------------ */

struct qfs_kv_redis_options {
    const char *url;             /* as QFS_REDIS_URL; copied, the password registered as a secret */
    const char *prefix;          /* copied; NULL means none */
    unsigned connect_timeout_ms; /* 0: 2000 */
    unsigned op_timeout_ms;      /* a reply not seen by then drops the connection (0: 5000) */
    unsigned reconnect_min_ms;   /* first reconnect delay, doubled per failure (0: 100) */
    unsigned reconnect_max_ms;   /* (0: 5000) */
};

/* A Redis store on loop (borrowed; it must outlive the store). Connects at once and reconnects
 * with backoff whenever the connection drops; while it is down, operations fail fast with
 * QFS_UNAVAILABLE. QFS_INVALID_ARG (logged, naming QFS_REDIS_URL) for a malformed URL. */
qfs_status qfs_kv_redis_new(uv_loop_t *loop, const struct qfs_kv_redis_options *opt,
                            struct qfs_kv **out);

/* A DynamoDB store on table (copied) through aws (borrowed; free the store before it). Items are
 * {pk: S, v: S or L, ttl: N}. QFS_INVALID_ARG for a missing or malformed table name. */
qfs_status qfs_kv_dynamodb_new(uv_loop_t *loop, struct qfs_aws *aws, const char *table,
                               const char *prefix, struct qfs_kv **out);

/* The store that cfg chooses; aws is needed (borrowed) for DynamoDB only. QFS_INVALID_ARG, with a
 * log line naming the variable, for a setting the backend cannot use. */
qfs_status qfs_kv_new(uv_loop_t *loop, const struct qfs_kv_config *cfg, struct qfs_aws *aws,
                      struct qfs_kv **out);

/* Completes every pending operation (QFS_UNAVAILABLE unless already decided) inside this call,
 * or, when called from one of the store's callbacks, as soon as that returns; then closes the
 * connection and handles and frees kv; closed(arg), when not NULL, runs on the loop once all are
 * closed. Operations started from those callbacks return QFS_UNAVAILABLE. NULL is fine. */
void qfs_kv_free(struct qfs_kv *kv, void (*closed)(void *arg), void *arg);

/* "redis" or "dynamodb". */
const char *qfs_kv_backend_name(const struct qfs_kv *kv);

/* The operations. key is the caller's key (the prefix is added here); value and expected are
 * copied. ttl_seconds 0 means no expiry. Each returns QFS_OK, after which cb (may be NULL) runs
 * later exactly once, or, with cb never run: QFS_INVALID_ARG (bad key or value, negative TTL),
 * QFS_TOO_BIG (key or value over its bound), QFS_UNAVAILABLE (after qfs_kv_free). */

/* r->value is the stored value; QFS_NOT_FOUND when absent or past its TTL. */
qfs_status qfs_kv_get(struct qfs_kv *kv, const char *key, qfs_kv_fn cb, void *arg);
/* Stores value, replacing what was there. */
qfs_status qfs_kv_put(struct qfs_kv *kv, const char *key, const char *value, size_t len,
                      int64_t ttl_seconds, qfs_kv_fn cb, void *arg);
/* Stores value unless a live item holds key (an expired one counts as absent): r->exists. */
qfs_status qfs_kv_put_if_absent(struct qfs_kv *kv, const char *key, const char *value, size_t len,
                                int64_t ttl_seconds, qfs_kv_fn cb, void *arg);
/* Deletes key; deleting an absent key is QFS_OK. */
qfs_status qfs_kv_del(struct qfs_kv *kv, const char *key, qfs_kv_fn cb, void *arg);
/* Deletes key only while it holds expected (releasing a marker we still own): r->not_owner. */
qfs_status qfs_kv_del_if_value(struct qfs_kv *kv, const char *key, const char *expected,
                               size_t len, qfs_kv_fn cb, void *arg);
/* Appends value to the list at key (created when absent or expired) and sets its TTL. The list
 * keeps its first max_items (1..QFS_KV_MAX_LIST) elements: past that r->dropped. Values over
 * QFS_KV_MAX_LIST_VALUE are QFS_TOO_BIG. */
qfs_status qfs_kv_append(struct qfs_kv *kv, const char *key, const char *value, size_t len,
                         int64_t ttl_seconds, unsigned max_items, qfs_kv_fn cb, void *arg);
/* r->items / r->n: the list, oldest first; QFS_NOT_FOUND when absent, empty or past its TTL. */
qfs_status qfs_kv_get_list(struct qfs_kv *kv, const char *key, qfs_kv_fn cb, void *arg);

/* ---- pure parts, exposed for tests ---------------------------------------------------------- */

struct qfs_kv_redis_url {
    char host[256]; /* a name or an IP address, without brackets */
    int port;       /* 6379 when not given */
    int db;         /* 0 when not given */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
};

/* Parses redis://[user:password@]host[:port][/db] (IPv6 hosts in brackets, %XX escapes decoded
 * in user and password) into out; the password is registered with qfs_log_add_secret. Free with
 * qfs_kv_redis_url_cleanup. QFS_INVALID_ARG for anything else, rediss:// included. */
qfs_status qfs_kv_redis_url_parse(const char *url, struct qfs_kv_redis_url *out);
void qfs_kv_redis_url_cleanup(struct qfs_kv_redis_url *u);
/* Writes the URL with the password as "****" (for logs). */
void qfs_kv_redis_url_redact(const struct qfs_kv_redis_url *u, char *out, size_t n);

/* DynamoDB request bodies for table and the full key. now_s is the current time in epoch
 * seconds, expires_s the ttl attribute to write (0: none). Each appends to out and returns
 * QFS_OK, QFS_INVALID_ARG (not UTF-8) or QFS_TOO_BIG (out's cap). */
qfs_status qfs_kv_ddb_encode_get(struct qfs_buf *out, const char *table, const char *key);
/* PutItem; with if_absent, the condition "attribute_not_exists(pk) OR ttl < now". */
qfs_status qfs_kv_ddb_encode_put(struct qfs_buf *out, const char *table, const char *key,
                                 const char *value, size_t len, int64_t expires_s, bool if_absent,
                                 int64_t now_s);
/* DeleteItem; with expected, only while v equals it and the item is live. */
qfs_status qfs_kv_ddb_encode_delete(struct qfs_buf *out, const char *table, const char *key,
                                    const char *expected, size_t len, int64_t now_s);
/* UpdateItem appending value to the list v of a live item with fewer than max_items elements,
 * or, with restart, replacing the list of an absent or expired item by [value]. */
qfs_status qfs_kv_ddb_encode_append(struct qfs_buf *out, const char *table, const char *key,
                                    const char *value, size_t len, int64_t expires_s,
                                    unsigned max_items, bool restart, int64_t now_s);
/* Decodes a GetItem response: *value (caller frees) and *len from v (S). QFS_NOT_FOUND when there
 * is no item or its ttl is below now_s; QFS_PROTOCOL for a body or item of another shape;
 * QFS_TOO_BIG for a value over QFS_KV_MAX_VALUE. */
qfs_status qfs_kv_ddb_decode_get(const char *body, size_t len, int64_t now_s, char **value,
                                 size_t *vlen);
/* The same for a list item (v: L of S): *items (free each and the array with
 * qfs_kv_list_free) and *n; QFS_NOT_FOUND also for an empty list. */
qfs_status qfs_kv_ddb_decode_list(const char *body, size_t len, int64_t now_s, char ***items,
                                  size_t **lens, size_t *n);
void qfs_kv_list_free(char **items, size_t *lens, size_t n);

/* ---- backends (kv_redis.c, kv_dynamodb.c) and test fakes ------------------------------------ */

enum qfs_kv_opcode {
    QFS_KV_OP_GET,
    QFS_KV_OP_PUT,
    QFS_KV_OP_PUT_IF_ABSENT,
    QFS_KV_OP_DEL,
    QFS_KV_OP_DEL_IF_VALUE,
    QFS_KV_OP_APPEND,
    QFS_KV_OP_GET_LIST,
};

/* One accepted operation, owned by kv.c; a backend reads it and completes it exactly once. */
struct qfs_kv_op {
    enum qfs_kv_opcode code;
    const char *key;     /* with the prefix */
    size_t key_len;
    const char *value;   /* put, put_if_absent, append: the value; del_if_value: the expected */
    size_t len;
    int64_t ttl_seconds; /* 0: no expiry */
    unsigned max_items;  /* append */
};

struct qfs_kv_backend {
    const char *name;
    /* Starts op; the backend later (or, for a failure, at once) calls qfs_kv_op_complete. */
    void (*submit)(void *impl, struct qfs_kv_op *op);
    /* Completes every op it holds now (QFS_UNAVAILABLE), closes its handles, frees impl, then
     * calls done(arg) on the loop. May be called from inside one of its own completions. */
    void (*close)(void *impl, void (*done)(void *arg), void *arg);
};

/* Wraps a backend in a store; impl belongs to the backend. Used by the constructors above and by
 * fakes in tests. prefix is copied (NULL: none). QFS_INVALID_ARG for a prefix that is not UTF-8
 * or is longer than QFS_KV_MAX_KEY / 2. */
qfs_status qfs_kv_new_backend(uv_loop_t *loop, const struct qfs_kv_backend *backend, void *impl,
                              const char *prefix, struct qfs_kv **out);
/* Delivers the result of op (r's pointers borrowed for the call; copied when the delivery has to
 * wait for the next loop turn) and frees op. */
void qfs_kv_op_complete(struct qfs_kv_op *op, const struct qfs_kv_result *r);
/* Shorthand for a result that is only a status. */
void qfs_kv_op_fail(struct qfs_kv_op *op, qfs_status s);

#endif
