/* The JetStream bus: stream and consumers, PubAck-confirmed publishes, loop-side deliveries.
 *
 * Threads: the libuv loop thread runs all service logic and drives the NATS socket through
 * nats.c's libuv adapter, so every message nats.c reads is read on the loop thread. The bus keeps
 * it there: pull requests and PubAcks are replies to inboxes of our own, read from synchronous
 * subscriptions without waiting (a uv_check after each loop turn's I/O), and acks are published
 * to the message's reply subject. No message crosses a thread on its way in or out, which at load
 * is most of what a service would otherwise spend. Only the calls that block on a reply (creating
 * the stream and the consumers) run on a thread of their own per consumer, once at start. */
#include "qfs/bus.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <nats/adapters/libuv.h>
#include <nats/nats.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "qfs/log.h"
#include "qfs/proto_dlq.h"
#include "qfs/util.h"

#define FETCH_BATCH 64
/* A pull request lives this long on the server, and the bus sends the next one when it is over by
 * its own clock, whether or not the server said so: nats-server 2.9 answers an expired request with
 * 408 only when it sweeps its waiting requests, and drops it without a word when a message arrives
 * first. Waiting for the 408 (or a grace period after it) stalled a consumer under a steady trickle
 * of messages for up to two seconds (the benchmark's event-to-request p99 went from 10 ms to 2 s in
 * about one run in eight). */
#define PULL_EXPIRES_MS 2000
#define PULL_RETRY_MS 1000 /* after the consumer could not be reached */
#define PUB_BUCKETS 1024
#define TICK_MS 250 /* PubAck deadlines, pull retries, in-progress reports */
#define NS_PER_MS 1000000LL
#define GRAVE_BATCH 256 /* natsMsg_Destroy calls handed to nats.c together, see bury() */

enum event_kind { EV_PUB_FAILED, EV_FETCHER_READY, EV_FETCHER_ENDED, EV_RECONNECTED };

struct event {
    enum event_kind kind;
    struct event *next;
    struct fetcher *fetcher;
    struct pub *pub;       /* EV_PUB_FAILED */
    qfs_status status;     /* EV_PUB_FAILED */
};

/* A publish waiting for its PubAck (or for room to be sent). Loop thread only. */
struct pub {
    struct pub *next;          /* hash chain, or the waiting FIFO */
    struct pub *older, *newer; /* outstanding, in the order sent */
    natsMsg *msg;              /* until sent */
    uint64_t seq;              /* its reply subject is <ack inbox>.<seq> */
    uint64_t deadline_ms;      /* monotonic */
    char *subject, *msg_id;
    qfs_bus_pub_fn cb;
    void *arg;
};

struct fetcher {
    struct qfs_bus *bus;
    struct qfs_consumer_def def;
    char *durable, *filter;
    uv_thread_t thread; /* creates the consumer, then ends */
    bool thread_started;
    bool lost; /* the consumer went while we pulled (written before a set-up thread starts) */
    /* Loop thread from here on. */
    bool setting_up;              /* a set-up thread runs (until its EV_FETCHER_ENDED) */
    bool again;                   /* the consumer went while it ran: run another after it */
    bool ready;                   /* the consumer exists and the inbox is subscribed */
    natsSubscription *inbox_sub;  /* <inbox>.*: messages and statuses of our pull requests */
    char *inbox, *next_subject;   /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
    uint64_t pull_id;             /* the current pull request's reply is <inbox>.<pull_id> */
    int requested;                /* messages it may still bring; 0: none outstanding */
    uint64_t pull_deadline_ms;    /* monotonic: the request has expired on the server */
    uint64_t pull_not_before_ms;  /* monotonic: back off after a failed pull */
    int held;                     /* delivered and not yet settled */
    uint64_t received;
};

struct qfs_delivery {
    struct qfs_delivery *prev, *next; /* the bus's list of unsettled deliveries */
    struct fetcher *fetcher;
    natsMsg *msg;
    uint64_t count, stream_seq;
    int64_t stored_ms;
    /* qfs_delivery_finish state */
    size_t pubs_left;
    bool pub_failed;
    int64_t retry_delay_ms;
    bool dlq; /* waiting for its DLQ entry to be stored */
    /* Returned to the server by qfs_bus_nak_all while its handler still held it: whatever the
     * handler does with it now only frees it. */
    bool abandoned;
    uint64_t progress_ms; /* monotonic: delivered, or last told the server it is in progress */
};

struct qfs_bus {
    uv_loop_t *loop;
    natsOptions *nopts;
    natsConnection *nc;
    jsCtx *js;
    char *name, *stream;
    char **subjects;
    int nsubjects;
    int64_t max_age_ms, dup_window_ms, publish_timeout_ms;
    int max_outstanding;

    uv_async_t async;
    uv_timer_t keepalive; /* tells the server about deliveries held long, so AckWait can be short */
    uv_timer_t pull_timer; /* the next pull request expiry, see PULL_EXPIRES_MS */
    uv_check_t check;     /* reads what nats.c queued during the loop turn's I/O */
    uv_prepare_t write_turn; /* writes what the loop turn buffered, see io_write */
    uv_thread_t loop_thread;
    struct nats_io *io;
    bool writing, written; /* in on_write_turn; the buffer went out whole */
    uv_work_t flush;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signals nats_closed */
    struct event *ev_head, *ev_tail;
    natsSubscription *ack_sub;        /* <ack inbox>.*: PubAcks */
    char *ack_inbox;
    uint64_t pub_seq;
    struct pub *buckets[PUB_BUCKETS]; /* outstanding publishes by seq; loop thread */
    struct pub *oldest, *newest;      /* outstanding publishes in the order sent */
    bool stream_ready;                /* guarded by mu */
    bool nats_closed;                 /* nats.c's closed callback has run; guarded by mu */

    atomic_bool stopping;
    atomic_bool connected;
    atomic_int outstanding;

    /* Loop-thread state. */
    struct fetcher *fetchers;
    size_t nfetchers, fetchers_ready, fetchers_running;
    void *ctx;
    qfs_bus_ready_fn ready;
    void *ready_arg;
    void (*stopped)(void *arg);
    void *stopped_arg;
    struct pub *wait_head, *wait_tail; /* publishes waiting for room */
    size_t waiting;
    struct qfs_delivery *deliveries;
    struct qfs_delivery *abandoned; /* NAKed at the drain deadline, still held by handlers */
    size_t inflight;
    void (*closed)(void *arg);
    void *closed_arg;
    bool closing; /* the service has stopped: nothing more is delivered */
    int open_handles; /* while the bus closes: its loop handles not yet closed */
    natsMsg **grave; /* messages done with, destroyed together by grave_flush */
    size_t ngrave, grave_cap;
    struct qfs_bus_stats stats;
};

/* ---- destroying messages ------------------------------------------------------------------ */

/* nats.c's natsMsg_Destroy does not free: it hands the message to the library's collector thread,
 * waking it whenever it sleeps. A wake per message (a futex call and two context switches) cost
 * more than the rest of the message's work, so messages done with wait here and are handed over
 * together, GRAVE_BATCH at a time after a loop turn or all at the next tick, while the collector
 * is still busy with the first of them (see also open_nats_library). Loop thread. */
static void bury(struct qfs_bus *bus, natsMsg *msg)
{
    if (!msg) return;
    if (bus->ngrave == bus->grave_cap) {
        bus->grave_cap = bus->grave_cap ? bus->grave_cap * 2 : GRAVE_BATCH;
        bus->grave = qfs_xrealloc(bus->grave, bus->grave_cap * sizeof(*bus->grave));
    }
    bus->grave[bus->ngrave++] = msg;
}

static void grave_flush(struct qfs_bus *bus)
{
    for (size_t i = 0; i < bus->ngrave; i++) natsMsg_Destroy(bus->grave[i]);
    bus->ngrave = 0;
}

