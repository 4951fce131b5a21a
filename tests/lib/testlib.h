/* Helpers for integration tests: temp dirs, child processes, free ports, real servers. */
#ifndef QFS_TESTLIB_H
#define QFS_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

/* A fresh directory under $TMPDIR (or /tmp); the caller frees the string and removes the tree
 * with qfs_test_rmrf(). Aborts the test on failure. */
char *qfs_test_tmpdir(const char *prefix);
void qfs_test_rmrf(const char *path);

/* Environment value or a default. */
const char *qfs_test_env(const char *name, const char *def);

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests on one machine). */
int qfs_test_free_port(void);
/* Waits until something accepts on 127.0.0.1:port. */
bool qfs_test_wait_port(int port, int timeout_ms);

struct qfs_test_proc {
    pid_t pid;
    int out_fd;   /* the child's stdout, when captured; -1 otherwise */
    char name[64];
    char log_path[512];
};

/* Starts argv[0] with argv, the current environment plus env (NULL-terminated "K=V" list, may be
 * NULL). stdout is captured (read it with qfs_test_proc_read_line) when capture_stdout; otherwise
 * it goes to log_path with stderr. stderr always goes to log_path (appended) when given. The child
 * is killed with SIGKILL when the test process dies. */
struct qfs_test_proc *qfs_test_spawn(const char *name, const char *const argv[],
                                     const char *const env[], const char *log_path,
                                     bool capture_stdout);
/* Reads one line of captured stdout (without the newline). Returns false on EOF or timeout. */
bool qfs_test_proc_read_line(struct qfs_test_proc *p, char *buf, size_t n, int timeout_ms);
/* Sends sig; then qfs_test_proc_wait reaps it. */
void qfs_test_proc_signal(struct qfs_test_proc *p, int sig);
/* Waits for exit. Returns true when it exited within timeout_ms; *status gets the wait status. */
bool qfs_test_proc_wait(struct qfs_test_proc *p, int timeout_ms, int *status);
bool qfs_test_proc_alive(struct qfs_test_proc *p);
/* SIGTERM, wait up to 5 s, then SIGKILL; frees p. NULL is fine. */
void qfs_test_proc_stop(struct qfs_test_proc *p);
/* Prints the last lines of the process log to stderr (on failure, to explain it). */
void qfs_test_proc_dump_log(const struct qfs_test_proc *p, int lines);

/* A real nats-server with JetStream on a free port, its store in dir/nats. */
struct qfs_test_nats {
    struct qfs_test_proc *proc;
    int port;
    char url[64];
    char dir[512];
};
void qfs_test_nats_start(struct qfs_test_nats *n, const char *dir);
/* Stops the server (SIGTERM) and starts it again on the same port and store. */
void qfs_test_nats_restart(struct qfs_test_nats *n);
void qfs_test_nats_stop(struct qfs_test_nats *n);

/* A Node program that prints one JSON line {"port":N,...} on stdout when ready (the simulators
 * and fixture servers). Returns the port; *proc receives the process. */
int qfs_test_node_start(struct qfs_test_proc **proc, const char *name, const char *script,
                        const char *const args[], const char *log_path);

/* The local stack (tools/stack) in dir: its environment as "K=V" strings for qfs_test_spawn. */
struct qfs_test_stack {
    char dir[512];
    char **env;   /* NULL-terminated */
    size_t nenv;
};
/* Runs `tools/stack up --dir dir` and reads dir/env. Aborts the test when the stack fails. */
void qfs_test_stack_up(struct qfs_test_stack *st, const char *dir);
/* The value of a variable of the stack's environment, or NULL. */
const char *qfs_test_stack_get(const struct qfs_test_stack *st, const char *name);
/* Adds or replaces a variable ("K=V", copied). */
void qfs_test_stack_set(struct qfs_test_stack *st, const char *kv);
/* Runs `tools/stack down` and frees the environment. */
void qfs_test_stack_down(struct qfs_test_stack *st);

