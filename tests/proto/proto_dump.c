/* Prints qfs messages encoded by the C codecs, for tests/proto/schemas.test.js to check against the
 * JSON Schemas in proto/.
 *
 *   proto_dump                  one line per encoded message: {"type","case","json"}
 *   proto_dump --table          the subject table, schema names and enum vocabularies
 *   proto_dump --roundtrip FILE decode each line of FILE (the type from its "schema" field, an
 *                               EventBridge event when it has none), encode it again and print
 *                               {"ok":true,"json":...} or {"ok":false,"error":"..."} */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto.h"
#include "qfs/proto_dlq.h"
#include "qfs/proto_event.h"
#include "qfs/proto_image.h"
#include "qfs/proto_notification.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/proto_sns.h"
#include "qfs/util.h"

static int failures;

static void emit(const char *type, const char *what, qfs_status s, char *json)
{
    if (s != QFS_OK) {
        fprintf(stderr, "proto_dump: encoding %s (%s) failed: %s\n", type, what, qfs_status_str(s));
        failures++;
        return;
    }
    printf("{\"type\":\"%s\",\"case\":\"%s\",\"json\":%s}\n", type, what, json);
    free(json);
}

/* Encodes with call (which writes json_) and prints the result. */
#define EMIT(type, what, call)                 \
    do {                                       \
        char *json_ = NULL;                    \
        qfs_status s_ = (call);                \
        emit(type, what, s_, json_);           \
    } while (0)

/* ---- filled-in structs ----------------------------------------------------------------------- */

static char *web_containers[] = {"app", "app-warmup"};
static char *one_container[] = {"app"};

static struct qfs_deploy deploy_update_service(void)
{
    struct qfs_deploy d = {
        .event_name = "UpdateService",
        .event_id = "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
        .event_time = "2026-05-01T10:00:00Z",
        .event_account = "111122223333",
        .event_region = "eu-west-1",
        .principal = "arn:aws:sts::111122223333:assumed-role/ci-deploy/run-42",
        .task_definition_arn = "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42",
        .cluster = "prod",
        .service = "web",
        .containers = one_container,
        .ncontainers = 1,
    };
    return d;
}

static struct qfs_image_id image_web(void)
{
    struct qfs_image_id img = {
        .account = "111122223333",
        .region = "eu-west-1",
        .registry = "111122223333.dkr.ecr.eu-west-1.amazonaws.com",
        .repository = "web",
        .tag = "1.4.2",
        .digest = "sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605",
        .image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2",
    };
    return img;
}

