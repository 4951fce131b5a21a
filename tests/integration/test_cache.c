/* qfs-cache over the local stack, once with Redis and once with DynamoDB (aws-sim): image records
 * published to JetStream become one scan request, then in_flight skips whose deploys join the
 * running scan's list, then cached skips once a scan result is published; a failed scan frees the
 * image for the next record; and with redis-server killed, records fail open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/proto.h"
#include "qfs/proto_image.h"
#include "qfs/proto_scan.h"
#include "qfs/util.h"
#include "testlib.h"

#define REGISTRY "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
#define SHA "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433"
#define WAIT_MS 30000

struct env {
    const char *backend; /* "redis" or "dynamodb" */
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *cache;
    natsConnection *nc;
    jsCtx *js;
    /* The test's own view of the store, through the same kv module and prefix. */
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct qfs_kv *kv;
};

/* ---- the store, read by the test ------------------------------------------------------------ */

static const char *stack_env(const char *name, void *arg)
{
    return qfs_test_stack_get(arg, name);
}

struct read {
    bool done;
    qfs_status status;
    char *value;
    cJSON *items; /* get_list: the elements, parsed */
};

static void on_read(const struct qfs_kv_result *r, void *arg)
{
    struct read *x = arg;
    x->done = true;
    x->status = r->status;
    if (r->value) x->value = qfs_xstrndup(r->value, r->len);
    if (r->n) {
        x->items = cJSON_CreateArray();
        for (size_t i = 0; i < r->n; i++)
            cJSON_AddItemToArray(x->items, cJSON_ParseWithLength(r->items[i], r->lens[i]));
    }
}

static void loop_until(struct env *e, const bool *flag)
{
    if (!qfs_loop_run_until_flag(&e->loop, flag, WAIT_MS))
        fail_msg("the store did not answer within %d ms", WAIT_MS);
}

/* get (or get_list) of key; the caller frees x->value and x->items. */
static struct read store_read(struct env *e, const char *key, bool list)
{
    struct read x = {0};
    qfs_status s = list ? qfs_kv_get_list(e->kv, key, on_read, &x) : qfs_kv_get(e->kv, key, on_read, &x);
    assert_int_equal(s, QFS_OK);
    loop_until(e, &x.done);
    return x;
}

static void store_open(struct env *e)
{
    assert_int_equal(uv_loop_init(&e->loop), 0);
    struct qfs_kv_config cfg = {
        .backend = strcmp(e->backend, "dynamodb") == 0 ? QFS_KV_DYNAMODB : QFS_KV_REDIS,
        .redis_url = (char *)qfs_test_stack_get(&e->stack, "QFS_REDIS_URL"),
        .table = (char *)qfs_test_stack_get(&e->stack, "QFS_CACHE_TABLE"),
        .ttl_seconds = 86400,
        .prefix = "qfs:",
    };
    if (cfg.backend == QFS_KV_DYNAMODB) {
        assert_int_equal(qfs_http_new(&e->loop, NULL, &e->http), QFS_OK);
        struct qfs_aws_options ao = {.env = stack_env, .env_arg = &e->stack};
        assert_int_equal(qfs_aws_new(&e->loop, e->http, &ao, &e->aws), QFS_OK);
    }
    assert_int_equal(qfs_kv_new(&e->loop, &cfg, e->aws, &e->kv), QFS_OK);
}

static void store_close(struct env *e)
{
    qfs_kv_free(e->kv, NULL, NULL);
    qfs_aws_free(e->aws);
    qfs_http_free(e->http);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* ---- the bus -------------------------------------------------------------------------------- */

/* Publishes json (taken) to subject with the headers qfs services write; returns the stream
 * sequence, the generation an image record starts. */
static uint64_t publish(struct env *e, const char *subject, const char *msg_id, const char *trace,
                        enum qfs_schema schema, char *json)
{
    uint64_t seq = qfs_test_publish(e->js, subject, json, msg_id, trace, qfs_schema_name(schema));
    free(json);
    return seq;
}

/* Every stored message on filter, each with its Nats-Msg-Id as "_msg_id". */
static cJSON *stored(struct env *e, const char *filter)
{
    return qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), filter);
}

