/* Helpers shared by the proto_*.c codecs: field readers that validate as they go, and writers.
 * Not for services: they use the qfs_<message>_encode/_decode calls. */
#ifndef QFS_PROTO_CODEC_H
#define QFS_PROTO_CODEC_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/proto.h"
#include "qfs/status.h"

/* Largest integer in a message: 15 digits, which every JSON tool (cJSON prints 15 significant
 * digits) keeps exact. */
#define QFS__PROTO_INT_MAX 999999999999999LL

/* A decode in progress: where errors go, and the path of the object being read ("deploys[2]."),
 * which prefixes every field name in an error. */
struct qfs__pd {
    char *err;
    size_t errlen;
    char path[192];
    /* The object qfs__pd_object last found free of duplicate names, and the last field found in
     * it (NULL: none yet): decoders read fields in the order encoders write them, so the next one
     * is usually right after it (see find_field). */
    const cJSON *last_obj, *last;
};

/* What a string field must look like. Lengths are in code points, as JSON Schema counts them. */
struct qfs__pd_str {
    size_t min, max;
    bool nullable;
    bool (*check)(const char *s); /* NULL: any UTF-8 text */
    const char *want;             /* what check accepts, for the error message */
};

/* Ready-made string rules matching proto/common.schema.json. */
extern const struct qfs__pd_str qfs__str_account, qfs__str_region, qfs__str_service,
    qfs__str_digest, qfs__str_digest_or_null, qfs__str_qualys_sha, qfs__str_uuid,
    qfs__str_uuid_or_null, qfs__str_timestamp, qfs__str_event_id, qfs__str_event_id_or_null,
    qfs__str_text, qfs__str_text_or_null, qfs__str_short_text_or_null, qfs__str_container;

