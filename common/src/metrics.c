/* Service metrics: counters, log-bucket latency histograms, EMF lines and the stats message. */
#include "qfs/metrics.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/qualys.h"
#include "qfs/util.h"

/* Buckets: values 0..15 each have their own; above, every power of two [2^e, 2^(e+1)) is cut into
 * 8 equal parts, so a bucket is at most 1/8 of its lower bound wide. e runs from 4 to 63. */
#define EXACT 16
#define SUBS 8
#define NBUCKETS (EXACT + (64 - 4) * SUBS)
#define NSLOTS (2 * QFS_METRICS_MAX) /* the name index: open addressing, at most half full */

struct qfs_metrics_counter {
    uint64_t value;
    uint64_t reported; /* value at the last EMF line */
};

struct hist_part {
    uint64_t n, sum, min, max;
    uint64_t buckets[NBUCKETS];
};

struct qfs_metrics_histogram {
    struct hist_part total;
    struct hist_part interval; /* since the last EMF line */
};

enum kind { KIND_COUNTER, KIND_HISTOGRAM };

struct entry {
    char name[QFS_METRICS_NAME_MAX];
    enum kind kind;
    struct qfs_metrics_counter counter;
    struct qfs_metrics_histogram *hist;
};

struct qfs_metrics {
    struct entry entries[QFS_METRICS_MAX]; /* in creation order: the order of the output */
    size_t n;
    uint16_t slots[NSLOTS]; /* entry index + 1; 0 is free */
    struct qfs_metrics_counter sink_counter;
    struct qfs_metrics_histogram *sink_hist;
    bool full_logged;
};

struct qfs_metrics *qfs_metrics_new(void)
{
    return qfs_xcalloc(1, sizeof(struct qfs_metrics));
}

void qfs_metrics_free(struct qfs_metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) free(m->entries[i].hist);
    free(m->sink_hist);
    free(m);
}

bool qfs_metrics_name_is_valid(const char *name)
{
    if (!name || !(*name >= 'a' && *name <= 'z')) return false;
    size_t len = 0;
    for (const char *p = name; *p; p++, len++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return len < QFS_METRICS_NAME_MAX;
}

/* ---- the name index -------------------------------------------------------------------------- */

static size_t name_hash(const char *s)
{
    return (size_t)(qfs_hash_str(s) % NSLOTS);
}

/* The entry called name, or NULL; *slot is where it is or would go. */
static struct entry *find(struct qfs_metrics *m, const char *name, size_t *slot)
{
    size_t i = name_hash(name);
    while (m->slots[i]) {
        struct entry *e = &m->entries[m->slots[i] - 1];
        if (strcmp(e->name, name) == 0) {
            *slot = i;
            return e;
        }
        i = (i + 1) % NSLOTS;
    }
    *slot = i;
    return NULL;
}

/* The entry called name of kind, created when missing; NULL when the registry is full. */
static struct entry *lookup(struct qfs_metrics *m, const char *name, enum kind kind)
{
    qfs_assert(qfs_metrics_name_is_valid(name));
    size_t slot;
    struct entry *e = find(m, name, &slot);
    if (e) {
        qfs_assert(e->kind == kind);
        return e;
    }
    if (m->n == QFS_METRICS_MAX) {
        if (!m->full_logged) qfs_warn("too many metric names; later ones are not reported", "name", name);
        m->full_logged = true;
        return NULL;
    }
    e = &m->entries[m->n];
    m->slots[slot] = (uint16_t)(++m->n);
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->kind = kind;
    if (kind == KIND_HISTOGRAM) e->hist = qfs_xcalloc(1, sizeof(*e->hist));
    return e;
}

/* ---- counters -------------------------------------------------------------------------------- */

struct qfs_metrics_counter *qfs_metrics_counter(struct qfs_metrics *m, const char *name)
{
    struct entry *e = lookup(m, name, KIND_COUNTER);
    return e ? &e->counter : &m->sink_counter;
}

void qfs_metrics_counter_add(struct qfs_metrics_counter *c, uint64_t n)
{
    c->value += n;
}

void qfs_metrics_counter_set_total(struct qfs_metrics_counter *c, uint64_t total)
{
    if (total > c->value) c->value = total;
}

uint64_t qfs_metrics_counter_value(const struct qfs_metrics_counter *c)
{
    return c->value;
}

void qfs_metrics_count(struct qfs_metrics *m, const char *name, uint64_t n)
{
    qfs_metrics_counter_add(qfs_metrics_counter(m, name), n);
}

/* ---- histograms ------------------------------------------------------------------------------ */

struct qfs_metrics_histogram *qfs_metrics_histogram(struct qfs_metrics *m, const char *name)
{
    struct entry *e = lookup(m, name, KIND_HISTOGRAM);
    if (e) return e->hist;
    if (!m->sink_hist) m->sink_hist = qfs_xcalloc(1, sizeof(*m->sink_hist));
    return m->sink_hist;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < EXACT) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 4..63 */
    unsigned sub = (unsigned)(v >> (e - 3)) & (SUBS - 1);
    return EXACT + (e - 4) * SUBS + sub;
}

