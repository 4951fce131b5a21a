/* qfs-ingest: long-polls the SQS queue EventBridge feeds and stores each event on qfs.events.*.
 *
 * A message is deleted from SQS only once the stream has acknowledged it (or its DLQ entry), so a
 * crash between the two republishes it with the same Nats-Msg-Id, which the stream drops. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/aws.h"
#include "qfs/aws_sqs.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/metrics.h"
#include "qfs/proto_dlq.h"
#include "qfs/proto_event.h"
#include "qfs/service.h"
#include "qfs/util.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define WAIT_FOR_NATS_MS 1000
/* Batches a receiver may have on their way to the stream while it receives the next: SQS answers
 * in tens of milliseconds, and waiting for the PubAcks and the delete before asking again would
 * halve what a receiver moves. */
#define BATCHES_PER_RECEIVER 4

/* Receivers scale with the backlog: one long poll while the queue is quiet (every poll is a billed
 * SQS request, three a minute each), one more each time a receive comes back full (more are
 * waiting), up to QFS_SQS_RECEIVERS, and one fewer each time a poll comes back empty. A burst is
 * taken in larger rounds: in make bench, 8 receivers instead of 2 cut the CPU per event of the
 * whole pipeline (nats-server, SQS, ingest, parser, cache) by about a tenth. */

struct ingest_config {
    char *queue_url;
    int64_t visibility_timeout;
    int64_t wait_seconds;
    int64_t receivers;
    int64_t max_messages;
};

#define IC(f) QFS_CFG_FIELD(struct ingest_config, f)
static const struct qfs_config_var ingest_vars[] = {
    {"QFS_SQS_QUEUE_URL", QFS_CFG_STRING, NULL, 0, 0, "The SQS queue the EventBridge rules feed.",
     false, true, IC(queue_url), NULL},
    {"QFS_SQS_VISIBILITY_TIMEOUT", QFS_CFG_INT, "120", 10, 43200,
     "Seconds a received message stays hidden; one not deleted by then is received again.", false,
     false, IC(visibility_timeout), NULL},
    {"QFS_SQS_WAIT_SECONDS", QFS_CFG_INT, "20", 0, 20, "Long-poll wait of each ReceiveMessage.", false,
     false, IC(wait_seconds), NULL},
    {"QFS_SQS_RECEIVERS", QFS_CFG_INT, "8", 1, 16,
     "Most ReceiveMessage calls in flight at once: one while the queue is quiet, one more for each "
     "full batch received.", false, false, IC(receivers), NULL},
    {"QFS_SQS_MAX_MESSAGES", QFS_CFG_INT, "10", 1, 10, "Messages per ReceiveMessage (SQS allows 10).",
     false, false, IC(max_messages), NULL},
};

struct ingest;

/* One received message on its way to the stream. */
struct item {
    struct batch *batch;
    char *message_id;
    char *receipt_handle;
    bool stored; /* published (or dead-lettered) and acknowledged: delete it */
    bool dlq;    /* it went to qfs.dlq.ingest */
};

struct batch {
    struct receiver *rx;
    struct item *items;
    size_t n, pending;
};

struct receiver {
    struct ingest *in;
    uv_timer_t timer; /* backoff and waiting for NATS */
    unsigned failures;
    bool active;    /* receiving; the others wait for a backlog */
    bool receiving;
    size_t batches; /* received and not yet deleted */
};

struct ingest {
    struct qfs_svc *svc;
    struct ingest_config *cfg;
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct receiver *rx;
    size_t nrx, rx_closing;
    size_t active;  /* receivers active, at least one */
    size_t batches; /* received and not yet deleted */
    void (*stopped)(struct qfs_svc *svc);
    /* Counters (qfs_svc_metrics). */
    struct qfs_metrics_counter *received, *stored, *dead_lettered, *not_stored;
    struct qfs_metrics_counter *receive_errors, *delete_errors;
    struct qfs_metrics_counter *receivers_added, *receivers_retired;
};

static void receive(struct receiver *rx);

static void on_timer(uv_timer_t *t)
{
    receive(t->data);
}

static void schedule(struct receiver *rx, uint64_t delay_ms)
{
    uv_timer_start(&rx->timer, on_timer, delay_ms, 0);
}

static uint64_t backoff_ms(unsigned failures)
{
    uint64_t cap = BACKOFF_MIN_MS;
    for (unsigned i = 1; i < failures && cap < BACKOFF_MAX_MS; i++) cap *= 2;
    if (cap > BACKOFF_MAX_MS) cap = BACKOFF_MAX_MS;
    return cap / 2 + (uint64_t)rand() % (cap / 2 + 1);
}

