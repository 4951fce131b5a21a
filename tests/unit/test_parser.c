/* The parser's rules on in-memory events: parser_plan reads the event, parser_group turns its
 * containers into ECR image records and skips, parser_build gives the messages and their ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"
#include "qfs/bus.h"
#include "qfs/proto_event.h"
#include "qfs/util.h"

#define EVENT_ID "6a7e8feb-0000-4000-8000-000000000001"
#define ACCOUNT "111122223333"
#define OTHER "444455556666"
#define REGION "eu-west-1"
#define ECR_EU ACCOUNT ".dkr.ecr.eu-west-1.amazonaws.com"
#define ECR_USE1 ACCOUNT ".dkr.ecr.us-east-1.amazonaws.com"
#define TD_WEB "arn:aws:ecs:eu-west-1:" ACCOUNT ":task-definition/web:42"
#define HEX_A "4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605"
#define HEX_B "9b1c7e0f3a2d4c5b6a79881726354433221100ffeeddccbbaa99887766554433"
#define DIGEST_A "sha256:" HEX_A
#define DIGEST_B "sha256:" HEX_B

/* ---- building events --------------------------------------------------------------------------- */

/* An EventBridge envelope around detail (a JSON object text). */
static char *envelope(const char *detail_type, const char *detail)
{
    return qfs_xasprintf("{\"version\":\"0\",\"id\":\"" EVENT_ID "\",\"detail-type\":\"%s\","
                         "\"source\":\"aws.ecs\",\"account\":\"" ACCOUNT "\","
                         "\"time\":\"2026-05-01T10:00:00Z\",\"region\":\"" REGION "\","
                         "\"resources\":[],\"detail\":%s}",
                         detail_type, detail);
}

/* A CloudTrail API call event of that eventVersion; req and resp are JSON texts ("null"
 * allowed), extra more detail fields or NULL. */
static char *api_call_version(const char *version, const char *name, const char *req,
                              const char *resp, const char *extra)
{
    char *detail = qfs_xasprintf(
        "{\"eventVersion\":\"%s\",\"eventSource\":\"ecs.amazonaws.com\",\"eventName\":\"%s\","
        "\"awsRegion\":\"" REGION "\",\"eventTime\":\"2026-05-01T10:00:00Z\","
        "\"recipientAccountId\":\"" ACCOUNT "\",\"eventID\":\"0b5c2d4e-0000-4000-8000-000000000002\","
        "\"userIdentity\":{\"type\":\"AssumedRole\","
        "\"arn\":\"arn:aws:sts::" ACCOUNT ":assumed-role/ci-deploy/run-42\"},"
        "\"requestParameters\":%s,\"responseElements\":%s%s%s}",
        version, name, req, resp, extra ? "," : "", extra ? extra : "");
    char *ev = envelope("AWS API Call via CloudTrail", detail);
    free(detail);
    return ev;
}

static char *api_call(const char *name, const char *req, const char *resp, const char *extra)
{
    return api_call_version("1.11", name, req, resp, extra);
}

/* A RegisterTaskDefinition of web:42 with the given containerDefinitions array text. */
static char *register_event(const char *defs)
{
    char *resp = qfs_xasprintf("{\"taskDefinition\":{\"taskDefinitionArn\":\"" TD_WEB "\","
                               "\"family\":\"web\",\"revision\":42,\"containerDefinitions\":%s}}",
                               defs);
    char *ev = api_call("RegisterTaskDefinition", "{\"family\":\"web\"}", resp, NULL);
    free(resp);
    return ev;
}

/* Decodes json and plans it; the test fails if the event does not decode. */
static void plan_json(char *json, struct parser_plan *plan)
{
    struct qfs_event ev;
    char err[256];
    qfs_status s = qfs_event_decode(json, strlen(json), &ev, err, sizeof(err));
    if (s != QFS_OK) fail_msg("event does not decode: %s", err);
    parser_plan(&ev, plan);
    qfs_event_cleanup(&ev);
    free(json);
}

/* The outputs of a planned event, built as the service builds them. */
struct outputs {
    struct parser_plan plan;
    struct parser_image *images;
    size_t nimages;
    struct qfs_outbox ob;
};

static void outputs_of(char *json, struct outputs *o)
{
    memset(o, 0, sizeof(*o));
    plan_json(json, &o->plan);
    parser_group(&o->plan, &o->images, &o->nimages);
    /* What the lookups would do without AWS: a record without a digest says why. */
    for (size_t i = 0; i < o->nimages; i++)
        if (!o->images[i].record.image.digest)
            o->images[i].record.digest_unresolved = qfs_xstrdup("not looked up in this test");
    qfs_outbox_init(&o->ob);
    assert_int_equal(parser_build(&o->plan, o->images, o->nimages, &o->ob), QFS_OK);
}

static void outputs_cleanup(struct outputs *o)
{
    qfs_outbox_cleanup(&o->ob);
    parser_images_free(o->images, o->nimages);
    parser_plan_cleanup(&o->plan);
}

