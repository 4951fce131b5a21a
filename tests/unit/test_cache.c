/* The qfs-cache rules (services/cache/cache.c) against an in-memory store: every decision of
 * DESIGN.md's qfs-cache section, the messages each one publishes and what each leaves stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "qfs/log.h"
#include "qfs/proto_image.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/util.h"

#define REGISTRY "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
#define DIGEST "sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605"
#define KEY_DIGEST REGISTRY "/web@" DIGEST
#define KEY_TAG REGISTRY "/web:1.4.2"
#define SHA "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433"

/* ---- the fake store ------------------------------------------------------------------------- */

#define FAKE_ITEMS 16
#define FAKE_CALLS 16
#define FAKE_QUEUE 16

struct fake_item {
    char *key;
    char *value;    /* a value, or NULL for a list */
    char **list;
    size_t n;
    int64_t ttl;
};

struct fake_call {
    enum qfs_kv_opcode op;
    char *key;
    char *value;
    int64_t ttl;
};

struct fake_answer {
    qfs_kv_fn cb;
    void *arg;
    struct qfs_kv_result r;
    char *value; /* owned copy for r.value */
};

struct fake {
    struct fake_item items[FAKE_ITEMS];
    struct fake_call calls[FAKE_CALLS];
    size_t ncalls;
    struct fake_answer queue[FAKE_QUEUE];
    size_t head, tail;
    qfs_status answer_all;   /* not QFS_OK: every operation answers this status */
    qfs_status refuse_all;   /* not QFS_OK: every call is refused with this status */
    qfs_status answer_op[QFS_KV_OP_GET_LIST + 1]; /* per operation, as answer_all */
    const char *vanish_on_get; /* a key deleted just before a get of it */
};

static struct fake_item *find(struct fake *f, const char *key)
{
    for (size_t i = 0; i < FAKE_ITEMS; i++)
        if (f->items[i].key && strcmp(f->items[i].key, key) == 0) return &f->items[i];
    return NULL;
}

static void item_clear(struct fake_item *it)
{
    free(it->key);
    free(it->value);
    for (size_t i = 0; i < it->n; i++) free(it->list[i]);
    free(it->list);
    memset(it, 0, sizeof(*it));
}

static struct fake_item *slot(struct fake *f, const char *key)
{
    struct fake_item *it = find(f, key);
    if (it) {
        item_clear(it);
    } else {
        for (size_t i = 0; i < FAKE_ITEMS && !it; i++)
            if (!f->items[i].key) it = &f->items[i];
    }
    assert_non_null(it);
    it->key = qfs_xstrdup(key);
    return it;
}

static void fake_set(struct fake *f, const char *key, const char *value, int64_t ttl)
{
    struct fake_item *it = slot(f, key);
    it->value = qfs_xstrdup(value);
    it->ttl = ttl;
}

static const char *fake_value(struct fake *f, const char *key)
{
    struct fake_item *it = find(f, key);
    return it ? it->value : NULL;
}

static void fake_cleanup(struct fake *f)
{
    for (size_t i = 0; i < FAKE_ITEMS; i++) item_clear(&f->items[i]);
    for (size_t i = 0; i < f->ncalls; i++) {
        free(f->calls[i].key);
        free(f->calls[i].value);
    }
    memset(f, 0, sizeof(*f));
}

