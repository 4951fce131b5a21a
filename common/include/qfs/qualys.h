/* Qualys Container Security API v1.3: the one client of qfs (auth, rate limiting, registries,
 * connectors, schedules, images, vulnerabilities), shared by qfs-registry and qfs-scanner-poller. */
#ifndef QFS_QUALYS_H
#define QFS_QUALYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "qfs/config.h"
#include "qfs/http.h"
#include "qfs/status.h"
#include "qfs/util.h"

struct qfs_aws;

/* ---- configuration ------------------------------------------------------------------------- */

/* The Qualys settings every service that talks to Qualys shares (filled by qfs_config_load). */
struct qfs_qualys_config {
    char *api_token;   /* QUALYS_API_TOKEN */
    char *username;    /* QUALYS_USERNAME */
    char *password;    /* QUALYS_PASSWORD */
    char *pod;         /* QUALYS_POD */
    char *gateway_url; /* QUALYS_GATEWAY_URL */
    char *secret_arn;  /* QFS_QUALYS_SECRET_ARN */
    bool force_scan;   /* QFS_QUALYS_FORCE_SCAN */
};

#define QFS_QUALYS__OFF(type, member, field) offsetof(type, member.field)

/* Rows for a service's config table, for a struct qfs_qualys_config held as `member` of the
 * service's config struct `type`:
 *     static const struct qfs_config_var vars[] = { QFS_QUALYS_CONFIG_VARS(struct cfg, qualys), ... };
 * Run qfs_qualys_config_check() after qfs_config_load(): the table alone cannot say which
 * combination of credentials is missing. */
#define QFS_QUALYS_CONFIG_VARS(type, member)                                                        \
    {"QUALYS_API_TOKEN", QFS_CFG_STRING, NULL, 0, 0,                                                \
     "Qualys API bearer token (instead of QUALYS_USERNAME/QUALYS_PASSWORD).", true, false,          \
     QFS_QUALYS__OFF(type, member, api_token), NULL},                                               \
    {"QUALYS_USERNAME", QFS_CFG_STRING, NULL, 0, 0,                                                 \
     "Qualys user exchanged with QUALYS_PASSWORD at the gateway's /auth for a JWT.", false, false,  \
     QFS_QUALYS__OFF(type, member, username), NULL},                                                \
    {"QUALYS_PASSWORD", QFS_CFG_STRING, NULL, 0, 0, "Password of QUALYS_USERNAME.", true, false,   \
     QFS_QUALYS__OFF(type, member, password), NULL},                                                \
    {"QUALYS_POD", QFS_CFG_STRING, NULL, 0, 0,                                                      \
     "Qualys platform (US1-US4, EU1-EU3, IN1, CA1, AE1, UK1, AU1, KSA1); or QUALYS_GATEWAY_URL.",   \
     false, false, QFS_QUALYS__OFF(type, member, pod), NULL},                                       \
    {"QUALYS_GATEWAY_URL", QFS_CFG_STRING, NULL, 0, 0,                                              \
     "Qualys gateway base URL (https; http only to loopback); or QUALYS_POD.", false, false,        \
     QFS_QUALYS__OFF(type, member, gateway_url), NULL},                                             \
    {"QFS_QUALYS_SECRET_ARN", QFS_CFG_STRING, NULL, 0, 0,                                           \
     "Secrets Manager secret holding {\"username\",\"password\"} or {\"token\"} for Qualys.",      \
     false, false, QFS_QUALYS__OFF(type, member, secret_arn), NULL},                                \
    {"QFS_QUALYS_FORCE_SCAN", QFS_CFG_BOOL, "false", 0, 0,                                          \
     "Ask Qualys to rescan images it has already scanned (needs the Force Registry Image Scan "     \
     "feature).", false, false, QFS_QUALYS__OFF(type, member, force_scan), NULL}

#define QFS_QUALYS_NCONFIG_VARS 7
/* The same rows for a bare struct qfs_qualys_config (tools and tests). */
extern const struct qfs_config_var qfs_qualys_config_vars[QFS_QUALYS_NCONFIG_VARS];

/* Checks the combination: one credential source (token, username with password, or secret ARN)
 * and one gateway (URL, or a known POD). Writes one line per problem naming the variables to err
 * (may be NULL) and returns QFS_PROTOCOL, else QFS_OK. */