/* Message i of the outbox as JSON (the caller deletes it). */
static cJSON *message(const struct outputs *o, size_t i)
{
    assert_true(i < o->ob.n);
    cJSON *m = cJSON_ParseWithLength(o->ob.items[i].data, o->ob.items[i].len);
    assert_non_null(m);
    return m;
}

static const char *field(const cJSON *m, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_null(const cJSON *m, const char *name)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(m, name));
}

/* The container names of a message joined with ",". */
static void containers_of(const cJSON *m, char *out, size_t n)
{
    out[0] = '\0';
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "containers")) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", len ? "," : "", c->valuestring);
    }
}

/* ---- grouping ---------------------------------------------------------------------------------- */

static void test_shared_image_gives_one_record_naming_every_container(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"app\",\"image\":\"" ECR_EU "/web:1\"},"
                              "{\"name\":\"worker\",\"image\":\"" ECR_EU "/worker:1\"},"
                              "{\"name\":\"warmup\",\"image\":\"" ECR_EU "/web:1\"},"
                              "{\"name\":\"app\",\"image\":\"" ECR_EU "/web:1\"}]"),
               &o);
    assert_int_equal(o.nimages, 2);
    assert_int_equal(o.ob.n, 2);
    cJSON *m = message(&o, 0);
    char names[256];
    containers_of(m, names, sizeof(names));
    /* Listed once each, in the order found. */
    assert_string_equal(names, "app,warmup");
    assert_string_equal(field(m, "repository"), "web");
    assert_string_equal(field(m, "task_definition_arn"), TD_WEB);
    cJSON_Delete(m);
    m = message(&o, 1);
    containers_of(m, names, sizeof(names));
    assert_string_equal(names, "worker");
    cJSON_Delete(m);
    outputs_cleanup(&o);
}

static void test_different_keys_are_different_images(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"a\",\"image\":\"" ECR_EU "/web:1\"},"
                              "{\"name\":\"b\",\"image\":\"" ECR_EU "/web@" DIGEST_A "\"},"
                              "{\"name\":\"c\",\"image\":\"" ECR_EU "/web:2@" DIGEST_B "\"},"
                              "{\"name\":\"d\",\"image\":\"" ECR_EU "/web:2\"},"
                              "{\"name\":\"e\",\"image\":\"" ECR_EU "/api:1\"}]"),
               &o);
    /* Same repository, five image keys: five records, each with its own id. */
    assert_int_equal(o.nimages, 5);
    assert_null(o.images[1].record.image.tag);
    assert_string_equal(o.images[1].record.image.digest, DIGEST_A);
    assert_string_equal(o.images[2].record.image.tag, "2");
    assert_string_equal(o.images[2].record.image.digest, DIGEST_B);
    assert_null(o.images[3].record.image.digest);
    static const char *const ids[] = {
        "image:" EVENT_ID ":" ECR_EU "/web:1",
        "image:" EVENT_ID ":" ECR_EU "/web@" DIGEST_A,
        "image:" EVENT_ID ":" ECR_EU "/web@" DIGEST_B,
        "image:" EVENT_ID ":" ECR_EU "/web:2",
        "image:" EVENT_ID ":" ECR_EU "/api:1",
    };
    assert_int_equal(o.ob.n, 5);
    for (size_t i = 0; i < o.ob.n; i++) assert_string_equal(o.ob.items[i].msg_id, ids[i]);
    outputs_cleanup(&o);
}

static void test_tag_omitted_is_latest(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"app\",\"image\":\"" ECR_EU "/team/web\"}]"), &o);
    assert_int_equal(o.nimages, 1);
    const struct qfs_image_record *r = &o.images[0].record;
    assert_string_equal(r->image.tag, "latest");
    assert_null(r->image.digest);
    /* The image stays as written; the key and the id use the tag Docker pulls. */
    assert_string_equal(r->image.image, ECR_EU "/team/web");
    assert_string_equal(o.ob.items[0].msg_id, "image:" EVENT_ID ":" ECR_EU "/team/web:latest");
    outputs_cleanup(&o);
}

