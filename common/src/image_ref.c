/* Container image references: Docker's grammar and normalisation, and ECR host classification. */
#include "qfs/image_ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qfs/util.h"

#define HUB_HOST "docker.io"
#define HUB_LEGACY_HOST "index.docker.io"
#define LIBRARY_PREFIX "library/"
#define DIGEST_RULE "digest must be sha256 with 64 lower-case hex digits"
/* Longest piece of input quoted back in a reason. */
#define QUOTE_MAX 64

/* A piece of the input text; not NUL-terminated. */
struct span {
    const char *p;
    size_t n;
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower_alnum(char c)
{
    return is_lower(c) || is_digit(c);
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || is_upper(c);
}

/* Docker's \w: the characters a tag may start with. */
static bool is_word(char c)
{
    return is_alnum(c) || c == '_';
}

static bool is_hex_digit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool span_is(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Length to quote from a piece of input in a reason. */
static int quote_len(size_t n)
{
    return (int)(n < QUOTE_MAX ? n : QUOTE_MAX);
}

/* Formats into a key-sized buffer. The parser's bounds guarantee the result fits. */
static void put_key(char out[QFS_IMAGE_REF_KEY_SIZE], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put_key(char out[QFS_IMAGE_REF_KEY_SIZE], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, QFS_IMAGE_REF_KEY_SIZE, fmt, ap);
    va_end(ap);
    qfs_assert(n >= 0 && n < QFS_IMAGE_REF_KEY_SIZE);
}

static qfs_status fail(char *reason, size_t reason_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static qfs_status fail(char *reason, size_t reason_len, const char *fmt, ...)
{
    if (reason && reason_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, reason_len, fmt, ap);
        va_end(ap);
    }
    return QFS_PROTOCOL;
}

/* Only printable ASCII from Docker's alphabet can appear anywhere in a reference. */
static qfs_status check_alphabet(const char *text, size_t len, char *why, size_t why_len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7F)
            return fail(why, why_len,
                        "reference contains a control character (0x%02x at offset %zu)", c, i);
        if (c >= 0x80)
            return fail(why, why_len, "reference contains a non-ASCII byte (0x%02x at offset %zu)",
                        c, i);
        if (c == ' ') return fail(why, why_len, "reference contains a space at offset %zu", i);
        if (!is_alnum((char)c) && !strchr("._-/:@[]", c))
            return fail(why, why_len, "reference contains the character '%c' at offset %zu", c, i);
    }
    return QFS_OK;
}

static qfs_status check_digest(struct span d, char *why, size_t why_len)
{
    const char *colon = memchr(d.p, ':', d.n);
    if (!colon) return fail(why, why_len, "digest has no algorithm: " DIGEST_RULE);
    struct span algo = {d.p, (size_t)(colon - d.p)};
    struct span hex = {colon + 1, d.n - algo.n - 1};
    if (!span_is(algo, "sha256"))
        return fail(why, why_len, "digest algorithm '%.*s' is not supported: " DIGEST_RULE,
                    quote_len(algo.n), algo.p);
    for (size_t i = 0; i < hex.n; i++) {
        if (!is_hex_digit(hex.p[i]))
            return fail(why, why_len, "digest contains the non-hex character '%c': " DIGEST_RULE,
                        hex.p[i]);
        if (is_upper(hex.p[i]))
            return fail(why, why_len, "digest contains upper-case hex: " DIGEST_RULE);
    }
    if (hex.n != 64) return fail(why, why_len, "digest has %zu hex digits: " DIGEST_RULE, hex.n);
    return QFS_OK;
}

/* Tag grammar: [\w][\w.-]{0,127}. */
static qfs_status check_tag(struct span t, char *why, size_t why_len)
{
    if (t.n == 0) return fail(why, why_len, "tag is empty: ':' is not followed by a tag");
    if (t.n > QFS_IMAGE_REF_TAG_MAX)
        return fail(why, why_len, "tag is longer than %d characters", QFS_IMAGE_REF_TAG_MAX);
    if (!is_word(t.p[0])) return fail(why, why_len, "tag must start with a letter, a digit or '_'");
    for (size_t i = 1; i < t.n; i++)
        if (!is_word(t.p[i]) && t.p[i] != '.' && t.p[i] != '-')
            return fail(why, why_len, "tag contains the character '%c'", t.p[i]);
    return QFS_OK;
}

/* Host grammar: DNS labels of [A-Za-z0-9-] not starting or ending with '-', or a bracketed IPv6
 * address, then an optional ":port". */
