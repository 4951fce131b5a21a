/* qfsctl over the local stack with qfs-ingest, qfs-parser and qfs-cache running: inject reaches the
 * parser, tail follows one deploy, status sees a killed service go down and come back, the DLQ is
 * listed, shown and replayed, scans lists a stored result, and qualys info asks qualys-sim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qfs/proto.h"
#include "qfs/proto_dlq.h"
#include "qfs/proto_scan.h"
#include "qfs/util.h"
#include "testlib.h"

#define ACCOUNT "111122223333"
#define REGION "eu-west-1"
#define EVENTS_SUBJECT "qfs.events." ACCOUNT "." REGION

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *ingest, *parser, *cache;
    natsConnection *nc;
    jsCtx *js;
    int restarts;
};

static const char *const service_env[] = {"QFS_HUB_ACCOUNT_ID=" ACCOUNT, "QFS_LOG_LEVEL=debug",
                                          "QFS_SQS_VISIBILITY_TIMEOUT=10", "QFS_SQS_WAIT_SECONDS=1",
                                          "QFS_ACK_WAIT=5s", NULL};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = qfs_test_tmpdir("qfsctl");
    qfs_test_stack_up(&e->stack, e->dir);
    assert_int_equal(natsConnection_ConnectTo(&e->nc, qfs_test_stack_get(&e->stack, "QFS_NATS_URL")), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&e->js, e->nc, NULL), NATS_OK);
    e->ingest = qfs_test_service_start(&e->stack, "ingest", NULL, service_env);
    e->parser = qfs_test_service_start(&e->stack, "parser", NULL, service_env);
    e->cache = qfs_test_service_start(&e->stack, "cache", NULL, service_env);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    qfs_test_proc_stop(e->ingest);
    qfs_test_proc_stop(e->parser);
    qfs_test_proc_stop(e->cache);
    jsCtx_Destroy(e->js);
    natsConnection_Destroy(e->nc);
    qfs_test_stack_down(&e->stack);
    qfs_test_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* ---- running qfsctl --------------------------------------------------------------------------- */

struct run {
    int rc;
    char *out; /* stdout */
};

/* Starts qfsctl with the stack's environment plus extra ("K=V", NULL-terminated, may be NULL) and
 * the arguments in argv (NULL-terminated, without the program); stderr goes to
 * <stack>/logs/qfsctl.log. */
static struct qfs_test_proc *qfsctl_start(struct env *e, const char *const extra[], const char *const *args)
{
    char bin[600], log[700];
    snprintf(bin, sizeof(bin), "%s/qfsctl", qfs_test_env("QFS_BIN_DIR", "build/bin"));
    snprintf(log, sizeof(log), "%s/logs/qfsctl.log", e->stack.dir);
    const char *argv[32] = {bin};
    size_t argc = 1;
    for (size_t i = 0; args[i] && argc < 31; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    const char *envv[256];
    size_t n = 0;
    for (size_t i = 0; i < e->stack.nenv && n < 200; i++) envv[n++] = e->stack.env[i];
    for (size_t i = 0; extra && extra[i] && n < 254; i++) envv[n++] = extra[i];
    envv[n] = NULL;
    FILE *lf = fopen(log, "a");
    if (lf) {
        fprintf(lf, "---- qfsctl");
        for (size_t i = 1; i < argc; i++) fprintf(lf, " %s", argv[i]);
        fprintf(lf, "\n");
        fclose(lf);
    }
    return qfs_test_spawn("qfsctl", argv, envv, log, true);
}

/* Reads p's stdout to its end, reaps it and frees it. */
static struct run qfsctl_collect(struct qfs_test_proc *p)
{
    struct qfs_buf out;
    qfs_buf_init(&out, 0);
    char line[8192];
    bool got;
    do {
        got = qfs_test_proc_read_line(p, line, sizeof(line), 60000);
        if (got || line[0]) {
            qfs_buf_puts(&out, line);
            qfs_buf_puts(&out, "\n");
        }
    } while (got);
    int status = 0;
    struct run r = {.rc = -1};
    if (qfs_test_proc_wait(p, 10000, &status) && WIFEXITED(status)) r.rc = WEXITSTATUS(status);
    qfs_test_proc_stop(p);
    r.out = qfs_buf_take(&out);
    if (!r.out) r.out = qfs_xstrdup("");
    return r;
}

/* Runs qfsctl to its end (arguments NULL-terminated). */
static struct run qfsctl_env(struct env *e, const char *const extra[], ...)
{
    const char *args[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, extra);
    for (const char *a = va_arg(ap, const char *); a && n < 31; a = va_arg(ap, const char *)) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return qfsctl_collect(qfsctl_start(e, extra, args));
}

#define qfsctl(e, ...) qfsctl_env(e, NULL, __VA_ARGS__, NULL)

static void dump_qfsctl_log(struct env *e)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s/logs/qfsctl.log' >&2", e->stack.dir);
    if (system(cmd) != 0) fprintf(stderr, "no qfsctl log\n");
}