static void test_endpoint_variants_normalise_to_the_standard_host(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event(
                   "[{\"name\":\"std\",\"image\":\"" ECR_USE1 "/web:1\"},"
                   "{\"name\":\"fips\",\"image\":\"" ACCOUNT ".dkr.ecr-fips.us-east-1.amazonaws.com/web:1\"},"
                   "{\"name\":\"dual\",\"image\":\"" ACCOUNT ".dkr-ecr.us-east-1.on.aws/web:1\"},"
                   "{\"name\":\"dualfips\",\"image\":\"" ACCOUNT ".dkr-ecr-fips.us-east-1.on.aws/web:1\"},"
                   "{\"name\":\"upper\",\"image\":\"" ACCOUNT ".DKR.ECR.US-EAST-1.AMAZONAWS.COM/web:1\"},"
                   "{\"name\":\"cn\",\"image\":\"" ACCOUNT ".dkr.ecr.cn-north-1.amazonaws.com.cn/web:1\"}]"),
               &o);
    /* One registry has one name: five spellings of us-east-1 collapse; China keeps .cn. */
    assert_int_equal(o.nimages, 2);
    const struct qfs_image_record *r = &o.images[0].record;
    assert_string_equal(r->image.registry, ECR_USE1);
    assert_string_equal(r->image.account, ACCOUNT);
    assert_string_equal(r->image.region, "us-east-1");
    assert_string_equal(r->image.image, ECR_USE1 "/web:1");
    assert_int_equal(r->deploy.ncontainers, 5);
    assert_string_equal(o.images[0].partition, "aws");
    assert_string_equal(o.images[1].record.image.registry, ACCOUNT ".dkr.ecr.cn-north-1.amazonaws.com.cn");
    assert_string_equal(o.images[1].partition, "aws-cn");
    /* The image's registry, not the event, picks the subject. */
    assert_string_equal(o.ob.items[0].subject, "qfs.images." ACCOUNT ".us-east-1");
    assert_string_equal(o.ob.items[1].subject, "qfs.images." ACCOUNT ".cn-north-1");
    outputs_cleanup(&o);
}

static void test_fips_spelling_alone_still_gets_the_standard_host(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"app\",\"image\":\"" ACCOUNT
                              ".dkr-ecr-fips.us-gov-west-1.on.aws/web@" DIGEST_B "\"}]"),
               &o);
    assert_int_equal(o.nimages, 1);
    assert_string_equal(o.images[0].record.image.registry, ACCOUNT ".dkr.ecr.us-gov-west-1.amazonaws.com");
    assert_string_equal(o.images[0].partition, "aws-us-gov");
    assert_null(o.images[0].record.digest_unresolved);
    outputs_cleanup(&o);
}

static void test_cross_account_image_goes_to_its_registry(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"base\",\"image\":\"" OTHER
                              ".dkr.ecr.ap-southeast-2.amazonaws.com/platform/base:3\"}]"),
               &o);
    assert_int_equal(o.ob.n, 1);
    assert_string_equal(o.ob.items[0].subject, "qfs.images." OTHER ".ap-southeast-2");
    cJSON *m = message(&o, 0);
    assert_string_equal(field(m, "account"), OTHER);
    assert_string_equal(field(m, "event_account"), ACCOUNT);
    assert_string_equal(field(m, "event_region"), REGION);
    cJSON_Delete(m);
    outputs_cleanup(&o);
}

/* ---- digests from ECS Task State Change --------------------------------------------------------- */

static char *task_state_event(const char *containers)
{
    char *detail = qfs_xasprintf("{\"clusterArn\":\"arn:aws:ecs:eu-west-1:" ACCOUNT ":cluster/prod\","
                                 "\"group\":\"service:web\",\"startedBy\":\"ecs-svc/123\","
                                 "\"taskDefinitionArn\":\"" TD_WEB "\",\"lastStatus\":\"RUNNING\","
                                 "\"containers\":%s}",
                                 containers);
    char *ev = envelope("ECS Task State Change", detail);
    free(detail);
    return ev;
}

static void test_digest_in_reference_wins_over_image_digest(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(task_state_event("[{\"name\":\"pinned\",\"image\":\"" ECR_EU "/web@" DIGEST_A "\","
                                "\"imageDigest\":\"" DIGEST_B "\"},"
                                "{\"name\":\"tagged\",\"image\":\"" ECR_EU "/web:1\","
                                "\"imageDigest\":\"" DIGEST_B "\"},"
                                "{\"name\":\"bad\",\"image\":\"" ECR_EU "/api:1\","
                                "\"imageDigest\":\"sha256:XYZ\"}]"),
               &o);
    assert_int_equal(o.nimages, 3);
    assert_string_equal(o.images[0].record.image.digest, DIGEST_A);
    assert_null(o.images[0].record.image.tag);
    /* A tag-only reference takes the digest ECS reported and keeps its tag. */
    assert_string_equal(o.images[1].record.image.digest, DIGEST_B);
    assert_string_equal(o.images[1].record.image.tag, "1");
    /* An imageDigest that is not a digest is ignored. */
    assert_null(o.images[2].record.image.digest);
    assert_string_equal(o.plan.deploy.event_name, "ECS Task State Change");
    assert_string_equal(o.plan.deploy.service, "web");
    assert_string_equal(o.plan.deploy.principal, "ecs-svc/123");
    assert_string_equal(o.ob.items[1].msg_id, "image:" EVENT_ID ":" ECR_EU "/web@" DIGEST_B);
    outputs_cleanup(&o);
}

/* ---- skips --------------------------------------------------------------------------------------- */

