/* Shared codec helpers: validating field readers, writers, and the image and deploy parts. */
#include "qfs/proto_codec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

/* ---- string rules ---------------------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool hex_run(const char *s, int n, bool lower_only)
{
    for (int i = 0; i < n; i++) {
        if (!is_hex(s[i])) return false;
        if (lower_only && s[i] >= 'A' && s[i] <= 'F') return false;
    }
    return true;
}

static bool check_qualys_sha(const char *s)
{
    return hex_run(s, 64, true) && s[64] == '\0';
}

static bool check_uuid(const char *s)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    for (int g = 0; g < 5; g++) {
        if (!hex_run(s, groups[g], false)) return false;
        s += groups[g];
        if (g < 4 && *s++ != '-') return false;
    }
    return *s == '\0';
}

/* Counts the characters of s in [A-Za-z0-9_-], stopping at the first other one. */
static size_t name_run(const char *s)
{
    size_t n = 0;
    while (is_alnum(s[n]) || s[n] == '_' || s[n] == '-') n++;
    return n;
}

/* Matches "arn:aws[a-z-]{0,16}:<service>:[a-z0-9-]{1,32}:[0-9]{12}:" and returns what follows, or
 * NULL. When account/region are given, the ARN's are copied there. */
static const char *arn_prefix(const char *s, const char *service)
{
    if (strncmp(s, "arn:aws", 7) != 0) return NULL;
    s += 7;
    int n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || s[n] == '-') n++;
    if (n > 16 || s[n] != ':') return NULL;
    s += n + 1;
    size_t sl = strlen(service);
    if (strncmp(s, service, sl) != 0 || s[sl] != ':') return NULL;
    s += sl + 1;
    n = 0;
    while (is_lower_alnum(s[n]) || s[n] == '-') n++;
    if (n < 1 || n > 32 || s[n] != ':') return NULL;
    s += n + 1;
    for (n = 0; n < 12; n++)
        if (!is_digit(s[n])) return NULL;
    return s[12] == ':' ? s + 13 : NULL;
}

bool qfs_proto_is_task_definition_arn(const char *s)
{
    const char *p = arn_prefix(s, "ecs");
    if (!p || strncmp(p, "task-definition/", 16) != 0) return false;
    p += 16;
    size_t n = name_run(p);
    if (n < 1 || n > 255 || p[n] != ':') return false;
    p += n + 1;
    for (n = 0; is_digit(p[n]); n++) {}
    return n >= 1 && n <= 9 && p[n] == '\0';
}

static bool is_ecs_name(const char *s)
{
    size_t n = name_run(s);
    return n >= 1 && n <= 255 && s[n] == '\0';
}

bool qfs_proto_is_cluster(const char *s)
{
    const char *p = arn_prefix(s, "ecs");
    if (p) return strncmp(p, "cluster/", 8) == 0 && is_ecs_name(p + 8);
    return is_ecs_name(s);
}

bool qfs_proto_is_ecs_service(const char *s)
{
    const char *p = arn_prefix(s, "ecs");
    if (!p) return is_ecs_name(s);
    if (strncmp(p, "service/", 8) != 0) return false;
    p += 8;
    size_t n = name_run(p);
    if (n >= 1 && n <= 255 && p[n] == '/') p += n + 1; /* the cluster name */
    return is_ecs_name(p);
}

bool qfs_proto_is_container_name(const char *s)
{
    return is_ecs_name(s);
}

/* ^[0-9]{12}\.dkr[.-]ecr(-fips)?\.[a-z0-9-]{1,32}\.(amazonaws\.com(\.cn)?|on\.aws)$, with the
 * account and region copied out. */
