/* The notification record codec (qfs.notification.v1). */
#include "qfs/proto_notification.h"

#include <stdlib.h>
#include <string.h>

#include "qfs/proto_codec.h"

static const char *const decision_names[QFS_NOTIFY_DECISION_COUNT] = {
    [QFS_NOTIFY_SENT] = "sent",
    [QFS_NOTIFY_NOT_SENT] = "not_sent",
};

static const char *const reason_names[QFS_NOTIFY_REASON_COUNT] = {
    [QFS_NOTIFY_MIN_SEVERITY_MET] = "min_severity_met",
    [QFS_NOTIFY_NEW_FINDINGS] = "new_findings",
    [QFS_NOTIFY_SCAN_FAILURE] = "scan_failure",
    [QFS_NOTIFY_BELOW_MIN_SEVERITY] = "below_min_severity",
    [QFS_NOTIFY_NO_NEW_FINDINGS] = "no_new_findings",
    [QFS_NOTIFY_FAILURES_DISABLED] = "failures_disabled",
};

static const char *const source_names[QFS_NOTIFY_SOURCE_COUNT] = {
    [QFS_NOTIFY_SOURCE_SCAN_RESULT] = "scan_result",
    [QFS_NOTIFY_SOURCE_SCAN_FAILURE] = "scan_failure",
};

const char *qfs_notify_decision_str(enum qfs_notify_decision d)
{
    return (unsigned)d < QFS_NOTIFY_DECISION_COUNT ? decision_names[d] : NULL;
}

const char *qfs_notify_reason_str(enum qfs_notify_reason r)
{
    return (unsigned)r < QFS_NOTIFY_REASON_COUNT ? reason_names[r] : NULL;
}

const char *qfs_notify_source_str(enum qfs_notify_source s)
{
    return (unsigned)s < QFS_NOTIFY_SOURCE_COUNT ? source_names[s] : NULL;
}

bool qfs_notification_topic_arn_is_valid(const char *s)
{
    if (!s || strncmp(s, "arn:aws", 7) != 0) return false;
    const char *p = s + 7;
    int n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '-') n++;
    if (n > 16 || strncmp(p + n, ":sns:", 5) != 0) return false;
    p += n + 5;
    for (n = 0; (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '-'; n++) {}
    if (n < 1 || n > 32 || p[n] != ':') return false;
    p += n + 1;
    for (n = 0; n < 12; n++)
        if (p[n] < '0' || p[n] > '9') return false;
    if (p[12] != ':') return false;
    p += 13;
    for (n = 0; (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
                (p[n] >= '0' && p[n] <= '9') || p[n] == '_' || p[n] == '-';
         n++) {}
    if (n < 1 || n > 256) return false;
    return p[n] == '\0' || strcmp(p + n, ".fifo") == 0;
}

static bool check_subject(const char *s)
{
    for (; *s; s++)
        if (*s < ' ' || *s > '~') return false;
    return true;
}

static bool check_message_id(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-'))
            return false;
    return true;
}

static const struct qfs__pd_str str_topic_arn = {1, 1024, true, qfs_notification_topic_arn_is_valid, "an SNS topic ARN"};
static const struct qfs__pd_str str_subject = {1, 99, true, check_subject, "printable ASCII"};
static const struct qfs__pd_str str_message_id = {1, 100, true, check_message_id,
                                                  "[A-Za-z0-9-]+"};

static qfs_status from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_notification *out = outp;
    static const char *const keys[] = {
        "schema", "decision", "reason", "source", QFS__IMAGE_ID_KEYS, "generation", "severity",
        "counts", "failure_reason", "topic_arn", "subject", "sns_message_id", "findings_sent",
        "findings_omitted", "deploys", "notified_at"};
    memset(out, 0, sizeof(*out));
    int decision = -1, reason = -1, source = -1, severity = -1, failure = -1;
    bool counts_null = false;
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_NOTIFICATION);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "decision", decision_names, QFS_NOTIFY_DECISION_COUNT, false,
                         &decision);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "reason", reason_names, QFS_NOTIFY_REASON_COUNT, false, &reason);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "source", source_names, QFS_NOTIFY_SOURCE_COUNT, false, &source);
    if (s == QFS_OK) s = qfs__pd_image_id(d, root, &out->image);
    if (s == QFS_OK) s = qfs__pd_int(d, root, "generation", 1, QFS__PROTO_INT_MAX, &out->generation);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "severity", qfs__severity_names, 6, true, &severity);
    if (s == QFS_OK) s = qfs__pd_counts(d, root, "counts", true, &out->counts, &counts_null);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "failure_reason", qfs__scan_failure_reason_names,
                         QFS_SCAN_FAILURE_REASON_COUNT, true, &failure);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "topic_arn", &str_topic_arn, &out->topic_arn);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "subject", &str_subject, &out->subject);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "sns_message_id", &str_message_id, &out->sns_message_id);
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "findings_sent", 0, 1000000000, &out->findings_sent);
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "findings_omitted", 0, 1000000000, &out->findings_omitted);
    if (s == QFS_OK) s = qfs__pd_deploys(d, root, &out->deploys, &out->ndeploys);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "notified_at", &qfs__str_timestamp, &out->notified_at);
    if (s == QFS_OK) {
        out->decision = (enum qfs_notify_decision)decision;
        out->reason = (enum qfs_notify_reason)reason;
        out->source = (enum qfs_notify_source)source;
        out->severity = severity < 0 ? QFS_SEVERITY_NONE : (enum qfs_severity)severity;
        out->failure_reason = failure < 0 ? 0 : (enum qfs_scan_failure_reason)failure;
    }
    /* The fields that must agree with each other. */
    bool result = source == QFS_NOTIFY_SOURCE_SCAN_RESULT;
    bool sent = decision == QFS_NOTIFY_SENT;
    if (s == QFS_OK && result && severity < 0)
        s = qfs__pd_fail(d, "severity", "null for a scan_result");
    if (s == QFS_OK && result && counts_null) s = qfs__pd_fail(d, "counts", "null for a scan_result");
    if (s == QFS_OK && result && failure >= 0)
        s = qfs__pd_fail(d, "failure_reason", "set for a scan_result");
    if (s == QFS_OK && !result && severity >= 0)
        s = qfs__pd_fail(d, "severity", "set for a scan_failure");
    if (s == QFS_OK && !result && !counts_null)
        s = qfs__pd_fail(d, "counts", "set for a scan_failure");
    if (s == QFS_OK && !result && failure < 0)
        s = qfs__pd_fail(d, "failure_reason", "null for a scan_failure");
    if (s == QFS_OK && !result && reason != QFS_NOTIFY_SCAN_FAILURE &&
        reason != QFS_NOTIFY_FAILURES_DISABLED)
        s = qfs__pd_fail(d, "reason", "must be scan_failure or failures_disabled for a scan_failure");
    if (s == QFS_OK && result && reason == QFS_NOTIFY_FAILURES_DISABLED)
        s = qfs__pd_fail(d, "reason", "failures_disabled is for a scan_failure");
    if (s == QFS_OK && sent != (reason <= QFS_NOTIFY_SCAN_FAILURE))
        s = qfs__pd_fail(d, "reason", "does not agree with decision");
    if (s == QFS_OK && sent && (!out->topic_arn || !out->subject || !out->sns_message_id))
        s = qfs__pd_fail(d, !out->topic_arn ? "topic_arn" : !out->subject ? "subject" : "sns_message_id",
                         "null while sent");
    if (s == QFS_OK && !sent && (out->topic_arn || out->subject || out->sns_message_id))
        s = qfs__pd_fail(d, out->topic_arn ? "topic_arn" : out->subject ? "subject" : "sns_message_id",
                         "set while not sent");
    if (s == QFS_OK && !sent && out->findings_sent != 0)
        s = qfs__pd_fail(d, "findings_sent", "not 0 while not sent");
    if (s != QFS_OK) qfs_notification_cleanup(out);
    return s;
}

