/* Qualys CS client: one token, one rate limiter and the calls of reference §5, on a libuv loop. */
#include "qfs/qualys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/aws.h"
#include "qfs/aws_secrets.h"
#include "qfs/log.h"

#define API_PREFIX "/csapi/v1.3"
#define DEFAULT_MAX_ATTEMPTS 6
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_WAIT_MS 120000
#define DEFAULT_BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
#define DEFAULT_RENEW_BEFORE_MS (10u * 60 * 1000)
#define DEFAULT_LOW_REMAINING 10
#define DEFAULT_TOP_FINDINGS 10
#define AUTH_COOLDOWN_MS 10000   /* after refused credentials, calls fail at once for this long */
#define RENEW_RETRY_MS 30000     /* a failed early renewal is tried again this much later */
#define PAGE_SIZE 50
#define MAX_PAGES 20
#define MAX_SMALL_RESPONSE (256u << 10)
#define MAX_LIST_RESPONSE (4u << 20)
#define MAX_DETAIL_RESPONSE (16u << 20)
#define MAX_NAME 128

/* Rate-limit buckets: the CS path patterns of reference §4 that qfs calls. */
enum bucket { B_NONE = -1, B_REGISTRY, B_IMAGES, B_IMAGES_LIST, NBUCKETS };

struct bucket_state {
    bool known;          /* the X-RateLimit-* headers have been seen */
    int64_t limit;
    int64_t window_ms;
    int64_t remaining;   /* the server's count, minus the calls started since it said so */
    uint64_t next_ms;    /* monotonic: spacing, the next call starts no earlier */
    uint64_t blocked_ms; /* monotonic: after a 429, nothing starts before */
};

enum auth_mode { AUTH_STATIC, AUTH_PASSWORD, AUTH_SECRET };

/* The calls, numbered as the stats count them (POST /auth is not an op). */
enum op_kind {
    OP_AWS_BASE = QFS_QUALYS_CALL_AWS_BASE,
    OP_CONNECTORS = QFS_QUALYS_CALL_LIST_CONNECTORS,
    OP_CREATE_CONNECTOR = QFS_QUALYS_CALL_CREATE_CONNECTOR,
    OP_FIND_REGISTRY = QFS_QUALYS_CALL_FIND_REGISTRY,
    OP_CREATE_REGISTRY = QFS_QUALYS_CALL_CREATE_REGISTRY,
    OP_CREATE_SCHEDULE = QFS_QUALYS_CALL_CREATE_SCHEDULE,
    OP_FIND_IMAGE = QFS_QUALYS_CALL_FIND_IMAGE,
    OP_IMAGE_DETAIL = QFS_QUALYS_CALL_IMAGE_DETAIL,
    OP_IMAGE_VULNS = QFS_QUALYS_CALL_IMAGE_VULNS,
};

static const char *const op_names[QFS_QUALYS_CALL_COUNT] = {
    [QFS_QUALYS_CALL_AUTH] = "auth",
    [OP_AWS_BASE] = "aws_base",
    [OP_CONNECTORS] = "list_connectors",
    [OP_CREATE_CONNECTOR] = "create_connector",
    [OP_FIND_REGISTRY] = "find_registry",
    [OP_CREATE_REGISTRY] = "create_registry",
    [OP_CREATE_SCHEDULE] = "create_schedule",
    [OP_FIND_IMAGE] = "find_image",
    [OP_IMAGE_DETAIL] = "image_detail",
    [OP_IMAGE_VULNS] = "image_vulns",
};

enum op_state { OP_WAIT_TOKEN, OP_WAIT_SLOT, OP_HTTP, OP_DONE };

/* One call over all its requests (pages, the retry after a re-auth). Freed in its timer's close
 * callback, after the caller's callback ran. */
struct op {
    struct qfs_qualys *q;
    struct op *prev, *next; /* every op of the client */
    struct op *wait_next;   /* waiting for a token */
    enum op_kind kind;
    enum op_state state;
    enum bucket bucket;
    bool post;
    bool reauthed; /* one re-auth and retry after a 401 */
    unsigned page; /* 1-based, list calls */
    uv_timer_t timer;
    char *path;    /* after API_PREFIX */
    char *query;   /* without the paging parameters; may be NULL */
    char *body;
    size_t body_len;
    size_t max_response;
    char *bearer;  /* the token this request carries */
    uint64_t token_gen;
    qfs_qualys_done_fn cb;
    void *arg;

    qfs_status status;
    long http_code;
    unsigned attempts;
    unsigned seen_429; /* the attempt whose 429 op_retry counted; 0 none */
    struct qfs_qualys_error err;

    char want[320]; /* find_registry: the registry URI */
    struct qfs_qualys_image_match match;
    char host[260], repository[260], tag[130], digest[65];
    bool found;
    struct qfs_qualys_aws_base aws_base;
    struct qfs_qualys_connector *connectors;
    size_t nconnectors;
    struct qfs_qualys_registry registry;
    char uuid[64];
    struct qfs_qualys_image image;
    struct qfs_qualys_vuln_report *vulns;
};

struct qfs_qualys {
    uv_loop_t *loop;
    struct qfs_http *http;
    struct qfs_aws *aws;
    char *gateway; /* scheme://host[:port][/path], no trailing '/' */
    enum auth_mode mode;
    char *secret_arn;
    char *username;
    char *password;
    bool secret_stale; /* read the secret before the next token fetch */

    char *token;          /* NULL while there is none */
    uint64_t token_gen;   /* which token: a 401 only drops the one it was sent with */
    uint64_t renew_at_ms; /* monotonic; 0: never (static tokens) */
    bool fetching;
    struct op *waiters, *waiters_tail;
    uint64_t cooldown_until_ms;
    qfs_status cooldown_status;
    struct qfs_qualys_error cooldown_err;
    unsigned auth_count;
    struct qfs_qualys_stats stats;
    unsigned auth_seen_429; /* as op->seen_429, for /auth */

    struct bucket_state buckets[NBUCKETS];
    struct op *ops;
    unsigned live; /* ops not yet closed, plus a token fetch in flight */
    bool closing;

    bool force_scan;
    unsigned max_attempts, timeout_ms, max_wait_ms, backoff_base_ms, renew_before_ms;
    unsigned low_remaining, top_findings;
    uint64_t rng;
};

static void op_start(struct op *o);
static void op_finish(struct op *o, qfs_status st, const char *reason);

