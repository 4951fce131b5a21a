/* qfs-notifier rules: the decision, the Subject, the message and its 256 KiB bound, the message
 * attributes, the skip records kept in the store and the notification record. No I/O here. */
#include "notifier.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/util.h"

/* The largest integer a message carries (proto/common.schema.json). */
#define QID_MAX 999999999999999LL
#define MAX_STORED_QIDS 1000

bool notifier_topic_arn_is_valid(const char *s)
{
    return qfs_notification_topic_arn_is_valid(s);
}

/* ---- outcomes and keys ----------------------------------------------------------------------- */

void notifier_outcome_cleanup(struct notifier_outcome *o)
{
    if (!o) return;
    qfs_scan_result_cleanup(&o->result);
    qfs_scan_failure_cleanup(&o->failure);
}

static bool is_result(const struct notifier_outcome *o)
{
    return o->source == QFS_NOTIFY_SOURCE_SCAN_RESULT;
}

const struct qfs_image_id *notifier_outcome_image(const struct notifier_outcome *o)
{
    return is_result(o) ? &o->result.image : &o->failure.image;
}

int64_t notifier_outcome_generation(const struct notifier_outcome *o)
{
    return is_result(o) ? o->result.generation : o->failure.generation;
}

const struct qfs_deploy *notifier_outcome_deploys(const struct notifier_outcome *o, size_t *n)
{
    *n = is_result(o) ? o->result.ndeploys : o->failure.ndeploys;
    return is_result(o) ? o->result.deploys : o->failure.deploys;
}

qfs_status notifier_keys_of(const struct notifier_outcome *o, struct notifier_keys *k)
{
    const struct qfs_image_id *img = notifier_outcome_image(o);
    char key[QFS_IMAGE_KEY_MAX];
    qfs_status s = qfs_image_key_format(key, sizeof(key), img);
    if (s != QFS_OK) return s;
    int64_t g = notifier_outcome_generation(o);
    int a = snprintf(k->notified, sizeof(k->notified), "notified:%s#%" PRId64, key, g);
    int b = snprintf(k->msg_id, sizeof(k->msg_id), "notify:%s#%" PRId64, key, g);
    int c = snprintf(k->findings, sizeof(k->findings), "findings:%s/%s", img->registry,
                     img->repository);
    if (a < 0 || b < 0 || c < 0 || (size_t)a >= sizeof(k->notified) ||
        (size_t)b >= sizeof(k->msg_id) || (size_t)c >= sizeof(k->findings))
        return QFS_TOO_BIG;
    return QFS_OK;
}

/* ---- previous findings ----------------------------------------------------------------------- */

qfs_status notifier_qids_parse(const char *json, size_t len, struct notifier_qids *out)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = cJSON_ParseWithLength(json, len);
    int n = cJSON_IsArray(root) ? cJSON_GetArraySize(root) : -1;
    if (n < 0 || n > MAX_STORED_QIDS) {
        cJSON_Delete(root);
        return QFS_PROTOCOL;
    }
    out->v = qfs_xcalloc((size_t)n + 1, sizeof(*out->v));
    const cJSON *c;
    cJSON_ArrayForEach(c, root) {
        double v = cJSON_IsNumber(c) ? c->valuedouble : -1;
        if (v < 1 || v > (double)QID_MAX || v != (double)(int64_t)v) {
            notifier_qids_cleanup(out);
            cJSON_Delete(root);
            return QFS_PROTOCOL;
        }
        out->v[out->n++] = (int64_t)v;
    }
    cJSON_Delete(root);
    return QFS_OK;
}

void notifier_qids_cleanup(struct notifier_qids *q)
{
    if (!q) return;
    free(q->v);
    memset(q, 0, sizeof(*q));
}

static int cmp_qid(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

char *notifier_qids_format(const struct qfs_scan_result *r)
{
    int64_t *v = qfs_xcalloc(r->nfindings + 1, sizeof(*v));
    for (size_t i = 0; i < r->nfindings; i++) v[i] = r->findings[i].qid;
    qsort(v, r->nfindings, sizeof(*v), cmp_qid);
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "[");
    for (size_t i = 0; i < r->nfindings; i++) {
        if (i > 0 && v[i] == v[i - 1]) continue;
        qfs_buf_printf(&b, "%s%" PRId64, b.len > 1 ? "," : "", v[i]);
    }
    qfs_buf_puts(&b, "]");
    free(v);
    return qfs_buf_take(&b);
}

