/* qfs-notifier rules and work per message: the threshold at every severity, QFS_NOTIFY_NEW_ONLY,
 * failures, the Subject of hostile images, the 256 KiB bound, the attributes, the skip records
 * kept, and the whole path over a fake store and a fake SNS (sent once, recorded, not sent, the
 * same outcome again, SNS down, the not-scanned images of a deploy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "notifier.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/proto_notification.h"
#include "qfs/proto_sns.h"
#include "qfs/util.h"

#define TOPIC "arn:aws:sns:eu-west-1:111122223333:qfs-notifications"
#define REGISTRY "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
#define DIGEST "sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605"
#define EVENT_ID "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"

/* ---- building outcomes ----------------------------------------------------------------------- */

static void fill_image(struct qfs_image_id *img, const char *repo, const char *tag)
{
    memset(img, 0, sizeof(*img));
    snprintf(img->account, sizeof(img->account), "111122223333");
    snprintf(img->region, sizeof(img->region), "eu-west-1");
    img->registry = qfs_xstrdup(REGISTRY);
    img->repository = qfs_xstrdup(repo);
    img->tag = tag ? qfs_xstrdup(tag) : NULL;
    img->digest = qfs_xstrdup(DIGEST);
    img->image = qfs_xasprintf(REGISTRY "/%s:%s", "web", "1.4.2");
}

static struct qfs_deploy *one_deploy(const char *event_id)
{
    struct qfs_deploy *d = qfs_xcalloc(1, sizeof(*d));
    d->event_name = qfs_xstrdup("UpdateService");
    d->event_id = qfs_xstrdup(event_id);
    d->event_time = qfs_xstrdup("2026-05-01T10:00:00Z");
    snprintf(d->event_account, sizeof(d->event_account), "111122223333");
    snprintf(d->event_region, sizeof(d->event_region), "eu-west-1");
    d->principal = qfs_xstrdup("arn:aws:sts::111122223333:assumed-role/ci-deploy/run-42");
    d->task_definition_arn = qfs_xstrdup("arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42");
    d->cluster = qfs_xstrdup("prod");
    d->service = qfs_xstrdup("web");
    d->containers = qfs_xcalloc(1, sizeof(char *));
    d->containers[0] = qfs_xstrdup("app");
    d->ncontainers = 1;
    return d;
}

/* A completed scan with the given counts; one finding per counted vulnerability (at most 50),
 * with QIDs qid_base + i, most severe first. */
static void make_result(struct notifier_outcome *o, const char *repo, const char *tag,
                        int64_t generation, struct qfs_severity_counts c, int64_t qid_base)
{
    memset(o, 0, sizeof(*o));
    o->source = QFS_NOTIFY_SOURCE_SCAN_RESULT;
    struct qfs_scan_result *r = &o->result;
    fill_image(&r->image, repo, tag);
    r->generation = generation;
    r->registry_uuid = qfs_xstrdup("3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21");
    r->qualys_image_sha = qfs_xstrdup("9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433");
    r->counts = c;
    r->total = c.critical + c.high + c.medium + c.low + c.info;
    r->patchable = r->total;
    r->scanned_at = qfs_xstrdup("2026-05-01T10:06:41.207Z");
    int64_t per[6] = {0, c.info, c.low, c.medium, c.high, c.critical};
    r->findings = qfs_xcalloc(QFS_SCAN_MAX_FINDINGS, sizeof(*r->findings));
    for (int sev = 5; sev >= 1; sev--) {
        for (int64_t k = 0; k < per[sev] && r->nfindings < QFS_SCAN_MAX_FINDINGS; k++) {
            struct qfs_finding *f = &r->findings[r->nfindings];
            f->qid = qid_base + (int64_t)r->nfindings;
            f->severity = sev;
            f->title = qfs_xasprintf("finding %lld", (long long)f->qid);
            r->nfindings++;
        }
    }
    r->deploys = one_deploy(EVENT_ID);
    r->ndeploys = 1;
}

static void make_failure(struct notifier_outcome *o, enum qfs_scan_failure_reason reason)
{
    memset(o, 0, sizeof(*o));
    o->source = QFS_NOTIFY_SOURCE_SCAN_FAILURE;
    struct qfs_scan_failure *f = &o->failure;
    fill_image(&f->image, "web", "1.4.2");
    f->generation = 7;
    f->reason = reason;
    f->detail = qfs_xstrdup("not scanned after 30 checks");
    f->poll_attempts = 30;
    f->failed_at = qfs_xstrdup("2026-05-01T10:30:12.004Z");
    f->deploys = one_deploy(EVENT_ID);
    f->ndeploys = 1;
}

static const struct qfs_severity_counts C2H5 = {.critical = 2, .high = 5};

static struct notifier_rules rules_default(void)
{
    return (struct notifier_rules){.topic_arn = TOPIC, .min_severity = QFS_SEVERITY_HIGH,
                                   .new_only = false, .notify_failures = true};
}

/* ---- the decision ---------------------------------------------------------------------------- */