static void expect(struct env *e, const struct run *r, int rc, const char *what)
{
    if (r->rc == rc && (!what || strstr(r->out, what))) return;
    dump_qfsctl_log(e);
    fail_msg("qfsctl exited %d (want %d); its output%s%s:\n%s", r->rc, rc, what ? " lacks " : "",
             what ? what : "", r->out);
}

/* ---- the stream ------------------------------------------------------------------------------- */

/* Stored messages on filter whose event_id (or event id) is id. */
static int count_for(struct env *e, const char *filter, const char *id)
{
    cJSON *list = qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), filter);
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *ev = cJSON_GetObjectItem(m, "event_id");
        const cJSON *top = cJSON_GetObjectItem(m, "id");
        const char *got = cJSON_IsString(ev) ? ev->valuestring : cJSON_IsString(top) ? top->valuestring : "";
        if (strcmp(got, id) == 0) n++;
    }
    cJSON_Delete(list);
    return n;
}

struct wait_arg {
    struct env *e;
    const char *filter, *id;
};

static bool stored_for(void *arg)
{
    struct wait_arg *w = arg;
    return count_for(w->e, w->filter, w->id) > 0;
}

static void wait_stored(struct env *e, const char *filter, const char *id)
{
    struct wait_arg w = {e, filter, id};
    if (!qfs_test_eventually(stored_for, &w, 30000)) {
        qfs_test_proc_dump_log(e->ingest, 20);
        qfs_test_proc_dump_log(e->parser, 30);
        fail_msg("nothing on %s for %s", filter, id);
    }
}

static uint64_t publish(struct env *e, const char *subject, const char *msg_id, const char *trace,
                        const char *schema, const char *data)
{
    return qfs_test_publish(e->js, subject, data, msg_id, trace, schema);
}

static char *event_json(const char *id, const char *containers)
{
    return qfs_xasprintf(
        "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.ecs\","
        "\"account\":\"" ACCOUNT "\",\"time\":\"2026-05-01T10:00:00Z\",\"region\":\"" REGION "\",\"resources\":[],"
        "\"detail\":{\"eventVersion\":\"1.11\",\"eventSource\":\"ecs.amazonaws.com\","
        "\"eventName\":\"RegisterTaskDefinition\",\"awsRegion\":\"" REGION "\",\"eventTime\":\"2026-05-01T10:00:00Z\","
        "\"recipientAccountId\":\"" ACCOUNT "\",\"responseElements\":{\"taskDefinition\":{"
        "\"taskDefinitionArn\":\"arn:aws:ecs:" REGION ":" ACCOUNT ":task-definition/qfsctl:1\","
        "\"containerDefinitions\":%s}},\"eventID\":\"ct-%s\"}}",
        id, containers, id);
}

/* ---- the tests -------------------------------------------------------------------------------- */

