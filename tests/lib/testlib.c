/* Helpers for integration tests: temp dirs, child processes, free ports, real servers. */
#include "testlib.h"

#include "qfs/kv.h"
#include "qfs/proto.h"
#include "qfs/proto_skip.h"
#include "qfs/util.h"

#include <cjson/cJSON.h>
#include <nats/nats.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
    fprintf(stderr, "testlib: %s: %s\n", what, strerror(errno));
    abort();
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *qfs_test_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

char *qfs_test_tmpdir(const char *prefix)
{
    char *path;
    if (asprintf(&path, "%s/qfs-%s-XXXXXX", qfs_test_env("TMPDIR", "/tmp"), prefix) < 0) die("asprintf");
    if (!mkdtemp(path)) die("mkdtemp");
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void qfs_test_rmrf(const char *path)
{
    if (path && *path && strcmp(path, "/") != 0) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int qfs_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) die("bind");
    socklen_t len = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) die("getsockname");
    close(fd);
    return ntohs(a.sin_port);
}

bool qfs_test_wait_port(int port, int timeout_ms)
{
    long long end = mono_ms() + timeout_ms;
    while (mono_ms() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0) return true;
        sleep_ms(20);
    }
    return false;
}

struct qfs_test_proc *qfs_test_spawn(const char *name, const char *const argv[],
                                     const char *const env[], const char *log_path,
                                     bool capture_stdout)
{
    int pipefd[2] = {-1, -1};
    if (capture_stdout && pipe2(pipefd, O_CLOEXEC) != 0) die("pipe");
    struct qfs_test_proc *p = calloc(1, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log_path, sizeof(p->log_path), "%s", log_path ? log_path : "");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        /* The child dies with the test, so a failed test leaves no server behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        setpgid(0, 0);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 2);
                if (!capture_stdout) dup2(fd, 1);
                close(fd);
            }
        }
        if (capture_stdout) dup2(pipefd[1], 1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        for (size_t i = 0; env && env[i]; i++) putenv((char *)env[i]);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->out_fd = -1;
    if (capture_stdout) {
        close(pipefd[1]);
        p->out_fd = pipefd[0];
    }
    return p;
}

bool qfs_test_proc_read_line(struct qfs_test_proc *p, char *buf, size_t n, int timeout_ms)
{
    long long end = mono_ms() + timeout_ms;
    size_t len = 0;
    while (len + 1 < n) {
        long long left = end - mono_ms();
        if (left <= 0) break;
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)left);
        if (rc <= 0) continue;
        char c;
        ssize_t r = read(p->out_fd, &c, 1);
        if (r <= 0) break;
        if (c == '\n') {
            buf[len] = '\0';
            return true;
        }
        buf[len++] = c;
    }
    buf[len] = '\0';
    return false;
}

void qfs_test_proc_signal(struct qfs_test_proc *p, int sig)
{
    if (p && p->pid > 0) kill(p->pid, sig);
}

bool qfs_test_proc_wait(struct qfs_test_proc *p, int timeout_ms, int *status)
{
    long long end = mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            if (status) *status = st;
            p->pid = -1;
            return true;
        }
        if (r < 0) return false;
        if (mono_ms() >= end) return false;
        sleep_ms(10);
    }
}

bool qfs_test_proc_alive(struct qfs_test_proc *p)
{
    if (!p || p->pid <= 0) return false;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->pid = -1;
        return false;
    }
    return true;
}

void qfs_test_proc_stop(struct qfs_test_proc *p)
{
    if (!p) return;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        if (!qfs_test_proc_wait(p, 5000, NULL)) {
            kill(p->pid, SIGKILL);
            qfs_test_proc_wait(p, 5000, NULL);
        }
    }
    if (p->out_fd >= 0) close(p->out_fd);
    free(p);
}

void qfs_test_proc_dump_log(const struct qfs_test_proc *p, int lines)
{
    if (!p || !p->log_path[0]) return;
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "echo '--- last lines of %s ---' >&2; tail -n %d '%s' >&2", p->name,
             lines, p->log_path);
    if (system(cmd) != 0) fprintf(stderr, "(no log for %s)\n", p->name);
}

static void nats_spawn(struct qfs_test_nats *n)
{
    char port[16], store[600], log[600];
    snprintf(port, sizeof(port), "%d", n->port);
    snprintf(store, sizeof(store), "%s/nats", n->dir);
    snprintf(log, sizeof(log), "%s/nats-server.log", n->dir);
    mkdir(store, 0755);
    const char *argv[] = {qfs_test_env("QFS_NATS_SERVER", "nats-server"),
                          "-a", "127.0.0.1", "-p", port, "-js", "-sd", store, NULL};
    n->proc = qfs_test_spawn("nats-server", argv, NULL, log, false);
    if (!qfs_test_wait_port(n->port, 10000)) {
        qfs_test_proc_dump_log(n->proc, 20);
        fprintf(stderr, "testlib: nats-server did not start on %d\n", n->port);
        abort();
    }
}

void qfs_test_nats_start(struct qfs_test_nats *n, const char *dir)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->dir, sizeof(n->dir), "%s", dir);
    n->port = qfs_test_free_port();
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
    nats_spawn(n);
}

void qfs_test_nats_restart(struct qfs_test_nats *n)
{
    qfs_test_proc_stop(n->proc);
    n->proc = NULL;
    nats_spawn(n);
}

void qfs_test_nats_stop(struct qfs_test_nats *n)
{
    qfs_test_proc_stop(n->proc);
    n->proc = NULL;
}

int qfs_test_node_start(struct qfs_test_proc **proc, const char *name, const char *script,
                        const char *const args[], const char *log_path)
{
    const char *argv[32];
    size_t i = 0;
    argv[i++] = qfs_test_env("QFS_NODE", "node");
    argv[i++] = script;
    for (size_t k = 0; args && args[k] && i < 31; k++) argv[i++] = args[k];
    argv[i] = NULL;
    struct qfs_test_proc *p = qfs_test_spawn(name, argv, NULL, log_path, true);
    char line[1024];
    if (!qfs_test_proc_read_line(p, line, sizeof(line), 15000)) {
        qfs_test_proc_dump_log(p, 30);
        fprintf(stderr, "testlib: %s printed no ready line\n", name);
        abort();
    }
    const char *k = strstr(line, "\"port\":");
    if (!k) {
        fprintf(stderr, "testlib: %s ready line has no port: %s\n", name, line);
        abort();
    }
    *proc = p;
    return atoi(k + 7);
}

bool qfs_test_eventually(bool (*fn)(void *arg), void *arg, int timeout_ms)
{
    long long end = mono_ms() + timeout_ms;
    for (;;) {
        if (fn(arg)) return true;
        if (mono_ms() >= end) return false;
        sleep_ms(20);
    }
}

char *qfs_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len) *len = got;
    return buf;
}

void qfs_test_stack_up(struct qfs_test_stack *st, const char *dir)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->dir, sizeof(st->dir), "%s/stack", dir);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s/tools/stack' --dir '%s' up >'%s/stack-up.log' 2>&1",
             qfs_test_env("QFS_SOURCE_DIR", "."), st->dir, dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "cat '%s/stack-up.log' >&2", dir);
        if (system(cmd) != 0) fprintf(stderr, "testlib: no stack log\n");
        fprintf(stderr, "testlib: tools/stack up failed\n");
        abort();
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/env", st->dir);
    char *text = qfs_test_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "testlib: no %s\n", path);
        abort();
    }
    /* Lines are: export K='V' (single quotes, with '\'' for a quote inside). */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "export ", 7) != 0) continue;
        char *eq = strchr(line + 7, '=');
        if (!eq) continue;
        char kv[4096];
        size_t o = (size_t)snprintf(kv, sizeof(kv), "%.*s=", (int)(eq - line - 7), line + 7);
        for (const char *v = eq + 1; *v && o + 1 < sizeof(kv); v++) {
            if (strncmp(v, "'\\''", 4) == 0) {
                kv[o++] = '\'';
                v += 3;
            } else if (*v != '\'') {
                kv[o++] = *v;
            }
        }
        kv[o] = '\0';
        qfs_test_stack_set(st, kv);
    }
    free(text);
}

