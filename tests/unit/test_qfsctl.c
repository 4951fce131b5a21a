/* qfsctl's pure core: the tail line of every message type (the proto/ examples), trace filtering,
 * colours, JSON lines, argument errors, the status judgement and tables, DLQ replay targets and
 * event files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_dlq.h"
#include "qfs/proto_event.h"
#include "qfsctl.h"

/* 2026-05-01T10:00:01.532Z */
#define T0 1777629601532LL

static char *read_source(const char *rel, size_t *len)
{
    const char *root = getenv("QFS_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (is QFS_SOURCE_DIR set?)", path);
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) qfs_buf_append(&b, chunk, n);
    fclose(f);
    if (len) *len = b.len;
    return qfs_buf_take(&b);
}

/* The examples of proto/<name>.schema.json, as compact JSON strings (caller frees each and the array). */
static char **examples(const char *name, size_t *n)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "proto/%s.schema.json", name);
    size_t len = 0;
    char *text = read_source(rel, &len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "examples");
    assert_true(cJSON_IsArray(list));
    *n = (size_t)cJSON_GetArraySize(list);
    char **out = calloc(*n, sizeof(char *));
    for (size_t i = 0; i < *n; i++) out[i] = cJSON_PrintUnformatted(cJSON_GetArrayItem(list, (int)i));
    cJSON_Delete(root);
    return out;
}

static void free_examples(char **ex, size_t n)
{
    for (size_t i = 0; i < n; i++) free(ex[i]);
    free(ex);
}

/* The subject an example is stored on. */
static void subject_for(const char *prefix, const char *json, char *out, size_t n)
{
    cJSON *j = cJSON_Parse(json);
    const cJSON *svc = cJSON_GetObjectItemCaseSensitive(j, "service");
    if (strcmp(prefix, "qfs.dlq") == 0)
        snprintf(out, n, "%s.%s", prefix, svc->valuestring);
    else
        snprintf(out, n, "%s.%s.%s", prefix, cJSON_GetObjectItemCaseSensitive(j, "account")->valuestring,
                 cJSON_GetObjectItemCaseSensitive(j, "region")->valuestring);
    cJSON_Delete(j);
}

static char *line_of(const char *subject, const char *data, const char *trace, bool colour)
{
    struct qfsctl_msg m = {.subject = subject, .data = data, .len = strlen(data), .trace_id = trace,
                           .seq = 7, .time_ms = T0};
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    assert_int_equal(qfsctl_tail_line(&m, colour, &b), QFS_OK);
    return qfs_buf_take(&b);
}

static const struct {
    const char *schema;
    const char *prefix;
    const char *lines[4];
} expected[] = {
    {"event", "qfs.events",
     {"2026-05-01T10:00:01.532Z  event         111122223333/eu-west-1  RegisterTaskDefinition    id 6a7e8feb-0000-0000-0000-000000000001",
      "2026-05-01T10:00:01.532Z  event         111122223333/eu-west-1  UpdateService             id d1c2b3a4-9e8f-4a7b-b6c5-d4e3f2a1b0c9, call failed: AccessDenied"}},
    {"image", "qfs.images",
     {"2026-05-01T10:00:01.532Z  image         111122223333/eu-west-1  web:1.4.2                 sha256:4e2a6c0d9b8f RegisterTaskDefinition app,app-warmup",
      "2026-05-01T10:00:01.532Z  image         444455556666/us-east-1  platform/migrate:2026.05  digest unresolved RunTask migrate (cache fail-open)"}},
    {"skip", "qfs.scans.skipped",
     {"2026-05-01T10:00:01.532Z  skip          111122223333/eu-west-1  public.ecr.aws/acme/migrate:2026.05  skip not_ecr: registry public.ecr.aws is not a private ECR registry",
      "2026-05-01T10:00:01.532Z  skip          111122223333/eu-west-1  111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2  skip cached 1C/3H/7M/2L",
      "2026-05-01T10:00:01.532Z  skip          111122223333/eu-west-1  RunTask                   skip no_tasks_started: RunTask placed no task: RESOURCE:MEMORY",
      "2026-05-01T10:00:01.532Z  skip          111122223333/eu-west-1  111122223333.dkr.ecr.eu-west-1.amazonaws.com/Web App:\"1\"  skip invalid_image: repository contains upper-case letters"}},
    {"scan_request", "qfs.scans.requested",
     {"2026-05-01T10:00:01.532Z  request       111122223333/eu-west-1  web:1.4.2                 requested, generation 1777629600412, 1 deploy"}},
    {"scan_ready", "qfs.scans.ready",
     {"2026-05-01T10:00:01.532Z  ready         111122223333/eu-west-1  web:1.4.2                 ready, registry 3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21",
      "2026-05-01T10:00:01.532Z  ready         444455556666/cn-north-1  payments/api@sha256:0f1e2d3c4b5a  ready, registry 7C2D1E0F-AB12-4CDE-9F01-23456789ABCD"}},
    {"scan_result", "qfs.scans.completed",
     {"2026-05-01T10:00:01.532Z  completed     111122223333/eu-west-1  web:1.4.2                 1C/3H/7M/2L (13 total, 9 fixable)",
      "2026-05-01T10:00:01.532Z  completed     111122223333/eu-west-1  tools/distroless-base:latest  0C/0H (0 total, 0 fixable)"}},
    {"scan_failure", "qfs.scans.failed",
     {"2026-05-01T10:00:01.532Z  failed        111122223333/eu-west-1  web:1.4.2                 failed timeout: image not scanned after 30 checks 60 s apart",
      "2026-05-01T10:00:01.532Z  failed        222233334444/ap-southeast-2  jobs/etl@sha256:aaaabbbbcccc  failed registry_failed (400 BAD_REQUEST): POST /registry: 400 invalid role arn:aws:iam::222233334444:role/qfs-ecr-read"}},
    {"notification", "qfs.notifications",
     {"2026-05-01T10:00:01.532Z  notification  111122223333/eu-west-1  web:1.4.2                 sent 1C/3H/7M/2L (min_severity_met)",
      "2026-05-01T10:00:01.532Z  notification  111122223333/eu-west-1  tools/distroless-base:latest  not sent: below_min_severity",
      "2026-05-01T10:00:01.532Z  notification  111122223333/eu-west-1  web:1.4.2                 sent scan failure timeout"}},
    {"dlq", "qfs.dlq",
     {"2026-05-01T10:00:01.532Z  dlq           111122223333/eu-west-1  qfs.events.111122223333.eu-west-1  dlq parser protocol: detail.responseElements.tasks[0].containers: expected array",
      "2026-05-01T10:00:01.532Z  dlq           -                       (sqs)                     dlq ingest protocol: SQS body is not an EventBridge event: not valid UTF-8 JSON"}},
};