/* Counts a finished request's retries and its last 429 (unless the retry hook counted it already,
 * which it does for every 429 it sees) in the stats. */
static void count_attempts(struct qfs_qualys_stats *stats, const struct qfs_http_response *hr,
                           unsigned *seen_429)
{
    if (hr->attempts > 1) stats->retries += hr->attempts - 1;
    if (hr->code == 429 && *seen_429 != hr->attempts) stats->throttled++;
    *seen_429 = 0;
}

/* Counts one call's end in the stats. */
static void count_call(struct qfs_qualys *q, enum qfs_qualys_call call, qfs_status st)
{
    if ((unsigned)st < QFS_QUALYS_NSTATUS) q->stats.calls[call][st]++;
}
static void start_fetch(struct qfs_qualys *q);

/* ---- small helpers ------------------------------------------------------------------------- */

static uint64_t next_random(struct qfs_qualys *q)
{
    /* xorshift64*: jitter only has to keep clients apart. */
    q->rng ^= q->rng >> 12;
    q->rng ^= q->rng << 25;
    q->rng ^= q->rng >> 27;
    return q->rng * 2685821657736338717ULL;
}

static void free_secret(char **s)
{
    if (*s) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static void set_reason(struct qfs_qualys_error *e, const char *code, const char *message)
{
    snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
    snprintf(e->message, sizeof(e->message), "%s", message ? message : "");
}

static bool name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > MAX_NAME || !qfs_utf8_is_valid(s, strlen(s))) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

/* arn:<partition>:iam::<12 digits>:role/<path and name> */
static bool role_arn_ok(const char *arn)
{
    static const char *const prefixes[] = {"arn:aws:iam::", "arn:aws-us-gov:iam::", "arn:aws-cn:iam::"};
    if (!arn || strlen(arn) > 600) return false;
    const char *p = NULL;
    for (size_t i = 0; i < 3 && !p; i++)
        if (strncmp(arn, prefixes[i], strlen(prefixes[i])) == 0) p = arn + strlen(prefixes[i]);
    if (!p || strspn(p, "0123456789") != 12 || strncmp(p + 12, ":role/", 6) != 0) return false;
    p += 18;
    if (!*p) return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_+=,.@/-", *p)))
            return false;
    return true;
}

static bool external_id_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("+=,.@:/_-", *s)))
            return false;
    return true;
}

/* A sha or digest argument as 64 lower-case hex without "sha256:". */
static bool hex_arg(const char *in, char out[65])
{
    if (!qfs_qualys_sha_is_valid(in)) return false;
    if (strncmp(in, "sha256:", 7) == 0) in += 7;
    for (int i = 0; i < 64; i++) out[i] = (in[i] >= 'A' && in[i] <= 'F') ? (char)(in[i] + 32) : in[i];
    out[64] = '\0';
    return true;
}

static void lower_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++) dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
    dst[i] = '\0';
}

static enum bucket bucket_of(const char *path)
{
    if (strncmp(path, "/registry", 9) == 0) return B_REGISTRY;
    if (strcmp(path, "/images/list") == 0) return B_IMAGES_LIST;
    if (strncmp(path, "/images", 7) == 0) return B_IMAGES;
    return B_NONE;
}

/* ---- the one error mapping ------------------------------------------------------------------ */

qfs_status qfs_qualys_map(long http_code, qfs_status transport, bool may_be_applied)
{
    qfs_status st;
    if (http_code == 0) st = transport == QFS_OK ? QFS_UNAVAILABLE : transport;
    else if (http_code >= 200 && http_code < 300) st = transport == QFS_TOO_BIG ? QFS_TOO_BIG : QFS_OK;
    else if (http_code == 401 || http_code == 403) st = QFS_DENIED;
    else if (http_code == 404 || http_code == 410) st = QFS_NOT_FOUND;
    else if (http_code == 408) st = QFS_TIMED_OUT;
    else if (http_code == 409 || http_code == 429 || (http_code >= 500 && http_code < 600))
        st = QFS_UNAVAILABLE;
    else if (http_code == 413) st = QFS_TOO_BIG;
    else st = QFS_PROTOCOL;
    /* A POST whose outcome is unknown may have been applied: the caller must re-list, not retry. */
    if (may_be_applied && (st == QFS_TIMED_OUT || st == QFS_IO)) st = QFS_UNAVAILABLE;
    return st;
}

/* Maps a finished request, keeps Qualys's errorCode and message, and logs a failure once. */
static qfs_status map_response(struct op *o, const struct qfs_http_response *hr)
{
    o->http_code = hr->code;
    o->attempts = hr->attempts;
    qfs_status st = qfs_qualys_map(hr->code, hr->status, o->post);
    if (st == QFS_OK) return QFS_OK;
    if (hr->code != 0 && hr->status != QFS_TOO_BIG) qfs_qualys_decode_error(hr->body, hr->body_len, &o->err);
    else set_reason(&o->err, "", hr->error ? hr->error : "no response");
    char code[16], attempts[16];
    snprintf(code, sizeof(code), "%ld", hr->code);
    snprintf(attempts, sizeof(attempts), "%u", hr->attempts);
    bool expected = st == QFS_NOT_FOUND && (o->kind == OP_IMAGE_DETAIL || o->kind == OP_IMAGE_VULNS);
    qfs_log(expected ? QFS_LOG_DEBUG : QFS_LOG_WARN, "qualys call failed", "op", op_names[o->kind],
            "http_code", code, "error_code", o->err.code, "message", o->err.message, "status",
            qfs_status_str(st), "attempts", attempts, NULL);
    return st;
}

/* ---- rate limiting ------------------------------------------------------------------------- */

static bool header_int(const struct qfs_http_response *r, const char *name, int64_t max, int64_t *out)
{
    const char *v = qfs_http_response_header(r, name);
    if (!v || !*v || strlen(v) > 12 || strspn(v, "0123456789") != strlen(v)) return false;
    int64_t n = strtoll(v, NULL, 10);
    if (n > max) n = max;
    *out = n;
    return true;
}

/* Feeds the X-RateLimit-* headers of any answer (error or not) into the path's bucket. */
static void observe_limits(struct qfs_qualys *q, enum bucket b, const struct qfs_http_response *r)
{
    if (b == B_NONE || r->code == 0) return;
    struct bucket_state *s = &q->buckets[b];
    int64_t limit, window, remaining;
    if (header_int(r, "X-RateLimit-Limit", 10000000, &limit)) s->limit = limit;
    if (header_int(r, "X-RateLimit-Window-Sec", 86400, &window)) s->window_ms = window * 1000;
    if (header_int(r, "X-RateLimit-Remaining", 10000000, &remaining)) {
        s->remaining = remaining;
        s->known = s->window_ms > 0;
    }
}

