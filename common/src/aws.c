/* AWS calls: endpoints, SigV4 through curl (aws-wire.md §2.9.3), the one error decoder and mapper. */
#include "qfs/aws.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define DEFAULT_MAX_ATTEMPTS 4
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (1024 * 1024)
#define MAX_ENDPOINT 512
#define MAX_REGION 32

struct service_info {
    const char *env_suffix; /* AWS_ENDPOINT_URL_<suffix>, as the SDKs spell it */
    const char *host;       /* <host>.<region>.<dns suffix> */
    const char *signing;    /* SigV4 service name */
};

static const struct service_info services[QFS_AWS_SERVICE_COUNT] = {
    [QFS_AWS_SQS] = {"SQS", "sqs", "sqs"},
    [QFS_AWS_SNS] = {"SNS", "sns", "sns"},
    [QFS_AWS_ECS] = {"ECS", "ecs", "ecs"},
    [QFS_AWS_ECR] = {"ECR", "api.ecr", "ecr"},
    [QFS_AWS_STS] = {"STS", "sts", "sts"},
    [QFS_AWS_SECRETS_MANAGER] = {"SECRETS_MANAGER", "secretsmanager", "secretsmanager"},
    [QFS_AWS_DYNAMODB] = {"DYNAMODB", "dynamodb", "dynamodb"},
};

/* ---- names, regions and endpoints ----------------------------------------------------------- */

const char *qfs_aws_signing_name(enum qfs_aws_service svc)
{
    return (unsigned)svc < QFS_AWS_SERVICE_COUNT ? services[svc].signing : NULL;
}

const char *qfs_aws_env_suffix(enum qfs_aws_service svc)
{
    return (unsigned)svc < QFS_AWS_SERVICE_COUNT ? services[svc].env_suffix : NULL;
}

bool qfs_aws_region_is_valid(const char *region)
{
    if (!region || !*region || strlen(region) > MAX_REGION) return false;
    if (region[0] < 'a' || region[0] > 'z') return false;
    for (const char *p = region; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) return false;
    return region[strlen(region) - 1] != '-';
}

const char *qfs_aws_partition(const char *region)
{
    if (region && strncmp(region, "cn-", 3) == 0) return "aws-cn";
    if (region && strncmp(region, "us-gov-", 7) == 0) return "aws-us-gov";
    return "aws";
}

static const char *dns_suffix(const char *region)
{
    return strcmp(qfs_aws_partition(region), "aws-cn") == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

static const char *env_get(qfs_aws_env_fn env, void *arg, const char *name)
{
    const char *v = env ? env(name, arg) : getenv(name);
    return v && *v ? v : NULL;
}

static bool url_is_http(const char *url)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        ok = (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) && *host;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok && !strpbrk(url, "?# \t\r\n");
}

