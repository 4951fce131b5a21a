/* qfs-cache rules: cached, requested or in_flight for each image record; results stored and
 * markers released for each finished scan. */
#include "cache.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/proto.h"
#include "qfs/proto_image.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/util.h"

/* How often one job tries to set the marker when it vanishes between put_if_absent and get. */
#define MARKER_ATTEMPTS 3
/* A store key: "inflight:", "deploys:", "result:" plus the image key and "#<generation>". */
#define STORE_KEY_MAX (QFS_IMAGE_KEY_MAX + 48)
/* The largest count a message carries (proto/common.schema.json, count). */
#define COUNT_MAX 1000000000LL
/* Generations are integers below 10^15 (proto/common.schema.json, generation). */
#define GENERATION_MAX 999999999999999LL

static const char *const decision_names[] = {
    [CACHE_CACHED] = "cached",
    [CACHE_REQUESTED] = "requested",
    [CACHE_OWN_MARKER] = "requested_again",
    [CACHE_IN_FLIGHT] = "in_flight",
    [CACHE_FAIL_OPEN] = "fail_open",
    [CACHE_STORED] = "stored",
    [CACHE_STORED_KEPT] = "stored_marker_not_ours",
    [CACHE_RELEASED] = "released",
    [CACHE_KEPT] = "marker_not_ours",
    [CACHE_RETRY] = "retry",
    [CACHE_DEAD_LETTER] = "dead_letter",
};

const char *cache_decision_str(enum cache_decision d)
{
    if ((unsigned)d >= sizeof(decision_names) / sizeof(decision_names[0]) || !decision_names[d])
        return "unknown";
    return decision_names[d];
}

/* ---- the store port over qfs_kv ------------------------------------------------------------- */

static qfs_status kv_get(void *impl, const char *key, qfs_kv_fn cb, void *arg)
{
    return qfs_kv_get(impl, key, cb, arg);
}

static qfs_status kv_put(void *impl, const char *key, const char *value, size_t len, int64_t ttl,
                         qfs_kv_fn cb, void *arg)
{
    return qfs_kv_put(impl, key, value, len, ttl, cb, arg);
}

static qfs_status kv_put_if_absent(void *impl, const char *key, const char *value, size_t len,
                                   int64_t ttl, qfs_kv_fn cb, void *arg)
{
    return qfs_kv_put_if_absent(impl, key, value, len, ttl, cb, arg);
}

static qfs_status kv_del_if_value(void *impl, const char *key, const char *expected, size_t len,
                                  qfs_kv_fn cb, void *arg)
{
    return qfs_kv_del_if_value(impl, key, expected, len, cb, arg);
}

static qfs_status kv_append(void *impl, const char *key, const char *value, size_t len,
                            int64_t ttl, unsigned max_items, qfs_kv_fn cb, void *arg)
{
    return qfs_kv_append(impl, key, value, len, ttl, max_items, cb, arg);
}

void cache_store_init_kv(struct cache_store *s, struct qfs_kv *kv)
{
    *s = (struct cache_store){.impl = kv, .get = kv_get, .put = kv_put,
                              .put_if_absent = kv_put_if_absent, .del_if_value = kv_del_if_value,
                              .append = kv_append};
}

/* ---- pure parts ----------------------------------------------------------------------------- */

int64_t cache_result_ttl(const struct cache_settings *set, bool digest_known)
{
    if (digest_known || set->tag_ttl_s >= set->result_ttl_s) return set->result_ttl_s;
    return set->tag_ttl_s;
}

size_t cache_marker_format(char *buf, size_t n, int64_t generation)
{
    int w = snprintf(buf, n, "{\"generation\":%" PRId64 "}", generation);
    qfs_assert(w > 0 && (size_t)w < n);
    return (size_t)w;
}

/* Reads an integer member of obj within [min, max]. */
static bool json_int(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= (double)min && d <= (double)max) || floor(d) != d) return false;
    *out = (int64_t)d;
    return true;
}

