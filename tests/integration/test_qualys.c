/* Qualys client against qualys-sim: password, static and Secrets Manager auth with renewal and
 * re-auth, aws-base, connectors, registries, a seeded scan followed to its vulnerabilities, 429
 * storms, 5xx bursts, POSTs that are never blindly retried, and no leaked handles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/qualys.h"
#include "qfs/util.h"
#include "testlib.h"

#define SIM_USER "qfs-sim-user"
#define SIM_PASSWORD "qfs-sim-password"
#define STATIC_TOKEN "qfs-it-static-token-0000000001"
#define WEB_HOST "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
#define WEB_ROLE "arn:aws:iam::111122223333:role/QfsEcrScanRole"
#define WEB_SHA "2582034a3b2ae939ae7de0024fef7222e3b80bb4c300f6e7b1025b6afd95244f"
#define WEB_DIGEST "sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c"
#define WORKER_DIGEST "sha256:9e8f2a1a03f02ecdbce85356882aeee6261307a4fd3a80c1847d7475ac58cf1b"
#define HUB_KEY "AKIAQFSSIMHUB0000001"
#define HUB_SECRET "qfs-sim-hub-secret-0000000000000000000001"

static struct {
    char *dir;
    struct qfs_test_proc *proc;
    int port;
    char url[64];
} sim;

static int setup(void **state)
{
    sim.dir = qfs_test_tmpdir("qualys");
    const char *src = qfs_test_env("QFS_SOURCE_DIR", ".");
    char script[1024], log[1024];
    snprintf(script, sizeof(script), "%s/tests/sim/qualys-sim/server.js", src);
    snprintf(log, sizeof(log), "%s/qualys-sim.log", sim.dir);
    const char *args[] = {"--port", "0", "--profile", "fast", "--api-token", STATIC_TOKEN, NULL};
    sim.port = qfs_test_node_start(&sim.proc, "qualys-sim", script, args, log);
    snprintf(sim.url, sizeof(sim.url), "http://127.0.0.1:%d", sim.port);
    qfs_log_init("it_qualys", QFS_LOG_WARN);
    return 0;
}

static int teardown(void **state)
{
    qfs_test_proc_stop(sim.proc);
    qfs_test_rmrf(sim.dir);
    free(sim.dir);
    return 0;
}

/* ---- the admin side channel (plain blocking curl, not the code under test) ---- */

static size_t collect(char *p, size_t size, size_t n, void *userp)
{
    return qfs_buf_append(userp, p, size * n) == QFS_OK ? size * n : 0;
}

static cJSON *admin_at(const char *base, const char *method, const char *path, const char *body)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 16 << 20);
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) fail_msg("admin %s %s: %ld %s", method, path, code, b.data ? b.data : "");
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    qfs_buf_cleanup(&b);
    return j;
}

static void admin(const char *method, const char *path, const char *body)
{
    cJSON_Delete(admin_at(sim.url, method, path, body));
}

/* The sim's call log for one endpoint ("auth", "aws-base", ...), oldest first. */
static cJSON *calls(const char *endpoint)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/calls?endpoint=%s", endpoint);
    cJSON *log = admin_at(sim.url, "GET", path, NULL);
    cJSON *list = cJSON_DetachItemFromObject(log, "calls");
    cJSON_Delete(log);
    return list;
}

static int ncalls(const char *endpoint)
{
    cJSON *c = calls(endpoint);
    int n = cJSON_GetArraySize(c);
    cJSON_Delete(c);
    return n;
}

/* Calls of endpoint answered with status. */
static int ncalls_status(const char *endpoint, int status)
{
    cJSON *c = calls(endpoint), *it;
    int n = 0;
    cJSON_ArrayForEach(it, c) {
        cJSON *s = cJSON_GetObjectItem(it, "status");
        if (cJSON_IsNumber(s) && s->valueint == status) n++;
    }
    cJSON_Delete(c);
    return n;
}

