/* qfs-cache: the rules that decide, for each image record, between a cached result, a new scan
 * and joining a running scan, and that store the outcome of each scan (services/DESIGN.md).
 *
 * The rules reach the cache store only through struct cache_store (the qfs_kv calls), so unit
 * tests drive them with a fake store. Each handler decodes its input, talks to the store, and
 * ends with one struct cache_outcome: the messages to publish before the ack, or a retry, or a
 * dead letter. */
#ifndef QFS_CACHE_H
#define QFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/bus.h"
#include "qfs/kv.h"
#include "qfs/proto.h"
#include "qfs/status.h"

/* The store operations the rules use, with the contract of qfs/kv.h: QFS_OK and cb later exactly
 * once (never inside the call), or another status and cb never called. Keys are the caller's
 * (the store adds its prefix). */
struct cache_store {
    void *impl;
    qfs_status (*get)(void *impl, const char *key, qfs_kv_fn cb, void *arg);
    qfs_status (*put)(void *impl, const char *key, const char *value, size_t len,
                      int64_t ttl_seconds, qfs_kv_fn cb, void *arg);
    qfs_status (*put_if_absent)(void *impl, const char *key, const char *value, size_t len,
                                int64_t ttl_seconds, qfs_kv_fn cb, void *arg);
    qfs_status (*del_if_value)(void *impl, const char *key, const char *expected, size_t len,
                               qfs_kv_fn cb, void *arg);
    qfs_status (*append)(void *impl, const char *key, const char *value, size_t len,
                         int64_t ttl_seconds, unsigned max_items, qfs_kv_fn cb, void *arg);
};

/* Fills s with the calls of kv (borrowed; it must outlive every job). */
void cache_store_init_kv(struct cache_store *s, struct qfs_kv *kv);

struct cache_settings {
    int64_t result_ttl_s;   /* QFS_CACHE_TTL_SECONDS: results stored under a digest key */
    int64_t tag_ttl_s;      /* QFS_CACHE_TAG_TTL_SECONDS: the cap for tag keys (tags move) */
    int64_t inflight_ttl_s; /* QFS_INFLIGHT_TTL_SECONDS: the marker and the joined deploys */
    bool fail_closed;       /* QFS_CACHE_FAIL_CLOSED: retry instead of scanning without the store */
};

/* The rules' state: the store, the settings and the counters the service keeps. */
struct cache {
    struct cache_store store;
    struct cache_settings set;
    uint64_t fail_open_total; /* scan requests published without the store (fail open) */
    size_t jobs;              /* jobs started and not yet ended */
};

enum cache_decision {
    CACHE_CACHED,         /* image: a stored result; skip `cached` with its summary */
    CACHE_REQUESTED,      /* image: miss, marker set; scan request */
    CACHE_OWN_MARKER,     /* image: the marker holds our generation (a redelivery); request again */
    CACHE_IN_FLIGHT,      /* image: another generation is scanning; deploy joined, skip `in_flight` */
    CACHE_FAIL_OPEN,      /* image: the store is unreachable; request with cache_fail_open */
    CACHE_STORED,         /* completed: result stored, our marker released */
    CACHE_STORED_KEPT,    /* completed: result stored; the marker was not ours (or gone) */
    CACHE_RELEASED,       /* failed: our marker released */
    CACHE_KEPT,           /* failed: the marker was not ours (or gone); nothing to do */
    CACHE_RETRY,          /* the store failed (or fail-closed): try the message again later */
    CACHE_DEAD_LETTER,    /* the message broke its contract (or an output could not be built) */
};
/* "cached", "requested", ...; never NULL. */
const char *cache_decision_str(enum cache_decision d);

enum cache_action {
    CACHE_ACT_FINISH,      /* publish the outbox (possibly empty), then ack */
    CACHE_ACT_RETRY,       /* redeliver after retry_delay_ms */
    CACHE_ACT_DEAD_LETTER, /* to qfs.dlq.cache */
};

/* How a job ended. Valid during the callback only; the callback may take the outbox's messages
 * (qfs_delivery_finish empties it); whatever is left is freed after the callback returns. */
struct cache_outcome {
    enum cache_decision decision;
    enum cache_action action;
    struct qfs_outbox outbox;
    qfs_status status;      /* RETRY, DEAD_LETTER: why */
    const char *reason;     /* RETRY, DEAD_LETTER: a sentence for the log and the DLQ entry */
    int64_t retry_delay_ms; /* RETRY */
    char key[QFS_IMAGE_KEY_MAX]; /* the image key, "" when the input could not be read */
    int64_t generation;     /* the message's generation (image records: the stream sequence) */
};

/* Called once per job, possibly inside the call that started it (an input that cannot be read). */
typedef void (*cache_done_fn)(void *arg, struct cache_outcome *out);

/* One delivered message; data and trace_id are borrowed for the call (copied where kept). */
struct cache_input {
    const char *data;
    size_t len;
    const char *trace_id;  /* for the log line; NULL: none */
    uint64_t stream_seq;   /* the generation an image record starts */
    uint64_t delivery;     /* 1 on the first delivery: the retry backoff */
};

/* The three handlers (DESIGN.md, qfs-cache): an image record from qfs.images.*, a scan result from
 * qfs.scans.completed.*, a scan failure from qfs.scans.failed.*. Each logs one info line with
 * the decision and ends with cb(arg, outcome). c and its store must outlive the job. */
void cache_on_image(struct cache *c, const struct cache_input *in, cache_done_fn cb, void *arg);
void cache_on_completed(struct cache *c, const struct cache_input *in, cache_done_fn cb, void *arg);
void cache_on_failed(struct cache *c, const struct cache_input *in, cache_done_fn cb, void *arg);

/* ---- pure parts, exposed for tests ---------------------------------------------------------- */

/* The TTL of a result: result_ttl_s for a digest key, min(result_ttl_s, tag_ttl_s) for a tag key. */
int64_t cache_result_ttl(const struct cache_settings *set, bool digest_known);
/* The marker value {"generation":G}, byte for byte what put_if_absent writes and del_if_value
 * expects. Returns the length written to buf (n >= 40 always suffices). */
size_t cache_marker_format(char *buf, size_t n, int64_t generation);
/* Reads a marker value; false when it is not one. */
bool cache_marker_parse(const char *value, size_t len, int64_t *generation);
/* The backoff of a retried message: 2 s, 4 s, ... up to a minute, by delivery count. */
int64_t cache_retry_delay_ms(uint64_t delivery);

#endif
