/* The scanner-poller's rules (poll delays, the timeout, what Qualys answers mean, the outcome
 * messages) and its check of a scan over fakes: an in-memory cache store behind qfs_kv, and Qualys
 * and ECR ports that answer as scripted on the next loop turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "poller.h"
#include "qfs/kv.h"
#include "qfs/util.h"

#define ACCOUNT "111122223333"
#define REGION "eu-west-1"
#define HOST ACCOUNT ".dkr.ecr." REGION ".amazonaws.com"
#define DIGEST "sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c"
#define SHA "2582034a3b2ae939ae7de0024fef7222e3b80bb4c300f6e7b1025b6afd95244f"
#define REG_UUID "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21"
#define KEY_TAGGED HOST "/web@" DIGEST "#42"

#define DEPLOY(id)                                                                                 \
    "{\"event_name\":\"UpdateService\",\"event_id\":\"" id "\","                                   \
    "\"event_time\":\"2026-05-01T10:00:00Z\",\"event_account\":\"" ACCOUNT "\","                   \
    "\"event_region\":\"" REGION "\",\"principal\":null,\"task_definition_arn\":null,"            \
    "\"cluster\":\"prod\",\"service\":\"web\",\"containers\":[\"app\"]}"

static const char *const ready_tagged =
    "{\"schema\":\"qfs.scan_ready.v1\",\"account\":\"" ACCOUNT "\",\"region\":\"" REGION "\","
    "\"registry\":\"" HOST "\",\"repository\":\"web\",\"tag\":\"1.4.2\",\"digest\":\"" DIGEST "\","
    "\"image\":\"" HOST "/web:1.4.2\",\"generation\":42,\"requested_at\":\"2026-05-01T10:00:00Z\","
    "\"cache_fail_open\":false,\"deploys\":[" DEPLOY("evt-1") "],\"registry_uuid\":\"" REG_UUID "\"}";

static const char *const ready_digest_only =
    "{\"schema\":\"qfs.scan_ready.v1\",\"account\":\"" ACCOUNT "\",\"region\":\"" REGION "\","
    "\"registry\":\"" HOST "\",\"repository\":\"legacy\",\"tag\":null,\"digest\":\"" DIGEST "\","
    "\"image\":\"" HOST "/legacy@" DIGEST "\",\"generation\":7,\"requested_at\":\"2026-05-01T10:00:00Z\","
    "\"cache_fail_open\":false,\"deploys\":[" DEPLOY("evt-2") "],\"registry_uuid\":\"" REG_UUID "\"}";

/* ---- an in-memory store behind qfs_kv ------------------------------------------------------- */

#define STORE_MAX 16

struct entry {
    char *key;
    char *value;  /* a plain value, or NULL */
    char **items; /* a list */
    size_t n;
};

struct store {
    struct entry e[STORE_MAX];
    qfs_status fail; /* every operation fails with this when not QFS_OK */
    int ops[QFS_KV_OP_GET_LIST + 1];
};

static struct entry *find(struct store *s, const char *key)
{
    for (int i = 0; i < STORE_MAX; i++)
        if (s->e[i].key && strcmp(s->e[i].key, key) == 0) return &s->e[i];
    return NULL;
}

static struct entry *add(struct store *s, const char *key)
{
    for (int i = 0; i < STORE_MAX; i++)
        if (!s->e[i].key) {
            s->e[i].key = qfs_xstrdup(key);
            return &s->e[i];
        }
    fail_msg("the fake store is full");
    return NULL;
}

static void drop(struct entry *e)
{
    free(e->key);
    free(e->value);
    for (size_t i = 0; i < e->n; i++) free(e->items[i]);
    free(e->items);
    memset(e, 0, sizeof(*e));
}

static void store_set(struct store *s, const char *key, const char *value)
{
    struct entry *e = find(s, key);
    if (e) drop(e);
    e = add(s, key);
    e->value = qfs_xstrdup(value);
}

static void store_append(struct store *s, const char *key, const char *value)
{
    struct entry *e = find(s, key);
    if (!e) e = add(s, key);
    e->items = qfs_xrealloc(e->items, (e->n + 1) * sizeof(char *));
    e->items[e->n++] = qfs_xstrdup(value);
}

static void store_clear(struct store *s)
{
    for (int i = 0; i < STORE_MAX; i++) drop(&s->e[i]);
}

static void store_submit(void *impl, struct qfs_kv_op *op)
{
    struct store *s = impl;
    s->ops[op->code]++;
    if (s->fail != QFS_OK) {
        qfs_kv_op_fail(op, s->fail);
        return;
    }
    struct entry *e = find(s, op->key);
    struct qfs_kv_result r = {.status = QFS_OK};
    switch (op->code) {
    case QFS_KV_OP_GET:
        if (e && e->value) {
            r.value = e->value;
            r.len = strlen(e->value);
        } else {
            r.status = QFS_NOT_FOUND;
        }
        break;
    case QFS_KV_OP_PUT: store_set(s, op->key, op->value); break;
    case QFS_KV_OP_PUT_IF_ABSENT:
        if (e) r.exists = true;
        else store_set(s, op->key, op->value);
        break;
    case QFS_KV_OP_DEL:
        if (e) drop(e);
        break;
    case QFS_KV_OP_DEL_IF_VALUE:
        if (e && e->value && strcmp(e->value, op->value) == 0) drop(e);
        else r.not_owner = true;
        break;
    case QFS_KV_OP_APPEND: store_append(s, op->key, op->value); break;
    case QFS_KV_OP_GET_LIST: {
        if (!e || !e->n) {
            r.status = QFS_NOT_FOUND;
            break;
        }
        size_t *lens = qfs_xcalloc(e->n, sizeof(size_t));
        for (size_t i = 0; i < e->n; i++) lens[i] = strlen(e->items[i]);
        r.items = (const char *const *)e->items;
        r.lens = lens;
        r.n = e->n;
        qfs_kv_op_complete(op, &r);
        free(lens);
        return;
    }
    }
    qfs_kv_op_complete(op, &r);
}

