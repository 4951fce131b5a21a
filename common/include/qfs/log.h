/* Structured logging: one JSON object per line on stderr, with registered secrets masked. */
#ifndef QFS_LOG_H
#define QFS_LOG_H

#include <stdbool.h>

enum qfs_log_level { QFS_LOG_DEBUG = 0, QFS_LOG_INFO, QFS_LOG_WARN, QFS_LOG_ERROR };

/* Names the service in every line and sets the lowest level written. Safe to call again. */
void qfs_log_init(const char *service, enum qfs_log_level min_level);
/* Sends lines to fd instead of stderr (tests). */
void qfs_log_set_fd(int fd);

/* Buffered mode, for a service's event loop: debug and info lines collect in memory and are
 * written together by qfs_log_flush (the loop calls it before it waits for I/O), one write(2) for
 * a loop turn's lines instead of one per line. A warning or an error writes everything at once, so
 * what explains a failure is never held back; nor is anything once 64 KiB wait. Turning it off
 * writes what waits. */
void qfs_log_buffer(bool on);
void qfs_log_flush(void);

/* Registers a secret value (copied). From then on, any occurrence of it in a message or field is
 * written as "****". Values shorter than 4 bytes are ignored: masking them would garble logs. */
void qfs_log_add_secret(const char *value);
/* Forgets every registered secret (tests). */
void qfs_log_clear_secrets(void);
/* Copies src to dst (size n, NUL-terminated) with every registered secret replaced by "****". */
void qfs_log_mask(const char *src, char *dst, unsigned n);

/* Writes {"ts","level","service","msg", key: value, ...}. The variadic part is pairs of strings
 * (key, value) ending with NULL; a NULL value is written as null. Values longer than 2 KiB are cut.
 * Thread-safe: one write(2) per line, or per flush in buffered mode. */
void qfs_log(enum qfs_log_level level, const char *msg, ...) __attribute__((sentinel));

#define qfs_debug(...) qfs_log(QFS_LOG_DEBUG, __VA_ARGS__, NULL)
#define qfs_info(...) qfs_log(QFS_LOG_INFO, __VA_ARGS__, NULL)
#define qfs_warn(...) qfs_log(QFS_LOG_WARN, __VA_ARGS__, NULL)
#define qfs_error(...) qfs_log(QFS_LOG_ERROR, __VA_ARGS__, NULL)

#endif
