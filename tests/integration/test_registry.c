/* qfs-registry over the local stack (nats-server, redis-server, qualys-sim): scan requests for a
 * new account/region, sent at once, make one Qualys registry and one connector and come out as
 * scan ready messages with its UUID; later requests are answered from the store without listing
 * /registry; a 403 becomes qualys_denied failures; 500s (answers lost after the create, creates
 * refused) still end with one registry; two processes racing on a new account make one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "qfs/proto_scan.h"
#include "qfs/util.h"
#include "testlib.h"

#define REGION "eu-west-1"
#define WAIT_MS 40000

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *reg, *reg_b;
    natsConnection *nc;
    jsCtx *js;
    int64_t generation;
};

/* Username and password only: the stack also names a Secrets Manager secret, and one source is
 * allowed at a time. */
static const char *const service_env[] = {"QFS_LOG_LEVEL=debug", NULL};

/* ---- qualys-sim ------------------------------------------------------------------------------- */

static cJSON *sim_get(struct env *e, const char *path)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", qfs_test_stack_get(&e->stack, "QFS_SIM_QUALYS_URL"), path);
    cJSON *j = qfs_test_http_json("GET", url, NULL);
    if (!j) fail_msg("GET %s failed", path);
    return j;
}

static void sim_send(struct env *e, const char *method, const char *path, const char *json)
{
    qfs_test_http_ok(method, qfs_test_stack_get(&e->stack, "QFS_SIM_QUALYS_URL"), path, json);
}

static char *registry_uri(const char *account)
{
    return qfs_xasprintf("https://%s.dkr.ecr.%s.amazonaws.com", account, REGION);
}

/* The UUIDs of the registries qualys-sim holds for account (count returned, first in *uuid). */
static int sim_registries(struct env *e, const char *account, char *uuid, size_t n)
{
    cJSON *state = sim_get(e, "/_sim/state");
    char *uri = registry_uri(account);
    int count = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(state, "registries")) {
        const cJSON *u = cJSON_GetObjectItem(r, "registryUri");
        if (!cJSON_IsString(u) || strcmp(u->valuestring, uri) != 0) continue;
        if (count++ == 0 && uuid) snprintf(uuid, n, "%s", cJSON_GetObjectItem(r, "registryUuid")->valuestring);
    }
    free(uri);
    cJSON_Delete(state);
    return count;
}

static int sim_connectors(struct env *e, const char *account)
{
    cJSON *state = sim_get(e, "/_sim/state");
    char *arn = qfs_xasprintf("arn:aws:iam::%s:role/QualysEcrScanRole", account);
    int count = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(state, "connectors")) {
        const cJSON *a = cJSON_GetObjectItem(c, "arn");
        if (cJSON_IsString(a) && strcmp(a->valuestring, arn) == 0) count++;
    }
    free(arn);
    cJSON_Delete(state);
    return count;
}

/* The sequence number of the last Qualys call so far. */
static int64_t sim_calls_seq(struct env *e)
{
    cJSON *calls = sim_get(e, "/_sim/calls");
    int64_t total = (int64_t)cJSON_GetObjectItem(calls, "total")->valuedouble;
    cJSON_Delete(calls);
    return total;
}

/* Calls to endpoint after seq `since` whose query or path names account (NULL: any). */
static int sim_calls(struct env *e, int64_t since, const char *endpoint, const char *account)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/calls?since=%" PRId64 "&endpoint=%s", since, endpoint);
    cJSON *calls = sim_get(e, path);
    int count = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(calls, "calls")) {
        const cJSON *q = cJSON_GetObjectItem(c, "rawQuery");
        const cJSON *p = cJSON_GetObjectItem(c, "path");
        if (!account || (cJSON_IsString(q) && strstr(q->valuestring, account)) ||
            (cJSON_IsString(p) && strstr(p->valuestring, account)))
            count++;
    }
    cJSON_Delete(calls);
    return count;
}

/* ---- the bus ---------------------------------------------------------------------------------- */

static bool consumer_exists(void *arg)
{
    struct env *e = arg;
    return qfs_test_consumer_exists(e->js, "registry-requests");
}

