/* The work of qfs-notifier for one message, step by step over the cache store and SNS:
 *
 *   outcome: get notified:<K>#<G> -> [get findings:<repo>] -> decide -> [get skips:<event id> for
 *            each deploy -> build -> SNS Publish -> put notified:<K>#<G>] -> put findings:<repo>
 *            -> the notification record
 *   skip:    append to skips:<event id>
 *
 * Each step runs in the callback of the one before; the job is freed when it ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/util.h"

struct job {
    const struct notifier_deps *deps; /* borrowed: its ports are NULL while closing */
    struct notifier_outcome o;
    notifier_done_fn cb;
    void *arg;
    struct notifier_keys keys;
    bool already_sent;  /* notified:<K>#<G> was there: SNS has the message */
    char *message_id;   /* from that marker or from SNS */
    struct notifier_qids prev;
    bool have_prev;
    struct notifier_decision dec;
    struct notifier_not_scanned ns;
    size_t next_deploy; /* the deploy whose skips are read next */
    struct notifier_message msg;
    char subject[QFS_SNS_MAX_SUBJECT + 1];
    char notified_at[32];
    char reason[512];
    struct qfs_outbox ob;
};

bool notifier_status_is_retryable(qfs_status st)
{
    return st == QFS_UNAVAILABLE || st == QFS_TIMED_OUT || st == QFS_DENIED || st == QFS_NOT_FOUND;
}

static void job_end(struct job *j, qfs_status st, const char *reason)
{
    j->cb(j->arg, st, st == QFS_OK ? NULL : reason, st == QFS_OK ? &j->ob : NULL);
    qfs_outbox_cleanup(&j->ob);
    notifier_outcome_cleanup(&j->o);
    free(j->message_id);
    notifier_qids_cleanup(&j->prev);
    notifier_not_scanned_cleanup(&j->ns);
    notifier_message_cleanup(&j->msg);
    free(j);
}

static void fail_store(struct job *j, qfs_status st, const char *what)
{
    snprintf(j->reason, sizeof(j->reason), "cache store: %s: %s", what, qfs_status_str(st));
    job_end(j, st, j->reason);
}

/* SNS MessageIds are UUIDs; the record accepts [A-Za-z0-9-]{1,100}: anything else becomes '-'. */
static char *clean_message_id(const char *id, size_t len)
{
    if (len > 100) len = 100;
    char *out = qfs_xstrndup(id, len);
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '-';
    return out;
}

static bool message_id_is_valid(const char *id, size_t len)
{
    if (len == 0 || len > 100) return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* The store's calls, failing with QFS_UNAVAILABLE once the service closes it. */
static qfs_status kv_get(struct job *j, const char *key, qfs_kv_fn cb)
{
    return j->deps->kv ? qfs_kv_get(j->deps->kv, key, cb, j) : QFS_UNAVAILABLE;
}

static qfs_status kv_get_list(struct job *j, const char *key, qfs_kv_fn cb)
{
    return j->deps->kv ? qfs_kv_get_list(j->deps->kv, key, cb, j) : QFS_UNAVAILABLE;
}

static qfs_status kv_put(struct job *j, const char *key, const char *value, int64_t ttl_s,
                         qfs_kv_fn cb)
{
    return j->deps->kv ? qfs_kv_put(j->deps->kv, key, value, strlen(value), ttl_s, cb, j)
                       : QFS_UNAVAILABLE;
}

static void step_decide(struct job *j);
static void step_skips(struct job *j);
static void step_findings(struct job *j);
static void step_record(struct job *j);

/* ---- notified:<K>#<G> and the repository's previous findings --------------------------------- */

static void on_prev(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status == QFS_OK) {
        j->have_prev = notifier_qids_parse(r->value, r->len, &j->prev) == QFS_OK;
        if (!j->have_prev)
            qfs_warn("ignoring malformed previous findings", "key", j->keys.findings);
    } else if (r->status != QFS_NOT_FOUND) {
        fail_store(j, r->status, "reading the previous findings");
        return;
    }
    step_decide(j);
}