static void test_threshold_every_severity(void **state)
{
    for (int min = QFS_SEVERITY_INFO; min <= QFS_SEVERITY_CRITICAL; min++) {
        for (int top = QFS_SEVERITY_NONE; top <= QFS_SEVERITY_CRITICAL; top++) {
            struct qfs_severity_counts c = {0};
            if (top == QFS_SEVERITY_CRITICAL) c.critical = 1;
            if (top >= QFS_SEVERITY_HIGH) c.high = 2;
            if (top >= QFS_SEVERITY_MEDIUM) c.medium = 3;
            if (top >= QFS_SEVERITY_LOW) c.low = 1;
            if (top >= QFS_SEVERITY_INFO) c.info = 4;
            struct notifier_outcome o;
            make_result(&o, "web", "1.4.2", 1, c, 1000);
            struct notifier_rules rules = rules_default();
            rules.min_severity = (enum qfs_severity)min;
            struct notifier_decision d = notifier_decide(&rules, &o, NULL);
            bool want = top != QFS_SEVERITY_NONE && top >= min;
            if (d.send != want) fail_msg("min %d, highest %d: send %d", min, top, d.send);
            assert_int_equal(d.reason, want ? QFS_NOTIFY_MIN_SEVERITY_MET : QFS_NOTIFY_BELOW_MIN_SEVERITY);
            notifier_outcome_cleanup(&o);
        }
    }
}

static void test_new_only(void **state)
{
    struct notifier_rules rules = rules_default();
    rules.new_only = true;
    struct notifier_outcome o;
    /* QIDs 1000, 1001 critical; 1002..1006 high; 1007 medium. */
    make_result(&o, "web", "1.4.2", 1, (struct qfs_severity_counts){.critical = 2, .high = 5, .medium = 1}, 1000);

    /* The repository's first scan: everything is new. */
    struct notifier_decision d = notifier_decide(&rules, &o, NULL);
    assert_true(d.send);
    assert_int_equal(d.reason, QFS_NOTIFY_NEW_FINDINGS);

    /* The same findings as last time: nothing new. */
    char *stored = notifier_qids_format(&o.result);
    assert_string_equal(stored, "[1000,1001,1002,1003,1004,1005,1006,1007]");
    struct notifier_qids prev;
    assert_int_equal(notifier_qids_parse(stored, strlen(stored), &prev), QFS_OK);
    free(stored);
    d = notifier_decide(&rules, &o, &prev);
    assert_false(d.send);
    assert_int_equal(d.reason, QFS_NOTIFY_NO_NEW_FINDINGS);
    notifier_qids_cleanup(&prev);

    /* One high finding is new. */
    const char *without_1004 = "[1000,1001,1002,1003,1005,1006,1007]";
    assert_int_equal(notifier_qids_parse(without_1004, strlen(without_1004), &prev), QFS_OK);
    d = notifier_decide(&rules, &o, &prev);
    assert_true(d.send);
    assert_int_equal(d.reason, QFS_NOTIFY_NEW_FINDINGS);
    notifier_qids_cleanup(&prev);

    /* Only a medium finding is new: below the threshold, so nothing worth a message. */
    const char *without_1007 = "[1000,1001,1002,1003,1004,1005,1006]";
    assert_int_equal(notifier_qids_parse(without_1007, strlen(without_1007), &prev), QFS_OK);
    d = notifier_decide(&rules, &o, &prev);
    assert_false(d.send);
    assert_int_equal(d.reason, QFS_NOTIFY_NO_NEW_FINDINGS);
    notifier_qids_cleanup(&prev);

    /* A stored value that is not a QID list is refused (the caller then treats it as absent). */
    assert_int_equal(notifier_qids_parse("{\"a\":1}", 7, &prev), QFS_PROTOCOL);
    assert_int_equal(notifier_qids_parse("[0]", 3, &prev), QFS_PROTOCOL);
    assert_int_equal(notifier_qids_parse("[1.5]", 5, &prev), QFS_PROTOCOL);
    assert_int_equal(notifier_qids_parse("[]", 2, &prev), QFS_OK);
    assert_int_equal(prev.n, 0);
    notifier_qids_cleanup(&prev);
    notifier_outcome_cleanup(&o);
}

static void test_failure_always_sent(void **state)
{
    for (int r = 0; r < QFS_SCAN_FAILURE_REASON_COUNT; r++) {
        struct notifier_outcome o;
        make_failure(&o, (enum qfs_scan_failure_reason)r);
        struct notifier_rules rules = rules_default();
        rules.min_severity = QFS_SEVERITY_CRITICAL;
        rules.new_only = true;
        struct notifier_qids prev = {0};
        struct notifier_decision d = notifier_decide(&rules, &o, &prev);
        assert_true(d.send);
        assert_int_equal(d.reason, QFS_NOTIFY_SCAN_FAILURE);
        rules.notify_failures = false;
        d = notifier_decide(&rules, &o, NULL);
        assert_false(d.send);
        /* Still recorded, as deliberately not sent. */
        assert_int_equal(d.reason, QFS_NOTIFY_FAILURES_DISABLED);
        notifier_outcome_cleanup(&o);
    }
}

/* ---- the Subject ----------------------------------------------------------------------------- */

static void assert_safe_subject(const char *s)
{
    size_t n = strlen(s);
    assert_true(n >= 1 && n <= QFS_SNS_MAX_SUBJECT);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E) fail_msg("byte 0x%02x at %zu in \"%s\"", c, i, s);
        if (c == '"' || c == '\'' || c == '\\') fail_msg("quote at %zu in \"%s\"", i, s);
    }
    assert_true(s[0] != ' ' && s[n - 1] != ' ');
}

