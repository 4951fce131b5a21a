/* The SNS message body codec (qfs.sns_message.v1). */
#include "qfs/proto_sns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_codec.h"
#include "qfs/util.h"

static const char *const outcome_names[QFS_SNS_OUTCOME_COUNT] = {
    [QFS_SNS_COMPLETED] = "completed",
    [QFS_SNS_FAILED] = "failed",
};

/* Every severity name, then "failure": the values of the severity field. */
static const char *const severity_names[] = {"none", "info", "low", "medium", "high", "critical",
                                             "failure"};
#define SEVERITY_FAILURE 6

const char *qfs_sns_outcome_str(enum qfs_sns_outcome o)
{
    return (unsigned)o < QFS_SNS_OUTCOME_COUNT ? outcome_names[o] : NULL;
}

const char *qfs_sns_message_severity(const struct qfs_sns_message *m)
{
    if (m->outcome == QFS_SNS_FAILED) return severity_names[SEVERITY_FAILURE];
    return qfs_severity_str(qfs_severity_counts_max(&m->summary.counts));
}

/* ---- failure ---------------------------------------------------------------------------------- */

static void failure_cleanup(struct qfs_sns_failure *f)
{
    free(f->detail);
    free(f->qualys_error_code);
    free(f->qualys_error_message);
    free(f->failed_at);
    memset(f, 0, sizeof(*f));
}

/* Reads the failure field; *is_null when it is JSON null. */
static qfs_status failure_from_json(struct qfs__pd *d, const cJSON *root,
                                    struct qfs_sns_failure *out, bool *is_null)
{
    static const char *const keys[] = {"reason", "detail", "qualys_error_code",
                                       "qualys_error_message", "poll_attempts", "failed_at"};
    memset(out, 0, sizeof(*out));
    *is_null = false;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "failure");
    if (!item) return qfs__pd_fail(d, "failure", "missing");
    if (cJSON_IsNull(item)) {
        *is_null = true;
        return QFS_OK;
    }
    size_t old = qfs__pd_enter(d, "failure", -1);
    int reason = -1;
    qfs_status s = qfs__pd_object(d, item, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, item, "reason", qfs__scan_failure_reason_names,
                         QFS_SCAN_FAILURE_REASON_COUNT, false, &reason);
    out->reason = (enum qfs_scan_failure_reason)(reason < 0 ? 0 : reason);
    if (s == QFS_OK) s = qfs__pd_str(d, item, "detail", &qfs__str_text_or_null, &out->detail);
    if (s == QFS_OK)
        s = qfs__pd_str(d, item, "qualys_error_code", &qfs__str_short_text_or_null,
                        &out->qualys_error_code);
    if (s == QFS_OK)
        s = qfs__pd_str(d, item, "qualys_error_message", &qfs__str_text_or_null,
                        &out->qualys_error_message);
    if (s == QFS_OK) s = qfs__pd_int(d, item, "poll_attempts", 0, 100000, &out->poll_attempts);
    if (s == QFS_OK) s = qfs__pd_str(d, item, "failed_at", &qfs__str_timestamp, &out->failed_at);
    qfs__pd_leave(d, old);
    if (s != QFS_OK) failure_cleanup(out);
    return s;
}

static void failure_to_json(cJSON *root, const struct qfs_sns_failure *f)
{
    cJSON *o = qfs__pe_object();
    qfs__pe_str(o, "reason", qfs_scan_failure_reason_str(f->reason));
    qfs__pe_str(o, "detail", f->detail);
    qfs__pe_str(o, "qualys_error_code", f->qualys_error_code);
    qfs__pe_str(o, "qualys_error_message", f->qualys_error_message);
    qfs__pe_int(o, "poll_attempts", f->poll_attempts);
    qfs__pe_str(o, "failed_at", f->failed_at);
    qfs__pe_add(root, "failure", o);
}

/* ---- not scanned ----------------------------------------------------------------------------- */

void qfs_sns_not_scanned_cleanup(struct qfs_sns_not_scanned *n)
{
    if (!n) return;
    free(n->event_id);
    free(n->image);
    free(n->detail);
    qfs__strv_free(n->containers, n->ncontainers);
    memset(n, 0, sizeof(*n));
}

static void not_scanned_free(struct qfs_sns_not_scanned *v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) qfs_sns_not_scanned_cleanup(&v[i]);
    free(v);
}

