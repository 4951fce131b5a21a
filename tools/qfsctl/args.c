/* qfsctl's command line: the configuration table, option parsing and the help of every command. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qfsctl.h"

const char *const qfsctl_services[QFSCTL_NSERVICES] = {"ingest",   "parser",         "cache",
                                                       "registry", "scanner-poller", "notifier"};

/* ---- configuration ---------------------------------------------------------------------------- */

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define CF(f) QFS_CFG_FIELD(struct qfsctl_config, f)
const struct qfs_config_var qfsctl_config_vars[] = {
    {"QFS_NATS_URL", QFS_CFG_STRING, "nats://127.0.0.1:4222", 0, 0,
     "NATS server URLs, comma-separated.", false, false, CF(nats_url), NULL},
    {"QFS_NATS_MONITOR_URL", QFS_CFG_STRING, NULL, 0, 0,
     "nats-server's HTTP monitoring address (http://host:8222): status then counts each service's "
     "connections.", false, false, CF(nats_monitor_url), NULL},
    {"QFS_SQS_QUEUE_URL", QFS_CFG_STRING, NULL, 0, 0,
     "The SQS queue EventBridge feeds (qfsctl inject without --bus sends there).", false, false,
     CF(sqs_queue_url), NULL},
    {"QFS_LOG_LEVEL", QFS_CFG_ENUM, "warn", 0, 0,
     "Lowest level of the library's log lines on stderr.", false, false, CF(log_level), log_levels},
    QFS_KV_CONFIG_VARS(struct qfsctl_config, kv),
    QFS_QUALYS_CONFIG_VARS(struct qfsctl_config, qualys),
};
const size_t qfsctl_config_nvars = sizeof(qfsctl_config_vars) / sizeof(qfsctl_config_vars[0]);

/* ---- option parsing --------------------------------------------------------------------------- */

static qfs_status fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static qfs_status fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return QFS_PROTOCOL;
}

static const struct qfsctl_opt *find_opt(const struct qfsctl_opt *opts, size_t n, const char *name,
                                         size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
    return NULL;
}

static qfs_status set_value(const struct qfsctl_opt *o, void *base, const char *value, char *err,
                            size_t errlen)
{
    char *field = (char *)base + o->offset;
    switch (o->kind) {
    case QFSCTL_OPT_STRING:
        if (!*value) return fail(err, errlen, "--%s needs a value", o->name);
        *(const char **)(void *)field = value;
        return QFS_OK;
    case QFSCTL_OPT_DURATION: {
        int64_t ms = 0;
        if (qfs_config_parse_duration(value, &ms) != QFS_OK || ms <= 0)
            return fail(err, errlen, "--%s: \"%.40s\" is not a duration (write it like 30s, 5m, 2h or 7d)",
                        o->name, value);
        *(int64_t *)(void *)field = ms;
        return QFS_OK;
    }
    case QFSCTL_OPT_COUNT: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < 1 || v > 1000000000LL)
            return fail(err, errlen, "--%s: \"%.40s\" is not a whole number from 1 to 1000000000", o->name,
                        value);
        *(int64_t *)(void *)field = v;
        return QFS_OK;
    }
    case QFSCTL_OPT_FLAG:
        break;
    }
    return fail(err, errlen, "--%s takes no value", o->name);
}

qfs_status qfsctl_parse_opts(const struct qfsctl_opt *opts, size_t n, int argc, char **argv,
                             void *base, bool *help, size_t *npos, char *err, size_t errlen)
{
    size_t pos = 0;
    bool only_pos = false;
    *help = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            argv[1 + pos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = true;
            break;
        }
        if (a[1] != '-')
            return fail(err, errlen, "unknown option %.40s (options are written --name)", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct qfsctl_opt *o = find_opt(opts, n, name, len);
        if (!o) return fail(err, errlen, "unknown option --%.*s", (int)(len > 40 ? 40 : len), name);
        if (o->kind == QFSCTL_OPT_FLAG) {
            if (eq) return fail(err, errlen, "--%s takes no value", o->name);
            *(bool *)(void *)((char *)base + o->offset) = true;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) return fail(err, errlen, "--%s needs a value", o->name);
            value = argv[++i];
        }
        qfs_status s = set_value(o, base, value, err, errlen);
        if (s != QFS_OK) return s;
    }
    *npos = pos;
    return QFS_OK;
}