static const char *json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool cache_marker_parse(const char *value, size_t len, int64_t *generation)
{
    cJSON *root = cJSON_ParseWithLength(value, len);
    bool ok = cJSON_IsObject(root) && json_int(root, "generation", 1, GENERATION_MAX, generation);
    cJSON_Delete(root);
    return ok;
}

int64_t cache_retry_delay_ms(uint64_t delivery)
{
    uint64_t shift = delivery < 2 ? 0 : delivery - 1;
    if (shift > 5) shift = 5;
    int64_t delay = 2000LL << shift;
    return delay > 60000 ? 60000 : delay;
}

static bool is_qualys_sha(const char *s)
{
    if (!s || strlen(s) != 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

/* The value of result:<K>: {"generation":G,"summary":{...}} (the summary as skip.schema.json has
 * it). The caller frees the text. */
static char *result_value_format(const struct qfs_scan_result *r)
{
    struct qfs_buf b;
    qfs_buf_init(&b, QFS_KV_MAX_VALUE);
    qfs_status s = qfs_buf_printf(&b, "{\"generation\":%" PRId64 ",\"summary\":{\"qualys_image_sha\":",
                                  r->generation);
    if (s == QFS_OK) s = qfs_buf_json_string(&b, r->qualys_image_sha, strlen(r->qualys_image_sha));
    if (s == QFS_OK)
        s = qfs_buf_printf(&b,
                           ",\"counts\":{\"critical\":%" PRId64 ",\"high\":%" PRId64
                           ",\"medium\":%" PRId64 ",\"low\":%" PRId64 ",\"info\":%" PRId64
                           "},\"total\":%" PRId64 ",\"patchable\":%" PRId64 ",\"scanned_at\":",
                           r->counts.critical, r->counts.high, r->counts.medium, r->counts.low,
                           r->counts.info, r->total, r->patchable);
    if (s == QFS_OK) s = qfs_buf_json_string(&b, r->scanned_at, strlen(r->scanned_at));
    if (s == QFS_OK) s = qfs_buf_puts(&b, "}}");
    /* A decoded result has bounded fields: a few hundred bytes, far below the cap. */
    qfs_assert(s == QFS_OK);
    return qfs_buf_take(&b);
}

/* Reads a stored result into *summary (cleaned up by the caller after true) and *generation;
 * false when the value is not one (it is then treated as a miss). */
static bool result_value_parse(const char *value, size_t len, struct qfs_scan_summary *summary,
                               int64_t *generation)
{
    memset(summary, 0, sizeof(*summary));
    cJSON *root = cJSON_ParseWithLength(value, len);
    const cJSON *sum = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "summary") : NULL;
    const cJSON *counts = cJSON_IsObject(sum) ? cJSON_GetObjectItemCaseSensitive(sum, "counts") : NULL;
    struct qfs_severity_counts c = {0};
    int64_t total = 0, patchable = 0;
    const char *sha = cJSON_IsObject(sum) ? json_str(sum, "qualys_image_sha") : NULL;
    const char *at = cJSON_IsObject(sum) ? json_str(sum, "scanned_at") : NULL;
    bool ok = json_int(root, "generation", 1, GENERATION_MAX, generation) && cJSON_IsObject(counts) &&
              json_int(counts, "critical", 0, COUNT_MAX, &c.critical) &&
              json_int(counts, "high", 0, COUNT_MAX, &c.high) &&
              json_int(counts, "medium", 0, COUNT_MAX, &c.medium) &&
              json_int(counts, "low", 0, COUNT_MAX, &c.low) &&
              json_int(counts, "info", 0, COUNT_MAX, &c.info) &&
              json_int(sum, "total", 0, COUNT_MAX, &total) &&
              json_int(sum, "patchable", 0, COUNT_MAX, &patchable) &&
              total == c.critical + c.high + c.medium + c.low + c.info && patchable <= total &&
              is_qualys_sha(sha) && qfs_proto_is_timestamp(at);
    if (ok) {
        summary->qualys_image_sha = qfs_xstrdup(sha);
        summary->counts = c;
        summary->total = total;
        summary->patchable = patchable;
        summary->scanned_at = qfs_xstrdup(at);
    }
    cJSON_Delete(root);
    return ok;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

enum job_kind { JOB_IMAGE, JOB_COMPLETED, JOB_FAILED };

struct job {
    struct cache *c;
    enum job_kind kind;
    cache_done_fn cb;
    void *arg;
    char *trace_id;
    uint64_t delivery;
    struct cache_outcome out;
    struct qfs_image_record rec;     /* JOB_IMAGE */
    struct qfs_scan_result result;   /* JOB_COMPLETED */
    struct qfs_scan_failure failure; /* JOB_FAILED */
    int marker_attempts;
    char marker[48];                 /* {"generation":G} of this message */
    size_t marker_len;
    int64_t running;                 /* JOB_IMAGE, in_flight: the running scan's generation */
    char reason[256];
    /* Up to three extra fields of the decision's log line; a NULL key ends them. */
    const char *log_key[3];
    const char *log_val[3];
    char log_buf[2][32];
};

static void store_key(char *buf, const char *kind, const struct job *j)
{
    snprintf(buf, STORE_KEY_MAX, "%s:%s", kind, j->out.key);
}

static void end(struct job *j, enum cache_decision d)
{
    struct cache *c = j->c;
    j->out.decision = d;
    j->out.action = d == CACHE_RETRY ? CACHE_ACT_RETRY
                    : d == CACHE_DEAD_LETTER ? CACHE_ACT_DEAD_LETTER : CACHE_ACT_FINISH;
    if (j->out.action != CACHE_ACT_FINISH) {
        qfs_outbox_cleanup(&j->out.outbox);
        j->out.reason = j->reason;
        if (j->out.action == CACHE_ACT_RETRY) j->out.retry_delay_ms = cache_retry_delay_ms(j->delivery);
        j->log_key[0] = "status";
        j->log_val[0] = qfs_status_str(j->out.status);
        j->log_key[1] = "reason";
        j->log_val[1] = j->reason;
        j->log_key[2] = NULL;
    }
    char gen[24];
    snprintf(gen, sizeof(gen), "%" PRId64, j->out.generation);
    qfs_info("cache decision", "trace_id", j->trace_id, "image_key", j->out.key[0] ? j->out.key : NULL,
             "decision", cache_decision_str(d), "generation", gen, j->log_key[0], j->log_val[0],
             j->log_key[1], j->log_val[1], j->log_key[2], j->log_val[2]);
    j->cb(j->arg, &j->out);
    qfs_outbox_cleanup(&j->out.outbox);
    qfs_image_record_cleanup(&j->rec);
    qfs_scan_result_cleanup(&j->result);
    qfs_scan_failure_cleanup(&j->failure);
    free(j->trace_id);
    free(j);
    c->jobs--;
}

static void retry(struct job *j, qfs_status s, const char *what)
{
    j->out.status = s;
    snprintf(j->reason, sizeof(j->reason), "%s: %s", what, qfs_status_str(s));
    end(j, CACHE_RETRY);
}

/* A bug (an output that breaks its schema) or input that cannot be used: the DLQ keeps it. */
static void dead_letter(struct job *j, qfs_status s, const char *why)
{
    j->out.status = s;
    snprintf(j->reason, sizeof(j->reason), "%s", why);
    end(j, CACHE_DEAD_LETTER);
}

/* A store call refused at once goes the same way as an answer with that status. */
static void refused(qfs_kv_fn cb, struct job *j, qfs_status s)
{
    struct qfs_kv_result r = {.status = s};
    cb(&r, j);
}

static struct job *job_new(struct cache *c, enum job_kind kind, const struct cache_input *in,
                           cache_done_fn cb, void *arg)
{
    struct job *j = qfs_xcalloc(1, sizeof(*j));
    j->c = c;
    j->kind = kind;
    j->cb = cb;
    j->arg = arg;
    j->trace_id = in->trace_id ? qfs_xstrdup(in->trace_id) : NULL;
    j->delivery = in->delivery;
    qfs_outbox_init(&j->out.outbox);
    c->jobs++;
    return j;
}

/* ---- image records -------------------------------------------------------------------------- */

static void on_result_read(const struct qfs_kv_result *r, void *arg);
static void set_marker(struct job *j);
static void on_marker_set(const struct qfs_kv_result *r, void *arg);
static void on_marker_read(const struct qfs_kv_result *r, void *arg);
static void on_joined(const struct qfs_kv_result *r, void *arg);
static void on_result_reread(const struct qfs_kv_result *r, void *arg);

/* Adds the scan request of this record (generation G, deploys = [this deploy]). */
static qfs_status add_request(struct job *j, bool fail_open)
{
    const struct qfs_image_id *img = &j->rec.image;
    char now[32];
    qfs_format_time_ms(qfs_now_ms(), now);
    struct qfs_scan_request req = {
        .image = *img, /* borrowed: req is never cleaned up */
        .generation = j->out.generation,
        .requested_at = now,
        .cache_fail_open = fail_open,
        .deploys = &j->rec.deploy,
        .ndeploys = 1,
    };
    char subject[QFS_SUBJECT_MAX];
    char *json = NULL;
    qfs_status s = qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_REQUESTED,
                                      img->account, img->region);
    if (s == QFS_OK) s = qfs_scan_request_encode(&req, &json);
    if (s != QFS_OK) return s;
    char *id = qfs_xasprintf("request:%s#%" PRId64, j->out.key, j->out.generation);
    qfs_outbox_add_take(&j->out.outbox, subject, id, qfs_schema_name(QFS_SCHEMA_SCAN_REQUEST), json);
    free(id);
    return QFS_OK;
}

/* Adds the skip record of this record's deploy: cached (with summary) or in_flight. */
static qfs_status add_skip(struct job *j, enum qfs_skip_reason reason, const char *detail,
                           struct qfs_scan_summary *summary)
{
    const struct qfs_image_id *img = &j->rec.image;
    struct qfs_skip sk;
    memset(&sk, 0, sizeof(sk));
    sk.reason = reason;
    sk.detail = (char *)detail;
    memcpy(sk.account, img->account, sizeof(sk.account));
    memcpy(sk.region, img->region, sizeof(sk.region));
    sk.image = img->image;
    sk.digest = img->digest;
    sk.summary = summary;
    sk.deploy = j->rec.deploy; /* borrowed: sk is never cleaned up */
    char subject[QFS_SUBJECT_MAX];
    char *json = NULL;
    qfs_status s = qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_SKIPPED,
                                      img->account, img->region);
    if (s == QFS_OK) s = qfs_skip_encode(&sk, &json);
    if (s != QFS_OK) return s;
    char *id = qfs_xasprintf("skip:%s:%s", j->rec.deploy.event_id, j->out.key);
    qfs_outbox_add_take(&j->out.outbox, subject, id, qfs_schema_name(QFS_SCHEMA_SKIP), json);
    free(id);
    return QFS_OK;
}

