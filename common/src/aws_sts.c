/* STS AssumeRole (aws-wire.md §2.6) on the regional endpoint, with a per-role credentials cache. */
#include "qfs/aws_sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define MAX_ROLES 256
#define MAX_ROLE_ARN 2048
#define MAX_SESSION_TOKEN (64 * 1024)
#define DEFAULT_DURATION 3600
#define DEFAULT_REUSE_MARGIN_MS (5 * 60 * 1000)

/* ---- pure parts ----------------------------------------------------------------------------- */

static bool name_chars(const char *s, size_t min, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n < min || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

static bool account_ok(const char *a)
{
    if (!a || strlen(a) != 12) return false;
    for (int i = 0; i < 12; i++)
        if (a[i] < '0' || a[i] > '9') return false;
    return true;
}

static bool partition_ok(const char *p)
{
    return p && (strcmp(p, "aws") == 0 || strcmp(p, "aws-cn") == 0 || strcmp(p, "aws-us-gov") == 0);
}

qfs_status qfs_aws_role_arn(const char *partition, const char *account, const char *role_name,
                            char *out, size_t n)
{
    if (!partition_ok(partition) || !account_ok(account) || !role_name ||
        !name_chars(role_name, 1, 64, "_+=,.@-"))
        return QFS_INVALID_ARG;
    int w = snprintf(out, n, "arn:%s:iam::%s:role/%s", partition, account, role_name);
    return w < 0 || (size_t)w >= n ? QFS_TOO_BIG : QFS_OK;
}

qfs_status qfs_aws_role_for(const char *hub_account, const char *partition, const char *account,
                            const char *role_name, char *out, size_t n)
{
    if (!out || n == 0) return QFS_INVALID_ARG;
    out[0] = '\0';
    if (hub_account && account && strcmp(hub_account, account) == 0) return QFS_OK;
    return qfs_aws_role_arn(partition, account, role_name, out, n);
}

bool qfs_aws_role_arn_is_valid(const char *arn)
{
    if (!arn || strlen(arn) > MAX_ROLE_ARN || strncmp(arn, "arn:", 4) != 0) return false;
    char partition[16], account[16];
    const char *p = arn + 4;
    size_t k = strcspn(p, ":");
    if (k >= sizeof(partition)) return false;
    memcpy(partition, p, k);
    partition[k] = '\0';
    p += k;
    if (!partition_ok(partition) || strncmp(p, ":iam::", 6) != 0) return false;
    p += 6;
    k = strcspn(p, ":");
    if (k != 12) return false;
    memcpy(account, p, k);
    account[k] = '\0';
    p += k;
    if (!account_ok(account) || strncmp(p, ":role/", 6) != 0) return false;
    p += 6;
    return name_chars(p, 1, 512, "_+=,.@-/") && p[strlen(p) - 1] != '/';
}

qfs_status qfs_aws_sts_assume_role_encode(const char *role_arn, const char *session_name,
                                          unsigned duration_seconds, struct qfs_buf *out)
{
    if (!qfs_aws_role_arn_is_valid(role_arn) || !session_name ||
        !name_chars(session_name, 2, 64, "_+=,.@-") || duration_seconds < 900 ||
        duration_seconds > 43200)
        return QFS_INVALID_ARG;
    qfs_status st = qfs_buf_printf(out, "Action=AssumeRole&DurationSeconds=%u&RoleArn=", duration_seconds);
    if (st == QFS_OK) st = qfs_aws_form_escape(role_arn, strlen(role_arn), out);
    if (st == QFS_OK) st = qfs_buf_puts(out, "&RoleSessionName=");
    if (st == QFS_OK) st = qfs_aws_form_escape(session_name, strlen(session_name), out);
    if (st == QFS_OK) st = qfs_buf_puts(out, "&Version=2011-06-15");
    return st;
}

qfs_status qfs_aws_sts_assume_role_decode(const char *body, size_t len, struct qfs_aws_credentials *out)
{
    memset(out, 0, sizeof(*out));
    char *exp = NULL, *block = NULL;
    qfs_status st = qfs_aws_xml_inner(body, len, "Credentials", 256 * 1024, &block);
    if (st == QFS_OK) st = qfs_aws_xml_text(block, strlen(block), "AccessKeyId", 128, &out->access_key_id);
    if (st == QFS_OK)
        st = qfs_aws_xml_text(block, strlen(block), "SecretAccessKey", 256, &out->secret_access_key);
    if (st == QFS_OK) qfs_log_add_secret(out->secret_access_key);
    if (st == QFS_OK)
        st = qfs_aws_xml_text(block, strlen(block), "SessionToken", MAX_SESSION_TOKEN, &out->session_token);
    if (st == QFS_OK) qfs_log_add_secret(out->session_token);
    if (st == QFS_OK) st = qfs_aws_xml_text(block, strlen(block), "Expiration", 64, &exp);
    if (st == QFS_OK && !qfs_aws_parse_time(exp, &out->expires_ms)) st = QFS_PROTOCOL;
    if (st == QFS_OK && (!*out->access_key_id || !*out->secret_access_key || !*out->session_token))
        st = QFS_PROTOCOL;
    if (st != QFS_OK) {
        qfs_aws_credentials_cleanup(out);
        st = st == QFS_TOO_BIG ? QFS_TOO_BIG : QFS_PROTOCOL;
    }
    free(exp);
    free(block);
    return st;
}

/* ---- the cache ------------------------------------------------------------------------------ */

struct waiter {
    struct waiter *next;
    qfs_aws_role_fn cb;
    void *arg;
    struct qfs_aws_credentials creds; /* for cache hits: a copy, delivered from the timer */
};

struct role {
    struct role *next;
    struct qfs_aws_sts *sts;
    char *arn;
    struct qfs_aws_credentials creds;
    bool have;
    bool fetching;
    struct waiter *waiters;
};

struct qfs_aws_sts {
    struct qfs_aws *aws;
    char *session_name;
    char *region;
    unsigned duration;
    unsigned margin_ms;
    struct role *roles;
    size_t nroles;
    struct waiter *ready; /* cache hits to deliver on the next loop turn */
    uv_timer_t timer;
    unsigned inflight;
    unsigned calls;
    bool closing;
    bool timer_closed;
};

static void maybe_release(struct qfs_aws_sts *sts)
{
    if (!sts->closing || !sts->timer_closed || sts->inflight) return;
    while (sts->roles) {
        struct role *r = sts->roles;
        sts->roles = r->next;
        qfs_aws_credentials_cleanup(&r->creds);
        free(r->arn);
        free(r);
    }
    free(sts->session_name);
    free(sts->region);
    free(sts);
}

static void timer_closed(uv_handle_t *h)
{
    struct qfs_aws_sts *sts = h->data;
    sts->timer_closed = true;
    maybe_release(sts);
}

/* Delivers a detached list of waiters, each with creds (NULL: its own copy) or failure s. */
static void deliver(struct waiter *w, qfs_status s, const struct qfs_aws_credentials *creds)
{
    while (w) {
        struct waiter *next = w->next;
        const struct qfs_aws_credentials *c = creds ? creds : (w->creds.access_key_id ? &w->creds : NULL);
        w->cb(s, s == QFS_OK ? c : NULL, w->arg);
        qfs_aws_credentials_cleanup(&w->creds);
        free(w);
        w = next;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct qfs_aws_sts *sts = t->data;
    struct waiter *w = sts->ready;
    sts->ready = NULL;
    deliver(w, QFS_OK, NULL);
}

static struct role *find(struct qfs_aws_sts *sts, const char *arn)
{
    for (struct role *r = sts->roles; r; r = r->next)
        if (strcmp(r->arn, arn) == 0) return r;
    return NULL;
}

static bool fresh(const struct qfs_aws_sts *sts, const struct role *r)
{
    return r->have && qfs_now_ms() < r->creds.expires_ms - (int64_t)sts->margin_ms;
}

/* Makes room for one more role: drops an idle one, preferring one whose credentials are stale. */
static bool make_room(struct qfs_aws_sts *sts)
{
    if (sts->nroles < MAX_ROLES) return true;
    struct role **victim = NULL;
    for (struct role **pp = &sts->roles; *pp; pp = &(*pp)->next) {
        if ((*pp)->fetching || (*pp)->waiters) continue;
        if (!victim || !fresh(sts, *pp)) victim = pp;
        if (!fresh(sts, *pp)) break;
    }
    if (!victim) return false;
    struct role *r = *victim;
    *victim = r->next;
    qfs_aws_credentials_cleanup(&r->creds);
    free(r->arn);
    free(r);
    sts->nroles--;
    return true;
}

static void on_assumed(const struct qfs_aws_response *resp, void *arg)
{
    struct role *r = arg;
    struct qfs_aws_sts *sts = r->sts;
    sts->inflight--;
    r->fetching = false;
    struct waiter *w = r->waiters;
    r->waiters = NULL;
    qfs_status st = resp->status;
    struct qfs_aws_credentials creds;
    struct qfs_aws_response scratch;
    if (st == QFS_OK) {
        st = qfs_aws_response_decoded(resp, qfs_aws_sts_assume_role_decode(resp->body, resp->body_len, &creds),
                                      "AssumeRole", &scratch)
                 ->status;
    }
    if (st == QFS_OK) {
        qfs_aws_credentials_cleanup(&r->creds);
        r->creds = creds;
        r->have = true;
    }
    if (sts->closing) st = QFS_UNAVAILABLE;
    deliver(w, st, st == QFS_OK ? &r->creds : NULL);
    maybe_release(sts);
}

static qfs_status start_fetch(struct qfs_aws_sts *sts, struct role *r)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 16 * 1024);
    qfs_status st = qfs_aws_sts_assume_role_encode(r->arn, sts->session_name, sts->duration, &b);
    if (st == QFS_OK) {
        struct qfs_aws_call c = {
            .service = QFS_AWS_STS,
            .region = sts->region,
            .protocol = QFS_AWS_QUERY,
            .body = b.data,
            .body_len = b.len,
        };
        st = qfs_aws_call(sts->aws, &c, on_assumed, r);
    }
    if (st == QFS_OK) {
        r->fetching = true;
        sts->inflight++;
        sts->calls++;
    }
    qfs_buf_cleanup(&b);
    return st;
}

