/* Messages as one readable line each (qfsctl tail), as JSON lines, and the trace filter. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_event.h"
#include "qfs/proto_image.h"
#include "qfs/proto_notification.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfsctl.h"

#define C_RESET "\033[0m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_BOLD_RED "\033[1;31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BLUE "\033[34m"
#define C_MAGENTA "\033[35m"
#define C_CYAN "\033[36m"

/* Longest piece of message text put on a line. */
#define MAX_FIELD 120
/* printf arguments for at most max bytes of s, cut where no UTF-8 sequence is split: "%.*s". */
#define CUT(s, max) (int)qfs_utf8_cut((s), (max)), (s)

static const char *const stage_names[QFS_SUBJECT_COUNT] = {
    [QFS_SUBJECT_EVENTS] = "event",
    [QFS_SUBJECT_IMAGES] = "image",
    [QFS_SUBJECT_SCANS_REQUESTED] = "request",
    [QFS_SUBJECT_SCANS_READY] = "ready",
    [QFS_SUBJECT_SCANS_COMPLETED] = "completed",
    [QFS_SUBJECT_SCANS_FAILED] = "failed",
    [QFS_SUBJECT_SCANS_SKIPPED] = "skip",
    [QFS_SUBJECT_NOTIFICATIONS] = "notification",
    [QFS_SUBJECT_DLQ] = "dlq",
    [QFS_SUBJECT_STATS] = "stats",
};

const char *qfsctl_stage(const char *subject)
{
    struct qfs_subject_parts p;
    if (!subject || qfs_subject_parse(subject, &p) != QFS_OK) return "?";
    return stage_names[p.kind];
}

bool qfsctl_use_colour(bool is_tty, const char *no_color_env, bool no_color_flag)
{
    return is_tty && !no_color_flag && !(no_color_env && *no_color_env);
}

void qfsctl_counts_str(int64_t critical, int64_t high, int64_t medium, int64_t low, int64_t info,
                       char *out, size_t n)
{
    int len = snprintf(out, n, "%" PRId64 "C/%" PRId64 "H", critical, high);
    const int64_t rest[] = {medium, low, info};
    const char letters[] = "MLI";
    for (int i = 0; i < 3 && len > 0 && (size_t)len < n; i++)
        if (rest[i]) len += snprintf(out + len, n - (size_t)len, "/%" PRId64 "%c", rest[i], letters[i]);
}

/* Appends s (at most max bytes, cut at a UTF-8 boundary with "...") with control characters,
 * escape sequences included, replaced by '?': message text must not drive the terminal. */
static void put_clean(struct qfs_buf *b, const char *s, size_t max)
{
    if (!s) {
        qfs_buf_puts(b, "-");
        return;
    }
    size_t len = strlen(s);
    bool cut = len > max;
    if (cut) len = qfs_utf8_cut(s, max);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char out = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        qfs_buf_append(b, &out, 1);
    }
    if (cut) qfs_buf_puts(b, "...");
}

/* Appends s cleaned and padded with spaces to width characters. */
static void put_col(struct qfs_buf *b, const char *s, size_t width)
{
    size_t before = b->len;
    put_clean(b, s, MAX_FIELD);
    size_t chars = 0;
    for (size_t i = before; i < b->len; i++)
        if (((unsigned char)b->data[i] & 0xC0) != 0x80) chars++;
    for (; chars < width; chars++) qfs_buf_puts(b, " ");
    qfs_buf_puts(b, "  ");
}

static void short_digest(const char *digest, char *out, size_t n)
{
    if (!digest) {
        snprintf(out, n, "-");
        return;
    }
    /* "sha256:" and 12 hex digits tell images apart. */
    snprintf(out, n, "%.19s", digest);
}

