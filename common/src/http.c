/* HTTP client: libcurl multi driven by a libuv loop (the multi_socket pattern), with retries. */
#include "qfs/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/log.h"
#include "qfs/util.h"

#ifndef QFS_VERSION
#define QFS_VERSION "dev"
#endif

#define DEFAULT_MAX_TOTAL 64
#define DEFAULT_MAX_PER_HOST 8
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (1024 * 1024)
#define DEFAULT_MAX_ATTEMPTS 3
#define DEFAULT_BACKOFF_BASE_MS 200
#define DEFAULT_BACKOFF_MAX_MS 20000
#define DEFAULT_MAX_SERVER_DELAY_MS 60000
#define MAX_REQUEST_BODY (8 * 1024 * 1024)
#define MAX_REQUEST_HEADERS 64
#define MAX_RESPONSE_HEADERS 64
#define MAX_HEADER_LINE 8192
/* Hosts that must never go through a proxy: the ECS and EKS credential endpoints and loopback. */
#define ALWAYS_NOPROXY "169.254.170.2,169.254.170.23,127.0.0.1,localhost,::1"

/* One scheme://host:port with its count of transfers in flight. Freed when that count is 0. */
struct host {
    struct host *next;
    char *key;
    unsigned active;
};

/* One socket curl asked us to watch. Freed in the poll handle's close callback. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct qfs_http *http;
    struct sock_ctx *prev, *next;
};

enum xfer_state { X_QUEUED, X_ACTIVE, X_BACKOFF, X_FAILING, X_DONE };

/* One request over all its attempts. Freed in its timer's close callback. */
struct xfer {
    struct qfs_http *http;
    struct xfer *all_prev, *all_next; /* every request not yet finished */
    struct xfer *q_prev, *q_next;     /* waiting for a free slot */
    enum xfer_state state;
    uv_timer_t timer; /* backoff, and deferred completion of requests that fail at set-up */

    char *method;
    char *url;
    char *host_key;
    char **headers;
    size_t nheaders;
    char *body;
    size_t body_len;
    bool has_body;
    unsigned timeout_ms;
    size_t max_response;
    unsigned max_attempts;
    unsigned backoff_base_ms;
    unsigned backoff_max_ms;
    unsigned max_server_delay_ms;
    qfs_http_retry_fn retry;
    qfs_http_prepare_fn prepare;
    void *hook_arg;
    qfs_http_done_fn cb;
    void *arg;

    /* The current (or last) attempt. */
    CURL *easy;
    struct curl_slist *slist;
    struct host *host;
    unsigned attempts;
    struct qfs_buf resp;
    struct qfs_http_header resp_headers[MAX_RESPONSE_HEADERS];
    size_t nresp_headers;
    bool too_big;
    long code;
    qfs_status status;
    const char *error;
    char errbuf[CURL_ERROR_SIZE];
};

struct qfs_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct xfer *all;
    struct xfer *q_head, *q_tail;
    struct host *hosts;
    struct sock_ctx *socks;
    unsigned active;
    unsigned max_total;
    unsigned max_per_host;
    char *user_agent;
    char *noproxy;
    uint64_t rng;
    unsigned depth;          /* nesting of our own dispatch loops; teardown waits for 0 */
    bool closing;
    bool torn_down;
    unsigned pending_closes; /* handles closed whose callbacks have not run yet */
    struct qfs_http_stats stats;
};

static void pump(struct qfs_http *h);
static void teardown_if_due(struct qfs_http *h);

/* ---- pure helpers ---------------------------------------------------------------------------- */

