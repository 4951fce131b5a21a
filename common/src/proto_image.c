/* The image record codec (qfs.image.v1). */
#include "qfs/proto_image.h"

#include <stdlib.h>
#include <string.h>

#include "qfs/proto_codec.h"

static const char *const keys[] = {"schema", QFS__IMAGE_ID_KEYS, "digest_unresolved",
                                   "cache_fail_open", QFS__DEPLOY_KEYS};

static qfs_status from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_image_record *out = outp;
    memset(out, 0, sizeof(*out));
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_IMAGE);
    if (s == QFS_OK) s = qfs__pd_image_id(d, root, &out->image);
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "digest_unresolved", &qfs__str_text_or_null,
                        &out->digest_unresolved);
    if (s == QFS_OK) s = qfs__pd_bool(d, root, "cache_fail_open", &out->cache_fail_open);
    if (s == QFS_OK) s = qfs__pd_deploy(d, root, &out->deploy, false, 1);
    if (s == QFS_OK && !out->image.digest && !out->digest_unresolved)
        s = qfs__pd_fail(d, "digest_unresolved", "null while digest is null");
    if (s == QFS_OK && out->image.digest && out->digest_unresolved)
        s = qfs__pd_fail(d, "digest_unresolved", "set while digest is known");
    if (s != QFS_OK) qfs_image_record_cleanup(out);
    return s;
}

/* qfs_image_record_cleanup for qfs__pe_checked. */
static void qfs_image_record_cleanup_any(void *m)
{
    qfs_image_record_cleanup(m);
}

qfs_status qfs_image_record_encode(const struct qfs_image_record *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_IMAGE));
    qfs__pe_image_id(root, &m->image);
    qfs__pe_str(root, "digest_unresolved", m->digest_unresolved);
    qfs__pe_bool(root, "cache_fail_open", m->cache_fail_open);
    qfs__pe_deploy(root, &m->deploy);

    return qfs__pe_checked(root, sizeof(struct qfs_image_record), from_json, qfs_image_record_cleanup_any,
                           QFS_SCHEMA_IMAGE, json_out);
}

qfs_status qfs_image_record_decode(const char *json, size_t len, struct qfs_image_record *out,
                                   char *err, size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), from_json, err, errlen);
}

void qfs_image_record_cleanup(struct qfs_image_record *m)
{
    if (!m) return;
    qfs_image_id_cleanup(&m->image);
    qfs_deploy_cleanup(&m->deploy);
    free(m->digest_unresolved);
    memset(m, 0, sizeof(*m));
}
