/* The front of the pipeline over the local stack: an ECS event delivered by EventBridge (aws-sim)
 * reaches SQS, qfs-ingest and qfs-parser and ends as image records and skip records, including a
 * cross-account lookup through STS, a denied lookup and a tag resolved to its digest; and killing
 * ingest or the parser mid-flight neither loses nor duplicates anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfs/kv.h"
#include "qfs/proto_skip.h"
#include "qfs/util.h"
#include "testlib.h"

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *ingest, *parser;
    natsConnection *nc;
    jsCtx *js;
};

static const char *const service_env[] = {"QFS_HUB_ACCOUNT_ID=111122223333", "QFS_LOG_LEVEL=debug",
                                          "QFS_SQS_VISIBILITY_TIMEOUT=10", "QFS_SQS_WAIT_SECONDS=1",
                                          /* A killed process's messages come back this soon. */
                                          "QFS_ACK_WAIT=5s", NULL};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("front");
    qfs_test_stack_up(&e->stack, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    e->ingest = qfs_test_service_start(&e->stack, "ingest", NULL, service_env);
    e->parser = qfs_test_service_start(&e->stack, "parser", NULL, service_env);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    qfs_test_proc_stop(e->ingest);
    qfs_test_proc_stop(e->parser);
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static void deliver(struct env *e, const char *event_json)
{
    qfs_test_deliver_event(&e->stack, event_json);
}

static char *event(const char *id, const char *account, const char *region, const char *detail)
{
    char *s = NULL;
    if (asprintf(&s,
                 "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"AWS API Call via CloudTrail\","
                 "\"source\":\"aws.ecs\",\"account\":\"%s\",\"time\":\"2026-05-01T10:00:00Z\","
                 "\"region\":\"%s\",\"resources\":[],\"detail\":%s}",
                 id, account, region, detail) < 0)
        abort();
    return s;
}

static cJSON *stored(struct env *e, const char *filter)
{
    return qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), filter);
}

/* Messages on filter whose event_id is id. */
static int count_for(struct env *e, const char *filter, const char *id, cJSON **last)
{
    cJSON *list = stored(e, filter);
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *ev = cJSON_GetObjectItem(m, "event_id");
        const cJSON *top = cJSON_GetObjectItem(m, "id");
        const char *got = cJSON_IsString(ev) ? ev->valuestring : cJSON_IsString(top) ? top->valuestring : "";
        if (strcmp(got, id) != 0) continue;
        n++;
        if (last) {
            cJSON_Delete(*last);
            *last = cJSON_Duplicate(m, true);
        }
    }
    cJSON_Delete(list);
    return n;
}

struct wait_arg {
    struct env *e;
    const char *filter, *id;
    int want;
};

static bool has_count(void *arg)
{
    struct wait_arg *w = arg;
    return count_for(w->e, w->filter, w->id, NULL) >= w->want;
}

static cJSON *wait_for(struct env *e, const char *filter, const char *id)
{
    struct wait_arg w = {e, filter, id, 1};
    if (!qfs_test_eventually(has_count, &w, 30000)) {
        qfs_test_proc_dump_log(e->ingest, 20);
        qfs_test_proc_dump_log(e->parser, 30);
        fail_msg("nothing on %s for %s", filter, id);
    }
    cJSON *last = NULL;
    count_for(e, filter, id, &last);
    return last;
}

