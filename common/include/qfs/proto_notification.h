/* The notification record (qfs.notification.v1): what the notifier sent to SNS for one scan
 * outcome, or why it deliberately sent nothing. */
#ifndef QFS_PROTO_NOTIFICATION_H
#define QFS_PROTO_NOTIFICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/proto.h"
#include "qfs/proto_scan.h"

enum qfs_notify_decision { QFS_NOTIFY_SENT, QFS_NOTIFY_NOT_SENT, QFS_NOTIFY_DECISION_COUNT };

enum qfs_notify_reason {
    QFS_NOTIFY_MIN_SEVERITY_MET,   /* sent: findings at or above QFS_NOTIFY_MIN_SEVERITY */
    QFS_NOTIFY_NEW_FINDINGS,       /* sent: QFS_NOTIFY_NEW_ONLY and new findings qualify */
    QFS_NOTIFY_SCAN_FAILURE,       /* sent: the scan failed */
    QFS_NOTIFY_BELOW_MIN_SEVERITY, /* not sent: nothing at or above the threshold */
    QFS_NOTIFY_NO_NEW_FINDINGS,    /* not sent: QFS_NOTIFY_NEW_ONLY and nothing new qualifies */
    QFS_NOTIFY_FAILURES_DISABLED,  /* not sent: a scan failure while QFS_NOTIFY_FAILURES is off */
    QFS_NOTIFY_REASON_COUNT
};

enum qfs_notify_source { QFS_NOTIFY_SOURCE_SCAN_RESULT, QFS_NOTIFY_SOURCE_SCAN_FAILURE,
                         QFS_NOTIFY_SOURCE_COUNT };

const char *qfs_notify_decision_str(enum qfs_notify_decision d);
const char *qfs_notify_reason_str(enum qfs_notify_reason r);
const char *qfs_notify_source_str(enum qfs_notify_source s);

/* arn:aws[a-z-]{0,16}:sns:<region>:<account>:[A-Za-z0-9_-]{1,256}(.fifo)?, as the record's schema
 * (proto/notification.schema.json) has it. NULL is not valid. */
bool qfs_notification_topic_arn_is_valid(const char *arn);

struct qfs_notification {
    enum qfs_notify_decision decision;
    enum qfs_notify_reason reason; /* must agree with decision and source */
    enum qfs_notify_source source;
    struct qfs_image_id image;
    int64_t generation;
    /* For a scan_result: the highest severity found and the counts. Written as null for a
     * scan_failure, whose failure_reason is written instead (and is null for a result). */
    enum qfs_severity severity;
    struct qfs_severity_counts counts;
    enum qfs_scan_failure_reason failure_reason;
    /* Set exactly when sent: the topic, the SNS Subject (printable ASCII, at most 99 characters)
     * and the MessageId SNS returned. */
    char *topic_arn;
    char *subject;
    char *sns_message_id;
    int64_t findings_sent;    /* 0 when not sent */
    int64_t findings_omitted; /* cut to stay under 256 KiB, or beyond the result's bound */
    struct qfs_deploy *deploys;
    size_t ndeploys;
    char *notified_at;
};

/* Encodes m into *json_out (the caller frees it with free()); QFS_INVALID_ARG, with the reason
 * logged, when m breaks the schema; QFS_TOO_BIG past QFS_PROTO_MAX_BYTES. */
qfs_status qfs_notification_encode(const struct qfs_notification *m, char **json_out);
/* Decodes and validates len bytes of JSON into out (cleaned up by the caller after QFS_OK, left
 * empty on failure); QFS_PROTOCOL with err naming the field. */
qfs_status qfs_notification_decode(const char *json, size_t len, struct qfs_notification *out,
                                   char *err, size_t errlen);
/* Frees every heap field and zeroes m. */
void qfs_notification_cleanup(struct qfs_notification *m);

#endif
