/* qfs-parser's rules: which events name which images, and what becomes of each image. */
#include "parser.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/image_ref.h"
#include "qfs/log.h"
#include "qfs/util.h"

#define DETAIL_TYPE_API_CALL "AWS API Call via CloudTrail"
#define DETAIL_TYPE_TASK_STATE "ECS Task State Change"
#define MAX_FIELD 2048

/* ---- small JSON readers (borrowed results) ------------------------------------------------- */

static const cJSON *obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsObject(v) ? v : NULL;
}

static const cJSON *arr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsArray(v) ? v : NULL;
}

/* A string field, or NULL when absent, not a string, empty or longer than MAX_FIELD. */
static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!cJSON_IsString(v) || !v->valuestring[0]) return NULL;
    size_t n = strlen(v->valuestring);
    if (n > MAX_FIELD || !qfs_utf8_is_valid(v->valuestring, n)) return NULL;
    return v->valuestring;
}

/* Deploy-context fields go into messages: keep only what the schema accepts, else NULL. */
static const char *arn_field(const char *v)
{
    return v && strlen(v) <= 1024 && qfs_proto_is_task_definition_arn(v) ? v : NULL;
}

static const char *cluster_field(const char *v)
{
    return v && strlen(v) <= 1024 && qfs_proto_is_cluster(v) ? v : NULL;
}

static const char *service_field(const char *v)
{
    return v && strlen(v) <= 1024 && qfs_proto_is_ecs_service(v) ? v : NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? qfs_xstrdup(s) : NULL;
}

/* ---- plan ----------------------------------------------------------------------------------- */

bool parser_plan_add_container(struct parser_plan *plan, const char *name, const char *image,
                               const char *digest, const char *task_definition_arn)
{
    if (plan->ncontainers >= PARSER_MAX_CONTAINERS) return false;
    plan->containers = qfs_xrealloc(plan->containers, (plan->ncontainers + 1) * sizeof(*plan->containers));
    struct parser_container *c = &plan->containers[plan->ncontainers++];
    /* ECS names containers [A-Za-z0-9_-]{1,255}; anything else is not trusted into a message. */
    c->name = qfs_xstrdup(name && qfs_proto_is_container_name(name) ? name : "unnamed");
    c->image = dup_or_null(image);
    c->digest = dup_or_null(digest);
    c->task_definition_arn = dup_or_null(task_definition_arn);
    return true;
}

void parser_plan_add_skip(struct parser_plan *plan, enum qfs_skip_reason reason, const char *detail,
                          const char *image, const char *task_definition_arn)
{
    plan->skips = qfs_xrealloc(plan->skips, (plan->nskips + 1) * sizeof(*plan->skips));
    struct qfs_skip *s = &plan->skips[plan->nskips++];
    memset(s, 0, sizeof(*s));
    s->reason = reason;
    s->detail = dup_or_null(detail);
    s->image = dup_or_null(image);
    snprintf(s->account, sizeof(s->account), "%s", plan->deploy.event_account);
    snprintf(s->region, sizeof(s->region), "%s", plan->deploy.event_region);
    qfs_deploy_copy(&s->deploy, &plan->deploy);
    if (task_definition_arn) {
        free(s->deploy.task_definition_arn);
        s->deploy.task_definition_arn = qfs_xstrdup(task_definition_arn);
    }
}

static void add_lookup(struct parser_plan *plan, const char *arn)
{
    for (size_t i = 0; i < plan->nlookups; i++)
        if (strcmp(plan->lookups[i], arn) == 0) return;
    if (plan->nlookups >= PARSER_MAX_LOOKUPS) {
        parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT,
                             "too many task definitions to look up in one event", NULL, arn);
        return;
    }
    plan->lookups = qfs_xrealloc(plan->lookups, (plan->nlookups + 1) * sizeof(char *));
    plan->lookups[plan->nlookups++] = qfs_xstrdup(arn);
}

