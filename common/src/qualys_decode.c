/* Qualys CS wire format: request values checked and encoded, responses decoded with bounds. Pure. */
#include "qfs/qualys.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/aws.h"
#include "qfs/log.h"

#define MAX_PAGE_ROWS 1000     /* entries one list page may hold */
#define MAX_CONNECTORS 1000
#define MAX_VULN_DETAILS 50000 /* details[] entries of one image */
#define MAX_TOKEN 16384
#define MAX_CREDENTIAL 4096
#define MAX_SEVERITY_COUNT 1000000
#define DEFAULT_LIFETIME_MS (4LL * 3600 * 1000)
#define MAX_EXACT_INT 9007199254740992.0 /* 2^53 */

/* Parses a whole body: one JSON value and nothing after it but whitespace (cJSON alone would
 * accept "0e6b1d0f-..." as the number 0e6). NULL when it is not that. */
static cJSON *parse_json(const char *body, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) return NULL;
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

/* ---- request values ------------------------------------------------------------------------ */

static bool all_of(const char *s, size_t min, size_t max, const char *extra, bool upper)
{
    if (!s) return false;
    size_t n = strlen(s);
    if (n < min || n > max) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
                  (c != '\0' && strchr(extra, c) != NULL);
        if (!ok) return false;
    }
    return true;
}

bool qfs_qualys_repository_is_valid(const char *s)
{
    return all_of(s, 1, 256, "._/-", false);
}

bool qfs_qualys_tag_is_valid(const char *s)
{
    return all_of(s, 1, 128, "_.-", true);
}

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return false;
    return true;
}

bool qfs_qualys_sha_is_valid(const char *s)
{
    if (s && strncmp(s, "sha256:", 7) == 0) s += 7;
    return is_hex64(s);
}

bool qfs_qualys_host_is_valid(const char *s)
{
    if (!s) return false;
    const char *colon = strchr(s, ':');
    size_t hn = colon ? (size_t)(colon - s) : strlen(s);
    if (hn == 0 || hn > 253 || s[0] == '.' || s[0] == '-') return false;
    for (size_t i = 0; i < hn; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-'))
            return false;
    }
    if (!colon) return true;
    const char *port = colon + 1;
    size_t pn = strlen(port);
    if (pn == 0 || pn > 5) return false;
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

bool qfs_qualys_uuid_is_valid(const char *s)
{
    return all_of(s, 1, 63, "-", true);
}

qfs_status qfs_qualys_ecr_registry_uri(const char *account, const char *region, char *out, size_t n)
{
    if (!account || strlen(account) != 12 || strspn(account, "0123456789") != 12 ||
        !qfs_aws_region_is_valid(region))
        return QFS_PROTOCOL;
    int w = snprintf(out, n, "https://%s.dkr.ecr.%s.amazonaws.com%s", account, region,
                     strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    return w > 0 && (size_t)w < n ? QFS_OK : QFS_TOO_BIG;
}

qfs_status qfs_qualys_image_filter(const char *host, const char *repository, const char *tag,
                                   struct qfs_buf *out)
{
    /* Validation is what keeps each value inside its quotes: none of the allowed characters is a
     * quote, a backslash, a space or a '%'. */
    if (!qfs_qualys_host_is_valid(host) || !qfs_qualys_repository_is_valid(repository) ||
        !qfs_qualys_tag_is_valid(tag))
        return QFS_PROTOCOL;
    return qfs_buf_printf(out, "repo.registry:\"%s\" and repo.repository:\"%s\" and repo.tag:\"%s\"",
                          host, repository, tag);
}

qfs_status qfs_qualys_url_escape(const char *value, struct qfs_buf *out)
{
    size_t len = strlen(value);
    if (len > 65536) return QFS_TOO_BIG;
    return qfs_aws_form_escape(value, len, out);
}

qfs_status qfs_qualys_auth_form(const char *username, const char *password, struct qfs_buf *out)
{
    if (!username || !password || !*username || !*password || strlen(username) > MAX_CREDENTIAL ||
        strlen(password) > MAX_CREDENTIAL)
        return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_puts(out, "username=");
    if (st == QFS_OK) st = qfs_qualys_url_escape(username, out);
    if (st == QFS_OK) st = qfs_buf_puts(out, "&password=");
    if (st == QFS_OK) st = qfs_qualys_url_escape(password, out);
    if (st == QFS_OK) st = qfs_buf_puts(out, "&token=true");
    return st;
}

/* ---- waits and tokens ---------------------------------------------------------------------- */

/* Seconds (digits, an optional fraction) as milliseconds, capped at a day. */
static bool parse_seconds(const char *s, uint64_t *ms)
{
    if (!s) return false;
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return false;
    uint64_t whole = 0, frac = 0, scale = 1000;
    while (*s >= '0' && *s <= '9') {
        if (whole < 86400) whole = whole * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(*s - '0') * scale;
            }
            s++;
        }
    }
    while (*s == ' ' || *s == '\t') s++;
    if (*s) return false;
    if (whole > 86400) whole = 86400;
    *ms = whole * 1000 + frac;
    return true;
}

