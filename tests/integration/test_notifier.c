/* qfs-notifier over the local stack (nats-server, redis-server, aws-sim's SNS): a skip listed as
 * the parser lists it and then a scan result of the same deploy give exactly one SNS message with
 * the Subject, attributes and a body that follows proto/sns_message.schema.json and lists the image
 * that was not scanned, plus a notification record; a result below the threshold gives a not_sent record and no message; the
 * same outcome delivered again sends nothing more; QFS_NOTIFY_NEW_ONLY=1 stays quiet about the
 * same findings; a failed scan is always sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qfs/kv.h"
#include "qfs/proto.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/proto_sns.h"
#include "qfs/util.h"
#include "testlib.h"

#define REGISTRY "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
#define DIGEST "sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c"
#define EVENT_ID "evt-notify-1"

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *notifier;
    natsConnection *nc;
    jsCtx *js;
};

/* A short ack wait: anything a stopped notifier held comes back well within the waits below. */
static const char *const notifier_env[] = {"QFS_LOG_LEVEL=debug", "QFS_ACK_WAIT=5s", NULL};
static const char *const new_only_env[] = {"QFS_LOG_LEVEL=debug", "QFS_ACK_WAIT=5s",
                                           "QFS_NOTIFY_NEW_ONLY=1", NULL};

/* ---- the bus --------------------------------------------------------------------------------- */

static bool consumers_exist(void *arg)
{
    struct env *e = arg;
    const char *names[] = {"notifier-completed", "notifier-failed"};
    for (int i = 0; i < 2; i++) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        if (js_GetConsumerInfo(&ci, e->js, "QFS", names[i], NULL, &jerr) != NATS_OK) return false;
        jsConsumerInfo_Destroy(ci);
    }
    return true;
}

static void start_notifier(struct env *e, const char *tag, const char *const *extra)
{
    e->notifier = qfs_test_service_start(&e->stack, "notifier", tag, extra);
    if (!qfs_test_eventually(consumers_exist, e, 30000)) {
        qfs_test_proc_dump_log(e->notifier, 40);
        fail_msg("the notifier's consumers never appeared");
    }
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("notifier");
    qfs_test_stack_up(&e->stack, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    start_notifier(e, NULL, notifier_env);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    qfs_test_proc_stop(e->notifier);
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Publishes json as the pipeline would; returns the stream sequence. */
static uint64_t publish(struct env *e, enum qfs_subject kind, const char *msg_id, enum qfs_schema schema,
                        char *json)
{
    char subject[QFS_SUBJECT_MAX];
    assert_int_equal(qfs_subject_format(subject, sizeof(subject), kind, "111122223333", "eu-west-1"), QFS_OK);
    uint64_t seq = qfs_test_publish(e->js, subject, json, msg_id, EVENT_ID, qfs_schema_name(schema));
    free(json);
    return seq;
}

struct acked_arg {
    struct env *e;
    const char *consumer;
    uint64_t seq;
};

static bool acked(void *arg)
{
    struct acked_arg *a = arg;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (js_GetConsumerInfo(&ci, a->e->js, "QFS", a->consumer, NULL, &jerr) != NATS_OK) return false;
    bool done = ci->AckFloor.Stream >= a->seq && ci->NumAckPending == 0;
    jsConsumerInfo_Destroy(ci);
    return done;
}

/* Waits until the notifier acknowledged everything up to seq on consumer. */
static void wait_acked(struct env *e, const char *consumer, uint64_t seq)
{
    struct acked_arg a = {e, consumer, seq};
    if (!qfs_test_eventually(acked, &a, 30000)) {
        qfs_test_proc_dump_log(e->notifier, 40);
        fail_msg("%s never acknowledged stream sequence %" PRIu64, consumer, seq);
    }
}

/* Every stored message on filter, from the start, each with its Nats-Msg-Id as "_msg_id". */
static cJSON *stored(struct env *e, const char *filter)
{
    return qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), filter);
}