/* Records the call and queues its answer; the answer runs in fake_run, never inside the call. */
static qfs_status fake_op(struct fake *f, enum qfs_kv_opcode op, const char *key, const char *value,
                          size_t len, int64_t ttl, unsigned max_items, qfs_kv_fn cb, void *arg)
{
    assert_true(f->ncalls < FAKE_CALLS);
    f->calls[f->ncalls++] = (struct fake_call){op, qfs_xstrdup(key),
                                               value ? qfs_xstrndup(value, len) : NULL, ttl};
    if (f->refuse_all != QFS_OK) return f->refuse_all;
    assert_true(f->tail - f->head < FAKE_QUEUE);
    struct fake_answer *a = &f->queue[f->tail++ % FAKE_QUEUE];
    memset(a, 0, sizeof(*a));
    a->cb = cb;
    a->arg = arg;
    qfs_status fail = f->answer_all != QFS_OK ? f->answer_all : f->answer_op[op];
    if (fail != QFS_OK) {
        a->r.status = fail;
        return QFS_OK;
    }
    if (op == QFS_KV_OP_GET && f->vanish_on_get && strcmp(key, f->vanish_on_get) == 0) {
        struct fake_item *gone = find(f, key);
        if (gone) item_clear(gone);
    }
    struct fake_item *it = find(f, key);
    switch (op) {
    case QFS_KV_OP_GET:
        if (!it) a->r.status = QFS_NOT_FOUND;
        else if (!it->value) a->r.status = QFS_PROTOCOL;
        else {
            a->value = qfs_xstrdup(it->value);
            a->r.value = a->value;
            a->r.len = strlen(a->value);
        }
        break;
    case QFS_KV_OP_PUT:
        it = slot(f, key);
        it->value = qfs_xstrndup(value, len);
        it->ttl = ttl;
        break;
    case QFS_KV_OP_PUT_IF_ABSENT:
        if (it) {
            a->r.exists = true;
        } else {
            it = slot(f, key);
            it->value = qfs_xstrndup(value, len);
            it->ttl = ttl;
        }
        break;
    case QFS_KV_OP_DEL_IF_VALUE:
        if (it && it->value && strlen(it->value) == len && memcmp(it->value, value, len) == 0)
            item_clear(it);
        else
            a->r.not_owner = true;
        break;
    case QFS_KV_OP_APPEND:
        if (!it) it = slot(f, key);
        if (it->n >= max_items) {
            a->r.dropped = true;
        } else {
            it->list = qfs_xrealloc(it->list, (it->n + 1) * sizeof(char *));
            it->list[it->n++] = qfs_xstrndup(value, len);
        }
        it->ttl = ttl;
        break;
    default:
        fail_msg("the rules never call operation %d", (int)op);
    }
    return QFS_OK;
}

static qfs_status f_get(void *impl, const char *key, qfs_kv_fn cb, void *arg)
{
    return fake_op(impl, QFS_KV_OP_GET, key, NULL, 0, 0, 0, cb, arg);
}

static qfs_status f_put(void *impl, const char *key, const char *value, size_t len, int64_t ttl,
                        qfs_kv_fn cb, void *arg)
{
    return fake_op(impl, QFS_KV_OP_PUT, key, value, len, ttl, 0, cb, arg);
}

static qfs_status f_put_if_absent(void *impl, const char *key, const char *value, size_t len,
                                  int64_t ttl, qfs_kv_fn cb, void *arg)
{
    return fake_op(impl, QFS_KV_OP_PUT_IF_ABSENT, key, value, len, ttl, 0, cb, arg);
}

static qfs_status f_del_if_value(void *impl, const char *key, const char *expected, size_t len,
                                 qfs_kv_fn cb, void *arg)
{
    return fake_op(impl, QFS_KV_OP_DEL_IF_VALUE, key, expected, len, 0, 0, cb, arg);
}

static qfs_status f_append(void *impl, const char *key, const char *value, size_t len, int64_t ttl,
                           unsigned max_items, qfs_kv_fn cb, void *arg)
{
    return fake_op(impl, QFS_KV_OP_APPEND, key, value, len, ttl, max_items, cb, arg);
}

/* Delivers queued answers until none is left (answers may queue more). */
static void fake_run(struct fake *f)
{
    while (f->head < f->tail) {
        struct fake_answer a = f->queue[f->head++ % FAKE_QUEUE];
        a.cb(&a.r, a.arg);
        free(a.value);
    }
}

/* Counts the calls of op. */
static size_t ncalls(const struct fake *f, enum qfs_kv_opcode op)
{
    size_t n = 0;
    for (size_t i = 0; i < f->ncalls; i++) n += f->calls[i].op == op;
    return n;
}

static const struct fake_call *last_call(const struct fake *f, enum qfs_kv_opcode op)
{
    for (size_t i = f->ncalls; i > 0; i--)
        if (f->calls[i - 1].op == op) return &f->calls[i - 1];
    return NULL;
}

/* ---- the world of one test ------------------------------------------------------------------ */

struct seen {
    bool done;
    int calls;
    enum cache_decision decision;
    enum cache_action action;
    qfs_status status;
    char reason[256];
    int64_t delay;
    struct qfs_outbox ob; /* taken from the outcome */
};

struct world {
    struct fake store;
    struct cache c;
};