uint64_t qfs_qualys_throttle_wait_ms(const char *to_wait_sec, const char *retry_after,
                                     const char *window_sec, int64_t now_ms)
{
    uint64_t ms = 0;
    if (!parse_seconds(to_wait_sec, &ms) && !qfs_http_parse_retry_after(retry_after, now_ms, &ms) &&
        !parse_seconds(window_sec, &ms))
        ms = 60000;
    if (ms > 86400000) ms = 86400000;
    return ms < 250 ? 250 : ms; /* "now" still means a pause: never a tight loop */
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
}

int64_t qfs_qualys_jwt_exp_ms(const char *jwt)
{
    if (!jwt) return 0;
    const char *p = strchr(jwt, '.');
    const char *end = p ? strchr(p + 1, '.') : NULL;
    if (!p || !end || end - p - 1 > 8192) return 0;
    p++;
    char payload[6200];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; p < end; p++) {
        if (*p == '=') break;
        int v = b64url_value(*p);
        if (v < 0) return 0;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= sizeof(payload)) return 0;
            payload[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    cJSON *root = parse_json(payload, n);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "exp");
    int64_t ms = 0;
    if (cJSON_IsNumber(exp) && exp->valuedouble > 0 && exp->valuedouble < 1e11)
        ms = (int64_t)exp->valuedouble * 1000;
    cJSON_Delete(root);
    return ms;
}

int64_t qfs_qualys_renew_at_ms(int64_t now_ms, int64_t exp_ms, unsigned renew_before_ms)
{
    int64_t lifetime = exp_ms > 0 ? exp_ms - now_ms : DEFAULT_LIFETIME_MS;
    int64_t margin = renew_before_ms;
    if (margin > lifetime / 2) margin = lifetime / 2;
    int64_t at = now_ms + lifetime - margin;
    return at < now_ms + 1000 ? now_ms + 1000 : at;
}

/* ---- text from outside --------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
                           : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > left) return 0;
    return qfs_utf8_is_valid((const char *)p, n) ? n : 0;
}

/* Copies text meant for people (titles, messages): cut on a character boundary to fit n, control
 * characters made spaces, bytes that are not UTF-8 made '?'. */
static void copy_text_n(char *dst, size_t n, const char *src, size_t len)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)src;
    size_t i = 0;
    while (i < len && o + 1 < n) {
        size_t k = utf8_seq(p + i, len - i);
        if (k == 0) {
            dst[o++] = '?';
            i++;
            continue;
        }
        if (o + k >= n) break;
        if (k == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
            dst[o++] = ' ';
        } else {
            memcpy(dst + o, p + i, k);
            o += k;
        }
        i += k;
    }
    dst[o] = '\0';
}

static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* An integer from a number or a string of digits; false for anything else or past 2^53. */
static bool int_of(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || fabs(d) > MAX_EXACT_INT) return false;
        *out = (int64_t)d;
        return true;
    }
    if (!cJSON_IsString(v) || !v->valuestring) return false;
    const char *s = v->valuestring;
    bool neg = *s == '-';
    if (neg) s++;
    size_t n = strlen(s);
    if (n == 0 || n > 15 || strspn(s, "0123456789") != n) return false;
    *out = strtoll(s, NULL, 10) * (neg ? -1 : 1);
    return true;
}