#define OPT(name, kind, type, field) {name, kind, offsetof(type, field)}
#define NOPTS(a) (sizeof(a) / sizeof(a[0]))

/* Runs the option parser; an error names the command's --help. */
static qfs_status parse_common(const struct qfsctl_opt *opts, size_t n, int argc, char **argv,
                               void *base, bool *help, size_t *npos, const char *cmd, char *err,
                               size_t errlen)
{
    qfs_status s = qfsctl_parse_opts(opts, n, argc, argv, base, help, npos, err, errlen);
    if (s != QFS_OK && err && errlen) {
        size_t len = strlen(err);
        snprintf(err + len, errlen - len, " (see qfsctl %s --help)", cmd);
    }
    return s;
}

qfs_status qfsctl_inject_parse(int argc, char **argv, struct qfsctl_inject_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("bus", QFSCTL_OPT_FLAG, struct qfsctl_inject_opts, bus),
        OPT("dry-run", QFSCTL_OPT_FLAG, struct qfsctl_inject_opts, dry_run),
    };
    memset(o, 0, sizeof(*o));
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "inject", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos == 0)
        return fail(err, errlen, "inject needs at least one FILE (an EventBridge event or a CloudTrail "
                                 "log file; tests/fixtures/events/ has examples)");
    o->files = argv + 1;
    o->nfiles = npos;
    return QFS_OK;
}

static bool subject_chars_ok(const char *s)
{
    if (!*s || strlen(s) > 256) return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p > '~') return false;
    return true;
}

qfs_status qfsctl_tail_parse(int argc, char **argv, struct qfsctl_tail_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("json", QFSCTL_OPT_FLAG, struct qfsctl_tail_opts, json),
        OPT("no-color", QFSCTL_OPT_FLAG, struct qfsctl_tail_opts, no_color),
        OPT("trace", QFSCTL_OPT_STRING, struct qfsctl_tail_opts, trace),
        OPT("count", QFSCTL_OPT_COUNT, struct qfsctl_tail_opts, count),
        OPT("timeout", QFSCTL_OPT_DURATION, struct qfsctl_tail_opts, timeout_ms),
        OPT("since", QFSCTL_OPT_DURATION, struct qfsctl_tail_opts, since_ms),
    };
    memset(o, 0, sizeof(*o));
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "tail", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos > 1) return fail(err, errlen, "tail follows one SUBJECT (got %zu); use a wildcard such as qfs.scans.>", npos);
    o->subject = npos ? argv[1] : "qfs.>";
    if (!subject_chars_ok(o->subject) || strncmp(o->subject, "qfs.", 4) != 0)
        return fail(err, errlen, "\"%.60s\" is not a qfs subject: give one such as qfs.> or "
                                 "qfs.events.111122223333.> (see proto/subjects.md)", o->subject);
    if (o->trace && !qfs_proto_is_event_id(o->trace))
        return fail(err, errlen, "--trace: \"%.60s\" is not an event id (the EventBridge event's id)", o->trace);
    return QFS_OK;
}