qfs_status qfs_aws_sts_assume_role(struct qfs_aws_sts *sts, const char *role_arn,
                                   qfs_aws_role_fn cb, void *arg)
{
    if (!sts || !cb || !qfs_aws_role_arn_is_valid(role_arn)) return QFS_INVALID_ARG;
    if (sts->closing) return QFS_UNAVAILABLE;
    struct role *r = find(sts, role_arn);
    struct waiter *w = qfs_xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    if (r && fresh(sts, r)) {
        qfs_aws_credentials_copy(&w->creds, &r->creds);
        w->next = sts->ready;
        sts->ready = w;
        uv_timer_start(&sts->timer, on_timer, 0, 0);
        return QFS_OK;
    }
    if (!r) {
        if (!make_room(sts)) {
            free(w);
            return QFS_TOO_BIG;
        }
        r = qfs_xcalloc(1, sizeof(*r));
        r->sts = sts;
        r->arn = qfs_xstrdup(role_arn);
        r->next = sts->roles;
        sts->roles = r;
        sts->nroles++;
    }
    if (!r->fetching) {
        qfs_status st = start_fetch(sts, r);
        if (st != QFS_OK) {
            free(w);
            return st;
        }
    }
    w->next = r->waiters;
    r->waiters = w;
    return QFS_OK;
}