/* The messages on filter whose Nats-Msg-Id starts with prefix; *last gets a copy of the last. */
static int count_ids(struct env *e, const char *filter, const char *prefix, cJSON **last)
{
    cJSON *list = stored(e, filter);
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *id = cJSON_GetObjectItem(m, "_msg_id");
        if (!cJSON_IsString(id) || strncmp(id->valuestring, prefix, strlen(prefix)) != 0) continue;
        n++;
        if (last) {
            cJSON_Delete(*last);
            *last = cJSON_Duplicate(m, true);
        }
    }
    cJSON_Delete(list);
    return n;
}

struct wait_msg {
    struct env *e;
    const char *filter, *prefix;
    int want;
};

static bool has_msgs(void *arg)
{
    struct wait_msg *w = arg;
    return count_ids(w->e, w->filter, w->prefix, NULL) >= w->want;
}

static void dump_logs(struct env *e)
{
    qfs_test_proc_dump_log(e->cache, 40);
}

/* Waits for the want-th message whose id starts with prefix and returns the last such message. */
static cJSON *wait_msg(struct env *e, const char *filter, const char *prefix, int want)
{
    struct wait_msg w = {e, filter, prefix, want};
    if (!qfs_test_eventually(has_msgs, &w, WAIT_MS)) {
        dump_logs(e);
        fail_msg("[%s] no message %s on %s", e->backend, prefix, filter);
    }
    cJSON *last = NULL;
    count_ids(e, filter, prefix, &last);
    return last;
}

/* ---- messages ------------------------------------------------------------------------------- */

static char *containers[] = {"app"};

static void fill_image(struct qfs_image_id *img, const char *repo, const char *digest)
{
    memset(img, 0, sizeof(*img));
    snprintf(img->account, sizeof(img->account), "111122223333");
    snprintf(img->region, sizeof(img->region), "eu-west-1");
    img->registry = REGISTRY;
    img->repository = (char *)repo;
    img->tag = "1.0.0";
    img->digest = (char *)digest;
    img->image = qfs_xasprintf(REGISTRY "/%s:1.0.0", repo);
}

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

/* A digest per repository, so that every test has images of its own. */
static void digest_of(const char *repo, char out[80])
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = repo; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    int n = snprintf(out, 80, "sha256:");
    for (int i = 0; i < 4; i++) n += snprintf(out + n, 80 - (size_t)n, "%016" PRIx64, h + (uint64_t)i);
}

struct image {
    char repo[64];
    char digest[80];
    char key[QFS_IMAGE_KEY_MAX];
};

static void image_init(struct image *im, struct env *e, const char *name)
{
    snprintf(im->repo, sizeof(im->repo), "it/%s-%s", e->backend, name);
    digest_of(im->repo, im->digest);
    snprintf(im->key, sizeof(im->key), REGISTRY "/%s@%s", im->repo, im->digest);
}

/* Publishes an image record of im for a deploy with event id event_id; returns its generation. */
static uint64_t publish_record(struct env *e, const struct image *im, const char *event_id)
{
    struct qfs_image_record r;
    memset(&r, 0, sizeof(r));
    fill_image(&r.image, im->repo, im->digest);
    fill_deploy(&r.deploy, event_id);
    char *json = NULL;
    assert_int_equal(qfs_image_record_encode(&r, &json), QFS_OK);
    free(r.image.image);
    char subject[QFS_SUBJECT_MAX], id[800];
    qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_IMAGES, "111122223333", "eu-west-1");
    snprintf(id, sizeof(id), "image:%s:%s", event_id, im->key);
    return publish(e, subject, id, event_id, QFS_SCHEMA_IMAGE, json);
}

