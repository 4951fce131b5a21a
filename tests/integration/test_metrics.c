/* Metrics over the local stack: qfs-ingest and qfs-parser, run with QFS_METRICS_INTERVAL=1s, write
 * CloudWatch EMF lines on stdout that count the event they handled, publish the same counters on
 * qfs.stats.<service> (core NATS, not stored), and flush once more when they stop. */
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
#include <sys/wait.h>
#include <time.h>

#include "qfs/proto.h"
#include "testlib.h"

#define LINE_MAX_BYTES 65536
#define WAIT_MS 30000

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *ingest, *parser;
    natsConnection *nc;
};

static const char *const service_env[] = {"QFS_HUB_ACCOUNT_ID=111122223333", "QFS_LOG_LEVEL=debug",
                                          "QFS_SQS_WAIT_SECONDS=1", "QFS_METRICS_INTERVAL=1s", NULL};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("metrics");
    qfs_test_stack_up(&e->stack, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    qfs_test_proc_stop(e->ingest);
    qfs_test_proc_stop(e->parser);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double num(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Checks the EMF envelope of one stdout line: _aws.Timestamp, one directive in namespace qfs with
 * the Service dimension, and every metric it names present as a number. */
static void assert_emf(const cJSON *line, const char *service)
{
    const cJSON *aws = cJSON_GetObjectItemCaseSensitive(line, "_aws");
    assert_true(cJSON_IsObject(aws));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(aws, "Timestamp")));
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(aws, "CloudWatchMetrics");
    assert_true(cJSON_IsArray(dirs));
    const cJSON *d;
    cJSON_ArrayForEach(d, dirs) {
        assert_string_equal(cJSON_GetObjectItem(d, "Namespace")->valuestring, "qfs");
        const cJSON *set = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "Dimensions"), 0);
        assert_string_equal(cJSON_GetArrayItem(set, 0)->valuestring, "Service");
        const cJSON *def;
        cJSON_ArrayForEach(def, cJSON_GetObjectItem(d, "Metrics")) {
            const char *name = cJSON_GetObjectItem(def, "Name")->valuestring;
            if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(line, name)))
                fail_msg("EMF names %s but has no value for it", name);
        }
    }
    assert_string_equal(cJSON_GetObjectItem(line, "Service")->valuestring, service);
}

/* Reads p's stdout until an EMF line whose named counters all reached their minimum (counts are
 * deltas: they are summed over the lines read, into sums when not NULL). Returns that line. */
static cJSON *read_emf_until(struct qfs_test_proc *p, const char *service, const char *const names[],
                             const double mins[], double sums[])
{
    static char buf[LINE_MAX_BYTES];
    long long end = mono_ms() + WAIT_MS;
    while (mono_ms() < end) {
        if (!qfs_test_proc_read_line(p, buf, sizeof(buf), (int)(end - mono_ms()))) break;
        cJSON *line = cJSON_Parse(buf);
        if (!line) fail_msg("qfs-%s wrote a line to stdout that is not JSON: %.200s", service, buf);
        assert_emf(line, service);
        bool all = true;
        for (size_t i = 0; names[i]; i++) {
            double v = num(line, names[i]);
            if (sums && v > 0) sums[i] += v;
            if (v < mins[i]) all = false;
        }
        if (all) return line;
        cJSON_Delete(line);
    }
    qfs_test_proc_dump_log(p, 40);
    fail_msg("no EMF line from qfs-%s with the expected counts", service);
    return NULL;
}

/* The next stats message on sub whose counters reach mins; NULL when none comes in time. */
static cJSON *read_stats_until(natsSubscription *sub, const char *const names[], const double mins[])
{
    long long end = mono_ms() + WAIT_MS;
    while (mono_ms() < end) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 1000) != NATS_OK) continue;
        cJSON *j = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
        assert_non_null(j);
        const cJSON *counters = cJSON_GetObjectItem(j, "counters");
        assert_true(cJSON_IsObject(counters));
        bool all = true;
        for (size_t i = 0; names[i]; i++)
            if (num(counters, names[i]) < mins[i]) all = false;
        if (all) return j;
        cJSON_Delete(j);
    }
    return NULL;
}

