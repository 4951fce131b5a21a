/* qfsctl, the operator's command line: the pure core (qfsctl_core: options, message lines, tables,
 * event files, replay targets) and the commands of the binary that use it. */
#ifndef QFSCTL_H
#define QFSCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nats/nats.h>
#include <uv.h>

#include "qfs/config.h"
#include "qfs/kv.h"
#include "qfs/proto.h"
#include "qfs/proto_dlq.h"
#include "qfs/qualys.h"
#include "qfs/status.h"
#include "qfs/util.h"

struct cJSON;

/* Exit codes of every command. */
#define QFSCTL_EXIT_OK 0
#define QFSCTL_EXIT_FAIL 1  /* the command ran and something failed or is unhealthy */
#define QFSCTL_EXIT_USAGE 2 /* bad arguments or configuration: nothing was done */

/* The services qfs runs, in pipeline order (status checks these). */
#define QFSCTL_NSERVICES 6
extern const char *const qfsctl_services[QFSCTL_NSERVICES];

/* ---- configuration (the same variables as the services) -------------------------------------- */

struct qfsctl_config {
    char *nats_url;
    char *nats_monitor_url; /* optional: nats-server's HTTP monitoring (connections per service) */
    char *sqs_queue_url;
    int log_level;
    struct qfs_kv_config kv;
    struct qfs_qualys_config qualys;
};
extern const struct qfs_config_var qfsctl_config_vars[];
extern const size_t qfsctl_config_nvars;

/* ---- options --------------------------------------------------------------------------------- */

enum qfsctl_opt_kind {
    QFSCTL_OPT_FLAG,     /* bool */
    QFSCTL_OPT_STRING,   /* const char *, borrowed from argv */
    QFSCTL_OPT_DURATION, /* int64_t milliseconds, > 0 (qfs_config_parse_duration) */
    QFSCTL_OPT_COUNT,    /* int64_t, 1 .. 1e9 */
};

struct qfsctl_opt {
    const char *name; /* "since" for --since; "--since=5m" and "--since 5m" are both accepted */
    enum qfsctl_opt_kind kind;
    size_t offset;    /* where the value goes in the command's options struct */
};

/* Parses argv[1..argc-1] (argv[0] names the command) against opts into base; "--help" or "-h"
 * sets *help and stops. Positional arguments are moved, in order, to argv[1..*npos] (argv is
 * permuted); "--" ends the options. Returns QFS_PROTOCOL with err naming the problem (unknown
 * option, missing or malformed value) or QFS_OK. */
qfs_status qfsctl_parse_opts(const struct qfsctl_opt *opts, size_t n, int argc, char **argv,
                             void *base, bool *help, size_t *npos, char *err, size_t errlen);

struct qfsctl_inject_opts {
    bool help, bus, dry_run;
    char **files; /* borrowed from argv */
    size_t nfiles;
};

struct qfsctl_tail_opts {
    bool help, json, no_color;
    const char *subject; /* "qfs.>" when not given */
    const char *trace;
    int64_t count;      /* 0: no limit */
    int64_t timeout_ms; /* 0: none */
    int64_t since_ms;   /* 0: new messages only */
};

struct qfsctl_status_opts {
    bool help, json, strict;
    int64_t idle_ms;
    const char *service_list; /* comma-separated, NULL: all */
    bool check[QFSCTL_NSERVICES]; /* which services must be up */
};

enum qfsctl_dlq_action { QFSCTL_DLQ_LIST, QFSCTL_DLQ_SHOW, QFSCTL_DLQ_REPLAY };

struct qfsctl_dlq_opts {
    bool help, json, all;
    enum qfsctl_dlq_action action;
    uint64_t seq;        /* show, replay SEQ */
    const char *service; /* list, replay --all: only this service's entries */
    int64_t since_ms;    /* list: 0 = everything stored */
};

struct qfsctl_replay_opts {
    bool help, dry_run;
    int64_t since_ms;
    const char *subject; /* "qfs.events.>" when not given */
};

struct qfsctl_scans_opts {
    bool help, json, no_cache;
    const char *image;
    int64_t since_ms;
    int64_t limit;
};

enum qfsctl_qualys_action { QFSCTL_QUALYS_INFO, QFSCTL_QUALYS_REGISTRIES };

struct qfsctl_qualys_opts {
    bool help, json;
    enum qfsctl_qualys_action action;
    char **targets; /* registries: ACCOUNT/REGION arguments, borrowed from argv */
    size_t ntargets;
};

/* Each parses a command's arguments (argv[0] is the command name) into o. QFS_OK (possibly with
 * o->help set) or QFS_PROTOCOL with err saying what is wrong and how to fix it. */