static void test_skip_ids_count_per_reason(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"hub\",\"image\":\"nginx:1.25\"},"
                              "{\"name\":\"bad\",\"image\":\"" ECR_EU "/Web:1\"},"
                              "{\"name\":\"pub\",\"image\":\"public.ecr.aws/acme/x:1\"},"
                              "{\"name\":\"noimage\"},"
                              "{\"name\":\"app\",\"image\":\"" ECR_EU "/web:1\"},"
                              "{\"name\":\"bad2\",\"image\":\"web:\"}]"),
               &o);
    /* The image first, then the skips in the order found: the definition without an image while
     * planning, the rest while grouping. */
    static const char *const ids[] = {
        "image:" EVENT_ID ":" ECR_EU "/web:1",
        "skip:" EVENT_ID ":invalid_image:0",
        "skip:" EVENT_ID ":not_ecr:0",
        "skip:" EVENT_ID ":invalid_image:1",
        "skip:" EVENT_ID ":not_ecr:1",
        "skip:" EVENT_ID ":invalid_image:2",
    };
    assert_int_equal(o.ob.n, sizeof(ids) / sizeof(ids[0]));
    for (size_t i = 0; i < o.ob.n; i++) assert_string_equal(o.ob.items[i].msg_id, ids[i]);
    cJSON *m = message(&o, 2);
    assert_string_equal(field(m, "image"), "nginx:1.25");
    assert_string_equal(field(m, "detail"), "registry is docker_hub, not private ECR");
    assert_string_equal(o.ob.items[2].subject, "qfs.scans.skipped." ACCOUNT "." REGION);
    char names[64];
    containers_of(m, names, sizeof(names));
    assert_string_equal(names, "hub");
    cJSON_Delete(m);
    m = message(&o, 3);
    assert_string_equal(field(m, "detail"), "repository contains upper-case letters");
    cJSON_Delete(m);
    outputs_cleanup(&o);
}

static void test_not_ecr_skip_keeps_the_written_digest(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(register_event("[{\"name\":\"hub\",\"image\":\"nginx@" DIGEST_A "\"}]"), &o);
    assert_int_equal(o.plan.nskips, 1);
    assert_int_equal(o.plan.skips[0].reason, QFS_SKIP_NOT_ECR);
    assert_string_equal(o.plan.skips[0].digest, DIGEST_A);
    outputs_cleanup(&o);
}

static void test_failed_call_is_one_skip(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(api_call("UpdateService", "{\"service\":\"web\",\"taskDefinition\":\"web:43\"}", "null",
                        "\"errorCode\":\"AccessDenied\",\"errorMessage\":\"not authorized\""),
               &o);
    assert_int_equal(o.nimages, 0);
    assert_int_equal(o.plan.nlookups, 0);
    assert_int_equal(o.ob.n, 1);
    assert_string_equal(o.ob.items[0].msg_id, "skip:" EVENT_ID ":api_call_failed:0");
    cJSON *m = message(&o, 0);
    assert_string_equal(field(m, "detail"), "AccessDenied: not authorized");
    assert_string_equal(field(m, "event_name"), "UpdateService");
    cJSON_Delete(m);
    outputs_cleanup(&o);
}

static void test_run_task_without_tasks_says_why(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(api_call("RunTask", "{\"cluster\":\"batch\",\"taskDefinition\":\"migrate\"}",
                        "{\"tasks\":[],\"failures\":[{\"arn\":\"\",\"reason\":\"RESOURCE:MEMORY\"}]}", NULL),
               &o);
    assert_int_equal(o.ob.n, 1);
    cJSON *m = message(&o, 0);
    assert_string_equal(field(m, "reason"), "no_tasks_started");
    assert_string_equal(field(m, "detail"), "no task started: RESOURCE:MEMORY");
    assert_string_equal(field(m, "cluster"), "batch");
    assert_true(is_null(m, "task_definition_arn"));
    cJSON_Delete(m);
    outputs_cleanup(&o);
}

static void test_unsupported_events_are_skipped_not_dropped(void **state)
{
    (void)state;
    struct outputs o;
    outputs_of(api_call("CreateCluster", "{\"clusterName\":\"x\"}", "{}", NULL), &o);
    assert_int_equal(o.ob.n, 1);
    cJSON *m = message(&o, 0);
    assert_string_equal(field(m, "reason"), "unsupported_event");
    assert_string_equal(field(m, "detail"), "AWS API Call via CloudTrail: CreateCluster");
    assert_string_equal(field(m, "event_name"), "CreateCluster");
    cJSON_Delete(m);
    outputs_cleanup(&o);

    outputs_of(api_call_version("2.0", "RunTask", "{}", "{\"tasks\":[]}", NULL), &o);
    assert_int_equal(o.ob.n, 1);
    m = message(&o, 0);
    assert_string_equal(field(m, "detail"), "CloudTrail eventVersion is not 1.x");
    cJSON_Delete(m);
    outputs_cleanup(&o);
}

/* ---- bounds and lookups -------------------------------------------------------------------------- */

