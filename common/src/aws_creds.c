/* AWS credentials: the environment, or the ECS container endpoint, refreshed before expiry. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "qfs/aws.h"
#include "qfs/log.h"
#include "qfs/util.h"

#define ECS_CREDENTIALS_HOST "http://169.254.170.2"
#define DEFAULT_REFRESH_BEFORE_MS (10 * 60 * 1000)
#define MIN_REFRESH_DELAY_MS 1000
#define RETRY_FETCH_MS 30000
/* Credentials this close to expiry (at most a quarter of their lifetime) are not used: a request
 * signed now may arrive later. */
#define EXPIRY_MARGIN_MS 30000
/* Fetches in a row that return credentials already too close to expiry before waiters give up. */
#define MAX_STALE_FETCHES 10
#define MAX_CREDENTIALS_BODY (64 * 1024)
#define MAX_TOKEN (16 * 1024)

struct waiter {
    struct waiter *next;
    qfs_aws_creds_fn cb;
    void *arg;
};

struct qfs_aws_creds {
    uv_loop_t *loop;
    struct qfs_http *http;
    bool from_env;
    char *url;            /* container endpoint */
    char *token;          /* AWS_CONTAINER_AUTHORIZATION_TOKEN */
    char *token_file;     /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, read at every fetch */
    unsigned refresh_before_ms;
    struct qfs_aws_credentials cur;
    bool have;
    bool fetching;
    unsigned fetches;
    int64_t refresh_at_ms;
    int64_t fetched_at_ms;
    unsigned stale_fetches;
    qfs_status pending_error; /* a fetch that could not start, reported from the timer */
    struct waiter *waiters;
    uv_timer_t timer;     /* refresh, and delivery of waiters when credentials are at hand */
    bool timer_closed;
    bool closing;
};

/* ---- credentials values --------------------------------------------------------------------- */

void qfs_aws_credentials_copy(struct qfs_aws_credentials *dst, const struct qfs_aws_credentials *src)
{
    dst->access_key_id = qfs_xstrdup(src->access_key_id ? src->access_key_id : "");
    dst->secret_access_key = qfs_xstrdup(src->secret_access_key ? src->secret_access_key : "");
    dst->session_token = src->session_token ? qfs_xstrdup(src->session_token) : NULL;
    dst->expires_ms = src->expires_ms;
    qfs_log_add_secret(dst->secret_access_key);
    if (dst->session_token) qfs_log_add_secret(dst->session_token);
}

void qfs_aws_credentials_cleanup(struct qfs_aws_credentials *c)
{
    if (!c) return;
    if (c->secret_access_key) explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
    if (c->session_token) explicit_bzero(c->session_token, strlen(c->session_token));
    free(c->access_key_id);
    free(c->secret_access_key);
    free(c->session_token);
    memset(c, 0, sizeof(*c));
}