/* The library's own threads (the collector above, a timer thread, a callback thread) start when
 * it opens and take the scheduling policy of the thread that opens it. None of them is urgent,
 * yet as ordinary threads the collector, woken by a destroy, preempted the loop thread on its CPU
 * there and then, and ran into the lock the loop thread still held: four context switches per
 * message destroyed (perf sched_switch stacks, 60,000 messages). Opened under SCHED_BATCH, whose
 * threads do not preempt on waking, they run beside the loop instead, and the loop thread goes back
 * to its own policy. Best effort: where the policy cannot change, the library opens as before. */
static void open_nats_library(void)
{
    struct sched_param none = {0};
    bool batch = sched_getscheduler(0) == SCHED_OTHER &&
                 sched_setscheduler(0, SCHED_BATCH, &none) == 0;
    nats_Open(-1);
    if (batch) sched_setscheduler(0, SCHED_OTHER, &none);
}

/* ---- the socket ------------------------------------------------------------------------------
 *
 * nats.c's libuv adapter, with one change: the loop thread does not wait for the socket to be
 * writable. nats.c asks for writability whenever it has buffered something, and the adapter asks
 * libuv, whose uv_poll_start takes the socket out of epoll and puts it back (two epoll_ctl), twice
 * per write; a service under load made more epoll_ctl calls than all its other system calls
 * together. The socket is nearly always writable: what the loop turn buffered is written just
 * before the loop polls again (on_write_turn), and only a write the socket could not take whole, or
 * a write asked for by another thread (nats.c's own, while it reconnects or flushes), waits for
 * writability the adapter's way. */
struct nats_io {
    struct qfs_bus *bus;
    void *nle;                 /* the adapter's state */
    atomic_bool write_polled;  /* the adapter watches for writability */
    atomic_bool detached;
};

static natsStatus io_attach(void **user, void *arg, natsConnection *nc, natsSock sock)
{
    struct qfs_bus *bus = arg;
    struct nats_io *io = *user ? *user : bus->io;
    atomic_store(&io->detached, false);
    atomic_store(&io->write_polled, false);
    natsStatus s = natsLibuv_Attach(&io->nle, bus->loop, nc, sock);
    if (s == NATS_OK) *user = io;
    return s;
}

static natsStatus io_read(void *user, bool add)
{
    struct nats_io *io = user;
    return natsLibuv_Read(io->nle, add);
}

static void on_write_turn(uv_prepare_t *h);

static natsStatus io_write(void *user, bool add)
{
    struct nats_io *io = user;
    struct qfs_bus *bus = io->bus;
    uv_thread_t self = uv_thread_self();
    bool loop_thread = uv_thread_equal(&self, &bus->loop_thread);
    if (loop_thread && add && !bus->writing) {
        uv_prepare_start(&bus->write_turn, on_write_turn);
        return NATS_OK;
    }
    if (loop_thread && !add && bus->writing) bus->written = true;
    if (!add && !atomic_load(&io->write_polled)) return NATS_OK;
    atomic_store(&io->write_polled, add);
    return natsLibuv_Write(io->nle, add);
}

static natsStatus io_detach(void *user)
{
    struct nats_io *io = user;
    atomic_store(&io->detached, true);
    return natsLibuv_Detach(io->nle);
}

/* Something buffered for a connection that is up, with nobody else about to write it. */
static bool write_pending(struct qfs_bus *bus)
{
    return bus->nc && !atomic_load(&bus->io->detached) && !atomic_load(&bus->io->write_polled) &&
           natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED &&
           natsConnection_Buffered(bus->nc) > 0;
}

static void on_write_turn(uv_prepare_t *h)
{
    struct qfs_bus *bus = h->data;
    uv_prepare_stop(h);
    if (!write_pending(bus)) return;
    bus->writing = true;
    bus->written = false;
    natsConnection_ProcessWriteEvent(bus->nc); /* ends with io_write(remove) when all went out */
    bus->writing = false;
    if (!bus->written && write_pending(bus)) {
        atomic_store(&bus->io->write_polled, true);
        natsLibuv_Write(bus->io->nle, true);
    }
}

static qfs_status map_nats(natsStatus s)
{
    switch (s) {
    case NATS_OK: return QFS_OK;
    case NATS_TIMEOUT: return QFS_TIMED_OUT;
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR: return QFS_UNAVAILABLE;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT: return QFS_INVALID_ARG;
    case NATS_NOT_PERMITTED: return QFS_DENIED;
    case NATS_NOT_FOUND: return QFS_NOT_FOUND;
    case NATS_MAX_PAYLOAD: return QFS_TOO_BIG;
    default: return QFS_UNAVAILABLE;
    }
}

/* Queues an event for the loop. Any thread. */
static void post(struct qfs_bus *bus, struct event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&bus->mu);
    if (bus->ev_tail) bus->ev_tail->next = ev;
    else bus->ev_head = ev;
    bus->ev_tail = ev;
    pthread_mutex_unlock(&bus->mu);
    uv_async_send(&bus->async);
}

static void post_kind(struct qfs_bus *bus, enum event_kind kind, struct fetcher *f)
{
    struct event *ev = qfs_xcalloc(1, sizeof(*ev));
    ev->kind = kind;
    ev->fetcher = f;
    post(bus, ev);
}

/* ---- connection ---------------------------------------------------------------------------- */

/* nats.c's last callback for a connection: after it, none of them touches the bus. */
static void on_nats_closed(natsConnection *nc, void *closure)
{
    struct qfs_bus *bus = closure;
    pthread_mutex_lock(&bus->mu);
    bus->nats_closed = true;
    pthread_cond_broadcast(&bus->cond);
    pthread_mutex_unlock(&bus->mu);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    struct qfs_bus *bus = closure;
    atomic_store(&bus->connected, false);
    if (!atomic_load(&bus->stopping)) qfs_warn("nats disconnected, reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    struct qfs_bus *bus = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    atomic_store(&bus->connected, true);
    qfs_info("nats reconnected", "url", url);
    /* The server forgot our pull requests: the loop sends new ones. */
    struct event *ev = qfs_xcalloc(1, sizeof(*ev));
    ev->kind = EV_RECONNECTED;
    post(bus, ev);
}

static void on_connected(natsConnection *nc, void *closure)
{
    struct qfs_bus *bus = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    atomic_store(&bus->connected, true);
    qfs_info("nats connected", "url", url);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    qfs_warn("nats asynchronous error", "error", natsStatus_GetText(err));
}

static qfs_status split_servers(const char *url, char ***out, int *n)
{
    char *copy = qfs_xstrdup(url);
    char **list = NULL;
    int count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        list = qfs_xrealloc(list, (size_t)(count + 1) * sizeof(*list));
        list[count++] = qfs_xstrdup(tok);
    }
    free(copy);
    *out = list;
    *n = count;
    return count ? QFS_OK : QFS_INVALID_ARG;
}

static void on_async(uv_async_t *h);
static void on_check(uv_check_t *h);

/* Subscribes <a new inbox>.* without a callback or pending limits, for replies read on the loop
 * (on_check): each reply's subject is <inbox>.<n>, and *inbox (the caller's) names it. */
static natsStatus subscribe_inbox(natsConnection *nc, char **inbox, natsSubscription **sub)
{
    natsInbox *name = NULL;
    natsStatus s = natsInbox_Create(&name);
    if (s == NATS_OK) {
        *inbox = qfs_xstrdup(name);
        char *wild = qfs_xasprintf("%s.*", name);
        s = natsConnection_SubscribeSync(sub, nc, wild);
        free(wild);
    }
    natsInbox_Destroy(name);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(*sub, -1, -1);
    return s;
}