static void store_close(void *impl, void (*done)(void *arg), void *arg)
{
    store_clear(impl);
    done(arg);
}

static const struct qfs_kv_backend store_backend = {"fake", store_submit, store_close};

/* ---- Qualys and ECR that answer as scripted, on the next loop turn --------------------------- */

struct answer {
    qfs_status status;
    long http_code;
    const char *error_code;
    const char *message;
    const char *uuid;
    struct qfs_qualys_image image;
    const struct qfs_qualys_vuln_report *vulns;
};

enum call_kind { CALL_POST, CALL_FIND, CALL_VULNS, CALL_ECR };

struct call {
    enum call_kind kind;
    qfs_qualys_done_fn cb;
    poller_tag_fn tag_cb;
    void *arg;
};

struct fakes {
    uv_idle_t idle;
    struct call queue[8];
    size_t nqueue;
    struct answer post, find, vulns;
    int posts, finds, vuln_reads;
    char posted_tag[130], posted_uuid[64], found_tag[130], found_digest[80], found_host[300];
    /* ECR: the tag lookup answers ecr_status with ecr_tag. */
    qfs_status ecr_status;
    const char *ecr_tag;
    int ecr_calls;
};

static void deliver(uv_idle_t *h)
{
    struct fakes *f = h->data;
    struct call q[8];
    size_t n = f->nqueue;
    memcpy(q, f->queue, n * sizeof(*q));
    f->nqueue = 0;
    uv_idle_stop(h);
    for (size_t i = 0; i < n; i++) {
        if (q[i].kind == CALL_ECR) {
            q[i].tag_cb(q[i].arg, f->ecr_status, f->ecr_tag, "scripted");
            continue;
        }
        const struct answer *a = q[i].kind == CALL_POST ? &f->post : q[i].kind == CALL_FIND ? &f->find : &f->vulns;
        struct qfs_qualys_response r = {.status = a->status, .http_code = a->http_code,
                                        .error_code = a->error_code ? a->error_code : "",
                                        .message = a->message ? a->message : "",
                                        .uuid = a->uuid ? a->uuid : ""};
        if (a->status == QFS_OK && q[i].kind == CALL_FIND) r.image = &a->image;
        if (a->status == QFS_OK && q[i].kind == CALL_VULNS) r.vulns = a->vulns;
        q[i].cb(&r, q[i].arg);
    }
}

static void enqueue(struct fakes *f, enum call_kind kind, qfs_qualys_done_fn cb, poller_tag_fn tag_cb,
                    void *arg)
{
    assert_true(f->nqueue < 8);
    f->queue[f->nqueue++] = (struct call){kind, cb, tag_cb, arg};
    uv_idle_start(&f->idle, deliver);
}

static qfs_status fake_post(void *impl, const char *registry_uuid, const char *repository,
                            const char *tag, const char *name, qfs_qualys_done_fn cb, void *arg)
{
    struct fakes *f = impl;
    f->posts++;
    snprintf(f->posted_tag, sizeof(f->posted_tag), "%s", tag);
    snprintf(f->posted_uuid, sizeof(f->posted_uuid), "%s", registry_uuid);
    assert_true(strlen(name) <= 128);
    enqueue(f, CALL_POST, cb, NULL, arg);
    return QFS_OK;
}

static qfs_status fake_find(void *impl, const char *host, const char *repository, const char *tag,
                            const char *digest, qfs_qualys_done_fn cb, void *arg)
{
    struct fakes *f = impl;
    f->finds++;
    snprintf(f->found_tag, sizeof(f->found_tag), "%s", tag);
    snprintf(f->found_digest, sizeof(f->found_digest), "%s", digest ? digest : "");
    snprintf(f->found_host, sizeof(f->found_host), "%s", host);
    enqueue(f, CALL_FIND, cb, NULL, arg);
    return QFS_OK;
}

static qfs_status fake_vulns(void *impl, const char *sha, qfs_qualys_done_fn cb, void *arg)
{
    struct fakes *f = impl;
    f->vuln_reads++;
    assert_string_equal(sha, SHA);
    enqueue(f, CALL_VULNS, cb, NULL, arg);
    return QFS_OK;
}

static qfs_status fake_find_tag(void *impl, const struct qfs_image_id *img, poller_tag_fn cb, void *arg)
{
    struct fakes *f = impl;
    f->ecr_calls++;
    assert_string_equal(img->digest, DIGEST);
    enqueue(f, CALL_ECR, NULL, cb, arg);
    return QFS_OK;
}

/* ---- fixture --------------------------------------------------------------------------------- */

struct fx {
    uv_loop_t loop;
    struct store store;
    struct qfs_kv *kv;
    struct fakes fakes;
    struct poller_deps deps;
    struct qfs_qualys_vuln_report report;
};

