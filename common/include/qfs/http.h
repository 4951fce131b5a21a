/* HTTP client: libcurl multi driven by a libuv loop, with retries, size caps and per-host limits. */
#ifndef QFS_HTTP_H
#define QFS_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "qfs/status.h"

struct qfs_http;

struct qfs_http_options {
    unsigned max_total;     /* transfers in flight at once over all hosts (0: 64) */
    unsigned max_per_host;  /* transfers and connections per scheme://host:port (0: 8) */
    const char *user_agent; /* copied; NULL: "qfs/<version>" */
};

struct qfs_http_header {
    const char *name;
    const char *value;
};

/* The outcome of a request (or, for the retry hook, of one attempt). Everything it points to is
 * borrowed for the duration of the callback. */
struct qfs_http_response {
    qfs_status status;  /* mapped from the transport result and the HTTP code (see qfs_http_map) */
    long code;          /* HTTP status code, 0 when no response arrived */
    const char *body;   /* NUL-terminated, never NULL ("" when empty) */
    size_t body_len;
    unsigned attempts;  /* attempts made so far, at least 1 once a transfer ran */
    const char *error;  /* short text for transport failures, NULL otherwise */
    const struct qfs_http_header *headers; /* response headers of the last attempt (bounded) */
    size_t nheaders;
};

/* Returns the value of the first response header called name (case-insensitive), or NULL. */
const char *qfs_http_response_header(const struct qfs_http_response *r, const char *name);

/* Called on the loop thread after a failed attempt while attempts remain. retryable is the module's
 * own verdict (transport error, 408, 429, 5xx); *delay_ms holds the server-given delay
 * (Retry-After) or 0 for the default jittered backoff, and the hook may change it. Returning false
 * vetoes the retry (e.g. a non-idempotent POST); returning true retries even a non-retryable one. */
typedef bool (*qfs_http_retry_fn)(const struct qfs_http_response *attempt, bool retryable,
                                  uint64_t *delay_ms, void *arg);

/* Called before every attempt with the easy handle fully set up and the request headers in
 * *headers, to set more curl options or append headers (used for SigV4). A non-OK return fails
 * the request with that status. Never set CURLOPT_PRIVATE, the callbacks or TLS options. */
typedef qfs_status (*qfs_http_prepare_fn)(CURL *easy, struct curl_slist **headers, void *arg);

/* Runs on the loop thread exactly once per accepted request. */
typedef void (*qfs_http_done_fn)(const struct qfs_http_response *r, void *arg);

struct qfs_http_request {
    const char *method;           /* "GET", "POST", ...; NULL: POST when body is set, else GET */
    const char *url;              /* http:// or https:// only */
    const char *const *headers;   /* "Name: value" strings, NULL-terminated, may be NULL */
    const void *body;             /* sent as is with its length; may be NULL */
    size_t body_len;
    unsigned timeout_ms;          /* per attempt, connect included (0: 30000) */
    size_t max_response;          /* response body cap, QFS_TOO_BIG past it (0: 1 MiB) */
    unsigned max_attempts;        /* 0: 3; 1 disables retries */
    unsigned backoff_base_ms;     /* first backoff ceiling, doubled per attempt (0: 200) */
    unsigned backoff_max_ms;      /* backoff ceiling (0: 20000) */
    unsigned max_server_delay_ms; /* longest Retry-After honoured; longer ends the request (0: 60000) */
    qfs_http_retry_fn retry;      /* optional */
    qfs_http_prepare_fn prepare;  /* optional */
    void *hook_arg;               /* passed to retry and prepare; must outlive the request */
};

/* Creates a client on loop (borrowed; it must outlive the client). TLS peer and host verification
 * are always on. Returns QFS_INTERNAL when libcurl or libuv cannot be set up. */
qfs_status qfs_http_new(uv_loop_t *loop, const struct qfs_http_options *opt, struct qfs_http **out);

/* Cancels every request (their callbacks run now, with QFS_UNAVAILABLE and error "cancelled") and
 * closes the client's handles; the memory is released by close callbacks, so run the loop
 * afterwards, after which uv_loop_close() succeeds. Safe inside a done callback. NULL is fine. */
void qfs_http_free(struct qfs_http *http);

/* Starts a request. Everything in req is copied. On QFS_OK, cb runs later exactly once; on any
 * other status (QFS_INVALID_ARG for a bad request, QFS_TOO_BIG for a body over 8 MiB,
 * QFS_UNAVAILABLE while the client shuts down) cb is never called. */
qfs_status qfs_http_request(struct qfs_http *http, const struct qfs_http_request *req,
                            qfs_http_done_fn cb, void *arg);

/* What a client has done since qfs_http_new, for metrics (read at flush time; loop thread). */
struct qfs_http_stats {
    uint64_t requests;         /* requests ended, each over all its attempts */
    uint64_t failures;         /* requests that ended with a status other than QFS_OK */
    uint64_t retries;          /* attempts followed by another one */
    uint64_t throttled;        /* 429 answers */
    uint64_t server_errors;    /* 5xx answers */
    uint64_t transport_errors; /* attempts that got no HTTP answer */
};
/* Copies the client's totals to out. */
void qfs_http_read_stats(const struct qfs_http *http, struct qfs_http_stats *out);

/* The one mapping of a transfer result (curl code, HTTP code, whether the body cap was hit) to a
 * qfs_status; *retryable says whether trying again may help. Pure; exposed for tests. */
qfs_status qfs_http_map(CURLcode cc, long code, bool too_big, bool *retryable);

/* Parses a Retry-After value (delta seconds or an HTTP date) into a delay from now_ms.
 * Returns false when it is neither. */
bool qfs_http_parse_retry_after(const char *value, int64_t now_ms, uint64_t *delay_ms);

/* Full-jitter backoff for the given attempt (1-based): a value in [0, min(cap, base*2^(n-1))]
 * chosen by rnd. Pure. */
uint64_t qfs_http_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint64_t rnd);

#endif
