/* qfsctl dlq list|show|replay and qfsctl replay: dead-letter entries, and re-running what is stored. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_dlq.h"
#include "qfsctl.h"

/* Bounds on one listing. */
#define MAX_ROWS 10000

static void print_stream_missing(const char *cmd)
{
    fprintf(stderr, "qfsctl %s: the stream %s does not exist yet: no qfs service has started on this NATS\n",
            cmd, QFS_STREAM_NAME);
}

/* "replay:<seq>": the id of a republished message, so replaying it twice publishes it once. */
static void replay_id(uint64_t seq, char *out, size_t n)
{
    snprintf(out, n, "replay:%" PRIu64, seq);
}

/* ---- list -------------------------------------------------------------------------------------- */

struct list_run {
    struct qfsctl_dlq_row *rows;
    size_t n;
    bool json;
    bool too_many;
};

static bool on_entry(void *arg, natsMsg *raw, const struct qfsctl_msg *m)
{
    struct list_run *l = arg;
    (void)raw;
    if (l->json) {
        struct qfs_buf b;
        qfs_buf_init(&b, 0);
        qfsctl_json_line(m, &b);
        printf("%s\n", b.data);
        qfs_buf_cleanup(&b);
        return true;
    }
    if (l->n >= MAX_ROWS) {
        l->too_many = true;
        return false;
    }
    struct qfs_dlq_entry e;
    char err[256];
    if (qfs_dlq_entry_decode(m->data, m->len, &e, err, sizeof(err)) != QFS_OK) {
        fprintf(stderr, "qfsctl dlq: seq %" PRIu64 " on %s is not a DLQ entry: %s\n", m->seq, m->subject, err);
        return true;
    }
    l->rows = qfs_xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
    l->rows[l->n].seq = m->seq;
    l->rows[l->n].entry = e;
    l->n++;
    return true;
}

static qfs_status read_entries(struct qfsctl_ctx *c, const struct qfsctl_dlq_opts *o, struct list_run *l)
{
    char filter[QFS_SUBJECT_MAX];
    if (o->service) qfs_subject_dlq(filter, sizeof(filter), o->service);
    else snprintf(filter, sizeof(filter), "%s", qfs_subject_filter(QFS_SUBJECT_DLQ));
    struct qfsctl_read r = {.filter = filter, .since_ms = o->since_ms};
    qfs_status s = qfsctl_stream_read(c, &r, on_entry, l);
    if (s == QFS_NOT_FOUND) print_stream_missing("dlq");
    return s;
}

static void free_rows(struct list_run *l)
{
    for (size_t i = 0; i < l->n; i++) qfs_dlq_entry_cleanup(&l->rows[i].entry);
    free(l->rows);
}

static int dlq_list(struct qfsctl_ctx *c, const struct qfsctl_dlq_opts *o)
{
    struct list_run l = {.json = o->json};
    qfs_status s = read_entries(c, o, &l);
    if (s == QFS_OK && !o->json) {
        struct qfs_buf out;
        qfs_buf_init(&out, 0);
        qfsctl_dlq_render(l.rows, l.n, &out);
        fwrite(out.data, 1, out.len, stdout);
        qfs_buf_cleanup(&out);
        if (l.too_many) fprintf(stderr, "qfsctl dlq: only the first %d entries: narrow with --since or --service\n", MAX_ROWS);
    }
    free_rows(&l);
    return s == QFS_OK ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
}

/* ---- show -------------------------------------------------------------------------------------- */

/* The DLQ entry stored at seq: *raw (the caller destroys it) and *e (cleaned up by the caller). */
static qfs_status get_entry(struct qfsctl_ctx *c, const char *cmd, uint64_t seq, natsMsg **raw,
                            struct qfsctl_msg *m, struct qfs_dlq_entry *e)
{
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(raw, c->js, QFS_STREAM_NAME, seq, NULL, &jerr);
    if (s != NATS_OK) {
        if (jerr == JSStreamNotFoundErr) print_stream_missing(cmd);
        else if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
            fprintf(stderr, "qfsctl %s: no message with sequence %" PRIu64 " in the stream (it may have aged out; "
                            "qfsctl dlq list shows the entries there are)\n", cmd, seq);
        else
            fprintf(stderr, "qfsctl %s: cannot read sequence %" PRIu64 ": %s\n", cmd, seq, natsStatus_GetText(s));
        return s == NATS_NOT_FOUND || jerr ? QFS_NOT_FOUND : QFS_UNAVAILABLE;
    }
    qfsctl_msg_from(*raw, m);
    if (m->seq == 0) m->seq = seq;
    struct qfs_subject_parts p;
    if (qfs_subject_parse(m->subject, &p) != QFS_OK || p.kind != QFS_SUBJECT_DLQ) {
        fprintf(stderr, "qfsctl %s: sequence %" PRIu64 " is a message on %s, not a DLQ entry (see qfsctl dlq list)\n",
                cmd, seq, m->subject);
        return QFS_NOT_FOUND;
    }
    char err[256];
    if (qfs_dlq_entry_decode(m->data, m->len, e, err, sizeof(err)) != QFS_OK) {
        fprintf(stderr, "qfsctl %s: sequence %" PRIu64 " does not decode as a DLQ entry: %s\n", cmd, seq, err);
        return QFS_PROTOCOL;
    }
    return QFS_OK;
}

