/* qfs-registry's rules over a fake store and a fake Qualys: the stored UUID, find by registryUri,
 * create with its connector, the re-list after an ambiguous create, 403 and 400, the last
 * delivery, the cross-replica lock, one lookup for a burst, and the messages each request ends
 * with. The fakes queue their answers; the test runs them in order, so nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/bus.h"
#include "qfs/proto_scan.h"
#include "qfs/util.h"
#include "registry.h"

#define ACCOUNT "111122223333"
#define OTHER "444455556666"
#define REGION "eu-west-1"
#define URI "https://" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com"
#define ROLE_ARN "arn:aws:iam::" ACCOUNT ":role/QualysEcrScanRole"
#define UUID_A "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21"
#define UUID_B "7b1d2c3e-0000-4000-8000-00000000000b"
#define UUID_NEW "0d9b3a51-1111-4222-8333-444455556666"
#define REG_KEY "registry:" ACCOUNT ":" REGION
#define LOCK_KEY "registry-lock:" ACCOUNT ":" REGION

/* ---- the fakes: answers queue up and run when the test pumps them ----------------------------- */

struct pending {
    bool is_kv;
    qfs_kv_fn kcb;
    qfs_qualys_done_fn qcb;
    void *arg;
    qfs_status status;
    bool exists, not_owner;
    char *value;
    long http_code;
    char error_code[64];
    char message[128];
    struct qfs_qualys_aws_base aws_base;
    struct qfs_qualys_connector *connectors;
    size_t nconnectors;
    struct qfs_qualys_registry registry;
    char uuid[64];
    struct pending *next;
};

#define MAX_ITEMS 64

struct item {
    char key[128];
    char value[256];
};

/* A Qualys fault: the next `count` calls of op answer status/http_code; applied means a create
 * still takes effect (its answer was lost). */
struct fault {
    qfs_status status;
    long http_code;
    bool applied;
    int count;
    const char *error_code;
    const char *message;
};

enum { OP_FIND, OP_CREATE, OP_LIST, OP_BASE, OP_CONNECT, OP_COUNT };

struct fakes {
    struct pending *head, *tail;
    /* store */
    struct item items[MAX_ITEMS];
    size_t nitems;
    bool store_down;
    unsigned kv_calls;
    /* Qualys */
    char reg_uri[8][160], reg_uuid[8][64];
    size_t nregs;
    char connectors[8][640];
    size_t nconnectors;
    char external_id[72];
    struct fault faults[OP_COUNT];
    unsigned calls[OP_COUNT];
    char trail[512];             /* the Qualys calls in order: F C L B K */
    char last_external_id[72];
    char last_account_type[16];
    char last_connector_arn[640];
    char last_role_arn[640];
    char last_name[64];
    unsigned next_uuid;
};

static struct fakes F;

static struct pending *enqueue(bool is_kv, void *cb, void *arg)
{
    struct pending *p = qfs_xcalloc(1, sizeof(*p));
    p->is_kv = is_kv;
    if (is_kv) p->kcb = (qfs_kv_fn)cb;
    else p->qcb = (qfs_qualys_done_fn)cb;
    p->arg = arg;
    if (F.tail) F.tail->next = p;
    else F.head = p;
    F.tail = p;
    return p;
}

/* Runs queued answers (and those they queue) until none is left; returns how many ran. */
static int pump(void)
{
    int n = 0;
    while (F.head) {
        struct pending *p = F.head;
        F.head = p->next;
        if (!F.head) F.tail = NULL;
        if (p->is_kv) {
            struct qfs_kv_result r = {.status = p->status, .exists = p->exists, .not_owner = p->not_owner,
                                      .value = p->value, .len = p->value ? strlen(p->value) : 0};
            p->kcb(&r, p->arg);
        } else {
            struct qfs_qualys_response r = {.status = p->status, .http_code = p->http_code,
                                            .error_code = p->error_code, .message = p->message,
                                            .uuid = p->uuid};
            if (p->status == QFS_OK) {
                r.aws_base = &p->aws_base;
                r.connectors = p->connectors;
                r.nconnectors = p->nconnectors;
                r.registry = &p->registry;
            }
            p->qcb(&r, p->arg);
        }
        free(p->value);
        free(p->connectors);
        free(p);
        n++;
    }
    return n;
}

static struct item *item_of(const char *key)
{
    for (size_t i = 0; i < F.nitems; i++)
        if (strcmp(F.items[i].key, key) == 0) return &F.items[i];
    return NULL;
}

static void item_set(const char *key, const char *value)
{
    struct item *it = item_of(key);
    if (!it) {
        assert_true(F.nitems < MAX_ITEMS);
        it = &F.items[F.nitems++];
        snprintf(it->key, sizeof(it->key), "%s", key);
    }
    snprintf(it->value, sizeof(it->value), "%s", value);
}

static void item_del(const char *key)
{
    struct item *it = item_of(key);
    if (!it) return;
    *it = F.items[--F.nitems];
}