/* Reserves a start time for one call in bucket b: at once while the budget is ample; spaced so the
 * rest of it lasts a window once X-RateLimit-Remaining is low; never before a 429's wait ends. */
static uint64_t reserve_slot(struct qfs_qualys *q, enum bucket b, uint64_t now)
{
    if (b == B_NONE) return now;
    struct bucket_state *s = &q->buckets[b];
    uint64_t at = now;
    if (s->blocked_ms > at) at = s->blocked_ms;
    if (s->next_ms > at) at = s->next_ms;
    if (s->known) {
        if (s->remaining <= (int64_t)q->low_remaining) {
            uint64_t interval = (uint64_t)s->window_ms / (uint64_t)(s->remaining + 1);
            interval += next_random(q) % (interval / 10 + 1);
            s->next_ms = at + interval;
        }
        if (s->remaining > 0) s->remaining--;
    }
    return at;
}

/* ---- the token ----------------------------------------------------------------------------- */

static void maybe_release(struct qfs_qualys *q)
{
    if (!q->closing || q->live > 0) return;
    free(q->gateway);
    free(q->secret_arn);
    free_secret(&q->username);
    free_secret(&q->password);
    free_secret(&q->token);
    free(q);
}

static void set_token(struct qfs_qualys *q, char *token)
{
    free_secret(&q->token);
    q->token = token;
    q->token_gen++;
    q->auth_count++;
    q->cooldown_until_ms = 0;
    /* A token from a secret is renewed only when it says when it expires. */
    int64_t exp = qfs_qualys_jwt_exp_ms(token);
    if (q->mode == AUTH_SECRET && !q->username && exp == 0) {
        q->renew_at_ms = 0;
        return;
    }
    int64_t now = qfs_now_ms();
    int64_t at = qfs_qualys_renew_at_ms(now, exp, q->renew_before_ms);
    q->renew_at_ms = qfs_mono_ms() + (uint64_t)(at - now);
}

/* Ends a token fetch: the waiters go on with the new token or end with the failure. */
static void fetch_done(struct qfs_qualys *q, qfs_status st, const struct qfs_qualys_error *err,
                       char *token)
{
    q->fetching = false;
    if (st == QFS_OK && !q->closing) {
        set_token(q, token);
        qfs_info("qualys token obtained", "source",
                 q->mode == AUTH_SECRET ? "secret" : q->mode == AUTH_PASSWORD ? "password" : "static");
    } else {
        free_secret(&token);
        if (st == QFS_OK) st = QFS_UNAVAILABLE;
        if (st == QFS_DENIED) {
            q->cooldown_until_ms = qfs_mono_ms() + AUTH_COOLDOWN_MS;
            q->cooldown_status = st;
            if (err) q->cooldown_err = *err;
            if (q->mode == AUTH_SECRET) q->secret_stale = true;
        }
        if (q->token) q->renew_at_ms = qfs_mono_ms() + RENEW_RETRY_MS; /* the old one still serves */
    }
    struct op *w = q->waiters;
    q->waiters = q->waiters_tail = NULL;
    while (w) {
        struct op *next = w->wait_next;
        w->wait_next = NULL;
        if (w->state == OP_WAIT_TOKEN) {
            if (q->token && !q->closing) {
                op_start(w);
            } else {
                if (err) w->err = *err;
                op_finish(w, q->closing ? QFS_UNAVAILABLE : st, "no Qualys token");
            }
        }
        w = next;
    }
    q->live--;
    maybe_release(q);
}

static bool auth_retry(const struct qfs_http_response *a, bool retryable, uint64_t *delay_ms, void *arg)
{
    struct qfs_qualys *q = arg;
    if (a->code == 429) {
        q->stats.throttled++;
        q->auth_seen_429 = a->attempts;
    }
    if (q->closing) return false;
    if (a->code == 429) {
        *delay_ms = qfs_qualys_throttle_wait_ms(qfs_http_response_header(a, "X-RateLimit-ToWait-Sec"),
                                                qfs_http_response_header(a, "Retry-After"),
                                                qfs_http_response_header(a, "X-RateLimit-Window-Sec"),
                                                qfs_now_ms());
        return true;
    }
    return (a->code == 0 || a->code >= 500) && retryable; /* /auth only issues a token: safe again */
}

static void on_auth_done(const struct qfs_http_response *hr, void *arg)
{
    struct qfs_qualys *q = arg;
    struct qfs_qualys_error err = {{0}, {0}};
    char *token = NULL;
    qfs_status st = q->closing ? QFS_UNAVAILABLE : qfs_qualys_map(hr->code, hr->status, false);
    count_attempts(&q->stats, hr, &q->auth_seen_429);
    if (st == QFS_OK) {
        st = qfs_qualys_decode_token(hr->body, hr->body_len, &token);
        if (st != QFS_OK) set_reason(&err, "", "the /auth answer is not a token");
    } else if (hr->code != 0) {
        qfs_qualys_decode_error(hr->body, hr->body_len, &err);
    } else {
        set_reason(&err, "", hr->error ? hr->error : "no response");
    }
    if (st != QFS_OK && !q->closing) {
        char code[16];
        snprintf(code, sizeof(code), "%ld", hr->code);
        qfs_warn("qualys authentication failed", "http_code", code, "error_code", err.code, "message",
                 err.message, "status", qfs_status_str(st));
    }
    count_call(q, QFS_QUALYS_CALL_AUTH, st);
    fetch_done(q, st, &err, token);
}