/* Adds the cached skip of a stored result value. QFS_NOT_FOUND when the value is not a readable
 * result (a miss), QFS_INTERNAL when the skip record could not be encoded. */
static qfs_status add_cached_skip(struct job *j, const char *value, size_t len)
{
    struct qfs_scan_summary summary;
    int64_t gen = 0;
    if (!result_value_parse(value, len, &summary, &gen)) return QFS_NOT_FOUND;
    char detail[128];
    snprintf(detail, sizeof(detail), "scanned %s (scan generation %" PRId64 ")", summary.scanned_at,
             gen);
    qfs_status s = add_skip(j, QFS_SKIP_CACHED, detail, &summary);
    qfs_scan_summary_cleanup(&summary);
    return s == QFS_OK ? QFS_OK : QFS_INTERNAL;
}

/* Ends the job with this record's scan request. */
static void request(struct job *j, enum cache_decision d)
{
    if (add_request(j, d == CACHE_FAIL_OPEN) != QFS_OK) {
        dead_letter(j, QFS_INTERNAL, "the cache could not encode its scan request");
        return;
    }
    end(j, d);
}

/* The store failed at step what: fail open (scan without it) when it is unreachable or unusable
 * for this image, unless QFS_CACHE_FAIL_CLOSED; otherwise try the record again later. */