/* The smallest and largest value bucket b holds. */
static void bucket_bounds(unsigned b, uint64_t *lo, uint64_t *hi)
{
    if (b < EXACT) {
        *lo = *hi = b;
        return;
    }
    unsigned e = 4 + (b - EXACT) / SUBS, sub = (b - EXACT) % SUBS;
    *lo = (uint64_t)(SUBS + sub) << (e - 3);
    *hi = *lo + (((uint64_t)1 << (e - 3)) - 1);
}

static void part_record(struct hist_part *p, uint64_t v)
{
    if (p->n == 0 || v < p->min) p->min = v;
    if (v > p->max) p->max = v;
    p->n++;
    p->sum += v;
    p->buckets[bucket_of(v)]++;
}

void qfs_metrics_histogram_record(struct qfs_metrics_histogram *h, uint64_t ms)
{
    part_record(&h->total, ms);
    part_record(&h->interval, ms);
}

static uint64_t part_percentile(const struct hist_part *p, double q)
{
    if (p->n == 0) return 0;
    if (q >= 100) return p->max;
    uint64_t rank = (uint64_t)ceil(q / 100.0 * (double)p->n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < NBUCKETS; b++) {
        seen += p->buckets[b];
        if (seen < rank) continue;
        uint64_t lo, hi;
        bucket_bounds(b, &lo, &hi);
        uint64_t mid = lo + (hi - lo) / 2;
        if (mid < p->min) mid = p->min;
        if (mid > p->max) mid = p->max;
        return mid;
    }
    return p->max;
}

uint64_t qfs_metrics_histogram_percentile(const struct qfs_metrics_histogram *h, double q)
{
    return part_percentile(&h->total, q);
}

uint64_t qfs_metrics_histogram_count(const struct qfs_metrics_histogram *h)
{
    return h->total.n;
}

/* ---- EMF ------------------------------------------------------------------------------------- */

/* The directive that the next metric goes to: a new one every QFS_METRICS_EMF_PER_DIRECTIVE. */
static cJSON *directive_metrics(cJSON *directives, size_t *count)
{
    if (*count % QFS_METRICS_EMF_PER_DIRECTIVE == 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "Namespace", QFS_METRICS_NAMESPACE);
        cJSON *dims = cJSON_AddArrayToObject(d, "Dimensions");
        cJSON *set = cJSON_CreateArray();
        cJSON_AddItemToArray(set, cJSON_CreateString(QFS_METRICS_DIMENSION));
        cJSON_AddItemToArray(dims, set);
        cJSON_AddArrayToObject(d, "Metrics");
        cJSON_AddItemToArray(directives, d);
    }
    (*count)++;
    cJSON *last = cJSON_GetArrayItem(directives, cJSON_GetArraySize(directives) - 1);
    return cJSON_GetObjectItemCaseSensitive(last, "Metrics");
}

/* Adds the value under name to the root and names it, with its unit, in a directive. */
static void emf_add(cJSON *root, cJSON *directives, size_t *count, const char *name,
                    const char *unit, double value)
{
    cJSON *def = cJSON_CreateObject();
    cJSON_AddStringToObject(def, "Name", name);
    cJSON_AddStringToObject(def, "Unit", unit);
    cJSON_AddItemToArray(directive_metrics(directives, count), def);
    cJSON_AddNumberToObject(root, name, value);
}

char *qfs_metrics_emf_line(struct qfs_metrics *m, const char *service, int64_t now_ms)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *aws = cJSON_AddObjectToObject(root, "_aws");
    cJSON_AddNumberToObject(aws, "Timestamp", (double)now_ms);
    cJSON *directives = cJSON_AddArrayToObject(aws, "CloudWatchMetrics");
    cJSON_AddStringToObject(root, QFS_METRICS_DIMENSION, service);
    size_t count = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct entry *e = &m->entries[i];
        if (e->kind == KIND_COUNTER) {
            struct qfs_metrics_counter *c = &e->counter;
            emf_add(root, directives, &count, e->name, "Count", (double)(c->value - c->reported));
            c->reported = c->value;
            continue;
        }
        struct hist_part *p = &e->hist->interval;
        if (p->n > 0) {
            char name[QFS_METRICS_NAME_MAX + 8];
            snprintf(name, sizeof(name), "%s_p50", e->name);
            emf_add(root, directives, &count, name, "Milliseconds", (double)part_percentile(p, 50));
            snprintf(name, sizeof(name), "%s_p99", e->name);
            emf_add(root, directives, &count, name, "Milliseconds", (double)part_percentile(p, 99));
            snprintf(name, sizeof(name), "%s_max", e->name);
            emf_add(root, directives, &count, name, "Milliseconds", (double)p->max);
            snprintf(name, sizeof(name), "%s_count", e->name);
            emf_add(root, directives, &count, name, "Count", (double)p->n);
        }
        memset(p, 0, sizeof(*p));
    }
    if (count == 0) directive_metrics(directives, &count); /* one directive, listing nothing */
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    qfs_assert(text != NULL);
    return text;
}

