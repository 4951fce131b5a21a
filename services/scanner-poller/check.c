/* qfs-scanner-poller's check of one scan: submit once (recorded first), then look for the image,
 * read its vulnerabilities when done, and end with the outcome or a retry after the poll delay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poller.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/util.h"

#define KEY_MAX (QFS_IMAGE_KEY_MAX + 48)
#define TAG_MAX 129

struct check {
    struct poller_deps *deps;
    struct qfs_scan_ready ready;
    uint64_t n; /* this check's number: the delivery count */
    poller_done_fn cb;
    void *arg;
    char submission_key[KEY_MAX];
    char deploys_key[KEY_MAX];
    char trace[160]; /* the first deploy's event id, for log lines */
    char tag[TAG_MAX];
    char *record; /* the submission record we wrote (to release it if the POST was not applied) */
    char sha[65]; /* the Qualys image once its scan is done, and when it was scanned */
    int64_t scanned_ms;
    bool reread;  /* the record existed when we tried to write it; read it once more */
    /* The outcome being prepared while the joined deploys are read. */
    bool done;
    struct qfs_scan_result result;
    struct poller_failure failure;
    char detail[768];
    char error_code[128];
    char error_message[512];
};

static void end(struct check *c, const struct poller_outcome *o)
{
    c->cb(c->arg, o);
    qfs_scan_ready_cleanup(&c->ready);
    qfs_scan_result_cleanup(&c->result);
    free(c->record);
    free(c);
}

static void retry(struct check *c, int64_t delay_ms, qfs_status st, const char *reason)
{
    struct poller_outcome o = {.verdict = POLLER_RETRY, .delay_ms = delay_ms, .status = st,
                               .reason = reason};
    end(c, &o);
}

static void dead_letter(struct check *c, qfs_status st, const char *reason)
{
    struct poller_outcome o = {.verdict = POLLER_DEAD_LETTER, .status = st, .reason = reason};
    end(c, &o);
}

/* True (and the check ended) when the service is stopping: start nothing new. */
static bool stopping(struct check *c)
{
    if (!c->deps->stopping) return false;
    retry(c, 0, QFS_UNAVAILABLE, "the scanner-poller is stopping");
    return true;
}

/* ---- the outcome ----------------------------------------------------------------------------- */

static void publish(struct check *c, const struct qfs_deploy *joined, size_t njoined)
{
    struct qfs_deploy *deploys;
    size_t ndeploys;
    poller_merge_deploys(c->ready.request.deploys, c->ready.request.ndeploys, joined, njoined,
                         &deploys, &ndeploys);
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    qfs_status st;
    const char *what;
    if (c->done) {
        qfs_deploys_free(c->result.deploys, c->result.ndeploys);
        c->result.deploys = deploys;
        c->result.ndeploys = ndeploys;
        deploys = NULL;
        st = poller_add_result(&ob, &c->result);
        what = "completed";
    } else {
        struct qfs_scan_failure f;
        poller_build_failure(&c->ready, &c->failure, deploys, ndeploys, qfs_now_ms(), &f);
        st = poller_add_failure(&ob, &f);
        qfs_scan_failure_cleanup(&f);
        what = qfs_scan_failure_reason_str(c->failure.reason);
    }
    qfs_deploys_free(deploys, deploys ? ndeploys : 0);
    if (st != QFS_OK) {
        qfs_outbox_cleanup(&ob);
        dead_letter(c, QFS_INTERNAL, "the scan outcome could not be encoded");
        return;
    }
    struct poller_outcome o = {.verdict = POLLER_PUBLISH, .outbox = &ob, .what = what};
    end(c, &o);
    qfs_outbox_cleanup(&ob);
}

static void on_joined(const struct qfs_kv_result *r, void *arg)
{
    struct check *c = arg;
    if (stopping(c)) return;
    if (r->status != QFS_OK && r->status != QFS_NOT_FOUND) {
        if (!poller_is_last_check(&c->deps->schedule, c->n)) {
            char why[160];
            snprintf(why, sizeof(why), "cache store: reading the joined deploys: %s",
                     qfs_status_str(r->status));
            retry(c, poller_delay_ms(&c->deps->schedule, c->n), r->status, why);
            return;
        }
        /* The last check: the outcome matters more than the deploys that joined late. */
        qfs_warn("publishing without the deploys that joined the scan", "trace_id", c->trace,
                 "status", qfs_status_str(r->status));
    }
    size_t n = r->status == QFS_OK ? r->n : 0;
    struct qfs_deploy *joined = qfs_xcalloc(n ? n : 1, sizeof(*joined));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* An element of deploys:<K>#<G>, as the cache wrote it with qfs_deploy_encode. */
        char err[256];
        if (qfs_deploy_decode(r->items[i], r->lens[i], &joined[k], err, sizeof(err)) == QFS_OK) k++;
        else qfs_warn("ignoring a joined deploy that is not one", "trace_id", c->trace, "key", c->deploys_key,
                      "error", err);
    }
    publish(c, joined, k);
    qfs_deploys_free(joined, k);
}

