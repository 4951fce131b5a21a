/* ECS DescribeTaskDefinition (JSON 1.1): the containers and images of a task definition. */
#ifndef QFS_AWS_ECS_H
#define QFS_AWS_ECS_H

#include "qfs/aws.h"

#define QFS_ECS_MAX_CONTAINERS 64

struct qfs_ecs_container {
    char *name;
    char *image;
};

struct qfs_ecs_task_definition {
    char *arn;
    char *family;
    long revision;
    struct qfs_ecs_container *containers; /* owned */
    size_t ncontainers;
};

/* Appends {"taskDefinition":"<family[:rev] or ARN>"}. QFS_INVALID_ARG for an empty or odd name. */
qfs_status qfs_ecs_describe_task_definition_encode(const char *task_definition, struct qfs_buf *out);
/* Decodes into out (released with qfs_ecs_task_definition_cleanup even on failure). QFS_PROTOCOL
 * for missing keys, wrong types or over 64 containers; QFS_TOO_BIG for an over-long string. */
qfs_status qfs_ecs_describe_task_definition_decode(const char *body, size_t len,
                                                   struct qfs_ecs_task_definition *out);
void qfs_ecs_task_definition_cleanup(struct qfs_ecs_task_definition *td);

/* td is NULL unless r->status is QFS_OK; both are borrowed for the call. */
typedef void (*qfs_ecs_task_definition_fn)(const struct qfs_aws_response *r,
                                           const struct qfs_ecs_task_definition *td, void *arg);
/* region NULL: the ARN's region, else the client's. credentials NULL: the client's (use assumed-role
 * credentials for other accounts). A missing task definition ends with QFS_NOT_FOUND. */
qfs_status qfs_ecs_describe_task_definition(struct qfs_aws *aws, const char *task_definition,
                                            const char *region,
                                            const struct qfs_aws_credentials *credentials,
                                            qfs_ecs_task_definition_fn cb, void *arg);

#endif
