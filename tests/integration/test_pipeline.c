/* The whole pipeline over the local stack: an ECS event delivered by EventBridge goes through the
 * six services to one Qualys schedule, one scan result and one SNS message whose counts are what
 * qualys-sim was seeded with; redeploys within the TTL make no Qualys call; a burst of deploys of
 * a few images scans each image once and names every deploy; Qualys faults do not stop a scan,
 * and a scan that never ends becomes a timeout notification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define HUB "111122223333"
#define REGION "eu-west-1"
#define CACHE_TTL_S 10

static const char *const services[] = {"ingest", "parser", "cache", "registry", "scanner-poller",
                                       "notifier"};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

static const char *const service_env[] = {
    "QFS_HUB_ACCOUNT_ID=" HUB, "QFS_LOG_LEVEL=debug", "QFS_SQS_WAIT_SECONDS=1",
    "QFS_POLL_INTERVAL_SECONDS=1", "QFS_POLL_FIRST_DELAYS=1", "QFS_MAX_POLL_ATTEMPTS=8",
    "QFS_CACHE_TTL_SECONDS=10", "QFS_NOTIFY_MIN_SEVERITY=high", "QFS_ACK_WAIT=30s",
    NULL};

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *svc[NSERVICES];
};

static struct env *E;

static int group_setup(void **state)
{
    E = calloc(1, sizeof(*E));
    E->dir = qfs_test_tmpdir("pipeline");
    qfs_test_stack_up(&E->stack, E->dir);
    for (size_t i = 0; i < NSERVICES; i++)
        E->svc[i] = qfs_test_service_start(&E->stack, services[i], NULL, service_env);
    return 0;
}

static int group_teardown(void **state)
{
    for (size_t i = 0; i < NSERVICES; i++) qfs_test_proc_stop(E->svc[i]);
    qfs_test_stack_down(&E->stack);
    qfs_test_rmrf(E->dir);
    free(E->dir);
    free(E);
    return 0;
}

static void dump_logs(void)
{
    for (size_t i = 0; i < NSERVICES; i++) qfs_test_proc_dump_log(E->svc[i], 15);
}

static const char *aws_url(void) { return qfs_test_stack_get(&E->stack, "QFS_SIM_AWS_URL"); }
static const char *qualys_url(void) { return qfs_test_stack_get(&E->stack, "QFS_SIM_QUALYS_URL"); }

/* Puts an image into ECR (aws-sim) and into what a Qualys registry scan finds (qualys-sim), with
 * `critical` severity-5 and `high` severity-4 findings. */
static void seed_image(const char *account, const char *region, const char *repo, const char *tag,
                       int critical, int high)
{
    static int n;
    n++;
    char digest[80], sha[80];
    snprintf(digest, sizeof(digest), "sha256:%064x", 0xd1000 + n);
    snprintf(sha, sizeof(sha), "%064x", 0xc0f000 + n);
    cJSON *img = cJSON_CreateObject();
    cJSON_AddStringToObject(img, "account", account);
    cJSON_AddStringToObject(img, "region", region);
    cJSON_AddStringToObject(img, "repository", repo);
    cJSON *tags = cJSON_AddArrayToObject(img, "tags");
    cJSON_AddItemToArray(tags, cJSON_CreateString(tag));
    cJSON_AddStringToObject(img, "digest", digest);
    cJSON_AddStringToObject(img, "image_sha", sha);
    cJSON_AddNumberToObject(img, "size", 1000000);
    cJSON_AddStringToObject(img, "operating_system", "Alpine Linux 3.19.1");
    cJSON_AddNumberToObject(img, "pushed_at", 1777629600);
    cJSON *vulns = cJSON_AddArrayToObject(img, "vulns");
    for (int i = 0; i < critical + high; i++) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddNumberToObject(v, "qid", 900000 + n * 100 + i);
        cJSON_AddNumberToObject(v, "severity", i < critical ? 5 : 4);
        cJSON_AddStringToObject(v, "title", i < critical ? "Remote code execution" : "Privilege escalation");
        cJSON *cves = cJSON_AddArrayToObject(v, "cves");
        char cve[32];
        snprintf(cve, sizeof(cve), "CVE-2026-%d", 10000 + n * 100 + i);
        cJSON_AddItemToArray(cves, cJSON_CreateString(cve));
        cJSON_AddStringToObject(v, "package", "openssl");
        cJSON_AddStringToObject(v, "installed_version", "3.1.4-r2");
        cJSON_AddStringToObject(v, "fixed_version", "3.1.4-r5");
        cJSON_AddItemToArray(vulns, v);
    }
    qfs_test_seed_image(&E->stack, img);
    cJSON_Delete(img);
}