qfs_status qfs_bus_new(struct qfs_bus **out, uv_loop_t *loop, const struct qfs_bus_options *o)
{
    if (!o->url || !o->name || !o->stream || !o->subjects || !o->subjects[0]) return QFS_INVALID_ARG;
    char **servers = NULL;
    int nservers = 0;
    if (split_servers(o->url, &servers, &nservers) != QFS_OK) return QFS_INVALID_ARG;

    struct qfs_bus *bus = qfs_xcalloc(1, sizeof(*bus));
    bus->loop = loop;
    bus->name = qfs_xstrdup(o->name);
    bus->stream = qfs_xstrdup(o->stream);
    for (const char *const *s = o->subjects; *s; s++) bus->nsubjects++;
    bus->subjects = qfs_xcalloc((size_t)bus->nsubjects, sizeof(char *));
    for (int i = 0; i < bus->nsubjects; i++) bus->subjects[i] = qfs_xstrdup(o->subjects[i]);
    bus->max_age_ms = o->stream_max_age_ms;
    bus->dup_window_ms = o->duplicate_window_ms;
    bus->publish_timeout_ms = o->publish_timeout_ms > 0 ? o->publish_timeout_ms : 5000;
    bus->max_outstanding = o->max_outstanding > 0 ? o->max_outstanding : 256;
    pthread_mutex_init(&bus->mu, NULL);
    pthread_cond_init(&bus->cond, NULL);
    uv_async_init(loop, &bus->async, on_async);
    bus->async.data = bus;
    uv_timer_init(loop, &bus->keepalive);
    bus->keepalive.data = bus;
    uv_timer_init(loop, &bus->pull_timer);
    bus->pull_timer.data = bus;
    uv_check_init(loop, &bus->check);
    bus->check.data = bus;
    uv_check_start(&bus->check, on_check);
    uv_prepare_init(loop, &bus->write_turn);
    bus->write_turn.data = bus;
    bus->loop_thread = uv_thread_self();
    bus->io = qfs_xcalloc(1, sizeof(*bus->io));
    bus->io->bus = bus;

    open_nats_library();
    natsLibuv_Init();
    natsLibuv_SetThreadLocalLoop(loop);
    char conn_name[96];
    snprintf(conn_name, sizeof(conn_name), "qfs-%s", o->name);

    natsStatus s = natsOptions_Create(&bus->nopts);
    if (s == NATS_OK) s = natsOptions_SetServers(bus->nopts, (const char **)servers, nservers);
    if (s == NATS_OK) s = natsOptions_SetName(bus->nopts, conn_name);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(bus->nopts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(bus->nopts, 250);
    if (s == NATS_OK) s = natsOptions_SetReconnectJitter(bus->nopts, 100, 1000);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(bus->nopts, true, on_connected, bus);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(bus->nopts, on_disconnected, bus);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(bus->nopts, on_reconnected, bus);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(bus->nopts, on_nats_closed, bus);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(bus->nopts, on_async_error, bus);
    /* With an event loop, "send as soon as possible" means "ask the loop to write": without it
     * every publish wakes nats.c's flusher thread, which then wakes the loop. */
    if (s == NATS_OK) s = natsOptions_SetSendAsap(bus->nopts, true);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(bus->nopts, bus, io_attach, io_read, io_write, io_detach);
    for (int i = 0; i < nservers; i++) free(servers[i]);
    free(servers);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&bus->nc, bus->nopts);
        /* With RetryOnFailedConnect, NATS_NOT_YET_CONNECTED means "connecting in the background". */
        if (s == NATS_NOT_YET_CONNECTED) s = NATS_OK;
        else if (s == NATS_OK) on_connected(bus->nc, bus);
    }
    jsOptions jo;
    if (s == NATS_OK) s = jsOptions_Init(&jo);
    if (s == NATS_OK) {
        jo.Wait = 5000;
        s = natsConnection_JetStream(&bus->js, bus->nc, &jo);
    }
    /* PubAcks come to <ack inbox>.<seq>. */
    if (s == NATS_OK) s = subscribe_inbox(bus->nc, &bus->ack_inbox, &bus->ack_sub);
    if (s != NATS_OK) {
        qfs_error("nats setup failed", "error", natsStatus_GetText(s));
        qfs_bus_close(bus, NULL, NULL);
        return map_nats(s);
    }
    *out = bus;
    return QFS_OK;
}

bool qfs_bus_is_connected(const struct qfs_bus *bus)
{
    return atomic_load(&bus->connected);
}

void qfs_bus_read_stats(const struct qfs_bus *bus, struct qfs_bus_stats *out)
{
    *out = bus->stats;
}

uint64_t qfs_bus_consumer_received(const struct qfs_bus *bus, size_t i)
{
    return i < bus->nfetchers ? bus->fetchers[i].received : 0;
}

/* ---- stream and consumers (set-up threads) ------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static natsStatus ensure_stream(struct qfs_bus *bus)
{
    pthread_mutex_lock(&bus->mu);
    bool done = bus->stream_ready;
    pthread_mutex_unlock(&bus->mu);
    if (done) return NATS_OK;

    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = bus->stream;
    cfg.Subjects = (const char **)bus->subjects;
    cfg.SubjectsLen = bus->nsubjects;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.MaxAge = bus->max_age_ms * NS_PER_MS;
    cfg.Duplicates = bus->dup_window_ms * NS_PER_MS;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, bus->js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
        /* Another version or another service created it with other limits: converge on ours. */
        s = js_UpdateStream(&si, bus->js, &cfg, NULL, &jerr);
    }
    if (si) jsStreamInfo_Destroy(si);
    if (s == NATS_OK) {
        pthread_mutex_lock(&bus->mu);
        bus->stream_ready = true;
        pthread_mutex_unlock(&bus->mu);
    } else {
        char code[16];
        snprintf(code, sizeof(code), "%d", (int)jerr);
        qfs_warn("cannot create stream yet", "stream", bus->stream, "error", natsStatus_GetText(s),
                 "js_error", code);
    }
    return s;
}

static natsStatus ensure_consumer(struct fetcher *f)
{
    struct qfs_bus *bus = f->bus;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = f->durable;
    cc.FilterSubject = f->filter;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = f->def.ack_wait_ms * NS_PER_MS;
    cc.MaxDeliver = f->def.max_deliver;
    cc.MaxAckPending = f->def.max_ack_pending;
    cc.MaxWaiting = 512;
    jsErrCode jerr = 0;
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_AddConsumer(&ci, bus->js, bus->stream, &cc, NULL, &jerr);
    if (s != NATS_OK && (jerr == JSConsumerNameExistErr || jerr == JSConsumerExistingActiveErr ||
                         jerr == JSConsumerCreateErr)) {
        if (ci) jsConsumerInfo_Destroy(ci);
        ci = NULL;
        s = js_UpdateConsumer(&ci, bus->js, bus->stream, &cc, NULL, &jerr);
    }
    if (ci) jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        char code[16];
        snprintf(code, sizeof(code), "%d", (int)jerr);
        qfs_warn("cannot create consumer yet", "consumer", f->durable, "error",
                 natsStatus_GetText(s), "js_error", code);
    }
    return s;
}

/* Whether the server now knows f's consumer on the stream. */
static bool consumer_found(struct fetcher *f)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, f->bus->js, f->bus->stream, f->durable, NULL, &jerr);
    if (ci) jsConsumerInfo_Destroy(ci);
    return s == NATS_OK;
}

