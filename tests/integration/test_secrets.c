/* Secrets stay secret: the six services run over the local stack with canary values for every
 * credential they handle, drive one deploy through to the SNS message and two poison messages
 * into the dead-letter queue, and none of the canaries shows up anywhere an operator or a
 * subscriber can read: service logs, stored bus messages, core messages seen live on qfs.>, DLQ
 * entries (payloads decoded), the SQS DLQ, SNS messages, or any service's --check-config output.
 *
 * The canaries, and where each is used:
 *   - the Qualys password: put into the qfs/qualys secret (Secrets Manager PutSecretValue through
 *     aws-sim) and made qualys-sim's password; qfs-registry reads it and exchanges it for JWTs;
 *   - the JWTs qualys-sim issues: any token's first segment (the HS512 header every one of them
 *     starts with), and the whole of one issued to the test itself;
 *   - a static Qualys API token: registered with qualys-sim, qfs-scanner-poller's only credential;
 *   - an IAM user's secret access key: registered with aws-sim, the key of parser, cache,
 *     registry and scanner-poller;
 *   - a session token and its secret key: from aws-sim's container-credentials endpoint, which
 *     qfs-ingest and qfs-notifier use through AWS_CONTAINER_CREDENTIALS_FULL_URI.
 * Each is shown to have been used (calls signed with the keys, tokens issued, the scan done by the
 * token holder), so the test cannot pass by accident. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/aws_sqs.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/proto_dlq.h"
#include "qfs/util.h"
#include "testlib.h"

#define HUB "111122223333"
#define REGION "eu-west-1"
#define REPO "secrets-canary"
#define TAG "1.0"
#define QUALYS_USER "qfs-sim-user"

static const char *const services[] = {"ingest", "parser", "cache", "registry", "scanner-poller",
                                       "notifier"};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

static const char *const service_env[] = {
    "QFS_HUB_ACCOUNT_ID=" HUB, "QFS_LOG_LEVEL=debug", "QFS_SQS_WAIT_SECONDS=1",
    "QFS_POLL_INTERVAL_SECONDS=1", "QFS_POLL_FIRST_DELAYS=1", "QFS_MAX_POLL_ATTEMPTS=8",
    "QFS_NOTIFY_MIN_SEVERITY=high", "QFS_ACK_WAIT=30s", "QFS_METRICS_INTERVAL=1s", NULL};

enum { C_PASSWORD, C_JWT_HEADER, C_JWT_OWN, C_API_TOKEN, C_AWS_SECRET, C_SESSION_TOKEN,
       C_SESSION_SECRET, C_REDIS_PASSWORD, NCANARIES };

static const char *const canary_names[NCANARIES] = {
    "Qualys password", "JWT header of qualys-sim tokens", "JWT issued to the test",
    "static Qualys API token", "IAM user secret access key", "container session token",
    "container secret access key", "Redis password (--check-config only)"};

/* Everything a core subscription to qfs.> saw: subject, headers and data of each message. */
struct live {
    pthread_mutex_t mu;
    struct qfs_buf text;
    size_t messages;
    size_t stats;
};

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *svc[NSERVICES];
    char *canary[NCANARIES];
    char akid[32];           /* the IAM user of C_AWS_SECRET */
    char container_akid[64]; /* the access key id of the container credentials */
    char full_uri[500];
    natsConnection *nc;
    natsSubscription *sub;
    struct live live;
};

static struct env *E;

static const char *aws_url(void) { return qfs_test_stack_get(&E->stack, "QFS_SIM_AWS_URL"); }
static const char *qualys_url(void) { return qfs_test_stack_get(&E->stack, "QFS_SIM_QUALYS_URL"); }
static const char *nats_url(void) { return qfs_test_stack_get(&E->stack, "QFS_NATS_URL"); }