qfs_status qfs_qualys_config_check(const struct qfs_qualys_config *c, FILE *err);

/* The gateway base URL of a POD ("US2", case-insensitive), or NULL for an unknown POD. */
const char *qfs_qualys_pod_gateway(const char *pod);
/* QFS_OK for an https:// URL, or http:// to a loopback host; QFS_INVALID_ARG otherwise. */
qfs_status qfs_qualys_gateway_check(const char *url);

/* ---- the client ---------------------------------------------------------------------------- */

struct qfs_qualys;

struct qfs_qualys_options {
    const char *gateway_url;  /* used when set ... */
    const char *pod;          /* ... else the POD's gateway; exactly one of the two */
    const char *api_token;    /* exactly one credential source: a static bearer token, */
    const char *username;     /* or a user and password exchanged for JWTs, */
    const char *password;
    const char *secret_arn;   /* or a Secrets Manager secret read through aws */
    struct qfs_aws *aws;      /* borrowed; required with secret_arn */
    bool force_scan;          /* forceScan of the schedules created */
    unsigned max_attempts;    /* HTTP attempts per request, 429 waits included (0: 6) */
    unsigned timeout_ms;      /* per attempt (0: 30000) */
    unsigned max_wait_ms;     /* longest wait a 429 may impose; longer fails the call (0: 120000) */
    unsigned backoff_base_ms; /* first backoff after a 5xx or transport error (0: 500) */
    unsigned renew_before_ms; /* renew a JWT this long before it expires (0: 10 minutes) */
    unsigned low_remaining;   /* space calls out once X-RateLimit-Remaining is this low (0: 10) */
    unsigned top_findings;    /* findings image_vulns keeps (0: 10; at most QFS_QUALYS_MAX_FINDINGS) */
};

/* Fills o from a loaded config (strings borrowed from c; aws borrowed). */
void qfs_qualys_options_from_config(const struct qfs_qualys_config *c, struct qfs_aws *aws,
                                    struct qfs_qualys_options *o);

/* Creates a client on loop over http (both borrowed; free this client first). Credentials are
 * copied and registered with qfs_log_add_secret. QFS_INVALID_ARG (logged, naming the setting) for
 * a bad gateway, an unknown POD, no or several credential sources, or a secret without aws. */
qfs_status qfs_qualys_new(uv_loop_t *loop, struct qfs_http *http, const struct qfs_qualys_options *opt,
                          struct qfs_qualys **out);
/* Calls not yet sent end with QFS_UNAVAILABLE on the next loop turn; calls on the wire end (also
 * QFS_UNAVAILABLE) when their HTTP request does, which qfs_http_free cancels. Memory goes with the
 * last close callback, so run the loop afterwards. NULL is fine. */
void qfs_qualys_free(struct qfs_qualys *q);
/* Tokens obtained so far, from POST /auth or from the secret; 0 for a static token (tests, metrics). */
unsigned qfs_qualys_auth_count(const struct qfs_qualys *q);

/* The calls the client makes, as its stats count them. */
enum qfs_qualys_call {
    QFS_QUALYS_CALL_AUTH,             /* POST /auth */
    QFS_QUALYS_CALL_AWS_BASE,
    QFS_QUALYS_CALL_LIST_CONNECTORS,
    QFS_QUALYS_CALL_CREATE_CONNECTOR,
    QFS_QUALYS_CALL_FIND_REGISTRY,
    QFS_QUALYS_CALL_CREATE_REGISTRY,
    QFS_QUALYS_CALL_CREATE_SCHEDULE,
    QFS_QUALYS_CALL_FIND_IMAGE,
    QFS_QUALYS_CALL_IMAGE_DETAIL,
    QFS_QUALYS_CALL_IMAGE_VULNS,
    QFS_QUALYS_CALL_COUNT
};
/* "auth", "aws_base", "list_connectors", ... as in the log lines; "?" out of range. */
const char *qfs_qualys_call_name(enum qfs_qualys_call c);

#define QFS_QUALYS_NSTATUS (QFS_INTERNAL + 1)
/* What the client has done since qfs_qualys_new, for metrics (read at flush time; loop thread). */
struct qfs_qualys_stats {
    uint64_t calls[QFS_QUALYS_CALL_COUNT][QFS_QUALYS_NSTATUS]; /* calls ended, by final status */
    uint64_t throttled; /* 429 answers, every attempt counted */
    uint64_t retries;   /* attempts tried again (after a 429, a 5xx or a transport error) */
    uint64_t reauths;   /* 401s answered by fetching a new token and sending again */
};
/* Copies the client's totals to out. */
void qfs_qualys_read_stats(const struct qfs_qualys *q, struct qfs_qualys_stats *out);

