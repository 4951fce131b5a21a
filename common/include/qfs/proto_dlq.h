/* The dead-letter entry (qfs.dlq.v1): input a service could not handle, kept for an operator with
 * its original bytes, headers and the reason. */
#ifndef QFS_PROTO_DLQ_H
#define QFS_PROTO_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfs/proto.h"
#include "qfs/status.h"

/* Payload bytes kept; longer payloads are cut and flagged. */
#define QFS_DLQ_MAX_PAYLOAD (512 * 1024)
#define QFS_DLQ_MAX_HEADERS 64

struct qfs_dlq_header {
    char *name;  /* [!-9;-~]{1,256}: a header token without ':' */
    char *value; /* no CR or LF, at most 1024 characters */
};

struct qfs_dlq_entry {
    char service[QFS_SERVICE_MAX + 1];
    char *reason;           /* why, naming the field when a decoder rejected the input */
    qfs_status status;      /* any status but QFS_OK */
    char *original_subject; /* NULL when the input did not come from NATS (ingest reads SQS) */
    struct qfs_dlq_header *headers;
    size_t nheaders;
    /* The original bytes, any content (need not be NUL-terminated after encode's input; decode
     * output is). Encode writes them as text when they are UTF-8 without NUL bytes and
     * payload_base64 is false, otherwise as base64; decode sets payload_base64 from the wire. */
    char *payload;
    size_t payload_len;
    bool payload_base64;
    /* Encode cuts payloads over QFS_DLQ_MAX_PAYLOAD (at a UTF-8 boundary when it can), sets
     * payload_truncated and keeps the full length in payload_size; otherwise it writes the given
     * payload_truncated, with payload_size = payload_len unless truncated. */
    bool payload_truncated;
    int64_t payload_size;
    int64_t delivery_count; /* JetStream NumDelivered or SQS ApproximateReceiveCount */
    char *time;             /* RFC 3339 */
    char *trace_id;         /* Qfs-Trace-Id of the input, NULL when unknown */
};

/* Encodes m into *json_out (the caller frees it with free()); QFS_INVALID_ARG, with the reason
 * logged, when m breaks the schema. */
qfs_status qfs_dlq_entry_encode(const struct qfs_dlq_entry *m, char **json_out);
/* Decodes and validates len bytes of JSON into out (cleaned up by the caller after QFS_OK, left
 * empty on failure); a base64 payload is decoded back to its bytes. QFS_PROTOCOL with err naming
 * the field. */
qfs_status qfs_dlq_entry_decode(const char *json, size_t len, struct qfs_dlq_entry *out, char *err,
                                size_t errlen);
/* Frees every heap field and zeroes m. */
void qfs_dlq_entry_cleanup(struct qfs_dlq_entry *m);

#endif