static qfs_status check_host(struct span h, char *why, size_t why_len)
{
    size_t i = 0;
    if (h.p[0] == '[') {
        const char *close = memchr(h.p, ']', h.n);
        if (!close) return fail(why, why_len, "registry host has '[' without ']'");
        i = (size_t)(close - h.p);
        if (i == 1) return fail(why, why_len, "registry host has an empty IPv6 address");
        for (size_t k = 1; k < i; k++)
            if (!is_hex_digit(h.p[k]) && h.p[k] != ':')
                return fail(why, why_len,
                            "registry host has an IPv6 address with the character '%c'", h.p[k]);
        i++;
    } else {
        size_t label = 0;
        for (; i < h.n && h.p[i] != ':'; i++) {
            char c = h.p[i];
            if (c == '.') {
                if (label == 0) return fail(why, why_len, "registry host has an empty label");
                if (h.p[i - 1] == '-')
                    return fail(why, why_len, "registry host has a label ending with '-'");
                label = 0;
                continue;
            }
            if (!is_alnum(c) && c != '-')
                return fail(why, why_len, "registry host contains the character '%c'", c);
            if (c == '-' && label == 0)
                return fail(why, why_len, "registry host has a label starting with '-'");
            if (++label > 63)
                return fail(why, why_len, "registry host has a label longer than 63 characters");
        }
        if (label == 0) return fail(why, why_len, "registry host has an empty label");
        if (h.p[i - 1] == '-')
            return fail(why, why_len, "registry host has a label ending with '-'");
    }
    if (i == h.n) return QFS_OK;
    if (h.p[i] != ':') return fail(why, why_len, "registry host has text after ']'");
    struct span port = {h.p + i + 1, h.n - i - 1};
    unsigned value = 0;
    for (size_t k = 0; k < port.n && k < 6; k++) {
        if (!is_digit(port.p[k])) {
            value = 0;
            break;
        }
        value = value * 10 + (unsigned)(port.p[k] - '0');
    }
    if (port.n == 0 || port.n > 5 || value == 0 || value > 65535)
        return fail(why, why_len, "registry port must be a number from 1 to 65535");
    return QFS_OK;
}

/* Path component grammar: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*. */
static qfs_status check_component(struct span c, char *why, size_t why_len)
{
    if (span_is(c, ".") || span_is(c, ".."))
        return fail(why, why_len, "path component '%.*s' is not allowed", (int)c.n, c.p);
    if (!is_lower_alnum(c.p[0]) || !is_lower_alnum(c.p[c.n - 1]))
        return fail(why, why_len,
                    "path component '%.*s' must start and end with a lower-case letter or digit",
                    quote_len(c.n), c.p);
    size_t i = 0;
    while (i < c.n) {
        if (is_lower_alnum(c.p[i])) {
            i++;
            continue;
        }
        struct span sep = {c.p + i, 0};
        while (i < c.n && !is_lower_alnum(c.p[i])) {
            sep.n++;
            i++;
        }
        bool dashes = true;
        for (size_t k = 0; k < sep.n; k++)
            if (sep.p[k] != '-') dashes = false;
        if (!dashes && !span_is(sep, ".") && !span_is(sep, "_") && !span_is(sep, "__"))
            return fail(why, why_len, "path component '%.*s' has the invalid separator '%.*s'",
                        quote_len(c.n), c.p, quote_len(sep.n), sep.p);
    }
    return QFS_OK;
}

/* The repository path: components joined by single '/'. The caller has ruled out a leading or
 * trailing '/'. */
static qfs_status check_path(struct span path, char *why, size_t why_len)
{
    if (path.n == 0) return fail(why, why_len, "repository is empty");
    for (size_t i = 0; i < path.n; i++)
        if (is_upper(path.p[i]))
            return fail(why, why_len, "repository contains upper-case letters");
    for (size_t i = 0; i < path.n; i++) {
        char c = path.p[i];
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-' && c != '/')
            return fail(why, why_len, "repository contains the character '%c'", c);
    }
    size_t start = 0;
    for (size_t i = 0; i <= path.n; i++) {
        if (i < path.n && path.p[i] != '/') continue;
        struct span comp = {path.p + start, i - start};
        if (comp.n == 0) return fail(why, why_len, "repository has an empty path component ('//')");
        qfs_status s = check_component(comp, why, why_len);
        if (s != QFS_OK) return s;
        start = i + 1;
    }
    return QFS_OK;
}

/* Region shape: [a-z]{2}(-[a-z]+)+-[0-9]{1,2}, within the subject-token rules. */
static bool region_has_shape(const char *s)
{
    if (!qfs_proto_is_region(s)) return false;
    if (!is_lower(s[0]) || !is_lower(s[1]) || s[2] != '-') return false;
    const char *p = s + 3;
    size_t words = 0, digits = 0;
    while (is_lower(*p)) {
        while (is_lower(*p)) p++;
        if (*p != '-') return false;
        p++;
        words++;
    }
    while (is_digit(*p)) {
        p++;
        digits++;
    }
    return words >= 1 && digits >= 1 && digits <= 2 && *p == '\0';
}

