/* SNS Publish (aws-wire.md §2.2): RFC 3986 form encoding via curl_easy_escape, XML MessageId. */
#include "qfs/aws_sns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/util.h"

#define MAX_ARN 1024
#define MAX_ATTRIBUTE_NAME 256
#define MAX_ATTRIBUTE_VALUE (64 * 1024)
#define MAX_MESSAGE_ID 100
#define REQUEST_CAP (QFS_SNS_MAX_MESSAGE * 3 + 256 * 1024)

static qfs_status put_param(struct qfs_buf *out, const char *name, const char *value, size_t len)
{
    qfs_status st = qfs_buf_puts(out, "&");
    if (st == QFS_OK) st = qfs_aws_form_escape(name, strlen(name), out);
    if (st == QFS_OK) st = qfs_buf_puts(out, "=");
    if (st == QFS_OK) st = qfs_aws_form_escape(value, len, out);
    return st;
}

/* Printable ASCII only, no line breaks, at most 99 characters: what every SNS doc accepts. */
static void sanitise_subject(const char *in, char out[QFS_SNS_MAX_SUBJECT + 1])
{
    size_t n = 0;
    /* SNS refuses a subject that starts with a blank. */
    while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n') in++;
    for (const unsigned char *p = (const unsigned char *)in; *p && n < QFS_SNS_MAX_SUBJECT; p++) {
        if (*p >= 0x20 && *p < 0x7F) out[n++] = (char)*p;
        else if (*p == '\r' || *p == '\n' || *p == '\t') out[n++] = ' ';
        else if (*p >= 0xC0) out[n++] = '?'; /* one mark per non-ASCII character */
    }
    while (n > 0 && out[n - 1] == ' ') n--;
    out[n] = '\0';
}

static bool is_utf8(const char *s)
{
    return s && qfs_utf8_is_valid(s, strlen(s));
}

qfs_status qfs_sns_publish_encode(const struct qfs_sns_publish *p, struct qfs_buf *out)
{
    if (!p || !p->topic_arn || strncmp(p->topic_arn, "arn:", 4) != 0 || strlen(p->topic_arn) > MAX_ARN ||
        !is_utf8(p->topic_arn) || !p->message || !*p->message || !is_utf8(p->message))
        return QFS_INVALID_ARG;
    if (p->nattributes > QFS_SNS_MAX_ATTRIBUTES || (p->nattributes && !p->attributes))
        return QFS_INVALID_ARG;
    /* SNS counts the attributes (name, type and value) in the 256 KiB along with the message. */
    size_t total = strlen(p->message);
    for (size_t i = 0; i < p->nattributes; i++) {
        const struct qfs_sns_attribute *a = &p->attributes[i];
        total += (a->name ? strlen(a->name) : 0) + (a->value ? strlen(a->value) : 0) +
                 strlen(a->data_type ? a->data_type : "String");
    }
    if (total > QFS_SNS_MAX_MESSAGE) return QFS_TOO_BIG;
    for (size_t i = 0; i < p->nattributes; i++) {
        const struct qfs_sns_attribute *a = &p->attributes[i];
        const char *type = a->data_type ? a->data_type : "String";
        if (!a->name || !*a->name || strlen(a->name) > MAX_ATTRIBUTE_NAME || !is_utf8(a->name) ||
            !a->value || !*a->value || strlen(a->value) > MAX_ATTRIBUTE_VALUE || !is_utf8(a->value) ||
            (strcmp(type, "String") != 0 && strcmp(type, "Number") != 0 &&
             strcmp(type, "String.Array") != 0))
            return QFS_INVALID_ARG;
    }
    qfs_status st = qfs_buf_puts(out, "Action=Publish");
    if (st == QFS_OK) st = put_param(out, "Message", p->message, strlen(p->message));
    for (size_t i = 0; st == QFS_OK && i < p->nattributes; i++) {
        const struct qfs_sns_attribute *a = &p->attributes[i];
        char key[80];
        snprintf(key, sizeof(key), "MessageAttributes.entry.%zu.Name", i + 1);
        st = put_param(out, key, a->name, strlen(a->name));
        snprintf(key, sizeof(key), "MessageAttributes.entry.%zu.Value.DataType", i + 1);
        const char *type = a->data_type ? a->data_type : "String";
        if (st == QFS_OK) st = put_param(out, key, type, strlen(type));
        snprintf(key, sizeof(key), "MessageAttributes.entry.%zu.Value.StringValue", i + 1);
        if (st == QFS_OK) st = put_param(out, key, a->value, strlen(a->value));
    }
    if (st == QFS_OK && p->subject) {
        char subject[QFS_SNS_MAX_SUBJECT + 1];
        sanitise_subject(p->subject, subject);
        if (*subject) st = put_param(out, "Subject", subject, strlen(subject));
    }
    if (st == QFS_OK) st = put_param(out, "TopicArn", p->topic_arn, strlen(p->topic_arn));
    if (st == QFS_OK) st = qfs_buf_puts(out, "&Version=2010-03-31");
    return st;
}

qfs_status qfs_sns_publish_decode(const char *body, size_t len, char **message_id)
{
    *message_id = NULL;
    qfs_status st = qfs_aws_xml_text(body, len, "MessageId", MAX_MESSAGE_ID, message_id);
    if (st == QFS_OK && !**message_id) st = QFS_PROTOCOL;
    if (st != QFS_OK) {
        free(*message_id);
        *message_id = NULL;
        return QFS_PROTOCOL;
    }
    return QFS_OK;
}

struct publish_ctx {
    qfs_sns_publish_fn cb;
    void *arg;
};

static void on_published(const struct qfs_aws_response *r, void *arg)
{
    struct publish_ctx *x = arg;
    char *id = NULL;
    struct qfs_aws_response scratch;
    if (r->status == QFS_OK)
        r = qfs_aws_response_decoded(r, qfs_sns_publish_decode(r->body, r->body_len, &id), "Publish",
                                     &scratch);
    x->cb(r, r->status == QFS_OK ? id : NULL, x->arg);
    free(id);
    free(x);
}

qfs_status qfs_sns_publish(struct qfs_aws *aws, const struct qfs_sns_publish *p,
                           qfs_sns_publish_fn cb, void *arg)
{
    struct qfs_buf b;
    char region[40];
    qfs_buf_init(&b, REQUEST_CAP);
    qfs_status st = qfs_sns_publish_encode(p, &b);
    struct publish_ctx *x = NULL;
    if (st != QFS_OK) goto out;
    x = qfs_xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    struct qfs_aws_call c = {
        .service = QFS_AWS_SNS,
        .region = qfs_aws_arn_region(p->topic_arn, region, sizeof(region)) ? region : NULL,
        .protocol = QFS_AWS_QUERY,
        .body = b.data,
        .body_len = b.len,
    };
    st = qfs_aws_call(aws, &c, on_published, x);
    if (st == QFS_OK) x = NULL;
out:
    free(x);
    qfs_buf_cleanup(&b);
    return st;
}