/* Creates (or converges) the stream and the consumer, then ends: the loop does the pulling. */
static void setup_thread(void *arg)
{
    struct fetcher *f = arg;
    struct qfs_bus *bus = f->bus;
    int backoff = 100;
    bool ok = false;
    /* A consumer goes with its stream, and nats-server 2.9 answers for a while for a consumer
     * created while its stream was being deleted: let a deletion finish first. */
    if (f->lost) sleep_ms(PULL_RETRY_MS);
    while (!atomic_load(&bus->stopping)) {
        if (ensure_stream(bus) == NATS_OK && ensure_consumer(f) == NATS_OK &&
            (!f->lost || consumer_found(f))) {
            ok = true;
            break;
        }
        sleep_ms(backoff);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
    if (ok) post_kind(bus, EV_FETCHER_READY, f);
    post_kind(bus, EV_FETCHER_ENDED, f);
}

/* ---- pulling (loop thread) ------------------------------------------------------------------ */

static void on_pull_timer(uv_timer_t *t);

/* Sends a pull request when the fetcher has none outstanding and room for more. */
static void maybe_pull(struct fetcher *f)
{
    struct qfs_bus *bus = f->bus;
    if (!f->ready || f->requested > 0 || bus->closing || atomic_load(&bus->stopping) ||
        !atomic_load(&bus->connected))
        return;
    uint64_t now = qfs_mono_ms();
    if (now < f->pull_not_before_ms) return;
    int room = f->def.max_ack_pending - f->held;
    if (room <= 0) return;
    int batch = room < FETCH_BATCH ? room : FETCH_BATCH;
    char reply[160], body[96];
    snprintf(reply, sizeof(reply), "%s.%" PRIu64, f->inbox, ++f->pull_id);
    snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%lld}", batch,
             (long long)PULL_EXPIRES_MS * NS_PER_MS);
    natsStatus s = natsConnection_PublishRequestString(bus->nc, f->next_subject, reply, body);
    if (s != NATS_OK) {
        f->pull_not_before_ms = now + PULL_RETRY_MS;
        return;
    }
    f->requested = batch;
    f->pull_deadline_ms = now + PULL_EXPIRES_MS;
    if (!uv_is_active((uv_handle_t *)&bus->pull_timer))
        uv_timer_start(&bus->pull_timer, on_pull_timer, PULL_EXPIRES_MS, 0);
}

/* Ends the pull requests that have expired (see PULL_EXPIRES_MS) and sends their successors, then
 * waits for the next expiry. */
static void on_pull_timer(uv_timer_t *t)
{
    struct qfs_bus *bus = t->data;
    uint64_t now = qfs_mono_ms(), next = 0;
    for (size_t i = 0; i < bus->nfetchers; i++) {
        struct fetcher *f = &bus->fetchers[i];
        if (f->requested > 0 && now >= f->pull_deadline_ms) {
            f->requested = 0;
            maybe_pull(f);
        }
        if (f->requested > 0 && (!next || f->pull_deadline_ms < next)) next = f->pull_deadline_ms;
    }
    if (next) uv_timer_start(t, on_pull_timer, next > now ? next - now : 0, 0);
    else uv_timer_stop(t);
}

static void deliver(struct qfs_bus *bus, struct fetcher *f, natsMsg *msg);
static void fetcher_gone(struct fetcher *f, const char *detail);
static void send_ack(natsConnection *nc, natsMsg *msg, const char *body);

/* The n of a reply subject <inbox>.<n> (a pull request's id, a publish's seq); 0 when subject is
 * not under inbox. */
static uint64_t reply_seq(const char *inbox, const char *subject)
{
    size_t n = strlen(inbox);
    if (strncmp(subject, inbox, n) != 0 || subject[n] != '.') return 0;
    return strtoull(subject + n + 1, NULL, 10);
}

/* Everything nats.c queued on f's inbox: messages are delivered (or sent straight back while the
 * bus stops), statuses end the pull request they answer. */
static void drain_fetcher(struct fetcher *f)
{
    struct qfs_bus *bus = f->bus;
    for (;;) {
        int pending = 0;
        if (natsSubscription_GetPending(f->inbox_sub, &pending, NULL) != NATS_OK || pending <= 0) break;
        natsMsg *msg = NULL;
        natsStatus s = natsSubscription_NextMsg(&msg, f->inbox_sub, 0);
        if (s == NATS_NO_RESPONDERS) {
            fetcher_gone(f, "no responders");
            continue;
        }
        if (s != NATS_OK) break;
        const char *status = NULL;
        if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status) {
            /* 404 no messages, 408 expired, 409 a limit or the consumer went: the request ended.
             * 100 is a heartbeat. A status comes on the request's own reply subject, so one that
             * ends an earlier request (given up on) is told apart. */
            bool current = reply_seq(f->inbox, natsMsg_GetSubject(msg)) == f->pull_id;
            if (current && strcmp(status, "100") != 0) {
                f->requested = 0;
                if (strcmp(status, "409") == 0) {
                    const char *desc = NULL;
                    natsMsgHeader_Get(msg, "Description", &desc);
                    if (desc && strcasecmp(desc, "Consumer Deleted") == 0) {
                        fetcher_gone(f, desc);
                    } else {
                        qfs_warn("pull request refused", "consumer", f->durable, "detail", desc ? desc : "");
                        f->pull_not_before_ms = qfs_mono_ms() + PULL_RETRY_MS;
                    }
                }
            }
            bury(bus, msg);
            continue;
        }
        /* Messages keep their stream subject: any of them counts against the request. */
        if (f->requested > 0) f->requested--;
        f->received++;
        if (bus->closing || atomic_load(&bus->stopping)) {
            /* Pulled while the service stops: straight back to the server for another replica. */
            send_ack(bus->nc, msg, "-NAK");
            bury(bus, msg);
            continue;
        }
        deliver(bus, f, msg);
    }
    maybe_pull(f);
}

static void pub_complete_seq(struct qfs_bus *bus, uint64_t seq, qfs_status st, const char *detail);

/* PubAcks: {"stream":...,"seq":...} or {"error":{"code":...,"description":...}}. */
static void drain_pubacks(struct qfs_bus *bus)
{
    for (;;) {
        int pending = 0;
        if (natsSubscription_GetPending(bus->ack_sub, &pending, NULL) != NATS_OK || pending <= 0) break;
        natsMsg *msg = NULL;
        natsStatus s = natsSubscription_NextMsg(&msg, bus->ack_sub, 0);
        /* No responders: nats.c drops the reply, so its publish fails at its deadline. */
        if (s == NATS_NO_RESPONDERS) continue;
        if (s != NATS_OK) break;
        uint64_t seq = reply_seq(bus->ack_inbox, natsMsg_GetSubject(msg));
        cJSON *j = cJSON_ParseWithLength(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (err) {
            const cJSON *desc = cJSON_GetObjectItemCaseSensitive(err, "description");
            pub_complete_seq(bus, seq, QFS_UNAVAILABLE, cJSON_IsString(desc) ? desc->valuestring : "error");
        } else if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "seq"))) {
            pub_complete_seq(bus, seq, QFS_OK, NULL);
        } else {
            pub_complete_seq(bus, seq, QFS_UNAVAILABLE, "not a PubAck");
        }
        cJSON_Delete(j);
        bury(bus, msg);
    }
}

static void on_check(uv_check_t *h)
{
    struct qfs_bus *bus = h->data;
    if (bus->ack_sub) drain_pubacks(bus);
    for (size_t i = 0; i < bus->nfetchers; i++)
        if (bus->fetchers[i].ready) drain_fetcher(&bus->fetchers[i]);
    if (bus->ngrave >= GRAVE_BATCH) grave_flush(bus);
}

/* Starts the thread that creates (or converges) the stream and f's consumer. */
static qfs_status start_setup(struct fetcher *f)
{
    if (f->thread_started) uv_thread_join(&f->thread); /* ended: it posted EV_FETCHER_ENDED */
    f->thread_started = false;
    if (uv_thread_create(&f->thread, setup_thread, f) != 0) return QFS_INTERNAL;
    f->thread_started = true;
    f->setting_up = true;
    f->bus->fetchers_running++;
    return QFS_OK;
}

