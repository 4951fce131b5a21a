/* Tables: the status of the services, recent scans and DLQ entries, as text and JSON. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_scan.h"
#include "qfsctl.h"

/* ---- a text table ------------------------------------------------------------------------------ */

void qfsctl_table_init(struct qfsctl_table *t, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
}

/* A copy of s ("-" for NULL) with control characters replaced and at most 200 bytes (cut on a UTF-8 boundary). */
static char *clean_copy(const char *s)
{
    if (!s) return qfs_xstrdup("-");
    size_t len = strlen(s);
    bool cut = len > 200;
    if (cut) len = qfs_utf8_cut(s, 197);
    char *c = qfs_xmalloc(len + 4);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        c[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    strcpy(c + len, cut ? "..." : "");
    return c;
}

void qfsctl_table_add(struct qfsctl_table *t, const char *const *cells)
{
    t->cells = qfs_xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
    for (size_t i = 0; i < t->ncols; i++) t->cells[t->nrows * t->ncols + i] = clean_copy(cells[i]);
    t->nrows++;
}

static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

qfs_status qfsctl_table_render(const struct qfsctl_table *t, struct qfs_buf *out)
{
    size_t *w = qfs_xcalloc(t->ncols ? t->ncols : 1, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = chars(t->cells[r * t->ncols + c]);
            if (n > w[c]) w[c] = n;
        }
    qfs_status s = QFS_OK;
    for (size_t r = 0; r < t->nrows && s == QFS_OK; r++) {
        for (size_t c = 0; c < t->ncols && s == QFS_OK; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            s = qfs_buf_puts(out, cell);
            if (c + 1 < t->ncols)
                for (size_t pad = chars(cell); pad < w[c] + 2 && s == QFS_OK; pad++) s = qfs_buf_puts(out, " ");
        }
        while (out->len && out->data[out->len - 1] == ' ') out->data[--out->len] = '\0';
        if (s == QFS_OK) s = qfs_buf_puts(out, "\n");
    }
    free(w);
    return s;
}

void qfsctl_table_cleanup(struct qfsctl_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---- status ------------------------------------------------------------------------------------ */

void qfsctl_status_init(struct qfsctl_status *st)
{
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) {
        st->services[i].name = qfsctl_services[i];
        st->services[i].connections = -1;
    }
}

static void ago(int64_t now_ms, int64_t then_ms, char *out, size_t n)
{
    if (then_ms <= 0) {
        snprintf(out, n, "never");
        return;
    }
    int64_t s = (now_ms - then_ms) / 1000;
    if (s < 0) s = 0;
    if (s < 120) snprintf(out, n, "%" PRId64 "s ago", s);
    else if (s < 7200) snprintf(out, n, "%" PRId64 "m ago", s / 60);
    else if (s < 172800) snprintf(out, n, "%" PRId64 "h ago", s / 3600);
    else snprintf(out, n, "%" PRId64 "d ago", s / 86400);
}

void qfsctl_status_judge(struct qfsctl_status *st, int64_t now_ms, int64_t idle_ms, bool strict)
{
    st->healthy = st->stream_found;
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) {
        struct qfsctl_service_stat *s = &st->services[i];
        bool stats_recent = s->stats_seen_ms > 0 && now_ms - s->stats_seen_ms <= idle_ms;
        s->why[0] = '\0';
        size_t down = 0;
        const char *down_name = NULL;
        int64_t down_last = 0;
        for (size_t c = 0; c < s->nconsumers; c++) {
            struct qfsctl_consumer_stat *k = &s->consumers[c];
            bool recent = k->last_active_ms > 0 && now_ms - k->last_active_ms <= idle_ms;
            k->up = k->waiting > 0 || k->push_bound || recent || stats_recent;
            if (!k->up) {
                down++;
                down_name = k->name;
                down_last = k->last_active_ms;
            }
        }
        if (s->connections == 0) {
            s->state = QFSCTL_DOWN;
            snprintf(s->why, sizeof(s->why), "no NATS connection named qfs-%s", s->name);
        } else if (down) {
            char when[32];
            ago(now_ms, down_last, when, sizeof(when));
            s->state = QFSCTL_DOWN;
            snprintf(s->why, sizeof(s->why), "%s: no pull request waiting, last delivery %s", down_name, when);
        } else if (s->nconsumers) {
            s->state = QFSCTL_UP;
        } else if (strcmp(s->name, "ingest") == 0) {
            /* ingest reads SQS: only its connection or its statistics say it is alive. */
            if (s->connections > 0 || stats_recent) {
                s->state = QFSCTL_UP;
            } else {
                s->state = QFSCTL_UNKNOWN;
                snprintf(s->why, sizeof(s->why), "reads SQS: set QFS_NATS_MONITOR_URL to see its connection");
            }
        } else {
            s->state = QFSCTL_DOWN;
            snprintf(s->why, sizeof(s->why), "no consumer on the stream: never started?");
        }
        if (s->checked && s->state == QFSCTL_DOWN) st->healthy = false;
    }
    if (strict && st->dlq_total) st->healthy = false;
}