qfs_status qfsctl_status_parse(int argc, char **argv, struct qfsctl_status_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("json", QFSCTL_OPT_FLAG, struct qfsctl_status_opts, json),
        OPT("strict", QFSCTL_OPT_FLAG, struct qfsctl_status_opts, strict),
        OPT("idle", QFSCTL_OPT_DURATION, struct qfsctl_status_opts, idle_ms),
        OPT("service", QFSCTL_OPT_STRING, struct qfsctl_status_opts, service_list),
    };
    memset(o, 0, sizeof(*o));
    o->idle_ms = 30000;
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "status", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos) return fail(err, errlen, "status takes no arguments; use --service NAME[,NAME] to check some services");
    if (!o->service_list) {
        for (size_t i = 0; i < QFSCTL_NSERVICES; i++) o->check[i] = true;
        return QFS_OK;
    }
    const char *p = o->service_list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < QFSCTL_NSERVICES; i++)
            if (strlen(qfsctl_services[i]) == len && strncmp(qfsctl_services[i], p, len) == 0)
                found = o->check[i] = true;
        if (!found)
            return fail(err, errlen, "--service: \"%.*s\" is not a qfs service (ingest, parser, cache, "
                                     "registry, scanner-poller, notifier)", (int)(len > 40 ? 40 : len), p);
        p += len;
        if (*p == ',') p++;
    }
    return QFS_OK;
}

static qfs_status parse_seq(const char *s, uint64_t *out, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    if (*s < '0' || *s > '9') goto bad;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0) goto bad;
    *out = v;
    return QFS_OK;
bad:
    return fail(err, errlen, "\"%.40s\" is not a stream sequence number (the SEQ column of qfsctl dlq list)", s);
}

qfs_status qfsctl_dlq_parse(int argc, char **argv, struct qfsctl_dlq_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("json", QFSCTL_OPT_FLAG, struct qfsctl_dlq_opts, json),
        OPT("all", QFSCTL_OPT_FLAG, struct qfsctl_dlq_opts, all),
        OPT("service", QFSCTL_OPT_STRING, struct qfsctl_dlq_opts, service),
        OPT("since", QFSCTL_OPT_DURATION, struct qfsctl_dlq_opts, since_ms),
    };
    memset(o, 0, sizeof(*o));
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "dlq", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos == 0) return fail(err, errlen, "dlq needs an action: list, show SEQ or replay SEQ|--all");
    const char *action = argv[1];
    if (o->service && !qfs_proto_is_service(o->service))
        return fail(err, errlen, "--service: \"%.40s\" is not a service name", o->service);
    if (strcmp(action, "list") == 0) {
        o->action = QFSCTL_DLQ_LIST;
        if (npos > 1) return fail(err, errlen, "dlq list takes no arguments");
        if (o->all) return fail(err, errlen, "--all goes with dlq replay");
        return QFS_OK;
    }
    if (strcmp(action, "show") == 0) {
        o->action = QFSCTL_DLQ_SHOW;
        if (npos != 2) return fail(err, errlen, "dlq show needs one SEQ (the SEQ column of qfsctl dlq list)");
        if (o->all || o->service || o->since_ms)
            return fail(err, errlen, "dlq show takes only SEQ and --json");
        return parse_seq(argv[2], &o->seq, err, errlen);
    }
    if (strcmp(action, "replay") == 0) {
        o->action = QFSCTL_DLQ_REPLAY;
        if (o->all && npos == 1) return QFS_OK;
        if (o->all) return fail(err, errlen, "dlq replay takes a SEQ or --all, not both");
        if (o->service) return fail(err, errlen, "--service goes with dlq replay --all");
        if (npos != 2) return fail(err, errlen, "dlq replay needs one SEQ, or --all");
        return parse_seq(argv[2], &o->seq, err, errlen);
    }
    return fail(err, errlen, "unknown dlq action \"%.40s\": use list, show SEQ or replay SEQ|--all", action);
}

bool qfsctl_replay_subject_ok(const char *subject)
{
    if (!subject || !subject_chars_ok(subject)) return false;
    /* What dlq replay accepts too (events.c): a stored kind, the DLQ itself excepted. */
    for (int k = 0; k < QFS_SUBJECT_COUNT; k++) {
        if (!qfs_subject_is_stored((enum qfs_subject)k) || k == QFS_SUBJECT_DLQ) continue;
        const char *filter = qfs_subject_filter((enum qfs_subject)k);
        size_t plen = strlen(filter) - 1; /* "qfs.events." */
        if (strncmp(subject, filter, plen) == 0 && subject[plen]) return true;
    }
    return false;
}

