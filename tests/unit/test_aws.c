/* AWS, pure parts: endpoints, the error decoder and mapper, credentials parsing, and the encoders
 * and decoders of every typed client on realistic and hostile bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
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
#include "qfs/log.h"
#include "qfs/util.h"

/* ---- helpers ---- */

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

static char *endpoint(enum qfs_aws_service s, const char *region, struct kv *env)
{
    static char out[512];
    qfs_status st = qfs_aws_endpoint(s, region, table_env, env, out, sizeof(out));
    return st == QFS_OK ? out : NULL;
}

static bool masked(const char *secret)
{
    char line[512], out[600];
    snprintf(line, sizeof(line), "x %s y", secret);
    qfs_log_mask(line, out, sizeof(out));
    return strcmp(out, "x **** y") == 0;
}

/* Builds a string of n copies of c (caller frees). */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- endpoints ---- */

static void test_endpoint_defaults_per_partition(void **state)
{
    struct kv none[] = {{NULL, NULL}};
    assert_string_equal(endpoint(QFS_AWS_SQS, "eu-west-1", none), "https://sqs.eu-west-1.amazonaws.com/");
    assert_string_equal(endpoint(QFS_AWS_SNS, "us-east-1", none), "https://sns.us-east-1.amazonaws.com/");
    assert_string_equal(endpoint(QFS_AWS_ECS, "ap-southeast-2", none), "https://ecs.ap-southeast-2.amazonaws.com/");
    assert_string_equal(endpoint(QFS_AWS_ECR, "eu-central-1", none), "https://api.ecr.eu-central-1.amazonaws.com/");
    assert_string_equal(endpoint(QFS_AWS_STS, "eu-west-1", none), "https://sts.eu-west-1.amazonaws.com/");
    assert_string_equal(endpoint(QFS_AWS_SECRETS_MANAGER, "eu-west-1", none),
                        "https://secretsmanager.eu-west-1.amazonaws.com/");
    assert_string_equal(endpoint(QFS_AWS_DYNAMODB, "eu-west-1", none), "https://dynamodb.eu-west-1.amazonaws.com/");
    /* China: its own DNS suffix and partition; GovCloud keeps amazonaws.com. */
    assert_string_equal(endpoint(QFS_AWS_SQS, "cn-north-1", none), "https://sqs.cn-north-1.amazonaws.com.cn/");
    assert_string_equal(endpoint(QFS_AWS_STS, "cn-northwest-1", none), "https://sts.cn-northwest-1.amazonaws.com.cn/");
    assert_string_equal(endpoint(QFS_AWS_ECR, "cn-north-1", none), "https://api.ecr.cn-north-1.amazonaws.com.cn/");
    assert_string_equal(endpoint(QFS_AWS_ECS, "us-gov-west-1", none), "https://ecs.us-gov-west-1.amazonaws.com/");
    assert_string_equal(qfs_aws_partition("cn-north-1"), "aws-cn");
    assert_string_equal(qfs_aws_partition("us-gov-east-1"), "aws-us-gov");
    assert_string_equal(qfs_aws_partition("eu-west-1"), "aws");
    assert_string_equal(qfs_aws_signing_name(QFS_AWS_SECRETS_MANAGER), "secretsmanager");
    assert_string_equal(qfs_aws_signing_name(QFS_AWS_ECR), "ecr");
}

