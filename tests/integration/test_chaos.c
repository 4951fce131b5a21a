/* The chaos run: deploy events of many images from 20 accounts and 3 regions go through the whole
 * stack while a driver SIGKILLs a random service every few seconds (and starts it again) and
 * restarts nats-server twice. Afterwards every image has exactly one scan outcome, Qualys got at
 * most one schedule per image, every event is accounted for and no SNS message was sent twice.
 * (A second SNS message right after a SIGKILL of the notifier between SNS Publish and its
 * notified marker is the at-least-once window of the design: it is reported, and fails the run
 * only with QFS_CHAOS_STRICT_SNS=1.)
 *
 * CI size (inside `make test`): 300 events, 60 images. QFS_CHAOS_FULL=1 (`make chaos`): 2,000
 * events, 300 images. QFS_CHAOS_SEED fixes the random choices; QFS_CHAOS_CONVERGE_S changes how
 * long the run may take to settle after the last strike (150 s; full: 600 s). The stack
 * directory, with every log, stays when the run fails, and with QFS_CHAOS_KEEP=1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define HUB "111122223333"
#define NACCOUNTS 20
#define MAX_IMAGES_PER_EVENT 3
#define MAX_PROBLEMS_SHOWN 20

static const char *const services[] = {"ingest", "parser", "cache", "registry", "scanner-poller",
                                       "notifier"};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

/* The regions deploys come from, and the ECR registries the images live in: the hub account in
 * all three regions and one more account, so cross-account and cross-region images both occur. */
static const char *const event_regions[] = {"eu-west-1", "us-east-1", "ap-southeast-2"};
static const struct {
    const char *account, *region;
} registries[] = {
    {HUB, "eu-west-1"}, {HUB, "us-east-1"}, {HUB, "ap-southeast-2"}, {"444455556666", "eu-west-1"}};
#define NREGISTRIES (sizeof(registries) / sizeof(registries[0]))

static const char *const not_ecr_images[] = {"nginx:1.25", "redis:7.2", "ghcr.io/acme/tool:3"};
#define NNOT_ECR (sizeof(not_ecr_images) / sizeof(not_ecr_images[0]))

static const char *const service_env[] = {
    "QFS_HUB_ACCOUNT_ID=" HUB,       "QFS_LOG_LEVEL=info",         "QFS_SQS_WAIT_SECONDS=1",
    "QFS_SQS_VISIBILITY_TIMEOUT=10", "QFS_ACK_WAIT=5s",            "QFS_POLL_INTERVAL_SECONDS=1",
    "QFS_POLL_FIRST_DELAYS=1",       "QFS_MAX_POLL_ATTEMPTS=90",   "QFS_NOTIFY_MIN_SEVERITY=high",
    "QFS_DRAIN_TIMEOUT_MS=3000",     NULL};

struct image {
    int reg;           /* index into registries */
    char repo[32], tag[16];
    char key[160];     /* <registry host>/<repo>:<tag>, as key_of() reads it from a message */
    char ref[160];     /* as written in a container definition */
    int critical, high;
    bool fails;        /* qualys-sim fails its scan; deployed by exactly one event */
    int deploys;
};

struct event {
    char id[40];
    char account[16];
    const char *region;
    int nimg;
    int img[MAX_IMAGES_PER_EVENT];
    int not_ecr; /* index into not_ecr_images, or -1 */
};

struct sizes {
    int events, images, deliver_ms, converge_ms;
};

struct env {
    char *dir;
    struct qfs_test_stack stack;
    struct qfs_test_proc *svc[NSERVICES];
    long long restart_at[NSERVICES]; /* ms; 0 when running */
    int kills[NSERVICES];
    int nats_restarts;
    long long notifier_kills[256]; /* wall clock, ms since the epoch */
    int nnotifier_kills;
    int sns_dups_explained;
    struct sizes size;
    struct image *img;
    struct event *ev;
    uint64_t rng;
    int problems;
    bool hard_nats; /* the second nats-server restart is a SIGKILL */
    long long t0;   /* when the driver started (now_ms) */
    bool passed; /* the run ended with nothing to report: its directory can go */
};

static struct env *E;