/* Reads the deploys that joined the scan, then publishes the outcome prepared in c. */
static void conclude(struct check *c)
{
    if (stopping(c)) return;
    qfs_status st = qfs_kv_get_list(c->deps->kv, c->deploys_key, on_joined, c);
    if (st != QFS_OK) {
        struct qfs_kv_result r = {.status = st};
        on_joined(&r, c);
    }
}

static void fail(struct check *c, enum qfs_scan_failure_reason reason, const char *detail,
                 const char *code, const char *message)
{
    c->done = false;
    snprintf(c->detail, sizeof(c->detail), "%s", detail ? detail : "");
    snprintf(c->error_code, sizeof(c->error_code), "%s", code ? code : "");
    snprintf(c->error_message, sizeof(c->error_message), "%s", message ? message : "");
    c->failure = (struct poller_failure){.reason = reason, .detail = c->detail,
                                         .qualys_error_code = c->error_code,
                                         .qualys_error_message = c->error_message,
                                         .checks = (int64_t)c->n};
    conclude(c);
}

/* The scan is not finished (or this check could not tell): check again, or time out. */
static void pending(struct check *c, qfs_status st, const char *why)
{
    const struct poller_schedule *s = &c->deps->schedule;
    if (!poller_is_last_check(s, c->n)) {
        retry(c, poller_delay_ms(s, c->n), st, why);
        return;
    }
    char detail[512];
    snprintf(detail, sizeof(detail), "image not scanned after %llu checks (%s)",
             (unsigned long long)c->n, why);
    fail(c, QFS_SCAN_FAILURE_TIMEOUT, detail, NULL, NULL);
}

/* A Qualys call that did not succeed: pending, or a failure when Qualys refused for good. */
static void qualys_trouble(struct check *c, const char *call, const struct qfs_qualys_response *r)
{
    enum qfs_scan_failure_reason reason = QFS_SCAN_FAILURE_QUALYS_REJECTED;
    char why[320];
    snprintf(why, sizeof(why), "%s: %s (HTTP %ld)%s%.200s", call, qfs_status_str(r->status),
             r->http_code, r->message[0] ? ": " : "", r->message);
    if (poller_classify(false, r->status, r->http_code, &reason) == POLLER_ANSWER_REFUSED) {
        fail(c, reason, why, r->error_code, r->message);
        return;
    }
    pending(c, r->status, why);
}

/* ---- reading the scan ------------------------------------------------------------------------ */

static void on_vulns(const struct qfs_qualys_response *r, void *arg)
{
    struct check *c = arg;
    if (stopping(c)) return;
    if (r->status != QFS_OK) {
        qualys_trouble(c, "GET /images/{sha}/vuln", r);
        return;
    }
    if (!r->vulns->scanned) {
        pending(c, QFS_NOT_FOUND, "the vulnerability list is not ready yet");
        return;
    }
    poller_build_result(&c->ready, c->sha, c->scanned_ms, r->vulns, c->deps->top_findings,
                        c->ready.request.deploys, c->ready.request.ndeploys, qfs_now_ms(), &c->result);
    c->done = true;
    conclude(c);
}

static void on_image(const struct qfs_qualys_response *r, void *arg)
{
    struct check *c = arg;
    if (stopping(c)) return;
    if (r->status == QFS_NOT_FOUND) {
        pending(c, QFS_NOT_FOUND, "Qualys does not list the image yet");
        return;
    }
    if (r->status != QFS_OK) {
        qualys_trouble(c, "GET /images", r);
        return;
    }
    const struct qfs_qualys_image *img = r->image;
    switch (qfs_qualys_image_state(img)) {
    case QFS_QUALYS_SCAN_PENDING:
        pending(c, QFS_NOT_FOUND, "the scan has not finished");
        return;
    case QFS_QUALYS_SCAN_FAILED: {
        char detail[256];
        snprintf(detail, sizeof(detail), "Qualys scanStatus %s", img->scan_status[0] ? img->scan_status : "null");
        fail(c, QFS_SCAN_FAILURE_SCAN_FAILED, detail,
             img->scan_error_code[0] ? img->scan_error_code : img->scan_status, img->scan_error_message);
        return;
    }
    case QFS_QUALYS_SCAN_DONE: break;
    }
    snprintf(c->sha, sizeof(c->sha), "%s", img->sha);
    c->scanned_ms = img->last_scanned_ms;
    qfs_status st = c->deps->qualys.image_vulns(c->deps->qualys.impl, c->sha, on_vulns, c);
    if (st != QFS_OK) pending(c, st, "GET /images/{sha}/vuln could not be sent");
}