static void image_store_failed(struct job *j, qfs_status s, bool unusable, const char *what)
{
    bool unreachable = unusable || s == QFS_UNAVAILABLE || s == QFS_TIMED_OUT;
    if (!unreachable || j->c->set.fail_closed) {
        retry(j, s, what);
        return;
    }
    j->c->fail_open_total++;
    snprintf(j->log_buf[0], sizeof(j->log_buf[0]), "%" PRIu64, j->c->fail_open_total);
    snprintf(j->reason, sizeof(j->reason), "%s: %s", what, qfs_status_str(s));
    j->log_key[0] = "fail_open_total";
    j->log_val[0] = j->log_buf[0];
    j->log_key[1] = "reason";
    j->log_val[1] = j->reason;
    request(j, CACHE_FAIL_OPEN);
}

void cache_on_image(struct cache *c, const struct cache_input *in, cache_done_fn cb, void *arg)
{
    struct job *j = job_new(c, JOB_IMAGE, in, cb, arg);
    char err[256];
    if (qfs_image_record_decode(in->data, in->len, &j->rec, err, sizeof(err)) != QFS_OK) {
        dead_letter(j, QFS_PROTOCOL, err);
        return;
    }
    if (qfs_image_key_format(j->out.key, sizeof(j->out.key), &j->rec.image) != QFS_OK) {
        dead_letter(j, QFS_PROTOCOL, "the image has no key");
        return;
    }
    if (in->stream_seq < 1 || in->stream_seq > (uint64_t)GENERATION_MAX) {
        dead_letter(j, QFS_INTERNAL, "the record has no usable stream sequence");
        return;
    }
    j->out.generation = (int64_t)in->stream_seq;
    j->marker_len = cache_marker_format(j->marker, sizeof(j->marker), j->out.generation);
    char key[STORE_KEY_MAX];
    store_key(key, "result", j);
    qfs_status s = c->store.get(c->store.impl, key, on_result_read, j);
    if (s != QFS_OK) refused(on_result_read, j, s);
}

