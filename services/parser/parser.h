/* qfs-parser: turns an ECS deploy event into image records and skip records.
 *
 * Reading an event is pure (parser_plan): it yields the deploy context, the containers the event
 * names directly, the task definitions that must be looked up, and the event-level skips. The
 * lookups (task definitions through ECS, tags to digests through ECR, roles through STS) are
 * asynchronous (parser_job_*), and parser_build turns the gathered containers into messages. */
#ifndef QFS_PARSER_H
#define QFS_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qfs/aws.h"
#include "qfs/aws_sts.h"
#include "qfs/bus.h"
#include "qfs/proto.h"
#include "qfs/proto_event.h"
#include "qfs/proto_image.h"
#include "qfs/proto_skip.h"
#include "qfs/status.h"

struct qfs_kv;

/* Bounds on what one event may ask of the parser. */
#define PARSER_MAX_CONTAINERS 200
#define PARSER_MAX_LOOKUPS 10

/* A container the event (or a task definition) names. */
struct parser_container {
    char *name;
    char *image;               /* as written */
    char *digest;              /* from an ECS Task State Change; NULL otherwise */
    char *task_definition_arn; /* where it came from; NULL when unknown */
};

struct parser_plan {
    struct qfs_deploy deploy;      /* containers left empty; filled per image record */
    char partition[16];            /* aws, aws-cn, aws-us-gov */
    struct parser_container *containers;
    size_t ncontainers;
    char **lookups;                /* task definition ARNs to describe, distinct */
    size_t nlookups;
    struct qfs_skip *skips;        /* event-level skips (no image resolved) */
    size_t nskips;
    /* RegisterTaskDefinition: remember this ARN's containers so later deploys need no ECS call. */
    char *remember_arn;
    /* Epoch ms by which the deploy had surely happened, by our clocks rather than AWS's: when its
     * event was stored in the stream. 0: unknown (--explain). */
    int64_t stored_ms;
};

/* Reads ev (borrowed) into plan, which the caller frees with parser_plan_cleanup(). Never fails on
 * content: what cannot be used becomes a skip with its reason. */
void parser_plan(const struct qfs_event *ev, struct parser_plan *plan);
void parser_plan_cleanup(struct parser_plan *plan);

/* Adds a container (strings copied); false when PARSER_MAX_CONTAINERS is reached. */
bool parser_plan_add_container(struct parser_plan *plan, const char *name, const char *image,
                               const char *digest, const char *task_definition_arn);
/* Adds an event-level skip about no particular image (strings copied). */
void parser_plan_add_skip(struct parser_plan *plan, enum qfs_skip_reason reason, const char *detail,
                          const char *image, const char *task_definition_arn);

/* An ECR image a record will be published for, with the containers that use it. */
struct parser_image {
    struct qfs_image_record record;
    char partition[16];
};

/* Groups the plan's containers into ECR images (one per image key, naming every container) and
 * adds a skip for each container whose image is invalid or not in private ECR. */
void parser_group(struct parser_plan *plan, struct parser_image **images, size_t *nimages);
void parser_images_free(struct parser_image *images, size_t n);

/* Encodes the outputs: each image record on qfs.images.<acct>.<region> and each skip on
 * qfs.scans.skipped.<acct>.<region>, with the Nats-Msg-Ids of proto/subjects.md, into ob.
 * Returns QFS_INTERNAL when a message could not be encoded (a bug, logged). */
qfs_status parser_build(const struct parser_plan *plan, const struct parser_image *images, size_t n,
                        struct qfs_outbox *ob);

/* ---- tag answers shared between deploys (digests.c) ------------------------------------------ */

/* What a tag lookup came to. digest set: found; unresolved set: final, why there is none; neither:
 * a failure worth retrying (retry, what and detail say which). Only reusable outcomes are kept. */
struct parser_digest_outcome {
    const char *digest;
    const char *unresolved;
    qfs_status retry;
    const char *what, *detail;
    const char *give_up; /* the unresolved text of a failure when the deploy may not wait longer */
    bool reusable;
};

/* Someone waiting for a lookup's outcome; o and its strings are valid during the call only.
 * turn: for parser_digests_wait_turn, called instead when the lookup ahead ended with an answer
 * that cannot serve this deploy (it began too early): join or begin one now. */
struct parser_digest_waiter {
    struct parser_digest_waiter *next;
    void (*answered)(struct parser_digest_waiter *w, const struct parser_digest_outcome *o);
    void (*turn)(struct parser_digest_waiter *w);
};

