/* Metrics: counters, histogram percentiles on known data, the EMF line's exact structure and its
 * per-interval deltas, the cumulative stats message, and the clients' stats structs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/http.h"
#include "qfs/metrics.h"
#include "qfs/qualys.h"

#define NOW_MS 1777629600000LL /* 2026-05-01T10:00:00Z */

/* |got - want| within want/16 (the bucket bound), rounding aside. */
static void assert_near(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;
    if (diff > want / 16 + 1) fail_msg("got %llu, want %llu (within 1/16)", (unsigned long long)got,
                                       (unsigned long long)want);
}

static bool is_unit(const char *u)
{
    return strcmp(u, "Count") == 0 || strcmp(u, "Milliseconds") == 0;
}

/* Parses an EMF line and checks the whole structure: the root holds exactly "_aws", "Service" and
 * the metrics the directives name; "_aws" exactly Timestamp and CloudWatchMetrics; each directive
 * exactly Namespace "qfs", Dimensions [["Service"]] and at most 100 {Name, Unit} that each name a
 * number at the root. Returns the parsed root (caller deletes). */
static cJSON *emf_checked(const char *line, const char *service)
{
    assert_null(strchr(line, '\n'));
    cJSON *root = cJSON_Parse(line);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    const cJSON *aws = cJSON_GetObjectItemCaseSensitive(root, "_aws");
    assert_true(cJSON_IsObject(aws));
    assert_int_equal(cJSON_GetArraySize(aws), 2);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(aws, "Timestamp");
    assert_true(cJSON_IsNumber(ts));
    assert_true(ts->valuedouble == (double)NOW_MS);
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(aws, "CloudWatchMetrics");
    assert_true(cJSON_IsArray(dirs));
    assert_true(cJSON_GetArraySize(dirs) >= 1);
    const cJSON *svc = cJSON_GetObjectItemCaseSensitive(root, "Service");
    assert_true(cJSON_IsString(svc));
    assert_string_equal(svc->valuestring, service);

    int named = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, dirs) {
        assert_true(cJSON_IsObject(d));
        assert_int_equal(cJSON_GetArraySize(d), 3);
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(d, "Namespace");
        assert_true(cJSON_IsString(ns));
        assert_string_equal(ns->valuestring, "qfs");
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(d, "Dimensions");
        assert_true(cJSON_IsArray(dims));
        assert_int_equal(cJSON_GetArraySize(dims), 1);
        const cJSON *set = cJSON_GetArrayItem(dims, 0);
        assert_true(cJSON_IsArray(set));
        assert_int_equal(cJSON_GetArraySize(set), 1);
        assert_string_equal(cJSON_GetArrayItem(set, 0)->valuestring, "Service");
        const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(d, "Metrics");
        assert_true(cJSON_IsArray(metrics));
        assert_true(cJSON_GetArraySize(metrics) <= 100);
        const cJSON *def;
        cJSON_ArrayForEach(def, metrics) {
            assert_int_equal(cJSON_GetArraySize(def), 2);
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(def, "Name");
            const cJSON *unit = cJSON_GetObjectItemCaseSensitive(def, "Unit");
            assert_true(cJSON_IsString(name));
            assert_true(cJSON_IsString(unit));
            assert_true(is_unit(unit->valuestring));
            const cJSON *value = cJSON_GetObjectItemCaseSensitive(root, name->valuestring);
            if (!cJSON_IsNumber(value)) fail_msg("metric %s has no number at the root", name->valuestring);
            named++;
        }
    }
    /* Nothing at the root that no directive names, besides _aws and the dimension. */
    assert_int_equal(cJSON_GetArraySize(root), named + 2);
    return root;
}

static double num(const cJSON *root, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!cJSON_IsNumber(v)) fail_msg("no number %s", name);
    return v->valuedouble;
}

static cJSON *line_of(struct qfs_metrics *m)
{
    char *line = qfs_metrics_emf_line(m, "parser", NOW_MS);
    cJSON *root = emf_checked(line, "parser");
    free(line);
    return root;
}

static void test_names(void **state)
{
    assert_true(qfs_metrics_name_is_valid("events"));
    assert_true(qfs_metrics_name_is_valid("skips.not_ecr"));
    assert_true(qfs_metrics_name_is_valid("received.scanner-poller-ready"));
    assert_false(qfs_metrics_name_is_valid(""));
    assert_false(qfs_metrics_name_is_valid(NULL));
    assert_false(qfs_metrics_name_is_valid("Service"));
    assert_false(qfs_metrics_name_is_valid("_aws"));
    assert_false(qfs_metrics_name_is_valid("skips{reason=x}"));
    assert_false(qfs_metrics_name_is_valid("9lives"));
    char longname[QFS_METRICS_NAME_MAX + 1];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(qfs_metrics_name_is_valid(longname));
    longname[QFS_METRICS_NAME_MAX - 1] = '\0';
    assert_true(qfs_metrics_name_is_valid(longname));
}