static void test_subject(void **state)
{
    struct notifier_rules rules = rules_default();
    char subject[QFS_SNS_MAX_SUBJECT + 1];
    struct notifier_outcome o;
    make_result(&o, "web", "1.4.2", 1, C2H5, 1000);
    notifier_subject(&rules, &o, subject);
    assert_string_equal(subject, "qfs: 2C/5H web:1.4.2 in 111122223333/eu-west-1");
    rules.min_severity = QFS_SEVERITY_MEDIUM;
    o.result.counts.medium = 3;
    notifier_subject(&rules, &o, subject);
    assert_string_equal(subject, "qfs: 2C/5H/3M web:1.4.2 in 111122223333/eu-west-1");
    rules.min_severity = QFS_SEVERITY_HIGH;
    /* Known only by digest: the start of the digest names it. */
    free(o.result.image.tag);
    o.result.image.tag = NULL;
    notifier_subject(&rules, &o, subject);
    assert_string_equal(subject, "qfs: 2C/5H web@sha256:4e2a6c0d9b8f in 111122223333/eu-west-1");
    notifier_outcome_cleanup(&o);

    make_failure(&o, QFS_SCAN_FAILURE_TIMEOUT);
    notifier_subject(&rules, &o, subject);
    assert_string_equal(subject, "qfs: scan failed (timeout) web:1.4.2 in 111122223333/eu-west-1");
    notifier_outcome_cleanup(&o);

    /* Hostile repositories and tags: line breaks, header injection, quotes, control bytes, UTF-8,
     * and names far longer than a Subject. */
    char long_repo[301];
    memset(long_repo, 'a', 300);
    long_repo[300] = '\0';
    char long_tag[301];
    memset(long_tag, 'T', 300);
    long_tag[300] = '\0';
    const char *repos[] = {"web\r\nBcc: victim@example.com", "we\"b'\\`$(x)", "w\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\xa5" "b",
                           "web\x01\x7f\x1b[31m", long_repo, "web", "\xff\xfe broken utf-8"};
    const char *tags[] = {"1.4.2\nSubject: fake", "\"1\"", "t\xc3\xa9g", "\t", "1.4.2", long_tag, NULL};
    for (size_t i = 0; i < sizeof(repos) / sizeof(*repos); i++) {
        for (size_t k = 0; k < sizeof(tags) / sizeof(*tags); k++) {
            make_result(&o, repos[i], tags[k], 1, C2H5, 1000);
            notifier_subject(&rules, &o, subject);
            assert_safe_subject(subject);
            assert_non_null(strstr(subject, "qfs: 2C/5H "));
            /* The place is never cut: the reference gives way first. */
            const char *tail = " in 111122223333/eu-west-1";
            assert_string_equal(subject + strlen(subject) - strlen(tail), tail);
            notifier_outcome_cleanup(&o);
            make_failure(&o, QFS_SCAN_FAILURE_QUALYS_REJECTED);
            free(o.failure.image.repository);
            o.failure.image.repository = qfs_xstrdup(repos[i]);
            free(o.failure.image.tag);
            o.failure.image.tag = tags[k] ? qfs_xstrdup(tags[k]) : NULL;
            notifier_subject(&rules, &o, subject);
            assert_safe_subject(subject);
            assert_non_null(strstr(subject, "qfs: scan failed (qualys_rejected) "));
            notifier_outcome_cleanup(&o);
        }
    }
    /* One character of UTF-8 is one mark; a long reference ends in "...". */
    make_result(&o, "w\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\xa5" "b", "1", 1, C2H5, 1000);
    notifier_subject(&rules, &o, subject);
    assert_string_equal(subject, "qfs: 2C/5H w???b:1 in 111122223333/eu-west-1");
    notifier_outcome_cleanup(&o);
    make_result(&o, long_repo, "1.4.2", 1, C2H5, 1000);
    notifier_subject(&rules, &o, subject);
    assert_int_equal(strlen(subject), QFS_SNS_MAX_SUBJECT);
    assert_non_null(strstr(subject, "aaa... in 111122223333/eu-west-1"));
    /* Counts so large that even the fixed parts overflow: still at most 99. */
    o.result.counts = (struct qfs_severity_counts){999999999, 999999999, 999999999, 999999999, 999999999};
    rules.min_severity = QFS_SEVERITY_INFO;
    notifier_subject(&rules, &o, subject);
    assert_safe_subject(subject);
    notifier_outcome_cleanup(&o);
}

/* ---- attributes ------------------------------------------------------------------------------ */

static void test_attributes(void **state)
{
    struct notifier_outcome o;
    struct qfs_sns_attribute a[NOTIFIER_NATTRIBUTES];
    make_result(&o, "team/web", "1.4.2", 1, C2H5, 1000);
    assert_int_equal(notifier_attributes(&o, a), 4);
    const char *want[][2] = {{"severity", "critical"}, {"account", "111122223333"},
                             {"region", "eu-west-1"}, {"repository", "team/web"}};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(a[i].name, want[i][0]);
        assert_string_equal(a[i].value, want[i][1]);
        assert_string_equal(a[i].data_type, "String");
    }
    assert_int_equal(notifier_attributes_bytes(a, 4),
                     strlen("severitycriticalaccount111122223333regioneu-west-1repositoryteam/web") + 4 * 6);
    o.result.counts = (struct qfs_severity_counts){.high = 1, .low = 3};
    notifier_attributes(&o, a);
    assert_string_equal(a[0].value, "high");
    notifier_outcome_cleanup(&o);
    make_failure(&o, QFS_SCAN_FAILURE_TIMEOUT);
    notifier_attributes(&o, a);
    assert_string_equal(a[0].value, "failure");
    notifier_outcome_cleanup(&o);
}

/* ---- the message and its bound --------------------------------------------------------------- */

