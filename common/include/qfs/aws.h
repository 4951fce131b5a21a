/* AWS: SigV4-signed calls over qfs_http (curl's CURLOPT_AWS_SIGV4), credentials, endpoints, errors. */
#ifndef QFS_AWS_H
#define QFS_AWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "qfs/http.h"
#include "qfs/status.h"
#include "qfs/util.h"

enum qfs_aws_service {
    QFS_AWS_SQS,
    QFS_AWS_SNS,
    QFS_AWS_ECS,
    QFS_AWS_ECR,
    QFS_AWS_STS,
    QFS_AWS_SECRETS_MANAGER,
    QFS_AWS_DYNAMODB,
    QFS_AWS_SERVICE_COUNT
};

enum qfs_aws_protocol {
    QFS_AWS_JSON_1_0, /* application/x-amz-json-1.0 + X-Amz-Target */
    QFS_AWS_JSON_1_1, /* application/x-amz-json-1.1 + X-Amz-Target */
    QFS_AWS_QUERY     /* form body with Action= and Version=, XML responses */
};

/* Looks up an environment variable (NULL when unset). Tests pass their own table. */
typedef const char *(*qfs_aws_env_fn)(const char *name, void *arg);

/* A set of credentials. Borrowed wherever a const pointer is passed; owned copies are made with
 * qfs_aws_credentials_copy and released with qfs_aws_credentials_cleanup. */
struct qfs_aws_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys; sent as X-Amz-Security-Token */
    int64_t expires_ms;  /* epoch ms; 0 when they do not expire */
};

/* Deep copy; registers the secret key and session token with qfs_log_add_secret. */
void qfs_aws_credentials_copy(struct qfs_aws_credentials *dst, const struct qfs_aws_credentials *src);
void qfs_aws_credentials_cleanup(struct qfs_aws_credentials *c);

/* ---- pure helpers (no I/O) ------------------------------------------------------------------ */

/* True for a region name such as "eu-west-1" ([a-z0-9-], 1..32, starts with a letter). */
bool qfs_aws_region_is_valid(const char *region);
/* "aws-cn" for cn-*, "aws-us-gov" for us-gov-*, else "aws". */
const char *qfs_aws_partition(const char *region);
/* The SigV4 signing name ("sqs", "secretsmanager", ...) and the SDK env suffix ("SECRETS_MANAGER"). */
const char *qfs_aws_signing_name(enum qfs_aws_service svc);
const char *qfs_aws_env_suffix(enum qfs_aws_service svc);

/* Writes the base URL (ending in "/") for svc in region: AWS_ENDPOINT_URL_<SERVICE>, else
 * AWS_ENDPOINT_URL, else https://<host>.<region>.amazonaws.com[.cn]/ (unless
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true). QFS_INVALID_ARG for a bad region or a variable that
 * is not an http(s) URL; QFS_TOO_BIG when out (n bytes) is too small. */
qfs_status qfs_aws_endpoint(enum qfs_aws_service svc, const char *region, qfs_aws_env_fn env,
                            void *env_arg, char *out, size_t n);

/* Parses RFC 3339 UTC ("2026-05-01T16:00:00Z", optional fraction, Z or +00:00) into epoch ms. */
bool qfs_aws_parse_time(const char *s, int64_t *ms);

/* Parses the container credentials endpoint's JSON ({AccessKeyId, SecretAccessKey, Token,
 * Expiration}) into out (owned; secrets registered). QFS_PROTOCOL for missing or mistyped keys. */
qfs_status qfs_aws_parse_container_credentials(const char *body, size_t len,
                                               struct qfs_aws_credentials *out);

/* True when AWS_CONTAINER_CREDENTIALS_FULL_URI may be used: https to any host, or http to
 * loopback, 169.254.170.2 or 169.254.170.23 (as the SDKs allow). */
bool qfs_aws_full_uri_is_allowed(const char *uri);

/* Copies the text of the first <tag>...</tag> in an XML body into a new string (caller frees),
 * entities decoded. QFS_NOT_FOUND when absent, QFS_TOO_BIG when over max bytes. */
