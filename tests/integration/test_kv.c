/* The cache store against real servers: one suite whose test functions run against both backends,
 * a redis-server started here and DynamoDB (dynalite behind aws-sim, which verifies SigV4). Also,
 * for Redis, a server killed mid-run and restarted on the same port; for DynamoDB, a missing table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/util.h"
#include "testlib.h"

#define HUB_KEY "AKIAQFSSIMHUB0000001"
#define HUB_SECRET "qfs-sim-hub-secret-0000000000000000000001"
#define REGION "eu-west-1"
#define TABLE "qfs-cache-test"
#define WAIT_MS 30000

static struct {
    char *dir;
    struct qfs_test_proc *redis;
    int redis_port;
    char redis_url[64];
    struct qfs_test_proc *redis_auth; /* with a password, started by the test that needs it */
    int redis_auth_port;
    struct qfs_test_proc *sim;
    char endpoint[64];
    int counter; /* each test gets its own key prefix */
} world;

struct env_var {
    const char *k;
    const char *v;
};

static const char *table_env(const char *name, void *arg)
{
    for (const struct env_var *e = arg; e->k; e++)
        if (strcmp(e->k, name) == 0) return e->v;
    return NULL;
}

static struct env_var aws_env[] = {
    {"AWS_REGION", REGION},
    {"AWS_ENDPOINT_URL", world.endpoint},
    {"AWS_ACCESS_KEY_ID", HUB_KEY},
    {"AWS_SECRET_ACCESS_KEY", HUB_SECRET},
    {NULL, NULL},
};

/* ---- the loop ---- */

static void on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs loop until *flag is set; fails the test after WAIT_MS. */
static void wait_for(uv_loop_t *loop, const bool *flag)
{
    if (!qfs_loop_run_until_flag(loop, flag, WAIT_MS)) fail_msg("no callback within %d ms", WAIT_MS);
}

