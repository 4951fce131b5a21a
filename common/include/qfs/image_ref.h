/* Container image references: parsed by Docker's normalisation rules, registry classified. */
#ifndef QFS_IMAGE_REF_H
#define QFS_IMAGE_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "qfs/proto.h"
#include "qfs/status.h"

/* Longest reference text read; anything longer is refused without being scanned further. */
#define QFS_IMAGE_REF_TEXT_MAX 512
/* Longest name (registry host + "/" + repository, after normalisation), as in Docker. */
#define QFS_IMAGE_REF_NAME_MAX 255
#define QFS_IMAGE_REF_TAG_MAX 128
/* "sha256:" and 64 lower-case hex digits. */
#define QFS_IMAGE_REF_DIGEST_LEN 71
/* Room for any image key or canonical form, NUL included. */
#define QFS_IMAGE_REF_KEY_SIZE 448
/* A reason buffer of this size never cuts a reason short. */
#define QFS_IMAGE_REF_REASON_SIZE 192

enum qfs_image_ref_kind {
    QFS_IMAGE_REF_OTHER = 0,   /* any registry qfs cannot scan through a Qualys ECR connector */
    QFS_IMAGE_REF_ECR_PRIVATE, /* <account>.dkr.ecr.<region>.amazonaws.com[.cn] and its variants */
    QFS_IMAGE_REF_ECR_PUBLIC,  /* public.ecr.aws */
    QFS_IMAGE_REF_DOCKER_HUB   /* docker.io, index.docker.io, registry-1.docker.io */
};

/* A parsed reference. Every field is a NUL-terminated array inside the struct: the record owns
 * nothing on the heap, may be copied by assignment, and needs no cleanup. */
struct qfs_image_ref {
    /* The reference exactly as written. */
    char text[QFS_IMAGE_REF_TEXT_MAX + 1];
    /* Registry host, lower-cased, with ":port" if written; "docker.io" when none was written. */
    char host[QFS_IMAGE_REF_NAME_MAX + 1];
    /* Path without the host: "library/nginx", "team/web". */
    char repository[QFS_IMAGE_REF_NAME_MAX + 1];
    /* The tag as written and the digest ("sha256:<64 hex>"), each empty when absent. */
    char tag[QFS_IMAGE_REF_TAG_MAX + 1];
    char digest[QFS_IMAGE_REF_DIGEST_LEN + 1];
    /* Neither tag nor digest was written, so Docker pulls "latest". */
    bool tag_implied;
    enum qfs_image_ref_kind kind;
    /* ECR private only: reached through a FIPS and/or a dual-stack (.on.aws) endpoint. */
    bool ecr_fips;
    bool ecr_dual_stack;
    /* ECR private only, else empty: 12 digits; the Region; "aws", "aws-cn" or "aws-us-gov". */
    char account[13];
    char region[QFS_REGION_MAX + 1];
    char partition[16];
    /* host/repository@digest when a digest is known, else host/repository:tag ("latest" when
     * the tag was implied). */
    char canonical[QFS_IMAGE_REF_KEY_SIZE];
};

/* Parses text (NUL-terminated, borrowed) into *out. Returns QFS_OK, or QFS_PROTOCOL with *out
 * zeroed and a one-line human reason in reason (cut to reason_len; reason may be NULL when
 * reason_len is 0), or QFS_INVALID_ARG when text or out is NULL. A valid reference to a registry
 * that is not ECR private is QFS_OK: callers decide what to skip. Reads at most
 * QFS_IMAGE_REF_TEXT_MAX + 1 bytes of text and allocates nothing. */
qfs_status qfs_image_ref_parse(const char *text, struct qfs_image_ref *out, char *reason,
                               size_t reason_len);

/* Returns true when r names an image in a private ECR registry (account, region, partition set). */
bool qfs_image_ref_is_ecr_private(const struct qfs_image_ref *r);

/* Writes the stable key used in message ids and cache keys: the digest when known; else
 * "<account>/<region>/<repository>:<tag>" for ECR private and "<host>/<repository>:<tag>" for
 * other registries, with "latest" when the tag was implied. r must come from a successful parse. */
void qfs_image_ref_key(const struct qfs_image_ref *r, char out[QFS_IMAGE_REF_KEY_SIZE]);

/* Returns a constant name for kind: "ecr_private", "ecr_public", "docker_hub" or "other". */
const char *qfs_image_ref_kind_str(enum qfs_image_ref_kind kind);

#endif
