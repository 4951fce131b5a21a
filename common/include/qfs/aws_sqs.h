/* SQS over the JSON protocol: ReceiveMessage, DeleteMessageBatch, SendMessage, ChangeMessageVisibility. */
#ifndef QFS_AWS_SQS_H
#define QFS_AWS_SQS_H

#include "qfs/aws.h"

#define QFS_SQS_MAX_BATCH 10
#define QFS_SQS_MAX_BODY (1024 * 1024)

/* ---- ReceiveMessage (long poll) ---- */

struct qfs_sqs_receive_params {
    const char *queue_url;
    unsigned max_messages;                /* 1..10 */
    unsigned wait_seconds;                /* 0..20 */
    int visibility_timeout;               /* 0..43200, or -1 for the queue's own */
    const char *const *system_attributes; /* MessageSystemAttributeNames, NULL-terminated, or NULL */
};

struct qfs_sqs_message {
    char *message_id;
    char *receipt_handle;
    char *md5_of_body;          /* "" when absent */
    char *body;
    size_t body_len;
    unsigned receive_count;     /* Attributes.ApproximateReceiveCount, 0 when absent */
    int64_t sent_timestamp_ms;  /* Attributes.SentTimestamp, 0 when absent */
};

struct qfs_sqs_messages {
    struct qfs_sqs_message *items; /* owned */
    size_t count;
};

/* Appends the request JSON to out. QFS_INVALID_ARG for out-of-range parameters. */
qfs_status qfs_sqs_receive_encode(const struct qfs_sqs_receive_params *p, struct qfs_buf *out);
/* Decodes a response (no Messages key, or an empty array, is zero messages) into out, which the
 * caller releases with qfs_sqs_messages_cleanup even on failure. QFS_PROTOCOL for a malformed
 * body or more than 10 messages, QFS_TOO_BIG for a field over its bound. */
qfs_status qfs_sqs_receive_decode(const char *body, size_t len, struct qfs_sqs_messages *out);
void qfs_sqs_messages_cleanup(struct qfs_sqs_messages *m);

/* m is NULL unless r->status is QFS_OK; both are borrowed for the call. */
typedef void (*qfs_sqs_receive_fn)(const struct qfs_aws_response *r,
                                   const struct qfs_sqs_messages *m, void *arg);
/* Returns as qfs_aws_call; the region comes from the queue URL host when it is an AWS one. */
qfs_status qfs_sqs_receive(struct qfs_aws *aws, const struct qfs_sqs_receive_params *p,
                           qfs_sqs_receive_fn cb, void *arg);

/* ---- DeleteMessageBatch ---- */

struct qfs_sqs_delete_entry {
    const char *id; /* unique within the batch: [A-Za-z0-9_-], 1..80 */
    const char *receipt_handle;
};

struct qfs_sqs_batch_failure {
    char *id;
    char *code;
    char *message; /* "" when absent */
    bool sender_fault;
};

/* A 200 answer may still fail some entries: always look at failed. */
struct qfs_sqs_batch_result {
    char **successful; /* ids */
    size_t nsuccessful;
    struct qfs_sqs_batch_failure *failed;
    size_t nfailed;
};

qfs_status qfs_sqs_delete_batch_encode(const char *queue_url, const struct qfs_sqs_delete_entry *e,
                                       size_t n, struct qfs_buf *out);
/* Released with qfs_sqs_batch_result_cleanup even on failure. QFS_PROTOCOL when malformed. */
qfs_status qfs_sqs_batch_decode(const char *body, size_t len, struct qfs_sqs_batch_result *out);
void qfs_sqs_batch_result_cleanup(struct qfs_sqs_batch_result *r);

typedef void (*qfs_sqs_batch_fn)(const struct qfs_aws_response *r,
                                 const struct qfs_sqs_batch_result *res, void *arg);
qfs_status qfs_sqs_delete_batch(struct qfs_aws *aws, const char *queue_url,
                                const struct qfs_sqs_delete_entry *e, size_t n, qfs_sqs_batch_fn cb,
                                void *arg);

/* ---- SendMessage ---- */

/* body must be valid UTF-8 of at most 1 MiB (QFS_INVALID_ARG, QFS_TOO_BIG); delay 0..900 s. */
qfs_status qfs_sqs_send_encode(const char *queue_url, const char *body, size_t len,
                               unsigned delay_seconds, struct qfs_buf *out);
/* *message_id is owned by the caller. QFS_PROTOCOL when there is none. */
qfs_status qfs_sqs_send_decode(const char *body, size_t len, char **message_id);

typedef void (*qfs_sqs_send_fn)(const struct qfs_aws_response *r, const char *message_id, void *arg);
qfs_status qfs_sqs_send(struct qfs_aws *aws, const char *queue_url, const char *body, size_t len,
                        unsigned delay_seconds, qfs_sqs_send_fn cb, void *arg);

/* ---- ChangeMessageVisibility (0 makes the message visible again at once: a "nack") ---- */

qfs_status qfs_sqs_change_visibility_encode(const char *queue_url, const char *receipt_handle,
                                            unsigned timeout_seconds, struct qfs_buf *out);
qfs_status qfs_sqs_change_visibility(struct qfs_aws *aws, const char *queue_url,
                                     const char *receipt_handle, unsigned timeout_seconds,
                                     qfs_aws_done_fn cb, void *arg);

#endif