static const char *state_str(enum qfsctl_state s)
{
    return s == QFSCTL_UP ? "up" : s == QFSCTL_DOWN ? "DOWN" : "unknown";
}

qfs_status qfsctl_status_render(const struct qfsctl_status *st, int64_t now_ms, struct qfs_buf *out)
{
    if (!st->stream_found)
        return qfs_buf_puts(out, "The stream QFS does not exist yet: no service has started on this NATS.\n");
    struct qfsctl_table t;
    qfsctl_table_init(&t, 10);
    const char *head[] = {"SERVICE", "STATE", "CONN", "CONSUMER", "LAG", "ACK_PENDING", "REDELIVERED",
                          "WAITING", "LAST_ACTIVE", "DLQ"};
    qfsctl_table_add(&t, head);
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) {
        const struct qfsctl_service_stat *s = &st->services[i];
        char conn[16], dlq[24];
        if (s->connections >= 0) snprintf(conn, sizeof(conn), "%d", s->connections);
        else snprintf(conn, sizeof(conn), "?");
        snprintf(dlq, sizeof(dlq), "%" PRIu64, s->dlq);
        char state[24];
        snprintf(state, sizeof(state), "%s%s", state_str(s->state), s->checked ? "" : " (unchecked)");
        if (!s->nconsumers) {
            const char *row[] = {s->name, state, conn, "-", "-", "-", "-", "-", "-", dlq};
            qfsctl_table_add(&t, row);
            continue;
        }
        for (size_t c = 0; c < s->nconsumers; c++) {
            const struct qfsctl_consumer_stat *k = &s->consumers[c];
            char lag[24], ackp[24], red[24], wait[24], last[32];
            snprintf(lag, sizeof(lag), "%" PRIu64, k->pending);
            snprintf(ackp, sizeof(ackp), "%" PRId64, k->ack_pending);
            snprintf(red, sizeof(red), "%" PRId64, k->redelivered);
            snprintf(wait, sizeof(wait), "%" PRId64 "%s", k->waiting, k->up ? "" : " !");
            ago(now_ms, k->last_active_ms, last, sizeof(last));
            const char *row[] = {c ? "" : s->name, c ? "" : state, c ? "" : conn, k->name, lag, ackp, red,
                                 wait, last, c ? "" : dlq};
            qfsctl_table_add(&t, row);
        }
    }
    qfs_status r = qfsctl_table_render(&t, out);
    qfsctl_table_cleanup(&t);
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++)
        if (st->services[i].why[0])
            qfs_buf_printf(out, "  %s: %s\n", st->services[i].name, st->services[i].why);
    uint64_t done = st->completed + st->failed;
    qfs_buf_printf(out, "\nScans in flight: %" PRIu64 " (requested %" PRIu64 ", completed %" PRIu64
                        ", failed %" PRIu64 ", as stored in the stream)\n",
                   st->requested > done ? st->requested - done : 0, st->requested, st->completed, st->failed);
    qfs_buf_printf(out, "DLQ: %" PRIu64 " entr%s", st->dlq_total, st->dlq_total == 1 ? "y" : "ies");
    if (st->dlq_other) qfs_buf_printf(out, " (%" PRIu64 " from other services)", st->dlq_other);
    qfs_buf_puts(out, "\n");
    if (st->has_last_error)
        qfs_buf_printf(out, "Last error: %s %s (seq %" PRIu64 "): %s\n", st->last_error_time,
                       st->last_error_service, st->last_error_seq, st->last_error_reason);
    return r == QFS_OK ? qfs_buf_printf(out, "Health: %s\n", st->healthy ? "ok" : "UNHEALTHY") : r;
}