static bool qids_contain(const struct notifier_qids *q, int64_t qid)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->v[i] == qid) return true;
    return false;
}

/* ---- the decision ---------------------------------------------------------------------------- */

struct notifier_decision notifier_decide(const struct notifier_rules *rules,
                                         const struct notifier_outcome *o,
                                         const struct notifier_qids *prev)
{
    struct notifier_decision d = {.send = false, .reason = QFS_NOTIFY_BELOW_MIN_SEVERITY};
    if (!is_result(o)) {
        d.send = rules->notify_failures;
        d.reason = d.send ? QFS_NOTIFY_SCAN_FAILURE : QFS_NOTIFY_FAILURES_DISABLED;
        return d;
    }
    const struct qfs_scan_result *r = &o->result;
    enum qfs_severity top = qfs_severity_counts_max(&r->counts);
    if (top == QFS_SEVERITY_NONE || top < rules->min_severity) return d;
    d.send = true;
    if (!rules->new_only) {
        d.reason = QFS_NOTIFY_MIN_SEVERITY_MET;
        return d;
    }
    d.reason = QFS_NOTIFY_NEW_FINDINGS;
    if (!prev) return d; /* the repository's first scan: everything is new */
    bool listed = false;
    for (size_t i = 0; i < r->nfindings; i++) {
        if (r->findings[i].severity < (int)rules->min_severity) continue;
        listed = true;
        if (!qids_contain(prev, r->findings[i].qid)) return d;
    }
    /* Counts at the threshold but no such finding listed: nothing proves they are old. */
    if (!listed) return d;
    d.send = false;
    d.reason = QFS_NOTIFY_NO_NEW_FINDINGS;
    return d;
}

/* ---- the Subject ----------------------------------------------------------------------------- */

/* A bounded string being written. */
struct sbuf {
    char s[1024];
    size_t n;
};

static void sb_putc(struct sbuf *b, char c)
{
    if (b->n + 1 < sizeof(b->s)) b->s[b->n++] = c;
    b->s[b->n] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    while (*s) sb_putc(b, *s++);
}

/* Appends s with every character outside [A-Za-z0-9._/-] as one '?': control characters, line
 * breaks, quotes, spaces, and each UTF-8 sequence (its continuation bytes are dropped). */
static void sb_put_safe(struct sbuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '/' || c == '-')
            sb_putc(b, (char)c);
        else if ((c & 0xC0) != 0x80)
            sb_putc(b, '?');
    }
}

void notifier_subject(const struct notifier_rules *rules, const struct notifier_outcome *o,
                      char out[QFS_SNS_MAX_SUBJECT + 1])
{
    const struct qfs_image_id *img = notifier_outcome_image(o);
    struct sbuf prefix = {.n = 0}, ref = {.n = 0}, suffix = {.n = 0};
    prefix.s[0] = ref.s[0] = suffix.s[0] = '\0';

    sb_puts(&prefix, "qfs: ");
    if (is_result(o)) {
        /* Critical and high always; lower levels when the threshold reaches them. */
        const struct qfs_severity_counts *c = &o->result.counts;
        const int64_t counts[] = {c->critical, c->high, c->medium, c->low, c->info};
        const char letters[] = "CHMLI";
        for (int i = 0; i < 5; i++) {
            enum qfs_severity level = (enum qfs_severity)(QFS_SEVERITY_CRITICAL - i);
            if (i >= 2 && level < rules->min_severity) break;
            char part[32];
            snprintf(part, sizeof(part), "%s%" PRId64 "%c", i ? "/" : "", counts[i], letters[i]);
            sb_puts(&prefix, part);
        }
        sb_putc(&prefix, ' ');
    } else {
        const char *reason = qfs_scan_failure_reason_str(o->failure.reason);
        sb_puts(&prefix, "scan failed (");
        sb_put_safe(&prefix, reason ? reason : "unknown");
        sb_puts(&prefix, ") ");
    }

    sb_put_safe(&ref, img->repository ? img->repository : "");
    if (img->tag) {
        sb_putc(&ref, ':');
        sb_put_safe(&ref, img->tag);
    } else if (img->digest) {
        /* "@sha256:" and the first 12 hex digits: enough to tell images apart. */
        char d[20];
        snprintf(d, sizeof(d), "%s", img->digest);
        char *colon = strchr(d, ':');
        if (colon) *colon = '\0';
        sb_putc(&ref, '@');
        sb_put_safe(&ref, d);
        if (colon) {
            sb_putc(&ref, ':');
            sb_put_safe(&ref, colon + 1);
        }
    }

    sb_puts(&suffix, " in ");
    sb_put_safe(&suffix, img->account);
    sb_putc(&suffix, '/');
    sb_put_safe(&suffix, img->region);

    /* Room for the reference between the counts and the place; a long one is cut with "...". */
    size_t fixed = prefix.n + suffix.n;
    size_t room = fixed < QFS_SNS_MAX_SUBJECT ? QFS_SNS_MAX_SUBJECT - fixed : 0;
    struct sbuf all = {.n = 0};
    all.s[0] = '\0';
    sb_puts(&all, prefix.s);
    if (ref.n <= room) {
        sb_puts(&all, ref.s);
    } else if (room >= 4) {
        ref.s[room - 3] = '\0';
        sb_puts(&all, ref.s);
        sb_puts(&all, "...");
    }
    sb_puts(&all, suffix.s);
    /* Only when the counts alone are huge; every byte is ASCII, so any cut is safe. */
    size_t n = all.n < QFS_SNS_MAX_SUBJECT ? all.n : QFS_SNS_MAX_SUBJECT;
    while (n > 0 && all.s[n - 1] == ' ') n--;
    memcpy(out, all.s, n);
    out[n] = '\0';
}

