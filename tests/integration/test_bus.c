/* The runtime and bus against a real nats-server with JetStream: publish, consume, ack, retries,
 * delayed redelivery, dead letters, drain on SIGTERM, racing set-up and duplicate suppression. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define IN_SUBJECT "qfs.events.111122223333.eu-west-1"
#define CANARY "CANARY-echo-secret-93af0c"

struct env {
    char *dir;
    struct qfs_test_nats nats;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *out;  /* qfs.images.> */
    natsSubscription *dlq;  /* qfs.dlq.> */
    struct qfs_test_proc *svc[2];
    int nsvc;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_echo_with(struct env *e, int idx, const char *extra);

static void start_echo(struct env *e, int idx)
{
    start_echo_with(e, idx, NULL);
}

static void start_echo_with(struct env *e, int idx, const char *extra)
{
    char bin[1024], log[1024], nats_env[128], run_env[1024];
    snprintf(bin, sizeof(bin), "%s/qfs-test-echo", qfs_test_env("QFS_BIN_DIR", "build/bin"));
    snprintf(log, sizeof(log), "%s/echo-%d.log", e->dir, idx);
    snprintf(nats_env, sizeof(nats_env), "QFS_NATS_URL=%s", e->nats.url);
    snprintf(run_env, sizeof(run_env), "QFS_RUN_DIR=%s/run%d", e->dir, idx);
    char mk[1100];
    snprintf(mk, sizeof(mk), "%s/run%d", e->dir, idx);
    mkdir(mk, 0755);
    const char *argv[] = {bin, NULL};
    const char *envv[] = {nats_env, run_env, "QFS_TEST_SECRET=" CANARY, "QFS_ACK_WAIT=30s",
                          "QFS_MAX_DELIVER=5", "QFS_LOG_LEVEL=debug", extra, NULL};
    e->svc[idx] = qfs_test_spawn("qfs-test-echo", argv, envv, log, false);
    if (idx >= e->nsvc) e->nsvc = idx + 1;
}

/* Runs `qfs-test-echo --health` with instance idx's run dir; returns its exit code. */
static int echo_health(struct env *e, int idx)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "QFS_RUN_DIR=%s/run%d %s/qfs-test-echo --health >/dev/null", e->dir, idx,
             qfs_test_env("QFS_BIN_DIR", "build/bin"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct health_arg {
    struct env *e;
    int idx;
};

static bool is_healthy(void *arg)
{
    struct health_arg *h = arg;
    return echo_health(h->e, h->idx) == 0;
}

static void wait_healthy(struct env *e, int idx)
{
    struct health_arg h = {e, idx};
    if (!qfs_test_eventually(is_healthy, &h, 20000)) {
        qfs_test_proc_dump_log(e->svc[idx], 40);
        fail_msg("qfs-test-echo %d never became healthy", idx);
    }
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("bus");
    qfs_test_nats_start(&e->nats, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, e->nats.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&e->out, e->nc, "qfs.images.>"), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&e->dlq, e->nc, "qfs.dlq.>"), NATS_OK);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < e->nsvc; i++) qfs_test_proc_stop(e->svc[i]);
    natsSubscription_Destroy(e->out);
    natsSubscription_Destroy(e->dlq);
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_nats_stop(&e->nats);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Publishes body with a Nats-Msg-Id through JetStream; returns whether the stream called it a
 * duplicate. Retries while the service has not created the stream yet. */
static bool js_publish(struct env *e, const char *body, size_t len, const char *msg_id)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    for (int attempt = 0; attempt < 100; attempt++) {
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_Publish(&pa, e->js, IN_SUBJECT, body, (int)len, &po, &jerr);
        if (s == NATS_OK) {
            bool dup = pa->Duplicate;
            jsPubAck_Destroy(pa);
            return dup;
        }
        usleep(100000);
    }
    if (e->nsvc) qfs_test_proc_dump_log(e->svc[0], 60);
    fail_msg("could not publish to the stream");
    return false;
}

/* Waits for the next message on sub; returns its parsed JSON body (caller deletes) or NULL. */
static cJSON *next_json(natsSubscription *sub, int timeout_ms, char **raw)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, timeout_ms) != NATS_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    if (raw) *raw = strndup(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
    return j;
}

