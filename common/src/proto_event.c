/* The event envelope codec (qfs.event.v1): EventBridge's format, checked and kept whole. */
#include "qfs/proto_event.h"

#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/proto_codec.h"
#include "qfs/util.h"

static bool check_version(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

static const struct qfs__pd_str str_version = {1, 8, false, check_version, "digits"};
static const struct qfs__pd_str str_detail_type = {1, 128, false, NULL, NULL};
static const struct qfs__pd_str str_source = {1, 256, false, NULL, NULL};

/* The type a detail field must have when present: the CloudTrail record fields qfs reads. */
static qfs_status check_detail(struct qfs__pd *d, const cJSON *detail)
{
    static const struct {
        const char *name;
        int types; /* cJSON type bits */
    } fields[] = {
        {"eventName", cJSON_String},       {"eventID", cJSON_String},
        {"eventTime", cJSON_String},       {"awsRegion", cJSON_String},
        {"recipientAccountId", cJSON_String}, {"userIdentity", cJSON_Object},
        {"requestParameters", cJSON_Object | cJSON_NULL},
        {"responseElements", cJSON_Object | cJSON_NULL},
        {"errorCode", cJSON_String},       {"errorMessage", cJSON_String},
    };
    size_t old = qfs__pd_enter(d, "detail", -1);
    qfs_status s = QFS_OK;
    for (size_t i = 0; s == QFS_OK && i < sizeof(fields) / sizeof(*fields); i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(detail, fields[i].name);
        if (item && !(item->type & 0xFF & fields[i].types))
            s = qfs__pd_fail(d, fields[i].name, "wrong type");
    }
    qfs__pd_leave(d, old);
    return s;
}

static qfs_status from_json(const cJSON *root, struct qfs_event *out, struct qfs__pd *d)
{
    static const char *const keys[] = {"version", "id", "detail-type", "source", "account", "time",
                                       "region", "detail"};
    memset(out, 0, sizeof(*out));
    char *version = NULL;
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), false);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "version", &str_version, &version);
    free(version);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "id", &qfs__str_event_id, &out->id);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "detail-type", &str_detail_type, &out->detail_type);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "source", &str_source, &out->source);
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, root, "account", &qfs__str_account, out->account,
                            sizeof(out->account));
    if (s == QFS_OK) s = qfs__pd_str(d, root, "time", &qfs__str_timestamp, &out->time);
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, root, "region", &qfs__str_region, out->region, sizeof(out->region));
    const cJSON *resources = cJSON_GetObjectItemCaseSensitive(root, "resources");
    if (s == QFS_OK && resources) {
        if (!cJSON_IsArray(resources)) s = qfs__pd_fail(d, "resources", "expected array");
        for (const cJSON *c = resources->child; s == QFS_OK && c; c = c->next)
            if (!cJSON_IsString(c)) s = qfs__pd_fail(d, "resources", "expected array of strings");
    }
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(root, "detail");
    if (s == QFS_OK && !cJSON_IsObject(detail)) s = qfs__pd_fail(d, "detail", "expected object");
    if (s == QFS_OK) s = check_detail(d, detail);
    if (s == QFS_OK) out->detail = detail;
    if (s != QFS_OK) qfs_event_cleanup(out);
    return s;
}

qfs_status qfs_event_decode(const char *json, size_t len, struct qfs_event *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct qfs__pd d;
    qfs__pd_init(&d, err, errlen);
    cJSON *root;
    qfs_status s = qfs__pd_parse(&d, json, len, QFS_EVENT_MAX_BYTES, &root);
    if (s == QFS_OK) s = from_json(root, out, &d);
    if (s == QFS_OK) out->root = root;
    else cJSON_Delete(root);
    return s;
}