/* The notification records with Nats-Msg-Id msg_id; *last gets a copy of the last one. */
static int records(struct env *e, const char *msg_id, cJSON **last)
{
    cJSON *list = stored(e, "qfs.notifications.>");
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *id = cJSON_GetObjectItem(m, "_msg_id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, msg_id) != 0) continue;
        n++;
        if (last) {
            cJSON_Delete(*last);
            *last = cJSON_Duplicate(m, true);
        }
    }
    cJSON_Delete(list);
    return n;
}

struct record_arg {
    struct env *e;
    const char *msg_id;
};

static bool has_record(void *arg)
{
    struct record_arg *r = arg;
    return records(r->e, r->msg_id, NULL) > 0;
}

static cJSON *wait_record(struct env *e, const char *msg_id)
{
    struct record_arg r = {e, msg_id};
    if (!qfs_test_eventually(has_record, &r, 30000)) {
        qfs_test_proc_dump_log(e->notifier, 40);
        fail_msg("no notification record %s", msg_id);
    }
    cJSON *last = NULL;
    records(e, msg_id, &last);
    return last;
}

/* ---- aws-sim's SNS --------------------------------------------------------------------------- */

/* The messages SNS received for repository and generation; *last gets a copy of the last one. */
static int sns_messages(struct env *e, const char *repository, int64_t generation, cJSON **last)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/_sim/sns/messages?topic=%s", qfs_test_stack_get(&e->stack, "QFS_SIM_AWS_URL"),
             qfs_test_stack_get(&e->stack, "QFS_SNS_TOPIC_ARN"));
    char *body = NULL;
    int code = qfs_test_http("GET", url, NULL, &body);
    assert_int_equal(code, 200);
    cJSON *root = cJSON_Parse(body);
    free(body);
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(root, "messages")) {
        const cJSON *text = cJSON_GetObjectItem(m, "message");
        cJSON *msg = cJSON_IsString(text) ? cJSON_Parse(text->valuestring) : NULL;
        const cJSON *repo = cJSON_GetObjectItem(msg, "repository");
        const cJSON *gen = cJSON_GetObjectItem(msg, "generation");
        bool match = cJSON_IsString(repo) && strcmp(repo->valuestring, repository) == 0 &&
                     cJSON_IsNumber(gen) && (int64_t)gen->valuedouble == generation;
        cJSON_Delete(msg);
        if (!match) continue;
        n++;
        if (last) {
            cJSON_Delete(*last);
            *last = cJSON_Duplicate(m, true);
        }
    }
    cJSON_Delete(root);
    return n;
}

struct sns_arg {
    struct env *e;
    const char *repository;
    int64_t generation;
};

static bool has_sns(void *arg)
{
    struct sns_arg *s = arg;
    return sns_messages(s->e, s->repository, s->generation, NULL) > 0;
}

static cJSON *wait_sns(struct env *e, const char *repository, int64_t generation)
{
    struct sns_arg s = {e, repository, generation};
    if (!qfs_test_eventually(has_sns, &s, 30000)) {
        qfs_test_proc_dump_log(e->notifier, 40);
        fail_msg("SNS never got the message for %s #%" PRId64, repository, generation);
    }
    cJSON *last = NULL;
    sns_messages(e, repository, generation, &last);
    return last;
}

static const char *attribute(const cJSON *sns, const char *name, const char *want_type)
{
    const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(sns, "message_attributes"), name);
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "Type")->valuestring, want_type);
    return cJSON_GetObjectItem(a, "Value")->valuestring;
}

/* Checks body against proto/sns_message.schema.json with ajv (as tests/proto does) and the C
 * decoder, which is stricter. */