static bool no_message(natsSubscription *sub, int wait_ms)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, wait_ms) == NATS_OK) {
        natsMsg_Destroy(m);
        return false;
    }
    return true;
}

static jsConsumerInfo *consumer_info(struct env *e)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetConsumerInfo(&ci, e->js, "QFS", "echo-events", NULL, &jerr), NATS_OK);
    return ci;
}

struct settled_arg {
    struct env *e;
};

static bool all_settled(void *arg)
{
    struct env *e = arg;
    jsConsumerInfo *ci = consumer_info(e);
    bool ok = ci->NumAckPending == 0 && ci->NumPending == 0;
    jsConsumerInfo_Destroy(ci);
    return ok;
}

/* Publishes body with Nats-Msg-Id id and returns what the first echo service made of it, once it
 * is known to be body's echo (the caller deletes it). */
static cJSON *echoed(struct env *e, const char *body, const char *id, int timeout_ms)
{
    assert_false(js_publish(e, body, strlen(body), id));
    cJSON *out = next_json(e->out, timeout_ms, NULL);
    if (!out) qfs_test_proc_dump_log(e->svc[0], 40);
    assert_non_null(out);
    assert_string_equal(cJSON_GetObjectItem(out, "echo")->valuestring, body);
    return out;
}

static void test_publish_consume_ack(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"ok\"}";
    cJSON *out = echoed(e, body, "evt-1", 10000);
    assert_int_equal(cJSON_GetObjectItem(out, "delivery")->valueint, 1);
    cJSON_Delete(out);
    assert_true(qfs_test_eventually(all_settled, e, 10000));
    jsConsumerInfo *ci = consumer_info(e);
    assert_int_equal(ci->NumRedelivered, 0);
    jsConsumerInfo_Destroy(ci);
}

static void test_retry_is_redelivered(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"retry\",\"n\":3,\"delay_ms\":0}";
    js_publish(e, body, strlen(body), "evt-retry");
    cJSON *out = next_json(e->out, 15000, NULL);
    assert_non_null(out);
    assert_int_equal(cJSON_GetObjectItem(out, "delivery")->valueint, 3);
    cJSON_Delete(out);
    assert_true(no_message(e->out, 300));
    assert_true(qfs_test_eventually(all_settled, e, 10000));
}

static void test_nak_with_delay_is_not_early(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"retry\",\"n\":2,\"delay_ms\":1500}";
    long long t0 = now_ms();
    js_publish(e, body, strlen(body), "evt-delay");
    cJSON *out = next_json(e->out, 15000, NULL);
    long long t1 = now_ms();
    assert_non_null(out);
    assert_int_equal(cJSON_GetObjectItem(out, "delivery")->valueint, 2);
    cJSON_Delete(out);
    /* A lower bound: redelivery must not come before the delay asked for. */
    assert_true(t1 - t0 >= 1500);
}

static void test_poison_goes_to_dlq_intact(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);

    const char text[] = "this is not json {";
    js_publish(e, text, strlen(text), "evt-poison-text");
    char *raw = NULL;
    cJSON *d = next_json(e->dlq, 10000, &raw);
    assert_non_null(d);
    assert_string_equal(cJSON_GetObjectItem(d, "schema")->valuestring, "qfs.dlq.v1");
    assert_string_equal(cJSON_GetObjectItem(d, "service")->valuestring, "echo");
    assert_string_equal(cJSON_GetObjectItem(d, "original_subject")->valuestring, IN_SUBJECT);
    assert_string_equal(cJSON_GetObjectItem(d, "payload_encoding")->valuestring, "utf8");
    assert_string_equal(cJSON_GetObjectItem(d, "payload")->valuestring, text);
    assert_string_equal(cJSON_GetObjectItem(d, "status")->valuestring, "protocol");
    assert_non_null(strstr(cJSON_GetObjectItem(d, "reason")->valuestring, "not an echo command"));
    cJSON *hdrs = cJSON_GetObjectItem(d, "headers");
    assert_string_equal(cJSON_GetObjectItem(hdrs, "Nats-Msg-Id")->valuestring, "evt-poison-text");
    assert_null(strstr(raw, CANARY));
    free(raw);
    cJSON_Delete(d);

    const unsigned char binary[] = {0xff, 0xfe, 0x00, 0x41, 0x80};
    js_publish(e, (const char *)binary, sizeof(binary), "evt-poison-bin");
    d = next_json(e->dlq, 10000, NULL);
    assert_non_null(d);
    assert_string_equal(cJSON_GetObjectItem(d, "payload_encoding")->valuestring, "base64");
    assert_string_equal(cJSON_GetObjectItem(d, "payload")->valuestring, "//4AQYA=");
    cJSON_Delete(d);
    assert_true(qfs_test_eventually(all_settled, e, 10000));
    assert_true(no_message(e->out, 200));
}