static void test_message_small(void **state)
{
    struct notifier_outcome o;
    make_result(&o, "web", "1.4.2", 1, C2H5, 1000);
    struct notifier_not_scanned ns = {0};
    struct notifier_message m;
    assert_int_equal(notifier_message_build(&o, &ns, "2026-05-01T10:06:42.015Z", QFS_SNS_MAX_MESSAGE, &m),
                     QFS_OK);
    assert_int_equal(m.findings_sent, 7);
    assert_int_equal(m.findings_omitted, 0);
    struct qfs_sns_message back;
    char err[256];
    assert_int_equal(qfs_sns_message_decode(m.json, m.len, &back, err, sizeof(err)), QFS_OK);
    assert_int_equal(back.outcome, QFS_SNS_COMPLETED);
    assert_string_equal(qfs_sns_message_severity(&back), "critical");
    assert_int_equal(back.summary.counts.critical, 2);
    assert_int_equal(back.summary.counts.high, 5);
    assert_int_equal(back.nfindings, 7);
    assert_null(back.note);
    assert_string_equal(back.deploys[0].event_id, EVENT_ID);
    qfs_sns_message_cleanup(&back);
    notifier_message_cleanup(&m);
    notifier_outcome_cleanup(&o);

    make_failure(&o, QFS_SCAN_FAILURE_TIMEOUT);
    assert_int_equal(notifier_message_build(&o, &ns, "2026-05-01T10:06:42.015Z", QFS_SNS_MAX_MESSAGE, &m),
                     QFS_OK);
    assert_int_equal(qfs_sns_message_decode(m.json, m.len, &back, err, sizeof(err)), QFS_OK);
    assert_int_equal(back.outcome, QFS_SNS_FAILED);
    assert_string_equal(qfs_sns_message_severity(&back), "failure");
    assert_int_equal(back.failure.reason, QFS_SCAN_FAILURE_TIMEOUT);
    assert_int_equal(back.failure.poll_attempts, 30);
    qfs_sns_message_cleanup(&back);
    notifier_message_cleanup(&m);
    notifier_outcome_cleanup(&o);
}

static void test_message_bound_huge_findings(void **state)
{
    /* 50 findings, each with a 1024-character title that JSON escapes six-fold, 64 CVEs and long
     * package fields: far over 256 KiB as a whole. */
    struct notifier_outcome o;
    make_result(&o, "web", "1.4.2", 1, (struct qfs_severity_counts){.critical = 10, .high = 20, .medium = 30}, 5000);
    struct qfs_scan_result *r = &o.result;
    assert_int_equal(r->nfindings, 50);
    for (size_t i = 0; i < r->nfindings; i++) {
        struct qfs_finding *f = &r->findings[i];
        free(f->title);
        f->title = qfs_xmalloc(1025);
        for (int k = 0; k < 1024; k++) f->title[k] = k % 2 ? '\x01' : '"';
        f->title[1024] = '\0';
        f->cves = qfs_xcalloc(QFS_SCAN_MAX_CVES, sizeof(char *));
        for (int k = 0; k < QFS_SCAN_MAX_CVES; k++) f->cves[k] = qfs_xasprintf("CVE-2024-%019d", k);
        f->ncves = QFS_SCAN_MAX_CVES;
        f->package = qfs_xmalloc(257);
        memset(f->package, '\\', 256);
        f->package[256] = '\0';
    }
    struct notifier_not_scanned ns = {0};
    struct qfs_sns_attribute a[NOTIFIER_NATTRIBUTES];
    size_t na = notifier_attributes(&o, a);
    size_t max = QFS_SNS_MAX_MESSAGE - notifier_attributes_bytes(a, na);
    struct notifier_message m;
    assert_int_equal(notifier_message_build(&o, &ns, "2026-05-01T10:06:42.015Z", max, &m), QFS_OK);
    assert_true(m.len <= max);
    assert_true(m.len + notifier_attributes_bytes(a, na) <= 262144);
    assert_true(m.len > max - 20000); /* cut just enough, not everything */
    assert_true(m.findings_sent > 0 && m.findings_sent < 50);
    assert_true(m.findings_omitted > 0);
    assert_int_equal(m.findings_sent + m.findings_omitted, 60);
    struct qfs_sns_message back;
    char err[256];
    assert_int_equal(qfs_sns_message_decode(m.json, m.len, &back, err, sizeof(err)), QFS_OK);
    assert_int_equal(back.findings_omitted, m.findings_omitted);
    assert_non_null(back.note);
    assert_non_null(strstr(back.note, "256 KiB"));
    assert_non_null(strstr(back.note, "findings"));
    /* The most severe findings stay. */
    assert_int_equal(back.findings[0].qid, 5000);
    assert_int_equal(back.findings[0].severity, 5);
    qfs_sns_message_cleanup(&back);
    notifier_message_cleanup(&m);

    /* A bound so tight that the findings alone cannot fit: all go, and the message still fits. */
    assert_int_equal(notifier_message_build(&o, &ns, "2026-05-01T10:06:42.015Z", 4096, &m), QFS_OK);
    assert_true(m.len <= 4096);
    assert_int_equal(m.findings_sent, 0);
    assert_int_equal(m.findings_omitted, 60);
    notifier_message_cleanup(&m);
    assert_int_equal(notifier_message_build(&o, &ns, "2026-05-01T10:06:42.015Z", 200, &m), QFS_TOO_BIG);
    notifier_outcome_cleanup(&o);
}

/* ---- skip records ---------------------------------------------------------------------------- */

static struct qfs_skip make_skip(enum qfs_skip_reason reason, const char *event_id, const char *image)
{
    struct qfs_skip s;
    memset(&s, 0, sizeof(s));
    s.reason = reason;
    snprintf(s.account, sizeof(s.account), "111122223333");
    snprintf(s.region, sizeof(s.region), "eu-west-1");
    s.image = image ? qfs_xstrdup(image) : NULL;
    s.detail = qfs_xstrdup("registry docker.io is not a private ECR registry");
    struct qfs_deploy *d = one_deploy(event_id);
    s.deploy = *d;
    free(d);
    free(s.deploy.containers[0]);
    s.deploy.containers[0] = qfs_xstrdup("proxy");
    return s;
}