static const char *call_str(cJSON *list, int i, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(list, i), key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double call_num(cJSON *list, int i, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(list, i), key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* A static bearer token the sim accepts from now on, unique to the caller: a test that expires
 * static tokens must not break the others. */
static void fresh_token(char *out, size_t n)
{
    static int k;
    char body[160];
    snprintf(out, n, "qfs-it-static-token-%04d-0000000000", ++k);
    snprintf(body, sizeof(body), "{\"addApiToken\":\"%s\"}", out);
    admin("POST", "/_sim/config", body);
}

/* ---- the client under test ---- */

struct env {
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_qualys *q;
};

static void env_start(struct env *e, struct qfs_qualys_options *o)
{
    memset(e, 0, sizeof(*e));
    admin("POST", "/_sim/reset", NULL);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(qfs_http_new(&e->loop, NULL, &e->http), QFS_OK);
    if (!o->gateway_url && !o->pod) o->gateway_url = sim.url;
    if (!o->backoff_base_ms) o->backoff_base_ms = 50;
    assert_int_equal(qfs_qualys_new(&e->loop, e->http, o, &e->q), QFS_OK);
}

static void env_password(struct env *e)
{
    struct qfs_qualys_options o = {.username = SIM_USER, .password = SIM_PASSWORD};
    env_start(e, &o);
}

/* Frees everything, lets the close callbacks run, and proves no handle was leaked. */
static void env_finish(struct env *e)
{
    qfs_qualys_free(e->q);
    qfs_http_free(e->http);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void wait_for(struct env *e, const bool *flag, int timeout_ms)
{
    if (!qfs_loop_run_until_flag(&e->loop, flag, timeout_ms)) fail_msg("timed out waiting for a callback");
}

static void on_sleep(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop for ms milliseconds (a poll interval, not a way to order events). */
static void run_for(struct env *e, uint64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(&e->loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_sleep, ms, 0);
    wait_for(e, &done, (int)ms + 5000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* What a callback saw, copied out of the borrowed response. */
struct res {
    bool done;
    qfs_status status;
    long http_code;
    unsigned attempts;
    char error_code[64];
    char message[512];
    struct qfs_qualys_aws_base aws_base;
    size_t nconnectors;
    char first_arn[640];
    bool has_registry;
    struct qfs_qualys_registry registry;
    char uuid[64];
    bool has_image;
    struct qfs_qualys_image image;
    bool has_vulns;
    struct qfs_qualys_vuln_report vulns;
    uint64_t finished_ms;
};

static void on_done(const struct qfs_qualys_response *r, void *arg)
{
    struct res *x = arg;
    assert_false(x->done); /* exactly once */
    x->done = true;
    x->status = r->status;
    x->http_code = r->http_code;
    x->attempts = r->attempts;
    snprintf(x->error_code, sizeof(x->error_code), "%s", r->error_code);
    snprintf(x->message, sizeof(x->message), "%s", r->message);
    if (r->aws_base) x->aws_base = *r->aws_base;
    x->nconnectors = r->nconnectors;
    if (r->nconnectors) snprintf(x->first_arn, sizeof(x->first_arn), "%s", r->connectors[0].arn);
    if (r->registry) {
        x->has_registry = true;
        x->registry = *r->registry;
    }
    snprintf(x->uuid, sizeof(x->uuid), "%s", r->uuid ? r->uuid : "");
    if (r->image) {
        x->has_image = true;
        x->image = *r->image;
    }
    if (r->vulns) {
        x->has_vulns = true;
        x->vulns = *r->vulns;
    }
    x->finished_ms = qfs_mono_ms();
}

/* Resets x and checks the call was accepted and is never answered inside the call. */
static void started(struct res *x, qfs_status st)
{
    assert_int_equal(st, QFS_OK);
    assert_false(x->done);
}

#define CALL(e, x, expr)                  \
    do {                                  \
        memset((x), 0, sizeof(*(x)));     \
        started((x), (expr));             \
        wait_for((e), &(x)->done, 60000); \
    } while (0)

/* ---- auth ---- */

static void test_password_auth_and_reauth_after_expiry(void **state)
{
    struct env e;
    env_password(&e);
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.aws_base.account_id, "999988887777");
    assert_string_equal(x.aws_base.external_id, "5512345678901234");
    assert_int_equal(qfs_qualys_auth_count(e.q), 1);
    assert_int_equal(ncalls_status("auth", 201), 1);

    /* An external ID above 2^53, as a raw JSON number, and then as a string: kept exactly. */
    admin("POST", "/_sim/aws-base", "{\"externalId\":\"98765432109876543211\"}");
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_string_equal(x.aws_base.external_id, "98765432109876543211");
    admin("POST", "/_sim/aws-base", "{\"externalIdAsString\":true}");
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_string_equal(x.aws_base.external_id, "98765432109876543211");

    /* Every JWT expires: the next call gets a 401 "JWT expired", re-authenticates once, succeeds. */
    admin("POST", "/_sim/expire-tokens", "{}");
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(qfs_qualys_auth_count(e.q), 2);
    assert_int_equal(ncalls_status("auth", 201), 2);
    assert_int_equal(ncalls_status("aws-base", 401), 1);

    /* Several calls caught by one expiry share one re-authentication. */
    admin("POST", "/_sim/expire-tokens", "{}");
    struct res many[5];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 5; i++) started(&many[i], qfs_qualys_list_connectors(e.q, on_done, &many[i]));
    for (int i = 0; i < 5; i++) {
        wait_for(&e, &many[i].done, 60000);
        assert_int_equal(many[i].status, QFS_OK);
    }
    assert_int_equal(ncalls_status("auth", 201), 3);
    env_finish(&e);
}

static void test_concurrent_calls_wait_for_one_token(void **state)
{
    struct env e;
    env_password(&e);
    /* A slow /auth: every call issued meanwhile waits for that one fetch. */
    admin("POST", "/_sim/faults", "{\"endpoint\":\"auth\",\"latencyMs\":300,\"count\":1}");
    struct res many[6];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 6; i++) started(&many[i], qfs_qualys_aws_base(e.q, on_done, &many[i]));
    for (int i = 0; i < 6; i++) {
        wait_for(&e, &many[i].done, 60000);
        assert_int_equal(many[i].status, QFS_OK);
    }
    assert_int_equal(ncalls("auth"), 1);
    assert_int_equal(ncalls_status("aws-base", 200), 6);
    assert_int_equal(qfs_qualys_auth_count(e.q), 1);
    env_finish(&e);
}

static void test_token_renewed_before_it_expires(void **state)
{
    struct env e;
    env_password(&e);
    admin("POST", "/_sim/config", "{\"tokenTtlSec\":3}");
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(qfs_qualys_auth_count(e.q), 1);
    /* Past half the token's life (3-4 s: the sim rounds exp up to a second) the next call starts
     * a renewal and still uses the valid token. */
    run_for(&e, 2100);
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    uint64_t deadline = qfs_mono_ms() + 10000;
    while (qfs_qualys_auth_count(e.q) < 2 && qfs_mono_ms() < deadline) run_for(&e, 20);
    assert_int_equal(qfs_qualys_auth_count(e.q), 2);
    run_for(&e, 2100); /* past 4 s: the first token has expired by now */
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(ncalls_status("aws-base", 401), 0); /* renewed before, not after, expiry */
    assert_int_equal(ncalls_status("aws-base", 200), 3);
    env_finish(&e);
}

static void test_static_token(void **state)
{
    struct env e;
    char token[64];
    fresh_token(token, sizeof(token));
    struct qfs_qualys_options o = {.api_token = token};
    env_start(&e, &o);
    struct res x;
    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.nconnectors, 0);
    assert_int_equal(ncalls("auth"), 0);
    /* A refused static token cannot be renewed: denied at once, with Qualys's words. */
    admin("POST", "/_sim/expire-tokens", "{\"includeStatic\":true}");
    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_DENIED);
    assert_int_equal(x.http_code, 401);
    assert_string_equal(x.error_code, "401 UNAUTHORIZED");
    assert_non_null(strstr(x.message, "JWT expired"));
    assert_int_equal(ncalls("auth"), 0);
    assert_int_equal(ncalls("aws-connectors"), 2);
    env_finish(&e);
}

static void test_bad_password_is_denied(void **state)
{
    struct env e;
    struct qfs_qualys_options o = {.username = SIM_USER, .password = "wrong&password=+%"};
    env_start(&e, &o);
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_DENIED);
    assert_non_null(strstr(x.message, "invalid username or password"));
    /* The next call does not hammer /auth with the same refused password. */
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_DENIED);
    assert_int_equal(ncalls("auth"), 1);
    assert_int_equal(ncalls("aws-base"), 0);
    /* A password with & = + % reaches the server intact once it is the right one. */
    admin("POST", "/_sim/config", "{\"password\":\"wrong&password=+%\"}");
    qfs_qualys_free(e.q);
    assert_int_equal(qfs_qualys_new(&e.loop, e.http, &o, &e.q), QFS_OK);
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    env_finish(&e);
}

