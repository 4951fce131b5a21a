/* Names and classes of qfs_status values. */
#include "qfs/status.h"

const char *qfs_status_str(qfs_status s)
{
    switch (s) {
    case QFS_OK: return "ok";
    case QFS_INVALID_ARG: return "invalid_argument";
    case QFS_PROTOCOL: return "protocol";
    case QFS_TOO_BIG: return "too_big";
    case QFS_TIMED_OUT: return "timed_out";
    case QFS_UNAVAILABLE: return "unavailable";
    case QFS_NOT_FOUND: return "not_found";
    case QFS_DENIED: return "denied";
    case QFS_IO: return "io";
    case QFS_INTERNAL: return "internal";
    }
    return "unknown";
}

bool qfs_status_is_retryable(qfs_status s)
{
    return s == QFS_TIMED_OUT || s == QFS_UNAVAILABLE || s == QFS_IO;
}
