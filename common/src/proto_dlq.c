/* The dead-letter entry codec (qfs.dlq.v1). */
#include "qfs/proto_dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto_codec.h"
#include "qfs/util.h"

/* The last qfs_status value; DLQ entries name any status after QFS_OK. */
#define STATUS_LAST QFS_INTERNAL

static const char *const encoding_names[] = {"utf8", "base64"};

static bool check_subject(const char *s)
{
    for (; *s; s++)
        if (*s < '!' || *s > '~') return false;
    return true;
}

static bool check_header_name(const char *s)
{
    for (; *s; s++)
        if (*s < '!' || *s > '~' || *s == ':') return false;
    return true;
}

static bool check_header_value(const char *s)
{
    return !strpbrk(s, "\r\n");
}

static const struct qfs__pd_str str_subject = {1, 256, true, check_subject,
                                               "printable ASCII without spaces"};
static const struct qfs__pd_str str_header_name = {1, 256, false, check_header_name,
                                                   "a header name"};
static const struct qfs__pd_str str_header_value = {0, 1024, false, check_header_value,
                                                    "a header value without CR or LF"};
/* Lengths of the encoded payload are checked in bytes below. */
static const struct qfs__pd_str str_payload = {0, 699052, false, NULL, NULL};

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict standard base64 with padding. Returns the bytes (caller frees) or NULL. */
static char *b64_decode(const char *s, size_t n, size_t *out_len)
{
    if (n % 4) return NULL;
    char *out = qfs_xmalloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = pad ? -1 : b64_value(s[i + k]);
            if (v[k] < 0) {
                free(out);
                return NULL;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (char)(w >> 16);
        if (pad < 2) out[o++] = (char)(w >> 8);
        if (pad < 1) out[o++] = (char)w;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static void headers_free(struct qfs_dlq_header *h, size_t n)
{
    if (!h) return;
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

static qfs_status headers_from_json(struct qfs__pd *d, const cJSON *root, struct qfs_dlq_entry *out)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "headers");
    if (!obj) return qfs__pd_fail(d, "headers", "missing");
    if (!cJSON_IsObject(obj)) return qfs__pd_fail(d, "headers", "expected object");
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (++n > QFS_DLQ_MAX_HEADERS)
            return qfs__pd_fail(d, "headers", "more than %d headers", QFS_DLQ_MAX_HEADERS);
    if (n == 0) return QFS_OK;
    struct qfs_dlq_header *h = qfs_xcalloc(n, sizeof(*h));
    qfs_status s = QFS_OK;
    size_t i = 0;
    size_t old = qfs__pd_enter(d, "headers", -1);
    for (const cJSON *c = obj->child; c && s == QFS_OK; c = c->next, i++) {
        const char *name = c->string ? c->string : "";
        char field[32];
        snprintf(field, sizeof(field), "[%zu]", i);
        s = qfs__pd_check_str(d, field, name, &str_header_name);
        for (size_t j = 0; s == QFS_OK && j < i; j++)
            if (strcmp(h[j].name, name) == 0) s = qfs__pd_fail(d, field, "duplicate header");
        if (s == QFS_OK && (!cJSON_IsString(c) || !c->valuestring))
            s = qfs__pd_fail(d, field, "expected string");
        if (s == QFS_OK) s = qfs__pd_check_str(d, field, c->valuestring, &str_header_value);
        if (s == QFS_OK) {
            h[i].name = qfs_xstrdup(name);
            h[i].value = qfs_xstrdup(c->valuestring);
        }
    }
    qfs__pd_leave(d, old);
    if (s != QFS_OK) {
        headers_free(h, n);
        return s;
    }
    out->headers = h;
    out->nheaders = n;
    return QFS_OK;
}

static qfs_status from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    struct qfs_dlq_entry *out = outp;
    static const char *const keys[] = {"schema", "service", "reason", "status", "original_subject",
                                       "headers", "payload", "payload_encoding", "payload_size",
                                       "payload_truncated", "delivery_count", "time", "trace_id"};
    const char *status_names[STATUS_LAST + 1];
    for (int i = 0; i <= STATUS_LAST; i++)
        status_names[i] = i == QFS_OK ? NULL : qfs_status_str((qfs_status)i);
    memset(out, 0, sizeof(*out));
    int status = -1, encoding = -1;
    char *payload = NULL;
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    if (s == QFS_OK) s = qfs__pd_schema(d, root, QFS_SCHEMA_DLQ);
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, root, "service", &qfs__str_service, out->service,
                            sizeof(out->service));
    if (s == QFS_OK) s = qfs__pd_str(d, root, "reason", &qfs__str_text, &out->reason);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "status", status_names, STATUS_LAST + 1, false, &status);
    out->status = status < 0 ? QFS_INTERNAL : (qfs_status)status;
    if (s == QFS_OK)
        s = qfs__pd_str(d, root, "original_subject", &str_subject, &out->original_subject);
    if (s == QFS_OK) s = headers_from_json(d, root, out);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "payload", &str_payload, &payload);
    if (s == QFS_OK)
        s = qfs__pd_enum(d, root, "payload_encoding", encoding_names, 2, false, &encoding);
    if (s == QFS_OK && encoding == 1) {
        out->payload_base64 = true;
        out->payload = b64_decode(payload, strlen(payload), &out->payload_len);
        if (!out->payload) s = qfs__pd_fail(d, "payload", "not valid base64");
    } else if (s == QFS_OK) {
        out->payload = payload;
        out->payload_len = strlen(payload);
        payload = NULL;
    }
    free(payload);
    if (s == QFS_OK && out->payload_len > QFS_DLQ_MAX_PAYLOAD)
        s = qfs__pd_fail(d, "payload", "longer than %d bytes", QFS_DLQ_MAX_PAYLOAD);
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "payload_size", 0, QFS__PROTO_INT_MAX, &out->payload_size);
    if (s == QFS_OK) s = qfs__pd_bool(d, root, "payload_truncated", &out->payload_truncated);
    if (s == QFS_OK && !out->payload_truncated && out->payload_size != (int64_t)out->payload_len)
        s = qfs__pd_fail(d, "payload_size", "differs from the payload's length");
    if (s == QFS_OK && out->payload_truncated && out->payload_size <= (int64_t)out->payload_len)
        s = qfs__pd_fail(d, "payload_size", "not longer than the truncated payload");
    if (s == QFS_OK)
        s = qfs__pd_int(d, root, "delivery_count", 0, 1000000, &out->delivery_count);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "time", &qfs__str_timestamp, &out->time);
    if (s == QFS_OK) s = qfs__pd_str(d, root, "trace_id", &qfs__str_event_id_or_null, &out->trace_id);
    if (s != QFS_OK) qfs_dlq_entry_cleanup(out);
    return s;
}

