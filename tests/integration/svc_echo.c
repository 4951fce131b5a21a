/* qfs-test-echo: a service built on the real runtime whose behaviour each message chooses, so the
 * integration tests can drive the bus through acks, retries, delays, dead letters and drains.
 * Message body (JSON): {"action": "ok" | "retry" | "slow", "n": deliveries before success,
 * "delay_ms": NAK delay, "ms": time to work}. Anything that is not such JSON is dead-lettered. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/bus.h"
#include "qfs/log.h"
#include "qfs/service.h"
#include "qfs/util.h"

struct echo_config {
    char *secret;
    char *out_subject;
};

static const struct qfs_config_var echo_vars[] = {
    {"QFS_TEST_SECRET", QFS_CFG_STRING, NULL, 0, 0, "A secret the tests check is never shown.", true,
     false, QFS_CFG_FIELD(struct echo_config, secret), NULL},
    {"QFS_TEST_OUT_SUBJECT", QFS_CFG_STRING, "qfs.images.111122223333.eu-west-1", 0, 0,
     "Where outputs go.", false, false, QFS_CFG_FIELD(struct echo_config, out_subject), NULL},
};

struct slow_work {
    uv_timer_t timer;
    struct qfs_svc *svc;
    struct qfs_delivery *d;
    struct slow_work *next;
};

/* Work still running, so stop can cancel it (the runtime returns those messages to the server). */
static struct slow_work *slow_list;

static void slow_unlink(struct slow_work *w)
{
    for (struct slow_work **p = &slow_list; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            return;
        }
    }
}

static void emit(struct qfs_svc *svc, struct qfs_delivery *d)
{
    struct echo_config *cfg = qfs_svc_config(svc);
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    const char *id = qfs_delivery_header(d, QFS_HDR_MSG_ID);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "echo", data);
    cJSON_AddNumberToObject(out, "delivery", (double)qfs_delivery_count(d));
    cJSON_AddNumberToObject(out, "stream_seq", (double)qfs_delivery_stream_seq(d));
    if (cfg->secret) {
        /* Logged on purpose: the tests prove the log masks it. */
        qfs_info("echo has a secret", "secret", cfg->secret);
    }
    char *json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    char msg_id[300];
    snprintf(msg_id, sizeof(msg_id), "echo:%s", id ? id : "none");
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    char *copy = qfs_xstrdup(json);
    free(json);
    qfs_outbox_add_take(&ob, cfg->out_subject, msg_id, "qfs.test_echo.v1", copy);
    qfs_delivery_finish(d, &ob, 500);
}

static void on_slow_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_slow_done(uv_timer_t *t)
{
    struct slow_work *w = t->data;
    slow_unlink(w);
    emit(w->svc, w->d);
    t->data = w;
    uv_close((uv_handle_t *)t, on_slow_closed);
}

static void handle(void *ctx, struct qfs_delivery *d)
{
    struct qfs_svc *svc = ctx;
    size_t len = 0;
    const char *data = qfs_delivery_data(d, &len);
    cJSON *j = cJSON_ParseWithLength(data, len);
    const cJSON *action = j ? cJSON_GetObjectItemCaseSensitive(j, "action") : NULL;
    if (!cJSON_IsString(action)) {
        cJSON_Delete(j);
        qfs_delivery_dead_letter(d, QFS_PROTOCOL, "body is not an echo command");
        return;
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "n");
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(j, "delay_ms");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "ms");
    char count[24];
    snprintf(count, sizeof(count), "%" PRIu64, qfs_delivery_count(d));
    qfs_info("echo received", "action", action->valuestring, "delivery", count);

    if (strcmp(action->valuestring, "ok") == 0) {
        emit(svc, d);
    } else if (strcmp(action->valuestring, "retry") == 0) {
        if (qfs_delivery_count(d) < (uint64_t)(cJSON_IsNumber(n) ? n->valueint : 2))
            qfs_delivery_retry(d, cJSON_IsNumber(delay) ? (int64_t)delay->valuedouble : 0,
                               QFS_UNAVAILABLE, "asked to retry");
        else
            emit(svc, d);
    } else if (strcmp(action->valuestring, "slow") == 0) {
        struct slow_work *w = qfs_xcalloc(1, sizeof(*w));
        w->svc = svc;
        w->d = d;
        w->next = slow_list;
        slow_list = w;
        uv_timer_init(qfs_svc_loop(svc), &w->timer);
        w->timer.data = w;
        uv_timer_start(&w->timer, on_slow_done, cJSON_IsNumber(ms) ? (uint64_t)ms->valuedouble : 1000, 0);
    } else {
        qfs_delivery_dead_letter(d, QFS_PROTOCOL, "unknown echo action");
    }
    cJSON_Delete(j);
}

/* Cancels unfinished slow work: its deliveries were already returned when the drain deadline passed,
 * and a handler must let go of them before the bus closes. */
static void echo_stop(struct qfs_svc *svc, void (*done)(struct qfs_svc *svc))
{
    while (slow_list) {
        struct slow_work *w = slow_list;
        slow_list = w->next;
        qfs_delivery_retry(w->d, 0, QFS_UNAVAILABLE, "shutting down");
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, on_slow_closed);
    }
    done(svc);
}

static const struct qfs_consumer_def echo_consumers[] = {
    {.durable = "echo-events", .subject = QFS_SUBJECT_EVENTS, .handle = handle},
};

static const struct qfs_service_def echo_service = {
    .name = "echo",
    .summary = "test service for the runtime and bus integration tests",
    .config = echo_vars,
    .nconfig = sizeof(echo_vars) / sizeof(echo_vars[0]),
    .config_size = sizeof(struct echo_config),
    .consumers = echo_consumers,
    .nconsumers = 1,
    .stop = echo_stop,
};

int main(int argc, char **argv)
{
    return qfs_service_main(&echo_service, argc, argv);
}