static void dump_images(void)
{
    struct qfs_image_record m = {.image = image_web(), .deploy = deploy_update_service()};
    m.deploy.event_name = "RegisterTaskDefinition";
    m.deploy.cluster = NULL;
    m.deploy.service = NULL;
    m.deploy.containers = web_containers;
    m.deploy.ncontainers = 2;
    EMIT("image", "tag and digest, two containers", qfs_image_record_encode(&m, &json_));

    struct qfs_image_record u = {.deploy = deploy_update_service()};
    u.image = (struct qfs_image_id){
        .account = "444455556666",
        .region = "us-east-1",
        .registry = "444455556666.dkr.ecr-fips.us-east-1.amazonaws.com",
        .repository = "platform/migrate",
        .tag = "2026.05",
        .digest = NULL,
        .image = "444455556666.dkr.ecr-fips.us-east-1.amazonaws.com/platform/migrate:2026.05",
    };
    u.digest_unresolved = "ECR DescribeImages: AccessDeniedException";
    u.cache_fail_open = true;
    u.deploy.event_name = "RunTask";
    u.deploy.principal = NULL;
    u.deploy.service = NULL;
    u.deploy.cluster = "arn:aws:ecs:eu-west-1:111122223333:cluster/batch";
    EMIT("image", "null digest, unresolved", qfs_image_record_encode(&u, &json_));

    struct qfs_image_record c = {.deploy = deploy_update_service()};
    c.image = (struct qfs_image_id){
        .account = "444455556666",
        .region = "cn-north-1",
        .registry = "444455556666.dkr.ecr.cn-north-1.amazonaws.com.cn",
        .repository = "payments/api",
        .tag = NULL,
        .digest = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        .image = "444455556666.dkr.ecr.cn-north-1.amazonaws.com.cn/payments/api@sha256:"
                 "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    };
    c.deploy.event_name = "ECS Task State Change";
    c.deploy.task_definition_arn = "arn:aws-cn:ecs:cn-north-1:444455556666:task-definition/api:311";
    EMIT("image", "digest only, China partition", qfs_image_record_encode(&c, &json_));
}

static void dump_requests(void)
{
    struct qfs_deploy deploys[2] = {deploy_update_service(), deploy_update_service()};
    deploys[1].event_name = "RunTask";
    deploys[1].event_id = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
    deploys[1].event_account[0] = '7'; /* 711122223333 */
    deploys[1].service = NULL;
    struct qfs_scan_request r = {
        .image = image_web(),
        .generation = 1777629600412,
        .requested_at = "2026-05-01T10:00:00.412Z",
        .deploys = deploys,
        .ndeploys = 2,
    };
    EMIT("scan_request", "two deploys", qfs_scan_request_encode(&r, &json_));

    struct qfs_scan_ready ready = {.request = r, .registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21"};
    ready.request.ndeploys = 1;
    ready.request.cache_fail_open = true;
    EMIT("scan_ready", "fail-open request", qfs_scan_ready_encode(&ready, &json_));
}

static void dump_results(void)
{
    /* The largest findings list: QFS_SCAN_MAX_FINDINGS findings of QFS_SCAN_MAX_CVES CVEs each,
     * built out of order and sorted by the codec's helper. */
    struct qfs_finding *f = qfs_xcalloc(QFS_SCAN_MAX_FINDINGS, sizeof(*f));
    char *cves[QFS_SCAN_MAX_CVES];
    for (int i = 0; i < QFS_SCAN_MAX_CVES; i++) cves[i] = qfs_xasprintf("CVE-2024-%05d", 10000 + i);
    for (int i = 0; i < QFS_SCAN_MAX_FINDINGS; i++) {
        f[i].qid = 100000 + (i * 7919) % 1000;
        f[i].severity = 1 + (i * 3) % 5;
        f[i].title = qfs_xasprintf("Finding %d: \"quoted\" title with é and a tab\t", i);
        f[i].cves = cves;
        f[i].ncves = QFS_SCAN_MAX_CVES;
        f[i].package = i % 3 ? "openssl" : NULL;
        f[i].installed_version = i % 3 ? "3.1.4-r2" : NULL;
        f[i].fixed_version = i % 2 ? "3.1.4-r5" : NULL;
    }
    qfs_scan_findings_sort(f, QFS_SCAN_MAX_FINDINGS);
    struct qfs_deploy *deploys = qfs_xcalloc(QFS_PROTO_MAX_DEPLOYS, sizeof(*deploys));
    for (int i = 0; i < QFS_PROTO_MAX_DEPLOYS; i++) deploys[i] = deploy_update_service();
    struct qfs_scan_result m = {
        .image = image_web(),
        .generation = 999999999999999LL,
        .registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21",
        .qualys_image_sha = "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433",
        .counts = {.critical = 10, .high = 10, .medium = 10, .low = 10, .info = 960},
        .total = 1000,
        .patchable = 999,
        .findings = f,
        .nfindings = QFS_SCAN_MAX_FINDINGS,
        .scanned_at = "2026-05-01T10:06:41.207+02:00",
        .deploys = deploys,
        .ndeploys = QFS_PROTO_MAX_DEPLOYS,
    };
    EMIT("scan_result", "maximal findings and deploys", qfs_scan_result_encode(&m, &json_));
    for (int i = 0; i < QFS_SCAN_MAX_FINDINGS; i++) free(f[i].title);
    for (int i = 0; i < QFS_SCAN_MAX_CVES; i++) free(cves[i]);
    free(f);
    free(deploys);

    struct qfs_deploy one = deploy_update_service();
    struct qfs_scan_result clean = {
        .image = image_web(),
        .generation = 2,
        .registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21",
        .qualys_image_sha = "00a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f",
        .scanned_at = "2026-05-01T12:00:00Z",
        .deploys = &one,
        .ndeploys = 1,
    };
    clean.image.digest = NULL;
    EMIT("scan_result", "no findings, no digest", qfs_scan_result_encode(&clean, &json_));
}

static void dump_failures(void)
{
    struct qfs_deploy one = deploy_update_service();
    struct qfs_scan_failure t = {
        .image = image_web(),
        .generation = 1777629600412,
        .registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21",
        .reason = QFS_SCAN_FAILURE_TIMEOUT,
        .detail = "not scanned after 30 checks",
        .poll_attempts = 30,
        .failed_at = "2026-05-01T10:30:12.004Z",
        .deploys = &one,
        .ndeploys = 1,
    };
    EMIT("scan_failure", "timeout", qfs_scan_failure_encode(&t, &json_));
    for (int r = 0; r < QFS_SCAN_FAILURE_REASON_COUNT; r++) {
        struct qfs_scan_failure f = t;
        f.reason = (enum qfs_scan_failure_reason)r;
        f.registry_uuid = NULL;
        f.detail = NULL;
        f.qualys_error_code = "403 FORBIDDEN";
        f.qualys_error_message = "Request Forbidden";
        f.poll_attempts = 0;
        EMIT("scan_failure", qfs_scan_failure_reason_str(f.reason),
             qfs_scan_failure_encode(&f, &json_));
    }
}

static void dump_skips(void)
{
    struct qfs_skip s = {.reason = QFS_SKIP_NOT_ECR, .deploy = deploy_update_service()};
    memcpy(s.account, "111122223333", 13);
    memcpy(s.region, "eu-west-1", 10);
    s.detail = "registry public.ecr.aws is not a private ECR registry";
    s.image = "public.ecr.aws/acme/migrate:2026.05";
    EMIT("skip", "not_ecr", qfs_skip_encode(&s, &json_));

    struct qfs_scan_summary sum = {
        .qualys_image_sha = "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433",
        .counts = {.critical = 1, .high = 3, .medium = 7, .low = 2},
        .total = 13,
        .patchable = 9,
        .scanned_at = "2026-05-01T10:06:41.207Z",
    };
    struct qfs_skip c = s;
    c.reason = QFS_SKIP_CACHED;
    c.image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2";
    c.digest = "sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605";
    c.summary = &sum;
    EMIT("skip", "cached with summary", qfs_skip_encode(&c, &json_));

    struct qfs_skip n = s;
    n.reason = QFS_SKIP_NO_TASKS_STARTED;
    n.image = NULL;
    n.detail = NULL;
    n.deploy.event_name = "RunTask";
    n.deploy.task_definition_arn = NULL;
    n.deploy.containers = NULL;
    n.deploy.ncontainers = 0;
    EMIT("skip", "no tasks, no containers", qfs_skip_encode(&n, &json_));

    struct qfs_skip h = s;
    h.reason = QFS_SKIP_INVALID_IMAGE;
    h.image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/Web App:\"1\"\n\x01 ünïcode";
    h.detail = "repository contains upper-case letters";
    EMIT("skip", "hostile image reference", qfs_skip_encode(&h, &json_));

    struct qfs_skip u = n;
    u.reason = QFS_SKIP_UNSUPPORTED_EVENT;
    u.deploy.event_name = "CreateCluster";
    u.deploy.principal = NULL;
    u.deploy.cluster = NULL;
    u.deploy.service = NULL;
    EMIT("skip", "unsupported event", qfs_skip_encode(&u, &json_));

    for (int r = 0; r < QFS_SKIP_REASON_COUNT; r++) {
        struct qfs_skip e = s;
        e.reason = (enum qfs_skip_reason)r;
        EMIT("skip", qfs_skip_reason_str(e.reason), qfs_skip_encode(&e, &json_));
    }
}

static void dump_notifications(void)
{
    struct qfs_deploy one = deploy_update_service();
    struct qfs_notification m = {
        .decision = QFS_NOTIFY_SENT,
        .reason = QFS_NOTIFY_MIN_SEVERITY_MET,
        .source = QFS_NOTIFY_SOURCE_SCAN_RESULT,
        .image = image_web(),
        .generation = 1777629600412,
        .counts = {.critical = 2, .high = 5},
        .topic_arn = "arn:aws:sns:eu-west-1:999900001111:qfs-findings",
        .subject = "qfs: 2C/5H web:1.4.2 in 111122223333/eu-west-1",
        .sns_message_id = "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        .findings_sent = 7,
        .deploys = &one,
        .ndeploys = 1,
        .notified_at = "2026-05-01T10:06:42.015Z",
    };
    m.severity = qfs_severity_counts_max(&m.counts);
    EMIT("notification", "sent", qfs_notification_encode(&m, &json_));

    struct qfs_notification n = m;
    n.decision = QFS_NOTIFY_NOT_SENT;
    n.reason = QFS_NOTIFY_NO_NEW_FINDINGS;
    n.topic_arn = n.subject = n.sns_message_id = NULL;
    n.findings_sent = 0;
    n.findings_omitted = 7;
    EMIT("notification", "not sent", qfs_notification_encode(&n, &json_));

    struct qfs_notification f = m;
    f.source = QFS_NOTIFY_SOURCE_SCAN_FAILURE;
    f.reason = QFS_NOTIFY_SCAN_FAILURE;
    f.failure_reason = QFS_SCAN_FAILURE_SCAN_FAILED;
    f.subject = "qfs: scan failed web:1.4.2 in 111122223333/eu-west-1";
    f.topic_arn = "arn:aws:sns:eu-west-1:999900001111:qfs-findings.fifo";
    f.findings_sent = 0;
    EMIT("notification", "failure", qfs_notification_encode(&f, &json_));
}

static void dump_sns_messages(void)
{
    /* A completed scan: findings of every severity, two deploys, an image that was not scanned. */
    struct qfs_finding f[3] = {
        {.qid = 379012, .title = "OpenSSL: \"quoted\" title with é", .severity = 5},
        {.qid = 380001, .title = "BusyBox: use after free in awk", .severity = 4,
         .package = "busybox", .installed_version = "1.36.1-r2"},
        {.qid = 100001, .title = "Informational", .severity = 1},
    };
    char *cves[] = {"CVE-2024-12797", "CVE-2023-42363"};
    f[0].cves = cves;
    f[0].ncves = 2;
    struct qfs_deploy deploys[2] = {deploy_update_service(), deploy_update_service()};
    deploys[1].event_name = "RunTask";
    deploys[1].event_id = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
    deploys[1].service = NULL;
    char *proxy[] = {"proxy"};
    struct qfs_sns_not_scanned ns[2] = {
        {.event_id = "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f", .reason = QFS_SKIP_NOT_ECR,
         .image = "nginx:1.25", .detail = "registry docker.io is not a private ECR registry",
         .containers = proxy, .ncontainers = 1},
        {.event_id = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
         .reason = QFS_SKIP_TASK_DEFINITION_NOT_FOUND, .image = NULL, .detail = NULL},
    };
    struct qfs_sns_message m = {
        .outcome = QFS_SNS_COMPLETED,
        .image = image_web(),
        .generation = 1777629600412,
        .summary = {.qualys_image_sha = "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433",
                    .counts = {.critical = 1, .high = 3, .medium = 7, .low = 2, .info = 1},
                    .total = 14, .patchable = 9, .scanned_at = "2026-05-01T10:06:41.207Z"},
        .findings = f,
        .nfindings = 3,
        .findings_omitted = 11,
        .deploys = deploys,
        .ndeploys = 2,
        .deploys_omitted = 3,
        .not_scanned = ns,
        .nnot_scanned = 2,
        .not_scanned_omitted = 1,
        .note = "cut to stay under 256 KiB: 3 deploys, 1 not-scanned image",
        .notified_at = "2026-05-01T10:06:42.015Z",
    };
    EMIT("sns_message", "completed, cut", qfs_sns_message_encode(&m, &json_));

    struct qfs_sns_message c = m;
    c.summary.counts = (struct qfs_severity_counts){0};
    c.summary.total = c.summary.patchable = 0;
    c.nfindings = 0;
    c.findings_omitted = 0;
    c.nnot_scanned = 0;
    c.not_scanned_omitted = 0;
    c.deploys_omitted = 0;
    c.note = NULL;
    c.image.digest = NULL;
    EMIT("sns_message", "nothing found, no digest", qfs_sns_message_encode(&c, &json_));

    struct qfs_sns_message t = c;
    t.outcome = QFS_SNS_FAILED;
    t.failure = (struct qfs_sns_failure){.reason = QFS_SCAN_FAILURE_SCAN_FAILED,
                                         .detail = "Qualys reported the scan failed",
                                         .qualys_error_code = "SCAN_ERROR_7",
                                         .poll_attempts = 4,
                                         .failed_at = "2026-05-01T10:30:12.004Z"};
    EMIT("sns_message", "failed", qfs_sns_message_encode(&t, &json_));
}

static void dump_dlqs(void)
{
    struct qfs_dlq_header headers[] = {
        {QFS_HDR_MSG_ID, "6a7e8feb-0000-0000-0000-000000000003"},
        {QFS_HDR_TRACE_ID, "6a7e8feb-0000-0000-0000-000000000003"},
        {QFS_HDR_SCHEMA, (char *)qfs_schema_name(QFS_SCHEMA_EVENT)},
    };
    char subject[QFS_SUBJECT_MAX];
    qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_EVENTS, "111122223333", "eu-west-1");
    const char *text = "{\"id\":\"6a7e8feb\",\"detail\":\"not an object\"}";
    struct qfs_dlq_entry m = {
        .service = "parser",
        .reason = "detail: expected object",
        .status = QFS_PROTOCOL,
        .original_subject = subject,
        .headers = headers,
        .nheaders = 3,
        .payload = (char *)text,
        .payload_len = strlen(text),
        .delivery_count = 1,
        .time = "2026-05-01T10:00:01.532Z",
        .trace_id = "6a7e8feb-0000-0000-0000-000000000003",
    };
    EMIT("dlq", "utf8 payload", qfs_dlq_entry_encode(&m, &json_));

    static const char utf16[] = "\xff\xfe{\0\"\0i\0d\0\"\0:\0";
    struct qfs_dlq_entry b = m;
    b.service[0] = '\0';
    memcpy(b.service, "ingest", 7);
    b.original_subject = NULL;
    b.nheaders = 0;
    b.payload = (char *)utf16;
    b.payload_len = sizeof(utf16) - 1;
    b.status = QFS_PROTOCOL;
    b.trace_id = NULL;
    EMIT("dlq", "non-UTF-8 payload as base64", qfs_dlq_entry_encode(&b, &json_));

    struct qfs_dlq_entry z = m;
    z.payload = "a\0b";
    z.payload_len = 3;
    z.status = QFS_TOO_BIG;
    EMIT("dlq", "NUL byte as base64", qfs_dlq_entry_encode(&z, &json_));

    size_t big = QFS_DLQ_MAX_PAYLOAD + 1000;
    char *p = qfs_xmalloc(big);
    for (size_t i = 0; i < big; i++) p[i] = "\xc3\xa9"[i % 2]; /* é repeated */
    struct qfs_dlq_entry t = m;
    t.payload = p;
    t.payload_len = big;
    t.status = QFS_TOO_BIG;
    EMIT("dlq", "oversize payload cut", qfs_dlq_entry_encode(&t, &json_));

    memset(p, 1, QFS_DLQ_MAX_PAYLOAD);
    struct qfs_dlq_entry c = m;
    c.payload = p;
    c.payload_len = QFS_DLQ_MAX_PAYLOAD;
    c.status = QFS_INTERNAL;
    EMIT("dlq", "control characters fall back to base64", qfs_dlq_entry_encode(&c, &json_));
    free(p);

    struct qfs_dlq_entry e = m;
    e.payload = NULL;
    e.payload_len = 0;
    e.status = QFS_UNAVAILABLE;
    EMIT("dlq", "empty payload", qfs_dlq_entry_encode(&e, &json_));
}

static void dump_events(void)
{
    static const char ev[] =
        "{\"version\":\"0\",\"id\":\"6a7e8feb-0000-0000-0000-000000000001\","
        "\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.ecs\","
        "\"account\":\"111122223333\",\"time\":\"2026-05-01T10:00:00Z\",\"region\":\"eu-west-1\","
        "\"resources\":[],\"detail\":{\"eventName\":\"RunTask\",\"responseElements\":null,"
        "\"errorCode\":\"ClientException\",\"extra\":[1,2.5,\"x\"]}}";
    struct qfs_event e;
    char err[256];
    qfs_status s = qfs_event_decode(ev, strlen(ev), &e, err, sizeof(err));
    char *json = NULL;
    if (s == QFS_OK) s = qfs_event_encode(&e, &json);
    emit("event", "failed RunTask", s, json);
    qfs_event_cleanup(&e);
}

/* ---- --table --------------------------------------------------------------------------------- */

static void print_vocab(const char *name, const char *(*str)(int), int from, int to)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "vocab", name);
    cJSON *arr = cJSON_AddArrayToObject(o, "values");
    for (int i = from; i < to; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(str(i)));
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static const char *skip_str(int i) { return qfs_skip_reason_str((enum qfs_skip_reason)i); }
static const char *failure_str(int i) { return qfs_scan_failure_reason_str((enum qfs_scan_failure_reason)i); }
static const char *severity_str(int i) { return qfs_severity_str((enum qfs_severity)i); }
static const char *status_str(int i) { return qfs_status_str((qfs_status)i); }
static const char *decision_str(int i) { return qfs_notify_decision_str((enum qfs_notify_decision)i); }
static const char *reason_str(int i) { return qfs_notify_reason_str((enum qfs_notify_reason)i); }
static const char *source_str(int i) { return qfs_notify_source_str((enum qfs_notify_source)i); }

