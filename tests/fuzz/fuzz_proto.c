/* Fuzz target for the message codecs: every decoder of proto/ is tried on the input (each checks
 * its own "schema" field, so at most one goes deep). A decoder either refuses the input with a
 * reason naming the field and leaves its struct empty, or accepts it; then the encoder must accept
 * what the decoder accepted, and decoding that output and encoding it again must give the same
 * bytes: the codec pair agrees with itself on everything that gets through. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/log.h"
#include "qfs/proto_dlq.h"
#include "qfs/proto_event.h"
#include "qfs/proto_image.h"
#include "qfs/proto_notification.h"
#include "qfs/proto_scan.h"
#include "qfs/proto_skip.h"
#include "qfs/proto_sns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a crash libFuzzer keeps) when a property does not hold. */
static void check(bool cond)
{
    if (!cond) abort();
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

/* One codec: decode, and on success encode, re-decode, re-encode and compare. T is the message
 * struct; the decoder's output is zeroed on failure and the reason fits its buffer. */
#define QFS_FUZZ_CODEC(name, T, decode, encode, cleanup)                                    \
    static void fuzz_##name(const char *json, size_t len)                                   \
    {                                                                                       \
        T m;                                                                                \
        char err[256];                                                                      \
        memset(&m, 0x5a, sizeof(m));                                                        \
        err[0] = '\0';                                                                      \
        qfs_status s = decode(json, len, &m, err, sizeof(err));                             \
        if (s != QFS_OK) {                                                                  \
            check(s == QFS_PROTOCOL && err[0] && strnlen(err, sizeof(err)) < sizeof(err)); \
            check(all_zero(&m, sizeof(m)));                                                 \
            return;                                                                         \
        }                                                                                   \
        char *first = NULL, *second = NULL;                                                 \
        check(encode(&m, &first) == QFS_OK && first);                                       \
        cleanup(&m);                                                                        \
        check(all_zero(&m, sizeof(m)));                                                     \
        check(decode(first, strlen(first), &m, err, sizeof(err)) == QFS_OK);                \
        check(encode(&m, &second) == QFS_OK && second);                                     \
        check(strcmp(first, second) == 0);                                                  \
        cleanup(&m);                                                                        \
        free(first);                                                                        \
        free(second);                                                                       \
    }

QFS_FUZZ_CODEC(event, struct qfs_event, qfs_event_decode, qfs_event_encode, qfs_event_cleanup)
QFS_FUZZ_CODEC(image, struct qfs_image_record, qfs_image_record_decode, qfs_image_record_encode,
               qfs_image_record_cleanup)
QFS_FUZZ_CODEC(scan_request, struct qfs_scan_request, qfs_scan_request_decode, qfs_scan_request_encode,
               qfs_scan_request_cleanup)
QFS_FUZZ_CODEC(scan_ready, struct qfs_scan_ready, qfs_scan_ready_decode, qfs_scan_ready_encode,
               qfs_scan_ready_cleanup)
QFS_FUZZ_CODEC(scan_result, struct qfs_scan_result, qfs_scan_result_decode, qfs_scan_result_encode,
               qfs_scan_result_cleanup)
QFS_FUZZ_CODEC(scan_failure, struct qfs_scan_failure, qfs_scan_failure_decode, qfs_scan_failure_encode,
               qfs_scan_failure_cleanup)
QFS_FUZZ_CODEC(skip, struct qfs_skip, qfs_skip_decode, qfs_skip_encode, qfs_skip_cleanup)
QFS_FUZZ_CODEC(notification, struct qfs_notification, qfs_notification_decode, qfs_notification_encode,
               qfs_notification_cleanup)
QFS_FUZZ_CODEC(dlq, struct qfs_dlq_entry, qfs_dlq_entry_decode, qfs_dlq_entry_encode,
               qfs_dlq_entry_cleanup)
QFS_FUZZ_CODEC(sns_message, struct qfs_sns_message, qfs_sns_message_decode, qfs_sns_message_encode,
               qfs_sns_message_cleanup)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan catches any read past the input. */
    char *json = malloc(size ? size : 1);
    if (!json) return 0;
    if (size) memcpy(json, data, size);
    fuzz_event(json, size);
    fuzz_image(json, size);
    fuzz_scan_request(json, size);
    fuzz_scan_ready(json, size);
    fuzz_scan_result(json, size);
    fuzz_scan_failure(json, size);
    fuzz_skip(json, size);
    fuzz_notification(json, size);
    fuzz_dlq(json, size);
    fuzz_sns_message(json, size);
    free(json);
    qfs_log_clear_secrets();
    return 0;
}