static void look_for_image(struct check *c)
{
    if (stopping(c)) return;
    const struct qfs_image_id *img = &c->ready.request.image;
    qfs_status st = c->deps->qualys.find_image(c->deps->qualys.impl, img->registry, img->repository,
                                               c->tag, img->digest, on_image, c);
    if (st == QFS_PROTOCOL)
        fail(c, QFS_SCAN_FAILURE_QUALYS_REJECTED, "the image cannot be named in a Qualys query", NULL, NULL);
    else if (st != QFS_OK)
        pending(c, st, "GET /images could not be sent");
}

/* ---- submitting ------------------------------------------------------------------------------ */

static void on_released(const struct qfs_kv_result *r, void *arg)
{
    struct check *c = arg;
    if (r->status != QFS_OK)
        qfs_warn("the submission record of an unsent schedule stays; the scan will time out",
                 "trace_id", c->trace, "key", c->submission_key, "status", qfs_status_str(r->status));
    if (stopping(c)) return;
    pending(c, QFS_UNAVAILABLE, c->detail);
}

/* The POST was certainly not applied: remove our record so that a later check submits again. */
static void release(struct check *c, const char *why)
{
    snprintf(c->detail, sizeof(c->detail), "%s", why);
    qfs_status st = qfs_kv_del_if_value(c->deps->kv, c->submission_key, c->record, strlen(c->record),
                                        on_released, c);
    if (st != QFS_OK) {
        struct qfs_kv_result r = {.status = st};
        on_released(&r, c);
    }
}

static void on_posted(const struct qfs_qualys_response *r, void *arg)
{
    struct check *c = arg;
    if (stopping(c)) return;
    enum qfs_scan_failure_reason reason = QFS_SCAN_FAILURE_QUALYS_REJECTED;
    char why[320];
    snprintf(why, sizeof(why), "POST /registry/{id}/schedule: %s (HTTP %ld)%s%.200s",
             qfs_status_str(r->status), r->http_code, r->message[0] ? ": " : "", r->message);
    switch (poller_classify(true, r->status, r->http_code, &reason)) {
    case POLLER_ANSWER_OK:
        qfs_info("scan submitted", "trace_id", c->trace, "key", c->submission_key, "tag", c->tag,
                 "schedule_uuid", r->uuid);
        if (r->uuid && r->uuid[0]) {
            /* Worth keeping for operators; the scan does not depend on it. */
            char *value = poller_submission_encode(c->tag, r->uuid, qfs_now_ms());
            qfs_kv_put(c->deps->kv, c->submission_key, value, strlen(value),
                       c->deps->submission_ttl_s, NULL, NULL);
            free(value);
        }
        break;
    case POLLER_ANSWER_UNKNOWN:
        qfs_warn("schedule outcome unknown; not sending it again, polling", "trace_id", c->trace,
                 "key", c->submission_key, "reason", why);
        break;
    case POLLER_ANSWER_RETRY:
        release(c, why);
        return;
    case POLLER_ANSWER_REFUSED:
        fail(c, reason, why, r->error_code, r->message);
        return;
    }
    look_for_image(c);
}

static void post_schedule(struct check *c)
{
    if (stopping(c)) return;
    const struct qfs_image_id *img = &c->ready.request.image;
    /* Qualys takes names of up to 128 characters: the generation first, so a cut keeps it. */
    char *name = qfs_xasprintf("qfs-%lld-%s:%s", (long long)c->ready.request.generation,
                               img->repository, c->tag);
    if (strlen(name) > 128) name[128] = '\0';
    qfs_status st = c->deps->qualys.create_schedule(c->deps->qualys.impl, c->ready.registry_uuid,
                                                    img->repository, c->tag, name, on_posted, c);
    free(name);
    if (st == QFS_PROTOCOL)
        fail(c, QFS_SCAN_FAILURE_QUALYS_REJECTED, "the registry, repository or tag cannot be sent to Qualys",
             NULL, NULL);
    else if (st != QFS_OK)
        release(c, "POST /registry/{id}/schedule could not be sent");
}

static void read_submission(struct check *c);

static void on_recorded(const struct qfs_kv_result *r, void *arg)
{
    struct check *c = arg;
    if (stopping(c)) return;
    if (r->status != QFS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "cache store: recording the submission: %s", qfs_status_str(r->status));
        pending(c, r->status, why);
        return;
    }
    if (!r->exists) {
        post_schedule(c);
        return;
    }
    /* Another check (a replica, or ours before a crash) recorded it first: never POST again. */
    if (!c->reread) {
        c->reread = true;
        read_submission(c);
        return;
    }
    pending(c, QFS_UNAVAILABLE, "the submission record changed while it was read");
}