/* The store applies each operation when it is called (as a single Redis would) and answers later. */
static qfs_status kv_get(void *impl, const char *key, qfs_kv_fn cb, void *arg)
{
    F.kv_calls++;
    struct pending *p = enqueue(true, (void *)cb, arg);
    struct item *it = item_of(key);
    if (F.store_down) p->status = QFS_UNAVAILABLE;
    else if (!it) p->status = QFS_NOT_FOUND;
    else p->value = qfs_xstrdup(it->value);
    return QFS_OK;
}

static qfs_status kv_put(void *impl, const char *key, const char *value, size_t len, int64_t ttl,
                         qfs_kv_fn cb, void *arg)
{
    F.kv_calls++;
    assert_int_equal(ttl, 0); /* registry:<acct>:<region> never expires */
    struct pending *p = enqueue(true, (void *)cb, arg);
    if (F.store_down) p->status = QFS_UNAVAILABLE;
    else item_set(key, value);
    return QFS_OK;
}

static qfs_status kv_put_if_absent(void *impl, const char *key, const char *value, size_t len, int64_t ttl,
                                   qfs_kv_fn cb, void *arg)
{
    F.kv_calls++;
    assert_int_equal(ttl, REGISTRY_LOCK_TTL_SECONDS);
    struct pending *p = enqueue(true, (void *)cb, arg);
    if (F.store_down) p->status = QFS_UNAVAILABLE;
    else if (item_of(key)) p->exists = true;
    else item_set(key, value);
    return QFS_OK;
}

static qfs_status kv_del_if_value(void *impl, const char *key, const char *expected, size_t len,
                                  qfs_kv_fn cb, void *arg)
{
    F.kv_calls++;
    struct pending *p = enqueue(true, (void *)cb, arg);
    struct item *it = item_of(key);
    if (F.store_down) p->status = QFS_UNAVAILABLE;
    else if (!it || strcmp(it->value, expected) != 0) p->not_owner = true;
    else item_del(key);
    return QFS_OK;
}

static void note(int op, const char *letter)
{
    F.calls[op]++;
    strncat(F.trail, letter, sizeof(F.trail) - strlen(F.trail) - 1);
}

/* Applies a pending fault to p; returns true when the call must still take effect. */
static bool faulted(int op, struct pending *p, bool *applied)
{
    struct fault *f = &F.faults[op];
    *applied = true;
    if (f->count <= 0) return false;
    f->count--;
    p->status = f->status;
    p->http_code = f->http_code;
    snprintf(p->error_code, sizeof(p->error_code), "%s", f->error_code ? f->error_code : "");
    snprintf(p->message, sizeof(p->message), "%s", f->message ? f->message : "");
    *applied = f->applied;
    return true;
}

static int registry_index(const char *uri)
{
    for (size_t i = 0; i < F.nregs; i++)
        if (strcmp(F.reg_uri[i], uri) == 0) return (int)i;
    return -1;
}

static void add_registry(const char *uri, const char *uuid)
{
    snprintf(F.reg_uri[F.nregs], sizeof(F.reg_uri[0]), "%s", uri);
    snprintf(F.reg_uuid[F.nregs], sizeof(F.reg_uuid[0]), "%s", uuid);
    F.nregs++;
}

static qfs_status q_find(void *impl, const char *registry, qfs_qualys_done_fn cb, void *arg)
{
    note(OP_FIND, "F");
    struct pending *p = enqueue(false, (void *)cb, arg);
    bool applied;
    if (faulted(OP_FIND, p, &applied)) return QFS_OK;
    p->http_code = 200;
    int i = registry_index(registry);
    if (i < 0) {
        p->status = QFS_NOT_FOUND;
        p->http_code = 204;
        return QFS_OK;
    }
    snprintf(p->registry.uuid, sizeof(p->registry.uuid), "%s", F.reg_uuid[i]);
    snprintf(p->registry.uri, sizeof(p->registry.uri), "%s", F.reg_uri[i]);
    return QFS_OK;
}

static qfs_status q_create(void *impl, const char *account, const char *region, const char *role_arn,
                           const char *name, const char *account_type, qfs_qualys_done_fn cb, void *arg)
{
    note(OP_CREATE, "C");
    snprintf(F.last_role_arn, sizeof(F.last_role_arn), "%s", role_arn);
    snprintf(F.last_name, sizeof(F.last_name), "%s", name);
    snprintf(F.last_account_type, sizeof(F.last_account_type), "%s", account_type);
    struct pending *p = enqueue(false, (void *)cb, arg);
    bool applied;
    bool fault = faulted(OP_CREATE, p, &applied);
    if (!applied) return QFS_OK;
    char uri[160];
    snprintf(uri, sizeof(uri), "https://%s.dkr.ecr.%s.amazonaws.com", account, region);
    if (registry_index(uri) >= 0 && !fault) {
        p->status = QFS_PROTOCOL;
        p->http_code = 400;
        return QFS_OK;
    }
    char uuid[64];
    snprintf(uuid, sizeof(uuid), "0d9b3a51-1111-4222-8333-%012u", 100000u + F.next_uuid++);
    add_registry(uri, uuid);
    if (!fault) {
        p->http_code = 200;
        snprintf(p->uuid, sizeof(p->uuid), "%s", uuid);
    }
    return QFS_OK;
}

