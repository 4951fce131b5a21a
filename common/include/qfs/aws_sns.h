/* SNS Publish over the query protocol (form body, XML response). */
#ifndef QFS_AWS_SNS_H
#define QFS_AWS_SNS_H

#include "qfs/aws.h"

#define QFS_SNS_MAX_MESSAGE 262144 /* bytes */
#define QFS_SNS_MAX_SUBJECT 99
#define QFS_SNS_MAX_ATTRIBUTES 10

struct qfs_sns_attribute {
    const char *name;
    const char *data_type; /* "String" when NULL; "Number", "String.Array" also allowed */
    const char *value;
};

struct qfs_sns_publish {
    const char *topic_arn;
    const char *subject; /* optional; sanitised to printable ASCII, cut to 99 characters */
    const char *message; /* UTF-8, at most 256 KiB */
    const struct qfs_sns_attribute *attributes;
    size_t nattributes;
};

/* Appends the form body (Action=Publish&...&Version=2010-03-31). QFS_INVALID_ARG for a missing
 * topic or message, invalid UTF-8 or too many attributes; QFS_TOO_BIG for a message over 256 KiB. */
qfs_status qfs_sns_publish_encode(const struct qfs_sns_publish *p, struct qfs_buf *out);
/* *message_id (caller frees) from <PublishResult><MessageId>. QFS_PROTOCOL when absent/over 100. */
qfs_status qfs_sns_publish_decode(const char *body, size_t len, char **message_id);

typedef void (*qfs_sns_publish_fn)(const struct qfs_aws_response *r, const char *message_id,
                                   void *arg);
/* Returns as qfs_aws_call; the region is the topic ARN's. */
qfs_status qfs_sns_publish(struct qfs_aws *aws, const struct qfs_sns_publish *p,
                           qfs_sns_publish_fn cb, void *arg);

#endif