static int dump_table(void)
{
    for (int k = 0; k < QFS_SUBJECT_COUNT; k++) {
        enum qfs_subject kind = (enum qfs_subject)k;
        const char *schema = qfs_schema_name(qfs_subject_schema(kind));
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "subject", qfs_subject_pattern(kind));
        cJSON_AddStringToObject(o, "filter", qfs_subject_filter(kind));
        if (schema) cJSON_AddStringToObject(o, "schema", schema);
        else cJSON_AddNullToObject(o, "schema");
        cJSON_AddBoolToObject(o, "stored", qfs_subject_is_stored(kind));
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    for (int i = 1; i < QFS_SCHEMA_COUNT; i++)
        printf("{\"schema_name\":\"%s\"}\n", qfs_schema_name((enum qfs_schema)i));
    print_vocab("skip_reason", skip_str, 0, QFS_SKIP_REASON_COUNT);
    print_vocab("scan_failure_reason", failure_str, 0, QFS_SCAN_FAILURE_REASON_COUNT);
    print_vocab("severity", severity_str, 0, QFS_SEVERITY_CRITICAL + 1);
    print_vocab("status", status_str, QFS_INVALID_ARG, QFS_INTERNAL + 1);
    print_vocab("notify_decision", decision_str, 0, QFS_NOTIFY_DECISION_COUNT);
    print_vocab("notify_reason", reason_str, 0, QFS_NOTIFY_REASON_COUNT);
    print_vocab("notify_source", source_str, 0, QFS_NOTIFY_SOURCE_COUNT);
    return 0;
}

