/* Fuzz target for the Qualys response decoders: the first byte picks the decoder, the rest is the
 * body. Whatever the body, a decoder either refuses it or fills its output within bounds, with the
 * properties its header promises (ids that pass their validators, findings in order, counts that
 * add up), and leaves nothing allocated behind.
 *
 * Selectors (any other byte: its value modulo the table size): t token, s secret, b aws-base,
 * c connectors, r registry page, i created id, p image page, d image detail, v vulns, e error
 * body, x result table, j JWT exp claim. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/qualys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ECR_HOST "123456789012.dkr.ecr.us-east-1.amazonaws.com"
#define DIGEST "7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c"

/* Aborts (a crash libFuzzer keeps) when a property does not hold. */
static void check(bool cond)
{
    if (!cond) abort();
}

static bool terminated(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

/* Text meant for people: terminated, and without control characters. */
static bool clean_text(const char *s, size_t cap)
{
    if (!terminated(s, cap)) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static bool lower_hex64(const char *s)
{
    if (strlen(s) != 64) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

static void fuzz_token(const char *body, size_t len)
{
    char *jwt = (char *)1;
    qfs_status s = qfs_qualys_decode_token(body, len, &jwt);
    if (s != QFS_OK) {
        check(s == QFS_PROTOCOL && jwt == NULL);
        return;
    }
    check(jwt && *jwt && strlen(jwt) <= 16384 && jwt[0] != '{' && jwt[0] != '<');
    for (const char *p = jwt; *p; p++) check(*p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\');
    free(jwt);
}

static void check_credential(const char *s)
{
    check(s == NULL || (*s && strlen(s) <= 16384));
}

static void fuzz_secret(const char *body, size_t len)
{
    /* The secret is a C string (SecretString): cut at the first NUL, as the caller would. */
    char *text = malloc(len + 1);
    if (!text) return;
    memcpy(text, body, len);
    text[len] = '\0';
    char *token, *user, *pass;
    qfs_status s = qfs_qualys_decode_secret(text, &token, &user, &pass);
    if (s == QFS_OK) {
        check(token ? (!user && !pass) : (user && pass));
        check_credential(token);
        check_credential(user);
        check_credential(pass);
    } else {
        check(s == QFS_PROTOCOL && !token && !user && !pass);
    }
    free(token);
    free(user);
    free(pass);
    free(text);
}

static void fuzz_aws_base(const char *body, size_t len)
{
    struct qfs_qualys_aws_base b;
    qfs_status s = qfs_qualys_decode_aws_base(body, len, &b);
    if (s != QFS_OK) {
        check(s == QFS_PROTOCOL && all_zero(&b, sizeof(b)));
        return;
    }
    check(strlen(b.account_id) == 12 && strspn(b.account_id, "0123456789") == 12);
    check(terminated(b.external_id, sizeof(b.external_id)) && b.external_id[0]);
    for (const char *p = b.external_id; *p; p++) check(strchr("+=,.@:/_-", *p) || (*p >= '0' && *p <= '9') ||
                                                      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'));
}

static void fuzz_connectors(const char *body, size_t len)
{
    struct qfs_qualys_connector *items = (void *)1;
    size_t n = 99;
    qfs_status s = qfs_qualys_decode_connectors(body, len, &items, &n);
    if (s != QFS_OK) {
        check((s == QFS_PROTOCOL || s == QFS_TOO_BIG) && items == NULL && n == 0);
        return;
    }
    check(n <= 1000 && (n == 0 || items));
    for (size_t i = 0; i < n; i++) {
        check(terminated(items[i].arn, sizeof(items[i].arn)) && strncmp(items[i].arn, "arn:", 4) == 0);
        check(clean_text(items[i].name, sizeof(items[i].name)));
        check(clean_text(items[i].description, sizeof(items[i].description)));
    }
    free(items);
}

static void fuzz_registry_page(const char *body, size_t len)
{
    struct qfs_qualys_registry r;
    memset(&r, 0, sizeof(r));
    bool found = false;
    size_t rows = 99;
    qfs_status s = qfs_qualys_decode_registry_page(body, len, "https://" ECR_HOST "/", &r, &found, &rows);
    check(s == QFS_OK || s == QFS_PROTOCOL || s == QFS_TOO_BIG);
    check(rows <= 1000);
    if (s != QFS_OK) check(rows == 0);
    if (!found) {
        check(all_zero(&r, sizeof(r)));
        return;
    }
    check(qfs_qualys_uuid_is_valid(r.uuid));
    check(clean_text(r.uri, sizeof(r.uri)) && clean_text(r.name, sizeof(r.name)));
    check(clean_text(r.account_id, sizeof(r.account_id)) && clean_text(r.region, sizeof(r.region)));
    /* The entry found names the registry asked for (scheme, case and trailing '/' aside). */
    const char *host = strstr(r.uri, "://");
    host = host ? host + 3 : r.uri;
    check(strncasecmp(host, ECR_HOST, strlen(ECR_HOST)) == 0);
}

static void fuzz_created_id(const char *body, size_t len)
{
    static const char *const keys[] = {"registryUuid", "scheduleUuid", "uuid", "id", NULL};
    char id[64];
    memset(id, 'x', sizeof(id));
    qfs_status s = qfs_qualys_decode_created_id(body, len, keys, id, sizeof(id));
    check(terminated(id, sizeof(id)));
    if (s != QFS_OK) {
        check(s == QFS_PROTOCOL && id[0] == '\0');
        return;
    }
    check(id[0] == '\0' || qfs_qualys_uuid_is_valid(id));
    /* A buffer too small for any id never overflows. */
    char tiny[4];
    qfs_qualys_decode_created_id(body, len, keys, tiny, sizeof(tiny));
    check(terminated(tiny, sizeof(tiny)));
}

static void check_image(const struct qfs_qualys_image *img)
{
    check(lower_hex64(img->sha));
    check(clean_text(img->scan_status, sizeof(img->scan_status)));
    check(clean_text(img->scan_error_code, sizeof(img->scan_error_code)));
    check(clean_text(img->scan_error_message, sizeof(img->scan_error_message)));
    check(img->last_scanned_ms >= 0 && img->updated_ms >= 0);
    check(img->severity_counts[0] == 0);
    for (int i = 1; i <= 5; i++) check(img->severity_counts[i] <= 1000000);
    if (!img->has_vulns)
        for (int i = 1; i <= 5; i++) check(img->severity_counts[i] == 0);
    enum qfs_qualys_scan_state st = qfs_qualys_image_state(img);
    check(st == QFS_QUALYS_SCAN_PENDING || st == QFS_QUALYS_SCAN_DONE || st == QFS_QUALYS_SCAN_FAILED);
}

static void fuzz_image_page(const char *body, size_t len)
{
    /* Once matching on registry/repository/tag, once on the manifest digest. */
    const struct qfs_qualys_image_match m[2] = {
        {ECR_HOST, "my-app", "v1.4.2", NULL},
        {ECR_HOST, "my-app", "v1.4.2", DIGEST},
    };
    for (int i = 0; i < 2; i++) {
        struct qfs_qualys_image best;
        memset(&best, 0, sizeof(best));
        bool found = false;
        size_t rows = 99;
        qfs_status s = qfs_qualys_decode_image_page(body, len, &m[i], &best, &found, &rows);
        check(s == QFS_OK || s == QFS_PROTOCOL || s == QFS_TOO_BIG);
        check(rows <= 1000);
        if (found) check_image(&best);
        else check(all_zero(&best, sizeof(best)));
    }
}

static void fuzz_image_detail(const char *body, size_t len)
{
    struct qfs_qualys_image img;
    qfs_status s = qfs_qualys_decode_image_detail(body, len, &img);
    if (s == QFS_OK) check_image(&img);
    else check(s == QFS_PROTOCOL && all_zero(&img, sizeof(img)));
}

static void check_finding(const struct qfs_qualys_finding *f)
{
    check(f->severity >= 1 && f->severity <= 5 && f->qid >= 0);
    check(clean_text(f->title, sizeof(f->title)));
    check(f->ncves <= QFS_QUALYS_MAX_CVES);
    for (size_t i = 0; i < f->ncves; i++) check(terminated(f->cves[i], sizeof(f->cves[i])) && f->cves[i][0]);
    check(clean_text(f->package, sizeof(f->package)));
    check(clean_text(f->installed_version, sizeof(f->installed_version)));
    check(clean_text(f->fixed_version, sizeof(f->fixed_version)));
    if (f->fixed_version[0]) check(f->patchable);
}

static void fuzz_vulns(const char *body, size_t len, size_t top_n)
{
    struct qfs_qualys_vuln_report *r = malloc(sizeof(*r));
    if (!r) return;
    qfs_status s = qfs_qualys_decode_vulns(body, len, top_n, r);
    if (s != QFS_OK) {
        check((s == QFS_PROTOCOL || s == QFS_TOO_BIG) && all_zero(r, sizeof(*r)));
        free(r);
        return;
    }
    unsigned sum = 0;
    for (int i = 1; i <= 5; i++) sum += r->by_severity[i];
    check(r->by_severity[0] == 0 && sum == r->total && r->patchable <= r->total);
    check(r->scanned || (r->total == 0 && r->nfindings == 0 && r->ignored == 0));
    size_t cap = top_n < QFS_QUALYS_MAX_FINDINGS ? top_n : QFS_QUALYS_MAX_FINDINGS;
    check(r->nfindings <= cap && r->nfindings <= r->total);
    check(r->nfindings == (r->total < cap ? r->total : cap));
    for (size_t i = 0; i < r->nfindings; i++) {
        check_finding(&r->findings[i]);
        if (i) {
            const struct qfs_qualys_finding *a = &r->findings[i - 1], *b = &r->findings[i];
            check(a->severity > b->severity || (a->severity == b->severity && a->qid <= b->qid));
        }
    }
    free(r);
}

static void fuzz_error(const char *body, size_t len)
{
    struct qfs_qualys_error e;
    memset(&e, 'x', sizeof(e));
    qfs_qualys_decode_error(body, len, &e);
    check(clean_text(e.code, sizeof(e.code)) && clean_text(e.message, sizeof(e.message)));
}

static void fuzz_result_table(const char *body, size_t len)
{
    char *text = malloc(len + 1);
    if (!text) return;
    memcpy(text, body, len);
    text[len] = '\0';
    char pkg[128], inst[128], fix[128];
    bool ok = qfs_qualys_parse_result_table(text, pkg, sizeof(pkg), inst, sizeof(inst), fix, sizeof(fix));
    check(clean_text(pkg, sizeof(pkg)) && clean_text(inst, sizeof(inst)) && clean_text(fix, sizeof(fix)));
    check(ok ? (pkg[0] && inst[0]) : (!pkg[0] && !inst[0] && !fix[0]));
    /* Tiny outputs are cut, never overrun. */
    char a[2], b[1], c[3];
    qfs_qualys_parse_result_table(text, a, sizeof(a), b, sizeof(b), c, sizeof(c));
    check(terminated(a, sizeof(a)) && terminated(b, sizeof(b)) && terminated(c, sizeof(c)));
    free(text);
}

static void fuzz_jwt(const char *body, size_t len)
{
    char *text = malloc(len + 1);
    if (!text) return;
    memcpy(text, body, len);
    text[len] = '\0';
    int64_t exp = qfs_qualys_jwt_exp_ms(text);
    check(exp >= 0 && exp < 100000000000000LL);
    int64_t at = qfs_qualys_renew_at_ms(1700000000000LL, exp, 600000);
    check(at >= 1700000000000LL + 1000);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char selectors[] = "tsbcripdvexj";
    if (size == 0) return 0;
    const char *hit = memchr(selectors, data[0], sizeof(selectors) - 1);
    size_t which = hit ? (size_t)(hit - selectors) : data[0] % (sizeof(selectors) - 1);
    /* An exact-size copy of the body, so that ASan catches any read past it. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    if (len) memcpy(body, data + 1, len);

    switch (selectors[which]) {
    case 't': fuzz_token(body, len); break;
    case 's': fuzz_secret(body, len); break;
    case 'b': fuzz_aws_base(body, len); break;
    case 'c': fuzz_connectors(body, len); break;
    case 'r': fuzz_registry_page(body, len); break;
    case 'i': fuzz_created_id(body, len); break;
    case 'p': fuzz_image_page(body, len); break;
    case 'd': fuzz_image_detail(body, len); break;
    case 'v':
        fuzz_vulns(body, len, 10);
        fuzz_vulns(body, len, 1);
        fuzz_vulns(body, len, 500); /* more than the report holds: capped */
        break;
    case 'e': fuzz_error(body, len); break;
    case 'x': fuzz_result_table(body, len); break;
    case 'j': fuzz_jwt(body, len); break;
    }
    free(body);
    /* Decoded credentials are registered for masking; forget them so every input starts clean. */
    qfs_log_clear_secrets();
    return 0;
}
