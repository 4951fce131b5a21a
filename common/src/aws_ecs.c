/* ECS DescribeTaskDefinition (aws-wire.md §2.5): pure encoder and decoder plus the call wrapper. */
#include "qfs/aws_ecs.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/util.h"

#define MAX_TASK_DEFINITION 1600
#define MAX_ARN 1600
#define MAX_NAME 255
#define MAX_IMAGE 4096

qfs_status qfs_ecs_describe_task_definition_encode(const char *task_definition, struct qfs_buf *out)
{
    if (!task_definition || !*task_definition || strlen(task_definition) > MAX_TASK_DEFINITION)
        return QFS_INVALID_ARG;
    for (const char *p = task_definition; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7F)
            return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "{");
    if (st == QFS_OK) st = qfs_aws_json_put(out, "taskDefinition", task_definition);
    if (st == QFS_OK) st = qfs_buf_puts(out, "}");
    return st;
}

void qfs_ecs_task_definition_cleanup(struct qfs_ecs_task_definition *td)
{
    if (!td) return;
    for (size_t i = 0; i < td->ncontainers; i++) {
        free(td->containers[i].name);
        free(td->containers[i].image);
    }
    free(td->containers);
    free(td->arn);
    free(td->family);
    memset(td, 0, sizeof(*td));
}

static qfs_status need(const cJSON *o, const char *key, size_t max, char **out)
{
    qfs_status st = qfs_aws_json_string(o, key, max, out);
    if (st == QFS_OK && !**out) st = QFS_PROTOCOL;
    return st == QFS_NOT_FOUND ? QFS_PROTOCOL : st;
}

qfs_status qfs_ecs_describe_task_definition_decode(const char *body, size_t len,
                                                   struct qfs_ecs_task_definition *out)
{
    memset(out, 0, sizeof(*out));
    qfs_status st = QFS_OK;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(root, "taskDefinition");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(td)) {
        st = QFS_PROTOCOL;
        goto out;
    }
    st = need(td, "taskDefinitionArn", MAX_ARN, &out->arn);
    if (st == QFS_OK) st = need(td, "family", MAX_NAME, &out->family);
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(td, "revision");
    if (st == QFS_OK && (!cJSON_IsNumber(rev) || rev->valuedouble < 1 || rev->valuedouble > 1e9 ||
                         floor(rev->valuedouble) != rev->valuedouble))
        st = QFS_PROTOCOL;
    if (st == QFS_OK) out->revision = (long)rev->valuedouble;
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(td, "containerDefinitions");
    if (st == QFS_OK && (!cJSON_IsArray(defs) || cJSON_GetArraySize(defs) > QFS_ECS_MAX_CONTAINERS))
        st = QFS_PROTOCOL;
    if (st != QFS_OK) goto out;
    out->containers = qfs_xcalloc((size_t)cJSON_GetArraySize(defs) + 1, sizeof(*out->containers));
    const cJSON *c;
    cJSON_ArrayForEach(c, defs)
    {
        struct qfs_ecs_container *k = &out->containers[out->ncontainers++];
        st = cJSON_IsObject(c) ? need(c, "name", MAX_NAME, &k->name) : QFS_PROTOCOL;
        if (st == QFS_OK) st = need(c, "image", MAX_IMAGE, &k->image);
        if (st != QFS_OK) break;
    }
out:
    cJSON_Delete(root);
    return st;
}

struct describe_ctx {
    qfs_ecs_task_definition_fn cb;
    void *arg;
};

static void on_described(const struct qfs_aws_response *r, void *arg)
{
    struct describe_ctx *x = arg;
    struct qfs_ecs_task_definition td = {0};
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK)
        r = qfs_aws_response_decoded(
            r, qfs_ecs_describe_task_definition_decode(r->body, r->body_len, &td),
            "DescribeTaskDefinition", &scratch);
    x->cb(r, r->status == QFS_OK ? &td : NULL, x->arg);
    qfs_ecs_task_definition_cleanup(&td);
    free(x);
}

qfs_status qfs_ecs_describe_task_definition(struct qfs_aws *aws, const char *task_definition,
                                            const char *region,
                                            const struct qfs_aws_credentials *credentials,
                                            qfs_ecs_task_definition_fn cb, void *arg)
{
    struct qfs_buf b;
    char arn_region[40];
    qfs_buf_init(&b, 8192);
    qfs_status st = qfs_ecs_describe_task_definition_encode(task_definition, &b);
    struct describe_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    if (!region && qfs_aws_arn_region(task_definition, arn_region, sizeof(arn_region)))
        region = arn_region;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    struct qfs_aws_call c = {
        .service = QFS_AWS_ECS,
        .region = region,
        .protocol = QFS_AWS_JSON_1_1,
        .target = "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
        .body = b.data,
        .body_len = b.len,
        .credentials = credentials,
    };
    st = qfs_aws_call(aws, &c, on_described, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}