/* How many JetStream streams store subject (the server's STREAM.NAMES API). */
static int streams_storing(struct env *e, const char *subject)
{
    char ask[160];
    snprintf(ask, sizeof(ask), "{\"subject\":\"%s\"}", subject);
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, e->nc, "$JS.API.STREAM.NAMES", ask, 5000), NATS_OK);
    cJSON *names = cJSON_ParseWithLength(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    natsMsg_Destroy(reply);
    assert_non_null(names);
    assert_null(cJSON_GetObjectItem(names, "error"));
    const cJSON *streams = cJSON_GetObjectItem(names, "streams");
    int n = cJSON_IsArray(streams) ? cJSON_GetArraySize(streams) : 0;
    cJSON_Delete(names);
    return n;
}

static void test_ingest_and_parser_count_an_event(void **state)
{
    struct env *e = *state;
    natsSubscription *parser_stats = NULL, *ingest_stats = NULL;
    char subject[QFS_SUBJECT_MAX];
    assert_int_equal(qfs_subject_stats(subject, sizeof(subject), "parser"), QFS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&parser_stats, e->nc, subject), NATS_OK);
    assert_int_equal(qfs_subject_stats(subject, sizeof(subject), "ingest"), QFS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&ingest_stats, e->nc, subject), NATS_OK);
    assert_int_equal(natsConnection_Flush(e->nc), NATS_OK);
    e->ingest = qfs_test_service_start_captured(&e->stack, "ingest", "metrics", service_env);
    e->parser = qfs_test_service_start_captured(&e->stack, "parser", "metrics", service_env);

    /* Both are up and counting: a first line lists the counters at 0. */
    static const char *const none[] = {NULL};
    cJSON_Delete(read_emf_until(e->parser, "parser", none, NULL, NULL));
    cJSON_Delete(read_emf_until(e->ingest, "ingest", none, NULL, NULL));

    /* One task definition: one ECR image and one from Docker Hub (a not_ecr skip). */
    qfs_test_deliver_event(
        &e->stack,
        "{\"version\":\"0\",\"id\":\"evt-metrics-1\",\"detail-type\":\"AWS API Call via CloudTrail\","
        "\"source\":\"aws.ecs\",\"account\":\"111122223333\",\"time\":\"2026-05-01T10:00:00Z\","
        "\"region\":\"eu-west-1\",\"resources\":[],\"detail\":{\"eventVersion\":\"1.11\","
        "\"eventSource\":\"ecs.amazonaws.com\",\"eventName\":\"RegisterTaskDefinition\","
        "\"awsRegion\":\"eu-west-1\",\"eventTime\":\"2026-05-01T10:00:00Z\","
        "\"recipientAccountId\":\"111122223333\",\"requestParameters\":{\"family\":\"web\"},"
        "\"responseElements\":{\"taskDefinition\":{"
        "\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42\","
        "\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
        "\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2\"},{\"name\":\"proxy\","
        "\"image\":\"nginx:1.25\"}]}},\"eventID\":\"ct-metrics-1\"}}");

    /* (a) The parser's stdout: an EMF line counting the event, its image and its skip. */
    static const char *const parser_names[] = {"events", "images", "skips.not_ecr",
                                               "received.parser-events", "acks", NULL};
    static const double parser_mins[] = {1, 1, 1, 1, 1};
    double sums[5] = {0};
    cJSON *line = read_emf_until(e->parser, "parser", parser_names, parser_mins, sums);
    /* Deltas: exactly one event over all the lines read, and 0 in the lines after it. */
    assert_true(sums[0] == 1);
    assert_true(sums[1] == 1);
    assert_true(num(line, "dead_letters") == 0);
    cJSON_Delete(line);
    static const char *const events_only[] = {"events", NULL};
    static const double zero[] = {0};
    line = read_emf_until(e->parser, "parser", events_only, zero, NULL);
    assert_true(num(line, "events") == 0);
    cJSON_Delete(line);

    /* (b) qfs.stats.parser: the same counters, as totals, with the process's details. */
    cJSON *stats = read_stats_until(parser_stats, parser_names, parser_mins);
    if (!stats) fail_msg("no qfs.stats.parser message with the event counted");
    const cJSON *counters = cJSON_GetObjectItem(stats, "counters");
    assert_true(num(counters, "events") == 1);
    assert_true(num(counters, "images") == 1);
    assert_true(num(counters, "skips.not_ecr") == 1);
    assert_string_equal(cJSON_GetObjectItem(stats, "service")->valuestring, "parser");
    assert_true(num(stats, "pid") == (double)e->parser->pid);
    assert_true(num(stats, "uptime_s") >= 0);
    assert_true(num(stats, "inflight") == 0);
    assert_true(num(stats, "interval_ms") == 1000);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(stats, "version")));
    cJSON_Delete(stats);

    /* Ingest counted what it took from SQS and stored on the bus, in both places too. */
    static const char *const ingest_names[] = {"events_received", "events_stored", "publishes", NULL};
    static const double ingest_mins[] = {1, 1, 1};
    line = read_emf_until(e->ingest, "ingest", ingest_names, ingest_mins, NULL);
    assert_true(num(line, "events_dead_lettered") == 0);
    assert_true(num(line, "sqs_receive_errors") == 0);
    cJSON_Delete(line);
    stats = read_stats_until(ingest_stats, ingest_names, ingest_mins);
    if (!stats) fail_msg("no qfs.stats.ingest message with the event counted");
    assert_true(num(cJSON_GetObjectItem(stats, "counters"), "events_stored") == 1);
    cJSON_Delete(stats);

    /* Stats are core NATS only: no stream stores their subject (the events' is stored). */
    assert_int_equal(streams_storing(e, "qfs.events.111122223333.eu-west-1"), 1);
    assert_int_equal(qfs_subject_stats(subject, sizeof(subject), "parser"), QFS_OK);
    assert_int_equal(streams_storing(e, subject), 0);

    /* SIGTERM: the drain is counted, and a last line goes out before the process exits 0. */
    qfs_test_proc_signal(e->parser, SIGTERM);
    static const char *const drains[] = {"drains", NULL};
    static const double one[] = {1};
    line = read_emf_until(e->parser, "parser", drains, one, NULL);
    cJSON_Delete(line);
    int status = 0;
    assert_true(qfs_test_proc_wait(e->parser, 10000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    natsSubscription_Destroy(parser_stats);
    natsSubscription_Destroy(ingest_stats);
}

/* The first stats message on sub sent after this call (those queued before it are dropped), or a
 * failure. */
static cJSON *next_stats(natsSubscription *sub)
{
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 0) == NATS_OK) natsMsg_Destroy(m);
    static const char *const any[] = {NULL};
    cJSON *j = read_stats_until(sub, any, NULL);
    if (!j) fail_msg("no stats message");
    return j;
}

