/* Redis backend of the cache store: hiredis async with its libuv adapter, reconnecting with backoff. */
#include "qfs/kv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/log.h"
#include "qfs/util.h"

#include <hiredis/adapters/libuv.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_OP_TIMEOUT_MS 5000
#define DEFAULT_RECONNECT_MIN_MS 100
#define DEFAULT_RECONNECT_MAX_MS 5000
#define WATCHDOG_MS 100
#define MAX_USERINFO 512

/* Deletes KEYS[1] only while it holds ARGV[1]; returns the number of keys deleted. */
static const char del_if_value_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

enum conn_state {
    DOWN,       /* no connection; the reconnect timer is running */
    RESOLVING,  /* looking up the host name */
    CONNECTING, /* commands are queued on the context until it connects or fails */
    READY,
};

enum req_kind { REQ_OP, REQ_AUTH, REQ_SELECT };

/* A command sent on the current context whose reply we wait for. */
struct req {
    struct redis *r;
    struct qfs_kv_op *op; /* REQ_OP only */
    enum req_kind kind;
    qfs_status lost;      /* what a NULL reply means: the connection went away, or timed out */
    uint64_t sent_ms;
    struct req *prev, *next;
};

struct redis {
    uv_loop_t *loop;
    struct qfs_kv_redis_url url;
    char where[300]; /* host:port, for logs */
    char ip[256];          /* the address connected to */
    redisAsyncContext *ac; /* the context commands go to; NULL while down */
    int contexts;          /* contexts hiredis may still call us about */
    enum conn_state state;
    uv_timer_t reconnect, watchdog;
    uv_prepare_t flush;      /* writes the commands of a loop turn, see ev_add_write */
    bool flushing;           /* inside on_flush: a write left unfinished waits for the socket */
    uv_getaddrinfo_t gai;
    bool resolving;
    uint64_t connect_started_ms;
    unsigned backoff_ms;
    struct req *head, *tail; /* oldest first */
    bool reported_down;      /* one log line per outage */
    bool closing;
    int open_handles;
    void (*closed)(void *arg);
    void *closed_arg;
    unsigned connect_timeout_ms, op_timeout_ms, reconnect_min_ms, reconnect_max_ms;
};

/* ---- URL ------------------------------------------------------------------------------------ */

/* Copies src[0..n) into a new string with %XX decoded; NULL for a bad escape or a NUL. */
static char *percent_decode(const char *src, size_t n)
{
    if (n > MAX_USERINFO) return NULL;
    char *out = qfs_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)src[i + 1]) ||
                !isxdigit((unsigned char)src[i + 2]))
                goto bad;
            char hex[3] = {src[i + 1], src[i + 2], '\0'};
            c = (char)strtol(hex, NULL, 16);
            if (c == '\0') goto bad;
            i += 2;
        }
        out[k++] = c;
    }
    out[k] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

static bool parse_uint(const char *s, size_t n, int max, int *out)
{
    if (n == 0 || n > 5) return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
}

static bool host_is_valid(const char *h, bool bracketed)
{
    if (!*h) return false;
    for (const char *p = h; *p; p++) {
        bool ok = isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_' ||
                  (bracketed && (*p == ':' || *p == '%'));
        if (!ok) return false;
    }
    return true;
}