static void test_inject_reaches_the_parser(void **state)
{
    struct env *e = *state;
    char fixture[800];
    snprintf(fixture, sizeof(fixture), "%s/tests/fixtures/events/register-task-definition.json",
             qfs_test_env("QFS_SOURCE_DIR", "."));
    struct run r = qfsctl(e, "inject", fixture);
    expect(e, &r, 0, "sent 6a7e8feb-0001-4000-8000-000000000001 -> SQS (MessageId ");
    free(r.out);
    /* Through SQS, ingest and the parser: the image record of the fixture's container. */
    wait_stored(e, "qfs.images.>", "6a7e8feb-0001-4000-8000-000000000001");

    /* Usage errors name the problem and exit 2; a file that is not an event exits 1. */
    r = qfsctl(e, "inject");
    expect(e, &r, 2, NULL);
    free(r.out);
    char bad[700];
    snprintf(bad, sizeof(bad), "%s/not-an-event.json", e->dir);
    FILE *f = fopen(bad, "w");
    fputs("{\"hello\":1}", f);
    fclose(f);
    r = qfsctl(e, "inject", "--bus", bad);
    expect(e, &r, 1, NULL);
    free(r.out);
}

/* The names of the consumers on the stream whose filter is filter, as one string ("a b c "). */
static char *consumers_on(struct env *e, const char *filter)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, " ");
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    if (js_Consumers(&list, e->js, QFS_STREAM_NAME, NULL, &jerr) == NATS_OK) {
        for (int i = 0; i < list->Count; i++) {
            const jsConsumerInfo *ci = list->List[i];
            const char *f = ci->Config && ci->Config->FilterSubject ? ci->Config->FilterSubject : "";
            if (strcmp(f, filter) == 0) qfs_buf_printf(&b, "%s ", ci->Name);
        }
        jsConsumerInfoList_Destroy(list);
    }
    return qfs_buf_take(&b);
}

struct consumers_arg {
    struct env *e;
    const char *before; /* consumers_on() before the tail started */
};

/* True once a consumer on qfs.> exists that was not there before: the tail is listening. */
static bool new_tail_consumer(void *arg)
{
    struct consumers_arg *c = arg;
    char *now = consumers_on(c->e, "qfs.>");
    bool found = false;
    for (char *save = NULL, *name = strtok_r(now, " ", &save); name && !found; name = strtok_r(NULL, " ", &save)) {
        char key[300];
        snprintf(key, sizeof(key), " %s ", name);
        found = !strstr(c->before, key);
    }
    free(now);
    return found;
}