struct parser_digest_stats {
    uint64_t lookups; /* lookups begun */
    uint64_t reused;  /* deploys answered by a lookup begun for another */
    uint64_t queued;  /* deploys that waited for the lookup ahead of theirs to end */
    size_t entries;
};

struct parser_digests;
struct parser_digest_flight;

/* Keeps at most max_entries answers, each for max_age_ms after its lookup began. */
struct parser_digests *parser_digests_new(size_t max_entries, int64_t max_age_ms);
/* Frees the memo; lookups still in flight end later through parser_digests_end. NULL is fine. */
void parser_digests_free(struct parser_digests *m);
/* When a lookup of key began at or after not_before_ms (wall clock), answers w from it (at once
 * when it is done, else when it ends) and returns true; false: begin one. */
bool parser_digests_join(struct parser_digests *m, const char *key, int64_t not_before_ms, int64_t now_ms,
                         struct parser_digest_waiter *w);
/* When a lookup of key is in flight (one that began too early for w's deploy), queues w behind it
 * and returns true: at its end w->turn runs, or w->answered with its outcome when that is a failure
 * (which a lookup of w's own would have met too). One lookup per key is in flight at a time, so a
 * burst of fresh deploys costs one lookup per lookup's duration, not one per deploy. */
bool parser_digests_wait_turn(struct parser_digests *m, const char *key, struct parser_digest_waiter *w);
/* Records a lookup of key beginning at now_ms, with w as its first waiter. */
struct parser_digest_flight *parser_digests_begin(struct parser_digests *m, const char *key, int64_t now_ms,
                                                  struct parser_digest_waiter *w);
/* Ends the lookup: keeps a reusable outcome, then answers every waiter with o. */
void parser_digests_end(struct parser_digests *m, struct parser_digest_flight *f,
                        const struct parser_digest_outcome *o);
void parser_digests_stats(const struct parser_digests *m, struct parser_digest_stats *out);

/* The earliest start of an ECR lookup whose answer serves this deploy: one that began after the
 * deploy, which had happened by its event time plus PARSER_EVENT_TIME_SLACK_MS and by the time its
 * event was stored, whichever is known and earlier. INT64_MAX when neither is known. */
int64_t parser_answer_not_before(const struct parser_plan *plan);

/* Deploy times are whole seconds: a deploy stamped t happened before t + this. This assumes our
 * clock is AWS's to well under that second, as Amazon Time Sync keeps a Fargate task's. */
#define PARSER_EVENT_TIME_SLACK_MS 1000
/* The memo's bounds in the service. */
#define PARSER_DIGESTS_MAX 4096
#define PARSER_DIGESTS_MAX_AGE_MS (10 * 60 * 1000)

/* What the lookups need. Every pointer is borrowed and must outlive the jobs. */
struct parser_deps {
    struct qfs_aws *aws;     /* NULL: no lookups (--explain without AWS) */
    struct qfs_aws_sts *sts; /* assumed-role credentials for other accounts */
    struct qfs_kv *kv;       /* task definition cache; NULL: none */
    const char *hub_account; /* this deployment's account (own credentials); NULL: always assume */
    const char *role_name;   /* QFS_ECS_DESCRIBE_ROLE_NAME */
    int64_t taskdef_ttl_s;   /* how long a task definition's containers are remembered */
    struct parser_digests *digests; /* tag answers shared between deploys; NULL: none */
};

/* Called once when a job ends. On QFS_OK, plan and images (owned by the job, valid during the
 * call) are ready for parser_build; a retryable status means "try the event again later" with
 * reason saying why. */
typedef void (*parser_done_fn)(void *arg, qfs_status st, const char *reason,
                               struct parser_plan *plan, struct parser_image *images, size_t n);

/* Resolves plan (taken: the job frees it) by looking up task definitions (cache, then ECS through
 * the account's role) and tag digests (ECR), then groups the images. may_retry false turns
 * retryable ECR failures into digest_unresolved so the images still go out. needs_lookup, when
 * not NULL, is called for each task definition that cannot be looked up without AWS. */
void parser_resolve(const struct parser_deps *deps, struct parser_plan *plan, bool may_retry,
                    void (*needs_lookup)(void *arg, const char *arn), parser_done_fn cb, void *arg);

/* Writes the outbox as --explain lines: {"subject": ..., "message": {...}}. */
void parser_print_outbox(const struct qfs_outbox *ob, FILE *out);

#endif