/* Recognises <12 digits>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and
 * <12 digits>.dkr-ecr[-fips].<region>.on.aws in r->host (lower-cased, no port), and fills the ECR
 * fields. China Regions must use amazonaws.com.cn and no other Region may. */
static bool classify_ecr_private(struct qfs_image_ref *r)
{
    static const struct {
        const char *prefix;
        bool fips, dual_stack;
    } forms[] = {
        {"dkr.ecr.", false, false},
        {"dkr.ecr-fips.", true, false},
        {"dkr-ecr.", false, true},
        {"dkr-ecr-fips.", true, true},
    };
    const char *h = r->host;
    for (size_t i = 0; i < 12; i++)
        if (!is_digit(h[i])) return false;
    if (h[12] != '.') return false;
    const char *rest = NULL;
    size_t form = 0;
    for (; form < sizeof(forms) / sizeof(forms[0]); form++) {
        size_t n = strlen(forms[form].prefix);
        if (strncmp(h + 13, forms[form].prefix, n) == 0) {
            rest = h + 13 + n;
            break;
        }
    }
    if (!rest) return false;
    const char *dot = strchr(rest, '.');
    if (!dot || dot == rest || (size_t)(dot - rest) > QFS_REGION_MAX) return false;
    char region[QFS_REGION_MAX + 1];
    memcpy(region, rest, (size_t)(dot - rest));
    region[dot - rest] = '\0';
    if (!region_has_shape(region)) return false;

    bool china = strncmp(region, "cn-", 3) == 0;
    const char *suffix = dot + 1;
    if (forms[form].dual_stack) {
        if (china || strcmp(suffix, "on.aws") != 0) return false;
    } else if (strcmp(suffix, china ? "amazonaws.com.cn" : "amazonaws.com") != 0) {
        return false;
    }
    memcpy(r->account, h, 12);
    r->account[12] = '\0';
    memcpy(r->region, region, sizeof(region));
    snprintf(r->partition, sizeof(r->partition), "%s",
             china ? "aws-cn" : strncmp(region, "us-gov-", 7) == 0 ? "aws-us-gov" : "aws");
    r->ecr_fips = forms[form].fips;
    r->ecr_dual_stack = forms[form].dual_stack;
    return true;
}

static void classify(struct qfs_image_ref *r)
{
    if (classify_ecr_private(r))
        r->kind = QFS_IMAGE_REF_ECR_PRIVATE;
    else if (strcmp(r->host, "public.ecr.aws") == 0)
        r->kind = QFS_IMAGE_REF_ECR_PUBLIC;
    else if (strcmp(r->host, HUB_HOST) == 0 || strcmp(r->host, "registry-1.docker.io") == 0)
        r->kind = QFS_IMAGE_REF_DOCKER_HUB;
    else
        r->kind = QFS_IMAGE_REF_OTHER;
}