qfs_status qfs_aws_endpoint(enum qfs_aws_service svc, const char *region, qfs_aws_env_fn env,
                            void *env_arg, char *out, size_t n)
{
    if ((unsigned)svc >= QFS_AWS_SERVICE_COUNT || !qfs_aws_region_is_valid(region))
        return QFS_INVALID_ARG;
    const char *url = NULL;
    const char *ignore = env_get(env, env_arg, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (!ignore || strcasecmp(ignore, "true") != 0) {
        char name[64];
        snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", services[svc].env_suffix);
        url = env_get(env, env_arg, name);
        if (!url) url = env_get(env, env_arg, "AWS_ENDPOINT_URL");
    }
    int w;
    if (url) {
        if (!url_is_http(url)) return QFS_INVALID_ARG;
        size_t len = strlen(url);
        while (len > 0 && url[len - 1] == '/') len--;
        w = snprintf(out, n, "%.*s/", (int)len, url);
    } else {
        w = snprintf(out, n, "https://%s.%s.%s/", services[svc].host, region, dns_suffix(region));
    }
    return w < 0 || (size_t)w >= n ? QFS_TOO_BIG : QFS_OK;
}

/* ---- XML and JSON helpers ------------------------------------------------------------------- */

/* Appends one decoded entity at *pp (pointing at '&') to b and advances past it. */
static qfs_status xml_entity(const char **pp, const char *end, struct qfs_buf *b)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    const char *p = *pp + 1;
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t k = strlen(named[i].name);
        if ((size_t)(end - p) >= k && memcmp(p, named[i].name, k) == 0) {
            *pp = p + k;
            return qfs_buf_append(b, &named[i].c, 1);
        }
    }
    if (p < end && *p == '#') {
        const char *q = p + 1;
        int base = 10;
        if (q < end && (*q == 'x' || *q == 'X')) {
            base = 16;
            q++;
        }
        unsigned long cp = 0;
        const char *start = q;
        while (q < end && isxdigit((unsigned char)*q) && q - start < 8) {
            if (base == 10 && !isdigit((unsigned char)*q)) break;
            cp = cp * (unsigned)base + (unsigned)(isdigit((unsigned char)*q) ? *q - '0'
                                                                           : (tolower(*q) - 'a' + 10));
            q++;
        }
        if (q > start && q < end && *q == ';' && cp > 0 && cp <= 0x10FFFF &&
            !(cp >= 0xD800 && cp <= 0xDFFF)) {
            char u[4];
            size_t k;
            if (cp < 0x80) { u[0] = (char)cp; k = 1; }
            else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
            else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
            }
            *pp = q + 1;
            return qfs_buf_append(b, u, k);
        }
    }
    *pp = *pp + 1; /* not an entity we know: keep the '&' as text */
    return qfs_buf_append(b, "&", 1);
}

static const char *find_bytes(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, k) == 0) return hay + i;
    return NULL;
}

/* Finds the inner text of the first <tag>...</tag>. */
static qfs_status xml_find(const char *body, size_t len, const char *tag, const char **start,
                           const char **end)
{
    char open[80], close[80];
    if (snprintf(open, sizeof(open), "<%s>", tag) >= (int)sizeof(open)) return QFS_INVALID_ARG;
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *s = find_bytes(body, len, open);
    if (!s) return QFS_NOT_FOUND;
    s += strlen(open);
    const char *e = find_bytes(s, len - (size_t)(s - body), close);
    if (!e) return QFS_NOT_FOUND;
    *start = s;
    *end = e;
    return QFS_OK;
}

qfs_status qfs_aws_xml_inner(const char *body, size_t len, const char *tag, size_t max, char **out)
{
    const char *start, *end;
    *out = NULL;
    qfs_status st = xml_find(body, len, tag, &start, &end);
    if (st != QFS_OK) return st;
    if ((size_t)(end - start) > max) return QFS_TOO_BIG;
    if (memchr(start, '\0', (size_t)(end - start))) return QFS_PROTOCOL;
    *out = qfs_xstrndup(start, (size_t)(end - start));
    return QFS_OK;
}

qfs_status qfs_aws_xml_text(const char *body, size_t len, const char *tag, size_t max, char **out)
{
    const char *start, *end;
    *out = NULL;
    qfs_status st0 = xml_find(body, len, tag, &start, &end);
    if (st0 != QFS_OK) return st0;
    struct qfs_buf b;
    qfs_buf_init(&b, max);
    qfs_status st = qfs_buf_append(&b, "", 0);
    const char *p = start;
    while (st == QFS_OK && p < end) {
        if (*p == '&') {
            st = xml_entity(&p, end, &b);
        } else if (*p == '<') {
            st = QFS_PROTOCOL; /* markup inside a text element: not what we asked for */
        } else {
            const char *q = memchr(p, '&', (size_t)(end - p));
            const char *lt = memchr(p, '<', (size_t)(end - p));
            if (!q || (lt && lt < q)) q = lt ? lt : end;
            st = qfs_buf_append(&b, p, (size_t)(q - p));
            p = q;
        }
    }
    if (st == QFS_OK && strlen(b.data) != b.len) st = QFS_PROTOCOL; /* NUL inside */
    if (st == QFS_OK) *out = qfs_buf_take(&b);
    qfs_buf_cleanup(&b);
    return st;
}