/* ---- small helpers -------------------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-05-01T10:00:00.123Z" in ms since the epoch, or -1. */
static long long iso_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* xorshift64*: the run is reproducible from its seed. */
static uint32_t rnd(void)
{
    E->rng ^= E->rng >> 12;
    E->rng ^= E->rng << 25;
    E->rng ^= E->rng >> 27;
    return (uint32_t)((E->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static int rnd_between(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

/* A finding of the run: printed at once, counted, and failing the test at the end. */
static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    E->problems++;
    if (E->problems > MAX_PROBLEMS_SHOWN) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chaos: PROBLEM: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static const char *aws_url(void) { return qfs_test_stack_get(&E->stack, "QFS_SIM_AWS_URL"); }
static const char *qualys_url(void) { return qfs_test_stack_get(&E->stack, "QFS_SIM_QUALYS_URL"); }
static const char *nats_url(void) { return qfs_test_stack_get(&E->stack, "QFS_NATS_URL"); }

static void post(const char *base, const char *path, const char *json)
{
    char url[600];
    snprintf(url, sizeof(url), "%s%s", base, path);
    char *body = NULL;
    int code = qfs_test_http("POST", url, json, &body);
    if (code / 100 != 2) fail_msg("POST %s: %d %s", path, code, body ? body : "");
    free(body);
}

static cJSON *get_json(const char *base, const char *path)
{
    char url[600];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return qfs_test_http_json("GET", url, NULL);
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A string member, or "" when it is missing. */
static const char *sval(const cJSON *o, const char *name)
{
    const char *v = str_of(o, name);
    return v ? v : "";
}

/* "<registry>/<repository>:<tag>" of a message carrying an image, or "" when it has none. */
static void key_of(const cJSON *m, char *out, size_t n)
{
    const char *reg = str_of(m, "registry"), *repo = str_of(m, "repository"), *tag = str_of(m, "tag");
    if (reg && repo && tag) snprintf(out, n, "%s/%s:%s", reg, repo, tag);
    else out[0] = '\0';
}

/* ---- a sorted set of strings, to look up "<event id>|<image key>" pairs -------------------- */

struct strset {
    char **s;
    size_t n, cap;
    bool sorted;
};

static void set_add(struct strset *set, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_add(struct strset *set, const char *fmt, ...)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 256;
        set->s = realloc(set->s, set->cap * sizeof(char *));
        if (!set->s) abort();
    }
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&set->s[set->n++], fmt, ap) < 0) abort();
    va_end(ap);
    set->sorted = false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_sort(struct strset *set)
{
    if (!set->sorted && set->n) qsort(set->s, set->n, sizeof(char *), cmp_str);
    set->sorted = true;
}

/* How many times the formatted string is in the set. */
static size_t set_count(struct strset *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t set_count(struct strset *set, const char *fmt, ...)
{
    set_sort(set);
    char *want = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&want, fmt, ap) < 0) abort();
    va_end(ap);
    size_t c = 0;
    char **hit = set->n ? bsearch(&want, set->s, set->n, sizeof(char *), cmp_str) : NULL;
    if (hit) {
        while (hit > set->s && strcmp(hit[-1], want) == 0) hit--;
        for (; hit < set->s + set->n && strcmp(*hit, want) == 0; hit++) c++;
    }
    free(want);
    return c;
}

static void set_free(struct strset *set)
{
    for (size_t i = 0; i < set->n; i++) free(set->s[i]);
    free(set->s);
    memset(set, 0, sizeof(*set));
}

/* ---- the workload --------------------------------------------------------------------------- */

static void plan(void)
{
    struct sizes *z = &E->size;
    int nfail = z->images / 20 > 0 ? z->images / 20 : 1;
    E->img = calloc((size_t)z->images, sizeof(*E->img));
    E->ev = calloc((size_t)z->events, sizeof(*E->ev));
    for (int i = 0; i < z->images; i++) {
        struct image *im = &E->img[i];
        im->reg = i % (int)NREGISTRIES;
        snprintf(im->repo, sizeof(im->repo), "chaos-app-%03d", i);
        snprintf(im->tag, sizeof(im->tag), "v%d", 1 + i % 7);
        snprintf(im->ref, sizeof(im->ref), "%s.dkr.ecr.%s.amazonaws.com/%s:%s",
                 registries[im->reg].account, registries[im->reg].region, im->repo, im->tag);
        snprintf(im->key, sizeof(im->key), "%s", im->ref);
        /* One image in five has nothing at or above high, so it is scanned but not notified. */
        im->critical = i % 5 == 4 ? 0 : i % 3;
        im->high = i % 5 == 4 ? 0 : 1 + i % 4;
        im->fails = i >= z->images - nfail;
    }
    int nplain = z->images - nfail;
    for (int e = 0; e < z->events; e++) {
        struct event *ev = &E->ev[e];
        snprintf(ev->id, sizeof(ev->id), "chaos-evt-%05d", e);
        snprintf(ev->account, sizeof(ev->account), "3000000000%02d", e % NACCOUNTS);
        ev->region = event_regions[rnd() % 3];
        ev->not_ecr = rnd() % 5 == 0 ? (int)(rnd() % NNOT_ECR) : -1;
        int want = rnd() % 20 == 0 ? 0 : rnd_between(1, MAX_IMAGES_PER_EVENT);
        if (want == 0 && ev->not_ecr < 0) ev->not_ecr = 0;
        /* The first events name every image once, in order; failing images only there. */
        if (e < z->images) {
            ev->img[ev->nimg++] = e;
            if (E->img[e].fails) want = 1;
        }
        while (ev->nimg < want) {
            int k = rnd_between(0, nplain - 1);
            bool dup = false;
            for (int j = 0; j < ev->nimg; j++) dup |= ev->img[j] == k;
            if (!dup) ev->img[ev->nimg++] = k;
        }
        for (int j = 0; j < ev->nimg; j++) E->img[ev->img[j]].deploys++;
    }
    /* Shuffle the events (Fisher-Yates) so the first deploys of images are spread over the run. */
    for (int e = z->events - 1; e > 0; e--) {
        int k = rnd_between(0, e);
        struct event t = E->ev[e];
        E->ev[e] = E->ev[k];
        E->ev[k] = t;
    }
}

static cJSON *image_json(const struct image *im, int n)
{
    char digest[80], sha[80];
    snprintf(digest, sizeof(digest), "sha256:%064x", 0xca05000 + n);
    snprintf(sha, sizeof(sha), "%064x", 0x5ca0000 + n);
    cJSON *img = cJSON_CreateObject();
    cJSON_AddStringToObject(img, "account", registries[im->reg].account);
    cJSON_AddStringToObject(img, "region", registries[im->reg].region);
    cJSON_AddStringToObject(img, "repository", im->repo);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(img, "tags"), cJSON_CreateString(im->tag));
    cJSON_AddStringToObject(img, "digest", digest);
    cJSON_AddStringToObject(img, "image_sha", sha);
    cJSON_AddNumberToObject(img, "size", 1000000);
    cJSON_AddStringToObject(img, "operating_system", "Alpine Linux 3.19.1");
    cJSON_AddNumberToObject(img, "pushed_at", 1777629600);
    cJSON *vulns = cJSON_AddArrayToObject(img, "vulns");
    for (int i = 0; i < im->critical + im->high + 1; i++) {
        cJSON *v = cJSON_CreateObject();
        /* The last one is a medium, so every image has something. */
        int sev = i < im->critical ? 5 : i < im->critical + im->high ? 4 : 3;
        cJSON_AddNumberToObject(v, "qid", 700000 + n * 10 + i);
        cJSON_AddNumberToObject(v, "severity", sev);
        cJSON_AddStringToObject(v, "title", "Chaos finding");
        char cve[32];
        snprintf(cve, sizeof(cve), "CVE-2026-%d", 20000 + n * 10 + i);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(v, "cves"), cJSON_CreateString(cve));
        cJSON_AddStringToObject(v, "package", "openssl");
        cJSON_AddStringToObject(v, "installed_version", "3.1.4-r2");
        cJSON_AddStringToObject(v, "fixed_version", "3.1.4-r5");
        cJSON_AddItemToArray(vulns, v);
    }
    return img;
}