/* Epoch ms from a string or a number; 0 for null, absent or nonsense. */
static int64_t ms_of(const cJSON *obj, const char *key)
{
    int64_t v = 0;
    if (!int_of(member(obj, key), &v) || v < 0) return 0;
    return v;
}

/* Display text from a string (or an integer written as text); "" otherwise. */
static void text_of(const cJSON *v, char *dst, size_t n)
{
    int64_t i;
    dst[0] = '\0';
    if (cJSON_IsString(v) && v->valuestring) copy_text_n(dst, n, v->valuestring, strlen(v->valuestring));
    else if (cJSON_IsNumber(v) && int_of(v, &i)) snprintf(dst, n, "%lld", (long long)i);
}

/* An identifier copied only when it is a string that fits whole and passes ok(). */
static bool id_of(const cJSON *v, char *dst, size_t n, bool (*ok)(const char *))
{
    dst[0] = '\0';
    if (!cJSON_IsString(v) || !v->valuestring) return false;
    size_t len = strlen(v->valuestring);
    if (len >= n || (ok && !ok(v->valuestring))) return false;
    memcpy(dst, v->valuestring, len + 1);
    return true;
}

void qfs_qualys_decode_error(const char *body, size_t len, struct qfs_qualys_error *out)
{
    out->code[0] = out->message[0] = '\0';
    if (!body || len == 0) return;
    cJSON *root = parse_json(body, len);
    if (cJSON_IsObject(root)) {
        text_of(member(root, "errorCode"), out->code, sizeof(out->code));
        text_of(member(root, "message"), out->message, sizeof(out->message));
        if (!out->message[0]) text_of(member(root, "error"), out->message, sizeof(out->message));
    } else {
        copy_text_n(out->message, 201 < sizeof(out->message) ? 201 : sizeof(out->message), body, len);
    }
    cJSON_Delete(root);
}

static bool token_char_ok(const char *s)
{
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '\\') return false;
    return true;
}

qfs_status qfs_qualys_decode_token(const char *body, size_t len, char **jwt)
{
    *jwt = NULL;
    while (len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) body++, len--;
    while (len && (body[len - 1] == ' ' || body[len - 1] == '\t' || body[len - 1] == '\r' ||
                   body[len - 1] == '\n'))
        len--;
    if (len == 0 || len > MAX_TOKEN || memchr(body, '\0', len)) return QFS_PROTOCOL;
    char *t = qfs_xstrndup(body, len);
    if (!token_char_ok(t) || t[0] == '{' || t[0] == '<') {
        explicit_bzero(t, len);
        free(t);
        return QFS_PROTOCOL;
    }
    qfs_log_add_secret(t);
    *jwt = t;
    return QFS_OK;
}

static char *secret_string(const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);
    if (!cJSON_IsString(v) || !v->valuestring || !*v->valuestring ||
        strlen(v->valuestring) > MAX_CREDENTIAL)
        return NULL;
    qfs_log_add_secret(v->valuestring);
    return qfs_xstrdup(v->valuestring);
}

qfs_status qfs_qualys_decode_secret(const char *secret, char **token, char **username,
                                    char **password)
{
    *token = *username = *password = NULL;
    if (!secret) return QFS_PROTOCOL;
    cJSON *root = parse_json(secret, strlen(secret));
    qfs_status st = QFS_PROTOCOL;
    if (cJSON_IsObject(root)) {
        *token = secret_string(root, "token");
        if (!*token) *token = secret_string(root, "api_token");
        if (!*token) {
            *username = secret_string(root, "username");
            *password = secret_string(root, "password");
        }
        st = *token || (*username && *password) ? QFS_OK : QFS_PROTOCOL;
    } else if (!root && *secret && strlen(secret) <= MAX_TOKEN && token_char_ok(secret)) {
        /* A plain-text secret is the token itself. */
        qfs_log_add_secret(secret);
        *token = qfs_xstrdup(secret);
        st = QFS_OK;
    }
    cJSON_Delete(root);
    if (st != QFS_OK) {
        if (*username) explicit_bzero(*username, strlen(*username));
        if (*password) explicit_bzero(*password, strlen(*password));
        free(*username);
        free(*password);
        *username = *password = NULL;
    }
    return st;
}