/* ---- tail lines ------------------------------------------------------------------------------- */

static void test_tail_line_for_every_example(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t t = 0; t < sizeof(expected) / sizeof(expected[0]); t++) {
        size_t n = 0;
        char **ex = examples(expected[t].schema, &n);
        for (size_t i = 0; i < n; i++) {
            char subject[QFS_SUBJECT_MAX];
            subject_for(expected[t].prefix, ex[i], subject, sizeof(subject));
            assert_non_null(expected[t].lines[i]);
            char *line = line_of(subject, ex[i], NULL, false);
            if (strcmp(line, expected[t].lines[i]) != 0)
                fail_msg("%s example %zu:\n got  [%s]\n want [%s]", expected[t].schema, i, line, expected[t].lines[i]);
            free(line);
            checked++;
        }
        /* A new example in proto/ needs its line here too. */
        assert_true(n == 4 || expected[t].lines[n] == NULL);
        free_examples(ex, n);
    }
    assert_int_equal(checked, 20);
}

static void test_stage_names(void **state)
{
    (void)state;
    assert_string_equal(qfsctl_stage("qfs.events.111122223333.eu-west-1"), "event");
    assert_string_equal(qfsctl_stage("qfs.images.111122223333.eu-west-1"), "image");
    assert_string_equal(qfsctl_stage("qfs.scans.skipped.111122223333.eu-west-1"), "skip");
    assert_string_equal(qfsctl_stage("qfs.scans.requested.111122223333.eu-west-1"), "request");
    assert_string_equal(qfsctl_stage("qfs.scans.ready.111122223333.eu-west-1"), "ready");
    assert_string_equal(qfsctl_stage("qfs.scans.completed.111122223333.eu-west-1"), "completed");
    assert_string_equal(qfsctl_stage("qfs.scans.failed.111122223333.eu-west-1"), "failed");
    assert_string_equal(qfsctl_stage("qfs.notifications.111122223333.eu-west-1"), "notification");
    assert_string_equal(qfsctl_stage("qfs.dlq.parser"), "dlq");
    assert_string_equal(qfsctl_stage("qfs.stats.cache"), "stats");
    assert_string_equal(qfsctl_stage("other.thing"), "?");
}

static void test_undecodable_message_still_gets_a_line(void **state)
{
    (void)state;
    char *line = line_of("qfs.events.111122223333.eu-west-1", "not json at all", NULL, false);
    assert_non_null(strstr(line, "  event  "));
    assert_non_null(strstr(line, "111122223333/eu-west-1"));
    assert_non_null(strstr(line, "undecodable: "));
    free(line);
    line = line_of("foo.bar", "{}", NULL, false);
    assert_non_null(strstr(line, "not a qfs subject"));
    free(line);
}

static void test_message_text_cannot_drive_the_terminal(void **state)
{
    (void)state;
    /* The decoder keeps detail as it is: an eventName with an escape sequence and a newline. */
    const char *ev = "{\"version\":\"0\",\"id\":\"evt-1\",\"detail-type\":\"AWS API Call via CloudTrail\","
                     "\"source\":\"aws.ecs\",\"account\":\"111122223333\",\"time\":\"2026-05-01T10:00:00Z\","
                     "\"region\":\"eu-west-1\",\"resources\":[],\"detail\":{\"eventName\":\"Run\\u001b[2J\\nX\"}}";
    char *line = line_of("qfs.events.111122223333.eu-west-1", ev, NULL, false);
    assert_null(strchr(line, '\033'));
    assert_null(strchr(line, '\n'));
    assert_non_null(strstr(line, "Run?[2J?X"));
    free(line);
}