static void test_tail_follows_one_deploy(void **state)
{
    struct env *e = *state;
    /* One ECR image and one from Docker Hub: an image record and a not_ecr skip. */
    char *ev = event_json("evt-qfsctl-trace",
                          "[{\"name\":\"app\",\"image\":\"" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com/web:1.4.2\"},"
                          "{\"name\":\"proxy\",\"image\":\"nginx:1.25\"}]");
    char path[700];
    snprintf(path, sizeof(path), "%s/trace-event.json", e->dir);
    FILE *f = fopen(path, "w");
    fputs(ev, f);
    fclose(f);
    free(ev);
    struct run r = qfsctl(e, "inject", "--bus", path);
    expect(e, &r, 0, "sent evt-qfsctl-trace -> " EVENTS_SUBJECT " (seq ");
    free(r.out);

    /* The event, its image record, its skip, and the cache's answer for the image (a scan request,
     * or an in_flight skip when another deploy's scan of web:1.4.2 is running). */
    r = qfsctl(e, "tail", "--trace", "evt-qfsctl-trace", "--since", "5m", "--count", "4", "--timeout", "20s");
    expect(e, &r, 0, NULL);
    assert_null(strchr(r.out, '\033')); /* not a terminal: no colours */
    int lines = 0;
    bool event = false, image = false, skip = false;
    for (char *save = NULL, *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines++;
        assert_non_null(strstr(l, ACCOUNT "/" REGION));
        if (strstr(l, "  event  ") && strstr(l, "RegisterTaskDefinition") && strstr(l, "id evt-qfsctl-trace"))
            event = true;
        if (strstr(l, "  image  ") && strstr(l, "web:1.4.2") && strstr(l, "RegisterTaskDefinition app")) image = true;
        if (strstr(l, "  skip  ") && strstr(l, "nginx:1.25") && strstr(l, "skip not_ecr")) skip = true;
    }
    assert_int_equal(lines, 4);
    assert_true(event);
    assert_true(image);
    assert_true(skip);
    free(r.out);

    /* Live: a tail started before the deploy sees it as it happens. Its ordered consumer on the
     * stream says when it is listening. */
    char *before = consumers_on(e, "qfs.>");
    const char *const live_args[] = {"tail", "--trace", "evt-qfsctl-live", "--count", "3", "--timeout", "20s", NULL};
    struct qfs_test_proc *live = qfsctl_start(e, NULL, live_args);
    struct consumers_arg ca = {e, before};
    assert_true(qfs_test_eventually(new_tail_consumer, &ca, 10000));
    free(before);
    ev = event_json("evt-qfsctl-live",
                    "[{\"name\":\"app\",\"image\":\"" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com/web:1.4.2\"},"
                    "{\"name\":\"proxy\",\"image\":\"nginx:1.25\"}]");
    publish(e, EVENTS_SUBJECT, "evt-qfsctl-live", "evt-qfsctl-live", "qfs.event.v1", ev);
    free(ev);
    r = qfsctl_collect(live);
    expect(e, &r, 0, "id evt-qfsctl-live");
    expect(e, &r, 0, "skip not_ecr");
    free(r.out);

    /* --json gives the messages themselves. */
    r = qfsctl(e, "tail", "qfs.events.>", "--trace", "evt-qfsctl-trace", "--since", "5m", "--count", "1",
               "--timeout", "20s", "--json");
    expect(e, &r, 0, "\"subject\":\"" EVENTS_SUBJECT "\",\"trace_id\":\"evt-qfsctl-trace\",\"message\":{\"version\":\"0\"");
    free(r.out);

    /* Fewer messages than --count before --timeout: exit 1. */
    r = qfsctl(e, "tail", "--trace", "evt-nobody", "--count", "1", "--timeout", "1s");
    expect(e, &r, 1, NULL);
    free(r.out);
}

struct status_arg {
    struct env *e;
    int rc;
    const char *want;
    const char *const *extra;
};

static bool status_says(void *arg)
{
    struct status_arg *s = arg;
    struct run r = qfsctl_env(s->e, s->extra, "status", "--service", "ingest,parser,cache", "--idle", "3s", NULL);
    bool ok = r.rc == s->rc && strstr(r.out, s->want);
    free(r.out);
    return ok;
}

static void wait_status(struct env *e, const char *const extra[], int rc, const char *want)
{
    struct status_arg a = {e, rc, want, extra};
    if (!qfs_test_eventually(status_says, &a, 20000)) {
        struct run r = qfsctl_env(e, extra, "status", "--service", "ingest,parser,cache", "--idle", "3s", NULL);
        fail_msg("status never said \"%s\" with exit %d; it says (exit %d):\n%s", want, rc, r.rc, r.out);
    }
}

static void test_status_sees_a_killed_service(void **state)
{
    struct env *e = *state;
    /* Without nats-server's monitoring, only the consumers say who is alive. */
    const char *const no_monitor[] = {"QFS_NATS_MONITOR_URL=", NULL};
    wait_status(e, no_monitor, 0, "\nparser          up  ");
    struct run r = qfsctl_env(e, no_monitor, "status", "--service", "ingest,parser,cache", "--idle", "3s", NULL);
    expect(e, &r, 0, "\ncache           up  ");
    expect(e, &r, 0, "Health: ok");
    free(r.out);
    r = qfsctl(e, "status", "--json", "--service", "parser");
    expect(e, &r, 0, "\"healthy\":true");
    free(r.out);

    qfs_test_proc_signal(e->parser, SIGKILL);
    qfs_test_proc_wait(e->parser, 5000, NULL);
    qfs_test_proc_stop(e->parser);
    e->parser = NULL;
    /* Past the idle threshold with no pull request waiting: down, and the exit code says so. */
    wait_status(e, no_monitor, 1, "\nparser          DOWN");
    r = qfsctl_env(e, no_monitor, "status", "--service", "ingest,parser,cache", "--idle", "3s", NULL);
    expect(e, &r, 1, "parser: parser-events: no pull request waiting");
    expect(e, &r, 1, "Health: UNHEALTHY");
    free(r.out);
    /* With the monitor, its missing connection says the same. */
    r = qfsctl(e, "status", "--service", "parser");
    expect(e, &r, 1, "no NATS connection named qfs-parser");
    free(r.out);

    char tag[16];
    snprintf(tag, sizeof(tag), "r%d", ++e->restarts);
    e->parser = qfs_test_service_start(&e->stack, "parser", tag, service_env);
    wait_status(e, no_monitor, 0, "\nparser          up  ");
    const char *const with_monitor[] = {NULL};
    wait_status(e, with_monitor, 0, "\ningest          up  ");
}