static void on_result_read(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status == QFS_OK) {
        qfs_status s = add_cached_skip(j, r->value, r->len);
        if (s == QFS_OK) {
            end(j, CACHE_CACHED);
            return;
        }
        if (s != QFS_NOT_FOUND) {
            dead_letter(j, QFS_INTERNAL, "the cache could not encode its skip record");
            return;
        }
        qfs_warn("the stored result is unreadable; scanning again", "trace_id", j->trace_id,
                 "image_key", j->out.key);
        set_marker(j);
        return;
    }
    if (r->status == QFS_NOT_FOUND) {
        set_marker(j);
        return;
    }
    if (r->status == QFS_PROTOCOL) {
        /* Something that is not a result holds the key: as unreadable as a bad value. */
        qfs_warn("the stored result is not a value; scanning again", "trace_id", j->trace_id,
                 "image_key", j->out.key);
        set_marker(j);
        return;
    }
    image_store_failed(j, r->status, false, "reading the stored result");
}

static void set_marker(struct job *j)
{
    struct cache *c = j->c;
    char key[STORE_KEY_MAX];
    store_key(key, "inflight", j);
    j->marker_attempts++;
    qfs_status s = c->store.put_if_absent(c->store.impl, key, j->marker, j->marker_len,
                                          c->set.inflight_ttl_s, on_marker_set, j);
    if (s != QFS_OK) refused(on_marker_set, j, s);
}

static void on_marker_set(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK) {
        image_store_failed(j, r->status, false, "setting the in-flight marker");
        return;
    }
    if (!r->exists) {
        /* The result was missing when read, but a scan may have finished since: it stores its
         * result before it releases its marker, so a result read now is seen. */
        struct cache *c = j->c;
        char key[STORE_KEY_MAX];
        store_key(key, "result", j);
        qfs_status s = c->store.get(c->store.impl, key, on_result_reread, j);
        if (s != QFS_OK) refused(on_result_reread, j, s);
        return;
    }
    /* A marker is there: whose? */
    struct cache *c = j->c;
    char key[STORE_KEY_MAX];
    store_key(key, "inflight", j);
    qfs_status s = c->store.get(c->store.impl, key, on_marker_read, j);
    if (s != QFS_OK) refused(on_marker_read, j, s);
}

