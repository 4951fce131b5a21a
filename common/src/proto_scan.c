/* Scan message codecs: request, ready, result and failure, with severities and findings. */
#include "qfs/proto_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_codec.h"
#include "qfs/util.h"

const char *const qfs__severity_names[6] = {"none", "info", "low", "medium", "high", "critical"};

const char *const qfs__scan_failure_reason_names[] = {
    [QFS_SCAN_FAILURE_TIMEOUT] = "timeout",
    [QFS_SCAN_FAILURE_SCAN_FAILED] = "scan_failed",
    [QFS_SCAN_FAILURE_UNTAGGED_DIGEST] = "untagged_digest",
    [QFS_SCAN_FAILURE_REGISTRY_FAILED] = "registry_failed",
    [QFS_SCAN_FAILURE_QUALYS_DENIED] = "qualys_denied",
    [QFS_SCAN_FAILURE_QUALYS_REJECTED] = "qualys_rejected",
    [QFS_SCAN_FAILURE_IMAGE_NOT_FOUND] = "image_not_found",
    [QFS_SCAN_FAILURE_REASON_COUNT] = NULL,
};

const char *qfs_severity_str(enum qfs_severity s)
{
    return (unsigned)s <= QFS_SEVERITY_CRITICAL ? qfs__severity_names[s] : NULL;
}

bool qfs_severity_parse(const char *name, enum qfs_severity *out)
{
    for (int i = 0; name && i <= QFS_SEVERITY_CRITICAL; i++) {
        if (strcmp(name, qfs__severity_names[i]) == 0) {
            *out = (enum qfs_severity)i;
            return true;
        }
    }
    return false;
}

enum qfs_severity qfs_severity_counts_max(const struct qfs_severity_counts *c)
{
    if (c->critical > 0) return QFS_SEVERITY_CRITICAL;
    if (c->high > 0) return QFS_SEVERITY_HIGH;
    if (c->medium > 0) return QFS_SEVERITY_MEDIUM;
    if (c->low > 0) return QFS_SEVERITY_LOW;
    if (c->info > 0) return QFS_SEVERITY_INFO;
    return QFS_SEVERITY_NONE;
}

const char *qfs_scan_failure_reason_str(enum qfs_scan_failure_reason r)
{
    return (unsigned)r < QFS_SCAN_FAILURE_REASON_COUNT ? qfs__scan_failure_reason_names[r] : NULL;
}

bool qfs_scan_failure_reason_parse(const char *name, enum qfs_scan_failure_reason *out)
{
    for (int i = 0; name && i < QFS_SCAN_FAILURE_REASON_COUNT; i++) {
        if (strcmp(name, qfs__scan_failure_reason_names[i]) == 0) {
            *out = (enum qfs_scan_failure_reason)i;
            return true;
        }
    }
    return false;
}

/* ---- findings -------------------------------------------------------------------------------- */

static int finding_order(const void *a, const void *b)
{
    const struct qfs_finding *x = a, *y = b;
    if (x->severity != y->severity) return x->severity > y->severity ? -1 : 1;
    return x->qid < y->qid ? -1 : x->qid > y->qid;
}

void qfs_scan_findings_sort(struct qfs_finding *findings, size_t n)
{
    if (n > 1) qsort(findings, n, sizeof(*findings), finding_order);
}

void qfs_finding_cleanup(struct qfs_finding *f)
{
    if (!f) return;
    free(f->title);
    qfs__strv_free(f->cves, f->ncves);
    free(f->package);
    free(f->installed_version);
    free(f->fixed_version);
    memset(f, 0, sizeof(*f));
}

void qfs__findings_free(struct qfs_finding *f, size_t n)
{
    if (!f) return;
    for (size_t i = 0; i < n; i++) qfs_finding_cleanup(&f[i]);
    free(f);
}