/* The partition of an ARN ("aws" when it cannot be read). */
static void arn_partition(const char *arn, char out[16])
{
    snprintf(out, 16, "aws");
    if (!arn || strncmp(arn, "arn:", 4) != 0) return;
    const char *p = arn + 4;
    const char *colon = strchr(p, ':');
    if (colon && colon > p && (size_t)(colon - p) < 16) {
        memcpy(out, p, (size_t)(colon - p));
        out[colon - p] = '\0';
    }
}

/* The last path segment of an ARN or a plain name ("cluster/prod" → "prod"). */
static const char *short_name(const char *s)
{
    if (!s) return NULL;
    const char *slash = strrchr(s, '/');
    return slash && slash[1] ? slash + 1 : s;
}

static void set(char **field, const char *value)
{
    if (!value) return;
    free(*field);
    *field = qfs_xstrdup(value);
}

/* A skip about one container (strings copied). */
static void skip_container(struct parser_plan *plan, enum qfs_skip_reason reason, const char *detail,
                           const char *name, const char *image, const char *arn)
{
    parser_plan_add_skip(plan, reason, detail, image, arn);
    struct qfs_skip *s = &plan->skips[plan->nskips - 1];
    s->deploy.containers = qfs_xcalloc(1, sizeof(char *));
    s->deploy.containers[0] = qfs_xstrdup(name && qfs_proto_is_container_name(name) ? name : "unnamed");
    s->deploy.ncontainers = 1;
}

/* Adds the containers of a running task (RunTask response, task state change): each with an image,
 * and a skip for each without one. Returns false when none names an image, so the caller looks
 * the task definition up instead. */
static bool add_task_containers(struct parser_plan *plan, const cJSON *containers, const char *arn,
                                bool with_digest)
{
    bool any = false;
    const cJSON *c;
    cJSON_ArrayForEach(c, containers)
        if (str(c, "image")) any = true;
    if (!any) return false;
    cJSON_ArrayForEach(c, containers) {
        const char *image = str(c, "image");
        if (!image) {
            skip_container(plan, QFS_SKIP_INVALID_IMAGE, "container has no image", str(c, "name"), NULL, arn);
            continue;
        }
        const char *digest = with_digest ? str(c, "imageDigest") : NULL;
        if (digest && !qfs_proto_is_digest(digest)) digest = NULL;
        if (!parser_plan_add_container(plan, str(c, "name"), image, digest, arn)) {
            parser_plan_add_skip(plan, QFS_SKIP_INVALID_IMAGE, "too many containers in one event", image, arn);
            break;
        }
    }
    return true;
}

/* Containers of a containerDefinitions-shaped array. */
static void add_definitions(struct parser_plan *plan, const cJSON *defs, const char *arn)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, defs) {
        const char *name = str(c, "name");
        const char *image = str(c, "image");
        if (!image) {
            parser_plan_add_skip(plan, QFS_SKIP_INVALID_IMAGE, "container definition has no image",
                                 NULL, arn);
            continue;
        }
        if (!parser_plan_add_container(plan, name, image, NULL, arn)) {
            parser_plan_add_skip(plan, QFS_SKIP_INVALID_IMAGE, "too many containers in one event",
                                 image, arn);
            return;
        }
    }
}

static void plan_register(struct parser_plan *plan, const cJSON *req, const cJSON *resp)
{
    const cJSON *td = obj(resp, "taskDefinition");
    const char *arn = str(td, "taskDefinitionArn");
    arn = arn_field(arn);
    set(&plan->deploy.task_definition_arn, arn);
    const cJSON *defs = arr(td, "containerDefinitions");
    if (!defs) defs = arr(req, "containerDefinitions");
    if (!defs) {
        parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT,
                             "RegisterTaskDefinition without containerDefinitions", NULL, NULL);
        return;
    }
    add_definitions(plan, defs, arn);
    if (arn && plan->ncontainers) plan->remember_arn = qfs_xstrdup(arn);
}

