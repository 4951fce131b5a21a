/* The skip record codec (qfs.skip.v1). */
#include "qfs/proto_skip.h"

#include <stdlib.h>
#include <string.h>

#include "qfs/kv.h"
#include "qfs/proto_codec.h"
#include "qfs/util.h"

static const char *const reason_names[QFS_SKIP_REASON_COUNT] = {
    [QFS_SKIP_NOT_ECR] = "not_ecr",
    [QFS_SKIP_INVALID_IMAGE] = "invalid_image",
    [QFS_SKIP_API_CALL_FAILED] = "api_call_failed",
    [QFS_SKIP_NO_TASKS_STARTED] = "no_tasks_started",
    [QFS_SKIP_UNSUPPORTED_EVENT] = "unsupported_event",
    [QFS_SKIP_CACHED] = "cached",
    [QFS_SKIP_IN_FLIGHT] = "in_flight",
    [QFS_SKIP_TASK_DEFINITION_NOT_FOUND] = "task_definition_not_found",
    [QFS_SKIP_ACCESS_DENIED] = "access_denied",
    [QFS_SKIP_DIGEST_UNRESOLVED] = "digest_unresolved",
};

const char *qfs_skip_reason_str(enum qfs_skip_reason r)
{
    return (unsigned)r < QFS_SKIP_REASON_COUNT ? reason_names[r] : NULL;
}

bool qfs_skip_reason_parse(const char *name, enum qfs_skip_reason *out)
{
    for (int i = 0; name && i < QFS_SKIP_REASON_COUNT; i++) {
        if (strcmp(name, reason_names[i]) == 0) {
            *out = (enum qfs_skip_reason)i;
            return true;
        }
    }
    return false;
}

static qfs_status from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_skip *out = outp;
    static const char *const keys[] = {"schema", "reason", "detail", "account", "region", "image",
                                       "digest", "summary", QFS__DEPLOY_KEYS};
    memset(out, 0, sizeof(*out));
    int reason = -1;
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_SKIP);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "reason", reason_names, QFS_SKIP_REASON_COUNT, false, &reason);
    out->reason = (enum qfs_skip_reason)(reason < 0 ? 0 : reason);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "detail", &qfs__str_text_or_null, &out->detail);
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, root, "account", &qfs__str_account, out->account,
                            sizeof(out->account));
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, root, "region", &qfs__str_region, out->region, sizeof(out->region));
    if (s == QFS_OK) s = qfs__pd_str(d, root, "image", &qfs__str_text_or_null, &out->image);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "digest", &qfs__str_digest_or_null, &out->digest);
    if (s == QFS_OK) {
        struct qfs_scan_summary sum;
        bool is_null;
        s = qfs__pd_summary(d, root, "summary", &sum, &is_null);
        if (s == QFS_OK && !is_null) {
            out->summary = qfs_xmalloc(sizeof(*out->summary));
            *out->summary = sum;
            if (out->reason != QFS_SKIP_CACHED)
                s = qfs__pd_fail(d, "summary", "set for a reason other than cached");
        }
    }
    if (s == QFS_OK) s = qfs__pd_deploy(d, root, &out->deploy, true, 0);
    if (s != QFS_OK) qfs_skip_cleanup(out);
    return s;
}

/* qfs_skip_cleanup for qfs__pe_checked. */
static void qfs_skip_cleanup_any(void *m)
{
    qfs_skip_cleanup(m);
}

qfs_status qfs_skip_encode(const struct qfs_skip *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_SKIP));
    qfs__pe_str(root, "reason", qfs_skip_reason_str(m->reason));
    qfs__pe_str(root, "detail", m->detail);
    qfs__pe_strn(root, "account", m->account, sizeof(m->account));
    qfs__pe_strn(root, "region", m->region, sizeof(m->region));
    qfs__pe_str(root, "image", m->image);
    qfs__pe_str(root, "digest", m->digest);
    qfs__pe_summary(root, "summary", m->summary);
    qfs__pe_deploy(root, &m->deploy);
    return qfs__pe_checked(root, sizeof(struct qfs_skip), from_json, qfs_skip_cleanup_any,
                           QFS_SCHEMA_SKIP, json_out);
}

qfs_status qfs_skip_decode(const char *json, size_t len, struct qfs_skip *out, char *err,
                           size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), from_json, err, errlen);
}

void qfs_skip_cleanup(struct qfs_skip *m)
{
    if (!m) return;
    free(m->detail);
    free(m->image);
    free(m->digest);
    if (m->summary) {
        qfs_scan_summary_cleanup(m->summary);
        free(m->summary);
    }
    qfs_deploy_cleanup(&m->deploy);
    memset(m, 0, sizeof(*m));
}

/* ---- a deploy's skip list ------------------------------------------------------------------------ */

void qfs_deploy_skips_key(const char *event_id, char *out, size_t n)
{
    snprintf(out, n, "skips:%s", event_id);
}

bool qfs_deploy_skip_is_kept(const struct qfs_skip *s)
{
    return s->reason != QFS_SKIP_CACHED && s->reason != QFS_SKIP_IN_FLIGHT;
}

/* A copy of s of at most max bytes, cut at a character boundary with "..." (max >= 4); NULL
 * stays NULL. */
static char *cut_text(const char *s, size_t max)
{
    if (!s) return NULL;
    if (strlen(s) <= max) return qfs_xstrdup(s);
    size_t k = qfs_utf8_cut(s, max - 3);
    char *out = qfs_xmalloc(k + 4);
    memcpy(out, s, k);
    memcpy(out + k, "...", 4);
    return out;
}

qfs_status qfs_deploy_skip_entry(const struct qfs_skip *s, char **json)
{
    /* Ever smaller forms, until one fits a list element. */
    static const struct {
        size_t text;       /* bytes of image, detail and principal */
        size_t containers; /* names kept */
        bool ecs;          /* task definition, cluster and service kept */
    } levels[] = {
        {SIZE_MAX, QFS_PROTO_MAX_CONTAINERS, true},
        {1024, 50, true},
        {512, 20, true},
        {256, 5, true},
        {128, 0, false},
        {32, 0, false},
    };
    *json = NULL;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        struct qfs_skip c = *s; /* borrowed strings, the cut ones copies */
        char *image = c.image = cut_text(s->image, levels[i].text);
        char *detail = c.detail = cut_text(s->detail, levels[i].text);
        char *principal = c.deploy.principal = cut_text(s->deploy.principal, levels[i].text);
        if (c.deploy.ncontainers > levels[i].containers) c.deploy.ncontainers = levels[i].containers;
        if (!levels[i].ecs) c.deploy.task_definition_arn = c.deploy.cluster = c.deploy.service = NULL;
        char *out = NULL;
        qfs_status st = qfs_skip_encode(&c, &out);
        free(image);
        free(detail);
        free(principal);
        if (st != QFS_OK) return st;
        if (strlen(out) <= QFS_KV_MAX_LIST_VALUE) {
            *json = out;
            return QFS_OK;
        }
        free(out);
    }
    return QFS_TOO_BIG;
}