/* Runs the set-up again, the stream's too; after the running one ends if one runs. */
static void set_up_again(struct fetcher *f)
{
    struct qfs_bus *bus = f->bus;
    pthread_mutex_lock(&bus->mu);
    bus->stream_ready = false;
    pthread_mutex_unlock(&bus->mu);
    if (f->setting_up) {
        f->again = true;
        return;
    }
    f->lost = true; /* read by the thread, so written before it starts */
    if (start_setup(f) != QFS_OK) qfs_error("cannot start a thread", "consumer", f->durable);
}

/* Nothing answers f's pull requests: the consumer was deleted (by an operator, or with the stream,
 * or with a JetStream store that was lost), or JetStream is not up yet after a restart. Pulling
 * stops and the consumer is set up again the way it was at start; where it exists, that changes
 * nothing. Messages held from a deleted consumer come again from the new one (DeliverAll), and
 * what they lead to is published under the same Nats-Msg-Ids as before. */
static void fetcher_gone(struct fetcher *f, const char *detail)
{
    struct qfs_bus *bus = f->bus;
    if (!f->ready || bus->closing || atomic_load(&bus->stopping)) return;
    f->ready = false;
    f->requested = 0;
    qfs_warn("consumer not answering: setting it up again", "consumer", f->durable, "detail", detail);
    bus->stats.consumer_resets++;
    set_up_again(f);
}

/* The consumer exists: subscribe its inbox (the first time) and start pulling. */
static void fetcher_ready(struct fetcher *f)
{
    struct qfs_bus *bus = f->bus;
    if (!f->inbox_sub) {
        natsStatus s = subscribe_inbox(bus->nc, &f->inbox, &f->inbox_sub);
        if (s != NATS_OK) {
            qfs_error("cannot subscribe a consumer's inbox", "consumer", f->durable, "error",
                      natsStatus_GetText(s));
            return;
        }
        f->next_subject = qfs_xasprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", bus->stream, f->durable);
        if (++bus->fetchers_ready == bus->nfetchers && bus->ready) bus->ready(bus->ready_arg);
    }
    f->ready = true;
    f->pull_not_before_ms = 0;
    maybe_pull(f);
}

static void pub_expire(struct qfs_bus *bus, uint64_t now);

/* Every TICK_MS: PubAcks overdue, pull requests lost, and deliveries held for a third of their
 * AckWait (a slow Qualys answer, a lookup behind a throttle) reported in progress, so the server
 * does not redeliver them while they are worked on, and a process that dies holding one loses it
 * for one AckWait only. */
static void on_keepalive(uv_timer_t *t)
{
    struct qfs_bus *bus = t->data;
    uint64_t now = qfs_mono_ms();
    grave_flush(bus);
    pub_expire(bus, now);
    /* Pulls that could not be sent (see PULL_RETRY_MS); expired ones are on_pull_timer's. */
    for (size_t i = 0; i < bus->nfetchers; i++) maybe_pull(&bus->fetchers[i]);
    for (struct qfs_delivery *d = bus->deliveries; d; d = d->next) {
        int64_t wait = d->fetcher->def.ack_wait_ms;
        if (wait <= 0 || now - d->progress_ms < (uint64_t)wait / 3) continue;
        send_ack(bus->nc, d->msg, "+WPI");
        d->progress_ms = now;
    }
}

qfs_status qfs_bus_start(struct qfs_bus *bus, const struct qfs_consumer_def *defs, size_t n,
                         void *ctx, qfs_bus_ready_fn ready, void *ready_arg)
{
    bus->ctx = ctx;
    bus->ready = ready;
    bus->ready_arg = ready_arg;
    bus->fetchers = qfs_xcalloc(n ? n : 1, sizeof(*bus->fetchers));
    bus->nfetchers = n;
    uv_timer_start(&bus->keepalive, on_keepalive, TICK_MS, TICK_MS);
    for (size_t i = 0; i < n; i++) {
        struct fetcher *f = &bus->fetchers[i];
        const char *filter = defs[i].filter ? defs[i].filter : qfs_subject_filter(defs[i].subject);
        if (!defs[i].durable || !filter || !defs[i].handle || defs[i].max_ack_pending <= 0)
            return QFS_INVALID_ARG;
        f->bus = bus;
        f->def = defs[i];
        f->durable = qfs_xstrdup(defs[i].durable);
        f->filter = qfs_xstrdup(filter);
        f->def.durable = f->durable;
        f->def.filter = f->filter;
    }
    for (size_t i = 0; i < n; i++)
        if (start_setup(&bus->fetchers[i]) != QFS_OK) return QFS_INTERNAL;
    if (n == 0 && ready) ready(ready_arg);
    return QFS_OK;
}

void qfs_bus_stop_fetching(struct qfs_bus *bus, void (*done)(void *arg), void *arg)
{
    bus->stopped = done;
    bus->stopped_arg = arg;
    atomic_store(&bus->stopping, true);
    /* The server holds our pull requests until they expire and would go on filling them: without
     * interest in their inboxes it drops them, and what is already here goes back (NAKs). */
    for (size_t i = 0; i < bus->nfetchers; i++) {
        struct fetcher *f = &bus->fetchers[i];
        if (!f->inbox_sub) continue;
        drain_fetcher(f);
        natsSubscription_Unsubscribe(f->inbox_sub);
        f->ready = false;
        f->requested = 0;
    }
    if (bus->fetchers_running == 0 && done) {
        bus->stopped = NULL;
        done(arg);
    }
}

size_t qfs_bus_inflight(const struct qfs_bus *bus)
{
    return bus->inflight;
}

size_t qfs_bus_publishes_pending(const struct qfs_bus *bus)
{
    return (size_t)atomic_load(&bus->outstanding) + bus->waiting;
}

/* ---- publishing ---------------------------------------------------------------------------- */

static size_t pub_hash(uint64_t seq)
{
    return (size_t)(seq % PUB_BUCKETS);
}

static void pub_free(struct qfs_bus *bus, struct pub *p)
{
    bury(bus, p->msg);
    free(p->subject);
    free(p->msg_id);
    free(p);
}

/* Takes an outstanding publish out of the table and the send order. */
static void pub_unlink(struct qfs_bus *bus, struct pub *p)
{
    struct pub **pp = &bus->buckets[pub_hash(p->seq)];
    while (*pp && *pp != p) pp = &(*pp)->next;
    if (*pp) *pp = p->next;
    if (p->older) p->older->newer = p->newer;
    else bus->oldest = p->newer;
    if (p->newer) p->newer->older = p->older;
    else bus->newest = p->older;
    p->next = p->older = p->newer = NULL;
}

static void pub_completed(struct qfs_bus *bus, struct pub *p, qfs_status st);

static void pub_complete_seq(struct qfs_bus *bus, uint64_t seq, qfs_status st, const char *detail)
{
    struct pub *p = bus->buckets[pub_hash(seq)];
    while (p && p->seq != seq) p = p->next;
    if (!p) return; /* already failed at its deadline */
    pub_unlink(bus, p);
    if (st != QFS_OK)
        qfs_warn("publish not acknowledged", "subject", p->subject, "msg_id", p->msg_id, "detail", detail);
    pub_completed(bus, p, st);
}

/* Fails the publishes whose PubAck is overdue (lost with a connection, or a stream that was not
 * there). They were sent in order, so the oldest go first. */
static void pub_expire(struct qfs_bus *bus, uint64_t now)
{
    while (bus->oldest && bus->oldest->deadline_ms <= now) {
        struct pub *p = bus->oldest;
        pub_unlink(bus, p);
        qfs_warn("publish not acknowledged", "subject", p->subject, "msg_id", p->msg_id, "detail",
                 "no PubAck in time");
        pub_completed(bus, p, QFS_TIMED_OUT);
    }
}

