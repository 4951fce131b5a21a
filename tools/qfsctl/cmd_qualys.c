/* qfsctl qualys info|registries: what Qualys knows about this deployment. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "qfsctl.h"

/* Account/region pairs one run looks up. */
#define MAX_TARGETS 500

struct call {
    bool done;
    qfs_status status;
    long http_code;
    char error[600];
    struct qfs_qualys_aws_base aws_base;
    struct qfs_qualys_connector *connectors;
    size_t nconnectors;
    bool found;
    struct qfs_qualys_registry registry;
};

static void on_done(const struct qfs_qualys_response *r, void *arg)
{
    struct call *c = arg;
    c->done = true;
    c->status = r->status;
    c->http_code = r->http_code;
    snprintf(c->error, sizeof(c->error), "%s%s%s", r->error_code, *r->error_code && *r->message ? ": " : "",
             r->message);
    if (r->aws_base) c->aws_base = *r->aws_base;
    if (r->connectors && r->nconnectors) {
        c->connectors = qfs_xcalloc(r->nconnectors, sizeof(*c->connectors));
        memcpy(c->connectors, r->connectors, r->nconnectors * sizeof(*c->connectors));
        c->nconnectors = r->nconnectors;
    }
    if (r->registry) {
        c->found = true;
        c->registry = *r->registry;
    }
}

/* Runs one call to its end; false (after saying why) when it could not be made or failed. */
static bool run(struct qfsctl_io *io, qfs_status started, struct call *c, const char *what, bool not_found_ok)
{
    if (started != QFS_OK) {
        fprintf(stderr, "qfsctl qualys: %s could not be asked: %s\n", what, qfs_status_str(started));
        return false;
    }
    qfsctl_io_wait(io, &c->done);
    if (c->status == QFS_OK || (not_found_ok && c->status == QFS_NOT_FOUND)) return true;
    const char *hint = c->status == QFS_DENIED ? " (check QUALYS_* credentials and their permissions)"
                       : c->status == QFS_UNAVAILABLE || c->status == QFS_TIMED_OUT
                           ? " (is QUALYS_GATEWAY_URL / QUALYS_POD right, and the gateway reachable?)"
                           : "";
    fprintf(stderr, "qfsctl qualys: %s failed: %s", what, qfs_status_str(c->status));
    if (c->http_code) fprintf(stderr, " (HTTP %ld)", c->http_code);
    if (c->error[0]) fprintf(stderr, " %s", c->error);
    fprintf(stderr, "%s\n", hint);
    return false;
}

static int info(struct qfsctl_io *io, bool json)
{
    struct call base = {0}, conns = {0};
    bool ok = run(io, qfs_qualys_aws_base(io->qualys, on_done, &base), &base, "GET /registry/aws-base", false);
    if (ok) ok = run(io, qfs_qualys_list_connectors(io->qualys, on_done, &conns), &conns,
                     "GET /registry/aws/connectors", false);
    if (ok && json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "account_id", base.aws_base.account_id);
        cJSON_AddStringToObject(root, "external_id", base.aws_base.external_id);
        cJSON *list = cJSON_AddArrayToObject(root, "connectors");
        for (size_t i = 0; i < conns.nconnectors; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", conns.connectors[i].name);
            cJSON_AddStringToObject(o, "arn", conns.connectors[i].arn);
            cJSON_AddItemToArray(list, o);
        }
        char *text = cJSON_PrintUnformatted(root);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    } else if (ok) {
        printf("Qualys AWS account: %s\n", base.aws_base.account_id);
        printf("External ID:        %s\n", base.aws_base.external_id);
        printf("The ECR role of each member account (QFS_ECR_ROLE_NAME) must trust arn:aws:iam::%s:root\n"
               "with the condition sts:ExternalId = %s.\n",
               base.aws_base.account_id, base.aws_base.external_id);
        printf("\nAWS connectors: %zu\n", conns.nconnectors);
        struct qfsctl_table t;
        qfsctl_table_init(&t, 2);
        const char *head[] = {"NAME", "ROLE ARN"};
        if (conns.nconnectors) qfsctl_table_add(&t, head);
        for (size_t i = 0; i < conns.nconnectors; i++) {
            const char *row[] = {conns.connectors[i].name, conns.connectors[i].arn};
            qfsctl_table_add(&t, row);
        }
        struct qfs_buf out;
        qfs_buf_init(&out, 0);
        qfsctl_table_render(&t, &out);
        if (out.len) fwrite(out.data, 1, out.len, stdout);
        qfs_buf_cleanup(&out);
        qfsctl_table_cleanup(&t);
    }
    free(conns.connectors);
    return ok ? QFSCTL_EXIT_OK : QFSCTL_EXIT_FAIL;
}

/* ---- registries -------------------------------------------------------------------------------- */

struct target {
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
};

struct targets {
    struct target *items;
    size_t n;
};

static void add_target(struct targets *t, const char *account, const char *region)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].account, account) == 0 && strcmp(t->items[i].region, region) == 0) return;
    if (t->n >= MAX_TARGETS) return;
    t->items = qfs_xrealloc(t->items, (t->n + 1) * sizeof(*t->items));
    snprintf(t->items[t->n].account, sizeof(t->items[t->n].account), "%s", account);
    snprintf(t->items[t->n].region, sizeof(t->items[t->n].region), "%s", region);
    t->n++;
}

