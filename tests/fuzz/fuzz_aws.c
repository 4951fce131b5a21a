/* Fuzz target for the AWS response decoders: the first byte picks the decoder, the rest is the
 * body. Every decoder either refuses the body with one of its documented statuses, leaving its
 * output empty, or fills it within the bounds its header states; the caller's cleanup releases
 * everything in both cases.
 *
 * Selectors (any other byte: its value modulo the table size): q SQS ReceiveMessage, b SQS
 * DeleteMessageBatch, m SQS SendMessage, n SNS Publish, e ECS DescribeTaskDefinition, r ECR
 * DescribeImages, s STS AssumeRole, k Secrets Manager GetSecretValue, c container credentials,
 * x AWS error (body, then optional NUL-separated x-amzn-query-error and x-amzn-ErrorType
 * values), l XML text and inner markup, a ARN region, t RFC 3339 time. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/aws.h"
#include "qfs/aws_ecr.h"
#include "qfs/aws_ecs.h"
#include "qfs/aws_secrets.h"
#include "qfs/aws_sns.h"
#include "qfs/aws_sqs.h"
#include "qfs/aws_sts.h"
#include "qfs/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a crash libFuzzer keeps) when a property does not hold. */
static void check(bool cond)
{
    if (!cond) abort();
}

static bool within(const char *s, size_t max)
{
    return s && strlen(s) <= max;
}

static bool terminated(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

static bool is_decode_failure(qfs_status s)
{
    return s == QFS_PROTOCOL || s == QFS_TOO_BIG;
}

static char *cstring(const char *body, size_t len)
{
    char *t = malloc(len + 1);
    if (!t) abort();
    memcpy(t, body, len);
    t[len] = '\0';
    return t;
}

static void fuzz_sqs_receive(const char *body, size_t len)
{
    struct qfs_sqs_messages m;
    memset(&m, 0xa5, sizeof(m));
    qfs_status s = qfs_sqs_receive_decode(body, len, &m);
    if (s == QFS_OK) {
        check(m.count <= QFS_SQS_MAX_BATCH);
        for (size_t i = 0; i < m.count; i++) {
            const struct qfs_sqs_message *x = &m.items[i];
            check(within(x->message_id, 128) && within(x->receipt_handle, 8192) &&
                  within(x->md5_of_body, 64) && within(x->body, QFS_SQS_MAX_BODY));
            check(x->body_len == strlen(x->body) && x->sent_timestamp_ms >= 0);
        }
    } else {
        check(is_decode_failure(s));
    }
    qfs_sqs_messages_cleanup(&m);
}

static void fuzz_sqs_batch(const char *body, size_t len)
{
    struct qfs_sqs_batch_result r;
    qfs_status s = qfs_sqs_batch_decode(body, len, &r);
    if (s == QFS_OK) {
        check(r.nsuccessful <= QFS_SQS_MAX_BATCH && r.nfailed <= QFS_SQS_MAX_BATCH);
        for (size_t i = 0; i < r.nsuccessful; i++) check(within(r.successful[i], 128));
        for (size_t i = 0; i < r.nfailed; i++)
            check(within(r.failed[i].id, 128) && within(r.failed[i].code, 256) &&
                  within(r.failed[i].message, 4096));
    } else {
        check(is_decode_failure(s));
    }
    qfs_sqs_batch_result_cleanup(&r);
}

static void fuzz_sqs_send(const char *body, size_t len)
{
    char *id = (char *)1;
    qfs_status s = qfs_sqs_send_decode(body, len, &id);
    if (s == QFS_OK) check(id && *id && strlen(id) <= 128);
    else check(is_decode_failure(s) && id == NULL);
    free(id);
}

static void fuzz_sns_publish(const char *body, size_t len)
{
    char *id = (char *)1;
    qfs_status s = qfs_sns_publish_decode(body, len, &id);
    if (s == QFS_OK) check(id && *id && strlen(id) <= 100); /* entities decoded: '<' is text */
    else check(s == QFS_PROTOCOL && id == NULL);
    free(id);
}

static void fuzz_ecs(const char *body, size_t len)
{
    struct qfs_ecs_task_definition td;
    qfs_status s = qfs_ecs_describe_task_definition_decode(body, len, &td);
    if (s == QFS_OK) {
        check(td.arn && td.family && td.revision >= 1 && td.revision <= 1000000000L);
        check(td.ncontainers <= QFS_ECS_MAX_CONTAINERS);
        for (size_t i = 0; i < td.ncontainers; i++) check(td.containers[i].name && td.containers[i].image);
    } else {
        check(is_decode_failure(s));
    }
    qfs_ecs_task_definition_cleanup(&td);
}

static void fuzz_ecr(const char *body, size_t len)
{
    struct qfs_ecr_image img;
    qfs_status s = qfs_ecr_describe_images_decode(body, len, &img);
    if (s == QFS_OK) {
        check(img.digest && strncmp(img.digest, "sha256:", 7) == 0);
        check(within(img.registry_id, 12) && img.repository);
        check(img.ntags <= QFS_ECR_MAX_TAGS && (img.ntags == 0 || img.tags));
        for (size_t i = 0; i < img.ntags; i++) check(img.tags[i] != NULL);
        check(img.pushed_at_ms >= 0);
    } else {
        check(is_decode_failure(s) || s == QFS_NOT_FOUND);
    }
    qfs_ecr_image_cleanup(&img);
}

static void check_credentials(const struct qfs_aws_credentials *c, bool token_required)
{
    check(c->access_key_id && *c->access_key_id && strlen(c->access_key_id) <= 128);
    check(c->secret_access_key && *c->secret_access_key && strlen(c->secret_access_key) <= 256);
    if (token_required) check(c->session_token && *c->session_token);
    /* expires_ms may lie in the past (even before 1970): expired credentials are the caller's to
     * refuse, not the decoder's. */
}

static bool credentials_empty(const struct qfs_aws_credentials *c)
{
    return !c->access_key_id && !c->secret_access_key && !c->session_token && c->expires_ms == 0;
}

static void fuzz_sts(const char *body, size_t len)
{
    struct qfs_aws_credentials c;
    qfs_status s = qfs_aws_sts_assume_role_decode(body, len, &c);
    if (s == QFS_OK) {
        check_credentials(&c, true);
    } else {
        check(is_decode_failure(s) && credentials_empty(&c));
    }
    qfs_aws_credentials_cleanup(&c);
}

static void fuzz_secrets(const char *body, size_t len)
{
    char *secret = (char *)1;
    qfs_status s = qfs_secrets_get_decode(body, len, &secret);
    if (s == QFS_OK) check(within(secret, QFS_SECRETS_MAX_STRING));
    else check(is_decode_failure(s) && secret == NULL);
    free(secret);
}

static void fuzz_container_credentials(const char *body, size_t len)
{
    struct qfs_aws_credentials c;
    qfs_status s = qfs_aws_parse_container_credentials(body, len, &c);
    if (s == QFS_OK) check_credentials(&c, false);
    else check(s == QFS_PROTOCOL && credentials_empty(&c));
    qfs_aws_credentials_cleanup(&c);
}

/* Decoded error text goes into logs: terminated, cut to fit, no control characters. */
static bool clean(const char *s, size_t cap)
{
    if (!terminated(s, cap)) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20) return false;
    return true;
}