unsigned qfs_aws_sts_calls(const struct qfs_aws_sts *sts)
{
    return sts->calls;
}

qfs_status qfs_aws_sts_new(uv_loop_t *loop, struct qfs_aws *aws,
                           const struct qfs_aws_sts_options *opt, struct qfs_aws_sts **out)
{
    static const struct qfs_aws_sts_options defaults = {0};
    if (!loop || !aws || !out) return QFS_INVALID_ARG;
    if (!opt) opt = &defaults;
    *out = NULL;
    const char *session = opt->session_name ? opt->session_name : "qfs";
    const char *region = opt->region ? opt->region : qfs_aws_region(aws);
    unsigned duration = opt->duration_seconds ? opt->duration_seconds : DEFAULT_DURATION;
    if (!name_chars(session, 2, 64, "_+=,.@-") || !qfs_aws_region_is_valid(region) ||
        duration < 900 || duration > 43200)
        return QFS_INVALID_ARG;
    struct qfs_aws_sts *sts = qfs_xcalloc(1, sizeof(*sts));
    sts->aws = aws;
    sts->session_name = qfs_xstrdup(session);
    sts->region = qfs_xstrdup(region);
    sts->duration = duration;
    sts->margin_ms = opt->reuse_margin_ms ? opt->reuse_margin_ms : DEFAULT_REUSE_MARGIN_MS;
    uv_timer_init(loop, &sts->timer);
    sts->timer.data = sts;
    *out = sts;
    return QFS_OK;
}

void qfs_aws_sts_free(struct qfs_aws_sts *sts)
{
    if (!sts || sts->closing) return;
    sts->closing = true;
    struct waiter *w = sts->ready;
    sts->ready = NULL;
    deliver(w, QFS_UNAVAILABLE, NULL);
    for (struct role *r = sts->roles; r; r = r->next) {
        w = r->waiters;
        r->waiters = NULL;
        deliver(w, QFS_UNAVAILABLE, NULL);
    }
    uv_close((uv_handle_t *)&sts->timer, timer_closed);
}