static void test_skip_entries(void **state)
{
    struct qfs_skip s = make_skip(QFS_SKIP_NOT_ECR, EVENT_ID, "nginx:1.25");
    char *small = NULL;
    assert_int_equal(qfs_deploy_skip_entry(&s, &small), QFS_OK);
    assert_true(qfs_deploy_skip_is_kept(&s));

    /* Every text at its bound, in four-byte characters, 100 long container names: cut to fit. */
    struct qfs_skip big = make_skip(QFS_SKIP_INVALID_IMAGE, EVENT_ID, NULL);
    free(big.detail);
    free(big.deploy.principal);
    big.image = qfs_xmalloc(2048 * 4 + 1);
    big.detail = qfs_xmalloc(2048 * 4 + 1);
    big.deploy.principal = qfs_xmalloc(2048 * 4 + 1);
    for (int i = 0; i < 2048; i++) {
        memcpy(big.image + 4 * i, "\xf0\x9f\x94\xa5", 4);
        memcpy(big.detail + 4 * i, "\xf0\x9f\x94\xa5", 4);
        memcpy(big.deploy.principal + 4 * i, "\xf0\x9f\x94\xa5", 4);
    }
    big.image[2048 * 4] = big.detail[2048 * 4] = big.deploy.principal[2048 * 4] = '\0';
    for (size_t i = 0; i < big.deploy.ncontainers; i++) free(big.deploy.containers[i]);
    free(big.deploy.containers);
    big.deploy.containers = qfs_xcalloc(100, sizeof(char *));
    for (int i = 0; i < 100; i++) {
        big.deploy.containers[i] = qfs_xmalloc(256);
        memset(big.deploy.containers[i], 'c', 255);
        big.deploy.containers[i][255] = '\0';
        memcpy(big.deploy.containers[i], (char[]){(char)('0' + i / 10), (char)('0' + i % 10)}, 2);
    }
    big.deploy.ncontainers = 100;
    char *cut = NULL;
    assert_int_equal(qfs_deploy_skip_entry(&big, &cut), QFS_OK);
    assert_true(strlen(cut) <= QFS_KV_MAX_LIST_VALUE);
    struct qfs_skip back;
    char err[256];
    assert_int_equal(qfs_skip_decode(cut, strlen(cut), &back, err, sizeof(err)), QFS_OK);
    assert_int_equal(back.reason, QFS_SKIP_INVALID_IMAGE);
    assert_string_equal(back.deploy.event_id, EVENT_ID);
    assert_non_null(strstr(back.image, "..."));
    qfs_skip_cleanup(&back);

    /* The cache's skips are not kept. */
    struct qfs_skip cached = make_skip(QFS_SKIP_CACHED, EVENT_ID, "x");
    assert_false(qfs_deploy_skip_is_kept(&cached));
    struct qfs_skip inflight = make_skip(QFS_SKIP_IN_FLIGHT, EVENT_ID, "x");
    assert_false(qfs_deploy_skip_is_kept(&inflight));
    char *cached_json = NULL;
    assert_int_equal(qfs_deploy_skip_entry(&cached, &cached_json), QFS_OK);

    /* Gathering: repeats, other events and the cache's skips are left out. */
    struct qfs_skip other = make_skip(QFS_SKIP_NOT_ECR, "another-event", "redis:7");
    char *other_json = NULL;
    assert_int_equal(qfs_deploy_skip_entry(&other, &other_json), QFS_OK);
    const char *items[] = {small, small, cut, other_json, cached_json, "not json"};
    size_t lens[] = {strlen(small), strlen(small), strlen(cut), strlen(other_json),
                     strlen(cached_json), 8};
    struct notifier_not_scanned l = {0};
    notifier_not_scanned_add(&l, EVENT_ID, items, lens, 6);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].image, "nginx:1.25");
    assert_int_equal(l.v[0].reason, QFS_SKIP_NOT_ECR);
    assert_string_equal(l.v[0].containers[0], "proxy");
    assert_int_equal(l.v[1].reason, QFS_SKIP_INVALID_IMAGE);
    /* Past the bound, entries are counted. */
    for (int i = 0; i < 120; i++) {
        free(s.image);
        s.image = qfs_xasprintf("nginx:%d", i);
        char *e = NULL;
        assert_int_equal(qfs_deploy_skip_entry(&s, &e), QFS_OK);
        const char *one[] = {e};
        size_t len1[] = {strlen(e)};
        notifier_not_scanned_add(&l, EVENT_ID, one, len1, 1);
        free(e);
    }
    assert_int_equal(l.n, QFS_SNS_MAX_NOT_SCANNED);
    assert_int_equal(l.omitted, 22);
    notifier_not_scanned_cleanup(&l);

    free(small);
    free(cut);
    free(cached_json);
    free(other_json);
    qfs_skip_cleanup(&s);
    qfs_skip_cleanup(&big);
    qfs_skip_cleanup(&cached);
    qfs_skip_cleanup(&inflight);
    qfs_skip_cleanup(&other);
}

/* ---- the whole path over fakes --------------------------------------------------------------- */

/* An in-memory store: values and lists by key. */
struct entry {
    char *key;
    char *value;   /* NULL for a list */
    char **items;
    size_t *lens;
    size_t n;
};

struct fake_kv {
    struct entry e[64];
    size_t n;
    qfs_status fail; /* QFS_OK, or what every operation answers */
    int ops;
};

static struct entry *find(struct fake_kv *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->e[i].key, key) == 0) return &f->e[i];
    return NULL;
}

