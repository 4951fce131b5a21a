/* HTTP client against a scripted Node server: retries, vetoes, timeouts, size caps, resets,
 * Retry-After, per-host and global concurrency bounds, cancellation, and no leaked handles. */
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

#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/util.h"
#include "testlib.h"

static struct {
    char *dir;
    struct qfs_test_proc *proc;
    int port;
} fx;

static int setup(void **state)
{
    fx.dir = qfs_test_tmpdir("http");
    char script[1024], log[1024];
    snprintf(script, sizeof(script), "%s/tests/integration/fixtures/http_fixture.js",
             qfs_test_env("QFS_SOURCE_DIR", "."));
    snprintf(log, sizeof(log), "%s/fixture.log", fx.dir);
    fx.port = qfs_test_node_start(&fx.proc, "http_fixture", script, NULL, log);
    qfs_log_init("it_http", QFS_LOG_WARN);
    return 0;
}

static int teardown(void **state)
{
    qfs_test_proc_stop(fx.proc);
    qfs_test_rmrf(fx.dir);
    free(fx.dir);
    return 0;
}

static char *url(const char *fmt, ...)
{
    static char buf[8][512];
    static int next;
    char path[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    char *out = buf[next++ % 8];
    snprintf(out, 512, "http://127.0.0.1:%d%s", fx.port, path);
    return out;
}

/* A blocking side channel to the fixture's counters (not through the code under test). */
static size_t collect(char *p, size_t size, size_t n, void *userp)
{
    return qfs_buf_append(userp, p, size * n) == QFS_OK ? size * n : 0;
}

static cJSON *fixture(const char *path)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 1 << 20);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url("%s", path));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_cleanup(e);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    qfs_buf_cleanup(&b);
    return j;
}

static int stat_int(cJSON *stats, const char *key)
{
    return cJSON_GetObjectItem(stats, key)->valueint;
}

static int count_of(cJSON *stats, const char *key)
{
    cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(stats, "counts"), key);
    return c ? c->valueint : 0;
}

struct result {
    bool done;
    qfs_status status;
    long code;
    unsigned attempts;
    char body[4096];
    size_t body_len;
    char error[256];
    char retry_after[32];
    uint64_t finished_ms;
};

static void on_done(const struct qfs_http_response *r, void *arg)
{
    struct result *x = arg;
    assert_false(x->done); /* exactly once */
    x->done = true;
    x->status = r->status;
    x->code = r->code;
    x->attempts = r->attempts;
    x->body_len = r->body_len;
    snprintf(x->body, sizeof(x->body), "%s", r->body);
    snprintf(x->error, sizeof(x->error), "%s", r->error ? r->error : "");
    const char *ra = qfs_http_response_header(r, "retry-after");
    snprintf(x->retry_after, sizeof(x->retry_after), "%s", ra ? ra : "");
    x->finished_ms = qfs_mono_ms();
}

struct env {
    uv_loop_t loop;
    struct qfs_http *http;
};

static void env_start(struct env *e, const struct qfs_http_options *o)
{
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(qfs_http_new(&e->loop, o, &e->http), QFS_OK);
}

/* Frees the client, lets the close callbacks run, and proves no handle was leaked. */
static void env_finish(struct env *e)
{
    qfs_http_free(e->http);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

struct results {
    struct result *r;
    size_t n;
};

static bool all_done(void *arg)
{
    const struct results *rs = arg;
    for (size_t i = 0; i < rs->n; i++)
        if (!rs->r[i].done) return false;
    return true;
}

static void wait_all(struct env *e, struct result *r, size_t n)
{
    struct results rs = {r, n};
    if (!qfs_loop_run_until(&e->loop, all_done, &rs, 120000)) fail_msg("requests still running after 120 s");
}

static void run(struct env *e, const struct qfs_http_request *req, struct result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(qfs_http_request(e->http, req, on_done, r), QFS_OK);
    assert_false(r->done); /* never synchronous */
    wait_all(e, r, 1);
}

static void test_retries_then_success(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct qfs_http_request req = {.url = url("/seq/a1?codes=503,500,429,200"), .max_attempts = 5,
                                   .backoff_base_ms = 10};
    struct result r;
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_OK);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.attempts, 4);
    assert_non_null(strstr(r.body, "\"n\":3"));
    cJSON *s = fixture("/_stats");
    assert_int_equal(count_of(s, "a1"), 4);
    cJSON_Delete(s);
    env_finish(&e);
}