static void test_retries_exhausted_go_to_dlq(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    /* QFS_MAX_DELIVER=5: a message that always asks for a retry is dead-lettered, not dropped. */
    const char *body = "{\"action\":\"retry\",\"n\":1000,\"delay_ms\":0}";
    js_publish(e, body, strlen(body), "evt-forever");
    cJSON *d = next_json(e->dlq, 20000, NULL);
    assert_non_null(d);
    assert_string_equal(cJSON_GetObjectItem(d, "payload")->valuestring, body);
    assert_string_equal(cJSON_GetObjectItem(d, "status")->valuestring, "unavailable");
    assert_non_null(strstr(cJSON_GetObjectItem(d, "reason")->valuestring, "gave up after 5"));
    assert_int_equal(cJSON_GetObjectItem(d, "delivery_count")->valueint, 5);
    cJSON_Delete(d);
    assert_true(qfs_test_eventually(all_settled, e, 10000));
}

static bool log_has(struct env *e, int idx, const char *needle)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/echo-%d.log", e->dir, idx);
    char *log = qfs_test_read_file(path, NULL);
    bool found = log && strstr(log, needle);
    free(log);
    return found;
}

struct log_arg {
    struct env *e;
    const char *needle;
};

static bool log_has_arg(void *arg)
{
    struct log_arg *a = arg;
    return log_has(a->e, 0, a->needle);
}

static void test_sigterm_finishes_inflight_work(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"slow\",\"ms\":1500}";
    js_publish(e, body, strlen(body), "evt-slow");
    struct log_arg la = {e, "echo received"};
    assert_true(qfs_test_eventually(log_has_arg, &la, 10000));

    qfs_test_proc_signal(e->svc[0], SIGTERM);
    int st = 0;
    assert_true(qfs_test_proc_wait(e->svc[0], 20000, &st));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    /* The work in hand was finished and acknowledged before the exit. */
    cJSON *out = next_json(e->out, 2000, NULL);
    assert_non_null(out);
    assert_int_equal(cJSON_GetObjectItem(out, "delivery")->valueint, 1);
    cJSON_Delete(out);
    assert_true(all_settled(e));
    assert_int_not_equal(echo_health(e, 0), 0);
    assert_true(log_has(e, 0, "\"msg\":\"draining\""));
}

static void test_drain_deadline_returns_unfinished_work(void **state)
{
    struct env *e = *state;
    start_echo_with(e, 0, "QFS_DRAIN_TIMEOUT_MS=300");
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"slow\",\"ms\":3000}";
    js_publish(e, body, strlen(body), "evt-too-slow");
    struct log_arg la = {e, "echo received"};
    assert_true(qfs_test_eventually(log_has_arg, &la, 10000));

    /* The work cannot finish before the deadline: the process still exits 0, at once... */
    qfs_test_proc_signal(e->svc[0], SIGTERM);
    int st = 0;
    assert_true(qfs_test_proc_wait(e->svc[0], 10000, &st));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        qfs_test_proc_dump_log(e->svc[0], 30);
        fail_msg("qfs-test-echo ended with wait status %d", st);
    }
    assert_true(log_has(e, 0, "drain deadline passed"));
    assert_true(no_message(e->out, 200));

    /* ...and the message went back to the server: the next instance finishes it. */
    start_echo(e, 1);
    cJSON *out = next_json(e->out, 20000, NULL);
    if (!out) {
        qfs_test_proc_dump_log(e->svc[0], 30);
        qfs_test_proc_dump_log(e->svc[1], 30);
    }
    assert_non_null(out);
    /* Back within 20 s, so through the NAK, not after the 30 s AckWait. Its delivery count may
     * read 1: the server first offers a NAKed message to the pull request the stopped instance
     * left open, finds no one listening, and takes that delivery back. */
    assert_true(cJSON_GetObjectItem(out, "delivery")->valueint >= 1);
    assert_int_equal(cJSON_GetObjectItem(out, "stream_seq")->valueint, 1);
    cJSON_Delete(out);
    assert_true(qfs_test_eventually(all_settled, e, 10000));
}

