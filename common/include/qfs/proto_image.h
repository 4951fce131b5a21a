/* The image record (qfs.image.v1): one ECR image a deploy uses, from the parser to the cache. */
#ifndef QFS_PROTO_IMAGE_H
#define QFS_PROTO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "qfs/proto.h"

struct qfs_image_record {
    struct qfs_image_id image; /* account/region: the image's registry, the subject tokens */
    struct qfs_deploy deploy;  /* the event and ECS context; containers: at least one name */
    char *digest_unresolved;   /* why image.digest is NULL; NULL when the digest is known */
    bool cache_fail_open;      /* a cache-store read failed and qfs went ahead without it */
};

/* Encodes m as JSON into *json_out (the caller frees it with free()). QFS_INVALID_ARG, with the
 * reason logged, when m breaks the schema (a bug in the caller); QFS_TOO_BIG past
 * QFS_PROTO_MAX_BYTES. */
qfs_status qfs_image_record_encode(const struct qfs_image_record *m, char **json_out);
/* Decodes and validates len bytes of JSON into out, which the caller cleans up after QFS_OK; on
 * failure out is left empty and err (size errlen) names the field: QFS_PROTOCOL. */
qfs_status qfs_image_record_decode(const char *json, size_t len, struct qfs_image_record *out,
                                   char *err, size_t errlen);
/* Frees every heap field (decode output, or strings the caller allocated) and zeroes m. */
void qfs_image_record_cleanup(struct qfs_image_record *m);

#endif