/* Ends the job with the cached skip of a result read after our marker was set, releasing the
 * marker: the scan it would start has already been done. A marker that cannot be released stays
 * until its TTL; the result answers every deploy before that. */
static void on_own_marker_released(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK)
        qfs_warn("could not release an unneeded in-flight marker", "trace_id", j->trace_id,
                 "image_key", j->out.key, "status", qfs_status_str(r->status));
    end(j, CACHE_CACHED);
}

static void on_result_reread(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    /* No result (or no answer): the marker is ours, so scan. */
    qfs_status s = r->status == QFS_OK ? add_cached_skip(j, r->value, r->len) : QFS_NOT_FOUND;
    if (s == QFS_NOT_FOUND) {
        request(j, CACHE_REQUESTED);
        return;
    }
    if (s != QFS_OK) {
        dead_letter(j, QFS_INTERNAL, "the cache could not encode its skip record");
        return;
    }
    struct cache *c = j->c;
    char key[STORE_KEY_MAX];
    store_key(key, "inflight", j);
    s = c->store.del_if_value(c->store.impl, key, j->marker, j->marker_len, on_own_marker_released, j);
    if (s != QFS_OK) refused(on_own_marker_released, j, s);
}

/* Adds this deploy to the running scan's list deploys:<K>#<G'>, as scan messages carry it. */
static void join_running(struct job *j)
{
    struct cache *c = j->c;
    char *deploy = NULL;
    if (qfs_deploy_encode(&j->rec.deploy, &deploy) != QFS_OK) {
        dead_letter(j, QFS_INTERNAL, "the cache could not encode the deploy");
        return;
    }
    char key[QFS_GENERATION_KEY_MAX];
    qfs_status s = qfs_generation_key(key, sizeof(key), "deploys", j->out.key, j->running);
    if (s == QFS_OK)
        s = c->store.append(c->store.impl, key, deploy, strlen(deploy), c->set.inflight_ttl_s,
                            QFS_KV_MAX_LIST, on_joined, j);
    free(deploy);
    if (s != QFS_OK) refused(on_joined, j, s);
}

static void on_marker_read(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status == QFS_NOT_FOUND) {
        /* Released (or expired) between the two calls: the image may be free now. */
        if (j->marker_attempts < MARKER_ATTEMPTS) {
            set_marker(j);
            return;
        }
        retry(j, QFS_UNAVAILABLE, "the in-flight marker keeps changing");
        return;
    }
    if (r->status != QFS_OK) {
        /* QFS_PROTOCOL: something that is not a marker holds the key. */
        image_store_failed(j, r->status, r->status == QFS_PROTOCOL, "reading the in-flight marker");
        return;
    }
    int64_t gen = 0;
    if (!cache_marker_parse(r->value, r->len, &gen)) {
        /* A marker nobody can read blocks the image until its TTL: treat the store as unusable
         * for this image rather than hold the deploy back. */
        image_store_failed(j, QFS_PROTOCOL, true, "the in-flight marker is unreadable");
        return;
    }
    if (gen == j->out.generation) {
        /* Our own marker: an earlier delivery set it and did not get to publish (or its ack was
         * lost). Publish again; the same Nats-Msg-Id makes it a duplicate if it was stored. */
        request(j, CACHE_OWN_MARKER);
        return;
    }
    j->running = gen;
    snprintf(j->log_buf[0], sizeof(j->log_buf[0]), "%" PRId64, gen);
    j->log_key[0] = "running_generation";
    j->log_val[0] = j->log_buf[0];
    join_running(j);
}

