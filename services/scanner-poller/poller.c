/* qfs-scanner-poller's rules: the poll schedule, what Qualys answers mean, and the messages. */
#include "poller.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define SUBMISSION_MAX_BYTES 4096

/* ---- when to check --------------------------------------------------------------------------- */

qfs_status poller_parse_first_delays(const char *text, struct poller_schedule *s, char *err,
                                     size_t errlen)
{
    s->nfirst = 0;
    if (!text) return QFS_OK;
    const char *p = text;
    while (*p == ' ') p++;
    if (!*p) return QFS_OK;
    for (;;) {
        while (*p == ' ') p++;
        int64_t v = 0;
        size_t digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 7) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        while (*p == ' ') p++;
        if (digits == 0 || (*p && *p != ',') || v < 1 || v > POLLER_MAX_DELAY_S) {
            snprintf(err, errlen, "want seconds (1..%d) separated by commas, such as 5,10,20",
                     POLLER_MAX_DELAY_S);
            return QFS_PROTOCOL;
        }
        if (s->nfirst == POLLER_MAX_FIRST_DELAYS) {
            snprintf(err, errlen, "at most %d delays", POLLER_MAX_FIRST_DELAYS);
            return QFS_PROTOCOL;
        }
        s->first_s[s->nfirst++] = v;
        if (!*p) return QFS_OK;
        p++;
    }
}

int64_t poller_delay_ms(const struct poller_schedule *s, uint64_t n)
{
    int64_t d = s->interval_s;
    if (n >= 1 && n <= s->nfirst && s->first_s[n - 1] < d) d = s->first_s[n - 1];
    return d * 1000;
}

bool poller_is_last_check(const struct poller_schedule *s, uint64_t n)
{
    return n >= (uint64_t)s->max_checks;
}

int64_t poller_span_s(const struct poller_schedule *s)
{
    int64_t total = 0;
    for (int64_t n = 1; n < s->max_checks; n++) total += poller_delay_ms(s, (uint64_t)n) / 1000;
    return total;
}

/* ---- what a Qualys answer means -------------------------------------------------------------- */

enum poller_answer poller_classify(bool post, qfs_status st, long http_code,
                                   enum qfs_scan_failure_reason *reason)
{
    if (http_code >= 200 && http_code < 300 && (post || st == QFS_OK)) return POLLER_ANSWER_OK;
    if (http_code == 0 && st == QFS_OK) return POLLER_ANSWER_OK;
    if (http_code == 403) {
        *reason = QFS_SCAN_FAILURE_QUALYS_DENIED;
        return POLLER_ANSWER_REFUSED;
    }
    if (http_code == 401 || http_code == 429) return POLLER_ANSWER_RETRY;
    if (http_code == 404 && !post) return POLLER_ANSWER_RETRY;
    if (http_code >= 400 && http_code < 500 && http_code != 408 && http_code != 409) {
        *reason = QFS_SCAN_FAILURE_QUALYS_REJECTED;
        return POLLER_ANSWER_REFUSED;
    }
    return post ? POLLER_ANSWER_UNKNOWN : POLLER_ANSWER_RETRY;
}

/* ---- the submission record ------------------------------------------------------------------- */

char *poller_submission_encode(const char *tag, const char *schedule_uuid, int64_t now_ms)
{
    char ts[32];
    qfs_format_time_ms(now_ms, ts);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tag", tag);
    if (schedule_uuid && *schedule_uuid) cJSON_AddStringToObject(o, "schedule_uuid", schedule_uuid);
    else cJSON_AddNullToObject(o, "schedule_uuid");
    cJSON_AddStringToObject(o, "submitted_at", ts);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    qfs_assert(text);
    return text;
}

qfs_status poller_submission_tag(const char *json, size_t len, char *tag, size_t n)
{
    tag[0] = '\0';
    if (!json || len == 0 || len > SUBMISSION_MAX_BYTES) return QFS_PROTOCOL;
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *t = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "tag") : NULL;
    qfs_status st = QFS_PROTOCOL;
    if (cJSON_IsString(t) && qfs_qualys_tag_is_valid(t->valuestring) && strlen(t->valuestring) < n) {
        snprintf(tag, n, "%s", t->valuestring);
        st = QFS_OK;
    }
    cJSON_Delete(o);
    return st;
}