/* Publishes a scan request for repository:1.0 of account's ECR in REGION, as qfs-cache would. */
static void publish_request(struct env *e, const char *account, const char *repository)
{
    int64_t g = ++e->generation;
    char host[128], image[256], event_id[64], subject[QFS_SUBJECT_MAX], key[QFS_IMAGE_KEY_MAX];
    snprintf(host, sizeof(host), "%s.dkr.ecr.%s.amazonaws.com", account, REGION);
    snprintf(image, sizeof(image), "%s/%s:1.0", host, repository);
    snprintf(event_id, sizeof(event_id), "evt-registry-%" PRId64, g);
    char *containers[] = {"app"};
    struct qfs_deploy dep = {
        .event_name = "UpdateService",
        .event_id = event_id,
        .event_time = "2026-05-01T10:00:00Z",
        .cluster = "prod",
        .service = "web",
        .containers = containers,
        .ncontainers = 1,
    };
    snprintf(dep.event_account, sizeof(dep.event_account), "%s", account);
    snprintf(dep.event_region, sizeof(dep.event_region), "%s", REGION);
    struct qfs_scan_request req = {
        .image = {.registry = host, .repository = (char *)repository, .tag = "1.0", .image = image},
        .generation = g,
        .requested_at = "2026-05-01T10:00:00.000Z",
        .deploys = &dep,
        .ndeploys = 1,
    };
    snprintf(req.image.account, sizeof(req.image.account), "%s", account);
    snprintf(req.image.region, sizeof(req.image.region), "%s", REGION);
    char *json = NULL;
    assert_int_equal(qfs_scan_request_encode(&req, &json), QFS_OK);
    assert_int_equal(qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_REQUESTED, account, REGION),
                     QFS_OK);
    assert_int_equal(qfs_image_key_format(key, sizeof(key), &req.image), QFS_OK);
    char *id = qfs_xasprintf("request:%s#%" PRId64, key, g);
    qfs_test_publish(e->js, subject, json, id, event_id, "qfs.scan_request.v1");
    free(id);
    free(json);
}

/* Every stored message on filter, read through an ephemeral consumer from the start. */
static cJSON *stored(struct env *e, const char *filter)
{
    return qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), filter);
}

struct wait_arg {
    struct env *e;
    char filter[128];
    int want;
};

static bool has_count(void *arg)
{
    struct wait_arg *w = arg;
    cJSON *list = stored(w->e, w->filter);
    int n = cJSON_GetArraySize(list);
    cJSON_Delete(list);
    return n >= w->want;
}

static void dump_logs(struct env *e)
{
    qfs_test_proc_dump_log(e->reg, 40);
    if (e->reg_b) qfs_test_proc_dump_log(e->reg_b, 40);
}