static void on_joined(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    char detail[160];
    if (r->status == QFS_OK && !r->dropped) {
        snprintf(detail, sizeof(detail),
                 "a scan of this image is running (generation %" PRId64 "); this deploy joined it",
                 j->running);
    } else if ((r->status == QFS_OK && r->dropped) || r->status == QFS_TOO_BIG) {
        /* The running scan's list is full, or this deploy is too big for it: the scan goes on,
         * and this skip record is the trace of the deploy. */
        snprintf(detail, sizeof(detail),
                 "a scan of this image is running (generation %" PRId64 "); this deploy could not "
                 "be attached to it (%s)", j->running, r->status == QFS_OK ? "list full" : "too big");
        j->log_key[1] = "joined";
        j->log_val[1] = "false";
    } else {
        image_store_failed(j, r->status, false, "adding the deploy to the running scan");
        return;
    }
    if (add_skip(j, QFS_SKIP_IN_FLIGHT, detail, NULL) != QFS_OK) {
        dead_letter(j, QFS_INTERNAL, "the cache could not encode its skip record");
        return;
    }
    end(j, CACHE_IN_FLIGHT);
}

/* ---- finished scans ------------------------------------------------------------------------- */

static void release_marker(struct job *j);
static void on_result_stored(const struct qfs_kv_result *r, void *arg);
static void on_released(const struct qfs_kv_result *r, void *arg);

/* Keys the job by the scan's image and generation. */
static bool scan_job_init(struct job *j, const struct qfs_image_id *img, int64_t generation)
{
    if (qfs_image_key_format(j->out.key, sizeof(j->out.key), img) != QFS_OK) {
        dead_letter(j, QFS_PROTOCOL, "the image has no key");
        return false;
    }
    j->out.generation = generation;
    j->marker_len = cache_marker_format(j->marker, sizeof(j->marker), generation);
    return true;
}

void cache_on_completed(struct cache *c, const struct cache_input *in, cache_done_fn cb, void *arg)
{
    struct job *j = job_new(c, JOB_COMPLETED, in, cb, arg);
    char err[256];
    if (qfs_scan_result_decode(in->data, in->len, &j->result, err, sizeof(err)) != QFS_OK) {
        dead_letter(j, QFS_PROTOCOL, err);
        return;
    }
    if (!scan_job_init(j, &j->result.image, j->result.generation)) return;
    char key[STORE_KEY_MAX];
    store_key(key, "result", j);
    char *value = result_value_format(&j->result);
    int64_t ttl = cache_result_ttl(&c->set, j->result.image.digest != NULL);
    qfs_status s = c->store.put(c->store.impl, key, value, strlen(value), ttl, on_result_stored, j);
    free(value);
    if (s != QFS_OK) refused(on_result_stored, j, s);
}

static void on_result_stored(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK) {
        retry(j, r->status, "storing the scan result");
        return;
    }
    release_marker(j);
}

void cache_on_failed(struct cache *c, const struct cache_input *in, cache_done_fn cb, void *arg)
{
    struct job *j = job_new(c, JOB_FAILED, in, cb, arg);
    char err[256];
    if (qfs_scan_failure_decode(in->data, in->len, &j->failure, err, sizeof(err)) != QFS_OK) {
        dead_letter(j, QFS_PROTOCOL, err);
        return;
    }
    if (!scan_job_init(j, &j->failure.image, j->failure.generation)) return;
    /* Failures are not cached: the next deploy of the image tries again. */
    release_marker(j);
}

/* Deletes inflight:<K> only while it holds this scan's generation. */
static void release_marker(struct job *j)
{
    struct cache *c = j->c;
    char key[STORE_KEY_MAX];
    store_key(key, "inflight", j);
    qfs_status s = c->store.del_if_value(c->store.impl, key, j->marker, j->marker_len, on_released, j);
    if (s != QFS_OK) refused(on_released, j, s);
}

static void on_released(const struct qfs_kv_result *r, void *arg)
{
    struct job *j = arg;
    if (r->status != QFS_OK) {
        retry(j, r->status, "releasing the in-flight marker");
        return;
    }
    bool completed = j->kind == JOB_COMPLETED;
    if (r->not_owner)
        end(j, completed ? CACHE_STORED_KEPT : CACHE_KEPT);
    else
        end(j, completed ? CACHE_STORED : CACHE_RELEASED);
}