static void plan_run_task(struct parser_plan *plan, const cJSON *req, const cJSON *resp)
{
    set(&plan->deploy.cluster, cluster_field(str(req, "cluster")));
    const cJSON *tasks = arr(resp, "tasks");
    if (!tasks || cJSON_GetArraySize(tasks) == 0) {
        /* The call succeeded but placed nothing: say why, from failures[]. */
        struct qfs_buf why;
        qfs_buf_init(&why, 512);
        qfs_buf_puts(&why, "no task started");
        const cJSON *f;
        const char *sep = ": ";
        cJSON_ArrayForEach(f, arr(resp, "failures")) {
            const char *reason = str(f, "reason");
            if (!reason) continue;
            if (qfs_buf_printf(&why, "%s%s", sep, reason) != QFS_OK) break;
            sep = ", ";
        }
        const char *td = str(req, "taskDefinition");
        parser_plan_add_skip(plan, QFS_SKIP_NO_TASKS_STARTED, why.data, NULL,
                             arn_field(td));
        qfs_buf_cleanup(&why);
        return;
    }
    const cJSON *task;
    cJSON_ArrayForEach(task, tasks) {
        const char *arn = str(task, "taskDefinitionArn");
        arn = arn_field(arn);
        set(&plan->deploy.task_definition_arn, arn);
        set(&plan->deploy.cluster, cluster_field(str(task, "clusterArn")));
        const char *group = str(task, "group");
        if (group && strncmp(group, "service:", 8) == 0 && group[8]) set(&plan->deploy.service, service_field(group + 8));
        bool any_image = add_task_containers(plan, arr(task, "containers"), arn, false);
        if (!any_image) {
            /* Prefer the task's full ARN: a bare family may name a newer revision by now. */
            if (arn) add_lookup(plan, arn);
            else
                parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT,
                                     "task has neither container images nor a task definition ARN",
                                     NULL, NULL);
        }
    }
}

static void plan_service(struct parser_plan *plan, const char *event_name, const cJSON *req,
                         const cJSON *resp)
{
    const cJSON *holder = strcmp(event_name, "CreateTaskSet") == 0 ? obj(resp, "taskSet")
                                                                   : obj(resp, "service");
    set(&plan->deploy.cluster, cluster_field(str(req, "cluster")));
    set(&plan->deploy.cluster, cluster_field(str(holder, "clusterArn")));
    set(&plan->deploy.service,
        service_field(str(req, strcmp(event_name, "CreateService") == 0 ? "serviceName" : "service")));
    set(&plan->deploy.service, service_field(str(holder, "serviceName")));
    if (!plan->deploy.service) set(&plan->deploy.service, service_field(short_name(str(holder, "serviceArn"))));
    const char *arn = str(holder, "taskDefinition");
    if (!arn_field(arn)) {
        /* The response always names the full ARN; fall back to the request only if it is one. */
        arn = arn_field(str(req, "taskDefinition"));
    }
    if (!arn) {
        parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT,
                             "no task definition ARN in the response", NULL, NULL);
        return;
    }
    set(&plan->deploy.task_definition_arn, arn);
    add_lookup(plan, arn);
}

static void plan_task_state(struct parser_plan *plan, const cJSON *detail)
{
    const char *arn = str(detail, "taskDefinitionArn");
    arn = arn_field(arn);
    set(&plan->deploy.task_definition_arn, arn);
    set(&plan->deploy.cluster, cluster_field(str(detail, "clusterArn")));
    set(&plan->deploy.principal, str(detail, "startedBy"));
    const char *group = str(detail, "group");
    if (group && strncmp(group, "service:", 8) == 0 && group[8]) set(&plan->deploy.service, service_field(group + 8));
    bool any = add_task_containers(plan, arr(detail, "containers"), arn, true);
    if (!any) {
        if (arn) add_lookup(plan, arn);
        else
            parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT, "task state change names no images",
                                 NULL, NULL);
    }
}

static bool supported_call(const char *name)
{
    static const char *const calls[] = {"RegisterTaskDefinition", "RunTask", "StartTask",
                                        "CreateService", "UpdateService", "CreateTaskSet", NULL};
    for (size_t i = 0; calls[i]; i++)
        if (strcmp(name, calls[i]) == 0) return true;
    return false;
}