/* Waits for want messages of kind for account and returns them all. */
static cJSON *wait_for(struct env *e, const char *kind, const char *account, int want)
{
    struct wait_arg w = {.e = e, .want = want};
    snprintf(w.filter, sizeof(w.filter), "qfs.scans.%s.%s.%s", kind, account, REGION);
    if (!qfs_test_eventually(has_count, &w, WAIT_MS)) {
        dump_logs(e);
        fail_msg("fewer than %d messages on %s", want, w.filter);
    }
    return stored(e, w.filter);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("registry");
    qfs_test_stack_up(&e->stack, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    e->reg = qfs_test_service_start(&e->stack, "registry", NULL, service_env);
    if (!qfs_test_eventually(consumer_exists, e, 20000)) {
        dump_logs(e);
        fail_msg("qfs-registry did not create its consumer");
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    qfs_test_proc_stop(e->reg);
    qfs_test_proc_stop(e->reg_b);
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Every message of list carries the same registry_uuid, which is uuid; returns the count. */
static int all_with_uuid(const cJSON *list, const char *uuid)
{
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *u = cJSON_GetObjectItem(m, "registry_uuid");
        assert_true(cJSON_IsString(u));
        assert_string_equal(u->valuestring, uuid);
        assert_string_equal(cJSON_GetObjectItem(m, "schema")->valuestring, "qfs.scan_ready.v1");
        assert_non_null(strstr(cJSON_GetObjectItem(m, "_msg_id")->valuestring, "ready:"));
        n++;
    }
    return n;
}

/* ---- tests ---------------------------------------------------------------------------------- */

#define ACCT_NEW "555566667777"

static void test_burst_for_a_new_account_makes_one_registry(void **state)
{
    struct env *e = *state;
    int64_t since = sim_calls_seq(e);
    /* A slow first listing keeps the lookup open while the burst arrives. */
    sim_send(e, "POST", "/_sim/faults", "{\"endpoint\":\"registry-list\",\"latencyMs\":600,\"count\":1}");
    char repo[32];
    for (int i = 0; i < 10; i++) {
        snprintf(repo, sizeof(repo), "burst-%d", i);
        publish_request(e, ACCT_NEW, repo);
    }
    cJSON *ready = wait_for(e, "ready", ACCT_NEW, 10);
    char uuid[64] = "";
    assert_int_equal(sim_registries(e, ACCT_NEW, uuid, sizeof(uuid)), 1);
    assert_int_equal(all_with_uuid(ready, uuid), 10);
    cJSON_Delete(ready);
    assert_int_equal(sim_connectors(e, ACCT_NEW), 1);
    assert_int_equal(sim_calls(e, since, "registry-create", NULL), 1);
    assert_int_equal(sim_calls(e, since, "aws-connector-create", NULL), 1);
    /* One lookup for the ten: one listing, no re-list. */
    assert_int_equal(sim_calls(e, since, "registry-list", ACCT_NEW), 1);
    sim_send(e, "DELETE", "/_sim/faults", NULL);
}

static void test_known_account_is_answered_from_the_store(void **state)
{
    struct env *e = *state;
    int64_t since = sim_calls_seq(e);
    char repo[32];
    for (int i = 0; i < 5; i++) {
        snprintf(repo, sizeof(repo), "again-%d", i);
        publish_request(e, ACCT_NEW, repo);
    }
    cJSON *ready = wait_for(e, "ready", ACCT_NEW, 15);
    char uuid[64] = "";
    assert_int_equal(sim_registries(e, ACCT_NEW, uuid, sizeof(uuid)), 1);
    assert_int_equal(all_with_uuid(ready, uuid), 15);
    cJSON_Delete(ready);
    /* Not one call to /registry (or anything else) for the second batch. */
    assert_int_equal(sim_calls(e, since, "registry-list", NULL), 0);
    assert_int_equal(sim_calls(e, since, "registry-create", NULL), 0);
    assert_int_equal(sim_calls_seq(e), since);
}

#define ACCT_DENIED "666677778888"

static void test_403_is_qualys_denied(void **state)
{
    struct env *e = *state;
    sim_send(e, "POST", "/_sim/faults", "{\"endpoint\":[\"registry-list\",\"registry-create\"],\"status\":403}");
    publish_request(e, ACCT_DENIED, "denied-a");
    publish_request(e, ACCT_DENIED, "denied-b");
    publish_request(e, ACCT_DENIED, "denied-c");
    cJSON *failed = wait_for(e, "failed", ACCT_DENIED, 3);
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, failed) {
        assert_string_equal(cJSON_GetObjectItem(m, "reason")->valuestring, "qualys_denied");
        assert_string_equal(cJSON_GetObjectItem(m, "qualys_error_code")->valuestring, "403 FORBIDDEN");
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(m, "registry_uuid")));
        assert_non_null(strstr(cJSON_GetObjectItem(m, "_msg_id")->valuestring, "outcome:"));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "deploys")), 1);
        n++;
    }
    assert_int_equal(n, 3);
    cJSON_Delete(failed);
    sim_send(e, "DELETE", "/_sim/faults", NULL);
    assert_int_equal(sim_registries(e, ACCT_DENIED, NULL, 0), 0);
    cJSON *ready = stored(e, "qfs.scans.ready." ACCT_DENIED ".>");
    assert_int_equal(cJSON_GetArraySize(ready), 0);
    cJSON_Delete(ready);
}

#define ACCT_LOST "777788889999"
#define ACCT_REFUSED "888899990000"