qfs_status qfs_aws_json_string(const struct cJSON *obj, const char *key, size_t max, char **out)
{
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return QFS_NOT_FOUND;
    if (!cJSON_IsString(v) || !v->valuestring) return QFS_PROTOCOL;
    if (strlen(v->valuestring) > max) return QFS_TOO_BIG;
    *out = qfs_xstrdup(v->valuestring);
    return QFS_OK;
}

qfs_status qfs_aws_form_escape(const char *value, size_t len, struct qfs_buf *out)
{
    if (len > (size_t)1 << 30) return QFS_TOO_BIG;
    if (len == 0) return QFS_OK;
    /* Since 7.82 curl_easy_escape needs no handle. */
    char *e = curl_easy_escape(NULL, value, (int)len);
    if (!e) return QFS_INTERNAL;
    qfs_status st = qfs_buf_puts(out, e);
    curl_free(e);
    return st;
}

qfs_status qfs_aws_json_put(struct qfs_buf *b, const char *key, const char *s)
{
    if (!s || !qfs_utf8_is_valid(s, strlen(s))) return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_json_string(b, key, strlen(key));
    if (st == QFS_OK) st = qfs_buf_puts(b, ":");
    if (st == QFS_OK) st = qfs_buf_json_string(b, s, strlen(s));
    return st;
}

bool qfs_aws_arn_region(const char *arn, char *out, size_t n)
{
    /* arn:partition:service:region:account:resource */
    if (!arn || strncmp(arn, "arn:", 4) != 0) return false;
    const char *p = arn;
    for (int i = 0; i < 3; i++) {
        p = strchr(p, ':');
        if (!p) return false;
        p++;
    }
    size_t len = strcspn(p, ":");
    if (p[len] != ':' || len == 0 || len >= n || len > MAX_REGION) return false;
    char region[MAX_REGION + 1];
    memcpy(region, p, len);
    region[len] = '\0';
    if (!qfs_aws_region_is_valid(region)) return false;
    memcpy(out, region, len + 1);
    return true;
}

const struct qfs_aws_response *qfs_aws_response_decoded(const struct qfs_aws_response *r,
                                                        qfs_status st, const char *op,
                                                        struct qfs_aws_response *scratch)
{
    if (st == QFS_OK) return r;
    qfs_warn("aws response not understood", "op", op, "status", qfs_status_str(st), "request_id",
             r->request_id);
    *scratch = *r;
    scratch->status = st;
    return scratch;
}

/* ---- the one error decoder and mapper ------------------------------------------------------- */

