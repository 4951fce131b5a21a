/* One status type for all of qfs: every call that can fail returns a qfs_status. */
#ifndef QFS_STATUS_H
#define QFS_STATUS_H

#include <stdbool.h>

typedef enum {
    QFS_OK = 0,
    QFS_INVALID_ARG, /* the caller broke the contract: a bug in qfs */
    QFS_PROTOCOL,    /* input broke its contract: never retried, goes to the DLQ */
    QFS_TOO_BIG,     /* a bound was hit */
    QFS_TIMED_OUT,   /* retryable */
    QFS_UNAVAILABLE, /* retryable: a peer is down, throttling, 5xx */
    QFS_NOT_FOUND,
    QFS_DENIED,      /* the peer refused: bad credentials, access denied */
    QFS_IO,
    QFS_INTERNAL
} qfs_status;

/* Returns a short constant name for s, such as "unavailable". Never NULL. */
const char *qfs_status_str(qfs_status s);

/* Returns true for the statuses worth trying again later (timed out, unavailable, I/O). */
bool qfs_status_is_retryable(qfs_status s);

#endif