const char *qfs_test_stack_get(const struct qfs_test_stack *st, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < st->nenv; i++)
        if (strncmp(st->env[i], name, n) == 0 && st->env[i][n] == '=') return st->env[i] + n + 1;
    return NULL;
}

void qfs_test_stack_set(struct qfs_test_stack *st, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t n = eq ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < st->nenv; i++) {
        if (strncmp(st->env[i], kv, n) == 0 && st->env[i][n] == '=') {
            free(st->env[i]);
            st->env[i] = strdup(kv);
            return;
        }
    }
    st->env = realloc(st->env, (st->nenv + 2) * sizeof(char *));
    st->env[st->nenv++] = strdup(kv);
    st->env[st->nenv] = NULL;
}

void qfs_test_stack_down(struct qfs_test_stack *st)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s/tools/stack' --dir '%s' down --keep >/dev/null 2>&1",
             qfs_test_env("QFS_SOURCE_DIR", "."), st->dir);
    if (system(cmd) != 0) fprintf(stderr, "testlib: tools/stack down reported a problem\n");
    for (size_t i = 0; i < st->nenv; i++) free(st->env[i]);
    free(st->env);
    st->env = NULL;
    st->nenv = 0;
}

static struct qfs_test_proc *service_spawn(const struct qfs_test_stack *st, const char *service,
                                           const char *tag, const char *const extra[], bool capture)
{
    char bin[600], log[800], name[64];
    snprintf(bin, sizeof(bin), "%s/qfs-%s", qfs_test_env("QFS_BIN_DIR", "build/bin"), service);
    snprintf(name, sizeof(name), "qfs-%s%s%s", service, tag ? "-" : "", tag ? tag : "");
    snprintf(log, sizeof(log), "%s/logs/%s.log", st->dir, name);
    const char *env[256];
    size_t n = 0;
    for (size_t i = 0; i < st->nenv && n < 200; i++) env[n++] = st->env[i];
    for (size_t i = 0; extra && extra[i] && n < 254; i++) env[n++] = extra[i];
    env[n] = NULL;
    const char *argv[] = {bin, NULL};
    return qfs_test_spawn(name, argv, env, log, capture);
}