/* web:1.4.2 as the default seed has it: one finding of each severity 5..2, three with a fix. */
static void seed_report(struct qfs_qualys_vuln_report *r)
{
    memset(r, 0, sizeof(*r));
    r->scanned = true;
    static const struct {
        int64_t qid;
        int sev;
        const char *title, *cve, *pkg, *fixed;
    } rows[] = {
        {379002, 4, "Alpine Linux Security Update for busybox", "CVE-2025-4001", "busybox", "1.36.1-r19"},
        {379005, 2, "ncurses Denial of Service", "CVE-2024-1001", "ncurses", ""},
        {379001, 5, "OpenSSL Remote Code Execution Vulnerability", "CVE-2026-0001", "openssl", "3.1.4-r5"},
        {379004, 3, "curl Information Disclosure", "not-a-cve", "curl", "8.6.0-r0"},
    };
    for (size_t i = 0; i < 4; i++) {
        struct qfs_qualys_finding *f = &r->findings[r->nfindings++];
        f->qid = rows[i].qid;
        f->severity = rows[i].sev;
        f->patchable = rows[i].fixed[0] != '\0';
        snprintf(f->title, sizeof(f->title), "%s", rows[i].title);
        snprintf(f->cves[0], sizeof(f->cves[0]), "%s", rows[i].cve);
        f->ncves = 1;
        snprintf(f->package, sizeof(f->package), "%s", rows[i].pkg);
        snprintf(f->installed_version, sizeof(f->installed_version), "1.0");
        snprintf(f->fixed_version, sizeof(f->fixed_version), "%s", rows[i].fixed);
        r->by_severity[rows[i].sev]++;
        r->total++;
        if (f->patchable) r->patchable++;
    }
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(qfs_kv_new_backend(&fx->loop, &store_backend, &fx->store, NULL, &fx->kv), QFS_OK);
    uv_idle_init(&fx->loop, &fx->fakes.idle);
    fx->fakes.idle.data = &fx->fakes;
    fx->fakes.post = (struct answer){.status = QFS_OK, .http_code = 200, .uuid = "sched-1"};
    fx->fakes.find = (struct answer){.status = QFS_NOT_FOUND, .http_code = 204};
    seed_report(&fx->report);
    fx->fakes.vulns = (struct answer){.status = QFS_OK, .http_code = 200, .vulns = &fx->report};
    fx->fakes.ecr_status = QFS_OK;
    struct poller_deps *d = &fx->deps;
    d->kv = fx->kv;
    d->qualys = (struct poller_qualys_port){&fx->fakes, fake_post, fake_find, fake_vulns};
    d->ecr = (struct poller_ecr_port){&fx->fakes, fake_find_tag};
    d->schedule = (struct poller_schedule){.interval_s = 60, .first_s = {5, 10, 20}, .nfirst = 3,
                                           .max_checks = 30};
    d->top_findings = 20;
    d->submission_ttl_s = 7200;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    qfs_kv_free(fx->kv, NULL, NULL);
    uv_close((uv_handle_t *)&fx->fakes.idle, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle closed: nothing leaked */
    free(fx);
    return 0;
}

/* Makes the scripted image scanned (done) or failed. */
static void image_done(struct fx *fx)
{
    struct qfs_qualys_image *img = &fx->fakes.find.image;
    memset(img, 0, sizeof(*img));
    snprintf(img->sha, sizeof(img->sha), SHA);
    snprintf(img->scan_status, sizeof(img->scan_status), "SUCCESS");
    img->last_scanned_ms = 1777629900000LL; /* 2026-05-01T10:05:00Z */
    img->has_vulns = true;
    fx->fakes.find.status = QFS_OK;
    fx->fakes.find.http_code = 200;
}

struct got {
    bool called;
    enum poller_verdict verdict;
    int64_t delay_ms;
    qfs_status status;
    char reason[512];
    char what[64];
    char subject[QFS_SUBJECT_MAX];
    char msg_id[QFS_IMAGE_KEY_MAX + 48];
    cJSON *message;
};

static void on_done(void *arg, const struct poller_outcome *o)
{
    struct got *g = arg;
    assert_false(g->called);
    g->called = true;
    g->verdict = o->verdict;
    g->delay_ms = o->delay_ms;
    g->status = o->status;
    snprintf(g->reason, sizeof(g->reason), "%s", o->reason ? o->reason : "");
    if (o->verdict == POLLER_PUBLISH) {
        assert_int_equal(o->outbox->n, 1);
        snprintf(g->what, sizeof(g->what), "%s", o->what);
        snprintf(g->subject, sizeof(g->subject), "%s", o->outbox->items[0].subject);
        snprintf(g->msg_id, sizeof(g->msg_id), "%s", o->outbox->items[0].msg_id);
        g->message = cJSON_Parse(o->outbox->items[0].data);
    }
}

/* Runs check n of the scan described by json and waits (on the loop, no sleeping) for its end. */
static void run_check(struct fx *fx, const char *json, uint64_t n, struct got *g)
{
    memset(g, 0, sizeof(*g));
    struct qfs_scan_ready ready;
    char err[256];
    assert_int_equal(qfs_scan_ready_decode(json, strlen(json), &ready, err, sizeof(err)), QFS_OK);
    poller_check(&fx->deps, &ready, n, on_done, g);
    for (int i = 0; i < 1000 && !g->called; i++) uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_true(g->called);
}

static void got_cleanup(struct got *g)
{
    cJSON_Delete(g->message);
    g->message = NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t int_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

/* ---- the schedule ---------------------------------------------------------------------------- */

static void test_delay_schedule(void **state)
{
    (void)state;
    struct poller_schedule s = {.interval_s = 60, .max_checks = 30};
    char err[128];
    assert_int_equal(poller_parse_first_delays("5,10,20", &s, err, sizeof(err)), QFS_OK);
    assert_int_equal(s.nfirst, 3);
    assert_int_equal(poller_delay_ms(&s, 1), 5000);
    assert_int_equal(poller_delay_ms(&s, 2), 10000);
    assert_int_equal(poller_delay_ms(&s, 3), 20000);
    assert_int_equal(poller_delay_ms(&s, 4), 60000);
    assert_int_equal(poller_delay_ms(&s, 29), 60000);
    assert_int_equal(poller_span_s(&s), 5 + 10 + 20 + 26 * 60);
    /* The first delays are capped by the interval. */
    s.interval_s = 8;
    assert_int_equal(poller_delay_ms(&s, 1), 5000);
    assert_int_equal(poller_delay_ms(&s, 2), 8000);
    assert_int_equal(poller_delay_ms(&s, 3), 8000);
    assert_int_equal(poller_parse_first_delays("", &s, err, sizeof(err)), QFS_OK);
    assert_int_equal(s.nfirst, 0);
    assert_int_equal(poller_delay_ms(&s, 1), 8000);
    assert_int_equal(poller_parse_first_delays(" 1 , 2 ", &s, err, sizeof(err)), QFS_OK);
    assert_int_equal(s.nfirst, 2);
    assert_int_equal(poller_delay_ms(&s, 2), 2000);

    static const char *const bad[] = {"0", "5,,10", "5,", "a", "-1", "86401", "1,2,3,4,5,6,7,8,9",
                                      "1;2", "99999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(poller_parse_first_delays(bad[i], &s, err, sizeof(err)), QFS_PROTOCOL);
}

static void test_timeout_at_the_limit(void **state)
{
    (void)state;
    struct poller_schedule s = {.interval_s = 60, .max_checks = 30};
    assert_false(poller_is_last_check(&s, 1));
    assert_false(poller_is_last_check(&s, 29));
    assert_true(poller_is_last_check(&s, 30));
    assert_true(poller_is_last_check(&s, 31)); /* a redelivery past the limit */
    s.max_checks = 1;
    assert_true(poller_is_last_check(&s, 1));
}

static void test_classify_answers(void **state)
{
    (void)state;
    enum qfs_scan_failure_reason r = QFS_SCAN_FAILURE_TIMEOUT;
    /* POST /schedule */
    assert_int_equal(poller_classify(true, QFS_OK, 200, &r), POLLER_ANSWER_OK);
    assert_int_equal(poller_classify(true, QFS_PROTOCOL, 200, &r), POLLER_ANSWER_OK); /* body odd */
    assert_int_equal(poller_classify(true, QFS_UNAVAILABLE, 0, &r), POLLER_ANSWER_UNKNOWN);
    assert_int_equal(poller_classify(true, QFS_UNAVAILABLE, 502, &r), POLLER_ANSWER_UNKNOWN);
    assert_int_equal(poller_classify(true, QFS_TIMED_OUT, 408, &r), POLLER_ANSWER_UNKNOWN);
    assert_int_equal(poller_classify(true, QFS_UNAVAILABLE, 409, &r), POLLER_ANSWER_UNKNOWN);
    assert_int_equal(poller_classify(true, QFS_UNAVAILABLE, 429, &r), POLLER_ANSWER_RETRY);
    assert_int_equal(poller_classify(true, QFS_DENIED, 401, &r), POLLER_ANSWER_RETRY);
    assert_int_equal(poller_classify(true, QFS_DENIED, 403, &r), POLLER_ANSWER_REFUSED);
    assert_int_equal(r, QFS_SCAN_FAILURE_QUALYS_DENIED);
    assert_int_equal(poller_classify(true, QFS_PROTOCOL, 400, &r), POLLER_ANSWER_REFUSED);
    assert_int_equal(r, QFS_SCAN_FAILURE_QUALYS_REJECTED);
    assert_int_equal(poller_classify(true, QFS_NOT_FOUND, 404, &r), POLLER_ANSWER_REFUSED);
    assert_int_equal(r, QFS_SCAN_FAILURE_QUALYS_REJECTED);
    /* GETs */
    assert_int_equal(poller_classify(false, QFS_OK, 200, &r), POLLER_ANSWER_OK);
    assert_int_equal(poller_classify(false, QFS_PROTOCOL, 200, &r), POLLER_ANSWER_RETRY);
    assert_int_equal(poller_classify(false, QFS_NOT_FOUND, 404, &r), POLLER_ANSWER_RETRY);
    assert_int_equal(poller_classify(false, QFS_UNAVAILABLE, 503, &r), POLLER_ANSWER_RETRY);
    assert_int_equal(poller_classify(false, QFS_UNAVAILABLE, 0, &r), POLLER_ANSWER_RETRY);
    assert_int_equal(poller_classify(false, QFS_DENIED, 401, &r), POLLER_ANSWER_RETRY);
    r = QFS_SCAN_FAILURE_TIMEOUT;
    assert_int_equal(poller_classify(false, QFS_DENIED, 403, &r), POLLER_ANSWER_REFUSED);
    assert_int_equal(r, QFS_SCAN_FAILURE_QUALYS_DENIED);
    assert_int_equal(poller_classify(false, QFS_PROTOCOL, 400, &r), POLLER_ANSWER_REFUSED);
    assert_int_equal(r, QFS_SCAN_FAILURE_QUALYS_REJECTED);
}

static void test_submission_record_and_tags(void **state)
{
    (void)state;
    char *rec = poller_submission_encode("1.4.2", NULL, 1777629600000LL);
    cJSON *j = cJSON_Parse(rec);
    assert_string_equal(str_of(j, "tag"), "1.4.2");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "schedule_uuid")));
    assert_string_equal(str_of(j, "submitted_at"), "2026-05-01T10:00:00.000Z");
    cJSON_Delete(j);
    char tag[130];
    assert_int_equal(poller_submission_tag(rec, strlen(rec), tag, sizeof(tag)), QFS_OK);
    assert_string_equal(tag, "1.4.2");
    free(rec);
    rec = poller_submission_encode("v2", "sched-9", 0);
    assert_non_null(strstr(rec, "\"schedule_uuid\":\"sched-9\""));
    free(rec);
    assert_int_equal(poller_submission_tag("{", 1, tag, sizeof(tag)), QFS_PROTOCOL);
    assert_int_equal(poller_submission_tag("{\"tag\":\"a,b\"}", 13, tag, sizeof(tag)), QFS_PROTOCOL);
    assert_int_equal(poller_submission_tag("{\"tag\":7}", 9, tag, sizeof(tag)), QFS_PROTOCOL);

    char *tags1[] = {"latest", "2.0.0"};
    assert_string_equal(poller_pick_tag(tags1, 2), "2.0.0");
    char *tags2[] = {"latest"};
    assert_string_equal(poller_pick_tag(tags2, 1), "latest");
    char *tags3[] = {"has space", "x,y"};
    assert_null(poller_pick_tag(tags3, 2));
    assert_null(poller_pick_tag(NULL, 0));
}