/* ---- delete ---------------------------------------------------------------------------------- */

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].message_id);
        free(b->items[i].receipt_handle);
    }
    free(b->items);
    free(b);
}

static void batch_end(struct batch *b)
{
    struct receiver *rx = b->rx;
    struct ingest *in = rx->in;
    in->batches--;
    rx->batches--;
    batch_free(b);
    /* A receiver held back by its batches in flight goes on. */
    if (!qfs_svc_is_draining(in->svc) && rx->active && !rx->receiving) schedule(rx, 0);
}

static void on_deleted(const struct qfs_aws_response *r, const struct qfs_sqs_batch_result *res, void *arg)
{
    struct batch *b = arg;
    if (r->status != QFS_OK) {
        /* The messages reappear after the visibility timeout and are republished as duplicates,
         * which the stream drops: nothing is lost, but say so. */
        qfs_warn("DeleteMessageBatch failed; the messages will be received again", "status",
                 qfs_status_str(r->status), "error", r->error_code);
        qfs_metrics_counter_add(b->rx->in->delete_errors, 1);
    } else {
        qfs_metrics_counter_add(b->rx->in->delete_errors, res->nfailed);
        for (size_t i = 0; i < res->nfailed; i++)
            qfs_warn("SQS did not delete a message; it will be received again", "id", res->failed[i].id,
                     "code", res->failed[i].code);
    }
    batch_end(b);
}

static void batch_settled(struct batch *b)
{
    struct ingest *in = b->rx->in;
    struct qfs_sqs_delete_entry e[QFS_SQS_MAX_BATCH];
    char ids[QFS_SQS_MAX_BATCH][24];
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->items[i].stored) continue;
        snprintf(ids[n], sizeof(ids[n]), "m%zu", i);
        e[n].id = ids[n];
        e[n].receipt_handle = b->items[i].receipt_handle;
        n++;
    }
    if (n == 0 || qfs_sqs_delete_batch(in->aws, in->cfg->queue_url, e, n, on_deleted, b) != QFS_OK)
        batch_end(b);
}

static void on_stored(void *arg, qfs_status st)
{
    struct item *it = arg;
    struct batch *b = it->batch;
    struct ingest *in = b->rx->in;
    if (st == QFS_OK) {
        it->stored = true;
        qfs_metrics_counter_add(it->dlq ? in->dead_lettered : in->stored, 1);
    } else {
        qfs_warn("event not stored; it stays in SQS", "sqs_message_id", it->message_id, "status",
                 qfs_status_str(st));
        qfs_metrics_counter_add(in->not_stored, 1);
    }
    if (--b->pending == 0) batch_settled(b);
}

/* ---- receive --------------------------------------------------------------------------------- */

static qfs_status dead_letter(struct ingest *in, struct item *it, const struct qfs_sqs_message *m,
                              const char *reason)
{
    struct qfs_dlq_entry e;
    memset(&e, 0, sizeof(e));
    char ts[32];
    qfs_format_time_ms(qfs_now_ms(), ts);
    snprintf(e.service, sizeof(e.service), "ingest");
    struct qfs_dlq_header h = {.name = "Sqs-Message-Id", .value = m->message_id};
    e.reason = (char *)reason;
    e.status = QFS_PROTOCOL;
    e.headers = &h;
    e.nheaders = 1;
    e.payload = m->body;
    e.payload_len = m->body_len;
    e.delivery_count = m->receive_count ? m->receive_count : 1;
    e.time = ts;
    char *msg_id = qfs_xasprintf("dlq:ingest:sqs:%s", m->message_id);
    qfs_error("dead-lettered", "sqs_message_id", m->message_id, "reason", reason);
    it->dlq = true;
    qfs_status s = qfs_bus_publish_dlq(qfs_svc_bus(in->svc), &e, msg_id, on_stored, it);
    free(msg_id);
    return s;
}

static qfs_status forward(struct ingest *in, struct item *it, const struct qfs_sqs_message *m)
{
    struct qfs_event ev;
    char err[256];
    if (qfs_event_decode(m->body, m->body_len, &ev, err, sizeof(err)) != QFS_OK)
        return dead_letter(in, it, m, err);
    char subject[QFS_SUBJECT_MAX];
    qfs_status s = qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_EVENTS, ev.account, ev.region);
    /* The body goes on exactly as received: re-encoding could change numbers or field order. */
    if (s == QFS_OK)
        s = qfs_bus_publish(qfs_svc_bus(in->svc), subject, ev.id, ev.id, qfs_schema_name(QFS_SCHEMA_EVENT),
                            m->body, m->body_len, on_stored, it);
    if (s == QFS_OK)
        qfs_debug("received", "trace_id", ev.id, "subject", subject, "sqs_message_id", m->message_id);
    qfs_event_cleanup(&ev);
    return s;
}