qfs_status qfsctl_status_json(const struct qfsctl_status *st, struct qfs_buf *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "healthy", st->healthy);
    cJSON_AddBoolToObject(root, "stream_found", st->stream_found);
    cJSON *svcs = cJSON_AddArrayToObject(root, "services");
    for (size_t i = 0; i < QFSCTL_NSERVICES; i++) {
        const struct qfsctl_service_stat *s = &st->services[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "state", s->state == QFSCTL_UP ? "up" : s->state == QFSCTL_DOWN ? "down" : "unknown");
        cJSON_AddBoolToObject(o, "checked", s->checked);
        if (s->why[0]) cJSON_AddStringToObject(o, "why", s->why);
        else cJSON_AddNullToObject(o, "why");
        if (s->connections >= 0) cJSON_AddNumberToObject(o, "connections", s->connections);
        else cJSON_AddNullToObject(o, "connections");
        cJSON_AddNumberToObject(o, "dlq", (double)s->dlq);
        cJSON *cons = cJSON_AddArrayToObject(o, "consumers");
        for (size_t c = 0; c < s->nconsumers; c++) {
            const struct qfsctl_consumer_stat *k = &s->consumers[c];
            cJSON *co = cJSON_CreateObject();
            cJSON_AddStringToObject(co, "name", k->name);
            cJSON_AddStringToObject(co, "filter", k->filter);
            cJSON_AddBoolToObject(co, "up", k->up);
            cJSON_AddNumberToObject(co, "lag", (double)k->pending);
            cJSON_AddNumberToObject(co, "ack_pending", (double)k->ack_pending);
            cJSON_AddNumberToObject(co, "redelivered", (double)k->redelivered);
            cJSON_AddNumberToObject(co, "waiting", (double)k->waiting);
            if (k->last_active_ms > 0) {
                char ts[32];
                qfs_format_time_ms(k->last_active_ms, ts);
                cJSON_AddStringToObject(co, "last_active", ts);
            } else {
                cJSON_AddNullToObject(co, "last_active");
            }
            cJSON_AddItemToArray(cons, co);
        }
        cJSON_AddItemToArray(svcs, o);
    }
    cJSON *scans = cJSON_AddObjectToObject(root, "scans");
    uint64_t done = st->completed + st->failed;
    cJSON_AddNumberToObject(scans, "requested", (double)st->requested);
    cJSON_AddNumberToObject(scans, "completed", (double)st->completed);
    cJSON_AddNumberToObject(scans, "failed", (double)st->failed);
    cJSON_AddNumberToObject(scans, "in_flight", (double)(st->requested > done ? st->requested - done : 0));
    cJSON *dlq = cJSON_AddObjectToObject(root, "dlq");
    cJSON_AddNumberToObject(dlq, "total", (double)st->dlq_total);
    if (st->has_last_error) {
        cJSON *le = cJSON_AddObjectToObject(dlq, "last_error");
        cJSON_AddNumberToObject(le, "seq", (double)st->last_error_seq);
        cJSON_AddStringToObject(le, "service", st->last_error_service);
        cJSON_AddStringToObject(le, "time", st->last_error_time);
        cJSON_AddStringToObject(le, "reason", st->last_error_reason);
    } else {
        cJSON_AddNullToObject(dlq, "last_error");
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    qfs_status s = text ? qfs_buf_puts(out, text) : QFS_INTERNAL;
    if (s == QFS_OK) s = qfs_buf_puts(out, "\n");
    free(text);
    return s;
}

/* ---- scans ------------------------------------------------------------------------------------- */

/* "UpdateService web", "RunTask migrate:7": the event and what it deployed. */
static void deploy_label(const struct qfs_deploy *d, char *out, size_t n)
{
    const char *what = d->service ? d->service : d->task_definition_arn;
    if (what) {
        const char *slash = strrchr(what, '/');
        if (slash && slash[1]) what = slash + 1;
        snprintf(out, n, "%s %s", d->event_name, what);
    } else {
        snprintf(out, n, "%s", d->event_name);
    }
}

static void deploys_str(const struct qfs_deploy *d, size_t n, char *out, size_t len)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    for (size_t i = 0; i < n && i < 3; i++) {
        char one[160];
        deploy_label(&d[i], one, sizeof(one));
        qfs_buf_printf(&b, "%s%s", i ? ", " : "", one);
    }
    if (n > 3) qfs_buf_printf(&b, " +%zu more", n - 3);
    snprintf(out, len, "%s", b.data ? b.data : "-");
    qfs_buf_cleanup(&b);
}

static void fill_image(struct qfsctl_scan_row *row, const struct qfs_image_id *img)
{
    snprintf(row->account_region, sizeof(row->account_region), "%s/%s", img->account, img->region);
    if (img->tag) snprintf(row->image, sizeof(row->image), "%s:%s", img->repository, img->tag);
    else snprintf(row->image, sizeof(row->image), "%s@%.19s", img->repository, img->digest ? img->digest : "?");
    snprintf(row->digest, sizeof(row->digest), "%.19s", img->digest ? img->digest : "-");
    if (qfs_image_key_format(row->key, sizeof(row->key), img) != QFS_OK) row->key[0] = '\0';
}

