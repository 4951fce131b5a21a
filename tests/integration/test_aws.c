/* AWS client against aws-sim, which verifies every SigV4 signature like AWS: SQS round trip, a
 * refused secret, STS AssumeRole into a member account for ECS/ECR, container credentials with
 * refresh, SNS Publish, injected throttling that is retried, DynamoDB's failed condition, and
 * shutdown with calls pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/aws_ecr.h"
#include "qfs/aws_ecs.h"
#include "qfs/aws_secrets.h"
#include "qfs/aws_sns.h"
#include "qfs/aws_sqs.h"
#include "qfs/aws_sts.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/util.h"
#include "testlib.h"

#define HUB_KEY "AKIAQFSSIMHUB0000001"
#define HUB_SECRET "qfs-sim-hub-secret-0000000000000000000001"
#define MEMBER_ROLE "arn:aws:iam::222233334444:role/QfsEcsDescribeRole"
#define MEMBER_TASK_DEF "arn:aws:ecs:us-east-1:222233334444:task-definition/migrate:7"

static struct {
    char *dir;
    struct qfs_test_proc *proc;
    int port;
    char endpoint[64];
} sim;

static int setup(void **state)
{
    sim.dir = qfs_test_tmpdir("aws");
    const char *src = qfs_test_env("QFS_SOURCE_DIR", ".");
    char script[1024], seed[1024], log[1024];
    snprintf(script, sizeof(script), "%s/tests/sim/aws-sim/server.js", src);
    snprintf(seed, sizeof(seed), "%s/tests/sim/seed/default.json", src);
    snprintf(log, sizeof(log), "%s/aws-sim.log", sim.dir);
    const char *args[] = {"--seed", seed, "--region", "eu-west-1", NULL};
    sim.port = qfs_test_node_start(&sim.proc, "aws-sim", script, args, log);
    snprintf(sim.endpoint, sizeof(sim.endpoint), "http://127.0.0.1:%d", sim.port);
    qfs_log_init("it_aws", QFS_LOG_WARN);
    return 0;
}

static int teardown(void **state)
{
    qfs_test_proc_stop(sim.proc);
    qfs_test_rmrf(sim.dir);
    free(sim.dir);
    return 0;
}

/* ---- the admin side channel (plain blocking curl, not the code under test) ---- */

static size_t collect(char *p, size_t size, size_t n, void *userp)
{
    return qfs_buf_append(userp, p, size * n) == QFS_OK ? size * n : 0;
}

static cJSON *admin(const char *method, const char *path, const char *body)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 16 << 20);
    char url[512];
    snprintf(url, sizeof(url), "%s%s", sim.endpoint, path);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) fail_msg("admin %s %s: %ld %s", method, path, code, b.data ? b.data : "");
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    qfs_buf_cleanup(&b);
    return j;
}

/* The calls the sim logged for service/operation, newest last. */
static cJSON *calls(const char *service, const char *operation)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/calls?service=%s&operation=%s", service, operation);
    return admin("GET", path, NULL);
}

static int ncalls(cJSON *log)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(log, "calls"));
}

static const char *call_field(cJSON *log, int i, const char *key)
{
    cJSON *arr = cJSON_GetObjectItem(log, "calls");
    if (i < 0) i += cJSON_GetArraySize(arr);
    cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int call_status(cJSON *log, int i)
{
    cJSON *arr = cJSON_GetObjectItem(log, "calls");
    if (i < 0) i += cJSON_GetArraySize(arr);
    return cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "status")->valueint;
}

/* ---- the client under test ---- */

struct kv {
    const char *k;
    const char *v;
};

static const char *table_env(const char *name, void *arg)
{
    for (const struct kv *e = arg; e && e->k; e++)
        if (strcmp(e->k, name) == 0) return e->v;
    return NULL;
}

struct env {
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct kv vars[12];
};

/* Resets the sim and sets up a loop, an HTTP client and the environment table (the region, the
 * sim as endpoint, and the hub key with secret unless it is NULL). */