static void test_register_task_definition_resolves_digest(void **state)
{
    struct env *e = *state;
    char *ev = event("evt-register-1", "111122223333", "eu-west-1",
                     "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
                     "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
                     "\"eventTime\":\"2026-05-01T10:00:00Z\",\"recipientAccountId\":\"111122223333\","
                     "\"userIdentity\":{\"arn\":\"arn:aws:sts::111122223333:assumed-role/ci/run-1\"},"
                     "\"requestParameters\":{\"family\":\"web\"},\"responseElements\":{\"taskDefinition\":{"
                     "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42\","
                     "\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                     "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2\"},{\"name\":\"proxy\","
                     "\"image\":\"nginx:1.25\"}]}},\"eventID\":\"ct-1\"}");
    deliver(e, ev);
    free(ev);
    cJSON *img = wait_for(e, "qfs.images.>", "evt-register-1");
    /* The deploy's skip was listed for the notifier before its image record went out. */
    char key[QFS_KV_MAX_KEY];
    qfs_deploy_skips_key("evt-register-1", key, sizeof(key));
    char **listed = qfs_test_kv_list(&e->stack, key);
    assert_non_null(listed[0]);
    assert_null(listed[1]);
    assert_non_null(strstr(listed[0], "\"reason\":\"not_ecr\""));
    assert_non_null(strstr(listed[0], "nginx:1.25"));
    free(listed[0]);
    free(listed);
    assert_string_equal(cJSON_GetObjectItem(img, "repository")->valuestring, "web");
    assert_string_equal(cJSON_GetObjectItem(img, "tag")->valuestring, "1.4.2");
    /* The digest the seed gives web:1.4.2 in ECR: the tag was resolved through DescribeImages. */
    assert_string_equal(cJSON_GetObjectItem(img, "digest")->valuestring,
                        "sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c");
    assert_string_equal(cJSON_GetObjectItem(img, "principal")->valuestring,
                        "arn:aws:sts::111122223333:assumed-role/ci/run-1");
    cJSON_Delete(img);
    cJSON *skip = wait_for(e, "qfs.scans.skipped.>", "evt-register-1");
    assert_string_equal(cJSON_GetObjectItem(skip, "reason")->valuestring, "not_ecr");
    assert_string_equal(cJSON_GetObjectItem(skip, "image")->valuestring, "nginx:1.25");
    cJSON_Delete(skip);
}

static void test_cross_account_lookup_through_sts(void **state)
{
    struct env *e = *state;
    /* A RunTask in 222233334444 whose response names no images: the parser must assume
     * QfsEcsDescribeRole there, describe migrate:7, and resolve the tag in that account's ECR. */
    char *ev = event("evt-runtask-x", "222233334444", "us-east-1",
                     "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\",\"eventName\":\"RunTask\","
                     "\"awsRegion\":\"us-east-1\",\"eventTime\":\"2026-05-01T10:00:00Z\","
                     "\"recipientAccountId\":\"222233334444\",\"requestParameters\":{\"cluster\":\"batch\","
                     "\"taskDefinition\":\"migrate\"},\"responseElements\":{\"failures\":[],\"tasks\":[{"
                     "\"taskArn\":\"arn:aws:ecs:us-east-1:222233334444:task/batch/0f1e\","
                     "\"taskDefinitionArn\":\"arn:aws:ecs:us-east-1:222233334444:task-definition/migrate:7\","
                     "\"clusterArn\":\"arn:aws:ecs:us-east-1:222233334444:cluster/batch\","
                     "\"containers\":[{\"name\":\"migrate\"}]}]},\"eventID\":\"ct-2\"}");
    deliver(e, ev);
    free(ev);
    cJSON *img = wait_for(e, "qfs.images.>", "evt-runtask-x");
    assert_string_equal(cJSON_GetObjectItem(img, "account")->valuestring, "222233334444");
    assert_string_equal(cJSON_GetObjectItem(img, "region")->valuestring, "us-east-1");
    assert_string_equal(cJSON_GetObjectItem(img, "repository")->valuestring, "batch/migrate");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(img, "digest")));
    assert_string_equal(cJSON_GetObjectItem(img, "task_definition_arn")->valuestring,
                        "arn:aws:ecs:us-east-1:222233334444:task-definition/migrate:7");
    cJSON_Delete(img);
}