qfs_status qfs_http_map(CURLcode cc, long code, bool too_big, bool *retryable)
{
    *retryable = false;
    if (too_big || cc == CURLE_FILESIZE_EXCEEDED) return QFS_TOO_BIG;
    switch (cc) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        *retryable = true;
        return QFS_TIMED_OUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        *retryable = true;
        return QFS_UNAVAILABLE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return QFS_DENIED;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return QFS_INVALID_ARG;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_BAD_CONTENT_ENCODING:
        return QFS_PROTOCOL;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_OUT_OF_MEMORY:
        return QFS_INTERNAL;
    default:
        return QFS_IO;
    }
    if (code >= 200 && code < 300) return QFS_OK;
    if (code == 408) {
        *retryable = true;
        return QFS_TIMED_OUT;
    }
    if (code == 429) {
        *retryable = true;
        return QFS_UNAVAILABLE;
    }
    if (code == 401 || code == 403) return QFS_DENIED;
    if (code == 404 || code == 410) return QFS_NOT_FOUND;
    if (code == 413) return QFS_TOO_BIG;
    if (code >= 500 && code < 600) {
        *retryable = code != 501 && code != 505;
        return QFS_UNAVAILABLE;
    }
    return QFS_PROTOCOL; /* 1xx/3xx (redirects are not followed) and the other 4xx */
}

bool qfs_http_parse_retry_after(const char *value, int64_t now_ms, uint64_t *delay_ms)
{
    if (!value) return false;
    while (*value == ' ' || *value == '\t') value++;
    if (*value >= '0' && *value <= '9') {
        uint64_t secs = 0;
        const char *p = value;
        while (*p >= '0' && *p <= '9') {
            if (secs < 100000000ULL) secs = secs * 10 + (uint64_t)(*p - '0');
            p++;
        }
        while (*p == ' ' || *p == '\t') p++;
        if (*p) return false;
        *delay_ms = secs * 1000;
        return true;
    }
    time_t t = curl_getdate(value, NULL);
    if (t <= 0) return false;
    int64_t at = (int64_t)t * 1000;
    *delay_ms = at > now_ms ? (uint64_t)(at - now_ms) : 0;
    return true;
}

uint64_t qfs_http_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint64_t rnd)
{
    uint64_t ceiling = base_ms;
    for (unsigned i = 1; i < attempt && ceiling < cap_ms; i++) ceiling *= 2;
    if (ceiling > cap_ms) ceiling = cap_ms;
    return rnd % (ceiling + 1);
}

const char *qfs_http_response_header(const struct qfs_http_response *r, const char *name)
{
    for (size_t i = 0; r && i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

static uint64_t next_random(struct qfs_http *h)
{
    /* xorshift64*: jitter only needs to spread clients apart, not to be unpredictable. */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 2685821657736338717ULL;
}

/* ---- hosts and the queue --------------------------------------------------------------------- */

static char *host_key_of(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0))
        key = qfs_xasprintf("%s://%s:%s", scheme, host, port);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return key;
}

static struct host *host_get(struct qfs_http *h, const char *key)
{
    for (struct host *o = h->hosts; o; o = o->next)
        if (strcmp(o->key, key) == 0) return o;
    struct host *o = qfs_xcalloc(1, sizeof(*o));
    o->key = qfs_xstrdup(key);
    o->next = h->hosts;
    h->hosts = o;
    return o;
}