/* The ECR accounts and regions whose images reached qfs: the subjects of qfs.images.* stored. */
static qfs_status seen_targets(struct qfsctl_ctx *c, struct targets *t)
{
    if (qfsctl_nats_open(c) != QFS_OK) return QFS_UNAVAILABLE;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = qfs_subject_filter(QFS_SUBJECT_IMAGES);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, QFS_STREAM_NAME, &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return QFS_OK;
    if (s != NATS_OK) {
        fprintf(stderr, "qfsctl qualys: cannot read the stream: %s\n", natsStatus_GetText(s));
        return QFS_UNAVAILABLE;
    }
    for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++) {
        struct qfs_subject_parts p;
        if (qfs_subject_parse(si->State.Subjects->List[i].Subject, &p) == QFS_OK && p.account[0])
            add_target(t, p.account, p.region);
    }
    jsStreamInfo_Destroy(si);
    return QFS_OK;
}

static int registries(struct qfsctl_ctx *c, struct qfsctl_io *io, const struct qfsctl_qualys_opts *o)
{
    struct targets t = {0};
    for (size_t i = 0; i < o->ntargets; i++) {
        char account[QFS_ACCOUNT_LEN + 1];
        snprintf(account, sizeof(account), "%.12s", o->targets[i]);
        add_target(&t, account, strchr(o->targets[i], '/') + 1);
    }
    if (!o->ntargets && seen_targets(c, &t) != QFS_OK) return QFSCTL_EXIT_FAIL;
    if (!t.n) {
        printf("No ECR account/region to look up: name some (qfsctl qualys registries 111122223333/eu-west-1)\n"
               "or let images reach qfs first.\n");
        return QFSCTL_EXIT_OK;
    }
    struct qfsctl_table tab;
    qfsctl_table_init(&tab, 5);
    const char *head[] = {"ACCOUNT", "REGION", "REGISTRY UUID", "NAME", "URI"};
    qfsctl_table_add(&tab, head);
    cJSON *list = cJSON_CreateArray();
    size_t failed = 0;
    for (size_t i = 0; i < t.n; i++) {
        char uri[256], what[320];
        if (qfs_qualys_ecr_registry_uri(t.items[i].account, t.items[i].region, uri, sizeof(uri)) != QFS_OK) continue;
        snprintf(what, sizeof(what), "GET /registry for %s", uri);
        struct call call = {0};
        if (!run(io, qfs_qualys_find_registry(io->qualys, uri, on_done, &call), &call, what, true)) {
            failed++;
            continue;
        }
        const char *row[] = {t.items[i].account, t.items[i].region,
                             call.found ? call.registry.uuid : "(none: qfs-registry creates it on the first scan)",
                             call.found ? call.registry.name : "-", uri};
        qfsctl_table_add(&tab, row);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "account", t.items[i].account);
        cJSON_AddStringToObject(j, "region", t.items[i].region);
        cJSON_AddStringToObject(j, "uri", uri);
        if (call.found) {
            cJSON_AddStringToObject(j, "uuid", call.registry.uuid);
            cJSON_AddStringToObject(j, "name", call.registry.name);
        } else {
            cJSON_AddNullToObject(j, "uuid");
            cJSON_AddNullToObject(j, "name");
        }
        cJSON_AddItemToArray(list, j);
    }
    if (o->json) {
        char *text = cJSON_PrintUnformatted(list);
        printf("%s\n", text);
        free(text);
    } else {
        struct qfs_buf out;
        qfs_buf_init(&out, 0);
        qfsctl_table_render(&tab, &out);
        fwrite(out.data, 1, out.len, stdout);
        qfs_buf_cleanup(&out);
    }
    cJSON_Delete(list);
    qfsctl_table_cleanup(&tab);
    free(t.items);
    return failed ? QFSCTL_EXIT_FAIL : QFSCTL_EXIT_OK;
}

int qfsctl_cmd_qualys(struct qfsctl_ctx *c, int argc, char **argv)
{
    struct qfsctl_qualys_opts o;
    char err[512];
    if (qfsctl_qualys_parse(argc, argv, &o, err, sizeof(err)) != QFS_OK) return qfsctl_usage_error("qualys", err);
    if (o.help) {
        fputs(qfsctl_usage("qualys"), stdout);
        return QFSCTL_EXIT_OK;
    }
    if (qfsctl_load_config(c) != QFS_OK) return QFSCTL_EXIT_USAGE;
    struct qfsctl_io io;
    qfs_status s = qfsctl_io_open(&io, &c->cfg, QFSCTL_IO_QUALYS);
    int rc = s == QFS_PROTOCOL ? QFSCTL_EXIT_USAGE : QFSCTL_EXIT_FAIL;
    if (s == QFS_OK) rc = o.action == QFSCTL_QUALYS_INFO ? info(&io, o.json) : registries(c, &io, &o);
    qfsctl_io_close(&io);
    return rc;
}
