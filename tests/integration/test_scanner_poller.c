/* qfs-scanner-poller over the local stack: a scan-ready message for web:1.4.2 becomes exactly one
 * Qualys schedule and one scan result with the seed's counts, also when the poller is killed
 * mid-poll, when Qualys throttles, errs or expires the token; a failed scan, a scan that never
 * ends and an untagged digest end as the matching scan failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qfs/proto.h"
#include "qfs/proto_scan.h"
#include "testlib.h"

#define ACCOUNT "111122223333"
#define REGION "eu-west-1"
#define HOST ACCOUNT ".dkr.ecr." REGION ".amazonaws.com"
#define WEB_DIGEST "sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c"
#define LEGACY_DIGEST "sha256:3d94f9b58082d48473474c28cae151c7c81fe878c76b23eeb30bd6dc2c2b42af"

struct env {
    char *dir;
    struct qfs_test_stack stack;
    natsConnection *nc;
    jsCtx *js;
    const char *qualys; /* qualys-sim's base URL */
    char registry_uuid[64];
    struct qfs_test_proc *poller;
};

/* The poller polls every second; the stack's Qualys credentials are the user and password (the
 * stack also names a Secrets Manager secret, and only one source may be set). */
static const char *const poller_env[] = {"QFS_POLL_INTERVAL_SECONDS=1", "QFS_POLL_FIRST_DELAYS=1",
                                         "QFS_HUB_ACCOUNT_ID=" ACCOUNT,
                                         "QFS_LOG_LEVEL=debug", NULL};

/* ---- HTTP ------------------------------------------------------------------------------------ */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char **body = arg;
    size_t old = *body ? strlen(*body) : 0;
    *body = realloc(*body, old + size * n + 1);
    memcpy(*body + old, p, size * n);
    (*body)[old + size * n] = '\0';
    return size * n;
}

/* One request with an optional bearer token; returns the HTTP code and the body (caller frees). */
static long http(const char *method, const char *url, const char *type, const char *bearer,
                 const char *body, char **out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char line[4096];
    if (type) {
        snprintf(line, sizeof(line), "Content-Type: %s", type);
        h = curl_slist_append(h, line);
    }
    if (bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, line);
    }
    char *got = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out) *out = got;
    else free(got);
    return code;
}

/* A qualys-sim admin call; fails the test unless it answers 2xx. */
static void admin(struct env *e, const char *method, const char *path, const char *json)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", e->qualys, path);
    char *body = NULL;
    long code = http(method, url, json ? "application/json" : NULL, NULL, json, &body);
    if (code / 100 != 2) fail_msg("%s %s: %ld %s", method, path, code, body ? body : "");
    free(body);
}

/* Calls of one endpoint in qualys-sim's call log since the last clear. */
static int calls(struct env *e, const char *endpoint)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/calls?endpoint=%s", e->qualys, endpoint);
    char *body = NULL;
    assert_int_equal(http("GET", url, NULL, NULL, NULL, &body), 200);
    cJSON *j = cJSON_Parse(body);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(j, "calls"));
    cJSON_Delete(j);
    free(body);
    return n;
}

/* Answers of one endpoint with one HTTP status in qualys-sim's call log. */
static int status_count(struct env *e, const char *endpoint, const char *status)
{
    char url[512], *body = NULL;
    snprintf(url, sizeof(url), "%s/_sim/calls", e->qualys);
    assert_int_equal(http("GET", url, NULL, NULL, NULL, &body), 200);
    cJSON *j = cJSON_Parse(body);
    const cJSON *per = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"),
                                                               "byEndpointStatus"), endpoint);
    const cJSON *n = cJSON_GetObjectItem(per, status);
    int count = cJSON_IsNumber(n) ? (int)n->valuedouble : 0;
    cJSON_Delete(j);
    free(body);
    return count;
}

struct wait_status {
    struct env *e;
    const char *endpoint, *status;
    int want;
};