static void assert_valid_body(struct env *e, const char *body)
{
    char *file = qfs_xasprintf("%s/body.json", e->dir);
    char *script = qfs_xasprintf("%s/validate.js", e->dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    f = fopen(script, "w");
    assert_non_null(f);
    fputs("'use strict';\n"
          "const fs = require('fs'), path = require('path');\n"
          "const root = process.env.QFS_SOURCE_DIR;\n"
          "const Ajv = require(path.join(root, 'tests/sim/node_modules/ajv/dist/2020'));\n"
          "const addFormats = require(path.join(root, 'tests/sim/node_modules/ajv-formats'));\n"
          "const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });\n"
          "addFormats(ajv);\n"
          "const dir = path.join(root, 'proto');\n"
          "for (const n of fs.readdirSync(dir).filter((n) => n.endsWith('.schema.json')))\n"
          "  ajv.addSchema(JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')));\n"
          "const v = ajv.getSchema('https://qfs.invalid/proto/sns_message.schema.json');\n"
          "if (!v(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')))) {\n"
          "  console.error(ajv.errorsText(v.errors));\n"
          "  process.exit(1);\n"
          "}\n",
          f);
    fclose(f);
    char *cmd = qfs_xasprintf("'%s' '%s' '%s'", qfs_test_env("QFS_NODE", "node"), script, file);
    int rc = system(cmd);
    if (rc != 0) fail_msg("the SNS body breaks proto/sns_message.schema.json: %s", body);
    free(cmd);
    free(script);
    free(file);

    struct qfs_sns_message m;
    char err[256];
    if (qfs_sns_message_decode(body, strlen(body), &m, err, sizeof(err)) != QFS_OK)
        fail_msg("the C decoder refuses the SNS body: %s", err);
    qfs_sns_message_cleanup(&m);
}

/* ---- messages of the pipeline ---------------------------------------------------------------- */

static char *containers_app[] = {"app"};
static char *containers_proxy[] = {"proxy"};

static struct qfs_deploy deploy(const char *event_id)
{
    struct qfs_deploy d = {
        .event_name = "UpdateService",
        .event_id = (char *)event_id,
        .event_time = "2026-05-01T10:00:00Z",
        .event_account = "111122223333",
        .event_region = "eu-west-1",
        .principal = "arn:aws:sts::111122223333:assumed-role/ci-deploy/run-42",
        .task_definition_arn = "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42",
        .cluster = "prod",
        .service = "web",
        .containers = containers_app,
        .ncontainers = 1,
    };
    return d;
}

static struct qfs_image_id image(const char *repository, const char *tag, char *buf, size_t n)
{
    snprintf(buf, n, REGISTRY "/%s:%s", repository, tag);
    struct qfs_image_id img = {.account = "111122223333", .region = "eu-west-1", .registry = REGISTRY,
                               .repository = (char *)repository, .tag = (char *)tag,
                               .digest = DIGEST, .image = buf};
    return img;
}

/* A completed scan: one finding per counted vulnerability, QIDs qid_base + i, most severe first. */
static char *result_json(const char *repository, const char *tag, int64_t generation,
                         struct qfs_severity_counts c, int64_t qid_base, const char *event_id)
{
    char ref[512];
    struct qfs_finding f[QFS_SCAN_MAX_FINDINGS];
    char titles[QFS_SCAN_MAX_FINDINGS][64];
    size_t nf = 0;
    int64_t per[6] = {0, c.info, c.low, c.medium, c.high, c.critical};
    for (int sev = 5; sev >= 1; sev--) {
        for (int64_t k = 0; k < per[sev] && nf < QFS_SCAN_MAX_FINDINGS; k++, nf++) {
            snprintf(titles[nf], sizeof(titles[nf]), "Finding %zu of severity %d", nf, sev);
            f[nf] = (struct qfs_finding){.qid = qid_base + (int64_t)nf, .title = titles[nf], .severity = sev,
                                         .package = "openssl", .installed_version = "3.1.4-r2"};
        }
    }
    struct qfs_deploy d = deploy(event_id);
    struct qfs_scan_result r = {
        .image = image(repository, tag, ref, sizeof(ref)),
        .generation = generation,
        .registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21",
        .qualys_image_sha = "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433",
        .counts = c,
        .total = c.critical + c.high + c.medium + c.low + c.info,
        .patchable = 0,
        .findings = f,
        .nfindings = nf,
        .scanned_at = "2026-05-01T10:06:41.207Z",
        .deploys = &d,
        .ndeploys = 1,
    };
    char *json = NULL;
    assert_int_equal(qfs_scan_result_encode(&r, &json), QFS_OK);
    return json;
}

static char *outcome_id(const char *repository, int64_t generation)
{
    return qfs_xasprintf("outcome:" REGISTRY "/%s@" DIGEST "#%" PRId64, repository, generation);
}

static char *notify_id(const char *repository, int64_t generation)
{
    return qfs_xasprintf("notify:" REGISTRY "/%s@" DIGEST "#%" PRId64, repository, generation);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_sent_once_with_not_scanned(void **state)
{
    struct env *e = *state;
    /* The parser skipped nginx in the same deploy. */
    struct qfs_skip s = {.reason = QFS_SKIP_NOT_ECR, .account = "111122223333", .region = "eu-west-1",
                         .image = "nginx:1.25",
                         .detail = "registry docker.io is not a private ECR registry",
                         .deploy = deploy(EVENT_ID)};
    s.deploy.containers = containers_proxy;
    /* As qfs-parser lists its skips before it publishes the deploy's image records. */
    char key[QFS_KV_MAX_KEY], *entry = NULL;
    assert_int_equal(qfs_deploy_skip_entry(&s, &entry), QFS_OK);
    qfs_deploy_skips_key(EVENT_ID, key, sizeof(key));
    qfs_test_kv_append(&e->stack, key, entry);
    free(entry);

    char *id = outcome_id("web", 101);
    uint64_t seq = publish(e, QFS_SUBJECT_SCANS_COMPLETED, id, QFS_SCHEMA_SCAN_RESULT,
                  result_json("web", "1.4.2", 101, (struct qfs_severity_counts){.critical = 2, .high = 5},
                              379000, EVENT_ID));
    free(id);
    cJSON *sns = wait_sns(e, "web", 101);
    assert_string_equal(cJSON_GetObjectItem(sns, "subject")->valuestring,
                        "qfs: 2C/5H web:1.4.2 in 111122223333/eu-west-1");
    assert_string_equal(attribute(sns, "severity", "String"), "critical");
    assert_string_equal(attribute(sns, "account", "String"), "111122223333");
    assert_string_equal(attribute(sns, "region", "String"), "eu-west-1");
    assert_string_equal(attribute(sns, "repository", "String"), "web");
    const char *body = cJSON_GetObjectItem(sns, "message")->valuestring;
    assert_valid_body(e, body);
    cJSON *msg = cJSON_Parse(body);
    assert_string_equal(cJSON_GetObjectItem(msg, "outcome")->valuestring, "completed");
    assert_string_equal(cJSON_GetObjectItem(msg, "digest")->valuestring, DIGEST);
    const cJSON *counts = cJSON_GetObjectItem(cJSON_GetObjectItem(msg, "summary"), "counts");
    assert_int_equal(cJSON_GetObjectItem(counts, "critical")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(counts, "high")->valueint, 5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(msg, "findings")), 7);
    const cJSON *dep = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "deploys"), 0);
    assert_string_equal(cJSON_GetObjectItem(dep, "event_id")->valuestring, EVENT_ID);
    assert_string_equal(cJSON_GetObjectItem(dep, "service")->valuestring, "web");
    const cJSON *ns = cJSON_GetObjectItem(msg, "not_scanned");
    assert_int_equal(cJSON_GetArraySize(ns), 1);
    const cJSON *n0 = cJSON_GetArrayItem(ns, 0);
    assert_string_equal(cJSON_GetObjectItem(n0, "image")->valuestring, "nginx:1.25");
    assert_string_equal(cJSON_GetObjectItem(n0, "reason")->valuestring, "not_ecr");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(n0, "containers"), 0)->valuestring, "proxy");
    cJSON_Delete(msg);

    char *nid = notify_id("web", 101);
    cJSON *rec = wait_record(e, nid);
    assert_string_equal(cJSON_GetObjectItem(rec, "decision")->valuestring, "sent");
    assert_string_equal(cJSON_GetObjectItem(rec, "reason")->valuestring, "min_severity_met");
    assert_string_equal(cJSON_GetObjectItem(rec, "sns_message_id")->valuestring,
                        cJSON_GetObjectItem(sns, "message_id")->valuestring);
    assert_string_equal(cJSON_GetObjectItem(rec, "subject")->valuestring,
                        cJSON_GetObjectItem(sns, "subject")->valuestring);
    assert_int_equal(cJSON_GetObjectItem(rec, "findings_sent")->valueint, 7);
    cJSON_Delete(rec);
    wait_acked(e, "notifier-completed", seq);
    assert_int_equal(sns_messages(e, "web", 101, NULL), 1);
    free(nid);
    cJSON_Delete(sns);
}