static void env_start(struct env *e, const char *secret)
{
    memset(e, 0, sizeof(*e));
    cJSON_Delete(admin("POST", "/_sim/reset", NULL));
    int n = 0;
    e->vars[n++] = (struct kv){"AWS_REGION", "eu-west-1"};
    e->vars[n++] = (struct kv){"AWS_ENDPOINT_URL", sim.endpoint};
    if (secret) {
        e->vars[n++] = (struct kv){"AWS_ACCESS_KEY_ID", HUB_KEY};
        e->vars[n++] = (struct kv){"AWS_SECRET_ACCESS_KEY", secret};
    }
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(qfs_http_new(&e->loop, NULL, &e->http), QFS_OK);
}

static void env_client(struct env *e)
{
    struct qfs_aws_options o = {.env = table_env, .env_arg = e->vars};
    assert_int_equal(qfs_aws_new(&e->loop, e->http, &o, &e->aws), QFS_OK);
}

static void env_finish(struct env *e)
{
    qfs_aws_free(e->aws);
    qfs_http_free(e->http);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void wait_for(struct env *e, const bool *flag)
{
    assert_true(qfs_loop_run_until_flag(&e->loop, flag, 60000));
}

static void on_sleep(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop (so timers such as credential refresh fire) for ms milliseconds. */
static void run_for(struct env *e, uint64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(&e->loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_sleep, ms, 0);
    wait_for(e, &done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

struct res {
    bool done;
    qfs_status status;
    long http_code;
    unsigned attempts;
    bool condition_failed;
    char code[128];
    char message[512];
    char text[4096]; /* an id, a secret or a body, depending on the call */
    int count;
    struct qfs_sqs_message msgs[10];
};

static void keep(struct res *x, const struct qfs_aws_response *r)
{
    assert_false(x->done);
    x->done = true;
    x->status = r->status;
    x->http_code = r->http_code;
    x->attempts = r->attempts;
    x->condition_failed = r->condition_failed;
    snprintf(x->code, sizeof(x->code), "%s", r->error_code);
    snprintf(x->message, sizeof(x->message), "%s", r->error_message);
}

static void on_call(const struct qfs_aws_response *r, void *arg)
{
    struct res *x = arg;
    keep(x, r);
    snprintf(x->text, sizeof(x->text), "%s", r->body);
}

static void on_id(const struct qfs_aws_response *r, const char *id, void *arg)
{
    struct res *x = arg;
    keep(x, r);
    if (id) snprintf(x->text, sizeof(x->text), "%s", id);
}

static void raw_call(struct env *e, enum qfs_aws_service svc, enum qfs_aws_protocol proto,
                     const char *target, const char *body, struct res *x)
{
    memset(x, 0, sizeof(*x));
    struct qfs_aws_call c = {.service = svc, .protocol = proto, .target = target, .body = body,
                             .body_len = strlen(body)};
    assert_int_equal(qfs_aws_call(e->aws, &c, on_call, x), QFS_OK);
    wait_for(e, &x->done);
}

static char *create_queue(struct env *e, const char *name)
{
    char body[256];
    struct res x;
    snprintf(body, sizeof(body), "{\"QueueName\":\"%s\"}", name);
    raw_call(e, QFS_AWS_SQS, QFS_AWS_JSON_1_0, "AmazonSQS.CreateQueue", body, &x);
    assert_int_equal(x.status, QFS_OK);
    cJSON *j = cJSON_Parse(x.text);
    char *url = qfs_xstrdup(cJSON_GetObjectItem(j, "QueueUrl")->valuestring);
    cJSON_Delete(j);
    return url;
}

static void send_msg(struct env *e, const char *q, const char *body, struct res *x)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(qfs_sqs_send(e->aws, q, body, strlen(body), 0, on_id, x), QFS_OK);
    wait_for(e, &x->done);
}

static void on_received(const struct qfs_aws_response *r, const struct qfs_sqs_messages *m, void *arg)
{
    struct res *x = arg;
    keep(x, r);
    for (size_t i = 0; m && i < m->count && i < 10; i++) {
        x->msgs[i].message_id = qfs_xstrdup(m->items[i].message_id);
        x->msgs[i].receipt_handle = qfs_xstrdup(m->items[i].receipt_handle);
        x->msgs[i].body = qfs_xstrdup(m->items[i].body);
        x->msgs[i].md5_of_body = qfs_xstrdup(m->items[i].md5_of_body);
        x->msgs[i].receive_count = m->items[i].receive_count;
        x->msgs[i].sent_timestamp_ms = m->items[i].sent_timestamp_ms;
        x->count++;
    }
}

static void release(struct res *x)
{
    for (int i = 0; i < x->count; i++) {
        free(x->msgs[i].message_id);
        free(x->msgs[i].receipt_handle);
        free(x->msgs[i].body);
        free(x->msgs[i].md5_of_body);
    }
    x->count = 0;
}

static void receive(struct env *e, const char *q, unsigned wait_s, struct res *x)
{
    static const char *const attrs[] = {"ApproximateReceiveCount", "SentTimestamp", NULL};
    memset(x, 0, sizeof(*x));
    struct qfs_sqs_receive_params p = {.queue_url = q, .max_messages = 10, .wait_seconds = wait_s,
                                       .visibility_timeout = 30, .system_attributes = attrs};
    assert_int_equal(qfs_sqs_receive(e->aws, &p, on_received, x), QFS_OK);
    wait_for(e, &x->done);
}

struct batch_res {
    bool done;
    qfs_status status;
    size_t ok, failed;
    char failed_id[32], failed_code[64];
};

static void on_batch(const struct qfs_aws_response *r, const struct qfs_sqs_batch_result *b, void *arg)
{
    struct batch_res *x = arg;
    x->done = true;
    x->status = r->status;
    if (!b) return;
    x->ok = b->nsuccessful;
    x->failed = b->nfailed;
    if (b->nfailed) {
        snprintf(x->failed_id, sizeof(x->failed_id), "%s", b->failed[0].id);
        snprintf(x->failed_code, sizeof(x->failed_code), "%s", b->failed[0].code);
    }
}

static void test_sqs_round_trip(void **state)
{
    struct env e;
    env_start(&e, HUB_SECRET);
    env_client(&e);
    char *q = create_queue(&e, "qfs-it-events");
    const char *bodies[] = {"{\"detail-type\":\"AWS API Call via CloudTrail\",\"n\":1}",
                            "caf\xc3\xa9 & \"quotes\" \\ <xml/>", "third"};
    struct res x;
    for (int i = 0; i < 3; i++) {
        send_msg(&e, q, bodies[i], &x);
        assert_int_equal(x.status, QFS_OK);
        assert_true(strlen(x.text) > 0);
    }
    struct res got;
    int seen = 0;
    struct qfs_sqs_delete_entry entries[4];
    char ids[4][8];
    char *handles[3] = {NULL, NULL, NULL};
    while (seen < 3) {
        receive(&e, q, 1, &got);
        assert_int_equal(got.status, QFS_OK);
        for (int i = 0; i < got.count; i++) {
            bool known = false;
            for (int k = 0; k < 3; k++) known |= strcmp(got.msgs[i].body, bodies[k]) == 0;
            assert_true(known);
            assert_int_equal(got.msgs[i].receive_count, 1);
            assert_true(got.msgs[i].sent_timestamp_ms > 1700000000000LL);
            handles[seen++] = qfs_xstrdup(got.msgs[i].receipt_handle);
        }
        release(&got);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof(ids[i]), "m%d", i);
        entries[i] = (struct qfs_sqs_delete_entry){ids[i], handles[i]};
    }
    snprintf(ids[3], sizeof(ids[3]), "bogus");
    entries[3] = (struct qfs_sqs_delete_entry){ids[3], "AQEBnot-a-real-handle"};
    struct batch_res b = {0};
    assert_int_equal(qfs_sqs_delete_batch(e.aws, q, entries, 4, on_batch, &b), QFS_OK);
    wait_for(&e, &b.done);
    assert_int_equal(b.status, QFS_OK);
    assert_int_equal(b.ok, 3);
    assert_int_equal(b.failed, 1);
    assert_string_equal(b.failed_id, "bogus");
    assert_string_equal(b.failed_code, "ReceiptHandleIsInvalid");
    receive(&e, q, 1, &got);
    assert_int_equal(got.count, 0); /* deleted, not merely invisible */
    for (int i = 0; i < 3; i++) free(handles[i]);

    /* A "nack": visibility 0 makes the message come back at once, received a second time. */
    send_msg(&e, q, "again", &x);
    receive(&e, q, 1, &got);
    assert_int_equal(got.count, 1);
    struct res vis = {0};
    assert_int_equal(qfs_sqs_change_visibility(e.aws, q, got.msgs[0].receipt_handle, 0, on_call, &vis), QFS_OK);
    wait_for(&e, &vis.done);
    assert_int_equal(vis.status, QFS_OK);
    release(&got);
    receive(&e, q, 1, &got);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.msgs[0].receive_count, 2);
    release(&got);

    /* Every call was signed by curl with the hub's key and accepted. */
    cJSON *log = admin("GET", "/_sim/calls?service=sqs", NULL);
    assert_true(ncalls(log) >= 10);
    for (int i = 0; i < ncalls(log); i++) {
        assert_int_equal(call_status(log, i), 200);
        assert_string_equal(call_field(log, i, "access_key_id"), HUB_KEY);
    }
    cJSON_Delete(log);

    /* A queue that does not exist. */
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/111122223333/no-such-queue", sim.endpoint);
    send_msg(&e, missing, "x", &x);
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_string_equal(x.code, "QueueDoesNotExist");
    free(q);
    env_finish(&e);
}

static void test_wrong_secret_is_denied(void **state)
{
    struct env e;
    env_start(&e, "not-the-hub-secret-000000000000000000000");
    env_client(&e);
    char q[300];
    snprintf(q, sizeof(q), "%s/111122223333/anything", sim.endpoint);
    struct res x;
    send_msg(&e, q, "x", &x);
    assert_int_equal(x.status, QFS_DENIED);
    assert_int_equal(x.attempts, 1); /* never retried */
    assert_int_equal(x.http_code, 403);
    assert_string_equal(x.code, "InvalidSignatureException");
    raw_call(&e, QFS_AWS_STS, QFS_AWS_QUERY, NULL, "Action=GetCallerIdentity&Version=2011-06-15", &x);
    assert_int_equal(x.status, QFS_DENIED);
    assert_string_equal(x.code, "SignatureDoesNotMatch");
    cJSON *log = calls("sqs", "SendMessage");
    assert_int_equal(ncalls(log), 1);
    assert_string_equal(call_field(log, 0, "error"), "InvalidSignatureException");
    cJSON_Delete(log);
    env_finish(&e);
}

struct role_res {
    bool done;
    qfs_status status;
    struct qfs_aws_credentials creds;
};

static void on_role(qfs_status s, const struct qfs_aws_credentials *c, void *arg)
{
    struct role_res *x = arg;
    x->done = true;
    x->status = s;
    if (c) qfs_aws_credentials_copy(&x->creds, c);
}

struct td_res {
    bool done;
    qfs_status status;
    char code[128];
    char family[64];
    long revision;
    char image[256];
    size_t ncontainers;
};

static void on_td(const struct qfs_aws_response *r, const struct qfs_ecs_task_definition *td, void *arg)
{
    struct td_res *x = arg;
    x->done = true;
    x->status = r->status;
    snprintf(x->code, sizeof(x->code), "%s", r->error_code);
    if (!td) return;
    snprintf(x->family, sizeof(x->family), "%s", td->family);
    x->revision = td->revision;
    x->ncontainers = td->ncontainers;
    if (td->ncontainers) snprintf(x->image, sizeof(x->image), "%s", td->containers[0].image);
}

struct img_res {
    bool done;
    qfs_status status;
    char digest[128];
    size_t ntags;
};

static void on_img(const struct qfs_aws_response *r, const struct qfs_ecr_image *img, void *arg)
{
    struct img_res *x = arg;
    x->done = true;
    x->status = r->status;
    if (!img) return;
    snprintf(x->digest, sizeof(x->digest), "%s", img->digest);
    x->ntags = img->ntags;
}

static void test_assumed_role_in_member_account(void **state)
{
    struct env e;
    env_start(&e, HUB_SECRET);
    env_client(&e);

    /* The hub's own key may not look into the member account. */
    struct td_res td = {0};
    assert_int_equal(qfs_ecs_describe_task_definition(e.aws, MEMBER_TASK_DEF, NULL, NULL, on_td, &td), QFS_OK);
    wait_for(&e, &td.done);
    assert_int_equal(td.status, QFS_DENIED);
    assert_string_equal(td.code, "AccessDeniedException");

    /* Five callers want the role at once: one AssumeRole call serves them all. */
    char arn[128];
    assert_int_equal(qfs_aws_role_arn(qfs_aws_partition("us-east-1"), "222233334444", "QfsEcsDescribeRole",
                                      arn, sizeof(arn)), QFS_OK);
    assert_string_equal(arn, MEMBER_ROLE);
    struct qfs_aws_sts *sts;
    struct qfs_aws_sts_options so = {.session_name = "qfs-parser"};
    assert_int_equal(qfs_aws_sts_new(&e.loop, e.aws, &so, &sts), QFS_OK);
    struct role_res roles[5];
    memset(roles, 0, sizeof(roles));
    for (int i = 0; i < 5; i++) assert_int_equal(qfs_aws_sts_assume_role(sts, arn, on_role, &roles[i]), QFS_OK);
    for (int i = 0; i < 5; i++) {
        wait_for(&e, &roles[i].done);
        assert_int_equal(roles[i].status, QFS_OK);
        assert_memory_equal(roles[i].creds.access_key_id, "ASIA", 4);
        assert_non_null(roles[i].creds.session_token);
        assert_string_equal(roles[i].creds.access_key_id, roles[0].creds.access_key_id);
    }
    assert_int_equal(qfs_aws_sts_calls(sts), 1);
    /* Later callers get the cached credentials, without another call. */
    struct role_res again = {0};
    assert_int_equal(qfs_aws_sts_assume_role(sts, arn, on_role, &again), QFS_OK);
    assert_false(again.done);
    wait_for(&e, &again.done);
    assert_string_equal(again.creds.access_key_id, roles[0].creds.access_key_id);
    assert_int_equal(qfs_aws_sts_calls(sts), 1);
    cJSON *log = calls("sts", "AssumeRole");
    assert_int_equal(ncalls(log), 1);
    cJSON_Delete(log);

    /* With the role's temporary credentials (and so X-Amz-Security-Token, which the sim requires
     * signed), the member account's task definition is readable in its own region. */
    memset(&td, 0, sizeof(td));
    assert_int_equal(qfs_ecs_describe_task_definition(e.aws, MEMBER_TASK_DEF, NULL, &roles[0].creds, on_td, &td),
                     QFS_OK);
    wait_for(&e, &td.done);
    assert_int_equal(td.status, QFS_OK);
    assert_string_equal(td.family, "migrate");
    assert_int_equal(td.revision, 7);
    assert_int_equal(td.ncontainers, 1);
    assert_string_equal(td.image, "222233334444.dkr.ecr.us-east-1.amazonaws.com/batch/migrate:2026.05");
    log = calls("ecs", "DescribeTaskDefinition");
    assert_int_equal(ncalls(log), 2);
    assert_string_equal(call_field(log, -1, "access_key_id"), roles[0].creds.access_key_id);
    assert_string_equal(call_field(log, -1, "account"), "222233334444");
    assert_string_equal(call_field(log, -1, "region"), "us-east-1");
    cJSON_Delete(log);

    /* A revision that does not exist is not found (ECS's ClientException). */
    memset(&td, 0, sizeof(td));
    assert_int_equal(qfs_ecs_describe_task_definition(e.aws, "arn:aws:ecs:us-east-1:222233334444:task-definition/migrate:99",
                                                      NULL, &roles[0].creds, on_td, &td), QFS_OK);
    wait_for(&e, &td.done);
    assert_int_equal(td.status, QFS_NOT_FOUND);
    assert_string_equal(td.code, "ClientException");

    /* ECR in the member account with the same credentials. */
    struct img_res img = {0};
    struct qfs_ecr_query q = {.registry_id = "222233334444", .repository = "batch/migrate", .tag = "2026.05"};
    assert_int_equal(qfs_ecr_describe_image(e.aws, &q, "us-east-1", &roles[0].creds, on_img, &img), QFS_OK);
    wait_for(&e, &img.done);
    assert_int_equal(img.status, QFS_OK);
    assert_string_equal(img.digest, "sha256:060b087f39d5e24b06a35c6de0b85e2c50293dd4bdb58a43cd8bd5d315914b7e");
    assert_int_equal(img.ntags, 1);
    memset(&img, 0, sizeof(img));
    q.tag = "no-such-tag";
    assert_int_equal(qfs_ecr_describe_image(e.aws, &q, "us-east-1", &roles[0].creds, on_img, &img), QFS_OK);
    wait_for(&e, &img.done);
    assert_int_equal(img.status, QFS_NOT_FOUND);

    /* An account without the role: the same AccessDenied AWS gives. */
    struct role_res none = {0};
    assert_int_equal(qfs_aws_sts_assume_role(sts, "arn:aws:iam::333344445555:role/QfsEcsDescribeRole", on_role, &none),
                     QFS_OK);
    wait_for(&e, &none.done);
    assert_int_equal(none.status, QFS_DENIED);

    for (int i = 0; i < 5; i++) qfs_aws_credentials_cleanup(&roles[i].creds);
    qfs_aws_credentials_cleanup(&again.creds);
    qfs_aws_sts_free(sts);
    env_finish(&e);
}

static void caller(struct env *e, struct res *x)
{
    raw_call(e, QFS_AWS_STS, QFS_AWS_QUERY, NULL, "Action=GetCallerIdentity&Version=2011-06-15", x);
}

static char *last_key(const char *service, const char *operation)
{
    cJSON *log = calls(service, operation);
    char *k = qfs_xstrdup(call_field(log, -1, "access_key_id"));
    cJSON_Delete(log);
    return k;
}

static void test_container_credentials(void **state)
{
    struct env e;
    env_start(&e, NULL);
    /* The task role's credentials expire in 3 s: the client must refresh them by itself. */
    cJSON_Delete(admin("POST", "/_sim/container-credentials", "{\"rotate\":true,\"expires_in_seconds\":3}"));
    char full_uri[128];
    snprintf(full_uri, sizeof(full_uri), "%s/v2/credentials/x", sim.endpoint);
    int n = 2;
    e.vars[n++] = (struct kv){"AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri};
    e.vars[n++] = (struct kv){"AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-canary-0001"};
    env_client(&e);
    struct qfs_aws_creds *p = qfs_aws_credentials_provider(e.aws);
    assert_null(qfs_aws_creds_current(p)); /* fetched on demand */

    struct res x;
    caller(&e, &x);
    assert_int_equal(x.status, QFS_OK);
    assert_non_null(strstr(x.text, "<Account>111122223333</Account>"));
    assert_non_null(strstr(x.text, "QfsTaskRole"));
    assert_int_equal(qfs_aws_creds_fetches(p), 1);
    char *first = last_key("sts", "GetCallerIdentity");
    assert_memory_equal(first, "ASIA", 4);

    /* Past their expiry the client has fetched new ones on its own, and uses them. */
    run_for(&e, 3500);
    caller(&e, &x);
    assert_int_equal(x.status, QFS_OK);
    char *second = last_key("sts", "GetCallerIdentity");
    assert_string_not_equal(first, second);
    assert_true(qfs_aws_creds_fetches(p) >= 2);

    /* Credentials AWS declares expired early: ExpiredToken, one refresh, and the call succeeds. */
    char body[128];
    snprintf(body, sizeof(body), "{\"access_key_id\":\"%s\"}", second);
    cJSON_Delete(admin("POST", "/_sim/credentials/expire", body));
    unsigned before = qfs_aws_creds_fetches(p);
    caller(&e, &x);
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(qfs_aws_creds_fetches(p), before + 1);
    cJSON *log = calls("sts", "GetCallerIdentity");
    assert_int_equal(call_status(log, -2), 403);
    assert_string_equal(call_field(log, -2, "error"), "ExpiredToken");
    assert_int_equal(call_status(log, -1), 200);
    assert_string_not_equal(call_field(log, -1, "access_key_id"), second);
    cJSON_Delete(log);
    free(first);
    free(second);
    env_finish(&e);
}

static void test_sns_publish(void **state)
{
    struct env e;
    env_start(&e, HUB_SECRET);
    env_client(&e);
    struct res x;
    raw_call(&e, QFS_AWS_SNS, QFS_AWS_QUERY, NULL, "Action=CreateTopic&Name=qfs-it-notify&Version=2010-03-31", &x);
    assert_int_equal(x.status, QFS_OK);
    char *topic = NULL;
    assert_int_equal(qfs_aws_xml_text(x.text, strlen(x.text), "TopicArn", 256, &topic), QFS_OK);
    assert_string_equal(topic, "arn:aws:sns:eu-west-1:111122223333:qfs-it-notify");

    struct qfs_sns_attribute attrs[] = {{"severity", "Number", "5"}, {"image", NULL, "web:1.4.2 & more"}};
    const char *message = "{\"image\":\"web:1.4.2\",\"text\":\"5 = 100% caf\xc3\xa9 + &/\"}";
    struct qfs_sns_publish pub = {.topic_arn = topic, .subject = "qfs: critical findings in web:1.4.2",
                                  .message = message, .attributes = attrs, .nattributes = 2};
    memset(&x, 0, sizeof(x));
    assert_int_equal(qfs_sns_publish(e.aws, &pub, on_id, &x), QFS_OK);
    wait_for(&e, &x.done);
    assert_int_equal(x.status, QFS_OK);
    assert_true(strlen(x.text) > 10);

    char path[512];
    char *esc = curl_easy_escape(NULL, topic, 0);
    snprintf(path, sizeof(path), "/_sim/sns/messages?topic=%s", esc);
    curl_free(esc);
    cJSON *got = admin("GET", path, NULL);
    cJSON *msgs = cJSON_GetObjectItem(got, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    cJSON *m = cJSON_GetArrayItem(msgs, 0);
    assert_string_equal(cJSON_GetObjectItem(m, "message_id")->valuestring, x.text);
    assert_string_equal(cJSON_GetObjectItem(m, "message")->valuestring, message);
    assert_string_equal(cJSON_GetObjectItem(m, "subject")->valuestring, "qfs: critical findings in web:1.4.2");
    cJSON *ma = cJSON_GetObjectItem(m, "message_attributes");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ma, "image"), "Value")->valuestring, "web:1.4.2 & more");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ma, "severity"), "Type")->valuestring, "Number");
    cJSON_Delete(got);

    /* A topic that does not exist. */
    pub.topic_arn = "arn:aws:sns:eu-west-1:111122223333:nope";
    memset(&x, 0, sizeof(x));
    assert_int_equal(qfs_sns_publish(e.aws, &pub, on_id, &x), QFS_OK);
    wait_for(&e, &x.done);
    assert_int_equal(x.status, QFS_NOT_FOUND);
    assert_string_equal(x.code, "NotFound");
    free(topic);
    env_finish(&e);
}