static qfs_status q_list(void *impl, qfs_qualys_done_fn cb, void *arg)
{
    note(OP_LIST, "L");
    struct pending *p = enqueue(false, (void *)cb, arg);
    bool applied;
    if (faulted(OP_LIST, p, &applied)) return QFS_OK;
    p->http_code = 200;
    p->nconnectors = F.nconnectors;
    p->connectors = qfs_xcalloc(F.nconnectors + 1, sizeof(*p->connectors));
    for (size_t i = 0; i < F.nconnectors; i++)
        snprintf(p->connectors[i].arn, sizeof(p->connectors[i].arn), "%s", F.connectors[i]);
    return QFS_OK;
}

static qfs_status q_base(void *impl, qfs_qualys_done_fn cb, void *arg)
{
    note(OP_BASE, "B");
    struct pending *p = enqueue(false, (void *)cb, arg);
    bool applied;
    if (faulted(OP_BASE, p, &applied)) return QFS_OK;
    p->http_code = 200;
    snprintf(p->aws_base.account_id, sizeof(p->aws_base.account_id), "805950163170");
    snprintf(p->aws_base.external_id, sizeof(p->aws_base.external_id), "%s", F.external_id);
    return QFS_OK;
}

static qfs_status q_connect(void *impl, const char *name, const char *role_arn, const char *external_id,
                            const char *account_type, qfs_qualys_done_fn cb, void *arg)
{
    note(OP_CONNECT, "K");
    snprintf(F.last_external_id, sizeof(F.last_external_id), "%s", external_id);
    snprintf(F.last_connector_arn, sizeof(F.last_connector_arn), "%s", role_arn);
    struct pending *p = enqueue(false, (void *)cb, arg);
    bool applied;
    bool fault = faulted(OP_CONNECT, p, &applied);
    if (!applied) return QFS_OK;
    for (size_t i = 0; i < F.nconnectors; i++) {
        if (strcmp(F.connectors[i], role_arn) == 0) {
            /* As Qualys (and qualys-sim) answers a second connector for one role. */
            p->status = QFS_PROTOCOL;
            p->http_code = 400;
            snprintf(p->error_code, sizeof(p->error_code), "400 BAD_REQUEST");
            return QFS_OK;
        }
    }
    snprintf(F.connectors[F.nconnectors++], sizeof(F.connectors[0]), "%s", role_arn);
    if (!fault) p->http_code = 200;
    return QFS_OK;
}

/* ---- outcomes ------------------------------------------------------------------------------ */

struct answer {
    int n;
    enum registry_verdict verdict;
    enum qfs_scan_failure_reason reason;
    char uuid[64];
    char detail[640];
    char error_code[64];
    char error_message[512];
    int64_t delay_ms;
};

static void on_done(void *arg, const struct registry_outcome *o)
{
    struct answer *a = arg;
    a->n++;
    a->verdict = o->verdict;
    a->reason = o->reason;
    a->delay_ms = o->delay_ms;
    snprintf(a->uuid, sizeof(a->uuid), "%s", o->verdict == REGISTRY_READY ? o->uuid : "");
    snprintf(a->detail, sizeof(a->detail), "%s", o->detail ? o->detail : "");
    snprintf(a->error_code, sizeof(a->error_code), "%s", o->error_code ? o->error_code : "");
    snprintf(a->error_message, sizeof(a->error_message), "%s", o->error_message ? o->error_message : "");
}

static const struct registry_store store_port = {NULL, kv_get, kv_put, kv_put_if_absent, kv_del_if_value};
static const struct registry_qualys qualys_port = {NULL, q_find, q_create, q_list, q_base, q_connect};

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static int setup(void **state)
{
    memset(&F, 0, sizeof(F));
    snprintf(F.external_id, sizeof(F.external_id), "8146502212734410");
    struct registry_config cfg = {.role_name = "QualysEcrScanRole", .account_type = "Global",
                                  .holder = "test-host:1"};
    struct registry *r = NULL;
    assert_int_equal(registry_new(&cfg, &store_port, &qualys_port, &r), QFS_OK);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct registry *r = *state;
    pump();
    assert_int_equal(registry_pending(r), 0);
    assert_int_equal(registry_lookups(r), 0);
    int closed = 0;
    registry_close(r, on_closed, &closed);
    assert_int_equal(closed, 1); /* nothing to release: at once */
    return 0;
}

/* Resolves one request (first delivery) and runs every queued answer. */
static struct answer resolve(struct registry *r, const char *account, uint64_t attempt, bool last)
{
    struct answer a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(registry_resolve(r, account, REGION, attempt, last, on_done, &a), QFS_OK);
    assert_int_equal(a.n, 0); /* never inside the call */
    pump();
    assert_int_equal(a.n, 1);
    return a;
}

static unsigned qualys_calls(void)
{
    unsigned n = 0;
    for (int i = 0; i < OP_COUNT; i++) n += F.calls[i];
    return n;
}