static struct entry *slot(struct fake_kv *f, const char *key)
{
    struct entry *e = find(f, key);
    if (e) return e;
    assert_true(f->n < 64);
    e = &f->e[f->n++];
    memset(e, 0, sizeof(*e));
    e->key = qfs_xstrdup(key);
    return e;
}

static void fake_submit(void *impl, struct qfs_kv_op *op)
{
    struct fake_kv *f = impl;
    f->ops++;
    if (f->fail != QFS_OK) {
        qfs_kv_op_fail(op, f->fail);
        return;
    }
    struct qfs_kv_result r = {.status = QFS_OK};
    struct entry *e = find(f, op->key);
    switch (op->code) {
    case QFS_KV_OP_GET:
        if (!e || !e->value) r.status = QFS_NOT_FOUND;
        else {
            r.value = e->value;
            r.len = strlen(e->value);
        }
        break;
    case QFS_KV_OP_PUT:
        e = slot(f, op->key);
        free(e->value);
        e->value = qfs_xstrndup(op->value, op->len);
        break;
    case QFS_KV_OP_PUT_IF_ABSENT:
        if (e) r.exists = true;
        else slot(f, op->key)->value = qfs_xstrndup(op->value, op->len);
        break;
    case QFS_KV_OP_APPEND:
        e = slot(f, op->key);
        if (e->n >= op->max_items) {
            r.dropped = true;
            break;
        }
        e->items = qfs_xrealloc(e->items, (e->n + 1) * sizeof(char *));
        e->lens = qfs_xrealloc(e->lens, (e->n + 1) * sizeof(size_t));
        e->items[e->n] = qfs_xstrndup(op->value, op->len);
        e->lens[e->n++] = op->len;
        break;
    case QFS_KV_OP_GET_LIST:
        if (!e || e->n == 0) r.status = QFS_NOT_FOUND;
        else {
            r.items = (const char *const *)e->items;
            r.lens = e->lens;
            r.n = e->n;
        }
        break;
    default:
        r.status = QFS_INTERNAL;
    }
    qfs_kv_op_complete(op, &r);
}

static void fake_close(void *impl, void (*done)(void *arg), void *arg)
{
    done(arg);
}

static const struct qfs_kv_backend fake_backend = {"fake", fake_submit, fake_close};

static void fake_kv_cleanup(struct fake_kv *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->e[i].key);
        free(f->e[i].value);
        for (size_t k = 0; k < f->e[i].n; k++) free(f->e[i].items[k]);
        free(f->e[i].items);
        free(f->e[i].lens);
    }
}

/* SNS: records each Publish and answers on the next loop turn. */
struct fake_sns {
    uv_loop_t *loop;
    int published;
    qfs_status answer;
    char subject[128];
    char *message;
    struct qfs_sns_attribute attrs[NOTIFIER_NATTRIBUTES];
    char values[NOTIFIER_NATTRIBUTES][64];
    size_t nattrs;
};

struct sns_call {
    uv_timer_t timer;
    struct fake_sns *sns;
    qfs_sns_publish_fn cb;
    void *arg;
    int n;
};

static void on_call_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_sns_timer(uv_timer_t *t)
{
    struct sns_call *c = t->data;
    char id[64];
    snprintf(id, sizeof(id), "95df01b4-ee98-5cb9-9903-%012d", c->n);
    struct qfs_aws_response r = {.status = c->sns->answer, .http_code = c->sns->answer == QFS_OK ? 200 : 503,
                                 .body = "", .error_code = c->sns->answer == QFS_OK ? "" : "Throttling",
                                 .error_message = "", .request_id = "r"};
    c->cb(&r, c->sns->answer == QFS_OK ? id : NULL, c->arg);
    uv_close((uv_handle_t *)t, on_call_closed);
}

static qfs_status fake_publish(void *ctx, const struct qfs_sns_publish *p, qfs_sns_publish_fn cb,
                               void *arg)
{
    struct fake_sns *s = ctx;
    if (s->answer == QFS_OK) {
        s->published++;
        snprintf(s->subject, sizeof(s->subject), "%s", p->subject);
        free(s->message);
        s->message = qfs_xstrdup(p->message);
        s->nattrs = p->nattributes;
        for (size_t i = 0; i < p->nattributes; i++) {
            s->attrs[i] = p->attributes[i];
            snprintf(s->values[i], sizeof(s->values[i]), "%s", p->attributes[i].value);
        }
    }
    struct sns_call *c = qfs_xcalloc(1, sizeof(*c));
    c->sns = s;
    c->cb = cb;
    c->arg = arg;
    c->n = s->published;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_sns_timer, 0, 0);
    return QFS_OK;
}

struct world {
    uv_loop_t loop;
    struct fake_kv store;
    struct qfs_kv *kv;
    struct fake_sns sns;
    struct notifier_rules rules;
    struct notifier_deps deps;
    /* The last job's end. */
    int done;
    qfs_status status;
    struct qfs_outbox ob;
};

static int64_t fixed_now(void)
{
    return 1777629602015LL;
}