/* Runs loop for ms milliseconds (between polls of something that changes with time). */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_timer, ms, 0);
    wait_for(loop, &done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- raw DynamoDB calls (table set-up, items written behind the store's back) ---- */

struct raw {
    bool done;
    qfs_status status;
    char code[128];
    char *body;
};

static void on_raw(const struct qfs_aws_response *r, void *arg)
{
    struct raw *x = arg;
    x->done = true;
    x->status = r->status;
    snprintf(x->code, sizeof(x->code), "%s", r->error_code);
    x->body = qfs_xstrndup(r->body, r->body_len);
}

/* Returns the response body (caller frees); fails the test unless the call succeeded. */
static char *ddb_raw(uv_loop_t *loop, struct qfs_aws *aws, const char *op, const char *body)
{
    struct raw x = {0};
    char target[64];
    snprintf(target, sizeof(target), "DynamoDB_20120810.%s", op);
    struct qfs_aws_call c = {.service = QFS_AWS_DYNAMODB, .protocol = QFS_AWS_JSON_1_0,
                             .target = target, .body = body, .body_len = strlen(body)};
    assert_int_equal(qfs_aws_call(aws, &c, on_raw, &x), QFS_OK);
    wait_for(loop, &x.done);
    if (x.status != QFS_OK) fail_msg("%s: %s %s: %s", op, qfs_status_str(x.status), x.code, x.body);
    return x.body;
}

static void create_table(void)
{
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_aws *aws;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);
    struct qfs_aws_options o = {.env = table_env, .env_arg = aws_env};
    assert_int_equal(qfs_aws_new(&loop, http, &o, &aws), QFS_OK);
    free(ddb_raw(&loop, aws, "CreateTable",
                 "{\"TableName\":\"" TABLE "\",\"BillingMode\":\"PAY_PER_REQUEST\","
                 "\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],"
                 "\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}]}"));
    for (int i = 0;; i++) {
        char *d = ddb_raw(&loop, aws, "DescribeTable", "{\"TableName\":\"" TABLE "\"}");
        bool active = strstr(d, "\"TableStatus\":\"ACTIVE\"") != NULL;
        free(d);
        if (active) break;
        assert_true(i < 100);
        run_for(&loop, 50);
    }
    free(ddb_raw(&loop, aws, "UpdateTimeToLive",
                 "{\"TableName\":\"" TABLE "\",\"TimeToLiveSpecification\":"
                 "{\"Enabled\":true,\"AttributeName\":\"ttl\"}}"));
    qfs_aws_free(aws);
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- servers ---- */

static struct qfs_test_proc *redis_start(int port_number, const char *password)
{
    char port[16], log[1024];
    snprintf(port, sizeof(port), "%d", port_number);
    snprintf(log, sizeof(log), "%s/redis-%d.log", world.dir, port_number);
    const char *argv[16] = {qfs_test_env("QFS_REDIS_SERVER", "redis-server"), "--bind", "127.0.0.1",
                            "--port", port, "--save", "", "--appendonly", "no", "--dir", world.dir};
    if (password) {
        argv[11] = "--requirepass";
        argv[12] = password;
    }
    struct qfs_test_proc *p = qfs_test_spawn("redis", argv, NULL, log, false);
    if (!qfs_test_wait_port(port_number, 10000)) {
        qfs_test_proc_dump_log(p, 20);
        fail_msg("redis-server did not start");
    }
    return p;
}

static void redis_spawn(void)
{
    world.redis = redis_start(world.redis_port, NULL);
}

static int group_setup(void **state)
{
    qfs_log_init("it_kv", QFS_LOG_WARN);
    world.dir = qfs_test_tmpdir("kv");
    world.redis_port = qfs_test_free_port();
    snprintf(world.redis_url, sizeof(world.redis_url), "redis://127.0.0.1:%d", world.redis_port);
    redis_spawn();

    const char *src = qfs_test_env("QFS_SOURCE_DIR", ".");
    char script[1024], log[1024];
    snprintf(script, sizeof(script), "%s/tests/sim/aws-sim/server.js", src);
    snprintf(log, sizeof(log), "%s/aws-sim.log", world.dir);
    const char *args[] = {"--region", REGION, NULL}; /* the default seed has the hub key */
    int port = qfs_test_node_start(&world.sim, "aws-sim", script, args, log);
    snprintf(world.endpoint, sizeof(world.endpoint), "http://127.0.0.1:%d", port);
    create_table();
    return 0;
}

static int group_teardown(void **state)
{
    qfs_test_proc_stop(world.redis);
    qfs_test_proc_stop(world.redis_auth);
    qfs_test_proc_stop(world.sim);
    qfs_test_rmrf(world.dir);
    free(world.dir);
    return 0;
}

/* ---- one store per test ---- */

struct fixture {
    enum qfs_kv_backend_kind backend;
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct qfs_kv *kv;
    char prefix[32];
};

static int setup_store(void **state, enum qfs_kv_backend_kind backend, const char *table)
{
    struct fixture *fx = qfs_xcalloc(1, sizeof(*fx));
    fx->backend = backend;
    snprintf(fx->prefix, sizeof(fx->prefix), "t%d:", ++world.counter);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    if (backend == QFS_KV_REDIS) {
        /* Short reconnect delays so that the restart test does not wait long. */
        struct qfs_kv_redis_options o = {.url = world.redis_url, .prefix = fx->prefix,
                                         .reconnect_max_ms = 250};
        assert_int_equal(qfs_kv_redis_new(&fx->loop, &o, &fx->kv), QFS_OK);
    } else {
        assert_int_equal(qfs_http_new(&fx->loop, NULL, &fx->http), QFS_OK);
        struct qfs_aws_options o = {.env = table_env, .env_arg = aws_env, .max_attempts = 1};
        assert_int_equal(qfs_aws_new(&fx->loop, fx->http, &o, &fx->aws), QFS_OK);
        /* Through the factory, as services build it from their config. */
        struct qfs_kv_config cfg = {.backend = QFS_KV_DYNAMODB, .table = (char *)table,
                                    .ttl_seconds = 86400, .prefix = fx->prefix};
        assert_int_equal(qfs_kv_new(&fx->loop, &cfg, fx->aws, &fx->kv), QFS_OK);
    }
    assert_string_equal(qfs_kv_backend_name(fx->kv), backend == QFS_KV_REDIS ? "redis" : "dynamodb");
    *state = fx;
    return 0;
}

static int setup_redis(void **state)
{
    return setup_store(state, QFS_KV_REDIS, NULL);
}

/* A loop alone: the test makes its own stores. */
static int setup_loop(void **state)
{
    struct fixture *fx = qfs_xcalloc(1, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    *state = fx;
    return 0;
}

static int setup_dynamodb(void **state)
{
    return setup_store(state, QFS_KV_DYNAMODB, TABLE);
}

static int setup_dynamodb_no_table(void **state)
{
    return setup_store(state, QFS_KV_DYNAMODB, "qfs-no-such-table");
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static int teardown_store(void **state)
{
    struct fixture *fx = *state;
    bool closed = fx->kv == NULL; /* tests with their own stores free them */
    qfs_kv_free(fx->kv, on_closed, &closed);
    qfs_aws_free(fx->aws);
    qfs_http_free(fx->http);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle closed: nothing leaked */
    free(fx);
    return 0;
}

/* ---- synchronous wrappers for the tests ---- */

struct res {
    bool done;
    qfs_status status;
    bool exists, not_owner, dropped;
    char *value;
    size_t len;
    char **items;
    size_t *lens;
    size_t n;
};

static void res_clear(struct res *x)
{
    free(x->value);
    qfs_kv_list_free(x->items, x->lens, x->n);
    memset(x, 0, sizeof(*x));
}

static void on_res(const struct qfs_kv_result *r, void *arg)
{
    struct res *x = arg;
    assert_false(x->done);
    x->done = true;
    x->status = r->status;
    x->exists = r->exists;
    x->not_owner = r->not_owner;
    x->dropped = r->dropped;
    if (r->value) {
        x->value = qfs_xstrndup(r->value, r->len);
        x->len = r->len;
    }
    if (r->n) {
        x->items = qfs_xcalloc(r->n, sizeof(char *));
        x->lens = qfs_xcalloc(r->n, sizeof(size_t));
        for (size_t i = 0; i < r->n; i++) {
            x->items[i] = qfs_xstrndup(r->items[i], r->lens[i]);
            x->lens[i] = r->lens[i];
        }
        x->n = r->n;
    }
}

/* Issues call (which passes x to on_res), then runs the loop until the result arrives. */
#define RUN(fx, x, call)                                  \
    do {                                                  \
        res_clear(x);                                     \
        assert_int_equal((call), QFS_OK);                 \
        assert_false((x)->done); /* never inside the call */ \
        wait_for(&(fx)->loop, &(x)->done);                \
    } while (0)

static void get(struct fixture *fx, struct res *x, const char *key)
{
    RUN(fx, x, qfs_kv_get(fx->kv, key, on_res, x));
}

static void put(struct fixture *fx, struct res *x, const char *key, const char *value, int64_t ttl)
{
    RUN(fx, x, qfs_kv_put(fx->kv, key, value, strlen(value), ttl, on_res, x));
    assert_int_equal(x->status, QFS_OK);
}

static void put_if_absent(struct fixture *fx, struct res *x, const char *key, const char *value,
                          int64_t ttl)
{
    RUN(fx, x, qfs_kv_put_if_absent(fx->kv, key, value, strlen(value), ttl, on_res, x));
    assert_int_equal(x->status, QFS_OK);
}

static void del_if_value(struct fixture *fx, struct res *x, const char *key, const char *expected)
{
    RUN(fx, x, qfs_kv_del_if_value(fx->kv, key, expected, strlen(expected), on_res, x));
    assert_int_equal(x->status, QFS_OK);
}

static void append(struct fixture *fx, struct res *x, const char *key, const char *value,
                   int64_t ttl, unsigned max)
{
    RUN(fx, x, qfs_kv_append(fx->kv, key, value, strlen(value), ttl, max, on_res, x));
    assert_int_equal(x->status, QFS_OK);
}

static void get_list(struct fixture *fx, struct res *x, const char *key)
{
    RUN(fx, x, qfs_kv_get_list(fx->kv, key, on_res, x));
}

/* Makes key hold value (or, with list, a one-element list) past its TTL. DynamoDB: an item whose
 * ttl is an hour ago, written behind the store's back, which stays readable in the table; Redis:
 * a 1 s TTL, polled with a deadline until the server expires it. */
static void make_expired(struct fixture *fx, const char *key, const char *value, bool list)
{
    struct res x = {0};
    if (fx->backend == QFS_KV_REDIS) {
        if (list) append(fx, &x, key, value, 1, 10);
        else put(fx, &x, key, value, 1);
        uint64_t deadline = qfs_mono_ms() + 5000;
        for (;;) {
            if (list) get_list(fx, &x, key);
            else get(fx, &x, key);
            if (x.status == QFS_NOT_FOUND) break;
            assert_int_equal(x.status, QFS_OK);
            assert_true(qfs_mono_ms() < deadline);
            run_for(&fx->loop, 100);
        }
        res_clear(&x);
        return;
    }
    char pk[128], past[32];
    snprintf(pk, sizeof(pk), "%s%s", fx->prefix, key);
    snprintf(past, sizeof(past), "%lld", (long long)(qfs_now_ms() / 1000 - 3600));
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "TableName", TABLE);
    cJSON *item = cJSON_AddObjectToObject(req, "Item");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(item, "pk"), "S", pk);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(item, "ttl"), "N", past);
    cJSON *v = cJSON_AddObjectToObject(item, "v");
    if (list) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "S", value);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(v, "L"), e);
    } else {
        cJSON_AddStringToObject(v, "S", value);
    }
    char *body = cJSON_PrintUnformatted(req);
    free(ddb_raw(&fx->loop, fx->aws, "PutItem", body));
    free(body);
    /* Still in the table, as AWS leaves expired items for up to days. */
    cJSON_DeleteItemFromObject(req, "Item");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(req, "Key"), "pk"),
                            "S", pk);
    cJSON_AddTrueToObject(req, "ConsistentRead");
    body = cJSON_PrintUnformatted(req);
    char *got = ddb_raw(&fx->loop, fx->aws, "GetItem", body);
    cJSON *resp = cJSON_Parse(got);
    assert_non_null(cJSON_GetObjectItem(resp, "Item"));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "Item"),
                                                                "ttl"), "N")->valuestring, past);
    cJSON_Delete(resp);
    cJSON_Delete(req);
    free(got);
    free(body);
}