static void test_at_most_max_containers(void **state)
{
    (void)state;
    struct parser_plan plan;
    memset(&plan, 0, sizeof(plan));
    for (size_t i = 0; i < PARSER_MAX_CONTAINERS; i++)
        assert_true(parser_plan_add_container(&plan, "c", ECR_EU "/web:1", NULL, NULL));
    assert_false(parser_plan_add_container(&plan, "c", ECR_EU "/web:1", NULL, NULL));
    assert_int_equal(plan.ncontainers, PARSER_MAX_CONTAINERS);
    parser_plan_cleanup(&plan);

    /* A task definition naming one more than the bound: the bound's worth of containers and one
     * skip naming the first image left out. */
    struct qfs_buf defs;
    qfs_buf_init(&defs, 1 << 20);
    qfs_buf_puts(&defs, "[");
    for (int i = 0; i <= PARSER_MAX_CONTAINERS; i++)
        qfs_buf_printf(&defs, "%s{\"name\":\"c%d\",\"image\":\"" ECR_EU "/r%d:1\"}", i ? "," : "", i, i);
    qfs_buf_puts(&defs, "]");
    plan_json(register_event(defs.data), &plan);
    qfs_buf_cleanup(&defs);
    assert_int_equal(plan.ncontainers, PARSER_MAX_CONTAINERS);
    assert_int_equal(plan.nskips, 1);
    assert_int_equal(plan.skips[0].reason, QFS_SKIP_INVALID_IMAGE);
    char want[128];
    snprintf(want, sizeof(want), ECR_EU "/r%d:1", PARSER_MAX_CONTAINERS);
    assert_string_equal(plan.skips[0].image, want);
    parser_plan_cleanup(&plan);
}

static void test_record_names_at_most_the_message_bound(void **state)
{
    (void)state;
    struct parser_plan plan;
    plan_json(register_event("[]"), &plan);
    char name[16];
    for (int i = 0; i < QFS_PROTO_MAX_CONTAINERS + 20; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        assert_true(parser_plan_add_container(&plan, name, ECR_EU "/web:1", NULL, TD_WEB));
    }
    struct parser_image *images;
    size_t n;
    parser_group(&plan, &images, &n);
    assert_int_equal(n, 1);
    assert_int_equal(images[0].record.deploy.ncontainers, QFS_PROTO_MAX_CONTAINERS);
    images[0].record.digest_unresolved = qfs_xstrdup("not looked up in this test");
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    assert_int_equal(parser_build(&plan, images, n, &ob), QFS_OK);
    qfs_outbox_cleanup(&ob);
    parser_images_free(images, n);
    parser_plan_cleanup(&plan);
}

static void test_run_task_of_one_definition_needs_one_lookup(void **state)
{
    (void)state;
    struct qfs_buf resp;
    qfs_buf_init(&resp, 1 << 20);
    qfs_buf_puts(&resp, "{\"failures\":[],\"tasks\":[");
    for (int i = 0; i < 10; i++)
        qfs_buf_printf(&resp,
                       "%s{\"taskArn\":\"arn:aws:ecs:eu-west-1:" ACCOUNT ":task/batch/%032x\","
                       "\"taskDefinitionArn\":\"" TD_WEB "\","
                       "\"clusterArn\":\"arn:aws:ecs:eu-west-1:" ACCOUNT ":cluster/batch\","
                       "\"containers\":[{\"name\":\"app\"},{\"name\":\"envoy\"}]}",
                       i ? "," : "", i);
    qfs_buf_puts(&resp, "]}");
    struct parser_plan plan;
    plan_json(api_call("RunTask", "{\"cluster\":\"batch\",\"taskDefinition\":\"web\",\"count\":10}",
                       resp.data, NULL),
              &plan);
    qfs_buf_cleanup(&resp);
    assert_int_equal(plan.nlookups, 1);
    assert_string_equal(plan.lookups[0], TD_WEB);
    assert_int_equal(plan.ncontainers, 0);
    assert_int_equal(plan.nskips, 0);
    assert_string_equal(plan.partition, "aws");
    parser_plan_cleanup(&plan);
}

static void test_services_look_up_the_response_arn(void **state)
{
    (void)state;
    struct parser_plan plan;
    /* forceNewDeployment: no taskDefinition in the request, the full ARN in the response. */
    plan_json(api_call("UpdateService", "{\"cluster\":\"prod\",\"service\":\"web\",\"forceNewDeployment\":true}",
                       "{\"service\":{\"serviceName\":\"web\",\"taskDefinition\":\"" TD_WEB "\","
                       "\"clusterArn\":\"arn:aws:ecs:eu-west-1:" ACCOUNT ":cluster/prod\"}}",
                       NULL),
              &plan);
    assert_int_equal(plan.nlookups, 1);
    assert_string_equal(plan.lookups[0], TD_WEB);
    assert_string_equal(plan.deploy.service, "web");
    assert_int_equal(plan.nskips, 0);
    parser_plan_cleanup(&plan);

    plan_json(api_call("CreateTaskSet", "{\"cluster\":\"prod\",\"service\":\"web\"}",
                       "{\"taskSet\":{\"taskDefinition\":\"arn:aws-cn:ecs:cn-north-1:" ACCOUNT
                       ":task-definition/web:7\"}}",
                       NULL),
              &plan);
    assert_int_equal(plan.nlookups, 1);
    assert_string_equal(plan.partition, "aws-cn");
    parser_plan_cleanup(&plan);
}

