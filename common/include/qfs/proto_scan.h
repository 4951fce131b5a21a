/* The scan messages: request (qfs.scan_request.v1), ready (qfs.scan_ready.v1), result
 * (qfs.scan_result.v1) and failure (qfs.scan_failure.v1), with severities and findings. */
#ifndef QFS_PROTO_SCAN_H
#define QFS_PROTO_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/proto.h"

#define QFS_SCAN_MAX_FINDINGS 50
#define QFS_SCAN_MAX_CVES 64

/* Qualys severities: 5 is the most severe. NONE means "nothing found". */
enum qfs_severity {
    QFS_SEVERITY_NONE = 0,
    QFS_SEVERITY_INFO = 1,
    QFS_SEVERITY_LOW = 2,
    QFS_SEVERITY_MEDIUM = 3,
    QFS_SEVERITY_HIGH = 4,
    QFS_SEVERITY_CRITICAL = 5
};

/* "critical", "high", "medium", "low", "info" or "none"; NULL out of range. */
const char *qfs_severity_str(enum qfs_severity s);
/* Parses one of the names above; false for anything else. */
bool qfs_severity_parse(const char *name, enum qfs_severity *out);

struct qfs_severity_counts {
    int64_t critical, high, medium, low, info;
};
/* The highest severity with a non-zero count, or QFS_SEVERITY_NONE. */
enum qfs_severity qfs_severity_counts_max(const struct qfs_severity_counts *c);

struct qfs_finding {
    int64_t qid;
    char *title;
    int severity; /* 1..5 */
    char **cves;  /* "CVE-YYYY-NNNN...", at most QFS_SCAN_MAX_CVES */
    size_t ncves;
    char *package;           /* NULL when unknown */
    char *installed_version; /* NULL when unknown */
    char *fixed_version;     /* NULL when no fix is known */
};
/* Orders findings as messages require: most severe first, ties by ascending qid. */
void qfs_scan_findings_sort(struct qfs_finding *findings, size_t n);
void qfs_finding_cleanup(struct qfs_finding *f);

/* What a finished scan found, without findings (a cached result in a skip record). */
struct qfs_scan_summary {
    char *qualys_image_sha; /* 64 lower-case hex digits */
    struct qfs_severity_counts counts;
    int64_t total;     /* the sum of counts */
    int64_t patchable; /* at most total */
    char *scanned_at;
};
void qfs_scan_summary_cleanup(struct qfs_scan_summary *s);

struct qfs_scan_request {
    struct qfs_image_id image;
    int64_t generation; /* >= 1; see proto/subjects.md */
    char *requested_at;
    bool cache_fail_open;
    struct qfs_deploy *deploys; /* 1..QFS_PROTO_MAX_DEPLOYS, the requesting deploy first */
    size_t ndeploys;
};

struct qfs_scan_ready {
    struct qfs_scan_request request;
    char *registry_uuid;
};

struct qfs_scan_result {
    struct qfs_image_id image;
    int64_t generation;
    char *registry_uuid;
    char *qualys_image_sha;
    struct qfs_severity_counts counts;
    int64_t total;     /* the sum of counts */
    int64_t patchable; /* at most total */
    struct qfs_finding *findings; /* ordered (qfs_scan_findings_sort), at most
                                     min(total, QFS_SCAN_MAX_FINDINGS) */
    size_t nfindings;
    char *scanned_at;
    struct qfs_deploy *deploys;
    size_t ndeploys;
};

enum qfs_scan_failure_reason {
    QFS_SCAN_FAILURE_TIMEOUT,         /* not finished after QFS_MAX_POLL_ATTEMPTS checks */
    QFS_SCAN_FAILURE_SCAN_FAILED,     /* Qualys reported the scan failed */
    QFS_SCAN_FAILURE_UNTAGGED_DIGEST, /* known only by a digest no tag points at */
    QFS_SCAN_FAILURE_REGISTRY_FAILED, /* no Qualys registry could be found or created */
    QFS_SCAN_FAILURE_QUALYS_DENIED,   /* Qualys answered 403 */
    QFS_SCAN_FAILURE_QUALYS_REJECTED, /* Qualys refused the request (other 4xx) */
    QFS_SCAN_FAILURE_IMAGE_NOT_FOUND, /* the image is gone from ECR */
    QFS_SCAN_FAILURE_REASON_COUNT
};
const char *qfs_scan_failure_reason_str(enum qfs_scan_failure_reason r);
bool qfs_scan_failure_reason_parse(const char *name, enum qfs_scan_failure_reason *out);

struct qfs_scan_failure {
    struct qfs_image_id image;
    int64_t generation;
    char *registry_uuid; /* NULL when no registry was found or created */
    enum qfs_scan_failure_reason reason;
    char *detail;               /* NULL or text */
    char *qualys_error_code;    /* Qualys errorCode or scanErrorCode, NULL when none */
    char *qualys_error_message; /* NULL when none */
    int64_t poll_attempts;
    char *failed_at;
    struct qfs_deploy *deploys;
    size_t ndeploys;
};

/* Encoders write JSON into *json_out (the caller frees it with free()); QFS_INVALID_ARG, with the
 * reason logged, when the struct breaks the schema (a bug in the caller); QFS_TOO_BIG past
 * QFS_PROTO_MAX_BYTES. Decoders validate len bytes of JSON into out (the caller cleans it up after
 * QFS_OK; on failure it is left empty) or return QFS_PROTOCOL with err naming the field. Cleanup
 * frees every heap field and zeroes the struct. */
qfs_status qfs_scan_request_encode(const struct qfs_scan_request *m, char **json_out);
qfs_status qfs_scan_request_decode(const char *json, size_t len, struct qfs_scan_request *out,
                                   char *err, size_t errlen);
void qfs_scan_request_cleanup(struct qfs_scan_request *m);

qfs_status qfs_scan_ready_encode(const struct qfs_scan_ready *m, char **json_out);
qfs_status qfs_scan_ready_decode(const char *json, size_t len, struct qfs_scan_ready *out,
                                 char *err, size_t errlen);
void qfs_scan_ready_cleanup(struct qfs_scan_ready *m);

qfs_status qfs_scan_result_encode(const struct qfs_scan_result *m, char **json_out);
qfs_status qfs_scan_result_decode(const char *json, size_t len, struct qfs_scan_result *out,
                                  char *err, size_t errlen);
void qfs_scan_result_cleanup(struct qfs_scan_result *m);

qfs_status qfs_scan_failure_encode(const struct qfs_scan_failure *m, char **json_out);
qfs_status qfs_scan_failure_decode(const char *json, size_t len, struct qfs_scan_failure *out,
                                   char *err, size_t errlen);
void qfs_scan_failure_cleanup(struct qfs_scan_failure *m);

#endif