/* Sends sig to one of the stack's processes ("redis", "nats", "aws-sim", "qualys-sim"), found by
 * its pid file. Aborts the test when there is no such process. */
void qfs_test_stack_signal(const struct qfs_test_stack *st, const char *name, int sig);

/* Starts build/bin/qfs-<service> with the stack's environment plus extra ("K=V", NULL-terminated,
 * may be NULL); its log goes to <stack dir>/logs/qfs-<service>[-<tag>].log. */
struct qfs_test_proc *qfs_test_service_start(const struct qfs_test_stack *st, const char *service,
                                             const char *tag, const char *const extra[]);

/* Like qfs_test_service_start, but the service's stdout is captured (read it with
 * qfs_test_proc_read_line); its stderr goes to the same log. */
struct qfs_test_proc *qfs_test_service_start_captured(const struct qfs_test_stack *st, const char *service,
                                                      const char *tag, const char *const extra[]);

/* An HTTP request to a simulator's admin API (curl underneath). Returns the HTTP code and, when
 * body is not NULL, the response body (caller frees). */
int qfs_test_http(const char *method, const char *url, const char *json, char **body);

/* method on base + path (a simulator's admin call, json may be NULL); aborts the test unless the
 * answer is 2xx. */
void qfs_test_http_ok(const char *method, const char *base, const char *path, const char *json);

/* An HTTP request whose answer is JSON: the parsed body (caller deletes), or NULL when the status
 * is not 2xx or the body is not JSON. */
struct cJSON *qfs_test_http_json(const char *method, const char *url, const char *json);

/* Puts an EventBridge event (JSON text) on the hub's default bus through aws-sim, as a member
 * account's or region's rule would forward it: the envelope keeps its own account and region.
 * Aborts the test when aws-sim refuses it. */
void qfs_test_deliver_event(const struct qfs_test_stack *st, const char *event_json);
/* Whether the stack's SQS queue qfs-events holds no message, received (in flight) or not. An
 * argument for qfs_test_eventually: arg is the struct qfs_test_stack. */
bool qfs_test_events_queue_empty(void *stack);

/* Puts an image into ECR (aws-sim) and into what a Qualys registry scan finds (qualys-sim): image
 * is one element of aws-sim's /_sim/ecr/images, with its "vulns" for qualys-sim's /_sim/seed.
 * Aborts the test when either simulator refuses it. */
void qfs_test_seed_image(const struct qfs_test_stack *st, const struct cJSON *image);

/* Whether the QFS stream has the durable consumer durable. */
bool qfs_test_consumer_exists(jsCtx *js, const char *durable);

/* Publishes body to subject through JetStream with the headers qfs services write: Nats-Msg-Id
 * msg_id, and Qfs-Trace-Id trace and Qfs-Schema schema when not NULL. Returns the stream sequence;
 * aborts the test when JetStream refuses it. */
uint64_t qfs_test_publish(jsCtx *js, const char *subject, const char *body, const char *msg_id,
                          const char *trace, const char *schema);

/* Every message stored on filter, oldest first, read through an ephemeral JetStream consumer:
 * an array of the parsed bodies, each with "_msg_id" (its Nats-Msg-Id) and "_subject" added.
 * url is the NATS server. The caller deletes the array. */
struct cJSON *qfs_test_stored(const char *url, const char *filter);

/* The stack's cache store (its Redis, the services' default QFS_CACHE_PREFIX): appends value to
 * the list at key, or reads that list (a NULL-terminated array of the elements, oldest first; the
 * caller frees each and the array; an absent key gives an empty array). Abort the test on failure. */
void qfs_test_kv_append(const struct qfs_test_stack *st, const char *key, const char *value);
char **qfs_test_kv_list(const struct qfs_test_stack *st, const char *key);

/* Polls fn(arg) every 20 ms until it returns true or timeout_ms passes. */
bool qfs_test_eventually(bool (*fn)(void *arg), void *arg, int timeout_ms);

/* Reads a whole file into a NUL-terminated buffer (caller frees), or NULL. */
char *qfs_test_read_file(const char *path, size_t *len);

#endif