static void test_register_remembers_its_arn(void **state)
{
    (void)state;
    struct parser_plan plan;
    plan_json(register_event("[{\"name\":\"app\",\"image\":\"" ECR_EU "/web:1\"}]"), &plan);
    assert_string_equal(plan.remember_arn, TD_WEB);
    assert_int_equal(plan.nlookups, 0);
    parser_plan_cleanup(&plan);
}

/* ---- determinism --------------------------------------------------------------------------------- */

static void test_same_event_gives_the_same_messages(void **state)
{
    (void)state;
    const char *defs = "[{\"name\":\"a\",\"image\":\"" ECR_EU "/web:1\"},"
                       "{\"name\":\"b\",\"image\":\"nginx\"},{\"name\":\"c\",\"image\":\"" ECR_USE1 "/x\"}]";
    struct outputs one, two;
    outputs_of(register_event(defs), &one);
    outputs_of(register_event(defs), &two);
    assert_int_equal(one.ob.n, two.ob.n);
    for (size_t i = 0; i < one.ob.n; i++) {
        assert_string_equal(one.ob.items[i].subject, two.ob.items[i].subject);
        assert_string_equal(one.ob.items[i].msg_id, two.ob.items[i].msg_id);
        assert_int_equal(one.ob.items[i].len, two.ob.items[i].len);
        assert_memory_equal(one.ob.items[i].data, two.ob.items[i].data, one.ob.items[i].len);
    }
    outputs_cleanup(&one);
    outputs_cleanup(&two);
}

/* ---- tag answers shared between deploys ----------------------------------------------------- */

struct answer {
    struct parser_digest_waiter w;
    int calls;
    char digest[80], unresolved[80];
    qfs_status retry;
};

static void on_answer(struct parser_digest_waiter *w, const struct parser_digest_outcome *o)
{
    struct answer *a = (struct answer *)w;
    a->calls++;
    snprintf(a->digest, sizeof(a->digest), "%s", o->digest ? o->digest : "");
    snprintf(a->unresolved, sizeof(a->unresolved), "%s", o->unresolved ? o->unresolved : "");
    a->retry = o->retry;
}

#define DIG_A "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
#define DIG_B "sha256:bbbb000000000000000000000000000000000000000000000000000000000002"
#define KEY "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:stable"

/* A deploy's answer must come from a lookup begun after it: its event time says when at the
 * second, the stream's store time says it had happened by then, whichever is earlier counts. */
static void test_answer_not_before_takes_the_earlier_of_event_and_store_time(void **state)
{
    (void)state;
    struct parser_plan plan;
    memset(&plan, 0, sizeof(plan));
    /* Neither known: nobody else's answer will do. */
    assert_true(parser_answer_not_before(&plan) == INT64_MAX);
    /* 2026-05-01T10:00:00Z is 1777629600000 ms. */
    plan.deploy.event_time = "2026-05-01T10:00:00Z";
    assert_true(parser_answer_not_before(&plan) == 1777629600000 + PARSER_EVENT_TIME_SLACK_MS);
    /* Stored within its own second (a fresh ECS event): the store time is the earlier bound. */
    plan.stored_ms = 1777629600400;
    assert_true(parser_answer_not_before(&plan) == 1777629600400);
    /* Stored minutes later (CloudTrail's delay): the event time stays the bound. */
    plan.stored_ms = 1777629900000;
    assert_true(parser_answer_not_before(&plan) == 1777629600000 + PARSER_EVENT_TIME_SLACK_MS);
    /* An unreadable event time leaves the store time. */
    plan.deploy.event_time = "yesterday";
    assert_true(parser_answer_not_before(&plan) == 1777629900000);
}

/* Deploys stored while a lookup is in flight wait for it to end, then share one new lookup: one
 * call per lookup's duration however many arrive. A failure ahead of them is theirs too. */
static struct parser_digests *turn_memo;
static struct parser_digest_flight *turn_flight;
static int turns;

static void on_turn(struct parser_digest_waiter *w)
{
    turns++;
    /* What the parser does on its turn: join a lookup begun after the deploy, else begin one. */
    if (!parser_digests_join(turn_memo, KEY, 10500, 11000, w))
        turn_flight = parser_digests_begin(turn_memo, KEY, 11000, w);
}