static void host_release(struct qfs_http *h, struct host *o)
{
    qfs_assert(o->active > 0);
    if (--o->active > 0) return;
    for (struct host **pp = &h->hosts; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    free(o->key);
    free(o);
}

static void queue_push(struct qfs_http *h, struct xfer *x)
{
    x->state = X_QUEUED;
    x->q_next = NULL;
    x->q_prev = h->q_tail;
    if (h->q_tail) h->q_tail->q_next = x;
    else h->q_head = x;
    h->q_tail = x;
}

static void queue_remove(struct qfs_http *h, struct xfer *x)
{
    if (x->q_prev) x->q_prev->q_next = x->q_next;
    else h->q_head = x->q_next;
    if (x->q_next) x->q_next->q_prev = x->q_prev;
    else h->q_tail = x->q_prev;
    x->q_prev = x->q_next = NULL;
}

/* ---- libuv <-> libcurl glue ------------------------------------------------------------------ */

/* Accounts for one closed handle; the client itself goes with the last one after teardown. */
static void closed_one(struct qfs_http *h)
{
    qfs_assert(h->pending_closes > 0);
    h->pending_closes--;
    if (h->torn_down && h->pending_closes == 0) {
        free(h->user_agent);
        free(h->noproxy);
        free(h);
        curl_global_cleanup();
    }
}

static void timer_closed(uv_handle_t *handle)
{
    closed_one(handle->data);
}

static void sock_closed(uv_handle_t *handle)
{
    struct sock_ctx *sc = handle->data;
    struct qfs_http *h = sc->http;
    free(sc);
    closed_one(h);
}

static void sock_close(struct qfs_http *h, struct sock_ctx *sc)
{
    if (sc->prev) sc->prev->next = sc->next;
    else h->socks = sc->next;
    if (sc->next) sc->next->prev = sc->prev;
    h->pending_closes++;
    uv_close((uv_handle_t *)&sc->poll, sock_closed);
}

static void attempt_done(struct xfer *x, CURLcode cc);

/* Reads finished transfers from curl and settles them. Our own callbacks (and user callbacks) run
 * from here, so teardown is deferred until the outermost dispatch returns. */
static void drain(struct qfs_http *h)
{
    CURLMsg *m;
    int left;
    h->depth++;
    while (!h->closing && (m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        attempt_done(x, m->data.result);
    }
    h->depth--;
    teardown_if_due(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *sc = p->data;
    struct qfs_http *h = sc->http;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(h->multi, sc->fd, flags, &running);
    drain(h);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct qfs_http *h = userp;
    struct sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            uv_poll_stop(&sc->poll);
            curl_multi_assign(h->multi, fd, NULL);
            sock_close(h, sc);
        }
        return 0;
    }
    if (!sc) {
        sc = qfs_xcalloc(1, sizeof(*sc));
        if (uv_poll_init_socket(h->loop, &sc->poll, fd) != 0) {
            free(sc);
            return -1;
        }
        sc->fd = fd;
        sc->http = h;
        sc->poll.data = sc;
        sc->next = h->socks;
        if (h->socks) h->socks->prev = sc;
        h->socks = sc;
        curl_multi_assign(h->multi, fd, sc);
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct qfs_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(h);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct qfs_http *h = userp;
    if (timeout_ms < 0) uv_timer_stop(&h->timer);
    else uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- one attempt ----------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    if (qfs_buf_append(&x->resp, p, size * n) != QFS_OK) {
        x->too_big = true;
        return 0;
    }
    return size * n;
}

static void clear_resp_headers(struct xfer *x)
{
    for (size_t i = 0; i < x->nresp_headers; i++) {
        free((char *)x->resp_headers[i].name);
        free((char *)x->resp_headers[i].value);
    }
    x->nresp_headers = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        clear_resp_headers(x); /* a new response starts (after 100 Continue, say) */
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p || len > MAX_HEADER_LINE || x->nresp_headers == MAX_RESPONSE_HEADERS)
        return len;
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    struct qfs_http_header *hd = &x->resp_headers[x->nresp_headers++];
    hd->name = qfs_xstrndup(p, (size_t)(colon - p));
    hd->value = qfs_xstrndup(v, (size_t)(end - v));
    return len;
}

static void attempt_cleanup(struct xfer *x)
{
    if (x->easy) {
        curl_multi_remove_handle(x->http->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->slist);
    x->slist = NULL;
    if (x->host) {
        host_release(x->http, x->host);
        x->host = NULL;
        x->http->active--;
    }
}

static void on_xfer_timer(uv_timer_t *t);

/* Sets up and adds the easy handle for the next attempt. On failure the request is settled later
 * through its timer, so callbacks never run inside qfs_http_request. */
static qfs_status attempt_start(struct xfer *x)
{
    struct qfs_http *h = x->http;
    qfs_status st = QFS_OK;
    x->attempts++;
    x->too_big = false;
    x->code = 0;
    x->error = NULL;
    x->errbuf[0] = '\0';
    qfs_buf_reset(&x->resp);
    clear_resp_headers(x);

    x->easy = curl_easy_init();
    if (!x->easy) {
        st = QFS_INTERNAL;
        goto out;
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, h->noproxy);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(x->timeout_ms < 10000 ? x->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_response);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (strcmp(x->method, "GET") == 0 && !x->has_body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(x->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        /* POSTFIELDS with an explicit size: the body SigV4 hashes is exactly the body sent. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        if (strcmp(x->method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
    }
    for (size_t i = 0; i < x->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(x->slist, x->headers[i]);
        if (!n) {
            st = QFS_INTERNAL;
            goto out;
        }
        x->slist = n;
    }
    if (x->prepare) st = x->prepare(e, &x->slist, x->hook_arg);
    if (st != QFS_OK) goto out;
    /* Again after the hook: no caller can turn verification off. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->slist);

    x->host = host_get(h, x->host_key);
    x->host->active++;
    h->active++;
    x->state = X_ACTIVE;
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) st = QFS_INTERNAL;
out:
    if (st != QFS_OK) {
        attempt_cleanup(x);
        x->status = st;
        x->error = "request set-up failed";
        x->state = X_FAILING;
        uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
    }
    return st;
}

/* Starts queued requests while the global and per-host caps allow. */
static void pump(struct qfs_http *h)
{
    struct xfer *x = h->q_head;
    while (x && h->active < h->max_total && !h->closing) {
        struct xfer *next = x->q_next;
        struct host *o = NULL;
        for (struct host *i = h->hosts; i; i = i->next)
            if (strcmp(i->key, x->host_key) == 0) o = i;
        if (!o || o->active < h->max_per_host) {
            queue_remove(h, x);
            attempt_start(x);
        }
        x = next;
    }
}

static void fill_response(const struct xfer *x, struct qfs_http_response *r)
{
    r->status = x->status;
    r->code = x->code;
    r->body = x->resp.data ? x->resp.data : "";
    r->body_len = x->resp.len;
    r->attempts = x->attempts;
    r->error = x->error;
    r->headers = x->resp_headers;
    r->nheaders = x->nresp_headers;
}

static void xfer_closed(uv_handle_t *handle)
{
    struct xfer *x = handle->data;
    struct qfs_http *h = x->http;
    free(x);
    closed_one(h);
}

/* Delivers the outcome and releases the request. The xfer is off every list when cb runs. */
static void finish(struct xfer *x)
{
    struct qfs_http *h = x->http;
    if (x->state == X_QUEUED) queue_remove(h, x);
    attempt_cleanup(x);
    if (x->all_prev) x->all_prev->all_next = x->all_next;
    else h->all = x->all_next;
    if (x->all_next) x->all_next->all_prev = x->all_prev;
    x->state = X_DONE;
    uv_timer_stop(&x->timer);
    h->stats.requests++;
    if (x->status != QFS_OK) h->stats.failures++;

    struct qfs_http_response r;
    fill_response(x, &r);
    h->depth++;
    x->cb(&r, x->arg);
    h->depth--;

    free(x->method);
    free(x->url);
    free(x->host_key);
    for (size_t i = 0; i < x->nheaders; i++) free(x->headers[i]);
    free(x->headers);
    free(x->body);
    qfs_buf_cleanup(&x->resp);
    clear_resp_headers(x);
    h->pending_closes++;
    x->timer.data = x;
    uv_close((uv_handle_t *)&x->timer, xfer_closed);
}

static void on_xfer_timer(uv_timer_t *t)
{
    struct xfer *x = t->data;
    struct qfs_http *h = x->http;
    h->depth++;
    if (x->state == X_FAILING) {
        finish(x);
    } else if (x->state == X_BACKOFF) {
        queue_push(h, x);
        pump(h);
    }
    h->depth--;
    teardown_if_due(h);
}

/* Logs a failed attempt once, here, where curl's result is translated. Never the URL's query, the
 * headers or the body: they may carry credentials. */
static void log_failure(const struct xfer *x, CURLcode cc)
{
    char attempt[16], code[16], path[256];
    snprintf(attempt, sizeof(attempt), "%u", x->attempts);
    snprintf(code, sizeof(code), "%ld", x->code);
    const char *u = strstr(x->url, "://");
    u = u ? strchr(u + 3, '/') : NULL;
    snprintf(path, sizeof(path), "%.*s", u ? (int)strcspn(u, "?#") : 1, u ? u : "/");
    if (cc != CURLE_OK)
        qfs_warn("http transfer failed", "method", x->method, "host", x->host_key, "path", path,
                 "attempt", attempt, "status", qfs_status_str(x->status), "error", x->error);
    else
        qfs_debug("http error status", "method", x->method, "host", x->host_key, "path", path,
                  "attempt", attempt, "code", code, "status", qfs_status_str(x->status));
}

static void attempt_done(struct xfer *x, CURLcode cc)
{
    struct qfs_http *h = x->http;
    bool retryable;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
    if (cc != CURLE_OK) x->error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
    x->status = qfs_http_map(cc, x->code, x->too_big, &retryable);
    if (x->status == QFS_TOO_BIG) x->error = "response body over the cap";
    if (x->status != QFS_OK) log_failure(x, cc);
    if (x->code == 0) h->stats.transport_errors++;
    else if (x->code == 429) h->stats.throttled++;
    else if (x->code >= 500 && x->code < 600) h->stats.server_errors++;
    attempt_cleanup(x);

    bool again = false;
    uint64_t delay = 0;
    if (x->status != QFS_OK && x->attempts < x->max_attempts && !h->closing) {
        again = retryable;
        struct qfs_http_response r;
        fill_response(x, &r);
        const char *ra = qfs_http_response_header(&r, "Retry-After");
        if (ra && !qfs_http_parse_retry_after(ra, qfs_now_ms(), &delay)) delay = 0;
        if (x->retry) again = x->retry(&r, retryable, &delay, x->hook_arg);
        if (again && delay > x->max_server_delay_ms) again = false;
        if (again && delay == 0)
            delay = qfs_http_backoff_ms(x->attempts, x->backoff_base_ms, x->backoff_max_ms,
                                        next_random(h));
    }
    if (again) {
        h->stats.retries++;
        char attempt[16], wait[24];
        snprintf(attempt, sizeof(attempt), "%u", x->attempts);
        snprintf(wait, sizeof(wait), "%llu", (unsigned long long)delay);
        qfs_debug("http retry scheduled", "host", x->host_key, "attempt", attempt, "delay_ms", wait);
        x->state = X_BACKOFF;
        uv_timer_start(&x->timer, on_xfer_timer, delay, 0);
    } else {
        finish(x);
    }
    pump(h);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

qfs_status qfs_http_new(uv_loop_t *loop, const struct qfs_http_options *opt, struct qfs_http **out)
{
    static const struct qfs_http_options defaults = {0};
    if (!loop || !out) return QFS_INVALID_ARG;
    if (!opt) opt = &defaults;
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return QFS_INTERNAL;
    struct qfs_http *h = qfs_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->max_total = opt->max_total ? opt->max_total : DEFAULT_MAX_TOTAL;
    h->max_per_host = opt->max_per_host ? opt->max_per_host : DEFAULT_MAX_PER_HOST;
    h->user_agent = qfs_xstrdup(opt->user_agent ? opt->user_agent : "qfs/" QFS_VERSION);
    const char *env_noproxy = getenv("NO_PROXY");
    if (!env_noproxy || !*env_noproxy) env_noproxy = getenv("no_proxy");
    h->noproxy = env_noproxy && *env_noproxy
                     ? qfs_xasprintf("%s,%s", ALWAYS_NOPROXY, env_noproxy)
                     : qfs_xstrdup(ALWAYS_NOPROXY);
    h->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)h << 16) ^ 0x9E3779B97F4A7C15ULL;
    if (!h->rng) h->rng = 1;

    h->multi = curl_multi_init();
    if (!h->multi || uv_timer_init(loop, &h->timer) != 0) {
        if (h->multi) curl_multi_cleanup(h->multi);
        free(h->user_agent);
        free(h->noproxy);
        free(h);
        curl_global_cleanup();
        return QFS_INTERNAL;
    }
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max_per_host);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->max_total);
    /* Idle connections kept for reuse. curl's default is four per transfer in progress, counted
     * when one ends: two long polls and a delete left too few, and a busy ingest closed and opened
     * an SQS connection every 14 requests (280 handshakes per 20,000 events, now 0). */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->max_total);
    *out = h;
    return QFS_OK;
}

static void cancel_all(struct qfs_http *h)
{
    while (h->all) {
        struct xfer *x = h->all;
        x->status = QFS_UNAVAILABLE;
        x->code = 0;
        x->error = "cancelled";
        finish(x);
    }
}

static void teardown_if_due(struct qfs_http *h)
{
    if (!h->closing || h->torn_down || h->depth > 0) return;
    h->depth++;
    cancel_all(h);
    h->depth--;
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks) {
        struct sock_ctx *sc = h->socks;
        uv_poll_stop(&sc->poll);
        sock_close(h, sc);
    }
    while (h->hosts) {
        struct host *o = h->hosts;
        h->hosts = o->next;
        free(o->key);
        free(o);
    }
    h->torn_down = true;
    h->pending_closes++;
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}