static void publish_result(struct env *e, const struct image *im, uint64_t generation,
                           const char *event_id)
{
    struct qfs_scan_result r;
    memset(&r, 0, sizeof(r));
    fill_image(&r.image, im->repo, im->digest);
    struct qfs_deploy d;
    fill_deploy(&d, event_id);
    r.generation = (int64_t)generation;
    r.registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21";
    r.qualys_image_sha = SHA;
    r.counts = (struct qfs_severity_counts){.critical = 2, .high = 5, .medium = 1, .low = 0, .info = 4};
    r.total = 12;
    r.patchable = 6;
    r.scanned_at = "2026-05-01T10:06:41.207Z";
    r.deploys = &d;
    r.ndeploys = 1;
    char *json = NULL;
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_OK);
    free(r.image.image);
    char subject[QFS_SUBJECT_MAX], id[800];
    qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_COMPLETED, "111122223333", "eu-west-1");
    snprintf(id, sizeof(id), "outcome:%s#%" PRIu64, im->key, generation);
    publish(e, subject, id, event_id, QFS_SCHEMA_SCAN_RESULT, json);
}

static void publish_failure(struct env *e, const struct image *im, uint64_t generation,
                            const char *event_id)
{
    struct qfs_scan_failure f;
    memset(&f, 0, sizeof(f));
    fill_image(&f.image, im->repo, im->digest);
    struct qfs_deploy d;
    fill_deploy(&d, event_id);
    f.generation = (int64_t)generation;
    f.reason = QFS_SCAN_FAILURE_SCAN_FAILED;
    f.detail = "Qualys reported the scan failed";
    f.poll_attempts = 3;
    f.failed_at = "2026-05-01T10:09:00.000Z";
    f.deploys = &d;
    f.ndeploys = 1;
    char *json = NULL;
    assert_int_equal(qfs_scan_failure_encode(&f, &json), QFS_OK);
    free(f.image.image);
    char subject[QFS_SUBJECT_MAX], id[800];
    qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_FAILED, "111122223333", "eu-west-1");
    snprintf(id, sizeof(id), "outcome:%s#%" PRIu64, im->key, generation);
    publish(e, subject, id, event_id, QFS_SCHEMA_SCAN_FAILURE, json);
}

/* ---- set-up --------------------------------------------------------------------------------- */

static bool consumers_exist(void *arg)
{
    struct env *e = arg;
    const char *names[] = {"cache-images", "cache-completed", "cache-failed"};
    for (size_t i = 0; i < 3; i++) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        if (js_GetConsumerInfo(&ci, e->js, QFS_STREAM_NAME, names[i], NULL, &jerr) != NATS_OK)
            return false;
        jsConsumerInfo_Destroy(ci);
    }
    return true;
}

static int setup(void **state, const char *backend)
{
    struct env *e = calloc(1, sizeof(*e));
    e->backend = backend;
    e->dir = qfs_test_tmpdir("cache");
    qfs_test_stack_up(&e->stack, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    char backend_var[64];
    snprintf(backend_var, sizeof(backend_var), "QFS_CACHE_BACKEND=%s", backend);
    const char *extra[] = {backend_var, "QFS_LOG_LEVEL=debug", NULL};
    e->cache = qfs_test_service_start(&e->stack, "cache", backend, extra);
    if (!qfs_test_eventually(consumers_exist, e, WAIT_MS)) {
        dump_logs(e);
        fail_msg("qfs-cache did not create its consumers");
    }
    char want[64];
    snprintf(want, sizeof(want), "\"backend\":\"%s\"", backend);
    char *log = qfs_test_read_file(e->cache->log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, want));
    free(log);
    store_open(e);
    *state = e;
    return 0;
}

static int setup_redis(void **state)
{
    return setup(state, "redis");
}

static int setup_dynamodb(void **state)
{
    return setup(state, "dynamodb");
}

