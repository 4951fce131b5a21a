/* Structured logging: one JSON object per line on stderr, with registered secrets masked. */
#ifndef QFS_LOG_H
#define QFS_LOG_H

#include <stdbool.h>

enum qfs_log_level { QFS_LOG_DEBUG = 0, QFS_LOG_INFO, QFS_LOG_WARN, QFS_LOG_ERROR };

/* Names the service in every line and sets the lowest level written. Safe to call again. */
void qfs_log_init(const char *service, enum qfs_log_level min_level);
/* Sends lines to fd instead of stderr (tests). */
void qfs_log_set_fd(int fd);

/* Registers a secret value (copied). From then on, any occurrence of it in a message or field is
 * written as "****". Values shorter than 4 bytes are ignored: masking them would garble logs. */
void qfs_log_add_secret(const char *value);
/* Forgets every registered secret (tests). */
void qfs_log_clear_secrets(void);
/* Copies src to dst (size n, NUL-terminated) with every registered secret replaced by "****". */
void qfs_log_mask(const char *src, char *dst, unsigned n);

/* Writes {"ts","level","service","msg", key: value, ...}. The variadic part is pairs of strings
 * (key, value) ending with NULL; a NULL value is written as null. Values longer than 2 KiB are cut.
 * Thread-safe: one write(2) per line. */
void qfs_log(enum qfs_log_level level, const char *msg, ...) __attribute__((sentinel));

#define qfs_debug(...) qfs_log(QFS_LOG_DEBUG, __VA_ARGS__, NULL)
#define qfs_info(...) qfs_log(QFS_LOG_INFO, __VA_ARGS__, NULL)
#define qfs_warn(...) qfs_log(QFS_LOG_WARN, __VA_ARGS__, NULL)
#define qfs_error(...) qfs_log(QFS_LOG_ERROR, __VA_ARGS__, NULL)

#endif