static void assert_stored(const char *uuid)
{
    struct item *it = item_of(REG_KEY);
    assert_non_null(it);
    char got[64];
    assert_true(registry_value_decode(it->value, strlen(it->value), got, sizeof(got)));
    assert_string_equal(got, uuid);
    assert_null(item_of(LOCK_KEY)); /* the lock was released */
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_stored_uuid_needs_no_qualys_call(void **state)
{
    struct registry *r = *state;
    item_set(REG_KEY, "{\"registry_uuid\":\"" UUID_A "\"}");
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, UUID_A);
    assert_int_equal(qualys_calls(), 0);
    assert_int_equal(F.kv_calls, 1);
}

static void test_found_by_registry_uri_is_stored(void **state)
{
    struct registry *r = *state;
    add_registry("https://" OTHER ".dkr.ecr." REGION ".amazonaws.com", UUID_B);
    add_registry(URI, UUID_A);
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, UUID_A);
    assert_string_equal(F.trail, "F");
    assert_stored(UUID_A);
    /* The next request reads the store only. */
    a = resolve(r, ACCOUNT, 1, false);
    assert_string_equal(a.uuid, UUID_A);
    assert_string_equal(F.trail, "F");
}

static void test_created_with_its_connector_first(void **state)
{
    struct registry *r = *state;
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    /* find, list connectors, aws-base, create connector, then create registry. */
    assert_string_equal(F.trail, "FLBKC");
    assert_string_equal(F.last_connector_arn, ROLE_ARN);
    assert_string_equal(F.last_external_id, "8146502212734410");
    assert_string_equal(F.last_role_arn, ROLE_ARN);
    assert_string_equal(F.last_name, "ecr-" ACCOUNT "-" REGION);
    assert_string_equal(F.last_account_type, "Global");
    assert_int_equal(F.nregs, 1);
    assert_string_equal(a.uuid, F.reg_uuid[0]);
    assert_stored(F.reg_uuid[0]);
}

static void test_existing_connector_is_not_created(void **state)
{
    struct registry *r = *state;
    snprintf(F.connectors[F.nconnectors++], sizeof(F.connectors[0]), "%s", ROLE_ARN);
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(F.trail, "FLC");
    assert_int_equal(F.calls[OP_CONNECT], 0);
    assert_int_equal(F.calls[OP_BASE], 0);
}

static void test_external_id_is_read_for_each_connector(void **state)
{
    struct registry *r = *state;
    resolve(r, ACCOUNT, 1, false);
    assert_string_equal(F.last_external_id, "8146502212734410");
    snprintf(F.external_id, sizeof(F.external_id), "5550001112223334");
    struct answer a = resolve(r, OTHER, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_int_equal(F.calls[OP_BASE], 2);
    assert_string_equal(F.last_external_id, "5550001112223334");
    assert_string_equal(F.last_connector_arn, "arn:aws:iam::" OTHER ":role/QualysEcrScanRole");
}

static void test_govcloud_partition_and_account_type(void **state)
{
    struct registry *old = *state;
    registry_close(old, NULL, NULL);
    struct registry_config cfg = {.role_name = "QualysEcrScanRole", .account_type = "US_Gov",
                                  .holder = "test-host:1"};
    struct registry *r = NULL;
    assert_int_equal(registry_new(&cfg, &store_port, &qualys_port, &r), QFS_OK);
    *state = r;
    struct answer a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(registry_resolve(r, ACCOUNT, "us-gov-west-1", 1, false, on_done, &a), QFS_OK);
    pump();
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(F.last_role_arn, "arn:aws-us-gov:iam::" ACCOUNT ":role/QualysEcrScanRole");
    assert_string_equal(F.last_account_type, "US_Gov");
}

static void test_ambiguous_create_is_followed_by_a_relist(void **state)
{
    struct registry *r = *state;
    /* The POST is applied but its answer is a 500: the list has it, no second create. */
    F.faults[OP_CREATE] = (struct fault){QFS_UNAVAILABLE, 500, true, 1, "500 INTERNAL_SERVER_ERROR", "boom"};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(F.trail, "FLBKCF");
    assert_int_equal(F.calls[OP_CREATE], 1);
    assert_int_equal(F.nregs, 1);
    assert_string_equal(a.uuid, F.reg_uuid[0]);
    assert_stored(F.reg_uuid[0]);
}

static void test_lost_create_answer_without_registry_retries_after_listing(void **state)
{
    struct registry *r = *state;
    /* A transport failure that was not applied: list again, nothing there, retry later. */
    F.faults[OP_CREATE] = (struct fault){QFS_UNAVAILABLE, 0, false, 1, NULL, "connection reset"};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_RETRY);
    assert_int_equal(a.delay_ms, REGISTRY_BACKOFF_FIRST_MS);
    assert_string_equal(F.trail, "FLBKCF");
    assert_int_equal(F.nregs, 0);
    assert_null(item_of(LOCK_KEY));
    /* The redelivery lists first and creates once. */
    a = resolve(r, ACCOUNT, 2, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(F.trail, "FLBKCFFLC");
    assert_int_equal(F.nregs, 1);
}

static void test_create_answered_without_id_is_listed(void **state)
{
    struct registry *r = *state;
    /* 200 with no usable id: the fake's fault answers OK with an empty uuid, applied. */
    F.faults[OP_CREATE] = (struct fault){QFS_OK, 200, true, 1, NULL, NULL};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, F.reg_uuid[0]);
    assert_string_equal(F.trail, "FLBKCF");
}