/* Sends p. On the loop thread. */
static void pub_send(struct qfs_bus *bus, struct pub *p)
{
    size_t h = pub_hash(p->seq);
    p->next = bus->buckets[h];
    bus->buckets[h] = p;
    p->older = bus->newest;
    if (bus->newest) bus->newest->newer = p;
    else bus->oldest = p;
    bus->newest = p;
    p->deadline_ms = qfs_mono_ms() + (uint64_t)bus->publish_timeout_ms;
    atomic_fetch_add(&bus->outstanding, 1);
    natsStatus s = natsConnection_PublishMsg(bus->nc, p->msg);
    bury(bus, p->msg);
    p->msg = NULL;
    if (s != NATS_OK) {
        /* Not sent: fail it through the event queue so the callback never runs inside
         * qfs_bus_publish. */
        pub_unlink(bus, p);
        struct event *ev = qfs_xcalloc(1, sizeof(*ev));
        ev->kind = EV_PUB_FAILED;
        ev->pub = p;
        ev->status = map_nats(s);
        post(bus, ev);
    }
}

qfs_status qfs_bus_publish(struct qfs_bus *bus, const char *subject, const char *msg_id,
                           const char *trace_id, const char *schema, const char *data, size_t len,
                           qfs_bus_pub_fn cb, void *arg)
{
    if (!subject || !data || len > INT32_MAX) return QFS_INVALID_ARG;
    uint64_t seq = ++bus->pub_seq;
    char reply[160];
    snprintf(reply, sizeof(reply), "%s.%" PRIu64, bus->ack_inbox, seq);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, reply, data, (int)len);
    if (s == NATS_OK && msg_id) s = natsMsgHeader_Set(m, QFS_HDR_MSG_ID, msg_id);
    if (s == NATS_OK && trace_id) s = natsMsgHeader_Set(m, QFS_HDR_TRACE_ID, trace_id);
    if (s == NATS_OK && schema) s = natsMsgHeader_Set(m, QFS_HDR_SCHEMA, schema);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return QFS_INVALID_ARG;
    }
    struct pub *p = qfs_xcalloc(1, sizeof(*p));
    p->msg = m;
    p->seq = seq;
    p->subject = qfs_xstrdup(subject);
    p->msg_id = msg_id ? qfs_xstrdup(msg_id) : NULL;
    p->cb = cb;
    p->arg = arg;
    if (atomic_load(&bus->outstanding) < bus->max_outstanding && !bus->wait_head) {
        pub_send(bus, p);
    } else {
        if (bus->wait_tail) bus->wait_tail->next = p;
        else bus->wait_head = p;
        bus->wait_tail = p;
        bus->waiting++;
    }
    return QFS_OK;
}

qfs_status qfs_bus_publish_core(struct qfs_bus *bus, const char *subject, const char *data, size_t len)
{
    if (len > INT32_MAX) return QFS_INVALID_ARG;
    return map_nats(natsConnection_Publish(bus->nc, subject, data, (int)len));
}

static void pub_completed(struct qfs_bus *bus, struct pub *p, qfs_status st)
{
    atomic_fetch_sub(&bus->outstanding, 1);
    if (st == QFS_OK) bus->stats.published++;
    else bus->stats.publish_failures++;
    /* Room for a waiting publish. */
    while (bus->wait_head && atomic_load(&bus->outstanding) < bus->max_outstanding) {
        struct pub *w = bus->wait_head;
        bus->wait_head = w->next;
        if (!bus->wait_head) bus->wait_tail = NULL;
        bus->waiting--;
        pub_send(bus, w);
    }
    if (p->cb) p->cb(p->arg, st);
    pub_free(bus, p);
}

/* ---- deliveries ---------------------------------------------------------------------------- */

/* Settles a delivery with the server: "+ACK", "-NAK", "-NAK {\"delay\":ns}", "+WPI", "+TERM" to the
 * message's reply subject. */
static void send_ack(natsConnection *nc, natsMsg *msg, const char *body)
{
    const char *reply = natsMsg_GetReply(msg);
    natsStatus s = reply && *reply ? natsConnection_PublishString(nc, reply, body) : NATS_ILLEGAL_STATE;
    /* The server redelivers after AckWait: nothing is lost, but say so. */
    if (s != NATS_OK && body[1] != 'W')
        qfs_warn("cannot settle message; it will be redelivered", "action", body, "subject",
                 natsMsg_GetSubject(msg), "error", natsStatus_GetText(s));
}

static void send_nak(natsConnection *nc, natsMsg *msg, int64_t delay_ms)
{
    char body[64];
    if (delay_ms > 0) snprintf(body, sizeof(body), "-NAK {\"delay\":%lld}", (long long)delay_ms * NS_PER_MS);
    else snprintf(body, sizeof(body), "-NAK");
    send_ack(nc, msg, body);
}

static void deliver(struct qfs_bus *bus, struct fetcher *f, natsMsg *msg)
{
    struct qfs_delivery *d = qfs_xcalloc(1, sizeof(*d));
    d->fetcher = f;
    d->msg = msg;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        d->count = meta->NumDelivered;
        d->stream_seq = meta->Sequence.Stream;
        d->stored_ms = meta->Timestamp / NS_PER_MS;
        jsMsgMetaData_Destroy(meta);
    } else {
        d->count = 1;
    }
    d->progress_ms = qfs_mono_ms();
    d->next = bus->deliveries;
    if (d->next) d->next->prev = d;
    bus->deliveries = d;
    bus->inflight++;
    f->held++;
    f->def.handle(bus->ctx, d);
}

static void unlink_delivery(struct qfs_delivery **head, struct qfs_delivery *d)
{
    if (d->prev) d->prev->next = d->next;
    else *head = d->next;
    if (d->next) d->next->prev = d->prev;
    d->next = d->prev = NULL;
}

/* Takes d out of the in-flight count and gives its fetcher the room back. */
static void release_room(struct qfs_delivery *d)
{
    struct fetcher *f = d->fetcher;
    f->bus->inflight--;
    f->held--;
    maybe_pull(f);
}

/* Removes d from the bus, returns the fetcher's room (unless already given back) and frees d. */
static void settle(struct qfs_delivery *d)
{
    struct qfs_bus *bus = d->fetcher->bus;
    if (d->abandoned) {
        unlink_delivery(&bus->abandoned, d);
    } else {
        unlink_delivery(&bus->deliveries, d);
        release_room(d);
    }
    bury(bus, d->msg);
    free(d);
}

const char *qfs_delivery_subject(const struct qfs_delivery *d)
{
    return natsMsg_GetSubject(d->msg);
}

const char *qfs_delivery_data(const struct qfs_delivery *d, size_t *len)
{
    if (len) *len = (size_t)natsMsg_GetDataLength(d->msg);
    const char *p = natsMsg_GetData(d->msg);
    return p ? p : "";
}

const char *qfs_delivery_header(const struct qfs_delivery *d, const char *name)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(d->msg, name, &v) != NATS_OK) return NULL;
    return v;
}

const char *qfs_delivery_trace_id(const struct qfs_delivery *d)
{
    return qfs_delivery_header(d, QFS_HDR_TRACE_ID);
}

uint64_t qfs_delivery_count(const struct qfs_delivery *d)
{
    return d->count;
}

uint64_t qfs_delivery_stream_seq(const struct qfs_delivery *d)
{
    return d->stream_seq;
}

int qfs_delivery_max_deliver(const struct qfs_delivery *d)
{
    return d->fetcher->def.max_deliver;
}

int64_t qfs_delivery_stored_ms(const struct qfs_delivery *d)
{
    return d->stored_ms;
}