static char *random_hex(size_t n)
{
    unsigned char raw[32];
    FILE *f = fopen("/dev/urandom", "rb");
    assert_non_null(f);
    assert_int_equal(fread(raw, 1, n / 2, f), n / 2);
    fclose(f);
    char *s = calloc(n + 1, 1);
    for (size_t i = 0; i < n / 2; i++) snprintf(s + 2 * i, 3, "%02x", raw[i]);
    return s;
}

static char *canary(const char *prefix)
{
    char *hex = random_hex(24);
    char *s = qfs_xasprintf("%s%s", prefix, hex);
    free(hex);
    return s;
}

/* ---- signed AWS calls from the test, through libqfs ---------------------------------------- */

static const char *stack_env(const char *name, void *arg)
{
    return qfs_test_stack_get(&E->stack, name);
}

struct aws_done {
    bool done;
    qfs_status status;
    long code;
};

static void on_aws(const struct qfs_aws_response *r, void *arg)
{
    struct aws_done *d = arg;
    d->done = true;
    d->status = r->status;
    d->code = r->http_code;
}

static void on_sent(const struct qfs_aws_response *r, const char *message_id, void *arg)
{
    on_aws(r, arg);
}

/* Runs one signed call with the stack's credentials; SQS SendMessage when queue_url is set. */
static void aws_sync(const struct qfs_aws_call *c, const char *queue_url, const char *message)
{
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_aws *aws;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);
    struct qfs_aws_options o = {.env = stack_env};
    assert_int_equal(qfs_aws_new(&loop, http, &o, &aws), QFS_OK);
    struct aws_done d = {0};
    if (queue_url)
        assert_int_equal(qfs_sqs_send(aws, queue_url, message, strlen(message), 0, on_sent, &d), QFS_OK);
    else
        assert_int_equal(qfs_aws_call(aws, c, on_aws, &d), QFS_OK);
    assert_true(qfs_loop_run_until_flag(&loop, &d.done, 60000));
    qfs_aws_free(aws);
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (d.status != QFS_OK) fail_msg("AWS call failed: %s, HTTP %ld", qfs_status_str(d.status), d.code);
}

/* Makes the canary the Qualys password, in the secret and in qualys-sim. */
static void set_qualys_password(void)
{
    cJSON *secret = cJSON_CreateObject();
    cJSON_AddStringToObject(secret, "username", QUALYS_USER);
    cJSON_AddStringToObject(secret, "password", E->canary[C_PASSWORD]);
    char *secret_text = cJSON_PrintUnformatted(secret);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "SecretId", qfs_test_stack_get(&E->stack, "QFS_QUALYS_SECRET_ARN"));
    cJSON_AddStringToObject(req, "SecretString", secret_text);
    char *body = cJSON_PrintUnformatted(req);
    struct qfs_aws_call c = {.service = QFS_AWS_SECRETS_MANAGER, .protocol = QFS_AWS_JSON_1_1,
                             .target = "secretsmanager.PutSecretValue", .body = body,
                             .body_len = strlen(body)};
    aws_sync(&c, NULL, NULL);
    free(body);
    cJSON_Delete(req);
    free(secret_text);
    cJSON_Delete(secret);

    char *cfg = qfs_xasprintf("{\"password\":\"%s\",\"addApiToken\":\"%s\"}", E->canary[C_PASSWORD],
                              E->canary[C_API_TOKEN]);
    qfs_test_http_ok("POST", qualys_url(), "/_sim/config", cfg);
    free(cfg);
}

/* Issues a JWT with the canary password, as qfs-registry will: its header segment is the same in
 * every token qualys-sim issues, so it finds any of them in the artifacts. */
