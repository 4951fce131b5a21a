/* ECR DescribeImages: pure encoder and decoder plus the call wrapper. */
#include "qfs/aws_ecr.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/util.h"

#define MAX_REPOSITORY 256
#define MAX_TAG 300
#define MAX_DIGEST 200
#define RESPONSE_CAP (1024 * 1024)

static bool all_chars(const char *s, const char *allowed_extra, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(allowed_extra, c)))
            return false;
    }
    return true;
}

qfs_status qfs_ecr_describe_images_encode(const struct qfs_ecr_query *q, struct qfs_buf *out)
{
    if (!q || !all_chars(q->repository, "._-/", MAX_REPOSITORY) || (!q->tag == !q->digest))
        return QFS_INVALID_ARG;
    if (q->registry_id && (strlen(q->registry_id) != 12 || !all_chars(q->registry_id, "", 12)))
        return QFS_INVALID_ARG;
    if (q->tag && !all_chars(q->tag, "._-", MAX_TAG)) return QFS_INVALID_ARG;
    if (q->digest && (strncmp(q->digest, "sha256:", 7) != 0 || !all_chars(q->digest + 7, "", 64) ||
                      strlen(q->digest) != 71))
        return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK && q->registry_id) {
        st = qfs_aws_json_put(out, "registryId", q->registry_id);
        if (st == QFS_OK) st = qfs_buf_puts(out, ",");
    }
    if (st == QFS_OK) st = qfs_aws_json_put(out, "repositoryName", q->repository);
    if (st == QFS_OK) st = qfs_buf_puts(out, ",\"imageIds\":[{");
    if (st == QFS_OK)
        st = q->tag ? qfs_aws_json_put(out, "imageTag", q->tag) : qfs_aws_json_put(out, "imageDigest", q->digest);
    if (st == QFS_OK) st = qfs_buf_puts(out, "}]}");
    return st;
}

void qfs_ecr_image_cleanup(struct qfs_ecr_image *img)
{
    if (!img) return;
    for (size_t i = 0; i < img->ntags; i++) free(img->tags[i]);
    free(img->tags);
    free(img->registry_id);
    free(img->repository);
    free(img->digest);
    memset(img, 0, sizeof(*img));
}

static qfs_status optional(const cJSON *o, const char *key, size_t max, char **out)
{
    qfs_status st = qfs_aws_json_string(o, key, max, out);
    if (st == QFS_NOT_FOUND) {
        *out = qfs_xstrdup("");
        st = QFS_OK;
    }
    return st;
}

qfs_status qfs_ecr_describe_images_decode(const char *body, size_t len, struct qfs_ecr_image *out)
{
    memset(out, 0, sizeof(*out));
    qfs_status st = QFS_OK;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(root, "imageDetails");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(details)) {
        st = QFS_PROTOCOL;
        goto out;
    }
    const cJSON *d = cJSON_GetArrayItem(details, 0);
    if (!d) {
        st = QFS_NOT_FOUND;
        goto out;
    }
    if (!cJSON_IsObject(d)) {
        st = QFS_PROTOCOL;
        goto out;
    }
    st = qfs_aws_json_string(d, "imageDigest", MAX_DIGEST, &out->digest);
    if (st == QFS_NOT_FOUND) st = QFS_PROTOCOL;
    if (st == QFS_OK && strncmp(out->digest, "sha256:", 7) != 0) st = QFS_PROTOCOL;
    if (st == QFS_OK) st = optional(d, "registryId", 12, &out->registry_id);
    if (st == QFS_OK) st = optional(d, "repositoryName", MAX_REPOSITORY, &out->repository);
    const cJSON *pushed = cJSON_GetObjectItemCaseSensitive(d, "imagePushedAt");
    if (st == QFS_OK && pushed && !cJSON_IsNumber(pushed)) st = QFS_PROTOCOL;
    if (st == QFS_OK && pushed && pushed->valuedouble > 0 && pushed->valuedouble < 1e11)
        out->pushed_at_ms = (int64_t)(pushed->valuedouble * 1000.0);
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(d, "imageTags");
    if (st == QFS_OK && tags && !cJSON_IsNull(tags) &&
        (!cJSON_IsArray(tags) || cJSON_GetArraySize(tags) > QFS_ECR_MAX_TAGS))
        st = QFS_PROTOCOL;
    if (st != QFS_OK || !cJSON_IsArray(tags)) goto out;
    out->tags = qfs_xcalloc((size_t)cJSON_GetArraySize(tags) + 1, sizeof(char *));
    const cJSON *t;
    cJSON_ArrayForEach(t, tags)
    {
        if (!cJSON_IsString(t) || !t->valuestring) st = QFS_PROTOCOL;
        else if (strlen(t->valuestring) > MAX_TAG) st = QFS_TOO_BIG;
        if (st != QFS_OK) break;
        out->tags[out->ntags++] = qfs_xstrdup(t->valuestring);
    }
out:
    cJSON_Delete(root);
    return st;
}

struct describe_ctx {
    qfs_ecr_image_fn cb;
    void *arg;
};

static void on_described(const struct qfs_aws_response *r, void *arg)
{
    struct describe_ctx *x = arg;
    struct qfs_ecr_image img = {0};
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK)
        r = qfs_aws_response_decoded(r, qfs_ecr_describe_images_decode(r->body, r->body_len, &img),
                                     "DescribeImages", &scratch);
    x->cb(r, r->status == QFS_OK ? &img : NULL, x->arg);
    qfs_ecr_image_cleanup(&img);
    free(x);
}

qfs_status qfs_ecr_describe_image(struct qfs_aws *aws, const struct qfs_ecr_query *q,
                                  const char *region, const struct qfs_aws_credentials *credentials,
                                  qfs_ecr_image_fn cb, void *arg)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 8192);
    qfs_status st = qfs_ecr_describe_images_encode(q, &b);
    struct describe_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    struct qfs_aws_call c = {
        .service = QFS_AWS_ECR,
        .region = region,
        .protocol = QFS_AWS_JSON_1_1,
        .target = "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
        .body = b.data,
        .body_len = b.len,
        .credentials = credentials,
        .max_response = RESPONSE_CAP,
    };
    st = qfs_aws_call(aws, &c, on_described, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}