struct qfs_test_proc *qfs_test_service_start(const struct qfs_test_stack *st, const char *service,
                                             const char *tag, const char *const extra[])
{
    return service_spawn(st, service, tag, extra, false);
}

struct qfs_test_proc *qfs_test_service_start_captured(const struct qfs_test_stack *st, const char *service,
                                                      const char *tag, const char *const extra[])
{
    return service_spawn(st, service, tag, extra, true);
}

int qfs_test_http(const char *method, const char *url, const char *json, char **body)
{
    char tmpl[] = "/tmp/qfs-http-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) die("mkstemp");
    close(fd);
    char bodyfile[64] = "";
    if (json) {
        snprintf(bodyfile, sizeof(bodyfile), "%s.in", tmpl);
        FILE *f = fopen(bodyfile, "w");
        if (!f) die("fopen");
        fputs(json, f);
        fclose(f);
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o '%s' -w '%%{http_code}' -X %s %s%s%s -H 'Content-Type: application/json' '%s'",
             tmpl, method, json ? "--data-binary @'" : "", json ? bodyfile : "", json ? "'" : "", url);
    FILE *p = popen(cmd, "r");
    int code = 0;
    if (p) {
        if (fscanf(p, "%d", &code) != 1) code = 0;
        pclose(p);
    }
    if (body) *body = qfs_test_read_file(tmpl, NULL);
    unlink(tmpl);
    if (json) unlink(bodyfile);
    return code;
}

struct cJSON *qfs_test_http_json(const char *method, const char *url, const char *json)
{
    char *body = NULL;
    int code = qfs_test_http(method, url, json, &body);
    cJSON *j = code / 100 == 2 && body ? cJSON_Parse(body) : NULL;
    free(body);
    return j;
}

void qfs_test_deliver_event(const struct qfs_test_stack *st, const char *event_json)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/events/deliver", qfs_test_stack_get(st, "QFS_SIM_AWS_URL"));
    char *req = NULL;
    if (asprintf(&req, "{\"event\":%s,\"bus\":\"default\",\"bus_account\":\"111122223333\","
                       "\"bus_region\":\"eu-west-1\"}", event_json) < 0)
        die("asprintf");
    char *body = NULL;
    int code = qfs_test_http("POST", url, req, &body);
    free(req);
    if (code != 200) {
        fprintf(stderr, "testlib: aws-sim refused the event: %d %s\n", code, body ? body : "");
        abort();
    }
    free(body);
}

bool qfs_test_events_queue_empty(void *stack)
{
    const struct qfs_test_stack *st = stack;
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/sqs/messages?queue=qfs-events",
             qfs_test_stack_get(st, "QFS_SIM_AWS_URL"));
    char *body = NULL;
    int code = qfs_test_http("GET", url, NULL, &body);
    bool empty = code == 200 && body && !strstr(body, "message_id");
    free(body);
    return empty;
}

void qfs_test_http_ok(const char *method, const char *base, const char *path, const char *json)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", base, path);
    char *body = NULL;
    int code = qfs_test_http(method, url, json, &body);
    if (code / 100 != 2) {
        fprintf(stderr, "testlib: %s %s: %d %s\n", method, url, code, body ? body : "");
        abort();
    }
    free(body);
}

void qfs_test_stack_signal(const struct qfs_test_stack *st, const char *name, int sig)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/pids/%s.pid", st->dir, name);
    char *text = qfs_test_read_file(path, NULL);
    if (!text) die(path);
    pid_t pid = (pid_t)atol(text);
    free(text);
    if (pid <= 1 || kill(pid, sig) != 0) die(path);
}

/* ---- the cache store ---------------------------------------------------------------------------- */

struct kv_call {
    bool done;
    qfs_status status;
    char **items;
};