qfs_status qfs_kv_redis_url_parse(const char *url, struct qfs_kv_redis_url *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    static const char scheme[] = "redis://";
    if (!url || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0) return QFS_INVALID_ARG;
    const char *rest = url + sizeof(scheme) - 1;
    /* The db path holds only digits, so the last '@' ends the user info even when the password
     * holds '@' or '/'. */
    const char *at = strrchr(rest, '@');
    const char *hp = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (!colon) goto bad; /* a user without a password cannot authenticate */
        if (colon > rest && !(out->user = percent_decode(rest, (size_t)(colon - rest)))) goto bad;
        if (!(out->password = percent_decode(colon + 1, (size_t)(at - colon - 1)))) goto bad;
        if (!*out->password) goto bad;
        qfs_log_add_secret(out->password);
        char *raw = qfs_xstrndup(colon + 1, (size_t)(at - colon - 1));
        qfs_log_add_secret(raw); /* the escaped form too, should a URL ever be printed */
        free(raw);
        hp = at + 1;
    }
    size_t hp_len = strcspn(hp, "/");
    const char *path = hp + hp_len;
    const char *port = NULL;
    size_t host_len;
    bool bracketed = hp[0] == '[';
    if (bracketed) {
        const char *close = memchr(hp, ']', hp_len);
        if (!close) goto bad;
        host_len = (size_t)(close - hp - 1);
        if (close + 1 < path) {
            if (close[1] != ':') goto bad;
            port = close + 2;
        }
        if (host_len >= sizeof(out->host)) goto bad;
        memcpy(out->host, hp + 1, host_len);
    } else {
        const char *colon = memchr(hp, ':', hp_len);
        host_len = colon ? (size_t)(colon - hp) : hp_len;
        if (colon) port = colon + 1;
        if (host_len >= sizeof(out->host)) goto bad;
        memcpy(out->host, hp, host_len);
    }
    out->host[host_len] = '\0';
    if (!host_is_valid(out->host, bracketed)) goto bad;
    if (port && (!parse_uint(port, (size_t)(path - port), 65535, &out->port) || out->port == 0))
        goto bad;
    if (*path) {
        path++;
        if (*path && !parse_uint(path, strlen(path), 65535, &out->db)) goto bad;
    }
    return QFS_OK;
bad:
    qfs_kv_redis_url_cleanup(out);
    return QFS_INVALID_ARG;
}

void qfs_kv_redis_url_cleanup(struct qfs_kv_redis_url *u)
{
    free(u->user);
    if (u->password) {
        explicit_bzero(u->password, strlen(u->password));
        free(u->password);
    }
    u->user = u->password = NULL;
}