static void test_ambiguous_connector_create_lists_connectors_again(void **state)
{
    struct registry *r = *state;
    F.faults[OP_CONNECT] = (struct fault){QFS_UNAVAILABLE, 502, true, 1, "502 BAD_GATEWAY", NULL};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(F.trail, "FLBKLC");
    assert_int_equal(F.nconnectors, 1);
}

static void test_403_is_qualys_denied(void **state)
{
    struct registry *r = *state;
    F.faults[OP_FIND] = (struct fault){QFS_DENIED, 403, false, 1, "403 FORBIDDEN", "Request Forbidden"};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_FAILED);
    assert_int_equal(a.reason, QFS_SCAN_FAILURE_QUALYS_DENIED);
    assert_string_equal(a.error_code, "403 FORBIDDEN");
    assert_string_equal(a.error_message, "Request Forbidden");
    assert_null(item_of(REG_KEY));
    assert_null(item_of(LOCK_KEY));
}

static void test_403_on_create_is_qualys_denied(void **state)
{
    struct registry *r = *state;
    F.faults[OP_CREATE] = (struct fault){QFS_DENIED, 403, false, 1, "403 FORBIDDEN", "Request Forbidden"};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.reason, QFS_SCAN_FAILURE_QUALYS_DENIED);
    assert_string_equal(F.trail, "FLBKC"); /* a 403 was not applied: no re-list needed */
}

static void test_400_is_registry_failed_with_qualys_error(void **state)
{
    struct registry *r = *state;
    F.faults[OP_CREATE] = (struct fault){QFS_PROTOCOL, 400, false, 1, "400 BAD_REQUEST",
                                         "Unable to assume role " ROLE_ARN};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_FAILED);
    assert_int_equal(a.reason, QFS_SCAN_FAILURE_REGISTRY_FAILED);
    assert_string_equal(a.error_code, "400 BAD_REQUEST");
    assert_string_equal(a.error_message, "Unable to assume role " ROLE_ARN);
    assert_non_null(strstr(a.detail, "400"));
    /* Refused: the list was checked (another tool may have made it) and nothing stored. */
    assert_string_equal(F.trail, "FLBKCF");
    assert_null(item_of(REG_KEY));
}

static void test_400_because_it_exists_is_ready(void **state)
{
    struct registry *r = *state;
    snprintf(F.connectors[F.nconnectors++], sizeof(F.connectors[0]), "%s", ROLE_ARN);
    /* Someone creates the registry between our find and our create: 400 duplicate, then listed. */
    F.faults[OP_FIND] = (struct fault){QFS_NOT_FOUND, 204, false, 1, NULL, NULL};
    add_registry(URI, UUID_A);
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, UUID_A);
    assert_string_equal(F.trail, "FLCF");
}

static void test_401_is_registry_failed(void **state)
{
    struct registry *r = *state;
    F.faults[OP_FIND] = (struct fault){QFS_DENIED, 401, false, 1, "401 UNAUTHORIZED", "bad credentials"};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_FAILED);
    assert_int_equal(a.reason, QFS_SCAN_FAILURE_REGISTRY_FAILED);
    assert_string_equal(a.error_code, "401 UNAUTHORIZED");
}

static void test_retryable_backs_off_then_fails_on_the_last_delivery(void **state)
{
    struct registry *r = *state;
    F.faults[OP_FIND] = (struct fault){QFS_UNAVAILABLE, 503, false, 100, "503 SERVICE_UNAVAILABLE", "busy"};
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_RETRY);
    assert_int_equal(a.delay_ms, 5000);
    a = resolve(r, ACCOUNT, 3, false);
    assert_int_equal(a.delay_ms, 20000);
    a = resolve(r, ACCOUNT, 12, false);
    assert_int_equal(a.delay_ms, 120000);
    a = resolve(r, ACCOUNT, 50, true);
    assert_int_equal(a.verdict, REGISTRY_FAILED);
    assert_int_equal(a.reason, QFS_SCAN_FAILURE_REGISTRY_FAILED);
    assert_string_equal(a.error_code, "503 SERVICE_UNAVAILABLE");
    assert_non_null(strstr(a.detail, "after 50 deliveries"));
    assert_int_equal(F.calls[OP_CREATE], 0);
}

static void test_burst_makes_one_lookup_and_one_registry(void **state)
{
    struct registry *r = *state;
    struct answer a[20];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 20; i++)
        assert_int_equal(registry_resolve(r, ACCOUNT, REGION, 1, false, on_done, &a[i]), QFS_OK);
    assert_int_equal(registry_pending(r), 20);
    pump();
    assert_int_equal(F.calls[OP_FIND], 1);
    assert_int_equal(F.calls[OP_CREATE], 1);
    assert_int_equal(F.calls[OP_CONNECT], 1);
    assert_int_equal(F.nregs, 1);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(a[i].n, 1);
        assert_int_equal(a[i].verdict, REGISTRY_READY);
        assert_string_equal(a[i].uuid, F.reg_uuid[0]);
    }
    assert_stored(F.reg_uuid[0]);
}