/* The skip reasons of the parser: cached and in_flight are the cache's, about scanned images. */
static const char *const not_scanned_reason_names[QFS_SKIP_REASON_COUNT] = {
    [QFS_SKIP_NOT_ECR] = "not_ecr",
    [QFS_SKIP_INVALID_IMAGE] = "invalid_image",
    [QFS_SKIP_API_CALL_FAILED] = "api_call_failed",
    [QFS_SKIP_NO_TASKS_STARTED] = "no_tasks_started",
    [QFS_SKIP_UNSUPPORTED_EVENT] = "unsupported_event",
    [QFS_SKIP_CACHED] = NULL,
    [QFS_SKIP_IN_FLIGHT] = NULL,
    [QFS_SKIP_TASK_DEFINITION_NOT_FOUND] = "task_definition_not_found",
    [QFS_SKIP_ACCESS_DENIED] = "access_denied",
    [QFS_SKIP_DIGEST_UNRESOLVED] = "digest_unresolved",
};

static qfs_status one_not_scanned(struct qfs__pd *d, const cJSON *obj,
                                  struct qfs_sns_not_scanned *out)
{
    static const char *const keys[] = {"event_id", "reason", "image", "detail", "containers"};
    memset(out, 0, sizeof(*out));
    int reason = -1;
    qfs_status s = qfs__pd_object(d, obj, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "event_id", &qfs__str_event_id, &out->event_id);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, obj, "reason", not_scanned_reason_names, QFS_SKIP_REASON_COUNT, false,
                         &reason);
    out->reason = (enum qfs_skip_reason)(reason < 0 ? 0 : reason);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "image", &qfs__str_text_or_null, &out->image);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "detail", &qfs__str_text_or_null, &out->detail);
    if (s == QFS_OK)
        s = qfs__pd_str_array(d, obj, "containers", 0, QFS_PROTO_MAX_CONTAINERS,
                              &qfs__str_container, &out->containers, &out->ncontainers);
    for (size_t i = 0; s == QFS_OK && i < out->ncontainers; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->containers[i], out->containers[j]) == 0) {
                char field[64];
                snprintf(field, sizeof(field), "containers[%zu]", i);
                s = qfs__pd_fail(d, field, "duplicate name");
                break;
            }
        }
    }
    if (s != QFS_OK) qfs_sns_not_scanned_cleanup(out);
    return s;
}

static qfs_status not_scanned_from_json(struct qfs__pd *d, const cJSON *root,
                                        struct qfs_sns_not_scanned **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    const cJSON *arr;
    size_t n;
    qfs_status s = qfs__pd_array(d, root, "not_scanned", 0, QFS_SNS_MAX_NOT_SCANNED, &arr, &n);
    if (s != QFS_OK || n == 0) return s;
    struct qfs_sns_not_scanned *v = qfs_xcalloc(n, sizeof(*v));
    size_t i = 0;
    for (const cJSON *c = arr->child; c && s == QFS_OK; c = c->next, i++) {
        size_t old = qfs__pd_enter(d, "not_scanned", (long)i);
        s = one_not_scanned(d, c, &v[i]);
        qfs__pd_leave(d, old);
    }
    if (s != QFS_OK) {
        not_scanned_free(v, n);
        return s;
    }
    *out = v;
    *count = n;
    return QFS_OK;
}

static void not_scanned_to_json(cJSON *root, const struct qfs_sns_not_scanned *v, size_t n)
{
    qfs_assert(n == 0 || v);
    cJSON *arr = qfs__pe_array();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = qfs__pe_object();
        qfs__pe_str(o, "event_id", v[i].event_id);
        qfs__pe_str(o, "reason", qfs_skip_reason_str(v[i].reason));
        qfs__pe_str(o, "image", v[i].image);
        qfs__pe_str(o, "detail", v[i].detail);
        qfs__pe_str_array(o, "containers", v[i].containers, v[i].ncontainers);
        qfs__pe_add(arr, NULL, o);
    }
    qfs__pe_add(root, "not_scanned", arr);
}

/* ---- the message ----------------------------------------------------------------------------- */

#define COUNT_MAX 1000000000

