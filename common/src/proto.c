/* Message contracts: the subject table, schema names, token checks and the shared message parts. */
#include "qfs/proto.h"

#include <pthread.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/util.h"

/* The only place subject strings and schema names are written. proto/subjects.md documents each
 * pattern; tests/proto/schemas.test.js checks that it does. */
enum key_kind { KEY_ACCOUNT_REGION, KEY_SERVICE };

static const struct subject_def {
    const char *prefix;  /* tokens before the keys */
    const char *pattern; /* as documented */
    const char *filter;  /* what a consumer subscribes to */
    enum key_kind key;
    enum qfs_schema schema;
    bool stored;
} subjects[QFS_SUBJECT_COUNT] = {
    [QFS_SUBJECT_EVENTS] = {"qfs.events", "qfs.events.<account>.<region>", "qfs.events.>",
                            KEY_ACCOUNT_REGION, QFS_SCHEMA_EVENT, true},
    [QFS_SUBJECT_IMAGES] = {"qfs.images", "qfs.images.<account>.<region>", "qfs.images.>",
                            KEY_ACCOUNT_REGION, QFS_SCHEMA_IMAGE, true},
    [QFS_SUBJECT_SCANS_REQUESTED] = {"qfs.scans.requested", "qfs.scans.requested.<account>.<region>",
                                     "qfs.scans.requested.>", KEY_ACCOUNT_REGION,
                                     QFS_SCHEMA_SCAN_REQUEST, true},
    [QFS_SUBJECT_SCANS_READY] = {"qfs.scans.ready", "qfs.scans.ready.<account>.<region>",
                                 "qfs.scans.ready.>", KEY_ACCOUNT_REGION, QFS_SCHEMA_SCAN_READY, true},
    [QFS_SUBJECT_SCANS_COMPLETED] = {"qfs.scans.completed", "qfs.scans.completed.<account>.<region>",
                                     "qfs.scans.completed.>", KEY_ACCOUNT_REGION,
                                     QFS_SCHEMA_SCAN_RESULT, true},
    [QFS_SUBJECT_SCANS_FAILED] = {"qfs.scans.failed", "qfs.scans.failed.<account>.<region>",
                                  "qfs.scans.failed.>", KEY_ACCOUNT_REGION, QFS_SCHEMA_SCAN_FAILURE,
                                  true},
    [QFS_SUBJECT_SCANS_SKIPPED] = {"qfs.scans.skipped", "qfs.scans.skipped.<account>.<region>",
                                   "qfs.scans.skipped.>", KEY_ACCOUNT_REGION, QFS_SCHEMA_SKIP, true},
    [QFS_SUBJECT_NOTIFICATIONS] = {"qfs.notifications", "qfs.notifications.<account>.<region>",
                                   "qfs.notifications.>", KEY_ACCOUNT_REGION,
                                   QFS_SCHEMA_NOTIFICATION, true},
    [QFS_SUBJECT_DLQ] = {"qfs.dlq", "qfs.dlq.<service>", "qfs.dlq.>", KEY_SERVICE, QFS_SCHEMA_DLQ,
                         true},
    [QFS_SUBJECT_STATS] = {"qfs.stats", "qfs.stats.<service>", "qfs.stats.>", KEY_SERVICE,
                           QFS_SCHEMA_NONE, false},
};

static const char *const schema_names[QFS_SCHEMA_COUNT] = {
    [QFS_SCHEMA_NONE] = NULL,
    [QFS_SCHEMA_EVENT] = "qfs.event.v1",
    [QFS_SCHEMA_IMAGE] = "qfs.image.v1",
    [QFS_SCHEMA_SCAN_REQUEST] = "qfs.scan_request.v1",
    [QFS_SCHEMA_SCAN_READY] = "qfs.scan_ready.v1",
    [QFS_SCHEMA_SCAN_RESULT] = "qfs.scan_result.v1",
    [QFS_SCHEMA_SCAN_FAILURE] = "qfs.scan_failure.v1",
    [QFS_SCHEMA_SKIP] = "qfs.skip.v1",
    [QFS_SCHEMA_NOTIFICATION] = "qfs.notification.v1",
    [QFS_SCHEMA_DLQ] = "qfs.dlq.v1",
    [QFS_SCHEMA_SNS_MESSAGE] = "qfs.sns_message.v1",
};

const char *qfs_schema_name(enum qfs_schema schema)
{
    if ((unsigned)schema >= QFS_SCHEMA_COUNT) return NULL;
    return schema_names[schema];
}

enum qfs_schema qfs_schema_parse(const char *name)
{
    if (!name) return QFS_SCHEMA_NONE;
    for (int i = 1; i < QFS_SCHEMA_COUNT; i++)
        if (strcmp(name, schema_names[i]) == 0) return (enum qfs_schema)i;
    return QFS_SCHEMA_NONE;
}

static bool valid_kind(enum qfs_subject kind)
{
    return (unsigned)kind < QFS_SUBJECT_COUNT;
}

const char *qfs_subject_filter(enum qfs_subject kind)
{
    return valid_kind(kind) ? subjects[kind].filter : NULL;
}