/* Every image into ECR (aws-sim) and into what a Qualys registry scan finds (qualys-sim); the
 * failing ones get a scan failure in qualys-sim. */
static void seed_images(void)
{
    cJSON *ecr = cJSON_CreateObject();
    cJSON *ecr_list = cJSON_AddArrayToObject(ecr, "images");
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "mode", "add");
    cJSON *q_list = cJSON_AddArrayToObject(q, "images");
    for (int i = 0; i < E->size.images; i++) {
        cJSON_AddItemToArray(ecr_list, image_json(&E->img[i], i));
        cJSON_AddItemToArray(q_list, image_json(&E->img[i], i));
    }
    char *text = cJSON_PrintUnformatted(ecr);
    post(aws_url(), "/_sim/ecr/images", text);
    free(text);
    text = cJSON_PrintUnformatted(q);
    post(qualys_url(), "/_sim/seed", text);
    free(text);
    cJSON_Delete(ecr);
    cJSON_Delete(q);
    for (int i = 0; i < E->size.images; i++) {
        if (!E->img[i].fails) continue;
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"repository\":\"%s\",\"tag\":\"%s\",\"stage\":\"scan\","
                 "\"scanErrorCode\":\"CHAOS_SCAN_FAILED\"}", E->img[i].repo, E->img[i].tag);
        post(qualys_url(), "/_sim/scan-failures", body);
    }
    /* Quicker jobs than the fast profile, so the run converges in a few minutes. */
    post(qualys_url(), "/_sim/timings",
         "{\"queueMs\":20,\"startMs\":20,\"listingMs\":100,\"pullMs\":100,\"scanMs\":250}");
}