/* ---- colours ---------------------------------------------------------------------------------- */

static void test_colour_only_on_a_terminal_without_no_color(void **state)
{
    (void)state;
    assert_false(qfsctl_use_colour(false, NULL, false));
    assert_true(qfsctl_use_colour(true, NULL, false));
    assert_false(qfsctl_use_colour(true, "1", false));
    assert_true(qfsctl_use_colour(true, "", false)); /* no-color.org: only a non-empty value counts */
    assert_false(qfsctl_use_colour(true, NULL, true));

    size_t n = 0;
    char **ex = examples("scan_result", &n);
    char *plain = line_of("qfs.scans.completed.111122223333.eu-west-1", ex[0], NULL, false);
    char *coloured = line_of("qfs.scans.completed.111122223333.eu-west-1", ex[0], NULL, true);
    assert_null(strchr(plain, '\033'));
    assert_non_null(strstr(coloured, "\033[31m1C/3H/7M/2L")); /* critical findings in red */
    assert_non_null(strstr(coloured, "\033[0m"));
    free(plain);
    free(coloured);
    free_examples(ex, n);
}

/* ---- trace ------------------------------------------------------------------------------------ */

static bool traced(const char *subject, const char *data, const char *header, const char *id)
{
    struct qfsctl_msg m = {.subject = subject, .data = data, .len = strlen(data), .trace_id = header};
    return qfsctl_msg_has_trace(&m, id);
}