void qfs_kv_redis_url_redact(const struct qfs_kv_redis_url *u, char *out, size_t n)
{
    bool v6 = strchr(u->host, ':') != NULL;
    snprintf(out, n, "redis://%s%s%s%s%s:%d/%d", u->password && u->user ? u->user : "",
             u->password ? ":****@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, u->db);
}

/* ---- errors --------------------------------------------------------------------------------- */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The one mapping of a hiredis reply to a status: NULL (the connection went away, logged once
 * when it did) becomes q->lost; an error reply is logged here and classified by its code. */
static qfs_status map_reply(const struct req *q, const redisReply *reply, const char *what)
{
    if (!reply) return q->lost;
    if (reply->type != REDIS_REPLY_ERROR) return QFS_OK;
    static const char *const busy[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                                       "READONLY", "OOM", "NOREPLICAS", "MISCONF", NULL};
    const char *e = reply->str ? reply->str : "";
    qfs_status st = QFS_INTERNAL; /* ERR ...: a command qfs built wrongly */
    if (starts(e, "NOAUTH") || starts(e, "WRONGPASS") || starts(e, "NOPERM")) st = QFS_DENIED;
    else if (starts(e, "WRONGTYPE")) st = QFS_PROTOCOL;
    for (size_t i = 0; busy[i]; i++)
        if (starts(e, busy[i])) st = QFS_UNAVAILABLE;
    qfs_warn("redis command failed", "command", what, "error", e, "status", qfs_status_str(st));
    return st;
}

/* ---- connection ----------------------------------------------------------------------------- */

static void maybe_release(struct redis *r)
{
    if (!r->closing || r->ac || r->contexts || r->head || r->resolving || r->open_handles) return;
    void (*closed)(void *) = r->closed;
    void *arg = r->closed_arg;
    qfs_kv_redis_url_cleanup(&r->url);
    free(r);
    closed(arg);
}

static void report_down(struct redis *r, const char *msg, const char *why)
{
    if (r->reported_down) {
        qfs_debug(msg, "redis", r->where, "error", why);
        return;
    }
    r->reported_down = true;
    qfs_warn(msg, "redis", r->where, "error", why);
}

static void on_reconnect_timer(uv_timer_t *t);

static void schedule_reconnect(struct redis *r)
{
    if (r->closing) return;
    r->state = DOWN;
    unsigned b = r->backoff_ms;
    uint64_t delay = b / 2 + uv_hrtime() % (b / 2 + 1); /* jitter in [b/2, b] */
    r->backoff_ms = b >= r->reconnect_max_ms / 2 ? r->reconnect_max_ms : b * 2;
    uv_timer_start(&r->reconnect, on_reconnect_timer, delay, 0);
}

static void unlink_req(struct redis *r, struct req *q)
{
    if (q->prev) q->prev->next = q->next;
    else r->head = q->next;
    if (q->next) q->next->prev = q->prev;
    else r->tail = q->prev;
    q->prev = q->next = NULL;
}

/* Stops using the current context; its pending commands end with lost. hiredis may still call
 * on_disconnect for it (counted in r->contexts). */
static void drop_context(struct redis *r, qfs_status lost)
{
    redisAsyncContext *ac = r->ac;
    if (!ac) return;
    r->ac = NULL;
    r->state = DOWN;
    for (struct req *q = r->head; q; q = q->next) q->lost = lost;
    if (ac->c.flags & REDIS_IN_CALLBACK) {
        /* Inside a reply callback, so connected: hiredis frees it when the callback returns and
         * ends with on_disconnect. */
        redisAsyncFree(ac);
        return;
    }
    bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
    redisAsyncFree(ac); /* NULL replies now, then on_disconnect when it was connected */
    if (!connected) r->contexts--;
}

static void on_watchdog(uv_timer_t *t)
{
    struct redis *r = t->data;
    uint64_t now = qfs_mono_ms();
    if (r->ac && r->state == CONNECTING && now - r->connect_started_ms >= r->connect_timeout_ms) {
        report_down(r, "redis connect timed out", "no answer");
        drop_context(r, QFS_UNAVAILABLE);
        schedule_reconnect(r);
    } else if (r->ac && r->head && now - r->head->sent_ms >= r->op_timeout_ms) {
        report_down(r, "redis reply timed out; reconnecting", "no reply");
        drop_context(r, QFS_TIMED_OUT);
        schedule_reconnect(r);
    }
    if (!r->closing && !r->head && r->state != CONNECTING) uv_timer_stop(t);
}

static void start_watchdog(struct redis *r)
{
    if (!r->closing && !uv_is_active((uv_handle_t *)&r->watchdog))
        uv_timer_start(&r->watchdog, on_watchdog, WATCHDOG_MS, WATCHDOG_MS);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends argv on the current context; with q, on_reply gets the reply. */
static bool send_argv(struct redis *r, struct req *q, int argc, const char **argv,
                      const size_t *lens)
{
    if (!r->ac || redisAsyncCommandArgv(r->ac, q ? on_reply : NULL, q, argc, argv, lens) != REDIS_OK)
        return false;
    if (q) {
        q->r = r;
        q->lost = QFS_UNAVAILABLE;
        q->sent_ms = qfs_mono_ms();
        q->prev = r->tail;
        if (r->tail) r->tail->next = q;
        else r->head = q;
        r->tail = q;
        start_watchdog(r);
    }
    return true;
}

static void send_setup(struct redis *r)
{
    char db[16];
    if (r->url.password) {
        struct req *q = qfs_xcalloc(1, sizeof(*q));
        q->kind = REQ_AUTH;
        const char *argv[3] = {"AUTH"};
        int argc = 1;
        if (r->url.user) argv[argc++] = r->url.user;
        argv[argc++] = r->url.password;
        if (!send_argv(r, q, argc, argv, NULL)) free(q);
    }
    if (r->url.db) {
        struct req *q = qfs_xcalloc(1, sizeof(*q));
        q->kind = REQ_SELECT;
        snprintf(db, sizeof(db), "%d", r->url.db);
        const char *argv[2] = {"SELECT", db};
        if (!send_argv(r, q, 2, argv, NULL)) free(q);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct redis *r = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns, after NULL replies to its commands. */
        r->contexts--;
        if (r->ac == ac) {
            r->ac = NULL;
            report_down(r, "redis connect failed", ac->errstr);
            schedule_reconnect(r);
        }
        maybe_release(r);
        return;
    }
    if (r->ac != ac) return;
    r->state = READY;
    r->backoff_ms = r->reconnect_min_ms;
    qfs_info(r->reported_down ? "redis reconnected" : "redis connected", "redis", r->where);
    r->reported_down = false;
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct redis *r = ac->data;
    r->contexts--;
    if (r->ac == ac) {
        /* The server went away (we clear r->ac before dropping a context ourselves). */
        r->ac = NULL;
        report_down(r, "redis connection lost", ac->errstr[0] ? ac->errstr : "closed");
        schedule_reconnect(r);
    }
    maybe_release(r);
}

/* hiredis 0.14's libuv adapter ignores a poll error (status != 0), which is how libuv reports a
 * refused connect or a reset connection, and then stops watching the socket: the failure would go
 * unnoticed until a timeout. These four hooks replace the adapter's (its attach and cleanup stay):
 * an error is handed to hiredis as readiness, so that its own read or write finds it.
 *
 * They also spare the socket's epoll registration. uv_poll_start takes the descriptor out of epoll
 * and puts it back (two epoll_ctl calls), and hiredis asks for it around every command: to write,
 * to stop writing, to read (already reading). A changed set of events is passed on, an unchanged
 * one is not; and a connected context does not wait for the socket to be writable, which it nearly
 * always is: the commands of a loop turn are written together just before the loop polls
 * (on_flush), and only a write the socket could not take whole waits for writability. In the
 * benchmark that was six epoll_ctl per command. */
static void on_flush(uv_prepare_t *h);

static void on_poll(uv_poll_t *h, int status, int events)
{
    redisLibuvEvents *p = h->data;
    if (status != 0) events = p->events;
    if (p->context && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
    if (p->context && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void set_events(redisLibuvEvents *p, int events)
{
    if (events == p->events) return;
    p->events = events;
    if (events) uv_poll_start(&p->handle, events, on_poll);
    else uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d)
{
    redisLibuvEvents *p = d;
    set_events(p, p->events | UV_READABLE);
}

static void ev_del_read(void *d)
{
    redisLibuvEvents *p = d;
    set_events(p, p->events & ~UV_READABLE);
}

static void ev_add_write(void *d)
{
    redisLibuvEvents *p = d;
    redisAsyncContext *ac = p->context;
    struct redis *r = ac ? ac->data : NULL;
    /* Connecting (writability tells the connect is done) or the socket full: wait for it. */
    if (!r || r->ac != ac || !(ac->c.flags & REDIS_CONNECTED) || r->flushing) {
        set_events(p, p->events | UV_WRITABLE);
        return;
    }
    uv_prepare_start(&r->flush, on_flush);
}

static void ev_del_write(void *d)
{
    redisLibuvEvents *p = d;
    set_events(p, p->events & ~UV_WRITABLE);
}

/* The commands queued during a loop turn, in one write. */
static void on_flush(uv_prepare_t *h)
{
    struct redis *r = h->data;
    uv_prepare_stop(h);
    if (!r->ac || !(r->ac->c.flags & REDIS_CONNECTED)) return;
    r->flushing = true;
    redisAsyncHandleWrite(r->ac); /* may drop the context: r->ac is not used after it */
    r->flushing = false;
}

static void open_context(struct redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->ip, r->url.port);
    if (!ac) qfs__assert_fail("redisAsyncConnect returned NULL", __FILE__, __LINE__);
    if (ac->err) {
        report_down(r, "redis connect failed", ac->errstr);
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        report_down(r, "redis connect failed", "cannot watch the socket");
        if (!ac->ev.data) ac->ev.cleanup = NULL; /* the adapter set a cleanup with nothing to clean */
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    redisEnableKeepAlive(&ac->c);
    r->ac = ac;
    r->contexts++;
    r->state = CONNECTING;
    r->connect_started_ms = qfs_mono_ms();
    /* Watch for the end of the connect even when no command is queued. */
    ev_add_write(ac->ev.data);
    send_setup(r);
    start_watchdog(r);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct redis *r = g->data;
    r->resolving = false;
    if (r->closing) {
        uv_freeaddrinfo(res);
        maybe_release(r);
        return;
    }
    if (status != 0 || !res) {
        report_down(r, "redis host not resolved", uv_strerror(status));
        uv_freeaddrinfo(res);
        schedule_reconnect(r);
        return;
    }
    int rc = uv_ip_name(res->ai_addr, r->ip, sizeof(r->ip));
    uv_freeaddrinfo(res);
    if (rc != 0) {
        report_down(r, "redis host not resolved", uv_strerror(rc));
        schedule_reconnect(r);
        return;
    }
    open_context(r);
}

static void start_connect(struct redis *r)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, r->url.host, addr) == 1 || inet_pton(AF_INET6, r->url.host, addr) == 1) {
        snprintf(r->ip, sizeof(r->ip), "%s", r->url.host);
        open_context(r);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    r->gai.data = r;
    int rc = uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->url.host, NULL, &hints);
    if (rc != 0) {
        report_down(r, "redis host not resolved", uv_strerror(rc));
        schedule_reconnect(r);
        return;
    }
    r->resolving = true;
    r->state = RESOLVING;
}

static void on_reconnect_timer(uv_timer_t *t)
{
    struct redis *r = t->data;
    if (!r->closing && r->state == DOWN) start_connect(r);
}

/* ---- operations ----------------------------------------------------------------------------- */

static const char *op_name(enum qfs_kv_opcode c)
{
    static const char *const names[] = {"GET", "SET", "SET NX", "DEL", "EVAL", "RPUSH", "LRANGE"};
    return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "?";
}

/* Turns the reply to op into its result and completes it. */
static void finish_op(struct req *q, struct qfs_kv_op *op, const redisReply *reply)
{
    struct qfs_kv_result res = {.status = map_reply(q, reply, op_name(op->code))};
    const char **items = NULL;
    size_t *lens = NULL;
    if (res.status == QFS_OK) {
        int t = reply->type;
        switch (op->code) {
        case QFS_KV_OP_GET:
            if (t == REDIS_REPLY_NIL) res.status = QFS_NOT_FOUND;
            else if (t != REDIS_REPLY_STRING) res.status = QFS_PROTOCOL;
            else if (reply->len > QFS_KV_MAX_VALUE) res.status = QFS_TOO_BIG;
            else {
                res.value = reply->str;
                res.len = reply->len;
            }
            break;
        case QFS_KV_OP_PUT:
            if (t != REDIS_REPLY_STATUS) res.status = QFS_PROTOCOL;
            break;
        case QFS_KV_OP_PUT_IF_ABSENT:
            if (t == REDIS_REPLY_NIL) res.exists = true;
            else if (t != REDIS_REPLY_STATUS) res.status = QFS_PROTOCOL;
            break;
        case QFS_KV_OP_DEL:
            if (t != REDIS_REPLY_INTEGER) res.status = QFS_PROTOCOL;
            break;
        case QFS_KV_OP_DEL_IF_VALUE:
            if (t != REDIS_REPLY_INTEGER) res.status = QFS_PROTOCOL;
            else res.not_owner = reply->integer == 0;
            break;
        case QFS_KV_OP_APPEND:
            /* EXEC: [RPUSH length, LTRIM OK, EXPIRE or PERSIST]; nil when the transaction was
             * discarded. */
            if (t == REDIS_REPLY_NIL) res.status = QFS_UNAVAILABLE;
            else if (t != REDIS_REPLY_ARRAY || reply->elements < 1) res.status = QFS_PROTOCOL;
            for (size_t i = 0; res.status == QFS_OK && i < reply->elements; i++)
                res.status = map_reply(q, reply->element[i], "MULTI/EXEC");
            if (res.status == QFS_OK) {
                if (reply->element[0]->type != REDIS_REPLY_INTEGER) res.status = QFS_PROTOCOL;
                else res.dropped = reply->element[0]->integer > (long long)op->max_items;
            }
            break;
        case QFS_KV_OP_GET_LIST:
            if (t != REDIS_REPLY_ARRAY) {
                res.status = QFS_PROTOCOL;
                break;
            }
            if (reply->elements == 0) {
                res.status = QFS_NOT_FOUND;
                break;
            }
            items = qfs_xcalloc(reply->elements, sizeof(*items));
            lens = qfs_xcalloc(reply->elements, sizeof(*lens));
            for (size_t i = 0; i < reply->elements && res.status == QFS_OK; i++) {
                const redisReply *e = reply->element[i];
                if (e->type != REDIS_REPLY_STRING) res.status = QFS_PROTOCOL;
                else if (e->len > QFS_KV_MAX_LIST_VALUE) res.status = QFS_TOO_BIG;
                items[i] = e->str;
                lens[i] = e->len;
            }
            if (res.status == QFS_OK) {
                res.items = items;
                res.lens = lens;
                res.n = reply->elements;
            }
            break;
        }
    }
    qfs_kv_op_complete(op, &res); /* may free the store: nothing touches r after this */
    free(items);
    free(lens);
}

/* hiredis frees reply when this returns. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct req *q = privdata;
    struct redis *r = q->r;
    unlink_req(r, q);
    if (q->kind != REQ_OP) {
        /* A refusal is logged by the mapper; the commands that follow fail with it (NOAUTH). */
        map_reply(q, reply, q->kind == REQ_AUTH ? "AUTH" : "SELECT");
        free(q);
        maybe_release(r);
        return;
    }
    struct qfs_kv_op *op = q->op;
    bool closing = r->closing;
    finish_op(q, op, reply);
    free(q);
    /* If the callback closed the store, the context is still being freed (or this was its last
     * reply and r is released by on_disconnect); an earlier close finishes here. */
    if (closing) maybe_release(r);
}