void parser_plan(const struct qfs_event *ev, struct parser_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    const cJSON *detail = ev->detail;
    struct qfs_deploy *d = &plan->deploy;
    d->event_id = qfs_xstrdup(ev->id);
    const char *t = str(detail, "eventTime");
    d->event_time = qfs_xstrdup(t && qfs_proto_is_timestamp(t) ? t : ev->time);
    const char *acct = str(detail, "recipientAccountId");
    snprintf(d->event_account, sizeof(d->event_account), "%s",
             qfs_proto_is_account(acct) ? acct : ev->account);
    const char *region = str(detail, "awsRegion");
    snprintf(d->event_region, sizeof(d->event_region), "%s",
             qfs_proto_is_region(region) ? region : ev->region);
    d->principal = dup_or_null(str(obj(detail, "userIdentity"), "arn"));

    bool api_call = ev->detail_type && strcmp(ev->detail_type, DETAIL_TYPE_API_CALL) == 0;
    bool task_state = ev->detail_type && strcmp(ev->detail_type, DETAIL_TYPE_TASK_STATE) == 0;
    const char *name = api_call ? str(detail, "eventName") : NULL;
    if (task_state) {
        d->event_name = qfs_xstrdup(DETAIL_TYPE_TASK_STATE);
    } else if (name && supported_call(name) &&
               (!str(detail, "eventSource") || strcmp(str(detail, "eventSource"), "ecs.amazonaws.com") == 0)) {
        d->event_name = qfs_xstrdup(name);
    } else {
        /* The skip names what arrived, so coverage gaps are visible. */
        const char *dt = ev->detail_type ? ev->detail_type : "(no detail-type)";
        char *what = qfs_xasprintf("%.*s%s%.*s", (int)qfs_utf8_cut(dt, 200), dt, name ? ": " : "",
                                   name ? (int)qfs_utf8_cut(name, 200) : 0, name ? name : "");
        const char *as_received = name ? name : ev->detail_type;
        d->event_name = qfs_xstrdup(as_received && strlen(as_received) <= 128 &&
                                            qfs_proto_is_any_event_name(as_received)
                                        ? as_received : "unknown");
        parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT, what, NULL, NULL);
        free(what);
        return;
    }
    const char *ver = str(detail, "eventVersion");
    if (api_call && ver && strncmp(ver, "1.", 2) != 0) {
        parser_plan_add_skip(plan, QFS_SKIP_UNSUPPORTED_EVENT, "CloudTrail eventVersion is not 1.x",
                             NULL, NULL);
        return;
    }
    if (task_state) {
        plan_task_state(plan, detail);
    } else {
        const char *error = str(detail, "errorCode");
        const cJSON *resp = obj(detail, "responseElements");
        const cJSON *req = obj(detail, "requestParameters");
        /* A RegisterTaskDefinition recorded without its response still names its images. */
        bool request_only = !error && !resp && strcmp(name, "RegisterTaskDefinition") == 0 &&
                            arr(req, "containerDefinitions");
        if (error || (!resp && !request_only)) {
            const char *msg = str(detail, "errorMessage");
            char *why = qfs_xasprintf("%s%s%.*s", error ? error : "no responseElements", msg ? ": " : "",
                                      msg ? (int)qfs_utf8_cut(msg, 400) : 0, msg ? msg : "");
            parser_plan_add_skip(plan, QFS_SKIP_API_CALL_FAILED, why, NULL, NULL);
            free(why);
            return;
        }
        if (strcmp(name, "RegisterTaskDefinition") == 0) plan_register(plan, req, resp);
        else if (strcmp(name, "RunTask") == 0 || strcmp(name, "StartTask") == 0)
            plan_run_task(plan, req, resp);
        else plan_service(plan, name, req, resp);
    }
    const char *arn = plan->deploy.task_definition_arn ? plan->deploy.task_definition_arn
                      : plan->nlookups ? plan->lookups[0] : NULL;
    arn_partition(arn, plan->partition);
}

void parser_plan_cleanup(struct parser_plan *plan)
{
    qfs_deploy_cleanup(&plan->deploy);
    for (size_t i = 0; i < plan->ncontainers; i++) {
        free(plan->containers[i].name);
        free(plan->containers[i].image);
        free(plan->containers[i].digest);
        free(plan->containers[i].task_definition_arn);
    }
    free(plan->containers);
    for (size_t i = 0; i < plan->nlookups; i++) free(plan->lookups[i]);
    free(plan->lookups);
    for (size_t i = 0; i < plan->nskips; i++) qfs_skip_cleanup(&plan->skips[i]);
    free(plan->skips);
    free(plan->remember_arn);
    memset(plan, 0, sizeof(*plan));
}