/* A backlog in SQS: ingest takes it with more receivers than the one it keeps while the queue is
 * quiet, deletes every message while the extra receivers' long polls are still open (they must not
 * hold the connections the deletes need), and goes back to one receiver, one billed long poll,
 * once the polls come back empty. */
static void test_ingest_scales_receivers_with_the_backlog(void **state)
{
    struct env *e = *state;
    enum { EVENTS = 400 };
    /* This test's own ingest takes the backlog: the earlier ones stop first. */
    qfs_test_proc_stop(e->ingest);
    qfs_test_proc_stop(e->parser);
    e->ingest = e->parser = NULL;
    for (int i = 0; i < EVENTS; i++) {
        char *ev = NULL;
        if (asprintf(&ev,
                     "{\"version\":\"0\",\"id\":\"evt-backlog-%03d\",\"detail-type\":\"AWS API Call via "
                     "CloudTrail\",\"source\":\"aws.ecs\",\"account\":\"111122223333\","
                     "\"time\":\"2026-05-01T10:00:00Z\",\"region\":\"eu-west-1\",\"resources\":[],"
                     "\"detail\":{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
                     "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"eu-west-1\","
                     "\"eventTime\":\"2026-05-01T10:00:00Z\",\"recipientAccountId\":\"111122223333\","
                     "\"responseElements\":{\"taskDefinition\":{\"taskDefinitionArn\":"
                     "\"arn:aws:ecs:eu-west-1:111122223333:task-definition/backlog:%d\","
                     "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"nginx:1.25\"}]}}}}",
                     i, i + 1) < 0)
            abort();
        qfs_test_deliver_event(&e->stack, ev);
        free(ev);
    }
    natsSubscription *stats = NULL;
    char subject[QFS_SUBJECT_MAX];
    assert_int_equal(qfs_subject_stats(subject, sizeof(subject), "ingest"), QFS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&stats, e->nc, subject), NATS_OK);
    assert_int_equal(natsConnection_Flush(e->nc), NATS_OK);
    /* The parser sets up the stream ingest publishes to; it is not needed otherwise. */
    e->parser = qfs_test_service_start_captured(&e->stack, "parser", "backlog", service_env);
    /* Polls of 10 s: an empty one, and so a retired receiver, comes 10 s after the backlog is
     * taken, long after its deletes should have gone. Eight receivers: as many as the HTTP
     * client's default connections per host. */
    static const char *const env[] = {"QFS_HUB_ACCOUNT_ID=111122223333", "QFS_LOG_LEVEL=debug",
                                      "QFS_SQS_WAIT_SECONDS=10", "QFS_METRICS_INTERVAL=1s",
                                      "QFS_SQS_RECEIVERS=8", NULL};
    e->ingest = qfs_test_service_start_captured(&e->stack, "ingest", "backlog", env);

    /* Every event stored, with receivers added on the way. */
    static const char *const names[] = {"events_stored", "sqs_receivers_added", NULL};
    static const double mins[] = {EVENTS, 1};
    cJSON *j = read_stats_until(stats, names, mins);
    if (!j) {
        qfs_test_proc_dump_log(e->ingest, 30);
        fail_msg("ingest did not store the backlog with more than one receiver");
    }
    const cJSON *c = cJSON_GetObjectItem(j, "counters");
    assert_true(num(c, "events_stored") == EVENTS);
    double added = num(c, "sqs_receivers_added");
    assert_true(added <= 7 + num(c, "sqs_receivers_retired"));
    cJSON_Delete(j);

    /* Every message deleted while the extra receivers still poll: none retired yet. */
    if (!qfs_test_eventually(qfs_test_events_queue_empty, &e->stack, WAIT_MS))
        fail_msg("the backlog was not deleted from SQS");
    j = next_stats(stats);
    assert_true(num(cJSON_GetObjectItem(j, "counters"), "sqs_receivers_retired") == 0);
    cJSON_Delete(j);

    /* Quiet again: each extra receiver's poll comes back empty and it stops, down to one. */
    cJSON *quiet = NULL;
    long long end = mono_ms() + 3 * WAIT_MS / 2;
    while (!quiet && mono_ms() < end) {
        j = next_stats(stats);
        c = cJSON_GetObjectItem(j, "counters");
        if (num(c, "sqs_receivers_retired") == num(c, "sqs_receivers_added")) quiet = j;
        else cJSON_Delete(j);
    }
    if (!quiet) fail_msg("ingest kept its extra receivers with the queue empty");
    assert_true(num(cJSON_GetObjectItem(quiet, "counters"), "sqs_receive_errors") == 0);
    cJSON_Delete(quiet);
    natsSubscription_Destroy(stats);
}

