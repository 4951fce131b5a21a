/* Small shared helpers: allocation, invariants, bounded buffers, time, UTF-8, base64. */
#include "qfs/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "qfs/log.h"

static void oom(size_t n)
{
    char num[32];
    snprintf(num, sizeof(num), "%zu", n);
    qfs_log(QFS_LOG_ERROR, "out of memory", "bytes", num, NULL);
    abort();
}

void *qfs_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *qfs_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) oom(count * n);
    return p;
}

void *qfs_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *qfs_xstrdup(const char *s)
{
    return qfs_xstrndup(s, strlen(s));
}

char *qfs_xstrndup(const char *s, size_t n)
{
    char *p = qfs_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *qfs_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    qfs_assert(n >= 0);
    char *p = qfs_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void qfs__assert_fail(const char *expr, const char *file, int line)
{
    char where[256];
    snprintf(where, sizeof(where), "%s:%d", file, line);
    qfs_log(QFS_LOG_ERROR, "assertion failed", "expr", expr, "where", where, NULL);
    abort();
}

void qfs_buf_init(struct qfs_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX;
}

void qfs_buf_cleanup(struct qfs_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void qfs_buf_reset(struct qfs_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

static qfs_status reserve(struct qfs_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) return QFS_TOO_BIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return QFS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    b->data = qfs_xrealloc(b->data, cap);
    b->cap = cap;
    return QFS_OK;
}

qfs_status qfs_buf_append(struct qfs_buf *b, const void *p, size_t n)
{
    qfs_status s = reserve(b, n);
    if (s != QFS_OK) return s;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return QFS_OK;
}

qfs_status qfs_buf_puts(struct qfs_buf *b, const char *s)
{
    return qfs_buf_append(b, s, strlen(s));
}

qfs_status qfs_buf_vprintf(struct qfs_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0) return QFS_INTERNAL;
    qfs_status s = reserve(b, (size_t)n);
    if (s != QFS_OK) return s;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return QFS_OK;
}

qfs_status qfs_buf_printf(struct qfs_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qfs_status s = qfs_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return s;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) { len = 2; cp = s[0] & 0x1F; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; cp = s[0] & 0x0F; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t qfs_utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max) return n;
    n = max;
    /* Back up over continuation bytes to the lead byte of the sequence that would be split. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return n;
}

size_t qfs_utf8_length(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, points = 0;
    while (i < n) {
        /* Most text here is ASCII: eight bytes at a time while no high bit is set. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & UINT64_C(0x8080808080808080)) break;
            i += 8;
            points += 8;
        }
        if (i >= n) break;
        size_t k = utf8_seq(p + i, n - i);
        if (!k) return SIZE_MAX;
        i += k;
        points++;
    }
    return points;
}

bool qfs_utf8_is_valid(const char *s, size_t n)
{
    return qfs_utf8_length(s, n) != SIZE_MAX;
}

qfs_status qfs_buf_json_string(struct qfs_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->len;
    qfs_status st = qfs_buf_append(b, "\"", 1);
    size_t i = 0;
    while (st == QFS_OK && i < n) {
        /* Printable ASCII that needs no escape goes in as one run. */
        size_t end = i;
        while (end < n && p[end] >= 0x20 && p[end] < 0x7F && p[end] != '"' && p[end] != '\\') end++;
        if (end > i) {
            st = qfs_buf_append(b, p + i, end - i);
            i = end;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            st = qfs_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            st = qfs_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_seq(p + i, n - i);
            if (k) {
                st = qfs_buf_append(b, &p[i], k);
                i += k;
            } else {
                st = qfs_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            }
        }
    }
    if (st == QFS_OK) st = qfs_buf_append(b, "\"", 1);
    if (st != QFS_OK) {
        b->len = start;
        if (b->data) b->data[start] = '\0';
    }
    return st;
}

char *qfs_buf_take(struct qfs_buf *b)
{
    char *p = b->data ? b->data : qfs_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int64_t qfs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t qfs_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_tick_closed(uv_handle_t *h)
{
    free(h);
}

bool qfs_loop_run_until(uv_loop_t *loop, bool (*done)(void *arg), void *arg, int64_t timeout_ms)
{
    /* Allocated, so that a close left unfinished here completes safely on a later turn. */
    uv_timer_t *tick = qfs_xcalloc(1, sizeof(*tick));
    uv_timer_init(loop, tick);
    uv_timer_start(tick, on_tick, 20, 20);
    uv_unref((uv_handle_t *)tick);
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : qfs_mono_ms() + (uint64_t)timeout_ms;
    bool ok;
    while (!(ok = done(arg)) && qfs_mono_ms() <= deadline)
        if (uv_run(loop, UV_RUN_ONCE) == 0 && !(ok = done(arg))) break;
    uv_close((uv_handle_t *)tick, on_tick_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool flag_set(void *arg)
{
    return *(const bool *)arg;
}

bool qfs_loop_run_until_flag(uv_loop_t *loop, const bool *flag, int64_t timeout_ms)
{
    return qfs_loop_run_until(loop, flag_set, (void *)flag, timeout_ms);
}

void qfs_format_time_ms(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

char *qfs_base64_encode(const void *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = qfs_xmalloc(4 * ((n + 2) / 3) + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

uint64_t qfs_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}