static int world_setup(void **state)
{
    struct world *w = qfs_xcalloc(1, sizeof(*w));
    uv_loop_init(&w->loop);
    assert_int_equal(qfs_kv_new_backend(&w->loop, &fake_backend, &w->store, "t:", &w->kv), QFS_OK);
    w->sns.loop = &w->loop;
    w->sns.answer = QFS_OK;
    w->rules = rules_default();
    w->deps = (struct notifier_deps){.kv = w->kv, .rules = &w->rules, .publish = fake_publish,
                                     .publish_ctx = &w->sns, .now_ms = fixed_now};
    qfs_outbox_init(&w->ob);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    struct world *w = *state;
    qfs_kv_free(w->kv, NULL, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    fake_kv_cleanup(&w->store);
    free(w->sns.message);
    qfs_outbox_cleanup(&w->ob);
    free(w);
    return 0;
}

static void on_job_done(void *arg, qfs_status st, const char *reason, struct qfs_outbox *ob)
{
    struct world *w = arg;
    w->done++;
    w->status = st;
    qfs_outbox_cleanup(&w->ob);
    if (ob) {
        w->ob = *ob;
        memset(ob, 0, sizeof(*ob));
    }
}

static qfs_status run_outcome(struct world *w, struct notifier_outcome *o)
{
    w->done = 0;
    notifier_handle_outcome(&w->deps, o, on_job_done, w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(w->done, 1);
    return w->status;
}

static void on_listed(const struct qfs_kv_result *r, void *arg)
{
    struct world *w = arg;
    w->done++;
    w->status = r->status;
}

/* The parser lists a skip of its deploy (services/parser/service.c), where the notifier reads it. */
static qfs_status run_skip(struct world *w, const struct qfs_skip *s)
{
    char key[QFS_KV_MAX_KEY], *json = NULL;
    assert_true(qfs_deploy_skip_is_kept(s));
    assert_int_equal(qfs_deploy_skip_entry(s, &json), QFS_OK);
    qfs_deploy_skips_key(s->deploy.event_id, key, sizeof(key));
    w->done = 0;
    assert_int_equal(qfs_kv_append(w->kv, key, json, strlen(json), QFS_DEPLOY_SKIPS_TTL_S,
                                   QFS_DEPLOY_SKIPS_MAX, on_listed, w),
                     QFS_OK);
    free(json);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(w->done, 1);
    return w->status;
}

/* The one record the last job produced, decoded. */
static void the_record(struct world *w, struct qfs_notification *n)
{
    assert_int_equal(w->ob.n, 1);
    assert_string_equal(w->ob.items[0].subject, "qfs.notifications.111122223333.eu-west-1");
    assert_string_equal(w->ob.items[0].schema, "qfs.notification.v1");
    char err[256];
    assert_int_equal(qfs_notification_decode(w->ob.items[0].data, w->ob.items[0].len, n, err, sizeof(err)),
                     QFS_OK);
}

static void test_flow_sent_once(void **state)
{
    struct world *w = *state;
    /* The parser listed its skip of the same deploy. */
    struct qfs_skip s = make_skip(QFS_SKIP_NOT_ECR, EVENT_ID, "nginx:1.25");
    assert_int_equal(run_skip(w, &s), QFS_OK);
    assert_int_equal(w->ob.n, 0);
    assert_int_equal(run_skip(w, &s), QFS_OK); /* redelivered: listed once all the same */
    qfs_skip_cleanup(&s);

    struct notifier_outcome o;
    make_result(&o, "web", "1.4.2", 42, C2H5, 1000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);
    assert_string_equal(w->sns.subject, "qfs: 2C/5H web:1.4.2 in 111122223333/eu-west-1");
    assert_int_equal(w->sns.nattrs, 4);
    assert_string_equal(w->sns.values[0], "critical");
    assert_string_equal(w->sns.values[3], "web");
    struct qfs_sns_message body;
    char err[256];
    assert_int_equal(qfs_sns_message_decode(w->sns.message, strlen(w->sns.message), &body, err, sizeof(err)),
                     QFS_OK);
    assert_int_equal(body.nnot_scanned, 1);
    assert_string_equal(body.not_scanned[0].image, "nginx:1.25");
    assert_int_equal(body.not_scanned[0].reason, QFS_SKIP_NOT_ECR);
    assert_int_equal(body.generation, 42);
    qfs_sns_message_cleanup(&body);

    struct qfs_notification n;
    the_record(w, &n);
    assert_int_equal(n.decision, QFS_NOTIFY_SENT);
    assert_int_equal(n.reason, QFS_NOTIFY_MIN_SEVERITY_MET);
    assert_string_equal(n.sns_message_id, "95df01b4-ee98-5cb9-9903-000000000001");
    assert_string_equal(n.subject, "qfs: 2C/5H web:1.4.2 in 111122223333/eu-west-1");
    assert_string_equal(n.topic_arn, TOPIC);
    assert_int_equal(n.findings_sent, 7);
    assert_string_equal(n.notified_at, "2026-05-01T10:00:02.015Z");
    qfs_notification_cleanup(&n);
    assert_string_equal(w->ob.items[0].msg_id, "notify:" REGISTRY "/web@" DIGEST "#42");
    struct entry *marker = find(&w->store, "t:notified:" REGISTRY "/web@" DIGEST "#42");
    assert_non_null(marker);
    assert_string_equal(marker->value, "95df01b4-ee98-5cb9-9903-000000000001");
    assert_non_null(find(&w->store, "t:findings:" REGISTRY "/web"));

    /* The same outcome again (a redelivery, or republished under another id): SNS has it. */
    make_result(&o, "web", "1.4.2", 42, C2H5, 1000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);
    the_record(w, &n);
    assert_int_equal(n.decision, QFS_NOTIFY_SENT);
    assert_string_equal(n.sns_message_id, "95df01b4-ee98-5cb9-9903-000000000001");
    assert_int_equal(n.findings_sent, 7);
    qfs_notification_cleanup(&n);
}

static void test_flow_not_sent_and_failure(void **state)
{
    struct world *w = *state;
    struct notifier_outcome o;
    make_result(&o, "web", "1.4.3", 43, ((struct qfs_severity_counts){.medium = 4, .low = 2}), 2000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 0);
    struct qfs_notification n;
    the_record(w, &n);
    assert_int_equal(n.decision, QFS_NOTIFY_NOT_SENT);
    assert_int_equal(n.reason, QFS_NOTIFY_BELOW_MIN_SEVERITY);
    assert_null(n.sns_message_id);
    assert_int_equal(n.severity, QFS_SEVERITY_MEDIUM);
    qfs_notification_cleanup(&n);
    /* The repository's findings are kept even when nothing is sent. */
    struct entry *f = find(&w->store, "t:findings:" REGISTRY "/web");
    assert_non_null(f);
    assert_string_equal(f->value, "[2000,2001,2002,2003,2004,2005]");

    make_failure(&o, QFS_SCAN_FAILURE_TIMEOUT);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);
    assert_string_equal(w->sns.subject, "qfs: scan failed (timeout) web:1.4.2 in 111122223333/eu-west-1");
    assert_string_equal(w->sns.values[0], "failure");
    the_record(w, &n);
    assert_int_equal(n.decision, QFS_NOTIFY_SENT);
    assert_int_equal(n.source, QFS_NOTIFY_SOURCE_SCAN_FAILURE);
    assert_int_equal(n.failure_reason, QFS_SCAN_FAILURE_TIMEOUT);
    qfs_notification_cleanup(&n);

    /* Failures off: nothing sent, and the record says why. */
    w->rules.notify_failures = false;
    make_failure(&o, QFS_SCAN_FAILURE_SCAN_FAILED);
    o.failure.generation = 8;
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);
    the_record(w, &n);
    assert_int_equal(n.decision, QFS_NOTIFY_NOT_SENT);
    assert_int_equal(n.reason, QFS_NOTIFY_FAILURES_DISABLED);
    assert_int_equal(n.source, QFS_NOTIFY_SOURCE_SCAN_FAILURE);
    qfs_notification_cleanup(&n);
}

