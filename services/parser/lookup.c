/* qfs-parser's lookups: task definitions through ECS and tags through ECR, in the account that
 * owns them (through its role when it is not ours), and the task definition cache. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"
#include "qfs/aws_ecr.h"
#include "qfs/aws_ecs.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/proto.h"
#include "qfs/util.h"

struct job {
    struct parser_deps deps;
    struct parser_plan plan;
    bool may_retry;
    void (*needs_lookup)(void *arg, const char *arn);
    parser_done_fn cb;
    void *arg;
    size_t pending;
    qfs_status retry;       /* first retryable failure, QFS_OK when none */
    char retry_reason[512];
    struct parser_image *images;
    size_t nimages;
    bool grouped;
};

/* One lookup in flight. */
struct step {
    struct job *job;
    char *arn;               /* task definition lookup */
    size_t image;            /* digest lookup: index into job->images */
    bool is_digest;
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
    char partition[16];
    struct parser_digest_waiter waiter;  /* digest lookup: answered through it */
    struct parser_digest_flight *flight; /* the shared lookup this step performs, when it does */
    char key[QFS_IMAGE_KEY_MAX];         /* digest lookup: the image key, for the memo */
};

static void step_free(struct step *s)
{
    free(s->arn);
    free(s);
}

static void remember(struct job *job, const char *arn, const struct parser_container *c, size_t n,
                     const struct qfs_ecs_task_definition *td);

static void finish(struct job *job)
{
    if (job->retry == QFS_OK && job->plan.remember_arn)
        remember(job, job->plan.remember_arn, job->plan.containers, job->plan.ncontainers, NULL);
    if (job->retry != QFS_OK)
        job->cb(job->arg, job->retry, job->retry_reason, &job->plan, NULL, 0);
    else
        job->cb(job->arg, QFS_OK, NULL, &job->plan, job->images, job->nimages);
    parser_images_free(job->images, job->nimages);
    parser_plan_cleanup(&job->plan);
    free(job);
}

static void note_retry(struct job *job, qfs_status st, const char *what, const char *detail)
{
    if (job->retry != QFS_OK) return;
    job->retry = qfs_status_is_retryable(st) ? st : QFS_UNAVAILABLE;
    snprintf(job->retry_reason, sizeof(job->retry_reason), "%s: %s%s%.400s", what, qfs_status_str(st),
             detail && *detail ? ": " : "", detail ? detail : "");
}

static void start_digests(struct job *job);

/* The cache key of a task definition's containers. */
static char *taskdef_key(const char *arn)
{
    return qfs_xasprintf("taskdef:%s", arn);
}

/* Adds the containers of a cached task definition ([{"name","image"}...]); false when the value is
 * not such a list (then ECS is asked instead). */
static bool add_cached_containers(struct job *job, const char *arn, const char *value, size_t len)
{
    cJSON *list = cJSON_ParseWithLength(value, len);
    bool ok = cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        const cJSON *image = cJSON_GetObjectItemCaseSensitive(c, "image");
        if (!cJSON_IsString(name) || !cJSON_IsString(image)) ok = false;
    }
    if (ok) {
        cJSON_ArrayForEach(c, list) {
            parser_plan_add_container(&job->plan, cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring,
                                      cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring, NULL, arn);
        }
    }
    cJSON_Delete(list);
    return ok;
}

/* Remembers a task definition's containers for later deploys of it (best effort: a failed write
 * only costs a DescribeTaskDefinition later). */
static void remember(struct job *job, const char *arn, const struct parser_container *c, size_t n,
                     const struct qfs_ecs_task_definition *td)
{
    if (!job->deps.kv || !arn) return;
    cJSON *list = cJSON_CreateArray();
    size_t count = td ? td->ncontainers : n;
    for (size_t i = 0; i < count; i++) {
        const char *name = td ? td->containers[i].name : c[i].name;
        const char *image = td ? td->containers[i].image : c[i].image;
        if (!name || !image) continue;
        if (!td && c[i].task_definition_arn && strcmp(c[i].task_definition_arn, arn) != 0) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "image", image);
        cJSON_AddItemToArray(list, o);
    }
    char *json = cJSON_GetArraySize(list) ? cJSON_PrintUnformatted(list) : NULL;
    cJSON_Delete(list);
    if (json) {
        char *key = taskdef_key(arn);
        qfs_kv_put(job->deps.kv, key, json, strlen(json), job->deps.taskdef_ttl_s, NULL, NULL);
        free(key);
        free(json);
    }
}