static void test_trace_filtering(void **state)
{
    (void)state;
    size_t n = 0;
    char **ev = examples("event", &n);
    const char *events = "qfs.events.111122223333.eu-west-1";
    assert_true(traced(events, ev[0], NULL, "6a7e8feb-0000-0000-0000-000000000001"));
    assert_false(traced(events, ev[0], NULL, "d1c2b3a4-9e8f-4a7b-b6c5-d4e3f2a1b0c9"));
    /* The CloudTrail eventID inside detail is not the trace. */
    assert_false(traced(events, ev[0], NULL, "0b5c2d4e-0000-0000-0000-000000000002"));
    free_examples(ev, n);

    char **img = examples("image", &n);
    const char *images = "qfs.images.111122223333.eu-west-1";
    assert_true(traced(images, img[0], NULL, "6a7e8feb-0000-0000-0000-000000000001"));
    assert_false(traced(images, img[0], NULL, "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"));
    /* The header alone is enough, whatever the body. */
    assert_true(traced(images, "garbage", "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"));
    free_examples(img, n);

    char **res = examples("scan_result", &n);
    const char *done = "qfs.scans.completed.111122223333.eu-west-1";
    assert_true(traced(done, res[0], NULL, "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f")); /* deploys[].event_id */
    assert_false(traced(done, res[0], NULL, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"));
    free_examples(res, n);

    char **dlq = examples("dlq", &n);
    assert_true(traced("qfs.dlq.parser", dlq[0], NULL, "6a7e8feb-0000-0000-0000-000000000003"));
    assert_false(traced("qfs.dlq.ingest", dlq[1], NULL, "6a7e8feb-0000-0000-0000-000000000003"));
    free_examples(dlq, n);

    /* "id" names the trace only on events. */
    assert_false(traced("qfs.images.111122223333.eu-west-1", "{\"id\":\"x-1\"}", NULL, "x-1"));
    assert_true(traced("qfs.images.111122223333.eu-west-1", "{\"id\":\"x-1\"}", NULL, NULL));
}

/* ---- JSON lines ------------------------------------------------------------------------------- */

static void test_json_line_keeps_the_message(void **state)
{
    (void)state;
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    const char *spaced = "{ \"a\" : [1, 2],\n \"b\": \"x y\\\" z\" }  \n";
    assert_int_equal(qfsctl_json_compact(spaced, strlen(spaced), &b), QFS_OK);
    assert_string_equal(b.data, "{\"a\":[1,2],\"b\":\"x y\\\" z\"}");
    qfs_buf_reset(&b);
    assert_int_equal(qfsctl_json_compact("{} trailing", 11, &b), QFS_PROTOCOL);
    assert_int_equal(qfsctl_json_compact("nope", 4, &b), QFS_PROTOCOL);

    const char *body = "{\"generation\": 999999999999999}";
    struct qfsctl_msg m = {.subject = "qfs.dlq.parser", .data = body, .len = strlen(body), .trace_id = "t-1",
                           .seq = 42, .time_ms = T0};
    qfs_buf_reset(&b);
    assert_int_equal(qfsctl_json_line(&m, &b), QFS_OK);
    assert_string_equal(b.data, "{\"seq\":42,\"time\":\"2026-05-01T10:00:01.532Z\",\"subject\":\"qfs.dlq.parser\","
                                "\"trace_id\":\"t-1\",\"message\":{\"generation\":999999999999999}}");
    m.data = "not json";
    m.len = 8;
    m.trace_id = NULL;
    qfs_buf_reset(&b);
    qfsctl_json_line(&m, &b);
    assert_non_null(strstr(b.data, "\"trace_id\":null,\"message\":\"not json\"}"));
    qfs_buf_cleanup(&b);

    char counts[64];
    qfsctl_counts_str(2, 5, 0, 0, 0, counts, sizeof(counts));
    assert_string_equal(counts, "2C/5H");
    qfsctl_counts_str(0, 0, 1, 0, 3, counts, sizeof(counts));
    assert_string_equal(counts, "0C/0H/1M/3I");
}

/* ---- arguments -------------------------------------------------------------------------------- */


static void expect_error(qfs_status s, const char *err, const char *want)
{
    assert_int_equal(s, QFS_PROTOCOL);
    if (!strstr(err, want)) fail_msg("error [%s] does not say [%s]", err, want);
}

static void test_tail_arguments(void **state)
{
    (void)state;
    char err[512];
    struct qfsctl_tail_opts t;
    char *ok[] = {"tail", "qfs.scans.>", "--since", "5m", "--trace=evt-1", "--count", "3", "--timeout", "20s", "--json"};
    assert_int_equal(qfsctl_tail_parse(10, ok, &t, err, sizeof(err)), QFS_OK);
    assert_string_equal(t.subject, "qfs.scans.>");
    assert_int_equal(t.since_ms, 300000);
    assert_string_equal(t.trace, "evt-1");
    assert_int_equal(t.count, 3);
    assert_int_equal(t.timeout_ms, 20000);
    assert_true(t.json);

    char *dflt[] = {"tail"};
    assert_int_equal(qfsctl_tail_parse(1, dflt, &t, err, sizeof(err)), QFS_OK);
    assert_string_equal(t.subject, "qfs.>");
    assert_int_equal(t.count, 0);

    char *help[] = {"tail", "--help", "--bogus"};
    assert_int_equal(qfsctl_tail_parse(3, help, &t, err, sizeof(err)), QFS_OK);
    assert_true(t.help);

    char *two[] = {"tail", "qfs.events.>", "qfs.images.>"};
    expect_error(qfsctl_tail_parse(3, two, &t, err, sizeof(err)), err, "one SUBJECT");
    char *count0[] = {"tail", "--count", "0"};
    expect_error(qfsctl_tail_parse(3, count0, &t, err, sizeof(err)), err, "--count: \"0\" is not a whole number");
    char *countx[] = {"tail", "--count=many"};
    expect_error(qfsctl_tail_parse(2, countx, &t, err, sizeof(err)), err, "--count: \"many\"");
    char *dur[] = {"tail", "--timeout", "5 parsecs"};
    expect_error(qfsctl_tail_parse(3, dur, &t, err, sizeof(err)), err, "is not a duration (write it like 30s");
    char *missing[] = {"tail", "--since"};
    expect_error(qfsctl_tail_parse(2, missing, &t, err, sizeof(err)), err, "--since needs a value");
    char *unknown[] = {"tail", "--follow"};
    expect_error(qfsctl_tail_parse(2, unknown, &t, err, sizeof(err)), err, "unknown option --follow");
    assert_non_null(strstr(err, "(see qfsctl tail --help)"));
    char *shortopt[] = {"tail", "-f"};
    expect_error(qfsctl_tail_parse(2, shortopt, &t, err, sizeof(err)), err, "unknown option -f");
    char *flagval[] = {"tail", "--json=yes"};
    expect_error(qfsctl_tail_parse(2, flagval, &t, err, sizeof(err)), err, "--json takes no value");
    char *subj[] = {"tail", "events.>"};
    expect_error(qfsctl_tail_parse(2, subj, &t, err, sizeof(err)), err, "is not a qfs subject");
    char *trace[] = {"tail", "--trace", "bad id!"};
    expect_error(qfsctl_tail_parse(3, trace, &t, err, sizeof(err)), err, "is not an event id");
}

static void test_other_arguments(void **state)
{
    (void)state;
    char err[512];
    struct qfsctl_inject_opts in;
    char *inj[] = {"inject", "a.json", "--bus", "b.json"};
    assert_int_equal(qfsctl_inject_parse(4, inj, &in, err, sizeof(err)), QFS_OK);
    assert_true(in.bus);
    assert_int_equal(in.nfiles, 2);
    assert_string_equal(in.files[0], "a.json");
    assert_string_equal(in.files[1], "b.json");
    char *nofile[] = {"inject", "--bus"};
    expect_error(qfsctl_inject_parse(2, nofile, &in, err, sizeof(err)), err, "at least one FILE");

    struct qfsctl_status_opts st;
    char *s1[] = {"status", "--idle", "3s", "--service", "parser,cache", "--strict"};
    assert_int_equal(qfsctl_status_parse(6, s1, &st, err, sizeof(err)), QFS_OK);
    assert_int_equal(st.idle_ms, 3000);
    assert_false(st.check[0]);
    assert_true(st.check[1]);
    assert_true(st.check[2]);
    assert_false(st.check[3]);
    assert_true(st.strict);
    char *s2[] = {"status"};
    assert_int_equal(qfsctl_status_parse(1, s2, &st, err, sizeof(err)), QFS_OK);
    assert_int_equal(st.idle_ms, 30000);
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) assert_true(st.check[i]);
    char *s3[] = {"status", "--service", "parser,poller"};
    expect_error(qfsctl_status_parse(3, s3, &st, err, sizeof(err)), err, "\"poller\" is not a qfs service");
    char *s4[] = {"status", "now"};
    expect_error(qfsctl_status_parse(2, s4, &st, err, sizeof(err)), err, "takes no arguments");

    struct qfsctl_dlq_opts d;
    char *d1[] = {"dlq", "replay", "17"};
    assert_int_equal(qfsctl_dlq_parse(3, d1, &d, err, sizeof(err)), QFS_OK);
    assert_int_equal(d.action, QFSCTL_DLQ_REPLAY);
    assert_int_equal(d.seq, 17);
    char *d2[] = {"dlq", "replay", "--all", "--service", "parser"};
    assert_int_equal(qfsctl_dlq_parse(5, d2, &d, err, sizeof(err)), QFS_OK);
    assert_true(d.all);
    assert_string_equal(d.service, "parser");
    char *d3[] = {"dlq"};
    expect_error(qfsctl_dlq_parse(1, d3, &d, err, sizeof(err)), err, "needs an action");
    char *d4[] = {"dlq", "show"};
    expect_error(qfsctl_dlq_parse(2, d4, &d, err, sizeof(err)), err, "needs one SEQ");
    char *d5[] = {"dlq", "show", "12abc"};
    expect_error(qfsctl_dlq_parse(3, d5, &d, err, sizeof(err)), err, "is not a stream sequence number");
    char *d6[] = {"dlq", "replay", "5", "--all"};
    expect_error(qfsctl_dlq_parse(4, d6, &d, err, sizeof(err)), err, "a SEQ or --all, not both");
    char *d7[] = {"dlq", "purge"};
    expect_error(qfsctl_dlq_parse(2, d7, &d, err, sizeof(err)), err, "unknown dlq action \"purge\"");
    char *d8[] = {"dlq", "show", "0"};
    expect_error(qfsctl_dlq_parse(3, d8, &d, err, sizeof(err)), err, "is not a stream sequence number");

    struct qfsctl_replay_opts r;
    char *r1[] = {"replay"};
    expect_error(qfsctl_replay_parse(1, r1, &r, err, sizeof(err)), err, "needs --since DURATION");
    char *r2[] = {"replay", "--since", "1h"};
    assert_int_equal(qfsctl_replay_parse(3, r2, &r, err, sizeof(err)), QFS_OK);
    assert_string_equal(r.subject, "qfs.events.>");
    char *r3[] = {"replay", "--since", "1h", "--subject", "qfs.dlq.>"};
    expect_error(qfsctl_replay_parse(5, r3, &r, err, sizeof(err)), err, "cannot be replayed");
    char *r4[] = {"replay", "--since", "1h", "--subject", "qfs.images.111122223333.>"};
    assert_int_equal(qfsctl_replay_parse(5, r4, &r, err, sizeof(err)), QFS_OK);

    struct qfsctl_scans_opts sc;
    char *c1[] = {"scans", "--image", "web", "--limit", "5"};
    assert_int_equal(qfsctl_scans_parse(5, c1, &sc, err, sizeof(err)), QFS_OK);
    assert_string_equal(sc.image, "web");
    assert_int_equal(sc.limit, 5);
    assert_int_equal(sc.since_ms, 86400000);
    char *c2[] = {"scans", "--since", "-5m"};
    expect_error(qfsctl_scans_parse(3, c2, &sc, err, sizeof(err)), err, "is not a duration");

    struct qfsctl_qualys_opts q;
    char *q1[] = {"qualys", "registries", "111122223333/eu-west-1"};
    assert_int_equal(qfsctl_qualys_parse(3, q1, &q, err, sizeof(err)), QFS_OK);
    assert_int_equal(q.action, QFSCTL_QUALYS_REGISTRIES);
    assert_int_equal(q.ntargets, 1);
    char *q2[] = {"qualys", "registries", "11112222333/eu-west-1"};
    expect_error(qfsctl_qualys_parse(3, q2, &q, err, sizeof(err)), err, "is not ACCOUNT/REGION");
    char *q3[] = {"qualys"};
    expect_error(qfsctl_qualys_parse(1, q3, &q, err, sizeof(err)), err, "needs an action");

    /* Every command has a help text, and qfsctl's own lists the variables. */
    const char *cmds[] = {"inject", "tail", "status", "dlq", "replay", "scans", "qualys", "config"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) assert_non_null(qfsctl_usage(cmds[i]));
    assert_null(qfsctl_usage("bogus"));
    char *help = NULL;
    size_t hlen = 0;
    FILE *f = open_memstream(&help, &hlen);
    qfsctl_print_help(f);
    fclose(f);
    const char *vars[] = {"QFS_NATS_URL", "QFS_SQS_QUEUE_URL", "QFS_CACHE_BACKEND", "QFS_REDIS_URL",
                          "QUALYS_GATEWAY_URL", "QFS_QUALYS_SECRET_ARN", "AWS_REGION", "NO_COLOR"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) assert_non_null(strstr(help, vars[i]));
    free(help);
}

/* ---- status ----------------------------------------------------------------------------------- */

static struct qfsctl_consumer_stat *add_consumer(struct qfsctl_status *st, size_t svc, const char *name,
                                                 int64_t waiting, int64_t last_ms)
{
    struct qfsctl_service_stat *s = &st->services[svc];
    struct qfsctl_consumer_stat *k = &s->consumers[s->nconsumers++];
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->waiting = waiting;
    k->last_active_ms = last_ms;
    return k;
}

static void test_status_judgement(void **state)
{
    (void)state;
    const int64_t now = T0, idle = 3000;
    struct qfsctl_status st;
    qfsctl_status_init(&st);
    st.stream_found = true;
    for (size_t i = 0; i < 3; i++) st.services[i].checked = true; /* ingest, parser, cache */
    add_consumer(&st, 1, "parser-events", 1, 0);                  /* a pull request is waiting */
    add_consumer(&st, 2, "cache-images", 0, now - 1000);          /* delivered just now */
    add_consumer(&st, 2, "cache-completed", 1, 0);
    qfsctl_status_judge(&st, now, idle, false);
    assert_int_equal(st.services[0].state, QFSCTL_UNKNOWN); /* ingest without a monitor or stats */
    assert_int_equal(st.services[1].state, QFSCTL_UP);
    assert_int_equal(st.services[2].state, QFSCTL_UP);
    assert_int_equal(st.services[3].state, QFSCTL_DOWN);    /* never started, but not checked */
    assert_true(st.healthy);

    /* The parser was killed: no pull request, last delivery past the idle threshold. */
    st.services[1].consumers[0].waiting = 0;
    st.services[1].consumers[0].last_active_ms = now - 5000;
    qfsctl_status_judge(&st, now, idle, false);
    assert_int_equal(st.services[1].state, QFSCTL_DOWN);
    assert_non_null(strstr(st.services[1].why, "parser-events: no pull request waiting, last delivery 5s ago"));
    assert_false(st.healthy);
    /* Within the threshold it still counts as up. */
    qfsctl_status_judge(&st, now, 10000, false);
    assert_int_equal(st.services[1].state, QFSCTL_UP);
    /* Its statistics are a sign of life too. */
    st.services[1].stats_seen_ms = now - 500;
    qfsctl_status_judge(&st, now, idle, false);
    assert_int_equal(st.services[1].state, QFSCTL_UP);
    st.services[1].stats_seen_ms = 0;

    /* Known connections decide at once, and judge ingest. */
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) st.services[i].connections = 1;
    st.services[1].consumers[0].waiting = 1;
    st.services[2].connections = 0;
    qfsctl_status_judge(&st, now, idle, false);
    assert_int_equal(st.services[0].state, QFSCTL_UP);
    assert_int_equal(st.services[2].state, QFSCTL_DOWN);
    assert_string_equal(st.services[2].why, "no NATS connection named qfs-cache");
    assert_false(st.healthy);
    st.services[2].connections = 2;

    /* The DLQ fails the check only with --strict. */
    st.dlq_total = 1;
    st.services[1].dlq = 1;
    qfsctl_status_judge(&st, now, idle, false);
    assert_true(st.healthy);
    qfsctl_status_judge(&st, now, idle, true);
    assert_false(st.healthy);

    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    st.requested = 5;
    st.completed = 2;
    st.failed = 1;
    st.has_last_error = true;
    st.last_error_seq = 9;
    snprintf(st.last_error_service, sizeof(st.last_error_service), "parser");
    snprintf(st.last_error_time, sizeof(st.last_error_time), "2026-05-01T10:00:00.000Z");
    snprintf(st.last_error_reason, sizeof(st.last_error_reason), "id: expected string");
    assert_int_equal(qfsctl_status_render(&st, now, &b), QFS_OK);
    assert_non_null(strstr(b.data, "SERVICE         STATE             CONN  CONSUMER         LAG"));
    assert_non_null(strstr(b.data, "\nparser          up                1     parser-events    0    0"));
    assert_non_null(strstr(b.data, "\ncache           up                2     cache-images"));
    assert_non_null(strstr(b.data, "\n                                        cache-completed"));
    assert_non_null(strstr(b.data, "\nregistry        DOWN (unchecked)"));
    assert_non_null(strstr(b.data, "Scans in flight: 2 (requested 5, completed 2, failed 1"));
    assert_non_null(strstr(b.data, "DLQ: 1 entry\n"));
    assert_non_null(strstr(b.data, "Last error: 2026-05-01T10:00:00.000Z parser (seq 9): id: expected string"));
    assert_non_null(strstr(b.data, "Health: UNHEALTHY\n"));
    assert_null(strstr(b.data, " \n")); /* no trailing blanks */
    qfs_buf_reset(&b);
    assert_int_equal(qfsctl_status_json(&st, &b), QFS_OK);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "healthy")));
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scans"), "in_flight")->valueint, 2);
    cJSON *svc1 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "services"), 1);
    assert_string_equal(cJSON_GetObjectItem(svc1, "state")->valuestring, "up");
    cJSON_Delete(j);

    qfsctl_status_init(&st);
    qfs_buf_reset(&b);
    qfsctl_status_judge(&st, now, idle, false);
    assert_false(st.healthy);
    qfsctl_status_render(&st, now, &b);
    assert_non_null(strstr(b.data, "The stream QFS does not exist yet"));
    qfs_buf_cleanup(&b);
}

