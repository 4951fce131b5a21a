/* bench/jsraw: the raw JetStream rate of this machine, the yardstick for qfs's pipeline.
 *
 * usage: jsraw NATS_URL COUNT [SIZE]
 *
 * Creates a file-backed stream BENCHRAW (as the QFS stream is), then a publisher thread publishes
 * COUNT messages of SIZE bytes (default 1200, about one deploy event) asynchronously, each with a
 * Nats-Msg-Id and awaiting its PubAck, at most 256 outstanding (as qfs's bus does), while the main
 * thread consumes them with a durable pull consumer (fetches of 64, an ack per message). Prints one
 * JSON line: {"messages","bytes","publish_s","elapsed_s","publish_rate","rate"}, rate being
 * messages published and consumed per second end to end; deletes the stream. Exit 1 on failure. */
#include <nats/nats.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM "BENCHRAW"
#define SUBJECT "benchraw.msg"
#define FETCH_BATCH 64
#define FETCH_WAIT_MS 2000
#define MAX_OUTSTANDING 256

struct run {
    jsCtx *js;
    int count, size;
    double publish_s;
    atomic_int failed_acks;
    natsStatus status;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    struct run *r = closure;
    atomic_fetch_add(&r->failed_acks, 1);
    (void)js;
    (void)pae;
}

static void *publisher(void *arg)
{
    struct run *r = arg;
    char *body = malloc((size_t)r->size);
    if (!body) abort();
    memset(body, 'x', (size_t)r->size);
    double t0 = now_s();
    natsStatus s = NATS_OK;
    for (int i = 0; i < r->count && s == NATS_OK; i++) {
        char id[32];
        snprintf(id, sizeof(id), "raw:%d", i);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        s = js_PublishAsync(r->js, SUBJECT, body, r->size, &po);
    }
    if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        s = js_PublishAsyncComplete(r->js, &po);
    }
    r->publish_s = now_s() - t0;
    r->status = s;
    free(body);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: jsraw NATS_URL COUNT [SIZE]\n");
        return 2;
    }
    struct run r = {.count = atoi(argv[2]), .size = argc > 3 ? atoi(argv[3]) : 1200};
    if (r.count < 1 || r.size < 1) {
        fprintf(stderr, "jsraw: COUNT and SIZE must be positive\n");
        return 2;
    }
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_OUTSTANDING;
    jo.PublishAsync.ErrHandler = on_pub_error;
    jo.PublishAsync.ErrHandlerClosure = &r;
    if (s == NATS_OK) s = natsConnection_JetStream(&r.js, nc, &jo);

    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"benchraw.>"};
    sc.Name = STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    if (s == NATS_OK) {
        js_DeleteStream(r.js, STREAM, NULL, NULL); /* a leftover of an interrupted run */
        s = js_AddStream(NULL, r.js, &sc, NULL, &jerr);
    }

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 1024;
    if (s == NATS_OK) s = js_PullSubscribe(&sub, r.js, SUBJECT, "benchraw", NULL, &so, &jerr);

    pthread_t th;
    bool started = false;
    double t0 = now_s();
    if (s == NATS_OK) {
        started = pthread_create(&th, NULL, publisher, &r) == 0;
        if (!started) s = NATS_ERR;
    }
    int got = 0;
    int idle = 0;
    while (s == NATS_OK && got < r.count) {
        natsMsgList list = {0};
        natsStatus fs = natsSubscription_Fetch(&list, sub, FETCH_BATCH, FETCH_WAIT_MS, &jerr);
        if (fs == NATS_TIMEOUT) {
            if (++idle > 15) s = NATS_TIMEOUT;
            continue;
        }
        if (fs != NATS_OK) {
            s = fs;
            break;
        }
        idle = 0;
        for (int i = 0; i < list.Count; i++) natsMsg_Ack(list.Msgs[i], NULL);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    double elapsed = now_s() - t0;
    if (started) pthread_join(th, NULL);
    if (s == NATS_OK) s = r.status;
    if (s == NATS_OK && atomic_load(&r.failed_acks)) s = NATS_ERR;

    if (s == NATS_OK)
        printf("{\"messages\":%d,\"bytes\":%d,\"publish_s\":%.4f,\"elapsed_s\":%.4f,"
               "\"publish_rate\":%.1f,\"rate\":%.1f}\n",
               r.count, r.size, r.publish_s, elapsed, r.count / r.publish_s, r.count / elapsed);
    else
        fprintf(stderr, "jsraw: %s (jetstream error %d, %d consumed, %d failed PubAcks)\n",
                natsStatus_GetText(s), (int)jerr, got, atomic_load(&r.failed_acks));

    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (r.js) js_DeleteStream(r.js, STREAM, NULL, NULL);
    jsCtx_Destroy(r.js);
    natsConnection_Destroy(nc);
    nats_Close();
    return s == NATS_OK ? 0 : 1;
}