static void on_notified(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status == QFS_OK) {
        if (message_id_is_valid(r->value, r->len)) {
            j->already_sent = true;
            j->message_id = qfs_xstrndup(r->value, r->len);
        } else {
            qfs_warn("ignoring a malformed notified marker", "key", j->keys.notified);
        }
    } else if (r->status != QFS_NOT_FOUND) {
        fail_store(j, r->status, "reading the notified marker");
        return;
    }
    if (j->o.source == QFS_NOTIFY_SOURCE_SCAN_RESULT && !j->already_sent && j->deps->rules->new_only) {
        qfs_status s = kv_get(j, j->keys.findings, on_prev);
        if (s != QFS_OK) fail_store(j, s, "reading the previous findings");
        return;
    }
    step_decide(j);
}

static void step_decide(struct job *j)
{
    const struct notifier_rules *rules = j->deps->rules;
    if (j->already_sent) {
        /* SNS has it: the record says so again (the previous findings may have moved on since). */
        j->dec = (struct notifier_decision){
            .send = true,
            .reason = j->o.source == QFS_NOTIFY_SOURCE_SCAN_FAILURE ? QFS_NOTIFY_SCAN_FAILURE
                      : rules->new_only                              ? QFS_NOTIFY_NEW_FINDINGS
                                                                     : QFS_NOTIFY_MIN_SEVERITY_MET};
    } else {
        j->dec = notifier_decide(rules, &j->o, j->have_prev ? &j->prev : NULL);
    }
    int64_t now = j->deps->now_ms ? j->deps->now_ms() : qfs_now_ms();
    qfs_format_time_ms(now, j->notified_at);
    if (j->dec.send) {
        j->next_deploy = 0;
        step_skips(j);
    } else {
        step_findings(j);
    }
}

/* ---- the not-scanned images of the deploys ------------------------------------------------- */

static void step_build(struct job *j);

static void on_skips(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    size_t n;
    const struct qfs_deploy *deploys = notifier_outcome_deploys(&j->o, &n);
    const char *event_id = deploys[j->next_deploy - 1].event_id;
    if (r->status == QFS_OK) {
        notifier_not_scanned_add(&j->ns, event_id, r->items, r->lens, r->n);
    } else if (r->status != QFS_NOT_FOUND) {
        fail_store(j, r->status, "reading the skips of a deploy");
        return;
    }
    step_skips(j);
}

static void step_skips(struct job *j)
{
    size_t n;
    const struct qfs_deploy *deploys = notifier_outcome_deploys(&j->o, &n);
    while (j->next_deploy < n) {
        size_t i = j->next_deploy++;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(deploys[k].event_id, deploys[i].event_id) == 0;
        if (seen) continue;
        char key[QFS_KV_MAX_KEY];
        qfs_deploy_skips_key(deploys[i].event_id, key, sizeof(key));
        qfs_status s = kv_get_list(j, key, on_skips);
        if (s != QFS_OK) fail_store(j, s, "reading the skips of a deploy");
        return;
    }
    step_build(j);
}

/* ---- SNS ------------------------------------------------------------------------------------- */

static void on_notified_put(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK)
        qfs_warn("SNS has the message but the notified marker was not written; a redelivery would "
                 "send it again", "key", j->keys.notified, "status", qfs_status_str(r->status));
    step_findings(j);
}

static void on_published(const struct qfs_aws_response *r, const char *message_id, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK || !message_id) {
        qfs_status st = r->status == QFS_OK ? QFS_PROTOCOL : r->status;
        snprintf(j->reason, sizeof(j->reason), "SNS Publish: %s %s %s", qfs_status_str(st),
                 r->error_code, r->error_message ? r->error_message : "");
        job_end(j, st, j->reason);
        return;
    }
    j->message_id = clean_message_id(message_id, strlen(message_id));
    qfs_info("notification sent", "key", j->keys.msg_id, "sns_message_id", j->message_id,
             "subject", j->subject);
    qfs_status s = kv_put(j, j->keys.notified, j->message_id, NOTIFIER_NOTIFIED_TTL_S,
                          on_notified_put);
    if (s != QFS_OK) {
        struct qfs_kv_result fake = {.status = s};
        on_notified_put(&fake, j);
    }
}