static int teardown(void **state)
{
    struct env *e = *state;
    if (!e) return 0;
    /* A clean drain: exit 0, which the runtime gives only when every handle was closed. */
    qfs_test_proc_signal(e->cache, SIGTERM);
    int status = 0;
    bool exited = qfs_test_proc_wait(e->cache, 15000, &status);
    if (!exited || !WIFEXITED(status) || WEXITSTATUS(status) != 0) dump_logs(e);
    qfs_test_proc_stop(e->cache);
    store_close(e);
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return exited && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_first_record_requests_then_in_flight_joins(void **state)
{
    struct env *e = *state;
    struct image im;
    image_init(&im, e, "join");
    char request_prefix[800], id[800];
    snprintf(request_prefix, sizeof(request_prefix), "request:%s#", im.key);

    uint64_t g1 = publish_record(e, &im, "evt-join-1");
    snprintf(id, sizeof(id), "request:%s#%" PRIu64, im.key, g1);
    cJSON *req = wait_msg(e, "qfs.scans.requested.>", id, 1);
    assert_int_equal((int64_t)cJSON_GetObjectItem(req, "generation")->valuedouble, (int64_t)g1);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(req, "cache_fail_open")));
    const cJSON *deploys = cJSON_GetObjectItem(req, "deploys");
    assert_int_equal(cJSON_GetArraySize(deploys), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(deploys, 0), "event_id")->valuestring,
                        "evt-join-1");
    cJSON_Delete(req);

    /* The same image while its scan runs: a skip, and the deploy joins the scan's list. */
    publish_record(e, &im, "evt-join-2");
    snprintf(id, sizeof(id), "skip:evt-join-2:%s", im.key);
    cJSON *skip = wait_msg(e, "qfs.scans.skipped.>", id, 1);
    assert_string_equal(cJSON_GetObjectItem(skip, "reason")->valuestring, "in_flight");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(skip, "summary")));
    cJSON_Delete(skip);
    char key[900];
    snprintf(key, sizeof(key), "deploys:%s#%" PRIu64, im.key, g1);
    struct read list = store_read(e, key, true);
    assert_int_equal(list.status, QFS_OK);
    assert_int_equal(cJSON_GetArraySize(list.items), 1);
    const cJSON *joined = cJSON_GetArrayItem(list.items, 0);
    assert_string_equal(cJSON_GetObjectItem(joined, "event_id")->valuestring, "evt-join-2");
    assert_string_equal(cJSON_GetObjectItem(joined, "service")->valuestring, "web");
    cJSON_Delete(list.items);

    /* Exactly one scan request for the image. */
    assert_int_equal(count_ids(e, "qfs.scans.requested.>", request_prefix, NULL), 1);
    snprintf(key, sizeof(key), "inflight:%s", im.key);
    struct read marker = store_read(e, key, false);
    assert_int_equal(marker.status, QFS_OK);
    char want[64];
    snprintf(want, sizeof(want), "{\"generation\":%" PRIu64 "}", g1);
    assert_string_equal(marker.value, want);
    free(marker.value);
}

struct gone_arg {
    struct env *e;
    const char *key;
};

static bool key_gone(void *arg)
{
    struct gone_arg *g = arg;
    struct read r = store_read(g->e, g->key, false);
    free(r.value);
    return r.status == QFS_NOT_FOUND;
}

static void wait_released(struct env *e, const struct image *im)
{
    char key[900];
    snprintf(key, sizeof(key), "inflight:%s", im->key);
    struct gone_arg g = {e, key};
    if (!qfs_test_eventually(key_gone, &g, WAIT_MS)) {
        dump_logs(e);
        fail_msg("[%s] %s was never released", e->backend, key);
    }
}

static void test_result_is_stored_and_answers_the_next_record(void **state)
{
    struct env *e = *state;
    struct image im;
    image_init(&im, e, "cached");
    char id[800];
    uint64_t g = publish_record(e, &im, "evt-cached-1");
    snprintf(id, sizeof(id), "request:%s#%" PRIu64, im.key, g);
    cJSON_Delete(wait_msg(e, "qfs.scans.requested.>", id, 1));

    publish_result(e, &im, g, "evt-cached-1");
    wait_released(e, &im);
    char key[900];
    snprintf(key, sizeof(key), "result:%s", im.key);
    struct read stored_result = store_read(e, key, false);
    assert_int_equal(stored_result.status, QFS_OK);
    cJSON *value = cJSON_Parse(stored_result.value);
    free(stored_result.value);
    assert_int_equal((int64_t)cJSON_GetObjectItem(value, "generation")->valuedouble, (int64_t)g);
    cJSON_Delete(value);

    publish_record(e, &im, "evt-cached-2");
    snprintf(id, sizeof(id), "skip:evt-cached-2:%s", im.key);
    cJSON *skip = wait_msg(e, "qfs.scans.skipped.>", id, 1);
    assert_string_equal(cJSON_GetObjectItem(skip, "reason")->valuestring, "cached");
    const cJSON *summary = cJSON_GetObjectItem(skip, "summary");
    const cJSON *counts = cJSON_GetObjectItem(summary, "counts");
    assert_int_equal(cJSON_GetObjectItem(counts, "critical")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(counts, "high")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItem(counts, "medium")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(counts, "info")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItem(summary, "total")->valueint, 12);
    assert_int_equal(cJSON_GetObjectItem(summary, "patchable")->valueint, 6);
    assert_string_equal(cJSON_GetObjectItem(summary, "qualys_image_sha")->valuestring, SHA);
    cJSON_Delete(skip);
    char prefix[800];
    snprintf(prefix, sizeof(prefix), "request:%s#", im.key);
    assert_int_equal(count_ids(e, "qfs.scans.requested.>", prefix, NULL), 1);
}