static void test_same_outcome_again(void **state)
{
    struct env *e = *state;
    /* The outcome of generation 101 again, under another Nats-Msg-Id so the stream keeps it: the
     * notifier sees notified:<K>#101 and sends nothing. */
    uint64_t seq = publish(e, QFS_SUBJECT_SCANS_COMPLETED, "republished-101", QFS_SCHEMA_SCAN_RESULT,
                           result_json("web", "1.4.2", 101, (struct qfs_severity_counts){.critical = 2, .high = 5},
                                       379000, EVENT_ID));
    wait_acked(e, "notifier-completed", seq);
    assert_int_equal(sns_messages(e, "web", 101, NULL), 1);
    char *nid = notify_id("web", 101);
    assert_int_equal(records(e, nid, NULL), 1); /* the record's republish was a duplicate */
    free(nid);

    /* And once more after a restart of the notifier. */
    qfs_test_proc_stop(e->notifier);
    start_notifier(e, "restarted", notifier_env);
    seq = publish(e, QFS_SUBJECT_SCANS_COMPLETED, "republished-101-again", QFS_SCHEMA_SCAN_RESULT,
                  result_json("web", "1.4.2", 101, (struct qfs_severity_counts){.critical = 2, .high = 5},
                              379000, EVENT_ID));
    wait_acked(e, "notifier-completed", seq);
    assert_int_equal(sns_messages(e, "web", 101, NULL), 1);
}