static bool parse_registry(const char *s, char account[QFS_ACCOUNT_LEN + 1],
                           char region[QFS_REGION_MAX + 1])
{
    for (int i = 0; i < QFS_ACCOUNT_LEN; i++)
        if (!is_digit(s[i])) return false;
    memcpy(account, s, QFS_ACCOUNT_LEN);
    account[QFS_ACCOUNT_LEN] = '\0';
    const char *p = s + QFS_ACCOUNT_LEN;
    if (strncmp(p, ".dkr", 4) != 0 || (p[4] != '.' && p[4] != '-') || strncmp(p + 5, "ecr", 3) != 0)
        return false;
    p += 8;
    if (strncmp(p, "-fips", 5) == 0) p += 5;
    if (*p++ != '.') return false;
    size_t n = 0;
    while (is_lower_alnum(p[n]) || p[n] == '-') n++;
    if (n < 1 || n > QFS_REGION_MAX || p[n] != '.') return false;
    memcpy(region, p, n);
    region[n] = '\0';
    p += n + 1;
    return strcmp(p, "amazonaws.com") == 0 || strcmp(p, "amazonaws.com.cn") == 0 ||
           strcmp(p, "on.aws") == 0;
}

static bool check_registry(const char *s)
{
    char account[QFS_ACCOUNT_LEN + 1], region[QFS_REGION_MAX + 1];
    return parse_registry(s, account, region);
}

/* Docker repository grammar: components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/'. */
static bool check_repository(const char *s)
{
    const char *p = s;
    for (;;) {
        if (!is_lower_alnum(*p)) return false;
        while (is_lower_alnum(*p)) p++;
        if (*p == '\0') return true;
        if (*p == '/') {
            p++;
            continue;
        }
        if (*p == '.') p++;
        else if (*p == '_') p += p[1] == '_' ? 2 : 1;
        else if (*p == '-') while (*p == '-') p++;
        else return false;
        if (!is_lower_alnum(*p)) return false;
    }
}

static bool check_tag(const char *s)
{
    if (!is_alnum(s[0]) && s[0] != '_') return false;
    size_t n = 1;
    for (; s[n]; n++)
        if (!is_alnum(s[n]) && s[n] != '_' && s[n] != '.' && s[n] != '-') return false;
    return n <= 128;
}

/* Printable ASCII; with_space also allows ' '. */
static bool printable(const char *s, bool with_space)
{
    for (; *s; s++)
        if (*s < (with_space ? ' ' : '!') || *s > '~') return false;
    return true;
}

static bool check_image_as_written(const char *s)
{
    return printable(s, false);
}

bool qfs_proto_is_any_event_name(const char *s)
{
    return printable(s, true);
}

static const char *const event_names[] = {"RegisterTaskDefinition", "RunTask", "StartTask",
                                          "CreateService", "UpdateService", "CreateTaskSet",
                                          "ECS Task State Change"};

static bool check_event_name(const char *s)
{
    for (size_t i = 0; i < sizeof(event_names) / sizeof(*event_names); i++)
        if (strcmp(s, event_names[i]) == 0) return true;
    return false;
}

const struct qfs__pd_str qfs__str_account = {12, 12, false, qfs_proto_is_account, "12 digits"};
const struct qfs__pd_str qfs__str_region = {1, QFS_REGION_MAX, false, qfs_proto_is_region,
                                            "[a-z0-9-]+"};
const struct qfs__pd_str qfs__str_service = {1, QFS_SERVICE_MAX, false, qfs_proto_is_service,
                                             "[a-z0-9-]+"};
const struct qfs__pd_str qfs__str_digest = {71, 71, false, qfs_proto_is_digest,
                                            "sha256:<64 lower-case hex digits>"};
const struct qfs__pd_str qfs__str_digest_or_null = {71, 71, true, qfs_proto_is_digest,
                                                    "sha256:<64 lower-case hex digits>"};
const struct qfs__pd_str qfs__str_qualys_sha = {64, 64, false, check_qualys_sha,
                                                "64 lower-case hex digits"};
const struct qfs__pd_str qfs__str_uuid = {36, 36, false, check_uuid, "a UUID"};
const struct qfs__pd_str qfs__str_uuid_or_null = {36, 36, true, check_uuid, "a UUID"};
const struct qfs__pd_str qfs__str_timestamp = {20, 64, false, qfs_proto_is_timestamp,
                                               "an RFC 3339 time such as 2026-05-01T10:00:00Z"};
const struct qfs__pd_str qfs__str_event_id = {1, 128, false, qfs_proto_is_event_id,
                                              "[A-Za-z0-9][A-Za-z0-9._:-]*"};