static void post_auth(struct qfs_qualys *q)
{
    struct qfs_buf form;
    qfs_buf_init(&form, 16384);
    qfs_status st = qfs_qualys_auth_form(q->username, q->password, &form);
    char *url = qfs_xasprintf("%s/auth", q->gateway);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: */*", NULL};
    struct qfs_http_request req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = form.data,
        .body_len = form.len,
        .timeout_ms = q->timeout_ms,
        .max_response = 64 * 1024,
        .max_attempts = q->max_attempts,
        .backoff_base_ms = q->backoff_base_ms,
        .backoff_max_ms = BACKOFF_MAX_MS,
        .max_server_delay_ms = q->max_wait_ms,
        .retry = auth_retry,
        .hook_arg = q,
    };
    if (st == QFS_OK) st = qfs_http_request(q->http, &req, on_auth_done, q);
    if (form.data) explicit_bzero(form.data, form.len);
    qfs_buf_cleanup(&form);
    free(url);
    if (st != QFS_OK) {
        struct qfs_qualys_error err;
        set_reason(&err, "", "the /auth request could not be sent");
        count_call(q, QFS_QUALYS_CALL_AUTH, st == QFS_INVALID_ARG ? QFS_DENIED : st);
        fetch_done(q, st == QFS_INVALID_ARG ? QFS_DENIED : st, &err, NULL);
    }
}

static void on_secret(const struct qfs_aws_response *r, const char *secret, void *arg)
{
    struct qfs_qualys *q = arg;
    struct qfs_qualys_error err;
    set_reason(&err, r->error_code, r->error_message);
    if (q->closing || r->status != QFS_OK) {
        fetch_done(q, q->closing ? QFS_UNAVAILABLE : r->status, &err, NULL);
        return;
    }
    char *token = NULL, *user = NULL, *pass = NULL;
    qfs_status st = qfs_qualys_decode_secret(secret, &token, &user, &pass);
    if (st != QFS_OK) {
        qfs_error("the Qualys secret holds neither {username, password} nor {token}", "variable",
                  "QFS_QUALYS_SECRET_ARN");
        set_reason(&err, "", "the Qualys secret is not {username, password} or {token}");
        fetch_done(q, QFS_PROTOCOL, &err, NULL);
        return;
    }
    q->secret_stale = false;
    free_secret(&q->username);
    free_secret(&q->password);
    if (token) {
        fetch_done(q, QFS_OK, NULL, token);
        return;
    }
    q->username = user;
    q->password = pass;
    post_auth(q);
}

/* Starts the one token fetch; every op that needs a token meanwhile waits for it. */
static void start_fetch(struct qfs_qualys *q)
{
    q->fetching = true;
    q->live++;
    if (q->mode == AUTH_SECRET && (q->secret_stale || !q->username)) {
        qfs_status st = qfs_secrets_get(q->aws, q->secret_arn, NULL, on_secret, q);
        if (st != QFS_OK) {
            struct qfs_qualys_error err;
            set_reason(&err, "", "the Qualys secret could not be read");
            fetch_done(q, st == QFS_INVALID_ARG ? QFS_PROTOCOL : st, &err, NULL);
        }
        return;
    }
    post_auth(q);
}

/* After a 401: drops the token the op sent, unless a newer one has replaced it already. */
static void invalidate_token(struct qfs_qualys *q, uint64_t gen)
{
    if (q->token && q->token_gen == gen) {
        free_secret(&q->token);
        if (q->mode == AUTH_SECRET) q->secret_stale = true;
    }
}

/* ---- one call ------------------------------------------------------------------------------ */

static void op_closed(uv_handle_t *h)
{
    struct op *o = h->data;
    struct qfs_qualys *q = o->q;
    free(o);
    q->live--;
    maybe_release(q);
}

static void on_deliver(uv_timer_t *t)
{
    struct op *o = t->data;
    struct qfs_qualys *q = o->q;
    if (o->prev) o->prev->next = o->next;
    else q->ops = o->next;
    if (o->next) o->next->prev = o->prev;

    struct qfs_qualys_response r = {
        .status = o->status,
        .http_code = o->http_code,
        .error_code = o->err.code,
        .message = o->err.message,
        .attempts = o->attempts,
        .uuid = "",
    };
    if (o->status == QFS_OK) {
        switch (o->kind) {
        case OP_AWS_BASE: r.aws_base = &o->aws_base; break;
        case OP_CONNECTORS:
            r.connectors = o->connectors;
            r.nconnectors = o->nconnectors;
            break;
        case OP_FIND_REGISTRY: r.registry = &o->registry; break;
        case OP_CREATE_REGISTRY:
        case OP_CREATE_SCHEDULE: r.uuid = o->uuid; break;
        case OP_FIND_IMAGE:
        case OP_IMAGE_DETAIL: r.image = &o->image; break;
        case OP_IMAGE_VULNS: r.vulns = o->vulns; break;
        case OP_CREATE_CONNECTOR: break;
        }
    }
    count_call(q, (enum qfs_qualys_call)o->kind, o->status);
    o->cb(&r, o->arg);

    free(o->path);
    free(o->query);
    free(o->body);
    free_secret(&o->bearer);
    free(o->connectors);
    free(o->vulns);
    uv_close((uv_handle_t *)&o->timer, op_closed);
}

/* Settles the op: its callback runs from its timer on the next loop turn, never inside a call. */
static void op_finish(struct op *o, qfs_status st, const char *reason)
{
    o->state = OP_DONE;
    o->status = st;
    if (reason && !o->err.message[0]) snprintf(o->err.message, sizeof(o->err.message), "%s", reason);
    uv_timer_start(&o->timer, on_deliver, 0, 0);
}

/* Per attempt: the bearer token, and a fresh connection for POSTs. libcurl silently sends a
 * request again when a reused connection dies before the first answer byte: for a POST that the
 * server may have applied, that would be exactly the blind retry that must not happen. */
static qfs_status op_prepare(CURL *easy, struct curl_slist **headers, void *arg)
{
    struct op *o = arg;
    if (o->post && curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK) return QFS_INTERNAL;
    char *hdr = qfs_xasprintf("Authorization: Bearer %s", o->bearer);
    struct curl_slist *n = curl_slist_append(*headers, hdr);
    explicit_bzero(hdr, strlen(hdr));
    free(hdr);
    if (!n) return QFS_INTERNAL;
    *headers = n;
    return QFS_OK;
}

/* After each failed attempt: a 429 waits as its headers say (even for a POST: it was refused, not
 * applied), and its retry takes the next slot of the shared limiter so that throttled calls do not
 * all come back at once; 5xx and transport errors are retried for GETs only; a 401 is handled
 * per op (re-auth). */
static bool op_retry(const struct qfs_http_response *a, bool retryable, uint64_t *delay_ms, void *arg)
{
    struct op *o = arg;
    struct qfs_qualys *q = o->q;
    observe_limits(q, o->bucket, a);
    if (a->code == 429) {
        q->stats.throttled++;
        o->seen_429 = a->attempts;
    }
    if (q->closing) return false;
    if (a->code == 429) {
        uint64_t now = qfs_mono_ms();
        uint64_t wait = qfs_qualys_throttle_wait_ms(qfs_http_response_header(a, "X-RateLimit-ToWait-Sec"),
                                                    qfs_http_response_header(a, "Retry-After"),
                                                    qfs_http_response_header(a, "X-RateLimit-Window-Sec"),
                                                    qfs_now_ms());
        if (wait > q->max_wait_ms) return false;
        wait += next_random(q) % (wait / 5 + 1);
        uint64_t at = now + wait;
        if (o->bucket != B_NONE) {
            struct bucket_state *s = &q->buckets[o->bucket];
            if (s->blocked_ms < at) s->blocked_ms = at;
            s->remaining = 0;
            at = reserve_slot(q, o->bucket, now);
        }
        char ms[24];
        snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(at - now));
        qfs_info("qualys rate limit reached; waiting", "op", op_names[o->kind], "wait_ms", ms);
        *delay_ms = at - now; /* past max_wait_ms the HTTP client gives up: unavailable */
        return true;
    }
    if (o->post) return false;
    return (a->code == 0 || a->code >= 500) && retryable;
}