static void test_endpoint_from_environment(void **state)
{
    const struct {
        enum qfs_aws_service svc;
        const char *var;
    } vars[] = {
        {QFS_AWS_SQS, "AWS_ENDPOINT_URL_SQS"},
        {QFS_AWS_SNS, "AWS_ENDPOINT_URL_SNS"},
        {QFS_AWS_ECS, "AWS_ENDPOINT_URL_ECS"},
        {QFS_AWS_ECR, "AWS_ENDPOINT_URL_ECR"},
        {QFS_AWS_STS, "AWS_ENDPOINT_URL_STS"},
        {QFS_AWS_SECRETS_MANAGER, "AWS_ENDPOINT_URL_SECRETS_MANAGER"},
        {QFS_AWS_DYNAMODB, "AWS_ENDPOINT_URL_DYNAMODB"},
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        /* The service's own variable wins over the general one, for that service only. */
        struct kv env[] = {{vars[i].var, "http://127.0.0.1:4566"},
                           {"AWS_ENDPOINT_URL", "http://10.0.0.1:9000/"},
                           {NULL, NULL}};
        char expect[64];
        snprintf(expect, sizeof(expect), "AWS_ENDPOINT_URL_%s", qfs_aws_env_suffix(vars[i].svc));
        assert_string_equal(expect, vars[i].var);
        assert_string_equal(endpoint(vars[i].svc, "eu-west-1", env), "http://127.0.0.1:4566/");
        enum qfs_aws_service other = vars[(i + 1) % 7].svc;
        assert_string_equal(endpoint(other, "eu-west-1", env), "http://10.0.0.1:9000/");
    }
    struct kv general[] = {{"AWS_ENDPOINT_URL", "https://vpce-1.sqs.example.internal///"}, {NULL, NULL}};
    assert_string_equal(endpoint(QFS_AWS_SQS, "cn-north-1", general), "https://vpce-1.sqs.example.internal/");
    struct kv ignore[] = {{"AWS_ENDPOINT_URL", "http://127.0.0.1:1"},
                          {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"},
                          {NULL, NULL}};
    assert_string_equal(endpoint(QFS_AWS_SQS, "eu-west-1", ignore), "https://sqs.eu-west-1.amazonaws.com/");
    struct kv empty[] = {{"AWS_ENDPOINT_URL_SQS", ""}, {NULL, NULL}};
    assert_string_equal(endpoint(QFS_AWS_SQS, "eu-west-1", empty), "https://sqs.eu-west-1.amazonaws.com/");
}

static void test_endpoint_rejects_bad_input(void **state)
{
    char out[512];
    struct kv none[] = {{NULL, NULL}};
    const char *bad_regions[] = {"", "EU-WEST-1", "eu west 1", "eu-west-1/", "../x", "-eu",
                                 "eu-west-1-", "abcdefghijklmnopqrstuvwxyz0123456789", NULL};
    for (int i = 0; bad_regions[i]; i++)
        assert_int_equal(qfs_aws_endpoint(QFS_AWS_SQS, bad_regions[i], table_env, none, out, sizeof(out)),
                         QFS_INVALID_ARG);
    assert_int_equal(qfs_aws_endpoint(QFS_AWS_SQS, NULL, table_env, none, out, sizeof(out)), QFS_INVALID_ARG);
    const char *bad_urls[] = {"ftp://x", "127.0.0.1:4566", "http://", "http://h/?a=b", "http://h/ x", NULL};
    for (int i = 0; bad_urls[i]; i++) {
        struct kv env[] = {{"AWS_ENDPOINT_URL_SQS", bad_urls[i]}, {NULL, NULL}};
        assert_int_equal(qfs_aws_endpoint(QFS_AWS_SQS, "eu-west-1", table_env, env, out, sizeof(out)),
                         QFS_INVALID_ARG);
    }
    assert_int_equal(qfs_aws_endpoint(QFS_AWS_SQS, "eu-west-1", table_env, none, out, 10), QFS_TOO_BIG);
    assert_int_equal(qfs_aws_endpoint(QFS_AWS_SERVICE_COUNT, "eu-west-1", table_env, none, out, sizeof(out)),
                     QFS_INVALID_ARG);
}

static void test_arn_region(void **state)
{
    char r[40];
    assert_true(qfs_aws_arn_region("arn:aws:sns:eu-west-1:111122223333:deploys", r, sizeof(r)));
    assert_string_equal(r, "eu-west-1");
    assert_true(qfs_aws_arn_region("arn:aws-cn:ecs:cn-north-1:111122223333:task-definition/web:1", r, sizeof(r)));
    assert_string_equal(r, "cn-north-1");
    assert_false(qfs_aws_arn_region("arn:aws:iam::111122223333:role/x", r, sizeof(r)));
    assert_false(qfs_aws_arn_region("web:42", r, sizeof(r)));
    assert_false(qfs_aws_arn_region("arn:aws:sns:EU:1:x", r, sizeof(r)));
}

/* ---- errors ---- */

static void test_error_mapping_table(void **state)
{
    const struct {
        long http;
        const char *code;
        const char *message;
        qfs_status st;
        bool retry;
    } cases[] = {
        {400, "ThrottlingException", "Rate exceeded", QFS_UNAVAILABLE, true},
        {400, "Throttling", "Rate exceeded", QFS_UNAVAILABLE, true},
        {503, "RequestLimitExceeded", "", QFS_UNAVAILABLE, true},
        {400, "ProvisionedThroughputExceededException", "", QFS_UNAVAILABLE, true},
        {429, "TooManyRequestsException", "", QFS_UNAVAILABLE, true},
        {500, "InternalFailure", "", QFS_UNAVAILABLE, true},
        {503, "ServiceUnavailable", "", QFS_UNAVAILABLE, true},
        {500, "ServerException", "", QFS_UNAVAILABLE, true},
        {502, "", "", QFS_UNAVAILABLE, true},
        {500, "SomethingNew", "", QFS_UNAVAILABLE, true},
        {400, "AccessDeniedException", "", QFS_DENIED, false},
        {403, "AccessDenied", "", QFS_DENIED, false},
        {400, "UnrecognizedClientException", "", QFS_DENIED, false},
        {400, "InvalidSignatureException", "", QFS_DENIED, false},
        {403, "SignatureDoesNotMatch", "", QFS_DENIED, false},
        {403, "InvalidClientTokenId", "", QFS_DENIED, false},
        {400, "ExpiredToken", "", QFS_DENIED, false},
        {400, "ExpiredTokenException", "", QFS_DENIED, false},
        {400, "ResourceNotFoundException", "", QFS_NOT_FOUND, false},
        {400, "RepositoryNotFoundException", "", QFS_NOT_FOUND, false},
        {400, "ImageNotFoundException", "", QFS_NOT_FOUND, false},
        {400, "NotFound", "", QFS_NOT_FOUND, false},
        {400, "NonExistentQueue", "", QFS_NOT_FOUND, false},
        {400, "QueueDoesNotExist", "", QFS_NOT_FOUND, false},
        {400, "ClientException", "Unable to describe task definition.", QFS_NOT_FOUND, false},
        {400, "ClientException", "User is not authorized to perform ecs:X", QFS_DENIED, false},
        {400, "ClientException", "Something else", QFS_PROTOCOL, false},
        {400, "ValidationException", "", QFS_PROTOCOL, false},
        {400, "ValidationError", "", QFS_PROTOCOL, false},
        {400, "InvalidParameter", "", QFS_PROTOCOL, false},
        {400, "InvalidParameterValue", "", QFS_PROTOCOL, false},
        {400, "InvalidParameterException", "", QFS_PROTOCOL, false},
        {400, "ConditionalCheckFailedException", "The conditional request failed", QFS_PROTOCOL, false},
        {400, "", "", QFS_PROTOCOL, false},
        {403, "", "", QFS_DENIED, false},
        {404, "", "", QFS_NOT_FOUND, false},
        {400, "SomethingNew", "", QFS_PROTOCOL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool retry = !cases[i].retry;
        qfs_status st = qfs_aws_error_status(cases[i].http, cases[i].code, cases[i].message, &retry);
        if (st != cases[i].st || retry != cases[i].retry)
            fail_msg("%s (%ld): got %s retry=%d", cases[i].code, cases[i].http, qfs_status_str(st), retry);
    }
    assert_true(qfs_aws_error_is_expired_token("ExpiredToken"));
    assert_true(qfs_aws_error_is_expired_token("ExpiredTokenException"));
    assert_false(qfs_aws_error_is_expired_token("AccessDenied"));
}

static void decode(const char *body, const char *qe, const char *et, struct qfs_aws_error *e)
{
    qfs_aws_decode_error(body, strlen(body), qe, et, e);
}

static void test_error_decoding(void **state)
{
    struct qfs_aws_error e;
    decode("{\"__type\":\"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException\","
           "\"message\":\"The conditional request failed\"}", NULL, NULL, &e);
    assert_string_equal(e.code, "ConditionalCheckFailedException");
    assert_string_equal(e.message, "The conditional request failed");
    decode("{\"__type\":\"ClientException\",\"Message\":\"Unable to describe task definition.\"}", NULL, NULL, &e);
    assert_string_equal(e.code, "ClientException");
    assert_string_equal(e.message, "Unable to describe task definition.");
    /* SQS JSON: the body code first, the legacy header code when the body has none. */
    decode("{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"The specified queue does not exist.\"}",
           "AWS.SimpleQueueService.NonExistentQueue;Sender", NULL, &e);
    assert_string_equal(e.code, "QueueDoesNotExist");
    decode("", "AWS.SimpleQueueService.NonExistentQueue;Sender", NULL, &e);
    assert_string_equal(e.code, "NonExistentQueue");
    decode("{}", NULL, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/", &e);
    assert_string_equal(e.code, "ThrottlingException");
    /* Query protocol XML. */
    decode("<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>"
           "<Code>InvalidParameter</Code><Message>Invalid parameter: TopicArn &amp; more</Message></Error>"
           "<RequestId>r-1</RequestId></ErrorResponse>", NULL, NULL, &e);
    assert_string_equal(e.code, "InvalidParameter");
    assert_string_equal(e.message, "Invalid parameter: TopicArn & more");
    decode("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>m</Message></Error></Errors></Response>",
           NULL, NULL, &e);
    assert_string_equal(e.code, "RequestLimitExceeded");
    /* Hostile bodies give no code, never a crash, and stay bounded. */
    decode("{\"__type\":42,\"message\":[1]}", NULL, NULL, &e);
    assert_string_equal(e.code, "");
    decode("<Error><Code>unterminated", NULL, NULL, &e);
    assert_string_equal(e.code, "");
    decode("not json at all", NULL, NULL, &e);
    assert_string_equal(e.code, "");
    char *huge = repeat('A', 100000);
    char *body = malloc(200100);
    snprintf(body, 200100, "{\"__type\":\"x#%s\",\"message\":\"%s\"}", huge, huge);
    decode(body, NULL, NULL, &e);
    assert_int_equal(strlen(e.code), sizeof(e.code) - 1);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
    free(body);
    free(huge);
}

static void test_xml_text(void **state)
{
    const char *x = "<a><MessageId>id&lt;1&gt;&#65;&#x42;&amp;&bogus;</MessageId><Empty></Empty></a>";
    char *out;
    assert_int_equal(qfs_aws_xml_text(x, strlen(x), "MessageId", 100, &out), QFS_OK);
    assert_string_equal(out, "id<1>AB&&bogus;");
    free(out);
    assert_int_equal(qfs_aws_xml_text(x, strlen(x), "Empty", 100, &out), QFS_OK);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(qfs_aws_xml_text(x, strlen(x), "Missing", 100, &out), QFS_NOT_FOUND);
    assert_int_equal(qfs_aws_xml_text(x, strlen(x), "MessageId", 3, &out), QFS_TOO_BIG);
    assert_int_equal(qfs_aws_xml_text(x, strlen(x), "a", 1000, &out), QFS_PROTOCOL);
    assert_null(out);
    const char *nul = "<T>a&#0;b</T>";
    assert_int_equal(qfs_aws_xml_text(nul, strlen(nul), "T", 100, &out), QFS_OK);
    assert_string_equal(out, "a&#0;b"); /* &#0; is not a character: kept as text */
    free(out);
}

/* ---- credentials ---- */

static void test_container_credentials_json(void **state)
{
    qfs_log_clear_secrets();
    const char *good = "{\"AccessKeyId\":\"ASIAEXAMPLE\",\"Expiration\":\"2026-05-01T16:00:00Z\","
                       "\"RoleArn\":\"arn:aws:iam::111122223333:role/task\","
                       "\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\","
                       "\"Token\":\"IQoJb3JpZ2luX2VjEXAMPLETOKEN==\"}";
    struct qfs_aws_credentials c;
    assert_int_equal(qfs_aws_parse_container_credentials(good, strlen(good), &c), QFS_OK);
    assert_string_equal(c.access_key_id, "ASIAEXAMPLE");
    assert_string_equal(c.session_token, "IQoJb3JpZ2luX2VjEXAMPLETOKEN==");
    assert_int_equal(c.expires_ms, 1777651200000LL);
    /* The secrets are masked in logs from the moment they are read. */
    assert_true(masked("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));
    assert_true(masked("IQoJb3JpZ2luX2VjEXAMPLETOKEN=="));
    qfs_aws_credentials_cleanup(&c);

    const char *no_token = "{\"AccessKeyId\":\"AKIA1\",\"SecretAccessKey\":\"s3cr3t-value\"}";
    assert_int_equal(qfs_aws_parse_container_credentials(no_token, strlen(no_token), &c), QFS_OK);
    assert_null(c.session_token);
    assert_int_equal(c.expires_ms, 0);
    qfs_aws_credentials_cleanup(&c);

    /* An Expiration at the epoch is expired, never "no expiry". */
    const char *epoch = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"1970-01-01T00:00:00Z\"}";
    assert_int_equal(qfs_aws_parse_container_credentials(epoch, strlen(epoch), &c), QFS_OK);
    assert_true(c.expires_ms > 0 && c.expires_ms < qfs_now_ms());
    qfs_aws_credentials_cleanup(&c);

    const char *bad[] = {
        "{\"AccessKeyId\":\"A\",\"Token\":\"t\"}",                                     /* no secret */
        "{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\"}",                               /* wrong type */
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"tomorrow\"}", /* bad time */
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":[\"t\"]}",
        "{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\"}",
        "{\"code\":\"InvalidToken\",\"message\":\"bad token\"}",
        "[]", "", "{",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(qfs_aws_parse_container_credentials(bad[i], strlen(bad[i]), &c), QFS_PROTOCOL);
        assert_null(c.access_key_id);
    }
    qfs_log_clear_secrets();
}

static void test_time_parse(void **state)
{
    int64_t ms;
    assert_true(qfs_aws_parse_time("2026-05-01T10:00:00Z", &ms));
    assert_int_equal(ms, 1777629600000LL);
    assert_true(qfs_aws_parse_time("2026-05-01T10:00:00.123Z", &ms));
    assert_int_equal(ms, 1777629600123LL);
    assert_true(qfs_aws_parse_time("2026-05-01T10:00:00+00:00", &ms));
    assert_false(qfs_aws_parse_time("2026-05-01 10:00:00Z", &ms));
    assert_false(qfs_aws_parse_time("2026-13-01T10:00:00Z", &ms));
    assert_false(qfs_aws_parse_time("2026-05-01T10:00:00+02:00", &ms));
    assert_false(qfs_aws_parse_time("2026-05-01T10:00:00Zjunk", &ms));
    assert_false(qfs_aws_parse_time("", &ms));
}

static void test_full_uri_rules(void **state)
{
    const char *ok[] = {"http://127.0.0.1:8080/v2/credentials/x", "http://127.9.8.7/c",
                        "http://localhost:1/c", "http://[::1]:9/c", "http://169.254.170.2/v2/c",
                        "http://169.254.170.23/v1/credentials", "https://creds.example.com/c", NULL};
    const char *no[] = {"http://example.com/c", "http://169.254.169.254/latest/meta-data",
                        "http://127.0.0.1.evil.example/c", "http://10.0.0.1/c", "ftp://127.0.0.1/c",
                        "file:///etc/passwd", "not a url", "", NULL};
    for (int i = 0; ok[i]; i++)
        if (!qfs_aws_full_uri_is_allowed(ok[i])) fail_msg("refused %s", ok[i]);
    for (int i = 0; no[i]; i++)
        if (qfs_aws_full_uri_is_allowed(no[i])) fail_msg("allowed %s", no[i]);
}

static void test_credential_sources(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct qfs_http *http;
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);
    struct qfs_aws_creds *p;

    /* Environment keys come first, even with a container endpoint configured. */
    struct kv env_keys[] = {{"AWS_ACCESS_KEY_ID", "AKIAENVKEY"},
                            {"AWS_SECRET_ACCESS_KEY", "env-secret-canary-1"},
                            {"AWS_SESSION_TOKEN", "env-token-canary-1"},
                            {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"},
                            {NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, env_keys, 0, &p), QFS_OK);
    const struct qfs_aws_credentials *c = qfs_aws_creds_current(p);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "AKIAENVKEY");
    assert_string_equal(c->session_token, "env-token-canary-1");
    assert_true(masked("env-secret-canary-1"));
    assert_true(masked("env-token-canary-1"));
    assert_false(qfs_aws_creds_invalidate(p)); /* nothing to refresh them from */
    qfs_aws_creds_free(p);

    /* The container endpoint: nothing until fetched. */
    struct kv rel[] = {{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"}, {NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, rel, 0, &p), QFS_OK);
    assert_null(qfs_aws_creds_current(p));
    qfs_aws_creds_free(p);

    struct kv half[] = {{"AWS_ACCESS_KEY_ID", "AKIAENVKEY"}, {NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, half, 0, &p), QFS_INVALID_ARG);
    struct kv nothing[] = {{NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, nothing, 0, &p), QFS_NOT_FOUND);
    struct kv far[] = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/creds"}, {NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, far, 0, &p), QFS_INVALID_ARG);
    struct kv relbad[] = {{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@evil.example/x"}, {NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, relbad, 0, &p), QFS_INVALID_ARG);
    struct kv full[] = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds"},
                        {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-token-canary-1"},
                        {NULL, NULL}};
    assert_int_equal(qfs_aws_creds_new(&loop, http, table_env, full, 0, &p), QFS_OK);
    assert_true(masked("auth-token-canary-1"));
    qfs_aws_creds_free(p);

    /* The client checks its region and endpoint settings at start. */
    struct qfs_aws *aws;
    struct kv no_region[] = {{"AWS_ACCESS_KEY_ID", "AKIA1"}, {"AWS_SECRET_ACCESS_KEY", "secret-1"}, {NULL, NULL}};
    struct qfs_aws_options o = {.env = table_env, .env_arg = no_region};
    assert_int_equal(qfs_aws_new(&loop, http, &o, &aws), QFS_INVALID_ARG);
    struct kv bad_ep[] = {{"AWS_REGION", "eu-west-1"}, {"AWS_ACCESS_KEY_ID", "AKIA1"},
                          {"AWS_SECRET_ACCESS_KEY", "secret-1"}, {"AWS_ENDPOINT_URL_SNS", "sns.local:1"},
                          {NULL, NULL}};
    o.env_arg = bad_ep;
    assert_int_equal(qfs_aws_new(&loop, http, &o, &aws), QFS_INVALID_ARG);
    struct kv good[] = {{"AWS_DEFAULT_REGION", "cn-north-1"}, {"AWS_ACCESS_KEY_ID", "AKIA1"},
                        {"AWS_SECRET_ACCESS_KEY", "secret-1"}, {NULL, NULL}};
    o.env_arg = good;
    assert_int_equal(qfs_aws_new(&loop, http, &o, &aws), QFS_OK);
    assert_string_equal(qfs_aws_region(aws), "cn-north-1");
    qfs_aws_free(aws);

    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    qfs_log_clear_secrets();
}

/* ---- SQS ---- */

static cJSON *encoded(qfs_status (*fn)(struct qfs_buf *, const void *), const void *arg)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 1 << 20);
    assert_int_equal(fn(&b, arg), QFS_OK);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    qfs_buf_cleanup(&b);
    return j;
}

static qfs_status enc_receive(struct qfs_buf *b, const void *p)
{
    return qfs_sqs_receive_encode(p, b);
}

static void test_sqs_receive_encode(void **state)
{
    const char *attrs[] = {"ApproximateReceiveCount", "SentTimestamp", NULL};
    struct qfs_sqs_receive_params p = {
        .queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/deploy-events",
        .max_messages = 10, .wait_seconds = 20, .visibility_timeout = 120, .system_attributes = attrs};
    cJSON *j = encoded(enc_receive, &p);
    assert_string_equal(cJSON_GetObjectItem(j, "QueueUrl")->valuestring, p.queue_url);
    assert_int_equal(cJSON_GetObjectItem(j, "MaxNumberOfMessages")->valueint, 10);
    assert_int_equal(cJSON_GetObjectItem(j, "WaitTimeSeconds")->valueint, 20);
    assert_int_equal(cJSON_GetObjectItem(j, "VisibilityTimeout")->valueint, 120);
    cJSON *names = cJSON_GetObjectItem(j, "MessageSystemAttributeNames");
    assert_int_equal(cJSON_GetArraySize(names), 2);
    assert_string_equal(cJSON_GetArrayItem(names, 1)->valuestring, "SentTimestamp");
    assert_null(cJSON_GetObjectItem(j, "AttributeNames"));
    cJSON_Delete(j);
    p.visibility_timeout = -1;
    p.system_attributes = NULL;
    j = encoded(enc_receive, &p);
    assert_null(cJSON_GetObjectItem(j, "VisibilityTimeout"));
    cJSON_Delete(j);

    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    struct qfs_sqs_receive_params bad = p;
    bad.max_messages = 11;
    assert_int_equal(qfs_sqs_receive_encode(&bad, &b), QFS_INVALID_ARG);
    bad = p;
    bad.max_messages = 0;
    assert_int_equal(qfs_sqs_receive_encode(&bad, &b), QFS_INVALID_ARG);
    bad = p;
    bad.wait_seconds = 21;
    assert_int_equal(qfs_sqs_receive_encode(&bad, &b), QFS_INVALID_ARG);
    bad = p;
    bad.visibility_timeout = 43201;
    assert_int_equal(qfs_sqs_receive_encode(&bad, &b), QFS_INVALID_ARG);
    bad = p;
    bad.queue_url = "";
    assert_int_equal(qfs_sqs_receive_encode(&bad, &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);
}

static qfs_status recv_decode(const char *body, struct qfs_sqs_messages *m)
{
    return qfs_sqs_receive_decode(body, strlen(body), m);
}

static void test_sqs_receive_decode(void **state)
{
    struct qfs_sqs_messages m;
    const char *body =
        "{\"Messages\":[{\"MessageId\":\"5fea7756-0ea4-451a-a703-a558b933e274\","
        "\"ReceiptHandle\":\"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a\",\"MD5OfBody\":\"fafb00f5732ab283681e124bf8747ed1\","
        "\"Body\":\"{\\\"version\\\":\\\"0\\\",\\\"detail-type\\\":\\\"AWS API Call via CloudTrail\\\"}\","
        "\"Attributes\":{\"ApproximateReceiveCount\":\"3\",\"SentTimestamp\":\"1777629600123\"}},"
        "{\"MessageId\":\"m2\",\"ReceiptHandle\":\"r2\",\"Body\":\"caf\\u00e9\"}]}";
    assert_int_equal(recv_decode(body, &m), QFS_OK);
    assert_int_equal(m.count, 2);
    assert_string_equal(m.items[0].message_id, "5fea7756-0ea4-451a-a703-a558b933e274");
    assert_string_equal(m.items[0].receipt_handle, "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a");
    assert_string_equal(m.items[0].body, "{\"version\":\"0\",\"detail-type\":\"AWS API Call via CloudTrail\"}");
    assert_int_equal(m.items[0].receive_count, 3);
    assert_int_equal(m.items[0].sent_timestamp_ms, 1777629600123LL);
    assert_string_equal(m.items[1].body, "caf\xc3\xa9");
    assert_int_equal(m.items[1].receive_count, 0);
    assert_string_equal(m.items[1].md5_of_body, "");
    qfs_sqs_messages_cleanup(&m);

    const char *empty[] = {"{}", "{\"Messages\":[]}", "{\"Messages\":null}"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(recv_decode(empty[i], &m), QFS_OK);
        assert_int_equal(m.count, 0);
        qfs_sqs_messages_cleanup(&m);
    }

    const char *hostile[] = {
        "", "[]", "{\"Messages\":{}}", "{\"Messages\":\"x\"}", "{\"Messages\":[1]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"Body\":\"b\"}]}",                         /* no handle */
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":7}]}",       /* body type */
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\",\"Attributes\":[]}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
        "\"Attributes\":{\"ApproximateReceiveCount\":3}}]}",                              /* number, not string */
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
        "\"Attributes\":{\"SentTimestamp\":\"-1\"}}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"},",  /* cut */
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        if (recv_decode(hostile[i], &m) != QFS_PROTOCOL) fail_msg("accepted %s", hostile[i]);
        qfs_sqs_messages_cleanup(&m);
    }

    /* More messages than SQS ever returns. */
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"Messages\":[");
    for (int i = 0; i < 5000; i++)
        qfs_buf_printf(&b, "%s{\"MessageId\":\"m%d\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}", i ? "," : "", i);
    qfs_buf_puts(&b, "]}");
    assert_int_equal(recv_decode(b.data, &m), QFS_PROTOCOL);
    assert_int_equal(m.count, 0);
    qfs_sqs_messages_cleanup(&m);
    qfs_buf_reset(&b);

    /* A body over 1 MiB. */
    char *big = repeat('x', QFS_SQS_MAX_BODY + 1);
    qfs_buf_printf(&b, "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"%s\"}]}", big);
    assert_int_equal(recv_decode(b.data, &m), QFS_TOO_BIG);
    qfs_sqs_messages_cleanup(&m);
    free(big);
    qfs_buf_cleanup(&b);
}

static void test_sqs_delete_batch(void **state)
{
    struct qfs_sqs_delete_entry e[11];
    char ids[11][8];
    for (int i = 0; i < 11; i++) {
        snprintf(ids[i], sizeof(ids[i]), "m%d", i);
        e[i].id = ids[i];
        e[i].receipt_handle = "AQEB+/=handle";
    }
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    const char *q = "https://sqs.eu-west-1.amazonaws.com/111122223333/deploy-events";
    assert_int_equal(qfs_sqs_delete_batch_encode(q, e, 2, &b), QFS_OK);
    cJSON *j = cJSON_Parse(b.data);
    cJSON *entries = cJSON_GetObjectItem(j, "Entries");
    assert_int_equal(cJSON_GetArraySize(entries), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(entries, 1), "Id")->valuestring, "m1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(entries, 1), "ReceiptHandle")->valuestring,
                        "AQEB+/=handle");
    cJSON_Delete(j);
    qfs_buf_reset(&b);
    assert_int_equal(qfs_sqs_delete_batch_encode(q, e, 11, &b), QFS_INVALID_ARG);
    assert_int_equal(qfs_sqs_delete_batch_encode(q, e, 0, &b), QFS_INVALID_ARG);
    e[1].id = "m0";
    assert_int_equal(qfs_sqs_delete_batch_encode(q, e, 2, &b), QFS_INVALID_ARG); /* duplicate id */
    e[1].id = "bad id";
    assert_int_equal(qfs_sqs_delete_batch_encode(q, e, 2, &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);

    struct qfs_sqs_batch_result r;
    const char *resp = "{\"Successful\":[{\"Id\":\"m0\"}],\"Failed\":[{\"Id\":\"m1\",\"SenderFault\":true,"
                       "\"Code\":\"ReceiptHandleIsInvalid\",\"Message\":\"The receipt handle is invalid\"}]}";
    assert_int_equal(qfs_sqs_batch_decode(resp, strlen(resp), &r), QFS_OK);
    assert_int_equal(r.nsuccessful, 1);
    assert_string_equal(r.successful[0], "m0");
    assert_int_equal(r.nfailed, 1);
    assert_string_equal(r.failed[0].id, "m1");
    assert_string_equal(r.failed[0].code, "ReceiptHandleIsInvalid");
    assert_true(r.failed[0].sender_fault);
    qfs_sqs_batch_result_cleanup(&r);
    assert_int_equal(qfs_sqs_batch_decode("{}", 2, &r), QFS_OK);
    assert_int_equal(r.nsuccessful + r.nfailed, 0);
    qfs_sqs_batch_result_cleanup(&r);
    const char *hostile[] = {
        "{\"Failed\":{}}", "{\"Successful\":[{\"Id\":1}]}", "{\"Failed\":[{\"Id\":\"m1\"}]}",
        "{\"Failed\":[{\"Id\":\"m1\",\"Code\":\"X\",\"SenderFault\":\"yes\"}]}", "{\"Successful\":[\"m0\"]}",
        "{\"Successful\":[{\"Id\":\"1\"},{\"Id\":\"2\"},{\"Id\":\"3\"},{\"Id\":\"4\"},{\"Id\":\"5\"},{\"Id\":\"6\"},"
        "{\"Id\":\"7\"},{\"Id\":\"8\"},{\"Id\":\"9\"},{\"Id\":\"10\"},{\"Id\":\"11\"}]}",
        "nope",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        if (qfs_sqs_batch_decode(hostile[i], strlen(hostile[i]), &r) != QFS_PROTOCOL)
            fail_msg("accepted %s", hostile[i]);
        qfs_sqs_batch_result_cleanup(&r);
    }
}

static void test_sqs_send_and_visibility(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    const char *q = "https://sqs.eu-west-1.amazonaws.com/111122223333/deploy-events";
    const char *body = "{\"a\":\"\xc3\xa9\\n\"}\t";
    assert_int_equal(qfs_sqs_send_encode(q, body, strlen(body), 5, &b), QFS_OK);
    cJSON *j = cJSON_Parse(b.data);
    assert_string_equal(cJSON_GetObjectItem(j, "MessageBody")->valuestring, body);
    assert_int_equal(cJSON_GetObjectItem(j, "DelaySeconds")->valueint, 5);
    cJSON_Delete(j);
    qfs_buf_reset(&b);
    assert_int_equal(qfs_sqs_send_encode(q, "\xff\xfe", 2, 0, &b), QFS_INVALID_ARG);
    assert_int_equal(qfs_sqs_send_encode(q, "", 0, 0, &b), QFS_INVALID_ARG);
    assert_int_equal(qfs_sqs_send_encode(q, "x", 1, 901, &b), QFS_INVALID_ARG);
    char *big = repeat('x', QFS_SQS_MAX_BODY + 1);
    assert_int_equal(qfs_sqs_send_encode(q, big, strlen(big), 0, &b), QFS_TOO_BIG);
    free(big);

    char *id;
    const char *resp = "{\"MessageId\":\"219f8380-5770-4cc2-8c3e-5c715e145f5e\",\"MD5OfMessageBody\":\"x\"}";
    assert_int_equal(qfs_sqs_send_decode(resp, strlen(resp), &id), QFS_OK);
    assert_string_equal(id, "219f8380-5770-4cc2-8c3e-5c715e145f5e");
    free(id);
    assert_int_equal(qfs_sqs_send_decode("{}", 2, &id), QFS_PROTOCOL);
    assert_null(id);
    assert_int_equal(qfs_sqs_send_decode("{\"MessageId\":\"\"}", 16, &id), QFS_PROTOCOL);

    qfs_buf_reset(&b);
    assert_int_equal(qfs_sqs_change_visibility_encode(q, "AQEB", 0, &b), QFS_OK);
    j = cJSON_Parse(b.data);
    assert_string_equal(cJSON_GetObjectItem(j, "ReceiptHandle")->valuestring, "AQEB");
    assert_int_equal(cJSON_GetObjectItem(j, "VisibilityTimeout")->valueint, 0);
    cJSON_Delete(j);
    assert_int_equal(qfs_sqs_change_visibility_encode(q, "AQEB", 43201, &b), QFS_INVALID_ARG);
    assert_int_equal(qfs_sqs_change_visibility_encode(q, "", 10, &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);
}

/* ---- SNS ---- */

static char *escaped(const char *s, size_t n)
{
    static char out[256];
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    assert_int_equal(qfs_aws_form_escape(s, n, &b), QFS_OK);
    snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
    qfs_buf_cleanup(&b);
    return out;
}

static void test_sns_form_encoding(void **state)
{
    assert_string_equal(escaped("&=+ %/", 6), "%26%3D%2B%20%25%2F");
    assert_string_equal(escaped("-._~AZaz09", 10), "-._~AZaz09");
    assert_string_equal(escaped("caf\xc3\xa9 \xe2\x9c\x93", 9), "caf%C3%A9%20%E2%9C%93");
    assert_string_equal(escaped("a\nb\"c'd:e", 9), "a%0Ab%22c%27d%3Ae");
    assert_string_equal(escaped("", 0), "");
}

static void test_sns_publish_encode(void **state)
{
    struct qfs_sns_attribute attrs[] = {{"severity", NULL, "5"}, {"count", "Number", "3"}};
    struct qfs_sns_publish p = {
        .topic_arn = "arn:aws:sns:eu-west-1:111122223333:deploys",
        .subject = "Deploy web:42\r\nBcc: x \xc3\xa9 done",
        .message = "Image 1 & 2 = 100% caf\xc3\xa9/+",
        .attributes = attrs,
        .nattributes = 2,
    };
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    assert_int_equal(qfs_sns_publish_encode(&p, &b), QFS_OK);
    assert_string_equal(
        b.data,
        "Action=Publish&Message=Image%201%20%26%202%20%3D%20100%25%20caf%C3%A9%2F%2B"
        "&MessageAttributes.entry.1.Name=severity&MessageAttributes.entry.1.Value.DataType=String"
        "&MessageAttributes.entry.1.Value.StringValue=5"
        "&MessageAttributes.entry.2.Name=count&MessageAttributes.entry.2.Value.DataType=Number"
        "&MessageAttributes.entry.2.Value.StringValue=3"
        "&Subject=Deploy%20web%3A42%20%20Bcc%3A%20x%20%3F%20done"
        "&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A111122223333%3Adeploys&Version=2010-03-31");
    qfs_buf_reset(&b);

    /* The subject is cut to 99 characters. */
    char *long_subject = repeat('s', 300);
    struct qfs_sns_publish q = {.topic_arn = p.topic_arn, .subject = long_subject, .message = "m"};
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_OK);
    char expect[200];
    snprintf(expect, sizeof(expect), "&Subject=%.*s&", 99, long_subject);
    assert_non_null(strstr(b.data, expect));
    free(long_subject);
    q.subject = NULL;
    qfs_buf_reset(&b);

    /* A leading blank is dropped: SNS refuses it. */
    q.subject = "  \r\nqfs: 2C web:1";
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_OK);
    assert_non_null(strstr(b.data, "&Subject=qfs%3A%202C%20web%3A1&"));
    q.subject = NULL;
    qfs_buf_reset(&b);

    char *big = repeat('m', QFS_SNS_MAX_MESSAGE + 1);
    q.message = big;
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_TOO_BIG);
    big[QFS_SNS_MAX_MESSAGE] = '\0';
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_OK);
    qfs_buf_reset(&b);
    /* The attributes count in the 256 KiB too. */
    struct qfs_sns_attribute attr = {.name = "severity", .value = "high"};
    q.attributes = &attr;
    q.nattributes = 1;
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_TOO_BIG);
    big[QFS_SNS_MAX_MESSAGE - strlen("severity") - strlen("high") - strlen("String")] = '\0';
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_OK);
    q.attributes = NULL;
    q.nattributes = 0;
    free(big);
    qfs_buf_reset(&b);
    q.message = "bad \xff utf8";
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_INVALID_ARG);
    q.message = "";
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_INVALID_ARG);
    q.message = "m";
    q.topic_arn = "deploys";
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_INVALID_ARG);
    struct qfs_sns_attribute many[11];
    for (int i = 0; i < 11; i++) many[i] = (struct qfs_sns_attribute){"a", NULL, "v"};
    q.topic_arn = p.topic_arn;
    q.attributes = many;
    q.nattributes = 11;
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_INVALID_ARG);
    q.nattributes = 1;
    many[0].data_type = "Binary";
    assert_int_equal(qfs_sns_publish_encode(&q, &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);
}