struct dlq_arg {
    struct env *e;
    const char *want;
};

static bool dlq_lists(void *arg)
{
    struct dlq_arg *d = arg;
    struct run r = qfsctl(d->e, "dlq", "list");
    bool ok = r.rc == 0 && strstr(r.out, d->want);
    free(r.out);
    return ok;
}

/* The SEQ of the last row of `qfsctl dlq list` that contains want. */
static uint64_t dlq_seq(struct env *e, const char *want)
{
    struct dlq_arg d = {e, want};
    if (!qfs_test_eventually(dlq_lists, &d, 30000)) {
        qfs_test_proc_dump_log(e->parser, 30);
        fail_msg("qfsctl dlq list never showed %s", want);
    }
    struct run r = qfsctl(e, "dlq", "list");
    uint64_t seq = 0;
    for (char *save = NULL, *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strstr(l, want)) seq = strtoull(l, NULL, 10);
    free(r.out);
    assert_true(seq > 0);
    return seq;
}

static void test_dlq_lists_and_shows_a_poison_message(void **state)
{
    struct env *e = *state;
    publish(e, EVENTS_SUBJECT, "poison-1", "poison-1", NULL, "this is not json {");
    uint64_t seq = dlq_seq(e, "parser   protocol  " EVENTS_SUBJECT "  poison-1");
    char seqs[24];
    snprintf(seqs, sizeof(seqs), "%" PRIu64, seq);
    struct run r = qfsctl(e, "dlq", "show", seqs);
    expect(e, &r, 0, "service:      parser");
    expect(e, &r, 0, "subject:      " EVENTS_SUBJECT);
    expect(e, &r, 0, "this is not json {");
    free(r.out);
    r = qfsctl(e, "dlq", "show", seqs, "--json");
    expect(e, &r, 0, "\"subject\":\"qfs.dlq.parser\"");
    free(r.out);
    /* The status shows the DLQ and its last error; --strict makes that unhealthy. */
    r = qfsctl(e, "status", "--service", "parser", "--strict");
    expect(e, &r, 1, "Last error: ");
    expect(e, &r, 1, " parser (seq ");
    free(r.out);
    /* A sequence that is not a DLQ entry, and one that does not exist. */
    r = qfsctl(e, "dlq", "show", "1");
    expect(e, &r, 1, NULL);
    free(r.out);
    r = qfsctl(e, "dlq", "show", "99999999");
    expect(e, &r, 1, NULL);
    free(r.out);
    r = qfsctl(e, "dlq", "show", "x");
    expect(e, &r, 2, NULL);
    free(r.out);
}