static void test_below_threshold_not_sent(void **state)
{
    struct env *e = *state;
    char *id = outcome_id("web", 102);
    uint64_t seq = publish(e, QFS_SUBJECT_SCANS_COMPLETED, id, QFS_SCHEMA_SCAN_RESULT,
                           result_json("web", "1.4.3", 102, (struct qfs_severity_counts){.medium = 3, .low = 4},
                                       500, EVENT_ID));
    free(id);
    char *nid = notify_id("web", 102);
    cJSON *rec = wait_record(e, nid);
    assert_string_equal(cJSON_GetObjectItem(rec, "decision")->valuestring, "not_sent");
    assert_string_equal(cJSON_GetObjectItem(rec, "reason")->valuestring, "below_min_severity");
    assert_string_equal(cJSON_GetObjectItem(rec, "severity")->valuestring, "medium");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(rec, "sns_message_id")));
    cJSON_Delete(rec);
    free(nid);
    wait_acked(e, "notifier-completed", seq);
    assert_int_equal(sns_messages(e, "web", 102, NULL), 0);
}

static void test_failure_sent(void **state)
{
    struct env *e = *state;
    char ref[512];
    struct qfs_deploy d = deploy(EVENT_ID);
    struct qfs_scan_failure f = {
        .image = image("web", "2.0.0", ref, sizeof(ref)),
        .generation = 103,
        .reason = QFS_SCAN_FAILURE_TIMEOUT,
        .detail = "not scanned after 30 checks",
        .poll_attempts = 30,
        .failed_at = "2026-05-01T10:30:12.004Z",
        .deploys = &d,
        .ndeploys = 1,
    };
    char *json = NULL;
    assert_int_equal(qfs_scan_failure_encode(&f, &json), QFS_OK);
    char *id = outcome_id("web", 103);
    publish(e, QFS_SUBJECT_SCANS_FAILED, id, QFS_SCHEMA_SCAN_FAILURE, json);
    free(id);
    cJSON *sns = wait_sns(e, "web", 103);
    assert_string_equal(cJSON_GetObjectItem(sns, "subject")->valuestring,
                        "qfs: scan failed (timeout) web:2.0.0 in 111122223333/eu-west-1");
    assert_string_equal(attribute(sns, "severity", "String"), "failure");
    const char *body = cJSON_GetObjectItem(sns, "message")->valuestring;
    assert_valid_body(e, body);
    cJSON *msg = cJSON_Parse(body);
    const cJSON *failure = cJSON_GetObjectItem(msg, "failure");
    assert_string_equal(cJSON_GetObjectItem(failure, "reason")->valuestring, "timeout");
    assert_string_equal(cJSON_GetObjectItem(failure, "detail")->valuestring, "not scanned after 30 checks");
    /* The skip of the same deploy event is listed here too. */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(msg, "not_scanned")), 1);
    cJSON_Delete(msg);
    char *nid = notify_id("web", 103);
    cJSON *rec = wait_record(e, nid);
    assert_string_equal(cJSON_GetObjectItem(rec, "reason")->valuestring, "scan_failure");
    assert_string_equal(cJSON_GetObjectItem(rec, "failure_reason")->valuestring, "timeout");
    cJSON_Delete(rec);
    free(nid);
    cJSON_Delete(sns);
}