static qfs_status from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_sns_message *out = outp;
    static const char *const keys[] = {
        "schema", "outcome", "severity", QFS__IMAGE_ID_KEYS, "generation", "summary", "failure",
        "findings", "findings_omitted", "deploys", "deploys_omitted", "not_scanned",
        "not_scanned_omitted", "note", "notified_at"};
    memset(out, 0, sizeof(*out));
    int outcome = -1, severity = -1;
    bool summary_null = false, failure_null = false;
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_SNS_MESSAGE);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "outcome", outcome_names, QFS_SNS_OUTCOME_COUNT, false, &outcome);
    out->outcome = (enum qfs_sns_outcome)(outcome < 0 ? 0 : outcome);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "severity", severity_names,
                         sizeof(severity_names) / sizeof(*severity_names), false, &severity);
    if (s == QFS_OK) s = qfs__pd_image_id(d, root, &out->image);
    if (s == QFS_OK) s = qfs__pd_int(d, root, "generation", 1, QFS__PROTO_INT_MAX, &out->generation);
    if (s == QFS_OK) s = qfs__pd_summary(d, root, "summary", &out->summary, &summary_null);
    if (s == QFS_OK) s = failure_from_json(d, root, &out->failure, &failure_null);
    if (s == QFS_OK) s = qfs__pd_findings(d, root, &out->findings, &out->nfindings);
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "findings_omitted", 0, COUNT_MAX, &out->findings_omitted);
    if (s == QFS_OK) s = qfs__pd_deploys(d, root, &out->deploys, &out->ndeploys);
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "deploys_omitted", 0, COUNT_MAX, &out->deploys_omitted);
    if (s == QFS_OK) s = not_scanned_from_json(d, root, &out->not_scanned, &out->nnot_scanned);
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "not_scanned_omitted", 0, COUNT_MAX, &out->not_scanned_omitted);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "note", &qfs__str_text_or_null, &out->note);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "notified_at", &qfs__str_timestamp, &out->notified_at);

    /* The fields that must agree with each other. */
    bool completed = outcome == QFS_SNS_COMPLETED;
    if (s == QFS_OK && completed && summary_null)
        s = qfs__pd_fail(d, "summary", "null for a completed scan");
    if (s == QFS_OK && completed && !failure_null)
        s = qfs__pd_fail(d, "failure", "set for a completed scan");
    if (s == QFS_OK && completed &&
        severity != (int)qfs_severity_counts_max(&out->summary.counts))
        s = qfs__pd_fail(d, "severity", "not the highest severity of summary.counts");
    if (s == QFS_OK && completed && (int64_t)out->nfindings > out->summary.total)
        s = qfs__pd_fail(d, "findings", "more findings than summary.total");
    if (s == QFS_OK && completed &&
        out->findings_omitted != out->summary.total - (int64_t)out->nfindings)
        s = qfs__pd_fail(d, "findings_omitted", "not summary.total minus the findings listed");
    if (s == QFS_OK && !completed && !summary_null)
        s = qfs__pd_fail(d, "summary", "set for a failed scan");
    if (s == QFS_OK && !completed && failure_null)
        s = qfs__pd_fail(d, "failure", "null for a failed scan");
    if (s == QFS_OK && !completed && severity != SEVERITY_FAILURE)
        s = qfs__pd_fail(d, "severity", "must be failure for a failed scan");
    if (s == QFS_OK && !completed && out->nfindings > 0)
        s = qfs__pd_fail(d, "findings", "not empty for a failed scan");
    if (s == QFS_OK && !completed && out->findings_omitted != 0)
        s = qfs__pd_fail(d, "findings_omitted", "not 0 for a failed scan");
    if (s != QFS_OK) qfs_sns_message_cleanup(out);
    return s;
}

/* qfs_sns_message_cleanup for qfs__pe_checked. */
static void qfs_sns_message_cleanup_any(void *m)
{
    qfs_sns_message_cleanup(m);
}

qfs_status qfs_sns_message_encode(const struct qfs_sns_message *m, char **json_out)
{
    bool completed = m->outcome == QFS_SNS_COMPLETED;
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_SNS_MESSAGE));
    qfs__pe_str(root, "outcome", qfs_sns_outcome_str(m->outcome));
    qfs__pe_str(root, "severity", qfs_sns_message_severity(m));
    qfs__pe_image_id(root, &m->image);
    qfs__pe_int(root, "generation", m->generation);
    qfs__pe_summary(root, "summary", completed ? &m->summary : NULL);
    if (completed) qfs__pe_null(root, "failure");
    else failure_to_json(root, &m->failure);
    qfs__pe_findings(root, m->findings, m->nfindings);
    qfs__pe_int(root, "findings_omitted", m->findings_omitted);
    qfs__pe_deploys(root, m->deploys, m->ndeploys);
    qfs__pe_int(root, "deploys_omitted", m->deploys_omitted);
    not_scanned_to_json(root, m->not_scanned, m->nnot_scanned);
    qfs__pe_int(root, "not_scanned_omitted", m->not_scanned_omitted);
    qfs__pe_str(root, "note", m->note);
    qfs__pe_str(root, "notified_at", m->notified_at);
    return qfs__pe_checked(root, sizeof(struct qfs_sns_message), from_json,
                           qfs_sns_message_cleanup_any, QFS_SCHEMA_SNS_MESSAGE, json_out);
}

qfs_status qfs_sns_message_decode(const char *json, size_t len, struct qfs_sns_message *out,
                                  char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), from_json, err, errlen);
}

void qfs_sns_message_cleanup(struct qfs_sns_message *m)
{
    if (!m) return;
    qfs_image_id_cleanup(&m->image);
    qfs_scan_summary_cleanup(&m->summary);
    qfs__findings_free(m->findings, m->nfindings);
    failure_cleanup(&m->failure);
    qfs_deploys_free(m->deploys, m->ndeploys);
    not_scanned_free(m->not_scanned, m->nnot_scanned);
    free(m->note);
    free(m->notified_at);
    memset(m, 0, sizeof(*m));
}
