/* qfsctl inject: deploy events from files into the SQS queue, or straight onto qfs.events.*. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/aws_sqs.h"
#include "qfs/proto_event.h"
#include "qfsctl.h"

/* Bounds on what one run sends. */
#define FILE_MAX_BYTES (64 * 1024 * 1024)
#define MAX_EVENTS 10000

struct outgoing {
    char *text; /* owned */
    size_t len;
    char id[136];
    char subject[QFS_SUBJECT_MAX];
};

struct batch {
    struct outgoing *items;
    size_t n;
    size_t failures;
};

static qfs_status read_file(const char *path, struct qfs_buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "qfsctl inject: cannot open %s: %s\n", path, strerror(errno));
        return QFS_IO;
    }
    char chunk[65536];
    size_t n;
    qfs_status s = QFS_OK;
    while (s == QFS_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) s = qfs_buf_append(b, chunk, n);
    if (s == QFS_OK && ferror(f)) s = QFS_IO;
    if (f != stdin) fclose(f);
    if (s == QFS_TOO_BIG) fprintf(stderr, "qfsctl inject: %s is over 64 MiB\n", path);
    else if (s != QFS_OK) fprintf(stderr, "qfsctl inject: cannot read %s\n", path);
    return s;
}

/* Reads one file into checked events; what cannot be sent is reported and counted. */
static void load(const char *path, struct batch *b)
{
    struct qfs_buf in;
    qfs_buf_init(&in, FILE_MAX_BYTES);
    if (read_file(path, &in) != QFS_OK) {
        b->failures++;
        qfs_buf_cleanup(&in);
        return;
    }
    struct qfs_event_text *texts = NULL;
    size_t n = 0;
    if (qfs_event_texts(in.data ? in.data : "", in.len, MAX_EVENTS, &texts, &n) != QFS_OK) {
        fprintf(stderr, "qfsctl inject: %s holds more than %d events: split it\n", path, MAX_EVENTS);
        b->failures++;
        qfs_buf_cleanup(&in);
        return;
    }
    qfs_buf_cleanup(&in);
    for (size_t i = 0; i < n; i++) {
        /* Sent compact: a pretty-printed file is many times larger than its event. */
        struct qfs_buf compact;
        qfs_buf_init(&compact, 0);
        if (qfsctl_json_compact(texts[i].text, texts[i].len, &compact) == QFS_OK) {
            free(texts[i].text);
            texts[i].len = compact.len;
            texts[i].text = qfs_buf_take(&compact);
        }
        qfs_buf_cleanup(&compact);
        struct qfs_event ev;
        char err[256];
        if (qfs_event_decode(texts[i].text, texts[i].len, &ev, err, sizeof(err)) != QFS_OK) {
            if (n > 1) fprintf(stderr, "qfsctl inject: %s, event %zu: not an EventBridge event: %s\n", path, i + 1, err);
            else fprintf(stderr, "qfsctl inject: %s: not an EventBridge event: %s\n", path, err);
            b->failures++;
            continue;
        }
        if (b->n >= MAX_EVENTS) {
            fprintf(stderr, "qfsctl inject: more than %d events: send them in several runs\n", MAX_EVENTS);
            b->failures++;
            qfs_event_cleanup(&ev);
            break;
        }
        b->items = qfs_xrealloc(b->items, (b->n + 1) * sizeof(*b->items));
        struct outgoing *o = &b->items[b->n++];
        memset(o, 0, sizeof(*o));
        o->text = texts[i].text;
        o->len = texts[i].len;
        texts[i].text = NULL;
        snprintf(o->id, sizeof(o->id), "%s", ev.id);
        qfs_subject_format(o->subject, sizeof(o->subject), QFS_SUBJECT_EVENTS, ev.account, ev.region);
        qfs_event_cleanup(&ev);
    }
    qfs_event_texts_free(texts, n);
}

