/* qfs-scanner-poller: submits a Qualys scan for each scan-ready message and follows it to its end.
 *
 * Timers are messages (ARCHITECTURE.md §3): one delivery is one check of the scan, and a check that
 * finds it unfinished asks for redelivery after the poll delay. Nothing about a scan lives only in
 * memory: the submission is recorded in the cache store (submission:<K>#<G>) before the schedule
 * is POSTed, and the number of checks is the delivery count. The rules (delays, the timeout, what
 * a Qualys answer means, the messages) are pure functions; poller_check runs one check over ports
 * (the store, Qualys, ECR) that unit tests replace. */
#ifndef QFS_POLLER_H
#define QFS_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/bus.h"
#include "qfs/proto.h"
#include "qfs/proto_scan.h"
#include "qfs/qualys.h"
#include "qfs/status.h"

struct qfs_kv;

/* ---- when to check --------------------------------------------------------------------------- */

#define POLLER_MAX_FIRST_DELAYS 8
#define POLLER_MAX_DELAY_S 86400

struct poller_schedule {
    int64_t interval_s;                          /* QFS_POLL_INTERVAL_SECONDS */
    int64_t first_s[POLLER_MAX_FIRST_DELAYS];    /* QFS_POLL_FIRST_DELAYS */
    size_t nfirst;
    int64_t max_checks;                          /* QFS_MAX_POLL_ATTEMPTS */
};

/* Reads "5,10,20" (seconds, 1..POLLER_MAX_DELAY_S each, at most POLLER_MAX_FIRST_DELAYS; "" for
 * none) into s->first_s. QFS_PROTOCOL, with the reason in err, for anything else. */
qfs_status poller_parse_first_delays(const char *text, struct poller_schedule *s, char *err,
                                     size_t errlen);
/* How long to wait after check n (1 = the first) before the next one: the n-th first delay while
 * there is one, capped by the interval; then the interval. */
int64_t poller_delay_ms(const struct poller_schedule *s, uint64_t n);
/* True when check n is the last one allowed: a scan still unfinished then has timed out. */
bool poller_is_last_check(const struct poller_schedule *s, uint64_t n);
/* Seconds from the first check to the last: how long a scan may be followed. */
int64_t poller_span_s(const struct poller_schedule *s);

/* ---- what a Qualys answer means -------------------------------------------------------------- */

enum poller_answer {
    POLLER_ANSWER_OK,      /* the call did what was asked */
    POLLER_ANSWER_RETRY,   /* it did not, but may later: check again after the poll delay */
    POLLER_ANSWER_UNKNOWN, /* a POST that may have been applied: never repeat it, keep polling */
    POLLER_ANSWER_REFUSED  /* Qualys refused for good: the scan fails with *reason */
};

/* Classifies a call's status and HTTP code. 403 → refused (qualys_denied); other 4xx → refused
 * (qualys_rejected), except 401 and 429 (not applied: retry), 408 and 409 (may be applied), and 404
 * on a GET (the image is not known yet: retry). Any 2xx to a POST is OK, whatever its body said.
 * Transport errors, timeouts and 5xx: unknown for a POST, retry for a GET. */
enum poller_answer poller_classify(bool post, qfs_status st, long http_code,
                                   enum qfs_scan_failure_reason *reason);

/* ---- the submission record (submission:<K>#<G>) ---------------------------------------------- */

/* {"tag":"…","schedule_uuid":"…" or null,"submitted_at":"…"}; the caller frees it. */
char *poller_submission_encode(const char *tag, const char *schedule_uuid, int64_t now_ms);
/* The tag of a stored record, copied into tag (n bytes). QFS_PROTOCOL when the record is not one
 * or its tag could not be sent to Qualys. */
qfs_status poller_submission_tag(const char *json, size_t len, char *tag, size_t n);

/* The tag to submit for an image ECR knows only by these tags: the first valid one that is not
 * "latest" (tags move), else "latest", else NULL (the digest is untagged). Borrowed from tags. */
const char *poller_pick_tag(char *const *tags, size_t n);

/* ---- the messages ---------------------------------------------------------------------------- */

/* The deploys of the outcome: a's, then b's whose event id is not already there, at most
 * QFS_PROTO_MAX_DEPLOYS. *out (deep copies) is the caller's (qfs_deploys_free). */
void poller_merge_deploys(const struct qfs_deploy *a, size_t na, const struct qfs_deploy *b,
                          size_t nb, struct qfs_deploy **out, size_t *n);

/* Builds the scan result of ready from Qualys's image sha and vulnerability report: counts by
 * severity, total (their sum), patchable (at most total), the top_n most severe findings (at most
 * QFS_SCAN_MAX_FINDINGS; findings without a qid are counted but not listed), scanned_at (the
 * image's lastScanned, else now_ms) and deploys (borrowed; copied). out is the caller's
 * (qfs_scan_result_cleanup). */
void poller_build_result(const struct qfs_scan_ready *ready, const char *sha, int64_t scanned_ms,
                         const struct qfs_qualys_vuln_report *rep, size_t top_n,
                         const struct qfs_deploy *deploys, size_t ndeploys, int64_t now_ms,
                         struct qfs_scan_result *out);