qfs_status qfsctl_scan_row(const struct qfsctl_msg *m, struct qfsctl_scan_row *row, char *err, size_t errlen)
{
    memset(row, 0, sizeof(*row));
    row->time_ms = m->time_ms;
    row->seq = m->seq;
    struct qfs_subject_parts p;
    if (qfs_subject_parse(m->subject, &p) != QFS_OK) {
        snprintf(err, errlen, "%s is not a qfs subject", m->subject);
        return QFS_PROTOCOL;
    }
    if (p.kind == QFS_SUBJECT_SCANS_COMPLETED) {
        struct qfs_scan_result r;
        qfs_status s = qfs_scan_result_decode(m->data, m->len, &r, err, errlen);
        if (s != QFS_OK) return s;
        fill_image(row, &r.image);
        char counts[64];
        qfsctl_counts_str(r.counts.critical, r.counts.high, r.counts.medium, r.counts.low, r.counts.info,
                          counts, sizeof(counts));
        snprintf(row->result, sizeof(row->result), "%s", counts);
        deploys_str(r.deploys, r.ndeploys, row->deploys, sizeof(row->deploys));
        row->generation = r.generation;
        row->completed = true;
        snprintf(row->cached, sizeof(row->cached), "?");
        qfs_scan_result_cleanup(&r);
        return QFS_OK;
    }
    if (p.kind == QFS_SUBJECT_SCANS_FAILED) {
        struct qfs_scan_failure f;
        qfs_status s = qfs_scan_failure_decode(m->data, m->len, &f, err, errlen);
        if (s != QFS_OK) return s;
        fill_image(row, &f.image);
        snprintf(row->result, sizeof(row->result), "failed %s", qfs_scan_failure_reason_str(f.reason));
        deploys_str(f.deploys, f.ndeploys, row->deploys, sizeof(row->deploys));
        row->generation = f.generation;
        snprintf(row->cached, sizeof(row->cached), "-");
        qfs_scan_failure_cleanup(&f);
        return QFS_OK;
    }
    snprintf(err, errlen, "%s is not a scan outcome", m->subject);
    return QFS_PROTOCOL;
}

bool qfsctl_scan_row_matches(const struct qfsctl_scan_row *row, const struct qfsctl_msg *m, const char *repo)
{
    if (!repo) return true;
    if (strcmp(row->image, repo) == 0) return true;
    cJSON *root = cJSON_ParseWithLength(m->data, m->len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "repository");
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(root, "image");
    bool match = (cJSON_IsString(r) && strcmp(r->valuestring, repo) == 0) ||
                 (cJSON_IsString(img) && strcmp(img->valuestring, repo) == 0);
    cJSON_Delete(root);
    return match;
}

qfs_status qfsctl_scans_render(const struct qfsctl_scan_row *rows, size_t n, struct qfs_buf *out)
{
    if (n == 0) return qfs_buf_puts(out, "No scan outcomes in that time.\n");
    struct qfsctl_table t;
    qfsctl_table_init(&t, 8);
    const char *head[] = {"WHEN", "SEQ", "ACCOUNT/REGION", "IMAGE", "DIGEST", "RESULT", "CACHED", "DEPLOYS"};
    qfsctl_table_add(&t, head);
    for (size_t i = 0; i < n; i++) {
        char when[32], seq[24];
        qfs_format_time_ms(rows[i].time_ms, when);
        snprintf(seq, sizeof(seq), "%" PRIu64, rows[i].seq);
        const char *row[] = {when, seq, rows[i].account_region, rows[i].image, rows[i].digest,
                             rows[i].result, rows[i].cached, rows[i].deploys};
        qfsctl_table_add(&t, row);
    }
    qfs_status s = qfsctl_table_render(&t, out);
    qfsctl_table_cleanup(&t);
    return s;
}

/* ---- DLQ --------------------------------------------------------------------------------------- */

qfs_status qfsctl_dlq_render(const struct qfsctl_dlq_row *rows, size_t n, struct qfs_buf *out)
{
    if (n == 0) return qfs_buf_puts(out, "The DLQ is empty.\n");
    struct qfsctl_table t;
    qfsctl_table_init(&t, 7);
    const char *head[] = {"SEQ", "TIME", "SERVICE", "STATUS", "SUBJECT", "TRACE", "REASON"};
    qfsctl_table_add(&t, head);
    for (size_t i = 0; i < n; i++) {
        const struct qfs_dlq_entry *e = &rows[i].entry;
        char seq[24], reason[124];
        snprintf(seq, sizeof(seq), "%" PRIu64, rows[i].seq);
        size_t cut = qfs_utf8_cut(e->reason, 100);
        snprintf(reason, sizeof(reason), "%.*s%s", (int)cut, e->reason, e->reason[cut] ? "..." : "");
        const char *row[] = {seq, e->time, e->service, qfs_status_str(e->status),
                             e->original_subject ? e->original_subject : "(sqs)", e->trace_id, reason};
        qfsctl_table_add(&t, row);
    }
    qfs_status s = qfsctl_table_render(&t, out);
    qfsctl_table_cleanup(&t);
    return s;
}