qfs_status qfsctl_inject_parse(int argc, char **argv, struct qfsctl_inject_opts *o, char *err, size_t errlen);
qfs_status qfsctl_tail_parse(int argc, char **argv, struct qfsctl_tail_opts *o, char *err, size_t errlen);
qfs_status qfsctl_status_parse(int argc, char **argv, struct qfsctl_status_opts *o, char *err, size_t errlen);
qfs_status qfsctl_dlq_parse(int argc, char **argv, struct qfsctl_dlq_opts *o, char *err, size_t errlen);
qfs_status qfsctl_replay_parse(int argc, char **argv, struct qfsctl_replay_opts *o, char *err, size_t errlen);
qfs_status qfsctl_scans_parse(int argc, char **argv, struct qfsctl_scans_opts *o, char *err, size_t errlen);
qfs_status qfsctl_qualys_parse(int argc, char **argv, struct qfsctl_qualys_opts *o, char *err, size_t errlen);

/* The --help text of a command ("inject", ...), or of qfsctl itself for NULL; NULL for an unknown
 * command. Constant strings. */
const char *qfsctl_usage(const char *command);
/* Writes qfsctl's own help: commands, then every environment variable with its default. */
void qfsctl_print_help(FILE *out);

/* ---- messages as lines (tail) ------------------------------------------------------------------ */

/* A message as read from the stream; everything borrowed. */
struct qfsctl_msg {
    const char *subject;
    const char *data;
    size_t len;
    const char *trace_id; /* the Qfs-Trace-Id header, NULL when absent */
    uint64_t seq;         /* stream sequence, 0 when not stored */
    int64_t time_ms;      /* stream timestamp, 0 when unknown */
};

/* The stage name of a subject ("event", "image", "skip", "request", "ready", "completed",
 * "failed", "notification", "dlq", "stats"), or "?" for a subject qfs does not know. */
const char *qfsctl_stage(const char *subject);

/* Appends the one-line summary of m (time, stage, account/region, image, outcome; no newline) to
 * out, with ANSI colours when colour is true. Text taken from the message is cleaned of control
 * characters and cut. A message that does not decode still gets a line saying why. QFS_TOO_BIG
 * when out is full. */
qfs_status qfsctl_tail_line(const struct qfsctl_msg *m, bool colour, struct qfs_buf *out);
/* Appends m as one JSON line: {"seq","time","subject","trace_id","message"} where message is the
 * body itself (whitespace outside strings removed) when it is JSON, else a string. */
qfs_status qfsctl_json_line(const struct qfsctl_msg *m, struct qfs_buf *out);
/* True when m belongs to the deploy whose event id is id: its Qfs-Trace-Id, its event id, the
 * event_id of one of its deploys, or a DLQ entry's trace_id. */
bool qfsctl_msg_has_trace(const struct qfsctl_msg *m, const char *id);
/* Whether to colour: only on a terminal, never when NO_COLOR is set to a non-empty value or
 * --no-color was given. */
bool qfsctl_use_colour(bool is_tty, const char *no_color_env, bool no_color_flag);

/* Appends the JSON text s without the whitespace between tokens (strings untouched: the bytes are
 * otherwise kept exactly). QFS_PROTOCOL when s is not one JSON value. */
qfs_status qfsctl_json_compact(const char *s, size_t n, struct qfs_buf *out);
/* "1C/3H/7M/2L": critical and high always, then medium, low and info when not zero. */
void qfsctl_counts_str(int64_t critical, int64_t high, int64_t medium, int64_t low, int64_t info,
                       char *out, size_t n);

/* ---- tables ------------------------------------------------------------------------------------ */

/* A text table: columns as wide as their widest cell (counted in characters), two spaces apart. */
struct qfsctl_table {
    size_t ncols;
    char **cells; /* nrows * ncols, owned */
    size_t nrows;
};
void qfsctl_table_init(struct qfsctl_table *t, size_t ncols);
/* Adds a row of ncols cells (copied; NULL is written as "-"; control characters replaced). */
void qfsctl_table_add(struct qfsctl_table *t, const char *const *cells);
qfs_status qfsctl_table_render(const struct qfsctl_table *t, struct qfs_buf *out);
void qfsctl_table_cleanup(struct qfsctl_table *t);

/* ---- status ------------------------------------------------------------------------------------ */

#define QFSCTL_MAX_CONSUMERS 8