const struct qfs__pd_str qfs__str_event_id_or_null = {1, 128, true, qfs_proto_is_event_id,
                                                      "[A-Za-z0-9][A-Za-z0-9._:-]*"};
const struct qfs__pd_str qfs__str_text = {1, 2048, false, NULL, NULL};
const struct qfs__pd_str qfs__str_text_or_null = {1, 2048, true, NULL, NULL};
const struct qfs__pd_str qfs__str_short_text_or_null = {1, 256, true, NULL, NULL};

static const struct qfs__pd_str str_registry = {1, 255, false, check_registry,
                                                "an ECR registry host"};
static const struct qfs__pd_str str_repository = {1, 256, false, check_repository,
                                                  "a repository path (lower case, Docker grammar)"};
static const struct qfs__pd_str str_tag_or_null = {1, 128, true, check_tag,
                                                   "[A-Za-z0-9_][A-Za-z0-9_.-]*"};
static const struct qfs__pd_str str_image = {1, 1024, false, check_image_as_written,
                                             "printable ASCII without spaces"};
static const struct qfs__pd_str str_event_name = {1, 64, false, check_event_name,
                                                  "a supported ECS event name"};
static const struct qfs__pd_str str_any_event_name = {1, 128, false, qfs_proto_is_any_event_name,
                                                      "printable ASCII"};
static const struct qfs__pd_str str_task_definition_arn = {1, 1024, true, qfs_proto_is_task_definition_arn,
                                                           "a task definition ARN with revision"};
static const struct qfs__pd_str str_cluster = {1, 1024, true, qfs_proto_is_cluster,
                                               "a cluster name or ARN"};
static const struct qfs__pd_str str_ecs_service = {1, 1024, true, qfs_proto_is_ecs_service,
                                                   "a service name or ARN"};
const struct qfs__pd_str qfs__str_container = {1, 255, false, qfs_proto_is_container_name,
                                                 "[A-Za-z0-9_-]+"};

/* ---- decoding -------------------------------------------------------------------------------- */

void qfs__pd_init(struct qfs__pd *d, char *err, size_t errlen)
{
    d->err = err;
    d->errlen = err ? errlen : 0;
    d->path[0] = '\0';
    d->last = d->last_obj = NULL;
    if (d->errlen) err[0] = '\0';
}

/* obj's member name, the first of that name as cJSON finds it. Messages are written by our
 * encoders, whose field order the decoders follow, so in the object qfs__pd_object last checked
 * (free of duplicate names: a match is the only one) the member after the last one found is tried
 * first, one comparison instead of a walk from the start for every field. */
static const cJSON *find_field(struct qfs__pd *d, const cJSON *obj, const char *name)
{
    if (d->last_obj != obj) return cJSON_GetObjectItemCaseSensitive(obj, name);
    const cJSON *next = d->last ? d->last->next : obj->child;
    const cJSON *item = next && next->string && strcmp(next->string, name) == 0
                            ? next
                            : cJSON_GetObjectItemCaseSensitive(obj, name);
    if (item) d->last = item;
    return item;
}

qfs_status qfs__pd_fail(struct qfs__pd *d, const char *field, const char *fmt, ...)
{
    if (!d->errlen) return QFS_PROTOCOL;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (field && *field) {
        snprintf(d->err, d->errlen, "%s%s: %s", d->path, field, msg);
    } else {
        /* The object itself: its path without the trailing dot, or "message" at the top. */
        size_t n = strlen(d->path);
        if (n) snprintf(d->err, d->errlen, "%.*s: %s", (int)(n - 1), d->path, msg);
        else snprintf(d->err, d->errlen, "message: %s", msg);
    }
    return QFS_PROTOCOL;
}

qfs_status qfs__pd_schema(struct qfs__pd *d, const cJSON *obj, enum qfs_schema schema)
{
    const char *want = qfs_schema_name(schema);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "schema");
    if (!item) return qfs__pd_fail(d, "schema", "missing");
    if (!cJSON_IsString(item) || !item->valuestring || !want || strcmp(item->valuestring, want) != 0)
        return qfs__pd_fail(d, "schema", "expected \"%s\"", want ? want : "");
    return QFS_OK;
}

