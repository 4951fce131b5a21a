/* STS AssumeRole (query protocol) with a cache of role credentials keyed by role ARN. */
#ifndef QFS_AWS_STS_H
#define QFS_AWS_STS_H

#include "qfs/aws.h"

struct qfs_aws_sts;

struct qfs_aws_sts_options {
    const char *session_name;  /* RoleSessionName, [\w+=,.@-]{2,64} (NULL: "qfs") */
    unsigned duration_seconds; /* 900..43200 (0: 3600) */
    const char *region;        /* regional STS endpoint (NULL: the client's region) */
    unsigned reuse_margin_ms;  /* stop reusing credentials this long before expiry (0: 5 min) */
};

/* Writes arn:<partition>:iam::<account>:role/<name>. QFS_INVALID_ARG for a bad account (12
 * digits) or role name; QFS_TOO_BIG when out (n bytes) is too small. */
qfs_status qfs_aws_role_arn(const char *partition, const char *account, const char *role_name,
                            char *out, size_t n);
/* The role qfs assumes to reach account: none for the hub account (the account whose credentials
 * qfs runs with), where out is set to "", else arn:<partition>:iam::<account>:role/<role_name> as
 * qfs_aws_role_arn writes it, with its errors. */
qfs_status qfs_aws_role_for(const char *hub_account, const char *partition, const char *account,
                            const char *role_name, char *out, size_t n);
/* True for arn:<partition>:iam::<12 digits>:role/<path/name>. */
bool qfs_aws_role_arn_is_valid(const char *arn);

/* Appends the form body. QFS_INVALID_ARG for a bad ARN, session name or duration. */
qfs_status qfs_aws_sts_assume_role_encode(const char *role_arn, const char *session_name,
                                          unsigned duration_seconds, struct qfs_buf *out);
/* Decodes <Credentials> into out (owned; secrets registered). QFS_PROTOCOL when incomplete. */
qfs_status qfs_aws_sts_assume_role_decode(const char *body, size_t len,
                                          struct qfs_aws_credentials *out);

/* Creates the cache over aws (borrowed; free the cache first). QFS_INVALID_ARG for bad options. */
qfs_status qfs_aws_sts_new(uv_loop_t *loop, struct qfs_aws *aws,
                           const struct qfs_aws_sts_options *opt, struct qfs_aws_sts **out);
/* Waiting callers get QFS_UNAVAILABLE now; memory goes when calls in flight end. NULL is fine. */
void qfs_aws_sts_free(struct qfs_aws_sts *sts);

/* creds is NULL unless s is QFS_OK; borrowed for the call (copy to keep). */
typedef void (*qfs_aws_role_fn)(qfs_status s, const struct qfs_aws_credentials *creds, void *arg);
/* Gets credentials for role_arn: from the cache while they are good for more than the margin,
 * else by one AssumeRole call shared by every concurrent caller of the same role. cb runs later,
 * exactly once, on QFS_OK; QFS_INVALID_ARG (bad ARN) or QFS_UNAVAILABLE (shutting down) otherwise. */
qfs_status qfs_aws_sts_assume_role(struct qfs_aws_sts *sts, const char *role_arn,
                                   qfs_aws_role_fn cb, void *arg);
/* AssumeRole calls made so far (tests, metrics). */
unsigned qfs_aws_sts_calls(const struct qfs_aws_sts *sts);

#endif