/* ---- scans and DLQ ---------------------------------------------------------------------------- */

static void test_scan_rows_and_table(void **state)
{
    (void)state;
    size_t n = 0, nf = 0;
    char **res = examples("scan_result", &n);
    char **fail = examples("scan_failure", &nf);
    struct qfsctl_scan_row rows[2];
    char err[256];
    struct qfsctl_msg m = {.subject = "qfs.scans.completed.111122223333.eu-west-1", .data = res[0],
                           .len = strlen(res[0]), .seq = 10, .time_ms = T0};
    assert_int_equal(qfsctl_scan_row(&m, &rows[0], err, sizeof(err)), QFS_OK);
    assert_string_equal(rows[0].image, "web:1.4.2");
    assert_string_equal(rows[0].digest, "sha256:4e2a6c0d9b8f");
    assert_string_equal(rows[0].result, "1C/3H/7M/2L");
    assert_string_equal(rows[0].deploys, "UpdateService web, RunTask web-canary:3");
    assert_string_equal(rows[0].key, "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:"
                                     "4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605");
    assert_true(rows[0].completed);
    assert_true(qfsctl_scan_row_matches(&rows[0], &m, "web"));
    assert_true(qfsctl_scan_row_matches(&rows[0], &m, "web:1.4.2"));
    assert_false(qfsctl_scan_row_matches(&rows[0], &m, "api"));
    snprintf(rows[0].cached, sizeof(rows[0].cached), "yes");

    struct qfsctl_msg f = {.subject = "qfs.scans.failed.222233334444.ap-southeast-2", .data = fail[1],
                           .len = strlen(fail[1]), .seq = 11, .time_ms = T0 + 60000};
    assert_int_equal(qfsctl_scan_row(&f, &rows[1], err, sizeof(err)), QFS_OK);
    assert_string_equal(rows[1].result, "failed registry_failed");
    assert_string_equal(rows[1].deploys, "RunTask etl:88");
    assert_string_equal(rows[1].cached, "-");

    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    assert_int_equal(qfsctl_scans_render(rows, 2, &b), QFS_OK);
    assert_non_null(strstr(b.data, "WHEN                      SEQ  ACCOUNT/REGION               IMAGE"));
    assert_non_null(strstr(b.data, "2026-05-01T10:00:01.532Z  10   111122223333/eu-west-1       web:1.4.2"));
    assert_non_null(strstr(b.data, "1C/3H/7M/2L             yes     UpdateService web, RunTask web-canary:3\n"));
    assert_non_null(strstr(b.data, "failed registry_failed  -       RunTask etl:88\n"));
    qfs_buf_cleanup(&b);

    struct qfsctl_msg bad = {.subject = "qfs.images.111122223333.eu-west-1", .data = "{}", .len = 2};
    assert_int_equal(qfsctl_scan_row(&bad, &rows[0], err, sizeof(err)), QFS_PROTOCOL);
    free_examples(res, n);
    free_examples(fail, nf);
}