size_t qfs__pd_enter(struct qfs__pd *d, const char *field, long index)
{
    size_t old = strlen(d->path);
    size_t room = sizeof(d->path) - old;
    if (index >= 0) snprintf(d->path + old, room, "%s[%ld].", field, index);
    else snprintf(d->path + old, room, "%s.", field);
    return old;
}

void qfs__pd_leave(struct qfs__pd *d, size_t old_len)
{
    d->path[old_len] = '\0';
}

qfs_status qfs__pd_parse(struct qfs__pd *d, const char *json, size_t len, size_t max, cJSON **root)
{
    *root = NULL;
    if (!json || len == 0) return qfs__pd_fail(d, NULL, "empty");
    if (len > max) return qfs__pd_fail(d, NULL, "longer than %zu bytes", max);
    if (!qfs_utf8_is_valid(json, len)) return qfs__pd_fail(d, NULL, "not valid UTF-8");
    const char *end = NULL;
    cJSON *r = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!r) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return qfs__pd_fail(d, NULL, "not valid JSON (near byte %zu)", at);
    }
    size_t off = end && end >= json ? (size_t)(end - json) : len;
    while (off < len && (json[off] == ' ' || json[off] == '\t' || json[off] == '\n' ||
                         json[off] == '\r'))
        off++;
    if (off != len) {
        cJSON_Delete(r);
        return qfs__pd_fail(d, NULL, "unexpected data after the JSON value");
    }
    *root = r;
    return QFS_OK;
}

qfs_status qfs__pd_object(struct qfs__pd *d, const cJSON *obj, const char *field,
                          const char *const *keys, size_t nkeys, bool closed)
{
    qfs_assert(nkeys <= 64);
    if (!cJSON_IsObject(obj)) return qfs__pd_fail(d, field, "expected object");
    uint64_t seen = 0;
    size_t from = 0; /* keys are listed in the order encoders write them: search on from the last */
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *name = c->string ? c->string : "";
        size_t i = from, tried = 0;
        while (tried < nkeys && strcmp(name, keys[i]) != 0) {
            i = i + 1 < nkeys ? i + 1 : 0;
            tried++;
        }
        if (tried == nkeys) {
            if (!closed) continue;
            /* Quote at most 48 characters of the name, non-printable bytes as '?'. */
            char shown[49];
            size_t k = 0;
            for (; name[k] && k < sizeof(shown) - 1; k++)
                shown[k] = name[k] >= ' ' && name[k] <= '~' ? name[k] : '?';
            shown[k] = '\0';
            return qfs__pd_fail(d, NULL, "unknown field \"%s\"", shown);
        }
        if (seen & (UINT64_C(1) << i)) return qfs__pd_fail(d, keys[i], "duplicate field");
        seen |= UINT64_C(1) << i;
        from = i + 1 < nkeys ? i + 1 : 0;
    }
    for (size_t i = 0; i < nkeys; i++)
        if (!(seen & (UINT64_C(1) << i))) return qfs__pd_fail(d, keys[i], "missing");
    d->last_obj = obj;
    d->last = NULL;
    return QFS_OK;
}

qfs_status qfs__pd_check_str(struct qfs__pd *d, const char *field, const char *s,
                             const struct qfs__pd_str *rule)
{
    size_t n = qfs_utf8_length(s, strlen(s));
    if (n == SIZE_MAX) return qfs__pd_fail(d, field, "not valid UTF-8");
    if (n < rule->min) return qfs__pd_fail(d, field, "shorter than %zu characters", rule->min);
    if (n > rule->max) return qfs__pd_fail(d, field, "longer than %zu characters", rule->max);
    if (rule->check && !rule->check(s)) return qfs__pd_fail(d, field, "not %s", rule->want);
    return QFS_OK;
}

