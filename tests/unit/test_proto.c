/* Message contracts: the subject builder and parser, and the codecs' validation of bad input
 * (wrong types, missing fields, bad tokens, unknown enum values, oversize lists, non-JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfs/log.h"
#include "qfs/proto.h"
#include "qfs/proto_dlq.h"
#include "qfs/proto_event.h"
#include "qfs/proto_image.h"
#include "qfs/proto_notification.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/util.h"

#define DIGEST "sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605"

static const char *const DEPLOY_FIELDS =
    "\"event_name\":\"UpdateService\",\"event_id\":\"0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f\","
    "\"event_time\":\"2026-05-01T10:00:00Z\",\"event_account\":\"111122223333\","
    "\"event_region\":\"eu-west-1\",\"principal\":null,"
    "\"task_definition_arn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42\","
    "\"cluster\":\"prod\",\"service\":\"web\",\"containers\":[\"app\"]";

static const char *const IMAGE_FIELDS =
    "\"account\":\"111122223333\",\"region\":\"eu-west-1\","
    "\"registry\":\"111122223333.dkr.ecr.eu-west-1.amazonaws.com\",\"repository\":\"web\","
    "\"tag\":\"1.4.2\",\"digest\":\"" DIGEST "\","
    "\"image\":\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2\"";

/* A valid message of each kind, built from the fields above. */
static char *image_json(void)
{
    return qfs_xasprintf("{\"schema\":\"qfs.image.v1\",%s,\"digest_unresolved\":null,"
                         "\"cache_fail_open\":false,%s}",
                         IMAGE_FIELDS, DEPLOY_FIELDS);
}

static char *request_json(void)
{
    return qfs_xasprintf("{\"schema\":\"qfs.scan_request.v1\",%s,\"generation\":7,"
                         "\"requested_at\":\"2026-05-01T10:00:00.412Z\",\"cache_fail_open\":false,"
                         "\"deploys\":[{%s}]}",
                         IMAGE_FIELDS, DEPLOY_FIELDS);
}

static char *finding_json(int qid, int severity, const char *cves)
{
    return qfs_xasprintf("{\"qid\":%d,\"title\":\"t\",\"severity\":%d,\"cves\":[%s],"
                         "\"package\":null,\"installed_version\":null,\"fixed_version\":null}",
                         qid, severity, cves);
}

static char *result_json_with(const char *findings, int total)
{
    return qfs_xasprintf("{\"schema\":\"qfs.scan_result.v1\",%s,\"generation\":7,"
                         "\"registry_uuid\":\"3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21\","
                         "\"qualys_image_sha\":\"%064d\",\"counts\":{\"critical\":%d,\"high\":0,"
                         "\"medium\":0,\"low\":0,\"info\":0},\"total\":%d,\"patchable\":0,"
                         "\"findings\":[%s],\"scanned_at\":\"2026-05-01T10:06:41Z\",\"deploys\":[{%s}]}",
                         IMAGE_FIELDS, 0, total, total, findings, DEPLOY_FIELDS);
}

static char *skip_json(void)
{
    return qfs_xasprintf("{\"schema\":\"qfs.skip.v1\",\"reason\":\"not_ecr\",\"detail\":null,"
                         "\"account\":\"111122223333\",\"region\":\"eu-west-1\","
                         "\"image\":\"nginx:1.25\",\"digest\":null,\"summary\":null,%s}",
                         DEPLOY_FIELDS);
}

static char *dlq_json(void)
{
    return qfs_xstrdup("{\"schema\":\"qfs.dlq.v1\",\"service\":\"parser\",\"reason\":\"bad\","
                       "\"status\":\"protocol\",\"original_subject\":\"qfs.events.111122223333.eu-west-1\","
                       "\"headers\":{\"Nats-Msg-Id\":\"x\"},\"payload\":\"QUI=\","
                       "\"payload_encoding\":\"base64\",\"payload_size\":2,\"payload_truncated\":false,"
                       "\"delivery_count\":3,\"time\":\"2026-05-01T10:00:01Z\",\"trace_id\":null}");
}

static char *event_json(void)
{
    return qfs_xstrdup("{\"version\":\"0\",\"id\":\"6a7e8feb-0000-0000-0000-000000000001\","
                       "\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.ecs\","
                       "\"account\":\"111122223333\",\"time\":\"2026-05-01T10:00:00Z\","
                       "\"region\":\"eu-west-1\",\"resources\":[],\"detail\":{\"eventName\":\"RunTask\","
                       "\"responseElements\":null,\"anything\":{\"else\":[1,2]}}}");
}

/* Returns s with the first occurrence of from replaced by to (which must occur). */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) fail_msg("\"%s\" not found in %s", from, s);
    return qfs_xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

/* Decoders by name, so one table of bad inputs can drive them all. */
enum kind { K_IMAGE, K_REQUEST, K_READY, K_RESULT, K_FAILURE, K_SKIP, K_NOTIFICATION, K_DLQ, K_EVENT };

static qfs_status decode(enum kind k, const char *json, size_t len, char *err, size_t errlen)
{
    qfs_status s = QFS_INTERNAL;
#define DECODE(type, prefix)                                  \
    do {                                                      \
        struct type m;                                        \
        s = prefix##_decode(json, len, &m, err, errlen);      \
        prefix##_cleanup(&m);                                 \
    } while (0)
    switch (k) {
    case K_IMAGE: DECODE(qfs_image_record, qfs_image_record); break;
    case K_REQUEST: DECODE(qfs_scan_request, qfs_scan_request); break;
    case K_READY: DECODE(qfs_scan_ready, qfs_scan_ready); break;
    case K_RESULT: DECODE(qfs_scan_result, qfs_scan_result); break;
    case K_FAILURE: DECODE(qfs_scan_failure, qfs_scan_failure); break;
    case K_SKIP: DECODE(qfs_skip, qfs_skip); break;
    case K_NOTIFICATION: DECODE(qfs_notification, qfs_notification); break;
    case K_DLQ: DECODE(qfs_dlq_entry, qfs_dlq_entry); break;
    case K_EVENT: DECODE(qfs_event, qfs_event); break;
    }
#undef DECODE
    return s;
}