/* ---- aws-base ------------------------------------------------------------------------------ */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* Skips one JSON value of a document cJSON has already accepted. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && !strchr(",}] \t\r\n", *p)) p++;
    return p;
}

/* The raw text of member key of the top-level object (the first one, as cJSON picks). */
static bool raw_member(const char *body, size_t len, const char *key, const char **val, size_t *vlen)
{
    const char *p = skip_ws(body, body + len), *end = body + len;
    size_t klen = strlen(key);
    if (p >= end || *p != '{') return false;
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return false;
        const char *k = p + 1;
        p = skip_string(p, end);
        if (!p) return false;
        bool hit = (size_t)(p - 1 - k) == klen && memcmp(k, key, klen) == 0;
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return false;
        p = skip_ws(p + 1, end);
        const char *v = p;
        p = skip_value(p, end);
        if (!p) return false;
        if (hit) {
            *val = v;
            *vlen = (size_t)(p - v);
            return true;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',') return false;
        p++;
    }
}

static bool external_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("+=,.@:/_-", c);
}

/* A member that may be a JSON string or number, as its exact text: numbers must be plain
 * digits (no sign, fraction or exponent), strings must pass ok. */
static qfs_status exact_text(const char *body, size_t len, const cJSON *root, const char *key,
                             char *out, size_t n, bool (*ok)(char))
{
    const cJSON *v = member(root, key);
    const char *src;
    size_t slen;
    if (cJSON_IsString(v) && v->valuestring) {
        src = v->valuestring;
        slen = strlen(src);
        for (size_t i = 0; i < slen; i++)
            if (!ok(src[i])) return QFS_PROTOCOL;
    } else if (cJSON_IsNumber(v)) {
        if (!raw_member(body, len, key, &src, &slen)) return QFS_PROTOCOL;
        for (size_t i = 0; i < slen; i++)
            if (src[i] < '0' || src[i] > '9') return QFS_PROTOCOL;
    } else {
        return QFS_PROTOCOL;
    }
    if (slen == 0 || slen >= n) return QFS_PROTOCOL;
    memcpy(out, src, slen);
    out[slen] = '\0';
    return QFS_OK;
}

static bool digit_char(char c)
{
    return c >= '0' && c <= '9';
}

qfs_status qfs_qualys_decode_aws_base(const char *body, size_t len, struct qfs_qualys_aws_base *out)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_json(body, len);
    qfs_status st = cJSON_IsObject(root) ? QFS_OK : QFS_PROTOCOL;
    char account[16];
    if (st == QFS_OK) st = exact_text(body, len, root, "accountId", account, 13, digit_char);
    if (st == QFS_OK) {
        /* An account ID sent as a number loses its leading zeros; AWS IDs are 12 digits. */
        size_t n = strlen(account);
        memset(out->account_id, '0', 12 - n);
        memcpy(out->account_id + 12 - n, account, n + 1);
    }
    if (st == QFS_OK)
        st = exact_text(body, len, root, "externalId", out->external_id, 65, external_id_char);
    cJSON_Delete(root);
    if (st != QFS_OK) memset(out, 0, sizeof(*out));
    return st;
}

/* ---- lists --------------------------------------------------------------------------------- */

/* The rows of a list body: a top-level array or {"data": [...]}; data null means none. */
static qfs_status list_rows(const cJSON *root, size_t max, const cJSON **arr, size_t *n)
{
    *arr = NULL;
    *n = 0;
    const cJSON *a = root;
    if (cJSON_IsObject(root)) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
        if (!d || cJSON_IsNull(d)) return d ? QFS_OK : QFS_PROTOCOL;
        a = d;
    }
    if (!cJSON_IsArray(a)) return QFS_PROTOCOL;
    int size = cJSON_GetArraySize(a);
    if (size < 0 || (size_t)size > max) return QFS_TOO_BIG;
    *arr = a;
    *n = (size_t)size;
    return QFS_OK;
}

static bool arn_ok(const char *s)
{
    return strncmp(s, "arn:", 4) == 0 && token_char_ok(s);
}