/* A RegisterTaskDefinition in account with one container per image (images: NULL-terminated). */
static void deploy(const char *event_id, const char *account, const char *const images[])
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "version", "0");
    cJSON_AddStringToObject(ev, "id", event_id);
    cJSON_AddStringToObject(ev, "detail-type", "AWS API Call via CloudTrail");
    cJSON_AddStringToObject(ev, "source", "aws.ecs");
    cJSON_AddStringToObject(ev, "account", account);
    cJSON_AddStringToObject(ev, "time", "2026-05-01T10:00:00Z");
    cJSON_AddStringToObject(ev, "region", REGION);
    cJSON_AddItemToObject(ev, "resources", cJSON_CreateArray());
    cJSON *d = cJSON_AddObjectToObject(ev, "detail");
    cJSON_AddStringToObject(d, "eventVersion", "1.11");
    cJSON_AddStringToObject(d, "eventSource", "ecs.amazonaws.com");
    cJSON_AddStringToObject(d, "eventName", "RegisterTaskDefinition");
    cJSON_AddStringToObject(d, "awsRegion", REGION);
    cJSON_AddStringToObject(d, "eventTime", "2026-05-01T10:00:00Z");
    cJSON_AddStringToObject(d, "recipientAccountId", account);
    cJSON *ui = cJSON_AddObjectToObject(d, "userIdentity");
    char arn[128];
    snprintf(arn, sizeof(arn), "arn:aws:sts::%s:assumed-role/ci-deploy/run-1", account);
    cJSON_AddStringToObject(ui, "arn", arn);
    cJSON *td = cJSON_AddObjectToObject(cJSON_AddObjectToObject(d, "responseElements"), "taskDefinition");
    char tdarn[160];
    snprintf(tdarn, sizeof(tdarn), "arn:aws:ecs:%s:%s:task-definition/app:1", REGION, account);
    cJSON_AddStringToObject(td, "taskDefinitionArn", tdarn);
    cJSON *defs = cJSON_AddArrayToObject(td, "containerDefinitions");
    for (size_t i = 0; images[i]; i++) {
        cJSON *c = cJSON_CreateObject();
        char name[32];
        snprintf(name, sizeof(name), "c%zu", i);
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddStringToObject(c, "image", images[i]);
        cJSON_AddItemToArray(defs, c);
    }
    char *text = cJSON_PrintUnformatted(ev);
    qfs_test_deliver_event(&E->stack, text);
    free(text);
    cJSON_Delete(ev);
}

/* Qualys schedule POSTs whose body names repo. */
static int schedules_for(const char *repo)
{
    char url[600];
    snprintf(url, sizeof(url), "%s/_sim/state", qualys_url());
    cJSON *st = qfs_test_http_json("GET", url, NULL);
    int n = 0;
    /* Count the schedules that target the repository (one per POST). */
    const cJSON *scheds = st ? cJSON_GetObjectItem(st, "schedules") : NULL;
    const cJSON *s;
    cJSON_ArrayForEach(s, scheds) {
        char *one = cJSON_PrintUnformatted(s);
        char needle[200];
        snprintf(needle, sizeof(needle), "\"repo\":\"%s\"", repo);
        if (strstr(one, needle)) n++;
        free(one);
    }
    cJSON_Delete(st);
    return n;
}

static int qualys_calls(void)
{
    char url[600];
    snprintf(url, sizeof(url), "%s/_sim/calls", qualys_url());
    cJSON *c = qfs_test_http_json("GET", url, NULL);
    int n = c ? cJSON_GetObjectItem(c, "total")->valueint : -1;
    cJSON_Delete(c);
    return n;
}