/* repository:tag, or repository@sha256:<12 hex> for an image known by digest only. */
static void short_image(const struct qfs_image_id *img, char *out, size_t n)
{
    if (img->tag) {
        snprintf(out, n, "%s:%s", img->repository ? img->repository : "?", img->tag);
    } else {
        char d[24];
        short_digest(img->digest, d, sizeof(d));
        snprintf(out, n, "%s@%s", img->repository ? img->repository : "?", d);
    }
}

/* What a line is made of before it is written. */
struct line {
    const char *stage;
    const char *stage_colour;
    char where[48];   /* account/region */
    char what[200];   /* the image, or the event name */
    char outcome[400];
    const char *outcome_colour; /* NULL: plain */
};

static void where_from(struct line *l, const char *account, const char *region)
{
    if (account && *account && region && *region) snprintf(l->where, sizeof(l->where), "%s/%s", account, region);
    else snprintf(l->where, sizeof(l->where), "-");
}

static void undecodable(struct line *l, const char *err)
{
    l->outcome_colour = C_RED;
    snprintf(l->outcome, sizeof(l->outcome), "undecodable: %s", err);
    snprintf(l->what, sizeof(l->what), "?");
}

static const char *deploy_word(size_t n)
{
    return n == 1 ? "deploy" : "deploys";
}

