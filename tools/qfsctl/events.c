/* Event files for inject, and where a DLQ entry goes when it is replayed. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/proto_event.h"
#include "qfsctl.h"

char *qfsctl_cloudtrail_envelope(const cJSON *rec)
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
    if (!text) qfs_assert(!"cJSON_PrintUnformatted failed");
    return text;
}

static qfs_status add(struct qfsctl_event_text **out, size_t *n, size_t max, char *text, size_t len)
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

/* The text compacted when it is JSON, else the bytes as they are (the decoder says what is wrong). */
static qfs_status add_text(struct qfsctl_event_text **out, size_t *n, size_t max, const char *s, size_t len)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    if (qfsctl_json_compact(s, len, &b) != QFS_OK) {
        qfs_buf_reset(&b);
        qfs_buf_append(&b, s, len);
    }
    size_t blen = b.len;
    char *text = qfs_buf_take(&b);
    return add(out, n, max, text ? text : qfs_xstrdup(""), blen);
}

qfs_status qfsctl_event_texts(const char *text, size_t len, size_t max, struct qfsctl_event_text **out,
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
            char *env = qfsctl_cloudtrail_envelope(item);
            s = add(out, n, max, env, strlen(env));
        }
    } else if (cJSON_IsArray(messages)) {
        cJSON_ArrayForEach(item, messages) {
            if (s != QFS_OK) break;
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(item, "Body");
            const char *t = cJSON_IsString(b) ? b->valuestring : "";
            s = add_text(out, n, max, t, strlen(t));
        }
    } else if (cJSON_IsString(body)) {
        s = add_text(out, n, max, body->valuestring, strlen(body->valuestring));
    } else {
        s = add_text(out, n, max, text, len);
    }
    cJSON_Delete(root);
    if (s != QFS_OK) {
        qfsctl_event_texts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return s;
}

void qfsctl_event_texts_free(struct qfsctl_event_text *t, size_t n)
{
    for (size_t i = 0; i < n; i++) free(t[i].text);
    free(t);
}

/* ---- DLQ replay -------------------------------------------------------------------------------- */

const char *qfsctl_dlq_header(const struct qfs_dlq_entry *e, const char *name)
{
    for (size_t i = 0; i < e->nheaders; i++)
        if (strcasecmp(e->headers[i].name, name) == 0) return e->headers[i].value;
    return NULL;
}

qfs_status qfsctl_dlq_replay_subject(const struct qfs_dlq_entry *e, char subject[QFS_SUBJECT_MAX],
                                     char *err, size_t errlen)
{
    subject[0] = '\0';
    if (e->payload_truncated) {
        snprintf(err, errlen, "the entry keeps only %zu of the payload's %lld bytes, so it cannot be "
                 "replayed; send the original again (qfsctl inject)", e->payload_len, (long long)e->payload_size);
        return QFS_PROTOCOL;
    }
    if (e->original_subject) {
        struct qfs_subject_parts p;
        if (qfs_subject_parse(e->original_subject, &p) != QFS_OK || !qfs_subject_is_stored(p.kind) ||
            p.kind == QFS_SUBJECT_DLQ) {
            snprintf(err, errlen, "the original subject %.100s is not a qfs subject that can be replayed",
                     e->original_subject);
            return QFS_PROTOCOL;
        }
        snprintf(subject, QFS_SUBJECT_MAX, "%s", e->original_subject);
        return QFS_OK;
    }
    /* Ingest read it from SQS: it goes where ingest would have published the event. */
    struct qfs_event ev;
    char why[200];
    if (qfs_event_decode(e->payload, e->payload_len, &ev, why, sizeof(why)) != QFS_OK) {
        snprintf(err, errlen, "the payload is not an EventBridge event (%s): fix it and send it with "
                 "qfsctl inject", why);
        return QFS_PROTOCOL;
    }
    qfs_status s = qfs_subject_format(subject, QFS_SUBJECT_MAX, QFS_SUBJECT_EVENTS, ev.account, ev.region);
    qfs_event_cleanup(&ev);
    if (s != QFS_OK) snprintf(err, errlen, "the event's account or region cannot make a subject");
    return s == QFS_OK ? QFS_OK : QFS_PROTOCOL;
}