/* ---- pure parsing --------------------------------------------------------------------------- */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool qfs_aws_parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    if (!s || strlen(s) < 20) return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int k = 0;
        while (*p >= '0' && *p <= '9') {
            if (k < 3) frac_ms = frac_ms * 10 + (*p - '0');
            k++;
            p++;
        }
        if (k == 0) return false;
        for (; k < 3; k++) frac_ms *= 10;
    }
    if (!((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') && strcmp(p, "+00:00") != 0) return false;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return false;
    *ms = (int64_t)t * 1000 + frac_ms;
    return true;
}

qfs_status qfs_aws_parse_container_credentials(const char *body, size_t len,
                                               struct qfs_aws_credentials *out)
{
    memset(out, 0, sizeof(*out));
    qfs_status st = QFS_OK;
    char *exp = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        st = QFS_PROTOCOL;
        goto out;
    }
    st = qfs_aws_json_string(root, "AccessKeyId", 128, &out->access_key_id);
    if (st == QFS_OK) st = qfs_aws_json_string(root, "SecretAccessKey", 256, &out->secret_access_key);
    if (st == QFS_OK) qfs_log_add_secret(out->secret_access_key);
    if (st == QFS_OK) {
        st = qfs_aws_json_string(root, "Token", MAX_TOKEN, &out->session_token);
        if (st == QFS_NOT_FOUND) st = QFS_OK; /* long-term keys come without one */
    }
    if (st == QFS_OK && out->session_token) qfs_log_add_secret(out->session_token);
    if (st == QFS_OK) {
        st = qfs_aws_json_string(root, "Expiration", 64, &exp);
        if (st == QFS_NOT_FOUND) st = QFS_OK;
        else if (st == QFS_OK && !qfs_aws_parse_time(exp, &out->expires_ms)) st = QFS_PROTOCOL;
        /* 0 means "never expires" (long-term keys): an Expiration at or before the epoch is an
         * expired credential, not that. */
        else if (st == QFS_OK && out->expires_ms <= 0) out->expires_ms = 1;
    }
    if (st == QFS_OK && (!out->access_key_id[0] || !out->secret_access_key[0])) st = QFS_PROTOCOL;
    if (st == QFS_NOT_FOUND || st == QFS_TOO_BIG) st = QFS_PROTOCOL;
out:
    if (st != QFS_OK) qfs_aws_credentials_cleanup(out);
    free(exp);
    cJSON_Delete(root);
    return st;
}

bool qfs_aws_full_uri_is_allowed(const char *uri)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "https") == 0) {
        ok = true;
    } else if (strcasecmp(scheme, "http") == 0) {
        unsigned a, b, c, d;
        char tail;
        if (strcmp(host, "169.254.170.2") == 0 || strcmp(host, "169.254.170.23") == 0 ||
            strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
            strcasecmp(host, "[fd00:ec2::23]") == 0)
            ok = true;
        else if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
                 c < 256 && d < 256)
            ok = true;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* ---- the provider --------------------------------------------------------------------------- */

static void fetch(struct qfs_aws_creds *p);

static int64_t lifetime(const struct qfs_aws_creds *p)
{
    int64_t life = p->cur.expires_ms - p->fetched_at_ms;
    return life > 0 ? life : 0;
}

static bool usable(const struct qfs_aws_creds *p)
{
    if (!p->have) return false;
    if (p->cur.expires_ms == 0) return true;
    int64_t margin = lifetime(p) / 4;
    if (margin > EXPIRY_MARGIN_MS) margin = EXPIRY_MARGIN_MS;
    return qfs_now_ms() < p->cur.expires_ms - margin;
}

static void maybe_release(struct qfs_aws_creds *p)
{
    if (!p->closing || !p->timer_closed || p->fetching) return;
    qfs_aws_credentials_cleanup(&p->cur);
    free(p->url);
    if (p->token) explicit_bzero(p->token, strlen(p->token));
    free(p->token);
    free(p->token_file);
    free(p);
}

static void timer_closed(uv_handle_t *h)
{
    struct qfs_aws_creds *p = h->data;
    p->timer_closed = true;
    maybe_release(p);
}

/* Hands s to every waiter. Waiters added by the callbacks wait for the next round. */
static void notify(struct qfs_aws_creds *p, qfs_status s)
{
    struct waiter *w = p->waiters;
    p->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        w->cb(s, w->arg);
        free(w);
        w = next;
    }
}

static void schedule(struct qfs_aws_creds *p, uint64_t delay_ms);

/* Delivers pending outcomes to waiters, then refreshes when it is time. */
static void on_timer(uv_timer_t *t)
{
    struct qfs_aws_creds *p = t->data;
    if (p->pending_error != QFS_OK) {
        qfs_status st = p->pending_error;
        p->pending_error = QFS_OK;
        notify(p, usable(p) ? QFS_OK : st);
    }
    if (p->waiters && usable(p)) notify(p, QFS_OK);
    if (p->closing || p->from_env) return;
    int64_t now = qfs_now_ms();
    if (!usable(p) || now >= p->refresh_at_ms) {
        if (!usable(p) && !p->waiters) return; /* nobody needs them yet: fetch on demand */
        fetch(p);
    } else {
        schedule(p, (uint64_t)(p->refresh_at_ms - now));
    }
}

static void schedule(struct qfs_aws_creds *p, uint64_t delay_ms)
{
    if (!p->closing) uv_timer_start(&p->timer, on_timer, delay_ms, 0);
}

/* When to refresh: refresh_before_ms ahead of expiry, or half their lifetime ahead for short-lived
 * ones; never sooner than a second from now. */