static void test_no_retry_past_max_attempts(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct qfs_http_request req = {.url = url("/seq/b1?codes=503"), .max_attempts = 3, .backoff_base_ms = 10};
    struct result r;
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_UNAVAILABLE);
    assert_int_equal(r.code, 503);
    assert_int_equal(r.attempts, 3);
    /* Not retryable at all: a 404 is tried once. */
    struct qfs_http_request nf = {.url = url("/seq/b2?codes=404"), .max_attempts = 3, .backoff_base_ms = 10};
    run(&e, &nf, &r);
    assert_int_equal(r.status, QFS_NOT_FOUND);
    assert_int_equal(r.attempts, 1);
    cJSON *s = fixture("/_stats");
    assert_int_equal(count_of(s, "b1"), 3);
    assert_int_equal(count_of(s, "b2"), 1);
    cJSON_Delete(s);
    env_finish(&e);
}

struct veto {
    int calls;
    bool saw_retryable;
};

static bool veto_retry(const struct qfs_http_response *a, bool retryable, uint64_t *delay, void *arg)
{
    struct veto *v = arg;
    v->calls++;
    v->saw_retryable = retryable;
    assert_int_equal(a->code, 503);
    assert_int_equal(a->attempts, 1);
    return false;
}

static void test_vetoed_retry(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct veto v = {0};
    const char body[] = "{\"op\":\"create\"}";
    struct qfs_http_request req = {.method = "POST", .url = url("/seq/c1?codes=503,200"), .body = body,
                                   .body_len = strlen(body), .max_attempts = 4, .backoff_base_ms = 10,
                                   .retry = veto_retry, .hook_arg = &v};
    struct result r;
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_UNAVAILABLE);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(v.calls, 1);
    assert_true(v.saw_retryable);
    cJSON *s = fixture("/_stats");
    assert_int_equal(count_of(s, "c1"), 1);
    cJSON_Delete(s);
    env_finish(&e);
}

static bool slow_down(const struct qfs_http_response *a, bool retryable, uint64_t *delay, void *arg)
{
    *delay = 400; /* what a rate limiter reading X-RateLimit-* would ask for */
    return retryable;
}

static void test_retry_after_and_hook_delay(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct qfs_http_request req = {.url = url("/retry-after/d1?s=1"), .max_attempts = 3, .backoff_base_ms = 10};
    struct result r;
    uint64_t t0 = qfs_mono_ms();
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_OK);
    assert_int_equal(r.attempts, 2);
    assert_true(r.finished_ms - t0 >= 1000);
    cJSON *s = fixture("/_stats");
    cJSON *times = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "times"), "d1");
    double gap = cJSON_GetArrayItem(times, 1)->valuedouble - cJSON_GetArrayItem(times, 0)->valuedouble;
    assert_true(gap >= 950); /* the server's clock agrees */
    cJSON_Delete(s);

    /* A delay longer than we are willing to wait ends the request with the 429. */
    struct qfs_http_request longer = {.url = url("/retry-after/d2?s=120"), .max_attempts = 3};
    run(&e, &longer, &r);
    assert_int_equal(r.status, QFS_UNAVAILABLE);
    assert_int_equal(r.code, 429);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.retry_after, "120");

    /* The hook sets the delay. */
    struct qfs_http_request hooked = {.url = url("/seq/d3?codes=429,200"), .max_attempts = 3,
                                      .backoff_base_ms = 10, .retry = slow_down};
    t0 = qfs_mono_ms();
    run(&e, &hooked, &r);
    assert_int_equal(r.status, QFS_OK);
    assert_true(r.finished_ms - t0 >= 400);
    env_finish(&e);
}

static void test_timeout(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct qfs_http_request req = {.url = url("/slow?ms=5000"), .timeout_ms = 300, .max_attempts = 1};
    struct result r;
    uint64_t t0 = qfs_mono_ms();
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_TIMED_OUT);
    assert_int_equal(r.code, 0);
    assert_true(r.finished_ms - t0 < 2000);
    assert_true(r.error[0]);
    /* Timeouts are retryable: two attempts take two timeouts, and still end timed out. */
    req.max_attempts = 2;
    req.backoff_base_ms = 10;
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_TIMED_OUT);
    assert_int_equal(r.attempts, 2);
    env_finish(&e);
}