static void test_deploys_merged_and_bounded(void **state)
{
    (void)state;
    struct qfs_scan_ready ready;
    char err[256];
    assert_int_equal(qfs_scan_ready_decode(ready_tagged, strlen(ready_tagged), &ready, err, sizeof(err)),
                     QFS_OK);
    struct qfs_deploy joined;
    const char *ok = DEPLOY("evt-join");
    assert_int_equal(qfs_deploy_decode(ok, strlen(ok), &joined, NULL, 0), QFS_OK);
    assert_string_equal(joined.event_id, "evt-join");
    assert_string_equal(joined.containers[0], "app");
    struct qfs_deploy bad;
    const char *no_containers = "{\"event_id\":\"x\"}";
    assert_int_equal(qfs_deploy_decode(no_containers, strlen(no_containers), &bad, NULL, 0),
                     QFS_PROTOCOL);
    assert_int_equal(qfs_deploy_decode("[]", 2, &bad, NULL, 0), QFS_PROTOCOL);
    assert_int_equal(qfs_deploy_decode("nope", 4, &bad, NULL, 0), QFS_PROTOCOL);

    /* The request's deploys first, then those that joined, without repeating an event. */
    struct qfs_deploy b[2];
    qfs_deploy_copy(&b[0], &ready.request.deploys[0]);
    qfs_deploy_copy(&b[1], &joined);
    struct qfs_deploy *all;
    size_t n;
    poller_merge_deploys(ready.request.deploys, ready.request.ndeploys, b, 2, &all, &n);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].event_id, "evt-1");
    assert_string_equal(all[1].event_id, "evt-join");
    qfs_deploys_free(all, n);

    /* At most QFS_PROTO_MAX_DEPLOYS. */
    size_t many = QFS_PROTO_MAX_DEPLOYS + 20;
    struct qfs_deploy *lots = qfs_xcalloc(many, sizeof(*lots));
    for (size_t i = 0; i < many; i++) {
        qfs_deploy_copy(&lots[i], &joined);
        free(lots[i].event_id);
        lots[i].event_id = qfs_xasprintf("evt-%zu", i);
    }
    poller_merge_deploys(ready.request.deploys, 1, lots, many, &all, &n);
    assert_int_equal(n, QFS_PROTO_MAX_DEPLOYS);
    assert_string_equal(all[0].event_id, "evt-1");
    qfs_deploys_free(all, n);
    qfs_deploys_free(lots, many);
    qfs_deploy_cleanup(&b[0]);
    qfs_deploy_cleanup(&b[1]);
    qfs_deploy_cleanup(&joined);
    qfs_scan_ready_cleanup(&ready);
}