/* The field as a string item, or NULL for JSON null when the rule allows it. */
static qfs_status get_string(struct qfs__pd *d, const cJSON *obj, const char *name,
                             const struct qfs__pd_str *rule, const char **out)
{
    *out = NULL;
    const cJSON *item = find_field(d, obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    if (cJSON_IsNull(item)) {
        if (rule->nullable) return QFS_OK;
        return qfs__pd_fail(d, name, "expected string, not null");
    }
    if (!cJSON_IsString(item) || !item->valuestring)
        return qfs__pd_fail(d, name, rule->nullable ? "expected string or null" : "expected string");
    qfs_status s = qfs__pd_check_str(d, name, item->valuestring, rule);
    if (s == QFS_OK) *out = item->valuestring;
    return s;
}

qfs_status qfs__pd_str(struct qfs__pd *d, const cJSON *obj, const char *name,
                       const struct qfs__pd_str *rule, char **out)
{
    const char *v;
    qfs_status s = get_string(d, obj, name, rule, &v);
    *out = s == QFS_OK && v ? qfs_xstrdup(v) : NULL;
    return s;
}

qfs_status qfs__pd_str_buf(struct qfs__pd *d, const cJSON *obj, const char *name,
                           const struct qfs__pd_str *rule, char *buf, size_t n)
{
    const char *v;
    buf[0] = '\0';
    qfs_status s = get_string(d, obj, name, rule, &v);
    if (s != QFS_OK || !v) return s;
    if (strlen(v) >= n) return qfs__pd_fail(d, name, "too long");
    memcpy(buf, v, strlen(v) + 1);
    return QFS_OK;
}

qfs_status qfs__pd_int(struct qfs__pd *d, const cJSON *obj, const char *name, int64_t min,
                       int64_t max, int64_t *out)
{
    *out = 0;
    const cJSON *item = find_field(d, obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    int64_t i;
    if (cJSON_IsRaw(item)) {
        /* qfs__pe_int's, checked before printing (parsing never makes a raw item). */
        char *end = NULL;
        errno = 0;
        long long x = strtoll(item->valuestring, &end, 10);
        if (errno || end == item->valuestring || *end) return qfs__pd_fail(d, name, "expected integer");
        i = (int64_t)x;
    } else {
        if (!cJSON_IsNumber(item)) return qfs__pd_fail(d, name, "expected integer");
        double v = item->valuedouble;
        if (!isfinite(v) || v != floor(v)) return qfs__pd_fail(d, name, "expected integer");
        if (v < (double)min || v > (double)max) goto out_of_range;
        i = (int64_t)v;
    }
    if (i < min || i > max) goto out_of_range;
    *out = i;
    return QFS_OK;
out_of_range:
    return qfs__pd_fail(d, name, "out of range %lld..%lld", (long long)min, (long long)max);
}

qfs_status qfs__pd_bool(struct qfs__pd *d, const cJSON *obj, const char *name, bool *out)
{
    *out = false;
    const cJSON *item = find_field(d, obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    if (!cJSON_IsBool(item)) return qfs__pd_fail(d, name, "expected boolean");
    *out = cJSON_IsTrue(item);
    return QFS_OK;
}

qfs_status qfs__pd_enum(struct qfs__pd *d, const cJSON *obj, const char *name,
                        const char *const *names, size_t nnames, bool nullable, int *out)
{
    *out = -1;
    const cJSON *item = find_field(d, obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    if (nullable && cJSON_IsNull(item)) return QFS_OK;
    if (!cJSON_IsString(item) || !item->valuestring)
        return qfs__pd_fail(d, name, nullable ? "expected string or null" : "expected string");
    for (size_t i = 0; i < nnames; i++) {
        if (names[i] && strcmp(item->valuestring, names[i]) == 0) {
            *out = (int)i;
            return QFS_OK;
        }
    }
    return qfs__pd_fail(d, name, "unknown value");
}

qfs_status qfs__pd_array(struct qfs__pd *d, const cJSON *obj, const char *name, size_t min,
                         size_t max, const cJSON **arr, size_t *count)
{
    *arr = NULL;
    *count = 0;
    const cJSON *item = find_field(d, obj, name);
    if (!item) return qfs__pd_fail(d, name, "missing");
    if (!cJSON_IsArray(item)) return qfs__pd_fail(d, name, "expected array");
    size_t n = 0;
    for (const cJSON *c = item->child; c; c = c->next) {
        if (++n > max) return qfs__pd_fail(d, name, "more than %zu items", max);
    }
    if (n < min) return qfs__pd_fail(d, name, "fewer than %zu items", min);
    *arr = item;
    *count = n;
    return QFS_OK;
}

void qfs__strv_free(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

qfs_status qfs__pd_str_array(struct qfs__pd *d, const cJSON *obj, const char *name, size_t min,
                             size_t max, const struct qfs__pd_str *rule, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    const cJSON *arr;
    size_t n;
    qfs_status s = qfs__pd_array(d, obj, name, min, max, &arr, &n);
    if (s != QFS_OK || n == 0) return s;
    char **v = qfs_xcalloc(n, sizeof(char *));
    size_t i = 0;
    char field[96];
    for (const cJSON *c = arr->child; c && s == QFS_OK; c = c->next, i++) {
        snprintf(field, sizeof(field), "%s[%zu]", name, i);
        if (!cJSON_IsString(c) || !c->valuestring) s = qfs__pd_fail(d, field, "expected string");
        else s = qfs__pd_check_str(d, field, c->valuestring, rule);
        if (s == QFS_OK) v[i] = qfs_xstrdup(c->valuestring);
    }
    if (s != QFS_OK) {
        qfs__strv_free(v, n);
        return s;
    }
    *out = v;
    *count = n;
    return QFS_OK;
}

qfs_status qfs__pd_image_id(struct qfs__pd *d, const cJSON *obj, struct qfs_image_id *out)
{
    memset(out, 0, sizeof(*out));
    qfs_status s = qfs__pd_str_buf(d, obj, "account", &qfs__str_account, out->account,
                                   sizeof(out->account));
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, obj, "region", &qfs__str_region, out->region, sizeof(out->region));
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "registry", &str_registry, &out->registry);
    if (s == QFS_OK) {
        char account[QFS_ACCOUNT_LEN + 1], region[QFS_REGION_MAX + 1];
        parse_registry(out->registry, account, region);
        if (strcmp(account, out->account) != 0 || strcmp(region, out->region) != 0)
            s = qfs__pd_fail(d, "registry", "names another account or region than the message");
    }
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "repository", &str_repository, &out->repository);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "tag", &str_tag_or_null, &out->tag);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "digest", &qfs__str_digest_or_null, &out->digest);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "image", &str_image, &out->image);
    if (s == QFS_OK && !out->tag && !out->digest)
        s = qfs__pd_fail(d, "tag", "null while digest is null too");
    if (s != QFS_OK) qfs_image_id_cleanup(out);
    return s;
}