static int64_t refresh_at(const struct qfs_aws_creds *p)
{
    int64_t now = qfs_now_ms();
    int64_t ahead = (int64_t)p->refresh_before_ms;
    if (ahead > lifetime(p) / 2) ahead = lifetime(p) / 2;
    int64_t at = p->cur.expires_ms - ahead;
    return at < now + MIN_REFRESH_DELAY_MS ? now + MIN_REFRESH_DELAY_MS : at;
}

static void on_fetched(const struct qfs_http_response *r, void *arg)
{
    struct qfs_aws_creds *p = arg;
    p->fetching = false;
    qfs_status st = r->status;
    struct qfs_aws_credentials fresh;
    if (st == QFS_OK) {
        st = qfs_aws_parse_container_credentials(r->body, r->body_len, &fresh);
        if (st != QFS_OK) qfs_warn("container credentials response not understood", "status",
                                   qfs_status_str(st));
    } else if (r->code) {
        /* The endpoint reports errors as {"code":...,"message":...}. */
        char code[16];
        snprintf(code, sizeof(code), "%ld", r->code);
        cJSON *root = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "code");
        qfs_warn("container credentials refused", "http_code", code, "code",
                 cJSON_IsString(c) ? c->valuestring : NULL, "status", qfs_status_str(st));
        cJSON_Delete(root);
    }
    if (p->closing) {
        if (st == QFS_OK) qfs_aws_credentials_cleanup(&fresh);
        maybe_release(p);
        return;
    }
    if (st == QFS_OK) {
        qfs_aws_credentials_cleanup(&p->cur);
        p->cur = fresh;
        p->have = true;
        p->fetches++;
        p->fetched_at_ms = qfs_now_ms();
        if (!p->cur.expires_ms) {
            uv_timer_stop(&p->timer);
        } else if (usable(p)) {
            p->refresh_at_ms = refresh_at(p);
            schedule(p, (uint64_t)(p->refresh_at_ms - qfs_now_ms()));
        } else if (++p->stale_fetches < MAX_STALE_FETCHES) {
            /* The endpoint still hands out credentials about to expire: ask again shortly. */
            p->refresh_at_ms = qfs_now_ms() + MIN_REFRESH_DELAY_MS;
            schedule(p, MIN_REFRESH_DELAY_MS);
            return;
        } else {
            qfs_warn("container credentials endpoint keeps returning expiring credentials");
            p->stale_fetches = 0;
            notify(p, QFS_UNAVAILABLE);
            return;
        }
        p->stale_fetches = 0;
        notify(p, QFS_OK);
        return;
    }
    if (usable(p)) {
        /* Keep what we have and try again a little later. */
        int64_t left = (p->cur.expires_ms - qfs_now_ms()) / 2;
        if (left < MIN_REFRESH_DELAY_MS) left = MIN_REFRESH_DELAY_MS;
        p->refresh_at_ms = qfs_now_ms() + (left < RETRY_FETCH_MS ? left : RETRY_FETCH_MS);
        schedule(p, (uint64_t)(p->refresh_at_ms - qfs_now_ms()));
        notify(p, QFS_OK);
    } else {
        notify(p, st);
    }
}

static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = qfs_xmalloc(MAX_TOKEN + 1);
    size_t n = fread(buf, 1, MAX_TOKEN, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
    return buf;
}