static void issue_own_jwt(void)
{
    char cmd[1200];
    char tmp[] = "/tmp/qfs-jwt-XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "curl -s -o '%s' -w '%%{http_code}' -X POST --data-urlencode 'username=%s' "
             "--data-urlencode 'password=%s' --data 'token=true' '%s/auth'",
             tmp, QUALYS_USER, E->canary[C_PASSWORD], qualys_url());
    FILE *p = popen(cmd, "r");
    int code = 0;
    if (p) {
        if (fscanf(p, "%d", &code) != 1) code = 0;
        pclose(p);
    }
    char *jwt = qfs_test_read_file(tmp, NULL);
    unlink(tmp);
    if (code != 201 || !jwt || !strchr(jwt, '.')) fail_msg("POST /auth with the canary password: %d", code);
    size_t len = strlen(jwt);
    while (len && (jwt[len - 1] == '\n' || jwt[len - 1] == '\r' || jwt[len - 1] == ' ')) jwt[--len] = '\0';
    E->canary[C_JWT_OWN] = jwt;
    E->canary[C_JWT_HEADER] = qfs_xstrndup(jwt, (size_t)(strchr(jwt, '.') - jwt) + 1);
}

/* The container credentials aws-sim hands out now (the same set until they expire). */
static void read_container_credentials(void)
{
    char url[400];
    snprintf(url, sizeof(url), "%s/v2/credentials/task", aws_url());
    cJSON *c = qfs_test_http_json("GET", url, NULL);
    assert_non_null(c);
    E->canary[C_SESSION_TOKEN] = strdup(cJSON_GetObjectItem(c, "Token")->valuestring);
    E->canary[C_SESSION_SECRET] = strdup(cJSON_GetObjectItem(c, "SecretAccessKey")->valuestring);
    snprintf(E->container_akid, sizeof(E->container_akid), "%s", cJSON_GetObjectItem(c, "AccessKeyId")->valuestring);
    cJSON_Delete(c);
    snprintf(E->full_uri, sizeof(E->full_uri), "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s", url);
}

/* ---- the live subscription ----------------------------------------------------------------- */

static void on_live(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    struct live *l = arg;
    pthread_mutex_lock(&l->mu);
    l->messages++;
    if (strncmp(natsMsg_GetSubject(m), "qfs.stats.", 10) == 0) l->stats++;
    qfs_buf_puts(&l->text, natsMsg_GetSubject(m));
    qfs_buf_puts(&l->text, "\n");
    const char **keys = NULL;
    int nkeys = 0;
    if (natsMsgHeader_Keys(m, &keys, &nkeys) == NATS_OK) {
        for (int i = 0; i < nkeys; i++) {
            const char **values = NULL;
            int nvalues = 0;
            qfs_buf_printf(&l->text, "%s:", keys[i]);
            if (natsMsgHeader_Values(m, keys[i], &values, &nvalues) == NATS_OK) {
                for (int k = 0; k < nvalues; k++) qfs_buf_printf(&l->text, " %s", values[k]);
                free((void *)values);
            }
            qfs_buf_puts(&l->text, "\n");
        }
        free((void *)keys);
    }
    qfs_buf_append(&l->text, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    qfs_buf_puts(&l->text, "\n");
    pthread_mutex_unlock(&l->mu);
    natsMsg_Destroy(m);
}

/* ---- setup --------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    E = calloc(1, sizeof(*E));
    E->dir = qfs_test_tmpdir("secrets");
    qfs_test_stack_up(&E->stack, E->dir);

    E->canary[C_PASSWORD] = canary("QfsCanaryPassword");
    E->canary[C_API_TOKEN] = canary("QfsCanaryApiToken");
    E->canary[C_AWS_SECRET] = canary("QfsCanaryAwsSecretKey");
    E->canary[C_REDIS_PASSWORD] = canary("QfsCanaryRedisPassword");
    char *id = random_hex(12);
    for (char *p = id; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 32);
    snprintf(E->akid, sizeof(E->akid), "AKIACANARY%s", id);
    free(id);

    /* The secret is written with the stack's own key, before the services get the canary one. */
    set_qualys_password();
    issue_own_jwt();
    char *cred = qfs_xasprintf("{\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\",\"account\":\"%s\","
                               "\"user_name\":\"qfs-canary\"}", E->akid, E->canary[C_AWS_SECRET], HUB);
    qfs_test_http_ok("POST", aws_url(), "/_sim/credentials", cred);
    free(cred);
    char kv[300];
    snprintf(kv, sizeof(kv), "AWS_ACCESS_KEY_ID=%s", E->akid);
    qfs_test_stack_set(&E->stack, kv);
    snprintf(kv, sizeof(kv), "AWS_SECRET_ACCESS_KEY=%s", E->canary[C_AWS_SECRET]);
    qfs_test_stack_set(&E->stack, kv);
    read_container_credentials();

    pthread_mutex_init(&E->live.mu, NULL);
    qfs_buf_init(&E->live.text, 256u << 20);
    assert_int_equal(natsConnection_ConnectTo(&E->nc, nats_url()), NATS_OK);
    assert_int_equal(natsConnection_Subscribe(&E->sub, E->nc, "qfs.>", on_live, &E->live), NATS_OK);
    assert_int_equal(natsConnection_Flush(E->nc), NATS_OK);

    for (size_t i = 0; i < NSERVICES; i++) {
        const char *extra[16];
        size_t n = 0;
        for (size_t k = 0; service_env[k]; k++) extra[n++] = service_env[k];
        char *token = NULL;
        if (strcmp(services[i], "ingest") == 0 || strcmp(services[i], "notifier") == 0) {
            extra[n++] = "AWS_ACCESS_KEY_ID=";
            extra[n++] = "AWS_SECRET_ACCESS_KEY=";
            extra[n++] = E->full_uri;
        } else if (strcmp(services[i], "scanner-poller") == 0) {
            token = qfs_xasprintf("QUALYS_API_TOKEN=%s", E->canary[C_API_TOKEN]);
            extra[n++] = "QFS_QUALYS_SECRET_ARN=";
            extra[n++] = token;
        }
        extra[n] = NULL;
        E->svc[i] = qfs_test_service_start(&E->stack, services[i], NULL, extra);
        free(token); /* the child has its own copy of the environment */
    }
    return 0;
}