const char *qfs_subject_pattern(enum qfs_subject kind)
{
    return valid_kind(kind) ? subjects[kind].pattern : NULL;
}

enum qfs_schema qfs_subject_schema(enum qfs_subject kind)
{
    return valid_kind(kind) ? subjects[kind].schema : QFS_SCHEMA_NONE;
}

bool qfs_subject_is_stored(enum qfs_subject kind)
{
    return valid_kind(kind) && subjects[kind].stored;
}

static const char *stream_subjects[QFS_SUBJECT_COUNT + 1];
static pthread_once_t stream_subjects_once = PTHREAD_ONCE_INIT;

static void fill_stream_subjects(void)
{
    size_t n = 0;
    for (int k = 0; k < QFS_SUBJECT_COUNT; k++)
        if (subjects[k].stored) stream_subjects[n++] = subjects[k].filter;
    stream_subjects[n] = NULL;
}

const char *const *qfs_stream_subjects(void)
{
    pthread_once(&stream_subjects_once, fill_stream_subjects);
    return stream_subjects;
}

/* Writes "<prefix>.<a>[.<b>]" into buf; buf is "" on failure. */
static qfs_status write_subject(char *buf, size_t n, const char *prefix, const char *a,
                                const char *b)
{
    if (!buf || n == 0) return QFS_INVALID_ARG;
    int w = b ? snprintf(buf, n, "%s.%s.%s", prefix, a, b) : snprintf(buf, n, "%s.%s", prefix, a);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return QFS_TOO_BIG;
    }
    return QFS_OK;
}

qfs_status qfs_subject_format(char *buf, size_t n, enum qfs_subject kind, const char *account,
                              const char *region)
{
    if (buf && n) buf[0] = '\0';
    if (!valid_kind(kind) || subjects[kind].key != KEY_ACCOUNT_REGION) return QFS_INVALID_ARG;
    if (!qfs_proto_is_account(account) || !qfs_proto_is_region(region)) return QFS_PROTOCOL;
    return write_subject(buf, n, subjects[kind].prefix, account, region);
}

static qfs_status service_subject(char *buf, size_t n, enum qfs_subject kind, const char *service)
{
    if (buf && n) buf[0] = '\0';
    if (!qfs_proto_is_service(service)) return QFS_PROTOCOL;
    return write_subject(buf, n, subjects[kind].prefix, service, NULL);
}

qfs_status qfs_subject_dlq(char *buf, size_t n, const char *service)
{
    return service_subject(buf, n, QFS_SUBJECT_DLQ, service);
}

qfs_status qfs_subject_stats(char *buf, size_t n, const char *service)
{
    return service_subject(buf, n, QFS_SUBJECT_STATS, service);
}

qfs_status qfs_subject_parse(const char *subject, struct qfs_subject_parts *out)
{
    memset(out, 0, sizeof(*out));
    if (!subject) return QFS_PROTOCOL;
    for (int k = 0; k < QFS_SUBJECT_COUNT; k++) {
        const struct subject_def *def = &subjects[k];
        size_t plen = strlen(def->prefix);
        if (strncmp(subject, def->prefix, plen) != 0 || subject[plen] != '.') continue;
        const char *rest = subject + plen + 1;
        out->kind = (enum qfs_subject)k;
        if (def->key == KEY_SERVICE) {
            if (!qfs_proto_is_service(rest)) return QFS_PROTOCOL;
            snprintf(out->service, sizeof(out->service), "%s", rest);
            return QFS_OK;
        }
        const char *dot = strchr(rest, '.');
        if (!dot || dot - rest != QFS_ACCOUNT_LEN) continue; /* qfs.scans.<x> is not qfs.scans.ready */
        memcpy(out->account, rest, QFS_ACCOUNT_LEN);
        out->account[QFS_ACCOUNT_LEN] = '\0';
        if (!qfs_proto_is_account(out->account) || !qfs_proto_is_region(dot + 1)) break;
        snprintf(out->region, sizeof(out->region), "%s", dot + 1);
        return QFS_OK;
    }
    memset(out, 0, sizeof(*out));
    return QFS_PROTOCOL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

bool qfs_proto_is_account(const char *s)
{
    if (!s) return false;
    for (int i = 0; i < QFS_ACCOUNT_LEN; i++)
        if (!is_digit(s[i])) return false;
    return s[QFS_ACCOUNT_LEN] == '\0';
}

/* [a-z0-9-]{1,max} */
static bool is_token(const char *s, size_t max)
{
    if (!s || !*s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) return false;
        if (n + 1 > max) return false;
    }
    return true;
}

bool qfs_proto_is_region(const char *s)
{
    return is_token(s, QFS_REGION_MAX);
}

bool qfs_proto_is_service(const char *s)
{
    return is_token(s, QFS_SERVICE_MAX);
}

bool qfs_proto_is_digest(const char *s)
{
    if (!s || strncmp(s, "sha256:", 7) != 0) return false;
    for (int i = 0; i < 64; i++)
        if (!is_lower_hex(s[7 + i])) return false;
    return s[71] == '\0';
}