static bool status_reached(void *arg)
{
    struct wait_status *w = arg;
    return status_count(w->e, w->endpoint, w->status) >= w->want;
}

/* The ECR registry of ACCOUNT/REGION, created in qualys-sim through its API as Qualys would. */
static void create_registry(struct env *e)
{
    char url[512], *jwt = NULL, *body = NULL;
    snprintf(url, sizeof(url), "%s/auth", e->qualys);
    assert_int_equal(http("POST", url, "application/x-www-form-urlencoded", NULL,
                          "username=qfs-sim-user&password=qfs-sim-password&token=true", &jwt),
                     201);
    snprintf(url, sizeof(url), "%s/csapi/v1.3/registry", e->qualys);
    long code = http("POST", url, "application/json", jwt,
                     "{\"registryType\":\"AWS\",\"credentialType\":\"AWS\","
                     "\"registryUri\":\"https://" HOST "\",\"registryName\":\"ecr-" ACCOUNT "-" REGION "\","
                     "\"aws\":{\"accountId\":\"" ACCOUNT "\",\"region\":\"" REGION "\","
                     "\"accountType\":\"Global\",\"arn\":\"arn:aws:iam::" ACCOUNT ":role/QualysEcrScanRole\"}}",
                     &body);
    free(jwt);
    if (code != 200) fail_msg("POST /registry: %ld %s", code, body ? body : "");
    cJSON *j = cJSON_Parse(body);
    snprintf(e->registry_uuid, sizeof(e->registry_uuid), "%s",
             cJSON_GetObjectItem(j, "registryUuid")->valuestring);
    cJSON_Delete(j);
    free(body);
}

/* ---- fixtures -------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("poller");
    qfs_test_stack_up(&e->stack, e->dir);
    e->qualys = qfs_test_stack_get(&e->stack, "QFS_SIM_QUALYS_URL");
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    *state = e;
    return 0;
}

static int group_teardown(void **state)
{
    struct env *e = *state;
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Each test starts from the seed: no images known to Qualys, one registry, no faults, no calls. */
static int setup(void **state)
{
    struct env *e = *state;
    admin(e, "POST", "/_sim/reset", NULL);
    create_registry(e);
    admin(e, "DELETE", "/_sim/calls", NULL);
    return 0;
}

/* SIGTERM must end the poller cleanly: drained, every handle closed, nothing leaked (exit 0; the
 * sanitizer build fails the exit on a leak). */