qfs_status qfs_qualys_decode_connectors(const char *body, size_t len,
                                        struct qfs_qualys_connector **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (len == 0) return QFS_OK;
    cJSON *root = parse_json(body, len);
    const cJSON *arr;
    size_t rows;
    qfs_status st = root ? list_rows(root, MAX_CONNECTORS, &arr, &rows) : QFS_PROTOCOL;
    if (st == QFS_OK && rows) {
        *items = qfs_xcalloc(rows, sizeof(**items));
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            struct qfs_qualys_connector *c = &(*items)[*n];
            if (!id_of(member(it, "arn"), c->arn, sizeof(c->arn), arn_ok)) continue;
            text_of(member(it, "name"), c->name, sizeof(c->name));
            text_of(member(it, "description"), c->description, sizeof(c->description));
            (*n)++;
        }
    }
    cJSON_Delete(root);
    if (st != QFS_OK) {
        free(*items);
        *items = NULL;
        *n = 0;
    }
    return st;
}

/* A registry URI reduced to its host: scheme and trailing '/' removed, lower case. */
static void uri_host(const char *uri, char *out, size_t n)
{
    const char *p = strstr(uri, "://");
    p = p ? p + 3 : uri;
    size_t len = strlen(p);
    while (len && p[len - 1] == '/') len--;
    if (len >= n) len = n - 1;
    for (size_t i = 0; i < len; i++) out[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] + 32) : p[i];
    out[len] = '\0';
}

qfs_status qfs_qualys_decode_registry_page(const char *body, size_t len, const char *registry_uri,
                                           struct qfs_qualys_registry *out, bool *found,
                                           size_t *rows)
{
    *rows = 0;
    if (len == 0) return QFS_OK;
    cJSON *root = parse_json(body, len);
    const cJSON *arr;
    qfs_status st = root ? list_rows(root, MAX_PAGE_ROWS, &arr, rows) : QFS_PROTOCOL;
    char want[320], got[320];
    uri_host(registry_uri, want, sizeof(want));
    const cJSON *it;
    if (st == QFS_OK && arr) cJSON_ArrayForEach(it, arr) {
        const cJSON *u = member(it, "registryUri");
        if (*found || !cJSON_IsString(u) || !u->valuestring || strlen(u->valuestring) >= sizeof(got))
            continue;
        uri_host(u->valuestring, got, sizeof(got));
        if (strcmp(got, want) != 0) continue;
        struct qfs_qualys_registry r = {0};
        if (!id_of(member(it, "registryUuid"), r.uuid, sizeof(r.uuid), qfs_qualys_uuid_is_valid))
            continue;
        copy_text_n(r.uri, sizeof(r.uri), u->valuestring, strlen(u->valuestring));
        text_of(member(it, "registryName"), r.name, sizeof(r.name));
        text_of(member(it, "awsAccountId"), r.account_id, sizeof(r.account_id));
        text_of(member(it, "awsRegion"), r.region, sizeof(r.region));
        *out = r;
        *found = true;
    }
    cJSON_Delete(root);
    return st;
}

/* 8-4-4-4-12 hex digits: what a bare-string answer must look like to be taken as an id. */
static bool canonical_uuid(const char *s)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, s++)
            if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
                return false;
        if (g < 4 && *s++ != '-') return false;
    }
    return *s == '\0';
}

qfs_status qfs_qualys_decode_created_id(const char *body, size_t len, const char *const *keys,
                                        char *out, size_t n)
{
    out[0] = '\0';
    if (len == 0) return QFS_OK;
    cJSON *root = parse_json(body, len);
    qfs_status st = QFS_OK;
    if (cJSON_IsObject(root)) {
        for (size_t i = 0; keys && keys[i] && !out[0]; i++) {
            const cJSON *v = member(root, keys[i]);
            if (v && !id_of(v, out, n, qfs_qualys_uuid_is_valid)) {
                st = QFS_PROTOCOL;
                break;
            }
        }
    } else if (cJSON_IsString(root)) {
        /* The swagger's bare string: an id when it is a UUID, a message otherwise. */
        id_of(root, out, n, canonical_uuid);
    } else if (!root) {
        while (len && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' ')) len--;
        char tmp[64];
        if (len < sizeof(tmp) && len < n) {
            memcpy(tmp, body, len);
            tmp[len] = '\0';
            if (canonical_uuid(tmp)) memcpy(out, tmp, len + 1);
        }
    }
    cJSON_Delete(root);
    if (st != QFS_OK) out[0] = '\0';
    return st;
}