static void decode_dlq(const char *json, struct qfs_dlq_entry *e)
{
    char err[256];
    if (qfs_dlq_entry_decode(json, strlen(json), e, err, sizeof(err)) != QFS_OK) fail_msg("%s", err);
}

static void test_dlq_replay_targets(void **state)
{
    (void)state;
    size_t n = 0;
    char **ex = examples("dlq", &n);
    char subject[QFS_SUBJECT_MAX], err[300];
    struct qfs_dlq_entry e;

    /* A parser entry goes back where it came from. */
    decode_dlq(ex[0], &e);
    assert_int_equal(qfsctl_dlq_replay_subject(&e, subject, err, sizeof(err)), QFS_OK);
    assert_string_equal(subject, "qfs.events.111122223333.eu-west-1");
    assert_string_equal(qfsctl_dlq_header(&e, "qfs-schema"), "qfs.event.v1");
    assert_null(qfsctl_dlq_header(&e, "X-Other"));
    /* A cut payload cannot be replayed. */
    e.payload_truncated = true;
    e.payload_size = 600000;
    expect_error(qfsctl_dlq_replay_subject(&e, subject, err, sizeof(err)), err, "cannot be replayed");
    qfs_dlq_entry_cleanup(&e);

    /* An ingest entry whose payload is not an event says so. */
    decode_dlq(ex[1], &e);
    expect_error(qfsctl_dlq_replay_subject(&e, subject, err, sizeof(err)), err, "the payload is not an EventBridge event");
    /* One whose payload is an event goes to the event's subject. */
    size_t en = 0;
    char **events = examples("event", &en);
    free(e.payload);
    e.payload = qfs_xstrdup(events[0]);
    e.payload_len = strlen(events[0]);
    assert_int_equal(qfsctl_dlq_replay_subject(&e, subject, err, sizeof(err)), QFS_OK);
    assert_string_equal(subject, "qfs.events.111122223333.eu-west-1");
    qfs_dlq_entry_cleanup(&e);

    /* A subject that is not a qfs one is refused. */
    memset(&e, 0, sizeof(e));
    e.original_subject = "qfs.dlq.parser";
    expect_error(qfsctl_dlq_replay_subject(&e, subject, err, sizeof(err)), err, "not a qfs subject that can be replayed");

    assert_true(qfsctl_replay_subject_ok("qfs.events.>"));
    assert_true(qfsctl_replay_subject_ok("qfs.scans.completed.111122223333.eu-west-1"));
    assert_false(qfsctl_replay_subject_ok("qfs.dlq.>"));
    assert_false(qfsctl_replay_subject_ok("qfs.stats.>"));
    assert_false(qfsctl_replay_subject_ok("qfs.events."));
    assert_false(qfsctl_replay_subject_ok("qfs.>"));

    struct qfsctl_dlq_row rows[1];
    rows[0].seq = 31;
    decode_dlq(ex[0], &rows[0].entry);
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfsctl_dlq_render(rows, 1, &b);
    assert_non_null(strstr(b.data, "SEQ  TIME                      SERVICE  STATUS    SUBJECT"));
    assert_non_null(strstr(b.data, "31   2026-05-01T10:00:01.532Z  parser   protocol  qfs.events.111122223333.eu-west-1"));
    qfs_dlq_entry_cleanup(&rows[0].entry);
    qfs_buf_reset(&b);
    qfsctl_dlq_render(rows, 0, &b);
    assert_string_equal(b.data, "The DLQ is empty.\n");
    qfs_buf_cleanup(&b);
    free_examples(events, en);
    free_examples(ex, n);
}