/* What went wrong, for a failure message. Strings are borrowed; empty ones become null. */
struct poller_failure {
    enum qfs_scan_failure_reason reason;
    const char *detail;
    const char *qualys_error_code;
    const char *qualys_error_message;
    int64_t checks;
};
/* Builds the failure message of ready (deploys borrowed; copied). out is the caller's
 * (qfs_scan_failure_cleanup). */
void poller_build_failure(const struct qfs_scan_ready *ready, const struct poller_failure *f,
                          const struct qfs_deploy *deploys, size_t ndeploys, int64_t now_ms,
                          struct qfs_scan_failure *out);

/* Adds the outcome to ob: a result on qfs.scans.completed.<acct>.<region> or a failure on
 * qfs.scans.failed.<acct>.<region>, both with Nats-Msg-Id outcome:<K>#<G>. QFS_INTERNAL when
 * the message does not encode (a bug; logged by the codec). */
qfs_status poller_add_result(struct qfs_outbox *ob, const struct qfs_scan_result *r);
qfs_status poller_add_failure(struct qfs_outbox *ob, const struct qfs_scan_failure *f);

/* The keys of a scan in the store: submission:<K>#<G> and deploys:<K>#<G>. QFS_INTERNAL for an
 * image without a key (the decoder never lets one through). */
qfs_status poller_store_key(const char *what, const struct qfs_scan_request *req, char *out,
                            size_t n);

/* ---- one check over ports -------------------------------------------------------------------- */

/* Qualys: the three calls the poller makes, with the signatures of qfs_qualys_create_schedule,
 * qfs_qualys_find_image and qfs_qualys_image_vulns (impl in place of the client). */
struct poller_qualys_port {
    void *impl;
    qfs_status (*create_schedule)(void *impl, const char *registry_uuid, const char *repository,
                                  const char *tag, const char *name, qfs_qualys_done_fn cb,
                                  void *arg);
    qfs_status (*find_image)(void *impl, const char *registry_host, const char *repository,
                             const char *tag, const char *manifest_digest, qfs_qualys_done_fn cb,
                             void *arg);
    qfs_status (*image_vulns)(void *impl, const char *sha, qfs_qualys_done_fn cb, void *arg);
};

/* The answer of a tag lookup: st QFS_OK with tag (borrowed for the call), or with tag NULL when
 * the image has no tag; QFS_NOT_FOUND when ECR has no such image; QFS_DENIED (detail says why);
 * a retryable status. */
typedef void (*poller_tag_fn)(void *arg, qfs_status st, const char *tag, const char *detail);

/* ECR: a tag that points at a digest-only image (account, region, repository and digest of img,
 * copied). Returns QFS_OK and calls cb later, or a failure and never calls cb. */
struct poller_ecr_port {
    void *impl;
    qfs_status (*find_tag)(void *impl, const struct qfs_image_id *img, poller_tag_fn cb, void *arg);
};

/* What poller_check needs; borrowed, and alive until every check has ended. */
struct poller_deps {
    struct qfs_kv *kv;
    struct poller_qualys_port qualys;
    struct poller_ecr_port ecr;
    struct poller_schedule schedule;
    size_t top_findings;       /* QFS_SCAN_TOP_FINDINGS */
    int64_t submission_ttl_s;  /* how long submission records live */
    bool stopping;             /* set when the clients are being freed: checks end at once */
};

enum poller_verdict {
    POLLER_PUBLISH,    /* outbox holds the outcome; acknowledge once it is stored */
    POLLER_RETRY,      /* check again after delay_ms */
    POLLER_DEAD_LETTER /* a bug: the message cannot be handled */
};

/* How a check ended; borrowed for the callback (the outbox's items may be taken). */
struct poller_outcome {
    enum poller_verdict verdict;
    struct qfs_outbox *outbox;  /* PUBLISH */
    const char *what;           /* PUBLISH: "completed" or the failure reason */
    int64_t delay_ms;           /* RETRY */
    qfs_status status;          /* RETRY, DEAD_LETTER: why */
    const char *reason;
};

typedef void (*poller_done_fn)(void *arg, const struct poller_outcome *o);

/* Runs check number `check` (the delivery count) of the scan ready (taken: the check frees it).
 * cb runs exactly once, possibly inside this call. */
void poller_check(struct poller_deps *deps, struct qfs_scan_ready *ready, uint64_t check,
                  poller_done_fn cb, void *arg);

/* ---- the real ports (ports.c) ---------------------------------------------------------------- */

struct qfs_aws;
struct qfs_aws_sts;

/* The Qualys port over a client (borrowed). */
void poller_qualys_port_init(struct poller_qualys_port *p, struct qfs_qualys *q);

/* ECR DescribeImages in the image's account: with our own credentials in hub_account, else through
 * arn:<partition>:iam::<account>:role/<role_name> (as the parser does). All borrowed. */
struct poller_ecr {
    struct qfs_aws *aws;
    struct qfs_aws_sts *sts;
    const char *hub_account; /* NULL: always assume the role */
    const char *role_name;
};
void poller_ecr_port_init(struct poller_ecr_port *p, struct poller_ecr *ecr);

#endif