static void copy_cut(char *dst, size_t n, const char *src, size_t len)
{
    if (len >= n) {
        len = n - 1;
        /* Do not end in the middle of a UTF-8 sequence. */
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80) len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    for (char *p = dst; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
}

void qfs_aws_decode_error(const char *body, size_t len, const char *query_error,
                          const char *error_type, struct qfs_aws_error *out)
{
    out->code[0] = out->message[0] = '\0';
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i])) i++;
    if (i < len && body[i] == '{') {
        cJSON *root = cJSON_ParseWithLength(body, len);
        const char *keys[] = {"__type", "code", "Code"};
        for (size_t k = 0; k < 3 && !out->code[0]; k++) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
            if (cJSON_IsString(t) && t->valuestring) {
                const char *c = strrchr(t->valuestring, '#');
                c = c ? c + 1 : t->valuestring;
                copy_cut(out->code, sizeof(out->code), c, strcspn(c, ":"));
            }
        }
        const char *mkeys[] = {"message", "Message", "errorMessage"};
        for (size_t k = 0; k < 3 && !out->message[0]; k++) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, mkeys[k]);
            if (cJSON_IsString(m) && m->valuestring)
                copy_cut(out->message, sizeof(out->message), m->valuestring, strlen(m->valuestring));
        }
        cJSON_Delete(root);
    } else if (i < len && body[i] == '<') {
        const char *err = find_bytes(body, len, "<Error>");
        size_t off = err ? (size_t)(err - body) : 0;
        char *code = NULL, *msg = NULL;
        if (qfs_aws_xml_text(body + off, len - off, "Code", 256, &code) == QFS_OK)
            copy_cut(out->code, sizeof(out->code), code, strlen(code));
        if (qfs_aws_xml_text(body + off, len - off, "Message", 4096, &msg) == QFS_OK)
            copy_cut(out->message, sizeof(out->message), msg, strlen(msg));
        free(code);
        free(msg);
    }
    if (!out->code[0] && query_error && *query_error) {
        /* "AWS.SimpleQueueService.NonExistentQueue;Sender": the legacy code, last dotted part. */
        size_t n = strcspn(query_error, ";");
        const char *c = query_error;
        for (size_t k = 0; k < n; k++)
            if (query_error[k] == '.') c = query_error + k + 1;
        copy_cut(out->code, sizeof(out->code), c, n - (size_t)(c - query_error));
    }
    if (!out->code[0] && error_type && *error_type)
        copy_cut(out->code, sizeof(out->code), error_type, strcspn(error_type, ":"));
}

static bool in_list(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0) return true;
    return false;
}

bool qfs_aws_error_is_expired_token(const char *code)
{
    return code && (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "ExpiredTokenException") == 0);
}

qfs_status qfs_aws_error_status(long http_code, const char *code, const char *message,
                                bool *retryable)
{
    static const char *const throttling[] = {
        "ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded",
        "ProvisionedThroughputExceededException", "TooManyRequestsException", "RequestThrottled",
        "RequestThrottledException", "SlowDown", "PriorRequestNotComplete",
        "TransactionInProgressException", "RequestLimitExceededException", NULL};
    static const char *const denied[] = {
        "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
        "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
        "IncompleteSignature", "IncompleteSignatureException", "MissingAuthenticationToken",
        "MissingAuthenticationTokenException", "AuthFailure", "InvalidAccessKeyId", "NotAuthorized",
        "AuthorizationError", "KMSAccessDeniedException", "InvalidToken", NULL};
    static const char *const not_found[] = {"NonExistentQueue", "QueueDoesNotExist", "NoSuchEntity",
                                            "NoSuchKey", NULL};
    static const char *const protocol[] = {
        "ValidationException", "ValidationError", "MissingParameter", "InvalidAction",
        "SerializationException", "MalformedQueryString", "InvalidQueryParameter",
        "InvalidRequestException", "InvalidInputException", "UnsupportedOperation",
        "InvalidMessageContents", "ConditionalCheckFailedException", "UnknownOperationException",
        "InvalidAddress", "InvalidIdFormat", "EmptyBatchRequest", "TooManyEntriesInBatchRequest",
        "BatchEntryIdsNotDistinct", "InvalidBatchEntryId", "ClientException", NULL};
    static const char *const server[] = {"InternalFailure", "InternalError", "ServiceUnavailable",
                                         "ServiceUnavailableException", "ServerException",
                                         "InternalServerError", "InternalServiceError", NULL};
    *retryable = false;
    if (!code || !*code) return qfs_http_map(CURLE_OK, http_code, false, retryable);
    if (in_list(code, throttling) || strstr(code, "Throttl") || in_list(code, server)) {
        *retryable = true;
        return QFS_UNAVAILABLE;
    }
    if (strncmp(code, "AccessDenied", 12) == 0 || in_list(code, denied)) return QFS_DENIED;
    if (strcmp(code, "ClientException") == 0 && message) {
        /* ECS says both "not found" and "not allowed" with ClientException; the message tells. */
        if (strstr(message, "Unable to describe task definition")) return QFS_NOT_FOUND;
        if (strstr(message, "not authorized")) return QFS_DENIED;
    }
    if (strstr(code, "NotFound") || in_list(code, not_found)) return QFS_NOT_FOUND;
    if (strncmp(code, "InvalidParameter", 16) == 0 || in_list(code, protocol)) return QFS_PROTOCOL;
    if (http_code >= 500) {
        *retryable = http_code != 501;
        return QFS_UNAVAILABLE;
    }
    qfs_status st = qfs_http_map(CURLE_OK, http_code, false, retryable);
    return st == QFS_OK ? QFS_PROTOCOL : st; /* an error code on a 2xx is still an error */
}