/* ---- images -------------------------------------------------------------------------------- */

static void severity_counts(const cJSON *v, struct qfs_qualys_image *img)
{
    memset(img->severity_counts, 0, sizeof(img->severity_counts));
    img->has_vulns = false;
    if (cJSON_IsObject(v)) {
        for (int s = 1; s <= 5; s++) {
            char key[24];
            int64_t c = 0;
            snprintf(key, sizeof(key), "severity%dCount", s);
            if (int_of(member(v, key), &c) && c >= 0 && c <= MAX_SEVERITY_COUNT)
                img->severity_counts[s] = (unsigned)c;
        }
        img->has_vulns = true;
    } else if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            int64_t s = 0;
            if (int_of(member(it, "severity"), &s) && s >= 1 && s <= 5 &&
                img->severity_counts[s] < MAX_SEVERITY_COUNT)
                img->severity_counts[s]++;
        }
        img->has_vulns = true;
    }
}

/* Fills img from an image object; false when it has no valid sha. */
static bool image_of(const cJSON *obj, struct qfs_qualys_image *img)
{
    memset(img, 0, sizeof(*img));
    if (!id_of(member(obj, "sha"), img->sha, sizeof(img->sha), is_hex64)) return false;
    for (char *p = img->sha; *p; p++)
        if (*p >= 'A' && *p <= 'F') *p = (char)(*p + 32);
    text_of(member(obj, "scanStatus"), img->scan_status, sizeof(img->scan_status));
    text_of(member(obj, "scanErrorCode"), img->scan_error_code, sizeof(img->scan_error_code));
    text_of(member(obj, "scanErrorMessage"), img->scan_error_message, sizeof(img->scan_error_message));
    img->last_scanned_ms = ms_of(obj, "lastScanned");
    img->updated_ms = ms_of(obj, "updated");
    severity_counts(member(obj, "vulnerabilities"), img);
    return true;
}

static bool str_eq(const cJSON *v, const char *want, bool nocase)
{
    if (!cJSON_IsString(v) || !v->valuestring) return false;
    return nocase ? strcasecmp(v->valuestring, want) == 0 : strcmp(v->valuestring, want) == 0;
}

/* A digest as 64 hex without "sha256:", compared case-insensitively. */
static bool digest_eq(const cJSON *v, const char *want)
{
    if (!cJSON_IsString(v) || !v->valuestring) return false;
    const char *d = v->valuestring;
    if (strncmp(d, "sha256:", 7) == 0) d += 7;
    return is_hex64(d) && strcasecmp(d, want) == 0;
}

static bool image_matches(const cJSON *it, const struct qfs_qualys_image_match *m)
{
    const cJSON *e;
    if (m->digest && *m->digest) {
        const cJSON *digests = member(it, "repoDigests");
        if (!cJSON_IsArray(digests)) return false;
        cJSON_ArrayForEach(e, digests) {
            if (digest_eq(member(e, "digest"), m->digest)) return true;
        }
        return false;
    }
    const cJSON *repos = member(it, "repo");
    if (!cJSON_IsArray(repos)) return false;
    cJSON_ArrayForEach(e, repos) {
        if (str_eq(member(e, "registry"), m->host, true) &&
            str_eq(member(e, "repository"), m->repository, false) && str_eq(member(e, "tag"), m->tag, false))
            return true;
    }
    return false;
}

qfs_status qfs_qualys_decode_image_page(const char *body, size_t len,
                                        const struct qfs_qualys_image_match *m,
                                        struct qfs_qualys_image *best, bool *found, size_t *rows)
{
    *rows = 0;
    if (len == 0) return QFS_OK;
    cJSON *root = parse_json(body, len);
    const cJSON *arr;
    qfs_status st = root ? list_rows(root, MAX_PAGE_ROWS, &arr, rows) : QFS_PROTOCOL;
    const cJSON *it;
    if (st == QFS_OK && arr) cJSON_ArrayForEach(it, arr) {
        struct qfs_qualys_image img;
        if (!cJSON_IsObject(it) || !image_matches(it, m) || !image_of(it, &img)) continue;
        if (!*found || img.updated_ms > best->updated_ms) { /* newest first; ties keep the first */
            *best = img;
            *found = true;
        }
    }
    cJSON_Delete(root);
    return st;
}