/* CVE-YYYY-N{4,19} */
static bool check_cve(const char *s)
{
    if (strncmp(s, "CVE-", 4) != 0) return false;
    for (int i = 4; i < 8; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    if (s[8] != '-') return false;
    size_t n = 0;
    while (s[9 + n] >= '0' && s[9 + n] <= '9') n++;
    return n >= 4 && n <= 19 && s[9 + n] == '\0';
}

static const struct qfs__pd_str str_cve = {13, 28, false, check_cve, "CVE-YYYY-NNNN"};
static const struct qfs__pd_str str_title = {1, 1024, false, NULL, NULL};

static qfs_status finding_from_json(struct qfs__pd *d, const cJSON *obj, struct qfs_finding *out)
{
    static const char *const keys[] = {"qid", "title", "severity", "cves", "package",
                                       "installed_version", "fixed_version"};
    memset(out, 0, sizeof(*out));
    int64_t severity = 0;
    qfs_status s = qfs__pd_object(d, obj, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_int(d, obj, "qid", 1, QFS__PROTO_INT_MAX, &out->qid);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "title", &str_title, &out->title);
    if (s == QFS_OK) s = qfs__pd_int(d, obj, "severity", 1, 5, &severity);
    out->severity = (int)severity;
    if (s == QFS_OK)
        s = qfs__pd_str_array(d, obj, "cves", 0, QFS_SCAN_MAX_CVES, &str_cve, &out->cves,
                              &out->ncves);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "package", &qfs__str_short_text_or_null, &out->package);
    if (s == QFS_OK)
        s = qfs__pd_str(d, obj, "installed_version", &qfs__str_short_text_or_null,
                        &out->installed_version);
    if (s == QFS_OK)
        s = qfs__pd_str(d, obj, "fixed_version", &qfs__str_short_text_or_null, &out->fixed_version);
    if (s != QFS_OK) qfs_finding_cleanup(out);
    return s;
}

qfs_status qfs__pd_findings(struct qfs__pd *d, const cJSON *obj, struct qfs_finding **out,
                            size_t *count)
{
    *out = NULL;
    *count = 0;
    const cJSON *arr;
    size_t n;
    qfs_status s = qfs__pd_array(d, obj, "findings", 0, QFS_SCAN_MAX_FINDINGS, &arr, &n);
    if (s != QFS_OK || n == 0) return s;
    struct qfs_finding *v = qfs_xcalloc(n, sizeof(*v));
    size_t i = 0;
    for (const cJSON *c = arr->child; c && s == QFS_OK; c = c->next, i++) {
        size_t old = qfs__pd_enter(d, "findings", (long)i);
        s = finding_from_json(d, c, &v[i]);
        qfs__pd_leave(d, old);
        if (s == QFS_OK && i > 0 && finding_order(&v[i - 1], &v[i]) >= 0) {
            char field[32];
            snprintf(field, sizeof(field), "findings[%zu]", i);
            s = qfs__pd_fail(d, field, "out of order (most severe first, then ascending qid)");
        }
    }
    if (s != QFS_OK) {
        qfs__findings_free(v, n);
        return s;
    }
    *out = v;
    *count = n;
    return QFS_OK;
}

void qfs__pe_findings(cJSON *obj, const struct qfs_finding *f, size_t n)
{
    qfs_assert(n == 0 || f);
    cJSON *arr = qfs__pe_array();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = qfs__pe_object();
        qfs__pe_int(o, "qid", f[i].qid);
        qfs__pe_str(o, "title", f[i].title);
        qfs__pe_int(o, "severity", f[i].severity);
        qfs__pe_str_array(o, "cves", f[i].cves, f[i].ncves);
        qfs__pe_str(o, "package", f[i].package);
        qfs__pe_str(o, "installed_version", f[i].installed_version);
        qfs__pe_str(o, "fixed_version", f[i].fixed_version);
        qfs__pe_add(arr, NULL, o);
    }
    qfs__pe_add(obj, "findings", arr);
}

/* ---- counts and summary ---------------------------------------------------------------------- */