/* ---- the messages ---------------------------------------------------------------------------- */

static void test_result_from_a_vuln_report(void **state)
{
    struct fx *fx = *state;
    struct qfs_scan_ready ready;
    char err[256];
    assert_int_equal(qfs_scan_ready_decode(ready_tagged, strlen(ready_tagged), &ready, err, sizeof(err)),
                     QFS_OK);
    /* A finding without a qid is counted but cannot be listed. */
    struct qfs_qualys_vuln_report rep = fx->report;
    struct qfs_qualys_finding *noqid = &rep.findings[rep.nfindings++];
    memset(noqid, 0, sizeof(*noqid));
    noqid->severity = 5;
    rep.by_severity[5]++;
    rep.total++;

    struct qfs_scan_result r;
    poller_build_result(&ready, SHA, 1777629900000LL, &rep, 20, ready.request.deploys,
                        ready.request.ndeploys, 0, &r);
    assert_int_equal(r.counts.critical, 2);
    assert_int_equal(r.counts.high, 1);
    assert_int_equal(r.counts.medium, 1);
    assert_int_equal(r.counts.low, 1);
    assert_int_equal(r.counts.info, 0);
    assert_int_equal(r.total, 5);
    assert_int_equal(r.patchable, 3);
    assert_int_equal(r.nfindings, 4);
    /* Most severe first. */
    assert_int_equal(r.findings[0].qid, 379001);
    assert_int_equal(r.findings[1].qid, 379002);
    assert_int_equal(r.findings[2].qid, 379004);
    assert_int_equal(r.findings[3].qid, 379005);
    assert_string_equal(r.findings[0].fixed_version, "3.1.4-r5");
    assert_null(r.findings[3].fixed_version); /* no fix */
    assert_int_equal(r.findings[2].ncves, 0); /* "not-a-cve" is not a CVE */
    assert_string_equal(r.scanned_at, "2026-05-01T10:05:00.000Z");

    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    assert_int_equal(poller_add_result(&ob, &r), QFS_OK);
    assert_string_equal(ob.items[0].subject, "qfs.scans.completed." ACCOUNT "." REGION);
    assert_string_equal(ob.items[0].msg_id, "outcome:" KEY_TAGGED);
    assert_string_equal(ob.items[0].schema, "qfs.scan_result.v1");
    struct qfs_scan_result back;
    assert_int_equal(qfs_scan_result_decode(ob.items[0].data, ob.items[0].len, &back, err, sizeof(err)),
                     QFS_OK);
    assert_int_equal(back.total, 5);
    qfs_scan_result_cleanup(&back);
    qfs_outbox_cleanup(&ob);
    qfs_scan_result_cleanup(&r);

    /* The top N, and never more findings than vulnerabilities, nor more patchable. */
    poller_build_result(&ready, SHA, 0, &fx->report, 2, ready.request.deploys, 1, 1777629600000LL, &r);
    assert_int_equal(r.nfindings, 2);
    assert_int_equal(r.findings[0].severity, 5);
    assert_int_equal(r.findings[1].severity, 4);
    assert_string_equal(r.scanned_at, "2026-05-01T10:00:00.000Z"); /* no lastScanned: now */
    qfs_scan_result_cleanup(&r);
    rep = fx->report;
    memset(rep.by_severity, 0, sizeof(rep.by_severity));
    rep.by_severity[5] = 1;
    rep.patchable = 9;
    poller_build_result(&ready, SHA, 0, &rep, 20, ready.request.deploys, 1, 0, &r);
    assert_int_equal(r.total, 1);
    assert_int_equal(r.patchable, 1);
    assert_int_equal(r.nfindings, 1);
    qfs_scan_result_cleanup(&r);
    poller_build_result(&ready, SHA, 0, &fx->report, 0, ready.request.deploys, 1, 0, &r);
    assert_int_equal(r.nfindings, 0);
    qfs_scan_result_cleanup(&r);
    qfs_scan_ready_cleanup(&ready);
}