static void step_done(struct job *job)
{
    if (--job->pending > 0) return;
    if (!job->grouped && job->retry == QFS_OK) {
        start_digests(job);
        return;
    }
    finish(job);
}

/* ---- credentials ------------------------------------------------------------------------------ */

static void digest_settle(struct step *s, const struct parser_digest_outcome *o);

typedef void (*with_creds_fn)(struct step *s, const struct qfs_aws_credentials *creds);

struct creds_wait {
    struct step *step;
    with_creds_fn fn;
};

static void on_role(qfs_status st, const struct qfs_aws_credentials *creds, void *arg)
{
    struct creds_wait *w = arg;
    struct step *s = w->step;
    with_creds_fn fn = w->fn;
    free(w);
    if (st == QFS_OK) {
        fn(s, creds);
        return;
    }
    struct job *job = s->job;
    char role[300];
    qfs_aws_role_arn(s->partition, s->account, job->deps.role_name, role, sizeof(role));
    bool final = st == QFS_DENIED || st == QFS_NOT_FOUND || st == QFS_PROTOCOL;
    if (s->is_digest) {
        char why[400], give_up[400];
        snprintf(why, sizeof(why), "cannot assume %s", role);
        snprintf(give_up, sizeof(give_up), "cannot assume %s: %s", role, qfs_status_str(st));
        struct parser_digest_outcome o = {.unresolved = final ? why : NULL, .retry = st, .what = "AssumeRole",
                                          .detail = role, .give_up = give_up};
        digest_settle(s, &o);
        return;
    }
    if (final) {
        char why[400];
        snprintf(why, sizeof(why), "cannot assume %s", role);
        parser_plan_add_skip(&job->plan, QFS_SKIP_ACCESS_DENIED, why, NULL, s->arn);
    } else {
        note_retry(job, st, "AssumeRole", role);
    }
    step_free(s);
    step_done(job);
}

/* Runs fn with the credentials for s->account: ours, or its role's. */
static void with_creds(struct step *s, with_creds_fn fn)
{
    struct job *job = s->job;
    char role[300];
    qfs_status rs = qfs_aws_role_for(job->deps.hub_account, s->partition, s->account, job->deps.role_name,
                                     role, sizeof(role));
    if (rs == QFS_OK && !role[0]) {
        fn(s, NULL);
        return;
    }
    if (rs != QFS_OK) {
        if (s->is_digest) {
            struct parser_digest_outcome o = {.unresolved = "no valid role ARN for the account", .reusable = true};
            digest_settle(s, &o);
            return;
        }
        parser_plan_add_skip(&job->plan, QFS_SKIP_ACCESS_DENIED, "no valid role ARN for the account",
                             NULL, s->arn);
        step_free(s);
        step_done(job);
        return;
    }
    struct creds_wait *w = qfs_xcalloc(1, sizeof(*w));
    w->step = s;
    w->fn = fn;
    if (qfs_aws_sts_assume_role(job->deps.sts, role, on_role, w) != QFS_OK) {
        free(w);
        note_retry(job, QFS_UNAVAILABLE, "AssumeRole", role);
        step_free(s);
        step_done(job);
    }
}

/* ---- task definitions ------------------------------------------------------------------------- */

/* account, region and partition of an ECS ARN (already validated by the plan). */
static void arn_parts(const char *arn, char account[QFS_ACCOUNT_LEN + 1], char region[QFS_REGION_MAX + 1],
                      char partition[16])
{
    /* arn:<partition>:ecs:<region>:<account>:task-definition/... */
    const char *f[6] = {0};
    const char *p = arn;
    for (int i = 0; i < 6 && p; i++) {
        f[i] = p;
        p = strchr(p, ':');
        if (p) p++;
    }
    snprintf(partition, 16, "%.*s", f[2] ? (int)(f[2] - f[1] - 1) : 0, f[1] ? f[1] : "");
    snprintf(region, QFS_REGION_MAX + 1, "%.*s", f[4] ? (int)(f[4] - f[3] - 1) : 0, f[3] ? f[3] : "");
    snprintf(account, QFS_ACCOUNT_LEN + 1, "%.12s", f[4] ? f[4] : "");
}