static void test_counters(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    struct qfs_metrics_counter *c = qfs_metrics_counter(m, "events");
    assert_ptr_equal(qfs_metrics_counter(m, "events"), c);
    assert_int_equal(qfs_metrics_counter_value(c), 0);
    qfs_metrics_counter_add(c, 1);
    qfs_metrics_count(m, "events", 2);
    assert_int_equal(qfs_metrics_counter_value(c), 3);
    /* A total read from a stats struct raises the counter and never lowers it. */
    struct qfs_metrics_counter *t = qfs_metrics_counter(m, "http_requests");
    qfs_metrics_counter_set_total(t, 10);
    qfs_metrics_counter_set_total(t, 7);
    assert_int_equal(qfs_metrics_counter_value(t), 10);
    qfs_metrics_counter_set_total(t, 12);
    assert_int_equal(qfs_metrics_counter_value(t), 12);
    qfs_metrics_free(m);
}

static void test_histogram_percentiles(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    struct qfs_metrics_histogram *h = qfs_metrics_histogram(m, "latency");
    assert_int_equal(qfs_metrics_histogram_percentile(h, 50), 0); /* empty */
    for (uint64_t v = 1; v <= 1000; v++) qfs_metrics_histogram_record(h, v);
    assert_int_equal(qfs_metrics_histogram_count(h), 1000);
    assert_near(qfs_metrics_histogram_percentile(h, 50), 500);
    assert_near(qfs_metrics_histogram_percentile(h, 99), 990);
    assert_near(qfs_metrics_histogram_percentile(h, 90), 900);
    assert_int_equal(qfs_metrics_histogram_percentile(h, 100), 1000);

    /* Small values have buckets of their own: exact. */
    struct qfs_metrics_histogram *s = qfs_metrics_histogram(m, "small");
    for (uint64_t v = 1; v <= 10; v++) qfs_metrics_histogram_record(s, v);
    assert_int_equal(qfs_metrics_histogram_percentile(s, 50), 5);
    assert_int_equal(qfs_metrics_histogram_percentile(s, 99), 10);

    /* One value repeated: the percentile is clamped to what was seen, so exact. */
    struct qfs_metrics_histogram *k = qfs_metrics_histogram(m, "constant");
    for (int i = 0; i < 50; i++) qfs_metrics_histogram_record(k, 4242);
    assert_int_equal(qfs_metrics_histogram_percentile(k, 50), 4242);
    assert_int_equal(qfs_metrics_histogram_percentile(k, 99), 4242);

    /* A skewed sample: 98 fast, 2 slow. p50 is fast, p99 is slow. */
    struct qfs_metrics_histogram *sk = qfs_metrics_histogram(m, "skewed");
    for (int i = 0; i < 98; i++) qfs_metrics_histogram_record(sk, 20);
    qfs_metrics_histogram_record(sk, 3600000);
    qfs_metrics_histogram_record(sk, 7200000);
    assert_int_equal(qfs_metrics_histogram_percentile(sk, 50), 20);
    assert_near(qfs_metrics_histogram_percentile(sk, 99), 3600000);

    /* The far end of the range does not overflow. */
    struct qfs_metrics_histogram *big = qfs_metrics_histogram(m, "big");
    qfs_metrics_histogram_record(big, UINT64_MAX);
    assert_int_equal(qfs_metrics_histogram_percentile(big, 50), UINT64_MAX);
    qfs_metrics_free(m);
}

static void test_emf_structure(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    qfs_metrics_count(m, "events", 3);
    qfs_metrics_count(m, "images", 5);
    qfs_metrics_count(m, "skips.not_ecr", 1);
    qfs_metrics_count(m, "received.parser-events", 4);
    struct qfs_metrics_histogram *h = qfs_metrics_histogram(m, "deploy_to_result");
    qfs_metrics_histogram_record(h, 1000);
    qfs_metrics_histogram_record(h, 3000);
    cJSON *root = line_of(m);
    assert_true(num(root, "events") == 3);
    assert_true(num(root, "images") == 5);
    assert_true(num(root, "skips.not_ecr") == 1);
    assert_true(num(root, "received.parser-events") == 4);
    assert_true(num(root, "deploy_to_result_count") == 2);
    assert_true(num(root, "deploy_to_result_max") == 3000);
    assert_near((uint64_t)num(root, "deploy_to_result_p50"), 1000);
    assert_near((uint64_t)num(root, "deploy_to_result_p99"), 3000);
    /* The units: counters Count, latencies Milliseconds. */
    const cJSON *def;
    cJSON *metrics = cJSON_GetObjectItem(cJSON_GetArrayItem(
                                             cJSON_GetObjectItem(cJSON_GetObjectItem(root, "_aws"),
                                                                 "CloudWatchMetrics"), 0),
                                         "Metrics");
    int n = 0;
    cJSON_ArrayForEach(def, metrics) {
        const char *name = cJSON_GetObjectItem(def, "Name")->valuestring;
        const char *unit = cJSON_GetObjectItem(def, "Unit")->valuestring;
        bool latency = strstr(name, "_p50") || strstr(name, "_p99") || strstr(name, "_max");
        assert_string_equal(unit, latency ? "Milliseconds" : "Count");
        n++;
    }
    assert_int_equal(n, 4 + 4);
    cJSON_Delete(root);
    qfs_metrics_free(m);
}