/* ---- attributes ------------------------------------------------------------------------------ */

size_t notifier_attributes(const struct notifier_outcome *o,
                           struct qfs_sns_attribute out[NOTIFIER_NATTRIBUTES])
{
    const struct qfs_image_id *img = notifier_outcome_image(o);
    const char *severity = is_result(o) ? qfs_severity_str(qfs_severity_counts_max(&o->result.counts))
                                        : "failure";
    out[0] = (struct qfs_sns_attribute){"severity", "String", severity};
    out[1] = (struct qfs_sns_attribute){"account", "String", img->account};
    out[2] = (struct qfs_sns_attribute){"region", "String", img->region};
    out[3] = (struct qfs_sns_attribute){"repository", "String", img->repository};
    return NOTIFIER_NATTRIBUTES;
}

size_t notifier_attributes_bytes(const struct qfs_sns_attribute *a, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(a[i].name) + strlen(a[i].data_type ? a[i].data_type : "String") +
                 strlen(a[i].value);
    return total;
}

/* ---- not-scanned images ---------------------------------------------------------------------- */

void notifier_not_scanned_add(struct notifier_not_scanned *l, const char *event_id,
                              const char *const *items, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool repeat = false;
        for (size_t j = 0; j < i && !repeat; j++)
            repeat = lens[j] == lens[i] && memcmp(items[j], items[i], lens[i]) == 0;
        if (repeat) continue; /* a redelivered skip appended twice */
        struct qfs_skip s;
        char err[160];
        if (qfs_skip_decode(items[i], lens[i], &s, err, sizeof(err)) != QFS_OK) {
            qfs_warn("ignoring a stored skip record", "event_id", event_id, "reason", err);
            continue;
        }
        if (!qfs_deploy_skip_is_kept(&s) || strcmp(s.deploy.event_id, event_id) != 0) {
            qfs_skip_cleanup(&s);
            continue;
        }
        if (l->n >= QFS_SNS_MAX_NOT_SCANNED) {
            l->omitted++;
            qfs_skip_cleanup(&s);
            continue;
        }
        l->v = qfs_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        struct qfs_sns_not_scanned *e = &l->v[l->n++];
        /* The strings move from the decoded record to the entry. */
        *e = (struct qfs_sns_not_scanned){.event_id = s.deploy.event_id, .reason = s.reason,
                                          .image = s.image, .detail = s.detail,
                                          .containers = s.deploy.containers,
                                          .ncontainers = s.deploy.ncontainers};
        s.deploy.event_id = s.image = s.detail = NULL;
        s.deploy.containers = NULL;
        s.deploy.ncontainers = 0;
        qfs_skip_cleanup(&s);
    }
}