/* ---- the client ----------------------------------------------------------------------------- */

struct qfs_aws {
    uv_loop_t *loop;
    struct qfs_http *http;
    struct qfs_aws_creds *creds;
    qfs_aws_env_fn env;
    void *env_arg;
    char region[MAX_REGION + 1];
    unsigned max_attempts;
    unsigned inflight; /* calls accepted and not yet delivered */
    bool closing;
};

struct call {
    struct qfs_aws *aws;
    enum qfs_aws_service service;
    enum qfs_aws_protocol protocol;
    char region[MAX_REGION + 1];
    char op[64];
    char *url;
    char *target_hdr;
    char *body;
    size_t body_len;
    struct qfs_aws_credentials override;
    bool has_override;
    unsigned timeout_ms;
    unsigned max_attempts;
    size_t max_response;
    bool refreshed; /* one credential refresh per call after ExpiredToken */
    qfs_aws_done_fn cb;
    void *arg;
};

static void maybe_release(struct qfs_aws *aws)
{
    if (aws->closing && aws->inflight == 0) free(aws);
}

static void call_free(struct call *c)
{
    struct qfs_aws *aws = c->aws;
    free(c->url);
    free(c->target_hdr);
    free(c->body);
    qfs_aws_credentials_cleanup(&c->override);
    free(c);
    aws->inflight--;
    maybe_release(aws);
}

static void deliver(struct call *c, qfs_status st, const struct qfs_http_response *hr,
                    const struct qfs_aws_error *err)
{
    char *xml_request_id = NULL;
    const char *request_id = hr ? qfs_http_response_header(hr, "x-amzn-RequestId") : NULL;
    if (!request_id && hr) request_id = qfs_http_response_header(hr, "x-amz-request-id");
    if (!request_id && hr && c->protocol == QFS_AWS_QUERY &&
        qfs_aws_xml_text(hr->body, hr->body_len, "RequestId", 128, &xml_request_id) == QFS_OK)
        request_id = xml_request_id;
    struct qfs_aws_response r = {
        .status = st,
        .http_code = hr ? hr->code : 0,
        .body = hr ? hr->body : "",
        .body_len = hr ? hr->body_len : 0,
        .error_code = err ? err->code : "",
        .error_message = err ? err->message : "",
        .request_id = request_id ? request_id : "",
        .condition_failed = err && strcmp(err->code, "ConditionalCheckFailedException") == 0,
        .attempts = hr ? hr->attempts : 0,
    };
    c->cb(&r, c->arg);
    free(xml_request_id);
    call_free(c);
}

/* Per attempt: SigV4 by curl with all four fields, the key pair as USERPWD and, for temporary
 * credentials, X-Amz-Security-Token among the (signed) headers. Nothing else is added. */
static qfs_status sign(CURL *e, struct curl_slist **headers, void *arg)
{
    struct call *c = arg;
    if (c->aws->closing && !c->has_override) return QFS_UNAVAILABLE;
    const struct qfs_aws_credentials *cr =
        c->has_override ? &c->override : qfs_aws_creds_current(c->aws->creds);
    if (!cr) return QFS_UNAVAILABLE;
    char sigv4[128];
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:%s", c->region, services[c->service].signing);
    qfs_status st = QFS_OK;
    char *userpwd = qfs_xasprintf("%s:%s", cr->access_key_id, cr->secret_access_key);
    if (curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERPWD, userpwd) != CURLE_OK)
        st = QFS_INTERNAL;
    explicit_bzero(userpwd, strlen(userpwd));
    free(userpwd);
    if (st == QFS_OK && cr->session_token) {
        char *hdr = qfs_xasprintf("X-Amz-Security-Token: %s", cr->session_token);
        struct curl_slist *n = curl_slist_append(*headers, hdr);
        explicit_bzero(hdr, strlen(hdr));
        free(hdr);
        if (n) *headers = n;
        else st = QFS_INTERNAL;
    }
    return st;
}