static int teardown(void **state)
{
    struct env *e = *state;
    if (!e->poller) return 0;
    int status = -1;
    bool exited = e->poller->pid <= 0;
    if (!exited) {
        qfs_test_proc_signal(e->poller, SIGTERM);
        exited = qfs_test_proc_wait(e->poller, 15000, &status);
    }
    bool clean = exited && (status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    if (!clean) qfs_test_proc_dump_log(e->poller, 40);
    qfs_test_proc_stop(e->poller);
    e->poller = NULL;
    assert_true(clean);
    return 0;
}

static void start_poller(struct env *e, const char *tag, const char *extra)
{
    const char *env[16];
    size_t n = 0;
    for (size_t i = 0; poller_env[i]; i++) env[n++] = poller_env[i];
    if (extra) env[n++] = extra;
    env[n] = NULL;
    e->poller = qfs_test_service_start(&e->stack, "scanner-poller", tag, env);
}

/* ---- the bus --------------------------------------------------------------------------------- */

/* Publishes the scan-ready message the registry service would for repository:tag (tag NULL: by
 * digest only) with generation g, through the codec, with its Nats-Msg-Id. */
static void publish_ready(struct env *e, const char *repository, const char *tag, const char *digest,
                          int64_t g)
{
    char image[512], json[4096];
    if (tag) snprintf(image, sizeof(image), HOST "/%s:%s", repository, tag);
    else snprintf(image, sizeof(image), HOST "/%s@%s", repository, digest);
    char tag_json[160];
    if (tag) snprintf(tag_json, sizeof(tag_json), "\"%s\"", tag);
    else snprintf(tag_json, sizeof(tag_json), "null");
    snprintf(json, sizeof(json),
             "{\"schema\":\"qfs.scan_ready.v1\",\"account\":\"" ACCOUNT "\",\"region\":\"" REGION "\","
             "\"registry\":\"" HOST "\",\"repository\":\"%s\",\"tag\":%s,\"digest\":\"%s\",\"image\":\"%s\","
             "\"generation\":%lld,\"requested_at\":\"2026-05-01T10:00:00Z\",\"cache_fail_open\":false,"
             "\"deploys\":[{\"event_name\":\"UpdateService\",\"event_id\":\"evt-poller-%lld\","
             "\"event_time\":\"2026-05-01T10:00:00Z\",\"event_account\":\"" ACCOUNT "\","
             "\"event_region\":\"" REGION "\",\"principal\":null,\"task_definition_arn\":null,"
             "\"cluster\":\"prod\",\"service\":\"web\",\"containers\":[\"app\"]}],"
             "\"registry_uuid\":\"%s\"}",
             repository, tag_json, digest, image, (long long)g, (long long)g, e->registry_uuid);
    struct qfs_scan_ready ready;
    char err[256], *text = NULL;
    if (qfs_scan_ready_decode(json, strlen(json), &ready, err, sizeof(err)) != QFS_OK) fail_msg("%s", err);
    assert_int_equal(qfs_scan_ready_encode(&ready, &text), QFS_OK);
    char subject[QFS_SUBJECT_MAX], key[QFS_IMAGE_KEY_MAX], id[QFS_IMAGE_KEY_MAX + 48];
    assert_int_equal(qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_READY, ACCOUNT, REGION),
                     QFS_OK);
    assert_int_equal(qfs_image_key_format(key, sizeof(key), &ready.request.image), QFS_OK);
    snprintf(id, sizeof(id), "ready:%s#%lld", key, (long long)g);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, text, (int)strlen(text)), NATS_OK);
    natsMsgHeader_Set(m, QFS_HDR_MSG_ID, id);
    natsMsgHeader_Set(m, QFS_HDR_TRACE_ID, ready.request.deploys[0].event_id);
    natsMsgHeader_Set(m, QFS_HDR_SCHEMA, qfs_schema_name(QFS_SCHEMA_SCAN_READY));
    /* The poller creates the stream as it starts: until then nothing answers the publish. */
    natsStatus s = NATS_NO_RESPONDERS;
    for (int i = 0; i < 300 && s == NATS_NO_RESPONDERS; i++) {
        jsPubAck *ack = NULL;
        jsErrCode jerr = 0;
        s = js_PublishMsg(&ack, e->js, m, NULL, &jerr);
        jsPubAck_Destroy(ack);
        if (s == NATS_NO_RESPONDERS) usleep(50 * 1000);
    }
    assert_int_equal(s, NATS_OK);
    natsMsg_Destroy(m);
    free(text);
    qfs_scan_ready_cleanup(&ready);
}

/* The stored messages on filter whose generation is g; *last gets a copy of the last one. */
static int outcomes(struct env *e, const char *filter, int64_t g, cJSON **last)
{
    cJSON *list = qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), filter);
    int n = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, list) {
        const cJSON *gen = cJSON_GetObjectItem(j, "generation");
        if (cJSON_IsNumber(gen) && (int64_t)gen->valuedouble == g) {
            n++;
            if (last) {
                cJSON_Delete(*last);
                *last = cJSON_Duplicate(j, true);
            }
        }
    }
    cJSON_Delete(list);
    return n;
}

struct wait_outcome {
    struct env *e;
    int64_t g;
};