/* A RegisterTaskDefinition of ev, as EventBridge delivers it to the hub's bus. */
static void deliver(const struct event *ev)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", "0");
    cJSON_AddStringToObject(o, "id", ev->id);
    cJSON_AddStringToObject(o, "detail-type", "AWS API Call via CloudTrail");
    cJSON_AddStringToObject(o, "source", "aws.ecs");
    cJSON_AddStringToObject(o, "account", ev->account);
    cJSON_AddStringToObject(o, "time", "2026-05-01T10:00:00Z");
    cJSON_AddStringToObject(o, "region", ev->region);
    cJSON_AddItemToObject(o, "resources", cJSON_CreateArray());
    cJSON *d = cJSON_AddObjectToObject(o, "detail");
    cJSON_AddStringToObject(d, "eventVersion", "1.11");
    cJSON_AddStringToObject(d, "eventSource", "ecs.amazonaws.com");
    cJSON_AddStringToObject(d, "eventName", "RegisterTaskDefinition");
    cJSON_AddStringToObject(d, "awsRegion", ev->region);
    cJSON_AddStringToObject(d, "eventTime", "2026-05-01T10:00:00Z");
    cJSON_AddStringToObject(d, "recipientAccountId", ev->account);
    char arn[160];
    snprintf(arn, sizeof(arn), "arn:aws:sts::%s:assumed-role/ci-deploy/%s", ev->account, ev->id);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "userIdentity"), "arn", arn);
    cJSON *td = cJSON_AddObjectToObject(cJSON_AddObjectToObject(d, "responseElements"), "taskDefinition");
    snprintf(arn, sizeof(arn), "arn:aws:ecs:%s:%s:task-definition/%s:1", ev->region, ev->account, ev->id);
    cJSON_AddStringToObject(td, "taskDefinitionArn", arn);
    cJSON *defs = cJSON_AddArrayToObject(td, "containerDefinitions");
    for (int i = 0; i <= ev->nimg; i++) {
        const char *ref = i < ev->nimg ? E->img[ev->img[i]].ref
                          : ev->not_ecr >= 0 ? not_ecr_images[ev->not_ecr] : NULL;
        if (!ref) break;
        cJSON *c = cJSON_CreateObject();
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddStringToObject(c, "image", ref);
        cJSON_AddItemToArray(defs, c);
    }
    char *text = cJSON_PrintUnformatted(o);
    qfs_test_deliver_event(&E->stack, text);
    free(text);
    cJSON_Delete(o);
}

/* ---- the driver ----------------------------------------------------------------------------- */

/* Appends a line to a service's log, so the log shows where the driver struck. */
static void mark_log(const struct qfs_test_proc *p, const char *what)
{
    FILE *f = p && p->log_path[0] ? fopen(p->log_path, "a") : NULL;
    if (!f) return;
    fprintf(f, "--- chaos: %s\n", what);
    fclose(f);
}

static void start_service(size_t i)
{
    E->svc[i] = qfs_test_service_start(&E->stack, services[i], NULL, service_env);
    E->restart_at[i] = 0;
}

static void kill_service(size_t i)
{
    struct qfs_test_proc *p = E->svc[i];
    if (!p) return;
    long long at = wall_ms();
    qfs_test_proc_signal(p, SIGKILL);
    qfs_test_proc_wait(p, 5000, NULL);
    if (strcmp(services[i], "notifier") == 0 && E->nnotifier_kills < 256)
        E->notifier_kills[E->nnotifier_kills++] = at;
    mark_log(p, "SIGKILL");
    qfs_test_proc_stop(p);
    E->svc[i] = NULL;
    E->kills[i]++;
    E->restart_at[i] = now_ms() + rnd_between(200, 2000);
}

static void restart_nats(bool hard)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "'%s/tools/stack' --dir '%s' restart nats%s >>'%s/chaos-nats.log' 2>&1",
             qfs_test_env("QFS_SOURCE_DIR", "."), E->stack.dir, hard ? " --kill" : "", E->dir);
    if (system(cmd) != 0) fail_msg("tools/stack restart nats failed (see %s/chaos-nats.log)", E->dir);
    E->nats_restarts++;
    fprintf(stderr, "chaos: t=%llds nats-server restarted (%s)\n", (now_ms() - E->t0) / 1000,
            hard ? "SIGKILL" : "SIGTERM");
}

/* Restarts every service whose restart time has come (all of them when force). */
static void restart_due(bool force)
{
    long long t = now_ms();
    for (size_t i = 0; i < NSERVICES; i++)
        if (!E->svc[i] && (force || t >= E->restart_at[i])) start_service(i);
}

/* Delivers the events evenly over the delivery window while striking every 2 to 5 s; nats-server
 * is restarted at 30 % (SIGTERM) and 65 % (SIGTERM, or SIGKILL in the full run and with
 * QFS_CHAOS_NATS_KILL=1) of the window. Strikes go on for 10 s after the last event, then every
 * service is started again. */
static void drive(void)
{
    const struct sizes *z = &E->size;
    long long start = now_ms();
    E->t0 = start;
    long long end_of_chaos = start + z->deliver_ms + 10000;
    long long next_strike = start + rnd_between(2000, 5000);
    long long nats_at[2] = {start + z->deliver_ms * 30 / 100, start + z->deliver_ms * 65 / 100};
    int sent = 0, nats_done = 0;
    while (sent < z->events || now_ms() < end_of_chaos) {
        long long t = now_ms();
        while (sent < z->events && t >= start + (long long)sent * z->deliver_ms / z->events) {
            deliver(&E->ev[sent++]);
            t = now_ms();
        }
        if (nats_done < 2 && t >= nats_at[nats_done]) {
            restart_nats(nats_done == 1 && E->hard_nats);
            nats_done++;
        }
        if (t >= next_strike && t < end_of_chaos) {
            size_t victim = rnd() % NSERVICES;
            if (E->svc[victim]) {
                kill_service(victim);
                fprintf(stderr, "chaos: t=%llds SIGKILL qfs-%s\n", (t - start) / 1000, services[victim]);
            }
            next_strike = t + rnd_between(2000, 5000);
        }
        restart_due(false);
        nap_ms(10);
    }
    restart_due(true);
    fprintf(stderr, "chaos: %d events delivered in %llds\n", sent, (now_ms() - start) / 1000);
}