/* Asserts that json (freed here) is rejected with QFS_PROTOCOL and an error starting with field. */
static void assert_rejected(enum kind k, char *json, const char *field)
{
    char err[256] = "unset";
    qfs_status s = decode(k, json, strlen(json), err, sizeof(err));
    if (s != QFS_PROTOCOL) fail_msg("accepted (%s): %s", qfs_status_str(s), json);
    if (strncmp(err, field, strlen(field)) != 0) fail_msg("error \"%s\" does not start with %s", err, field);
    free(json);
}

static void assert_accepted(enum kind k, char *json)
{
    char err[256] = "";
    qfs_status s = decode(k, json, strlen(json), err, sizeof(err));
    if (s != QFS_OK) fail_msg("rejected: %s\n%s", err, json);
    free(json);
}

/* ---- subjects -------------------------------------------------------------------------------- */

static void test_subject_format(void **state)
{
    char buf[QFS_SUBJECT_MAX];
    assert_int_equal(qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_IMAGES, "111122223333", "eu-west-1"), QFS_OK);
    assert_string_equal(buf, "qfs.images.111122223333.eu-west-1");
    assert_int_equal(qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_SCANS_REQUESTED, "111122223333", "us-gov-west-1"), QFS_OK);
    assert_string_equal(buf, "qfs.scans.requested.111122223333.us-gov-west-1");
    assert_int_equal(qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_NOTIFICATIONS, "000000000000", "cn-north-1"), QFS_OK);
    assert_string_equal(buf, "qfs.notifications.000000000000.cn-north-1");
    assert_int_equal(qfs_subject_dlq(buf, sizeof(buf), "scanner-poller"), QFS_OK);
    assert_string_equal(buf, "qfs.dlq.scanner-poller");
    assert_int_equal(qfs_subject_stats(buf, sizeof(buf), "ingest"), QFS_OK);
    assert_string_equal(buf, "qfs.stats.ingest");
    assert_string_equal(qfs_subject_filter(QFS_SUBJECT_SCANS_FAILED), "qfs.scans.failed.>");
    assert_int_equal(qfs_subject_schema(QFS_SUBJECT_SCANS_COMPLETED), QFS_SCHEMA_SCAN_RESULT);
    assert_true(qfs_subject_is_stored(QFS_SUBJECT_DLQ));
    assert_false(qfs_subject_is_stored(QFS_SUBJECT_STATS));
    assert_null(qfs_subject_filter(QFS_SUBJECT_COUNT));
}

static void test_subject_rejects_bad_tokens(void **state)
{
    static const struct {
        const char *account, *region;
    } bad[] = {
        {"111122223333.*", "eu-west-1"}, {"111122223333", "eu-west-1>"}, {"11112222333", "eu-west-1"},
        {"1111222233334", "eu-west-1"},  {"11112222333a", "eu-west-1"}, {"111122223333", "EU-WEST-1"},
        {"111122223333", "Eu-west-1"},   {"", "eu-west-1"},             {"111122223333", ""},
        {NULL, "eu-west-1"},             {"111122223333", NULL},        {"111122223333", "eu west 1"},
        {"111122223333", "eu.west.1"},   {"111122223333", "*"},         {"111122223333", ">"},
        {"111122223333", "eu-west-1\n"}, {" 111122223333", "eu-west-1"},
        {"111122223333", "a-region-name-that-is-far-too-long-1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char buf[QFS_SUBJECT_MAX] = "untouched";
        qfs_status s = qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_EVENTS, bad[i].account, bad[i].region);
        if (s != QFS_PROTOCOL) fail_msg("case %zu: %s", i, qfs_status_str(s));
        assert_string_equal(buf, "");
    }
    char buf[QFS_SUBJECT_MAX];
    static const char *const services[] = {"", "Parser", "parser.x", "parser*", ">", "a b", NULL,
                                           "a-service-name-that-is-too-long-x"};
    for (size_t i = 0; i < sizeof(services) / sizeof(*services); i++) {
        assert_int_equal(qfs_subject_dlq(buf, sizeof(buf), services[i]), QFS_PROTOCOL);
        assert_int_equal(qfs_subject_stats(buf, sizeof(buf), services[i]), QFS_PROTOCOL);
    }
    /* A service-keyed kind has no account/region form, and the buffer bound holds. */
    assert_int_equal(qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_DLQ, "111122223333", "eu-west-1"), QFS_INVALID_ARG);
    assert_int_equal(qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_COUNT, "111122223333", "eu-west-1"), QFS_INVALID_ARG);
    char small[20];
    assert_int_equal(qfs_subject_format(small, sizeof(small), QFS_SUBJECT_EVENTS, "111122223333", "eu-west-1"), QFS_TOO_BIG);
    assert_string_equal(small, "");
}

static void test_subject_parse(void **state)
{
    struct qfs_subject_parts p;
    assert_int_equal(qfs_subject_parse("qfs.scans.ready.111122223333.eu-west-1", &p), QFS_OK);
    assert_int_equal(p.kind, QFS_SUBJECT_SCANS_READY);
    assert_string_equal(p.account, "111122223333");
    assert_string_equal(p.region, "eu-west-1");
    assert_int_equal(qfs_subject_parse("qfs.dlq.parser", &p), QFS_OK);
    assert_int_equal(p.kind, QFS_SUBJECT_DLQ);
    assert_string_equal(p.service, "parser");
    static const char *const bad[] = {
        "qfs.images.111122223333", "qfs.images.111122223333.eu-west-1.x", "qfs.images.*.eu-west-1",
        "qfs.images.>", "qfs.scans.111122223333.eu-west-1", "qfs.dlq.", "qfs.dlq.a.b", "other.x",
        "qfs.images.11112222333.eu-west-1", "", NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (qfs_subject_parse(bad[i], &p) != QFS_PROTOCOL) fail_msg("accepted %s", bad[i]);
    }
    /* Every subject the builder writes parses back to the same parts. */
    for (int k = 0; k < QFS_SUBJECT_DLQ; k++) {
        char buf[QFS_SUBJECT_MAX];
        assert_int_equal(qfs_subject_format(buf, sizeof(buf), (enum qfs_subject)k, "123456789012", "ap-south-2"), QFS_OK);
        assert_int_equal(qfs_subject_parse(buf, &p), QFS_OK);
        assert_int_equal(p.kind, k);
        assert_string_equal(p.region, "ap-south-2");
    }
}

