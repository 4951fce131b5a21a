/* The skip record (qfs.skip.v1): an image, or a whole event, that qfs did not scan, and why. */
#ifndef QFS_PROTO_SKIP_H
#define QFS_PROTO_SKIP_H

#include <stdbool.h>
#include <stddef.h>

#include "qfs/proto.h"
#include "qfs/proto_scan.h"

enum qfs_skip_reason {
    QFS_SKIP_NOT_ECR,                   /* the image is not in a private ECR registry */
    QFS_SKIP_INVALID_IMAGE,             /* the reference is not valid; detail says why */
    QFS_SKIP_API_CALL_FAILED,           /* the ECS call failed (errorCode) */
    QFS_SKIP_NO_TASKS_STARTED,          /* RunTask/StartTask placed no task */
    QFS_SKIP_UNSUPPORTED_EVENT,         /* an event qfs does not handle */
    QFS_SKIP_CACHED,                    /* scanned recently; summary holds the stored result */
    QFS_SKIP_IN_FLIGHT,                 /* a scan of the image is running; this deploy joins it */
    QFS_SKIP_TASK_DEFINITION_NOT_FOUND, /* DescribeTaskDefinition found nothing */
    QFS_SKIP_ACCESS_DENIED,             /* a lookup was denied */
    QFS_SKIP_DIGEST_UNRESOLVED,         /* the image cannot be scanned without its digest */
    QFS_SKIP_REASON_COUNT
};
const char *qfs_skip_reason_str(enum qfs_skip_reason r);
bool qfs_skip_reason_parse(const char *name, enum qfs_skip_reason *out);

struct qfs_skip {
    enum qfs_skip_reason reason;
    char *detail; /* NULL or text: the validator's reason, the AWS errorCode, ... */
    /* The image's ECR registry when there is one, otherwise the event's account and region. */
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
    char *image;  /* the reference as written (may be invalid); NULL when no image is concerned */
    char *digest; /* NULL when unknown */
    struct qfs_scan_summary *summary; /* only for QFS_SKIP_CACHED; NULL when none */
    struct qfs_deploy deploy;         /* event_name may be any name; containers may be empty */
};

/* Encodes m into *json_out (the caller frees it with free()); QFS_INVALID_ARG, with the reason
 * logged, when m breaks the schema; QFS_TOO_BIG past QFS_PROTO_MAX_BYTES. */
qfs_status qfs_skip_encode(const struct qfs_skip *m, char **json_out);
/* Decodes and validates len bytes of JSON into out (cleaned up by the caller after QFS_OK, left
 * empty on failure); QFS_PROTOCOL with err naming the field. */
qfs_status qfs_skip_decode(const char *json, size_t len, struct qfs_skip *out, char *err,
                           size_t errlen);
/* Frees every heap field, the summary included, and zeroes m. */
void qfs_skip_cleanup(struct qfs_skip *m);

/* ---- a deploy's skip list: skips:<event id> in the cache store -------------------------------- */

/* The parser appends the skip records of each deploy event there (before it publishes the event's
 * image records), so a notification about one image can name the deploy's images that were not
 * scanned, and why. */
#define QFS_DEPLOY_SKIPS_TTL_S 86400LL
#define QFS_DEPLOY_SKIPS_MAX 100 /* records kept per deploy event */

/* Writes "skips:<event id>" into out (n bytes). */
void qfs_deploy_skips_key(const char *event_id, char *out, size_t n);
/* True for the skips a deploy's list keeps: not the cache's cached / in_flight, which are about
 * images that were (or are being) scanned. */
bool qfs_deploy_skip_is_kept(const struct qfs_skip *s);
/* The skip record s as kept in the list: a qfs.skip.v1 record of at most QFS_KV_MAX_LIST_VALUE
 * bytes (long texts cut with "...", containers and ECS names dropped when needed). *json is the
 * caller's. QFS_INVALID_ARG when s cannot be encoded; QFS_TOO_BIG when even the smallest form is
 * too long. */
qfs_status qfs_deploy_skip_entry(const struct qfs_skip *s, char **json);

#endif