/* ---- results ------------------------------------------------------------------------------- */

#define QFS_QUALYS_MAX_FINDINGS 50
#define QFS_QUALYS_MAX_CVES 8

struct qfs_qualys_aws_base {
    char account_id[16];  /* 12 digits */
    char external_id[72]; /* the JSON token's text as sent (string or number), never via double */
};

struct qfs_qualys_connector {
    char name[128];
    char arn[640];
    char description[256];
};

struct qfs_qualys_registry {
    char uuid[64];
    char uri[320];
    char name[128];   /* "" when Qualys gave none */
    char account_id[16];
    char region[40];
};

struct qfs_qualys_image {
    char sha[65];                /* 64 lower-case hex */
    char scan_status[32];        /* "SUCCESS", "FAILED", ...; "" while null */
    char scan_error_code[128];   /* "" when null */
    char scan_error_message[256];
    int64_t last_scanned_ms;     /* epoch ms; 0 while null */
    int64_t updated_ms;
    bool has_vulns;              /* list: the counts object; detail: the vulnerabilities array */
    unsigned severity_counts[6]; /* [1]..[5] when has_vulns */
};

enum qfs_qualys_scan_state { QFS_QUALYS_SCAN_PENDING, QFS_QUALYS_SCAN_DONE, QFS_QUALYS_SCAN_FAILED };
/* Done: scanStatus SUCCESS, or no scanStatus but vulnerabilities present. Failed: a scan error
 * code, or a scanStatus that is neither SUCCESS nor a pending word. Else pending. */
enum qfs_qualys_scan_state qfs_qualys_image_state(const struct qfs_qualys_image *img);

struct qfs_qualys_finding {
    int64_t qid;
    int severity; /* 1..5 */
    bool patchable;
    char title[256];
    size_t ncves;
    char cves[QFS_QUALYS_MAX_CVES][32];
    char package[128];
    char installed_version[128];
    char fixed_version[128]; /* "" when there is no fix */
};

struct qfs_qualys_vuln_report {
    bool scanned;            /* false while Qualys has no vulnerability list for the image */
    unsigned by_severity[6]; /* [5] critical ... [1] minimal; [0] unused */
    unsigned total;
    unsigned patchable;      /* patchAvailable, or a fix version in software[] or result */
    unsigned ignored;        /* entries without a valid severity (not counted) */
    size_t nfindings;        /* most severe first, ties by qid; at most the client's top_findings */
    struct qfs_qualys_finding findings[QFS_QUALYS_MAX_FINDINGS];
};

/* The outcome of one call; everything is borrowed for the duration of the callback. */
struct qfs_qualys_response {
    qfs_status status;      /* QFS_OK, or the one mapping of HTTP/Qualys errors (see each call) */
    long http_code;         /* of the last request; 0 when none was answered */
    const char *error_code; /* Qualys errorCode, "" when none */
    const char *message;    /* Qualys message (or a short reason), "" when none */
    unsigned attempts;      /* HTTP attempts of the last request */
    const struct qfs_qualys_aws_base *aws_base;
    const struct qfs_qualys_connector *connectors;
    size_t nconnectors;
    const struct qfs_qualys_registry *registry;
    const char *uuid;       /* create_registry / create_schedule: the id, "" when the body had none */
    const struct qfs_qualys_image *image;
    const struct qfs_qualys_vuln_report *vulns;
};

/* Runs on the loop exactly once per call that returned QFS_OK, never inside the call. */
typedef void (*qfs_qualys_done_fn)(const struct qfs_qualys_response *r, void *arg);

/* Every call below copies its arguments. It returns QFS_OK and calls cb later, or returns
 * QFS_PROTOCOL (an argument that may not go into a request: bad repository, tag, sha, host,
 * ARN, ...), QFS_INVALID_ARG, or QFS_UNAVAILABLE while the client shuts down, and never calls cb.
 * Statuses in cb: QFS_DENIED (401 after one re-auth, 403), QFS_NOT_FOUND (404; for find_* no
 * match), QFS_UNAVAILABLE (429 past the attempts, 5xx, transport; for POSTs any outcome that may
 * have been applied: re-list), QFS_TIMED_OUT, QFS_PROTOCOL (400, or a body not understood),
 * QFS_TOO_BIG. */

