/* Hostile repository names and tags: values built to break out of a Qualys QQL filter, a path, an
 * SNS Subject or a NATS subject are refused before any request or subject is built, and what does
 * get through the SNS encoder is printable ASCII that cannot add or change a form parameter.
 * One list of hostile values drives every check: quotes that close the QQL string, backslashes,
 * percent escapes, line breaks, every NUL-free control character, non-ASCII and over-long values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qfs/aws_sns.h"
#include "qfs/http.h"
#include "qfs/image_ref.h"
#include "qfs/log.h"
#include "qfs/proto.h"
#include "qfs/qualys.h"
#include "qfs/util.h"

#define ECR_HOST "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
#define TOPIC_ARN "arn:aws:sns:eu-west-1:111122223333:qfs-notifications"
#define REGISTRY_UUID "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21"
#define SHA "2582034a3b2ae939ae7de0024fef7222e3b80bb4c300f6e7b1025b6afd95244f"

/* ---- the hostile values -------------------------------------------------------------------- */

static const char *const crafted[] = {
    "web\" or repo.tag:\"x",
    "web\" and repo.registry:\"evil.example.com",
    "\" or \"\"=\"",
    "web\\",
    "web\\\"",
    "web\\\\\" or 1",
    "web%22",
    "%22%20or%20repo.tag%3A%22x",
    "web%0a",
    "web%00",
    "web\n",
    "web\r\nX-Injected: 1",
    "web\nrepo.tag:\"x\"",
    "web' or '1'='1",
    "web) or (repo.tag:x",
    "web or repo.tag:x",
    "web repo.tag:x",
    "web&filter=repo.tag:x",
    "web?x=1",
    "web#frag",
    "web*",
    "web>",
    "web\xc3\xa9",
    "w\xe2\x80\xae" "bew",   /* a right-to-left override */
    "web\xff\xfe",
};

/* Every hostile value: the crafted ones, "web" followed by each NUL-free control character, and
 * values over every length bound. NULL-terminated; free with free_hostile(). */
static char **hostile_values(void)
{
    size_t n = 0, cap = 128;
    char **v = calloc(cap, sizeof(*v));
    for (size_t i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) v[n++] = strdup(crafted[i]);
    for (int c = 1; c < 0x20; c++) {
        char s[8];
        snprintf(s, sizeof(s), "web%c1", c);
        v[n++] = strdup(s);
    }
    v[n++] = strdup("web\x7f" "1");
    /* Over every bound: repository 256, tag 128, and far beyond. */
    size_t lens[] = {257, 4096, 100000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *s = malloc(lens[i] + 1);
        memset(s, 'a', lens[i]);
        s[lens[i]] = '\0';
        v[n++] = s;
    }
    /* A long value whose tail hides a quote past any prefix a careless check would look at. */
    char *tail = malloc(300);
    memset(tail, 'b', 299);
    tail[299] = '\0';
    memcpy(tail + 280, "\" or x:\"y", 9);
    v[n++] = tail;
    assert_true(n < cap);
    v[n] = NULL;
    return v;
}

static void free_hostile(char **v)
{
    for (size_t i = 0; v[i]; i++) free(v[i]);
    free(v);
}

/* A short printable rendering of a hostile value for failure messages. */
static const char *shown(const char *s)
{
    static char buf[64];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < sizeof(buf); p++) {
        if (*p >= 0x20 && *p < 0x7f) buf[o++] = (char)*p;
        else o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", *p);
    }
    buf[o] = '\0';
    return buf;
}

/* ---- Qualys QQL and paths ------------------------------------------------------------------ */

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* Splits "repo.registry:\"H\" and repo.repository:\"R\" and repo.tag:\"T\"" back into its three
 * values; false when the filter has any other shape. */
static bool qql_values(const char *qql, char h[300], char r[300], char t[300])
{
    int used = 0;
    if (sscanf(qql, "repo.registry:\"%299[^\"]\" and repo.repository:\"%299[^\"]\" and repo.tag:\"%299[^\"]\"%n",
               h, r, t, &used) != 3)
        return false;
    return qql[used] == '\0';
}