/* A full batch came back: more are likely waiting, so one more receiver joins if one is idle. */
static void add_receiver(struct ingest *in)
{
    if (in->active >= in->nrx || qfs_svc_is_draining(in->svc)) return;
    for (size_t i = 0; i < in->nrx; i++) {
        struct receiver *rx = &in->rx[i];
        if (rx->active) continue;
        rx->active = true;
        in->active++;
        qfs_metrics_counter_add(in->receivers_added, 1);
        /* One held back by batches still in flight goes on from batch_end instead. */
        schedule(rx, 0);
        return;
    }
}

static void on_received(const struct qfs_aws_response *r, const struct qfs_sqs_messages *msgs, void *arg)
{
    struct receiver *rx = arg;
    struct ingest *in = rx->in;
    rx->receiving = false;
    /* A long poll cancelled because the service stops is not a failure worth a warning. */
    if (r->status != QFS_OK && qfs_svc_is_draining(in->svc)) return;
    if (r->status != QFS_OK) {
        rx->failures++;
        uint64_t delay = backoff_ms(rx->failures);
        char d[24];
        snprintf(d, sizeof(d), "%" PRIu64, delay);
        qfs_warn("ReceiveMessage failed; backing off", "status", qfs_status_str(r->status), "error",
                 r->error_code, "delay_ms", d);
        qfs_metrics_counter_add(in->receive_errors, 1);
        if (!qfs_svc_is_draining(in->svc)) schedule(rx, delay);
        return;
    }
    rx->failures = 0;
    if (msgs->count == 0) {
        /* Nothing waited for a whole poll: one receiver fewer, down to one. */
        if (in->active > 1) {
            rx->active = false;
            in->active--;
            qfs_metrics_counter_add(in->receivers_retired, 1);
            return;
        }
        if (!qfs_svc_is_draining(in->svc)) schedule(rx, 0);
        return;
    }
    if (msgs->count >= (size_t)in->cfg->max_messages) add_receiver(in);
    qfs_metrics_counter_add(in->received, msgs->count);
    struct batch *b = qfs_xcalloc(1, sizeof(*b));
    b->rx = rx;
    b->items = qfs_xcalloc(msgs->count, sizeof(*b->items));
    b->n = msgs->count;
    b->pending = 1; /* held while the batch is handed out */
    in->batches++;
    rx->batches++;
    for (size_t i = 0; i < msgs->count; i++) {
        const struct qfs_sqs_message *m = &msgs->items[i];
        struct item *it = &b->items[i];
        it->batch = b;
        it->message_id = qfs_xstrdup(m->message_id);
        it->receipt_handle = qfs_xstrdup(m->receipt_handle);
        b->pending++;
        if (forward(in, it, m) != QFS_OK) {
            qfs_error("cannot publish a received message; it stays in SQS", "sqs_message_id", m->message_id);
            qfs_metrics_counter_add(in->not_stored, 1);
            b->pending--;
        }
    }
    if (--b->pending == 0) batch_settled(b);
    /* More are likely waiting: ask again while this batch goes to the stream. */
    if (!qfs_svc_is_draining(in->svc)) schedule(rx, 0);
}

static void receive(struct receiver *rx)
{
    struct ingest *in = rx->in;
    if (qfs_svc_is_draining(in->svc) || !rx->active || rx->receiving ||
        rx->batches >= BATCHES_PER_RECEIVER)
        return;
    /* With NATS away, leave the messages in SQS rather than hold them here. */
    if (!qfs_bus_is_connected(qfs_svc_bus(in->svc))) {
        schedule(rx, WAIT_FOR_NATS_MS);
        return;
    }
    static const char *const attrs[] = {"ApproximateReceiveCount", "SentTimestamp", NULL};
    struct qfs_sqs_receive_params p = {
        .queue_url = in->cfg->queue_url,
        .max_messages = (unsigned)in->cfg->max_messages,
        .wait_seconds = (unsigned)in->cfg->wait_seconds,
        .visibility_timeout = (int)in->cfg->visibility_timeout,
        .system_attributes = attrs,
    };
    rx->receiving = true;
    if (qfs_sqs_receive(in->aws, &p, on_received, rx) != QFS_OK) {
        rx->receiving = false;
        rx->failures++;
        schedule(rx, backoff_ms(rx->failures));
    }
}