qfs_status qfs_qualys_decode_image_detail(const char *body, size_t len, struct qfs_qualys_image *out)
{
    cJSON *root = parse_json(body, len);
    qfs_status st = cJSON_IsObject(root) && image_of(root, out) ? QFS_OK : QFS_PROTOCOL;
    cJSON_Delete(root);
    if (st != QFS_OK) memset(out, 0, sizeof(*out));
    return st;
}

enum qfs_qualys_scan_state qfs_qualys_image_state(const struct qfs_qualys_image *img)
{
    static const char *const pending[] = {"PENDING", "QUEUED", "RUNNING", "IN_PROGRESS", "INPROGRESS",
                                          "SCANNING", "PROCESSING", "CREATED", "STARTED", NULL};
    if (img->scan_error_code[0]) return QFS_QUALYS_SCAN_FAILED;
    if (!img->scan_status[0]) return img->has_vulns ? QFS_QUALYS_SCAN_DONE : QFS_QUALYS_SCAN_PENDING;
    if (strcasecmp(img->scan_status, "SUCCESS") == 0) return QFS_QUALYS_SCAN_DONE;
    for (size_t i = 0; pending[i]; i++)
        if (strcasecmp(img->scan_status, pending[i]) == 0) return QFS_QUALYS_SCAN_PENDING;
    return QFS_QUALYS_SCAN_FAILED;
}

/* ---- vulnerabilities ----------------------------------------------------------------------- */

static bool is_none(const char *s)
{
    return !*s || strcmp(s, "-") == 0 || strcasecmp(s, "none") == 0 || strcasecmp(s, "null") == 0 ||
           strcasecmp(s, "n/a") == 0;
}

/* The next field of a result row: tab-separated when the row has tabs, else space-separated. */
static const char *next_field(const char *p, const char *end, bool tabs, char *out, size_t n)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *s = p;
    while (p < end && *p != '\t' && (tabs || *p != ' ')) p++;
    const char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    copy_text_n(out, n, s, (size_t)(e - s));
    return p;
}

bool qfs_qualys_parse_result_table(const char *result, char *package, size_t pn, char *installed,
                                   size_t in, char *fixed, size_t fn)
{
    package[0] = installed[0] = fixed[0] = '\0';
    if (!result) return false;
    bool header_seen = false;
    const char *p = result;
    for (int lines = 0; *p && lines < 64; lines++) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *line = p;
        p = eol ? eol + 1 : end;
        while (end > line && end[-1] == '\r') end--;
        while (line < end && (*line == ' ' || *line == '\t')) line++;
        if (line == end || *line == '#') continue;
        if (!header_seen) { /* "Package Installed_Version Required_Version" */
            header_seen = true;
            continue;
        }
        bool tabs = memchr(line, '\t', (size_t)(end - line)) != NULL;
        const char *q = next_field(line, end, tabs, package, pn);
        q = next_field(q, end, tabs, installed, in);
        next_field(q, end, tabs, fixed, fn);
        if (is_none(package) || is_none(installed)) {
            package[0] = installed[0] = fixed[0] = '\0';
            return false;
        }
        if (is_none(fixed)) fixed[0] = '\0';
        return true;
    }
    return false;
}

static bool cve_ok(const char *s)
{
    return all_of(s, 5, 31, "-", true);
}

static void add_cve(struct qfs_qualys_finding *f, const char *s, size_t len)
{
    char tmp[32];
    if (len == 0 || len >= sizeof(tmp) || f->ncves >= QFS_QUALYS_MAX_CVES) return;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (cve_ok(tmp)) memcpy(f->cves[f->ncves++], tmp, len + 1);
}

static void cves_of(const cJSON *v, struct qfs_qualys_finding *f)
{
    const cJSON *it;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(it, v) {
            if (cJSON_IsString(it) && it->valuestring) add_cve(f, it->valuestring, strlen(it->valuestring));
        }
    } else if (cJSON_IsString(v) && v->valuestring) { /* "CVE-1, CVE-2" */
        for (const char *p = v->valuestring; *p;) {
            size_t n = strcspn(p, ", ");
            add_cve(f, p, n);
            p += n;
            p += strspn(p, ", ");
        }
    }
}