static int group_teardown(void **state)
{
    for (size_t i = 0; i < NSERVICES; i++) qfs_test_proc_stop(E->svc[i]);
    if (E->sub) {
        natsSubscription_Unsubscribe(E->sub);
        natsSubscription_Destroy(E->sub);
    }
    natsConnection_Destroy(E->nc);
    qfs_buf_cleanup(&E->live.text);
    pthread_mutex_destroy(&E->live.mu);
    qfs_test_stack_down(&E->stack);
    qfs_test_rmrf(E->dir);
    for (int i = 0; i < NCANARIES; i++) free(E->canary[i]);
    free(E->dir);
    free(E);
    return 0;
}

static void dump_logs(void)
{
    for (size_t i = 0; i < NSERVICES; i++) qfs_test_proc_dump_log(E->svc[i], 15);
}

/* ---- looking for canaries ------------------------------------------------------------------ */

/* Fails naming the canary and the place when any canary occurs in text. */
static void assert_clean(const char *where, const char *text, size_t len)
{
    for (int i = 0; i < NCANARIES; i++) {
        const char *c = E->canary[i];
        if (!c || !text) continue;
        const char *hit = memmem(text, len, c, strlen(c));
        if (hit) {
            size_t off = (size_t)(hit - text);
            size_t from = off > 60 ? off - 60 : 0;
            size_t show = len - from < 160 ? len - from : 160;
            fail_msg("the %s appears in %s at byte %zu: ...%.*s...", canary_names[i], where, off, (int)show,
                     text + from);
        }
    }
}

static void assert_clean_json(const char *where, const cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    assert_non_null(text);
    assert_clean(where, text, strlen(text));
    free(text);
}

/* Every stored message on filter, raw (headers and bytes), through an ephemeral consumer. */
struct raw_msg {
    char subject[128];
    char *data;
    size_t len;
    char *headers;
};