/* ---- event files ------------------------------------------------------------------------------ */

static void test_event_files(void **state)
{
    (void)state;
    size_t len = 0;
    char *log = read_source("tests/fixtures/events/cloudtrail-log-file.json", &len);
    struct qfs_event_text *t = NULL;
    size_t n = 0;
    assert_int_equal(qfs_event_texts(log, len, 100, &t, &n), QFS_OK);
    assert_int_equal(n, 5);
    cJSON *first = cJSON_Parse(t[0].text);
    assert_string_equal(cJSON_GetObjectItem(first, "id")->valuestring, "0b5c2d4e-0044-4111-9111-111111111144");
    assert_string_equal(cJSON_GetObjectItem(first, "source")->valuestring, "aws.ecs");
    assert_string_equal(cJSON_GetObjectItem(first, "detail-type")->valuestring, "AWS API Call via CloudTrail");
    assert_string_equal(cJSON_GetObjectItem(first, "account")->valuestring, "111122223333");
    cJSON_Delete(first);
    qfs_event_texts_free(t, n);
    assert_int_equal(qfs_event_texts(log, len, 3, &t, &n), QFS_TOO_BIG);
    assert_null(t);
    free(log);

    /* One pretty-printed event is split as it is, and inject sends it compact. */
    char *one = read_source("tests/fixtures/events/register-task-definition.json", &len);
    assert_int_equal(qfs_event_texts(one, len, 100, &t, &n), QFS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].len, len);
    struct qfs_buf compact;
    qfs_buf_init(&compact, 0);
    assert_int_equal(qfsctl_json_compact(t[0].text, t[0].len, &compact), QFS_OK);
    assert_null(strchr(compact.data, '\n'));
    assert_non_null(strstr(compact.data, "\"id\":\"6a7e8feb-0001-4000-8000-000000000001\""));
    qfs_buf_cleanup(&compact);
    qfs_event_texts_free(t, n);
    free(one);

    /* An SQS message carries the event in its Body; what is not JSON is kept as it is. */
    const char *sqs = "{\"MessageId\":\"m-1\",\"Body\":\"{\\\"id\\\": \\\"e-1\\\"}\"}";
    assert_int_equal(qfs_event_texts(sqs, strlen(sqs), 100, &t, &n), QFS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].text, "{\"id\": \"e-1\"}"); /* the Body, byte for byte */
    qfs_event_texts_free(t, n);
    assert_int_equal(qfs_event_texts("garbage", 7, 100, &t, &n), QFS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].text, "garbage");
    qfs_event_texts_free(t, n);
}