static void submit(void *impl, struct qfs_kv_op *op)
{
    struct redis *r = impl;
    if (!r->ac || (r->state != READY && r->state != CONNECTING)) {
        qfs_kv_op_fail(op, QFS_UNAVAILABLE); /* the outage was logged when it began */
        return;
    }
    char ttl[24], max[24], lrange_end[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)op->ttl_seconds);
    snprintf(max, sizeof(max), "%u", op->max_items ? op->max_items - 1 : 0);
    snprintf(lrange_end, sizeof(lrange_end), "%d", QFS_KV_MAX_LIST - 1);
    const char *argv[8];
    size_t lens[8];
    int argc = 0;
#define ARG(s, n) (argv[argc] = (s), lens[argc] = (n), argc++)
#define ARGS(s) ARG((s), strlen(s))
    struct req *q = qfs_xcalloc(1, sizeof(*q));
    q->kind = REQ_OP;
    q->op = op;
    bool sent = false;
    switch (op->code) {
    case QFS_KV_OP_GET:
        ARGS("GET"), ARG(op->key, op->key_len);
        break;
    case QFS_KV_OP_PUT:
    case QFS_KV_OP_PUT_IF_ABSENT:
        ARGS("SET"), ARG(op->key, op->key_len), ARG(op->value, op->len);
        if (op->ttl_seconds) ARGS("EX"), ARGS(ttl);
        if (op->code == QFS_KV_OP_PUT_IF_ABSENT) ARGS("NX");
        break;
    case QFS_KV_OP_DEL:
        ARGS("DEL"), ARG(op->key, op->key_len);
        break;
    case QFS_KV_OP_DEL_IF_VALUE:
        ARGS("EVAL"), ARGS(del_if_value_script), ARGS("1"), ARG(op->key, op->key_len),
            ARG(op->value, op->len);
        break;
    case QFS_KV_OP_APPEND: {
        /* One transaction: the commands are queued back to back on this connection and EXEC
         * answers for all of them. Keeping the first max_items matches what DynamoDB can do. */
        const char *multi[] = {"MULTI"};
        const char *rpush[] = {"RPUSH", op->key, op->value};
        size_t rpush_lens[] = {5, op->key_len, op->len};
        const char *ltrim[] = {"LTRIM", op->key, "0", max};
        const char *expire[] = {op->ttl_seconds ? "EXPIRE" : "PERSIST", op->key, ttl};
        sent = send_argv(r, NULL, 1, multi, NULL) && send_argv(r, NULL, 3, rpush, rpush_lens) &&
               send_argv(r, NULL, 4, ltrim, NULL) &&
               send_argv(r, NULL, op->ttl_seconds ? 3 : 2, expire, NULL);
        if (sent) ARGS("EXEC");
        break;
    }
    case QFS_KV_OP_GET_LIST:
        ARGS("LRANGE"), ARG(op->key, op->key_len), ARGS("0"), ARGS(lrange_end);
        break;
    }