static void test_oversized_body(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct result r;
    /* Streamed without a length: cut by our write callback. */
    struct qfs_http_request req = {.url = url("/big?bytes=3000000"), .max_response = 1024 * 1024,
                                   .max_attempts = 3};
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_TOO_BIG);
    assert_int_equal(r.attempts, 1);
    /* Announced by Content-Length: refused before reading. */
    struct qfs_http_request cl = {.url = url("/big?bytes=3000000&cl=1"), .max_response = 1024 * 1024};
    run(&e, &cl, &r);
    assert_int_equal(r.status, QFS_TOO_BIG);
    /* At the cap exactly: fine. */
    struct qfs_http_request fits = {.url = url("/big?bytes=1048576"), .max_response = 1024 * 1024};
    run(&e, &fits, &r);
    assert_int_equal(r.status, QFS_OK);
    assert_int_equal(r.body_len, 1048576);
    env_finish(&e);
}

static void test_reset_is_retried(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct qfs_http_request req = {.url = url("/reset/r1?n=2"), .max_attempts = 4, .backoff_base_ms = 10};
    struct result r;
    run(&e, &req, &r);
    assert_int_equal(r.status, QFS_OK);
    assert_int_equal(r.attempts, 3);
    assert_non_null(strstr(r.body, "\"n\":2"));
    /* Without retries the reset is reported as unavailable. */
    /* (curl itself retries once when a reused connection dies, so reset more than that.) */
    struct qfs_http_request once = {.url = url("/reset/r2?n=3"), .max_attempts = 1};
    run(&e, &once, &r);
    assert_int_equal(r.status, QFS_UNAVAILABLE);
    assert_int_equal(r.code, 0);
    env_finish(&e);
}

static void test_per_host_concurrency_bound(void **state)
{
    struct env e;
    struct qfs_http_options o = {.max_per_host = 2};
    env_start(&e, &o);
    cJSON_Delete(fixture("/_reset"));
    struct result r[8];
    memset(r, 0, sizeof(r));
    struct qfs_http_request req = {.url = url("/hold?ms=150")};
    for (int i = 0; i < 8; i++) assert_int_equal(qfs_http_request(e.http, &req, on_done, &r[i]), QFS_OK);
    wait_all(&e, r, 8);
    for (int i = 0; i < 8; i++) assert_int_equal(r[i].status, QFS_OK);
    cJSON *s = fixture("/_stats");
    assert_int_equal(count_of(s, "hold"), 8);
    assert_int_equal(stat_int(s, "max_in_flight"), 2);
    assert_int_equal(stat_int(s, "max_hold_connections"), 2);
    cJSON_Delete(s);
    env_finish(&e);
}

static void test_global_concurrency_bound(void **state)
{
    struct env e;
    struct qfs_http_options o = {.max_per_host = 8, .max_total = 3};
    env_start(&e, &o);
    cJSON_Delete(fixture("/_reset"));
    struct result r[12];
    memset(r, 0, sizeof(r));
    char via_name[128];
    snprintf(via_name, sizeof(via_name), "http://localhost:%d/hold?ms=150", fx.port);
    for (int i = 0; i < 12; i++) {
        struct qfs_http_request req = {.url = i % 2 ? url("/hold?ms=150") : via_name};
        assert_int_equal(qfs_http_request(e.http, &req, on_done, &r[i]), QFS_OK);
    }
    wait_all(&e, r, 12);
    for (int i = 0; i < 12; i++) assert_int_equal(r[i].status, QFS_OK);
    cJSON *s = fixture("/_stats");
    assert_int_equal(count_of(s, "hold"), 12);
    assert_int_equal(stat_int(s, "max_in_flight"), 3);
    assert_true(stat_int(s, "max_hold_connections") <= 3);
    cJSON_Delete(s);
    env_finish(&e);
}

static qfs_status add_header(CURL *easy, struct curl_slist **headers, void *arg)
{
    int *calls = arg;
    (*calls)++;
    struct curl_slist *n = curl_slist_append(*headers, "X-Prepared: yes");
    if (!n) return QFS_INTERNAL;
    *headers = n;
    return QFS_OK;
}