static void test_sns_publish_decode(void **state)
{
    char *id;
    const char *ok = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n"
                     "  <PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>\n"
                     "  <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>\n"
                     "</PublishResponse>";
    assert_int_equal(qfs_sns_publish_decode(ok, strlen(ok), &id), QFS_OK);
    assert_string_equal(id, "94f20ce6-13c5-43a0-9a9e-ca52d816e90b");
    free(id);
    char *long_id = repeat('a', 101);
    char body[300];
    snprintf(body, sizeof(body), "<PublishResult><MessageId>%s</MessageId></PublishResult>", long_id);
    free(long_id);
    const char *bad[] = {"<PublishResponse/>", "<MessageId></MessageId>", "<MessageId>abc", "", body,
                         "<MessageId><x/></MessageId>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(qfs_sns_publish_decode(bad[i], strlen(bad[i]), &id), QFS_PROTOCOL);
        assert_null(id);
    }
}

/* ---- ECS ---- */

static void test_ecs_describe_task_definition(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    const char *arn = "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42";
    assert_int_equal(qfs_ecs_describe_task_definition_encode(arn, &b), QFS_OK);
    assert_string_equal(b.data, "{\"taskDefinition\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42\"}");
    qfs_buf_reset(&b);
    assert_int_equal(qfs_ecs_describe_task_definition_encode("", &b), QFS_INVALID_ARG);
    assert_int_equal(qfs_ecs_describe_task_definition_encode("web 42", &b), QFS_INVALID_ARG);
    assert_int_equal(qfs_ecs_describe_task_definition_encode("web\"42", &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);

    struct qfs_ecs_task_definition td;
    const char *ok =
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42\","
        "\"family\":\"web\",\"revision\":42,\"status\":\"ACTIVE\",\"containerDefinitions\":["
        "{\"name\":\"app\",\"image\":\"111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2\",\"essential\":true},"
        "{\"name\":\"proxy\",\"image\":\"nginx:1.25\",\"essential\":false}],\"registeredAt\":1777629600.123},"
        "\"tags\":[{\"key\":\"team\",\"value\":\"platform\"}]}";
    assert_int_equal(qfs_ecs_describe_task_definition_decode(ok, strlen(ok), &td), QFS_OK);
    assert_string_equal(td.family, "web");
    assert_int_equal(td.revision, 42);
    assert_int_equal(td.ncontainers, 2);
    assert_string_equal(td.containers[0].name, "app");
    assert_string_equal(td.containers[0].image, "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2");
    assert_string_equal(td.containers[1].image, "nginx:1.25");
    qfs_ecs_task_definition_cleanup(&td);

    const char *hostile[] = {
        "{}", "{\"taskDefinition\":[]}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":\"1\",\"containerDefinitions\":[]}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1.5,\"containerDefinitions\":[]}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":-3,\"containerDefinitions\":[]}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"revision\":1,\"containerDefinitions\":[]}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1,\"containerDefinitions\":{}}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1,"
        "\"containerDefinitions\":[{\"name\":\"c\"}]}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1,"
        "\"containerDefinitions\":[{\"name\":\"c\",\"image\":[\"x\"]}]}}",
        "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1,"
        "\"containerDefinitions\":[\"c\"]}}",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        if (qfs_ecs_describe_task_definition_decode(hostile[i], strlen(hostile[i]), &td) != QFS_PROTOCOL)
            fail_msg("accepted %s", hostile[i]);
        qfs_ecs_task_definition_cleanup(&td);
    }
    /* Huge arrays and strings stay bounded. */
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1,"
                     "\"containerDefinitions\":[");
    for (int i = 0; i < QFS_ECS_MAX_CONTAINERS + 1; i++)
        qfs_buf_printf(&b, "%s{\"name\":\"c%d\",\"image\":\"i\"}", i ? "," : "", i);
    qfs_buf_puts(&b, "]}}");
    assert_int_equal(qfs_ecs_describe_task_definition_decode(b.data, b.len, &td), QFS_PROTOCOL);
    qfs_ecs_task_definition_cleanup(&td);
    qfs_buf_reset(&b);
    char *huge = repeat('i', 100000);
    qfs_buf_printf(&b, "{\"taskDefinition\":{\"taskDefinitionArn\":\"a\",\"family\":\"f\",\"revision\":1,"
                       "\"containerDefinitions\":[{\"name\":\"c\",\"image\":\"%s\"}]}}", huge);
    assert_int_equal(qfs_ecs_describe_task_definition_decode(b.data, b.len, &td), QFS_TOO_BIG);
    qfs_ecs_task_definition_cleanup(&td);
    free(huge);
    qfs_buf_cleanup(&b);
}