/* ---- grouping ------------------------------------------------------------------------------- */

static void skip_image(struct parser_plan *plan, enum qfs_skip_reason reason, const char *detail,
                       const struct parser_container *c, const struct qfs_image_ref *ref)
{
    /* The same image skipped again (another task of a RunTask): name the container on that skip. */
    for (size_t i = 0; i < plan->nskips; i++) {
        struct qfs_skip *s = &plan->skips[i];
        if (s->reason != reason || !s->image || strcmp(s->image, c->image) != 0 || s->deploy.ncontainers == 0)
            continue;
        for (size_t k = 0; k < s->deploy.ncontainers; k++)
            if (strcmp(s->deploy.containers[k], c->name) == 0) return;
        if (s->deploy.ncontainers >= QFS_PROTO_MAX_CONTAINERS) return;
        s->deploy.containers = qfs_xrealloc(s->deploy.containers, (s->deploy.ncontainers + 1) * sizeof(char *));
        s->deploy.containers[s->deploy.ncontainers++] = qfs_xstrdup(c->name);
        return;
    }
    skip_container(plan, reason, detail, c->name, c->image, c->task_definition_arn);
    if (ref && ref->digest[0]) plan->skips[plan->nskips - 1].digest = qfs_xstrdup(ref->digest);
}

/* The standard registry host of an ECR image, whatever endpoint variant the reference used, so
 * that one registry has one name in keys, caches and Qualys. */
static char *standard_registry(const struct qfs_image_ref *ref)
{
    const char *suffix = strcmp(ref->partition, "aws-cn") == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    return qfs_xasprintf("%s.dkr.ecr.%s.%s", ref->account, ref->region, suffix);
}

void parser_group(struct parser_plan *plan, struct parser_image **out, size_t *nout)
{
    struct parser_image *images = NULL;
    size_t n = 0;
    for (size_t i = 0; i < plan->ncontainers; i++) {
        const struct parser_container *c = &plan->containers[i];
        struct qfs_image_ref ref;
        char reason[QFS_IMAGE_REF_REASON_SIZE];
        if (qfs_image_ref_parse(c->image, &ref, reason, sizeof(reason)) != QFS_OK) {
            skip_image(plan, QFS_SKIP_INVALID_IMAGE, reason, c, NULL);
            continue;
        }
        if (!qfs_image_ref_is_ecr_private(&ref)) {
            char why[96];
            snprintf(why, sizeof(why), "registry is %s, not private ECR", qfs_image_ref_kind_str(ref.kind));
            skip_image(plan, QFS_SKIP_NOT_ECR, why, c, &ref);
            continue;
        }
        struct qfs_image_id id;
        memset(&id, 0, sizeof(id));
        snprintf(id.account, sizeof(id.account), "%s", ref.account);
        snprintf(id.region, sizeof(id.region), "%s", ref.region);
        id.registry = standard_registry(&ref);
        id.repository = qfs_xstrdup(ref.repository);
        id.tag = ref.tag[0] ? qfs_xstrdup(ref.tag) : ref.digest[0] ? NULL : qfs_xstrdup("latest");
        /* A digest in the reference wins; else the one ECS reported for the running task. */
        id.digest = ref.digest[0] ? qfs_xstrdup(ref.digest) : c->digest ? qfs_xstrdup(c->digest) : NULL;
        id.image = qfs_xstrdup(c->image);

        /* One record per image key (the digest when known): the first container's reference
         * wins, and the record names every container. Two records with one key would share a
         * Nats-Msg-Id and the stream would drop the second. */
        char key[QFS_IMAGE_KEY_MAX], other[QFS_IMAGE_KEY_MAX];
        struct parser_image *hit = NULL;
        if (qfs_image_key_format(key, sizeof(key), &id) == QFS_OK) {
            for (size_t k = 0; k < n && !hit; k++)
                if (qfs_image_key_format(other, sizeof(other), &images[k].record.image) == QFS_OK &&
                    strcmp(key, other) == 0)
                    hit = &images[k];
        }
        if (!hit) {
            images = qfs_xrealloc(images, (n + 1) * sizeof(*images));
            hit = &images[n++];
            memset(hit, 0, sizeof(*hit));
            hit->record.image = id;
            snprintf(hit->partition, sizeof(hit->partition), "%s", ref.partition);
            qfs_deploy_copy(&hit->record.deploy, &plan->deploy);
            free(hit->record.deploy.containers);
            hit->record.deploy.containers = NULL;
            hit->record.deploy.ncontainers = 0;
            if (c->task_definition_arn) set(&hit->record.deploy.task_definition_arn, c->task_definition_arn);
        } else {
            qfs_image_id_cleanup(&id);
        }
        struct qfs_deploy *d = &hit->record.deploy;
        bool named = false;
        for (size_t k = 0; k < d->ncontainers; k++)
            if (strcmp(d->containers[k], c->name) == 0) named = true;
        if (!named && d->ncontainers < QFS_PROTO_MAX_CONTAINERS) {
            d->containers = qfs_xrealloc(d->containers, (d->ncontainers + 1) * sizeof(char *));
            d->containers[d->ncontainers++] = qfs_xstrdup(c->name);
        }
    }
    *out = images;
    *nout = n;
}