static void test_schema_names_and_tokens(void **state)
{
    assert_string_equal(qfs_schema_name(QFS_SCHEMA_IMAGE), "qfs.image.v1");
    assert_string_equal(qfs_schema_name(QFS_SCHEMA_DLQ), "qfs.dlq.v1");
    assert_null(qfs_schema_name(QFS_SCHEMA_NONE));
    assert_null(qfs_schema_name(QFS_SCHEMA_COUNT));
    for (int i = 1; i < QFS_SCHEMA_COUNT; i++)
        assert_int_equal(qfs_schema_parse(qfs_schema_name((enum qfs_schema)i)), i);
    assert_int_equal(qfs_schema_parse("qfs.image.v2"), QFS_SCHEMA_NONE);
    assert_int_equal(qfs_schema_parse(NULL), QFS_SCHEMA_NONE);

    assert_true(qfs_proto_is_digest(DIGEST));
    assert_false(qfs_proto_is_digest("sha256:4E2A6C0D9B8F7E6D5C4B3A29181706F5E4D3C2B1A09F8E7D6C5B4A3928170605"));
    assert_false(qfs_proto_is_digest(DIGEST "0"));
    assert_false(qfs_proto_is_digest("sha512:abc"));
    assert_true(qfs_proto_is_timestamp("2024-02-29T23:59:59.123456789+05:30"));
    assert_false(qfs_proto_is_timestamp("2023-02-29T10:00:00Z"));
    assert_false(qfs_proto_is_timestamp("2026-05-01T10:00:00"));
    assert_false(qfs_proto_is_timestamp("2026-05-01t10:00:00z"));
    assert_false(qfs_proto_is_timestamp("2026-05-01T24:00:00Z"));
    assert_false(qfs_proto_is_timestamp("2026-05-01T10:00:00.Z"));
    /* The time itself: epoch milliseconds, offsets applied, fractions past ms dropped. */
    int64_t ms = 0;
    assert_true(qfs_proto_parse_timestamp("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(qfs_proto_parse_timestamp("2026-05-01T10:00:00Z", &ms));
    assert_int_equal(ms, 1777629600000LL);
    assert_true(qfs_proto_parse_timestamp("2026-05-01T12:30:00.1239+02:30", &ms));
    assert_int_equal(ms, 1777629600123LL);
    assert_true(qfs_proto_parse_timestamp("2024-02-29T23:59:59-01:00", &ms));
    assert_int_equal(ms, 1709254799000LL);
    assert_true(qfs_proto_parse_timestamp("1969-12-31T23:59:59.5Z", &ms));
    assert_int_equal(ms, -500);
    assert_false(qfs_proto_parse_timestamp("2026-05-01T10:00:00", &ms));
    assert_true(qfs_proto_is_event_id("6a7e8feb-0000-0000-0000-000000000001"));
    assert_false(qfs_proto_is_event_id("-leading-dash"));
    assert_false(qfs_proto_is_event_id("has space"));
    assert_false(qfs_proto_is_event_id(""));
}

static void test_image_key(void **state)
{
    struct qfs_image_id img = {.registry = "111122223333.dkr.ecr.eu-west-1.amazonaws.com",
                               .repository = "team/web", .tag = "1.4.2"};
    char buf[QFS_IMAGE_KEY_MAX];
    assert_int_equal(qfs_image_key_format(buf, sizeof(buf), &img), QFS_OK);
    assert_string_equal(buf, "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/web:1.4.2");
    img.digest = DIGEST;
    assert_int_equal(qfs_image_key_format(buf, sizeof(buf), &img), QFS_OK);
    assert_string_equal(buf, "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/web@" DIGEST);
    img.digest = img.tag = NULL;
    assert_int_equal(qfs_image_key_format(buf, sizeof(buf), &img), QFS_INVALID_ARG);
}

/* The registry and the scanner-poller name a generation's outcome alike, or JetStream would keep
 * both of its outcomes. */
static void test_generation_key(void **state)
{
    char buf[QFS_GENERATION_KEY_MAX], small[16];
    const char *key = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/web@" DIGEST;
    assert_int_equal(qfs_generation_key(buf, sizeof(buf), "outcome", key, 1764000000123), QFS_OK);
    assert_string_equal(buf, "outcome:111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/web@" DIGEST
                             "#1764000000123");
    assert_int_equal(qfs_generation_key(small, sizeof(small), "deploys", key, 1), QFS_TOO_BIG);
    assert_string_equal(small, "");
}

/* ---- decoders on bad input ------------------------------------------------------------------- */

static void test_valid_messages_decode(void **state)
{
    assert_accepted(K_IMAGE, image_json());
    assert_accepted(K_REQUEST, request_json());
    char *f = finding_json(1, 5, "\"CVE-2024-0727\"");
    assert_accepted(K_RESULT, result_json_with(f, 1));
    free(f);
    assert_accepted(K_SKIP, skip_json());
    assert_accepted(K_DLQ, dlq_json());
    assert_accepted(K_EVENT, event_json());
}

static void test_rejects_wrong_types(void **state)
{
    char *j = image_json();
    assert_rejected(K_IMAGE, replace(j, "\"account\":\"111122223333\"", "\"account\":111122223333"), "account: expected string");
    assert_rejected(K_IMAGE, replace(j, "\"cache_fail_open\":false", "\"cache_fail_open\":0"), "cache_fail_open: expected boolean");
    assert_rejected(K_IMAGE, replace(j, "\"containers\":[\"app\"]", "\"containers\":\"app\""), "containers: expected array");
    assert_rejected(K_IMAGE, replace(j, "\"containers\":[\"app\"]", "\"containers\":[7]"), "containers[0]: expected string");
    assert_rejected(K_IMAGE, replace(j, "\"repository\":\"web\"", "\"repository\":null"), "repository: expected string, not null");
    assert_rejected(K_IMAGE, replace(j, "\"tag\":\"1.4.2\"", "\"tag\":[]"), "tag: expected string or null");
    assert_rejected(K_IMAGE, qfs_xstrdup("[]"), "message: expected object");
    assert_rejected(K_IMAGE, qfs_xstrdup("\"qfs.image.v1\""), "message: expected object");
    free(j);
    j = request_json();
    assert_rejected(K_REQUEST, replace(j, "\"generation\":7", "\"generation\":\"7\""), "generation: expected integer");
    assert_rejected(K_REQUEST, replace(j, "\"generation\":7", "\"generation\":7.5"), "generation: expected integer");
    assert_rejected(K_REQUEST, replace(j, "\"generation\":7", "\"generation\":1e300"), "generation: out of range");
    assert_rejected(K_REQUEST, replace(j, "\"generation\":7", "\"generation\":1000000000000000"), "generation: out of range");
    assert_rejected(K_REQUEST, replace(j, "\"deploys\":[{", "\"deploys\":[7,{"), "deploys[0]: expected object");
    assert_rejected(K_REQUEST, replace(j, "\"event_time\":\"2026-05-01T10:00:00Z\"", "\"event_time\":1777629600"),
                    "deploys[0].event_time: expected string");
    free(j);
    j = dlq_json();
    assert_rejected(K_DLQ, replace(j, "\"headers\":{\"Nats-Msg-Id\":\"x\"}", "\"headers\":{\"Nats-Msg-Id\":1}"), "headers.[0]: expected string");
    assert_rejected(K_DLQ, replace(j, "\"headers\":{\"Nats-Msg-Id\":\"x\"}", "\"headers\":[]"), "headers: expected object");
    free(j);
    j = event_json();
    assert_rejected(K_EVENT, replace(j, "\"responseElements\":null", "\"responseElements\":\"x\""), "detail.responseElements: wrong type");
    assert_rejected(K_EVENT, replace(j, "\"resources\":[]", "\"resources\":[1]"), "resources");
    free(j);
}

static void test_rejects_missing_and_unknown_fields(void **state)
{
    char *j = image_json();
    assert_rejected(K_IMAGE, replace(j, "\"schema\":\"qfs.image.v1\",", ""), "schema: missing");
    assert_rejected(K_IMAGE, replace(j, "\"digest_unresolved\":null,", ""), "digest_unresolved: missing");
    assert_rejected(K_IMAGE, replace(j, ",\"containers\":[\"app\"]", ""), "containers: missing");
    assert_rejected(K_IMAGE, replace(j, "\"schema\":\"qfs.image.v1\"", "\"schema\":\"qfs.image.v2\""), "schema: expected \"qfs.image.v1\"");
    assert_rejected(K_IMAGE, replace(j, "\"schema\":\"qfs.image.v1\"", "\"schema\":\"qfs.skip.v1\""), "schema");
    assert_rejected(K_IMAGE, replace(j, "{\"schema\"", "{\"extra\":1,\"schema\""), "message: unknown field \"extra\"");
    assert_rejected(K_IMAGE, replace(j, "{\"schema\"", "{\"account\":\"111122223333\",\"schema\""), "account: duplicate field");
    assert_rejected(K_IMAGE, replace(j, "{\"schema\"", "{\"\\u0001\\u00e9\":1,\"schema\""), "message: unknown field \"???\"");
    free(j);
    j = request_json();
    assert_rejected(K_REQUEST, replace(j, "\"principal\":null,", ""), "deploys[0].principal: missing");
    assert_rejected(K_REQUEST, replace(j, "\"principal\":null,", "\"principal\":null,\"x\":1,"), "deploys[0]: unknown field \"x\"");
    free(j);
    char *f = finding_json(1, 5, "");
    char *r = result_json_with(f, 1);
    assert_rejected(K_RESULT, replace(r, "\"package\":null,", ""), "findings[0].package: missing");
    assert_rejected(K_RESULT, replace(r, "\"info\":0}", "\"info\":0,\"none\":0}"), "counts: unknown field \"none\"");
    free(r);
    free(f);
    j = event_json();
    assert_rejected(K_EVENT, replace(j, "\"id\":\"6a7e8feb-0000-0000-0000-000000000001\",", ""), "id: missing");
    assert_rejected(K_EVENT, replace(j, ",\"detail\":{\"eventName\":\"RunTask\",\"responseElements\":null,\"anything\":{\"else\":[1,2]}}", ""), "detail: missing");
    assert_accepted(K_EVENT, replace(j, "{\"version\"", "{\"future\":{\"field\":true},\"version\""));
    free(j);
}

static void test_rejects_bad_account_region_digest(void **state)
{
    char *j = image_json();
    assert_rejected(K_IMAGE, replace(j, "\"account\":\"111122223333\"", "\"account\":\"11112222333\""), "account: shorter than 12");
    assert_rejected(K_IMAGE, replace(j, "\"account\":\"111122223333\"", "\"account\":\"11112222333x\""), "account: not 12 digits");
    assert_rejected(K_IMAGE, replace(j, "\"region\":\"eu-west-1\"", "\"region\":\"EU-WEST-1\""), "region: not [a-z0-9-]+");
    assert_rejected(K_IMAGE, replace(j, "\"region\":\"eu-west-1\"", "\"region\":\"eu-west-1>\""), "region");
    assert_rejected(K_IMAGE, replace(j, "\"region\":\"eu-west-1\"", "\"region\":\"\""), "region: shorter");
    assert_rejected(K_IMAGE, replace(j, "\"region\":\"eu-west-1\"", "\"region\":\"eu-west-2\""), "registry: names another account or region");
    assert_rejected(K_IMAGE, replace(j, DIGEST, "sha256:abc"), "digest");
    assert_rejected(K_IMAGE, replace(j, DIGEST, "sha256:4E2A6C0D9B8F7E6D5C4B3A29181706F5E4D3C2B1A09F8E7D6C5B4A3928170605"), "digest: not sha256:");
    assert_rejected(K_IMAGE, replace(j, "amazonaws.com\",", "amazonaws.com.evil\","), "registry: not an ECR registry host");
    assert_rejected(K_IMAGE, replace(j, "\"repository\":\"web\"", "\"repository\":\"Web\""), "repository: not a repository");
    assert_rejected(K_IMAGE, replace(j, "\"repository\":\"web\"", "\"repository\":\"web//x\""), "repository");
    assert_rejected(K_IMAGE, replace(j, "\"repository\":\"web\"", "\"repository\":\"web..x\""), "repository");
    assert_rejected(K_IMAGE, replace(j, "\"tag\":\"1.4.2\"", "\"tag\":\".bad\""), "tag");
    assert_rejected(K_IMAGE, replace(j, "\"cluster\":\"prod\"", "\"cluster\":\"arn:aws:ecs:eu-west-1:111122223333:service/prod\""), "cluster");
    assert_rejected(K_IMAGE, replace(j, "task-definition/web:42", "task-definition/web"), "task_definition_arn");
    assert_rejected(K_IMAGE, replace(j, "\"event_time\":\"2026-05-01T10:00:00Z\"", "\"event_time\":\"2026-13-01T10:00:00Z\""), "event_time");
    assert_rejected(K_IMAGE, replace(j, "\"image\":\"111122223333", "\"image\":\" 111122223333"), "image: not printable");
    /* Digest null needs a reason, and the reason needs a null digest. */
    char *nodigest = replace(j, "\"" DIGEST "\"", "null");
    assert_rejected(K_IMAGE, qfs_xstrdup(nodigest), "digest_unresolved: null while digest is null");
    assert_accepted(K_IMAGE, replace(nodigest, "\"digest_unresolved\":null", "\"digest_unresolved\":\"tag not found\""));
    assert_rejected(K_IMAGE, replace(j, "\"digest_unresolved\":null", "\"digest_unresolved\":\"x\""), "digest_unresolved: set while");
    char *notag = replace(nodigest, "\"tag\":\"1.4.2\"", "\"tag\":null");
    assert_rejected(K_IMAGE, replace(notag, "\"digest_unresolved\":null", "\"digest_unresolved\":\"x\""), "tag: null while digest is null");
    free(notag);
    free(nodigest);
    free(j);
    j = request_json();
    assert_rejected(K_REQUEST, replace(j, "\"event_account\":\"111122223333\"", "\"event_account\":\"1111222233\""),
                    "deploys[0].event_account");
    assert_rejected(K_REQUEST, replace(j, "\"event_region\":\"eu-west-1\"", "\"event_region\":\"eu_west_1\""),
                    "deploys[0].event_region");
    free(j);
    j = event_json();
    assert_rejected(K_EVENT, replace(j, "\"account\":\"111122223333\"", "\"account\":\"1111-2222-3333\""), "account");
    assert_rejected(K_EVENT, replace(j, "\"region\":\"eu-west-1\"", "\"region\":\"eu-west-1.*\""), "region");
    free(j);
}

static void test_rejects_unknown_enum_values(void **state)
{
    char *j = skip_json();
    assert_rejected(K_SKIP, replace(j, "\"reason\":\"not_ecr\"", "\"reason\":\"NOT_ECR\""), "reason: unknown value");
    assert_rejected(K_SKIP, replace(j, "\"reason\":\"not_ecr\"", "\"reason\":null"), "reason: expected string");
    free(j);
    j = image_json();
    assert_rejected(K_IMAGE, replace(j, "\"event_name\":\"UpdateService\"", "\"event_name\":\"DeleteService\""), "event_name: not a supported");
    free(j);
    j = skip_json();
    /* Skip records name any event, supported or not. */
    assert_accepted(K_SKIP, replace(j, "\"event_name\":\"UpdateService\"", "\"event_name\":\"DeleteService\""));
    free(j);
    j = dlq_json();
    assert_rejected(K_DLQ, replace(j, "\"status\":\"protocol\"", "\"status\":\"ok\""), "status: unknown value");
    assert_rejected(K_DLQ, replace(j, "\"payload_encoding\":\"base64\"", "\"payload_encoding\":\"hex\""), "payload_encoding: unknown value");
    free(j);
}

static void test_rejects_oversize(void **state)
{
    struct qfs_buf b;
    /* 101 containers. */
    qfs_buf_init(&b, 0);
    for (int i = 0; i <= QFS_PROTO_MAX_CONTAINERS; i++) qfs_buf_printf(&b, "%s\"c%d\"", i ? "," : "", i);
    char *j = image_json();
    char *list = qfs_xasprintf("\"containers\":[%s]", b.data);
    assert_rejected(K_IMAGE, replace(j, "\"containers\":[\"app\"]", list), "containers: more than 100 items");
    free(list);
    free(j);
    qfs_buf_cleanup(&b);

    /* 101 deploys. */
    qfs_buf_init(&b, 0);
    for (int i = 0; i <= QFS_PROTO_MAX_DEPLOYS; i++) qfs_buf_printf(&b, "%s{%s}", i ? "," : "", DEPLOY_FIELDS);
    j = request_json();
    char *deploys = qfs_xasprintf("\"deploys\":[%s]", b.data);
    char *old = qfs_xasprintf("\"deploys\":[{%s}]", DEPLOY_FIELDS);
    assert_rejected(K_REQUEST, replace(j, old, deploys), "deploys: more than 100 items");
    assert_rejected(K_REQUEST, replace(j, old, "\"deploys\":[]"), "deploys: fewer than 1 items");
    free(old);
    free(deploys);
    free(j);
    qfs_buf_cleanup(&b);

    /* 51 findings, and a finding with 65 CVEs. */
    qfs_buf_init(&b, 0);
    for (int i = 0; i <= QFS_SCAN_MAX_FINDINGS; i++) {
        char *f = finding_json(1000 + i, 5, "");
        qfs_buf_printf(&b, "%s%s", i ? "," : "", f);
        free(f);
    }
    assert_rejected(K_RESULT, result_json_with(b.data, 100), "findings: more than 50 items");
    qfs_buf_cleanup(&b);
    qfs_buf_init(&b, 0);
    for (int i = 0; i <= QFS_SCAN_MAX_CVES; i++) qfs_buf_printf(&b, "%s\"CVE-2024-%05d\"", i ? "," : "", 10000 + i);
    char *f = finding_json(1, 5, b.data);
    assert_rejected(K_RESULT, result_json_with(f, 1), "findings[0].cves: more than 64 items");
    free(f);
    qfs_buf_cleanup(&b);

    /* 65 headers. */
    qfs_buf_init(&b, 0);
    for (int i = 0; i <= QFS_DLQ_MAX_HEADERS; i++) qfs_buf_printf(&b, "%s\"H%d\":\"v\"", i ? "," : "", i);
    j = dlq_json();
    char *headers = qfs_xasprintf("\"headers\":{%s}", b.data);
    assert_rejected(K_DLQ, replace(j, "\"headers\":{\"Nats-Msg-Id\":\"x\"}", headers), "headers: more than 64");
    free(headers);
    free(j);
    qfs_buf_cleanup(&b);

    /* Strings past their bound, counted in characters: 2048 'é' pass, 2049 do not. */
    qfs_buf_init(&b, 0);
    for (int i = 0; i < 2048; i++) qfs_buf_puts(&b, "\xc3\xa9");
    j = skip_json();
    char *detail = qfs_xasprintf("\"detail\":\"%s\"", b.data);
    assert_accepted(K_SKIP, replace(j, "\"detail\":null", detail));
    free(detail);
    detail = qfs_xasprintf("\"detail\":\"%sx\"", b.data);
    assert_rejected(K_SKIP, replace(j, "\"detail\":null", detail), "detail: longer than 2048");
    free(detail);
    free(j);
    qfs_buf_cleanup(&b);

    /* A message past QFS_PROTO_MAX_BYTES, and an event past 256 KiB. */
    size_t n = QFS_PROTO_MAX_BYTES + 1;
    char *big = qfs_xmalloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_rejected(K_IMAGE, big, "message: longer than");
    j = event_json();
    char *pad = qfs_xmalloc(QFS_EVENT_MAX_BYTES + 1);
    memset(pad, 'x', QFS_EVENT_MAX_BYTES);
    pad[QFS_EVENT_MAX_BYTES] = '\0';
    char *padded = qfs_xasprintf("\"pad\":\"%s\",\"version\"", pad);
    assert_rejected(K_EVENT, replace(j, "\"version\"", padded), "message: longer than 262144");
    free(padded);
    free(pad);
    free(j);
}

/* Code points counted, and bad UTF-8 found, wherever it falls against the eight-byte ASCII runs. */
static void test_utf8_length_at_every_offset(void **state)
{
    (void)state;
    static const struct {
        const char *seq;
        size_t points; /* SIZE_MAX: invalid */
    } cases[] = {
        {"\xc3\xa9", 1}, {"\xe2\x82\xac", 1}, {"\xf0\x9f\x98\x80", 1}, {"\xff", SIZE_MAX},
        {"\xc3", SIZE_MAX}, {"\xc0\xaf", SIZE_MAX}, {"\xed\xa0\x80", SIZE_MAX}, {"\x80", SIZE_MAX},
    };
    char buf[64];
    for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
        size_t k = strlen(cases[c].seq);
        for (size_t before = 0; before <= 17; before++) {
            for (size_t after = 0; after <= 9; after += 3) {
                memset(buf, 'a', before);
                memcpy(buf + before, cases[c].seq, k);
                memset(buf + before + k, 'b', after);
                size_t n = before + k + after;
                size_t want = cases[c].points == SIZE_MAX ? SIZE_MAX : before + 1 + after;
                if (qfs_utf8_length(buf, n) != want || qfs_utf8_is_valid(buf, n) != (want != SIZE_MAX))
                    fail_msg("case %zu with %zu ASCII bytes before, %zu after", c, before, after);
            }
        }
    }
    assert_int_equal(qfs_utf8_length("", 0), 0);
    /* n bounds the text: a sequence cut by it is invalid. */
    assert_int_equal(qfs_utf8_length("abcdefgh\xc3\xa9", 9), SIZE_MAX);
}

static void test_rejects_non_json(void **state)
{
    static const char *const bad[] = {"", " ", "{", "nul", "{\"a\":1}}", "{} x", "{\"a\":\x01}",
                                      "{\"a\":\"\xff\"}", "{\"a\":\"\\ud800\"}", "NaN"};
    for (int k = K_IMAGE; k <= K_EVENT; k++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
            char err[128];
            qfs_status s = decode((enum kind)k, bad[i], strlen(bad[i]), err, sizeof(err));
            if (s != QFS_PROTOCOL) fail_msg("kind %d accepted \"%s\"", k, bad[i]);
            assert_memory_equal(err, "message", 7);
        }
        char err[8];
        assert_int_equal(decode((enum kind)k, NULL, 0, err, sizeof(err)), QFS_PROTOCOL);
        assert_int_equal(decode((enum kind)k, "{}", 2, NULL, 0), QFS_PROTOCOL); /* no error buffer */
    }
}