/* Writes text with control characters other than newline and tab replaced. */
static void print_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        putchar((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : ch);
    }
}

static int dlq_show(struct qfsctl_ctx *c, const struct qfsctl_dlq_opts *o)
{
    natsMsg *raw = NULL;
    struct qfsctl_msg m;
    struct qfs_dlq_entry e;
    memset(&e, 0, sizeof(e));
    qfs_status s = get_entry(c, "dlq show", o->seq, &raw, &m, &e);
    if (s == QFS_OK && o->json) {
        struct qfs_buf b;
        qfs_buf_init(&b, 0);
        qfsctl_json_line(&m, &b);
        printf("%s\n", b.data);
        qfs_buf_cleanup(&b);
    } else if (s == QFS_OK) {
        char stored[32];
        qfs_format_time_ms(m.time_ms, stored);
        printf("seq:          %" PRIu64 " (%s)\n", m.seq, m.subject);
        printf("time:         %s (stored %s)\n", e.time, stored);
        printf("service:      %s\n", e.service);
        printf("status:       %s\n", qfs_status_str(e.status));
        printf("reason:       ");
        print_clean(e.reason, strlen(e.reason));
        printf("\nsubject:      %s\n", e.original_subject ? e.original_subject : "(none: read from SQS)");
        printf("trace id:     %s\n", e.trace_id ? e.trace_id : "-");
        printf("deliveries:   %" PRId64 "\n", e.delivery_count);
        printf("headers:%s\n", e.nheaders ? "" : "      (none)");
        for (size_t i = 0; i < e.nheaders; i++) {
            printf("  %s: ", e.headers[i].name);
            print_clean(e.headers[i].value, strlen(e.headers[i].value));
            printf("\n");
        }
        bool text = qfs_utf8_is_valid(e.payload, e.payload_len) && !memchr(e.payload, '\0', e.payload_len);
        printf("payload:      %zu bytes%s%s\n", e.payload_len, e.payload_truncated ? " (cut: the original had " : "",
               e.payload_truncated ? "more)" : "");
        if (text) {
            print_clean(e.payload, e.payload_len);
            printf("\n");
        } else {
            char *b64 = qfs_base64_encode(e.payload, e.payload_len);
            printf("(not text; base64)\n%s\n", b64);
            free(b64);
        }
        char subject[QFS_SUBJECT_MAX], err[300];
        if (qfsctl_dlq_replay_subject(&e, subject, err, sizeof(err)) == QFS_OK)
            printf("replay:       qfsctl dlq replay %" PRIu64 " republishes it to %s\n", m.seq, subject);
        else
            printf("replay:       not possible: %s\n", err);
    }
    qfs_dlq_entry_cleanup(&e);
    natsMsg_Destroy(raw);
    return s == QFS_OK ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
}

/* ---- replay ------------------------------------------------------------------------------------ */

static qfs_status replay_entry(struct qfsctl_ctx *c, uint64_t seq, const struct qfs_dlq_entry *e)
{
    char subject[QFS_SUBJECT_MAX], err[300], id[40];
    if (qfsctl_dlq_replay_subject(e, subject, err, sizeof(err)) != QFS_OK) {
        fprintf(stderr, "qfsctl dlq replay: seq %" PRIu64 " (%s): %s\n", seq, e->service, err);
        return QFS_PROTOCOL;
    }
    const char *trace = e->trace_id ? e->trace_id : qfsctl_dlq_header(e, QFS_HDR_TRACE_ID);
    const char *schema = qfsctl_dlq_header(e, QFS_HDR_SCHEMA);
    struct qfs_subject_parts p;
    if (!schema && qfs_subject_parse(subject, &p) == QFS_OK) schema = qfs_schema_name(qfs_subject_schema(p.kind));
    replay_id(seq, id, sizeof(id));
    uint64_t new_seq = 0;
    bool dup = false;
    qfs_status s = qfsctl_publish(c, subject, e->payload, e->payload_len, id, trace, schema, &new_seq, &dup);
    if (s != QFS_OK) return s;
    if (dup)
        printf("seq %" PRIu64 " was already replayed to %s (as seq %" PRIu64 "; id %s is in the duplicate window)\n",
               seq, subject, new_seq, id);
    else
        printf("replayed seq %" PRIu64 " (%s) -> %s as seq %" PRIu64 "\n", seq, e->service, subject, new_seq);
    fflush(stdout);
    return QFS_OK;
}