static void on_http_done(const struct qfs_http_response *hr, void *arg);

static void op_send(struct op *o)
{
    struct qfs_qualys *q = o->q;
    free_secret(&o->bearer);
    o->bearer = qfs_xstrdup(q->token);
    o->token_gen = q->token_gen;
    char paging[96] = "";
    if (o->kind == OP_FIND_REGISTRY)
        snprintf(paging, sizeof(paging), "pageNo=%u&pageNumber=%u&pageSize=%d", o->page, o->page, PAGE_SIZE);
    else if (o->kind == OP_FIND_IMAGE)
        snprintf(paging, sizeof(paging), "pageNumber=%u&pageSize=%d", o->page, PAGE_SIZE);
    bool has_query = (o->query && *o->query) || paging[0];
    char *url = qfs_xasprintf("%s%s%s%s%s%s%s", q->gateway, API_PREFIX, o->path, has_query ? "?" : "",
                              o->query ? o->query : "", o->query && *o->query && paging[0] ? "&" : "",
                              paging);
    const char *headers[] = {"Accept: application/json", o->post ? "Content-Type: application/json" : NULL,
                             NULL};
    struct qfs_http_request req = {
        .method = o->post ? "POST" : "GET",
        .url = url,
        .headers = headers,
        .body = o->body,
        .body_len = o->body_len,
        .timeout_ms = q->timeout_ms,
        .max_response = o->max_response,
        .max_attempts = q->max_attempts,
        .backoff_base_ms = q->backoff_base_ms,
        .backoff_max_ms = BACKOFF_MAX_MS,
        .max_server_delay_ms = q->max_wait_ms,
        .retry = op_retry,
        .prepare = op_prepare,
        .hook_arg = o,
    };
    o->state = OP_HTTP;
    qfs_status st = qfs_http_request(q->http, &req, on_http_done, o);
    free(url);
    if (st != QFS_OK) op_finish(o, st == QFS_INVALID_ARG ? QFS_INTERNAL : st, "request not accepted");
}

static void on_slot(uv_timer_t *t)
{
    struct op *o = t->data;
    if (o->state != OP_WAIT_SLOT) return;
    if (o->q->closing) op_finish(o, QFS_UNAVAILABLE, "client closed");
    else if (o->q->token) op_send(o);
    else op_start(o);
}

/* With a token: sends now, or when the rate limiter's slot comes. */
static void op_ready(struct op *o)
{
    uint64_t now = qfs_mono_ms();
    uint64_t at = reserve_slot(o->q, o->bucket, now);
    if (at > now) {
        o->state = OP_WAIT_SLOT;
        uv_timer_start(&o->timer, on_slot, at - now, 0);
        return;
    }
    op_send(o);
}

/* Gets the op a token (now, or by waiting for the one fetch), then a rate-limit slot. */
static void op_start(struct op *o)
{
    struct qfs_qualys *q = o->q;
    uint64_t now = qfs_mono_ms();
    if (q->closing) {
        op_finish(o, QFS_UNAVAILABLE, "client closed");
        return;
    }
    if (q->token) {
        /* Renew early in the background; the current token stays valid meanwhile. */
        if (q->renew_at_ms && now >= q->renew_at_ms && !q->fetching) start_fetch(q);
        op_ready(o);
        return;
    }
    if (q->mode == AUTH_STATIC) {
        set_reason(&o->err, "", "the static Qualys token was refused");
        op_finish(o, QFS_DENIED, NULL);
        return;
    }
    if (!q->fetching && now < q->cooldown_until_ms) {
        o->err = q->cooldown_err;
        op_finish(o, q->cooldown_status, "Qualys credentials were refused recently");
        return;
    }
    o->state = OP_WAIT_TOKEN;
    o->wait_next = NULL;
    if (q->waiters_tail) q->waiters_tail->wait_next = o;
    else q->waiters = o;
    q->waiters_tail = o;
    if (!q->fetching) start_fetch(q);
}