static void on_secret(const struct qfs_aws_response *r, const char *secret, void *arg)
{
    on_id(r, secret, arg);
}

static void test_throttling_is_retried(void **state)
{
    struct env e;
    env_start(&e, HUB_SECRET);
    env_client(&e);
    char *q = create_queue(&e, "qfs-it-throttle");
    cJSON_Delete(admin("POST", "/_sim/faults",
                       "{\"service\":\"sqs\",\"operation\":\"SendMessage\",\"type\":\"ThrottlingException\",\"count\":2}"));
    struct res x;
    send_msg(&e, q, "after throttling", &x);
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.attempts, 3);
    cJSON *log = calls("sqs", "SendMessage");
    assert_int_equal(ncalls(log), 3);
    assert_string_equal(call_field(log, 0, "error"), "ThrottlingException");
    assert_int_equal(call_status(log, 2), 200);
    cJSON_Delete(log);
    struct res got;
    receive(&e, q, 1, &got);
    assert_int_equal(got.count, 1); /* delivered once */
    release(&got);

    /* A 503 from SNS and a throttled STS (XML "Throttling") are retried too. */
    cJSON_Delete(admin("POST", "/_sim/faults", "{\"service\":\"sts\",\"type\":\"Throttling\",\"count\":1}"));
    caller(&e, &x);
    assert_int_equal(x.status, QFS_OK);
    assert_int_equal(x.attempts, 2);

    /* Throttling that does not stop: the caller gets unavailable, with AWS's code. */
    cJSON_Delete(admin("POST", "/_sim/faults", "{\"service\":\"sqs\",\"operation\":\"SendMessage\",\"status\":503,"
                                               "\"type\":\"ServiceUnavailable\",\"count\":100}"));
    send_msg(&e, q, "never", &x);
    assert_int_equal(x.status, QFS_UNAVAILABLE);
    assert_int_equal(x.attempts, 4);
    assert_string_equal(x.code, "ServiceUnavailable");
    cJSON_Delete(admin("DELETE", "/_sim/faults", NULL));

    /* Secrets Manager through the same path. */
    cJSON_Delete(admin("POST", "/_sim/secrets",
                       "{\"name\":\"qfs/qualys\",\"secret_string\":{\"token\":\"qualys-canary-0001\"}}"));
    memset(&x, 0, sizeof(x));
    assert_int_equal(qfs_secrets_get(e.aws, "qfs/qualys", NULL, on_secret, &x), QFS_OK);
    wait_for(&e, &x.done);
    assert_int_equal(x.status, QFS_OK);
    assert_string_equal(x.text, "{\"token\":\"qualys-canary-0001\"}");
    free(q);
    env_finish(&e);
}

