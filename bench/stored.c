/* bench/stored: when each message on a subject filter was stored, read from JetStream itself.
 *
 * usage: stored NATS_URL FILTER [--body]
 *
 * Reads every message the stream holds on FILTER through an ephemeral ordered consumer and prints
 * one JSON line per message: {"t":<stored time, ms since the epoch>,"seq":<stream sequence>,
 * "subject","id":<Nats-Msg-Id>,"trace":<Qfs-Trace-Id>}; with --body, "body" holds the message
 * (JSON) too, otherwise only headers are fetched. Exit 1 when the server cannot be read. */
#include <nats/nats.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_MS 2000

/* Prints s as a JSON string (the ids and subjects here are printable ASCII; escape the rest). */
static void put_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: stored NATS_URL FILTER [--body]\n");
        return 2;
    }
    bool body = argc > 3 && strcmp(argv[3], "--body") == 0;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.HeadersOnly = !body;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) s = js_SubscribeSync(&sub, js, argv[2], NULL, &so, &jerr);
    long n = 0;
    while (s == NATS_OK) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, sub, IDLE_MS);
        if (ns == NATS_TIMEOUT) break; /* nothing stored on the filter, or the end */
        if (ns != NATS_OK) {
            s = ns;
            break;
        }
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
            const char *id = NULL, *trace = NULL;
            natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
            natsMsgHeader_Get(m, "Qfs-Trace-Id", &trace);
            printf("{\"t\":%.3f,\"seq\":%" PRIu64 ",\"subject\":", (double)md->Timestamp / 1e6,
                   md->Sequence.Stream);
            put_json_string(natsMsg_GetSubject(m));
            printf(",\"id\":");
            put_json_string(id ? id : "");
            printf(",\"trace\":");
            put_json_string(trace ? trace : "");
            if (body && natsMsg_GetDataLength(m) > 0)
                printf(",\"body\":%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
            printf("}\n");
            n++;
            bool last = md->NumPending == 0;
            jsMsgMetaData_Destroy(md);
            natsMsg_Destroy(m);
            if (last) break;
        } else {
            natsMsg_Destroy(m);
        }
    }
    if (s != NATS_OK)
        fprintf(stderr, "stored: %s (jetstream error %d) after %ld messages\n", natsStatus_GetText(s),
                (int)jerr, n);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return s == NATS_OK ? 0 : 1;
}