static void test_flow_new_only(void **state)
{
    struct world *w = *state;
    w->rules.new_only = true;
    struct notifier_outcome o;
    make_result(&o, "api", "1", 50, C2H5, 3000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);
    struct qfs_notification n;
    the_record(w, &n);
    assert_int_equal(n.reason, QFS_NOTIFY_NEW_FINDINGS);
    qfs_notification_cleanup(&n);

    /* The next scan of the repository (another tag, another generation) finds the same. */
    make_result(&o, "api", "2", 51, C2H5, 3000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);
    the_record(w, &n);
    assert_int_equal(n.decision, QFS_NOTIFY_NOT_SENT);
    assert_int_equal(n.reason, QFS_NOTIFY_NO_NEW_FINDINGS);
    qfs_notification_cleanup(&n);

    /* One more critical finding: sent. */
    make_result(&o, "api", "3", 52, ((struct qfs_severity_counts){.critical = 3, .high = 5}), 3000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 2);
}

static void test_flow_unavailable(void **state)
{
    struct world *w = *state;
    struct notifier_outcome o;
    /* SNS throttles: the outcome is tried again later, and no marker says it was sent. */
    w->sns.answer = QFS_UNAVAILABLE;
    make_result(&o, "web", "9", 60, C2H5, 1000);
    qfs_status st = run_outcome(w, &o);
    assert_true(notifier_status_is_retryable(st));
    assert_null(find(&w->store, "t:notified:" REGISTRY "/web@" DIGEST "#60"));
    assert_int_equal(w->ob.n, 0);
    w->sns.answer = QFS_OK;
    make_result(&o, "web", "9", 60, C2H5, 1000);
    assert_int_equal(run_outcome(w, &o), QFS_OK);
    assert_int_equal(w->sns.published, 1);

    /* The store is down: nothing is sent, the outcome is retried. */
    w->store.fail = QFS_UNAVAILABLE;
    make_result(&o, "web", "10", 61, C2H5, 1000);
    st = run_outcome(w, &o);
    assert_int_equal(st, QFS_UNAVAILABLE);
    assert_true(notifier_status_is_retryable(st));
    assert_int_equal(w->sns.published, 1);
    struct qfs_skip s = make_skip(QFS_SKIP_NOT_ECR, EVENT_ID, "nginx:1.25");
    assert_int_equal(run_skip(w, &s), QFS_UNAVAILABLE);
    qfs_skip_cleanup(&s);

    /* Closing: the ports are gone, and the job ends at once without them. */
    w->store.fail = QFS_OK;
    w->deps.kv = NULL;
    make_result(&o, "web", "11", 62, C2H5, 1000);
    assert_int_equal(run_outcome(w, &o), QFS_UNAVAILABLE);
    w->deps.kv = w->kv;
}

static void test_topic_arn(void **state)
{
    assert_true(notifier_topic_arn_is_valid(TOPIC));
    assert_true(notifier_topic_arn_is_valid("arn:aws-us-gov:sns:us-gov-west-1:111122223333:t.fifo"));
    assert_false(notifier_topic_arn_is_valid("arn:aws:sqs:eu-west-1:111122223333:q"));
    assert_false(notifier_topic_arn_is_valid("arn:aws:sns:eu-west-1:1111:t"));
    assert_false(notifier_topic_arn_is_valid(NULL));
}

int main(void)
{
    qfs_log_init("test", QFS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_every_severity),
        cmocka_unit_test(test_new_only),
        cmocka_unit_test(test_failure_always_sent),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_message_small),
        cmocka_unit_test(test_message_bound_huge_findings),
        cmocka_unit_test(test_skip_entries),
        cmocka_unit_test(test_topic_arn),
        cmocka_unit_test_setup_teardown(test_flow_sent_once, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_flow_not_sent_and_failure, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_flow_new_only, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_flow_unavailable, world_setup, world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