static void test_emf_deltas_between_flushes(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    struct qfs_metrics_counter *c = qfs_metrics_counter(m, "events");
    struct qfs_metrics_histogram *h = qfs_metrics_histogram(m, "poll_lag");
    qfs_metrics_counter_add(c, 3);
    qfs_metrics_histogram_record(h, 100);
    cJSON *first = line_of(m);
    assert_true(num(first, "events") == 3);
    assert_true(num(first, "poll_lag_count") == 1);
    cJSON_Delete(first);

    qfs_metrics_counter_add(c, 2);
    qfs_metrics_histogram_record(h, 5000);
    qfs_metrics_histogram_record(h, 7000);
    cJSON *second = line_of(m);
    assert_true(num(second, "events") == 2);
    assert_true(num(second, "poll_lag_count") == 2);
    assert_true(num(second, "poll_lag_max") == 7000);
    assert_near((uint64_t)num(second, "poll_lag_p50"), 5000); /* the interval's, not the total's */
    cJSON_Delete(second);

    /* Nothing happened: the counter says 0, the histogram is left out. */
    cJSON *third = line_of(m);
    assert_true(num(third, "events") == 0);
    assert_null(cJSON_GetObjectItem(third, "poll_lag_p50"));
    assert_null(cJSON_GetObjectItem(third, "poll_lag_count"));
    cJSON_Delete(third);

    /* A total taken from a stats struct also reports its increase. */
    struct qfs_metrics_counter *t = qfs_metrics_counter(m, "http_requests");
    qfs_metrics_counter_set_total(t, 40);
    cJSON *fourth = line_of(m);
    assert_true(num(fourth, "http_requests") == 40);
    cJSON_Delete(fourth);
    qfs_metrics_counter_set_total(t, 45);
    cJSON *fifth = line_of(m);
    assert_true(num(fifth, "http_requests") == 5);
    cJSON_Delete(fifth);

    /* The totals were never reset. */
    assert_int_equal(qfs_metrics_counter_value(c), 5);
    assert_int_equal(qfs_metrics_histogram_count(h), 3);
    qfs_metrics_free(m);
}

static void test_emf_splits_directives_past_100(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    for (int i = 0; i < 150; i++) {
        char name[32];
        snprintf(name, sizeof(name), "c%03d", i);
        qfs_metrics_count(m, name, (uint64_t)i);
    }
    cJSON *root = line_of(m); /* checks at most 100 per directive, each named value present */
    const cJSON *dirs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "_aws"), "CloudWatchMetrics");
    assert_int_equal(cJSON_GetArraySize(dirs), 2);
    assert_true(num(root, "c149") == 149);
    cJSON_Delete(root);
    qfs_metrics_free(m);
}

static void test_registry_is_bounded(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    for (int i = 0; i < QFS_METRICS_MAX; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%d", i);
        qfs_metrics_count(m, name, 1);
    }
    /* One more is counted nowhere, and the line still holds every registered name. */
    struct qfs_metrics_counter *over = qfs_metrics_counter(m, "overflow");
    qfs_metrics_counter_add(over, 1);
    qfs_metrics_histogram_record(qfs_metrics_histogram(m, "overflow_latency"), 10);
    cJSON *root = line_of(m);
    assert_null(cJSON_GetObjectItem(root, "overflow"));
    assert_int_equal(cJSON_GetArraySize(root), QFS_METRICS_MAX + 2);
    cJSON_Delete(root);
    qfs_metrics_free(m);
}