struct qfsctl_consumer_stat {
    char name[64];
    char filter[64];
    uint64_t pending;       /* NumPending: stored messages not yet delivered (lag) */
    int64_t ack_pending;    /* delivered, not yet acknowledged */
    int64_t redelivered;    /* NumRedelivered */
    int64_t waiting;        /* the most pull requests seen waiting while sampling */
    int64_t max_ack_pending;
    int64_t last_active_ms; /* last delivery, epoch ms; 0 never */
    bool push_bound;
    bool up;                /* set by qfsctl_status_judge */
};

enum qfsctl_state { QFSCTL_UNKNOWN, QFSCTL_UP, QFSCTL_DOWN };

struct qfsctl_service_stat {
    const char *name;
    bool checked;           /* counts for the exit code */
    int connections;        /* NATS connections named qfs-<name>; -1 when unknown */
    int64_t stats_seen_ms;  /* last qfs.stats.<name> message, 0 none */
    struct qfsctl_consumer_stat consumers[QFSCTL_MAX_CONSUMERS];
    size_t nconsumers;
    uint64_t dlq;           /* entries on qfs.dlq.<name> */
    enum qfsctl_state state; /* set by qfsctl_status_judge */
    char why[160];
};

struct qfsctl_status {
    struct qfsctl_service_stat services[QFSCTL_NSERVICES];
    uint64_t requested, completed, failed; /* messages stored on qfs.scans.{requested,completed,failed}.> */
    uint64_t dlq_total;
    uint64_t dlq_other;       /* entries of services qfsctl does not know */
    bool has_last_error;
    uint64_t last_error_seq;
    char last_error_service[QFS_SERVICE_MAX + 1];
    char last_error_time[40];
    char last_error_reason[256];
    bool stream_found;
    bool healthy;             /* set by qfsctl_status_judge */
};

/* Initialises st with the six services, none checked. */
void qfsctl_status_init(struct qfsctl_status *st);
/* Decides each service's state at now_ms: a consumer is up when a pull request was waiting while
 * sampling, it is push-bound, or it delivered within idle_ms; a service is up when all its
 * consumers are and it has a NATS connection (when that is known); ingest (no consumer) is up
 * with a connection or recent statistics, unknown without either source. healthy: every checked
 * service is up or unknown, and (with strict) the DLQ is empty. */
void qfsctl_status_judge(struct qfsctl_status *st, int64_t now_ms, int64_t idle_ms, bool strict);
/* The table (one row per consumer) and the summary lines. */
qfs_status qfsctl_status_render(const struct qfsctl_status *st, int64_t now_ms, struct qfs_buf *out);
qfs_status qfsctl_status_json(const struct qfsctl_status *st, struct qfs_buf *out);

/* ---- scans ------------------------------------------------------------------------------------- */

struct qfsctl_scan_row {
    int64_t time_ms;   /* stream timestamp */
    uint64_t seq;
    char account_region[48];
    char image[160];   /* repository:tag, or repository@sha256:<12 hex> */
    char digest[24];   /* sha256:<12 hex>, "-" when unknown */
    char result[96];   /* counts, or "failed <reason>" */
    char cached[8];    /* "yes", "no", "-" or "?" */
    char deploys[256];
    char key[QFS_IMAGE_KEY_MAX]; /* the image key, for the cache lookup */
    int64_t generation;
    bool completed;
    size_t index; /* the caller's */
};

/* Fills row from a stored scan result or failure (m->subject says which). QFS_PROTOCOL with err
 * when the message does not decode. */
qfs_status qfsctl_scan_row(const struct qfsctl_msg *m, struct qfsctl_scan_row *row, char *err,
                           size_t errlen);
/* True when row is about repo: its repository, its repository:tag, or its reference as written. */
bool qfsctl_scan_row_matches(const struct qfsctl_scan_row *row, const struct qfsctl_msg *m,
                             const char *repo);
qfs_status qfsctl_scans_render(const struct qfsctl_scan_row *rows, size_t n, struct qfs_buf *out);

/* ---- DLQ and replay ---------------------------------------------------------------------------- */

/* Where a DLQ entry's payload goes when replayed: its original subject, or for ingest entries
 * (no subject) qfs.events.<account>.<region> of the event in the payload. QFS_PROTOCOL with err
 * saying why it cannot be replayed (cut payload, not a qfs subject, not an event). */
qfs_status qfsctl_dlq_replay_subject(const struct qfs_dlq_entry *e, char subject[QFS_SUBJECT_MAX],
                                     char *err, size_t errlen);
/* The value of header name in the entry's original headers, or NULL. */
const char *qfsctl_dlq_header(const struct qfs_dlq_entry *e, const char *name);
/* Whether a subject may be replayed by `qfsctl replay`: a stored qfs subject or filter that is not
 * the DLQ (which `qfsctl dlq replay` handles). */