static void test_qql_refuses_hostile_values_before_building(void **state)
{
    char **hostile = hostile_values();
    struct qfs_buf b;
    qfs_buf_init(&b, 1 << 20);
    for (size_t i = 0; hostile[i]; i++) {
        const char *h = hostile[i];
        if (qfs_qualys_repository_is_valid(h)) fail_msg("repository accepted: %s", shown(h));
        if (qfs_qualys_tag_is_valid(h)) fail_msg("tag accepted: %s", shown(h));
        if (qfs_qualys_uuid_is_valid(h)) fail_msg("registry uuid accepted: %s", shown(h));
        if (qfs_qualys_sha_is_valid(h)) fail_msg("sha accepted: %s", shown(h));
        if (strpbrk(h, "\"\\% \r\n\t'()&?#*>") && qfs_qualys_host_is_valid(h))
            fail_msg("host accepted: %s", shown(h));
        assert_int_equal(qfs_qualys_image_filter(ECR_HOST, h, "1.0", &b), QFS_PROTOCOL);
        assert_int_equal(qfs_qualys_image_filter(ECR_HOST, "web", h, &b), QFS_PROTOCOL);
        assert_int_equal(qfs_qualys_image_filter(ECR_HOST, h, h, &b), QFS_PROTOCOL);
        if (strpbrk(h, "\"\\%"))
            assert_int_equal(qfs_qualys_image_filter(h, "web", "1.0", &b), QFS_PROTOCOL);
        /* Nothing at all was written: no partial filter, no URL. */
        assert_int_equal(b.len, 0);
    }

    /* What does pass keeps each value inside its own quotes: three quoted values that read back
     * as given, whatever valid characters they use. */
    static const char *const ok[][3] = {
        {ECR_HOST, "web", "1.4.2"},
        {"registry.example.com:5000", "team-a/web_app.v2", "Release_2026-05.1"},
        {ECR_HOST, "a/b/c/d", "latest"},
        {"localhost", "x", "X"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        qfs_buf_reset(&b);
        assert_int_equal(qfs_qualys_image_filter(ok[i][0], ok[i][1], ok[i][2], &b), QFS_OK);
        assert_int_equal(count_char(b.data, '"'), 6);
        assert_null(strchr(b.data, '\\'));
        char h[300], r[300], t[300];
        assert_true(qql_values(b.data, h, r, t));
        assert_string_equal(h, ok[i][0]);
        assert_string_equal(r, ok[i][1]);
        assert_string_equal(t, ok[i][2]);
    }
    qfs_buf_cleanup(&b);
    free_hostile(hostile);
}

/* An image reference that names a hostile repository or tag never parses into one the Qualys
 * validators would refuse: the first gate (the parser's image_ref) already stops the characters
 * that matter. */
static void test_image_references_stop_hostile_names_first(void **state)
{
    for (size_t i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
        char ref[512];
        struct qfs_image_ref r;
        char reason[QFS_IMAGE_REF_REASON_SIZE];
        snprintf(ref, sizeof(ref), ECR_HOST "/%s:1.0", crafted[i]);
        if (qfs_image_ref_parse(ref, &r, reason, sizeof(reason)) == QFS_OK &&
            (!qfs_qualys_repository_is_valid(r.repository) || !qfs_qualys_tag_is_valid(r.tag)))
            fail_msg("image reference with repository %s parsed into %s:%s", shown(crafted[i]),
                     r.repository, r.tag);
        snprintf(ref, sizeof(ref), ECR_HOST "/web:%s", crafted[i]);
        if (qfs_image_ref_parse(ref, &r, reason, sizeof(reason)) == QFS_OK &&
            (!qfs_qualys_repository_is_valid(r.repository) || !qfs_qualys_tag_is_valid(r.tag)))
            fail_msg("image reference with tag %s parsed into %s:%s", shown(crafted[i]), r.repository,
                     r.tag);
    }
    for (int c = 1; c < 0x20; c++) {
        char ref[128];
        struct qfs_image_ref r;
        char reason[QFS_IMAGE_REF_REASON_SIZE];
        snprintf(ref, sizeof(ref), ECR_HOST "/web:1%c0", c);
        assert_int_equal(qfs_image_ref_parse(ref, &r, reason, sizeof(reason)), QFS_PROTOCOL);
    }
}

struct calls {
    int hostile; /* callbacks of refused calls: must stay 0 */
    int control; /* callbacks of the one valid call */
    qfs_status control_status;
};

static void on_hostile(const struct qfs_qualys_response *r, void *arg)
{
    ((struct calls *)arg)->hostile++;
}

static void on_control(const struct qfs_qualys_response *r, void *arg)
{
    struct calls *c = arg;
    c->control++;
    c->control_status = r->status;
}

/* The client refuses every call that would carry a hostile value, and queues nothing: a call that
 * had been accepted would end with QFS_UNAVAILABLE when the client is freed, as the one valid
 * control call does. No byte goes to the network (the loop first runs after the client is gone). */
static void test_client_queues_no_request_for_hostile_values(void **state)
{
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_qualys *q;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);
    struct qfs_qualys_options o = {.gateway_url = "http://127.0.0.1:9", .api_token = "injection-test-token"};
    assert_int_equal(qfs_qualys_new(&loop, http, &o, &q), QFS_OK);

    struct calls calls = {0};
    char **hostile = hostile_values();
    for (size_t i = 0; hostile[i]; i++) {
        const char *h = hostile[i];
        char *https = qfs_xasprintf("https://%s", h);
        qfs_status got[] = {
            qfs_qualys_find_image(q, ECR_HOST, h, "1.0", NULL, on_hostile, &calls),
            qfs_qualys_find_image(q, ECR_HOST, "web", h, NULL, on_hostile, &calls),
            qfs_qualys_find_image(q, ECR_HOST, "web", "1.0", h, on_hostile, &calls),
            qfs_qualys_create_schedule(q, REGISTRY_UUID, h, "1.0", "qfs-web", on_hostile, &calls),
            qfs_qualys_create_schedule(q, REGISTRY_UUID, "web", h, "qfs-web", on_hostile, &calls),
            qfs_qualys_create_schedule(q, h, "web", "1.0", "qfs-web", on_hostile, &calls),
            qfs_qualys_image_detail(q, h, on_hostile, &calls),
            qfs_qualys_image_vulns(q, h, on_hostile, &calls),
            qfs_qualys_create_registry(q, "111122223333", h, "arn:aws:iam::111122223333:role/QualysEcrScanRole",
                                       "ecr", NULL, on_hostile, &calls),
        };
        for (size_t k = 0; k < sizeof(got) / sizeof(got[0]); k++)
            if (got[k] != QFS_PROTOCOL)
                fail_msg("call %zu with %s returned %s", k, shown(h), qfs_status_str(got[k]));
        if (strpbrk(h, "\"\\% \r\n\t'()&?#*>")) {
            assert_int_equal(qfs_qualys_find_registry(q, h, on_hostile, &calls), QFS_PROTOCOL);
            assert_int_equal(qfs_qualys_find_registry(q, https, on_hostile, &calls), QFS_PROTOCOL);
            assert_int_equal(qfs_qualys_find_image(q, h, "web", "1.0", NULL, on_hostile, &calls),
                             QFS_PROTOCOL);
        }
        free(https);
    }
    free_hostile(hostile);

    /* The control: the same call with valid values is accepted and ends once, when freed. */
    assert_int_equal(qfs_qualys_find_image(q, ECR_HOST, "web", "1.0", SHA, on_control, &calls), QFS_OK);
    qfs_qualys_free(q);
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(calls.control, 1);
    assert_int_equal(calls.control_status, QFS_UNAVAILABLE);
    assert_int_equal(calls.hostile, 0);
    qfs_log_clear_secrets();
}