static void test_conditional_check_failed(void **state)
{
    struct env e;
    env_start(&e, HUB_SECRET);
    env_client(&e);
    struct res x;
    raw_call(&e, QFS_AWS_DYNAMODB, QFS_AWS_JSON_1_0, "DynamoDB_20120810.CreateTable",
             "{\"TableName\":\"qfs-it-cache\",\"AttributeDefinitions\":[{\"AttributeName\":\"pk\","
             "\"AttributeType\":\"S\"}],\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],"
             "\"BillingMode\":\"PAY_PER_REQUEST\"}", &x);
    assert_int_equal(x.status, QFS_OK);
    const char *put = "{\"TableName\":\"qfs-it-cache\",\"Item\":{\"pk\":{\"S\":\"inflight#web\"}},"
                      "\"ConditionExpression\":\"attribute_not_exists(pk)\"}";
    raw_call(&e, QFS_AWS_DYNAMODB, QFS_AWS_JSON_1_0, "DynamoDB_20120810.PutItem", put, &x);
    assert_int_equal(x.status, QFS_OK);
    /* The second put-if-absent loses: a distinct, readable signal, and no retry. */
    struct res lost;
    raw_call(&e, QFS_AWS_DYNAMODB, QFS_AWS_JSON_1_0, "DynamoDB_20120810.PutItem", put, &lost);
    assert_int_equal(lost.status, QFS_PROTOCOL);
    assert_string_equal(lost.code, "ConditionalCheckFailedException");
    assert_true(lost.condition_failed);
    assert_int_equal(lost.attempts, 1);
    env_finish(&e);
}

