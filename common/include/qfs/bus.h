/* The JetStream bus: the QFS stream, durable pull consumers, publishes that wait for their PubAck,
 * and deliveries read on the libuv loop's thread. All callbacks run on the loop. */
#ifndef QFS_BUS_H
#define QFS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "qfs/proto.h"
#include "qfs/status.h"

struct qfs_bus;
struct qfs_delivery;


struct qfs_bus_options {
    const char *url;                  /* comma-separated server URLs */
    const char *name;                 /* connection and DLQ name: the service */
    const char *stream;               /* stream name, "QFS" */
    const char *const *subjects;      /* NULL-terminated subjects the stream stores */
    int64_t stream_max_age_ms;
    int64_t duplicate_window_ms;
    int max_outstanding;              /* publishes awaiting a PubAck; more wait in a queue */
    int64_t publish_timeout_ms;       /* a PubAck not seen by then fails the publish */
};

/* Called on the loop thread for each delivered message. The handler owns d until it settles it
 * with exactly one of qfs_delivery_ack / _retry / _dead_letter / _finish. */
typedef void (*qfs_bus_handler_fn)(void *ctx, struct qfs_delivery *d);

struct qfs_consumer_def {
    const char *durable;      /* shared by all replicas of a service */
    enum qfs_subject subject; /* what it consumes: the filter is qfs_subject_filter(subject) */
    const char *filter;       /* NULL, or a filter that overrides subject (tests) */
    int max_ack_pending;      /* also the bound of messages this process holds */
    int64_t ack_wait_ms;
    int max_deliver;
    qfs_bus_handler_fn handle;
};

/* Called on the loop thread when a publish is stored (QFS_OK, also for a duplicate) or failed. */
typedef void (*qfs_bus_pub_fn)(void *arg, qfs_status s);

/* Called on the loop thread once the stream and every consumer exist and fetching has started. */
typedef void (*qfs_bus_ready_fn)(void *arg);

/* Connects (retrying forever, reconnecting forever) with nats.c's libuv adapter on loop, which must
 * run on the calling thread. Copies opts. Returns QFS_INVALID_ARG for bad options. */
qfs_status qfs_bus_new(struct qfs_bus **out, uv_loop_t *loop, const struct qfs_bus_options *opts);
/* Creates the stream and the consumers (idempotent, safe when several processes race) on a thread
 * per consumer, then pulls each consumer's messages on the loop. handle(ctx, d) gets each message. */
qfs_status qfs_bus_start(struct qfs_bus *bus, const struct qfs_consumer_def *defs, size_t n,
                         void *ctx, qfs_bus_ready_fn ready, void *ready_arg);
/* Stops pulling: what arrives from now on goes straight back to the server (NAK). done(arg) runs on
 * the loop once the set-up threads have ended; deliveries already handed out must be settled. */
void qfs_bus_stop_fetching(struct qfs_bus *bus, void (*done)(void *arg), void *arg);
/* Number of deliveries not yet settled and publishes not yet acknowledged. */
size_t qfs_bus_inflight(const struct qfs_bus *bus);
size_t qfs_bus_publishes_pending(const struct qfs_bus *bus);
/* Returns every unsettled delivery to the server with a NAK (the drain deadline has passed). A
 * handler still holding one must still settle it; that then only frees it. */
void qfs_bus_nak_all(struct qfs_bus *bus);
/* Closes the connection and every handle; closed(arg) runs when all are closed. Frees bus. */
void qfs_bus_close(struct qfs_bus *bus, void (*closed)(void *arg), void *arg);
bool qfs_bus_is_connected(const struct qfs_bus *bus);

/* What the bus has done since qfs_bus_new, for metrics (read at flush time; loop thread). */
struct qfs_bus_stats {
    uint64_t acks;                 /* deliveries acknowledged */
    uint64_t retries;              /* deliveries returned for redelivery (qfs_delivery_retry) */
    uint64_t dead_letters;         /* DLQ entries stored, their inputs terminated */
    uint64_t dead_letter_failures; /* DLQ entries not stored (the input comes back) */
    uint64_t published;            /* publishes stored (PubAck; duplicates included) */
    uint64_t publish_failures;     /* publishes not stored */
    uint64_t returned;             /* deliveries returned unsettled at the drain deadline */
    uint64_t consumer_resets;      /* consumers set up again after nothing answered their pulls */
};
/* Copies the bus's totals to out. */
void qfs_bus_read_stats(const struct qfs_bus *bus, struct qfs_bus_stats *out);
/* Messages delivered to the i-th consumer given to qfs_bus_start, redeliveries included; 0 past
 * the end. */
