/* Structured JSON-lines logging with secret masking. */
#include "qfs/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfs/util.h"

#define MAX_SECRETS 64
#define MAX_VALUE 2048
#define MAX_LINE 16384

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_service[64] = "qfs";
static enum qfs_log_level log_min = QFS_LOG_INFO;
static int log_fd = 2;
/* Buffered mode (qfs_log_buffer): lines wait here until qfs_log_flush, a warning or error, or
 * LOG_BUFFER_MAX bytes. Guarded by log_mu. */
static bool log_buffered;
static struct qfs_buf log_pending;
#define LOG_BUFFER_MAX 65536
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void qfs_log_init(const char *service, enum qfs_log_level min_level)
{
    pthread_mutex_lock(&log_mu);
    snprintf(log_service, sizeof(log_service), "%s", service);
    log_min = min_level;
    pthread_mutex_unlock(&log_mu);
}

/* Called with log_mu held. */
static void flush_locked(void);

void qfs_log_set_fd(int fd)
{
    pthread_mutex_lock(&log_mu);
    if (log_pending.len) flush_locked(); /* what waits was meant for the old fd */
    log_fd = fd;
    pthread_mutex_unlock(&log_mu);
}

void qfs_log_add_secret(const char *value)
{
    if (!value || strlen(value) < 4) return;
    pthread_mutex_lock(&log_mu);
    bool known = false;
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], value) == 0) known = true;
    if (!known) {
        if (nsecrets == MAX_SECRETS) {
            /* Forget the oldest: rotated credentials replace their predecessors. */
            free(secrets[0]);
            memmove(secrets, secrets + 1, (MAX_SECRETS - 1) * sizeof(*secrets));
            nsecrets--;
        }
        secrets[nsecrets++] = qfs_xstrdup(value);
    }
    pthread_mutex_unlock(&log_mu);
}

void qfs_log_clear_secrets(void)
{
    pthread_mutex_lock(&log_mu);
    for (size_t i = 0; i < nsecrets; i++) free(secrets[i]);
    nsecrets = 0;
    pthread_mutex_unlock(&log_mu);
}

/* Whether a secret occurs in s. Called with log_mu held. */
static bool has_secret(const char *s)
{
    for (size_t i = 0; i < nsecrets; i++)
        if (strstr(s, secrets[i])) return true;
    return false;
}

/* Masks secrets in src into b. Called with log_mu held. */
static void mask_into(struct qfs_buf *b, const char *src)
{
    const char *p = src;
    while (*p) {
        const char *best = NULL;
        size_t best_len = 0;
        for (size_t i = 0; i < nsecrets; i++) {
            const char *hit = strstr(p, secrets[i]);
            if (hit && (!best || hit < best)) {
                best = hit;
                best_len = strlen(secrets[i]);
            }
        }
        if (!best) {
            qfs_buf_puts(b, p);
            return;
        }
        qfs_buf_append(b, p, (size_t)(best - p));
        qfs_buf_puts(b, "****");
        p = best + best_len;
    }
}

void qfs_log_mask(const char *src, char *dst, unsigned n)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    pthread_mutex_lock(&log_mu);
    mask_into(&b, src);
    pthread_mutex_unlock(&log_mu);
    snprintf(dst, n, "%s", b.data ? b.data : "");
    qfs_buf_cleanup(&b);
}

/* Appends ,"key":"value" with secrets masked. Returns false (and appends nothing) when the line
 * is full. Called with log_mu held. */
static bool put_field(struct qfs_buf *line, const char *key, const char *value)
{
    size_t start = line->len;
    qfs_status st = qfs_buf_puts(line, ",");
    if (st == QFS_OK) st = qfs_buf_json_string(line, key, strlen(key));
    if (st == QFS_OK) st = qfs_buf_puts(line, ":");
    if (st == QFS_OK && !value) st = qfs_buf_puts(line, "null");
    if (st == QFS_OK && value) {
        /* Most values hold no secret: those are written as they are, without a masked copy. */
        struct qfs_buf masked;
        qfs_buf_init(&masked, 0);
        const char *text = value;
        size_t len = strlen(value);
        if (has_secret(value)) {
            mask_into(&masked, value);
            text = masked.data ? masked.data : "";
            len = masked.len;
        }
        bool cut = len > MAX_VALUE;
        size_t n = cut ? qfs_utf8_cut(text, MAX_VALUE) : len;
        st = qfs_buf_json_string(line, text, n);
        if (st == QFS_OK && cut) {
            line->len--; /* reopen the string to mark the cut */
            st = qfs_buf_puts(line, "...\"");
        }
        qfs_buf_cleanup(&masked);
    }
    if (st != QFS_OK) {
        line->len = start;
        line->data[start] = '\0';
        return false;
    }
    return true;
}

/* Writes all of data to log_fd. Called with log_mu held. */
static void write_all(const char *data, size_t len)
{
    size_t off = 0;
    while (data && off < len) {
        ssize_t w = write(log_fd, data + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

/* Called with log_mu held. */
static void flush_locked(void)
{
    write_all(log_pending.data, log_pending.len);
    log_pending.len = 0;
    if (log_pending.data) log_pending.data[0] = '\0';
}

void qfs_log_buffer(bool on)
{
    pthread_mutex_lock(&log_mu);
    if (!on) {
        flush_locked();
        qfs_buf_cleanup(&log_pending);
    } else if (!log_buffered) {
        qfs_buf_init(&log_pending, 0);
    }
    log_buffered = on;
    pthread_mutex_unlock(&log_mu);
}

void qfs_log_flush(void)
{
    pthread_mutex_lock(&log_mu);
    if (log_pending.len) flush_locked();
    pthread_mutex_unlock(&log_mu);
}

void qfs_log(enum qfs_log_level level, const char *msg, ...)
{
    if (level < log_min) return;
    char ts[32];
    qfs_format_time_ms(qfs_now_ms(), ts);

    struct qfs_buf line;
    qfs_buf_init(&line, MAX_LINE);
    pthread_mutex_lock(&log_mu);
    qfs_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":", ts, level_names[level]);
    qfs_buf_json_string(&line, log_service, strlen(log_service));
    bool full = !put_field(&line, "msg", msg);

    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key) break;
        const char *value = va_arg(ap, const char *);
        if (!full && !put_field(&line, key, value)) full = true;
    }
    va_end(ap);
    /* The cap leaves room for the closing part, so these appends cannot fail. */
    line.max = MAX_LINE + 64;
    if (full) qfs_buf_puts(&line, ",\"truncated\":true");
    qfs_buf_puts(&line, "}\n");
    if (log_buffered) {
        qfs_buf_append(&log_pending, line.data, line.len); /* no cap: only fails by aborting */
        if (level >= QFS_LOG_WARN || log_pending.len >= LOG_BUFFER_MAX) flush_locked();
    } else {
        write_all(line.data, line.len);
    }
    pthread_mutex_unlock(&log_mu);
    qfs_buf_cleanup(&line);
}