/* ---- --roundtrip ----------------------------------------------------------------------------- */

/* Decodes one message and encodes it again. */
static qfs_status roundtrip(const char *line, size_t len, char **json, char *err, size_t errlen)
{
    *json = NULL;
    enum qfs_schema schema = QFS_SCHEMA_EVENT;
    cJSON *peek = cJSON_ParseWithLength(line, len);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(peek, "schema");
    if (cJSON_IsString(name)) schema = qfs_schema_parse(name->valuestring);
    cJSON_Delete(peek);
    qfs_status s;

#define ROUNDTRIP(type, prefix)                                     \
    do {                                                            \
        struct type m;                                              \
        s = prefix##_decode(line, len, &m, err, errlen);            \
        if (s == QFS_OK) s = prefix##_encode(&m, json);             \
        prefix##_cleanup(&m);                                       \
    } while (0)

    switch (schema) {
    case QFS_SCHEMA_EVENT: ROUNDTRIP(qfs_event, qfs_event); break;
    case QFS_SCHEMA_IMAGE: ROUNDTRIP(qfs_image_record, qfs_image_record); break;
    case QFS_SCHEMA_SCAN_REQUEST: ROUNDTRIP(qfs_scan_request, qfs_scan_request); break;
    case QFS_SCHEMA_SCAN_READY: ROUNDTRIP(qfs_scan_ready, qfs_scan_ready); break;
    case QFS_SCHEMA_SCAN_RESULT: ROUNDTRIP(qfs_scan_result, qfs_scan_result); break;
    case QFS_SCHEMA_SCAN_FAILURE: ROUNDTRIP(qfs_scan_failure, qfs_scan_failure); break;
    case QFS_SCHEMA_SKIP: ROUNDTRIP(qfs_skip, qfs_skip); break;
    case QFS_SCHEMA_NOTIFICATION: ROUNDTRIP(qfs_notification, qfs_notification); break;
    case QFS_SCHEMA_DLQ: ROUNDTRIP(qfs_dlq_entry, qfs_dlq_entry); break;
    case QFS_SCHEMA_SNS_MESSAGE: ROUNDTRIP(qfs_sns_message, qfs_sns_message); break;
    default:
        snprintf(err, errlen, "schema: unknown");
        s = QFS_PROTOCOL;
    }
#undef ROUNDTRIP
    return s;
}