qfs_status qfs__pd_deploy(struct qfs__pd *d, const cJSON *obj, struct qfs_deploy *out,
                          bool any_event_name, size_t min_containers)
{
    memset(out, 0, sizeof(*out));
    qfs_status s = qfs__pd_str(d, obj, "event_name",
                               any_event_name ? &str_any_event_name : &str_event_name,
                               &out->event_name);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "event_id", &qfs__str_event_id, &out->event_id);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "event_time", &qfs__str_timestamp, &out->event_time);
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, obj, "event_account", &qfs__str_account, out->event_account,
                            sizeof(out->event_account));
    if (s == QFS_OK)
        s = qfs__pd_str_buf(d, obj, "event_region", &qfs__str_region, out->event_region,
                            sizeof(out->event_region));
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "principal", &qfs__str_text_or_null, &out->principal);
    if (s == QFS_OK)
        s = qfs__pd_str(d, obj, "task_definition_arn", &str_task_definition_arn,
                        &out->task_definition_arn);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "cluster", &str_cluster, &out->cluster);
    if (s == QFS_OK) s = qfs__pd_str(d, obj, "service", &str_ecs_service, &out->service);
    if (s == QFS_OK)
        s = qfs__pd_str_array(d, obj, "containers", min_containers, QFS_PROTO_MAX_CONTAINERS,
                              &qfs__str_container, &out->containers, &out->ncontainers);
    for (size_t i = 0; s == QFS_OK && i < out->ncontainers; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->containers[i], out->containers[j]) == 0) {
                char field[64];
                snprintf(field, sizeof(field), "containers[%zu]", i);
                s = qfs__pd_fail(d, field, "duplicate name");
                break;
            }
        }
    }
    if (s != QFS_OK) qfs_deploy_cleanup(out);
    return s;
}