void qfs_http_read_stats(const struct qfs_http *http, struct qfs_http_stats *out)
{
    if (http) *out = http->stats;
    else memset(out, 0, sizeof(*out));
}

void qfs_http_free(struct qfs_http *http)
{
    if (!http || http->closing) return;
    http->closing = true;
    teardown_if_due(http);
}

/* ---- requests -------------------------------------------------------------------------------- */

static bool header_is_sane(const char *hdr)
{
    const char *colon = strchr(hdr, ':');
    if (!colon || colon == hdr) return false;
    for (const char *p = hdr; *p; p++)
        if (*p == '\r' || *p == '\n') return false;
    return true;
}

qfs_status qfs_http_request(struct qfs_http *http, const struct qfs_http_request *req,
                            qfs_http_done_fn cb, void *arg)
{
    if (!http || !req || !req->url || !cb) return QFS_INVALID_ARG;
    if (http->closing) return QFS_UNAVAILABLE;
    if (req->body_len > MAX_REQUEST_BODY) return QFS_TOO_BIG;
    if (req->body_len && !req->body) return QFS_INVALID_ARG;
    size_t nheaders = 0;
    while (req->headers && req->headers[nheaders]) {
        if (!header_is_sane(req->headers[nheaders])) return QFS_INVALID_ARG;
        if (++nheaders > MAX_REQUEST_HEADERS) return QFS_INVALID_ARG;
    }
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    for (const char *p = method; *p; p++)
        if (*p < 'A' || *p > 'Z') return QFS_INVALID_ARG;
    char *key = host_key_of(req->url);
    if (!key || !*method) {
        free(key);
        return QFS_INVALID_ARG;
    }

    struct xfer *x = qfs_xcalloc(1, sizeof(*x));
    x->http = http;
    x->host_key = key;
    x->method = qfs_xstrdup(method);
    x->url = qfs_xstrdup(req->url);
    x->headers = qfs_xcalloc(nheaders ? nheaders : 1, sizeof(char *));
    for (size_t i = 0; i < nheaders; i++) x->headers[i] = qfs_xstrdup(req->headers[i]);
    x->nheaders = nheaders;
    x->has_body = req->body != NULL;
    if (req->body) {
        x->body = qfs_xmalloc(req->body_len + 1);
        memcpy(x->body, req->body, req->body_len);
        x->body[req->body_len] = '\0';
        x->body_len = req->body_len;
    }
    x->timeout_ms = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    x->max_response = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    x->max_attempts = req->max_attempts ? req->max_attempts : DEFAULT_MAX_ATTEMPTS;
    x->backoff_base_ms = req->backoff_base_ms ? req->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    x->backoff_max_ms = req->backoff_max_ms ? req->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    x->max_server_delay_ms =
        req->max_server_delay_ms ? req->max_server_delay_ms : DEFAULT_MAX_SERVER_DELAY_MS;
    x->retry = req->retry;
    x->prepare = req->prepare;
    x->hook_arg = req->hook_arg;
    x->cb = cb;
    x->arg = arg;
    qfs_buf_init(&x->resp, x->max_response);
    uv_timer_init(http->loop, &x->timer);
    x->timer.data = x;

    x->all_next = http->all;
    if (http->all) http->all->all_prev = x;
    http->all = x;
    queue_push(http, x);
    pump(http);
    return QFS_OK;
}