/* ---- the suite, for both backends ---- */

static void test_get_missing(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    get(fx, &x, "result:sha256:absent");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_null(x.value);
    get_list(fx, &x, "deploys:absent");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_int_equal(x.n, 0);
    res_clear(&x);
}

static void test_put_get_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    const char *v1 = "{\"schema\":\"qfs.scan.result.v1\",\"title\":\"caf\xc3\xa9 \\\"q\\\"\\n\","
                     "\"counts\":{\"5\":2,\"4\":5}}";
    put(fx, &x, "result:sha256:1111", v1, 60);
    get(fx, &x, "result:sha256:1111");
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.value, v1);
    assert_int_equal(x.len, strlen(v1));
    /* put replaces; a TTL of 0 never expires. */
    put(fx, &x, "result:sha256:1111", "{\"v\":2}", 0);
    get(fx, &x, "result:sha256:1111");
    assert_string_equal(x.value, "{\"v\":2}");
    /* Keys are namespaced: another prefix does not see it. */
    get(fx, &x, "result:sha256:2222");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    /* del removes; deleting what is absent is fine. */
    RUN(fx, &x, qfs_kv_del(fx->kv, "result:sha256:1111", on_res, &x));
    assert_int_equal(x.status, QFS_OK);
    get(fx, &x, "result:sha256:1111");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    RUN(fx, &x, qfs_kv_del(fx->kv, "result:sha256:1111", on_res, &x));
    assert_int_equal(x.status, QFS_OK);
    res_clear(&x);
}