static void test_dlq_replay_reruns_a_fixed_message(void **state)
{
    struct env *e = *state;
    /* A valid event the parser dead-lettered for a passing reason: crafted with the codec. */
    char *ev = event_json("evt-qfsctl-replay",
                          "[{\"name\":\"app\",\"image\":\"" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com/web:1.4.2\"}]");
    struct qfs_dlq_header h[] = {{"Nats-Msg-Id", "evt-qfsctl-replay"},
                                 {"Qfs-Trace-Id", "evt-qfsctl-replay"},
                                 {"Qfs-Schema", "qfs.event.v1"}};
    struct qfs_dlq_entry d;
    memset(&d, 0, sizeof(d));
    snprintf(d.service, sizeof(d.service), "parser");
    d.reason = "ECS DescribeTaskDefinition: ThrottlingException on every delivery";
    d.status = QFS_UNAVAILABLE;
    d.original_subject = EVENTS_SUBJECT;
    d.headers = h;
    d.nheaders = 3;
    d.payload = ev;
    d.payload_len = strlen(ev);
    d.delivery_count = 50;
    d.time = "2026-05-01T10:00:05Z";
    d.trace_id = "evt-qfsctl-replay";
    char *json = NULL;
    assert_int_equal(qfs_dlq_entry_encode(&d, &json), QFS_OK);
    uint64_t seq = publish(e, "qfs.dlq.parser", "dlq:parser:qfsctl-test", "evt-qfsctl-replay",
                           qfs_schema_name(QFS_SCHEMA_DLQ), json);
    free(json);
    free(ev);
    assert_int_equal(count_for(e, "qfs.images.>", "evt-qfsctl-replay"), 0);

    char seqs[24], want[200];
    snprintf(seqs, sizeof(seqs), "%" PRIu64, seq);
    struct run r = qfsctl(e, "dlq", "list", "--service", "parser");
    expect(e, &r, 0, "unavailable  " EVENTS_SUBJECT "  evt-qfsctl-replay  ECS DescribeTaskDefinition");
    free(r.out);
    r = qfsctl(e, "dlq", "replay", seqs);
    snprintf(want, sizeof(want), "replayed seq %s (parser) -> " EVENTS_SUBJECT " as seq ", seqs);
    expect(e, &r, 0, want);
    free(r.out);
    /* The parser runs it again: the image record of the event appears. */
    wait_stored(e, "qfs.images.>", "evt-qfsctl-replay");
    /* The event was republished with the id replay:<seq>, once. */
    cJSON *events = qfs_test_stored(qfs_test_stack_get(&e->stack, "QFS_NATS_URL"), "qfs.events.>");
    char id[40];
    snprintf(id, sizeof(id), "replay:%" PRIu64, seq);
    int found = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, events) {
        const cJSON *mid = cJSON_GetObjectItem(m, "_msg_id");
        if (cJSON_IsString(mid) && strcmp(mid->valuestring, id) == 0) found++;
    }
    cJSON_Delete(events);
    assert_int_equal(found, 1);
    /* Again within the duplicate window: nothing new. */
    r = qfsctl(e, "dlq", "replay", seqs);
    expect(e, &r, 0, "was already replayed");
    free(r.out);

    /* qfsctl replay --since lists what it would re-run. */
    r = qfsctl(e, "replay", "--since", "10m", "--subject", EVENTS_SUBJECT, "--dry-run");
    expect(e, &r, 0, "would replay seq ");
    free(r.out);
    r = qfsctl(e, "replay", "--subject", "qfs.dlq.>", "--since", "1h");
    expect(e, &r, 2, NULL);
    free(r.out);
}

struct scans_arg {
    struct env *e;
};

static bool result_cached(void *arg)
{
    struct scans_arg *s = arg;
    struct run r = qfsctl(s->e, "scans", "--image", "qfsctl/scanned");
    bool ok = r.rc == 0 && strstr(r.out, "2C/5H/1M  yes ");
    free(r.out);
    return ok;
}