static void test_burst_across_two_regions_makes_one_lookup_each(void **state)
{
    struct registry *r = *state;
    struct answer a[10];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 10; i++)
        assert_int_equal(registry_resolve(r, ACCOUNT, i % 2 ? "us-east-1" : REGION, 1, false, on_done, &a[i]),
                         QFS_OK);
    pump();
    assert_int_equal(F.calls[OP_FIND], 2);
    assert_int_equal(F.calls[OP_CREATE], 2);
    assert_int_equal(F.nregs, 2);
    /* One connector for the account's role, whichever region asked first. */
    assert_int_equal(F.nconnectors, 1);
    for (int i = 0; i < 10; i++) assert_int_equal(a[i].verdict, REGISTRY_READY);
    assert_string_not_equal(a[0].uuid, a[1].uuid);
}

static void test_lock_held_by_another_replica_waits(void **state)
{
    struct registry *r = *state;
    item_set(LOCK_KEY, "other-host:77:1");
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_RETRY);
    assert_int_equal(a.delay_ms, REGISTRY_LOCKED_FIRST_MS);
    assert_int_equal(qualys_calls(), 0);
    assert_int_equal(registry_retry_delay_ms(true, 10), REGISTRY_LOCKED_MAX_MS);
    /* Not ours: it stays. */
    assert_string_equal(item_of(LOCK_KEY)->value, "other-host:77:1");
    /* The holder stored the UUID: the redelivery reads it. */
    item_del(LOCK_KEY);
    item_set(REG_KEY, "{\"registry_uuid\":\"" UUID_B "\"}");
    a = resolve(r, ACCOUNT, 2, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, UUID_B);
    assert_int_equal(qualys_calls(), 0);
}

static void test_lock_holder_checks_the_store_again(void **state)
{
    struct registry *r = *state;
    struct answer a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(registry_resolve(r, ACCOUNT, REGION, 1, false, on_done, &a), QFS_OK);
    /* Another replica stores the UUID and releases its lock between our miss and our lock. */
    item_set(REG_KEY, "{\"registry_uuid\":\"" UUID_A "\"}");
    pump();
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, UUID_A);
    assert_int_equal(qualys_calls(), 0);
    assert_null(item_of(LOCK_KEY));
}

static void test_unusable_stored_value_is_looked_up_again(void **state)
{
    struct registry *r = *state;
    item_set(REG_KEY, "{\"registry_uuid\":\"not-a-uuid\"}");
    add_registry(URI, UUID_A);
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_READY);
    assert_string_equal(a.uuid, UUID_A);
    assert_stored(UUID_A);
}

static void test_store_down_retries(void **state)
{
    struct registry *r = *state;
    F.store_down = true;
    struct answer a = resolve(r, ACCOUNT, 1, false);
    assert_int_equal(a.verdict, REGISTRY_RETRY);
    assert_int_equal(qualys_calls(), 0);
    a = resolve(r, ACCOUNT, 7, true);
    assert_int_equal(a.verdict, REGISTRY_FAILED);
    assert_int_equal(a.reason, QFS_SCAN_FAILURE_REGISTRY_FAILED);
}

static void test_invalid_tokens_are_refused(void **state)
{
    struct registry *r = *state;
    struct answer a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(registry_resolve(r, "1234", REGION, 1, false, on_done, &a), QFS_PROTOCOL);
    assert_int_equal(registry_resolve(r, ACCOUNT, "eu-west-1.*", 1, false, on_done, &a), QFS_PROTOCOL);
    assert_int_equal(a.n, 0);
    assert_int_equal(F.kv_calls, 0);
}

/* Runs queued store answers until a Qualys answer is next (or n have run). */
static void pump_store(int n)
{
    for (int i = 0; i < n && F.head && F.head->is_kv; i++) {
        struct pending *p = F.head;
        F.head = p->next;
        if (!F.head) F.tail = NULL;
        struct qfs_kv_result res = {.status = p->status, .exists = p->exists, .not_owner = p->not_owner,
                                    .value = p->value, .len = p->value ? strlen(p->value) : 0};
        p->kcb(&res, p->arg);
        free(p->value);
        free(p);
    }
}

static struct registry *fresh(void)
{
    struct registry_config cfg = {.role_name = "QualysEcrScanRole", .account_type = "Global",
                                  .holder = "test-host:1"};
    struct registry *r = NULL;
    assert_int_equal(registry_new(&cfg, &store_port, &qualys_port, &r), QFS_OK);
    return r;
}

static void assert_sent_back(const struct answer *a)
{
    assert_int_equal(a->n, 1);
    assert_int_equal(a->verdict, REGISTRY_RETRY);
    assert_int_equal(a->delay_ms, 0);
    assert_string_equal(a->detail, "qfs-registry is stopping");
}