static void test_racing_setup_and_single_processing(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    start_echo(e, 1);
    wait_healthy(e, 0);
    wait_healthy(e, 1);
    for (int i = 0; i < 20; i++) {
        char body[64], id[32];
        snprintf(body, sizeof(body), "{\"action\":\"ok\",\"i\":%d}", i);
        snprintf(id, sizeof(id), "evt-race-%d", i);
        js_publish(e, body, strlen(body), id);
    }
    /* The replicas share the durable consumer: each message is processed exactly once. */
    int seen[20] = {0};
    for (int i = 0; i < 20; i++) {
        cJSON *out = next_json(e->out, 10000, NULL);
        assert_non_null(out);
        cJSON *in = cJSON_Parse(cJSON_GetObjectItem(out, "echo")->valuestring);
        seen[cJSON_GetObjectItem(in, "i")->valueint]++;
        cJSON_Delete(in);
        cJSON_Delete(out);
    }
    for (int i = 0; i < 20; i++) assert_int_equal(seen[i], 1);
    assert_true(no_message(e->out, 300));
}

static void test_duplicate_msg_id_is_dropped(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"ok\"}";
    assert_false(js_publish(e, body, strlen(body), "evt-dup"));
    assert_true(js_publish(e, body, strlen(body), "evt-dup"));
    cJSON *out = next_json(e->out, 10000, NULL);
    assert_non_null(out);
    cJSON_Delete(out);
    assert_true(no_message(e->out, 500));
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, e->js, "QFS", NULL, &jerr), NATS_OK);
    /* One input and one output: the duplicate was never stored. */
    assert_int_equal(si->State.Msgs, 2);
    jsStreamInfo_Destroy(si);
}

static void test_secret_never_logged_and_config_errors(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    const char *body = "{\"action\":\"ok\"}";
    js_publish(e, body, strlen(body), "evt-secret");
    cJSON *out = next_json(e->out, 10000, NULL);
    assert_non_null(out);
    cJSON_Delete(out);
    struct log_arg la = {e, "echo has a secret"};
    assert_true(qfs_test_eventually(log_has_arg, &la, 5000));
    assert_false(log_has(e, 0, CANARY));

    char cmd[2048], path[1100];
    snprintf(path, sizeof(path), "%s/check.txt", e->dir);
    snprintf(cmd, sizeof(cmd), "QFS_TEST_SECRET=" CANARY " %s/qfs-test-echo --check-config >%s 2>&1",
             qfs_test_env("QFS_BIN_DIR", "build/bin"), path);
    int st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 0);
    char *text = qfs_test_read_file(path, NULL);
    assert_non_null(strstr(text, "QFS_TEST_SECRET=****"));
    assert_non_null(strstr(text, "QFS_MAX_DELIVER=50"));
    assert_null(strstr(text, CANARY));
    free(text);

    snprintf(cmd, sizeof(cmd),
             "QFS_MAX_ACK_PENDING=lots QFS_ACK_WAIT=forever %s/qfs-test-echo >%s 2>&1",
             qfs_test_env("QFS_BIN_DIR", "build/bin"), path);
    st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);
    text = qfs_test_read_file(path, NULL);
    assert_non_null(strstr(text, "QFS_MAX_ACK_PENDING"));
    assert_non_null(strstr(text, "QFS_ACK_WAIT"));
    free(text);
}

/* nats-server restarts under a running service (its JetStream store survives): the service
 * reconnects, sends new pull requests in place of those the server forgot, and consumes and
 * publishes (PubAcks included) as before, without a restart of its own. */