/* ---- what the stream, Qualys and SNS hold ---------------------------------------------------- */

struct snapshot {
    cJSON *images, *skips, *requests, *completed, *failed, *notes, *dlq;
};

static void snapshot_take(struct snapshot *s)
{
    s->images = qfs_test_stored(nats_url(), "qfs.images.>");
    s->skips = qfs_test_stored(nats_url(), "qfs.scans.skipped.>");
    s->requests = qfs_test_stored(nats_url(), "qfs.scans.requested.>");
    s->completed = qfs_test_stored(nats_url(), "qfs.scans.completed.>");
    s->failed = qfs_test_stored(nats_url(), "qfs.scans.failed.>");
    s->notes = qfs_test_stored(nats_url(), "qfs.notifications.>");
    s->dlq = qfs_test_stored(nats_url(), "qfs.dlq.>");
}

static void snapshot_free(struct snapshot *s)
{
    cJSON_Delete(s->images);
    cJSON_Delete(s->skips);
    cJSON_Delete(s->requests);
    cJSON_Delete(s->completed);
    cJSON_Delete(s->failed);
    cJSON_Delete(s->notes);
    cJSON_Delete(s->dlq);
    memset(s, 0, sizeof(*s));
}

/* Adds "<prefix><key>" for each message of list (its image key). */
static void add_keys(struct strset *set, const cJSON *list, const char *prefix)
{
    const cJSON *m;
    char key[200];
    cJSON_ArrayForEach(m, list) {
        key_of(m, key, sizeof(key));
        set_add(set, "%s%s", prefix, key);
    }
}

/* Whether the run has settled: every image has an outcome, every outcome a notification record,
 * and every event its records. Cheap enough to poll every few seconds. */
static bool settled(void *arg)
{
    (void)arg;
    struct snapshot s;
    snapshot_take(&s);
    struct strset outcomes = {0}, seen = {0};
    add_keys(&outcomes, s.completed, "");
    add_keys(&outcomes, s.failed, "");
    bool done = true;
    for (int i = 0; i < E->size.images && done; i++)
        if (E->img[i].deploys && !set_count(&outcomes, "%s", E->img[i].key)) done = false;
    if (done && cJSON_GetArraySize(s.notes) < cJSON_GetArraySize(s.completed) + cJSON_GetArraySize(s.failed))
        done = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, s.images) set_add(&seen, "%s", sval(m, "event_id"));
    cJSON_ArrayForEach(m, s.skips) set_add(&seen, "%s", sval(m, "event_id"));
    cJSON_ArrayForEach(m, s.dlq) set_add(&seen, "%s", sval(m, "trace_id"));
    for (int e = 0; e < E->size.events && done; e++)
        if (!set_count(&seen, "%s", E->ev[e].id)) done = false;
    set_free(&outcomes);
    set_free(&seen);
    snapshot_free(&s);
    return done;
}

/* ---- the checks ----------------------------------------------------------------------------- */

static const struct image *image_by_key(const char *key)
{
    for (int i = 0; i < E->size.images; i++)
        if (strcmp(E->img[i].key, key) == 0) return &E->img[i];
    return NULL;
}

/* Every image: exactly one outcome, of the kind and counts it was seeded with. */
static void check_outcomes(const struct snapshot *s, int *ncompleted, int *nfailed)
{
    struct strset done = {0}, failed = {0};
    add_keys(&done, s->completed, "");
    add_keys(&failed, s->failed, "");
    *ncompleted = cJSON_GetArraySize(s->completed);
    *nfailed = cJSON_GetArraySize(s->failed);
    for (int i = 0; i < E->size.images; i++) {
        const struct image *im = &E->img[i];
        size_t c = set_count(&done, "%s", im->key), f = set_count(&failed, "%s", im->key);
        if (c + f != 1)
            problem("%s (%d deploys): %zu completed and %zu failed results, want exactly one",
                    im->key, im->deploys, c, f);
        else if (im->fails && f != 1)
            problem("%s: completed, but qualys-sim fails its scans", im->key);
        else if (!im->fails && c != 1)
            problem("%s: failed, but its scan succeeds in qualys-sim", im->key);
    }
    const cJSON *m;
    char key[200];
    cJSON_ArrayForEach(m, s->completed) {
        key_of(m, key, sizeof(key));
        const struct image *im = image_by_key(key);
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(m, "counts");
        if (!im) {
            problem("a result for an image never deployed: %s", key);
            continue;
        }
        const cJSON *c5 = cJSON_GetObjectItemCaseSensitive(counts, "critical");
        const cJSON *c4 = cJSON_GetObjectItemCaseSensitive(counts, "high");
        int crit = cJSON_IsNumber(c5) ? c5->valueint : -1, high = cJSON_IsNumber(c4) ? c4->valueint : -1;
        if (crit != im->critical || high != im->high)
            problem("%s: result says %dC/%dH, qualys-sim has %dC/%dH", key, crit, high, im->critical,
                    im->high);
    }
    cJSON_ArrayForEach(m, s->failed) {
        key_of(m, key, sizeof(key));
        const char *reason = str_of(m, "reason");
        const struct image *im = image_by_key(key);
        if (im && im->fails && (!reason || strcmp(reason, "scan_failed") != 0))
            problem("%s: failed with %s, want scan_failed", key, reason ? reason : "(none)");
    }
    set_free(&done);
    set_free(&failed);
}