static void on_done(void *arg, struct cache_outcome *out)
{
    struct seen *s = arg;
    s->done = true;
    s->calls++;
    s->decision = out->decision;
    s->action = out->action;
    s->status = out->status;
    snprintf(s->reason, sizeof(s->reason), "%s", out->reason ? out->reason : "");
    s->delay = out->retry_delay_ms;
    s->ob = out->outbox;
    qfs_outbox_init(&out->outbox);
}

static void seen_cleanup(struct seen *s)
{
    qfs_outbox_cleanup(&s->ob);
    memset(s, 0, sizeof(*s));
}

static int setup(void **state)
{
    struct world *w = qfs_xcalloc(1, sizeof(*w));
    w->c.store = (struct cache_store){.impl = &w->store, .get = f_get, .put = f_put,
                                      .put_if_absent = f_put_if_absent,
                                      .del_if_value = f_del_if_value, .append = f_append};
    w->c.set = (struct cache_settings){.result_ttl_s = 86400, .tag_ttl_s = 3600,
                                       .inflight_ttl_s = 7200, .fail_closed = false};
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    assert_int_equal(w->c.jobs, 0);
    fake_cleanup(&w->store);
    free(w);
    return 0;
}

/* ---- messages ------------------------------------------------------------------------------- */

static void fill_image(struct qfs_image_id *img, bool digest)
{
    memset(img, 0, sizeof(*img));
    snprintf(img->account, sizeof(img->account), "111122223333");
    snprintf(img->region, sizeof(img->region), "eu-west-1");
    img->registry = REGISTRY;
    img->repository = "web";
    img->tag = "1.4.2";
    img->digest = digest ? DIGEST : NULL;
    img->image = REGISTRY "/web:1.4.2";
}

static char *containers[] = {"app"};

static void fill_deploy(struct qfs_deploy *d, const char *event_id)
{
    memset(d, 0, sizeof(*d));
    d->event_name = "UpdateService";
    d->event_id = (char *)event_id;
    d->event_time = "2026-05-01T10:00:00Z";
    snprintf(d->event_account, sizeof(d->event_account), "111122223333");
    snprintf(d->event_region, sizeof(d->event_region), "eu-west-1");
    d->principal = "arn:aws:sts::111122223333:assumed-role/ci/run-1";
    d->task_definition_arn = "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42";
    d->cluster = "prod";
    d->service = "web";
    d->containers = containers;
    d->ncontainers = 1;
}

static char *image_json(const char *event_id, bool digest)
{
    struct qfs_image_record r;
    memset(&r, 0, sizeof(r));
    fill_image(&r.image, digest);
    fill_deploy(&r.deploy, event_id);
    r.digest_unresolved = digest ? NULL : "no ECR access";
    char *json = NULL;
    assert_int_equal(qfs_image_record_encode(&r, &json), QFS_OK);
    return json;
}

static char *result_json(int64_t generation, bool digest)
{
    struct qfs_scan_result r;
    memset(&r, 0, sizeof(r));
    fill_image(&r.image, digest);
    struct qfs_deploy d;
    fill_deploy(&d, "evt-1");
    r.generation = generation;
    r.registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21";
    r.qualys_image_sha = SHA;
    r.counts = (struct qfs_severity_counts){.critical = 1, .high = 3, .medium = 7, .low = 2};
    r.total = 13;
    r.patchable = 9;
    r.scanned_at = "2026-05-01T10:06:41.207Z";
    r.deploys = &d;
    r.ndeploys = 1;
    char *json = NULL;
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_OK);
    return json;
}

static char *failure_json(int64_t generation)
{
    struct qfs_scan_failure m;
    memset(&m, 0, sizeof(m));
    fill_image(&m.image, true);
    struct qfs_deploy d;
    fill_deploy(&d, "evt-1");
    m.generation = generation;
    m.reason = QFS_SCAN_FAILURE_TIMEOUT;
    m.detail = "not scanned after 30 checks";
    m.poll_attempts = 30;
    m.failed_at = "2026-05-01T10:30:12.004Z";
    m.deploys = &d;
    m.ndeploys = 1;
    char *json = NULL;
    assert_int_equal(qfs_scan_failure_encode(&m, &json), QFS_OK);
    return json;
}

typedef void (*handler_fn)(struct cache *c, const struct cache_input *in, cache_done_fn cb,
                           void *arg);