static void test_close_sends_requests_back_and_releases_the_lock(void **state)
{
    struct registry *r = *state;
    struct answer a[3];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 3; i++)
        assert_int_equal(registry_resolve(r, ACCOUNT, REGION, 50, i == 2, on_done, &a[i]), QFS_OK);
    /* The reads, the lock and the second read run; the lookup then waits for Qualys. */
    pump_store(10);
    assert_int_equal(F.calls[OP_FIND], 1);
    assert_non_null(item_of(LOCK_KEY));
    int closed = 0;
    registry_close(r, on_closed, &closed);
    /* Every request goes back to the stream at once (the last delivery too: stopping is not a
     * failure of the registry), and the lock is released before the ports may close. */
    for (int i = 0; i < 3; i++) assert_sent_back(&a[i]);
    assert_null(item_of(LOCK_KEY));
    assert_int_equal(closed, 0);
    unsigned kv_before = F.kv_calls;
    pump(); /* the find answers after the close: nothing more is asked or answered */
    assert_int_equal(closed, 1);
    for (int i = 0; i < 3; i++) assert_int_equal(a[i].n, 1);
    assert_int_equal(F.kv_calls, kv_before);
    assert_int_equal(F.calls[OP_LIST], 0);
    *state = fresh(); /* teardown must not touch the freed rules */
}

static void test_close_while_taking_the_lock_releases_it(void **state)
{
    struct registry *r = *state;
    struct answer a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(registry_resolve(r, ACCOUNT, REGION, 1, false, on_done, &a), QFS_OK);
    pump_store(1); /* the read misses: the lock is asked for (and taken, by this fake) */
    assert_non_null(item_of(LOCK_KEY));
    int closed = 0;
    registry_close(r, on_closed, &closed);
    assert_sent_back(&a);
    assert_int_equal(closed, 0); /* the lock's answer is awaited: it may be ours */
    pump();                      /* it is ours: released, not used */
    assert_null(item_of(LOCK_KEY));
    assert_int_equal(closed, 1);
    assert_int_equal(qualys_calls(), 0);
    *state = fresh();
}

static void test_close_answers_a_request_whose_read_is_pending(void **state)
{
    struct registry *r = *state;
    struct answer a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(registry_resolve(r, ACCOUNT, REGION, 1, false, on_done, &a), QFS_OK);
    int closed = 0;
    registry_close(r, on_closed, &closed);
    assert_int_equal(closed, 1);
    assert_int_equal(a.n, 0);
    assert_int_equal(registry_resolve(r, ACCOUNT, REGION, 1, false, on_done, &a), QFS_UNAVAILABLE);
    pump(); /* the read returns (a closing store answers every pending call) */
    assert_sent_back(&a);
    assert_null(item_of(LOCK_KEY));
    *state = fresh();
}

static void test_config_is_checked(void **state)
{
    struct registry *r = NULL;
    struct registry_config cfg = {.role_name = "bad role name!", .account_type = "Global", .holder = "h:1"};
    assert_int_equal(registry_new(&cfg, &store_port, &qualys_port, &r), QFS_INVALID_ARG);
    cfg.role_name = "QualysEcrScanRole";
    cfg.account_type = "China";
    assert_int_equal(registry_new(&cfg, &store_port, &qualys_port, &r), QFS_INVALID_ARG);
    struct registry_store partial = store_port;
    partial.del_if_value = NULL;
    cfg.account_type = "Global";
    assert_int_equal(registry_new(&cfg, &partial, &qualys_port, &r), QFS_INVALID_ARG);
    assert_null(r);
}

static void test_keys_values_and_delays(void **state)
{
    char key[96];
    registry_key(ACCOUNT, REGION, key, sizeof(key));
    assert_string_equal(key, REG_KEY);
    registry_lock_key(ACCOUNT, REGION, key, sizeof(key));
    assert_string_equal(key, LOCK_KEY);
    char *v = registry_value_encode(UUID_A);
    assert_string_equal(v, "{\"registry_uuid\":\"" UUID_A "\"}");
    char uuid[64];
    assert_true(registry_value_decode(v, strlen(v), uuid, sizeof(uuid)));
    assert_string_equal(uuid, UUID_A);
    free(v);
    assert_false(registry_value_decode("{\"registry_uuid\":42}", 20, uuid, sizeof(uuid)));
    assert_false(registry_value_decode("[", 1, uuid, sizeof(uuid)));
    assert_false(registry_uuid_is_valid("3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a2"));
    assert_false(registry_uuid_is_valid("3f0c6a52x9d1e-4c1b-8a55-0e6b1d0f7a21"));
    assert_true(registry_uuid_is_valid(UUID_A));
    assert_int_equal(registry_retry_delay_ms(false, 1), 5000);
    assert_int_equal(registry_retry_delay_ms(false, 2), 10000);
    assert_int_equal(registry_retry_delay_ms(false, 6), 120000);
    assert_int_equal(registry_retry_delay_ms(false, 1000), 120000);
    assert_int_equal(registry_retry_delay_ms(true, 1), 2000);
    assert_int_equal(registry_retry_delay_ms(true, 3), 8000);
}

/* ---- messages ------------------------------------------------------------------------------ */