static void submit(struct check *c, const char *tag)
{
    if (stopping(c)) return;
    snprintf(c->tag, sizeof(c->tag), "%s", tag);
    free(c->record);
    c->record = poller_submission_encode(tag, NULL, qfs_now_ms());
    qfs_status st = qfs_kv_put_if_absent(c->deps->kv, c->submission_key, c->record,
                                         strlen(c->record), c->deps->submission_ttl_s, on_recorded, c);
    if (st != QFS_OK) {
        struct qfs_kv_result r = {.status = st};
        on_recorded(&r, c);
    }
}

static void on_tag(void *arg, qfs_status st, const char *tag, const char *detail)
{
    struct check *c = arg;
    if (stopping(c)) return;
    char why[512];
    if (st == QFS_OK && tag) {
        if (!qfs_qualys_tag_is_valid(tag) || strlen(tag) >= sizeof(c->tag)) {
            fail(c, QFS_SCAN_FAILURE_UNTAGGED_DIGEST, "no tag of the digest can be sent to Qualys", NULL, NULL);
            return;
        }
        submit(c, tag);
    } else if (st == QFS_OK) {
        fail(c, QFS_SCAN_FAILURE_UNTAGGED_DIGEST, "no tag points at the digest in ECR", NULL, NULL);
    } else if (st == QFS_NOT_FOUND) {
        fail(c, QFS_SCAN_FAILURE_IMAGE_NOT_FOUND, "ECR has no image with the digest", NULL, NULL);
    } else if (qfs_status_is_retryable(st)) {
        snprintf(why, sizeof(why), "ECR DescribeImages: %s%s%.300s", qfs_status_str(st),
                 detail && *detail ? ": " : "", detail ? detail : "");
        pending(c, st, why);
    } else {
        snprintf(why, sizeof(why), "no tag of the digest could be found: %s%s%.300s",
                 qfs_status_str(st), detail && *detail ? ": " : "", detail ? detail : "");
        fail(c, QFS_SCAN_FAILURE_UNTAGGED_DIGEST, why, NULL, NULL);
    }
}

/* Nothing was submitted yet: the record's tag, or one ECR knows for the digest. */
static void choose_tag(struct check *c)
{
    const struct qfs_image_id *img = &c->ready.request.image;
    if (img->tag) {
        submit(c, img->tag);
        return;
    }
    qfs_status st = c->deps->ecr.find_tag(c->deps->ecr.impl, img, on_tag, c);
    if (st != QFS_OK) on_tag(c, st, NULL, "the lookup could not be started");
}

static void on_submission(const struct qfs_kv_result *r, void *arg)
{
    struct check *c = arg;
    if (stopping(c)) return;
    if (r->status == QFS_OK) {
        if (poller_submission_tag(r->value, r->len, c->tag, sizeof(c->tag)) != QFS_OK) {
            if (!c->ready.request.image.tag) {
                dead_letter(c, QFS_PROTOCOL, "the submission record of the scan is unreadable");
                return;
            }
            qfs_warn("unreadable submission record; polling by the record's tag", "trace_id", c->trace,
                     "key", c->submission_key);
            snprintf(c->tag, sizeof(c->tag), "%s", c->ready.request.image.tag);
        }
        look_for_image(c);
    } else if (r->status == QFS_NOT_FOUND && !c->reread) {
        choose_tag(c);
    } else {
        char why[160];
        snprintf(why, sizeof(why), "cache store: reading the submission: %s", qfs_status_str(r->status));
        pending(c, r->status == QFS_NOT_FOUND ? QFS_UNAVAILABLE : r->status, why);
    }
}

static void read_submission(struct check *c)
{
    if (stopping(c)) return;
    qfs_status st = qfs_kv_get(c->deps->kv, c->submission_key, on_submission, c);
    if (st != QFS_OK) {
        struct qfs_kv_result r = {.status = st};
        on_submission(&r, c);
    }
}

void poller_check(struct poller_deps *deps, struct qfs_scan_ready *ready, uint64_t check,
                  poller_done_fn cb, void *arg)
{
    struct check *c = qfs_xcalloc(1, sizeof(*c));
    c->deps = deps;
    c->ready = *ready;
    memset(ready, 0, sizeof(*ready));
    c->n = check ? check : 1;
    c->cb = cb;
    c->arg = arg;
    if (c->ready.request.ndeploys && c->ready.request.deploys[0].event_id)
        snprintf(c->trace, sizeof(c->trace), "%s", c->ready.request.deploys[0].event_id);
    if (poller_store_key("submission", &c->ready.request, c->submission_key, sizeof(c->submission_key)) != QFS_OK ||
        poller_store_key("deploys", &c->ready.request, c->deploys_key, sizeof(c->deploys_key)) != QFS_OK) {
        dead_letter(c, QFS_INTERNAL, "the image has no cache key");
        return;
    }
    read_submission(c);
}