/* Every prefix of every valid message, in a buffer of exactly that size (no terminator for ASan to
 * forgive), is rejected or accepted without a crash or a leak; only the whole message is accepted. */
static void test_never_crashes_on_truncation(void **state)
{
    char *f = finding_json(1, 5, "\"CVE-2024-0727\"");
    char *msgs[] = {image_json(), request_json(), result_json_with(f, 1), skip_json(), dlq_json(), event_json()};
    enum kind kinds[] = {K_IMAGE, K_REQUEST, K_RESULT, K_SKIP, K_DLQ, K_EVENT};
    for (size_t m = 0; m < sizeof(msgs) / sizeof(*msgs); m++) {
        size_t len = strlen(msgs[m]);
        for (size_t n = 0; n <= len; n++) {
            char *copy = qfs_xmalloc(n ? n : 1);
            memcpy(copy, msgs[m], n);
            char err[256];
            qfs_status s = decode(kinds[m], copy, n, err, sizeof(err));
            assert_int_equal(s, n == len ? QFS_OK : QFS_PROTOCOL);
            free(copy);
        }
        /* And every kind of decoder on every other kind of message. */
        for (int k = K_IMAGE; k <= K_EVENT; k++) {
            char err[256];
            qfs_status s = decode((enum kind)k, msgs[m], len, err, sizeof(err));
            bool same = (enum kind)k == kinds[m];
            assert_int_equal(s, same ? QFS_OK : QFS_PROTOCOL);
        }
        free(msgs[m]);
    }
    free(f);
}

