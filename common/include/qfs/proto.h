/* Message contracts shared by every service: subjects, schema names, headers, tokens and the pieces
 * every message carries (image identity, deploy context). The only place subject strings and schema
 * names are written; proto/subjects.md and proto/<message>.schema.json are the reference. */
#ifndef QFS_PROTO_H
#define QFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/status.h"

/* Header names every stored message carries. */
#define QFS_HDR_MSG_ID "Nats-Msg-Id"
#define QFS_HDR_TRACE_ID "Qfs-Trace-Id"
#define QFS_HDR_SCHEMA "Qfs-Schema"

#define QFS_ACCOUNT_LEN 12
#define QFS_REGION_MAX 32
#define QFS_SERVICE_MAX 32
/* Large enough for any subject qfs_subject_format() or qfs_subject_dlq() can write. */
#define QFS_SUBJECT_MAX 96
/* Large enough for any image key (registry, repository and digest at their bounds). */
#define QFS_IMAGE_KEY_MAX 600
/* Decoders reject messages longer than this (NATS's default max_payload). */
#define QFS_PROTO_MAX_BYTES (1024 * 1024)
/* Bounds on the lists messages carry. */
#define QFS_PROTO_MAX_DEPLOYS 100
#define QFS_PROTO_MAX_CONTAINERS 100

enum qfs_subject {
    QFS_SUBJECT_EVENTS,          /* qfs.events.<account>.<region> */
    QFS_SUBJECT_IMAGES,          /* qfs.images.<account>.<region> */
    QFS_SUBJECT_SCANS_REQUESTED, /* qfs.scans.requested.<account>.<region> */
    QFS_SUBJECT_SCANS_READY,     /* qfs.scans.ready.<account>.<region> */
    QFS_SUBJECT_SCANS_COMPLETED, /* qfs.scans.completed.<account>.<region> */
    QFS_SUBJECT_SCANS_FAILED,    /* qfs.scans.failed.<account>.<region> */
    QFS_SUBJECT_SCANS_SKIPPED,   /* qfs.scans.skipped.<account>.<region> */
    QFS_SUBJECT_NOTIFICATIONS,   /* qfs.notifications.<account>.<region> */
    QFS_SUBJECT_DLQ,             /* qfs.dlq.<service> */
    QFS_SUBJECT_STATS,           /* qfs.stats.<service>, core NATS, not stored */
    QFS_SUBJECT_COUNT
};

enum qfs_schema {
    QFS_SCHEMA_NONE = 0, /* no schema (stats), or an unknown name */
    QFS_SCHEMA_EVENT,    /* qfs.event.v1: EventBridge event as received */
    QFS_SCHEMA_IMAGE,    /* qfs.image.v1 */
    QFS_SCHEMA_SCAN_REQUEST,
    QFS_SCHEMA_SCAN_READY,
    QFS_SCHEMA_SCAN_RESULT,
    QFS_SCHEMA_SCAN_FAILURE,
    QFS_SCHEMA_SKIP,
    QFS_SCHEMA_NOTIFICATION,
    QFS_SCHEMA_DLQ,
    QFS_SCHEMA_SNS_MESSAGE, /* qfs.sns_message.v1: the SNS body, not a bus message */
    QFS_SCHEMA_COUNT
};

/* Returns the schema's name, such as "qfs.image.v1" (the Qfs-Schema header and the messages'
 * "schema" field), or NULL for QFS_SCHEMA_NONE and out-of-range values. */
const char *qfs_schema_name(enum qfs_schema schema);
/* Returns the schema with that exact name, or QFS_SCHEMA_NONE. name may be NULL. */
enum qfs_schema qfs_schema_parse(const char *name);

/* Writes the subject of kind for an account and region into buf (size n), e.g.
 * "qfs.images.111122223333.eu-west-1". Returns QFS_PROTOCOL when a token is not valid (account: 12
 * digits; region: [a-z0-9-]{1,32}), QFS_INVALID_ARG for a kind keyed by service, QFS_TOO_BIG when
 * buf is too small (QFS_SUBJECT_MAX always suffices). buf is an empty string on failure. */
qfs_status qfs_subject_format(char *buf, size_t n, enum qfs_subject kind, const char *account,
                              const char *region);
/* Writes "qfs.dlq.<service>" or "qfs.stats.<service>". QFS_PROTOCOL for a service name that is not
 * [a-z0-9-]{1,32}, QFS_TOO_BIG when buf is too small. */
qfs_status qfs_subject_dlq(char *buf, size_t n, const char *service);
qfs_status qfs_subject_stats(char *buf, size_t n, const char *service);

/* The consumer filter of kind ("qfs.images.>"), its documented pattern
 * ("qfs.images.<account>.<region>"), the schema its messages follow, and whether it is stored in
 * the stream. Constant strings; NULL / QFS_SCHEMA_NONE / false for an out-of-range kind. */
const char *qfs_subject_filter(enum qfs_subject kind);
const char *qfs_subject_pattern(enum qfs_subject kind);
enum qfs_schema qfs_subject_schema(enum qfs_subject kind);
bool qfs_subject_is_stored(enum qfs_subject kind);

/* The JetStream stream that stores every message but statistics, and its subjects (the filters of
 * the stored kinds, NULL-terminated). qfs.stats.* stays out of it: statistics are not kept. */
#define QFS_STREAM_NAME "QFS"
const char *const *qfs_stream_subjects(void);

/* A subject split into its kind and tokens. */
struct qfs_subject_parts {
    enum qfs_subject kind;
    char account[QFS_ACCOUNT_LEN + 1]; /* "" for service-keyed kinds */
    char region[QFS_REGION_MAX + 1];
    char service[QFS_SERVICE_MAX + 1]; /* "" for account/region kinds */
};
/* Parses a concrete subject (no wildcards) into out. QFS_PROTOCOL when it is not a qfs subject or a
 * token is invalid. */