/* Qualys: at most one schedule per image (each schedule names its repositories). */
static void check_schedules(int *nschedules)
{
    cJSON *st = get_json(qualys_url(), "/_sim/state");
    if (!st) fail_msg("qualys-sim /_sim/state did not answer");
    struct strset per_repo = {0};
    const cJSON *sc, *f, *rt;
    *nschedules = 0;
    cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(st, "schedules")) {
        (*nschedules)++;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(sc, "filters"))
            cJSON_ArrayForEach(rt, cJSON_GetObjectItemCaseSensitive(f, "repoTags"))
                set_add(&per_repo, "%s:%s", sval(rt, "repo"), sval(rt, "tag"));
    }
    for (int i = 0; i < E->size.images; i++) {
        size_t n = set_count(&per_repo, "%s:%s", E->img[i].repo, E->img[i].tag);
        if (n > 1) problem("%s: Qualys got %zu schedules, want at most one", E->img[i].key, n);
    }
    set_free(&per_repo);
    cJSON_Delete(st);
}

/* Every event: an image record for each of its ECR images, a not_ecr skip for its other image,
 * and for each image record a cache decision (a scan request naming the deploy, or a cached or
 * in_flight skip); or a DLQ record naming it. */
static void check_events(const struct snapshot *s, int *ndlq_events)
{
    struct strset recs = {0}, skips = {0}, decided = {0}, dlq = {0};
    const cJSON *m, *d;
    char key[200];
    cJSON_ArrayForEach(m, s->images) {
        key_of(m, key, sizeof(key));
        set_add(&recs, "%s|%s", sval(m, "event_id"), key);
    }
    cJSON_ArrayForEach(m, s->skips) {
        const char *reason = str_of(m, "reason");
        set_add(&skips, "%s|%s", sval(m, "event_id"), reason ? reason : "");
        if (reason && (strcmp(reason, "cached") == 0 || strcmp(reason, "in_flight") == 0)) {
            /* Cache skips name the image as written (a tag reference here: the key). */
            set_add(&decided, "%s|%s", sval(m, "event_id"), sval(m, "image"));
        }
    }
    cJSON_ArrayForEach(m, s->requests) {
        key_of(m, key, sizeof(key));
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(m, "deploys"))
            set_add(&decided, "%s|%s", sval(d, "event_id"), key);
    }
    cJSON_ArrayForEach(m, s->dlq) {
        const char *trace = str_of(m, "trace_id");
        set_add(&dlq, "%s", trace ? trace : "");
        fprintf(stderr, "chaos: DLQ (%s) trace %s: %s\n", sval(m, "service"), trace ? trace : "-",
                sval(m, "reason"));
    }
    *ndlq_events = 0;
    for (int e = 0; e < E->size.events; e++) {
        const struct event *ev = &E->ev[e];
        if (set_count(&dlq, "%s", ev->id)) {
            (*ndlq_events)++;
            continue;
        }
        for (int j = 0; j < ev->nimg; j++) {
            const char *k = E->img[ev->img[j]].key;
            size_t n = set_count(&recs, "%s|%s", ev->id, k);
            if (n != 1) problem("event %s: %zu image records for %s, want one", ev->id, n, k);
            else if (!set_count(&decided, "%s|%s", ev->id, k))
                problem("event %s: image record for %s has no cache decision (no request names "
                        "the deploy, no cached or in_flight skip)", ev->id, k);
        }
        if (ev->not_ecr >= 0 && !set_count(&skips, "%s|not_ecr", ev->id))
            problem("event %s: no not_ecr skip for %s", ev->id, not_ecr_images[ev->not_ecr]);
    }
    set_free(&recs);
    set_free(&skips);
    set_free(&decided);
    set_free(&dlq);
}

/* Whether the second of two SNS messages of one scan follows a SIGKILL of the notifier that hit
 * between SNS accepting the first and the notifier writing notified:<K>#<G>: the at-least-once
 * window the notifier's design leaves (services/DESIGN.md, qfs-notifier). */