static void send_bus(struct qfsctl_ctx *c, struct batch *b)
{
    const char *schema = qfs_schema_name(QFS_SCHEMA_EVENT);
    for (size_t i = 0; i < b->n; i++) {
        struct outgoing *o = &b->items[i];
        uint64_t seq = 0;
        bool dup = false;
        if (qfsctl_publish(c, o->subject, o->text, o->len, o->id, o->id, schema, &seq, &dup) != QFS_OK) {
            b->failures++;
            continue;
        }
        if (dup) printf("duplicate %s -> %s (already stored as seq %llu)\n", o->id, o->subject, (unsigned long long)seq);
        else printf("sent %s -> %s (seq %llu)\n", o->id, o->subject, (unsigned long long)seq);
        fflush(stdout);
    }
}

/* SendMessage one event after the other, in file order. */
struct sqs_run {
    struct batch *b;
    struct qfsctl_io *io;
    const char *queue_url;
    size_t next;
    bool done;
};

static void send_next(struct sqs_run *r);

static void on_sent(const struct qfs_aws_response *resp, const char *message_id, void *arg)
{
    struct sqs_run *r = arg;
    struct outgoing *o = &r->b->items[r->next - 1];
    if (resp->status == QFS_OK) {
        printf("sent %s -> SQS (MessageId %s)\n", o->id, message_id);
        fflush(stdout);
    } else {
        fprintf(stderr, "qfsctl inject: SendMessage of %s to %s failed: %s%s%s%s%s\n", o->id, r->queue_url,
                qfs_status_str(resp->status), *resp->error_code ? " " : "", resp->error_code,
                *resp->error_message ? ": " : "", resp->error_message);
        r->b->failures++;
    }
    send_next(r);
}

static void send_next(struct sqs_run *r)
{
    while (r->next < r->b->n) {
        struct outgoing *o = &r->b->items[r->next++];
        qfs_status s = qfs_sqs_send(r->io->aws, r->queue_url, o->text, o->len, 0, on_sent, r);
        if (s == QFS_OK) return;
        fprintf(stderr, "qfsctl inject: cannot send %s: %s\n", o->id, qfs_status_str(s));
        r->b->failures++;
    }
    r->done = true;
}

static qfs_status send_sqs(struct qfsctl_ctx *c, struct batch *b)
{
    struct qfsctl_io io;
    qfs_status s = qfsctl_io_open(&io, &c->cfg, QFSCTL_IO_AWS);
    if (s == QFS_OK) {
        struct sqs_run r = {.b = b, .io = &io, .queue_url = c->cfg.sqs_queue_url};
        send_next(&r);
        qfsctl_io_wait(&io, &r.done);
    }
    qfsctl_io_close(&io);
    return s;
}

int qfsctl_cmd_inject(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_inject_opts o;
    char err[512];
    if (qfsctl_inject_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("inject", err);
    if (o.help) {
        fputs(qfsctl_usage("inject"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    if (!o.bus && !o.dry_run && !(c->cfg.sqs_queue_url && *c->cfg.sqs_queue_url))
        return qfsctl_usage_error("inject", "QFS_SQS_QUEUE_URL is not set: set it to the queue EventBridge "
                                            "feeds, or publish straight to the bus with --bus");
    struct batch b = {0};
    for (size_t i = 0; i < o.nfiles; i++) load(o.files[i], &b);
    int rc = QFSCTL_EXIT_OK;
    if (o.dry_run) {
        for (size_t i = 0; i < b.n; i++)
            printf("would send %s -> %s\n", b.items[i].id, o.bus ? b.items[i].subject : "SQS");
    } else if (b.n && o.bus) {
        if (qfsctl_nats_open(c) == QFS_OK) send_bus(c, &b);
        else b.failures += b.n;
    } else if (b.n) {
        qfs_status s = send_sqs(c, &b);
        if (s == QFS_PROTOCOL) rc = QFSCTL_EXIT_USAGE;
        else if (s != QFS_OK) b.failures += b.n;
    }
    if (rc == QFSCTL_EXIT_OK && b.failures) rc = QFSCTL_EXIT_FAIL;
    for (size_t i = 0; i < b.n; i++) free(b.items[i].text);
    free(b.items);
    return rc;
}