const char *poller_pick_tag(char *const *tags, size_t n)
{
    const char *latest = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!tags[i] || !qfs_qualys_tag_is_valid(tags[i])) continue;
        if (strcmp(tags[i], "latest") != 0) return tags[i];
        latest = tags[i];
    }
    return latest;
}

/* ---- deploys --------------------------------------------------------------------------------- */

static bool has_event(const struct qfs_deploy *d, size_t n, const char *event_id)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].event_id && event_id && strcmp(d[i].event_id, event_id) == 0) return true;
    return false;
}

void poller_merge_deploys(const struct qfs_deploy *a, size_t na, const struct qfs_deploy *b,
                          size_t nb, struct qfs_deploy **out, size_t *n)
{
    size_t cap = na + nb < QFS_PROTO_MAX_DEPLOYS ? na + nb : QFS_PROTO_MAX_DEPLOYS;
    struct qfs_deploy *all = qfs_xcalloc(cap ? cap : 1, sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < na + nb && k < cap; i++) {
        const struct qfs_deploy *d = i < na ? &a[i] : &b[i - na];
        if (has_event(all, k, d->event_id)) continue;
        qfs_deploy_copy(&all[k++], d);
    }
    *out = all;
    *n = k;
}

/* ---- the messages ---------------------------------------------------------------------------- */

/* A copy of s cut to at most max bytes on a UTF-8 boundary; NULL for NULL, empty or unusable. */
static char *text_or_null(const char *s, size_t max)
{
    if (!s || !*s) return NULL;
    size_t n = strnlen(s, max);
    while (n > 0 && !qfs_utf8_is_valid(s, n)) n--;
    return n ? qfs_xstrndup(s, n) : NULL;
}

