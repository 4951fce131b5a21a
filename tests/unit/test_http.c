/* HTTP client, pure parts: the one status mapper, Retry-After parsing, full-jitter backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>
#include <uv.h>

#include "qfs/http.h"

static void test_map_transport_errors(void **state)
{
    bool r;
    assert_int_equal(qfs_http_map(CURLE_OPERATION_TIMEDOUT, 0, false, &r), QFS_TIMED_OUT);
    assert_true(r);
    CURLcode transient[] = {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_SEND_ERROR,
                            CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        assert_int_equal(qfs_http_map(transient[i], 0, false, &r), QFS_UNAVAILABLE);
        assert_true(r);
    }
    assert_int_equal(qfs_http_map(CURLE_PEER_FAILED_VERIFICATION, 0, false, &r), QFS_DENIED);
    assert_false(r);
    assert_int_equal(qfs_http_map(CURLE_URL_MALFORMAT, 0, false, &r), QFS_INVALID_ARG);
    assert_false(r);
    /* The body cap: by our write callback or by curl from Content-Length. */
    assert_int_equal(qfs_http_map(CURLE_WRITE_ERROR, 200, true, &r), QFS_TOO_BIG);
    assert_false(r);
    assert_int_equal(qfs_http_map(CURLE_FILESIZE_EXCEEDED, 200, false, &r), QFS_TOO_BIG);
    assert_int_equal(qfs_http_map(CURLE_SSL_ENGINE_NOTFOUND, 0, false, &r), QFS_IO);
    assert_false(r);
}

static void test_map_http_codes(void **state)
{
    struct {
        long code;
        qfs_status st;
        bool retry;
    } cases[] = {
        {200, QFS_OK, false},          {204, QFS_OK, false},          {301, QFS_PROTOCOL, false},
        {400, QFS_PROTOCOL, false},    {401, QFS_DENIED, false},      {403, QFS_DENIED, false},
        {404, QFS_NOT_FOUND, false},   {408, QFS_TIMED_OUT, true},    {409, QFS_PROTOCOL, false},
        {410, QFS_NOT_FOUND, false},   {413, QFS_TOO_BIG, false},     {429, QFS_UNAVAILABLE, true},
        {500, QFS_UNAVAILABLE, true},  {501, QFS_UNAVAILABLE, false}, {502, QFS_UNAVAILABLE, true},
        {503, QFS_UNAVAILABLE, true},  {504, QFS_UNAVAILABLE, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool r = !cases[i].retry;
        assert_int_equal(qfs_http_map(CURLE_OK, cases[i].code, false, &r), cases[i].st);
        assert_int_equal(r, cases[i].retry);
    }
}

static void test_retry_after(void **state)
{
    uint64_t d = 0;
    assert_true(qfs_http_parse_retry_after("3", 0, &d));
    assert_int_equal(d, 3000);
    assert_true(qfs_http_parse_retry_after(" 0 ", 0, &d));
    assert_int_equal(d, 0);
    /* An HTTP date: 1 May 2026 10:00:10 GMT is 10 s after "now". */
    int64_t now = 1777629600000LL;
    assert_true(qfs_http_parse_retry_after("Fri, 01 May 2026 10:00:10 GMT", now, &d));
    assert_int_equal(d, 10000);
    assert_true(qfs_http_parse_retry_after("Fri, 01 May 2026 09:00:00 GMT", now, &d));
    assert_int_equal(d, 0); /* in the past: now */
    assert_false(qfs_http_parse_retry_after("soon", now, &d));
    assert_false(qfs_http_parse_retry_after("5s", now, &d));
    assert_false(qfs_http_parse_retry_after(NULL, now, &d));
    /* Absurd values saturate instead of overflowing. */
    assert_true(qfs_http_parse_retry_after("99999999999999999999999", 0, &d));
    assert_true(d >= 100000000ULL * 1000);
}

static void test_backoff_full_jitter(void **state)
{
    /* The ceiling doubles per attempt up to the cap; the value is rnd modulo ceiling+1. */
    assert_int_equal(qfs_http_backoff_ms(1, 100, 5000, 100), 100);
    assert_int_equal(qfs_http_backoff_ms(1, 100, 5000, 101), 0);
    assert_int_equal(qfs_http_backoff_ms(2, 100, 5000, 200), 200);
    assert_int_equal(qfs_http_backoff_ms(3, 100, 5000, 400), 400);
    assert_int_equal(qfs_http_backoff_ms(30, 100, 5000, 5000), 5000);
    assert_int_equal(qfs_http_backoff_ms(30, 100, 5000, 5001), 0);
    for (uint64_t rnd = 0; rnd < 100000; rnd += 997)
        for (unsigned a = 1; a < 40; a++) assert_true(qfs_http_backoff_ms(a, 200, 20000, rnd) <= 20000);
}

static void test_header_lookup_is_case_insensitive(void **state)
{
    struct qfs_http_header h[] = {{"Retry-After", "2"}, {"x-amzn-RequestId", "abc"}};
    struct qfs_http_response r = {.headers = h, .nheaders = 2};
    assert_string_equal(qfs_http_response_header(&r, "retry-after"), "2");
    assert_string_equal(qfs_http_response_header(&r, "X-AMZN-REQUESTID"), "abc");
    assert_null(qfs_http_response_header(&r, "Retry"));
}

static void done_never(const struct qfs_http_response *r, void *arg)
{
    fail_msg("callback for a refused request");
}

static void test_bad_requests_are_refused_without_callback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct qfs_http *h;
    assert_int_equal(qfs_http_new(&loop, NULL, &h), QFS_OK);
    struct qfs_http_request r = {.url = "ftp://127.0.0.1/"};
    assert_int_equal(qfs_http_request(h, &r, done_never, NULL), QFS_INVALID_ARG);
    r.url = "not a url";
    assert_int_equal(qfs_http_request(h, &r, done_never, NULL), QFS_INVALID_ARG);
    const char *bad_headers[] = {"X-Evil: a\r\nX-Injected: b", NULL};
    r.url = "http://127.0.0.1:1/";
    r.headers = bad_headers;
    assert_int_equal(qfs_http_request(h, &r, done_never, NULL), QFS_INVALID_ARG);
    r.headers = NULL;
    r.method = "get me";
    assert_int_equal(qfs_http_request(h, &r, done_never, NULL), QFS_INVALID_ARG);
    qfs_http_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_transport_errors),
        cmocka_unit_test(test_map_http_codes),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_header_lookup_is_case_insensitive),
        cmocka_unit_test(test_bad_requests_are_refused_without_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