/* Runs one handler on json (taken) to its end. */
static void run(struct world *w, handler_fn fn, char *json, uint64_t seq, uint64_t delivery,
                struct seen *s)
{
    memset(s, 0, sizeof(*s));
    struct cache_input in = {.data = json, .len = strlen(json), .trace_id = "trace-1",
                             .stream_seq = seq, .delivery = delivery};
    fn(&w->c, &in, on_done, s);
    free(json);
    fake_run(&w->store);
    assert_true(s->done);
    assert_int_equal(s->calls, 1);
}

static void run_image(struct world *w, const char *event_id, uint64_t seq, struct seen *s)
{
    run(w, cache_on_image, image_json(event_id, true), seq, 1, s);
}

static struct qfs_scan_request decode_request(const struct qfs_outbox_msg *m)
{
    struct qfs_scan_request req;
    char err[256];
    if (qfs_scan_request_decode(m->data, m->len, &req, err, sizeof(err)) != QFS_OK)
        fail_msg("not a scan request: %s", err);
    assert_string_equal(m->schema, "qfs.scan_request.v1");
    assert_string_equal(m->subject, "qfs.scans.requested.111122223333.eu-west-1");
    return req;
}

static struct qfs_skip decode_skip(const struct qfs_outbox_msg *m)
{
    struct qfs_skip sk;
    char err[256];
    if (qfs_skip_decode(m->data, m->len, &sk, err, sizeof(err)) != QFS_OK)
        fail_msg("not a skip record: %s", err);
    assert_string_equal(m->schema, "qfs.skip.v1");
    assert_string_equal(m->subject, "qfs.scans.skipped.111122223333.eu-west-1");
    return sk;
}

/* ---- image records -------------------------------------------------------------------------- */

static void test_miss_sets_marker_and_requests(void **state)
{
    struct world *w = *state;
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    assert_int_equal(s.decision, CACHE_REQUESTED);
    assert_int_equal(s.action, CACHE_ACT_FINISH);
    assert_int_equal(s.ob.n, 1);
    assert_string_equal(s.ob.items[0].msg_id, "request:" KEY_DIGEST "#42");
    struct qfs_scan_request req = decode_request(&s.ob.items[0]);
    assert_int_equal(req.generation, 42);
    assert_false(req.cache_fail_open);
    assert_int_equal(req.ndeploys, 1);
    assert_string_equal(req.deploys[0].event_id, "evt-1");
    assert_string_equal(req.image.digest, DIGEST);
    qfs_scan_request_cleanup(&req);
    /* The store: looked up the result, then set the marker with the in-flight TTL. */
    assert_string_equal(w->store.calls[0].key, "result:" KEY_DIGEST);
    const struct fake_call *put = last_call(&w->store, QFS_KV_OP_PUT_IF_ABSENT);
    assert_string_equal(put->key, "inflight:" KEY_DIGEST);
    assert_int_equal(put->ttl, 7200);
    assert_string_equal(fake_value(&w->store, "inflight:" KEY_DIGEST), "{\"generation\":42}");
    seen_cleanup(&s);
}

static void test_hit_is_a_cached_skip_with_the_summary(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "result:" KEY_DIGEST,
             "{\"generation\":7,\"summary\":{\"qualys_image_sha\":\"" SHA "\",\"counts\":{"
             "\"critical\":1,\"high\":3,\"medium\":7,\"low\":2,\"info\":0},\"total\":13,"
             "\"patchable\":9,\"scanned_at\":\"2026-05-01T10:06:41.207Z\"}}", 86400);
    struct seen s;
    run_image(w, "evt-2", 50, &s);
    assert_int_equal(s.decision, CACHE_CACHED);
    assert_int_equal(s.ob.n, 1);
    assert_string_equal(s.ob.items[0].msg_id, "skip:evt-2:" KEY_DIGEST);
    struct qfs_skip sk = decode_skip(&s.ob.items[0]);
    assert_int_equal(sk.reason, QFS_SKIP_CACHED);
    assert_non_null(sk.summary);
    assert_int_equal(sk.summary->counts.critical, 1);
    assert_int_equal(sk.summary->counts.high, 3);
    assert_int_equal(sk.summary->total, 13);
    assert_int_equal(sk.summary->patchable, 9);
    assert_string_equal(sk.summary->qualys_image_sha, SHA);
    assert_string_equal(sk.deploy.event_id, "evt-2");
    assert_string_equal(sk.digest, DIGEST);
    qfs_skip_cleanup(&sk);
    /* No marker was taken for a hit. */
    assert_int_equal(ncalls(&w->store, QFS_KV_OP_PUT_IF_ABSENT), 0);
    seen_cleanup(&s);
}