/* ---- ECR ---- */

static void test_ecr_describe_images(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    struct qfs_ecr_query q = {.registry_id = "111122223333", .repository = "batch/migrate", .tag = "2026.05"};
    assert_int_equal(qfs_ecr_describe_images_encode(&q, &b), QFS_OK);
    assert_string_equal(b.data, "{\"registryId\":\"111122223333\",\"repositoryName\":\"batch/migrate\","
                                "\"imageIds\":[{\"imageTag\":\"2026.05\"}]}");
    qfs_buf_reset(&b);
    const char *digest = "sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c";
    struct qfs_ecr_query d = {.repository = "web", .digest = digest};
    assert_int_equal(qfs_ecr_describe_images_encode(&d, &b), QFS_OK);
    assert_non_null(strstr(b.data, "\"imageDigest\":\"sha256:7dcb"));
    assert_null(strstr(b.data, "registryId"));
    struct qfs_ecr_query both = {.repository = "web", .tag = "1", .digest = digest};
    assert_int_equal(qfs_ecr_describe_images_encode(&both, &b), QFS_INVALID_ARG);
    struct qfs_ecr_query neither = {.repository = "web"};
    assert_int_equal(qfs_ecr_describe_images_encode(&neither, &b), QFS_INVALID_ARG);
    struct qfs_ecr_query badreg = {.registry_id = "12345", .repository = "web", .tag = "1"};
    assert_int_equal(qfs_ecr_describe_images_encode(&badreg, &b), QFS_INVALID_ARG);
    struct qfs_ecr_query badtag = {.repository = "web", .tag = "1\"}"};
    assert_int_equal(qfs_ecr_describe_images_encode(&badtag, &b), QFS_INVALID_ARG);
    struct qfs_ecr_query baddigest = {.repository = "web", .digest = "sha256:abc"};
    assert_int_equal(qfs_ecr_describe_images_encode(&baddigest, &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);

    struct qfs_ecr_image img;
    const char *ok = "{\"imageDetails\":[{\"registryId\":\"111122223333\",\"repositoryName\":\"web\","
                     "\"imageDigest\":\"sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c\","
                     "\"imageTags\":[\"1.4.2\",\"latest\"],\"imageSizeInBytes\":187654321,"
                     "\"imagePushedAt\":1777629600}]}";
    assert_int_equal(qfs_ecr_describe_images_decode(ok, strlen(ok), &img), QFS_OK);
    assert_string_equal(img.digest, digest);
    assert_int_equal(img.ntags, 2);
    assert_string_equal(img.tags[1], "latest");
    assert_string_equal(img.repository, "web");
    assert_int_equal(img.pushed_at_ms, 1777629600000LL);
    qfs_ecr_image_cleanup(&img);
    const char *untagged = "{\"imageDetails\":[{\"imageDigest\":\"sha256:00\"}]}";
    assert_int_equal(qfs_ecr_describe_images_decode(untagged, strlen(untagged), &img), QFS_OK);
    assert_int_equal(img.ntags, 0);
    qfs_ecr_image_cleanup(&img);
    assert_int_equal(qfs_ecr_describe_images_decode("{\"imageDetails\":[]}", 19, &img), QFS_NOT_FOUND);
    qfs_ecr_image_cleanup(&img);
    const char *hostile[] = {
        "{}", "{\"imageDetails\":{}}", "{\"imageDetails\":[1]}", "{\"imageDetails\":[{}]}",
        "{\"imageDetails\":[{\"imageDigest\":\"md5:x\"}]}",
        "{\"imageDetails\":[{\"imageDigest\":\"sha256:0\",\"imageTags\":\"latest\"}]}",
        "{\"imageDetails\":[{\"imageDigest\":\"sha256:0\",\"imageTags\":[1]}]}",
        "{\"imageDetails\":[{\"imageDigest\":\"sha256:0\",\"imagePushedAt\":\"yesterday\"}]}",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        if (qfs_ecr_describe_images_decode(hostile[i], strlen(hostile[i]), &img) != QFS_PROTOCOL)
            fail_msg("accepted %s", hostile[i]);
        qfs_ecr_image_cleanup(&img);
    }
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"imageDetails\":[{\"imageDigest\":\"sha256:0\",\"imageTags\":[");
    for (int i = 0; i < QFS_ECR_MAX_TAGS + 1; i++) qfs_buf_printf(&b, "%s\"t%d\"", i ? "," : "", i);
    qfs_buf_puts(&b, "]}]}");
    assert_int_equal(qfs_ecr_describe_images_decode(b.data, b.len, &img), QFS_PROTOCOL);
    qfs_ecr_image_cleanup(&img);
    qfs_buf_cleanup(&b);
}