/* Ranks findings: more severe first, then lower qid. */
static bool ranks_before(const struct qfs_qualys_finding *a, const struct qfs_qualys_finding *b)
{
    return a->severity != b->severity ? a->severity > b->severity : a->qid < b->qid;
}

static void keep_top(struct qfs_qualys_vuln_report *r, size_t top_n, const struct qfs_qualys_finding *f)
{
    size_t pos = r->nfindings;
    while (pos > 0 && ranks_before(f, &r->findings[pos - 1])) pos--;
    if (pos >= top_n) return;
    size_t last = r->nfindings < top_n ? r->nfindings : top_n - 1;
    memmove(&r->findings[pos + 1], &r->findings[pos], (last - pos) * sizeof(*f));
    r->findings[pos] = *f;
    if (r->nfindings < top_n) r->nfindings++;
}

static void finding_of(const cJSON *it, int severity, int64_t qid, struct qfs_qualys_finding *f)
{
    memset(f, 0, sizeof(*f));
    f->severity = severity;
    f->qid = qid;
    text_of(member(it, "title"), f->title, sizeof(f->title));
    cves_of(member(it, "cveids"), f);
    const cJSON *patch = member(it, "patchAvailable");
    bool fix_known = false;
    const cJSON *sw = member(it, "software"), *s;
    if (cJSON_IsArray(sw)) cJSON_ArrayForEach(s, sw) {
        char fix[128];
        text_of(member(s, "fixVersion"), fix, sizeof(fix));
        if (!f->package[0] && cJSON_IsObject(s)) {
            text_of(member(s, "name"), f->package, sizeof(f->package));
            if (f->package[0]) {
                text_of(member(s, "version"), f->installed_version, sizeof(f->installed_version));
                snprintf(f->fixed_version, sizeof(f->fixed_version), "%s", is_none(fix) ? "" : fix);
            }
        }
        if (!is_none(fix)) fix_known = true;
    }
    if (!f->package[0]) {
        const cJSON *res = member(it, "result");
        if (cJSON_IsString(res))
            qfs_qualys_parse_result_table(res->valuestring, f->package, sizeof(f->package),
                                          f->installed_version, sizeof(f->installed_version),
                                          f->fixed_version, sizeof(f->fixed_version));
        if (f->fixed_version[0]) fix_known = true;
    }
    f->patchable = cJSON_IsTrue(patch) || fix_known;
}

qfs_status qfs_qualys_decode_vulns(const char *body, size_t len, size_t top_n,
                                   struct qfs_qualys_vuln_report *out)
{
    memset(out, 0, sizeof(*out));
    if (top_n > QFS_QUALYS_MAX_FINDINGS) top_n = QFS_QUALYS_MAX_FINDINGS;
    if (len == 0) return QFS_OK; /* 204: nothing known yet */
    cJSON *root = parse_json(body, len);
    qfs_status st = QFS_OK;
    const cJSON *details = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "details") : NULL;
    if (!details) st = QFS_PROTOCOL; /* not a vuln body (a "data" list is some other endpoint's) */
    else if (cJSON_IsNull(details)) st = QFS_OK;
    else if (!cJSON_IsArray(details)) st = QFS_PROTOCOL;
    else if (cJSON_GetArraySize(details) > MAX_VULN_DETAILS) st = QFS_TOO_BIG;
    if (st == QFS_OK && cJSON_IsArray(details)) {
        out->scanned = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, details) {
            int64_t sev = 0, qid = 0;
            if (!cJSON_IsObject(it) || !int_of(member(it, "severity"), &sev) || sev < 1 || sev > 5) {
                out->ignored++;
                continue;
            }
            if (!int_of(member(it, "qid"), &qid) || qid < 0) qid = 0;
            struct qfs_qualys_finding f;
            finding_of(it, (int)sev, qid, &f);
            out->by_severity[sev]++;
            out->total++;
            if (f.patchable) out->patchable++;
            if (top_n) keep_top(out, top_n, &f);
        }
    }
    cJSON_Delete(root);
    if (st != QFS_OK) memset(out, 0, sizeof(*out));
    return st;
}