qfs_status qfs_subject_parse(const char *subject, struct qfs_subject_parts *out);

/* Token and field checks, the same rules the schemas state. NULL is never valid. */
bool qfs_proto_is_account(const char *s);   /* ^[0-9]{12}$ */
bool qfs_proto_is_region(const char *s);    /* ^[a-z0-9-]{1,32}$ */
bool qfs_proto_is_service(const char *s);   /* ^[a-z0-9-]{1,32}$ */
bool qfs_proto_is_digest(const char *s);    /* ^sha256:[0-9a-f]{64}$ */
bool qfs_proto_is_event_id(const char *s);  /* ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$ */
bool qfs_proto_is_timestamp(const char *s); /* RFC 3339 with T, seconds and an offset or Z */
/* The same check, and the time as milliseconds since the Unix epoch (fractions past ms dropped). */
bool qfs_proto_parse_timestamp(const char *s, int64_t *ms);
/* The deploy-context rules of proto/common.schema.json, for producers that copy fields from input:
 * a full task definition ARN with revision; a cluster or ECS service name or ARN; a container name
 * ([A-Za-z0-9_-]{1,255}); an event name as received (printable ASCII, at most 128). Length bounds
 * (1024 for ARNs) are the caller's. */
bool qfs_proto_is_task_definition_arn(const char *s);
bool qfs_proto_is_cluster(const char *s);
bool qfs_proto_is_ecs_service(const char *s);
bool qfs_proto_is_container_name(const char *s);
bool qfs_proto_is_any_event_name(const char *s);

/* Which image a message is about. account and region are those of the image's ECR registry (the
 * subject tokens). Strings are owned by the struct after a decode; see qfs_image_id_cleanup(). */
struct qfs_image_id {
    char account[QFS_ACCOUNT_LEN + 1];
    char region[QFS_REGION_MAX + 1];
    char *registry;   /* ECR host, e.g. 111122223333.dkr.ecr.eu-west-1.amazonaws.com */
    char *repository; /* e.g. team/web */
    char *tag;        /* NULL when the image was named by digest only */
    char *digest;     /* "sha256:<64 hex>", NULL when unknown; tag and digest are never both NULL */
    char *image;      /* the reference as written */
};

/* One deploy that caused a message: its event and ECS context. */
struct qfs_deploy {
    char *event_name; /* RegisterTaskDefinition, RunTask, ..., or "ECS Task State Change" */
    char *event_id;   /* EventBridge event id: the trace id */
    char *event_time; /* RFC 3339 */
    char event_account[QFS_ACCOUNT_LEN + 1]; /* where the deploy happened */
    char event_region[QFS_REGION_MAX + 1];
    char *principal;           /* NULL when unknown */
    char *task_definition_arn; /* NULL when unknown */
    char *cluster;             /* name or ARN; NULL when unknown */
    char *service;             /* name or ARN; NULL when not a service deploy */
    char **containers;         /* names of the containers using the image */
    size_t ncontainers;
};

/* Writes the image key "<registry>/<repository>@<digest>", or "<registry>/<repository>:<tag>" when
 * the digest is unknown: the cache key and the base of the scan Nats-Msg-Ids (proto/subjects.md).
 * QFS_INVALID_ARG when registry/repository or both tag and digest are missing, QFS_TOO_BIG when
 * buf is too small (QFS_IMAGE_KEY_MAX always suffices for valid fields). */
qfs_status qfs_image_key_format(char *buf, size_t n, const struct qfs_image_id *img);

/* Writes "<kind>:<image key>#<generation>", the name of one scan generation of an image: the cache
 * store's list of the deploys that joined it ("deploys"), which the cache writes and the
 * scanner-poller reads, and the Nats-Msg-Id of its one outcome ("outcome"), which the registry
 * and the scanner-poller both publish so that JetStream keeps only the first. QFS_GENERATION_KEY_MAX
 * always suffices for a valid image key; QFS_TOO_BIG otherwise. */
#define QFS_GENERATION_KEY_MAX (QFS_IMAGE_KEY_MAX + 48)
qfs_status qfs_generation_key(char *buf, size_t n, const char *kind, const char *image_key,
                              int64_t generation);

/* Deep copies (dst is overwritten, not freed first; the caller cleans it up). */
void qfs_image_id_copy(struct qfs_image_id *dst, const struct qfs_image_id *src);
void qfs_deploy_copy(struct qfs_deploy *dst, const struct qfs_deploy *src);

/* Free every heap field and zero the struct. Use on decoded structs, or on structs whose strings
 * the caller allocated; never on borrowed pointers. Safe on a zeroed struct. */
void qfs_image_id_cleanup(struct qfs_image_id *img);
void qfs_deploy_cleanup(struct qfs_deploy *d);
/* One deploy as a JSON object with the fields of a message's deploys[] (the lists of deploys the
 * cache store keeps). Encode: QFS_INVALID_ARG (logged) when d breaks the schema. Decode:
 * QFS_PROTOCOL with err naming the field; out is cleaned up by the caller after QFS_OK. */
qfs_status qfs_deploy_encode(const struct qfs_deploy *d, char **json_out);
qfs_status qfs_deploy_decode(const char *json, size_t len, struct qfs_deploy *out, char *err,
                             size_t errlen);
/* Frees an array of n deploys, each cleaned up, and the array itself. */
void qfs_deploys_free(struct qfs_deploy *deploys, size_t n);

#endif