static void test_shutdown_with_calls_pending(void **state)
{
    /* A long poll in flight is cancelled by the HTTP client's shutdown. */
    struct env e;
    env_start(&e, HUB_SECRET);
    env_client(&e);
    char *q = create_queue(&e, "qfs-it-shutdown");
    struct res polling;
    memset(&polling, 0, sizeof(polling));
    struct qfs_sqs_receive_params p = {.queue_url = q, .max_messages = 10, .wait_seconds = 20,
                                       .visibility_timeout = -1};
    assert_int_equal(qfs_sqs_receive(e.aws, &p, on_received, &polling), QFS_OK);
    run_for(&e, 300);
    assert_false(polling.done);
    qfs_aws_free(e.aws);
    qfs_http_free(e.http);
    assert_true(polling.done);
    assert_int_equal(polling.status, QFS_UNAVAILABLE);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
    free(q);

    /* A call still waiting for container credentials ends when the client is freed. */
    env_start(&e, NULL);
    char uri[128];
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/creds", qfs_test_free_port());
    e.vars[2] = (struct kv){"AWS_CONTAINER_CREDENTIALS_FULL_URI", uri};
    env_client(&e);
    struct res waiting;
    memset(&waiting, 0, sizeof(waiting));
    const char *body = "Action=GetCallerIdentity&Version=2011-06-15";
    struct qfs_aws_call c = {.service = QFS_AWS_STS, .protocol = QFS_AWS_QUERY, .body = body,
                             .body_len = strlen(body)};
    assert_int_equal(qfs_aws_call(e.aws, &c, on_call, &waiting), QFS_OK);
    assert_false(waiting.done);
    qfs_aws_free(e.aws);
    assert_true(waiting.done);
    assert_int_equal(waiting.status, QFS_UNAVAILABLE);
    qfs_http_free(e.http);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqs_round_trip),
        cmocka_unit_test(test_wrong_secret_is_denied),
        cmocka_unit_test(test_assumed_role_in_member_account),
        cmocka_unit_test(test_container_credentials),
        cmocka_unit_test(test_sns_publish),
        cmocka_unit_test(test_throttling_is_retried),
        cmocka_unit_test(test_conditional_check_failed),
        cmocka_unit_test(test_shutdown_with_calls_pending),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
