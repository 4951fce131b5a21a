/* Configuration from the environment, declared once per service as a table from which parsing,
 * validation, --help and --check-config all come. */
#ifndef QFS_CONFIG_H
#define QFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qfs/status.h"

enum qfs_config_type {
    QFS_CFG_STRING,   /* char *, owned by the config struct */
    QFS_CFG_INT,      /* int64_t within [min, max] */
    QFS_CFG_BOOL,     /* bool: 1/0, true/false, yes/no, on/off */
    QFS_CFG_DURATION, /* int64_t milliseconds: "500ms", "30s", "5m", "2h", "7d"; a bare number is seconds */
    QFS_CFG_ENUM,     /* int: index into choices */
};

struct qfs_config_var {
    const char *name;          /* the environment variable */
    enum qfs_config_type type;
    const char *def;           /* default as text; NULL means no default */
    int64_t min, max;          /* bounds for INT and DURATION (ms); both 0 means unbounded */
    const char *desc;          /* one line for --help and the README */
    bool secret;               /* masked in --check-config and registered with the log masker */
    bool required;             /* a missing value is an error */
    size_t offset;             /* where the value goes in the config struct */
    const char *const *choices; /* ENUM: NULL-terminated list */
};

#define QFS_CFG_FIELD(type, field) offsetof(type, field)

/* Reads every variable of the table from the environment into base. Each bad or missing value is
 * written as one line naming the variable to err (may be NULL). Returns QFS_OK or QFS_PROTOCOL.
 * String values are heap copies: free them with qfs_config_cleanup(). Secret values are registered
 * with qfs_log_add_secret(). */
qfs_status qfs_config_load(const struct qfs_config_var *table, size_t n, void *base, FILE *err);
void qfs_config_cleanup(const struct qfs_config_var *table, size_t n, void *base);

/* Writes the table as help text: name, default, description. */
void qfs_config_print_help(const struct qfs_config_var *table, size_t n, FILE *out);
/* Writes the effective values (secrets as "****", unset optional values as "(unset)"). */
void qfs_config_print_effective(const struct qfs_config_var *table, size_t n, const void *base, FILE *out);

/* Parses a duration ("250ms", "30s", "5m", "2h", "7d", or bare seconds) into milliseconds. */
qfs_status qfs_config_parse_duration(const char *s, int64_t *ms);

#endif