static void test_body_headers_and_prepare_hook(void **state)
{
    struct env e;
    env_start(&e, NULL);
    char body[] = "binary\0body&=+";
    const char *headers[] = {"Content-Type: application/x-amz-json-1.0", "X-Amz-Target: Svc.Op", NULL};
    int calls = 0;
    struct qfs_http_request req = {.method = "PUT", .url = url("/echo"), .headers = headers, .body = body,
                                   .body_len = sizeof(body) - 1, .prepare = add_header, .hook_arg = &calls};
    struct result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(qfs_http_request(e.http, &req, on_done, &r), QFS_OK);
    memset(body, 'Z', sizeof(body) - 1); /* the request holds its own copy */
    wait_all(&e, &r, 1);
    assert_int_equal(r.status, QFS_OK);
    assert_int_equal(calls, 1);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "PUT");
    cJSON *h = cJSON_GetObjectItem(j, "headers");
    assert_string_equal(cJSON_GetObjectItem(h, "x-amz-target")->valuestring, "Svc.Op");
    assert_string_equal(cJSON_GetObjectItem(h, "content-type")->valuestring, "application/x-amz-json-1.0");
    assert_string_equal(cJSON_GetObjectItem(h, "x-prepared")->valuestring, "yes");
    assert_null(cJSON_GetObjectItem(h, "expect"));
    assert_string_equal(cJSON_GetObjectItem(j, "body")->valuestring, "YmluYXJ5AGJvZHkmPSs="); /* base64 */
    cJSON_Delete(j);
    env_finish(&e);
}

struct cancel_probe {
    struct result r;
    struct qfs_http *http;
    qfs_status resubmit;
};

static void on_cancelled(const struct qfs_http_response *r, void *arg)
{
    struct cancel_probe *p = arg;
    on_done(r, &p->r);
    /* A callback that tries again during shutdown is refused, not called. */
    struct qfs_http_request again = {.url = url("/slow?ms=1")};
    p->resubmit = qfs_http_request(p->http, &again, on_done, NULL);
}

static void test_cancel_all_at_shutdown(void **state)
{
    struct env e;
    env_start(&e, NULL);
    struct cancel_probe p[3];
    memset(p, 0, sizeof(p));
    struct qfs_http_request slow = {.url = url("/slow?ms=10000"), .timeout_ms = 20000};
    struct qfs_http_request backoff = {.url = url("/seq/k1?codes=503"), .max_attempts = 5,
                                       .backoff_base_ms = 60000, .backoff_max_ms = 60000};
    for (int i = 0; i < 3; i++) {
        p[i].http = e.http;
        assert_int_equal(qfs_http_request(e.http, i == 2 ? &backoff : &slow, on_cancelled, &p[i]), QFS_OK);
    }
    /* Let the transfers start and the third one fail once and wait in backoff. */
    uint64_t until = qfs_mono_ms() + 400;
    while (qfs_mono_ms() < until) uv_run(&e.loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 3; i++) assert_false(p[i].r.done);
    qfs_http_free(e.http);
    for (int i = 0; i < 3; i++) {
        assert_true(p[i].r.done);
        assert_int_equal(p[i].r.status, QFS_UNAVAILABLE);
        assert_string_equal(p[i].r.error, "cancelled");
        assert_int_equal(p[i].resubmit, QFS_UNAVAILABLE);
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

struct free_inside {
    struct result r;
    struct qfs_http *http;
};

static void free_in_callback(const struct qfs_http_response *r, void *arg)
{
    struct free_inside *f = arg;
    on_done(r, &f->r);
    qfs_http_free(f->http);
}

static void test_free_inside_callback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct qfs_http *h;
    assert_int_equal(qfs_http_new(&loop, NULL, &h), QFS_OK);
    struct free_inside f = {.http = h};
    struct result other;
    memset(&other, 0, sizeof(other));
    struct qfs_http_request fast = {.url = url("/seq/f1?codes=200")};
    struct qfs_http_request slow = {.url = url("/slow?ms=10000")};
    assert_int_equal(qfs_http_request(h, &fast, free_in_callback, &f), QFS_OK);
    assert_int_equal(qfs_http_request(h, &slow, on_done, &other), QFS_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(f.r.done);
    assert_int_equal(f.r.status, QFS_OK);
    assert_true(other.done);
    assert_int_equal(other.status, QFS_UNAVAILABLE);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_then_success),
        cmocka_unit_test(test_no_retry_past_max_attempts),
        cmocka_unit_test(test_vetoed_retry),
        cmocka_unit_test(test_retry_after_and_hook_delay),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_oversized_body),
        cmocka_unit_test(test_reset_is_retried),
        cmocka_unit_test(test_per_host_concurrency_bound),
        cmocka_unit_test(test_global_concurrency_bound),
        cmocka_unit_test(test_body_headers_and_prepare_hook),
        cmocka_unit_test(test_cancel_all_at_shutdown),
        cmocka_unit_test(test_free_inside_callback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