static int dump_roundtrip(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 2;
    }
    struct qfs_buf all;
    qfs_buf_init(&all, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) qfs_buf_append(&all, chunk, n);
    fclose(f);
    const char *p = all.data ? all.data : "";
    const char *end = p + all.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0) {
            char err[512] = "";
            char *json;
            qfs_status s = roundtrip(p, len, &json, err, sizeof(err));
            if (s == QFS_OK) {
                printf("{\"ok\":true,\"json\":%s}\n", json);
                free(json);
            } else {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddFalseToObject(o, "ok");
                cJSON_AddStringToObject(o, "status", qfs_status_str(s));
                cJSON_AddStringToObject(o, "error", err);
                char *line = cJSON_PrintUnformatted(o);
                printf("%s\n", line);
                free(line);
                cJSON_Delete(o);
            }
        }
        p += len + 1;
    }
    qfs_buf_cleanup(&all);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--table") == 0) return dump_table();
    if (argc == 3 && strcmp(argv[1], "--roundtrip") == 0) return dump_roundtrip(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: proto_dump [--table | --roundtrip FILE]\n");
        return 2;
    }
    dump_events();
    dump_images();
    dump_requests();
    dump_results();
    dump_failures();
    dump_skips();
    dump_notifications();
    dump_dlqs();
    dump_sns_messages();
    return failures ? 1 : 0;
}