static bool should_retry(const struct qfs_http_response *a, bool retryable, uint64_t *delay_ms,
                         void *arg)
{
    if (a->code == 0 || a->status == QFS_TOO_BIG) return retryable;
    if (a->code >= 200 && a->code < 300) return false;
    struct qfs_aws_error err;
    bool again;
    qfs_aws_decode_error(a->body, a->body_len, qfs_http_response_header(a, "x-amzn-query-error"),
                         qfs_http_response_header(a, "x-amzn-ErrorType"), &err);
    qfs_aws_error_status(a->code, err.code, err.message, &again);
    return again;
}

static void on_http_done(const struct qfs_http_response *hr, void *arg);

static qfs_status send_call(struct call *c)
{
    static const char *const content_types[] = {
        [QFS_AWS_JSON_1_0] = "Content-Type: application/x-amz-json-1.0",
        [QFS_AWS_JSON_1_1] = "Content-Type: application/x-amz-json-1.1",
        [QFS_AWS_QUERY] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8",
    };
    const char *headers[] = {content_types[c->protocol], c->target_hdr, NULL};
    struct qfs_http_request req = {
        .method = "POST",
        .url = c->url,
        .headers = headers,
        .body = c->body,
        .body_len = c->body_len,
        .timeout_ms = c->timeout_ms,
        .max_response = c->max_response,
        .max_attempts = c->max_attempts,
        .retry = should_retry,
        .prepare = sign,
        .hook_arg = c,
    };
    return qfs_http_request(c->aws->http, &req, on_http_done, c);
}

static void on_creds_ready(qfs_status s, void *arg)
{
    struct call *c = arg;
    if (s == QFS_OK && c->aws->closing) s = QFS_UNAVAILABLE;
    if (s == QFS_OK) s = send_call(c);
    if (s != QFS_OK) {
        qfs_warn("aws call not sent: no credentials", "op", c->op, "status", qfs_status_str(s));
        deliver(c, s, NULL, NULL);
    }
}

static void on_http_done(const struct qfs_http_response *hr, void *arg)
{
    struct call *c = arg;
    struct qfs_aws *aws = c->aws;
    qfs_status st = hr->status;
    if (hr->code == 0 || st == QFS_TOO_BIG || (hr->code >= 200 && hr->code < 300)) {
        deliver(c, st, hr, NULL);
        return;
    }
    struct qfs_aws_error err;
    bool retryable;
    qfs_aws_decode_error(hr->body, hr->body_len, qfs_http_response_header(hr, "x-amzn-query-error"),
                         qfs_http_response_header(hr, "x-amzn-ErrorType"), &err);
    st = qfs_aws_error_status(hr->code, err.code, err.message, &retryable);
    if (qfs_aws_error_is_expired_token(err.code) && !c->refreshed && !c->has_override &&
        !aws->closing && qfs_aws_creds_invalidate(aws->creds)) {
        c->refreshed = true;
        qfs_info("aws credentials expired; refreshing", "op", c->op);
        qfs_aws_creds_wait(aws->creds, on_creds_ready, c);
        return;
    }
    char code[16], attempts[16];
    snprintf(code, sizeof(code), "%ld", hr->code);
    snprintf(attempts, sizeof(attempts), "%u", hr->attempts);
    char message[257];
    copy_cut(message, sizeof(message), err.message, strlen(err.message));
    bool expected = strcmp(err.code, "ConditionalCheckFailedException") == 0;
    qfs_log(expected ? QFS_LOG_DEBUG : QFS_LOG_WARN, "aws call failed", "aws_service",
            services[c->service].signing, "op", c->op, "http_code", code, "code", err.code,
            "message", message, "status", qfs_status_str(st), "attempts", attempts, NULL);
    deliver(c, st, hr, &err);
}