static bool has_outcome(void *arg)
{
    struct wait_outcome *w = arg;
    return outcomes(w->e, "qfs.scans.completed.>", w->g, NULL) + outcomes(w->e, "qfs.scans.failed.>", w->g, NULL) > 0;
}

/* Waits for the outcome of generation g and returns it (the caller deletes it); *completed tells
 * which subject it was on. Exactly one outcome must exist. */
static cJSON *wait_outcome(struct env *e, int64_t g, bool *completed, int timeout_ms)
{
    struct wait_outcome w = {e, g};
    if (!qfs_test_eventually(has_outcome, &w, timeout_ms)) {
        qfs_test_proc_dump_log(e->poller, 40);
        fail_msg("no outcome for generation %lld", (long long)g);
    }
    cJSON *ok = NULL, *failed = NULL;
    int nok = outcomes(e, "qfs.scans.completed.>", g, &ok);
    int nfailed = outcomes(e, "qfs.scans.failed.>", g, &failed);
    assert_int_equal(nok + nfailed, 1);
    *completed = nok == 1;
    cJSON_Delete(nok ? failed : ok);
    return nok ? ok : failed;
}

/* ---- what the seed says ---------------------------------------------------------------------- */

struct expected {
    int64_t by_severity[6];
    int64_t total, patchable;
};

static void seed_counts(const char *repository, struct expected *x)
{
    memset(x, 0, sizeof(*x));
    char path[600];
    snprintf(path, sizeof(path), "%s/tests/sim/seed/default.json", qfs_test_env("QFS_SOURCE_DIR", "."));
    char *text = qfs_test_read_file(path, NULL);
    assert_non_null(text);
    cJSON *seed = cJSON_Parse(text);
    free(text);
    const cJSON *img;
    cJSON_ArrayForEach(img, cJSON_GetObjectItem(seed, "images")) {
        if (strcmp(cJSON_GetObjectItem(img, "account")->valuestring, ACCOUNT) != 0 ||
            strcmp(cJSON_GetObjectItem(img, "repository")->valuestring, repository) != 0)
            continue;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(img, "vulns")) {
            x->by_severity[(int)cJSON_GetObjectItem(v, "severity")->valuedouble]++;
            x->total++;
            if (cJSON_IsString(cJSON_GetObjectItem(v, "fixed_version"))) x->patchable++;
        }
    }
    cJSON_Delete(seed);
    assert_true(x->total > 0);
}

static int64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

static void assert_seed_counts(const cJSON *result, const char *repository)
{
    struct expected x;
    seed_counts(repository, &x);
    const cJSON *c = cJSON_GetObjectItem(result, "counts");
    assert_int_equal(num(c, "critical"), x.by_severity[5]);
    assert_int_equal(num(c, "high"), x.by_severity[4]);
    assert_int_equal(num(c, "medium"), x.by_severity[3]);
    assert_int_equal(num(c, "low"), x.by_severity[2]);
    assert_int_equal(num(c, "info"), x.by_severity[1]);
    assert_int_equal(num(result, "total"), x.total);
    assert_int_equal(num(result, "patchable"), x.patchable);
    const cJSON *findings = cJSON_GetObjectItem(result, "findings");
    assert_int_equal(cJSON_GetArraySize(findings), x.total);
    assert_int_equal(num(cJSON_GetArrayItem(findings, 0), "severity"), 5);
}

/* Counts the poller's "will retry" log lines (one per unfinished check). */
static int retries_logged(struct env *e)
{
    char *log = qfs_test_read_file(e->poller->log_path, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, "\"will retry\"")); p++) n++;
    free(log);
    return n;
}

struct wait_retries {
    struct env *e;
    int more_than;
};

static bool retried(void *arg)
{
    struct wait_retries *w = arg;
    return retries_logged(w->e) > w->more_than;
}

struct wait_calls {
    struct env *e;
    const char *endpoint;
};

static bool called(void *arg)
{
    struct wait_calls *w = arg;
    return calls(w->e, w->endpoint) > 0;
}