static int dlq_replay(struct qfsctl_ctx *c, const struct qfsctl_dlq_opts *o)
{
    if (!o->all) {
        natsMsg *raw = NULL;
        struct qfsctl_msg m;
        struct qfs_dlq_entry e;
        memset(&e, 0, sizeof(e));
        qfs_status s = get_entry(c, "dlq replay", o->seq, &raw, &m, &e);
        if (s == QFS_OK) s = replay_entry(c, o->seq, &e);
        qfs_dlq_entry_cleanup(&e);
        natsMsg_Destroy(raw);
        return s == QFS_OK ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
    }
    /* Read them all first, then publish: the listing does not see its own replays. */
    struct list_run l = {0};
    qfs_status s = read_entries(c, o, &l);
    size_t failed = 0;
    for (size_t i = 0; s == QFS_OK && i < l.n; i++)
        if (replay_entry(c, l.rows[i].seq, &l.rows[i].entry) != QFS_OK) failed++;
    if (s == QFS_OK && l.n == 0) printf("The DLQ is empty: nothing to replay.\n");
    if (l.too_many) fprintf(stderr, "qfsctl dlq replay: only the first %d entries were replayed: run it again\n", MAX_ROWS);
    free_rows(&l);
    return s == QFS_OK && !failed ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
}

int qfsctl_cmd_dlq(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_dlq_opts o;
    char err[512];
    if (qfsctl_dlq_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("dlq", err);
    if (o.help) {
        fputs(qfsctl_usage("dlq"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    if (qfsctl_nats_open(c) != QFS_OK) return QFSCTL_EXIT_FAIL;
    switch (o.action) {
    case QFSCTL_DLQ_LIST: return dlq_list(c, &o);
    case QFSCTL_DLQ_SHOW: return dlq_show(c, &o);
    case QFSCTL_DLQ_REPLAY: return dlq_replay(c, &o);
    }
    return QFSCTL_EXIT_USAGE;
}

/* ---- qfsctl replay --since --------------------------------------------------------------------- */

struct replay_run {
    struct qfsctl_ctx *c;
    bool dry_run;
    size_t sent, duplicates, failed;
};

static bool on_stored(void *arg, natsMsg *raw, const struct qfsctl_msg *m)
{
    struct replay_run *r = arg;
    if (!qfsctl_replay_subject_ok(m->subject)) return true;
    char id[40];
    replay_id(m->seq, id, sizeof(id));
    if (r->dry_run) {
        printf("would replay seq %" PRIu64 " -> %s (id %s)\n", m->seq, m->subject, id);
        r->sent++;
        return true;
    }
    const char *schema = NULL;
    natsMsgHeader_Get(raw, QFS_HDR_SCHEMA, &schema);
    uint64_t seq = 0;
    bool dup = false;
    if (qfsctl_publish(r->c, m->subject, m->data, m->len, id, m->trace_id, schema, &seq, &dup) != QFS_OK) {
        r->failed++;
        return r->failed < 10; /* NATS is in trouble: stop soon */
    }
    if (dup) r->duplicates++;
    else r->sent++;
    printf("%s seq %" PRIu64 " -> %s%s\n", dup ? "already replayed" : "replayed", m->seq, m->subject,
           dup ? " (duplicate id)" : "");
    fflush(stdout);
    return true;
}

int qfsctl_cmd_replay(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_replay_opts o;
    char err[512];
    if (qfsctl_replay_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("replay", err);
    if (o.help) {
        fputs(qfsctl_usage("replay"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    if (qfsctl_nats_open(c) != QFS_OK) return QFSCTL_EXIT_FAIL;
    struct replay_run r = {.c = c, .dry_run = o.dry_run};
    struct qfsctl_read rd = {.filter = o.subject, .since_ms = o.since_ms};
    qfs_status s = qfsctl_stream_read(c, &rd, on_stored, &r);
    if (s == QFS_NOT_FOUND) print_stream_missing("replay");
    if (s == QFS_OK)
        printf("%zu %s%s, %zu already replayed, %zu failed\n", r.sent, o.dry_run ? "to replay" : "replayed",
               "", r.duplicates, r.failed);
    return s == QFS_OK && !r.failed ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
}