void parser_images_free(struct parser_image *images, size_t n)
{
    for (size_t i = 0; i < n; i++) qfs_image_record_cleanup(&images[i].record);
    free(images);
}

/* ---- outputs -------------------------------------------------------------------------------- */

qfs_status parser_build(const struct parser_plan *plan, const struct parser_image *images, size_t n,
                        struct qfs_outbox *ob)
{
    char subject[QFS_SUBJECT_MAX];
    char key[QFS_IMAGE_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        const struct qfs_image_record *r = &images[i].record;
        char *json = NULL;
        if (qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_IMAGES, r->image.account,
                               r->image.region) != QFS_OK ||
            qfs_image_key_format(key, sizeof(key), &r->image) != QFS_OK ||
            qfs_image_record_encode(r, &json) != QFS_OK)
            return QFS_INTERNAL;
        char *id = qfs_xasprintf("image:%s:%s", plan->deploy.event_id, key);
        qfs_outbox_add_take(ob, subject, id, qfs_schema_name(QFS_SCHEMA_IMAGE), json);
        free(id);
    }
    /* Skip ids count per reason in the order found, as proto/subjects.md says. */
    size_t counts[QFS_SKIP_REASON_COUNT] = {0};
    for (size_t i = 0; i < plan->nskips; i++) {
        const struct qfs_skip *s = &plan->skips[i];
        char *json = NULL;
        if (qfs_subject_format(subject, sizeof(subject), QFS_SUBJECT_SCANS_SKIPPED, s->account,
                               s->region) != QFS_OK ||
            qfs_skip_encode(s, &json) != QFS_OK)
            return QFS_INTERNAL;
        char *id = qfs_xasprintf("skip:%s:%s:%zu", plan->deploy.event_id, qfs_skip_reason_str(s->reason),
                                 counts[s->reason]++);
        qfs_outbox_add_take(ob, subject, id, qfs_schema_name(QFS_SCHEMA_SKIP), json);
        free(id);
    }
    return QFS_OK;
}

void parser_print_outbox(const struct qfs_outbox *ob, FILE *out)
{
    for (size_t i = 0; i < ob->n; i++) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "subject", ob->items[i].subject);
        cJSON_AddStringToObject(line, "msg_id", ob->items[i].msg_id ? ob->items[i].msg_id : "");
        cJSON *msg = cJSON_ParseWithLength(ob->items[i].data, ob->items[i].len);
        if (msg) cJSON_AddItemToObject(line, "message", msg);
        char *text = cJSON_PrintUnformatted(line);
        fprintf(out, "%s\n", text);
        free(text);
        cJSON_Delete(line);
    }
}