static void test_unreadable_result_is_a_miss(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "result:" KEY_DIGEST, "{\"generation\":7,\"summary\":{\"total\":-1}}", 0);
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    assert_int_equal(s.decision, CACHE_REQUESTED);
    seen_cleanup(&s);
}

static void test_own_marker_on_redelivery_requests_again(void **state)
{
    struct world *w = *state;
    struct seen first, again;
    run_image(w, "evt-1", 42, &first);
    assert_int_equal(first.decision, CACHE_REQUESTED);
    /* The same record (stream sequence 42) delivered again: the marker is ours. */
    run(w, cache_on_image, image_json("evt-1", true), 42, 2, &again);
    assert_int_equal(again.decision, CACHE_OWN_MARKER);
    assert_int_equal(again.ob.n, 1);
    assert_string_equal(again.ob.items[0].msg_id, first.ob.items[0].msg_id);
    struct qfs_scan_request req = decode_request(&again.ob.items[0]);
    assert_int_equal(req.generation, 42);
    assert_false(req.cache_fail_open);
    qfs_scan_request_cleanup(&req);
    /* Nothing joined any list: our own scan is the one running. */
    assert_int_equal(ncalls(&w->store, QFS_KV_OP_APPEND), 0);
    seen_cleanup(&first);
    seen_cleanup(&again);
}

static void test_other_generation_joins_and_skips_in_flight(void **state)
{
    struct world *w = *state;
    struct seen first, second;
    run_image(w, "evt-1", 42, &first);
    run_image(w, "evt-2", 50, &second);
    assert_int_equal(second.decision, CACHE_IN_FLIGHT);
    assert_int_equal(second.ob.n, 1);
    assert_string_equal(second.ob.items[0].msg_id, "skip:evt-2:" KEY_DIGEST);
    struct qfs_skip sk = decode_skip(&second.ob.items[0]);
    assert_int_equal(sk.reason, QFS_SKIP_IN_FLIGHT);
    assert_null(sk.summary);
    assert_non_null(strstr(sk.detail, "generation 42"));
    qfs_skip_cleanup(&sk);
    /* The deploy was appended to the running scan's list, as a deploy object. */
    struct fake_item *list = find(&w->store, "deploys:" KEY_DIGEST "#42");
    assert_non_null(list);
    assert_int_equal(list->n, 1);
    assert_int_equal(list->ttl, 7200);
    assert_non_null(strstr(list->list[0], "\"event_id\":\"evt-2\""));
    assert_non_null(strstr(list->list[0], "\"containers\":[\"app\"]"));
    assert_null(strstr(list->list[0], "\"schema\""));
    assert_string_equal(last_call(&w->store, QFS_KV_OP_APPEND)->key, "deploys:" KEY_DIGEST "#42");
    /* The marker still names the running scan. */
    assert_string_equal(fake_value(&w->store, "inflight:" KEY_DIGEST), "{\"generation\":42}");
    seen_cleanup(&first);
    seen_cleanup(&second);
}

static void test_full_list_still_skips_in_flight(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "inflight:" KEY_DIGEST, "{\"generation\":42}", 7200);
    struct fake_item *list = slot(&w->store, "deploys:" KEY_DIGEST "#42");
    list->list = qfs_xcalloc(QFS_KV_MAX_LIST, sizeof(char *));
    for (list->n = 0; list->n < QFS_KV_MAX_LIST; list->n++) list->list[list->n] = qfs_xstrdup("{}");
    struct seen s;
    run_image(w, "evt-3", 60, &s);
    assert_int_equal(s.decision, CACHE_IN_FLIGHT);
    struct qfs_skip sk = decode_skip(&s.ob.items[0]);
    assert_non_null(strstr(sk.detail, "could not be attached"));
    qfs_skip_cleanup(&sk);
    seen_cleanup(&s);
}

static void test_marker_released_between_calls_is_taken(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "inflight:" KEY_DIGEST, "{\"generation\":42}", 7200);
    /* put_if_absent sees the marker, which is gone by the time it is read. */
    w->store.vanish_on_get = "inflight:" KEY_DIGEST;
    struct seen s;
    run_image(w, "evt-4", 70, &s);
    assert_int_equal(s.decision, CACHE_REQUESTED);
    assert_int_equal(ncalls(&w->store, QFS_KV_OP_PUT_IF_ABSENT), 2);
    assert_string_equal(fake_value(&w->store, "inflight:" KEY_DIGEST), "{\"generation\":70}");
    seen_cleanup(&s);
}

