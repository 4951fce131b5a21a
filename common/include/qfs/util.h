/* Small shared helpers: allocation that aborts on failure, invariants, a bounded growable buffer. */
#ifndef QFS_UTIL_H
#define QFS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/status.h"

/* Allocation failure is not a recoverable error in qfs: these log and abort. */
void *qfs_xmalloc(size_t n);
void *qfs_xcalloc(size_t count, size_t n);
void *qfs_xrealloc(void *p, size_t n);
char *qfs_xstrdup(const char *s);
char *qfs_xstrndup(const char *s, size_t n);
char *qfs_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Aborts with a log line naming the file and line when an invariant is false. Never for input. */
#define qfs_assert(cond) \
    ((cond) ? (void)0 : qfs__assert_fail(#cond, __FILE__, __LINE__))
void qfs__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* A growable byte buffer with a hard cap. The data is always NUL-terminated. Appends past the cap
 * fail with QFS_TOO_BIG and leave the buffer unchanged. */
struct qfs_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 means SIZE_MAX */
};

void qfs_buf_init(struct qfs_buf *b, size_t max);
void qfs_buf_cleanup(struct qfs_buf *b);
void qfs_buf_reset(struct qfs_buf *b);
qfs_status qfs_buf_append(struct qfs_buf *b, const void *p, size_t n);
qfs_status qfs_buf_puts(struct qfs_buf *b, const char *s);
qfs_status qfs_buf_printf(struct qfs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
qfs_status qfs_buf_vprintf(struct qfs_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included; invalid UTF-8 bytes become U+FFFD. */
qfs_status qfs_buf_json_string(struct qfs_buf *b, const char *s, size_t n);
/* Hands the data to the caller (who frees it) and leaves b empty. */
char *qfs_buf_take(struct qfs_buf *b);

/* FNV-1a of a NUL-terminated string: the hash of qfs's small in-memory indexes. */
uint64_t qfs_hash_str(const char *s);

/* Milliseconds since the Unix epoch (wall clock) and since an arbitrary point (monotonic). */
int64_t qfs_now_ms(void);
uint64_t qfs_mono_ms(void);

/* Runs loop a turn at a time until done(arg) is true; returns done(arg). Returns earlier when
 * timeout_ms pass (negative: no deadline) or when the loop has nothing left that could finish the
 * work. No turn blocks for good: libuv 1.44's UV_RUN_ONCE runs due timers before it polls, and
 * when one of them finished the work and no timer is left, it polls with no timeout at all; a
 * timer of its own (unreferenced: it keeps nothing alive) ticks through the wait. For tools and
 * tests that wait for one answer; services run their loops. */
struct uv_loop_s;
bool qfs_loop_run_until(struct uv_loop_s *loop, bool (*done)(void *arg), void *arg, int64_t timeout_ms);
/* The same until *flag is true. */
bool qfs_loop_run_until_flag(struct uv_loop_s *loop, const bool *flag, int64_t timeout_ms);
/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds: 2026-05-01T10:00:00.123Z. */
void qfs_format_time_ms(int64_t ms, char out[32]);

/* The longest prefix of s (a NUL-terminated string) of at most max bytes that does not split a
 * UTF-8 sequence: where to cut text that must stay valid UTF-8. */
size_t qfs_utf8_cut(const char *s, size_t max);
/* Returns true when s is valid UTF-8 of length n. */
bool qfs_utf8_is_valid(const char *s, size_t n);
/* The number of code points in s (n bytes), or SIZE_MAX when it is not valid UTF-8. */
size_t qfs_utf8_length(const char *s, size_t n);
/* Standard base64 (with padding) of n bytes; the caller frees the result. */
char *qfs_base64_encode(const void *p, size_t n);

#endif
