/* Secrets Manager GetSecretValue (aws-wire.md §2.7): pure encoder and decoder plus the wrapper. */
#include "qfs/aws_secrets.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define MAX_SECRET_ID 2048
#define MAX_STAGE 256

qfs_status qfs_secrets_get_encode(const char *secret_id, const char *version_stage, struct qfs_buf *out)
{
    if (!secret_id || !*secret_id || strlen(secret_id) > MAX_SECRET_ID ||
        (version_stage && (!*version_stage || strlen(version_stage) > MAX_STAGE)))
        return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "SecretId", secret_id);
    if (st == QFS_OK) st = qfs_buf_puts(out, ",");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "VersionStage", version_stage ? version_stage : "AWSCURRENT");
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    return st;
}

qfs_status qfs_secrets_get_decode(const char *body, size_t len, char **secret)
{
    *secret = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    qfs_status st = cJSON_IsObject(root)
                        ? qfs_aws_json_string(root, "SecretString", QFS_SECRETS_MAX_STRING, secret)
                        : QFS_PROTOCOL;
    if (st == QFS_NOT_FOUND) st = QFS_PROTOCOL; /* SecretBinary only: not something qfs stores */
    if (st == QFS_OK) qfs_log_add_secret(*secret);
    cJSON_Delete(root);
    return st;
}

struct get_ctx {
    qfs_secrets_get_fn cb;
    void *arg;
};

static void on_got(const struct qfs_aws_response *r, void *arg)
{
    struct get_ctx *x = arg;
    char *secret = NULL;
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK)
        r = qfs_aws_response_decoded(r, qfs_secrets_get_decode(r->body, r->body_len, &secret),
                                     "GetSecretValue", &scratch);
    x->cb(r, r->status == QFS_OK ? secret : NULL, x->arg);
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    free(x);
}

qfs_status qfs_secrets_get(struct qfs_aws *aws, const char *secret_id, const char *version_stage,
                           qfs_secrets_get_fn cb, void *arg)
{
    struct qfs_buf b;
    char region[40];
    qfs_buf_init(&b, 8192);
    qfs_status st = qfs_secrets_get_encode(secret_id, version_stage, &b);
    struct get_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    struct qfs_aws_call c = {
        .service = QFS_AWS_SECRETS_MANAGER,
        .region = qfs_aws_arn_region(secret_id, region, sizeof(region)) ? region : NULL,
        .protocol = QFS_AWS_JSON_1_1,
        .target = "secretsmanager.GetSecretValue",
        .body = b.data,
        .body_len = b.len,
    };
    st = qfs_aws_call(aws, &c, on_got, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}