static void op_name(const struct qfs_aws_call *c, char *out, size_t n)
{
    const char *op = "unknown";
    size_t len = strlen(op);
    if (c->protocol != QFS_AWS_QUERY && c->target) {
        const char *dot = strrchr(c->target, '.');
        op = dot ? dot + 1 : c->target;
        len = strlen(op);
    } else if (c->body) {
        const char *a = find_bytes(c->body, c->body_len, "Action=");
        if (a && (a == c->body || a[-1] == '&')) {
            op = a + 7;
            len = 0;
            while (op + len < c->body + c->body_len && op[len] != '&') len++;
        }
    }
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), op);
}

qfs_status qfs_aws_call(struct qfs_aws *aws, const struct qfs_aws_call *c, qfs_aws_done_fn cb,
                        void *arg)
{
    if (!aws || !c || !cb || (unsigned)c->service >= QFS_AWS_SERVICE_COUNT ||
        (unsigned)c->protocol > QFS_AWS_QUERY)
        return QFS_INVALID_ARG;
    if (aws->closing) return QFS_UNAVAILABLE;
    const char *region = c->region ? c->region : aws->region;
    if (!qfs_aws_region_is_valid(region)) return QFS_INVALID_ARG;
    if (c->protocol != QFS_AWS_QUERY && (!c->target || !*c->target || strpbrk(c->target, "\r\n:")))
        return QFS_INVALID_ARG;
    if (c->protocol == QFS_AWS_QUERY && (!c->body || !c->body_len)) return QFS_INVALID_ARG;
    if (c->credentials && (!c->credentials->access_key_id || !c->credentials->secret_access_key ||
                           strchr(c->credentials->access_key_id, ':')))
        return QFS_INVALID_ARG;
    char url[MAX_ENDPOINT];
    qfs_status st = qfs_aws_endpoint(c->service, region, aws->env, aws->env_arg, url, sizeof(url));
    if (st != QFS_OK) return st;

    struct call *k = qfs_xcalloc(1, sizeof(*k));
    k->aws = aws;
    k->service = c->service;
    k->protocol = c->protocol;
    snprintf(k->region, sizeof(k->region), "%s", region);
    op_name(c, k->op, sizeof(k->op));
    k->url = qfs_xstrdup(url);
    if (c->protocol != QFS_AWS_QUERY) k->target_hdr = qfs_xasprintf("X-Amz-Target: %s", c->target);
    if (c->body) {
        k->body = qfs_xstrndup(c->body, c->body_len);
        k->body_len = c->body_len;
    } else {
        k->body = qfs_xstrdup("{}");
        k->body_len = 2;
    }
    if (c->credentials) {
        qfs_aws_credentials_copy(&k->override, c->credentials);
        k->has_override = true;
    }
    k->timeout_ms = c->timeout_ms ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    k->max_response = c->max_response ? c->max_response : DEFAULT_MAX_RESPONSE;
    k->max_attempts = c->max_attempts ? c->max_attempts : aws->max_attempts;
    k->cb = cb;
    k->arg = arg;
    aws->inflight++;

    if (k->has_override || qfs_aws_creds_current(aws->creds)) {
        st = send_call(k);
        /* Not closing (checked above): call_free's release of the client does nothing here. */
        if (st != QFS_OK) call_free(k);
        return st;
    }
    qfs_aws_creds_wait(aws->creds, on_creds_ready, k);
    return QFS_OK;
}