static void test_failed_scan_frees_the_image(void **state)
{
    struct env *e = *state;
    struct image im;
    image_init(&im, e, "failed");
    char id[800];
    uint64_t g1 = publish_record(e, &im, "evt-failed-1");
    snprintf(id, sizeof(id), "request:%s#%" PRIu64, im.key, g1);
    cJSON_Delete(wait_msg(e, "qfs.scans.requested.>", id, 1));

    publish_failure(e, &im, g1, "evt-failed-1");
    wait_released(e, &im);
    /* Failures are not cached: the next record requests a new scan, with its own generation. */
    uint64_t g2 = publish_record(e, &im, "evt-failed-2");
    snprintf(id, sizeof(id), "request:%s#%" PRIu64, im.key, g2);
    cJSON *req = wait_msg(e, "qfs.scans.requested.>", id, 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(req, "deploys"), 0),
                                            "event_id")->valuestring, "evt-failed-2");
    cJSON_Delete(req);
    char prefix[800];
    snprintf(prefix, sizeof(prefix), "request:%s#", im.key);
    assert_int_equal(count_ids(e, "qfs.scans.requested.>", prefix, NULL), 2);
    snprintf(prefix, sizeof(prefix), "skip:evt-failed-2:");
    assert_int_equal(count_ids(e, "qfs.scans.skipped.>", prefix, NULL), 0);
}

/* Last in the Redis group: redis-server does not come back. */
static void test_redis_killed_fails_open(void **state)
{
    struct env *e = *state;
    qfs_test_stack_signal(&e->stack, "redis", SIGKILL);

    struct image im;
    image_init(&im, e, "open");
    uint64_t g = publish_record(e, &im, "evt-open-1");
    char id[800];
    snprintf(id, sizeof(id), "request:%s#%" PRIu64, im.key, g);
    cJSON *req = wait_msg(e, "qfs.scans.requested.>", id, 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(req, "cache_fail_open")));
    assert_int_equal((int64_t)cJSON_GetObjectItem(req, "generation")->valuedouble, (int64_t)g);
    cJSON_Delete(req);
    /* The service counted it. */
    char *log = qfs_test_read_file(e->cache->log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"decision\":\"fail_open\""));
    assert_non_null(strstr(log, "\"fail_open_total\":\"1\""));
    free(log);
}

int main(void)
{
    const struct CMUnitTest dynamodb[] = {
        cmocka_unit_test(test_first_record_requests_then_in_flight_joins),
        cmocka_unit_test(test_result_is_stored_and_answers_the_next_record),
        cmocka_unit_test(test_failed_scan_frees_the_image),
    };
    const struct CMUnitTest redis[] = {
        cmocka_unit_test(test_first_record_requests_then_in_flight_joins),
        cmocka_unit_test(test_result_is_stored_and_answers_the_next_record),
        cmocka_unit_test(test_failed_scan_frees_the_image),
        cmocka_unit_test(test_redis_killed_fails_open),
    };
    int failed = cmocka_run_group_tests_name("dynamodb", dynamodb, setup_dynamodb, teardown);
    failed += cmocka_run_group_tests_name("redis", redis, setup_redis, teardown);
    return failed;
}