static void test_failure_message(void **state)
{
    (void)state;
    struct qfs_scan_ready ready;
    char err[256];
    assert_int_equal(qfs_scan_ready_decode(ready_tagged, strlen(ready_tagged), &ready, err, sizeof(err)),
                     QFS_OK);
    struct poller_failure pf = {.reason = QFS_SCAN_FAILURE_SCAN_FAILED, .detail = "Qualys scanStatus FAILED",
                                .qualys_error_code = "IMAGE_PULL_FAILED", .qualys_error_message = "",
                                .checks = 4};
    struct qfs_scan_failure f;
    poller_build_failure(&ready, &pf, ready.request.deploys, ready.request.ndeploys, 0, &f);
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    assert_int_equal(poller_add_failure(&ob, &f), QFS_OK);
    assert_string_equal(ob.items[0].subject, "qfs.scans.failed." ACCOUNT "." REGION);
    assert_string_equal(ob.items[0].msg_id, "outcome:" KEY_TAGGED);
    cJSON *j = cJSON_Parse(ob.items[0].data);
    assert_string_equal(str_of(j, "reason"), "scan_failed");
    assert_string_equal(str_of(j, "qualys_error_code"), "IMAGE_PULL_FAILED");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "qualys_error_message")));
    assert_int_equal(int_of(j, "poll_attempts"), 4);
    cJSON_Delete(j);
    qfs_outbox_cleanup(&ob);
    qfs_scan_failure_cleanup(&f);
    qfs_scan_ready_cleanup(&ready);
}

/* ---- checks over the fakes ------------------------------------------------------------------- */

static void test_first_check_records_then_submits(void **state)
{
    struct fx *fx = *state;
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(g.delay_ms, 5000);
    assert_int_equal(fx->fakes.posts, 1);
    assert_string_equal(fx->fakes.posted_tag, "1.4.2");
    assert_string_equal(fx->fakes.posted_uuid, REG_UUID);
    assert_int_equal(fx->fakes.finds, 1);
    assert_string_equal(fx->fakes.found_host, HOST);
    assert_string_equal(fx->fakes.found_digest, DIGEST);
    /* Recorded before the POST (put_if_absent), then completed with the schedule's id. */
    assert_int_equal(fx->store.ops[QFS_KV_OP_PUT_IF_ABSENT], 1);
    struct entry *e = find(&fx->store, "submission:" KEY_TAGGED);
    assert_non_null(e);
    assert_non_null(strstr(e->value, "\"tag\":\"1.4.2\""));
    assert_non_null(strstr(e->value, "\"schedule_uuid\":\"sched-1\""));
    got_cleanup(&g);
}