/* ---- the tests ------------------------------------------------------------------------------- */

static void test_one_schedule_one_result(void **state)
{
    struct env *e = *state;
    start_poller(e, "happy", NULL);
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1001);
    bool completed = false;
    cJSON *r = wait_outcome(e, 1001, &completed, 30000);
    assert_true(completed);
    assert_seed_counts(r, "web");
    assert_string_equal(cJSON_GetObjectItem(r, "registry_uuid")->valuestring, e->registry_uuid);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "deploys"), 0),
                                            "event_id")->valuestring, "evt-poller-1001");
    cJSON_Delete(r);
    assert_int_equal(calls(e, "schedule-create"), 1);
}

static void test_killed_mid_poll(void **state)
{
    struct env *e = *state;
    /* The scan takes a few seconds, so the poller is killed between submitting and the result. */
    admin(e, "POST", "/_sim/timings", "{\"scanMs\":5000}");
    start_poller(e, "before-kill", NULL);
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1002);
    struct wait_calls wc = {e, "schedule-create"};
    assert_true(qfs_test_eventually(called, &wc, 20000));
    /* Right after a check asked for redelivery: the message waits on the server, not in us. */
    struct wait_retries wr = {e, retries_logged(e)};
    assert_true(qfs_test_eventually(retried, &wr, 20000));
    qfs_test_proc_signal(e->poller, SIGKILL);
    qfs_test_proc_wait(e->poller, 5000, NULL);
    qfs_test_proc_stop(e->poller);
    e->poller = NULL;
    assert_int_equal(outcomes(e, "qfs.scans.completed.>", 1002, NULL), 0);

    start_poller(e, "after-kill", NULL);
    bool completed = false;
    cJSON *r = wait_outcome(e, 1002, &completed, 60000);
    assert_true(completed);
    assert_seed_counts(r, "web");
    cJSON_Delete(r);
    assert_int_equal(calls(e, "schedule-create"), 1); /* the restarted poller did not submit again */
}

static void test_failed_scan(void **state)
{
    struct env *e = *state;
    admin(e, "POST", "/_sim/scan-failures",
          "{\"repository\":\"web\",\"tag\":\"1.4.2\",\"stage\":\"scan\","
          "\"scanErrorCode\":\"SCAN_ENGINE_ERROR\",\"message\":\"layer extraction failed\"}");
    start_poller(e, "scan-failed", NULL);
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1003);
    bool completed = true;
    cJSON *f = wait_outcome(e, 1003, &completed, 30000);
    assert_false(completed);
    assert_string_equal(cJSON_GetObjectItem(f, "reason")->valuestring, "scan_failed");
    assert_string_equal(cJSON_GetObjectItem(f, "qualys_error_code")->valuestring, "SCAN_ENGINE_ERROR");
    cJSON_Delete(f);
    assert_int_equal(calls(e, "schedule-create"), 1);
}

static void test_scan_that_never_ends_times_out(void **state)
{
    struct env *e = *state;
    admin(e, "POST", "/_sim/timings", "{\"scanMs\":100000000}");
    start_poller(e, "timeout", "QFS_MAX_POLL_ATTEMPTS=3");
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1004);
    bool completed = true;
    cJSON *f = wait_outcome(e, 1004, &completed, 30000);
    assert_false(completed);
    assert_string_equal(cJSON_GetObjectItem(f, "reason")->valuestring, "timeout");
    assert_int_equal(num(f, "poll_attempts"), 3);
    cJSON_Delete(f);
    assert_int_equal(calls(e, "schedule-create"), 1);
}