/* qfs_notification_cleanup for qfs__pe_checked. */
static void qfs_notification_cleanup_any(void *m)
{
    qfs_notification_cleanup(m);
}

qfs_status qfs_notification_encode(const struct qfs_notification *m, char **json_out)
{
    bool result = m->source == QFS_NOTIFY_SOURCE_SCAN_RESULT;
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_NOTIFICATION));
    qfs__pe_str(root, "decision", qfs_notify_decision_str(m->decision));
    qfs__pe_str(root, "reason", qfs_notify_reason_str(m->reason));
    qfs__pe_str(root, "source", qfs_notify_source_str(m->source));
    qfs__pe_image_id(root, &m->image);
    qfs__pe_int(root, "generation", m->generation);
    qfs__pe_str(root, "severity", result ? qfs_severity_str(m->severity) : NULL);
    if (result) qfs__pe_counts(root, "counts", &m->counts);
    else qfs__pe_null(root, "counts");
    qfs__pe_str(root, "failure_reason", result ? NULL : qfs_scan_failure_reason_str(m->failure_reason));
    qfs__pe_str(root, "topic_arn", m->topic_arn);
    qfs__pe_str(root, "subject", m->subject);
    qfs__pe_str(root, "sns_message_id", m->sns_message_id);
    qfs__pe_int(root, "findings_sent", m->findings_sent);
    qfs__pe_int(root, "findings_omitted", m->findings_omitted);
    qfs__pe_deploys(root, m->deploys, m->ndeploys);
    qfs__pe_str(root, "notified_at", m->notified_at);
    return qfs__pe_checked(root, sizeof(struct qfs_notification), from_json, qfs_notification_cleanup_any,
                           QFS_SCHEMA_NOTIFICATION, json_out);
}

qfs_status qfs_notification_decode(const char *json, size_t len, struct qfs_notification *out,
                                   char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), from_json, err, errlen);
}

void qfs_notification_cleanup(struct qfs_notification *m)
{
    if (!m) return;
    qfs_image_id_cleanup(&m->image);
    free(m->topic_arn);
    free(m->subject);
    free(m->sns_message_id);
    qfs_deploys_free(m->deploys, m->ndeploys);
    free(m->notified_at);
    memset(m, 0, sizeof(*m));
}
