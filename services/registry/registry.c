/* qfs-registry's rules: the store first, then one lookup per account/region that finds or creates
 * the Qualys registry under the cross-replica lock, and the messages each request ends with. */
#include "registry.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/aws.h"
#include "qfs/aws_sts.h"
#include "qfs/log.h"
#include "qfs/util.h"

#define KEY_MAX 96
#define HOLDER_MAX 160
#define UUID_MAX 64
#define DETAIL_MAX 512
#define ROLE_ARN_MAX 640

/* ---- pure helpers -------------------------------------------------------------------------- */

void registry_key(const char *account, const char *region, char *out, size_t n)
{
    snprintf(out, n, "registry:%s:%s", account, region);
}

void registry_lock_key(const char *account, const char *region, char *out, size_t n)
{
    snprintf(out, n, "registry-lock:%s:%s", account, region);
}

bool registry_uuid_is_valid(const char *s)
{
    if (!s || strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex) return false;
    }
    return true;
}

char *registry_value_encode(const char *uuid)
{
    qfs_assert(registry_uuid_is_valid(uuid));
    return qfs_xasprintf("{\"registry_uuid\":\"%s\"}", uuid);
}

bool registry_value_decode(const char *value, size_t len, char *uuid, size_t n)
{
    cJSON *root = value ? cJSON_ParseWithLength(value, len) : NULL;
    const cJSON *u = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "registry_uuid") : NULL;
    bool ok = cJSON_IsString(u) && registry_uuid_is_valid(u->valuestring) && n > 36;
    if (ok) snprintf(uuid, n, "%s", u->valuestring);
    cJSON_Delete(root);
    return ok;
}

int64_t registry_retry_delay_ms(bool locked, uint64_t attempt)
{
    int64_t first = locked ? REGISTRY_LOCKED_FIRST_MS : REGISTRY_BACKOFF_FIRST_MS;
    int64_t max = locked ? REGISTRY_LOCKED_MAX_MS : REGISTRY_BACKOFF_MAX_MS;
    uint64_t shift = attempt > 1 ? attempt - 1 : 0;
    if (shift > 16) shift = 16;
    int64_t d = first << shift;
    return d > max ? max : d;
}

/* ---- state --------------------------------------------------------------------------------- */

/* A lookup's result, kept until every waiter has been answered. */
struct result {
    enum registry_verdict verdict;
    enum qfs_scan_failure_reason reason;
    qfs_status status;
    bool locked; /* RETRY: another replica holds the lock */
    char uuid[UUID_MAX];
    char detail[DETAIL_MAX];
    char error_code[64];
    char error_message[512];
};

struct request {
    struct registry *r;
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
    uint64_t attempt;
    bool last;
    registry_done_fn cb;
    void *arg;
    struct request *next; /* a lookup's waiters */
};

/* A Qualys error kept across a re-list (the create that may or may not have been applied). */
struct saved_error {
    bool set;
    qfs_status status;
    long http_code;
    char code[64];
    char message[512];
};

/* One lookup of an account/region: a chain of port calls, one at a time. */
struct lookup {
    struct registry *r;
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
    char key[KEY_MAX];
    char lock_key[KEY_MAX];
    char holder[HOLDER_MAX];
    char uri[160];
    char role_arn[ROLE_ARN_MAX];
    char name[64];           /* ecr-<acct>-<region> */
    char connector_name[64]; /* qfs-ecr-<acct> */
    char external_id[72];
    bool owns_lock;
    bool taking_lock;     /* put_if_absent of the lock not answered yet */
    bool close_waits;     /* registry_close waits for that answer */
    bool relisting_connectors;
    bool created_without_id;
    struct saved_error create_error;
    struct result result;
    struct request *waiters, *waiters_tail;
    struct lookup *next;
};