/* Decodes a successful answer into the op; *more asks for the next page. */
static qfs_status op_decode(struct op *o, const struct qfs_http_response *hr, bool *more)
{
    size_t rows = 0;
    qfs_status st = QFS_OK;
    bool empty = hr->code == 204 || hr->body_len == 0;
    static const char *const registry_keys[] = {"registryUuid", "uuid", "id", NULL};
    static const char *const schedule_keys[] = {"scheduleUuid", "scheduleId", "uuid", "id", NULL};
    *more = false;
    switch (o->kind) {
    case OP_AWS_BASE:
        st = empty ? QFS_PROTOCOL : qfs_qualys_decode_aws_base(hr->body, hr->body_len, &o->aws_base);
        break;
    case OP_CONNECTORS:
        if (!empty)
            st = qfs_qualys_decode_connectors(hr->body, hr->body_len, &o->connectors, &o->nconnectors);
        break;
    case OP_CREATE_CONNECTOR: break; /* the body says nothing useful (reference §5.3) */
    case OP_FIND_REGISTRY:
        if (!empty)
            st = qfs_qualys_decode_registry_page(hr->body, hr->body_len, o->want, &o->registry, &o->found,
                                                 &rows);
        break;
    case OP_CREATE_REGISTRY:
        if (!empty)
            st = qfs_qualys_decode_created_id(hr->body, hr->body_len, registry_keys, o->uuid,
                                              sizeof(o->uuid));
        break;
    case OP_CREATE_SCHEDULE:
        if (!empty)
            st = qfs_qualys_decode_created_id(hr->body, hr->body_len, schedule_keys, o->uuid,
                                              sizeof(o->uuid));
        break;
    case OP_FIND_IMAGE:
        if (!empty)
            st = qfs_qualys_decode_image_page(hr->body, hr->body_len, &o->match, &o->image, &o->found, &rows);
        break;
    case OP_IMAGE_DETAIL:
        st = empty ? QFS_NOT_FOUND : qfs_qualys_decode_image_detail(hr->body, hr->body_len, &o->image);
        break;
    case OP_IMAGE_VULNS:
        o->vulns = qfs_xcalloc(1, sizeof(*o->vulns));
        if (!empty) st = qfs_qualys_decode_vulns(hr->body, hr->body_len, o->q->top_findings, o->vulns);
        break;
    }
    if (st == QFS_OK && (o->kind == OP_FIND_REGISTRY || o->kind == OP_FIND_IMAGE) && !o->found) {
        if (rows < PAGE_SIZE) st = QFS_NOT_FOUND; /* a short page is the last one */
        else if (o->page >= MAX_PAGES) st = QFS_TOO_BIG;
        else *more = true;
    }
    if (st != QFS_OK && st != QFS_NOT_FOUND) {
        qfs_warn("qualys response not understood", "op", op_names[o->kind], "status", qfs_status_str(st));
        set_reason(&o->err, "", "the Qualys answer was not understood");
    }
    return st;
}

static void on_http_done(const struct qfs_http_response *hr, void *arg)
{
    struct op *o = arg;
    struct qfs_qualys *q = o->q;
    observe_limits(q, o->bucket, hr);
    o->http_code = hr->code;
    o->attempts = hr->attempts;
    count_attempts(&q->stats, hr, &o->seen_429);
    if (q->closing) {
        op_finish(o, QFS_UNAVAILABLE, "client closed");
        return;
    }
    if (hr->code == 401 && !o->reauthed && q->mode != AUTH_STATIC) {
        /* Expired ("JWT expired") or revoked: fetch a token once and send this request again. */
        o->reauthed = true;
        q->stats.reauths++;
        qfs_info("qualys token refused; authenticating again", "op", op_names[o->kind]);
        invalidate_token(q, o->token_gen);
        op_start(o);
        return;
    }
    qfs_status st = map_response(o, hr);
    bool more = false;
    if (st == QFS_OK) st = op_decode(o, hr, &more);
    if (st == QFS_OK && more) {
        o->page++;
        op_start(o);
        return;
    }
    op_finish(o, st, NULL);
}

/* Takes the (already validated) request and starts it. */
static qfs_status op_submit(struct qfs_qualys *q, struct op *o, const char *path, char *query,
                            char *body, qfs_qualys_done_fn cb, void *arg)
{
    o->q = q;
    o->path = qfs_xstrdup(path);
    o->query = query;
    o->body = body;
    o->body_len = body ? strlen(body) : 0;
    o->post = body != NULL;
    o->bucket = bucket_of(path);
    o->page = 1;
    o->cb = cb;
    o->arg = arg;
    if (!o->max_response) o->max_response = MAX_SMALL_RESPONSE;
    uv_timer_init(q->loop, &o->timer);
    o->timer.data = o;
    o->next = q->ops;
    if (q->ops) q->ops->prev = o;
    q->ops = o;
    q->live++;
    op_start(o);
    return QFS_OK;
}

static struct op *op_new(enum op_kind kind)
{
    struct op *o = qfs_xcalloc(1, sizeof(*o));
    o->kind = kind;
    return o;
}

static qfs_status usable(const struct qfs_qualys *q, qfs_qualys_done_fn cb)
{
    if (!q || !cb) return QFS_INVALID_ARG;
    return q->closing ? QFS_UNAVAILABLE : QFS_OK;
}

/* ---- the calls ----------------------------------------------------------------------------- */

qfs_status qfs_qualys_aws_base(struct qfs_qualys *q, qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    return op_submit(q, op_new(OP_AWS_BASE), "/registry/aws-base", NULL, NULL, cb, arg);
}

qfs_status qfs_qualys_list_connectors(struct qfs_qualys *q, qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    struct op *o = op_new(OP_CONNECTORS);
    o->max_response = MAX_LIST_RESPONSE;
    return op_submit(q, o, "/registry/aws/connectors", NULL, NULL, cb, arg);
}

static qfs_status put_field(struct qfs_buf *b, const char *sep, const char *key, const char *value)
{
    qfs_status st = qfs_buf_printf(b, "%s\"%s\":", sep, key);
    if (st == QFS_OK) st = qfs_buf_json_string(b, value, strlen(value));
    return st;
}

qfs_status qfs_qualys_create_connector(struct qfs_qualys *q, const char *name, const char *role_arn,
                                       const char *external_id, const char *account_type,
                                       qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    if (!account_type) account_type = "Global";
    if (!name_ok(name) || !role_arn_ok(role_arn) || !external_id_ok(external_id) ||
        (strcmp(account_type, "Global") != 0 && strcmp(account_type, "US_Gov") != 0))
        return QFS_PROTOCOL;
    struct qfs_buf b;
    qfs_buf_init(&b, 8192);
    st = put_field(&b, "{", "name", name);
    if (st == QFS_OK) st = put_field(&b, ",", "description", "Created by qfs");
    if (st == QFS_OK) st = put_field(&b, ",", "arn", role_arn);
    if (st == QFS_OK) st = put_field(&b, ",", "externalId", external_id);
    if (st == QFS_OK) st = put_field(&b, ",", "accountType", account_type);
    if (st == QFS_OK) st = qfs_buf_puts(&b, "}");
    if (st != QFS_OK) {
        qfs_buf_cleanup(&b);
        return st;
    }
    return op_submit(q, op_new(OP_CREATE_CONNECTOR), "/registry/aws/connector", NULL, qfs_buf_take(&b),
                     cb, arg);
}

/* The host of a registry given as "host" or "https://host[/]", lower case; false when invalid. */
static bool registry_host(const char *registry, char *host, size_t n)
{
    if (!registry) return false;
    if (strncasecmp(registry, "https://", 8) == 0) registry += 8;
    size_t len = strlen(registry);
    while (len && registry[len - 1] == '/') len--;
    if (len == 0 || len >= n) return false;
    char tmp[300];
    if (len >= sizeof(tmp)) return false;
    memcpy(tmp, registry, len);
    tmp[len] = '\0';
    if (!qfs_qualys_host_is_valid(tmp)) return false;
    lower_copy(host, n, tmp);
    return true;
}