static void test_500_bursts_still_make_one_registry(void **state)
{
    struct env *e = *state;
    int64_t since = sim_calls_seq(e);
    /* ACCT_LOST: the connector and the registry are created but both answers are 500s, and
     * listings fail twice (the client retries GETs). ACCT_REFUSED: the first create is a 500 that
     * was not applied, so the request is retried later and creates it then. */
    sim_send(e, "POST", "/_sim/faults",
             "[{\"endpoint\":\"registry-create\",\"status\":500,\"phase\":\"after\",\"count\":1},"
             "{\"endpoint\":\"aws-connector-create\",\"status\":503,\"phase\":\"after\",\"count\":1},"
             "{\"endpoint\":\"registry-list\",\"status\":500,\"count\":2}]");
    for (int i = 0; i < 4; i++) {
        char repo[32];
        snprintf(repo, sizeof(repo), "lost-%d", i);
        publish_request(e, ACCT_LOST, repo);
    }
    cJSON *ready = wait_for(e, "ready", ACCT_LOST, 4);
    char uuid[64] = "";
    assert_int_equal(sim_registries(e, ACCT_LOST, uuid, sizeof(uuid)), 1);
    assert_int_equal(all_with_uuid(ready, uuid), 4);
    cJSON_Delete(ready);
    assert_int_equal(sim_connectors(e, ACCT_LOST), 1);
    assert_int_equal(sim_calls(e, since, "registry-create", NULL), 1);

    since = sim_calls_seq(e);
    sim_send(e, "POST", "/_sim/faults", "{\"endpoint\":\"registry-create\",\"status\":500,\"count\":1}");
    for (int i = 0; i < 3; i++) {
        char repo[32];
        snprintf(repo, sizeof(repo), "refused-%d", i);
        publish_request(e, ACCT_REFUSED, repo);
    }
    ready = wait_for(e, "ready", ACCT_REFUSED, 3);
    assert_int_equal(sim_registries(e, ACCT_REFUSED, uuid, sizeof(uuid)), 1);
    assert_int_equal(all_with_uuid(ready, uuid), 3);
    cJSON_Delete(ready);
    /* The refused create and the one after the retry; each preceded by a listing. */
    assert_int_equal(sim_calls(e, since, "registry-create", NULL), 2);
    assert_true(sim_calls(e, since, "registry-list", ACCT_REFUSED) >= 3);
    cJSON *failed = stored(e, "qfs.scans.failed." ACCT_REFUSED ".>");
    assert_int_equal(cJSON_GetArraySize(failed), 0);
    cJSON_Delete(failed);
    sim_send(e, "DELETE", "/_sim/faults", NULL);
}

#define ACCT_RACE "999900001111"

static bool log_has(const struct qfs_test_proc *p, const char *text)
{
    char *log = qfs_test_read_file(p->log_path, NULL);
    bool found = log && strstr(log, text);
    free(log);
    return found;
}

/* SIGTERM, then the process must exit by itself with status 0 (no crash, no leak under ASan,
 * no handle left open). */
static void stop_clean(struct env *e, struct qfs_test_proc **pp)
{
    struct qfs_test_proc *p = *pp;
    if (!p) return;
    qfs_test_proc_signal(p, SIGTERM);
    int status = 0;
    bool exited = qfs_test_proc_wait(p, 10000, &status);
    bool clean = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char name[64];
    snprintf(name, sizeof(name), "%s", p->name);
    if (!clean) qfs_test_proc_dump_log(p, 40);
    qfs_test_proc_stop(p);
    *pp = NULL;
    if (!clean) fail_msg("%s did not stop cleanly (exited %d, wait status %d)", name, exited, status);
}

static bool rule_fired(void *arg)
{
    struct env *e = arg;
    cJSON *faults = sim_get(e, "/_sim/faults");
    const cJSON *list = cJSON_IsArray(faults) ? faults : cJSON_GetObjectItem(faults, "faults");
    bool none = cJSON_GetArraySize(list) == 0;
    cJSON_Delete(faults);
    return none;
}

static bool is_running(void *arg)
{
    return log_has(arg, "\"msg\":\"running\"");
}

#define ACCT_TERM "121212121212"

static void test_sigterm_mid_lookup_releases_the_lock(void **state)
{
    struct env *e = *state;
    /* A drain too short for the lookup: the message goes back to the stream and the lock must be
     * released, or the next replica would wait for it to expire (two minutes). */
    stop_clean(e, &e->reg);
    /* A short AckWait too: the message comes back at once when the NAK of the drain arrives,
     * else after AckWait. */
    const char *const short_drain[] = {"QFS_LOG_LEVEL=debug", "QFS_DRAIN_TIMEOUT_MS=300",
                                       "QFS_ACK_WAIT=5s", NULL};
    const char *const restarted[] = {"QFS_LOG_LEVEL=debug", "QFS_ACK_WAIT=5s", NULL};
    e->reg = qfs_test_service_start(&e->stack, "registry", "draining", short_drain);
    assert_true(qfs_test_eventually(is_running, e->reg, 20000));
    sim_send(e, "POST", "/_sim/faults", "{\"endpoint\":\"registry-list\",\"latencyMs\":4000,\"count\":1}");
    publish_request(e, ACCT_TERM, "term");
    /* The slow listing has started: the lookup holds the lock. */
    if (!qfs_test_eventually(rule_fired, e, 20000)) {
        dump_logs(e);
        fail_msg("the lookup never listed the registries");
    }
    stop_clean(e, &e->reg);
    e->reg = qfs_test_service_start(&e->stack, "registry", "restarted", restarted);
    cJSON *ready = wait_for(e, "ready", ACCT_TERM, 1);
    char uuid[64] = "";
    assert_int_equal(sim_registries(e, ACCT_TERM, uuid, sizeof(uuid)), 1);
    assert_int_equal(all_with_uuid(ready, uuid), 1);
    cJSON_Delete(ready);
    const char *waited = "another qfs-registry is looking up this registry";
    if (log_has(e->reg, waited)) {
        dump_logs(e);
        fail_msg("the restarted replica found the stopped one's lock");
    }
}