static void test_deploys_stored_during_a_lookup_share_the_next_one(void **state)
{
    (void)state;
    struct parser_digests *m = turn_memo = parser_digests_new(16, 60000);
    struct answer lead = {.w.answered = on_answer}, b = {.w.answered = on_answer, .w.turn = on_turn},
                  c = {.w.answered = on_answer, .w.turn = on_turn};
    struct parser_digest_flight *f = parser_digests_begin(m, KEY, 10000, &lead.w);
    /* Stored at 10.4 s and 10.5 s, after the lookup began: it cannot answer them. */
    assert_false(parser_digests_join(m, KEY, 10400, 10450, &b.w));
    assert_true(parser_digests_wait_turn(m, KEY, &b.w));
    assert_false(parser_digests_join(m, KEY, 10500, 10550, &c.w));
    assert_true(parser_digests_wait_turn(m, KEY, &c.w));
    struct parser_digest_outcome o = {.digest = DIG_A, .reusable = true};
    turn_flight = NULL;
    parser_digests_end(m, f, &o);
    assert_int_equal(lead.calls, 1);
    /* Both had their turn: the first began the next lookup, the second joined it. */
    assert_int_equal(turns, 2);
    assert_non_null(turn_flight);
    assert_int_equal(b.calls + c.calls, 0);
    struct parser_digest_outcome o2 = {.digest = DIG_B, .reusable = true};
    parser_digests_end(m, turn_flight, &o2);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 1);
    assert_string_equal(b.digest, DIG_B);
    assert_string_equal(c.digest, DIG_B);
    struct parser_digest_stats st;
    parser_digests_stats(m, &st);
    assert_int_equal(st.lookups, 2);
    assert_int_equal(st.queued, 2);

    /* A lookup that fails answers those queued behind it with its failure: no lookup of theirs. */
    struct answer lead2 = {.w.answered = on_answer}, d = {.w.answered = on_answer, .w.turn = on_turn};
    f = parser_digests_begin(m, KEY, 20000, &lead2.w);
    assert_true(parser_digests_wait_turn(m, KEY, &d.w));
    struct parser_digest_outcome fail = {.retry = QFS_UNAVAILABLE, .what = "DescribeImages"};
    parser_digests_end(m, f, &fail);
    assert_int_equal(turns, 2);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.retry, QFS_UNAVAILABLE);
    /* Nothing in flight: no turn to wait for. */
    assert_false(parser_digests_wait_turn(m, KEY, &d.w));
    parser_digests_free(m);
}

static void test_lookup_in_flight_answers_every_deploy_it_postdates(void **state)
{
    (void)state;
    struct parser_digests *m = parser_digests_new(16, 60000);
    struct answer lead = {.w.answered = on_answer}, early = {.w.answered = on_answer},
                  late = {.w.answered = on_answer};
    struct parser_digest_flight *f = parser_digests_begin(m, KEY, 10000, &lead.w);
    /* A deploy stamped 8 s (happened before 9 s) joins the lookup begun at 10 s... */
    assert_true(parser_digests_join(m, KEY, 8000 + PARSER_EVENT_TIME_SLACK_MS, 10001, &early.w));
    /* ...one stamped 9.5 s may have happened after it began: it must look again. */
    assert_false(parser_digests_join(m, KEY, 9500 + PARSER_EVENT_TIME_SLACK_MS, 10001, &late.w));
    assert_int_equal(lead.calls + early.calls, 0);
    struct parser_digest_outcome o = {.digest = DIG_A, .reusable = true};
    parser_digests_end(m, f, &o);
    assert_int_equal(lead.calls, 1);
    assert_int_equal(early.calls, 1);
    assert_string_equal(early.digest, DIG_A);
    assert_int_equal(late.calls, 0);

    /* Done and kept: a deploy before it is answered at once, from the kept copy. */
    struct answer again = {.w.answered = on_answer};
    assert_true(parser_digests_join(m, KEY, 5000, 20000, &again.w));
    assert_int_equal(again.calls, 1);
    assert_string_equal(again.digest, DIG_A);
    struct parser_digest_stats st;
    parser_digests_stats(m, &st);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.reused, 2);
    parser_digests_free(m);
}

static void test_newer_lookup_replaces_the_answer(void **state)
{
    (void)state;
    struct parser_digests *m = parser_digests_new(16, 60000);
    struct answer a = {.w.answered = on_answer}, b = {.w.answered = on_answer}, c = {.w.answered = on_answer};
    struct parser_digest_outcome oa = {.digest = DIG_A, .reusable = true};
    parser_digests_end(m, parser_digests_begin(m, KEY, 1000, &a.w), &oa);
    /* A deploy after the first lookup (the tag moved): a new lookup, whose answer then serves all. */
    assert_false(parser_digests_join(m, KEY, 3000, 3500, &b.w));
    struct parser_digest_flight *f = parser_digests_begin(m, KEY, 3500, &b.w);
    struct parser_digest_outcome ob = {.digest = DIG_B, .reusable = true};
    parser_digests_end(m, f, &ob);
    assert_string_equal(b.digest, DIG_B);
    assert_true(parser_digests_join(m, KEY, 0, 4000, &c.w));
    assert_string_equal(c.digest, DIG_B);
    parser_digests_free(m);
}