static void test_cross_field_rules(void **state)
{
    char *f1 = finding_json(100, 5, "");
    char *f2 = finding_json(50, 4, "");
    char *f3 = finding_json(60, 4, "");
    char *list = qfs_xasprintf("%s,%s,%s", f1, f2, f3);
    assert_accepted(K_RESULT, result_json_with(list, 3));
    assert_rejected(K_RESULT, result_json_with(list, 2), "findings: more findings than total");
    free(list);
    list = qfs_xasprintf("%s,%s,%s", f1, f3, f2);
    assert_rejected(K_RESULT, result_json_with(list, 3), "findings[2]: out of order");
    free(list);
    list = qfs_xasprintf("%s,%s", f2, f1);
    assert_rejected(K_RESULT, result_json_with(list, 3), "findings[1]: out of order");
    free(list);
    char *r = result_json_with(f1, 1);
    assert_rejected(K_RESULT, replace(r, "\"total\":1", "\"total\":2"), "total: not the sum of counts");
    assert_rejected(K_RESULT, replace(r, "\"patchable\":0", "\"patchable\":2"), "patchable: greater than total");
    free(r);
    free(f1);
    free(f2);
    free(f3);
    char *j = skip_json();
    char *sum = qfs_xasprintf("\"summary\":{\"qualys_image_sha\":\"%064d\",\"counts\":{\"critical\":0,"
                              "\"high\":0,\"medium\":0,\"low\":0,\"info\":0},\"total\":0,\"patchable\":0,"
                              "\"scanned_at\":\"2026-05-01T10:00:00Z\"}", 0);
    assert_rejected(K_SKIP, replace(j, "\"summary\":null", sum), "summary: set for a reason other than cached");
    char *cached = replace(j, "\"reason\":\"not_ecr\"", "\"reason\":\"cached\"");
    assert_accepted(K_SKIP, replace(cached, "\"summary\":null", sum));
    free(cached);
    free(sum);
    free(j);
}