static void test_put_if_absent_twice(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    put_if_absent(fx, &x, "inflight:web", "{\"owner\":\"a\"}", 600);
    assert_false(x.exists);
    put_if_absent(fx, &x, "inflight:web", "{\"owner\":\"b\"}", 600);
    assert_true(x.exists);
    get(fx, &x, "inflight:web");
    assert_string_equal(x.value, "{\"owner\":\"a\"}");
    res_clear(&x);
}

/* Twenty replicas racing for one marker: exactly one wins and its value is what is stored. */
static void test_put_if_absent_race(void **state)
{
    struct fixture *fx = *state;
    enum { N = 20 };
    struct res x[N];
    char values[N][16];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < N; i++) {
        snprintf(values[i], sizeof(values[i]), "owner-%d", i);
        assert_int_equal(qfs_kv_put_if_absent(fx->kv, "inflight:race", values[i],
                                              strlen(values[i]), 600, on_res, &x[i]),
                         QFS_OK);
    }
    int winner = -1;
    for (int i = 0; i < N; i++) {
        wait_for(&fx->loop, &x[i].done);
        assert_int_equal(x[i].status, QFS_OK);
        if (!x[i].exists) {
            assert_int_equal(winner, -1);
            winner = i;
        }
    }
    assert_int_not_equal(winner, -1);
    struct res g = {0};
    get(fx, &g, "inflight:race");
    assert_string_equal(g.value, values[winner]);
    res_clear(&g);
    for (int i = 0; i < N; i++) res_clear(&x[i]);
}