/* GET /registry/aws-base → r->aws_base. */
qfs_status qfs_qualys_aws_base(struct qfs_qualys *q, qfs_qualys_done_fn cb, void *arg);
/* GET /registry/aws/connectors → r->connectors/r->nconnectors (204 and [] are empty). */
qfs_status qfs_qualys_list_connectors(struct qfs_qualys *q, qfs_qualys_done_fn cb, void *arg);
/* POST /registry/aws/connector with the external ID from aws_base; account_type NULL: "Global". */
qfs_status qfs_qualys_create_connector(struct qfs_qualys *q, const char *name, const char *role_arn,
                                       const char *external_id, const char *account_type,
                                       qfs_qualys_done_fn cb, void *arg);
/* GET /registry filtered on registryUri, every page, exact match → r->registry, or
 * QFS_NOT_FOUND. registry is a host or an https:// URI. */
qfs_status qfs_qualys_find_registry(struct qfs_qualys *q, const char *registry,
                                    qfs_qualys_done_fn cb, void *arg);
/* POST /registry for the ECR registry of account/region with role_arn → r->uuid ("" when the
 * body carried none: find_registry then). account_type NULL: US_Gov for us-gov-*, else Global. */
qfs_status qfs_qualys_create_registry(struct qfs_qualys *q, const char *account, const char *region,
                                      const char *role_arn, const char *name,
                                      const char *account_type, qfs_qualys_done_fn cb, void *arg);
/* POST /registry/{uuid}/schedule: an on-demand scan of repository:tag → r->uuid (may be ""). */
qfs_status qfs_qualys_create_schedule(struct qfs_qualys *q, const char *registry_uuid,
                                      const char *repository, const char *tag, const char *name,
                                      qfs_qualys_done_fn cb, void *arg);
/* GET /images filtered on registry, repository and tag, newest first → r->image: the one whose
 * repoDigests hold manifest_digest (64 hex, "sha256:" optional) when given, else the newest whose
 * repo[] names registry/repository:tag. QFS_NOT_FOUND: not known to Qualys yet. */
qfs_status qfs_qualys_find_image(struct qfs_qualys *q, const char *registry_host,
                                 const char *repository, const char *tag,
                                 const char *manifest_digest, qfs_qualys_done_fn cb, void *arg);
/* GET /images/{sha} → r->image. QFS_NOT_FOUND: not known yet. */
qfs_status qfs_qualys_image_detail(struct qfs_qualys *q, const char *sha, qfs_qualys_done_fn cb,
                                   void *arg);
/* GET /images/{sha}/vuln (details[], unpaged) → r->vulns. */
qfs_status qfs_qualys_image_vulns(struct qfs_qualys *q, const char *sha, qfs_qualys_done_fn cb,
                                  void *arg);

/* ---- pure helpers (no I/O), exposed for tests and fuzzing ---------------------------------- */

/* The one mapping of an answer to a status: 2xx OK, 401/403 denied, 404 not found, 408 timed out,
 * 409/429/5xx unavailable, 413 too big, other codes protocol; http_code 0 keeps the transport
 * status. With may_be_applied (a POST), an unknown outcome is unavailable: re-list, don't retry. */
qfs_status qfs_qualys_map(long http_code, qfs_status transport, bool may_be_applied);

/* Values that go into QQL filters and paths: repository [a-z0-9._/-] (1..256), tag
 * [A-Za-z0-9_.-] (1..128), sha 64 hex with an optional "sha256:", registry host
 * [a-z0-9.-] with an optional :port, registry UUID [A-Za-z0-9-] (1..63). */
bool qfs_qualys_repository_is_valid(const char *s);
bool qfs_qualys_tag_is_valid(const char *s);
bool qfs_qualys_sha_is_valid(const char *s);
bool qfs_qualys_host_is_valid(const char *s);
bool qfs_qualys_uuid_is_valid(const char *s);
/* "https://<account>.dkr.ecr.<region>.amazonaws.com[.cn]"; QFS_PROTOCOL for a bad account/region. */
qfs_status qfs_qualys_ecr_registry_uri(const char *account, const char *region, char *out, size_t n);