qfs_status qfs__pd_deploys(struct qfs__pd *d, const cJSON *obj, struct qfs_deploy **out,
                           size_t *count)
{
    static const char *const keys[] = {QFS__DEPLOY_KEYS};
    *out = NULL;
    *count = 0;
    const cJSON *arr;
    size_t n;
    qfs_status s = qfs__pd_array(d, obj, "deploys", 1, QFS_PROTO_MAX_DEPLOYS, &arr, &n);
    if (s != QFS_OK) return s;
    struct qfs_deploy *v = qfs_xcalloc(n, sizeof(*v));
    size_t i = 0;
    for (const cJSON *c = arr->child; c && s == QFS_OK; c = c->next, i++) {
        size_t old = qfs__pd_enter(d, "deploys", (long)i);
        s = qfs__pd_object(d, c, NULL, keys, sizeof(keys) / sizeof(*keys), true);
        if (s == QFS_OK) s = qfs__pd_deploy(d, c, &v[i], false, 1);
        qfs__pd_leave(d, old);
    }
    if (s != QFS_OK) {
        qfs_deploys_free(v, n);
        return s;
    }
    *out = v;
    *count = n;
    return QFS_OK;
}

/* ---- encoding -------------------------------------------------------------------------------- */

static cJSON *must(cJSON *item)
{
    if (!item) {
        qfs_error("out of memory", "where", "cJSON");
        abort();
    }
    return item;
}

cJSON *qfs__pe_object(void)
{
    return must(cJSON_CreateObject());
}

cJSON *qfs__pe_array(void)
{
    return must(cJSON_CreateArray());
}

void qfs__pe_add(cJSON *obj, const char *name, cJSON *item)
{
    must(item);
    bool ok = name ? cJSON_AddItemToObject(obj, name, item) : cJSON_AddItemToArray(obj, item);
    if (!ok) {
        qfs_error("out of memory", "where", "cJSON");
        abort();
    }
}

void qfs__pe_str(cJSON *obj, const char *name, const char *s)
{
    qfs__pe_add(obj, name, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

void qfs__pe_strn(cJSON *obj, const char *name, const char *buf, size_t size)
{
    char *s = qfs_xstrndup(buf, strnlen(buf, size));
    qfs__pe_str(obj, name, s);
    free(s);
}

/* As the digits themselves: cJSON prints every number with "%1.15g" and reads it back with sscanf
 * to check it, a tenth of the cost of encoding a message with a few counts in it. */
void qfs__pe_int(cJSON *obj, const char *name, int64_t v)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%lld", (long long)v);
    qfs__pe_add(obj, name, cJSON_CreateRaw(digits));
}

void qfs__pe_bool(cJSON *obj, const char *name, bool v)
{
    qfs__pe_add(obj, name, cJSON_CreateBool(v));
}

void qfs__pe_null(cJSON *obj, const char *name)
{
    qfs__pe_add(obj, name, cJSON_CreateNull());
}

void qfs__pe_str_array(cJSON *obj, const char *name, char *const *v, size_t n)
{
    qfs_assert(n == 0 || v);
    cJSON *arr = qfs__pe_array();
    for (size_t i = 0; i < n; i++) qfs__pe_str(arr, NULL, v[i]);
    qfs__pe_add(obj, name, arr);
}

void qfs__pe_image_id(cJSON *obj, const struct qfs_image_id *img)
{
    qfs__pe_strn(obj, "account", img->account, sizeof(img->account));
    qfs__pe_strn(obj, "region", img->region, sizeof(img->region));
    qfs__pe_str(obj, "registry", img->registry);
    qfs__pe_str(obj, "repository", img->repository);
    qfs__pe_str(obj, "tag", img->tag);
    qfs__pe_str(obj, "digest", img->digest);
    qfs__pe_str(obj, "image", img->image);
}

void qfs__pe_deploy(cJSON *obj, const struct qfs_deploy *d)
{
    qfs__pe_str(obj, "event_name", d->event_name);
    qfs__pe_str(obj, "event_id", d->event_id);
    qfs__pe_str(obj, "event_time", d->event_time);
    qfs__pe_strn(obj, "event_account", d->event_account, sizeof(d->event_account));
    qfs__pe_strn(obj, "event_region", d->event_region, sizeof(d->event_region));
    qfs__pe_str(obj, "principal", d->principal);
    qfs__pe_str(obj, "task_definition_arn", d->task_definition_arn);
    qfs__pe_str(obj, "cluster", d->cluster);
    qfs__pe_str(obj, "service", d->service);
    qfs__pe_str_array(obj, "containers", d->containers, d->ncontainers);
}

void qfs__pe_deploys(cJSON *obj, const struct qfs_deploy *deploys, size_t n)
{
    qfs_assert(n == 0 || deploys);
    cJSON *arr = qfs__pe_array();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = qfs__pe_object();
        qfs__pe_deploy(o, &deploys[i]);
        qfs__pe_add(arr, NULL, o);
    }
    qfs__pe_add(obj, "deploys", arr);
}