/* ---- encoders -------------------------------------------------------------------------------- */

static char *containers[] = {"app", "sidecar"};

static struct qfs_image_record sample_record(void)
{
    struct qfs_image_record m = {
        .image = {.account = "111122223333", .region = "eu-west-1",
                  .registry = "111122223333.dkr.ecr.eu-west-1.amazonaws.com", .repository = "team/web",
                  .tag = "1.4.2", .digest = DIGEST,
                  .image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/web:1.4.2"},
        .deploy = {.event_name = "RunTask", .event_id = "6a7e8feb-0000-0000-0000-000000000001",
                   .event_time = "2026-05-01T10:00:00Z", .event_account = "444455556666",
                   .event_region = "us-east-1", .containers = containers, .ncontainers = 2},
    };
    return m;
}

static void test_encode_decode_round_trip(void **state)
{
    struct qfs_image_record m = sample_record();
    char *json;
    assert_int_equal(qfs_image_record_encode(&m, &json), QFS_OK);
    struct qfs_image_record back;
    char err[256];
    assert_int_equal(qfs_image_record_decode(json, strlen(json), &back, err, sizeof(err)), QFS_OK);
    assert_string_equal(back.image.repository, "team/web");
    assert_string_equal(back.image.digest, DIGEST);
    assert_string_equal(back.deploy.event_account, "444455556666");
    assert_null(back.deploy.principal);
    assert_int_equal(back.deploy.ncontainers, 2);
    assert_string_equal(back.deploy.containers[1], "sidecar");
    char key[QFS_IMAGE_KEY_MAX];
    assert_int_equal(qfs_image_key_format(key, sizeof(key), &back.image), QFS_OK);
    assert_string_equal(key, "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/web@" DIGEST);

    /* A deep copy outlives the decoded record. */
    struct qfs_deploy copy;
    qfs_deploy_copy(&copy, &back.deploy);
    qfs_image_record_cleanup(&back);
    assert_string_equal(copy.containers[0], "app");
    qfs_deploy_cleanup(&copy);
    free(json);
}

static void test_encode_refuses_broken_structs(void **state)
{
    int devnull = open("/dev/null", O_WRONLY);
    qfs_log_set_fd(devnull); /* the refusal is logged: keep test output clean */
    char *json = (char *)"untouched";
    struct qfs_image_record m = sample_record();
    m.image.digest = "sha256:nope";
    assert_int_equal(qfs_image_record_encode(&m, &json), QFS_INVALID_ARG);
    assert_null(json);
    m = sample_record();
    m.image.region[0] = 'E';
    assert_int_equal(qfs_image_record_encode(&m, &json), QFS_INVALID_ARG);
    m = sample_record();
    memset(m.image.account, '1', sizeof(m.image.account)); /* no terminator */
    assert_int_equal(qfs_image_record_encode(&m, &json), QFS_INVALID_ARG);
    m = sample_record();
    m.deploy.event_time = "\xff\xfe";
    assert_int_equal(qfs_image_record_encode(&m, &json), QFS_INVALID_ARG);
    m = sample_record();
    m.deploy.ncontainers = 0;
    assert_int_equal(qfs_image_record_encode(&m, &json), QFS_INVALID_ARG);

    struct qfs_skip s = {.reason = QFS_SKIP_REASON_COUNT};
    assert_int_equal(qfs_skip_encode(&s, &json), QFS_INVALID_ARG);

    struct qfs_finding f[2] = {{.qid = 2, .title = "a", .severity = 3}, {.qid = 1, .title = "b", .severity = 5}};
    struct qfs_deploy d = sample_record().deploy;
    struct qfs_scan_result r = {.image = sample_record().image, .generation = 1,
                                .registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21",
                                .qualys_image_sha = "00a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f",
                                .counts = {.critical = 1, .medium = 1}, .total = 2, .findings = f,
                                .nfindings = 2, .scanned_at = "2026-05-01T10:00:00Z", .deploys = &d,
                                .ndeploys = 1};
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_INVALID_ARG); /* out of order */
    qfs_scan_findings_sort(f, 2);
    assert_int_equal(f[0].qid, 1);
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_OK);
    free(json);
    /* Integers are written as their digits, and checked against their ranges before. */
    r.generation = 1234567890123;
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_OK);
    assert_non_null(strstr(json, "\"generation\":1234567890123,"));
    assert_non_null(strstr(json, "\"critical\":1,"));
    free(json);
    r.generation = 0;
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_INVALID_ARG);
    r.generation = 1;
    r.counts.high = -1;
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_INVALID_ARG);
    r.counts.high = 0;

    struct qfs_notification n = {.decision = QFS_NOTIFY_SENT, .reason = QFS_NOTIFY_BELOW_MIN_SEVERITY,
                                 .image = sample_record().image, .generation = 1, .deploys = &d,
                                 .ndeploys = 1, .notified_at = "2026-05-01T10:00:00Z"};
    assert_int_equal(qfs_notification_encode(&n, &json), QFS_INVALID_ARG);
    n.decision = QFS_NOTIFY_NOT_SENT;
    assert_int_equal(qfs_notification_encode(&n, &json), QFS_OK);
    free(json);
    qfs_log_set_fd(2);
    close(devnull);
}