/* An item past its TTL is absent for get, put_if_absent and get_list, even while DynamoDB still
 * holds it; for Redis this is the 1 s TTL expiring on the server. */
static void test_expired_counts_as_absent(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    make_expired(fx, "inflight:old", "{\"owner\":\"crashed\"}", false);
    get(fx, &x, "inflight:old");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    del_if_value(fx, &x, "inflight:old", "{\"owner\":\"crashed\"}");
    assert_true(x.not_owner);
    put_if_absent(fx, &x, "inflight:old", "{\"owner\":\"new\"}", 600);
    assert_false(x.exists);
    get(fx, &x, "inflight:old");
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.value, "{\"owner\":\"new\"}");

    /* Appending to an expired list starts a new one. */
    make_expired(fx, "deploys:old", "{\"deploy\":0}", true);
    get_list(fx, &x, "deploys:old");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    append(fx, &x, "deploys:old", "{\"deploy\":1}", 600, 10);
    assert_false(x.dropped);
    get_list(fx, &x, "deploys:old");
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.items[0], "{\"deploy\":1}");
    res_clear(&x);
}

static void test_del_if_value(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    put(fx, &x, "inflight:img", "owner-a", 600);
    del_if_value(fx, &x, "inflight:img", "owner-b");
    assert_true(x.not_owner);
    get(fx, &x, "inflight:img");
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.value, "owner-a");
    del_if_value(fx, &x, "inflight:img", "owner-a");
    assert_false(x.not_owner);
    get(fx, &x, "inflight:img");
    assert_int_equal(x.status, QFS_NOT_FOUND);
    del_if_value(fx, &x, "inflight:img", "owner-a");
    assert_true(x.not_owner);
    res_clear(&x);
}

static void test_append_bounded(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    for (int i = 0; i < 5; i++) {
        char v[64];
        snprintf(v, sizeof(v), "{\"service\":\"web-%d\"}", i);
        append(fx, &x, "deploys:sha256:3333", v, 600, 3);
        assert_int_equal(x.dropped, i >= 3);
    }
    get_list(fx, &x, "deploys:sha256:3333");
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.n, 3);
    for (size_t i = 0; i < 3; i++) {
        char v[64];
        snprintf(v, sizeof(v), "{\"service\":\"web-%zu\"}", i);
        assert_string_equal(x.items[i], v);
        assert_int_equal(x.lens[i], strlen(v));
    }
    /* A list is not a value, and a value is not a list. */
    get(fx, &x, "deploys:sha256:3333");
    assert_int_equal(x.status, QFS_PROTOCOL);
    put(fx, &x, "result:x", "{}", 60);
    get_list(fx, &x, "result:x");
    assert_int_equal(x.status, QFS_PROTOCOL);
    res_clear(&x);
}

static void test_value_bounds(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    char *big = qfs_xmalloc(QFS_KV_MAX_VALUE + 2);
    for (size_t i = 0; i < QFS_KV_MAX_VALUE + 1; i++) big[i] = (char)('a' + i % 26);
    big[QFS_KV_MAX_VALUE + 1] = '\0';
    assert_int_equal(qfs_kv_put(fx->kv, "result:big", big, QFS_KV_MAX_VALUE + 1, 60, on_res, &x),
                     QFS_TOO_BIG);
    assert_int_equal(qfs_kv_put_if_absent(fx->kv, "result:big", big, QFS_KV_MAX_VALUE + 1, 60,
                                          on_res, &x),
                     QFS_TOO_BIG);
    /* Exactly at the bound is stored and read back whole. */
    big[QFS_KV_MAX_VALUE] = '\0';
    put(fx, &x, "result:big", big, 60);
    get(fx, &x, "result:big");
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.len, QFS_KV_MAX_VALUE);
    assert_memory_equal(x.value, big, QFS_KV_MAX_VALUE);
    free(big);
    res_clear(&x);
}

