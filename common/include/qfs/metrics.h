/* Service metrics: named counters and latency histograms, written as CloudWatch Embedded Metric
 * Format lines (what changed in each interval) and as the cumulative qfs.stats.<service> message.
 *
 * Threads: a registry and everything in it belong to one thread, the service's loop thread. There
 * are no locks: an increment is an addition to a field, so counting on the hot path is free. */
#ifndef QFS_METRICS_H
#define QFS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/status.h"

struct qfs_http_stats;
struct qfs_qualys_stats;
struct qfs_http;
struct qfs_qualys;

/* Names per registry. Past it, new names go to a sink that is never reported (logged once). */
#define QFS_METRICS_MAX 256
/* A name is [a-z][a-z0-9_.-]* of at most QFS_METRICS_NAME_MAX - 1 bytes, so it can never collide
 * with the EMF members "_aws" and "Service". One dimension value at most is folded into a name:
 * "skips.not_ecr", "received.parser-events", "qualys_calls.find_image.ok". */
#define QFS_METRICS_NAME_MAX 64
/* EMF allows at most 100 metrics per directive: a line with more carries several directives. */
#define QFS_METRICS_EMF_PER_DIRECTIVE 100
/* The CloudWatch namespace and the one dimension of every metric. */
#define QFS_METRICS_NAMESPACE "qfs"
#define QFS_METRICS_DIMENSION "Service"

struct qfs_metrics;
struct qfs_metrics_counter;
struct qfs_metrics_histogram;

struct qfs_metrics *qfs_metrics_new(void);
/* Frees the registry and every counter and histogram handle it gave out. NULL is fine. */
void qfs_metrics_free(struct qfs_metrics *m);

/* True when name follows the rule above. */
bool qfs_metrics_name_is_valid(const char *name);

/* ---- counters: monotonic, uint64 ----------------------------------------------------------- */

/* The counter called name (copied), created at 0 on first use. The handle stays valid until
 * qfs_metrics_free; keep it to count without a lookup. Names come from code, never from input:
 * an invalid name, or one already used by a histogram, is a bug (asserted). */
struct qfs_metrics_counter *qfs_metrics_counter(struct qfs_metrics *m, const char *name);
void qfs_metrics_counter_add(struct qfs_metrics_counter *c, uint64_t n);
/* Raises the counter to total, for totals kept elsewhere (a client's stats struct read at flush
 * time); never lowers it. */
void qfs_metrics_counter_set_total(struct qfs_metrics_counter *c, uint64_t total);
uint64_t qfs_metrics_counter_value(const struct qfs_metrics_counter *c);
/* qfs_metrics_counter_add(qfs_metrics_counter(m, name), n): a hash lookup, for names built at run
 * time (one per skip reason, ...). */
void qfs_metrics_count(struct qfs_metrics *m, const char *name, uint64_t n);

/* ---- latency histograms: milliseconds, log-scale buckets ----------------------------------- */

/* The histogram called name, as for counters. Values are milliseconds; each falls in a bucket at
 * most 1/8 of its value wide (exact below 16 ms), so a percentile is within 1/16 of the truth. */
struct qfs_metrics_histogram *qfs_metrics_histogram(struct qfs_metrics *m, const char *name);
void qfs_metrics_histogram_record(struct qfs_metrics_histogram *h, uint64_t ms);
/* Percentile q (0 < q <= 100) of every value recorded since creation: the middle of the bucket
 * holding the q-th percent value, clamped to the smallest and largest values seen (100: the
 * largest). 0 when empty. */
uint64_t qfs_metrics_histogram_percentile(const struct qfs_metrics_histogram *h, double q);
uint64_t qfs_metrics_histogram_count(const struct qfs_metrics_histogram *h);

/* ---- output -------------------------------------------------------------------------------- */

/* One CloudWatch EMF document (a JSON line without the newline; the caller frees it) for the
 * interval since the previous call, then starts the next interval:
 *   {"_aws":{"Timestamp":now_ms,"CloudWatchMetrics":[{"Namespace":"qfs",
 *    "Dimensions":[["Service"]],"Metrics":[{"Name":"events","Unit":"Count"},...]}]},
 *    "Service":service,"events":3,...}
 * Every counter appears with its increase over the interval (0 included). A histogram that got
 * values in the interval appears as <name>_p50, <name>_p99, <name>_max (Milliseconds) and
 * <name>_count (Count) of those values; one that got none is left out. */
char *qfs_metrics_emf_line(struct qfs_metrics *m, const char *service, int64_t now_ms);

/* What the stats message says about the process besides the counters. */
struct qfs_metrics_process {
    const char *service;
    const char *version;
    long pid;
    int64_t now_ms;      /* epoch ms */
    int64_t uptime_ms;
    uint64_t inflight;   /* deliveries held, not yet settled */
    int64_t interval_ms; /* QFS_METRICS_INTERVAL */
};
/* The qfs.stats.<service> body (caller frees): {"service","version","pid","time","uptime_s",
 * "inflight","interval_ms","counters":{name: total},"histograms":{name:{"count","sum","min",
 * "max","p50","p99"}}}, totals since the process started. Does not start an interval. */
char *qfs_metrics_stats_json(const struct qfs_metrics *m, const struct qfs_metrics_process *p);

/* ---- clients' stats structs ---------------------------------------------------------------- */

/* Set the counters http_requests, http_failures, http_retries, http_429s, http_5xx and
 * http_transport_errors to an HTTP client's totals. */
void qfs_metrics_set_http(struct qfs_metrics *m, const struct qfs_http_stats *s);
/* Set qualys_calls.<call>.<status> (calls ended, by final status; created once non-zero),
 * qualys_429s, qualys_retries and qualys_reauths to a Qualys client's totals. */
void qfs_metrics_set_qualys(struct qfs_metrics *m, const struct qfs_qualys_stats *s);
/* The same, read from the clients themselves; nothing for a NULL client (a service without one).
 * qfs_metrics_read_qualys also copies the stats to out (zeroed without a client), for counters the
 * service derives from them. */
void qfs_metrics_read_http(struct qfs_metrics *m, const struct qfs_http *http);
void qfs_metrics_read_qualys(struct qfs_metrics *m, const struct qfs_qualys *q,
                             struct qfs_qualys_stats *out);
/* Creates the counters names[0..n) at 0 if they do not exist yet, so the first stats line lists
 * every counter a service keeps, not only those that have moved. */
void qfs_metrics_declare(struct qfs_metrics *m, const char *const *names, size_t n);

#endif