static void test_scans_lists_a_result(void **state)
{
    struct env *e = *state;
    char *containers[] = {"app"};
    struct qfs_deploy dep = {.event_name = "UpdateService", .event_id = "evt-qfsctl-scan",
                             .event_time = "2026-05-01T10:00:00Z", .event_account = ACCOUNT,
                             .event_region = REGION,
                             .task_definition_arn = "arn:aws:ecs:" REGION ":" ACCOUNT ":task-definition/web:42",
                             .cluster = "prod", .service = "web", .containers = containers, .ncontainers = 1};
    struct qfs_scan_result res;
    memset(&res, 0, sizeof(res));
    snprintf(res.image.account, sizeof(res.image.account), ACCOUNT);
    snprintf(res.image.region, sizeof(res.image.region), REGION);
    res.image.registry = ACCOUNT ".dkr.ecr." REGION ".amazonaws.com";
    res.image.repository = "qfsctl/scanned";
    res.image.tag = "2.0.0";
    res.image.digest = "sha256:5e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605";
    res.image.image = ACCOUNT ".dkr.ecr." REGION ".amazonaws.com/qfsctl/scanned:2.0.0";
    res.generation = 4242;
    res.registry_uuid = "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21";
    res.qualys_image_sha = "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433";
    res.counts = (struct qfs_severity_counts){.critical = 2, .high = 5, .medium = 1};
    res.total = 8;
    res.patchable = 3;
    res.scanned_at = "2026-05-01T10:06:41Z";
    res.deploys = &dep;
    res.ndeploys = 1;
    char *json = NULL;
    assert_int_equal(qfs_scan_result_encode(&res, &json), QFS_OK);
    char key[QFS_IMAGE_KEY_MAX], id[QFS_IMAGE_KEY_MAX + 40];
    assert_int_equal(qfs_image_key_format(key, sizeof(key), &res.image), QFS_OK);
    snprintf(id, sizeof(id), "outcome:%s#4242", key);
    publish(e, "qfs.scans.completed." ACCOUNT "." REGION, id, "evt-qfsctl-scan", qfs_schema_name(QFS_SCHEMA_SCAN_RESULT),
            json);
    free(json);

    struct run r = qfsctl(e, "scans", "--image", "qfsctl/scanned", "--no-cache");
    expect(e, &r, 0, "qfsctl/scanned:2.0.0");
    expect(e, &r, 0, "sha256:5e2a6c0d9b8f");
    expect(e, &r, 0, "2C/5H/1M");
    expect(e, &r, 0, "UpdateService web");
    assert_null(strstr(r.out, "web:1.4.2")); /* only the image asked for */
    free(r.out);
    /* qfs-cache stores the result: the CACHED column finds it in Redis. */
    struct scans_arg a = {e};
    if (!qfs_test_eventually(result_cached, &a, 20000)) {
        r = qfsctl(e, "scans", "--image", "qfsctl/scanned");
        fail_msg("the result never showed as cached:\n%s", r.out);
    }
    r = qfsctl(e, "scans", "--json", "--image", "qfsctl/scanned");
    expect(e, &r, 0, "\"trace_id\":\"evt-qfsctl-scan\"");
    free(r.out);
}

static void test_qualys_info_asks_qualys(void **state)
{
    struct env *e = *state;
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/aws-base", qfs_test_stack_get(&e->stack, "QFS_SIM_QUALYS_URL"));
    assert_int_equal(qfs_test_http("POST", url, "{\"accountId\":\"123456789012\",\"externalId\":\"4455667788\"}", NULL),
                     200);
    struct run r = qfsctl(e, "qualys", "info");
    expect(e, &r, 0, "Qualys AWS account: 123456789012\n");
    expect(e, &r, 0, "External ID:        4455667788\n");
    free(r.out);
    r = qfsctl(e, "qualys", "info", "--json");
    expect(e, &r, 0, "\"account_id\":\"123456789012\",\"external_id\":\"4455667788\"");
    free(r.out);
    r = qfsctl(e, "qualys", "registries", ACCOUNT "/" REGION);
    expect(e, &r, 0, "https://" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com");
    free(r.out);
    /* Without credentials it says which variables to set, and exits 2. */
    const char *const no_creds[] = {"QFS_QUALYS_SECRET_ARN=", NULL};
    r = qfsctl_env(e, no_creds, "qualys", "info", NULL);
    expect(e, &r, 2, NULL);
    free(r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inject_reaches_the_parser),
        cmocka_unit_test(test_tail_follows_one_deploy),
        cmocka_unit_test(test_status_sees_a_killed_service),
        cmocka_unit_test(test_dlq_lists_and_shows_a_poison_message),
        cmocka_unit_test(test_dlq_replay_reruns_a_fixed_message),
        cmocka_unit_test(test_scans_lists_a_result),
        cmocka_unit_test(test_qualys_info_asks_qualys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