/* True when p can travel as JSON text: valid UTF-8 without NUL bytes. */
static bool is_text(const char *p, size_t n)
{
    return !memchr(p, '\0', n) && qfs_utf8_is_valid(p, n);
}

/* qfs_dlq_entry_cleanup for qfs__pe_checked. */
static void qfs_dlq_entry_cleanup_any(void *m)
{
    qfs_dlq_entry_cleanup(m);
}

static qfs_status encode(const struct qfs_dlq_entry *m, bool force_base64, char **json_out)
{
    qfs_assert(m->payload || m->payload_len == 0);
    const char *p = m->payload ? m->payload : "";
    size_t n = m->payload_len;
    bool truncated = m->payload_truncated;
    int64_t size = truncated ? m->payload_size : (int64_t)n;
    if (n > QFS_DLQ_MAX_PAYLOAD) {
        truncated = true;
        size = (int64_t)n;
        size_t cut = QFS_DLQ_MAX_PAYLOAD;
        if (qfs_utf8_is_valid(p, n))
            while (cut > 0 && ((unsigned char)p[cut] & 0xC0) == 0x80) cut--;
        n = cut;
    }
    bool base64 = force_base64 || m->payload_base64 || !is_text(p, n);

    cJSON *root = qfs__pe_object();
    qfs__pe_str(root, "schema", qfs_schema_name(QFS_SCHEMA_DLQ));
    qfs__pe_strn(root, "service", m->service, sizeof(m->service));
    qfs__pe_str(root, "reason", m->reason);
    qfs__pe_str(root, "status", m->status == QFS_OK ? NULL : qfs_status_str(m->status));
    qfs__pe_str(root, "original_subject", m->original_subject);
    qfs_assert(m->nheaders == 0 || m->headers);
    cJSON *h = qfs__pe_object();
    for (size_t i = 0; i < m->nheaders; i++)
        qfs__pe_str(h, m->headers[i].name ? m->headers[i].name : "", m->headers[i].value);
    qfs__pe_add(root, "headers", h);
    char *text = base64 ? qfs_base64_encode(p, n) : qfs_xstrndup(p, n);
    qfs__pe_str(root, "payload", text);
    free(text);
    qfs__pe_str(root, "payload_encoding", base64 ? "base64" : "utf8");
    qfs__pe_int(root, "payload_size", size);
    qfs__pe_bool(root, "payload_truncated", truncated);
    qfs__pe_int(root, "delivery_count", m->delivery_count);
    qfs__pe_str(root, "time", m->time);
    qfs__pe_str(root, "trace_id", m->trace_id);

    return qfs__pe_checked(root, sizeof(struct qfs_dlq_entry), from_json, qfs_dlq_entry_cleanup_any,
                           QFS_SCHEMA_DLQ, json_out);
}

qfs_status qfs_dlq_entry_encode(const struct qfs_dlq_entry *m, char **json_out)
{
    qfs_status s = encode(m, false, json_out);
    /* Text full of control characters grows six-fold when escaped; base64 stays within bounds. */
    if (s == QFS_TOO_BIG) s = encode(m, true, json_out);
    return s;
}

qfs_status qfs_dlq_entry_decode(const char *json, size_t len, struct qfs_dlq_entry *out, char *err,
                                size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), from_json, err, errlen);
}

void qfs_dlq_entry_cleanup(struct qfs_dlq_entry *m)
{
    if (!m) return;
    free(m->reason);
    free(m->original_subject);
    headers_free(m->headers, m->nheaders);
    free(m->payload);
    free(m->time);
    free(m->trace_id);
    memset(m, 0, sizeof(*m));
}