/* ---- Redis only: the server dies and comes back on the same port ---- */

static void test_redis_restart(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    put(fx, &x, "registry:111122223333:eu-west-1", "{\"uuid\":\"r-1\"}", 600);

    qfs_test_proc_signal(world.redis, SIGKILL);
    assert_true(qfs_test_proc_wait(world.redis, 5000, NULL));
    qfs_test_proc_stop(world.redis);
    world.redis = NULL;

    /* Down: every call fails fast with QFS_UNAVAILABLE (the first may still meet the dying
     * connection, which ends the same way). */
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = qfs_mono_ms();
        get(fx, &x, "registry:111122223333:eu-west-1");
        assert_int_equal(x.status, QFS_UNAVAILABLE);
        assert_true(qfs_mono_ms() - t0 < 1000);
        RUN(fx, &x, qfs_kv_put_if_absent(fx->kv, "inflight:x", "me", 2, 60, on_res, &x));
        assert_int_equal(x.status, QFS_UNAVAILABLE);
        run_for(&fx->loop, 50);
    }

    redis_spawn();
    /* The store reconnects by itself; the data went with the old process (no persistence). */
    uint64_t deadline = qfs_mono_ms() + 10000;
    for (;;) {
        get(fx, &x, "registry:111122223333:eu-west-1");
        if (x.status != QFS_UNAVAILABLE) break;
        assert_true(qfs_mono_ms() < deadline);
        run_for(&fx->loop, 50);
    }
    assert_int_equal(x.status, QFS_NOT_FOUND);
    put_if_absent(fx, &x, "inflight:x", "me", 60);
    assert_false(x.exists);
    get(fx, &x, "inflight:x");
    assert_string_equal(x.value, "me");
    res_clear(&x);
}

/* A stopped server: replies that do not come end with QFS_TIMED_OUT, and the store recovers. */
static void test_redis_reply_timeout(void **state)
{
    struct fixture *fx = *state;
    struct qfs_kv_redis_options o = {.url = world.redis_url, .prefix = "slow:",
                                     .op_timeout_ms = 300, .reconnect_max_ms = 100};
    struct qfs_kv *kv;
    assert_int_equal(qfs_kv_redis_new(&fx->loop, &o, &kv), QFS_OK);
    struct res x = {0};
    RUN(fx, &x, qfs_kv_put(kv, "k", "v", 1, 60, on_res, &x));
    assert_int_equal(x.status, QFS_OK);

    qfs_test_proc_signal(world.redis, SIGSTOP);
    uint64_t t0 = qfs_mono_ms();
    RUN(fx, &x, qfs_kv_get(kv, "k", on_res, &x));
    uint64_t took = qfs_mono_ms() - t0;
    qfs_test_proc_signal(world.redis, SIGCONT);
    assert_int_equal(x.status, QFS_TIMED_OUT);
    assert_true(took >= 300 && took < 3000);

    uint64_t deadline = qfs_mono_ms() + 10000;
    do {
        assert_true(qfs_mono_ms() < deadline);
        run_for(&fx->loop, 50);
        RUN(fx, &x, qfs_kv_get(kv, "k", on_res, &x));
    } while (x.status != QFS_OK);
    assert_string_equal(x.value, "v");
    res_clear(&x);
    qfs_kv_free(kv, NULL, NULL);
}