static void test_interval_zero_writes_nothing(void **state)
{
    struct env *e = *state;
    /* The runtime table has the variable, with its default, in --help. */
    char bin[600];
    snprintf(bin, sizeof(bin), "%s/qfs-parser", qfs_test_env("QFS_BIN_DIR", "build/bin"));
    const char *argv[] = {bin, "--help", NULL};
    struct qfs_test_proc *help = qfs_test_spawn("qfs-parser-help", argv, NULL, NULL, true);
    char line[4096];
    bool listed = false;
    while (qfs_test_proc_read_line(help, line, sizeof(line), 5000))
        if (strstr(line, "QFS_METRICS_INTERVAL")) listed = true;
    qfs_test_proc_stop(help);
    assert_true(listed);

    /* QFS_METRICS_INTERVAL=0: no line on stdout, not even at shutdown. */
    const char *env[256];
    size_t n = 0;
    for (size_t i = 0; i < e->stack.nenv && n < 200; i++) env[n++] = e->stack.env[i];
    env[n++] = "QFS_HUB_ACCOUNT_ID=111122223333";
    env[n++] = "QFS_METRICS_INTERVAL=0";
    env[n] = NULL;
    char log[800];
    snprintf(log, sizeof(log), "%s/logs/qfs-parser-nometrics.log", e->stack.dir);
    const char *run[] = {bin, NULL};
    struct qfs_test_proc *p = qfs_test_spawn("qfs-parser-nometrics", run, env, log, true);
    assert_false(qfs_test_proc_read_line(p, line, sizeof(line), 2500));
    qfs_test_proc_signal(p, SIGTERM);
    assert_false(qfs_test_proc_read_line(p, line, sizeof(line), 5000));
    int status = 0;
    assert_true(qfs_test_proc_wait(p, 10000, &status));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    qfs_test_proc_stop(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_and_parser_count_an_event),
        cmocka_unit_test(test_interval_zero_writes_nothing),
        cmocka_unit_test(test_ingest_scales_receivers_with_the_backlog),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
