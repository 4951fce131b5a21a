/* Secrets Manager GetSecretValue (JSON 1.1): the SecretString of a secret. */
#ifndef QFS_AWS_SECRETS_H
#define QFS_AWS_SECRETS_H

#include "qfs/aws.h"

#define QFS_SECRETS_MAX_STRING 65536

/* Appends {"SecretId":...,"VersionStage":...}; version_stage NULL means AWSCURRENT. */
qfs_status qfs_secrets_get_encode(const char *secret_id, const char *version_stage, struct qfs_buf *out);
/* *secret (caller frees; it is registered with qfs_log_add_secret) from SecretString.
 * QFS_PROTOCOL when absent (a binary secret) or not a string; QFS_TOO_BIG over 64 KiB. */
qfs_status qfs_secrets_get_decode(const char *body, size_t len, char **secret);

/* secret is NULL unless r->status is QFS_OK; borrowed for the call. */
typedef void (*qfs_secrets_get_fn)(const struct qfs_aws_response *r, const char *secret, void *arg);
/* The region is the ARN's when secret_id is one, else the client's. Returns as qfs_aws_call. */
qfs_status qfs_secrets_get(struct qfs_aws *aws, const char *secret_id, const char *version_stage,
                           qfs_secrets_get_fn cb, void *arg);

#endif