static void test_denied_lookup_is_a_skip(void **state)
{
    struct env *e = *state;
    /* 333344445555 has no QfsEcsDescribeRole: the lookup is denied and says so. */
    char *ev = event("evt-denied", "333344445555", "eu-west-1",
                     "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\",\"eventName\":\"UpdateService\","
                     "\"awsRegion\":\"eu-west-1\",\"eventTime\":\"2026-05-01T10:00:00Z\","
                     "\"recipientAccountId\":\"333344445555\",\"requestParameters\":{\"service\":\"api\"},"
                     "\"responseElements\":{\"service\":{\"serviceName\":\"api\","
                     "\"taskDefinition\":\"arn:aws:ecs:eu-west-1:333344445555:task-definition/api:3\"}},"
                     "\"eventID\":\"ct-3\"}");
    deliver(e, ev);
    free(ev);
    cJSON *skip = wait_for(e, "qfs.scans.skipped.>", "evt-denied");
    assert_string_equal(cJSON_GetObjectItem(skip, "reason")->valuestring, "access_denied");
    assert_string_equal(cJSON_GetObjectItem(skip, "service")->valuestring, "api");
    cJSON_Delete(skip);
    assert_int_equal(count_for(e, "qfs.images.>", "evt-denied", NULL), 0);
}

/* Calls of service/operation aws-sim has answered so far. */
static int sim_calls(struct env *e, const char *service, const char *operation)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/calls?service=%s&operation=%s",
             qfs_test_stack_get(&e->stack, "QFS_SIM_AWS_URL"), service, operation);
    cJSON *j = qfs_test_http_json("GET", url, NULL);
    int n = j ? cJSON_GetArraySize(cJSON_GetObjectItem(j, "calls")) : -1;
    cJSON_Delete(j);
    return n;
}

/* ECS DescribeTaskDefinition calls aws-sim has answered so far. */
static int describe_calls(struct env *e)
{
    return sim_calls(e, "ecs", "DescribeTaskDefinition");
}

static void test_registered_task_definition_needs_no_ecs_call(void **state)
{
    struct env *e = *state;
    /* RegisterTaskDefinition of worker:5 is remembered; the UpdateService that deploys it then
     * finds its images without DescribeTaskDefinition (which aws-sim could not answer anyway: it
     * has no worker:5). */
    char *reg = event("evt-remember-1", "111122223333", "eu-west-1",
                      "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
                      "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
                      "\"eventTime\":\"2026-05-01T10:00:00Z\",\"recipientAccountId\":\"111122223333\","
                      "\"responseElements\":{\"taskDefinition\":{"
                      "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/worker:5\","
                      "\"containerDefinitions\":[{\"name\":\"w\",\"image\":"
                      "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/worker:2.0.0\"}]}}}");
    deliver(e, reg);
    free(reg);
    cJSON_Delete(wait_for(e, "qfs.images.>", "evt-remember-1"));
    int before = describe_calls(e);
    char *upd = event("evt-remember-2", "111122223333", "eu-west-1",
                      "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\",\"eventName\":\"UpdateService\","
                      "\"awsRegion\":\"eu-west-1\",\"eventTime\":\"2026-05-01T10:01:00Z\","
                      "\"recipientAccountId\":\"111122223333\",\"requestParameters\":{\"service\":\"worker\"},"
                      "\"responseElements\":{\"service\":{\"serviceName\":\"worker\","
                      "\"taskDefinition\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/worker:5\"}}}");
    deliver(e, upd);
    free(upd);
    cJSON *img = wait_for(e, "qfs.images.>", "evt-remember-2");
    assert_string_equal(cJSON_GetObjectItem(img, "repository")->valuestring, "worker");
    assert_string_equal(cJSON_GetObjectItem(img, "service")->valuestring, "worker");
    cJSON_Delete(img);
    assert_int_equal(describe_calls(e), before);
}

/* A RegisterTaskDefinition of team/memo:<tag> stamped at event_time. */
static char *memo_event(const char *id, const char *event_time, int family_rev)
{
    char detail[1024];
    snprintf(detail, sizeof(detail),
             "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
             "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
             "\"eventTime\":\"%s\",\"recipientAccountId\":\"111122223333\","
             "\"responseElements\":{\"taskDefinition\":{"
             "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/memo:%d\","
             "\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
             "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/memo:stable\"}]}}}",
             event_time, family_rev);
    return event(id, "111122223333", "eu-west-1", detail);
}

static void push_memo_image(struct env *e, const char *digest)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"account\":\"111122223333\",\"region\":\"eu-west-1\",\"repository\":\"team/memo\","
             "\"tags\":[\"stable\"],\"digest\":\"%s\"}", digest);
    qfs_test_http_ok("POST", qfs_test_stack_get(&e->stack, "QFS_SIM_AWS_URL"), "/_sim/ecr/images", json);
}