static void test_store_down_fails_open(void **state)
{
    struct world *w = *state;
    w->store.answer_all = QFS_UNAVAILABLE;
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    assert_int_equal(s.decision, CACHE_FAIL_OPEN);
    assert_int_equal(s.action, CACHE_ACT_FINISH);
    assert_int_equal(s.ob.n, 1);
    assert_string_equal(s.ob.items[0].msg_id, "request:" KEY_DIGEST "#42");
    struct qfs_scan_request req = decode_request(&s.ob.items[0]);
    assert_true(req.cache_fail_open);
    assert_int_equal(req.generation, 42);
    qfs_scan_request_cleanup(&req);
    assert_int_equal(w->c.fail_open_total, 1);
    seen_cleanup(&s);

    /* A timeout at the marker counts the same, as does a call the store refuses at once. */
    w->store.answer_all = QFS_OK;
    w->store.answer_op[QFS_KV_OP_PUT_IF_ABSENT] = QFS_TIMED_OUT;
    run_image(w, "evt-2", 43, &s);
    assert_int_equal(s.decision, CACHE_FAIL_OPEN);
    seen_cleanup(&s);
    w->store.answer_op[QFS_KV_OP_PUT_IF_ABSENT] = QFS_OK;
    w->store.refuse_all = QFS_UNAVAILABLE;
    run_image(w, "evt-3", 44, &s);
    assert_int_equal(s.decision, CACHE_FAIL_OPEN);
    assert_int_equal(w->c.fail_open_total, 3);
    seen_cleanup(&s);
}

static void test_unreadable_marker_fails_open(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "inflight:" KEY_DIGEST, "garbage", 7200);
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    assert_int_equal(s.decision, CACHE_FAIL_OPEN);
    assert_int_equal(w->c.fail_open_total, 1);
    seen_cleanup(&s);
}

static void test_store_down_fail_closed_retries(void **state)
{
    struct world *w = *state;
    w->c.set.fail_closed = true;
    w->store.answer_all = QFS_UNAVAILABLE;
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    assert_int_equal(s.decision, CACHE_RETRY);
    assert_int_equal(s.action, CACHE_ACT_RETRY);
    assert_int_equal(s.status, QFS_UNAVAILABLE);
    assert_int_equal(s.delay, 2000);
    assert_int_equal(s.ob.n, 0);
    assert_int_equal(w->c.fail_open_total, 0);
    seen_cleanup(&s);
    /* Later deliveries back off, up to a minute. */
    run(w, cache_on_image, image_json("evt-1", true), 42, 3, &s);
    assert_int_equal(s.delay, 8000);
    seen_cleanup(&s);
    run(w, cache_on_image, image_json("evt-1", true), 42, 12, &s);
    assert_int_equal(s.delay, 60000);
    seen_cleanup(&s);
}

static void test_denied_store_retries_even_when_open(void **state)
{
    struct world *w = *state;
    w->store.answer_all = QFS_DENIED;
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    assert_int_equal(s.decision, CACHE_RETRY);
    assert_int_equal(s.status, QFS_DENIED);
    assert_int_equal(w->c.fail_open_total, 0);
    seen_cleanup(&s);
}

static void test_bad_input_is_dead_lettered(void **state)
{
    struct world *w = *state;
    struct seen s;
    run(w, cache_on_image, qfs_xstrdup("{\"schema\":\"qfs.image.v1\"}"), 42, 1, &s);
    assert_int_equal(s.decision, CACHE_DEAD_LETTER);
    assert_int_equal(s.action, CACHE_ACT_DEAD_LETTER);
    assert_int_equal(s.status, QFS_PROTOCOL);
    assert_true(s.reason[0] != '\0');
    seen_cleanup(&s);
    run(w, cache_on_completed, qfs_xstrdup("not json"), 43, 1, &s);
    assert_int_equal(s.action, CACHE_ACT_DEAD_LETTER);
    seen_cleanup(&s);
    run(w, cache_on_failed, image_json("evt-1", true), 44, 1, &s);
    assert_int_equal(s.action, CACHE_ACT_DEAD_LETTER);
    seen_cleanup(&s);
    assert_int_equal(w->store.ncalls, 0);
}