bool qfs_proto_is_event_id(const char *s)
{
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool alnum = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (n == 0 || (c != '.' && c != '_' && c != ':' && c != '-'))) return false;
        if (n >= 128) return false;
    }
    return n > 0;
}

/* Reads exactly n digits at s into *v. */
static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i])) return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

bool qfs_proto_parse_timestamp(const char *s, int64_t *ms)
{
    if (!s) return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap ? 1 : 0)) return false;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        int nfrac = 0;
        for (p++; is_digit(*p); p++, nfrac++)
            if (nfrac < 3) frac_ms = frac_ms * 10 + (*p - '0');
        if (nfrac < 1 || nfrac > 9) return false;
        for (; nfrac < 3; nfrac++) frac_ms *= 10;
    }
    int offset_min = 0;
    if (p[0] == 'Z') {
        if (p[1] != '\0') return false;
    } else {
        int oh, om;
        if ((p[0] != '+' && p[0] != '-') || !digits(p + 1, 2, &oh) || p[3] != ':' ||
            !digits(p + 4, 2, &om) || oh > 23 || om > 59 || p[6] != '\0')
            return false;
        offset_min = (p[0] == '-' ? -1 : 1) * (oh * 60 + om);
    }
    /* Days since 1970-01-01 of the civil date (Howard Hinnant's days_from_civil). */
    int64_t yy = y - (mo <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)offset_min * 60;
    if (ms) *ms = secs * 1000 + frac_ms;
    return true;
}

bool qfs_proto_is_timestamp(const char *s)
{
    return qfs_proto_parse_timestamp(s, NULL);
}

qfs_status qfs_image_key_format(char *buf, size_t n, const struct qfs_image_id *img)
{
    if (!buf || n == 0) return QFS_INVALID_ARG;
    buf[0] = '\0';
    if (!img || !img->registry || !img->repository || (!img->digest && !img->tag))
        return QFS_INVALID_ARG;
    int w = img->digest ? snprintf(buf, n, "%s/%s@%s", img->registry, img->repository, img->digest)
                        : snprintf(buf, n, "%s/%s:%s", img->registry, img->repository, img->tag);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return QFS_TOO_BIG;
    }
    return QFS_OK;
}

qfs_status qfs_generation_key(char *buf, size_t n, const char *kind, const char *image_key,
                              int64_t generation)
{
    if (!buf || n == 0) return QFS_INVALID_ARG;
    int w = snprintf(buf, n, "%s:%s#%" PRId64, kind, image_key, generation);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return QFS_TOO_BIG;
    }
    return QFS_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? qfs_xstrdup(s) : NULL;
}

void qfs_image_id_copy(struct qfs_image_id *dst, const struct qfs_image_id *src)
{
    memcpy(dst->account, src->account, sizeof(dst->account));
    memcpy(dst->region, src->region, sizeof(dst->region));
    dst->registry = dup_or_null(src->registry);
    dst->repository = dup_or_null(src->repository);
    dst->tag = dup_or_null(src->tag);
    dst->digest = dup_or_null(src->digest);
    dst->image = dup_or_null(src->image);
}

void qfs_deploy_copy(struct qfs_deploy *dst, const struct qfs_deploy *src)
{
    dst->event_name = dup_or_null(src->event_name);
    dst->event_id = dup_or_null(src->event_id);
    dst->event_time = dup_or_null(src->event_time);
    memcpy(dst->event_account, src->event_account, sizeof(dst->event_account));
    memcpy(dst->event_region, src->event_region, sizeof(dst->event_region));
    dst->principal = dup_or_null(src->principal);
    dst->task_definition_arn = dup_or_null(src->task_definition_arn);
    dst->cluster = dup_or_null(src->cluster);
    dst->service = dup_or_null(src->service);
    dst->ncontainers = src->ncontainers;
    dst->containers = NULL;
    if (src->ncontainers) {
        dst->containers = qfs_xcalloc(src->ncontainers, sizeof(char *));
        for (size_t i = 0; i < src->ncontainers; i++)
            dst->containers[i] = dup_or_null(src->containers[i]);
    }
}

void qfs_image_id_cleanup(struct qfs_image_id *img)
{
    if (!img) return;
    free(img->registry);
    free(img->repository);
    free(img->tag);
    free(img->digest);
    free(img->image);
    memset(img, 0, sizeof(*img));
}

void qfs_deploy_cleanup(struct qfs_deploy *d)
{
    if (!d) return;
    free(d->event_name);
    free(d->event_id);
    free(d->event_time);
    free(d->principal);
    free(d->task_definition_arn);
    free(d->cluster);
    free(d->service);
    for (size_t i = 0; i < d->ncontainers; i++) free(d->containers[i]);
    free(d->containers);
    memset(d, 0, sizeof(*d));
}

void qfs_deploys_free(struct qfs_deploy *deploys, size_t n)
{
    if (!deploys) return;
    for (size_t i = 0; i < n; i++) qfs_deploy_cleanup(&deploys[i]);
    free(deploys);
}
