/* Fuzz target for event parsing: any bytes are either refused by the event decoder or planned,
 * grouped and built into messages that follow their schemas, without touching memory outside
 * what the parser owns. The same path runs twice: directly (parser_plan, parser_group,
 * parser_build) and through parser_resolve without AWS, as `qfs-parser --explain` does.
 *
 * QFS_FUZZ_EVENT_STRICT=1 also aborts when a decodable event's outputs cannot be encoded or two
 * outputs share a Nats-Msg-Id: both are parser bugs, kept out of the default run so that it
 * keeps looking for crashes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"
#include "qfs/bus.h"
#include "qfs/proto_event.h"
#include "qfs/proto_image.h"
#include "qfs/proto_skip.h"
#include "qfs/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a crash libFuzzer keeps) when a property does not hold. */
static void check(bool cond)
{
    if (!cond) abort();
}

static bool strict(void)
{
    static int mode = -1;
    if (mode < 0) {
        const char *v = getenv("QFS_FUZZ_EVENT_STRICT");
        mode = v && *v == '1';
    }
    return mode == 1;
}

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The plan stays within its bounds and its lookups are full task definition ARNs. */
static void check_plan(const struct qfs_event *ev, const struct parser_plan *plan)
{
    check(plan->ncontainers <= PARSER_MAX_CONTAINERS);
    check(plan->nlookups <= PARSER_MAX_LOOKUPS);
    check(plan->deploy.event_id && strcmp(plan->deploy.event_id, ev->id) == 0);
    check(plan->deploy.event_name && plan->deploy.event_time);
    check(qfs_proto_is_account(plan->deploy.event_account));
    check(qfs_proto_is_region(plan->deploy.event_region));
    for (size_t i = 0; i < plan->nlookups; i++) {
        check(starts_with(plan->lookups[i], "arn:"));
        for (size_t j = 0; j < i; j++) check(strcmp(plan->lookups[i], plan->lookups[j]) != 0);
    }
    for (size_t i = 0; i < plan->ncontainers; i++)
        check(plan->containers[i].name && plan->containers[i].image);
}

/* Every image is a private ECR image of its subject's account and region, used by a container. */
static void check_images(const struct parser_image *images, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct qfs_image_record *r = &images[i].record;
        check(qfs_proto_is_account(r->image.account) && qfs_proto_is_region(r->image.region));
        check(starts_with(r->image.registry, r->image.account));
        check(strstr(r->image.registry, r->image.region) != NULL);
        check(r->image.repository && r->image.repository[0]);
        check(r->image.tag || r->image.digest);
        check(!r->image.digest || qfs_proto_is_digest(r->image.digest));
        check(r->deploy.ncontainers >= 1 && r->deploy.ncontainers <= QFS_PROTO_MAX_CONTAINERS);
    }
}

/* The messages decode with their own codecs and carry the ids of proto/subjects.md. */
static void check_outbox(const struct qfs_outbox *ob, const char *event_id)
{
    char image_prefix[200], skip_prefix[200];
    snprintf(image_prefix, sizeof(image_prefix), "image:%s:", event_id);
    snprintf(skip_prefix, sizeof(skip_prefix), "skip:%s:", event_id);
    for (size_t i = 0; i < ob->n; i++) {
        const struct qfs_outbox_msg *m = &ob->items[i];
        char err[256];
        if (starts_with(m->subject, "qfs.images.")) {
            check(starts_with(m->msg_id, image_prefix));
            struct qfs_image_record r;
            check(qfs_image_record_decode(m->data, m->len, &r, err, sizeof(err)) == QFS_OK);
            check(strcmp(r.deploy.event_id, event_id) == 0);
            qfs_image_record_cleanup(&r);
        } else {
            check(starts_with(m->subject, "qfs.scans.skipped."));
            check(starts_with(m->msg_id, skip_prefix));
            struct qfs_skip s;
            check(qfs_skip_decode(m->data, m->len, &s, err, sizeof(err)) == QFS_OK);
            qfs_skip_cleanup(&s);
        }
        if (strict())
            for (size_t j = 0; j < i; j++) check(strcmp(m->msg_id, ob->items[j].msg_id) != 0);
    }
}

static void build_and_check(const struct parser_plan *plan, const struct parser_image *images,
                            size_t n)
{
    struct qfs_outbox ob;
    qfs_outbox_init(&ob);
    qfs_status s = parser_build(plan, images, n, &ob);
    if (s == QFS_OK) check_outbox(&ob, plan->deploy.event_id);
    else check(!strict() && s == QFS_INTERNAL);
    qfs_outbox_cleanup(&ob);
}

/* parser_resolve without AWS finishes before it returns; these record what it reported. */
struct resolved {
    bool done;
    size_t lookups;
};

static void on_needs_lookup(void *arg, const char *arn)
{
    struct resolved *r = arg;
    check(starts_with(arn, "arn:"));
    r->lookups++;
}

static void on_done(void *arg, qfs_status st, const char *reason, struct parser_plan *plan,
                    struct parser_image *images, size_t n)
{
    struct resolved *r = arg;
    check(!r->done);
    r->done = true;
    /* Without AWS nothing is retried: every image either has its digest or says why not. */
    check(st == QFS_OK);
    check_images(images, n);
    for (size_t i = 0; i < n; i++)
        check(images[i].record.image.digest || images[i].record.digest_unresolved);
    build_and_check(plan, images, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    strict();
    /* An exact-size copy, so that ASan catches any read past the input. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);

    struct qfs_event ev;
    char err[256];
    if (qfs_event_decode(text, size, &ev, err, sizeof(err)) != QFS_OK) {
        /* Refused input has a reason for the DLQ and leaves nothing behind. */
        check(err[0] != '\0' && strlen(err) < sizeof(err));
        check(ev.root == NULL && ev.id == NULL);
        free(text);
        return 0;
    }
    check(ev.detail != NULL && qfs_proto_is_event_id(ev.id));

    /* Directly: plan, group, build. Without lookups, a digest-less record says why. */
    struct parser_plan plan;
    parser_plan(&ev, &plan);
    check_plan(&ev, &plan);
    size_t lookups = plan.nlookups;
    struct parser_image *images = NULL;
    size_t n = 0;
    parser_group(&plan, &images, &n);
    check_images(images, n);
    for (size_t i = 0; i < n; i++)
        if (!images[i].record.image.digest)
            images[i].record.digest_unresolved = qfs_xstrdup("not looked up while fuzzing");
    build_and_check(&plan, images, n);
    parser_images_free(images, n);
    parser_plan_cleanup(&plan);

    /* Through parser_resolve, as --explain runs it without AWS. */
    parser_plan(&ev, &plan);
    struct parser_deps deps = {.role_name = "QfsEcsDescribeRole", .taskdef_ttl_s = 60};
    struct resolved r = {0};
    parser_resolve(&deps, &plan, false, on_needs_lookup, on_done, &r);
    check(r.done && r.lookups == lookups);
    check(plan.ncontainers == 0 && plan.nlookups == 0); /* taken by the job */

    qfs_event_cleanup(&ev);
    free(text);
    return 0;
}