qfs_status qfs_qualys_find_registry(struct qfs_qualys *q, const char *registry, qfs_qualys_done_fn cb,
                                    void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    char host[260];
    if (!registry_host(registry, host, sizeof(host))) return QFS_PROTOCOL;
    struct op *o = op_new(OP_FIND_REGISTRY);
    snprintf(o->want, sizeof(o->want), "https://%s", host);
    char *filter = qfs_xasprintf("registryUri:\"%s\"", o->want);
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    st = qfs_buf_puts(&b, "filter=");
    if (st == QFS_OK) st = qfs_qualys_url_escape(filter, &b); /* the whole value, once */
    free(filter);
    if (st != QFS_OK) {
        qfs_buf_cleanup(&b);
        free(o);
        return st;
    }
    o->max_response = MAX_LIST_RESPONSE;
    return op_submit(q, o, "/registry", qfs_buf_take(&b), NULL, cb, arg);
}

qfs_status qfs_qualys_create_registry(struct qfs_qualys *q, const char *account, const char *region,
                                      const char *role_arn, const char *name,
                                      const char *account_type, qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    char uri[160];
    if (qfs_qualys_ecr_registry_uri(account, region, uri, sizeof(uri)) != QFS_OK || !role_arn_ok(role_arn) ||
        (name && !name_ok(name)))
        return QFS_PROTOCOL;
    if (!account_type) account_type = strncmp(region, "us-gov-", 7) == 0 ? "US_Gov" : "Global";
    if (strcmp(account_type, "Global") != 0 && strcmp(account_type, "US_Gov") != 0) return QFS_PROTOCOL;
    struct qfs_buf b;
    qfs_buf_init(&b, 8192);
    st = put_field(&b, "{", "registryType", "AWS");
    if (st == QFS_OK) st = put_field(&b, ",", "credentialType", "AWS");
    if (st == QFS_OK) st = put_field(&b, ",", "registryUri", uri);
    if (st == QFS_OK && name) st = put_field(&b, ",", "registryName", name);
    if (st == QFS_OK) st = put_field(&b, ",\"aws\":{", "accountId", account);
    if (st == QFS_OK) st = put_field(&b, ",", "region", region);
    if (st == QFS_OK) st = put_field(&b, ",", "accountType", account_type);
    if (st == QFS_OK) st = put_field(&b, ",", "arn", role_arn);
    if (st == QFS_OK) st = qfs_buf_puts(&b, "}}");
    if (st != QFS_OK) {
        qfs_buf_cleanup(&b);
        return st;
    }
    return op_submit(q, op_new(OP_CREATE_REGISTRY), "/registry", NULL, qfs_buf_take(&b), cb, arg);
}

qfs_status qfs_qualys_create_schedule(struct qfs_qualys *q, const char *registry_uuid,
                                      const char *repository, const char *tag, const char *name,
                                      qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    /* A tag is one exact name: the schedule's tag field is a comma list, and no comma passes. */
    if (!qfs_qualys_uuid_is_valid(registry_uuid) || !qfs_qualys_repository_is_valid(repository) ||
        !qfs_qualys_tag_is_valid(tag) || !name_ok(name))
        return QFS_PROTOCOL;
    struct qfs_buf b;
    qfs_buf_init(&b, 8192);
    st = put_field(&b, "{", "name", name);
    if (st == QFS_OK)
        st = qfs_buf_printf(&b, ",\"onDemand\":true,\"schedule\":\"00:00\",\"forceScan\":%s",
                            q->force_scan ? "true" : "false");
    if (st == QFS_OK) st = put_field(&b, ",\"filters\":[{\"repoTags\":[{", "repo", repository);
    if (st == QFS_OK) st = put_field(&b, ",", "tag", tag);
    if (st == QFS_OK) st = qfs_buf_puts(&b, "}],\"days\":null}]}");
    if (st != QFS_OK) {
        qfs_buf_cleanup(&b);
        return st;
    }
    char *path = qfs_xasprintf("/registry/%s/schedule", registry_uuid);
    st = op_submit(q, op_new(OP_CREATE_SCHEDULE), path, NULL, qfs_buf_take(&b), cb, arg);
    free(path);
    return st;
}

qfs_status qfs_qualys_find_image(struct qfs_qualys *q, const char *registry_host,
                                 const char *repository, const char *tag,
                                 const char *manifest_digest, qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    char digest[65] = "";
    if (manifest_digest && *manifest_digest && !hex_arg(manifest_digest, digest)) return QFS_PROTOCOL;
    if (!qfs_qualys_host_is_valid(registry_host) || strlen(registry_host) >= 260 ||
        !qfs_qualys_repository_is_valid(repository) || !qfs_qualys_tag_is_valid(tag))
        return QFS_PROTOCOL;
    struct op *o = op_new(OP_FIND_IMAGE);
    lower_copy(o->host, sizeof(o->host), registry_host);
    snprintf(o->repository, sizeof(o->repository), "%s", repository);
    snprintf(o->tag, sizeof(o->tag), "%s", tag);
    memcpy(o->digest, digest, sizeof(digest));
    o->match = (struct qfs_qualys_image_match){o->host, o->repository, o->tag,
                                               o->digest[0] ? o->digest : NULL};

    struct qfs_buf qql, b;
    qfs_buf_init(&qql, 2048);
    qfs_buf_init(&b, 8192);
    st = qfs_qualys_image_filter(o->host, o->repository, o->tag, &qql);
    if (st == QFS_OK) st = qfs_buf_puts(&b, "filter=");
    if (st == QFS_OK) st = qfs_qualys_url_escape(qql.data, &b);
    if (st == QFS_OK) st = qfs_buf_puts(&b, "&sort=");
    if (st == QFS_OK) st = qfs_qualys_url_escape("updated:desc", &b);
    qfs_buf_cleanup(&qql);
    if (st != QFS_OK) {
        qfs_buf_cleanup(&b);
        free(o);
        return st;
    }
    o->max_response = MAX_LIST_RESPONSE;
    return op_submit(q, o, "/images", qfs_buf_take(&b), NULL, cb, arg);
}

