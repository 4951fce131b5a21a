/* qfsctl tail: follow the bus live, one readable line (or one JSON object) per message. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfsctl.h"

#define NS_PER_MS 1000000LL
/* How often the loop looks at the stop flag and the deadline. */
#define POLL_MS 200

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static qfs_status subscribe(struct qfsctl_ctx *c, const struct qfsctl_tail_opts *o, natsSubscription **sub)
{
    natsStatus s;
    const char *stats = qfs_subject_filter(QFS_SUBJECT_STATS); /* "qfs.stats.>" */
    if (strncmp(o->subject, stats, strlen(stats) - 1) == 0) {
        /* Statistics are core NATS, never stored: only live ones can be seen. */
        if (o->since_ms) fprintf(stderr, "qfsctl tail: statistics are not stored: --since is ignored\n");
        s = natsConnection_SubscribeSync(sub, c->nc, o->subject);
    } else {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = QFS_STREAM_NAME;
        so.Ordered = true;
        if (o->since_ms) {
            so.Config.DeliverPolicy = js_DeliverByStartTime;
            so.Config.OptStartTime = (qfs_now_ms() - o->since_ms) * NS_PER_MS;
        } else {
            so.Config.DeliverPolicy = js_DeliverNew;
        }
        jsErrCode jerr = 0;
        s = js_SubscribeSync(sub, c->js, o->subject, NULL, &so, &jerr);
        if (s != NATS_OK && (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)) {
            fprintf(stderr, "qfsctl tail: the stream %s does not exist yet: start a qfs service first\n",
                    QFS_STREAM_NAME);
            return QFS_NOT_FOUND;
        }
    }
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl tail: cannot follow %s: %s (%s)\n", o->subject, natsStatus_GetText(s),
                nats_GetLastError(NULL));
        return QFS_UNAVAILABLE;
    }
    return QFS_OK;
}

int qfsctl_cmd_tail(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_tail_opts o;
    char err[512];
    if (qfsctl_tail_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("tail", err);
    if (o.help) {
        fputs(qfsctl_usage("tail"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    if (qfsctl_nats_open(c) != QFS_OK) return QFSCTL_EXIT_FAIL;
    natsSubscription *sub = NULL;
    if (subscribe(c, &o, &sub) != QFS_OK) return QFSCTL_EXIT_FAIL;

    stop_requested = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    bool colour = !o.json && qfsctl_use_colour(isatty(STDOUT_FILENO), getenv("NO_COLOR"), o.no_color);
    uint64_t deadline = o.timeout_ms ? qfs_mono_ms() + (uint64_t)o.timeout_ms : 0;
    int64_t shown = 0;
    int rc = QFSCTL_EXIT_OK;
    struct qfs_buf line;
    qfs_buf_init(&line, 0);
    while (!stop_requested && (!o.count || shown < o.count)) {
        uint64_t now = qfs_mono_ms();
        if (deadline && now >= deadline) break;
        int64_t wait = POLL_MS;
        if (deadline && (int64_t)(deadline - now) < wait) wait = (int64_t)(deadline - now);
        natsMsg *raw = NULL;
        natsStatus s = natsSubscription_NextMsg(&raw, sub, wait);
        if (s == NATS_TIMEOUT) continue;
        if (s != NATS_OK) {
            fprintf(stderr, "qfsctl tail: the subscription ended: %s\n", natsStatus_GetText(s));
            rc = QFSCTL_EXIT_FAIL;
            break;
        }
        struct qfsctl_msg m;
        qfsctl_msg_from(raw, &m);
        if (qfsctl_msg_has_trace(&m, o.trace)) {
            qfs_buf_reset(&line);
            if (o.json) qfsctl_json_line(&m, &line);
            else qfsctl_tail_line(&m, colour, &line);
            qfs_buf_puts(&line, "\n");
            fwrite(line.data, 1, line.len, stdout);
            fflush(stdout);
            shown++;
        }
        natsMsg_Destroy(raw);
    }
    qfs_buf_cleanup(&line);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    if (rc == QFSCTL_EXIT_OK && o.count && shown < o.count && !stop_requested) {
        fprintf(stderr, "qfsctl tail: stopped after %lld ms with %lld of %lld messages\n",
                (long long)o.timeout_ms, (long long)shown, (long long)o.count);
        rc = QFSCTL_EXIT_FAIL;
    }
    return rc;
}