static void test_dlq_payloads(void **state)
{
    static const char bytes[] = {'\xff', 'a', '\0', 'b', '\x80'};
    struct qfs_dlq_entry m = {.service = "cache", .reason = "store said no", .status = QFS_UNAVAILABLE,
                              .payload = (char *)bytes, .payload_len = sizeof(bytes), .delivery_count = 5,
                              .time = "2026-05-01T10:00:00Z"};
    char *json;
    assert_int_equal(qfs_dlq_entry_encode(&m, &json), QFS_OK);
    assert_non_null(strstr(json, "\"payload_encoding\":\"base64\""));
    struct qfs_dlq_entry back;
    char err[256];
    assert_int_equal(qfs_dlq_entry_decode(json, strlen(json), &back, err, sizeof(err)), QFS_OK);
    assert_int_equal(back.payload_len, sizeof(bytes));
    assert_memory_equal(back.payload, bytes, sizeof(bytes));
    assert_true(back.payload_base64);
    assert_int_equal(back.status, QFS_UNAVAILABLE);
    assert_null(back.original_subject);
    assert_int_equal(back.nheaders, 0);
    qfs_dlq_entry_cleanup(&back);
    free(json);

    m.payload = "plain {\"json\"} text";
    m.payload_len = strlen(m.payload);
    assert_int_equal(qfs_dlq_entry_encode(&m, &json), QFS_OK);
    assert_non_null(strstr(json, "\"payload\":\"plain {\\\"json\\\"} text\",\"payload_encoding\":\"utf8\""));
    free(json);

    char *j = dlq_json();
    assert_rejected(K_DLQ, replace(j, "\"QUI=\"", "\"QUI\""), "payload: not valid base64");
    assert_rejected(K_DLQ, replace(j, "\"QUI=\"", "\"Q=I=\""), "payload: not valid base64");
    assert_rejected(K_DLQ, replace(j, "\"QUI=\"", "\"QU I\""), "payload: not valid base64");
    assert_rejected(K_DLQ, replace(j, "\"payload_size\":2", "\"payload_size\":3"), "payload_size: differs");
    assert_rejected(K_DLQ, replace(j, "\"Nats-Msg-Id\"", "\"Bad:Name\""), "headers.[0]: not a header name");
    free(j);
}