static void test_server_restart_resumes_pulling(void **state)
{
    struct env *e = *state;
    start_echo(e, 0);
    wait_healthy(e, 0);
    cJSON_Delete(echoed(e, "{\"action\":\"ok\",\"n\":1}", "evt-before", 10000));

    qfs_test_nats_restart(&e->nats);
    cJSON *out = echoed(e, "{\"action\":\"ok\",\"n\":2}", "evt-after", 20000);
    assert_int_equal(cJSON_GetObjectItem(out, "delivery")->valueint, 1);
    cJSON_Delete(out);
    assert_true(qfs_test_proc_alive(e->svc[0]));
    assert_true(qfs_test_eventually(all_settled, e, 10000));
    assert_true(log_has(e, 0, "nats reconnected"));
}

/* Waits for the echo of body among what the service publishes (a consumer created again sends
 * what came before once more); returns it (the caller deletes it) or NULL at the deadline. */
static cJSON *echo_of(struct env *e, const char *body, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (long long left; (left = deadline - now_ms()) > 0;) {
        cJSON *out = next_json(e->out, (int)left, NULL);
        if (!out) break;
        const cJSON *echo = cJSON_GetObjectItem(out, "echo");
        if (cJSON_IsString(echo) && strcmp(echo->valuestring, body) == 0) return out;
        cJSON_Delete(out);
    }
    return NULL;
}

static bool consumer_exists(void *arg)
{
    struct env *e = arg;
    return qfs_test_consumer_exists(e->js, "echo-events");
}

/* An operator deletes the service's durable consumer, then the whole stream: each time the service
 * sees nothing answer its pull requests, creates what is missing the way it did at start, and
 * goes on consuming without a restart. Nothing published meanwhile is missed. */
static void test_deleted_consumer_and_stream_are_created_again(void **state)
{
    struct env *e = *state;
    natsSubscription *stats = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&stats, e->nc, "qfs.stats.echo"), NATS_OK);
    start_echo_with(e, 0, "QFS_METRICS_INTERVAL=1s");
    wait_healthy(e, 0);
    cJSON_Delete(echoed(e, "{\"action\":\"ok\",\"n\":1}", "evt-1", 10000));
    assert_true(qfs_test_eventually(all_settled, e, 10000));

    jsErrCode jerr = 0;
    assert_int_equal(js_DeleteConsumer(e->js, "QFS", "echo-events", NULL, &jerr), NATS_OK);
    assert_false(js_publish(e, "{\"action\":\"ok\",\"n\":2}", strlen("{\"action\":\"ok\",\"n\":2}"), "evt-2"));
    cJSON *out = echo_of(e, "{\"action\":\"ok\",\"n\":2}", 20000);
    if (!out) qfs_test_proc_dump_log(e->svc[0], 40);
    assert_non_null(out);
    cJSON_Delete(out);
    assert_true(qfs_test_eventually(consumer_exists, e, 5000));
    assert_true(log_has(e, 0, "consumer not answering: setting it up again"));

    assert_int_equal(js_DeleteStream(e->js, "QFS", NULL, &jerr), NATS_OK);
    /* js_publish retries until the service has created the stream again. */
    assert_false(js_publish(e, "{\"action\":\"ok\",\"n\":3}", strlen("{\"action\":\"ok\",\"n\":3}"), "evt-3"));
    out = echo_of(e, "{\"action\":\"ok\",\"n\":3}", 20000);
    if (!out) qfs_test_proc_dump_log(e->svc[0], 40);
    assert_non_null(out);
    cJSON_Delete(out);
    assert_true(qfs_test_eventually(all_settled, e, 10000));
    assert_true(qfs_test_proc_alive(e->svc[0]));

    /* Operators see it in the metrics too: two resets counted. */
    double resets = -1;
    for (long long deadline = now_ms() + 10000; resets < 2 && now_ms() < deadline;) {
        cJSON *j = next_json(stats, 2000, NULL);
        const cJSON *n = j ? cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counters"), "consumer_resets") : NULL;
        if (cJSON_IsNumber(n)) resets = n->valuedouble;
        cJSON_Delete(j);
    }
    assert_true(resets >= 2);
    natsSubscription_Destroy(stats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_consume_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_restart_resumes_pulling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_consumer_and_stream_are_created_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_redelivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nak_with_delay_is_not_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_goes_to_dlq_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted_go_to_dlq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_finishes_inflight_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_deadline_returns_unfinished_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_racing_setup_and_single_processing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_msg_id_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_never_logged_and_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