/* ---- the stats message ----------------------------------------------------------------------- */

char *qfs_metrics_stats_json(const struct qfs_metrics *m, const struct qfs_metrics_process *p)
{
    cJSON *root = cJSON_CreateObject();
    char ts[32];
    qfs_format_time_ms(p->now_ms, ts);
    cJSON_AddStringToObject(root, "service", p->service);
    cJSON_AddStringToObject(root, "version", p->version ? p->version : "");
    cJSON_AddNumberToObject(root, "pid", (double)p->pid);
    cJSON_AddStringToObject(root, "time", ts);
    cJSON_AddNumberToObject(root, "uptime_s", (double)(p->uptime_ms / 1000));
    cJSON_AddNumberToObject(root, "inflight", (double)p->inflight);
    cJSON_AddNumberToObject(root, "interval_ms", (double)p->interval_ms);
    cJSON *counters = cJSON_AddObjectToObject(root, "counters");
    cJSON *hists = cJSON_AddObjectToObject(root, "histograms");
    for (size_t i = 0; i < m->n; i++) {
        const struct entry *e = &m->entries[i];
        if (e->kind == KIND_COUNTER) {
            cJSON_AddNumberToObject(counters, e->name, (double)e->counter.value);
            continue;
        }
        const struct hist_part *t = &e->hist->total;
        cJSON *h = cJSON_AddObjectToObject(hists, e->name);
        cJSON_AddNumberToObject(h, "count", (double)t->n);
        cJSON_AddNumberToObject(h, "sum", (double)t->sum);
        cJSON_AddNumberToObject(h, "min", (double)t->min);
        cJSON_AddNumberToObject(h, "max", (double)t->max);
        cJSON_AddNumberToObject(h, "p50", (double)part_percentile(t, 50));
        cJSON_AddNumberToObject(h, "p99", (double)part_percentile(t, 99));
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    qfs_assert(text != NULL);
    return text;
}

/* ---- clients' stats structs ------------------------------------------------------------------ */

static void set_total(struct qfs_metrics *m, const char *name, uint64_t total)
{
    qfs_metrics_counter_set_total(qfs_metrics_counter(m, name), total);
}

void qfs_metrics_set_http(struct qfs_metrics *m, const struct qfs_http_stats *s)
{
    set_total(m, "http_requests", s->requests);
    set_total(m, "http_failures", s->failures);
    set_total(m, "http_retries", s->retries);
    set_total(m, "http_429s", s->throttled);
    set_total(m, "http_5xx", s->server_errors);
    set_total(m, "http_transport_errors", s->transport_errors);
}

void qfs_metrics_set_qualys(struct qfs_metrics *m, const struct qfs_qualys_stats *s)
{
    for (unsigned c = 0; c < QFS_QUALYS_CALL_COUNT; c++)
        for (unsigned st = 0; st < QFS_QUALYS_NSTATUS; st++) {
            if (s->calls[c][st] == 0) continue;
            char name[QFS_METRICS_NAME_MAX];
            snprintf(name, sizeof(name), "qualys_calls.%s.%s", qfs_qualys_call_name((enum qfs_qualys_call)c),
                     qfs_status_str((qfs_status)st));
            set_total(m, name, s->calls[c][st]);
        }
    set_total(m, "qualys_429s", s->throttled);
    set_total(m, "qualys_retries", s->retries);
    set_total(m, "qualys_reauths", s->reauths);
}

void qfs_metrics_read_http(struct qfs_metrics *m, const struct qfs_http *http)
{
    if (!http) return;
    struct qfs_http_stats hs;
    qfs_http_read_stats(http, &hs);
    qfs_metrics_set_http(m, &hs);
}

void qfs_metrics_read_qualys(struct qfs_metrics *m, const struct qfs_qualys *q,
                             struct qfs_qualys_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!q) return;
    qfs_qualys_read_stats(q, out);
    qfs_metrics_set_qualys(m, out);
}

void qfs_metrics_declare(struct qfs_metrics *m, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) qfs_metrics_count(m, names[i], 0);
}
