/* Configuration from the environment, driven by one declarative table per service. */
#include "qfs/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/log.h"
#include "qfs/util.h"

#define FIELD(base, v, T) ((T *)((char *)(base) + (v)->offset))
#define CFIELD(base, v, T) ((const T *)((const char *)(base) + (v)->offset))

static qfs_status parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return QFS_PROTOCOL;
    *out = v;
    return QFS_OK;
}

qfs_status qfs_config_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) return QFS_PROTOCOL;
    int64_t mult;
    if (!*end || strcmp(end, "s") == 0) mult = 1000;
    else if (strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "m") == 0) mult = 60 * 1000;
    else if (strcmp(end, "h") == 0) mult = 3600 * 1000;
    else if (strcmp(end, "d") == 0) mult = 86400 * 1000;
    else return QFS_PROTOCOL;
    if (v > INT64_MAX / mult) return QFS_PROTOCOL;
    *ms = v * mult;
    return QFS_OK;
}

static qfs_status parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = true; return QFS_OK; }
        if (strcasecmp(s, no[i]) == 0) { *out = false; return QFS_OK; }
    }
    return QFS_PROTOCOL;
}

static void describe_choices(const struct qfs_config_var *v, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; v->choices[i] && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", v->choices[i]);
}

/* Parses one value; on failure writes why to reason. */
static qfs_status parse_value(const struct qfs_config_var *v, const char *text, void *base,
                              char *reason, size_t rn)
{
    int64_t i64;
    bool b;
    switch (v->type) {
    case QFS_CFG_STRING:
        free(*FIELD(base, v, char *));
        *FIELD(base, v, char *) = qfs_xstrdup(text);
        return QFS_OK;
    case QFS_CFG_INT:
    case QFS_CFG_DURATION:
        if (v->type == QFS_CFG_INT ? parse_int(text, &i64) != QFS_OK
                                   : qfs_config_parse_duration(text, &i64) != QFS_OK) {
            snprintf(reason, rn, v->type == QFS_CFG_INT ? "is not an integer"
                                                        : "is not a duration such as 500ms, 30s, 5m, 2h or 7d");
            return QFS_PROTOCOL;
        }
        if ((v->min || v->max) && (i64 < v->min || i64 > v->max)) {
            if (v->type == QFS_CFG_INT)
                snprintf(reason, rn, "must be between %" PRId64 " and %" PRId64, v->min, v->max);
            else
                snprintf(reason, rn, "must be between %" PRId64 "ms and %" PRId64 "ms", v->min, v->max);
            return QFS_PROTOCOL;
        }
        *FIELD(base, v, int64_t) = i64;
        return QFS_OK;
    case QFS_CFG_BOOL:
        if (parse_bool(text, &b) != QFS_OK) {
            snprintf(reason, rn, "must be one of 1, 0, true, false, yes, no, on, off");
            return QFS_PROTOCOL;
        }
        *FIELD(base, v, bool) = b;
        return QFS_OK;
    case QFS_CFG_ENUM:
        for (int k = 0; v->choices[k]; k++) {
            if (strcmp(v->choices[k], text) == 0) {
                *FIELD(base, v, int) = k;
                return QFS_OK;
            }
        }
        {
            size_t k = (size_t)snprintf(reason, rn, "must be one of: ");
            if (k < rn) describe_choices(v, reason + k, rn - k);
        }
        return QFS_PROTOCOL;
    }
    snprintf(reason, rn, "has an unknown type");
    return QFS_INTERNAL;
}

qfs_status qfs_config_load(const struct qfs_config_var *table, size_t n, void *base, FILE *err)
{
    qfs_status result = QFS_OK;
    for (size_t i = 0; i < n; i++) {
        const struct qfs_config_var *v = &table[i];
        const char *env = getenv(v->name);
        bool from_env = env && *env;
        const char *text = from_env ? env : v->def;
        if (v->type == QFS_CFG_STRING) *FIELD(base, v, char *) = NULL;
        if (!text) {
            if (v->required) {
                if (err) fprintf(err, "%s: required but not set (%s)\n", v->name, v->desc);
                result = QFS_PROTOCOL;
            }
            continue;
        }
        char reason[256];
        if (parse_value(v, text, base, reason, sizeof(reason)) != QFS_OK) {
            /* Never echo a secret value back, even a malformed one. */
            if (err) {
                if (v->secret || !from_env)
                    fprintf(err, "%s: %s value %s\n", v->name, from_env ? "the" : "the default", reason);
                else
                    fprintf(err, "%s: \"%s\" %s\n", v->name, text, reason);
            }
            result = QFS_PROTOCOL;
            continue;
        }
        if (v->secret && v->type == QFS_CFG_STRING) qfs_log_add_secret(text);
    }
    return result;
}

void qfs_config_cleanup(const struct qfs_config_var *table, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].type == QFS_CFG_STRING) {
            free(*FIELD(base, &table[i], char *));
            *FIELD(base, &table[i], char *) = NULL;
        }
    }
}

void qfs_config_print_help(const struct qfs_config_var *table, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const struct qfs_config_var *v = &table[i];
        char extra[300] = "";
        if (v->type == QFS_CFG_ENUM) {
            char list[256];
            describe_choices(v, list, sizeof(list));
            snprintf(extra, sizeof(extra), " One of: %s.", list);
        }
        fprintf(out, "  %-34s %s%s%s\n", v->name, v->desc, extra, v->secret ? " Secret." : "");
        if (v->def)
            fprintf(out, "  %-34s default: %s\n", "", v->def);
        else
            fprintf(out, "  %-34s %s\n", "", v->required ? "required" : "default: unset");
    }
}

void qfs_config_print_effective(const struct qfs_config_var *table, size_t n, const void *base, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const struct qfs_config_var *v = &table[i];
        fprintf(out, "%s=", v->name);
        switch (v->type) {
        case QFS_CFG_STRING: {
            const char *s = *CFIELD(base, v, char *);
            fprintf(out, "%s\n", !s ? "(unset)" : v->secret ? "****" : s);
            break;
        }
        case QFS_CFG_INT:
            fprintf(out, "%" PRId64 "\n", *CFIELD(base, v, int64_t));
            break;
        case QFS_CFG_DURATION:
            fprintf(out, "%" PRId64 "ms\n", *CFIELD(base, v, int64_t));
            break;
        case QFS_CFG_BOOL:
            fprintf(out, "%s\n", *CFIELD(base, v, bool) ? "true" : "false");
            break;
        case QFS_CFG_ENUM:
            fprintf(out, "%s\n", v->choices[*CFIELD(base, v, int)]);
            break;
        }
    }
}
