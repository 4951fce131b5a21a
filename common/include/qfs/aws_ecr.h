/* ECR DescribeImages (JSON 1.1): an image's digest and tags, looked up by tag or digest. */
#ifndef QFS_AWS_ECR_H
#define QFS_AWS_ECR_H

#include "qfs/aws.h"

#define QFS_ECR_MAX_TAGS 1000

struct qfs_ecr_query {
    const char *registry_id; /* 12-digit account, or NULL for the caller's */
    const char *repository;
    const char *tag;         /* exactly one of tag and digest */
    const char *digest;      /* "sha256:<64 hex>" */
};

struct qfs_ecr_image {
    char *registry_id;   /* "" when absent */
    char *repository;    /* "" when absent */
    char *digest;
    char **tags;         /* owned; may be empty */
    size_t ntags;
    int64_t pushed_at_ms; /* 0 when absent */
};

/* Appends the request JSON. QFS_INVALID_ARG for a malformed query. */
qfs_status qfs_ecr_describe_images_encode(const struct qfs_ecr_query *q, struct qfs_buf *out);
/* Decodes the first of imageDetails into out (released with qfs_ecr_image_cleanup even on
 * failure). QFS_NOT_FOUND for an empty list, QFS_PROTOCOL for malformed bodies or over 1000 tags. */
qfs_status qfs_ecr_describe_images_decode(const char *body, size_t len, struct qfs_ecr_image *out);
void qfs_ecr_image_cleanup(struct qfs_ecr_image *img);

/* img is NULL unless r->status is QFS_OK (an unknown image or repository: QFS_NOT_FOUND). */
typedef void (*qfs_ecr_image_fn)(const struct qfs_aws_response *r, const struct qfs_ecr_image *img,
                                 void *arg);
/* region NULL: the client's; credentials NULL: the client's. Returns as qfs_aws_call. */
qfs_status qfs_ecr_describe_image(struct qfs_aws *aws, const struct qfs_ecr_query *q,
                                  const char *region, const struct qfs_aws_credentials *credentials,
                                  qfs_ecr_image_fn cb, void *arg);

#endif