static size_t stored_raw(const char *filter, struct raw_msg **out)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckNone;
    jsErrCode jerr = 0;
    size_t n = 0, cap = 64;
    struct raw_msg *v = calloc(cap, sizeof(*v));
    assert_int_equal(natsConnection_ConnectTo(&nc, nats_url()), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_SubscribeSync(&sub, js, filter, NULL, &so, &jerr), NATS_OK);
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 500) == NATS_OK) {
        if (n == cap) v = realloc(v, (cap *= 2) * sizeof(*v));
        struct raw_msg *r = &v[n++];
        snprintf(r->subject, sizeof(r->subject), "%s", natsMsg_GetSubject(m));
        r->len = (size_t)natsMsg_GetDataLength(m);
        r->data = malloc(r->len + 1);
        memcpy(r->data, natsMsg_GetData(m), r->len);
        r->data[r->len] = '\0';
        struct qfs_buf h;
        qfs_buf_init(&h, 1 << 20);
        qfs_buf_puts(&h, "");
        const char **keys = NULL;
        int nkeys = 0;
        if (natsMsgHeader_Keys(m, &keys, &nkeys) == NATS_OK) {
            for (int i = 0; i < nkeys; i++) {
                const char *val = NULL;
                natsMsgHeader_Get(m, keys[i], &val);
                qfs_buf_printf(&h, "%s: %s\n", keys[i], val ? val : "");
            }
            free((void *)keys);
        }
        r->headers = qfs_buf_take(&h);
        qfs_buf_cleanup(&h);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    *out = v;
    return n;
}

static void raw_free(struct raw_msg *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].data);
        free(v[i].headers);
    }
    free(v);
}

/* ---- driving the pipeline ------------------------------------------------------------------ */

static void seed_image(void)
{
    cJSON *img = cJSON_CreateObject();
    cJSON_AddStringToObject(img, "account", HUB);
    cJSON_AddStringToObject(img, "region", REGION);
    cJSON_AddStringToObject(img, "repository", REPO);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(img, "tags"), cJSON_CreateString(TAG));
    char digest[80], sha[80];
    snprintf(digest, sizeof(digest), "sha256:%064x", 0x5ec7e7);
    snprintf(sha, sizeof(sha), "%064x", 0x5ec7e8);
    cJSON_AddStringToObject(img, "digest", digest);
    cJSON_AddStringToObject(img, "image_sha", sha);
    cJSON_AddNumberToObject(img, "size", 1000000);
    cJSON_AddStringToObject(img, "operating_system", "Alpine Linux 3.19.1");
    cJSON_AddNumberToObject(img, "pushed_at", 1777629600);
    cJSON *vulns = cJSON_AddArrayToObject(img, "vulns");
    for (int i = 0; i < 3; i++) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddNumberToObject(v, "qid", 970000 + i);
        cJSON_AddNumberToObject(v, "severity", i ? 4 : 5);
        cJSON_AddStringToObject(v, "title", "Canary test finding");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(v, "cves"), cJSON_CreateString("CVE-2026-55555"));
        cJSON_AddStringToObject(v, "package", "openssl");
        cJSON_AddStringToObject(v, "installed_version", "3.1.4-r2");
        cJSON_AddStringToObject(v, "fixed_version", "3.1.4-r5");
        cJSON_AddItemToArray(vulns, v);
    }
    qfs_test_seed_image(&E->stack, img);
    cJSON_Delete(img);
}

static void deploy(const char *event_id)
{
    char *ev = qfs_xasprintf(
        "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.ecs\","
        "\"account\":\"" HUB "\",\"time\":\"2026-05-01T10:00:00Z\",\"region\":\"" REGION "\",\"resources\":[],"
        "\"detail\":{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\",\"eventName\":"
        "\"RegisterTaskDefinition\",\"awsRegion\":\"" REGION "\",\"eventTime\":\"2026-05-01T10:00:00Z\","
        "\"recipientAccountId\":\"" HUB "\",\"userIdentity\":{\"arn\":\"arn:aws:sts::" HUB
        ":assumed-role/ci-deploy/run-1\"},\"responseElements\":{\"taskDefinition\":{\"taskDefinitionArn\":"
        "\"arn:aws:ecs:" REGION ":" HUB ":task-definition/canary:1\",\"containerDefinitions\":[{\"name\":\"app\","
        "\"image\":\"" HUB ".dkr.ecr." REGION ".amazonaws.com/" REPO ":" TAG "\"}]}}}}",
        event_id);
    qfs_test_deliver_event(&E->stack, ev);
    free(ev);
}