void notifier_not_scanned_cleanup(struct notifier_not_scanned *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) qfs_sns_not_scanned_cleanup(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ---- the message and its bound --------------------------------------------------------------- */

/* How much of each list a message carries. */
struct shape {
    size_t findings, not_scanned, deploys;
};

static void add_cut(struct qfs_buf *b, size_t n, const char *one, const char *many)
{
    if (n == 0) return;
    qfs_buf_printf(b, "%s%zu %s", b->len ? ", " : "", n, n == 1 ? one : many);
}

static qfs_status encode_shape(const struct notifier_outcome *o,
                               const struct notifier_not_scanned *ns, const char *notified_at,
                               struct shape sh, char **json)
{
    size_t ndeploys;
    const struct qfs_deploy *deploys = notifier_outcome_deploys(o, &ndeploys);
    size_t nfindings = is_result(o) ? o->result.nfindings : 0;
    struct qfs_sns_message m;
    memset(&m, 0, sizeof(m));
    m.image = *notifier_outcome_image(o); /* borrowed: never cleaned up here */
    m.generation = notifier_outcome_generation(o);
    if (is_result(o)) {
        const struct qfs_scan_result *r = &o->result;
        m.outcome = QFS_SNS_COMPLETED;
        m.summary = (struct qfs_scan_summary){.qualys_image_sha = r->qualys_image_sha,
                                              .counts = r->counts, .total = r->total,
                                              .patchable = r->patchable,
                                              .scanned_at = r->scanned_at};
        m.findings = r->findings;
        m.nfindings = sh.findings;
        m.findings_omitted = r->total - (int64_t)sh.findings;
    } else {
        const struct qfs_scan_failure *f = &o->failure;
        m.outcome = QFS_SNS_FAILED;
        m.failure = (struct qfs_sns_failure){.reason = f->reason, .detail = f->detail,
                                             .qualys_error_code = f->qualys_error_code,
                                             .qualys_error_message = f->qualys_error_message,
                                             .poll_attempts = f->poll_attempts,
                                             .failed_at = f->failed_at};
    }
    m.deploys = (struct qfs_deploy *)deploys;
    m.ndeploys = sh.deploys;
    m.deploys_omitted = (int64_t)(ndeploys - sh.deploys);
    m.not_scanned = ns->v;
    m.nnot_scanned = sh.not_scanned;
    m.not_scanned_omitted = ns->omitted + (int64_t)(ns->n - sh.not_scanned);
    m.notified_at = (char *)notified_at;

    struct qfs_buf note;
    qfs_buf_init(&note, 1024);
    add_cut(&note, nfindings - sh.findings, "finding", "findings");
    add_cut(&note, ns->n - sh.not_scanned, "not-scanned image", "not-scanned images");
    add_cut(&note, ndeploys - sh.deploys, "deploy", "deploys");
    char *text = note.len ? qfs_xasprintf("left out to stay under 256 KiB: %s", note.data) : NULL;
    qfs_buf_cleanup(&note);
    m.note = text;
    qfs_status s = qfs_sns_message_encode(&m, json);
    free(text);
    return s;
}

/* Encodes sh; *fits says whether it is at most max bytes (*json is then the message). */
static qfs_status try_shape(const struct notifier_outcome *o, const struct notifier_not_scanned *ns,
                            const char *at, struct shape sh, size_t max, char **json, bool *fits)
{
    *json = NULL;
    *fits = false;
    qfs_status s = encode_shape(o, ns, at, sh, json);
    if (s != QFS_OK) return s;
    if (strlen(*json) <= max) {
        *fits = true;
    } else {
        free(*json);
        *json = NULL;
    }
    return QFS_OK;
}

/* Sets *field to the largest value in [lo, hi] whose shape fits, knowing that lo fits and hi does
 * not (every list only grows the message). */
static qfs_status largest_fit(const struct notifier_outcome *o,
                              const struct notifier_not_scanned *ns, const char *at,
                              struct shape *sh, size_t *field, size_t lo, size_t hi, size_t max)
{
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        *field = mid;
        char *json;
        bool fits;
        qfs_status s = try_shape(o, ns, at, *sh, max, &json, &fits);
        free(json);
        if (s != QFS_OK) return s;
        if (fits) lo = mid;
        else hi = mid;
    }
    *field = lo;
    return QFS_OK;
}