static void test_submission_exists_no_post(void **state)
{
    struct fx *fx = *state;
    store_set(&fx->store, "submission:" KEY_TAGGED, "{\"tag\":\"1.4.2\",\"schedule_uuid\":null}");
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(fx->fakes.posts, 0);
    assert_int_equal(fx->fakes.finds, 1);

    /* Deploys joined while it ran: one new, one the request already has, one unreadable. */
    store_append(&fx->store, "deploys:" KEY_TAGGED, DEPLOY("evt-join"));
    store_append(&fx->store, "deploys:" KEY_TAGGED, DEPLOY("evt-1"));
    store_append(&fx->store, "deploys:" KEY_TAGGED, "{\"broken\":true}");
    image_done(fx);
    run_check(fx, ready_tagged, 2, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(g.what, "completed");
    assert_int_equal(fx->fakes.posts, 0);
    assert_int_equal(fx->fakes.vuln_reads, 1);
    assert_string_equal(g.subject, "qfs.scans.completed." ACCOUNT "." REGION);
    assert_string_equal(g.msg_id, "outcome:" KEY_TAGGED);
    const cJSON *counts = cJSON_GetObjectItem(g.message, "counts");
    assert_int_equal(int_of(counts, "critical"), 1);
    assert_int_equal(int_of(counts, "high"), 1);
    assert_int_equal(int_of(counts, "medium"), 1);
    assert_int_equal(int_of(counts, "low"), 1);
    assert_int_equal(int_of(g.message, "total"), 4);
    assert_int_equal(int_of(g.message, "patchable"), 3);
    assert_string_equal(str_of(g.message, "qualys_image_sha"), SHA);
    const cJSON *deploys = cJSON_GetObjectItem(g.message, "deploys");
    assert_int_equal(cJSON_GetArraySize(deploys), 2);
    assert_string_equal(str_of(cJSON_GetArrayItem(deploys, 1), "event_id"), "evt-join");
    const cJSON *findings = cJSON_GetObjectItem(g.message, "findings");
    assert_int_equal(int_of(cJSON_GetArrayItem(findings, 0), "qid"), 379001);
    got_cleanup(&g);
}

static void test_ambiguous_post_keeps_polling(void **state)
{
    struct fx *fx = *state;
    fx->fakes.post = (struct answer){.status = QFS_UNAVAILABLE, .http_code = 502};
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(fx->fakes.posts, 1);
    assert_int_equal(fx->fakes.finds, 1); /* polled right away */
    assert_non_null(find(&fx->store, "submission:" KEY_TAGGED));
    /* The next check never POSTs again; the image shows up. */
    fx->fakes.post = (struct answer){.status = QFS_OK, .http_code = 200};
    image_done(fx);
    run_check(fx, ready_tagged, 2, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_int_equal(fx->fakes.posts, 1);
    got_cleanup(&g);

    /* A lost answer (transport error) is just as ambiguous. */
    store_clear(&fx->store);
    fx->fakes.post = (struct answer){.status = QFS_UNAVAILABLE, .http_code = 0};
    fx->fakes.find = (struct answer){.status = QFS_NOT_FOUND, .http_code = 204};
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(fx->fakes.posts, 2);
    assert_int_equal(fx->fakes.finds, 3);
    assert_non_null(find(&fx->store, "submission:" KEY_TAGGED));
}

static void test_refused_post_fails(void **state)
{
    struct fx *fx = *state;
    fx->fakes.post = (struct answer){.status = QFS_PROTOCOL, .http_code = 400,
                                     .error_code = "400 BAD_REQUEST", .message = "invalid filter"};
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(g.what, "qualys_rejected");
    assert_string_equal(g.subject, "qfs.scans.failed." ACCOUNT "." REGION);
    assert_string_equal(str_of(g.message, "reason"), "qualys_rejected");
    assert_string_equal(str_of(g.message, "qualys_error_code"), "400 BAD_REQUEST");
    assert_string_equal(str_of(g.message, "qualys_error_message"), "invalid filter");
    assert_int_equal(fx->fakes.finds, 0);
    got_cleanup(&g);

    store_clear(&fx->store); /* a new scan of the image */
    fx->fakes.post = (struct answer){.status = QFS_DENIED, .http_code = 403, .error_code = "403 FORBIDDEN"};
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(str_of(g.message, "reason"), "qualys_denied");
    got_cleanup(&g);
}

static void test_throttled_post_is_released(void **state)
{
    struct fx *fx = *state;
    fx->fakes.post = (struct answer){.status = QFS_UNAVAILABLE, .http_code = 429};
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(g.delay_ms, 5000);
    assert_int_equal(fx->fakes.finds, 0);
    /* Not applied: the record is removed, so the next check submits. */
    assert_null(find(&fx->store, "submission:" KEY_TAGGED));
    fx->fakes.post = (struct answer){.status = QFS_OK, .http_code = 200};
    run_check(fx, ready_tagged, 2, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(g.delay_ms, 10000);
    assert_int_equal(fx->fakes.posts, 2);
    assert_non_null(find(&fx->store, "submission:" KEY_TAGGED));
}

static void test_digest_only(void **state)
{
    struct fx *fx = *state;
    struct got g;
    /* ECR knows the digest, with no tag. */
    fx->fakes.ecr_tag = NULL;
    run_check(fx, ready_digest_only, 1, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(str_of(g.message, "reason"), "untagged_digest");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(g.message, "tag")));
    assert_int_equal(fx->fakes.posts, 0);
    assert_int_equal(fx->store.ops[QFS_KV_OP_PUT_IF_ABSENT], 0);
    got_cleanup(&g);

    /* ECR no longer has the image. */
    fx->fakes.ecr_status = QFS_NOT_FOUND;
    run_check(fx, ready_digest_only, 1, &g);
    assert_string_equal(str_of(g.message, "reason"), "image_not_found");
    got_cleanup(&g);

    /* ECR throttles: check again later. */
    fx->fakes.ecr_status = QFS_UNAVAILABLE;
    run_check(fx, ready_digest_only, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);

    /* A tag points at it: submitted by that tag, which later checks read from the record. */
    fx->fakes.ecr_status = QFS_OK;
    fx->fakes.ecr_tag = "2.0.0";
    run_check(fx, ready_digest_only, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(fx->fakes.posts, 1);
    assert_string_equal(fx->fakes.posted_tag, "2.0.0");
    assert_string_equal(fx->fakes.found_tag, "2.0.0");
    int ecr_calls = fx->fakes.ecr_calls;
    fx->fakes.ecr_tag = "9.9.9";
    run_check(fx, ready_digest_only, 2, &g);
    assert_int_equal(fx->fakes.ecr_calls, ecr_calls);
    assert_int_equal(fx->fakes.posts, 1);
    assert_string_equal(fx->fakes.found_tag, "2.0.0");
}

static void test_times_out_at_the_limit(void **state)
{
    struct fx *fx = *state;
    fx->deps.schedule.max_checks = 3;
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    run_check(fx, ready_tagged, 2, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(g.delay_ms, 10000);
    /* The image is pulled but never scanned. */
    struct qfs_qualys_image *img = &fx->fakes.find.image;
    memset(img, 0, sizeof(*img));
    snprintf(img->sha, sizeof(img->sha), SHA);
    fx->fakes.find.status = QFS_OK;
    fx->fakes.find.http_code = 200;
    run_check(fx, ready_tagged, 3, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(g.what, "timeout");
    assert_string_equal(str_of(g.message, "reason"), "timeout");
    assert_int_equal(int_of(g.message, "poll_attempts"), 3);
    assert_int_equal(fx->fakes.posts, 1);
    assert_int_equal(fx->fakes.vuln_reads, 0);
    got_cleanup(&g);
}

static void test_scan_failed(void **state)
{
    struct fx *fx = *state;
    struct qfs_qualys_image *img = &fx->fakes.find.image;
    memset(img, 0, sizeof(*img));
    snprintf(img->sha, sizeof(img->sha), SHA);
    snprintf(img->scan_status, sizeof(img->scan_status), "FAILED");
    snprintf(img->scan_error_code, sizeof(img->scan_error_code), "SCAN_TIMEOUT");
    snprintf(img->scan_error_message, sizeof(img->scan_error_message), "layer extraction timed out");
    fx->fakes.find.status = QFS_OK;
    fx->fakes.find.http_code = 200;
    struct got g;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(str_of(g.message, "reason"), "scan_failed");
    assert_string_equal(str_of(g.message, "qualys_error_code"), "SCAN_TIMEOUT");
    assert_string_equal(str_of(g.message, "qualys_error_message"), "layer extraction timed out");
    assert_int_equal(int_of(g.message, "poll_attempts"), 1);
    got_cleanup(&g);
}

static void test_trouble_while_polling(void **state)
{
    struct fx *fx = *state;
    struct got g;
    /* The store is down before anything was recorded: nothing is submitted. */
    fx->store.fail = QFS_UNAVAILABLE;
    run_check(fx, ready_tagged, 1, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(g.status, QFS_UNAVAILABLE);
    assert_int_equal(fx->fakes.posts, 0);
    fx->store.fail = QFS_OK;
    /* 5xx on /images: just a check that could not tell. */
    fx->fakes.find = (struct answer){.status = QFS_UNAVAILABLE, .http_code = 503};
    run_check(fx, ready_tagged, 2, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(g.delay_ms, 10000);
    assert_int_equal(fx->fakes.posts, 1);
    /* A 403 on /images is for good. */
    fx->fakes.find = (struct answer){.status = QFS_DENIED, .http_code = 403, .error_code = "403 FORBIDDEN"};
    run_check(fx, ready_tagged, 3, &g);
    assert_int_equal(g.verdict, POLLER_PUBLISH);
    assert_string_equal(str_of(g.message, "reason"), "qualys_denied");
    got_cleanup(&g);
    /* Stopping: end at once, start nothing. */
    fx->deps.stopping = true;
    int finds = fx->fakes.finds;
    run_check(fx, ready_tagged, 4, &g);
    assert_int_equal(g.verdict, POLLER_RETRY);
    assert_int_equal(fx->fakes.finds, finds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_schedule),
        cmocka_unit_test(test_timeout_at_the_limit),
        cmocka_unit_test(test_classify_answers),
        cmocka_unit_test(test_submission_record_and_tags),
        cmocka_unit_test(test_deploys_merged_and_bounded),
        cmocka_unit_test_setup_teardown(test_result_from_a_vuln_report, setup, teardown),
        cmocka_unit_test(test_failure_message),
        cmocka_unit_test_setup_teardown(test_first_check_records_then_submits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submission_exists_no_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_post_keeps_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_post_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_post_is_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times_out_at_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trouble_while_polling, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