static void line_event(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_event ev;
    if (qfs_event_decode(m->data, m->len, &ev, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, ev.account, ev.region);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(ev.detail, "eventName");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(ev.detail, "errorCode");
    snprintf(l->what, sizeof(l->what), "%s", cJSON_IsString(name) ? name->valuestring : ev.detail_type);
    if (cJSON_IsString(code)) {
        snprintf(l->outcome, sizeof(l->outcome), "id %s, call failed: %s", ev.id, code->valuestring);
        l->outcome_colour = C_YELLOW;
    } else {
        snprintf(l->outcome, sizeof(l->outcome), "id %s", ev.id);
    }
    qfs_event_cleanup(&ev);
}

static void line_image(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_image_record r;
    if (qfs_image_record_decode(m->data, m->len, &r, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, r.image.account, r.image.region);
    short_image(&r.image, l->what, sizeof(l->what));
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    if (r.image.digest) {
        char d[24];
        short_digest(r.image.digest, d, sizeof(d));
        qfs_buf_puts(&b, d);
    } else {
        qfs_buf_puts(&b, "digest unresolved");
    }
    qfs_buf_printf(&b, " %s", r.deploy.event_name);
    for (size_t i = 0; i < r.deploy.ncontainers; i++)
        qfs_buf_printf(&b, "%s%s", i ? "," : " ", r.deploy.containers[i]);
    if (r.cache_fail_open) qfs_buf_puts(&b, " (cache fail-open)");
    snprintf(l->outcome, sizeof(l->outcome), "%.*s", CUT(b.data ? b.data : "", sizeof(l->outcome) - 1));
    qfs_buf_cleanup(&b);
    qfs_image_record_cleanup(&r);
}

static void line_skip(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_skip s;
    if (qfs_skip_decode(m->data, m->len, &s, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, s.account, s.region);
    snprintf(l->what, sizeof(l->what), "%s", s.image ? s.image : s.deploy.event_name);
    const char *reason = qfs_skip_reason_str(s.reason);
    if (s.summary) {
        char counts[64];
        const struct qfs_severity_counts *c = &s.summary->counts;
        qfsctl_counts_str(c->critical, c->high, c->medium, c->low, c->info, counts, sizeof(counts));
        snprintf(l->outcome, sizeof(l->outcome), "skip %s %s", reason, counts);
    } else if (s.detail && s.reason != QFS_SKIP_CACHED && s.reason != QFS_SKIP_IN_FLIGHT) {
        snprintf(l->outcome, sizeof(l->outcome), "skip %s: %.*s", reason, CUT(s.detail, 200));
    } else {
        snprintf(l->outcome, sizeof(l->outcome), "skip %s", reason);
    }
    l->outcome_colour = C_YELLOW;
    qfs_skip_cleanup(&s);
}

static void line_request(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_scan_request r;
    if (qfs_scan_request_decode(m->data, m->len, &r, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, r.image.account, r.image.region);
    short_image(&r.image, l->what, sizeof(l->what));
    snprintf(l->outcome, sizeof(l->outcome), "requested, generation %" PRId64 ", %zu %s%s",
             r.generation, r.ndeploys, deploy_word(r.ndeploys),
             r.cache_fail_open ? " (cache fail-open)" : "");
    qfs_scan_request_cleanup(&r);
}

static void line_ready(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_scan_ready r;
    if (qfs_scan_ready_decode(m->data, m->len, &r, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, r.request.image.account, r.request.image.region);
    short_image(&r.request.image, l->what, sizeof(l->what));
    snprintf(l->outcome, sizeof(l->outcome), "ready, registry %s", r.registry_uuid);
    qfs_scan_ready_cleanup(&r);
}

static void line_completed(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_scan_result r;
    if (qfs_scan_result_decode(m->data, m->len, &r, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, r.image.account, r.image.region);
    short_image(&r.image, l->what, sizeof(l->what));
    char counts[64];
    qfsctl_counts_str(r.counts.critical, r.counts.high, r.counts.medium, r.counts.low, r.counts.info,
                      counts, sizeof(counts));
    snprintf(l->outcome, sizeof(l->outcome), "%s (%" PRId64 " total, %" PRId64 " fixable)", counts,
             r.total, r.patchable);
    l->outcome_colour = (r.counts.critical || r.counts.high) ? C_RED : C_GREEN;
    qfs_scan_result_cleanup(&r);
}

static void line_failed(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_scan_failure f;
    if (qfs_scan_failure_decode(m->data, m->len, &f, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, f.image.account, f.image.region);
    short_image(&f.image, l->what, sizeof(l->what));
    const char *reason = qfs_scan_failure_reason_str(f.reason);
    if (f.qualys_error_code)
        snprintf(l->outcome, sizeof(l->outcome), "failed %s (%.*s)%s%.*s", reason, CUT(f.qualys_error_code, 60),
                 f.detail ? ": " : "", CUT(f.detail ? f.detail : "", 200));
    else
        snprintf(l->outcome, sizeof(l->outcome), "failed %s%s%.*s", reason, f.detail ? ": " : "",
                 CUT(f.detail ? f.detail : "", 200));
    l->outcome_colour = C_RED;
    qfs_scan_failure_cleanup(&f);
}

static void line_notification(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_notification nt;
    if (qfs_notification_decode(m->data, m->len, &nt, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    where_from(l, nt.image.account, nt.image.region);
    short_image(&nt.image, l->what, sizeof(l->what));
    if (nt.decision == QFS_NOTIFY_SENT && nt.source == QFS_NOTIFY_SOURCE_SCAN_RESULT) {
        char counts[64];
        qfsctl_counts_str(nt.counts.critical, nt.counts.high, nt.counts.medium, nt.counts.low,
                          nt.counts.info, counts, sizeof(counts));
        snprintf(l->outcome, sizeof(l->outcome), "sent %s (%s)", counts, qfs_notify_reason_str(nt.reason));
    } else if (nt.decision == QFS_NOTIFY_SENT) {
        snprintf(l->outcome, sizeof(l->outcome), "sent scan failure %s",
                 qfs_scan_failure_reason_str(nt.failure_reason));
    } else {
        snprintf(l->outcome, sizeof(l->outcome), "not sent: %s", qfs_notify_reason_str(nt.reason));
    }
    l->outcome_colour = nt.decision == QFS_NOTIFY_SENT ? C_CYAN : NULL;
    qfs_notification_cleanup(&nt);
}

static void line_dlq(struct line *l, const struct qfsctl_msg *m, char *err, size_t errlen)
{
    struct qfs_dlq_entry e;
    if (qfs_dlq_entry_decode(m->data, m->len, &e, err, errlen) != QFS_OK) {
        undecodable(l, err);
        return;
    }
    struct qfs_subject_parts p;
    if (e.original_subject && qfs_subject_parse(e.original_subject, &p) == QFS_OK && p.account[0])
        where_from(l, p.account, p.region);
    snprintf(l->what, sizeof(l->what), "%s", e.original_subject ? e.original_subject : "(sqs)");
    snprintf(l->outcome, sizeof(l->outcome), "dlq %s %s: %.*s", e.service, qfs_status_str(e.status),
             CUT(e.reason, 300));
    l->outcome_colour = C_BOLD_RED;
    qfs_dlq_entry_cleanup(&e);
}

static void line_stats(struct line *l, const struct qfsctl_msg *m)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    if (qfsctl_json_compact(m->data, m->len, &b) != QFS_OK) {
        qfs_buf_reset(&b);
        qfs_buf_append(&b, m->data, m->len);
    }
    snprintf(l->outcome, sizeof(l->outcome), "%.*s", CUT(b.data ? b.data : "", sizeof(l->outcome) - 1));
    qfs_buf_cleanup(&b);
}

static const char *stage_colour(enum qfs_subject kind)
{
    switch (kind) {
    case QFS_SUBJECT_EVENTS: return C_BLUE;
    case QFS_SUBJECT_IMAGES: return C_CYAN;
    case QFS_SUBJECT_SCANS_REQUESTED:
    case QFS_SUBJECT_SCANS_READY: return C_MAGENTA;
    case QFS_SUBJECT_SCANS_COMPLETED: return C_GREEN;
    case QFS_SUBJECT_SCANS_FAILED: return C_RED;
    case QFS_SUBJECT_SCANS_SKIPPED: return C_YELLOW;
    case QFS_SUBJECT_NOTIFICATIONS: return C_CYAN;
    case QFS_SUBJECT_DLQ: return C_BOLD_RED;
    default: return C_DIM;
    }
}

qfs_status qfsctl_tail_line(const struct qfsctl_msg *m, bool colour, struct qfs_buf *out)
{
    struct line l;
    memset(&l, 0, sizeof(l));
    char err[256] = "";
    struct qfs_subject_parts p;
    snprintf(l.where, sizeof(l.where), "-");
    if (qfs_subject_parse(m->subject, &p) != QFS_OK) {
        l.stage = "?";
        l.stage_colour = C_DIM;
        snprintf(l.what, sizeof(l.what), "%s", m->subject ? m->subject : "?");
        snprintf(l.outcome, sizeof(l.outcome), "not a qfs subject");
    } else {
        l.stage = stage_names[p.kind];
        l.stage_colour = stage_colour(p.kind);
        if (p.account[0]) where_from(&l, p.account, p.region);
        else snprintf(l.what, sizeof(l.what), "%s", p.service);
        switch (p.kind) {
        case QFS_SUBJECT_EVENTS: line_event(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_IMAGES: line_image(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_SCANS_REQUESTED: line_request(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_SCANS_READY: line_ready(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_SCANS_COMPLETED: line_completed(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_SCANS_FAILED: line_failed(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_SCANS_SKIPPED: line_skip(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_NOTIFICATIONS: line_notification(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_DLQ: line_dlq(&l, m, err, sizeof(err)); break;
        case QFS_SUBJECT_STATS: line_stats(&l, m); break;
        default: break;
        }
    }

    size_t start = out->len;
    char ts[32] = "-";
    if (m->time_ms > 0) qfs_format_time_ms(m->time_ms, ts);
    if (colour) qfs_buf_puts(out, C_DIM);
    qfs_buf_printf(out, "%-24s", ts);
    if (colour) qfs_buf_puts(out, C_RESET);
    qfs_buf_puts(out, "  ");
    if (colour) qfs_buf_puts(out, l.stage_colour);
    qfs_buf_printf(out, "%-12s", l.stage);
    if (colour) qfs_buf_puts(out, C_RESET);
    qfs_buf_puts(out, "  ");
    put_col(out, l.where, 22);
    put_col(out, l.what[0] ? l.what : "-", 24);
    if (colour && l.outcome_colour) qfs_buf_puts(out, l.outcome_colour);
    put_clean(out, l.outcome, 400);
    if (colour && l.outcome_colour) qfs_buf_puts(out, C_RESET);
    /* No trailing blanks. */
    while (out->len > start && out->data[out->len - 1] == ' ') out->data[--out->len] = '\0';
    return qfs_buf_puts(out, "");
}

/* ---- JSON ---------------------------------------------------------------------------------------- */

qfs_status qfsctl_json_compact(const char *s, size_t n, struct qfs_buf *out)
{
    const char *end = NULL;
    cJSON *check = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (!check) return QFS_PROTOCOL;
    cJSON_Delete(check);
    /* One value and nothing after it but whitespace. */
    for (const char *p = end; p < s + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return QFS_PROTOCOL;
    size_t before = out->len, n_value = (size_t)(end - s), run_start = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < n_value; i++) {
        char c = s[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (i > run_start && qfs_buf_append(out, s + run_start, i - run_start) != QFS_OK) goto too_big;
            run_start = i + 1;
        }
    }
    if (n_value > run_start && qfs_buf_append(out, s + run_start, n_value - run_start) != QFS_OK)
        goto too_big;
    return qfs_buf_puts(out, "");
too_big:
    out->len = before;
    if (out->data) out->data[before] = '\0';
    return QFS_TOO_BIG;
}

qfs_status qfsctl_json_line(const struct qfsctl_msg *m, struct qfs_buf *out)
{
    char ts[32];
    qfs_buf_printf(out, "{\"seq\":%" PRIu64 ",\"time\":", m->seq);
    if (m->time_ms > 0) {
        qfs_format_time_ms(m->time_ms, ts);
        qfs_buf_printf(out, "\"%s\"", ts);
    } else {
        qfs_buf_puts(out, "null");
    }
    qfs_buf_puts(out, ",\"subject\":");
    qfs_buf_json_string(out, m->subject ? m->subject : "", m->subject ? strlen(m->subject) : 0);
    qfs_buf_puts(out, ",\"trace_id\":");
    if (m->trace_id) qfs_buf_json_string(out, m->trace_id, strlen(m->trace_id));
    else qfs_buf_puts(out, "null");
    qfs_buf_puts(out, ",\"message\":");
    if (qfsctl_json_compact(m->data, m->len, out) != QFS_OK) qfs_buf_json_string(out, m->data, m->len);
    return qfs_buf_puts(out, "}");
}

/* ---- trace --------------------------------------------------------------------------------------- */

static bool str_is(const cJSON *obj, const char *key, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

bool qfsctl_msg_has_trace(const struct qfsctl_msg *m, const char *id)
{
    if (!id) return true;
    if (m->trace_id && strcmp(m->trace_id, id) == 0) return true;
    cJSON *root = cJSON_ParseWithLength(m->data, m->len);
    bool found = false;
    if (cJSON_IsObject(root)) {
        struct qfs_subject_parts p;
        bool event = qfs_subject_parse(m->subject, &p) == QFS_OK && p.kind == QFS_SUBJECT_EVENTS;
        found = (event && str_is(root, "id", id)) || str_is(root, "event_id", id) ||
                str_is(root, "trace_id", id);
        const cJSON *deploys = cJSON_GetObjectItemCaseSensitive(root, "deploys");
        const cJSON *d;
        cJSON_ArrayForEach(d, deploys) {
            if (found) break;
            found = str_is(d, "event_id", id);
        }
    }
    cJSON_Delete(root);
    return found;
}