static void test_table_widths_count_characters(void **state)
{
    (void)state;
    struct qfsctl_table t;
    qfsctl_table_init(&t, 3);
    const char *r1[] = {"A", "détecté", "x"};
    const char *r2[] = {"BB", NULL, "bad\033[1m"};
    qfsctl_table_add(&t, r1);
    qfsctl_table_add(&t, r2);
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfsctl_table_render(&t, &b);
    assert_string_equal(b.data, "A   détecté  x\nBB  -        bad?[1m\n");
    qfs_buf_cleanup(&b);
    qfsctl_table_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_line_for_every_example),
        cmocka_unit_test(test_stage_names),
        cmocka_unit_test(test_undecodable_message_still_gets_a_line),
        cmocka_unit_test(test_message_text_cannot_drive_the_terminal),
        cmocka_unit_test(test_colour_only_on_a_terminal_without_no_color),
        cmocka_unit_test(test_trace_filtering),
        cmocka_unit_test(test_json_line_keeps_the_message),
        cmocka_unit_test(test_tail_arguments),
        cmocka_unit_test(test_other_arguments),
        cmocka_unit_test(test_status_judgement),
        cmocka_unit_test(test_scan_rows_and_table),
        cmocka_unit_test(test_dlq_replay_targets),
        cmocka_unit_test(test_event_files),
        cmocka_unit_test(test_table_widths_count_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
