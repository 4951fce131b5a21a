/* qfs-registry: the Qualys registry of each image's ECR account and region (services/DESIGN.md).
 *
 * registry_resolve() answers "which Qualys registry UUID scans account/region?": from the store
 * (registry:<acct>:<region>) when it is known; otherwise one lookup per account/region in this
 * process (later requests wait for it) under the cross-replica lock registry-lock:<acct>:<region>,
 * which finds the registry by registryUri or creates it (with its AWS connector first) and stores
 * its UUID. The rules reach the store and Qualys only through the two ports below, so unit tests
 * drive them with fakes; registry_build_* turn an outcome into the messages to publish. */
#ifndef QFS_REGISTRY_H
#define QFS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/bus.h"
#include "qfs/kv.h"
#include "qfs/proto_scan.h"
#include "qfs/qualys.h"
#include "qfs/status.h"

/* How long a registry-lock lives when its holder dies without releasing it. */
#define REGISTRY_LOCK_TTL_SECONDS 120
/* Backoff of retryable failures: 5 s doubling to 2 min. */
#define REGISTRY_BACKOFF_FIRST_MS 5000
#define REGISTRY_BACKOFF_MAX_MS 120000
/* While another replica holds the lock: 2 s doubling to 10 s. */
#define REGISTRY_LOCKED_FIRST_MS 2000
#define REGISTRY_LOCKED_MAX_MS 10000

/* The store, as the subset of qfs_kv the rules use (the service wires qfs_kv_*). Each call has
 * the contract of its qfs_kv_* namesake: QFS_OK and cb later exactly once, or a failure and cb
 * never. */
struct registry_store {
    void *impl;
    qfs_status (*get)(void *impl, const char *key, qfs_kv_fn cb, void *arg);
    qfs_status (*put)(void *impl, const char *key, const char *value, size_t len, int64_t ttl_seconds,
                      qfs_kv_fn cb, void *arg);
    qfs_status (*put_if_absent)(void *impl, const char *key, const char *value, size_t len,
                                int64_t ttl_seconds, qfs_kv_fn cb, void *arg);
    qfs_status (*del_if_value)(void *impl, const char *key, const char *expected, size_t len,
                               qfs_kv_fn cb, void *arg);
};

/* The Qualys calls the rules use, with the contracts of their qfs_qualys_* namesakes. */
struct registry_qualys {
    void *impl;
    qfs_status (*find_registry)(void *impl, const char *registry, qfs_qualys_done_fn cb, void *arg);
    qfs_status (*create_registry)(void *impl, const char *account, const char *region,
                                  const char *role_arn, const char *name, const char *account_type,
                                  qfs_qualys_done_fn cb, void *arg);
    qfs_status (*list_connectors)(void *impl, qfs_qualys_done_fn cb, void *arg);
    qfs_status (*aws_base)(void *impl, qfs_qualys_done_fn cb, void *arg);
    qfs_status (*create_connector)(void *impl, const char *name, const char *role_arn,
                                   const char *external_id, const char *account_type,
                                   qfs_qualys_done_fn cb, void *arg);
};

struct registry_config {
    const char *role_name;    /* QFS_ECR_ROLE_NAME: the role Qualys assumes in member accounts */
    const char *account_type; /* QFS_QUALYS_ACCOUNT_TYPE: "Global" or "US_Gov" */
    const char *holder;       /* names this process in registry-lock values (host:pid) */
};

struct registry;

/* Creates the rules over store and qualys (copied, with cfg's strings). The ports' impls are
 * borrowed and must outlive the registry, or be closed after registry_close(). QFS_INVALID_ARG
 * for a missing port function, a role name or an account type that cannot be used. */
qfs_status registry_new(const struct registry_config *cfg, const struct registry_store *store,
                        const struct registry_qualys *qualys, struct registry **out);
/* Stops the rules: no lookup goes on, and every request not answered yet is answered with
 * REGISTRY_RETRY, delay 0, status QFS_UNAVAILABLE (never a failure, even on its last delivery), now
 * or when its store read returns, so that each delivery is settled. The registry-locks that
 * lookups under way hold are released, so that other replicas need not wait for them to expire;
 * closed(arg) runs once the store has answered those releases (inside this call when there are
 * none), and only then may the caller close the ports, whose pending callbacks end the lookups.
 * Memory goes with the last of those callbacks. */
void registry_close(struct registry *r, void (*closed)(void *arg), void *arg);

enum registry_verdict {
    REGISTRY_READY,  /* the registry is known: publish the scan ready message */
    REGISTRY_FAILED, /* publish a scan failure (qualys_denied or registry_failed) */
    REGISTRY_RETRY,  /* ask for redelivery after delay_ms */
};

/* What became of one request; strings are borrowed for the callback. */
struct registry_outcome {
    enum registry_verdict verdict;
    const char *uuid;                     /* READY */
    enum qfs_scan_failure_reason reason;  /* FAILED */
    qfs_status status;                    /* FAILED, RETRY: what went wrong */
    const char *detail;                   /* FAILED, RETRY: why, for people ("" never) */
    const char *error_code;               /* FAILED: Qualys errorCode, "" when none */
    const char *error_message;            /* FAILED: Qualys message, "" when none */
    int64_t delay_ms;                     /* RETRY */
};

typedef void (*registry_done_fn)(void *arg, const struct registry_outcome *o);

/* Resolves the registry of account/region for a request on its delivery `attempt` (1, 2, ...);
 * last says this is the last delivery allowed, when a retry becomes a registry_failed failure.
 * Returns QFS_OK and calls cb later exactly once (unless registry_close() comes first), or
 * returns QFS_PROTOCOL (account or region not valid) or the store's refusal (cb never called). */
qfs_status registry_resolve(struct registry *r, const char *account, const char *region,
                            uint64_t attempt, bool last, registry_done_fn cb, void *arg);

/* Lookups under way (one per account/region) and requests not yet answered (tests, drain). */
size_t registry_lookups(const struct registry *r);
size_t registry_pending(const struct registry *r);

/* ---- pure helpers -------------------------------------------------------------------------- */

/* The store keys: registry:<acct>:<region> and registry-lock:<acct>:<region>. */
void registry_key(const char *account, const char *region, char *out, size_t n);
void registry_lock_key(const char *account, const char *region, char *out, size_t n);
/* The stored value {"registry_uuid":"..."} (caller frees) and its reading: false when value is
 * not that shape with a UUID (36 characters, 8-4-4-4-12 hex). */
char *registry_value_encode(const char *uuid);
bool registry_value_decode(const char *value, size_t len, char *uuid, size_t n);
bool registry_uuid_is_valid(const char *s);
/* Delay before the next delivery: backoff (locked false) or waiting for another replica. */
int64_t registry_retry_delay_ms(bool locked, uint64_t attempt);

/* Adds the scan ready message (req + uuid) on qfs.scans.ready.<acct>.<region> with Nats-Msg-Id
 * ready:<K>#<G>. Adds the scan failure for o (FAILED) on qfs.scans.failed.<acct>.<region> with
 * outcome:<K>#<G>, failed at failed_at. QFS_INTERNAL when a message does not encode (logged). */
qfs_status registry_build_ready(const struct qfs_scan_request *req, const char *uuid,
                                struct qfs_outbox *ob);
qfs_status registry_build_failure(const struct qfs_scan_request *req, const struct registry_outcome *o,
                                  const char *failed_at, struct qfs_outbox *ob);

#endif