/* ---- finished scans ------------------------------------------------------------------------- */

static void test_completed_stores_then_releases(void **state)
{
    struct world *w = *state;
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    seen_cleanup(&s);
    size_t before = w->store.ncalls;
    run(w, cache_on_completed, result_json(42, true), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_STORED);
    assert_int_equal(s.action, CACHE_ACT_FINISH);
    assert_int_equal(s.ob.n, 0);
    /* put result first, then release our marker with its exact value. */
    assert_int_equal(w->store.ncalls, before + 2);
    const struct fake_call *put = &w->store.calls[before];
    const struct fake_call *del = &w->store.calls[before + 1];
    assert_int_equal(put->op, QFS_KV_OP_PUT);
    assert_string_equal(put->key, "result:" KEY_DIGEST);
    assert_int_equal(put->ttl, 86400);
    assert_int_equal(del->op, QFS_KV_OP_DEL_IF_VALUE);
    assert_string_equal(del->key, "inflight:" KEY_DIGEST);
    assert_string_equal(del->value, "{\"generation\":42}");
    assert_null(fake_value(&w->store, "inflight:" KEY_DIGEST));
    seen_cleanup(&s);

    /* The next record of the image is answered from the stored result. */
    run_image(w, "evt-5", 120, &s);
    assert_int_equal(s.decision, CACHE_CACHED);
    struct qfs_skip sk = decode_skip(&s.ob.items[0]);
    assert_int_equal(sk.summary->counts.medium, 7);
    assert_int_equal(sk.summary->total, 13);
    assert_string_equal(sk.summary->scanned_at, "2026-05-01T10:06:41.207Z");
    qfs_skip_cleanup(&sk);
    seen_cleanup(&s);
}

static void test_tag_keyed_result_has_the_shorter_ttl(void **state)
{
    struct world *w = *state;
    struct seen s;
    run(w, cache_on_completed, result_json(42, false), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_STORED_KEPT);
    const struct fake_call *put = last_call(&w->store, QFS_KV_OP_PUT);
    assert_string_equal(put->key, "result:" KEY_TAG);
    assert_int_equal(put->ttl, 3600);
    seen_cleanup(&s);

    struct cache_settings set = {.result_ttl_s = 600, .tag_ttl_s = 3600};
    assert_int_equal(cache_result_ttl(&set, false), 600);
    assert_int_equal(cache_result_ttl(&set, true), 600);
    set.result_ttl_s = 86400;
    assert_int_equal(cache_result_ttl(&set, false), 3600);
    assert_int_equal(cache_result_ttl(&set, true), 86400);
}

static void test_completed_keeps_another_generations_marker(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "inflight:" KEY_DIGEST, "{\"generation\":50}", 7200);
    struct seen s;
    run(w, cache_on_completed, result_json(42, true), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_STORED_KEPT);
    assert_string_equal(fake_value(&w->store, "inflight:" KEY_DIGEST), "{\"generation\":50}");
    assert_non_null(fake_value(&w->store, "result:" KEY_DIGEST));
    seen_cleanup(&s);
}

static void test_completed_store_down_retries(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "inflight:" KEY_DIGEST, "{\"generation\":42}", 7200);
    w->store.answer_op[QFS_KV_OP_PUT] = QFS_UNAVAILABLE;
    struct seen s;
    run(w, cache_on_completed, result_json(42, true), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_RETRY);
    assert_int_equal(s.status, QFS_UNAVAILABLE);
    /* Nothing released before the result is stored. */
    assert_int_equal(ncalls(&w->store, QFS_KV_OP_DEL_IF_VALUE), 0);
    seen_cleanup(&s);
    /* The release failing retries as well (the put is idempotent). */
    w->store.answer_op[QFS_KV_OP_PUT] = QFS_OK;
    w->store.answer_op[QFS_KV_OP_DEL_IF_VALUE] = QFS_TIMED_OUT;
    run(w, cache_on_completed, result_json(42, true), 99, 2, &s);
    assert_int_equal(s.decision, CACHE_RETRY);
    assert_int_equal(s.delay, 4000);
    seen_cleanup(&s);
}