/* CVE-YYYY-N{4,19}, as the schema wants. */
static bool is_cve(const char *s)
{
    if (strncmp(s, "CVE-", 4) != 0) return false;
    for (int i = 4; i < 8; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    if (s[8] != '-') return false;
    size_t n = strspn(s + 9, "0123456789");
    return n >= 4 && n <= 19 && s[9 + n] == '\0';
}

static void finding_from(const struct qfs_qualys_finding *q, struct qfs_finding *f)
{
    memset(f, 0, sizeof(*f));
    f->qid = q->qid;
    f->severity = q->severity;
    f->title = text_or_null(q->title, 1024);
    if (!f->title) f->title = qfs_xasprintf("QID %lld", (long long)q->qid);
    f->cves = qfs_xcalloc(q->ncves ? q->ncves : 1, sizeof(char *));
    for (size_t i = 0; i < q->ncves && i < QFS_SCAN_MAX_CVES; i++)
        if (is_cve(q->cves[i])) f->cves[f->ncves++] = qfs_xstrdup(q->cves[i]);
    f->package = text_or_null(q->package, 256);
    f->installed_version = text_or_null(q->installed_version, 256);
    f->fixed_version = text_or_null(q->fixed_version, 256);
}

void poller_build_result(const struct qfs_scan_ready *ready, const char *sha, int64_t scanned_ms,
                         const struct qfs_qualys_vuln_report *rep, size_t top_n,
                         const struct qfs_deploy *deploys, size_t ndeploys, int64_t now_ms,
                         struct qfs_scan_result *out)
{
    memset(out, 0, sizeof(*out));
    qfs_image_id_copy(&out->image, &ready->request.image);
    out->generation = ready->request.generation;
    out->registry_uuid = qfs_xstrdup(ready->registry_uuid);
    out->qualys_image_sha = qfs_xstrdup(sha);
    out->counts.critical = rep->by_severity[5];
    out->counts.high = rep->by_severity[4];
    out->counts.medium = rep->by_severity[3];
    out->counts.low = rep->by_severity[2];
    out->counts.info = rep->by_severity[1];
    out->total = out->counts.critical + out->counts.high + out->counts.medium + out->counts.low +
                 out->counts.info;
    out->patchable = (int64_t)rep->patchable < out->total ? (int64_t)rep->patchable : out->total;

    if (top_n > QFS_SCAN_MAX_FINDINGS) top_n = QFS_SCAN_MAX_FINDINGS;
    out->findings = qfs_xcalloc(rep->nfindings ? rep->nfindings : 1, sizeof(*out->findings));
    for (size_t i = 0; i < rep->nfindings && i < QFS_QUALYS_MAX_FINDINGS; i++) {
        const struct qfs_qualys_finding *q = &rep->findings[i];
        if (q->qid < 1 || q->severity < 1 || q->severity > 5) continue;
        finding_from(q, &out->findings[out->nfindings++]);
    }
    /* Most severe first, then keep the first top_n (never more than the vulnerabilities). */
    qfs_scan_findings_sort(out->findings, out->nfindings);
    size_t keep = top_n < (size_t)out->total ? top_n : (size_t)out->total;
    while (out->nfindings > keep) qfs_finding_cleanup(&out->findings[--out->nfindings]);

    char ts[32];
    qfs_format_time_ms(scanned_ms > 0 ? scanned_ms : now_ms, ts);
    out->scanned_at = qfs_xstrdup(ts);
    poller_merge_deploys(deploys, ndeploys, NULL, 0, &out->deploys, &out->ndeploys);
}

void poller_build_failure(const struct qfs_scan_ready *ready, const struct poller_failure *f,
                          const struct qfs_deploy *deploys, size_t ndeploys, int64_t now_ms,
                          struct qfs_scan_failure *out)
{
    memset(out, 0, sizeof(*out));
    qfs_image_id_copy(&out->image, &ready->request.image);
    out->generation = ready->request.generation;
    out->registry_uuid = qfs_xstrdup(ready->registry_uuid);
    out->reason = f->reason;
    out->detail = text_or_null(f->detail, 2048);
    out->qualys_error_code = text_or_null(f->qualys_error_code, 256);
    out->qualys_error_message = text_or_null(f->qualys_error_message, 2048);
    out->poll_attempts = f->checks < 0 ? 0 : f->checks > 100000 ? 100000 : f->checks;
    char ts[32];
    qfs_format_time_ms(now_ms, ts);
    out->failed_at = qfs_xstrdup(ts);
    poller_merge_deploys(deploys, ndeploys, NULL, 0, &out->deploys, &out->ndeploys);
}

qfs_status poller_store_key(const char *what, const struct qfs_scan_request *req, char *out,
                            size_t n)
{
    char key[QFS_IMAGE_KEY_MAX];
    if (qfs_image_key_format(key, sizeof(key), &req->image) != QFS_OK) return QFS_INTERNAL;
    return qfs_generation_key(out, n, what, key, req->generation) == QFS_OK ? QFS_OK : QFS_INTERNAL;
}

static qfs_status add_outcome(struct qfs_outbox *ob, enum qfs_subject kind, enum qfs_schema schema,
                              const struct qfs_image_id *img, int64_t generation, char *json)
{
    char subject[QFS_SUBJECT_MAX], key[QFS_IMAGE_KEY_MAX], id[QFS_GENERATION_KEY_MAX];
    if (qfs_subject_format(subject, sizeof(subject), kind, img->account, img->region) != QFS_OK ||
        qfs_image_key_format(key, sizeof(key), img) != QFS_OK ||
        qfs_generation_key(id, sizeof(id), "outcome", key, generation) != QFS_OK) {
        free(json);
        return QFS_INTERNAL;
    }
    qfs_outbox_add_take(ob, subject, id, qfs_schema_name(schema), json);
    return QFS_OK;
}

qfs_status poller_add_result(struct qfs_outbox *ob, const struct qfs_scan_result *r)
{
    char *json = NULL;
    if (qfs_scan_result_encode(r, &json) != QFS_OK) return QFS_INTERNAL;
    return add_outcome(ob, QFS_SUBJECT_SCANS_COMPLETED, QFS_SCHEMA_SCAN_RESULT, &r->image,
                       r->generation, json);
}

qfs_status poller_add_failure(struct qfs_outbox *ob, const struct qfs_scan_failure *f)
{
    char *json = NULL;
    if (qfs_scan_failure_encode(f, &json) != QFS_OK) return QFS_INTERNAL;
    return add_outcome(ob, QFS_SUBJECT_SCANS_FAILED, QFS_SCHEMA_SCAN_FAILURE, &f->image,
                       f->generation, json);
}