/* The QQL (not yet URL-encoded) for find_image; QFS_PROTOCOL when a value is not valid. */
qfs_status qfs_qualys_image_filter(const char *host, const char *repository, const char *tag,
                                   struct qfs_buf *out);
/* Appends value URL-encoded once (RFC 3986 unreserved kept, everything else %XX). */
qfs_status qfs_qualys_url_escape(const char *value, struct qfs_buf *out);
/* The /auth form: username=..&password=..&token=true, each value encoded once. */
qfs_status qfs_qualys_auth_form(const char *username, const char *password, struct qfs_buf *out);

/* How long a 429 makes us wait, before jitter: X-RateLimit-ToWait-Sec, else Retry-After, else
 * X-RateLimit-Window-Sec, else 60 s. Any argument may be NULL. */
uint64_t qfs_qualys_throttle_wait_ms(const char *to_wait_sec, const char *retry_after,
                                     const char *window_sec, int64_t now_ms);
/* The exp claim of a JWT in epoch ms, or 0 when it does not decode (no signature check). */
int64_t qfs_qualys_jwt_exp_ms(const char *jwt);
/* When to renew a token obtained at now_ms: before exp_ms (0: unknown, 4 h lifetime assumed),
 * by renew_before_ms or half the lifetime, whichever is shorter; at least 1 s from now. */
int64_t qfs_qualys_renew_at_ms(int64_t now_ms, int64_t exp_ms, unsigned renew_before_ms);

struct qfs_qualys_error {
    char code[64];     /* errorCode, "" when none */
    char message[512]; /* message (or the start of a non-JSON body), control characters removed */
};
void qfs_qualys_decode_error(const char *body, size_t len, struct qfs_qualys_error *out);

/* The /auth body: the raw JWT, trimmed. *jwt is the caller's (registered as a secret).
 * QFS_PROTOCOL for an empty body or one that cannot be a token. */
qfs_status qfs_qualys_decode_token(const char *body, size_t len, char **jwt);
/* A Secrets Manager secret: {"username","password"} or {"token"} / {"api_token"}. Outputs are
 * the caller's (registered as secrets); *token is set, or *username and *password. */
qfs_status qfs_qualys_decode_secret(const char *secret, char **token, char **username,
                                    char **password);

qfs_status qfs_qualys_decode_aws_base(const char *body, size_t len, struct qfs_qualys_aws_base *out);
/* A top-level array or {"data":[...]}. *items is the caller's (free()). */
qfs_status qfs_qualys_decode_connectors(const char *body, size_t len,
                                        struct qfs_qualys_connector **items, size_t *n);
/* One /registry page: *rows is the number of entries; *found/out the entry whose registryUri
 * is registry_uri (scheme, case and trailing '/' aside). */
qfs_status qfs_qualys_decode_registry_page(const char *body, size_t len, const char *registry_uri,
                                           struct qfs_qualys_registry *out, bool *found,
                                           size_t *rows);
/* The id in a create response: a JSON object member named by keys (NULL-terminated), a JSON
 * string, or a bare id. out is "" when there is none. QFS_PROTOCOL for an id that is not one. */
qfs_status qfs_qualys_decode_created_id(const char *body, size_t len, const char *const *keys,
                                        char *out, size_t n);

struct qfs_qualys_image_match {
    const char *host;       /* registry host, compared case-insensitively */
    const char *repository;
    const char *tag;
    const char *digest;     /* 64 hex (no prefix) or NULL */
};
/* One /images page: updates *best (when *found is false or the row is newer) with the rows that
 * match m. */
qfs_status qfs_qualys_decode_image_page(const char *body, size_t len,
                                        const struct qfs_qualys_image_match *m,
                                        struct qfs_qualys_image *best, bool *found, size_t *rows);
qfs_status qfs_qualys_decode_image_detail(const char *body, size_t len, struct qfs_qualys_image *out);
/* The /vuln body's details[] (never data): counts and the top_n findings. */
qfs_status qfs_qualys_decode_vulns(const char *body, size_t len, size_t top_n,
                                   struct qfs_qualys_vuln_report *out);
/* Package, installed and required version from a result "#table" text (first data row). */
bool qfs_qualys_parse_result_table(const char *result, char *package, size_t pn, char *installed,
                                   size_t in, char *fixed, size_t fn);

#endif
