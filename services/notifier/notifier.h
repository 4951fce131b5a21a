/* qfs-notifier: turns scan outcomes into SNS messages people act on, and records every decision.
 *
 * The rules are pure (notifier.c): whether an outcome is worth a message, its Subject, its body
 * (qfs.sns_message.v1, never over 256 KiB), its message attributes and the notification record.
 * The work for one message, reading and writing the cache store and publishing to SNS, runs
 * asynchronously through ports (notify.c), so that unit tests drive it with fakes. */
#ifndef QFS_NOTIFIER_H
#define QFS_NOTIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/aws_sns.h"
#include "qfs/bus.h"
#include "qfs/proto.h"
#include "qfs/proto_notification.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/proto_sns.h"
#include "qfs/status.h"

struct qfs_kv;

/* How long the store keeps what the notifier writes (services/DESIGN.md). */
#define NOTIFIER_NOTIFIED_TTL_S (7LL * 86400)
#define NOTIFIER_FINDINGS_TTL_S (90LL * 86400)
/* The message attributes: severity, account, region, repository. */
#define NOTIFIER_NATTRIBUTES 4

/* What is worth a notification (the QFS_NOTIFY_* settings) and where it goes. */
struct notifier_rules {
    const char *topic_arn;
    enum qfs_severity min_severity; /* QFS_SEVERITY_INFO..QFS_SEVERITY_CRITICAL */
    bool new_only;                  /* only findings the repository's previous scan did not have */
    bool notify_failures;
};

/* True for an SNS topic ARN the notification record accepts. */
bool notifier_topic_arn_is_valid(const char *arn);

/* One scan outcome: a completed scan (source QFS_NOTIFY_SOURCE_SCAN_RESULT, result set) or a
 * failed one (QFS_NOTIFY_SOURCE_SCAN_FAILURE, failure set). */
struct notifier_outcome {
    enum qfs_notify_source source;
    struct qfs_scan_result result;
    struct qfs_scan_failure failure;
};
void notifier_outcome_cleanup(struct notifier_outcome *o);
const struct qfs_image_id *notifier_outcome_image(const struct notifier_outcome *o);
int64_t notifier_outcome_generation(const struct notifier_outcome *o);
const struct qfs_deploy *notifier_outcome_deploys(const struct notifier_outcome *o, size_t *n);

/* The cache keys and Nats-Msg-Id of one outcome (K is the image key, G the generation). */
struct notifier_keys {
    char notified[QFS_IMAGE_KEY_MAX + 48]; /* notified:<K>#<G> */
    char findings[QFS_IMAGE_KEY_MAX + 16]; /* findings:<registry>/<repository> */
    char msg_id[QFS_IMAGE_KEY_MAX + 48];   /* notify:<K>#<G> */
};
/* QFS_INVALID_ARG when the image has no key (a decoded outcome always has one). */
qfs_status notifier_keys_of(const struct notifier_outcome *o, struct notifier_keys *k);

/* ---- the decision ---------------------------------------------------------------------------- */

/* The QIDs of a repository's previous completed scan, as stored under findings:<repo>. */
struct notifier_qids {
    int64_t *v;
    size_t n;
};
/* Parses the stored JSON array of positive integers (at most 1000) into out (freed with
 * notifier_qids_cleanup). QFS_PROTOCOL for anything else. */
qfs_status notifier_qids_parse(const char *json, size_t len, struct notifier_qids *out);
void notifier_qids_cleanup(struct notifier_qids *q);
/* The QIDs of r's findings as the stored JSON array, ascending and distinct (caller frees). */
char *notifier_qids_format(const struct qfs_scan_result *r);

struct notifier_decision {
    bool send;
    enum qfs_notify_reason reason; /* every decision is recorded, sent or not */
};
/* A completed scan is sent when its highest severity reaches rules->min_severity; with new_only,
 * only when a finding at or above it is not in prev (NULL: no previous scan known, so everything
 * is new). A failure is sent unless rules->notify_failures is off. */
struct notifier_decision notifier_decide(const struct notifier_rules *rules,
                                         const struct notifier_outcome *o,
                                         const struct notifier_qids *prev);

/* ---- what SNS gets --------------------------------------------------------------------------- */

/* The Subject: printable ASCII, at most QFS_SNS_MAX_SUBJECT characters, never a line break, e.g.
 * "qfs: 2C/5H web:1.4.2 in 111122223333/eu-west-1" or
 * "qfs: scan failed (timeout) web:1.4.2 in 111122223333/eu-west-1". Every character of the
 * repository and tag outside [A-Za-z0-9._/-] becomes '?'; a long reference is cut with "...". */