#define COUNT_MAX 1000000000

/* qfs_scan_failure_cleanup for qfs__pe_checked. */
static void qfs_scan_failure_cleanup_any(void *m)
{
    qfs_scan_failure_cleanup(m);
}

/* qfs_scan_ready_cleanup for qfs__pe_checked. */
static void qfs_scan_ready_cleanup_any(void *m)
{
    qfs_scan_ready_cleanup(m);
}

/* qfs_scan_request_cleanup for qfs__pe_checked. */
static void qfs_scan_request_cleanup_any(void *m)
{
    qfs_scan_request_cleanup(m);
}

/* qfs_scan_result_cleanup for qfs__pe_checked. */
static void qfs_scan_result_cleanup_any(void *m)
{
    qfs_scan_result_cleanup(m);
}

qfs_status qfs__pd_counts(struct qfs__pd *d, const cJSON *obj, const char *name, bool nullable,
                          struct qfs_severity_counts *out, bool *is_null)
{
    static const char *const keys[] = {"critical", "high", "medium", "low", "info"};
    memset(out, 0, sizeof(*out));
    if (is_null) *is_null = false;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    if (nullable && cJSON_IsNull(item)) {
        if (is_null) *is_null = true;
        return QFS_OK;
    }
    size_t old = qfs__pd_enter(d, name, -1);
    qfs_status s = qfs__pd_object(d, item, NULL, keys, 5, true);
    if (s == QFS_OK) s = qfs__pd_int(d, item, "critical", 0, COUNT_MAX, &out->critical);
    if (s == QFS_OK) s = qfs__pd_int(d, item, "high", 0, COUNT_MAX, &out->high);
    if (s == QFS_OK) s = qfs__pd_int(d, item, "medium", 0, COUNT_MAX, &out->medium);
    if (s == QFS_OK) s = qfs__pd_int(d, item, "low", 0, COUNT_MAX, &out->low);
    if (s == QFS_OK) s = qfs__pd_int(d, item, "info", 0, COUNT_MAX, &out->info);
    qfs__pd_leave(d, old);
    return s;
}

void qfs__pe_counts(cJSON *obj, const char *name, const struct qfs_severity_counts *c)
{
    cJSON *o = qfs__pe_object();
    qfs__pe_int(o, "critical", c->critical);
    qfs__pe_int(o, "high", c->high);
    qfs__pe_int(o, "medium", c->medium);
    qfs__pe_int(o, "low", c->low);
    qfs__pe_int(o, "info", c->info);
    qfs__pe_add(obj, name, o);
}

/* Reads total and patchable and checks them against counts. */
static qfs_status totals_from_json(struct qfs__pd *d, const cJSON *obj,
                                   const struct qfs_severity_counts *c, int64_t *total,
                                   int64_t *patchable)
{
    qfs_status s = qfs__pd_int(d, obj, "total", 0, COUNT_MAX, total);
    if (s == QFS_OK) s = qfs__pd_int(d, obj, "patchable", 0, COUNT_MAX, patchable);
    if (s == QFS_OK && *total != c->critical + c->high + c->medium + c->low + c->info)
        s = qfs__pd_fail(d, "total", "not the sum of counts");
    if (s == QFS_OK && *patchable > *total) s = qfs__pd_fail(d, "patchable", "greater than total");
    return s;
}

void qfs_scan_summary_cleanup(struct qfs_scan_summary *s)
{
    if (!s) return;
    free(s->qualys_image_sha);
    free(s->scanned_at);
    memset(s, 0, sizeof(*s));
}