qfs_status qfsctl_replay_parse(int argc, char **argv, struct qfsctl_replay_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("since", QFSCTL_OPT_DURATION, struct qfsctl_replay_opts, since_ms),
        OPT("subject", QFSCTL_OPT_STRING, struct qfsctl_replay_opts, subject),
        OPT("dry-run", QFSCTL_OPT_FLAG, struct qfsctl_replay_opts, dry_run),
    };
    memset(o, 0, sizeof(*o));
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "replay", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos) return fail(err, errlen, "replay takes no arguments (to replay one DLQ entry: qfsctl dlq replay SEQ)");
    if (!o->since_ms) return fail(err, errlen, "replay needs --since DURATION (how far back, e.g. 1h)");
    if (!o->subject) o->subject = qfs_subject_filter(QFS_SUBJECT_EVENTS);
    if (!qfsctl_replay_subject_ok(o->subject))
        return fail(err, errlen, "--subject: \"%.60s\" cannot be replayed: give a stored subject or "
                                 "filter such as qfs.events.> (DLQ entries: qfsctl dlq replay)", o->subject);
    return QFS_OK;
}

qfs_status qfsctl_scans_parse(int argc, char **argv, struct qfsctl_scans_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("json", QFSCTL_OPT_FLAG, struct qfsctl_scans_opts, json),
        OPT("no-cache", QFSCTL_OPT_FLAG, struct qfsctl_scans_opts, no_cache),
        OPT("image", QFSCTL_OPT_STRING, struct qfsctl_scans_opts, image),
        OPT("since", QFSCTL_OPT_DURATION, struct qfsctl_scans_opts, since_ms),
        OPT("limit", QFSCTL_OPT_COUNT, struct qfsctl_scans_opts, limit),
    };
    memset(o, 0, sizeof(*o));
    o->since_ms = 24LL * 3600 * 1000;
    o->limit = 50;
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "scans", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos) return fail(err, errlen, "scans takes no arguments; use --image REPO to choose an image");
    return QFS_OK;
}

qfs_status qfsctl_qualys_parse(int argc, char **argv, struct qfsctl_qualys_opts *o, char *err, size_t errlen)
{
    static const struct qfsctl_opt opts[] = {
        OPT("json", QFSCTL_OPT_FLAG, struct qfsctl_qualys_opts, json),
    };
    memset(o, 0, sizeof(*o));
    size_t npos = 0;
    qfs_status s = parse_common(opts, NOPTS(opts), argc, argv, o, &o->help, &npos, "qualys", err, errlen);
    if (s != QFS_OK || o->help) return s;
    if (npos == 0) return fail(err, errlen, "qualys needs an action: info or registries");
    if (strcmp(argv[1], "info") == 0) {
        o->action = QFSCTL_QUALYS_INFO;
        if (npos > 1) return fail(err, errlen, "qualys info takes no arguments");
        return QFS_OK;
    }
    if (strcmp(argv[1], "registries") != 0)
        return fail(err, errlen, "unknown qualys action \"%.40s\": use info or registries", argv[1]);
    o->action = QFSCTL_QUALYS_REGISTRIES;
    o->targets = argv + 2;
    o->ntargets = npos - 1;
    for (size_t i = 0; i < o->ntargets; i++) {
        const char *t = o->targets[i];
        const char *slash = strchr(t, '/');
        char acct[16] = "";
        if (slash && (size_t)(slash - t) < sizeof(acct)) memcpy(acct, t, (size_t)(slash - t));
        if (!slash || !qfs_proto_is_account(acct) || !qfs_proto_is_region(slash + 1))
            return fail(err, errlen, "\"%.60s\" is not ACCOUNT/REGION (e.g. 111122223333/eu-west-1)", t);
    }
    return QFS_OK;
}