static cJSON *sim_json(const char *base, const char *path)
{
    char url[700];
    snprintf(url, sizeof(url), "%s%s", base, path);
    cJSON *j = qfs_test_http_json("GET", url, NULL);
    if (!j) fail_msg("GET %s failed", path);
    return j;
}

static bool sns_sent(void *arg)
{
    cJSON *all = sim_json(aws_url(), "/_sim/sns/messages");
    char *text = cJSON_PrintUnformatted(all);
    bool found = strstr(text, REPO ":" TAG) != NULL;
    free(text);
    cJSON_Delete(all);
    return found;
}

static bool dlq_entries(void *arg)
{
    cJSON *l = qfs_test_stored(nats_url(), "qfs.dlq.>");
    bool ingest = false, cache = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, l) {
        const char *s = cJSON_GetObjectItem(m, "_subject")->valuestring;
        ingest |= strcmp(s, "qfs.dlq.ingest") == 0;
        cache |= strcmp(s, "qfs.dlq.cache") == 0;
    }
    cJSON_Delete(l);
    return ingest && cache;
}

static void publish_poison(void)
{
    natsMsg *m = NULL;
    static const char junk[] = "{\"schema\":\"qfs.image.v1\",\"not\":\"an image record";
    assert_int_equal(natsMsg_Create(&m, "qfs.images." HUB "." REGION, NULL, junk, (int)sizeof(junk) - 1), NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", "poison:secrets-test:1");
    natsMsgHeader_Set(m, "Qfs-Schema", "qfs.image.v1");
    assert_int_equal(natsConnection_PublishMsg(E->nc, m), NATS_OK);
    natsMsg_Destroy(m);
    assert_int_equal(natsConnection_Flush(E->nc), NATS_OK);

    /* And one on SQS that is no EventBridge event, which qfs-ingest must dead-letter. */
    aws_sync(NULL, qfs_test_stack_get(&E->stack, "QFS_SQS_QUEUE_URL"), "{\"hello\":\"not an event\"}");
}

/* Calls aws-sim logged as signed with access_key_id. */
static int aws_calls_with(const char *akid)
{
    cJSON *c = sim_json(aws_url(), "/_sim/calls");
    int n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(c, "calls")) {
        const cJSON *k = cJSON_GetObjectItem(x, "access_key_id");
        if (cJSON_IsString(k) && strcmp(k->valuestring, akid) == 0) n++;
    }
    cJSON_Delete(c);
    return n;
}