qfs_status qfs__pd_summary(struct qfs__pd *d, const cJSON *obj, const char *name,
                           struct qfs_scan_summary *out, bool *is_null)
{
    static const char *const keys[] = {"qualys_image_sha", "counts", "total", "patchable",
                                       "scanned_at"};
    memset(out, 0, sizeof(*out));
    *is_null = false;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    if (cJSON_IsNull(item)) {
        *is_null = true;
        return QFS_OK;
    }
    size_t old = qfs__pd_enter(d, name, -1);
    qfs_status s = qfs__pd_object(d, item, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK)
        s = qfs__pd_str(d, item, "qualys_image_sha", &qfs__str_qualys_sha, &out->qualys_image_sha);
    if (s == QFS_OK) s = qfs__pd_counts(d, item, "counts", false, &out->counts, NULL);
    if (s == QFS_OK) s = totals_from_json(d, item, &out->counts, &out->total, &out->patchable);
    if (s == QFS_OK) s = qfs__pd_str(d, item, "scanned_at", &qfs__str_timestamp, &out->scanned_at);
    qfs__pd_leave(d, old);
    if (s != QFS_OK) qfs_scan_summary_cleanup(out);
    return s;
}

void qfs__pe_summary(cJSON *obj, const char *name, const struct qfs_scan_summary *s)
{
    if (!s) {
        qfs__pe_null(obj, name);
        return;
    }
    cJSON *o = qfs__pe_object();
    qfs__pe_str(o, "qualys_image_sha", s->qualys_image_sha);
    qfs__pe_counts(o, "counts", &s->counts);
    qfs__pe_int(o, "total", s->total);
    qfs__pe_int(o, "patchable", s->patchable);
    qfs__pe_str(o, "scanned_at", s->scanned_at);
    qfs__pe_add(obj, name, o);
}

/* ---- request and ready ----------------------------------------------------------------------- */

#define REQUEST_KEYS "schema", QFS__IMAGE_ID_KEYS, "generation", "requested_at", "cache_fail_open", \
    "deploys"

static qfs_status request_fields(struct qfs__pd *d, const cJSON *root, struct qfs_scan_request *out)
{
    qfs_status s = qfs__pd_image_id(d, root, &out->image);
    if (s == QFS_OK) s = qfs__pd_int(d, root, "generation", 1, QFS__PROTO_INT_MAX, &out->generation);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "requested_at", &qfs__str_timestamp, &out->requested_at);
    if (s == QFS_OK) s = qfs__pd_bool(d, root, "cache_fail_open", &out->cache_fail_open);
    if (s == QFS_OK) s = qfs__pd_deploys(d, root, &out->deploys, &out->ndeploys);
    return s;
}

static void request_to_json(cJSON *root, const struct qfs_scan_request *m)
{
    qfs__pe_image_id(root, &m->image);
    qfs__pe_int(root, "generation", m->generation);
    qfs__pe_str(root, "requested_at", m->requested_at);
    qfs__pe_bool(root, "cache_fail_open", m->cache_fail_open);
    qfs__pe_deploys(root, m->deploys, m->ndeploys);
}

static qfs_status request_from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_scan_request *out = outp;
    static const char *const keys[] = {REQUEST_KEYS};
    memset(out, 0, sizeof(*out));
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_SCAN_REQUEST);
    if (s == QFS_OK) s = request_fields(d, root, out);
    if (s != QFS_OK) qfs_scan_request_cleanup(out);
    return s;
}

qfs_status qfs_scan_request_encode(const struct qfs_scan_request *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_SCAN_REQUEST));
    request_to_json(root, m);
    return qfs__pe_checked(root, sizeof(struct qfs_scan_request), request_from_json, qfs_scan_request_cleanup_any,
                           QFS_SCHEMA_SCAN_REQUEST, json_out);
}

qfs_status qfs_scan_request_decode(const char *json, size_t len, struct qfs_scan_request *out,
                                   char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), request_from_json, err, errlen);
}

void qfs_scan_request_cleanup(struct qfs_scan_request *m)
{
    if (!m) return;
    qfs_image_id_cleanup(&m->image);
    free(m->requested_at);
    qfs_deploys_free(m->deploys, m->ndeploys);
    memset(m, 0, sizeof(*m));
}

