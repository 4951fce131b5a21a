/* qfsctl scans: recent scan outcomes from the stream, and whether the cache store still has them. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qfsctl.h"

/* The cache's key for a stored result (services/DESIGN.md, "Cache store keys"). */
#define RESULT_KEY_PREFIX "result:"

struct scans_run {
    const struct qfsctl_scans_opts *o;
    struct qfsctl_scan_row *rows;
    char **json; /* --json: each row's message as a JSON line, owned */
    size_t n;
};

static bool on_outcome(void *arg, natsMsg *raw, const struct qfsctl_msg *m)
{
    struct scans_run *r = arg;
    (void)raw;
    struct qfsctl_scan_row row;
    char err[256];
    if (qfsctl_scan_row(m, &row, err, sizeof(err)) != QFS_OK) {
        fprintf(stderr, "qfsctl scans: seq %" PRIu64 " on %s does not decode: %s\n", m->seq, m->subject, err);
        return true;
    }
    if (!qfsctl_scan_row_matches(&row, m, r->o->image)) return true;
    r->rows = qfs_xrealloc(r->rows, (r->n + 1) * sizeof(*r->rows));
    r->json = qfs_xrealloc(r->json, (r->n + 1) * sizeof(*r->json));
    r->json[r->n] = NULL;
    if (r->o->json) {
        struct qfs_buf b;
        qfs_buf_init(&b, 0);
        qfsctl_json_line(m, &b);
        r->json[r->n] = qfs_buf_take(&b);
    }
    /* Rows are sorted later: the index keeps each row's JSON with it. */
    row.index = r->n;
    r->rows[r->n++] = row;
    return true;
}

static int by_seq(const void *a, const void *b)
{
    const struct qfsctl_scan_row *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- the cache column ------------------------------------------------------------------------- */

struct lookup {
    struct qfsctl_scan_row *row;
    size_t *pending;
    bool *failed;
};

static void on_result(const struct qfs_kv_result *r, void *arg)
{
    struct lookup *l = arg;
    if (r->status == QFS_NOT_FOUND) {
        snprintf(l->row->cached, sizeof(l->row->cached), "no");
    } else if (r->status != QFS_OK) {
        *l->failed = true;
    } else {
        /* {"generation":G,"summary":...}: cached when it is this scan's result. */
        cJSON *v = cJSON_ParseWithLength(r->value, r->len);
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(v, "generation");
        bool same = cJSON_IsNumber(g) && (int64_t)g->valuedouble == l->row->generation;
        snprintf(l->row->cached, sizeof(l->row->cached), "%s", same ? "yes" : "no");
        cJSON_Delete(v);
    }
    (*l->pending)--;
    free(l);
}

static bool none_pending(void *arg)
{
    return *(const size_t *)arg == 0;
}

static void lookup_cache(struct qfsctl_ctx *c, struct qfsctl_scan_row *rows, size_t n)
{
    struct qfsctl_io io;
    if (qfsctl_io_open(&io, &c->cfg, QFSCTL_IO_KV) == QFS_OK) {
        size_t pending = 0;
        bool failed = false;
        for (size_t i = 0; i < n; i++) {
            if (!rows[i].completed || !rows[i].key[0]) continue;
            char *key = qfs_xasprintf("%s%s", RESULT_KEY_PREFIX, rows[i].key);
            struct lookup *l = qfs_xmalloc(sizeof(*l));
            *l = (struct lookup){&rows[i], &pending, &failed};
            if (qfs_kv_get(io.kv, key, on_result, l) == QFS_OK) pending++;
            else free(l);
            free(key);
        }
        /* Every accepted get answers exactly once. */
        qfs_loop_run_until(&io.loop, none_pending, &pending, -1);
        if (failed)
            fprintf(stderr, "qfsctl scans: the cache store did not answer (QFS_CACHE_BACKEND, QFS_REDIS_URL): "
                            "CACHED shows ?\n");
    } else {
        fprintf(stderr, "qfsctl scans: CACHED shows ? (use --no-cache to skip the cache store)\n");
    }
    qfsctl_io_close(&io);
}

int qfsctl_cmd_scans(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_scans_opts o;
    char err[512];
    if (qfsctl_scans_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("scans", err);
    if (o.help) {
        fputs(qfsctl_usage("scans"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    if (qfsctl_nats_open(c) != QFS_OK) return QFSCTL_EXIT_FAIL;
    struct scans_run r = {.o = &o};
    const enum qfs_subject kinds[] = {QFS_SUBJECT_SCANS_COMPLETED, QFS_SUBJECT_SCANS_FAILED};
    qfs_status s = QFS_OK;
    for (size_t i = 0; i < 2 && s == QFS_OK; i++) {
        struct qfsctl_read rd = {.filter = qfs_subject_filter(kinds[i]), .since_ms = o.since_ms};
        s = qfsctl_stream_read(c, &rd, on_outcome, &r);
    }
    if (s == QFS_NOT_FOUND)
        fprintf(stderr, "qfsctl scans: the stream %s does not exist yet: no qfs service has started\n", QFS_STREAM_NAME);
    if (s == QFS_OK) {
        /* Oldest first, the last --limit of them. */
        if (r.n) qsort(r.rows, r.n, sizeof(*r.rows), by_seq);
        size_t first = r.n > (size_t)o.limit ? r.n - (size_t)o.limit : 0;
        if (o.json) {
            for (size_t i = first; i < r.n; i++) printf("%s\n", r.json[r.rows[i].index]);
        } else {
            if (!o.no_cache) lookup_cache(c, r.rows + first, r.n - first);
            struct qfs_buf out;
            qfs_buf_init(&out, 0);
            qfsctl_scans_render(r.rows + first, r.n - first, &out);
            fwrite(out.data, 1, out.len, stdout);
            qfs_buf_cleanup(&out);
        }
    }
    for (size_t i = 0; i < r.n; i++) free(r.json[i]);
    free(r.json);
    free(r.rows);
    return s == QFS_OK ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
}