static void test_canaries_never_leave_the_process(void **state)
{
    seed_image();
    deploy("evt-secrets-canary");
    if (!qfs_test_eventually(sns_sent, NULL, 90000)) {
        dump_logs();
        fail_msg("no SNS message for " REPO ":" TAG);
    }
    publish_poison();
    if (!qfs_test_eventually(dlq_entries, NULL, 60000)) {
        dump_logs();
        fail_msg("the poison messages did not reach qfs.dlq.ingest and qfs.dlq.cache");
    }
    sleep(2); /* a few more statistics on the live subscription */

    /* The canaries were in use: each key signed calls, tokens were issued for the password, and
     * the scan went through the holder of the static token. */
    if (aws_calls_with(E->akid) == 0) fail_msg("no AWS call was signed with the canary IAM key");
    if (aws_calls_with(E->container_akid) == 0) fail_msg("no AWS call used the container credentials");
    cJSON *cc = sim_json(aws_url(), "/_sim/container-credentials");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cc, "current"), "access_key_id")->valuestring,
                        E->container_akid); /* not rotated: the token read is the one used */
    cJSON_Delete(cc);
    cJSON *qs = sim_json(qualys_url(), "/_sim/state");
    int issued = cJSON_GetObjectItem(cJSON_GetObjectItem(qs, "tokens"), "issued")->valueint;
    if (issued < 2) fail_msg("qualys-sim issued %d tokens: the registry never used the password", issued);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(qs, "schedules")) >= 1);
    cJSON_Delete(qs);
    cJSON *done = qfs_test_stored(nats_url(), "qfs.scans.completed.>");
    assert_true(cJSON_GetArraySize(done) >= 1);
    cJSON_Delete(done);

    /* Service logs: every line each service wrote. */
    char logs[700];
    snprintf(logs, sizeof(logs), "%s/logs", E->stack.dir);
    DIR *d = opendir(logs);
    assert_non_null(d);
    struct dirent *e;
    int nlogs = 0;
    size_t total = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "qfs-", 4) != 0) continue;
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", logs, e->d_name);
        size_t len = 0;
        char *text = qfs_test_read_file(path, &len);
        assert_non_null(text);
        assert_clean(e->d_name, text, len);
        total += len;
        nlogs++;
        free(text);
    }
    closedir(d);
    assert_int_equal(nlogs, (int)NSERVICES);
    assert_true(total > 10000); /* debug logs of a whole run, not empty files */

    /* Stored bus messages, parsed and raw (headers included). */
    cJSON *stored = qfs_test_stored(nats_url(), "qfs.>");
    assert_true(cJSON_GetArraySize(stored) >= 6);
    assert_clean_json("a stored bus message", stored);
    cJSON_Delete(stored);
    struct raw_msg *raw = NULL;
    size_t nraw = stored_raw("qfs.>", &raw);
    size_t ndlq = 0;
    for (size_t i = 0; i < nraw; i++) {
        assert_clean(raw[i].subject, raw[i].data, raw[i].len);
        assert_clean(raw[i].subject, raw[i].headers, strlen(raw[i].headers));
        if (strncmp(raw[i].subject, "qfs.dlq.", 8) != 0) continue;
        /* DLQ entries: the payload may be base64 on the wire; look at the bytes it stands for. */
        struct qfs_dlq_entry entry;
        char err[256];
        if (qfs_dlq_entry_decode(raw[i].data, raw[i].len, &entry, err, sizeof(err)) != QFS_OK)
            fail_msg("DLQ entry on %s does not decode: %s", raw[i].subject, err);
        assert_clean("a DLQ entry's reason", entry.reason, strlen(entry.reason));
        assert_clean("a DLQ entry's payload", entry.payload, entry.payload_len);
        for (size_t k = 0; k < entry.nheaders; k++) {
            assert_clean("a DLQ entry's header", entry.headers[k].name, strlen(entry.headers[k].name));
            assert_clean("a DLQ entry's header", entry.headers[k].value, strlen(entry.headers[k].value));
        }
        qfs_dlq_entry_cleanup(&entry);
        ndlq++;
    }
    raw_free(raw, nraw);
    assert_true(ndlq >= 2);

    /* Everything seen live on qfs.>, statistics included (they are not stored). */
    pthread_mutex_lock(&E->live.mu);
    assert_true(E->live.messages > 0 && E->live.stats > 0);
    assert_clean("a message seen on qfs.>", E->live.text.data, E->live.text.len);
    pthread_mutex_unlock(&E->live.mu);

    /* The SQS dead-letter queue and the SNS messages. */
    char path[600];
    snprintf(path, sizeof(path), "/_sim/sqs/messages?queue=%s", qfs_test_stack_get(&E->stack, "QFS_SQS_DLQ_URL"));
    cJSON *sqs_dlq = sim_json(aws_url(), path);
    assert_clean_json("the SQS DLQ", sqs_dlq);
    cJSON_Delete(sqs_dlq);
    cJSON *sns = sim_json(aws_url(), "/_sim/sns/messages");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(sns, "messages")) >= 1);
    assert_clean_json("an SNS message", sns);
    cJSON_Delete(sns);
}