static void test_failures_are_not_kept_and_old_answers_expire(void **state)
{
    (void)state;
    struct parser_digests *m = parser_digests_new(2, 60000);
    struct answer a = {.w.answered = on_answer}, w = {.w.answered = on_answer}, n = {.w.answered = on_answer};
    struct parser_digest_flight *f = parser_digests_begin(m, KEY, 1000, &a.w);
    assert_true(parser_digests_join(m, KEY, 0, 1001, &w.w));
    /* A throttled lookup: both deploys retry, and the next one looks again. */
    struct parser_digest_outcome thr = {.retry = QFS_UNAVAILABLE, .what = "DescribeImages"};
    parser_digests_end(m, f, &thr);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.retry, QFS_UNAVAILABLE);
    assert_false(parser_digests_join(m, KEY, 0, 1002, &n.w));

    /* "ECR has no image" is an answer, kept like a digest; past its age it is gone. */
    struct parser_digest_outcome none = {.unresolved = "ECR has no image web:stable", .reusable = true};
    parser_digests_end(m, parser_digests_begin(m, KEY, 2000, &n.w), &none);
    struct answer k = {.w.answered = on_answer};
    assert_true(parser_digests_join(m, KEY, 0, 3000, &k.w));
    assert_string_equal(k.unresolved, "ECR has no image web:stable");
    assert_false(parser_digests_join(m, KEY, 0, 2000 + 60001, &k.w));

    /* At most max_entries answers: the oldest goes first. */
    struct answer x = {.w.answered = on_answer};
    const char *keys[] = {"r/a:1", "r/b:1", "r/c:1"};
    for (int i = 0; i < 3; i++)
        parser_digests_end(m, parser_digests_begin(m, keys[i], 5000 + i, &x.w), &none);
    struct parser_digest_stats st;
    parser_digests_stats(m, &st);
    assert_int_equal(st.entries, 2);
    assert_false(parser_digests_join(m, "r/a:1", 0, 5005, &x.w));
    assert_true(parser_digests_join(m, "r/c:1", 0, 5005, &x.w));
    parser_digests_free(m);
}

static void test_lookup_outlives_the_memo(void **state)
{
    (void)state;
    /* The service stops with a lookup in flight: the memo goes first, the lookup ends later. */
    struct parser_digests *m = parser_digests_new(4, 60000);
    struct answer a = {.w.answered = on_answer}, q = {.w.answered = on_answer, .w.turn = on_turn};
    struct parser_digest_flight *f = parser_digests_begin(m, KEY, 1000, &a.w);
    assert_true(parser_digests_wait_turn(m, KEY, &q.w));
    parser_digests_free(m);
    /* Even an answer: the deploy queued behind it has no memo to look again in, so it retries. */
    struct parser_digest_outcome o = {.digest = DIG_A, .reusable = true};
    turns = 0;
    parser_digests_end(NULL, f, &o);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.digest, DIG_A);
    assert_int_equal(turns, 0);
    assert_int_equal(q.calls, 1);
    assert_int_equal(q.retry, QFS_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_image_gives_one_record_naming_every_container),
        cmocka_unit_test(test_answer_not_before_takes_the_earlier_of_event_and_store_time),
        cmocka_unit_test(test_lookup_in_flight_answers_every_deploy_it_postdates),
        cmocka_unit_test(test_deploys_stored_during_a_lookup_share_the_next_one),
        cmocka_unit_test(test_newer_lookup_replaces_the_answer),
        cmocka_unit_test(test_failures_are_not_kept_and_old_answers_expire),
        cmocka_unit_test(test_lookup_outlives_the_memo),
        cmocka_unit_test(test_different_keys_are_different_images),
        cmocka_unit_test(test_tag_omitted_is_latest),
        cmocka_unit_test(test_endpoint_variants_normalise_to_the_standard_host),
        cmocka_unit_test(test_fips_spelling_alone_still_gets_the_standard_host),
        cmocka_unit_test(test_cross_account_image_goes_to_its_registry),
        cmocka_unit_test(test_digest_in_reference_wins_over_image_digest),
        cmocka_unit_test(test_skip_ids_count_per_reason),
        cmocka_unit_test(test_not_ecr_skip_keeps_the_written_digest),
        cmocka_unit_test(test_failed_call_is_one_skip),
        cmocka_unit_test(test_run_task_without_tasks_says_why),
        cmocka_unit_test(test_unsupported_events_are_skipped_not_dropped),
        cmocka_unit_test(test_at_most_max_containers),
        cmocka_unit_test(test_record_names_at_most_the_message_bound),
        cmocka_unit_test(test_run_task_of_one_definition_needs_one_lookup),
        cmocka_unit_test(test_services_look_up_the_response_arn),
        cmocka_unit_test(test_register_remembers_its_arn),
        cmocka_unit_test(test_same_event_gives_the_same_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
