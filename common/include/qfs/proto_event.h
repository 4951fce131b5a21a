/* The event envelope (qfs.event.v1): an EventBridge event as received from SQS, checked at the top
 * level and kept whole, unknown fields included. Reading detail is the parser's job. */
#ifndef QFS_PROTO_EVENT_H
#define QFS_PROTO_EVENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "qfs/proto.h"

/* EventBridge's own limit on an event. */
#define QFS_EVENT_MAX_BYTES (256 * 1024)

struct qfs_event {
    char *id;          /* EventBridge event id: Nats-Msg-Id and trace id */
    char *detail_type; /* "AWS API Call via CloudTrail", "ECS Task State Change", ... */
    char *source;      /* "aws.ecs" */
    char account[QFS_ACCOUNT_LEN + 1]; /* the envelope's account and region: the subject tokens */
    char region[QFS_REGION_MAX + 1];
    char *time;           /* RFC 3339 */
    cJSON *root;          /* the whole event, owned */
    const cJSON *detail;  /* an object inside root, borrowed */
};

/* Decodes and checks len bytes (at most QFS_EVENT_MAX_BYTES) of an EventBridge event into out,
 * which the caller cleans up after QFS_OK (left empty on failure). QFS_PROTOCOL with err naming
 * the field when it is not JSON, misses id/detail/..., or has a bad account, region or time. */
qfs_status qfs_event_decode(const char *json, size_t len, struct qfs_event *out, char *err,
                            size_t errlen);
/* Writes m->root back as compact JSON into *json_out (the caller frees it with free());
 * QFS_INVALID_ARG, with the reason logged, when root is not a valid event. cJSON prints numbers
 * with 15 significant digits, so forward the bytes as received rather than re-encoding them. */
qfs_status qfs_event_encode(const struct qfs_event *m, char **json_out);
/* One event's text out of an input file. */
struct qfs_event_text {
    char *text; /* owned: the bytes as given (a record of a log file: its envelope, below) */
    size_t len;
};
/* Splits an input into event texts: a CloudTrail log file ({"Records":[...]}, each record wrapped
 * in the envelope EventBridge gives it), an SQS ReceiveMessage response ({"Messages":[...]}: each
 * Body), one SQS message ({"Body": ...}), or anything else as one text, kept byte for byte so the
 * decoder can say what is wrong with it. QFS_TOO_BIG past max texts (nothing is returned then).
 * Free the result with qfs_event_texts_free(). */
qfs_status qfs_event_texts(const char *text, size_t len, size_t max, struct qfs_event_text **out,
                           size_t *n);
void qfs_event_texts_free(struct qfs_event_text *t, size_t n);
/* The event EventBridge delivers for one CloudTrail record (the record as its detail): compact
 * JSON, which the caller frees. */
char *qfs_event_from_cloudtrail_record(const cJSON *record);

/* Frees the fields and root, and zeroes m. */
void qfs_event_cleanup(struct qfs_event *m);

#endif