struct running_arg {
    struct qfs_test_proc *a, *b;
};

static bool both_running(void *arg)
{
    struct running_arg *r = arg;
    return log_has(r->a, "\"msg\":\"running\"") && log_has(r->b, "\"msg\":\"running\"");
}

/* Lets the server hand out more unacknowledged messages than each replica holds, so that both
 * replicas get part of a burst. */
static void set_server_max_ack_pending(struct env *e, int64_t n)
{
    jsConsumerInfo *ci = NULL, *updated = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetConsumerInfo(&ci, e->js, "QFS", "registry-requests", NULL, &jerr), NATS_OK);
    ci->Config->MaxAckPending = n;
    assert_int_equal(js_UpdateConsumer(&updated, e->js, "QFS", ci->Config, NULL, &jerr), NATS_OK);
    jsConsumerInfo_Destroy(updated);
    jsConsumerInfo_Destroy(ci);
}

static void test_two_processes_racing_make_one_registry(void **state)
{
    struct env *e = *state;
    /* Two replicas that hold two messages each (the server may hand out more in all), and a slow
     * first listing, so that both take part in the burst while the first lookup is open. */
    stop_clean(e, &e->reg);
    const char *const race_env[] = {"QFS_LOG_LEVEL=debug", "QFS_MAX_ACK_PENDING=2",
                                    NULL};
    e->reg = qfs_test_service_start(&e->stack, "registry", "a", race_env);
    e->reg_b = qfs_test_service_start(&e->stack, "registry", "b", race_env);
    struct running_arg ra = {e->reg, e->reg_b};
    if (!qfs_test_eventually(both_running, &ra, 20000)) {
        dump_logs(e);
        fail_msg("the two replicas did not start");
    }
    set_server_max_ack_pending(e, 64);
    sim_send(e, "POST", "/_sim/faults", "{\"endpoint\":\"registry-list\",\"latencyMs\":1500,\"count\":2}");
    int64_t since = sim_calls_seq(e);
    for (int i = 0; i < 10; i++) {
        char repo[32];
        snprintf(repo, sizeof(repo), "race-%d", i);
        publish_request(e, ACCT_RACE, repo);
    }
    cJSON *ready = wait_for(e, "ready", ACCT_RACE, 10);
    char uuid[64] = "";
    assert_int_equal(sim_registries(e, ACCT_RACE, uuid, sizeof(uuid)), 1);
    assert_int_equal(all_with_uuid(ready, uuid), 10);
    cJSON_Delete(ready);
    assert_int_equal(sim_connectors(e, ACCT_RACE), 1);
    assert_int_equal(sim_calls(e, since, "registry-create", NULL), 1);
    /* The replica without the lock waited for the one that had it. */
    const char *waited = "another qfs-registry is looking up this registry";
    if (!log_has(e->reg, waited) && !log_has(e->reg_b, waited)) {
        dump_logs(e);
        fail_msg("no replica waited for the registry lock: the two did not race");
    }
    sim_send(e, "DELETE", "/_sim/faults", NULL);
    stop_clean(e, &e->reg);
    stop_clean(e, &e->reg_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_for_a_new_account_makes_one_registry),
        cmocka_unit_test(test_known_account_is_answered_from_the_store),
        cmocka_unit_test(test_403_is_qualys_denied),
        cmocka_unit_test(test_500_bursts_still_make_one_registry),
        cmocka_unit_test(test_sigterm_mid_lookup_releases_the_lock),
        cmocka_unit_test(test_two_processes_racing_make_one_registry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