static const char *memo_digest(struct env *e, const char *id)
{
    static char out[80];
    cJSON *img = wait_for(e, "qfs.images.>", id);
    const cJSON *d = cJSON_GetObjectItem(img, "digest");
    snprintf(out, sizeof(out), "%s", cJSON_IsString(d) ? d->valuestring : "(none)");
    cJSON_Delete(img);
    return out;
}

#define MEMO_DIGEST_A "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
#define MEMO_DIGEST_B "sha256:bbbb000000000000000000000000000000000000000000000000000000000002"

/* A burst of deploys of one tag costs one ECR DescribeImages, and a deploy made after the tag
 * moved gets the new digest, never the answer of a lookup made before it. */
static void test_tag_lookups_are_shared_but_never_older_than_the_deploy(void **state)
{
    struct env *e = *state;
    push_memo_image(e, MEMO_DIGEST_A);
    int before = sim_calls(e, "ecr", "DescribeImages");
    /* Deploys registered well before now: any lookup qfs makes now is after them. */
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt-memo-old-%d", i);
        char *ev = memo_event(id, "2026-05-01T10:00:00Z", i + 1);
        deliver(e, ev);
        free(ev);
    }
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt-memo-old-%d", i);
        assert_string_equal(memo_digest(e, id), MEMO_DIGEST_A);
    }
    assert_int_equal(sim_calls(e, "ecr", "DescribeImages"), before + 1);

    /* The tag moves, then a deploy is registered: its time is after the lookup above. */
    push_memo_image(e, MEMO_DIGEST_B);
    sleep(1);
    char now[32];
    qfs_format_time_ms(qfs_now_ms(), now);
    char *ev = memo_event("evt-memo-new", now, 10);
    deliver(e, ev);
    free(ev);
    assert_string_equal(memo_digest(e, "evt-memo-new"), MEMO_DIGEST_B);
    assert_int_equal(sim_calls(e, "ecr", "DescribeImages"), before + 2);

    /* A deploy from before both lookups takes the newest answer, without a call. */
    ev = memo_event("evt-memo-late", "2026-05-01T10:00:05Z", 11);
    deliver(e, ev);
    free(ev);
    assert_string_equal(memo_digest(e, "evt-memo-late"), MEMO_DIGEST_B);
    assert_int_equal(sim_calls(e, "ecr", "DescribeImages"), before + 2);
}

static void set_fault(struct env *e, const char *json)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/faults", qfs_test_stack_get(&e->stack, "QFS_SIM_AWS_URL"));
    assert_int_equal(qfs_test_http("POST", url, json, NULL) / 100, 2);
}

static void clear_faults(struct env *e)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/faults", qfs_test_stack_get(&e->stack, "QFS_SIM_AWS_URL"));
    qfs_test_http("DELETE", url, NULL, NULL);
}

static void test_ingest_killed_between_publish_and_delete(void **state)
{
    struct env *e = *state;
    /* Deletes hang, so ingest has published but not deleted when it is killed. */
    set_fault(e, "{\"service\":\"sqs\",\"operation\":\"DeleteMessageBatch\",\"latency_ms\":30000}");
    char *ev = event("evt-kill-ingest", "111122223333", "eu-west-1",
                     "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
                     "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
                     "\"eventTime\":\"2026-05-01T10:00:00Z\",\"recipientAccountId\":\"111122223333\","
                     "\"responseElements\":{\"taskDefinition\":{"
                     "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/worker:3\","
                     "\"containerDefinitions\":[{\"name\":\"w\",\"image\":"
                     "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/worker:2.0.0\"}]}},\"eventID\":\"ct-4\"}");
    deliver(e, ev);
    free(ev);
    cJSON *img = wait_for(e, "qfs.images.>", "evt-kill-ingest");
    cJSON_Delete(img);
    qfs_test_proc_signal(e->ingest, SIGKILL);
    qfs_test_proc_wait(e->ingest, 5000, NULL);
    qfs_test_proc_stop(e->ingest);
    clear_faults(e);
    /* The message reappears after its visibility timeout and is received again. */
    e->ingest = qfs_test_service_start(&e->stack, "ingest", "restarted", service_env);
    /* The restarted ingest receives it again, republishes it and deletes it this time. */
    if (!qfs_test_eventually(qfs_test_events_queue_empty, &e->stack, 40000)) {
        qfs_test_proc_dump_log(e->ingest, 30);
        fail_msg("the message was never deleted after the restart");
    }
    /* The stream dropped the republished copy: exactly one event and one image record. */
    assert_int_equal(count_for(e, "qfs.events.>", "evt-kill-ingest", NULL), 1);
    assert_int_equal(count_for(e, "qfs.images.>", "evt-kill-ingest", NULL), 1);
}