static void test_failed_releases_only(void **state)
{
    struct world *w = *state;
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    seen_cleanup(&s);
    run(w, cache_on_failed, failure_json(42), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_RELEASED);
    assert_int_equal(s.ob.n, 0);
    assert_int_equal(ncalls(&w->store, QFS_KV_OP_PUT), 0);
    assert_null(fake_value(&w->store, "inflight:" KEY_DIGEST));
    assert_null(fake_value(&w->store, "result:" KEY_DIGEST));
    seen_cleanup(&s);
    /* So the next record of the image starts a new scan. */
    run_image(w, "evt-6", 130, &s);
    assert_int_equal(s.decision, CACHE_REQUESTED);
    assert_string_equal(s.ob.items[0].msg_id, "request:" KEY_DIGEST "#130");
    seen_cleanup(&s);
}

static void test_failed_keeps_another_generations_marker(void **state)
{
    struct world *w = *state;
    fake_set(&w->store, "inflight:" KEY_DIGEST, "{\"generation\":50}", 7200);
    struct seen s;
    run(w, cache_on_failed, failure_json(42), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_KEPT);
    assert_string_equal(fake_value(&w->store, "inflight:" KEY_DIGEST), "{\"generation\":50}");
    seen_cleanup(&s);
    w->store.answer_all = QFS_UNAVAILABLE;
    run(w, cache_on_failed, failure_json(42), 99, 1, &s);
    assert_int_equal(s.decision, CACHE_RETRY);
    seen_cleanup(&s);
}

static void test_each_decision_logs_one_line(void **state)
{
    struct world *w = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    qfs_log_set_fd(fds[1]);
    qfs_log_init("test-cache", QFS_LOG_INFO);
    struct seen s;
    run_image(w, "evt-1", 42, &s);
    seen_cleanup(&s);
    w->store.answer_all = QFS_UNAVAILABLE;
    run_image(w, "evt-2", 43, &s);
    seen_cleanup(&s);
    qfs_log_set_fd(2);
    qfs_log_init("test-cache", QFS_LOG_WARN);
    close(fds[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0) len += (size_t)r;
    close(fds[0]);
    buf[len] = '\0';
    /* Two lines: one per decision, each with the trace id, the image key and the decision. */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    assert_int_equal(lines, 2);
    char *second = strchr(buf, '\n') + 1;
    second[-1] = '\0';
    assert_non_null(strstr(buf, "\"trace_id\":\"trace-1\""));
    assert_non_null(strstr(buf, "\"image_key\":\"" KEY_DIGEST "\""));
    assert_non_null(strstr(buf, "\"decision\":\"requested\""));
    assert_non_null(strstr(second, "\"decision\":\"fail_open\""));
    assert_non_null(strstr(second, "\"fail_open_total\":\"1\""));
}

/* ---- pure parts ----------------------------------------------------------------------------- */

static void test_marker_round_trip(void **state)
{
    (void)state;
    char buf[48];
    size_t n = cache_marker_format(buf, sizeof(buf), 999999999999999LL);
    assert_int_equal(n, strlen(buf));
    int64_t g = 0;
    assert_true(cache_marker_parse(buf, n, &g));
    assert_int_equal(g, 999999999999999LL);
    assert_false(cache_marker_parse("{\"generation\":0}", 16, &g));
    assert_false(cache_marker_parse("{\"generation\":1.5}", 18, &g));
    assert_false(cache_marker_parse("[]", 2, &g));
    assert_int_equal(cache_retry_delay_ms(1), 2000);
    assert_int_equal(cache_retry_delay_ms(2), 4000);
    assert_int_equal(cache_retry_delay_ms(100), 60000);
    assert_string_equal(cache_decision_str(CACHE_IN_FLIGHT), "in_flight");
    assert_string_equal(cache_decision_str(CACHE_OWN_MARKER), "requested_again");
}

int main(void)
{
    qfs_log_init("test-cache", QFS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_sets_marker_and_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hit_is_a_cached_skip_with_the_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_result_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_marker_on_redelivery_requests_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_generation_joins_and_skips_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_list_still_skips_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marker_released_between_calls_is_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_down_fails_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_marker_fails_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_down_fail_closed_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_store_retries_even_when_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_is_dead_lettered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completed_stores_then_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_keyed_result_has_the_shorter_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completed_keeps_another_generations_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completed_store_down_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_releases_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_keeps_another_generations_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_decision_logs_one_line, setup, teardown),
        cmocka_unit_test(test_marker_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