static void step_build(struct job *j)
{
    notifier_subject(j->deps->rules, &j->o, j->subject);
    struct qfs_sns_attribute attrs[NOTIFIER_NATTRIBUTES];
    size_t na = notifier_attributes(&j->o, attrs);
    /* SNS counts the attributes into its 256 KiB; the Subject is kept out of the room too. */
    size_t max = QFS_SNS_MAX_MESSAGE - notifier_attributes_bytes(attrs, na) - strlen(j->subject);
    qfs_status s = notifier_message_build(&j->o, &j->ns, j->notified_at, max, &j->msg);
    if (s != QFS_OK) {
        job_end(j, QFS_INTERNAL, "the SNS message could not be built");
        return;
    }
    if (j->already_sent) {
        step_findings(j);
        return;
    }
    struct qfs_sns_publish p = {
        .topic_arn = j->deps->rules->topic_arn,
        .subject = j->subject,
        .message = j->msg.json,
        .attributes = attrs,
        .nattributes = na,
    };
    s = j->deps->publish ? j->deps->publish(j->deps->publish_ctx, &p, on_published, j)
                         : QFS_UNAVAILABLE;
    if (s != QFS_OK) {
        snprintf(j->reason, sizeof(j->reason), "SNS Publish refused the message: %s",
                 qfs_status_str(s));
        job_end(j, s == QFS_UNAVAILABLE ? s : QFS_INTERNAL, j->reason);
    }
}

/* ---- the repository's findings and the record ------------------------------------------------ */

static void on_findings_put(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK) {
        if (!j->dec.send) {
            /* Nothing went out yet: try the whole outcome again rather than lose the update. */
            fail_store(j, r->status, "writing the repository's findings");
            return;
        }
        qfs_warn("the repository's findings were not updated", "key", j->keys.findings, "status",
                 qfs_status_str(r->status));
    }
    step_record(j);
}

static void step_findings(struct job *j)
{
    if (j->o.source != QFS_NOTIFY_SOURCE_SCAN_RESULT) {
        step_record(j);
        return;
    }
    char *qids = notifier_qids_format(&j->o.result);
    qfs_status s = kv_put(j, j->keys.findings, qids, NOTIFIER_FINDINGS_TTL_S, on_findings_put);
    free(qids);
    if (s != QFS_OK) {
        struct qfs_kv_result fake = {.status = s};
        on_findings_put(&fake, j);
    }
}

static void step_record(struct job *j)
{
    qfs_status s = notifier_record(j->deps->rules, &j->o, &j->dec, j->dec.send ? j->subject : NULL,
                                   j->message_id, j->dec.send ? &j->msg : NULL, j->notified_at,
                                   &j->ob);
    if (s != QFS_OK) {
        job_end(j, QFS_INTERNAL, "the notification record could not be encoded");
        return;
    }
    job_end(j, QFS_OK, NULL);
}

void notifier_handle_outcome(const struct notifier_deps *deps, struct notifier_outcome *o,
                             notifier_done_fn cb, void *arg)
{
    struct job *j = qfs_xcalloc(1, sizeof(*j));
    j->deps = deps;
    j->o = *o;
    memset(o, 0, sizeof(*o));
    j->cb = cb;
    j->arg = arg;
    qfs_outbox_init(&j->ob);
    if (notifier_keys_of(&j->o, &j->keys) != QFS_OK) {
        job_end(j, QFS_PROTOCOL, "the image has no usable key");
        return;
    }
    qfs_status s = kv_get(j, j->keys.notified, on_notified);
    if (s != QFS_OK) fail_store(j, s, "reading the notified marker");
}