static void fuzz_error(const char *body, size_t len)
{
    /* body NUL query_error NUL error_type: the headers exist only when the input says so. */
    const char *nul = memchr(body, '\0', len);
    size_t blen = nul ? (size_t)(nul - body) : len;
    char *query_error = NULL, *error_type = NULL;
    if (nul) {
        const char *q = nul + 1;
        size_t left = len - blen - 1;
        const char *nul2 = memchr(q, '\0', left);
        query_error = cstring(q, nul2 ? (size_t)(nul2 - q) : left);
        if (nul2) error_type = cstring(nul2 + 1, left - (size_t)(nul2 - q) - 1);
    }
    struct qfs_aws_error e;
    memset(&e, 'x', sizeof(e));
    qfs_aws_decode_error(body, blen, query_error, error_type, &e);
    check(clean(e.code, sizeof(e.code)) && clean(e.message, sizeof(e.message)));
    bool retryable = true;
    qfs_status s = qfs_aws_error_status(400, e.code, e.message, &retryable);
    check(s != QFS_OK || !e.code[0]);
    if (s == QFS_OK) check(!retryable);
    s = qfs_aws_error_status(503, e.code, e.message, &retryable);
    check(s != QFS_OK);
    free(query_error);
    free(error_type);
}

static void fuzz_xml(const char *body, size_t len)
{
    static const char *const tags[] = {"MessageId", "Code", "Credentials", "a"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        char *out = (char *)1;
        qfs_status s = qfs_aws_xml_text(body, len, tags[i], 64, &out);
        if (s == QFS_OK) check(out && strlen(out) <= 64);
        else check(out == NULL && (s == QFS_NOT_FOUND || s == QFS_TOO_BIG || s == QFS_PROTOCOL));
        free(out);
        out = (char *)1;
        s = qfs_aws_xml_inner(body, len, tags[i], 64, &out);
        if (s == QFS_OK) check(out && strlen(out) <= 64);
        else check(out == NULL && (s == QFS_NOT_FOUND || s == QFS_TOO_BIG || s == QFS_PROTOCOL));
        free(out);
    }
}

static void fuzz_arn_region(const char *body, size_t len)
{
    char *arn = cstring(body, len);
    char region[40], tiny[4];
    if (qfs_aws_arn_region(arn, region, sizeof(region))) check(qfs_aws_region_is_valid(region));
    memset(tiny, 'x', sizeof(tiny));
    if (qfs_aws_arn_region(arn, tiny, sizeof(tiny))) check(terminated(tiny, sizeof(tiny)));
    free(arn);
}

static void fuzz_time(const char *body, size_t len)
{
    char *s = cstring(body, len);
    int64_t ms = -1;
    if (qfs_aws_parse_time(s, &ms)) check(strlen(s) >= 20);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char selectors[] = "qbmnerskcxlat";
    if (size == 0) return 0;
    const char *hit = memchr(selectors, data[0], sizeof(selectors) - 1);
    size_t which = hit ? (size_t)(hit - selectors) : data[0] % (sizeof(selectors) - 1);
    /* An exact-size copy of the body, so that ASan catches any read past it. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    if (len) memcpy(body, data + 1, len);

    switch (selectors[which]) {
    case 'q': fuzz_sqs_receive(body, len); break;
    case 'b': fuzz_sqs_batch(body, len); break;
    case 'm': fuzz_sqs_send(body, len); break;
    case 'n': fuzz_sns_publish(body, len); break;
    case 'e': fuzz_ecs(body, len); break;
    case 'r': fuzz_ecr(body, len); break;
    case 's': fuzz_sts(body, len); break;
    case 'k': fuzz_secrets(body, len); break;
    case 'c': fuzz_container_credentials(body, len); break;
    case 'x': fuzz_error(body, len); break;
    case 'l': fuzz_xml(body, len); break;
    case 'a': fuzz_arn_region(body, len); break;
    case 't': fuzz_time(body, len); break;
    }
    free(body);
    /* Decoded keys and tokens are registered for masking; forget them between inputs. */
    qfs_log_clear_secrets();
    return 0;
}