static void on_kv(const struct qfs_kv_result *r, void *arg)
{
    struct kv_call *c = arg;
    c->done = true;
    c->status = r->status;
    if (r->status != QFS_OK) return;
    c->items = qfs_xcalloc(r->n + 1, sizeof(char *));
    for (size_t i = 0; i < r->n; i++) c->items[i] = qfs_xstrndup(r->items[i], r->lens[i]);
}

/* Runs one store operation (append when value is set, else get_list) on a loop of its own. */
static char **kv_call(const struct qfs_test_stack *st, const char *key, const char *value)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct qfs_kv_config cfg = {.backend = QFS_KV_REDIS,
                                .redis_url = (char *)qfs_test_stack_get(st, "QFS_REDIS_URL"),
                                .ttl_seconds = 3600,
                                .prefix = (char *)"qfs:"};
    struct qfs_kv *kv = NULL;
    if (qfs_kv_new(&loop, &cfg, NULL, &kv) != QFS_OK) die("qfs_kv_new");
    struct kv_call c = {0};
    qfs_status s = value ? qfs_kv_append(kv, key, value, strlen(value), QFS_DEPLOY_SKIPS_TTL_S,
                                         QFS_DEPLOY_SKIPS_MAX, on_kv, &c)
                         : qfs_kv_get_list(kv, key, on_kv, &c);
    if (s != QFS_OK) die("cache store call");
    if (!qfs_loop_run_until_flag(&loop, &c.done, 30000)) die("the cache store did not answer");
    qfs_kv_free(kv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (c.status == QFS_NOT_FOUND) c.items = qfs_xcalloc(1, sizeof(char *));
    else if (c.status != QFS_OK) die(qfs_status_str(c.status));
    return c.items;
}

void qfs_test_kv_append(const struct qfs_test_stack *st, const char *key, const char *value)
{
    char **none = kv_call(st, key, value);
    free(none);
}

char **qfs_test_kv_list(const struct qfs_test_stack *st, const char *key)
{
    return kv_call(st, key, NULL);
}

void qfs_test_seed_image(const struct qfs_test_stack *st, const cJSON *image)
{
    char *one = cJSON_PrintUnformatted(image);
    char *doc = NULL;
    if (asprintf(&doc, "{\"mode\":\"add\",\"images\":[%s]}", one) < 0) die("asprintf");
    qfs_test_http_ok("POST", qfs_test_stack_get(st, "QFS_SIM_AWS_URL"), "/_sim/ecr/images", one);
    qfs_test_http_ok("POST", qfs_test_stack_get(st, "QFS_SIM_QUALYS_URL"), "/_sim/seed", doc);
    free(one);
    free(doc);
}

bool qfs_test_consumer_exists(jsCtx *js, const char *durable)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (js_GetConsumerInfo(&ci, js, "QFS", durable, NULL, &jerr) != NATS_OK) return false;
    jsConsumerInfo_Destroy(ci);
    return true;
}

uint64_t qfs_test_publish(jsCtx *js, const char *subject, const char *body, const char *msg_id,
                          const char *trace, const char *schema)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, (int)strlen(body));
    if (s == NATS_OK) s = natsMsgHeader_Set(m, QFS_HDR_MSG_ID, msg_id);
    if (s == NATS_OK && trace) s = natsMsgHeader_Set(m, QFS_HDR_TRACE_ID, trace);
    if (s == NATS_OK && schema) s = natsMsgHeader_Set(m, QFS_HDR_SCHEMA, schema);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (s == NATS_OK) s = js_PublishMsg(&pa, js, m, NULL, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        fprintf(stderr, "testlib: publish to %s failed: %s (%d)\n", subject, natsStatus_GetText(s), (int)jerr);
        abort();
    }
    uint64_t seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    return seq;
}

struct cJSON *qfs_test_stored(const char *url, const char *filter)
{
    cJSON *list = cJSON_CreateArray();
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckNone;
    jsErrCode jerr = 0;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK || natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
        js_SubscribeSync(&sub, js, filter, NULL, &so, &jerr) != NATS_OK)
        goto out;
    /* Everything stored is delivered at once: the message with nothing pending after it is the
     * end (as bench/stored.c reads it); a quiet 300 ms means nothing was stored on filter. */
    natsMsg *m = NULL;
    bool last = false;
    while (!last && natsSubscription_NextMsg(&m, sub, 300) == NATS_OK) {
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
            last = md->NumPending == 0;
            jsMsgMetaData_Destroy(md);
        }
        cJSON *j = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        const char *id = NULL;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        if (cJSON_IsObject(j)) {
            if (id) cJSON_AddStringToObject(j, "_msg_id", id);
            cJSON_AddStringToObject(j, "_subject", natsMsg_GetSubject(m));
            cJSON_AddItemToArray(list, j);
        } else {
            cJSON_Delete(j);
        }
        natsMsg_Destroy(m);
    }
out:
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return list;
}