struct registry {
    char *role_name;
    char *account_type;
    char *holder;
    struct registry_store store;
    struct registry_qualys qualys;
    struct lookup *lookups;
    size_t nlookups;
    size_t nrequests;
    size_t calls; /* port calls whose callback has not run */
    uint64_t seq;
    bool closing;
    /* registry_close: lock releases still unanswered, then closed(closed_arg) once. */
    size_t releasing;
    bool store_closed;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* A registry-lock released while closing (the lookup that held it may be gone by the answer). */
struct release {
    struct registry *r;
    char key[KEY_MAX];
};

static void registry_free(struct registry *r)
{
    free(r->role_name);
    free(r->account_type);
    free(r->holder);
    free(r);
}

static void maybe_free(struct registry *r)
{
    if (r->closing && r->store_closed && r->calls == 0) registry_free(r);
}

qfs_status registry_new(const struct registry_config *cfg, const struct registry_store *store,
                        const struct registry_qualys *qualys, struct registry **out)
{
    *out = NULL;
    if (!cfg || !store || !qualys || !store->get || !store->put || !store->put_if_absent ||
        !store->del_if_value || !qualys->find_registry || !qualys->create_registry ||
        !qualys->list_connectors || !qualys->aws_base || !qualys->create_connector || !cfg->role_name ||
        !cfg->account_type || !cfg->holder || !*cfg->holder || strlen(cfg->holder) > HOLDER_MAX - 24)
        return QFS_INVALID_ARG;
    char arn[ROLE_ARN_MAX];
    if (qfs_aws_role_arn("aws-us-gov", "000000000000", cfg->role_name, arn, sizeof(arn)) != QFS_OK ||
        (strcmp(cfg->account_type, "Global") != 0 && strcmp(cfg->account_type, "US_Gov") != 0))
        return QFS_INVALID_ARG;
    struct registry *r = qfs_xcalloc(1, sizeof(*r));
    r->role_name = qfs_xstrdup(cfg->role_name);
    r->account_type = qfs_xstrdup(cfg->account_type);
    r->holder = qfs_xstrdup(cfg->holder);
    r->store = *store;
    r->qualys = *qualys;
    *out = r;
    return QFS_OK;
}

/* Once every release is answered: tells the caller it may close the ports. */
static void close_when_released(struct registry *r)
{
    if (r->releasing > 0 || r->store_closed) return;
    r->store_closed = true;
    void (*closed)(void *) = r->closed;
    r->closed = NULL;
    r->calls++; /* the ports' callbacks may run inside closed(): keep r until it returns */
    if (closed) closed(r->closed_arg);
    r->calls--;
    maybe_free(r);
}

static void on_close_released(const struct qfs_kv_result *res, void *arg)
{
    struct release *rel = arg;
    struct registry *r = rel->r;
    r->calls--;
    r->releasing--;
    if (res->status != QFS_OK)
        qfs_warn("cannot release the registry lock; it expires by itself", "key", rel->key, "status",
                 qfs_status_str(res->status));
    free(rel);
    close_when_released(r);
}

/* Releases a lock held by a lookup that is being abandoned, unless the store is closed already. */
static void close_release(struct registry *r, const char *key, const char *holder)
{
    if (r->store_closed) return;
    struct release *rel = qfs_xcalloc(1, sizeof(*rel));
    rel->r = r;
    snprintf(rel->key, sizeof(rel->key), "%s", key);
    if (r->store.del_if_value(r->store.impl, key, holder, strlen(holder), on_close_released, rel) != QFS_OK) {
        free(rel);
        return;
    }
    r->calls++;
    r->releasing++;
}

static void answer_stopping(struct request *q);

void registry_close(struct registry *r, void (*closed)(void *arg), void *arg)
{
    if (!r || r->closing) return;
    r->closing = true;
    r->closed = closed;
    r->closed_arg = arg;
    for (struct lookup *l = r->lookups; l; l = l->next) {
        struct request *q = l->waiters;
        l->waiters = l->waiters_tail = NULL;
        while (q) {
            struct request *next = q->next;
            answer_stopping(q);
            q = next;
        }
        if (l->taking_lock) {
            /* Its answer may say the lock is ours: wait for it, to release it. */
            l->close_waits = true;
            r->releasing++;
        } else if (l->owns_lock) {
            l->owns_lock = false;
            close_release(r, l->lock_key, l->holder);
        }
    }
    close_when_released(r);
}

size_t registry_lookups(const struct registry *r)
{
    return r->nlookups;
}

size_t registry_pending(const struct registry *r)
{
    return r->nrequests;
}

/* ---- answering requests -------------------------------------------------------------------- */

static void request_free(struct request *q)
{
    q->r->nrequests--;
    free(q);
}

/* Answers q with res, turning a retry on the last allowed delivery into registry_failed. */
static void answer(struct request *q, const struct result *res)
{
    struct registry_outcome o = {
        .verdict = res->verdict,
        .uuid = res->uuid,
        .reason = res->reason,
        .status = res->status,
        .detail = res->detail,
        .error_code = res->error_code,
        .error_message = res->error_message,
    };
    char detail[DETAIL_MAX + 64];
    if (o.verdict == REGISTRY_RETRY && q->last) {
        snprintf(detail, sizeof(detail), "no Qualys registry after %" PRIu64 " deliveries: %s", q->attempt,
                 res->detail);
        o.verdict = REGISTRY_FAILED;
        o.reason = QFS_SCAN_FAILURE_REGISTRY_FAILED;
        o.detail = detail;
    } else if (o.verdict == REGISTRY_RETRY) {
        o.delay_ms = registry_retry_delay_ms(res->locked, q->attempt);
    }
    registry_done_fn cb = q->cb;
    void *arg = q->arg;
    request_free(q);
    cb(arg, &o);
}

/* Answers q while closing: back to the stream at once, never a failure. */
static void answer_stopping(struct request *q)
{
    struct registry_outcome o = {
        .verdict = REGISTRY_RETRY,
        .reason = QFS_SCAN_FAILURE_REGISTRY_FAILED,
        .status = QFS_UNAVAILABLE,
        .detail = "qfs-registry is stopping",
        .error_code = "",
        .error_message = "",
        .delay_ms = 0,
    };
    registry_done_fn cb = q->cb;
    void *arg = q->arg;
    request_free(q);
    cb(arg, &o);
}

static void set_result(struct result *res, enum registry_verdict v, qfs_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_result(struct result *res, enum registry_verdict v, qfs_status st, const char *fmt, ...)
{
    memset(res, 0, sizeof(*res));
    res->verdict = v;
    res->status = st;
    res->reason = QFS_SCAN_FAILURE_REGISTRY_FAILED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
}

static void set_error(struct result *res, const char *code, const char *message)
{
    snprintf(res->error_code, sizeof(res->error_code), "%s", code ? code : "");
    snprintf(res->error_message, sizeof(res->error_message), "%s", message ? message : "");
}

/* ---- the lookup ---------------------------------------------------------------------------- */

static void lookup_unlink(struct lookup *l)
{
    struct registry *r = l->r;
    for (struct lookup **p = &r->lookups; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            r->nlookups--;
            return;
        }
    }
}

/* Answers every waiter with the lookup's result (sends it back when closing) and frees the lookup. */
static void lookup_free(struct lookup *l)
{
    struct registry *r = l->r;
    lookup_unlink(l);
    struct request *q = l->waiters;
    l->waiters = l->waiters_tail = NULL;
    while (q) {
        struct request *next = q->next;
        if (r->closing) answer_stopping(q);
        else answer(q, &l->result);
        q = next;
    }
    free(l);
}

static void on_released(const struct qfs_kv_result *res, void *arg)
{
    struct lookup *l = arg;
    struct registry *r = l->r;
    r->calls--;
    if (res->status != QFS_OK)
        qfs_warn("cannot release the registry lock; it expires by itself", "key", l->lock_key, "status",
                 qfs_status_str(res->status));
    lookup_free(l);
    maybe_free(r);
}

/* Ends the lookup with l->result: releases the lock when held, then answers the waiters (and
 * those that joined meanwhile). */
static void lookup_end(struct lookup *l)
{
    struct registry *r = l->r;
    if (l->owns_lock && !r->closing) {
        l->owns_lock = false;
        qfs_status st = r->store.del_if_value(r->store.impl, l->lock_key, l->holder, strlen(l->holder),
                                              on_released, l);
        if (st == QFS_OK) {
            r->calls++;
            return;
        }
        qfs_warn("cannot release the registry lock; it expires by itself", "key", l->lock_key, "status",
                 qfs_status_str(st));
    }
    lookup_free(l);
}

/* True when the callback of a port call finds the rules closing: the lookup goes quietly. */
static bool lookup_closing(struct lookup *l)
{
    struct registry *r = l->r;
    r->calls--;
    if (!r->closing) return false;
    lookup_free(l);
    maybe_free(r);
    return true;
}

static void end_retry(struct lookup *l, qfs_status st, bool locked, const char *what)
{
    set_result(&l->result, REGISTRY_RETRY, st, "%s (%s)", what, qfs_status_str(st));
    l->result.locked = locked;
    lookup_end(l);
}

static void end_ready(struct lookup *l, const char *uuid)
{
    set_result(&l->result, REGISTRY_READY, QFS_OK, "registry %s", uuid);
    snprintf(l->result.uuid, sizeof(l->result.uuid), "%s", uuid);
    lookup_end(l);
}

enum verdict_of { V_DENIED, V_REFUSED, V_RETRY };

/* What a failed Qualys answer means: 403 denied; a retryable status (or a 2xx whose body was not
 * understood) retry; anything else (401 after re-auth, other 4xx, too big) refused. */
static enum verdict_of classify(qfs_status st, long http_code)
{
    if (st == QFS_DENIED && http_code == 403) return V_DENIED;
    if (qfs_status_is_retryable(st) || st == QFS_INTERNAL) return V_RETRY;
    if (st == QFS_PROTOCOL && http_code >= 200 && http_code < 300) return V_RETRY;
    return V_REFUSED;
}

/* Ends the lookup for a Qualys failure of `what` (st, http_code, Qualys's code and message). */
static void end_qualys_failure(struct lookup *l, const char *what, qfs_status st, long http_code,
                               const char *code, const char *message)
{
    struct result *res = &l->result;
    switch (classify(st, http_code)) {
    case V_DENIED:
        set_result(res, REGISTRY_FAILED, st, "Qualys denied %s (HTTP 403)", what);
        res->reason = QFS_SCAN_FAILURE_QUALYS_DENIED;
        break;
    case V_REFUSED:
        if (http_code)
            set_result(res, REGISTRY_FAILED, st, "Qualys refused %s (HTTP %ld)", what, http_code);
        else
            set_result(res, REGISTRY_FAILED, st, "Qualys refused %s (%s)", what, qfs_status_str(st));
        break;
    case V_RETRY:
        if (http_code)
            set_result(res, REGISTRY_RETRY, st, "%s failed (HTTP %ld, %s)", what, http_code, qfs_status_str(st));
        else
            set_result(res, REGISTRY_RETRY, st, "%s failed (%s)", what, qfs_status_str(st));
        break;
    }
    set_error(res, code, message);
    lookup_end(l);
}

static void end_response(struct lookup *l, const char *what, const struct qfs_qualys_response *resp)
{
    end_qualys_failure(l, what, resp->status, resp->http_code, resp->error_code, resp->message);
}

/* A port call was not accepted: an argument Qualys must not get fails the request; anything else
 * is retried. */
static void end_not_accepted(struct lookup *l, const char *what, qfs_status st)
{
    if (st == QFS_PROTOCOL || st == QFS_INVALID_ARG || st == QFS_TOO_BIG) {
        set_result(&l->result, REGISTRY_FAILED, st, "cannot ask Qualys to %s for %s/%s (%s)", what,
                   l->account, l->region, qfs_status_str(st));
        lookup_end(l);
    } else {
        end_retry(l, st, false, "the call to Qualys was not accepted");
    }
}

static void step_find(struct lookup *l);
static void step_connectors(struct lookup *l);
static void step_create_registry(struct lookup *l);

/* Stores the UUID (no TTL), then answers READY whatever the store says: the registry exists, and
 * a later request that misses the store only lists it again. */
static void on_stored(const struct qfs_kv_result *res, void *arg)
{
    struct lookup *l = arg;
    if (lookup_closing(l)) return;
    if (res->status != QFS_OK)
        qfs_warn("cannot remember the registry UUID", "key", l->key, "status", qfs_status_str(res->status));
    lookup_end(l);
}

static void on_recheck(const struct qfs_kv_result *res, void *arg);

static void on_lock(const struct qfs_kv_result *res, void *arg)
{
    struct lookup *l = arg;
    struct registry *r = l->r;
    l->taking_lock = false;
    if (r->closing && l->close_waits) {
        r->calls--;
        if (res->status == QFS_OK && !res->exists) close_release(r, l->lock_key, l->holder);
        lookup_free(l);
        r->releasing--;
        close_when_released(r);
        return;
    }
    if (lookup_closing(l)) return;
    if (res->status != QFS_OK) {
        end_retry(l, res->status, false, "cannot take the registry lock in the store");
        return;
    }
    if (res->exists) {
        end_retry(l, QFS_UNAVAILABLE, true, "another qfs-registry is looking up this registry");
        return;
    }
    l->owns_lock = true;
    /* The previous holder may have stored the UUID between our miss and our lock. */
    qfs_status st = r->store.get(r->store.impl, l->key, on_recheck, l);
    if (st == QFS_OK) r->calls++;
    else end_retry(l, st, false, "cannot read the store");
}

static void on_recheck(const struct qfs_kv_result *res, void *arg)
{
    struct lookup *l = arg;
    if (lookup_closing(l)) return;
    char uuid[UUID_MAX];
    if (res->status == QFS_OK && registry_value_decode(res->value, res->len, uuid, sizeof(uuid))) {
        end_ready(l, uuid);
        return;
    }
    if (res->status != QFS_OK && res->status != QFS_NOT_FOUND) {
        end_retry(l, res->status, false, "cannot read the store");
        return;
    }
    step_find(l);
}

/* ---- find, or create with its connector -------------------------------------------------- */

static void found(struct lookup *l, const struct qfs_qualys_registry *reg, const char *how)
{
    struct registry *r = l->r;
    if (!registry_uuid_is_valid(reg->uuid)) {
        set_result(&l->result, REGISTRY_FAILED, QFS_PROTOCOL, "Qualys registry %s has an id that is not a UUID",
                   l->uri);
        lookup_end(l);
        return;
    }
    qfs_info(how, "registry_uuid", reg->uuid, "registry_uri", l->uri);
    set_result(&l->result, REGISTRY_READY, QFS_OK, "registry %s", reg->uuid);
    snprintf(l->result.uuid, sizeof(l->result.uuid), "%s", reg->uuid);
    char *value = registry_value_encode(reg->uuid);
    qfs_status st = r->store.put(r->store.impl, l->key, value, strlen(value), 0, on_stored, l);
    free(value);
    if (st == QFS_OK) {
        r->calls++;
        return;
    }
    qfs_warn("cannot remember the registry UUID", "key", l->key, "status", qfs_status_str(st));
    lookup_end(l);
}

static void on_found(const struct qfs_qualys_response *resp, void *arg)
{
    struct lookup *l = arg;
    if (lookup_closing(l)) return;
    if (resp->status == QFS_OK) found(l, resp->registry, "qualys registry found");
    else if (resp->status == QFS_NOT_FOUND) step_connectors(l);
    else end_response(l, "the registry lookup", resp);
}

static void step_find(struct lookup *l)
{
    struct registry *r = l->r;
    qfs_status st = r->qualys.find_registry(r->qualys.impl, l->uri, on_found, l);
    if (st == QFS_OK) r->calls++;
    else end_not_accepted(l, "find the registry", st);
}

static void save_error(struct saved_error *e, const struct qfs_qualys_response *resp)
{
    e->set = true;
    e->status = resp->status;
    e->http_code = resp->http_code;
    snprintf(e->code, sizeof(e->code), "%s", resp->error_code ? resp->error_code : "");
    snprintf(e->message, sizeof(e->message), "%s", resp->message ? resp->message : "");
}

static bool has_connector(const struct lookup *l, const struct qfs_qualys_response *resp)
{
    for (size_t i = 0; i < resp->nconnectors; i++)
        if (strcasecmp(resp->connectors[i].arn, l->role_arn) == 0) return true;
    return false;
}

static void on_aws_base(const struct qfs_qualys_response *resp, void *arg);

static void on_connectors(const struct qfs_qualys_response *resp, void *arg)
{
    struct lookup *l = arg;
    struct registry *r = l->r;
    if (lookup_closing(l)) return;
    if (resp->status != QFS_OK) {
        end_response(l, "the AWS connector list", resp);
        return;
    }
    if (has_connector(l, resp)) {
        step_create_registry(l);
        return;
    }
    if (l->relisting_connectors) {
        /* The create failed and the connector is still missing: the create's error decides. */
        struct saved_error *e = &l->create_error;
        end_qualys_failure(l, "the AWS connector creation", e->status, e->http_code, e->code, e->message);
        return;
    }
    /* The external ID may rotate: read it for each connector created. */
    qfs_status st = r->qualys.aws_base(r->qualys.impl, on_aws_base, l);
    if (st == QFS_OK) r->calls++;
    else end_not_accepted(l, "read the AWS base", st);
}

static void step_connectors(struct lookup *l)
{
    struct registry *r = l->r;
    qfs_status st = r->qualys.list_connectors(r->qualys.impl, on_connectors, l);
    if (st == QFS_OK) r->calls++;
    else end_not_accepted(l, "list the AWS connectors", st);
}

static void on_connector_created(const struct qfs_qualys_response *resp, void *arg)
{
    struct lookup *l = arg;
    if (lookup_closing(l)) return;
    if (resp->status == QFS_OK) {
        qfs_info("qualys aws connector created", "name", l->connector_name, "role_arn", l->role_arn);
        step_create_registry(l);
        return;
    }
    if (classify(resp->status, resp->http_code) == V_DENIED) {
        end_response(l, "the AWS connector creation", resp);
        return;
    }
    /* Applied or not (a 5xx, a lost answer), or refused because another lookup made it (400):
     * the list says, never a second create. */
    save_error(&l->create_error, resp);
    l->relisting_connectors = true;
    step_connectors(l);
}

static void on_aws_base(const struct qfs_qualys_response *resp, void *arg)
{
    struct lookup *l = arg;
    struct registry *r = l->r;
    if (lookup_closing(l)) return;
    if (resp->status != QFS_OK) {
        end_response(l, "the AWS base (external ID) read", resp);
        return;
    }
    snprintf(l->external_id, sizeof(l->external_id), "%s", resp->aws_base->external_id);
    qfs_status st = r->qualys.create_connector(r->qualys.impl, l->connector_name, l->role_arn, l->external_id,
                                               r->account_type, on_connector_created, l);
    if (st == QFS_OK) r->calls++;
    else end_not_accepted(l, "create the AWS connector", st);
}

static void on_relisted(const struct qfs_qualys_response *resp, void *arg)
{
    struct lookup *l = arg;
    if (lookup_closing(l)) return;
    if (resp->status == QFS_OK) {
        found(l, resp->registry, "qualys registry created");
        return;
    }
    struct saved_error *e = &l->create_error;
    if (e->set && classify(e->status, e->http_code) == V_REFUSED) {
        /* Refused and not there: the create's answer is the reason. */
        end_qualys_failure(l, "the registry creation", e->status, e->http_code, e->code, e->message);
        return;
    }
    if (resp->status != QFS_NOT_FOUND) {
        end_response(l, "the registry lookup after a create", resp);
        return;
    }
    if (l->created_without_id) end_retry(l, QFS_UNAVAILABLE, false, "the registry created is not listed yet");
    else end_qualys_failure(l, "the registry creation", e->status, e->http_code, e->code, e->message);
}

static void relist(struct lookup *l)
{
    struct registry *r = l->r;
    qfs_status st = r->qualys.find_registry(r->qualys.impl, l->uri, on_relisted, l);
    if (st == QFS_OK) r->calls++;
    else end_retry(l, st, false, "cannot list the registries after a create");
}

static void on_created(const struct qfs_qualys_response *resp, void *arg)
{
    struct lookup *l = arg;
    if (lookup_closing(l)) return;
    if (resp->status == QFS_OK && registry_uuid_is_valid(resp->uuid)) {
        struct qfs_qualys_registry reg;
        memset(&reg, 0, sizeof(reg));
        snprintf(reg.uuid, sizeof(reg.uuid), "%s", resp->uuid);
        found(l, &reg, "qualys registry created");
        return;
    }
    if (resp->status == QFS_OK) {
        /* Created, but the answer carries no usable id: the list has it. */
        l->created_without_id = true;
        relist(l);
        return;
    }
    if (classify(resp->status, resp->http_code) == V_DENIED) {
        end_response(l, "the registry creation", resp);
        return;
    }
    /* A 5xx or a lost answer may have been applied, and a 400 may say another tool made it: list
     * again rather than create a second time. */
    save_error(&l->create_error, resp);
    relist(l);
}

static void step_create_registry(struct lookup *l)
{
    struct registry *r = l->r;
    l->create_error.set = false;
    qfs_status st = r->qualys.create_registry(r->qualys.impl, l->account, l->region, l->role_arn, l->name,
                                              r->account_type, on_created, l);
    if (st == QFS_OK) r->calls++;
    else end_not_accepted(l, "create the registry", st);
}

/* ---- requests ------------------------------------------------------------------------------ */

static struct lookup *lookup_of(struct registry *r, const char *account, const char *region)
{
    for (struct lookup *l = r->lookups; l; l = l->next)
        if (strcmp(l->account, account) == 0 && strcmp(l->region, region) == 0) return l;
    return NULL;
}

static void add_waiter(struct lookup *l, struct request *q)
{
    q->next = NULL;
    if (l->waiters_tail) l->waiters_tail->next = q;
    else l->waiters = q;
    l->waiters_tail = q;
}

static void lookup_start(struct registry *r, struct request *q)
{
    struct lookup *l = qfs_xcalloc(1, sizeof(*l));
    l->r = r;
    snprintf(l->account, sizeof(l->account), "%s", q->account);
    snprintf(l->region, sizeof(l->region), "%s", q->region);
    registry_key(l->account, l->region, l->key, sizeof(l->key));
    registry_lock_key(l->account, l->region, l->lock_key, sizeof(l->lock_key));
    snprintf(l->holder, sizeof(l->holder), "%s:%" PRIu64, r->holder, ++r->seq);
    snprintf(l->name, sizeof(l->name), "ecr-%s-%s", l->account, l->region);
    snprintf(l->connector_name, sizeof(l->connector_name), "qfs-ecr-%s", l->account);
    add_waiter(l, q);
    l->next = r->lookups;
    r->lookups = l;
    r->nlookups++;

    qfs_status st = qfs_qualys_ecr_registry_uri(l->account, l->region, l->uri, sizeof(l->uri));
    if (st == QFS_OK)
        st = qfs_aws_role_arn(qfs_aws_partition(l->region), l->account, r->role_name, l->role_arn,
                              sizeof(l->role_arn));
    if (st != QFS_OK) {
        set_result(&l->result, REGISTRY_FAILED, QFS_PROTOCOL, "no ECR registry URI or role ARN for %s/%s",
                   l->account, l->region);
        lookup_end(l);
        return;
    }
    st = r->store.put_if_absent(r->store.impl, l->lock_key, l->holder, strlen(l->holder),
                                REGISTRY_LOCK_TTL_SECONDS, on_lock, l);
    if (st == QFS_OK) {
        r->calls++;
        l->taking_lock = true;
    } else {
        end_retry(l, st, false, "cannot take the registry lock in the store");
    }
}

static void on_cached(const struct qfs_kv_result *res, void *arg)
{
    struct request *q = arg;
    struct registry *r = q->r;
    r->calls--;
    if (r->closing) {
        answer_stopping(q);
        maybe_free(r);
        return;
    }
    struct result out;
    char uuid[UUID_MAX];
    if (res->status == QFS_OK && registry_value_decode(res->value, res->len, uuid, sizeof(uuid))) {
        set_result(&out, REGISTRY_READY, QFS_OK, "registry %s", uuid);
        snprintf(out.uuid, sizeof(out.uuid), "%s", uuid);
        answer(q, &out);
        return;
    }
    if (res->status != QFS_OK && res->status != QFS_NOT_FOUND) {
        set_result(&out, REGISTRY_RETRY, res->status, "cannot read the store (%s)", qfs_status_str(res->status));
        answer(q, &out);
        return;
    }
    if (res->status == QFS_OK) {
        char key[KEY_MAX];
        registry_key(q->account, q->region, key, sizeof(key));
        qfs_warn("stored registry value is not usable; looking it up again", "key", key);
    }
    struct lookup *l = lookup_of(r, q->account, q->region);
    if (l) add_waiter(l, q);
    else lookup_start(r, q);
}

qfs_status registry_resolve(struct registry *r, const char *account, const char *region,
                            uint64_t attempt, bool last, registry_done_fn cb, void *arg)
{
    if (!r || !cb) return QFS_INVALID_ARG;
    if (r->closing) return QFS_UNAVAILABLE;
    if (!qfs_proto_is_account(account) || !qfs_proto_is_region(region)) return QFS_PROTOCOL;
    struct request *q = qfs_xcalloc(1, sizeof(*q));
    q->r = r;
    snprintf(q->account, sizeof(q->account), "%s", account);
    snprintf(q->region, sizeof(q->region), "%s", region);
    q->attempt = attempt ? attempt : 1;
    q->last = last;
    q->cb = cb;
    q->arg = arg;
    char key[KEY_MAX];
    registry_key(account, region, key, sizeof(key));
    qfs_status st = r->store.get(r->store.impl, key, on_cached, q);
    if (st != QFS_OK) {
        free(q);
        return st;
    }
    r->nrequests++;
    r->calls++;
    return QFS_OK;
}

/* ---- messages ------------------------------------------------------------------------------ */

qfs_status registry_build_ready(const struct qfs_scan_request *req, const char *uuid, struct qfs_outbox *ob)
{
    char subject[QFS_SUBJECT_MAX], key[QFS_IMAGE_KEY_MAX];
    struct qfs_scan_ready m = {.request = *req, .registry_uuid = (char *)uuid};
    char *json = NULL;
    if (qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_READY, req->image.account,
                           req->image.region) != QFS_OK ||
        qfs_image_key_format(key, sizeof(key), &req->image) != QFS_OK ||
        qfs_scan_ready_encode(&m, &json) != QFS_OK)
        return QFS_INTERNAL;
    char *id = qfs_xasprintf("ready:%s#%" PRId64, key, req->generation);
    qfs_outbox_add_take(ob, subject, id, qfs_schema_name(QFS_SCHEMA_SCAN_READY), json);
    free(id);
    return QFS_OK;
}