static void test_throttling_and_errors_while_polling(void **state)
{
    struct env *e = *state;
    /* While the scan runs: 5xx answers on GET /images, then a 429 storm whose answers say to wait
     * for the window (shortened from 60 s) to pass, which the client does. */
    admin(e, "POST", "/_sim/timings", "{\"scanMs\":10000}");
    admin(e, "POST", "/_sim/limits", "{\"images\":{\"windowSec\":2}}");
    admin(e, "POST", "/_sim/faults",
          "[{\"endpoint\":\"images\",\"status\":503,\"count\":6},"
          "{\"endpoint\":\"image-vuln\",\"status\":502,\"count\":1}]");
    start_poller(e, "faults", NULL);
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1005);
    struct wait_status ws = {e, "images", "503", 6};
    assert_true(qfs_test_eventually(status_reached, &ws, 30000));
    admin(e, "POST", "/_sim/faults", "{\"endpoint\":\"images\",\"status\":429,\"count\":6}");
    bool completed = false;
    cJSON *r = wait_outcome(e, 1005, &completed, 90000);
    assert_true(completed);
    assert_seed_counts(r, "web");
    cJSON_Delete(r);
    assert_int_equal(calls(e, "schedule-create"), 1);
    /* Every fault was met, and outlived. */
    assert_int_equal(status_count(e, "images", "503"), 6);
    assert_int_equal(status_count(e, "images", "429"), 6);
    assert_int_equal(status_count(e, "image-vuln", "502"), 1);
}

static void test_token_expires_mid_poll(void **state)
{
    struct env *e = *state;
    admin(e, "POST", "/_sim/timings", "{\"scanMs\":3000}");
    start_poller(e, "jwt", NULL);
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1006);
    struct wait_calls wc = {e, "schedule-create"};
    assert_true(qfs_test_eventually(called, &wc, 20000));
    admin(e, "POST", "/_sim/expire-tokens", "{}");
    bool completed = false;
    cJSON *r = wait_outcome(e, 1006, &completed, 60000);
    assert_true(completed);
    assert_seed_counts(r, "web");
    cJSON_Delete(r);
    assert_int_equal(calls(e, "schedule-create"), 1);
    assert_true(calls(e, "auth") >= 2); /* the expired token was replaced */
}

static void test_untagged_digest(void **state)
{
    struct env *e = *state;
    start_poller(e, "untagged", NULL);
    /* legacy is in ECR by digest only: DescribeImages finds no tag to submit. */
    publish_ready(e, "legacy", NULL, LEGACY_DIGEST, 1007);
    bool completed = true;
    cJSON *f = wait_outcome(e, 1007, &completed, 30000);
    assert_false(completed);
    assert_string_equal(cJSON_GetObjectItem(f, "reason")->valuestring, "untagged_digest");
    cJSON_Delete(f);
    assert_int_equal(calls(e, "schedule-create"), 0);
}

static void test_sigterm_during_a_check(void **state)
{
    struct env *e = *state;
    /* The first GET /images hangs: SIGTERM finds the check waiting on Qualys, and the drain
     * deadline returns the message to the server. */
    admin(e, "POST", "/_sim/faults", "{\"endpoint\":\"images\",\"latencyMs\":20000,\"count\":1}");
    start_poller(e, "sigterm", "QFS_DRAIN_TIMEOUT_MS=500");
    publish_ready(e, "web", "1.4.2", WEB_DIGEST, 1008);
    struct wait_calls wc = {e, "schedule-create"};
    assert_true(qfs_test_eventually(called, &wc, 20000));
    qfs_test_proc_signal(e->poller, SIGTERM);
    int status = -1;
    assert_true(qfs_test_proc_wait(e->poller, 10000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    qfs_test_proc_stop(e->poller);
    e->poller = NULL;

    start_poller(e, "after-sigterm", NULL);
    bool completed = false;
    cJSON *r = wait_outcome(e, 1008, &completed, 60000);
    assert_true(completed);
    assert_seed_counts(r, "web");
    cJSON_Delete(r);
    assert_int_equal(calls(e, "schedule-create"), 1);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_schedule_one_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_mid_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_that_never_ends_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttling_and_errors_while_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_expires_mid_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untagged_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_during_a_check, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