void qfs__pd_init(struct qfs__pd *d, char *err, size_t errlen);
/* Writes "<path><field>: <message>" to the error buffer and returns QFS_PROTOCOL. */
qfs_status qfs__pd_fail(struct qfs__pd *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses len bytes of JSON (at most max, nothing but whitespace after the value) into *root,
 * which the caller deletes. QFS_PROTOCOL with a reason otherwise. */
qfs_status qfs__pd_parse(struct qfs__pd *d, const char *json, size_t len, size_t max, cJSON **root);
/* Checks that obj (named field, "" for the message itself) is an object without duplicate keys,
 * with every key in keys present and, when closed, no other key. */
qfs_status qfs__pd_object(struct qfs__pd *d, const cJSON *obj, const char *field,
                          const char *const *keys, size_t nkeys, bool closed);
/* Checks that the "schema" field names schema exactly. */
qfs_status qfs__pd_schema(struct qfs__pd *d, const cJSON *obj, enum qfs_schema schema);
/* Appends "<field>[<index>]." (index < 0: "<field>.") to the path; returns the old length for
 * qfs__pd_leave(). */
size_t qfs__pd_enter(struct qfs__pd *d, const char *field, long index);
void qfs__pd_leave(struct qfs__pd *d, size_t old_len);

/* Field readers. Each validates the field and, on success, stores it; heap results belong to the
 * caller. A missing field is an error; nullable fields read JSON null as NULL / -1. */
qfs_status qfs__pd_str(struct qfs__pd *d, const cJSON *obj, const char *name,
                       const struct qfs__pd_str *rule, char **out);
qfs_status qfs__pd_str_buf(struct qfs__pd *d, const cJSON *obj, const char *name,
                           const struct qfs__pd_str *rule, char *buf, size_t n);
qfs_status qfs__pd_int(struct qfs__pd *d, const cJSON *obj, const char *name, int64_t min,
                       int64_t max, int64_t *out);
qfs_status qfs__pd_bool(struct qfs__pd *d, const cJSON *obj, const char *name, bool *out);
qfs_status qfs__pd_enum(struct qfs__pd *d, const cJSON *obj, const char *name,
                        const char *const *names, size_t nnames, bool nullable, int *out);
qfs_status qfs__pd_array(struct qfs__pd *d, const cJSON *obj, const char *name, size_t min,
                         size_t max, const cJSON **arr, size_t *count);
qfs_status qfs__pd_str_array(struct qfs__pd *d, const cJSON *obj, const char *name, size_t min,
                             size_t max, const struct qfs__pd_str *rule, char ***out, size_t *count);
/* Checks a string against a rule; for values that do not come from a cJSON field. */
qfs_status qfs__pd_check_str(struct qfs__pd *d, const char *field, const char *s,
                             const struct qfs__pd_str *rule);
void qfs__strv_free(char **v, size_t n);

/* The fields of struct qfs_image_id and struct qfs_deploy as they appear in a message: image
 * identity at the top level of every scan message; deploy fields at the top level of the image and
 * skip records and inside "deploys" lists. */
#define QFS__IMAGE_ID_KEYS "account", "region", "registry", "repository", "tag", "digest", "image"
#define QFS__DEPLOY_KEYS "event_name", "event_id", "event_time", "event_account", "event_region", \
    "principal", "task_definition_arn", "cluster", "service", "containers"

/* Reads the image identity fields of obj; checks that the registry host names the same account and
 * region and that tag and digest are not both null. */
qfs_status qfs__pd_image_id(struct qfs__pd *d, const cJSON *obj, struct qfs_image_id *out);
/* Reads the deploy fields of obj. any_event_name accepts names outside the supported set (skip
 * records); min_containers is 0 or 1. */
qfs_status qfs__pd_deploy(struct qfs__pd *d, const cJSON *obj, struct qfs_deploy *out,
                          bool any_event_name, size_t min_containers);
/* Reads the "deploys" list: 1 to QFS_PROTO_MAX_DEPLOYS closed deploy objects. */
qfs_status qfs__pd_deploys(struct qfs__pd *d, const cJSON *obj, struct qfs_deploy **out,
                           size_t *count);

/* Scan parts shared with the skip and notification records (proto_scan.c). */
struct qfs_severity_counts;
struct qfs_scan_summary;
extern const char *const qfs__severity_names[6];          /* indexed by enum qfs_severity */
extern const char *const qfs__scan_failure_reason_names[]; /* by enum qfs_scan_failure_reason */
/* Reads the counts object field name; with nullable, JSON null gives *is_null = true. */
qfs_status qfs__pd_counts(struct qfs__pd *d, const cJSON *obj, const char *name, bool nullable,
                          struct qfs_severity_counts *out, bool *is_null);
/* Reads a scan summary object (the value of field name); nullable as above. */
qfs_status qfs__pd_summary(struct qfs__pd *d, const cJSON *obj, const char *name,
                           struct qfs_scan_summary *out, bool *is_null);
void qfs__pe_counts(cJSON *obj, const char *name, const struct qfs_severity_counts *c);
void qfs__pe_summary(cJSON *obj, const char *name, const struct qfs_scan_summary *s);

/* Writers. Strings are copied; a NULL string is written as null. */
void qfs__pe_str(cJSON *obj, const char *name, const char *s);
/* Writes a fixed-size char array field (account, region, ...), which may lack its terminator. */
void qfs__pe_strn(cJSON *obj, const char *name, const char *buf, size_t size);
void qfs__pe_int(cJSON *obj, const char *name, int64_t v);
void qfs__pe_bool(cJSON *obj, const char *name, bool v);
void qfs__pe_null(cJSON *obj, const char *name);
void qfs__pe_str_array(cJSON *obj, const char *name, char *const *v, size_t n);
/* Adds item to obj under name; obj owns it from then on. */
void qfs__pe_add(cJSON *obj, const char *name, cJSON *item);
cJSON *qfs__pe_object(void);
cJSON *qfs__pe_array(void);
void qfs__pe_image_id(cJSON *obj, const struct qfs_image_id *img);
void qfs__pe_deploy(cJSON *obj, const struct qfs_deploy *d);
void qfs__pe_deploys(cJSON *obj, const struct qfs_deploy *deploys, size_t n);
/* Ends an encode: when check (the result of decoding root back) is QFS_OK, prints root into
 * *json_out; otherwise logs err once (the struct broke the contract: a bug in the caller) and
 * returns QFS_INVALID_ARG. Deletes root in every case. */
qfs_status qfs__pe_finish(cJSON *root, qfs_status check, const char *err, enum qfs_schema schema,
                          char **json_out);

/* The findings list of scan results and SNS messages ("findings", ordered most severe first, then
 * ascending qid, at most QFS_SCAN_MAX_FINDINGS): read, written, freed. */
struct qfs_finding;
qfs_status qfs__pd_findings(struct qfs__pd *d, const cJSON *obj, struct qfs_finding **out,
                            size_t *count);
void qfs__pe_findings(cJSON *obj, const struct qfs_finding *f, size_t n);
void qfs__findings_free(struct qfs_finding *f, size_t n);

/* A message's validating reader (out is the message struct) and its cleanup. */
typedef qfs_status (*qfs__from_json_fn)(const cJSON *root, void *out, struct qfs__pd *d);
typedef void (*qfs__cleanup_fn)(void *m);

/* The whole of a message decoder: zeroes out (size bytes), parses at most QFS_PROTO_MAX_BYTES of
 * JSON and validates it into out with from_json. QFS_PROTOCOL with err naming the field. */
qfs_status qfs__pd_decode(const char *json, size_t len, void *out, size_t size,
                          qfs__from_json_fn from_json, char *err, size_t errlen);
/* Ends an encoder: decodes root back into a scratch struct of size bytes with from_json, so C never
 * publishes what it would reject, then finishes as qfs__pe_finish. Deletes root. */
qfs_status qfs__pe_checked(cJSON *root, size_t size, qfs__from_json_fn from_json,
                           qfs__cleanup_fn cleanup, enum qfs_schema schema, char **json_out);

#endif