/* ---- SNS Subject --------------------------------------------------------------------------- */

static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* The decoded value of parameter name in a form body, or NULL; *count gets its occurrences. */
static char *form_param(const char *form, const char *name, int *count)
{
    char *value = NULL;
    *count = 0;
    size_t nlen = strlen(name);
    for (const char *p = form; *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        assert_non_null(eq); /* every parameter is name=value */
        if ((size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            (*count)++;
            free(value);
            value = url_decode(eq + 1, len - (size_t)(eq - p) - 1);
        }
        p += len;
        if (*p == '&') p++;
    }
    return value;
}

/* Every parameter name of the body is one SNS Publish uses. */
static void assert_only_publish_params(const char *form)
{
    static const char *const names[] = {"Action", "Message", "Subject", "TopicArn", "Version"};
    for (const char *p = form; *p;) {
        size_t len = strcspn(p, "&");
        size_t klen = strcspn(p, "=");
        bool known = false;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            known |= klen == strlen(names[i]) && memcmp(p, names[i], klen) == 0;
        if (!known) fail_msg("unexpected form parameter %.*s", (int)klen, p);
        p += len;
        if (*p == '&') p++;
    }
}

/* Encodes a Publish with subject and checks what SNS would see: one Subject (or none), printable
 * ASCII, no line break or tab, at most 99 characters, not starting with a blank; one TopicArn,
 * the real one; no other parameter. */
static void check_subject(const char *subject)
{
    struct qfs_sns_publish p = {.topic_arn = TOPIC_ARN, .subject = subject, .message = "{\"m\":1}"};
    struct qfs_buf b;
    qfs_buf_init(&b, 1 << 20);
    assert_int_equal(qfs_sns_publish_encode(&p, &b), QFS_OK);
    assert_only_publish_params(b.data);
    int n = 0;
    char *topic = form_param(b.data, "TopicArn", &n);
    assert_int_equal(n, 1);
    assert_string_equal(topic, TOPIC_ARN);
    free(topic);
    char *action = form_param(b.data, "Action", &n);
    assert_int_equal(n, 1);
    assert_string_equal(action, "Publish");
    free(action);
    char *s = form_param(b.data, "Subject", &n);
    assert_true(n <= 1);
    if (s) {
        size_t len = strlen(s);
        if (len == 0 || len > QFS_SNS_MAX_SUBJECT || s[0] == ' ')
            fail_msg("subject of %zu characters from %s", len, shown(subject));
        for (const unsigned char *c = (const unsigned char *)s; *c; c++)
            if (*c < 0x20 || *c > 0x7e) fail_msg("byte 0x%02x in the subject from %s", *c, shown(subject));
    }
    free(s);
    qfs_buf_cleanup(&b);
}

static void test_sns_subject_cannot_carry_hostile_text(void **state)
{
    char **hostile = hostile_values();
    for (size_t i = 0; hostile[i]; i++) {
        const char *h = hostile[i];
        check_subject(h);
        /* As the notifier writes it: counts, the reference, the place. */
        size_t n = strlen(h) * 2 + 64;
        char *s = malloc(n);
        snprintf(s, n, "qfs: 2C/5H %s:%s in 111122223333/eu-west-1", h, h);
        check_subject(s);
        free(s);
    }
    free_hostile(hostile);

    /* Form injection: a subject that tries to add or replace parameters stays one value. */
    check_subject("x&TopicArn=arn:aws:sns:us-east-1:999999999999:evil&Action=DeleteTopic");
    check_subject("x%26TopicArn%3Darn%3Aaws%3Asns%3Aus-east-1%3A999999999999%3Aevil");
    check_subject("\r\n\t  leading blanks and \r\n breaks");
    check_subject("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 non-ASCII only");

    /* The exact mapping: breaks and tabs become spaces, other controls and continuation bytes go,
     * a non-ASCII character leaves one '?', and the length is cut to 99. */
    struct qfs_sns_publish p = {.topic_arn = TOPIC_ARN, .subject = "a\r\nb\tc\x01\x7f" "d\xc3\xa9" "e",
                                .message = "m"};
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    assert_int_equal(qfs_sns_publish_encode(&p, &b), QFS_OK);
    int n = 0;
    char *s = form_param(b.data, "Subject", &n);
    assert_string_equal(s, "a  b cd?e");
    free(s);
    qfs_buf_cleanup(&b);
    char long_subject[400];
    memset(long_subject, 'x', sizeof(long_subject) - 1);
    long_subject[sizeof(long_subject) - 1] = '\0';
    check_subject(long_subject);
}

/* ---- NATS subjects --------------------------------------------------------------------------- */

static size_t tokens(const char *subject)
{
    return count_char(subject, '.') + 1;
}

static void test_nats_subject_tokens_cannot_be_forged(void **state)
{
    static const char *const bad_tokens[] = {
        "111122223333.x", "1111.22223333", "*", ">", "eu-west-1.>", "eu-west-1.*", "eu west 1",
        "eu-west-1 ", " eu-west-1", "eu-west-1\r\n", "eu-west-1\t", "eu-west-1\n.>", "", ".", "..",
        "eu-west-1.scans.completed", "EU-WEST-1", "eu_west_1", "eu-west-1\xc3\xa9",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 33 characters */
    };
    char buf[QFS_SUBJECT_MAX];
    for (int kind = 0; kind < QFS_SUBJECT_COUNT; kind++) {
        if (kind == QFS_SUBJECT_DLQ || kind == QFS_SUBJECT_STATS) continue;
        /* The valid form has exactly the tokens of its documented pattern. */
        assert_int_equal(qfs_subject_format(buf, sizeof(buf), kind, "111122223333", "eu-west-1"), QFS_OK);
        assert_int_equal(tokens(buf), tokens(qfs_subject_pattern(kind)));
        assert_null(strpbrk(buf, "*> \t\r\n"));
        for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
            memset(buf, 'x', sizeof(buf));
            if (qfs_subject_format(buf, sizeof(buf), kind, "111122223333", bad_tokens[i]) != QFS_PROTOCOL)
                fail_msg("region %s accepted", shown(bad_tokens[i]));
            assert_string_equal(buf, "");
            memset(buf, 'x', sizeof(buf));
            if (qfs_subject_format(buf, sizeof(buf), kind, bad_tokens[i], "eu-west-1") != QFS_PROTOCOL)
                fail_msg("account %s accepted", shown(bad_tokens[i]));
            assert_string_equal(buf, "");
        }
    }
    char **hostile = hostile_values();
    for (size_t i = 0; hostile[i]; i++) {
        assert_int_equal(qfs_subject_format(buf, sizeof(buf), QFS_SUBJECT_IMAGES, "111122223333", hostile[i]),
                         QFS_PROTOCOL);
        assert_int_equal(qfs_subject_dlq(buf, sizeof(buf), hostile[i]), QFS_PROTOCOL);
        assert_int_equal(qfs_subject_stats(buf, sizeof(buf), hostile[i]), QFS_PROTOCOL);
    }
    free_hostile(hostile);
    for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
        assert_int_equal(qfs_subject_dlq(buf, sizeof(buf), bad_tokens[i]), QFS_PROTOCOL);
        assert_int_equal(qfs_subject_stats(buf, sizeof(buf), bad_tokens[i]), QFS_PROTOCOL);
    }

    /* Subjects read back from the wire with extra tokens or wildcards are not ours. */
    static const char *const forged[] = {
        "qfs.images.111122223333.eu-west-1.x", "qfs.images.111122223333.eu-west-1.>",
        "qfs.images.111122223333.*", "qfs.images.>", "qfs.images.111122223333.eu west 1",
        "qfs.dlq.parser.x", "qfs.dlq.*", "qfs.scans.completed.111122223333", "qfs..images",
    };
    struct qfs_subject_parts parts;
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
        if (qfs_subject_parse(forged[i], &parts) != QFS_PROTOCOL) fail_msg("parsed %s", forged[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qql_refuses_hostile_values_before_building),
        cmocka_unit_test(test_image_references_stop_hostile_names_first),
        cmocka_unit_test(test_client_queues_no_request_for_hostile_values),
        cmocka_unit_test(test_sns_subject_cannot_carry_hostile_text),
        cmocka_unit_test(test_nats_subject_tokens_cannot_be_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