static void test_secret_auth(void **state)
{
    /* Credentials from Secrets Manager (aws-sim), read through the aws module. */
    char script[1024], log[1024], url[64];
    struct qfs_test_proc *aws_proc;
    snprintf(script, sizeof(script), "%s/tests/sim/aws-sim/server.js", qfs_test_env("QFS_SOURCE_DIR", "."));
    snprintf(log, sizeof(log), "%s/aws-sim.log", sim.dir);
    const char *args[] = {"--region", "eu-west-1", NULL};
    int port = qfs_test_node_start(&aws_proc, "aws-sim", script, args, log);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    cJSON_Delete(admin_at(url, "POST", "/_sim/secrets",
                          "{\"name\":\"qfs/qualys\",\"secret_string\":{\"username\":\"" SIM_USER
                          "\",\"password\":\"" SIM_PASSWORD "\"}}"));
    char token[64], body[256];
    fresh_token(token, sizeof(token));
    snprintf(body, sizeof(body), "{\"name\":\"qfs/qualys-token\",\"secret_string\":{\"token\":\"%s\"}}", token);
    cJSON_Delete(admin_at(url, "POST", "/_sim/secrets", body));
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_ACCESS_KEY_ID", HUB_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", HUB_SECRET, 1);

    struct env e;
    struct qfs_qualys_options o = {.secret_arn = "qfs/qualys"};
    memset(&e, 0, sizeof(e));
    admin("POST", "/_sim/reset", NULL);
    assert_int_equal(uv_loop_init(&e.loop), 0);
    assert_int_equal(qfs_http_new(&e.loop, NULL, &e.http), QFS_OK);
    struct qfs_aws *aws;
    assert_int_equal(qfs_aws_new(&e.loop, e.http, NULL, &aws), QFS_OK);
    o.aws = aws;
    o.gateway_url = sim.url;
    assert_int_equal(qfs_qualys_new(&e.loop, e.http, &o, &e.q), QFS_OK);
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(ncalls_status("auth", 201), 1);
    admin("POST", "/_sim/expire-tokens", "{}");
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(ncalls_status("auth", 201), 2);
    qfs_qualys_free(e.q);

    o.secret_arn = "qfs/qualys-token";
    assert_int_equal(qfs_qualys_new(&e.loop, e.http, &o, &e.q), QFS_OK);
    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(ncalls_status("auth", 201), 2); /* the token came from the secret */
    qfs_qualys_free(e.q);

    o.secret_arn = "qfs/missing";
    assert_int_equal(qfs_qualys_new(&e.loop, e.http, &o, &e.q), QFS_OK);
    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_int_equal(x.http_code, 0); /* nothing was sent to Qualys */

    qfs_qualys_free(e.q);
    e.q = NULL;
    qfs_aws_free(aws);
    env_finish(&e);
    unsetenv("AWS_REGION");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    qfs_test_proc_stop(aws_proc);
}