void qfs_delivery_ack(struct qfs_delivery *d)
{
    if (!d->abandoned) {
        d->fetcher->bus->stats.acks++;
        send_ack(d->fetcher->bus->nc, d->msg, "+ACK");
    }
    settle(d);
}

void qfs_delivery_retry(struct qfs_delivery *d, int64_t delay_ms, qfs_status st, const char *reason)
{
    if (d->abandoned) {
        settle(d);
        return;
    }
    int max = d->fetcher->def.max_deliver;
    if (max > 0 && d->count >= (uint64_t)max) {
        char why[512];
        snprintf(why, sizeof(why), "gave up after %" PRIu64 " deliveries: %s", d->count,
                 reason ? reason : qfs_status_str(st));
        qfs_delivery_dead_letter(d, st, why);
        return;
    }
    char count[24], delay[24];
    snprintf(count, sizeof(count), "%" PRIu64, d->count);
    snprintf(delay, sizeof(delay), "%" PRId64, delay_ms);
    qfs_info("will retry", "subject", qfs_delivery_subject(d), "trace_id", qfs_delivery_trace_id(d),
             "status", qfs_status_str(st), "reason", reason, "delivery", count, "delay_ms", delay);
    d->fetcher->bus->stats.retries++;
    send_nak(d->fetcher->bus->nc, d->msg, delay_ms);
    settle(d);
}

static void dlq_stored(void *arg, qfs_status st)
{
    struct qfs_delivery *d = arg;
    if (d->abandoned) {
        settle(d);
        return;
    }
    struct qfs_bus_stats *stats = &d->fetcher->bus->stats;
    if (st != QFS_OK) {
        stats->dead_letter_failures++;
        /* The DLQ entry is not stored: leave the message to be redelivered rather than lose it. */
        qfs_error("dead-letter publish failed; message will be redelivered", "subject",
                  qfs_delivery_subject(d), "status", qfs_status_str(st));
        send_nak(d->fetcher->bus->nc, d->msg, 5000);
        settle(d);
        return;
    }
    stats->dead_letters++;
    send_ack(d->fetcher->bus->nc, d->msg, "+TERM");
    settle(d);
}

qfs_status qfs_bus_publish_dlq(struct qfs_bus *bus, const struct qfs_dlq_entry *e, const char *msg_id,
                               qfs_bus_pub_fn cb, void *arg)
{
    char *json = NULL;
    char subject[QFS_SUBJECT_MAX];
    qfs_status s = qfs_dlq_entry_encode(e, &json);
    if (s == QFS_OK) s = qfs_subject_dlq(subject, sizeof(subject), bus->name);
    if (s == QFS_OK)
        s = qfs_bus_publish(bus, subject, msg_id, e->trace_id, qfs_schema_name(QFS_SCHEMA_DLQ), json,
                            strlen(json), cb, arg);
    free(json);
    return s;
}

void qfs_delivery_dead_letter(struct qfs_delivery *d, qfs_status st, const char *reason)
{
    struct qfs_bus *bus = d->fetcher->bus;
    if (d->abandoned) {
        settle(d);
        return;
    }
    struct qfs_dlq_entry e;
    memset(&e, 0, sizeof(e));
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    char ts[32];
    qfs_format_time_ms(qfs_now_ms(), ts);
    snprintf(e.service, sizeof(e.service), "%s", bus->name);
    /* The entry borrows these strings; nothing is freed through it. */
    e.reason = (char *)reason;
    e.status = st == QFS_OK ? QFS_INTERNAL : st;
    e.original_subject = (char *)qfs_delivery_subject(d);
    e.payload = (char *)data;
    e.payload_len = len;
    e.delivery_count = (int64_t)d->count;
    e.time = ts;
    e.trace_id = (char *)qfs_delivery_trace_id(d);

    const char **keys = NULL;
    int nkeys = 0;
    natsMsgHeader_Keys(d->msg, &keys, &nkeys);
    if (nkeys > QFS_DLQ_MAX_HEADERS) nkeys = QFS_DLQ_MAX_HEADERS;
    struct qfs_dlq_header *hdrs = qfs_xcalloc((size_t)(nkeys ? nkeys : 1), sizeof(*hdrs));
    for (int i = 0; i < nkeys; i++) {
        const char *v = NULL;
        natsMsgHeader_Get(d->msg, keys[i], &v);
        hdrs[i].name = (char *)keys[i];
        hdrs[i].value = (char *)(v ? v : "");
    }
    e.headers = hdrs;
    e.nheaders = (size_t)nkeys;

    char seq[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, d->stream_seq);
    qfs_error("dead-lettered", "subject", qfs_delivery_subject(d), "trace_id", qfs_delivery_trace_id(d),
              "status", qfs_status_str(e.status), "reason", reason, "stream_seq", seq);
    /* One DLQ entry per stored message, however often this runs. */
    char msg_id[96];
    snprintf(msg_id, sizeof(msg_id), "dlq:%s:%" PRIu64, bus->name, d->stream_seq);
    d->dlq = true;
    qfs_status es = qfs_bus_publish_dlq(bus, &e, msg_id, dlq_stored, d);
    free(hdrs);
    free((void *)keys);
    if (es != QFS_OK) {
        bus->stats.dead_letter_failures++;
        d->dlq = false;
        qfs_error("cannot build DLQ entry; message will be redelivered", "status", qfs_status_str(es));
        send_nak(bus->nc, d->msg, 5000);
        settle(d);
    }
}

/* ---- outbox -------------------------------------------------------------------------------- */

void qfs_outbox_init(struct qfs_outbox *ob)
{
    memset(ob, 0, sizeof(*ob));
}

void qfs_outbox_cleanup(struct qfs_outbox *ob)
{
    for (size_t i = 0; i < ob->n; i++) {
        free(ob->items[i].subject);
        free(ob->items[i].msg_id);
        free(ob->items[i].schema);
        free(ob->items[i].data);
    }
    free(ob->items);
    memset(ob, 0, sizeof(*ob));
}

void qfs_outbox_add_take(struct qfs_outbox *ob, const char *subject, const char *msg_id,
                         const char *schema, char *json)
{
    if (ob->n == ob->cap) {
        ob->cap = ob->cap ? ob->cap * 2 : 4;
        ob->items = qfs_xrealloc(ob->items, ob->cap * sizeof(*ob->items));
    }
    struct qfs_outbox_msg *m = &ob->items[ob->n++];
    m->subject = qfs_xstrdup(subject);
    m->msg_id = msg_id ? qfs_xstrdup(msg_id) : NULL;
    m->schema = schema ? qfs_xstrdup(schema) : NULL;
    m->data = json;
    m->len = strlen(json);
}

static void finish_one(void *arg, qfs_status st)
{
    struct qfs_delivery *d = arg;
    if (st != QFS_OK) d->pub_failed = true;
    if (--d->pubs_left > 0) return;
    if (d->abandoned)
        settle(d);
    else if (d->pub_failed)
        qfs_delivery_retry(d, d->retry_delay_ms, QFS_UNAVAILABLE, "an output was not stored");
    else
        qfs_delivery_ack(d);
}

void qfs_delivery_finish(struct qfs_delivery *d, struct qfs_outbox *ob, int64_t retry_delay_ms)
{
    struct qfs_bus *bus = d->fetcher->bus;
    if (d->abandoned || !ob || ob->n == 0) {
        if (ob) qfs_outbox_cleanup(ob);
        qfs_delivery_ack(d);
        return;
    }
    d->pubs_left = ob->n;
    d->pub_failed = false;
    d->retry_delay_ms = retry_delay_ms;
    const char *trace = qfs_delivery_trace_id(d);
    /* Publish callbacks run from the event queue, never inside qfs_bus_publish, so d stays valid
     * for the whole loop. */
    for (size_t i = 0; i < ob->n; i++) {
        struct qfs_outbox_msg *m = &ob->items[i];
        if (qfs_bus_publish(bus, m->subject, m->msg_id, trace, m->schema, m->data, m->len,
                            finish_one, d) != QFS_OK) {
            qfs_error("cannot publish output", "subject", m->subject);
            d->pub_failed = true;
            if (--d->pubs_left == 0) {
                qfs_outbox_cleanup(ob);
                qfs_delivery_retry(d, retry_delay_ms, QFS_INTERNAL, "an output could not be built");
                return;
            }
        }
    }
    qfs_outbox_cleanup(ob);
}