static void test_stats_json_is_cumulative(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    qfs_metrics_count(m, "events", 2);
    struct qfs_metrics_histogram *h = qfs_metrics_histogram(m, "poll_lag");
    for (uint64_t v = 1; v <= 100; v++) qfs_metrics_histogram_record(h, v * 10);
    free(qfs_metrics_emf_line(m, "parser", NOW_MS)); /* an interval ends: totals stay */
    qfs_metrics_count(m, "events", 1);
    struct qfs_metrics_process p = {.service = "parser", .version = "0.1.0", .pid = 42,
                                    .now_ms = NOW_MS, .uptime_ms = 65432, .inflight = 3,
                                    .interval_ms = 60000};
    char *text = qfs_metrics_stats_json(m, &p);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "service")->valuestring, "parser");
    assert_string_equal(cJSON_GetObjectItem(root, "version")->valuestring, "0.1.0");
    assert_string_equal(cJSON_GetObjectItem(root, "time")->valuestring, "2026-05-01T10:00:00.000Z");
    assert_true(num(root, "pid") == 42);
    assert_true(num(root, "uptime_s") == 65);
    assert_true(num(root, "inflight") == 3);
    assert_true(num(root, "interval_ms") == 60000);
    const cJSON *counters = cJSON_GetObjectItem(root, "counters");
    assert_true(num(counters, "events") == 3);
    const cJSON *lag = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "histograms"), "poll_lag");
    assert_true(num(lag, "count") == 100);
    assert_true(num(lag, "min") == 10);
    assert_true(num(lag, "max") == 1000);
    assert_true(num(lag, "sum") == 50500);
    assert_near((uint64_t)num(lag, "p50"), 500);
    assert_near((uint64_t)num(lag, "p99"), 990);
    cJSON_Delete(root);
    qfs_metrics_free(m);
}

static void test_client_stats(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    struct qfs_http_stats hs = {.requests = 9, .failures = 2, .retries = 3, .throttled = 1,
                                .server_errors = 1, .transport_errors = 1};
    qfs_metrics_set_http(m, &hs);
    struct qfs_qualys_stats qs;
    memset(&qs, 0, sizeof(qs));
    qs.calls[QFS_QUALYS_CALL_FIND_IMAGE][QFS_OK] = 4;
    qs.calls[QFS_QUALYS_CALL_FIND_IMAGE][QFS_NOT_FOUND] = 6;
    qs.calls[QFS_QUALYS_CALL_CREATE_SCHEDULE][QFS_UNAVAILABLE] = 1;
    qs.throttled = 2;
    qs.retries = 5;
    qfs_metrics_set_qualys(m, &qs);
    cJSON *root = line_of(m);
    assert_true(num(root, "http_requests") == 9);
    assert_true(num(root, "http_failures") == 2);
    assert_true(num(root, "http_retries") == 3);
    assert_true(num(root, "http_429s") == 1);
    assert_true(num(root, "http_5xx") == 1);
    assert_true(num(root, "http_transport_errors") == 1);
    assert_true(num(root, "qualys_calls.find_image.ok") == 4);
    assert_true(num(root, "qualys_calls.find_image.not_found") == 6);
    assert_true(num(root, "qualys_calls.create_schedule.unavailable") == 1);
    assert_null(cJSON_GetObjectItem(root, "qualys_calls.auth.ok")); /* never called: not listed */
    assert_true(num(root, "qualys_429s") == 2);
    assert_true(num(root, "qualys_retries") == 5);
    assert_true(num(root, "qualys_reauths") == 0);
    cJSON_Delete(root);
    assert_string_equal(qfs_qualys_call_name(QFS_QUALYS_CALL_AUTH), "auth");
    assert_string_equal(qfs_qualys_call_name(QFS_QUALYS_CALL_IMAGE_VULNS), "image_vulns");
    assert_string_equal(qfs_qualys_call_name(QFS_QUALYS_CALL_COUNT), "?");
    qfs_metrics_free(m);
}

/* Declared counters are listed at 0 before they move; a service without a client reads nothing
 * from it, and gets zeroed Qualys stats to derive its own counters from. */
static void test_declared_counters_and_absent_clients(void **state)
{
    struct qfs_metrics *m = qfs_metrics_new();
    static const char *const names[] = {"scans_submitted", "polls"};
    qfs_metrics_declare(m, names, 2);
    qfs_metrics_count(m, "polls", 3);
    qfs_metrics_read_http(m, NULL);
    struct qfs_qualys_stats qs;
    memset(&qs, 0xff, sizeof(qs));
    qfs_metrics_read_qualys(m, NULL, &qs);
    assert_true(qs.calls[QFS_QUALYS_CALL_CREATE_SCHEDULE][QFS_OK] == 0 && qs.retries == 0);
    cJSON *root = line_of(m);
    assert_true(num(root, "scans_submitted") == 0);
    assert_true(num(root, "polls") == 3);
    assert_null(cJSON_GetObjectItem(root, "http_requests"));
    cJSON_Delete(root);
    qfs_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_histogram_percentiles),
        cmocka_unit_test(test_emf_structure),
        cmocka_unit_test(test_emf_deltas_between_flushes),
        cmocka_unit_test(test_emf_splits_directives_past_100),
        cmocka_unit_test(test_registry_is_bounded),
        cmocka_unit_test(test_stats_json_is_cumulative),
        cmocka_unit_test(test_client_stats),
        cmocka_unit_test(test_declared_counters_and_absent_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