/* ---- Secrets Manager ---- */

static void test_secrets_get(void **state)
{
    qfs_log_clear_secrets();
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    assert_int_equal(qfs_secrets_get_encode("prod/qfs/qualys", NULL, &b), QFS_OK);
    assert_string_equal(b.data, "{\"SecretId\":\"prod/qfs/qualys\",\"VersionStage\":\"AWSCURRENT\"}");
    assert_int_equal(qfs_secrets_get_encode("", NULL, &b), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);
    char *s;
    const char *ok = "{\"ARN\":\"arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/qfs/qualys-AbCdEf\","
                     "\"Name\":\"prod/qfs/qualys\",\"SecretString\":\"{\\\"token\\\":\\\"qualys-canary-token\\\"}\","
                     "\"VersionStages\":[\"AWSCURRENT\"],\"CreatedDate\":1777629600.5}";
    assert_int_equal(qfs_secrets_get_decode(ok, strlen(ok), &s), QFS_OK);
    assert_string_equal(s, "{\"token\":\"qualys-canary-token\"}");
    assert_true(masked("{\"token\":\"qualys-canary-token\"}"));
    free(s);
    const char *binary = "{\"Name\":\"x\",\"SecretBinary\":\"AAEC\"}";
    assert_int_equal(qfs_secrets_get_decode(binary, strlen(binary), &s), QFS_PROTOCOL);
    assert_int_equal(qfs_secrets_get_decode("{\"SecretString\":5}", 18, &s), QFS_PROTOCOL);
    assert_int_equal(qfs_secrets_get_decode("[", 1, &s), QFS_PROTOCOL);
    char *huge = repeat('s', QFS_SECRETS_MAX_STRING + 1);
    qfs_buf_init(&b, 0);
    qfs_buf_printf(&b, "{\"SecretString\":\"%s\"}", huge);
    assert_int_equal(qfs_secrets_get_decode(b.data, b.len, &s), QFS_TOO_BIG);
    assert_null(s);
    qfs_buf_cleanup(&b);
    free(huge);
    qfs_log_clear_secrets();
}

