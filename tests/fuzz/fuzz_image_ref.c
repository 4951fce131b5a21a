/* Fuzz target for image references: any bytes either parse into a self-consistent record or are
 * refused with a reason, never touching memory outside the input and the record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto.h"
#include "qfs/image_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a crash libFuzzer keeps) when a property of the parser does not hold. */
static void check(int cond)
{
    if (!cond) abort();
}

static int terminated(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

static void check_record(const char *text, const struct qfs_image_ref *r)
{
    check(terminated(r->text, sizeof(r->text)) && strcmp(r->text, text) == 0);
    check(terminated(r->host, sizeof(r->host)) && r->host[0]);
    check(terminated(r->repository, sizeof(r->repository)) && r->repository[0]);
    check(strlen(r->host) + 1 + strlen(r->repository) <= QFS_IMAGE_REF_NAME_MAX);
    check(strlen(r->tag) <= QFS_IMAGE_REF_TAG_MAX);
    check(r->digest[0] == '\0' || (strlen(r->digest) == QFS_IMAGE_REF_DIGEST_LEN &&
                                   strncmp(r->digest, "sha256:", 7) == 0));
    check(r->tag_implied == (r->tag[0] == '\0' && r->digest[0] == '\0'));
    check(terminated(r->canonical, sizeof(r->canonical)));
    for (const char *p = r->repository; *p; p++) check(!(*p >= 'A' && *p <= 'Z'));
    for (const char *p = r->host; *p; p++) check(!(*p >= 'A' && *p <= 'Z'));

    switch (r->kind) {
    case QFS_IMAGE_REF_ECR_PRIVATE:
        check(qfs_image_ref_is_ecr_private(r));
        check(qfs_proto_is_account(r->account) && qfs_proto_is_region(r->region));
        check(strcmp(r->partition, "aws") == 0 || strcmp(r->partition, "aws-cn") == 0 ||
              strcmp(r->partition, "aws-us-gov") == 0);
        check(strncmp(r->host, r->account, 12) == 0 && strstr(r->host, r->region) != NULL);
        break;
    case QFS_IMAGE_REF_ECR_PUBLIC:
    case QFS_IMAGE_REF_DOCKER_HUB:
    case QFS_IMAGE_REF_OTHER:
        check(!qfs_image_ref_is_ecr_private(r));
        check(!r->account[0] && !r->region[0] && !r->partition[0] && !r->ecr_fips &&
              !r->ecr_dual_stack);
        break;
    default:
        check(0);
    }

    char key[QFS_IMAGE_REF_KEY_SIZE];
    qfs_image_ref_key(r, key);
    check(key[0] != '\0');
    if (r->digest[0]) check(strcmp(key, r->digest) == 0);

    /* The canonical form names the same image and is its own canonical form. */
    struct qfs_image_ref again;
    char reason[QFS_IMAGE_REF_REASON_SIZE];
    check(qfs_image_ref_parse(r->canonical, &again, reason, sizeof(reason)) == QFS_OK);
    check(strcmp(again.host, r->host) == 0 && strcmp(again.repository, r->repository) == 0);
    check(strcmp(again.digest, r->digest) == 0 && again.kind == r->kind);
    check(strcmp(again.account, r->account) == 0 && strcmp(again.region, r->region) == 0);
    check(strcmp(again.canonical, r->canonical) == 0);
    char key_again[QFS_IMAGE_REF_KEY_SIZE];
    qfs_image_ref_key(&again, key_again);
    check(strcmp(key, key_again) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes a C string: give it exactly the input plus a terminator, so that ASan
     * catches any read past the end. */
    char *text = malloc(size + 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    struct qfs_image_ref r;
    char reason[QFS_IMAGE_REF_REASON_SIZE];
    qfs_status s = qfs_image_ref_parse(text, &r, reason, sizeof(reason));
    if (s == QFS_OK) {
        check(reason[0] == '\0');
        check_record(text, &r);
    } else {
        check(s == QFS_PROTOCOL);
        /* The documented reason size is never too small. */
        check(reason[0] != '\0' && strlen(reason) + 1 < sizeof(reason));
        check(all_zero(&r, sizeof(r)));
    }

    /* A tiny reason buffer is cut, not overrun, and the outcome does not change. */
    char small[5];
    struct qfs_image_ref r2;
    check(qfs_image_ref_parse(text, &r2, small, sizeof(small)) == s);
    check(terminated(small, sizeof(small)));
    free(text);
    return 0;
}