void notifier_subject(const struct notifier_rules *rules, const struct notifier_outcome *o,
                      char out[QFS_SNS_MAX_SUBJECT + 1]);

/* Fills out with the message attributes severity (the highest found, "none", or "failure"),
 * account, region and repository, all of type String; values borrow from o. Returns the count. */
size_t notifier_attributes(const struct notifier_outcome *o,
                           struct qfs_sns_attribute out[NOTIFIER_NATTRIBUTES]);
/* Bytes the attributes count towards the SNS message limit (names, types and values). */
size_t notifier_attributes_bytes(const struct qfs_sns_attribute *a, size_t n);

/* The images of the outcome's deploys that were not scanned, gathered from the skip lists. */
struct notifier_not_scanned {
    struct qfs_sns_not_scanned *v; /* at most QFS_SNS_MAX_NOT_SCANNED */
    size_t n;
    int64_t omitted; /* beyond the bound */
};
/* Adds the skip records of one deploy event (items as stored under skips:<event_id>; records of
 * other events, undecodable ones and repeats are ignored). */
void notifier_not_scanned_add(struct notifier_not_scanned *l, const char *event_id,
                              const char *const *items, const size_t *lens, size_t n);
void notifier_not_scanned_cleanup(struct notifier_not_scanned *l);

/* A built SNS message. */
struct notifier_message {
    char *json; /* the Message: qfs.sns_message.v1 */
    size_t len;
    int64_t findings_sent;    /* findings listed */
    int64_t findings_omitted; /* found but not listed */
};
/* Builds the message for o, listing ns (borrowed), with notified_at, in at most max_bytes: when
 * the whole does not fit, the least severe findings are left out first, then not-scanned images,
 * then deploys (one always stays), each counted and named in the note. QFS_INVALID_ARG when o
 * cannot be encoded (a bug, logged); QFS_TOO_BIG when even the smallest form is over max_bytes. */
qfs_status notifier_message_build(const struct notifier_outcome *o,
                                  const struct notifier_not_scanned *ns, const char *notified_at,
                                  size_t max_bytes, struct notifier_message *out);
void notifier_message_cleanup(struct notifier_message *m);

/* ---- what is stored and recorded ------------------------------------------------------------- */


/* Adds the notification record of o to ob: sent (with subject, message_id and msg's counts) or
 * not sent (dec's reason), on qfs.notifications.<account>.<region> with Nats-Msg-Id
 * notify:<K>#<G>. QFS_INVALID_ARG when the record cannot be encoded (logged). */
qfs_status notifier_record(const struct notifier_rules *rules, const struct notifier_outcome *o,
                           const struct notifier_decision *dec, const char *subject,
                           const char *message_id, const struct notifier_message *msg,
                           const char *notified_at, struct qfs_outbox *ob);

/* ---- the work for one message (notify.c) ----------------------------------------------------- */

/* Publishes p to SNS like qfs_sns_publish (the real port), calling cb later exactly once when it
 * returns QFS_OK. */
typedef qfs_status (*notifier_publish_fn)(void *ctx, const struct qfs_sns_publish *p,
                                          qfs_sns_publish_fn cb, void *arg);

/* What the work needs. The struct and every pointer are borrowed and must outlive the jobs; a
 * service that closes its clients under running jobs first sets kv and publish to NULL, and the
 * steps that need them then fail with QFS_UNAVAILABLE. */
struct notifier_deps {
    struct qfs_kv *kv;
    const struct notifier_rules *rules;
    notifier_publish_fn publish;
    void *publish_ctx;
    int64_t (*now_ms)(void); /* NULL: qfs_now_ms */
};

/* Called once when a job ends. QFS_OK: ob holds the messages to publish before the input is
 * acknowledged (possibly none); the callee takes them (e.g. qfs_delivery_finish), and what it
 * leaves is freed after the call. Otherwise reason says why: notifier_status_is_retryable(st)
 * decides between trying the input again later and the dead-letter queue. */
typedef void (*notifier_done_fn)(void *arg, qfs_status st, const char *reason,
                                 struct qfs_outbox *ob);

/* True for the failures that may pass (the store or SNS unreachable, throttled, denied, the
 * topic not found): the input is tried again later. */
bool notifier_status_is_retryable(qfs_status st);

/* Handles one outcome (taken: the job frees it): unless notified:<K>#<G> says SNS has it already,
 * decide and publish to SNS; then write notified:<K>#<G> and findings:<repo>, and produce the
 * notification record. */
void notifier_handle_outcome(const struct notifier_deps *deps, struct notifier_outcome *o,
                             notifier_done_fn cb, void *arg);

#endif