/* ---- the loop side ------------------------------------------------------------------------- */

static void on_async(uv_async_t *h)
{
    struct qfs_bus *bus = h->data;
    pthread_mutex_lock(&bus->mu);
    struct event *ev = bus->ev_head;
    bus->ev_head = bus->ev_tail = NULL;
    pthread_mutex_unlock(&bus->mu);

    while (ev) {
        struct event *next = ev->next;
        switch (ev->kind) {
        case EV_PUB_FAILED:
            qfs_warn("publish not sent", "subject", ev->pub->subject, "msg_id", ev->pub->msg_id, "status",
                     qfs_status_str(ev->status));
            pub_completed(bus, ev->pub, ev->status);
            break;
        case EV_FETCHER_READY:
            if (bus->closing || atomic_load(&bus->stopping)) break;
            qfs_info("consuming", "consumer", ev->fetcher->durable, "filter", ev->fetcher->filter);
            fetcher_ready(ev->fetcher);
            break;
        case EV_RECONNECTED:
            for (size_t i = 0; i < bus->nfetchers; i++) {
                bus->fetchers[i].requested = 0;
                maybe_pull(&bus->fetchers[i]);
            }
            break;
        case EV_FETCHER_ENDED:
            ev->fetcher->setting_up = false;
            if (ev->fetcher->again) {
                ev->fetcher->again = false;
                if (!bus->closing && !atomic_load(&bus->stopping)) set_up_again(ev->fetcher);
            }
            if (--bus->fetchers_running == 0 && bus->stopped) {
                void (*done)(void *) = bus->stopped;
                bus->stopped = NULL;
                done(bus->stopped_arg);
            }
            break;
        }
        free(ev);
        ev = next;
    }
}

void qfs_bus_nak_all(struct qfs_bus *bus)
{
    /* The handlers may still hold these (work in flight at the deadline): the messages go back to
     * the server now, and the deliveries wait on a list until their handlers let go. */
    while (bus->deliveries) {
        struct qfs_delivery *d = bus->deliveries;
        bus->stats.returned++;
        send_nak(bus->nc, d->msg, 0);
        unlink_delivery(&bus->deliveries, d);
        release_room(d);
        d->abandoned = true;
        d->next = bus->abandoned;
        if (d->next) d->next->prev = d;
        bus->abandoned = d;
    }
}

/* The bus's loop handles, closed together; the last one frees the bus. */
static void on_handle_closed(uv_handle_t *h)
{
    struct qfs_bus *bus = h->data;
    if (--bus->open_handles > 0) return;
    void (*closed)(void *) = bus->closed;
    void *arg = bus->closed_arg;
    grave_flush(bus);
    free(bus->grave);
    for (int i = 0; i < bus->nsubjects; i++) free(bus->subjects[i]);
    free(bus->subjects);
    free(bus->name);
    free(bus->stream);
    free(bus->ack_inbox);
    free(bus->io);
    pthread_mutex_destroy(&bus->mu);
    pthread_cond_destroy(&bus->cond);
    free(bus);
    if (closed) closed(arg);
}

static void close_finish(struct qfs_bus *bus);

/* Sends what the loop has buffered (the last acks and NAKs) before the connection goes: a PING
 * round trip, which blocks, so on a worker thread while the loop goes on reading. */
static void flush_work(uv_work_t *w)
{
    struct qfs_bus *bus = w->data;
    natsConnection_FlushTimeout(bus->nc, 2000);
}

static void flush_done(uv_work_t *w, int status)
{
    close_finish(w->data);
}

void qfs_bus_close(struct qfs_bus *bus, void (*closed)(void *arg), void *arg)
{
    bus->closed = closed;
    bus->closed_arg = arg;
    bus->closing = true;
    atomic_store(&bus->stopping, true);
    /* The set-up threads end within one back-off (their JetStream calls time out on their own).
     * What the inboxes hold goes back to the server (NAKs) before the flush. */
    for (size_t i = 0; i < bus->nfetchers; i++)
        if (bus->fetchers[i].thread_started) uv_thread_join(&bus->fetchers[i].thread);
    on_async(&bus->async);
    on_check(&bus->check);
    /* Deliveries whose handlers never let go (the service has stopped): nothing reaches them any
     * more. Freed while their fetchers still exist. */
    while (bus->abandoned) settle(bus->abandoned);
    for (size_t i = 0; i < bus->nfetchers; i++) {
        struct fetcher *f = &bus->fetchers[i];
        if (f->inbox_sub) {
            if (f->ready) natsSubscription_Unsubscribe(f->inbox_sub);
            natsSubscription_Destroy(f->inbox_sub);
        }
        free(f->inbox);
        free(f->next_subject);
        free(f->durable);
        free(f->filter);
    }
    free(bus->fetchers);
    bus->fetchers = NULL;
    bus->nfetchers = 0;
    if (bus->nc && atomic_load(&bus->connected)) {
        bus->flush.data = bus;
        if (uv_queue_work(bus->loop, &bus->flush, flush_work, flush_done) == 0) return;
    }
    close_finish(bus);
}

static void close_finish(struct qfs_bus *bus)
{
    atomic_store(&bus->stopping, true);

    /* Whatever is still waiting fails now. */
    while (bus->wait_head) {
        struct pub *w = bus->wait_head;
        bus->wait_head = w->next;
        if (w->cb) w->cb(w->arg, QFS_UNAVAILABLE);
        pub_free(bus, w);
    }
    if (bus->js) jsCtx_Destroy(bus->js);
    bus->js = NULL;
    if (bus->ack_sub) natsSubscription_Destroy(bus->ack_sub);
    bus->ack_sub = NULL;
    if (bus->nc) {
        natsConnection_Close(bus->nc);
        /* nats.c calls back (disconnected, closed) from its own thread: wait for the last one
         * before the bus goes, a short wait at exit. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        pthread_mutex_lock(&bus->mu);
        while (!bus->nats_closed)
            if (pthread_cond_timedwait(&bus->cond, &bus->mu, &until) != 0) break;
        pthread_mutex_unlock(&bus->mu);
        natsConnection_Destroy(bus->nc);
        bus->nc = NULL;
    }
    natsOptions_Destroy(bus->nopts);
    bus->nopts = NULL;

    /* Drop queued events and the publishes still waiting for a PubAck. */
    pthread_mutex_lock(&bus->mu);
    struct event *ev = bus->ev_head;
    bus->ev_head = bus->ev_tail = NULL;
    pthread_mutex_unlock(&bus->mu);
    while (bus->oldest) {
        struct pub *p = bus->oldest;
        pub_unlink(bus, p);
        pub_free(bus, p);
    }
    while (ev) {
        struct event *n = ev->next;
        if (ev->kind == EV_PUB_FAILED) pub_free(bus, ev->pub);
        free(ev);
        ev = n;
    }
    uv_handle_t *handles[] = {(uv_handle_t *)&bus->keepalive, (uv_handle_t *)&bus->pull_timer,
                              (uv_handle_t *)&bus->check, (uv_handle_t *)&bus->write_turn,
                              (uv_handle_t *)&bus->async};
    bus->open_handles = sizeof(handles) / sizeof(handles[0]);
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) uv_close(handles[i], on_handle_closed);
}