uint64_t qfs_bus_consumer_received(const struct qfs_bus *bus, size_t i);

/* Publishes data (copied) to subject with Nats-Msg-Id msg_id (may be NULL), the trace id and the
 * schema name as headers, and calls cb when the PubAck arrives. Subjects must be stored by the
 * stream. Returns non-OK only for invalid arguments (cb is then not called). */
qfs_status qfs_bus_publish(struct qfs_bus *bus, const char *subject, const char *msg_id,
                           const char *trace_id, const char *schema, const char *data, size_t len,
                           qfs_bus_pub_fn cb, void *arg);
/* Plain NATS publish, not stored (statistics). Fire and forget. */
qfs_status qfs_bus_publish_core(struct qfs_bus *bus, const char *subject, const char *data, size_t len);

struct qfs_dlq_entry;
/* Publishes a dead-letter entry to qfs.dlq.<service> (the bus's name) with msg_id; cb as for
 * qfs_bus_publish. QFS_INVALID_ARG when the entry breaks the schema (logged). */
qfs_status qfs_bus_publish_dlq(struct qfs_bus *bus, const struct qfs_dlq_entry *e, const char *msg_id,
                               qfs_bus_pub_fn cb, void *arg);

/* Delivery accessors; strings are borrowed until the delivery is settled. */
const char *qfs_delivery_subject(const struct qfs_delivery *d);
const char *qfs_delivery_data(const struct qfs_delivery *d, size_t *len);
const char *qfs_delivery_header(const struct qfs_delivery *d, const char *name);
const char *qfs_delivery_trace_id(const struct qfs_delivery *d);
/* 1 on the first delivery, 2 on the first redelivery, ... */
uint64_t qfs_delivery_count(const struct qfs_delivery *d);
uint64_t qfs_delivery_stream_seq(const struct qfs_delivery *d);
int qfs_delivery_max_deliver(const struct qfs_delivery *d);
/* When the stream stored the message (epoch ms, the same on every redelivery); 0 when unknown. */
int64_t qfs_delivery_stored_ms(const struct qfs_delivery *d);

/* Acknowledges: the work is done and its outputs are stored. */
void qfs_delivery_ack(struct qfs_delivery *d);
/* Asks for redelivery after delay_ms (a timer that is a message). On the last allowed delivery it
 * dead-letters instead, so nothing is dropped when MaxDeliver runs out. reason is logged. */
void qfs_delivery_retry(struct qfs_delivery *d, int64_t delay_ms, qfs_status s, const char *reason);
/* Publishes a DLQ entry for the message to qfs.dlq.<service> (payload intact, base64 when not
 * UTF-8, headers, reason and status) and, once stored, terminates the message. */
void qfs_delivery_dead_letter(struct qfs_delivery *d, qfs_status s, const char *reason);

/* Messages a handler wants published before its input is acknowledged. */
struct qfs_outbox_msg {
    char *subject;
    char *msg_id;
    char *schema;
    char *data;
    size_t len;
};
struct qfs_outbox {
    struct qfs_outbox_msg *items;
    size_t n, cap;
};
void qfs_outbox_init(struct qfs_outbox *ob);
void qfs_outbox_cleanup(struct qfs_outbox *ob);
/* Adds a message; subject, msg_id and schema are copied, json is taken (freed by the outbox). */
void qfs_outbox_add_take(struct qfs_outbox *ob, const char *subject, const char *msg_id,
                         const char *schema, char *json);

/* Publishes every message of ob (which it empties) with the delivery's trace id, waits for all
 * PubAcks, then acknowledges d. If any publish fails, d is retried after retry_delay_ms instead;
 * the Nats-Msg-Ids make the republished messages duplicates the stream drops. */
void qfs_delivery_finish(struct qfs_delivery *d, struct qfs_outbox *ob, int64_t retry_delay_ms);

#endif