qfs_status qfs_aws_new(uv_loop_t *loop, struct qfs_http *http, const struct qfs_aws_options *opt,
                       struct qfs_aws **out)
{
    static const struct qfs_aws_options defaults = {0};
    if (!loop || !http || !out) return QFS_INVALID_ARG;
    if (!opt) opt = &defaults;
    *out = NULL;
    const char *region = opt->region;
    const char *var = "region option";
    if (!region) {
        var = "AWS_REGION";
        region = env_get(opt->env, opt->env_arg, "AWS_REGION");
    }
    if (!region) {
        var = "AWS_DEFAULT_REGION";
        region = env_get(opt->env, opt->env_arg, "AWS_DEFAULT_REGION");
    }
    if (!region) {
        qfs_error("AWS region not set", "variable", "AWS_REGION");
        return QFS_INVALID_ARG;
    }
    if (!qfs_aws_region_is_valid(region)) {
        qfs_error("malformed AWS region", "variable", var, "value", region);
        return QFS_INVALID_ARG;
    }
    for (int s = 0; s < QFS_AWS_SERVICE_COUNT; s++) {
        char url[MAX_ENDPOINT], name[64];
        if (qfs_aws_endpoint((enum qfs_aws_service)s, region, opt->env, opt->env_arg, url,
                             sizeof(url)) == QFS_OK)
            continue;
        snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", services[s].env_suffix);
        qfs_error("malformed endpoint URL", "variable",
                  env_get(opt->env, opt->env_arg, name) ? name : "AWS_ENDPOINT_URL");
        return QFS_INVALID_ARG;
    }
    struct qfs_aws_creds *creds;
    qfs_status st = qfs_aws_creds_new(loop, http, opt->env, opt->env_arg, opt->refresh_before_ms, &creds);
    if (st != QFS_OK) return st;
    struct qfs_aws *aws = qfs_xcalloc(1, sizeof(*aws));
    aws->loop = loop;
    aws->http = http;
    aws->creds = creds;
    aws->env = opt->env;
    aws->env_arg = opt->env_arg;
    snprintf(aws->region, sizeof(aws->region), "%s", region);
    aws->max_attempts = opt->max_attempts ? opt->max_attempts : DEFAULT_MAX_ATTEMPTS;
    *out = aws;
    return QFS_OK;
}

void qfs_aws_free(struct qfs_aws *aws)
{
    if (!aws || aws->closing) return;
    aws->closing = true;
    aws->inflight++; /* hold the memory while waiters are told */
    qfs_aws_creds_free(aws->creds);
    aws->creds = NULL;
    aws->inflight--;
    maybe_release(aws);
}

const char *qfs_aws_region(const struct qfs_aws *aws)
{
    return aws->region;
}

struct qfs_aws_creds *qfs_aws_credentials_provider(struct qfs_aws *aws)
{
    return aws->creds;
}

const struct qfs_aws_env_doc qfs_aws_env_docs[] = {
    {"AWS_REGION", "Region of the AWS calls (falls back to AWS_DEFAULT_REGION)."},
    {"AWS_DEFAULT_REGION", "Region when AWS_REGION is not set."},
    {"AWS_ACCESS_KEY_ID", "Access key; with AWS_SECRET_ACCESS_KEY it takes precedence over the task role."},
    {"AWS_SECRET_ACCESS_KEY", "Secret key. Secret."},
    {"AWS_SESSION_TOKEN", "Session token of temporary credentials. Secret."},
    {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "Set by ECS on Fargate: the task role's credentials, refreshed before they expire."},
    {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "Credentials endpoint (https, loopback, 169.254.170.2 or .23 only)."},
    {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "Authorization header for the full URI. Secret."},
    {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "File holding that token."},
    {"AWS_ENDPOINT_URL", "Endpoint for every AWS service (the simulators in development)."},
    {"AWS_ENDPOINT_URL_<SERVICE>", "Endpoint for one service: SQS, SNS, ECS, ECR, STS, SECRETS_MANAGER, DYNAMODB."},
    {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true: ignore the endpoint variables."},
    {NULL, NULL},
};