static void on_task_definition(const struct qfs_aws_response *r, const struct qfs_ecs_task_definition *td,
                               void *arg)
{
    struct step *s = arg;
    struct job *job = s->job;
    if (r->status == QFS_OK) {
        remember(job, s->arn, NULL, 0, td);
        for (size_t i = 0; i < td->ncontainers; i++) {
            if (!td->containers[i].image) {
                parser_plan_add_skip(&job->plan, QFS_SKIP_INVALID_IMAGE,
                                     "container definition has no image", NULL, s->arn);
                continue;
            }
            parser_plan_add_container(&job->plan, td->containers[i].name, td->containers[i].image,
                                      NULL, s->arn);
        }
    } else if (r->status == QFS_NOT_FOUND) {
        parser_plan_add_skip(&job->plan, QFS_SKIP_TASK_DEFINITION_NOT_FOUND, r->error_message, NULL,
                             s->arn);
    } else if (r->status == QFS_DENIED) {
        char why[400];
        snprintf(why, sizeof(why), "DescribeTaskDefinition: %s", r->error_code);
        parser_plan_add_skip(&job->plan, QFS_SKIP_ACCESS_DENIED, why, NULL, s->arn);
    } else {
        note_retry(job, r->status, "DescribeTaskDefinition", r->error_code);
    }
    step_free(s);
    step_done(job);
}

static void describe_with(struct step *s, const struct qfs_aws_credentials *creds)
{
    struct job *job = s->job;
    if (qfs_ecs_describe_task_definition(job->deps.aws, s->arn, s->region, creds, on_task_definition, s) !=
        QFS_OK) {
        note_retry(job, QFS_UNAVAILABLE, "DescribeTaskDefinition", "not started");
        step_free(s);
        step_done(job);
    }
}

static void on_cached_taskdef(const struct qfs_kv_result *r, void *arg)
{
    struct step *s = arg;
    struct job *job = s->job;
    if (r->status == QFS_OK && add_cached_containers(job, s->arn, r->value, r->len)) {
        step_free(s);
        step_done(job);
        return;
    }
    /* Not cached (or the store is away): ask ECS. */
    with_creds(s, describe_with);
}

/* Looks the task definition up in the cache first, then in ECS. */
static void lookup_task_definition(struct step *s)
{
    struct job *job = s->job;
    if (job->deps.kv) {
        char *key = taskdef_key(s->arn);
        qfs_status st = qfs_kv_get(job->deps.kv, key, on_cached_taskdef, s);
        free(key);
        if (st == QFS_OK) return;
    }
    with_creds(s, describe_with);
}

static void start_lookups(struct job *job)
{
    job->pending = 1; /* held until every lookup has started */
    for (size_t i = 0; i < job->plan.nlookups; i++) {
        const char *arn = job->plan.lookups[i];
        if (!job->deps.aws) {
            if (job->needs_lookup) job->needs_lookup(job->arg, arn);
            continue;
        }
        struct step *s = qfs_xcalloc(1, sizeof(*s));
        s->job = job;
        s->arn = qfs_xstrdup(arn);
        arn_parts(arn, s->account, s->region, s->partition);
        job->pending++;
        lookup_task_definition(s);
    }
    step_done(job);
}

/* ---- digests ---------------------------------------------------------------------------------- */

static struct step *step_of(struct parser_digest_waiter *w)
{
    return (struct step *)((char *)w - offsetof(struct step, waiter));
}

/* One deploy's image gets the outcome of a tag lookup, its own or one it joined. */
static void digest_answered(struct parser_digest_waiter *w, const struct parser_digest_outcome *o)
{
    struct step *s = step_of(w);
    struct job *job = s->job;
    struct qfs_image_record *rec = &job->images[s->image].record;
    if (o->digest) rec->image.digest = qfs_xstrdup(o->digest);
    else if (o->unresolved) rec->digest_unresolved = qfs_xstrdup(o->unresolved);
    else if (job->may_retry) note_retry(job, o->retry, o->what, o->detail);
    else rec->digest_unresolved = qfs_xstrdup(o->give_up);
    step_free(s);
    step_done(job);
}

/* Ends s's lookup: through the shared flight when it has one, so every deploy waiting is answered. */
static void digest_settle(struct step *s, const struct parser_digest_outcome *o)
{
    if (s->flight) parser_digests_end(s->job->deps.digests, s->flight, o);
    else digest_answered(&s->waiter, o);
}