/* A text field of a message: NULL for "", and never invalid UTF-8 (a cut Qualys message). */
static char *text_or_null(const char *s)
{
    return s && *s && qfs_utf8_is_valid(s, strlen(s)) ? (char *)s : NULL;
}

qfs_status registry_build_failure(const struct qfs_scan_request *req, const struct registry_outcome *o,
                                  const char *failed_at, struct qfs_outbox *ob)
{
    char subject[QFS_SUBJECT_MAX], key[QFS_IMAGE_KEY_MAX];
    struct qfs_scan_failure m = {
        .image = req->image,
        .generation = req->generation,
        .registry_uuid = NULL,
        .reason = o->reason,
        .detail = text_or_null(o->detail),
        .qualys_error_code = text_or_null(o->error_code),
        .qualys_error_message = text_or_null(o->error_message),
        .poll_attempts = 0,
        .failed_at = (char *)failed_at,
        .deploys = req->deploys,
        .ndeploys = req->ndeploys,
    };
    char *json = NULL;
    if (qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_FAILED, req->image.account,
                           req->image.region) != QFS_OK ||
        qfs_image_key_format(key, sizeof(key), &req->image) != QFS_OK ||
        qfs_scan_failure_encode(&m, &json) != QFS_OK)
        return QFS_INTERNAL;
    char id[QFS_GENERATION_KEY_MAX];
    if (qfs_generation_key(id, sizeof(id), "outcome", key, req->generation) != QFS_OK) {
        free(json);
        return QFS_INTERNAL;
    }
    qfs_outbox_add_take(ob, subject, id, qfs_schema_name(QFS_SCHEMA_SCAN_FAILURE), json);
    return QFS_OK;
}