static void test_parser_killed_mid_burst(void **state)
{
    struct env *e = *state;
    char ids[30][32];
    for (int i = 0; i < 30; i++) {
        snprintf(ids[i], sizeof(ids[i]), "evt-burst-%02d", i);
        char *ev = event(ids[i], "111122223333", "eu-west-1",
                         "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
                         "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
                         "\"eventTime\":\"2026-05-01T10:00:00Z\",\"recipientAccountId\":\"111122223333\","
                         "\"responseElements\":{\"taskDefinition\":{"
                         "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/side:1\","
                         "\"containerDefinitions\":[{\"name\":\"s\",\"image\":"
                         "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/sidecar:0.9.1\"}]}}}");
        deliver(e, ev);
        free(ev);
        if (i == 10) {
            qfs_test_proc_signal(e->parser, SIGKILL);
            qfs_test_proc_wait(e->parser, 5000, NULL);
            qfs_test_proc_stop(e->parser);
            e->parser = qfs_test_service_start(&e->stack, "parser", "restarted", service_env);
        }
    }
    for (int i = 0; i < 30; i++) {
        cJSON *img = wait_for(e, "qfs.images.>", ids[i]);
        cJSON_Delete(img);
    }
    /* Redelivered events republish the same ids; the stream keeps one record each. */
    for (int i = 0; i < 30; i++) assert_int_equal(count_for(e, "qfs.images.>", ids[i], NULL), 1);
}

/* Last: redis-server does not come back. With the store away the deploy's skips cannot be listed
 * for the notifier: the event is tried again, and after its third delivery its image records go
 * out anyway, the missing list logged. */
static void test_store_down_delays_but_never_drops_a_deploy(void **state)
{
    struct env *e = *state;
    qfs_test_stack_signal(&e->stack, "redis", SIGKILL);

    char *ev = event("evt-store-down", "111122223333", "eu-west-1",
                     "{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
                     "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
                     "\"eventTime\":\"2026-05-01T10:00:00Z\",\"recipientAccountId\":\"111122223333\","
                     "\"responseElements\":{\"taskDefinition\":{"
                     "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/down:1\","
                     "\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                     "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2\"},{\"name\":\"proxy\","
                     "\"image\":\"nginx:1.25\"}]}}}");
    deliver(e, ev);
    free(ev);
    cJSON *img = wait_for(e, "qfs.images.>", "evt-store-down");
    assert_string_equal(cJSON_GetObjectItem(img, "repository")->valuestring, "web");
    cJSON_Delete(img);
    cJSON_Delete(wait_for(e, "qfs.scans.skipped.>", "evt-store-down"));
    assert_int_equal(count_for(e, "qfs.images.>", "evt-store-down", NULL), 1);
    char *log = qfs_test_read_file(e->parser->log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "the deploy's skips are not listed"));
    assert_non_null(strstr(log, "\"msg\":\"will retry\""));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_task_definition_resolves_digest),
        cmocka_unit_test(test_cross_account_lookup_through_sts),
        cmocka_unit_test(test_denied_lookup_is_a_skip),
        cmocka_unit_test(test_registered_task_definition_needs_no_ecs_call),
        cmocka_unit_test(test_tag_lookups_are_shared_but_never_older_than_the_deploy),
        cmocka_unit_test(test_ingest_killed_between_publish_and_delete),
        cmocka_unit_test(test_parser_killed_mid_burst),
        cmocka_unit_test(test_store_down_delays_but_never_drops_a_deploy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