static void on_image(const struct qfs_aws_response *r, const struct qfs_ecr_image *img, void *arg)
{
    struct step *s = arg;
    const struct qfs_image_id *id = &s->job->images[s->image].record.image;
    char *why = NULL, give_up[128];
    snprintf(give_up, sizeof(give_up), "ECR unavailable: %s", qfs_status_str(r->status));
    struct parser_digest_outcome o = {.retry = r->status, .what = "DescribeImages", .detail = r->error_code,
                                      .give_up = give_up};
    if (r->status == QFS_OK && img && qfs_proto_is_digest(img->digest)) {
        o.digest = img->digest;
        o.reusable = true;
    } else if (r->status == QFS_OK || r->status == QFS_NOT_FOUND) {
        o.unresolved = why = qfs_xasprintf("ECR has no image %s:%s", id->repository, id->tag);
        o.reusable = true;
    } else if (r->status == QFS_DENIED) {
        o.unresolved = why = qfs_xasprintf("ECR DescribeImages denied: %s", r->error_code);
    }
    digest_settle(s, &o);
    free(why);
}

static void digest_with(struct step *s, const struct qfs_aws_credentials *creds)
{
    struct job *job = s->job;
    const struct qfs_image_id *id = &job->images[s->image].record.image;
    struct qfs_ecr_query q = {.registry_id = id->account, .repository = id->repository, .tag = id->tag};
    if (qfs_ecr_describe_image(job->deps.aws, &q, id->region, creds, on_image, s) != QFS_OK) {
        struct parser_digest_outcome o = {.unresolved = "ECR request could not be built"};
        digest_settle(s, &o);
    }
}

int64_t parser_answer_not_before(const struct parser_plan *plan)
{
    int64_t t, not_before = INT64_MAX;
    if (qfs_proto_parse_timestamp(plan->deploy.event_time, &t)) not_before = t + PARSER_EVENT_TIME_SLACK_MS;
    /* An event reaches the stream after its deploy (CloudTrail's by minutes): a burst of deploys
     * stamped this very second still shares a lookup that began after they were stored. */
    if (plan->stored_ms > 0 && plan->stored_ms < not_before) not_before = plan->stored_ms;
    return not_before;
}

/* s's tag lookup through the memo: the answer of a lookup begun after its deploy, else a turn
 * behind the one in flight, else a lookup of its own. */
static void digest_lookup(struct step *s)
{
    struct job *job = s->job;
    struct parser_digests *m = job->deps.digests;
    if (m && s->key[0]) {
        int64_t now = qfs_now_ms();
        if (parser_digests_join(m, s->key, parser_answer_not_before(&job->plan), now, &s->waiter)) return;
        if (parser_digests_wait_turn(m, s->key, &s->waiter)) return;
        s->flight = parser_digests_begin(m, s->key, now, &s->waiter);
    }
    with_creds(s, digest_with);
}

static void digest_turn(struct parser_digest_waiter *w)
{
    digest_lookup(step_of(w));
}

static void start_digests(struct job *job)
{
    job->grouped = true;
    parser_group(&job->plan, &job->images, &job->nimages);
    job->pending = 1;
    for (size_t i = 0; i < job->nimages; i++) {
        struct qfs_image_record *rec = &job->images[i].record;
        if (rec->image.digest) continue;
        if (!job->deps.aws) {
            rec->digest_unresolved = qfs_xstrdup("AWS is not configured, so the tag was not resolved");
            continue;
        }
        struct step *s = qfs_xcalloc(1, sizeof(*s));
        s->job = job;
        s->is_digest = true;
        s->image = i;
        s->waiter.answered = digest_answered;
        s->waiter.turn = digest_turn;
        snprintf(s->account, sizeof(s->account), "%s", rec->image.account);
        snprintf(s->region, sizeof(s->region), "%s", rec->image.region);
        snprintf(s->partition, sizeof(s->partition), "%s", job->images[i].partition);
        job->pending++;
        if (qfs_image_key_format(s->key, sizeof(s->key), &rec->image) != QFS_OK) s->key[0] = '\0';
        digest_lookup(s);
    }
    step_done(job);
}

void parser_resolve(const struct parser_deps *deps, struct parser_plan *plan, bool may_retry,
                    void (*needs_lookup)(void *arg, const char *arn), parser_done_fn cb, void *arg)
{
    struct job *job = qfs_xcalloc(1, sizeof(*job));
    job->deps = *deps;
    job->plan = *plan;
    memset(plan, 0, sizeof(*plan));
    job->may_retry = may_retry;
    job->needs_lookup = needs_lookup;
    job->cb = cb;
    job->arg = arg;
    start_lookups(job);
}