/* SNS messages whose subject mentions what. */
static cJSON *sns_messages(const char *what)
{
    char url[600];
    snprintf(url, sizeof(url), "%s/_sim/sns/messages", aws_url());
    cJSON *all = qfs_test_http_json("GET", url, NULL);
    cJSON *out = cJSON_CreateArray();
    const cJSON *m;
    const cJSON *list = all ? cJSON_GetObjectItem(all, "messages") : NULL;
    cJSON_ArrayForEach(m, list) {
        const cJSON *subject = cJSON_GetObjectItem(m, "subject");
        if (cJSON_IsString(subject) && strstr(subject->valuestring, what))
            cJSON_AddItemToArray(out, cJSON_Duplicate(m, true));
    }
    cJSON_Delete(all);
    return out;
}

/* Stored messages on filter whose repository is repo. */
static cJSON *stored_for(const char *filter, const char *repo)
{
    cJSON *all = qfs_test_stored(qfs_test_stack_get(&E->stack, "QFS_NATS_URL"), filter);
    cJSON *out = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, all) {
        const cJSON *r = cJSON_GetObjectItem(m, "repository");
        if (cJSON_IsString(r) && strcmp(r->valuestring, repo) == 0)
            cJSON_AddItemToArray(out, cJSON_Duplicate(m, true));
    }
    cJSON_Delete(all);
    return out;
}

struct count_arg {
    const char *filter, *repo, *sns;
    int want;
};

static bool enough(void *arg)
{
    struct count_arg *a = arg;
    cJSON *l = a->sns ? sns_messages(a->sns) : stored_for(a->filter, a->repo);
    int n = cJSON_GetArraySize(l);
    cJSON_Delete(l);
    return n >= a->want;
}

static void wait_count(const char *filter, const char *repo, const char *sns, int want, int timeout_ms)
{
    struct count_arg a = {filter, repo, sns, want};
    if (!qfs_test_eventually(enough, &a, timeout_ms)) {
        dump_logs();
        fail_msg("fewer than %d %s for %s", want, sns ? "SNS messages" : filter, sns ? sns : repo);
    }
}

static int count_now(const char *filter, const char *repo)
{
    cJSON *l = stored_for(filter, repo);
    int n = cJSON_GetArraySize(l);
    cJSON_Delete(l);
    return n;
}

static void test_one_event_one_scan_one_message(void **state)
{
    seed_image(HUB, REGION, "e2e-one", "1.0", 2, 5);
    const char *images[] = {HUB ".dkr.ecr." REGION ".amazonaws.com/e2e-one:1.0", "nginx:1.25", NULL};
    deploy("evt-e2e-one", HUB, images);

    wait_count(NULL, NULL, "e2e-one:1.0", 1, 60000);
    cJSON *msgs = sns_messages("e2e-one:1.0");
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    const cJSON *m = cJSON_GetArrayItem(msgs, 0);
    assert_non_null(strstr(cJSON_GetObjectItem(m, "subject")->valuestring, "2C/5H"));
    cJSON *body = cJSON_Parse(cJSON_GetObjectItem(m, "message")->valuestring);
    assert_non_null(body);
    char *text = cJSON_PrintUnformatted(body);
    /* The counts are the seed's, the deploy is named, and the Docker Hub image is listed as not
     * scanned. */
    assert_non_null(strstr(text, "\"critical\":2"));
    assert_non_null(strstr(text, "\"high\":5"));
    assert_non_null(strstr(text, "evt-e2e-one"));
    assert_non_null(strstr(text, "nginx:1.25"));
    assert_non_null(strstr(text, "not_ecr"));
    free(text);
    cJSON_Delete(body);
    cJSON_Delete(msgs);

    assert_int_equal(schedules_for("e2e-one"), 1);
    assert_int_equal(count_now("qfs.scans.completed.>", "e2e-one"), 1);
    assert_int_equal(count_now("qfs.scans.failed.>", "e2e-one"), 0);
}

static bool cached_skip_for(void *arg)
{
    const char *event_id = arg;
    /* Skip records name the image as written, not its repository. */
    cJSON *l = qfs_test_stored(qfs_test_stack_get(&E->stack, "QFS_NATS_URL"), "qfs.scans.skipped.>");
    bool found = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, l) {
        if (strcmp(cJSON_GetObjectItem(m, "event_id")->valuestring, event_id) == 0 &&
            strcmp(cJSON_GetObjectItem(m, "reason")->valuestring, "cached") == 0)
            found = true;
    }
    cJSON_Delete(l);
    return found;
}