/* ---- registries and connectors ---- */

static void test_connectors_and_registries(void **state)
{
    struct env e;
    env_password(&e);
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    char external_id[72];
    snprintf(external_id, sizeof(external_id), "%s", x.aws_base.external_id);

    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.nconnectors, 0);
    CALL(&e, &x, qfs_qualys_create_connector(e.q, "qfs-111122223333", WEB_ROLE, external_id, NULL, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.nconnectors, 1);
    assert_string_equal(x.first_arn, WEB_ROLE);
    /* A duplicate is refused by Qualys (400): not retried, Qualys's reason passed on. */
    CALL(&e, &x, qfs_qualys_create_connector(e.q, "qfs-111122223333", WEB_ROLE, external_id, NULL, on_done, &x));
    assert_int_equal(x.status, QFS_PROTOCOL);
    assert_string_equal(x.error_code, "400 BAD_REQUEST");
    assert_non_null(strstr(x.message, "already exists"));
    assert_int_equal(ncalls("aws-connector-create"), 2);

    CALL(&e, &x, qfs_qualys_find_registry(e.q, WEB_HOST, on_done, &x));
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_int_equal(ncalls_status("registry-list", 204), 1);
    cJSON *log = calls("registry-list");
    const char *raw = call_str(log, 0, "rawQuery");
    assert_non_null(strstr(raw, "filter=registryUri%3A%22https%3A%2F%2F" WEB_HOST "%22"));
    assert_null(strstr(raw, "%25")); /* encoded once */
    assert_non_null(strstr(raw, "pageNo=1"));
    assert_non_null(strstr(raw, "pageNumber=1"));
    cJSON_Delete(log);

    CALL(&e, &x, qfs_qualys_create_registry(e.q, "111122223333", "eu-west-1", WEB_ROLE, "ecr-111122223333-eu-west-1",
                                            NULL, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_true(qfs_qualys_uuid_is_valid(x.uuid));
    char uuid[64];
    snprintf(uuid, sizeof(uuid), "%s", x.uuid);
    CALL(&e, &x, qfs_qualys_find_registry(e.q, "https://" WEB_HOST "/", on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_true(x.has_registry);
    assert_string_equal(x.registry.uuid, uuid);
    assert_string_equal(x.registry.name, "ecr-111122223333-eu-west-1");
    assert_string_equal(x.registry.account_id, "111122223333");
    assert_string_equal(x.registry.region, "eu-west-1");
    /* Another registry is not matched by a prefix of its host. */
    CALL(&e, &x, qfs_qualys_find_registry(e.q, "111122223333.dkr.ecr.eu-west-1.amazonaws.co", on_done, &x));
    assert_int_equal(x.status, QFS_NOT_FOUND);
    env_finish(&e);
}

/* ---- a scan followed to its vulnerabilities ---- */

static void find_web(struct env *e, struct res *x, const char *digest)
{
    CALL(e, x, qfs_qualys_find_image(e->q, WEB_HOST, "web", "1.4.2", digest, on_done, x));
}

static void test_scan_seeded_image(void **state)
{
    struct env e;
    env_password(&e);
    struct res x;
    CALL(&e, &x, qfs_qualys_create_registry(e.q, "111122223333", "eu-west-1", WEB_ROLE, "ecr-111122223333-eu-west-1",
                                            NULL, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    char registry[64];
    snprintf(registry, sizeof(registry), "%s", x.uuid);

    find_web(&e, &x, WEB_DIGEST);
    assert_int_equal(x.status, QFS_NOT_FOUND); /* 204: not known to Qualys yet */
    assert_int_equal(ncalls_status("images", 204), 1);

    CALL(&e, &x, qfs_qualys_create_schedule(e.q, registry, "web", "1.4.2", "qfs-web-1.4.2", on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    cJSON *state_doc = admin_at(sim.url, "GET", "/_sim/state", NULL);
    cJSON *sched = cJSON_GetArrayItem(cJSON_GetObjectItem(state_doc, "schedules"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(sched, "onDemand")));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(sched, "forceScan")));
    assert_string_equal(cJSON_GetObjectItem(sched, "schedule")->valuestring, "00:00");
    if (x.uuid[0]) assert_string_equal(cJSON_GetObjectItem(sched, "scheduleUuid")->valuestring, x.uuid);
    cJSON_Delete(state_doc);

    /* Poll with a deadline until Qualys has scanned it. */
    uint64_t deadline = qfs_mono_ms() + 30000;
    for (;;) {
        find_web(&e, &x, WEB_DIGEST);
        if (x.status == QFS_OK && qfs_qualys_image_state(&x.image) == QFS_QUALYS_SCAN_DONE) break;
        assert_true(x.status == QFS_OK || x.status == QFS_NOT_FOUND);
        if (x.status == QFS_OK) assert_int_equal(qfs_qualys_image_state(&x.image), QFS_QUALYS_SCAN_PENDING);
        assert_true(qfs_mono_ms() < deadline);
        run_for(&e, 100);
    }
    assert_string_equal(x.image.sha, WEB_SHA);
    assert_string_equal(x.image.scan_status, "SUCCESS");
    assert_true(x.image.last_scanned_ms > 0);
    assert_int_equal(x.image.severity_counts[5], 1);
    assert_int_equal(x.image.severity_counts[4], 1);
    assert_int_equal(x.image.severity_counts[3], 1);
    assert_int_equal(x.image.severity_counts[2], 1);
    assert_int_equal(x.image.severity_counts[1], 0);

    cJSON *log = calls("images");
    const char *raw = call_str(log, cJSON_GetArraySize(log) - 1, "rawQuery");
    assert_non_null(strstr(raw, "filter=repo.registry%3A%22" WEB_HOST "%22%20and%20repo.repository%3A%22web%22"
                                "%20and%20repo.tag%3A%221.4.2%22"));
    assert_non_null(strstr(raw, "sort=updated%3Adesc"));
    cJSON_Delete(log);

    /* Without the digest (registry + repository + tag) it is the same image; another digest is not. */
    find_web(&e, &x, NULL);
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.image.sha, WEB_SHA);
    find_web(&e, &x, WORKER_DIGEST);
    assert_int_equal(x.status, QFS_NOT_FOUND);

    CALL(&e, &x, qfs_qualys_image_detail(e.q, WEB_SHA, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(qfs_qualys_image_state(&x.image), QFS_QUALYS_SCAN_DONE);
    assert_int_equal(x.image.severity_counts[5], 1);

    /* The vulnerabilities equal what the seed holds for web:1.4.2. */
    CALL(&e, &x, qfs_qualys_image_vulns(e.q, "sha256:" WEB_SHA, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_true(x.vulns.scanned);
    assert_int_equal(x.vulns.total, 4);
    assert_int_equal(x.vulns.by_severity[5], 1);
    assert_int_equal(x.vulns.by_severity[4], 1);
    assert_int_equal(x.vulns.by_severity[3], 1);
    assert_int_equal(x.vulns.by_severity[2], 1);
    assert_int_equal(x.vulns.by_severity[1], 0);
    assert_int_equal(x.vulns.patchable, 3); /* ncurses has no fix */
    assert_int_equal(x.vulns.nfindings, 4);
    int64_t order[] = {379001, 379002, 379004, 379005};
    for (int i = 0; i < 4; i++) assert_int_equal(x.vulns.findings[i].qid, order[i]);
    const struct qfs_qualys_finding *f = &x.vulns.findings[0];
    assert_int_equal(f->severity, 5);
    assert_string_equal(f->title, "OpenSSL Remote Code Execution Vulnerability");
    assert_int_equal(f->ncves, 1);
    assert_string_equal(f->cves[0], "CVE-2026-0001");
    assert_string_equal(f->package, "openssl");
    assert_string_equal(f->installed_version, "3.1.4-r2");
    assert_string_equal(f->fixed_version, "3.1.4-r5");
    assert_int_equal(x.vulns.findings[1].ncves, 2);
    assert_string_equal(x.vulns.findings[3].fixed_version, "");
    assert_false(x.vulns.findings[3].patchable);
    log = calls("image-vuln");
    assert_string_equal(call_str(log, 0, "rawQuery"), ""); /* no pageNumber/pageSize */
    cJSON_Delete(log);

    /* Unknown image: 404 means "not known yet". */
    CALL(&e, &x, qfs_qualys_image_detail(e.q, "e17b3fbae110eb1d86bd51bf5266c049fdf9d08b2c40309536215ab8fcac5f99",
                                          on_done, &x));
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_int_equal(x.http_code, 404);
    env_finish(&e);
}

static void test_find_image_reads_every_page(void **state)
{
    /* 60 images of many:t1, all known to Qualys: 50 on page 1, 10 on page 2 (sorted by sha). */
    struct env e;
    env_password(&e);
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"mode\":\"add\",\"present\":\"scanned\",\"seed\":{\"images\":[");
    for (int i = 0; i < 60; i++)
        qfs_buf_printf(&b, "%s{\"account\":\"111122223333\",\"region\":\"eu-west-1\",\"repository\":\"many\","
                           "\"tags\":[\"t1\"],\"digest\":\"sha256:%064x\",\"image_sha\":\"%064x\"}",
                       i ? "," : "", 0x1000 + i, 0x2000 + i);
    qfs_buf_puts(&b, "]}}");
    admin("POST", "/_sim/seed", b.data);
    qfs_buf_cleanup(&b);
    char digest[80], sha[65];
    snprintf(digest, sizeof(digest), "sha256:%064x", 0x1000 + 59);
    snprintf(sha, sizeof(sha), "%064x", 0x2000 + 59);

    struct res x;
    CALL(&e, &x, qfs_qualys_find_image(e.q, WEB_HOST, "many", "t1", digest, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.image.sha, sha);
    cJSON *log = calls("images");
    assert_int_equal(cJSON_GetArraySize(log), 2);
    assert_non_null(strstr(call_str(log, 0, "rawQuery"), "pageNumber=1&pageSize=50"));
    assert_non_null(strstr(call_str(log, 1, "rawQuery"), "pageNumber=2&pageSize=50"));
    cJSON_Delete(log);

    /* A digest on no page: the short page 2 ends the search. */
    admin("DELETE", "/_sim/calls", NULL);
    CALL(&e, &x, qfs_qualys_find_image(e.q, WEB_HOST, "many", "t1", WEB_DIGEST, on_done, &x));
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_int_equal(ncalls("images"), 2);
    /* Without a digest the newest match is on page 1. */
    CALL(&e, &x, qfs_qualys_find_image(e.q, WEB_HOST, "many", "t1", NULL, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(ncalls("images"), 3);
    env_finish(&e);
}

/* ---- rate limits ---- */

static void test_rate_limit_storm(void **state)
{
    struct env e;
    env_password(&e);
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x)); /* token first, so only the image calls are timed */
    admin("POST", "/_sim/limits", "{\"images\":{\"limit\":2,\"windowSec\":1}}");
    /* One call teaches the client the images bucket: 2 calls per second. */
    CALL(&e, &x, qfs_qualys_find_image(e.q, WEB_HOST, "web", "1.4.2", NULL, on_done, &x));
    assert_int_equal(x.status, QFS_NOT_FOUND);
    run_for(&e, 1100);
    admin("DELETE", "/_sim/calls", NULL);

    enum { N = 8 };
    struct res many[N];
    memset(many, 0, sizeof(many));
    uint64_t t0 = qfs_mono_ms();
    for (int i = 0; i < N; i++)
        started(&many[i], qfs_qualys_find_image(e.q, WEB_HOST, "web", "1.4.2", NULL, on_done, &many[i]));
    for (int i = 0; i < N; i++) {
        wait_for(&e, &many[i].done, 60000);
        assert_int_equal(many[i].status, QFS_NOT_FOUND); /* every call got its real answer */
    }
    uint64_t elapsed = qfs_mono_ms() - t0;
    int answered = ncalls_status("images", 204), throttled = ncalls_status("images", 429);
    assert_int_equal(answered, N);
    /* 8 calls at 2 per second take at least 3 s. The client spaced them out itself: few 429s,
     * and no two calls closer than the spacing (a client that hammers sends bursts). */
    assert_true(elapsed >= 2900);
    assert_true(throttled <= N / 2);
    cJSON *log = calls("images");
    int n = cJSON_GetArraySize(log);
    assert_int_equal(n, answered + throttled);
    for (int i = 1; i < n; i++) assert_true(call_num(log, i, "time") - call_num(log, i - 1, "time") >= 400);
    cJSON_Delete(log);

    /* A 429 storm: the client waits X-RateLimit-ToWait-Sec each time, then succeeds. */
    admin("POST", "/_sim/limits", "{\"registry\":{\"windowSec\":1}}");
    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-base\",\"status\":429,\"count\":3}");
    admin("DELETE", "/_sim/calls", NULL);
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.attempts, 4);
    log = calls("aws-base");
    assert_int_equal(cJSON_GetArraySize(log), 4);
    for (int i = 1; i < 4; i++) assert_true(call_num(log, i, "time") - call_num(log, i - 1, "time") >= 950);
    cJSON_Delete(log);

    /* Without ToWait it is Retry-After; without both, the window. */
    admin("POST", "/_sim/limits", "{\"toWaitHeader\":false,\"retryAfterHeader\":true}");
    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-base\",\"status\":429,\"count\":1}");
    uint64_t t1 = qfs_mono_ms();
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_true(qfs_mono_ms() - t1 >= 950);
    admin("POST", "/_sim/limits", "{\"toWaitHeader\":false,\"retryAfterHeader\":false}");
    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-base\",\"status\":429,\"count\":1}");
    t1 = qfs_mono_ms();
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_true(qfs_mono_ms() - t1 >= 950);

    /* A 429 on a POST is retried: the call was refused, not applied. */
    admin("POST", "/_sim/limits", "{\"toWaitHeader\":true}");
    admin("POST", "/_sim/faults", "{\"endpoint\":\"registry-create\",\"status\":429,\"count\":1}");
    CALL(&e, &x, qfs_qualys_create_registry(e.q, "222233334444", "us-east-1", "arn:aws:iam::222233334444:role/Q",
                                            NULL, NULL, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.attempts, 2);
    env_finish(&e);
}

static void test_rate_limit_cold_burst(void **state)
{
    /* A client that has not seen the limit yet sends a burst; the sim refuses most of it. Each
     * refused call then waits for its own slot: one 429 per call at most, never a retry storm. */
    struct env e;
    char token[64];
    fresh_token(token, sizeof(token));
    struct qfs_qualys_options o = {.api_token = token};
    env_start(&e, &o);
    admin("POST", "/_sim/limits", "{\"images\":{\"limit\":2,\"windowSec\":1}}");
    enum { N = 6 };
    struct res many[N];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < N; i++)
        started(&many[i], qfs_qualys_image_detail(e.q, WEB_SHA, on_done, &many[i]));
    for (int i = 0; i < N; i++) {
        wait_for(&e, &many[i].done, 60000);
        assert_int_equal(many[i].status, QFS_NOT_FOUND);
        assert_int_equal(many[i].http_code, 404);
    }
    int throttled = ncalls_status("image-detail", 429);
    assert_true(throttled >= 1);
    assert_true(throttled <= N - 2);
    assert_int_equal(ncalls_status("image-detail", 404), N);
    cJSON *log = calls("image-detail");
    int n = cJSON_GetArraySize(log), first_429 = -1;
    for (int i = 0; i < n && first_429 < 0; i++)
        if (call_num(log, i, "status") == 429) first_429 = i;
    /* After the first refusal every call waited: none came within the announced second of it. */
    for (int i = first_429 + 1; i < n; i++)
        if (call_num(log, i, "time") > call_num(log, first_429, "time") + 50)
            assert_true(call_num(log, i, "time") - call_num(log, first_429, "time") >= 950);
    cJSON_Delete(log);
    env_finish(&e);
}

/* ---- server errors ---- */

static void test_5xx_and_resets_on_gets_are_retried(void **state)
{
    struct env e;
    env_password(&e);
    struct res x;
    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-base\",\"status\":503,\"count\":2}");
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.attempts, 3);
    assert_int_equal(ncalls_status("aws-base", 503), 2);
    assert_int_equal(ncalls_status("aws-base", 200), 1);

    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-connectors\",\"reset\":true,\"count\":1}");
    CALL(&e, &x, qfs_qualys_list_connectors(e.q, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(ncalls("aws-connectors"), 2); /* by libcurl on a reused connection, or by us */

    /* A burst that outlasts the attempts: unavailable, with Qualys's code and message. */
    admin("POST", "/_sim/faults", "{\"endpoint\":\"images\",\"status\":502,\"count\":50}");
    CALL(&e, &x, qfs_qualys_find_image(e.q, WEB_HOST, "web", "1.4.2", NULL, on_done, &x));
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    assert_int_equal(x.http_code, 502);
    assert_string_equal(x.error_code, "502 BAD_GATEWAY");
    assert_int_equal(x.attempts, 6);
    assert_int_equal(ncalls("images"), 6);
    admin("DELETE", "/_sim/faults", NULL);
    env_finish(&e);
}

static void test_posts_that_may_have_applied_are_not_retried(void **state)
{
    struct env e;
    env_password(&e);
    struct res x;
    CALL(&e, &x, qfs_qualys_aws_base(e.q, on_done, &x));
    char external_id[72];
    snprintf(external_id, sizeof(external_id), "%s", x.aws_base.external_id);

    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-connector-create\",\"status\":500,\"count\":1}");
    CALL(&e, &x, qfs_qualys_create_connector(e.q, "c1", WEB_ROLE, external_id, "Global", on_done, &x));
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    assert_int_equal(x.attempts, 1);
    assert_int_equal(ncalls("aws-connector-create"), 1);

    /* Applied, then the answer is a 500: exactly one POST; re-listing finds what it created. */
    admin("POST", "/_sim/faults", "{\"endpoint\":\"registry-create\",\"status\":500,\"phase\":\"after\",\"count\":1}");
    CALL(&e, &x, qfs_qualys_create_registry(e.q, "111122223333", "eu-west-1", WEB_ROLE, "r1", NULL, on_done, &x));
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    assert_int_equal(ncalls("registry-create"), 1);
    CALL(&e, &x, qfs_qualys_find_registry(e.q, WEB_HOST, on_done, &x));
    assert_int_equal(x.status, QFS_OK);
    char registry[64];
    snprintf(registry, sizeof(registry), "%s", x.registry.uuid);

    /* The connection drops after the schedule was stored: one POST, unavailable. */
    admin("POST", "/_sim/faults", "{\"endpoint\":\"schedule-create\",\"reset\":true,\"phase\":\"after\",\"count\":1}");
    CALL(&e, &x, qfs_qualys_create_schedule(e.q, registry, "web", "1.4.2", "s1", on_done, &x));
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    assert_int_equal(ncalls("schedule-create"), 1);
    cJSON *st = admin_at(sim.url, "GET", "/_sim/state", NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(st, "schedules")), 1);
    cJSON_Delete(st);
    env_finish(&e);
}

/* ---- shutdown ---- */

static void test_free_with_calls_pending(void **state)
{
    struct env e;
    env_password(&e);
    admin("POST", "/_sim/faults", "{\"endpoint\":\"auth\",\"latencyMs\":300,\"count\":1}");
    struct res a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    started(&a, qfs_qualys_aws_base(e.q, on_done, &a)); /* waiting for the token */
    started(&b, qfs_qualys_image_vulns(e.q, WEB_SHA, on_done, &b));
    qfs_qualys_free(e.q);
    e.q = NULL;
    assert_false(a.done); /* never inside the call that ended them */
    wait_for(&e, &a.done, 10000);
    wait_for(&e, &b.done, 10000);
    assert_int_equal(a.status, QFS_UNAVAILABLE);
    assert_int_equal(b.status, QFS_UNAVAILABLE);

    /* Calls on the wire end when the HTTP client goes. */
    char token[64];
    fresh_token(token, sizeof(token));
    struct qfs_qualys_options o = {.gateway_url = sim.url, .api_token = token};
    admin("POST", "/_sim/faults", "{\"endpoint\":\"aws-base\",\"latencyMs\":2000,\"count\":1}");
    assert_int_equal(qfs_qualys_new(&e.loop, e.http, &o, &e.q), QFS_OK);
    memset(&a, 0, sizeof(a));
    started(&a, qfs_qualys_aws_base(e.q, on_done, &a));
    run_for(&e, 50);
    env_finish(&e);
    assert_true(a.done);
    assert_int_equal(a.status, QFS_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_auth_and_reauth_after_expiry),
        cmocka_unit_test(test_concurrent_calls_wait_for_one_token),
        cmocka_unit_test(test_token_renewed_before_it_expires),
        cmocka_unit_test(test_static_token),
        cmocka_unit_test(test_bad_password_is_denied),
        cmocka_unit_test(test_secret_auth),
        cmocka_unit_test(test_connectors_and_registries),
        cmocka_unit_test(test_scan_seeded_image),
        cmocka_unit_test(test_find_image_reads_every_page),
        cmocka_unit_test(test_rate_limit_storm),
        cmocka_unit_test(test_rate_limit_cold_burst),
        cmocka_unit_test(test_5xx_and_resets_on_gets_are_retried),
        cmocka_unit_test(test_posts_that_may_have_applied_are_not_retried),
        cmocka_unit_test(test_free_with_calls_pending),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