/* ---- STS ---- */

static void test_sts(void **state)
{
    qfs_log_clear_secrets();
    char arn[256];
    assert_int_equal(qfs_aws_role_arn("aws", "222233334444", "QfsEcsDescribeRole", arn, sizeof(arn)), QFS_OK);
    assert_string_equal(arn, "arn:aws:iam::222233334444:role/QfsEcsDescribeRole");
    assert_int_equal(qfs_aws_role_arn(qfs_aws_partition("cn-north-1"), "222233334444", "R", arn, sizeof(arn)),
                     QFS_OK);
    assert_string_equal(arn, "arn:aws-cn:iam::222233334444:role/R");
    assert_int_equal(qfs_aws_role_arn("aws", "2222", "R", arn, sizeof(arn)), QFS_INVALID_ARG);
    assert_int_equal(qfs_aws_role_arn("aws", "222233334444", "a/b", arn, sizeof(arn)), QFS_INVALID_ARG);
    assert_int_equal(qfs_aws_role_arn("evil", "222233334444", "R", arn, sizeof(arn)), QFS_INVALID_ARG);
    assert_int_equal(qfs_aws_role_arn("aws", "222233334444", "R", arn, 10), QFS_TOO_BIG);
    /* The hub account is reached with our own credentials: no role, even with no valid role name. */
    assert_int_equal(qfs_aws_role_for("111122223333", "aws", "111122223333", "a/b", arn, sizeof(arn)), QFS_OK);
    assert_string_equal(arn, "");
    assert_int_equal(qfs_aws_role_for("111122223333", "aws", "222233334444", "R", arn, sizeof(arn)), QFS_OK);
    assert_string_equal(arn, "arn:aws:iam::222233334444:role/R");
    assert_int_equal(qfs_aws_role_for(NULL, "aws", "222233334444", "a/b", arn, sizeof(arn)), QFS_INVALID_ARG);
    assert_true(qfs_aws_role_arn_is_valid("arn:aws:iam::222233334444:role/path/to/R"));
    assert_false(qfs_aws_role_arn_is_valid("arn:aws:iam::222233334444:user/R"));
    assert_false(qfs_aws_role_arn_is_valid("arn:aws:iam::22223333444:role/R"));
    assert_false(qfs_aws_role_arn_is_valid("arn:aws:iam::222233334444:role/"));

    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    assert_int_equal(qfs_aws_sts_assume_role_encode("arn:aws:iam::222233334444:role/deploy-reader",
                                                    "deploy-watcher", 3600, &b), QFS_OK);
    assert_string_equal(b.data, "Action=AssumeRole&DurationSeconds=3600&RoleArn=arn%3Aaws%3Aiam%3A%3A222233334444"
                                "%3Arole%2Fdeploy-reader&RoleSessionName=deploy-watcher&Version=2011-06-15");
    assert_int_equal(qfs_aws_sts_assume_role_encode("arn:aws:iam::222233334444:role/r", "x", 3600, &b),
                     QFS_INVALID_ARG);
    assert_int_equal(qfs_aws_sts_assume_role_encode("arn:aws:iam::222233334444:role/r", "qfs", 60, &b),
                     QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);

    const char *ok =
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
        "<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:qfs</AssumedRoleId>"
        "<Arn>arn:aws:sts::222233334444:assumed-role/deploy-reader/qfs</Arn></AssumedRoleUser>"
        "<Credentials><AccessKeyId>ASIAROLEEXAMPLE</AccessKeyId><SecretAccessKey>role-secret-canary/+=</SecretAccessKey>"
        "<SessionToken>role-token-canary+/=</SessionToken><Expiration>2026-05-01T11:00:00Z</Expiration></Credentials>"
        "<PackedPolicySize>6</PackedPolicySize></AssumeRoleResult>"
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>";
    struct qfs_aws_credentials c;
    assert_int_equal(qfs_aws_sts_assume_role_decode(ok, strlen(ok), &c), QFS_OK);
    assert_string_equal(c.access_key_id, "ASIAROLEEXAMPLE");
    assert_string_equal(c.secret_access_key, "role-secret-canary/+=");
    assert_string_equal(c.session_token, "role-token-canary+/=");
    assert_int_equal(c.expires_ms, 1777633200000LL);
    assert_true(masked("role-secret-canary/+="));
    assert_true(masked("role-token-canary+/="));
    qfs_aws_credentials_cleanup(&c);
    const char *bad[] = {
        "<AssumeRoleResponse/>",
        "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey></Credentials>",
        "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
        "<SessionToken>T</SessionToken><Expiration>soon</Expiration></Credentials>",
        /* Fields outside the Credentials element do not count. */
        "<AccessKeyId>A</AccessKeyId><Credentials><SecretAccessKey>S</SecretAccessKey>"
        "<SessionToken>T</SessionToken><Expiration>2026-05-01T11:00:00Z</Expiration></Credentials>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(qfs_aws_sts_assume_role_decode(bad[i], strlen(bad[i]), &c), QFS_PROTOCOL);
        assert_null(c.access_key_id);
    }
    qfs_log_clear_secrets();
}

int main(void)
{
    qfs_log_init("unit", QFS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_defaults_per_partition),
        cmocka_unit_test(test_endpoint_from_environment),
        cmocka_unit_test(test_endpoint_rejects_bad_input),
        cmocka_unit_test(test_arn_region),
        cmocka_unit_test(test_error_mapping_table),
        cmocka_unit_test(test_error_decoding),
        cmocka_unit_test(test_xml_text),
        cmocka_unit_test(test_container_credentials_json),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_full_uri_rules),
        cmocka_unit_test(test_credential_sources),
        cmocka_unit_test(test_sqs_receive_encode),
        cmocka_unit_test(test_sqs_receive_decode),
        cmocka_unit_test(test_sqs_delete_batch),
        cmocka_unit_test(test_sqs_send_and_visibility),
        cmocka_unit_test(test_sns_form_encoding),
        cmocka_unit_test(test_sns_publish_encode),
        cmocka_unit_test(test_sns_publish_decode),
        cmocka_unit_test(test_ecs_describe_task_definition),
        cmocka_unit_test(test_ecr_describe_images),
        cmocka_unit_test(test_secrets_get),
        cmocka_unit_test(test_sts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