static qfs_status ready_from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_scan_ready *out = outp;
    static const char *const keys[] = {REQUEST_KEYS, "registry_uuid"};
    memset(out, 0, sizeof(*out));
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_SCAN_READY);
    if (s == QFS_OK) s = request_fields(d, root, &out->request);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "registry_uuid", &qfs__str_uuid, &out->registry_uuid);
    if (s != QFS_OK) qfs_scan_ready_cleanup(out);
    return s;
}

qfs_status qfs_scan_ready_encode(const struct qfs_scan_ready *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_SCAN_READY));
    request_to_json(root, &m->request);
    qfs__pe_str(root, "registry_uuid", m->registry_uuid);
    return qfs__pe_checked(root, sizeof(struct qfs_scan_ready), ready_from_json, qfs_scan_ready_cleanup_any,
                           QFS_SCHEMA_SCAN_READY, json_out);
}

qfs_status qfs_scan_ready_decode(const char *json, size_t len, struct qfs_scan_ready *out,
                                 char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), ready_from_json, err, errlen);
}

void qfs_scan_ready_cleanup(struct qfs_scan_ready *m)
{
    if (!m) return;
    qfs_scan_request_cleanup(&m->request);
    free(m->registry_uuid);
    memset(m, 0, sizeof(*m));
}

/* ---- result ---------------------------------------------------------------------------------- */

static qfs_status result_from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_scan_result *out = outp;
    static const char *const keys[] = {"schema", QFS__IMAGE_ID_KEYS, "generation", "registry_uuid",
                                       "qualys_image_sha", "counts", "total", "patchable",
                                       "findings", "scanned_at", "deploys"};
    memset(out, 0, sizeof(*out));
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_SCAN_RESULT);
    if (s == QFS_OK) s = qfs__pd_image_id(d, root, &out->image);
    if (s == QFS_OK) s = qfs__pd_int(d, root, "generation", 1, QFS__PROTO_INT_MAX, &out->generation);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "registry_uuid", &qfs__str_uuid, &out->registry_uuid);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "qualys_image_sha", &qfs__str_qualys_sha, &out->qualys_image_sha);
    if (s == QFS_OK) s = qfs__pd_counts(d, root, "counts", false, &out->counts, NULL);
    if (s == QFS_OK) s = totals_from_json(d, root, &out->counts, &out->total, &out->patchable);
    if (s == QFS_OK) s = qfs__pd_findings(d, root, &out->findings, &out->nfindings);
    if (s == QFS_OK && (int64_t)out->nfindings > out->total)
        s = qfs__pd_fail(d, "findings", "more findings than total");
    if (s == QFS_OK) s = qfs__pd_str(d, root, "scanned_at", &qfs__str_timestamp, &out->scanned_at);
    if (s == QFS_OK) s = qfs__pd_deploys(d, root, &out->deploys, &out->ndeploys);
    if (s != QFS_OK) qfs_scan_result_cleanup(out);
    return s;
}

qfs_status qfs_scan_result_encode(const struct qfs_scan_result *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_SCAN_RESULT));
    qfs__pe_image_id(root, &m->image);
    qfs__pe_int(root, "generation", m->generation);
    qfs__pe_str(root, "registry_uuid", m->registry_uuid);
    qfs__pe_str(root, "qualys_image_sha", m->qualys_image_sha);
    qfs__pe_counts(root, "counts", &m->counts);
    qfs__pe_int(root, "total", m->total);
    qfs__pe_int(root, "patchable", m->patchable);
    qfs__pe_findings(root, m->findings, m->nfindings);
    qfs__pe_str(root, "scanned_at", m->scanned_at);
    qfs__pe_deploys(root, m->deploys, m->ndeploys);
    return qfs__pe_checked(root, sizeof(struct qfs_scan_result), result_from_json, qfs_scan_result_cleanup_any,
                           QFS_SCHEMA_SCAN_RESULT, json_out);
}