static bool in_notifier_window(long long first, long long second, long long *kill_after)
{
    for (int k = 0; k < E->nnotifier_kills; k++) {
        long long at = E->notifier_kills[k];
        if (at >= first - 100 && at <= first + 2000 && at < second) {
            *kill_after = at - first;
            return true;
        }
    }
    return false;
}

/* SNS: at most one message per image key and generation, and per image; every notification
 * record that says "sent" has its message. A second message explained by a notifier SIGKILL in
 * the window between SNS Publish and the notified marker is reported, and fails the run only with
 * QFS_CHAOS_STRICT_SNS=1. */
static void check_sns(const struct snapshot *s, int *nsns, int *nsent_records)
{
    cJSON *all = get_json(aws_url(), "/_sim/sns/messages");
    if (!all) fail_msg("aws-sim /_sim/sns/messages did not answer");
    bool strict = atoi(qfs_test_env("QFS_CHAOS_STRICT_SNS", "0")) != 0;
    struct strset per_gen = {0}, per_image = {0};
    const cJSON *m;
    char key[200];
    *nsns = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(all, "messages")) {
        (*nsns)++;
        cJSON *body = cJSON_Parse(sval(m, "message"));
        if (!body) {
            problem("SNS message %s is not JSON", sval(m, "message_id"));
            continue;
        }
        key_of(body, key, sizeof(key));
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(body, "generation");
        set_add(&per_gen, "%s#%.0f", key, cJSON_IsNumber(g) ? g->valuedouble : -1.0);
        /* "<key>|<ms>|<message id>": sorted, an image's messages come in time order. */
        set_add(&per_image, "%s|%013lld|%s", key, iso_ms(sval(m, "timestamp")),
                sval(m, "message_id"));
        cJSON_Delete(body);
    }
    set_sort(&per_image);
    for (int i = 0; i < E->size.images; i++) {
        const struct image *im = &E->img[i];
        size_t klen = strlen(im->key), n = 0, first = 0;
        for (size_t k = 0; k < per_image.n; k++) {
            if (strncmp(per_image.s[k], im->key, klen) != 0 || per_image.s[k][klen] != '|') continue;
            if (n++ == 0) first = k;
        }
        bool worth = im->fails || im->critical + im->high > 0;
        if (worth && n == 0) problem("%s: no SNS message, want one", im->key);
        for (size_t k = first + 1; n > 1 && k < first + n; k++) {
            long long a = atoll(per_image.s[k - 1] + klen + 1), b = atoll(per_image.s[k] + klen + 1);
            long long after = 0;
            if (in_notifier_window(a, b, &after) && !strict) {
                E->sns_dups_explained++;
                fprintf(stderr,
                        "chaos: NOTE: %s sent twice to SNS (%s, then %s %lld ms later): qfs-notifier "
                        "was SIGKILLed %lld ms after SNS accepted the first, before notified:<K>#<G> "
                        "was written\n",
                        im->key, per_image.s[k - 1] + klen + 15, per_image.s[k] + klen + 15, b - a,
                        after);
            } else {
                problem("%s: SNS messages %s and %s (%lld ms apart), want at most one", im->key,
                        per_image.s[k - 1] + klen + 15, per_image.s[k] + klen + 15, b - a);
            }
        }
    }
    *nsent_records = 0;
    cJSON_ArrayForEach(m, s->notes) {
        const char *decision = str_of(m, "decision");
        if (!decision || strcmp(decision, "sent") != 0) continue;
        (*nsent_records)++;
        key_of(m, key, sizeof(key));
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(m, "generation");
        size_t n = set_count(&per_gen, "%s#%.0f", key, cJSON_IsNumber(g) ? g->valuedouble : -1.0);
        if (n == 0) problem("%s: notification record says sent, SNS has no message", key);
    }
    set_free(&per_gen);
    set_free(&per_image);
    cJSON_Delete(all);
}

static int qualys_calls(const char *endpoint)
{
    cJSON *c = get_json(qualys_url(), "/_sim/calls");
    int n = -1;
    if (c) {
        const cJSON *v = endpoint ? cJSON_GetObjectItemCaseSensitive(
                                        cJSON_GetObjectItemCaseSensitive(
                                            cJSON_GetObjectItemCaseSensitive(c, "counts"), "byEndpoint"),
                                        endpoint)
                                  : cJSON_GetObjectItemCaseSensitive(c, "total");
        n = cJSON_IsNumber(v) ? v->valueint : 0;
    }
    cJSON_Delete(c);
    return n;
}

static void dump_logs(void)
{
    for (size_t i = 0; i < NSERVICES; i++) qfs_test_proc_dump_log(E->svc[i], 10);
}

