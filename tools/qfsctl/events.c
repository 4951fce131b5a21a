/* Event files for inject, and where a DLQ entry goes when it is replayed. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfs/proto_event.h"
#include "qfsctl.h"

/* ---- DLQ replay -------------------------------------------------------------------------------- */

const char *qfsctl_dlq_header(const struct qfs_dlq_entry *e, const char *name)
{
    for (size_t i = 0; i < e->nheaders; i++)
        if (strcasecmp(e->headers[i].name, name) == 0) return e->headers[i].value;
    return NULL;
}

qfs_status qfsctl_dlq_replay_subject(const struct qfs_dlq_entry *e, char subject[QFS_SUBJECT_MAX],
                                     char *err, size_t errlen)
{
    subject[0] = '\0';
    if (e->payload_truncated) {
        snprintf(err, errlen, "the entry keeps only %zu of the payload's %lld bytes, so it cannot be "
                 "replayed; send the original again (qfsctl inject)", e->payload_len, (long long)e->payload_size);
        return QFS_PROTOCOL;
    }
    if (e->original_subject) {
        struct qfs_subject_parts p;
        if (qfs_subject_parse(e->original_subject, &p) != QFS_OK || !qfs_subject_is_stored(p.kind) ||
            p.kind == QFS_SUBJECT_DLQ) {
            snprintf(err, errlen, "the original subject %.100s is not a qfs subject that can be replayed",
                     e->original_subject);
            return QFS_PROTOCOL;
        }
        snprintf(subject, QFS_SUBJECT_MAX, "%s", e->original_subject);
        return QFS_OK;
    }
    /* Ingest read it from SQS: it goes where ingest would have published the event. */
    struct qfs_event ev;
    char why[200];
    if (qfs_event_decode(e->payload, e->payload_len, &ev, why, sizeof(why)) != QFS_OK) {
        snprintf(err, errlen, "the payload is not an EventBridge event (%s): fix it and send it with "
                 "qfsctl inject", why);
        return QFS_PROTOCOL;
    }
    qfs_status s = qfs_subject_format(subject, QFS_SUBJECT_MAX, QFS_SUBJECT_EVENTS, ev.account, ev.region);
    qfs_event_cleanup(&ev);
    if (s != QFS_OK) snprintf(err, errlen, "the event's account or region cannot make a subject");
    return s == QFS_OK ? QFS_OK : QFS_PROTOCOL;
}