qfs_status qfs_event_encode(const struct qfs_event *m, char **json_out)
{
    *json_out = NULL;
    if (!m->root) return QFS_INVALID_ARG;
    cJSON *copy = cJSON_Duplicate(m->root, 1);
    if (!copy) {
        qfs_error("out of memory", "where", "cJSON");
        abort();
    }
    char err[256];
    struct qfs__pd d;
    qfs__pd_init(&d, err, sizeof(err));
    struct qfs_event check;
    qfs_status s = from_json(copy, &check, &d);
    qfs_event_cleanup(&check);
    return qfs__pe_finish(copy, s, err, QFS_SCHEMA_EVENT, json_out);
}

void qfs_event_cleanup(struct qfs_event *m)
{
    if (!m) return;
    free(m->id);
    free(m->detail_type);
    free(m->source);
    free(m->time);
    cJSON_Delete(m->root);
    memset(m, 0, sizeof(*m));
}

char *qfs_event_from_cloudtrail_record(const cJSON *rec)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "eventID");
    const cJSON *acct = cJSON_GetObjectItemCaseSensitive(rec, "recipientAccountId");
    const cJSON *region = cJSON_GetObjectItemCaseSensitive(rec, "awsRegion");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "eventTime");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(rec, "eventSource");
    cJSON *env = cJSON_CreateObject();
    cJSON_AddStringToObject(env, "version", "0");
    cJSON_AddStringToObject(env, "id", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_AddStringToObject(env, "detail-type", "AWS API Call via CloudTrail");
    cJSON_AddStringToObject(env, "source",
                            cJSON_IsString(src) && strcmp(src->valuestring, "ecs.amazonaws.com") == 0
                                ? "aws.ecs" : "aws.cloudtrail");
    cJSON_AddStringToObject(env, "account", cJSON_IsString(acct) ? acct->valuestring : "");
    cJSON_AddStringToObject(env, "time", cJSON_IsString(t) ? t->valuestring : "");
    cJSON_AddStringToObject(env, "region", cJSON_IsString(region) ? region->valuestring : "");
    cJSON_AddItemToObject(env, "resources", cJSON_CreateArray());
    cJSON_AddItemToObject(env, "detail", cJSON_Duplicate(rec, true));
    char *text = cJSON_PrintUnformatted(env);
    cJSON_Delete(env);
    qfs_assert(text);
    return text;
}

static qfs_status add_text(struct qfs_event_text **out, size_t *n, size_t max, char *text, size_t len)
{
    if (*n >= max) {
        free(text);
        return QFS_TOO_BIG;
    }
    *out = qfs_xrealloc(*out, (*n + 1) * sizeof(**out));
    (*out)[*n].text = text;
    (*out)[*n].len = len;
    (*n)++;
    return QFS_OK;
}

qfs_status qfs_event_texts(const char *text, size_t len, size_t max, struct qfs_event_text **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *records = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "Records") : NULL;
    const cJSON *messages = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "Messages") : NULL;
    const cJSON *body = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "Body") : NULL;
    const cJSON *item;
    qfs_status s = QFS_OK;
    if (cJSON_IsArray(records)) {
        cJSON_ArrayForEach(item, records) {
            if (s != QFS_OK) break;
            char *env = qfs_event_from_cloudtrail_record(item);
            s = add_text(out, n, max, env, strlen(env));
        }
    } else if (cJSON_IsArray(messages)) {
        cJSON_ArrayForEach(item, messages) {
            if (s != QFS_OK) break;
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(item, "Body");
            const char *t = cJSON_IsString(b) ? b->valuestring : "";
            s = add_text(out, n, max, qfs_xstrdup(t), strlen(t));
        }
    } else if (cJSON_IsString(body)) {
        s = add_text(out, n, max, qfs_xstrdup(body->valuestring), strlen(body->valuestring));
    } else {
        s = add_text(out, n, max, qfs_xstrndup(text, len), len);
    }
    cJSON_Delete(root);
    if (s != QFS_OK) {
        qfs_event_texts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return s;
}

void qfs_event_texts_free(struct qfs_event_text *t, size_t n)
{
    for (size_t i = 0; i < n; i++) free(t[i].text);
    free(t);
}