/* AUTH and SELECT from the URL; the password never reaches the log, even when refused. */
static void test_redis_auth_and_db(void **state)
{
    struct fixture *fx = *state;
    static const char password[] = "kv-test-Pa55word/with@signs";
    world.redis_auth_port = qfs_test_free_port();
    world.redis_auth = redis_start(world.redis_auth_port, password);
    char log_path[1024];
    snprintf(log_path, sizeof(log_path), "%s/auth-test.log", world.dir);
    FILE *logf = fopen(log_path, "w+");
    assert_non_null(logf);
    qfs_log_init("it_kv", QFS_LOG_DEBUG);
    qfs_log_set_fd(fileno(logf));

    char url[256];
    struct res x = {0};
    struct qfs_kv *kv3, *kv0, *bad;
    snprintf(url, sizeof(url), "redis://:kv-test-Pa55word%%2Fwith%%40signs@127.0.0.1:%d/3",
             world.redis_auth_port);
    struct qfs_kv_redis_options o = {.url = url, .prefix = "auth:"};
    assert_int_equal(qfs_kv_redis_new(&fx->loop, &o, &kv3), QFS_OK);
    snprintf(url, sizeof(url), "redis://default:kv-test-Pa55word%%2Fwith%%40signs@127.0.0.1:%d",
             world.redis_auth_port);
    assert_int_equal(qfs_kv_redis_new(&fx->loop, &o, &kv0), QFS_OK);
    snprintf(url, sizeof(url), "redis://:not-the-password@127.0.0.1:%d", world.redis_auth_port);
    assert_int_equal(qfs_kv_redis_new(&fx->loop, &o, &bad), QFS_OK);

    RUN(fx, &x, qfs_kv_put(kv3, "k", "in-db-3", 7, 60, on_res, &x));
    assert_int_equal(x.status, QFS_OK);
    RUN(fx, &x, qfs_kv_get(kv3, "k", on_res, &x));
    assert_string_equal(x.value, "in-db-3");
    RUN(fx, &x, qfs_kv_get(kv0, "k", on_res, &x)); /* another database */
    assert_int_equal(x.status, QFS_NOT_FOUND);
    RUN(fx, &x, qfs_kv_get(bad, "k", on_res, &x));
    assert_int_equal(x.status, QFS_DENIED);
    res_clear(&x);
    qfs_kv_free(kv3, NULL, NULL);
    qfs_kv_free(kv0, NULL, NULL);
    qfs_kv_free(bad, NULL, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);

    qfs_log_set_fd(2);
    qfs_log_init("it_kv", QFS_LOG_WARN);
    fflush(logf);
    char *log = qfs_test_read_file(log_path, NULL);
    fclose(logf);
    assert_non_null(log);
    assert_non_null(strstr(log, "WRONGPASS"));       /* the refusal was logged ... */
    assert_non_null(strstr(log, "redis connected")); /* ... as were the connections ... */
    assert_null(strstr(log, "Pa55word"));            /* ... and no password, in any form */
    assert_null(strstr(log, "not-the-password"));
    free(log);
}

/* ---- DynamoDB only: a table that does not exist makes the store unavailable, not empty ---- */

static void test_dynamodb_missing_table(void **state)
{
    struct fixture *fx = *state;
    struct res x = {0};
    get(fx, &x, "result:sha256:1");
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    RUN(fx, &x, qfs_kv_put_if_absent(fx->kv, "inflight:1", "me", 2, 60, on_res, &x));
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    res_clear(&x);
}

#define BOTH(fn)                                                              \
    {"redis/" #fn, fn, setup_redis, teardown_store, NULL},                   \
    {"dynamodb/" #fn, fn, setup_dynamodb, teardown_store, NULL}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_get_missing),
        BOTH(test_put_get_round_trip),
        BOTH(test_put_if_absent_twice),
        BOTH(test_put_if_absent_race),
        BOTH(test_expired_counts_as_absent),
        BOTH(test_del_if_value),
        BOTH(test_append_bounded),
        BOTH(test_value_bounds),
        {"dynamodb/test_missing_table", test_dynamodb_missing_table, setup_dynamodb_no_table,
         teardown_store, NULL},
        {"redis/test_reply_timeout", test_redis_reply_timeout, setup_loop, teardown_store, NULL},
        {"redis/test_auth_and_db", test_redis_auth_and_db, setup_loop, teardown_store, NULL},
        {"redis/test_restart", test_redis_restart, setup_redis, teardown_store, NULL},
    };
    return cmocka_run_group_tests_name("kv", tests, group_setup, group_teardown);
}