static qfs_status parse(const char *text, struct qfs_image_ref *out, char *why, size_t why_len)
{
    size_t len = strnlen(text, QFS_IMAGE_REF_TEXT_MAX + 1);
    if (len == 0) return fail(why, why_len, "empty reference");
    if (len > QFS_IMAGE_REF_TEXT_MAX)
        return fail(why, why_len, "reference is longer than %d characters", QFS_IMAGE_REF_TEXT_MAX);
    qfs_status s = check_alphabet(text, len, why, why_len);
    if (s != QFS_OK) return s;

    /* Docker refuses a bare 64-hex name: it would read as an image id. */
    bool all_hex = len == 64;
    for (size_t i = 0; all_hex && i < len; i++)
        all_hex = is_digit(text[i]) || (text[i] >= 'a' && text[i] <= 'f');
    if (all_hex)
        return fail(why, why_len, "reference is a 64-digit hex image id, not a repository");

    /* name[:tag][@digest] */
    struct span name = {text, len}, tag = {NULL, 0}, digest = {NULL, 0};
    const char *at = memchr(text, '@', len);
    if (at) {
        name.n = (size_t)(at - text);
        digest = (struct span){at + 1, len - name.n - 1};
        if (memchr(digest.p, '@', digest.n))
            return fail(why, why_len, "reference contains more than one '@'");
        if (digest.n == 0) return fail(why, why_len, "'@' is not followed by a digest");
        s = check_digest(digest, why, why_len);
        if (s != QFS_OK) return s;
    }
    size_t after_slash = 0;
    for (size_t i = 0; i < name.n; i++)
        if (name.p[i] == '/') after_slash = i + 1;
    for (size_t i = name.n; i > after_slash; i--) {
        if (name.p[i - 1] == ':') {
            tag = (struct span){name.p + i, name.n - i};
            name.n = i - 1;
            s = check_tag(tag, why, why_len);
            if (s != QFS_OK) return s;
            break;
        }
    }
    if (name.n == 0) return fail(why, why_len, "reference has no repository name");
    if (name.p[0] == '/') return fail(why, why_len, "reference starts with '/'");
    if (name.p[name.n - 1] == '/') return fail(why, why_len, "name ends with '/'");

    /* The text before the first '/' is a registry host only if it looks like one. */
    struct span host = {HUB_HOST, strlen(HUB_HOST)}, path = name;
    const char *slash = memchr(name.p, '/', name.n);
    if (slash) {
        struct span first = {name.p, (size_t)(slash - name.p)};
        if (memchr(first.p, '.', first.n) || memchr(first.p, ':', first.n) ||
            span_is(first, "localhost")) {
            host = first;
            path = (struct span){slash + 1, name.n - first.n - 1};
            s = check_host(host, why, why_len);
            if (s != QFS_OK) return s;
        }
    }
    s = check_path(path, why, why_len);
    if (s != QFS_OK) return s;

    if (host.n > QFS_IMAGE_REF_NAME_MAX)
        return fail(why, why_len, "name is longer than %d characters", QFS_IMAGE_REF_NAME_MAX);
    char lower[QFS_IMAGE_REF_NAME_MAX + 1];
    for (size_t i = 0; i < host.n; i++)
        lower[i] = is_upper(host.p[i]) ? (char)(host.p[i] - 'A' + 'a') : host.p[i];
    lower[host.n] = '\0';
    if (strcmp(lower, HUB_LEGACY_HOST) == 0) snprintf(lower, sizeof(lower), "%s", HUB_HOST);
    size_t host_len = strlen(lower);
    const char *prefix = "";
    if (strcmp(lower, HUB_HOST) == 0 && !memchr(path.p, '/', path.n)) prefix = LIBRARY_PREFIX;
    size_t prefix_len = strlen(prefix);
    if (host_len + 1 + prefix_len + path.n > QFS_IMAGE_REF_NAME_MAX)
        return fail(why, why_len, "name is longer than %d characters", QFS_IMAGE_REF_NAME_MAX);

    memcpy(out->text, text, len);
    out->text[len] = '\0';
    memcpy(out->host, lower, host_len + 1);
    memcpy(out->repository, prefix, prefix_len);
    memcpy(out->repository + prefix_len, path.p, path.n);
    out->repository[prefix_len + path.n] = '\0';
    if (tag.n) memcpy(out->tag, tag.p, tag.n);
    out->tag[tag.n] = '\0';
    if (digest.n) memcpy(out->digest, digest.p, digest.n);
    out->digest[digest.n] = '\0';
    out->tag_implied = tag.n == 0 && digest.n == 0;
    classify(out);
    if (out->digest[0])
        put_key(out->canonical, "%s/%s@%s", out->host, out->repository, out->digest);
    else
        put_key(out->canonical, "%s/%s:%s", out->host, out->repository,
                out->tag[0] ? out->tag : "latest");
    return QFS_OK;
}

qfs_status qfs_image_ref_parse(const char *text, struct qfs_image_ref *out, char *reason,
                               size_t reason_len)
{
    if (reason && reason_len) reason[0] = '\0';
    if (!text || !out) {
        fail(reason, reason_len, "no reference or no record given");
        return QFS_INVALID_ARG;
    }
    memset(out, 0, sizeof(*out));
    qfs_status s = parse(text, out, reason, reason_len);
    if (s != QFS_OK) memset(out, 0, sizeof(*out));
    return s;
}

bool qfs_image_ref_is_ecr_private(const struct qfs_image_ref *r)
{
    return r && r->kind == QFS_IMAGE_REF_ECR_PRIVATE;
}

void qfs_image_ref_key(const struct qfs_image_ref *r, char out[QFS_IMAGE_REF_KEY_SIZE])
{
    const char *tag = r->tag[0] ? r->tag : "latest";
    if (r->digest[0])
        put_key(out, "%s", r->digest);
    else if (qfs_image_ref_is_ecr_private(r))
        put_key(out, "%s/%s/%s:%s", r->account, r->region, r->repository, tag);
    else
        put_key(out, "%s/%s:%s", r->host, r->repository, tag);
}

const char *qfs_image_ref_kind_str(enum qfs_image_ref_kind kind)
{
    switch (kind) {
    case QFS_IMAGE_REF_ECR_PRIVATE: return "ecr_private";
    case QFS_IMAGE_REF_ECR_PUBLIC: return "ecr_public";
    case QFS_IMAGE_REF_DOCKER_HUB: return "docker_hub";
    case QFS_IMAGE_REF_OTHER: return "other";
    }
    return "other";
}