qfs_status qfs_aws_xml_text(const char *body, size_t len, const char *tag, size_t max, char **out);

/* Copies the raw inner XML of the first <tag>...</tag> (markup kept, entities not decoded).
 * Same statuses as qfs_aws_xml_text. */
qfs_status qfs_aws_xml_inner(const char *body, size_t len, const char *tag, size_t max, char **out);

/* An AWS error as decoded from a response. */
struct qfs_aws_error {
    char code[128];    /* "ThrottlingException"; "" when none could be found */
    char message[512]; /* cut to fit */
};

/* The one decoder of AWS errors: JSON __type (after the last '#') and message/Message, XML
 * <Error><Code>/<Message>, then the x-amzn-query-error and x-amzn-ErrorType headers (may be NULL). */
void qfs_aws_decode_error(const char *body, size_t len, const char *query_error,
                          const char *error_type, struct qfs_aws_error *out);
/* The one mapping of an AWS error code (with its HTTP code and message) to a qfs_status:
 * throttling and 5xx → QFS_UNAVAILABLE (*retryable), auth → QFS_DENIED, *NotFound* →
 * QFS_NOT_FOUND, validation and ConditionalCheckFailedException → QFS_PROTOCOL. */
qfs_status qfs_aws_error_status(long http_code, const char *code, const char *message,
                                bool *retryable);
bool qfs_aws_error_is_expired_token(const char *code);

/* ---- credentials provider ------------------------------------------------------------------- */

/* Where credentials come from: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] first,
 * else the container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against
 * http://169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI with the optional
 * AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]), fetched asynchronously and refreshed before expiry. */
struct qfs_aws_creds;

/* Reads the settings (not the endpoint). QFS_INVALID_ARG names the bad variable in a log line;
 * QFS_NOT_FOUND when no source is configured. loop and http are borrowed. */
qfs_status qfs_aws_creds_new(uv_loop_t *loop, struct qfs_http *http, qfs_aws_env_fn env,
                             void *env_arg, unsigned refresh_before_ms, struct qfs_aws_creds **out);
/* Waiters get QFS_UNAVAILABLE now; memory goes with the last close callback or fetch. */
void qfs_aws_creds_free(struct qfs_aws_creds *p);
/* The current credentials when usable now (borrowed until the next loop turn), else NULL. */
const struct qfs_aws_credentials *qfs_aws_creds_current(struct qfs_aws_creds *p);
/* Runs cb later, once usable credentials exist (QFS_OK) or fetching them failed (its status).
 * Starts a fetch when none is running. Not after qfs_aws_creds_free. */
typedef void (*qfs_aws_creds_fn)(qfs_status s, void *arg);
void qfs_aws_creds_wait(struct qfs_aws_creds *p, qfs_aws_creds_fn cb, void *arg);
/* Drops the current credentials after an ExpiredToken error and fetches new ones. Returns false
 * (and does nothing) for credentials that cannot be refreshed (from the environment). */
bool qfs_aws_creds_invalidate(struct qfs_aws_creds *p);
/* Number of successful fetches from the container endpoint (tests, metrics). */
unsigned qfs_aws_creds_fetches(const struct qfs_aws_creds *p);

/* The standard AWS variables this module reads, with what each means, for --help and the README
 * (NULL-terminated). */
struct qfs_aws_env_doc {
    const char *name;
    const char *meaning;
};
extern const struct qfs_aws_env_doc qfs_aws_env_docs[];

/* ---- the client ----------------------------------------------------------------------------- */

struct qfs_aws;

struct qfs_aws_options {
    const char *region;         /* default region; NULL: AWS_REGION, then AWS_DEFAULT_REGION */
    qfs_aws_env_fn env;         /* NULL: getenv */
    void *env_arg;
    unsigned max_attempts;      /* per call (0: 4) */
    unsigned refresh_before_ms; /* refresh container credentials this early (0: 10 minutes) */
};

