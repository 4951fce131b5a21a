/* Qualys settings: the shared config rows, the POD table (reference §1) and the combination check. */
#include "qfs/qualys.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct qualys_config_holder {
    struct qfs_qualys_config c;
};

const struct qfs_config_var qfs_qualys_config_vars[QFS_QUALYS_NCONFIG_VARS] = {
    QFS_QUALYS_CONFIG_VARS(struct qualys_config_holder, c),
};

/* Reference §1. KSA1 is qualysksa.com: the "qualys.sa" seen in one public client is a typo (§7). */
static const struct {
    const char *pod;
    const char *url;
} pods[] = {
    {"US1", "https://gateway.qg1.apps.qualys.com"},
    {"US2", "https://gateway.qg2.apps.qualys.com"},
    {"US3", "https://gateway.qg3.apps.qualys.com"},
    {"US4", "https://gateway.qg4.apps.qualys.com"},
    {"EU1", "https://gateway.qg1.apps.qualys.eu"},
    {"EU2", "https://gateway.qg2.apps.qualys.eu"},
    {"EU3", "https://gateway.qg3.apps.qualys.it"},
    {"IN1", "https://gateway.qg1.apps.qualys.in"},
    {"CA1", "https://gateway.qg1.apps.qualys.ca"},
    {"AE1", "https://gateway.qg1.apps.qualys.ae"},
    {"UK1", "https://gateway.qg1.apps.qualys.co.uk"},
    {"AU1", "https://gateway.qg1.apps.qualys.com.au"},
    {"KSA1", "https://gateway.qg1.apps.qualysksa.com"},
};

const char *qfs_qualys_pod_gateway(const char *pod)
{
    for (size_t i = 0; pod && i < sizeof(pods) / sizeof(pods[0]); i++)
        if (strcasecmp(pods[i].pod, pod) == 0) return pods[i].url;
    return NULL;
}

static bool host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
        return true;
    /* 127.0.0.0/8 written as a dotted quad. */
    if (strncmp(host, "127.", 4) != 0) return false;
    int dots = 0;
    for (const char *p = host; *p; p++) {
        if (*p == '.') dots++;
        else if (*p < '0' || *p > '9') return false;
    }
    return dots == 3;
}

qfs_status qfs_qualys_gateway_check(const char *url)
{
    if (!url || !*url || strlen(url) > 512) return QFS_INVALID_ARG;
    qfs_status st = QFS_INVALID_ARG;
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *fragment = NULL;
    CURLU *u = curl_url();
    if (!u) return QFS_INTERNAL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    /* No credentials, query or fragment in a base URL: they would end up in every request. */
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "https") == 0 || (strcasecmp(scheme, "http") == 0 && host_is_loopback(host)))
        st = QFS_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return st;
}

static bool set(const char *s)
{
    return s && *s;
}

#define PROBLEM(...)                                  \
    do {                                              \
        if (err) fprintf(err, __VA_ARGS__);           \
        st = QFS_PROTOCOL;                            \
    } while (0)

qfs_status qfs_qualys_config_check(const struct qfs_qualys_config *c, FILE *err)
{
    qfs_status st = QFS_OK;
    bool token = set(c->api_token), user = set(c->username), pass = set(c->password);
    bool secret = set(c->secret_arn);
    int sources = (int)token + (int)(user || pass) + (int)secret;
    if (sources == 0)
        PROBLEM("QUALYS_API_TOKEN: Qualys credentials missing: set QUALYS_API_TOKEN, or "
                "QUALYS_USERNAME and QUALYS_PASSWORD, or QFS_QUALYS_SECRET_ARN\n");
    else if (sources > 1)
        PROBLEM("QUALYS_API_TOKEN: set only one of QUALYS_API_TOKEN, QUALYS_USERNAME/QUALYS_PASSWORD "
                "and QFS_QUALYS_SECRET_ARN\n");
    if (user && !pass) PROBLEM("QUALYS_PASSWORD: required with QUALYS_USERNAME\n");
    if (pass && !user) PROBLEM("QUALYS_USERNAME: required with QUALYS_PASSWORD\n");
    if (secret && strlen(c->secret_arn) > 2048) PROBLEM("QFS_QUALYS_SECRET_ARN: too long\n");

    bool url = set(c->gateway_url), pod = set(c->pod);
    if (!url && !pod)
        PROBLEM("QUALYS_POD: the Qualys gateway is missing: set QUALYS_POD or QUALYS_GATEWAY_URL\n");
    else if (url && pod)
        PROBLEM("QUALYS_GATEWAY_URL: set only one of QUALYS_GATEWAY_URL and QUALYS_POD\n");
    else if (pod && !qfs_qualys_pod_gateway(c->pod))
        PROBLEM("QUALYS_POD: \"%.16s\" is not a Qualys platform (US1, US2, US3, US4, EU1, EU2, EU3, IN1, "
                "CA1, AE1, UK1, AU1, KSA1)\n", c->pod);
    else if (url && qfs_qualys_gateway_check(c->gateway_url) != QFS_OK)
        PROBLEM("QUALYS_GATEWAY_URL: must be an https:// URL (http:// only to a loopback host), "
                "without credentials, query or fragment\n");
    return st;
}

void qfs_qualys_options_from_config(const struct qfs_qualys_config *c, struct qfs_aws *aws,
                                    struct qfs_qualys_options *o)
{
    memset(o, 0, sizeof(*o));
    o->gateway_url = set(c->gateway_url) ? c->gateway_url : NULL;
    o->pod = set(c->pod) ? c->pod : NULL;
    o->api_token = set(c->api_token) ? c->api_token : NULL;
    o->username = set(c->username) ? c->username : NULL;
    o->password = set(c->password) ? c->password : NULL;
    o->secret_arn = set(c->secret_arn) ? c->secret_arn : NULL;
    o->aws = aws;
    o->force_scan = c->force_scan;
}