/* ---- the test ------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    E = calloc(1, sizeof(*E));
    bool full = atoi(qfs_test_env("QFS_CHAOS_FULL", "0")) != 0;
    E->size = full ? (struct sizes){2000, 300, 150000, 600000} : (struct sizes){300, 60, 45000, 150000};
    /* A SIGKILLed nats-server forgets the last acks and NAKs: what they settled comes back after
     * the consumer's AckWait (30 s for the scanner-poller's checks); the CI run restarts it
     * gracefully to keep its settling short. */
    E->hard_nats = full || atoi(qfs_test_env("QFS_CHAOS_NATS_KILL", "0")) != 0;
    int converge_s = atoi(qfs_test_env("QFS_CHAOS_CONVERGE_S", "0"));
    if (converge_s > 0) E->size.converge_ms = converge_s * 1000;
    const char *seed_text = qfs_test_env("QFS_CHAOS_SEED", NULL);
    uint64_t seed = seed_text ? strtoull(seed_text, NULL, 10) : (uint64_t)time(NULL);
    E->rng = seed ? seed * 0x9E3779B97F4A7C15ULL : 1;
    fprintf(stderr, "chaos: %s run, %d events, %d images, seed %llu (QFS_CHAOS_SEED), nats-server "
            "restarts: SIGTERM and %s\n", full ? "full" : "CI", E->size.events, E->size.images,
            (unsigned long long)seed, E->hard_nats ? "SIGKILL" : "SIGTERM");
    E->dir = qfs_test_tmpdir("chaos");
    qfs_test_stack_up(&E->stack, E->dir);
    plan();
    seed_images();
    for (size_t i = 0; i < NSERVICES; i++) start_service(i);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSERVICES; i++) qfs_test_proc_stop(E->svc[i]);
    qfs_test_stack_down(&E->stack);
    /* The logs of a failed run are the evidence: they stay (the processes are gone). */
    if (!E->passed || atoi(qfs_test_env("QFS_CHAOS_KEEP", "0")))
        fprintf(stderr, "chaos: kept %s (logs in stack/logs)\n", E->dir);
    else
        qfs_test_rmrf(E->dir);
    free(E->dir);
    free(E->img);
    free(E->ev);
    free(E);
    return 0;
}

static void test_chaos_run(void **state)
{
    (void)state;
    long long t0 = now_ms();
    drive();
    long long t1 = now_ms();
    bool ok = qfs_test_eventually(settled, NULL, E->size.converge_ms);
    long long t2 = now_ms();
    fprintf(stderr, "chaos: %s %llds after the last strike\n", ok ? "settled" : "NOT settled",
            (t2 - t1) / 1000);
    if (!ok)
        problem("not settled within %d s of the last strike (QFS_CHAOS_CONVERGE_S waits longer): "
                "a message may be waiting out an AckWait", E->size.converge_ms / 1000);
    else if (t2 - t1 > 60000)
        fprintf(stderr, "chaos: NOTE: settling took %llds: a message waited out an AckWait (the "
                        "scanner-poller's is 30 s)\n", (t2 - t1) / 1000);
    /* Late redeliveries (AckWait is 5 s) would show up as duplicates: give them time. */
    nap_ms(8000);

    struct snapshot s;
    snapshot_take(&s);
    int ncompleted, nfailed, nschedules, ndlq_events, nsns, nsent;
    check_outcomes(&s, &ncompleted, &nfailed);
    check_schedules(&nschedules);
    check_events(&s, &ndlq_events);
    check_sns(&s, &nsns, &nsent);

    int nkills = 0;
    for (size_t i = 0; i < NSERVICES; i++) nkills += E->kills[i];
    fprintf(stderr,
            "chaos: %d events, %d images in %zu registries; %d SIGKILLs (ingest %d, parser %d, "
            "cache %d, registry %d, scanner-poller %d, notifier %d), %d nats-server restarts\n",
            E->size.events, E->size.images, NREGISTRIES, nkills, E->kills[0], E->kills[1],
            E->kills[2], E->kills[3], E->kills[4], E->kills[5], E->nats_restarts);
    fprintf(stderr,
            "chaos: stored %d image records, %d skips, %d requests, %d completed, %d failed, %d "
            "notification records (%d sent), %d DLQ records (%d events); Qualys: %d schedules, %d "
            "calls; SNS: %d messages (%d second sends after a notifier SIGKILL); %llds in all\n",
            cJSON_GetArraySize(s.images), cJSON_GetArraySize(s.skips),
            cJSON_GetArraySize(s.requests), ncompleted, nfailed, cJSON_GetArraySize(s.notes), nsent,
            cJSON_GetArraySize(s.dlq), ndlq_events, nschedules, qualys_calls(NULL), nsns,
            E->sns_dups_explained, (now_ms() - t0) / 1000);
    snapshot_free(&s);
    if (E->problems) {
        dump_logs();
        if (E->problems > MAX_PROBLEMS_SHOWN)
            fprintf(stderr, "chaos: (%d more problems not shown)\n", E->problems - MAX_PROBLEMS_SHOWN);
        fail_msg("the chaos run found %d problems (seed in the first line)", E->problems);
    }
    E->passed = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_run),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
