/* qfsctl: the operator's command line. main only picks the command. */
#include <stdio.h>
#include <string.h>

#include "qfs/log.h"
#include "qfsctl.h"

#ifndef QFS_VERSION
#define QFS_VERSION "dev"
#endif

static int cmd_config(struct qfsctl_ctx *c, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(qfsctl_usage("config"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (argc > 1) return qfsctl_usage_error("config", "takes no arguments (see qfsctl config --help)");
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    qfs_config_print_effective(qfsctl_config_vars, qfsctl_config_nvars, &c->cfg, stdout);
    return QFSCTL_EXIT_OK;
}

static const struct {
    const char *name;
    int (*run)(struct qfsctl_ctx *c, int argc, char **argv);
} commands[] = {
    {"inject", qfsctl_cmd_inject}, {"tail", qfsctl_cmd_tail},     {"status", qfsctl_cmd_status},
    {"dlq", qfsctl_cmd_dlq},       {"replay", qfsctl_cmd_replay}, {"scans", qfsctl_cmd_scans},
    {"qualys", qfsctl_cmd_qualys}, {"config", cmd_config},
};

int main(int argc, char **argv)
{
    /* Until the configuration names a level, only errors from the library. */
    qfs_log_init("qfsctl", QFS_LOG_ERROR);
    if (argc < 2) {
        fputs(qfsctl_usage(NULL), stderr);
        return QFSCTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        qfsctl_print_help(stdout);
        return QFSCTL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qfsctl %s\n", QFS_VERSION);
        return QFSCTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        struct qfsctl_ctx c;
        memset(&c, 0, sizeof(c));
        int rc = commands[i].run(&c, argc - 1, argv + 1);
        qfsctl_ctx_cleanup(&c);
        return rc;
    }
    fprintf(stderr, "qfsctl: unknown command \"%.40s\" (qfsctl --help lists the commands)\n", argv[1]);
    return QFSCTL_EXIT_USAGE;
}