static void test_event_envelope(void **state)
{
    char *j = event_json();
    struct qfs_event e;
    char err[256];
    assert_int_equal(qfs_event_decode(j, strlen(j), &e, err, sizeof(err)), QFS_OK);
    assert_string_equal(e.id, "6a7e8feb-0000-0000-0000-000000000001");
    assert_string_equal(e.account, "111122223333");
    assert_string_equal(e.region, "eu-west-1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e.detail, "eventName")->valuestring, "RunTask");
    char *out;
    assert_int_equal(qfs_event_encode(&e, &out), QFS_OK);
    assert_string_equal(out, j); /* compact input comes back byte for byte */
    free(out);
    qfs_event_cleanup(&e);
    assert_rejected(K_EVENT, replace(j, "\"detail\":{", "\"detail\":[],\"x\":{"), "detail: expected object");
    assert_rejected(K_EVENT, replace(j, "\"time\":\"2026-05-01T10:00:00Z\"", "\"time\":\"yesterday\""), "time");
    free(j);
}

static void test_severity_helpers(void **state)
{
    enum qfs_severity s;
    assert_true(qfs_severity_parse("high", &s));
    assert_int_equal(s, QFS_SEVERITY_HIGH);
    assert_false(qfs_severity_parse("HIGH", &s));
    assert_false(qfs_severity_parse(NULL, &s));
    assert_string_equal(qfs_severity_str(QFS_SEVERITY_CRITICAL), "critical");
    struct qfs_severity_counts c = {.medium = 2, .info = 9};
    assert_int_equal(qfs_severity_counts_max(&c), QFS_SEVERITY_MEDIUM);
    struct qfs_severity_counts none = {0};
    assert_int_equal(qfs_severity_counts_max(&none), QFS_SEVERITY_NONE);
    enum qfs_scan_failure_reason r;
    assert_true(qfs_scan_failure_reason_parse("untagged_digest", &r));
    assert_int_equal(r, QFS_SCAN_FAILURE_UNTAGGED_DIGEST);
    enum qfs_skip_reason k;
    assert_true(qfs_skip_reason_parse("digest_unresolved", &k));
    assert_false(qfs_skip_reason_parse("nope", &k));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generation_key),
        cmocka_unit_test(test_subject_format),
        cmocka_unit_test(test_subject_rejects_bad_tokens),
        cmocka_unit_test(test_subject_parse),
        cmocka_unit_test(test_schema_names_and_tokens),
        cmocka_unit_test(test_image_key),
        cmocka_unit_test(test_valid_messages_decode),
        cmocka_unit_test(test_rejects_wrong_types),
        cmocka_unit_test(test_rejects_missing_and_unknown_fields),
        cmocka_unit_test(test_rejects_bad_account_region_digest),
        cmocka_unit_test(test_rejects_unknown_enum_values),
        cmocka_unit_test(test_rejects_oversize),
        cmocka_unit_test(test_utf8_length_at_every_offset),
        cmocka_unit_test(test_rejects_non_json),
        cmocka_unit_test(test_never_crashes_on_truncation),
        cmocka_unit_test(test_cross_field_rules),
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_encode_refuses_broken_structs),
        cmocka_unit_test(test_dlq_payloads),
        cmocka_unit_test(test_event_envelope),
        cmocka_unit_test(test_severity_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
