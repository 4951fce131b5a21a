/* qfs-scanner-poller's real ports: the Qualys client, and ECR DescribeImages in the image's
 * account (through its role when it is not ours) to find a tag for a digest-only image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poller.h"
#include "qfs/aws.h"
#include "qfs/aws_ecr.h"
#include "qfs/aws_sts.h"
#include "qfs/util.h"

/* ---- Qualys ---------------------------------------------------------------------------------- */

static qfs_status create_schedule(void *impl, const char *registry_uuid, const char *repository,
                                  const char *tag, const char *name, qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_create_schedule(impl, registry_uuid, repository, tag, name, cb, arg);
}

static qfs_status find_image(void *impl, const char *registry_host, const char *repository,
                             const char *tag, const char *manifest_digest, qfs_qualys_done_fn cb,
                             void *arg)
{
    return qfs_qualys_find_image(impl, registry_host, repository, tag, manifest_digest, cb, arg);
}

static qfs_status image_vulns(void *impl, const char *sha, qfs_qualys_done_fn cb, void *arg)
{
    return qfs_qualys_image_vulns(impl, sha, cb, arg);
}

void poller_qualys_port_init(struct poller_qualys_port *p, struct qfs_qualys *q)
{
    *p = (struct poller_qualys_port){.impl = q, .create_schedule = create_schedule,
                                     .find_image = find_image, .image_vulns = image_vulns};
}

/* ---- ECR ------------------------------------------------------------------------------------- */

struct lookup {
    struct poller_ecr *ecr;
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
    char *repository;
    char *digest;
    char role[320];
    poller_tag_fn cb;
    void *arg;
};

static void lookup_free(struct lookup *l)
{
    free(l->repository);
    free(l->digest);
    free(l);
}

static void lookup_end(struct lookup *l, qfs_status st, const char *tag, const char *detail)
{
    l->cb(l->arg, st, tag, detail);
    lookup_free(l);
}

static void on_image(const struct qfs_aws_response *r, const struct qfs_ecr_image *img, void *arg)
{
    struct lookup *l = arg;
    if (r->status == QFS_OK) {
        lookup_end(l, QFS_OK, poller_pick_tag(img->tags, img->ntags), NULL);
        return;
    }
    char detail[400];
    snprintf(detail, sizeof(detail), "DescribeImages: %s%s%.300s", r->error_code,
             r->error_message && *r->error_message ? ": " : "", r->error_message ? r->error_message : "");
    lookup_end(l, r->status, NULL, detail);
}

static qfs_status describe(struct lookup *l, const struct qfs_aws_credentials *creds)
{
    struct qfs_ecr_query q = {.registry_id = l->account, .repository = l->repository, .digest = l->digest};
    return qfs_ecr_describe_image(l->ecr->aws, &q, l->region, creds, on_image, l);
}


static void on_role(qfs_status st, const struct qfs_aws_credentials *creds, void *arg)
{
    struct lookup *l = arg;
    if (st != QFS_OK) {
        char detail[400];
        snprintf(detail, sizeof(detail), "cannot assume %s", l->role);
        lookup_end(l, st, NULL, detail);
        return;
    }
    if (describe(l, creds) != QFS_OK)
        lookup_end(l, QFS_PROTOCOL, NULL, "the DescribeImages request could not be built");
}

static qfs_status find_tag(void *impl, const struct qfs_image_id *img, poller_tag_fn cb, void *arg)
{
    struct poller_ecr *ecr = impl;
    if (!img->digest || !ecr->aws) return QFS_INVALID_ARG;
    struct lookup *l = qfs_xcalloc(1, sizeof(*l));
    l->ecr = ecr;
    snprintf(l->account, sizeof(l->account), "%s", img->account);
    snprintf(l->region, sizeof(l->region), "%s", img->region);
    l->repository = qfs_xstrdup(img->repository);
    l->digest = qfs_xstrdup(img->digest);
    l->cb = cb;
    l->arg = arg;
    qfs_status st = qfs_aws_role_for(ecr->hub_account, qfs_aws_partition(l->region), l->account,
                                     ecr->role_name, l->role, sizeof(l->role));
    if (st != QFS_OK) {
        st = QFS_DENIED; /* no role to assume: QFS_ECS_DESCRIBE_ROLE_NAME is not a role name */
    } else if (!l->role[0]) {
        st = describe(l, NULL) == QFS_OK ? QFS_OK : QFS_PROTOCOL;
    } else {
        st = qfs_aws_sts_assume_role(ecr->sts, l->role, on_role, l) == QFS_OK ? QFS_OK : QFS_UNAVAILABLE;
    }
    if (st != QFS_OK) lookup_free(l);
    return st;
}

void poller_ecr_port_init(struct poller_ecr_port *p, struct poller_ecr *ecr)
{
    *p = (struct poller_ecr_port){.impl = ecr, .find_tag = find_tag};
}