qfs_status qfs__pe_finish(cJSON *root, qfs_status check, const char *err, enum qfs_schema schema,
                          char **json_out)
{
    *json_out = NULL;
    if (check != QFS_OK) {
        const char *name = qfs_schema_name(schema);
        qfs_error("refusing to encode a message that breaks its schema", "schema",
                  name ? name : "none", "reason", err);
        cJSON_Delete(root);
        return QFS_INVALID_ARG;
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) {
        qfs_error("out of memory", "where", "cJSON");
        abort();
    }
    if (strlen(s) > QFS_PROTO_MAX_BYTES) {
        free(s);
        return QFS_TOO_BIG;
    }
    *json_out = s;
    return QFS_OK;
}

qfs_status qfs__pd_decode(const char *json, size_t len, void *out, size_t size,
                          qfs__from_json_fn from_json, char *err, size_t errlen)
{
    memset(out, 0, size);
    struct qfs__pd d;
    qfs__pd_init(&d, err, errlen);
    cJSON *root;
    qfs_status s = qfs__pd_parse(&d, json, len, QFS_PROTO_MAX_BYTES, &root);
    if (s == QFS_OK) s = from_json(root, out, &d);
    cJSON_Delete(root);
    return s;
}

qfs_status qfs__pe_checked(cJSON *root, size_t size, qfs__from_json_fn from_json,
                           qfs__cleanup_fn cleanup, enum qfs_schema schema, char **json_out)
{
    char err[256];
    struct qfs__pd d;
    qfs__pd_init(&d, err, sizeof(err));
    void *check = qfs_xcalloc(1, size);
    qfs_status s = from_json(root, check, &d);
    cleanup(check);
    free(check);
    return qfs__pe_finish(root, s, err, schema, json_out);
}

/* One deploy as a JSON object, as in a message's deploys[] (for lists kept in the cache store). */
static qfs_status deploy_from_json(const cJSON *root, void *outp, struct qfs__pd *d)
{
    static const char *const keys[] = {QFS__DEPLOY_KEYS};
    qfs_status s = qfs__pd_object(d, root, NULL, keys, sizeof(keys) / sizeof(*keys), true);
    return s == QFS_OK ? qfs__pd_deploy(d, root, outp, false, 1) : s;
}

static void deploy_cleanup_any(void *m)
{
    qfs_deploy_cleanup(m);
}

qfs_status qfs_deploy_encode(const struct qfs_deploy *m, char **json_out)
{
    cJSON *root = qfs__pe_object();
    qfs__pe_deploy(root, m);
    return qfs__pe_checked(root, sizeof(struct qfs_deploy), deploy_from_json, deploy_cleanup_any,
                           QFS_SCHEMA_NONE, json_out);
}

qfs_status qfs_deploy_decode(const char *json, size_t len, struct qfs_deploy *out, char *err,
                             size_t errlen)
{
    return qfs__pd_decode(json, len, out, sizeof(*out), deploy_from_json, err, errlen);
}