bool qfsctl_replay_subject_ok(const char *subject);
/* A DLQ entry as listed: its stream sequence and the decoded entry (owned). */
struct qfsctl_dlq_row {
    uint64_t seq;
    struct qfs_dlq_entry entry;
};
/* Appends the table of DLQ entries (seq, time, service, status, subject, trace, reason). */
qfs_status qfsctl_dlq_render(const struct qfsctl_dlq_row *rows, size_t n, struct qfs_buf *out);

/* Event files (inject) are split with qfs_event_texts() of qfs/proto_event.h. */

/* ==== the binary: commands and what they share (not in qfsctl_core) ============================ */

/* What every command has: the configuration, loaded after its arguments were parsed, and the NATS
 * connection when it needs one. */
struct qfsctl_ctx {
    struct qfsctl_config cfg;
    bool cfg_loaded;
    natsConnection *nc;
    jsCtx *js;
};

/* Loads the configuration (once). QFS_PROTOCOL after writing each bad variable to stderr. */
qfs_status qfsctl_load_config(struct qfsctl_ctx *c);
/* Connects to QFS_NATS_URL; on failure writes why and what to check to stderr. */
qfs_status qfsctl_nats_open(struct qfsctl_ctx *c);
void qfsctl_ctx_cleanup(struct qfsctl_ctx *c);

/* Fills m from a JetStream message (borrowed for as long as raw lives). */
void qfsctl_msg_from(natsMsg *raw, struct qfsctl_msg *m);

/* Called for each stored message; returning false stops the read. */
typedef bool (*qfsctl_msg_fn)(void *arg, natsMsg *raw, const struct qfsctl_msg *m);

struct qfsctl_read {
    const char *filter;  /* a subject or filter the stream stores */
    int64_t since_ms;    /* only messages stored in this last span; 0: from the first */
    uint64_t start_seq;  /* when since_ms is 0 and this is not: from this sequence */
};

/* Reads the messages stored on r->filter with an ephemeral ordered consumer, up to the stream's
 * last message when the read began (so messages the callback publishes are not read back).
 * QFS_NOT_FOUND when the stream does not exist; QFS_UNAVAILABLE / QFS_TIMED_OUT when NATS fails
 * (written to stderr). */
qfs_status qfsctl_stream_read(struct qfsctl_ctx *c, const struct qfsctl_read *r, qfsctl_msg_fn fn, void *arg);

/* Publishes data to subject through JetStream with the qfs headers (trace and schema may be NULL)
 * and waits for the PubAck: *seq and *duplicate from it. Writes a failure to stderr. */
qfs_status qfsctl_publish(struct qfsctl_ctx *c, const char *subject, const char *data, size_t len,
                          const char *msg_id, const char *trace_id, const char *schema, uint64_t *seq,
                          bool *duplicate);

/* A libuv loop run by the command itself, with the clients it asked for. */
enum { QFSCTL_IO_AWS = 1, QFSCTL_IO_KV = 2, QFSCTL_IO_QUALYS = 4 };
struct qfsctl_io {
    uv_loop_t loop;
    bool loop_ok;
    struct qfs_http *http;
    struct qfs_aws *aws;
    struct qfs_kv *kv;
    struct qfs_qualys *qualys;
};
/* Creates the clients in what (the HTTP client always). QFS_PROTOCOL for settings that cannot
 * work (written to stderr, naming the variables); other statuses when a client cannot start. */
qfs_status qfsctl_io_open(struct qfsctl_io *io, const struct qfsctl_config *cfg, unsigned what);
/* Runs the loop until *done. */
void qfsctl_io_wait(struct qfsctl_io *io, const bool *done);
/* Frees the clients, runs the loop until their handles are closed and closes it. */
void qfsctl_io_close(struct qfsctl_io *io);

/* The commands: argv[0] is the command's name. Each returns an exit code. */
int qfsctl_cmd_inject(struct qfsctl_ctx *c, int argc, char **argv);
int qfsctl_cmd_tail(struct qfsctl_ctx *c, int argc, char **argv);
int qfsctl_cmd_status(struct qfsctl_ctx *c, int argc, char **argv);
int qfsctl_cmd_dlq(struct qfsctl_ctx *c, int argc, char **argv);
int qfsctl_cmd_replay(struct qfsctl_ctx *c, int argc, char **argv);
int qfsctl_cmd_scans(struct qfsctl_ctx *c, int argc, char **argv);
int qfsctl_cmd_qualys(struct qfsctl_ctx *c, int argc, char **argv);

/* Prints "qfsctl CMD: message" and the hint to stderr; returns QFSCTL_EXIT_USAGE. */
int qfsctl_usage_error(const char *cmd, const char *message);

#endif