qfs_status notifier_message_build(const struct notifier_outcome *o,
                                  const struct notifier_not_scanned *ns, const char *notified_at,
                                  size_t max_bytes, struct notifier_message *out)
{
    memset(out, 0, sizeof(*out));
    size_t ndeploys;
    notifier_outcome_deploys(o, &ndeploys);
    size_t nfindings = is_result(o) ? o->result.nfindings : 0;
    struct shape sh = {nfindings, ns->n, ndeploys};
    char *json = NULL;
    bool fits;
    qfs_status s = try_shape(o, ns, notified_at, sh, max_bytes, &json, &fits);
    if (s == QFS_OK && !fits) {
        /* Findings go first (least severe first), then not-scanned images, then deploys. */
        size_t *order[] = {&sh.findings, &sh.not_scanned, &sh.deploys};
        size_t floor_of[] = {0, 0, 1};
        for (size_t k = 0; k < 3 && s == QFS_OK && !fits; k++) {
            size_t full = *order[k];
            if (full <= floor_of[k]) continue;
            *order[k] = floor_of[k];
            s = try_shape(o, ns, notified_at, sh, max_bytes, &json, &fits);
            if (s != QFS_OK || !fits) continue; /* not even without this list: cut the next */
            free(json);
            json = NULL;
            s = largest_fit(o, ns, notified_at, &sh, order[k], floor_of[k], full, max_bytes);
            if (s == QFS_OK) s = try_shape(o, ns, notified_at, sh, max_bytes, &json, &fits);
        }
        if (s == QFS_OK && !fits) s = QFS_TOO_BIG;
    }
    if (s != QFS_OK) {
        free(json);
        return s;
    }
    out->json = json;
    out->len = strlen(json);
    out->findings_sent = (int64_t)sh.findings;
    out->findings_omitted = is_result(o) ? o->result.total - (int64_t)sh.findings : 0;
    return QFS_OK;
}

void notifier_message_cleanup(struct notifier_message *m)
{
    if (!m) return;
    free(m->json);
    memset(m, 0, sizeof(*m));
}

/* ---- skip records kept in the store ---------------------------------------------------------- */

/* ---- the notification record ----------------------------------------------------------------- */

qfs_status notifier_record(const struct notifier_rules *rules, const struct notifier_outcome *o,
                           const struct notifier_decision *dec, const char *subject,
                           const char *message_id, const struct notifier_message *msg,
                           const char *notified_at, struct qfs_outbox *ob)
{
    const struct qfs_image_id *img = notifier_outcome_image(o);
    struct notifier_keys keys;
    char topic[QFS_SUBJECT_MAX];
    qfs_status s = notifier_keys_of(o, &keys);
    if (s == QFS_OK)
        s = qfs_subject_format(topic, sizeof(topic), QFS_SUBJECT_NOTIFICATIONS, img->account,
                               img->region);
    if (s != QFS_OK) return QFS_INVALID_ARG;

    struct qfs_notification n;
    memset(&n, 0, sizeof(n));
    n.decision = dec->send ? QFS_NOTIFY_SENT : QFS_NOTIFY_NOT_SENT;
    n.reason = dec->reason;
    n.source = o->source;
    n.image = *img; /* borrowed, as every string below */
    n.generation = notifier_outcome_generation(o);
    if (is_result(o)) {
        n.counts = o->result.counts;
        n.severity = qfs_severity_counts_max(&o->result.counts);
    } else {
        n.failure_reason = o->failure.reason;
    }
    if (dec->send) {
        n.topic_arn = (char *)rules->topic_arn;
        n.subject = (char *)subject;
        n.sns_message_id = (char *)message_id;
        n.findings_sent = msg ? msg->findings_sent : 0;
        n.findings_omitted = msg ? msg->findings_omitted : 0;
    }
    size_t nd;
    n.deploys = (struct qfs_deploy *)notifier_outcome_deploys(o, &nd);
    n.ndeploys = nd;
    n.notified_at = (char *)notified_at;
    char *json = NULL;
    s = qfs_notification_encode(&n, &json);
    if (s != QFS_OK) return QFS_INVALID_ARG;
    qfs_outbox_add_take(ob, topic, keys.msg_id, qfs_schema_name(QFS_SCHEMA_NOTIFICATION), json);
    return QFS_OK;
}