static void test_new_only_same_findings(void **state)
{
    struct env *e = *state;
    qfs_test_proc_stop(e->notifier);
    start_notifier(e, "new-only", new_only_env);
    struct qfs_severity_counts c = {.critical = 2, .high = 5};
    char *id = outcome_id("api", 201);
    publish(e, QFS_SUBJECT_SCANS_COMPLETED, id, QFS_SCHEMA_SCAN_RESULT,
            result_json("api", "1", 201, c, 9000, "evt-notify-2"));
    free(id);
    char *nid = notify_id("api", 201);
    cJSON *rec = wait_record(e, nid);
    assert_string_equal(cJSON_GetObjectItem(rec, "decision")->valuestring, "sent");
    assert_string_equal(cJSON_GetObjectItem(rec, "reason")->valuestring, "new_findings");
    cJSON_Delete(rec);
    free(nid);

    /* The next scan of the repository has the same findings. */
    id = outcome_id("api", 202);
    uint64_t seq = publish(e, QFS_SUBJECT_SCANS_COMPLETED, id, QFS_SCHEMA_SCAN_RESULT,
                           result_json("api", "2", 202, c, 9000, "evt-notify-3"));
    free(id);
    nid = notify_id("api", 202);
    rec = wait_record(e, nid);
    assert_string_equal(cJSON_GetObjectItem(rec, "decision")->valuestring, "not_sent");
    assert_string_equal(cJSON_GetObjectItem(rec, "reason")->valuestring, "no_new_findings");
    cJSON_Delete(rec);
    free(nid);
    wait_acked(e, "notifier-completed", seq);
    assert_int_equal(sns_messages(e, "api", 201, NULL), 1);
    assert_int_equal(sns_messages(e, "api", 202, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sent_once_with_not_scanned),
        cmocka_unit_test(test_same_outcome_again),
        cmocka_unit_test(test_below_threshold_not_sent),
        cmocka_unit_test(test_failure_sent),
        cmocka_unit_test(test_new_only_same_findings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