static void test_redeploy_within_ttl_makes_no_qualys_call(void **state)
{
    seed_image(HUB, REGION, "e2e-ttl", "2.0", 1, 0);
    const char *images[] = {HUB ".dkr.ecr." REGION ".amazonaws.com/e2e-ttl:2.0", NULL};
    deploy("evt-ttl-1", HUB, images);
    wait_count("qfs.scans.completed.>", "e2e-ttl", NULL, 1, 60000);
    assert_int_equal(schedules_for("e2e-ttl"), 1);

    /* Within the TTL: a cached skip, and not a single Qualys call. */
    int before = qualys_calls();
    deploy("evt-ttl-2", HUB, images);
    if (!qfs_test_eventually(cached_skip_for, "evt-ttl-2", 20000)) {
        dump_logs();
        fail_msg("no cached skip for the redeploy");
    }
    assert_int_equal(qualys_calls(), before);
    assert_int_equal(count_now("qfs.scans.requested.>", "e2e-ttl"), 1);

    /* After the TTL: scanned again. */
    sleep(CACHE_TTL_S + 1);
    deploy("evt-ttl-3", HUB, images);
    wait_count("qfs.scans.completed.>", "e2e-ttl", NULL, 2, 60000);
    assert_int_equal(schedules_for("e2e-ttl"), 2);
}

static void test_burst_of_deploys_scans_each_image_once(void **state)
{
    char repos[5][32], refs[5][160];
    for (int i = 0; i < 5; i++) {
        snprintf(repos[i], sizeof(repos[i]), "e2e-burst-%d", i);
        snprintf(refs[i], sizeof(refs[i]), HUB ".dkr.ecr." REGION ".amazonaws.com/%s:1", repos[i]);
        seed_image(HUB, REGION, repos[i], "1", 1, 1);
    }
    /* 50 deploys from 10 accounts, 10 of each image, all at once. */
    for (int i = 0; i < 50; i++) {
        char id[32], account[16];
        snprintf(id, sizeof(id), "evt-burst-%02d", i);
        snprintf(account, sizeof(account), "5000000000%02d", i % 10);
        const char *images[] = {refs[i % 5], NULL};
        deploy(id, account, images);
    }
    for (int i = 0; i < 5; i++) wait_count("qfs.notifications.>", repos[i], NULL, 1, 90000);
    bool named[50] = {false};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(schedules_for(repos[i]), 1);
        assert_int_equal(count_now("qfs.scans.completed.>", repos[i]), 1);
        cJSON *notes = stored_for("qfs.notifications.>", repos[i]);
        assert_int_equal(cJSON_GetArraySize(notes), 1);
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(cJSON_GetArrayItem(notes, 0), "deploys")) {
            int k = -1;
            if (sscanf(cJSON_GetObjectItem(d, "event_id")->valuestring, "evt-burst-%d", &k) == 1 &&
                k >= 0 && k < 50)
                named[k] = true;
        }
        cJSON_Delete(notes);
    }
    /* Every deploy is named by the notification of its image. */
    for (int k = 0; k < 50; k++)
        if (!named[k]) fail_msg("deploy evt-burst-%02d is named by no notification", k);
}

static void test_qualys_faults_do_not_stop_a_scan(void **state)
{
    seed_image(HUB, REGION, "e2e-faults", "1", 1, 2);
    /* A 5-second window on the image calls, so the waits a 429 asks for stay short. */
    qfs_test_http_ok("POST", qualys_url(), "/_sim/limits", "{\"images\":{\"limit\":5000,\"windowSec\":5}}");
    /* 429 storms and 5xx bursts on the image calls, slow answers, and every JWT expired. */
    qfs_test_http_ok("POST", qualys_url(), "/_sim/faults",
         "[{\"endpoint\":[\"images\",\"image-detail\",\"image-vuln\"],\"status\":429,\"rate\":0.4,"
         "\"headers\":{\"X-RateLimit-ToWait-Sec\":\"1\"}},"
         "{\"endpoint\":[\"images\",\"image-vuln\"],\"status\":503,\"next\":3},"
         "{\"endpoint\":\"schedule-create\",\"latencyMs\":1500},"
         "{\"endpoint\":\"*\",\"expireTokens\":true,\"next\":1}]");
    const char *images[] = {HUB ".dkr.ecr." REGION ".amazonaws.com/e2e-faults:1", NULL};
    deploy("evt-faults", HUB, images);
    wait_count("qfs.scans.completed.>", "e2e-faults", NULL, 1, 90000);
    char url[600];
    snprintf(url, sizeof(url), "%s/_sim/faults", qualys_url());
    qfs_test_http("DELETE", url, NULL, NULL);
    qfs_test_http_ok("POST", qualys_url(), "/_sim/limits", "{\"images\":{\"limit\":5000,\"windowSec\":60}}");
    assert_int_equal(schedules_for("e2e-faults"), 1);
    wait_count(NULL, NULL, "e2e-faults:1", 1, 30000);
}