/* ---- help ------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *usage;
} usages[] = {
    {"inject",
     "Usage: qfsctl inject [--bus] [--dry-run] FILE...\n"
     "\n"
     "Sends deploy events into qfs. Each FILE holds an EventBridge event, a CloudTrail log file\n"
     "({\"Records\":[...]}: each record becomes the event EventBridge would deliver), an SQS message\n"
     "or a ReceiveMessage response, as qfs-parser --explain reads them.\n"
     "\n"
     "  (default)   SendMessage to the queue EventBridge feeds (QFS_SQS_QUEUE_URL, AWS_*): the\n"
     "              way a real event comes in; prints each event id and the SQS MessageId\n"
     "  --bus       publish straight to qfs.events.<account>.<region> (QFS_NATS_URL) with\n"
     "              Nats-Msg-Id = the event id, waiting for the stream's PubAck; prints the\n"
     "              subject and stream sequence (\"duplicate\" when the id was already stored)\n"
     "  --dry-run   check the files and print what would be sent, send nothing\n"
     "\n"
     "Exit 0 when every event was sent, 1 when one could not be read or sent, 2 for bad usage.\n"},
    {"tail",
     "Usage: qfsctl tail [SUBJECT] [--since DURATION] [--trace ID] [--json] [--no-color]\n"
     "                   [--count N] [--timeout DURATION]\n"
     "\n"
     "Follows the bus (qfs.> by default, or SUBJECT such as qfs.scans.>) with an ephemeral\n"
     "ordered consumer and prints one line per message: time, stage (event, image, skip,\n"
     "request, ready, completed, failed, notification, dlq), account/region, image, outcome.\n"
     "\n"
     "  --since DURATION   start that far back (30s, 5m, 2h, 7d) instead of with new messages\n"
     "  --trace ID         only the messages of the deploy whose EventBridge event id is ID\n"
     "                     (Qfs-Trace-Id, event_id or one of deploys[].event_id)\n"
     "  --json             the raw messages, one JSON object per line\n"
     "  --no-color         no colours (they are used only on a terminal, and never with NO_COLOR)\n"
     "  --count N          stop after N messages\n"
     "  --timeout DURATION stop after that long; with --count, exit 1 if fewer came\n"},
    {"status",
     "Usage: qfsctl status [--json] [--idle DURATION] [--service NAME[,NAME]] [--strict]\n"
     "\n"
     "Per service: up or down, and per consumer the lag (messages stored and not yet delivered),\n"
     "acks pending, redeliveries and last activity; scans in flight (scan requests stored minus\n"
     "outcomes stored); DLQ entries per service and the latest one's reason.\n"
     "\n"
     "A consumer is up while a pull request of its service is waiting, or when it delivered\n"
     "within --idle (default 30s). With QFS_NATS_MONITOR_URL set, a service with no NATS\n"
     "connection is down at once, and ingest (which reads SQS) can be judged; qfs.stats.<service>\n"
     "messages count as signs of life too.\n"
     "\n"
     "  --service LIST   judge only these services (the others are still shown)\n"
     "  --strict         also unhealthy when the DLQ holds entries\n"
     "  --json           the same as a JSON object\n"
     "\n"
     "Exit 0 when healthy, 1 when a service is down (or, with --strict, the DLQ is not empty).\n"},
    {"dlq",
     "Usage: qfsctl dlq list [--service NAME] [--since DURATION] [--json]\n"
     "       qfsctl dlq show SEQ [--json]\n"
     "       qfsctl dlq replay SEQ\n"
     "       qfsctl dlq replay --all [--service NAME]\n"
     "\n"
     "The dead-letter entries on qfs.dlq.<service>: input a service could not handle.\n"
     "\n"
     "  list     one row per entry: SEQ (its stream sequence), time, service, status, the\n"
     "           subject it came from, reason\n"
     "  show     one entry in full, its original payload decoded\n"
     "  replay   republish the original payload to its original subject (ingest entries: to\n"
     "           qfs.events.<account>.<region> of the event) with Nats-Msg-Id replay:<SEQ>, so\n"
     "           the service runs it again once the cause is fixed. Replaying one entry twice\n"
     "           within the stream's duplicate window publishes it once.\n"},
    {"replay",
     "Usage: qfsctl replay --since DURATION [--subject SUBJECT] [--dry-run]\n"
     "\n"
     "Re-runs stored messages: each message stored on SUBJECT (default qfs.events.>) in the last\n"
     "DURATION is republished to its subject with Nats-Msg-Id replay:<its sequence>, so the\n"
     "services process it again. Outputs whose ids are still in the stream's duplicate window\n"
     "(QFS_STREAM_DUPLICATE_WINDOW) are dropped as duplicates by JetStream.\n"
     "\n"
     "  --dry-run   list what would be republished\n"},
    {"scans",
     "Usage: qfsctl scans [--image REPO] [--since DURATION] [--limit N] [--no-cache] [--json]\n"
     "\n"
     "Recent scan outcomes stored on qfs.scans.completed.> and qfs.scans.failed.>, oldest first:\n"
     "image, digest, counts (or why the scan failed), when, the deploys that asked for it, and\n"
     "whether the cache store still holds the result (result:<image key>).\n"
     "\n"
     "  --image REPO      only this repository (or repository:tag, or the reference as written)\n"
     "  --since DURATION  how far back (default 24h)\n"
     "  --limit N         the last N outcomes (default 50)\n"
     "  --no-cache        do not ask the cache store (QFS_CACHE_*)\n"},
    {"qualys",
     "Usage: qfsctl qualys info [--json]\n"
     "       qfsctl qualys registries [ACCOUNT/REGION...] [--json]\n"
     "\n"
     "  info         the Qualys AWS account and external id that the ECR role of each member\n"
     "               account must trust (GET /registry/aws-base), and the AWS connectors\n"
     "  registries   the Qualys registry of each ECR account/region given, or of every\n"
     "               account/region whose images reached qfs (qfs.images.* in the stream)\n"
     "\n"
     "Qualys settings: QUALYS_GATEWAY_URL or QUALYS_POD, and QUALYS_API_TOKEN,\n"
     "QUALYS_USERNAME/QUALYS_PASSWORD or QFS_QUALYS_SECRET_ARN.\n"},
    {"config",
     "Usage: qfsctl config\n"
     "\n"
     "Prints the effective configuration (secrets masked) and exits 0, or 2 naming each bad\n"
     "variable.\n"},
};

const char *qfsctl_usage(const char *command)
{
    if (!command)
        return "Usage: qfsctl [--help | --version] COMMAND [ARGS]\n"
               "\n"
               "The operator's command line of qfs. Commands (each has --help):\n"
               "  inject FILE...        send deploy events into the SQS queue (or --bus)\n"
               "  tail [SUBJECT]        follow the bus, one readable line per message\n"
               "  status                services up or down, lag, scans in flight, DLQ\n"
               "  dlq list|show|replay  the dead-letter entries\n"
               "  replay --since D      re-run stored events\n"
               "  scans                 recent scan results\n"
               "  qualys info|registries\n"
               "  config                the effective configuration, secrets masked\n"
               "\n"
               "Exit codes: 0 done, 1 failed or unhealthy, 2 bad usage or configuration.\n";
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (strcmp(usages[i].name, command) == 0) return usages[i].usage;
    return NULL;
}

void qfsctl_print_help(FILE *out)
{
    fputs(qfsctl_usage(NULL), out);
    fputs("\nEnvironment (the same variables as the services):\n", out);
    qfs_config_print_help(qfsctl_config_vars, qfsctl_config_nvars, out);
    fputs("  AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,\n"
          "  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_ENDPOINT_URL[_<SERVICE>]\n"
          "      AWS as for the services (inject, Secrets Manager, DynamoDB).\n"
          "  NO_COLOR\n"
          "      When set and not empty, tail never colours its output.\n",
          out);
}