/* Runs qfs-<service> --check-config with the stack's environment plus extra; returns everything it
 * printed (caller frees) and its exit code in *code. */
static char *check_config(const char *service, const char *const extra[], int *code)
{
    static int seq;
    char bin[600], log[800];
    snprintf(bin, sizeof(bin), "%s/qfs-%s", qfs_test_env("QFS_BIN_DIR", "build/bin"), service);
    snprintf(log, sizeof(log), "%s/check-config-%d.log", E->dir, ++seq);
    const char *env[256];
    size_t n = 0;
    for (size_t i = 0; i < E->stack.nenv && n < 200; i++) env[n++] = E->stack.env[i];
    for (size_t i = 0; service_env[i]; i++) env[n++] = service_env[i];
    for (size_t i = 0; extra && extra[i]; i++) env[n++] = extra[i];
    env[n] = NULL;
    const char *argv[] = {bin, "--check-config", NULL};
    struct qfs_test_proc *p = qfs_test_spawn(service, argv, env, log, false);
    int st = 0;
    *code = qfs_test_proc_wait(p, 15000, &st) && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    qfs_test_proc_stop(p);
    char *out = qfs_test_read_file(log, NULL);
    return out ? out : strdup("");
}

static void test_check_config_never_prints_a_canary(void **state)
{
    char *token = qfs_xasprintf("QUALYS_API_TOKEN=%s", E->canary[C_API_TOKEN]);
    char *password = qfs_xasprintf("QUALYS_PASSWORD=%s", E->canary[C_PASSWORD]);
    char *redis = qfs_xasprintf("QFS_REDIS_URL=redis://:%s@127.0.0.1:6379/0", E->canary[C_REDIS_PASSWORD]);
    char *session = qfs_xasprintf("AWS_SESSION_TOKEN=%s", E->canary[C_SESSION_TOKEN]);
    char *auth = qfs_xasprintf("AWS_CONTAINER_AUTHORIZATION_TOKEN=%s", E->canary[C_SESSION_SECRET]);
    /* As each service ran, then with every secret a service can be given in its environment. */
    const char *as_run_container[] = {"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", E->full_uri, redis, auth, NULL};
    const char *as_run_token[] = {"QFS_QUALYS_SECRET_ARN=", token, redis, session, NULL};
    const char *as_run_password[] = {"QFS_QUALYS_SECRET_ARN=", "QUALYS_USERNAME=" QUALYS_USER, password, redis,
                                     session, NULL};
    const char *as_run[] = {redis, session, NULL};
    for (size_t i = 0; i < NSERVICES; i++) {
        const char *const *variants[3] = {as_run, NULL, NULL};
        if (strcmp(services[i], "ingest") == 0 || strcmp(services[i], "notifier") == 0)
            variants[1] = as_run_container;
        if (strcmp(services[i], "registry") == 0 || strcmp(services[i], "scanner-poller") == 0) {
            variants[1] = as_run_token;
            variants[2] = as_run_password;
        }
        for (int v = 0; v < 3 && variants[v]; v++) {
            int code = 0;
            char *out = check_config(services[i], variants[v], &code);
            if (code != 0) fail_msg("qfs-%s --check-config (variant %d) exited %d:\n%s", services[i], v, code, out);
            char where[100];
            snprintf(where, sizeof(where), "qfs-%s --check-config (variant %d)", services[i], v);
            assert_clean(where, out, strlen(out));
            /* It did print its configuration, secrets masked. */
            assert_non_null(strstr(out, "QFS_NATS_URL="));
            free(out);
        }
    }
    free(token);
    free(password);
    free(redis);
    free(session);
    free(auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canaries_never_leave_the_process),
        cmocka_unit_test(test_check_config_never_prints_a_canary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
