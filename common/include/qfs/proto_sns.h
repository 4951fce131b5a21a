/* The SNS message body (qfs.sns_message.v1): what subscribers of the notification topic read about
 * one scan outcome. Not a bus message; proto/sns_message.schema.json is the contract. */
#ifndef QFS_PROTO_SNS_H
#define QFS_PROTO_SNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/proto.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"

/* At most this many not-scanned images are listed; the rest are counted. */
#define QFS_SNS_MAX_NOT_SCANNED 100

enum qfs_sns_outcome { QFS_SNS_COMPLETED, QFS_SNS_FAILED, QFS_SNS_OUTCOME_COUNT };

/* "completed" or "failed"; NULL out of range. */
const char *qfs_sns_outcome_str(enum qfs_sns_outcome o);

/* Why a failed scan failed: the fields of the scan failure message. */
struct qfs_sns_failure {
    enum qfs_scan_failure_reason reason;
    char *detail;               /* NULL or text */
    char *qualys_error_code;    /* NULL when none */
    char *qualys_error_message; /* NULL when none */
    int64_t poll_attempts;
    char *failed_at;
};

/* An image of one of the deploys that was not scanned (from a skip record of the parser). */
struct qfs_sns_not_scanned {
    char *event_id;
    enum qfs_skip_reason reason; /* never QFS_SKIP_CACHED or QFS_SKIP_IN_FLIGHT */
    char *image;                 /* as written; NULL when no one image is concerned */
    char *detail;                /* NULL or text */
    char **containers;
    size_t ncontainers;
};

struct qfs_sns_message {
    enum qfs_sns_outcome outcome;
    struct qfs_image_id image;
    int64_t generation;
    /* QFS_SNS_COMPLETED: summary (severity is written as the counts' highest level) and the
     * findings, ordered as in a scan result; findings_omitted = summary.total - nfindings. */
    struct qfs_scan_summary summary;
    struct qfs_finding *findings;
    size_t nfindings;
    int64_t findings_omitted;
    /* QFS_SNS_FAILED: why (severity is written as "failure", and there are no findings). */
    struct qfs_sns_failure failure;
    struct qfs_deploy *deploys; /* 1..QFS_PROTO_MAX_DEPLOYS */
    size_t ndeploys;
    int64_t deploys_omitted;
    struct qfs_sns_not_scanned *not_scanned; /* 0..QFS_SNS_MAX_NOT_SCANNED */
    size_t nnot_scanned;
    int64_t not_scanned_omitted;
    char *note; /* NULL, or what was cut to stay under 256 KiB */
    char *notified_at;
};

/* The value of the severity field and SNS attribute: the counts' highest level ("none" when
 * nothing was found) for a completed scan, "failure" for a failed one. */
const char *qfs_sns_message_severity(const struct qfs_sns_message *m);

/* Encodes m into *json_out (the caller frees it with free()); QFS_INVALID_ARG, with the reason
 * logged, when m breaks the schema; QFS_TOO_BIG past QFS_PROTO_MAX_BYTES. The 256 KiB SNS bound is
 * the caller's to keep (cut findings, not-scanned images or deploys, and count them). */
qfs_status qfs_sns_message_encode(const struct qfs_sns_message *m, char **json_out);
/* Decodes and validates len bytes of JSON into out (cleaned up by the caller after QFS_OK, left
 * empty on failure); QFS_PROTOCOL with err naming the field. */
qfs_status qfs_sns_message_decode(const char *json, size_t len, struct qfs_sns_message *out,
                                  char *err, size_t errlen);
/* Frees every heap field and zeroes m. */
void qfs_sns_message_cleanup(struct qfs_sns_message *m);
void qfs_sns_not_scanned_cleanup(struct qfs_sns_not_scanned *n);

#endif