static void test_scan_that_never_ends_is_a_timeout_notification(void **state)
{
    seed_image(HUB, REGION, "e2e-never", "1", 1, 0);
    qfs_test_http_ok("POST", qualys_url(), "/_sim/timings", "{\"scanMs\":600000}");
    const char *images[] = {HUB ".dkr.ecr." REGION ".amazonaws.com/e2e-never:1", NULL};
    deploy("evt-never", HUB, images);
    wait_count("qfs.scans.failed.>", "e2e-never", NULL, 1, 90000);
    cJSON *f = stored_for("qfs.scans.failed.>", "e2e-never");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "reason")->valuestring, "timeout");
    cJSON_Delete(f);
    wait_count(NULL, NULL, "e2e-never:1", 1, 30000);
    cJSON *msgs = sns_messages("e2e-never:1");
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "subject")->valuestring, "timeout"));
    cJSON_Delete(msgs);
}

/* Publishes body to subject through JetStream (the test's own connection). */
static void publish_raw(const char *subject, const char *body, const char *msg_id)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, qfs_test_stack_get(&E->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    qfs_test_publish(js, subject, body, msg_id, NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

struct dlq_arg {
    const char *service, *payload;
};

static bool dlq_has(void *arg)
{
    struct dlq_arg *a = arg;
    char filter[64];
    snprintf(filter, sizeof(filter), "qfs.dlq.%s", a->service);
    cJSON *l = qfs_test_stored(qfs_test_stack_get(&E->stack, "QFS_NATS_URL"), filter);
    bool found = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, l) {
        const cJSON *p = cJSON_GetObjectItem(m, "payload");
        if (cJSON_IsString(p) && strcmp(p->valuestring, a->payload) == 0) found = true;
    }
    cJSON_Delete(l);
    return found;
}

static void test_poison_at_every_stage_lands_in_its_dlq(void **state)
{
    /* A message no service can read, on every subject a service consumes: each ends in that
     * service's DLQ with its payload intact, and the pipeline goes on. */
    static const struct {
        const char *subject, *service;
    } stages[] = {
        {"qfs.events." HUB "." REGION, "parser"},
        {"qfs.images." HUB "." REGION, "cache"},
        {"qfs.scans.requested." HUB "." REGION, "registry"},
        {"qfs.scans.ready." HUB "." REGION, "scanner-poller"},
        {"qfs.scans.completed." HUB "." REGION, "notifier"},
        {"qfs.scans.failed." HUB "." REGION, "notifier"},
    };
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        char body[128], id[64];
        snprintf(body, sizeof(body), "{\"poison\": %zu, \"schema\": \"not a qfs message\"}", i);
        snprintf(id, sizeof(id), "poison-%zu", i);
        publish_raw(stages[i].subject, body, id);
        struct dlq_arg a = {stages[i].service, body};
        if (!qfs_test_eventually(dlq_has, &a, 30000)) {
            dump_logs();
            fail_msg("no DLQ entry of %s for the poison on %s", stages[i].service, stages[i].subject);
        }
    }
    /* The cache also received the completed/failed poison: its DLQ has them too. */
    struct dlq_arg c = {"cache", "{\"poison\": 4, \"schema\": \"not a qfs message\"}"};
    assert_true(qfs_test_eventually(dlq_has, &c, 30000));
    for (size_t i = 0; i < NSERVICES; i++) assert_true(qfs_test_proc_alive(E->svc[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_event_one_scan_one_message),
        cmocka_unit_test(test_redeploy_within_ttl_makes_no_qualys_call),
        cmocka_unit_test(test_burst_of_deploys_scans_each_image_once),
        cmocka_unit_test(test_qualys_faults_do_not_stop_a_scan),
        cmocka_unit_test(test_scan_that_never_ends_is_a_timeout_notification),
        cmocka_unit_test(test_poison_at_every_stage_lands_in_its_dlq),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