qfs_status qfs_scan_result_decode(const char *json, size_t len, struct qfs_scan_result *out,
                                  char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), result_from_json, err, errlen);
}

void qfs_scan_result_cleanup(struct qfs_scan_result *m)
{
    if (!m) return;
    qfs_image_id_cleanup(&m->image);
    free(m->registry_uuid);
    free(m->qualys_image_sha);
    qfs__findings_free(m->findings, m->nfindings);
    free(m->scanned_at);
    qfs_deploys_free(m->deploys, m->ndeploys);
    memset(m, 0, sizeof(*m));
}

/* ---- failure --------------------------------------------------------------------------------- */

static qfs_status failure_from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_scan_failure *out = outp;
    static const char *const keys[] = {"schema", QFS__IMAGE_ID_KEYS, "generation", "registry_uuid",
                                       "reason", "detail", "qualys_error_code",
                                       "qualys_error_message", "poll_attempts", "failed_at",
                                       "deploys"};
    memset(out, 0, sizeof(*out));
    int reason = -1;
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_SCAN_FAILURE);
    if (s == QFS_OK) s = qfs__pd_image_id(d, root, &out->image);
    if (s == QFS_OK) s = qfs__pd_int(d, root, "generation", 1, QFS__PROTO_INT_MAX, &out->generation);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "registry_uuid", &qfs__str_uuid_or_null, &out->registry_uuid);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "reason", qfs__scan_failure_reason_names,
                         QFS_SCAN_FAILURE_REASON_COUNT, false, &reason);
    out->reason = (enum qfs_scan_failure_reason)(reason < 0 ? 0 : reason);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "detail", &qfs__str_text_or_null, &out->detail);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "qualys_error_code", &qfs__str_short_text_or_null,
                        &out->qualys_error_code);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "qualys_error_message", &qfs__str_text_or_null,
                        &out->qualys_error_message);
    if (s == QFS_OK) s = qfs__pd_int(d, root, "poll_attempts", 0, 100000, &out->poll_attempts);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "failed_at", &qfs__str_timestamp, &out->failed_at);
    if (s == QFS_OK) s = qfs__pd_deploys(d, root, &out->deploys, &out->ndeploys);
    if (s != QFS_OK) qfs_scan_failure_cleanup(out);
    return s;
}

qfs_status qfs_scan_failure_encode(const struct qfs_scan_failure *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_SCAN_FAILURE));
    qfs__pe_image_id(root, &m->image);
    qfs__pe_int(root, "generation", m->generation);
    qfs__pe_str(root, "registry_uuid", m->registry_uuid);
    qfs__pe_str(root, "reason", qfs_scan_failure_reason_str(m->reason));
    qfs__pe_str(root, "detail", m->detail);
    qfs__pe_str(root, "qualys_error_code", m->qualys_error_code);
    qfs__pe_str(root, "qualys_error_message", m->qualys_error_message);
    qfs__pe_int(root, "poll_attempts", m->poll_attempts);
    qfs__pe_str(root, "failed_at", m->failed_at);
    qfs__pe_deploys(root, m->deploys, m->ndeploys);
    return qfs__pe_checked(root, sizeof(struct qfs_scan_failure), failure_from_json, qfs_scan_failure_cleanup_any,
                           QFS_SCHEMA_SCAN_FAILURE, json_out);
}

qfs_status qfs_scan_failure_decode(const char *json, size_t len, struct qfs_scan_failure *out,
                                   char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), failure_from_json, err, errlen);
}

void qfs_scan_failure_cleanup(struct qfs_scan_failure *m)
{
    if (!m) return;
    qfs_image_id_cleanup(&m->image);
    free(m->registry_uuid);
    free(m->detail);
    free(m->qualys_error_code);
    free(m->qualys_error_message);
    free(m->failed_at);
    qfs_deploys_free(m->deploys, m->ndeploys);
    memset(m, 0, sizeof(*m));
}