/* Creates a client over http (borrowed; free the client first). Errors as qfs_aws_creds_new,
 * plus QFS_INVALID_ARG for a malformed region or endpoint variable. */
qfs_status qfs_aws_new(uv_loop_t *loop, struct qfs_http *http, const struct qfs_aws_options *opt,
                       struct qfs_aws **out);
/* Calls waiting for credentials end with QFS_UNAVAILABLE; calls already sent finish normally (or
 * are cancelled by qfs_http_free). Memory goes when the last one ends. NULL is fine. */
void qfs_aws_free(struct qfs_aws *aws);
const char *qfs_aws_region(const struct qfs_aws *aws);
struct qfs_aws_creds *qfs_aws_credentials_provider(struct qfs_aws *aws);

struct qfs_aws_call {
    enum qfs_aws_service service;
    const char *region;             /* NULL: the client's region */
    enum qfs_aws_protocol protocol;
    const char *target;             /* JSON protocols: X-Amz-Target, e.g. "AmazonSQS.SendMessage" */
    const char *body;               /* JSON object or form body (query: with Action and Version) */
    size_t body_len;
    const struct qfs_aws_credentials *credentials; /* NULL: the client's; else copied (assumed role) */
    unsigned timeout_ms;            /* per attempt (0: 30000) */
    size_t max_response;            /* (0: 1 MiB) */
    unsigned max_attempts;          /* (0: the client's) */
};

/* Borrowed for the duration of the callback. */
struct qfs_aws_response {
    qfs_status status;
    long http_code;          /* 0 when no response arrived */
    const char *body;        /* never NULL */
    size_t body_len;
    const char *error_code;  /* never NULL; "" on success */
    const char *error_message;
    const char *request_id;  /* never NULL */
    bool condition_failed;   /* ConditionalCheckFailedException (status QFS_PROTOCOL) */
    unsigned attempts;
};
typedef void (*qfs_aws_done_fn)(const struct qfs_aws_response *r, void *arg);

/* Sends a signed call (everything in c copied). Throttling, 5xx and transport errors are retried;
 * an ExpiredToken error refreshes container credentials and retries once. On QFS_OK cb runs later
 * exactly once; otherwise (QFS_INVALID_ARG, QFS_UNAVAILABLE when shutting down) never. */
qfs_status qfs_aws_call(struct qfs_aws *aws, const struct qfs_aws_call *c, qfs_aws_done_fn cb,
                        void *arg);

/* ---- helpers for the typed clients (aws_sqs, aws_sns, aws_ecs, aws_ecr, aws_secrets, aws_sts) - */

/* Copies the region (the 4th field) of an ARN into out when it is a valid region name. */
bool qfs_aws_arn_region(const char *arn, char *out, size_t n);

/* After decoding a successful response's body gave st: returns r when st is QFS_OK, else logs the
 * failure once and returns *scratch, a copy of r carrying st (QFS_PROTOCOL, QFS_TOO_BIG, ...). */
const struct qfs_aws_response *qfs_aws_response_decoded(const struct qfs_aws_response *r,
                                                        qfs_status st, const char *op,
                                                        struct qfs_aws_response *scratch);

/* Appends value RFC 3986-encoded for a form body (ALPHA DIGIT - . _ ~ kept, everything else
 * %XX in upper-case hex, so a space is %20, never '+') to out, by curl_easy_escape. */
qfs_status qfs_aws_form_escape(const char *value, size_t len, struct qfs_buf *out);

/* Appends "key": and s as a JSON string to b; QFS_INVALID_ARG when s is not valid UTF-8. */
qfs_status qfs_aws_json_put(struct qfs_buf *b, const char *key, const char *s);
struct cJSON;
/* Copies the string member key of obj (max bytes) into *out. QFS_NOT_FOUND when absent,
 * QFS_PROTOCOL when not a string, QFS_TOO_BIG when longer. */
qfs_status qfs_aws_json_string(const struct cJSON *obj, const char *key, size_t max, char **out);

#endif