static const char request_json[] =
    "{\"schema\":\"qfs.scan_request.v1\",\"account\":\"" ACCOUNT "\",\"region\":\"" REGION "\","
    "\"registry\":\"" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com\",\"repository\":\"web\",\"tag\":\"1.4.2\","
    "\"digest\":\"sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605\","
    "\"image\":\"" ACCOUNT ".dkr.ecr." REGION ".amazonaws.com/web:1.4.2\",\"generation\":1777629600412,"
    "\"requested_at\":\"2026-05-01T10:00:00.412Z\",\"cache_fail_open\":false,\"deploys\":[{"
    "\"event_name\":\"UpdateService\",\"event_id\":\"0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f\","
    "\"event_time\":\"2026-05-01T10:00:00Z\",\"event_account\":\"" ACCOUNT "\",\"event_region\":\"" REGION "\","
    "\"principal\":null,\"task_definition_arn\":null,\"cluster\":\"prod\",\"service\":\"web\","
    "\"containers\":[\"app\"]}]}";

#define IMAGE_KEY ACCOUNT ".dkr.ecr." REGION ".amazonaws.com/web@sha256:4e2a6c0d9b8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605"

static void test_ready_message_is_the_request_with_the_uuid(void **state)
{
    struct qfs_scan_request req;
    char err[256];
    assert_int_equal(qfs_scan_request_decode(request_json, strlen(request_json), &req, err, sizeof(err)), QFS_OK);
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    assert_int_equal(registry_build_ready(&req, UUID_A, &ob), QFS_OK);
    assert_int_equal(ob.n, 1);
    assert_string_equal(ob.items[0].subject, "qfs.scans.ready." ACCOUNT "." REGION);
    assert_string_equal(ob.items[0].msg_id, "ready:" IMAGE_KEY "#1777629600412");
    assert_string_equal(ob.items[0].schema, "qfs.scan_ready.v1");
    struct qfs_scan_ready ready;
    assert_int_equal(qfs_scan_ready_decode(ob.items[0].data, ob.items[0].len, &ready, err, sizeof(err)), QFS_OK);
    assert_string_equal(ready.registry_uuid, UUID_A);
    assert_int_equal(ready.request.generation, 1777629600412LL);
    assert_string_equal(ready.request.image.repository, "web");
    assert_int_equal(ready.request.ndeploys, 1);
    assert_string_equal(ready.request.deploys[0].service, "web");
    qfs_scan_ready_cleanup(&ready);
    qfs_outbox_cleanup(&ob);
    qfs_scan_request_cleanup(&req);
}

static void test_failure_message_carries_the_reason_and_qualys_error(void **state)
{
    struct qfs_scan_request req;
    char err[256];
    assert_int_equal(qfs_scan_request_decode(request_json, strlen(request_json), &req, err, sizeof(err)), QFS_OK);
    struct registry_outcome o = {.verdict = REGISTRY_FAILED, .reason = QFS_SCAN_FAILURE_QUALYS_DENIED,
                                 .status = QFS_DENIED, .detail = "Qualys denied the registry lookup (HTTP 403)",
                                 .error_code = "403 FORBIDDEN", .error_message = ""};
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    assert_int_equal(registry_build_failure(&req, &o, "2026-05-01T10:00:01.000Z", &ob), QFS_OK);
    assert_int_equal(ob.n, 1);
    assert_string_equal(ob.items[0].subject, "qfs.scans.failed." ACCOUNT "." REGION);
    assert_string_equal(ob.items[0].msg_id, "outcome:" IMAGE_KEY "#1777629600412");
    struct qfs_scan_failure f;
    assert_int_equal(qfs_scan_failure_decode(ob.items[0].data, ob.items[0].len, &f, err, sizeof(err)), QFS_OK);
    assert_int_equal(f.reason, QFS_SCAN_FAILURE_QUALYS_DENIED);
    assert_string_equal(f.qualys_error_code, "403 FORBIDDEN");
    assert_null(f.qualys_error_message);
    assert_null(f.registry_uuid);
    assert_string_equal(f.detail, "Qualys denied the registry lookup (HTTP 403)");
    assert_int_equal(f.ndeploys, 1);
    qfs_scan_failure_cleanup(&f);
    qfs_outbox_cleanup(&ob);
    qfs_scan_request_cleanup(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_uuid_needs_no_qualys_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_found_by_registry_uri_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_with_its_connector_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_connector_is_not_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_id_is_read_for_each_connector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_govcloud_partition_and_account_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_create_is_followed_by_a_relist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_answer_without_registry_retries_after_listing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_answered_without_id_is_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_connector_create_lists_connectors_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_403_is_qualys_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_403_on_create_is_qualys_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_is_registry_failed_with_qualys_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_because_it_exists_is_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_is_registry_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryable_backs_off_then_fails_on_the_last_delivery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_burst_makes_one_lookup_and_one_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_across_two_regions_makes_one_lookup_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_held_by_another_replica_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_holder_checks_the_store_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_stored_value_is_looked_up_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_down_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_tokens_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_sends_requests_back_and_releases_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_answers_a_request_whose_read_is_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_while_taking_the_lock_releases_it, setup, teardown),
        cmocka_unit_test(test_config_is_checked),
        cmocka_unit_test(test_keys_values_and_delays),
        cmocka_unit_test(test_ready_message_is_the_request_with_the_uuid),
        cmocka_unit_test(test_failure_message_carries_the_reason_and_qualys_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