static qfs_status image_call(struct qfs_qualys *q, enum op_kind kind, const char *sha, const char *suffix,
                             qfs_qualys_done_fn cb, void *arg)
{
    qfs_status st = usable(q, cb);
    if (st != QFS_OK) return st;
    char hex[65];
    if (!hex_arg(sha, hex)) return QFS_PROTOCOL;
    struct op *o = op_new(kind);
    o->max_response = MAX_DETAIL_RESPONSE;
    char *path = qfs_xasprintf("/images/%s%s", hex, suffix);
    st = op_submit(q, o, path, NULL, NULL, cb, arg);
    free(path);
    return st;
}

qfs_status qfs_qualys_image_detail(struct qfs_qualys *q, const char *sha, qfs_qualys_done_fn cb, void *arg)
{
    return image_call(q, OP_IMAGE_DETAIL, sha, "", cb, arg);
}

qfs_status qfs_qualys_image_vulns(struct qfs_qualys *q, const char *sha, qfs_qualys_done_fn cb, void *arg)
{
    /* Unpaged: no pageNumber/pageSize (reference §7.1). */
    return image_call(q, OP_IMAGE_VULNS, sha, "/vuln", cb, arg);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

qfs_status qfs_qualys_new(uv_loop_t *loop, struct qfs_http *http, const struct qfs_qualys_options *opt,
                          struct qfs_qualys **out)
{
    if (!loop || !http || !opt || !out) return QFS_INVALID_ARG;
    *out = NULL;
    bool url = opt->gateway_url && *opt->gateway_url, pod = opt->pod && *opt->pod;
    const char *gateway = url ? opt->gateway_url : pod ? qfs_qualys_pod_gateway(opt->pod) : NULL;
    if (url == pod) {
        qfs_error("set exactly one of QUALYS_GATEWAY_URL and QUALYS_POD", "variable", "QUALYS_POD");
        return QFS_INVALID_ARG;
    }
    if (!gateway) {
        qfs_error("unknown Qualys platform", "variable", "QUALYS_POD");
        return QFS_INVALID_ARG;
    }
    if (qfs_qualys_gateway_check(gateway) != QFS_OK) {
        qfs_error("the Qualys gateway must be https (http only to loopback)", "variable",
                  "QUALYS_GATEWAY_URL");
        return QFS_INVALID_ARG;
    }
    bool token = opt->api_token && *opt->api_token;
    bool user = opt->username && *opt->username, pass = opt->password && *opt->password;
    bool secret = opt->secret_arn && *opt->secret_arn;
    if ((int)token + (int)(user || pass) + (int)secret != 1 || user != pass) {
        qfs_error("set one Qualys credential source: QUALYS_API_TOKEN, QUALYS_USERNAME with QUALYS_PASSWORD, "
                  "or QFS_QUALYS_SECRET_ARN", "variable", "QUALYS_API_TOKEN");
        return QFS_INVALID_ARG;
    }
    if (secret && !opt->aws) {
        qfs_error("reading the Qualys secret needs an AWS client", "variable", "QFS_QUALYS_SECRET_ARN");
        return QFS_INVALID_ARG;
    }
    if ((token && strlen(opt->api_token) > 16384) || (user && (strlen(opt->username) > 4096 ||
                                                                strlen(opt->password) > 4096))) {
        qfs_error("Qualys credentials too long", "variable", token ? "QUALYS_API_TOKEN" : "QUALYS_PASSWORD");
        return QFS_INVALID_ARG;
    }

    struct qfs_qualys *q = qfs_xcalloc(1, sizeof(*q));
    q->loop = loop;
    q->http = http;
    q->aws = opt->aws;
    q->gateway = qfs_xstrdup(gateway);
    size_t len = strlen(q->gateway);
    while (len && q->gateway[len - 1] == '/') q->gateway[--len] = '\0';
    if (token) {
        q->mode = AUTH_STATIC;
        qfs_log_add_secret(opt->api_token);
        q->token = qfs_xstrdup(opt->api_token);
        q->token_gen = 1; /* never renewed: renew_at_ms stays 0 */
    } else if (user) {
        q->mode = AUTH_PASSWORD;
        qfs_log_add_secret(opt->password);
        q->username = qfs_xstrdup(opt->username);
        q->password = qfs_xstrdup(opt->password);
    } else {
        q->mode = AUTH_SECRET;
        q->secret_arn = qfs_xstrdup(opt->secret_arn);
        q->secret_stale = true;
    }
    q->force_scan = opt->force_scan;
    q->max_attempts = opt->max_attempts ? opt->max_attempts : DEFAULT_MAX_ATTEMPTS;
    q->timeout_ms = opt->timeout_ms ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
    q->max_wait_ms = opt->max_wait_ms ? opt->max_wait_ms : DEFAULT_MAX_WAIT_MS;
    q->backoff_base_ms = opt->backoff_base_ms ? opt->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    q->renew_before_ms = opt->renew_before_ms ? opt->renew_before_ms : DEFAULT_RENEW_BEFORE_MS;
    q->low_remaining = opt->low_remaining ? opt->low_remaining : DEFAULT_LOW_REMAINING;
    q->top_findings = opt->top_findings ? opt->top_findings : DEFAULT_TOP_FINDINGS;
    if (q->top_findings > QFS_QUALYS_MAX_FINDINGS) q->top_findings = QFS_QUALYS_MAX_FINDINGS;
    q->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)q << 16) ^ 0x9E3779B97F4A7C15ULL;
    if (!q->rng) q->rng = 1;
    *out = q;
    return QFS_OK;
}

void qfs_qualys_free(struct qfs_qualys *q)
{
    if (!q || q->closing) return;
    q->closing = true;
    q->waiters = q->waiters_tail = NULL;
    for (struct op *o = q->ops; o; o = o->next)
        if (o->state == OP_WAIT_TOKEN || o->state == OP_WAIT_SLOT)
            op_finish(o, QFS_UNAVAILABLE, "client closed");
    maybe_release(q);
}

unsigned qfs_qualys_auth_count(const struct qfs_qualys *q)
{
    return q ? q->auth_count : 0;
}

const char *qfs_qualys_call_name(enum qfs_qualys_call c)
{
    return (unsigned)c < QFS_QUALYS_CALL_COUNT ? op_names[c] : "?";
}

void qfs_qualys_read_stats(const struct qfs_qualys *q, struct qfs_qualys_stats *out)
{
    if (q) *out = q->stats;
    else memset(out, 0, sizeof(*out));
}