/* ---- service hooks ---------------------------------------------------------------------------- */

static qfs_status ingest_start(struct qfs_svc *svc)
{
    struct ingest *in = qfs_xcalloc(1, sizeof(*in));
    in->svc = svc;
    in->cfg = qfs_svc_config(svc);
    qfs_svc_set_data(svc, in);
    struct qfs_metrics *m = qfs_svc_metrics(svc);
    in->received = qfs_metrics_counter(m, "events_received");
    in->stored = qfs_metrics_counter(m, "events_stored");
    in->dead_lettered = qfs_metrics_counter(m, "events_dead_lettered");
    in->not_stored = qfs_metrics_counter(m, "events_not_stored");
    in->receive_errors = qfs_metrics_counter(m, "sqs_receive_errors");
    in->delete_errors = qfs_metrics_counter(m, "sqs_delete_errors");
    in->receivers_added = qfs_metrics_counter(m, "sqs_receivers_added");
    in->receivers_retired = qfs_metrics_counter(m, "sqs_receivers_retired");
    /* Long polls hold their connection for up to QFS_SQS_WAIT_SECONDS: with no room beside them, a
     * DeleteMessageBatch would wait for one to end, and its messages would stay unseen (not
     * deleted) that long. Room for every receiver's poll and every batch it may have in flight. */
    unsigned per_host = (unsigned)in->cfg->receivers * (1 + BATCHES_PER_RECEIVER);
    struct qfs_http_options ho = {.max_per_host = per_host, .max_total = per_host + 8};
    qfs_status s = qfs_http_new(qfs_svc_loop(svc), &ho, &in->http);
    struct qfs_aws_options ao = {0};
    if (s == QFS_OK) s = qfs_aws_new(qfs_svc_loop(svc), in->http, &ao, &in->aws);
    if (s != QFS_OK) return s;
    in->nrx = (size_t)in->cfg->receivers;
    in->rx = qfs_xcalloc(in->nrx, sizeof(*in->rx));
    for (size_t i = 0; i < in->nrx; i++) {
        in->rx[i].in = in;
        uv_timer_init(qfs_svc_loop(svc), &in->rx[i].timer);
        in->rx[i].timer.data = &in->rx[i];
    }
    in->rx[0].active = true;
    in->active = 1;
    schedule(&in->rx[0], 0);
    qfs_info("receiving", "queue", in->cfg->queue_url);
    return QFS_OK;
}

static void ingest_collect(struct qfs_svc *svc, struct qfs_metrics *m)
{
    struct ingest *in = qfs_svc_data(svc);
    if (in) qfs_metrics_read_http(m, in->http);
}

static size_t ingest_busy(struct qfs_svc *svc)
{
    struct ingest *in = qfs_svc_data(svc);
    return in ? in->batches : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct receiver *rx = h->data;
    struct ingest *in = rx->in;
    if (++in->rx_closing < in->nrx) return;
    void (*done)(struct qfs_svc *) = in->stopped;
    struct qfs_svc *svc = in->svc;
    free(in->rx);
    free(in);
    qfs_svc_set_data(svc, NULL);
    done(svc);
}

static void ingest_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    struct ingest *in = qfs_svc_data(svc);
    if (!in) {
        done(svc);
        return;
    }
    /* A long poll still waiting is cancelled: whatever SQS hands it later simply reappears. */
    qfs_aws_free(in->aws);
    qfs_http_free(in->http);
    in->aws = NULL;
    in->http = NULL;
    in->stopped = done;
    if (in->nrx == 0) {
        free(in);
        qfs_svc_set_data(svc, NULL);
        done(svc);
        return;
    }
    for (size_t i = 0; i < in->nrx; i++) {
        uv_timer_stop(&in->rx[i].timer);
        uv_close((uv_handle_t *)&in->rx[i].timer, on_timer_closed);
    }
}

const struct qfs_service_def ingest_service = {
    .name = "ingest",
    .summary = "moves EventBridge events from SQS onto the qfs.events.* subjects",
    .config = ingest_vars,
    .nconfig = sizeof(ingest_vars) / sizeof(ingest_vars[0]),
    .config_size = sizeof(struct ingest_config),
    .start = ingest_start,
    .stop = ingest_stop,
    .busy = ingest_busy,
    .collect = ingest_collect,
};