#undef ARG
#undef ARGS
    sent = argc > 0 && send_argv(r, q, argc, argv, lens);
    if (!sent) {
        free(q);
        qfs_kv_op_fail(op, QFS_UNAVAILABLE);
    }
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct redis *r = h->data;
    r->open_handles--;
    maybe_release(r);
}

static void close_backend(void *impl, void (*done)(void *arg), void *arg)
{
    struct redis *r = impl;
    r->closing = true;
    r->closed = done;
    r->closed_arg = arg;
    uv_close((uv_handle_t *)&r->reconnect, on_handle_closed);
    uv_close((uv_handle_t *)&r->watchdog, on_handle_closed);
    uv_close((uv_handle_t *)&r->flush, on_handle_closed);
    if (r->resolving) uv_cancel((uv_req_t *)&r->gai);
    drop_context(r, QFS_UNAVAILABLE);
}

static const struct qfs_kv_backend redis_backend = {
    .name = "redis",
    .submit = submit,
    .close = close_backend,
};

qfs_status qfs_kv_redis_new(uv_loop_t *loop, const struct qfs_kv_redis_options *opt,
                            struct qfs_kv **out)
{
    if (!loop || !opt || !out) return QFS_INVALID_ARG;
    *out = NULL;
    struct redis *r = qfs_xcalloc(1, sizeof(*r));
    qfs_status st = qfs_kv_redis_url_parse(opt->url, &r->url);
    if (st != QFS_OK) {
        qfs_error("malformed redis URL: expected redis://[user:password@]host[:port][/db]",
                  "variable", "QFS_REDIS_URL");
        goto fail;
    }
    st = qfs_kv_new_backend(loop, &redis_backend, r, opt->prefix, out);
    if (st != QFS_OK) {
        qfs_error("malformed cache key prefix", "variable", "QFS_CACHE_PREFIX");
        goto fail;
    }
    r->loop = loop;
    bool v6 = strchr(r->url.host, ':') != NULL;
    snprintf(r->where, sizeof(r->where), "%s%s%s:%d", v6 ? "[" : "", r->url.host, v6 ? "]" : "",
             r->url.port);
    r->connect_timeout_ms = opt->connect_timeout_ms ? opt->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->op_timeout_ms = opt->op_timeout_ms ? opt->op_timeout_ms : DEFAULT_OP_TIMEOUT_MS;
    r->reconnect_min_ms = opt->reconnect_min_ms ? opt->reconnect_min_ms : DEFAULT_RECONNECT_MIN_MS;
    r->reconnect_max_ms = opt->reconnect_max_ms ? opt->reconnect_max_ms : DEFAULT_RECONNECT_MAX_MS;
    if (r->reconnect_max_ms < r->reconnect_min_ms) r->reconnect_max_ms = r->reconnect_min_ms;
    r->backoff_ms = r->reconnect_min_ms;
    qfs_assert(uv_timer_init(loop, &r->reconnect) == 0 && uv_timer_init(loop, &r->watchdog) == 0 &&
               uv_prepare_init(loop, &r->flush) == 0);
    r->reconnect.data = r->watchdog.data = r->flush.data = r;
    r->open_handles = 3;
    r->state = DOWN;
    start_connect(r);
    return QFS_OK;
fail:
    qfs_kv_redis_url_cleanup(&r->url);
    free(r);
    return st == QFS_OK ? QFS_INTERNAL : QFS_INVALID_ARG;
}