static void fetch(struct qfs_aws_creds *p)
{
    if (p->fetching || p->closing || p->from_env) return;
    char *token = p->token_file ? read_token_file(p->token_file) : NULL;
    const char *tok = token ? token : p->token;
    char *auth = NULL;
    qfs_status st = QFS_OK;
    if (p->token_file && !token) {
        qfs_warn("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        st = QFS_IO;
    } else if (tok && *tok) {
        if (strpbrk(tok, "\r\n")) st = QFS_INVALID_ARG;
        qfs_log_add_secret(tok);
        auth = qfs_xasprintf("Authorization: %s", tok);
    }
    const char *headers[] = {"Accept: application/json", auth, NULL};
    struct qfs_http_request req = {
        .method = "GET",
        .url = p->url,
        .headers = headers,
        .timeout_ms = 5000,
        .max_response = MAX_CREDENTIALS_BODY,
        .max_attempts = 3,
        .backoff_base_ms = 100,
        .backoff_max_ms = 2000,
    };
    if (st == QFS_OK) st = qfs_http_request(p->http, &req, on_fetched, p);
    if (st == QFS_OK) p->fetching = true;
    if (auth) explicit_bzero(auth, strlen(auth));
    free(auth);
    if (token) explicit_bzero(token, strlen(token));
    free(token);
    if (st != QFS_OK) {
        /* Report through the loop, never from inside the caller's stack. */
        p->pending_error = st;
        schedule(p, 0);
    }
}

static const char *env_get(qfs_aws_env_fn env, void *arg, const char *name)
{
    const char *v = env ? env(name, arg) : getenv(name);
    return v && *v ? v : NULL;
}

qfs_status qfs_aws_creds_new(uv_loop_t *loop, struct qfs_http *http, qfs_aws_env_fn env,
                             void *env_arg, unsigned refresh_before_ms, struct qfs_aws_creds **out)
{
    *out = NULL;
    const char *akid = env_get(env, env_arg, "AWS_ACCESS_KEY_ID");
    const char *secret = env_get(env, env_arg, "AWS_SECRET_ACCESS_KEY");
    const char *session = env_get(env, env_arg, "AWS_SESSION_TOKEN");
    const char *rel = env_get(env, env_arg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_get(env, env_arg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (secret) qfs_log_add_secret(secret);
    if (session) qfs_log_add_secret(session);
    if ((akid != NULL) != (secret != NULL)) {
        qfs_error("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together", "variable",
                  akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return QFS_INVALID_ARG;
    }
    if (!akid && !rel && !full) {
        qfs_error("no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or run with a "
                  "task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)");
        return QFS_NOT_FOUND;
    }
    if (!akid && rel && rel[0] != '/') {
        qfs_error("malformed setting", "variable", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        return QFS_INVALID_ARG;
    }
    if (!akid && !rel && !qfs_aws_full_uri_is_allowed(full)) {
        qfs_error("AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, loopback, 169.254.170.2 or "
                  "169.254.170.23", "variable", "AWS_CONTAINER_CREDENTIALS_FULL_URI");
        return QFS_INVALID_ARG;
    }

    struct qfs_aws_creds *p = qfs_xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->http = http;
    p->refresh_before_ms = refresh_before_ms ? refresh_before_ms : DEFAULT_REFRESH_BEFORE_MS;
    if (akid) {
        struct qfs_aws_credentials c = {(char *)akid, (char *)secret, (char *)session, 0};
        qfs_aws_credentials_copy(&p->cur, &c);
        p->have = true;
        p->from_env = true;
    } else {
        p->url = rel ? qfs_xasprintf("%s%s", ECS_CREDENTIALS_HOST, rel) : qfs_xstrdup(full);
        if (!rel) {
            const char *tok = env_get(env, env_arg, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
            const char *file = env_get(env, env_arg, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            if (tok) {
                p->token = qfs_xstrdup(tok);
                qfs_log_add_secret(tok);
            }
            if (file) p->token_file = qfs_xstrdup(file);
        }
    }
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    *out = p;
    return QFS_OK;
}

void qfs_aws_creds_free(struct qfs_aws_creds *p)
{
    if (!p || p->closing) return;
    p->closing = true;
    notify(p, QFS_UNAVAILABLE);
    uv_close((uv_handle_t *)&p->timer, timer_closed);
}

const struct qfs_aws_credentials *qfs_aws_creds_current(struct qfs_aws_creds *p)
{
    return usable(p) ? &p->cur : NULL;
}

void qfs_aws_creds_wait(struct qfs_aws_creds *p, qfs_aws_creds_fn cb, void *arg)
{
    qfs_assert(!p->closing);
    struct waiter *w = qfs_xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    w->next = p->waiters;
    p->waiters = w;
    if (usable(p)) schedule(p, 0); /* deliver on the next loop turn */
    else fetch(p);
}

bool qfs_aws_creds_invalidate(struct qfs_aws_creds *p)
{
    if (p->from_env || p->closing) return false;
    p->have = false;
    fetch(p);
    return true;
}

unsigned qfs_aws_creds_fetches(const struct qfs_aws_creds *p)
{
    return p->fetches;
}
