/* Qualys client, pure parts: the POD table and config check, QQL values that must not break out
 * of their quotes, URL and form encoding, the decoders on the reference's examples and on hostile
 * bodies, the vulnerability summary, waits, tokens and the one status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qfs/config.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/qualys.h"
#include "qfs/util.h"

#define SHA_A "2582034a3b2ae939ae7de0024fef7222e3b80bb4c300f6e7b1025b6afd95244f"
#define SHA_B "e17b3fbae110eb1d86bd51bf5266c049fdf9d08b2c40309536215ab8fcac5f99"
#define DIGEST_A "7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c"
#define ECR_HOST "123456789012.dkr.ecr.us-east-1.amazonaws.com"

static qfs_status decode_aws_base(const char *body, struct qfs_qualys_aws_base *out)
{
    return qfs_qualys_decode_aws_base(body, strlen(body), out);
}

/* Runs qfs_qualys_config_check and returns what it wrote (caller frees). */
static char *check_config(const struct qfs_qualys_config *c, qfs_status *st)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *st = qfs_qualys_config_check(c, f);
    fclose(f);
    return text;
}

/* ---- gateway and configuration ------------------------------------------------------------- */

static void test_pod_table(void **state)
{
    static const char *const expect[][2] = {
        {"US1", "https://gateway.qg1.apps.qualys.com"},   {"US2", "https://gateway.qg2.apps.qualys.com"},
        {"US3", "https://gateway.qg3.apps.qualys.com"},   {"US4", "https://gateway.qg4.apps.qualys.com"},
        {"EU1", "https://gateway.qg1.apps.qualys.eu"},    {"EU2", "https://gateway.qg2.apps.qualys.eu"},
        {"EU3", "https://gateway.qg3.apps.qualys.it"},    {"IN1", "https://gateway.qg1.apps.qualys.in"},
        {"CA1", "https://gateway.qg1.apps.qualys.ca"},    {"AE1", "https://gateway.qg1.apps.qualys.ae"},
        {"UK1", "https://gateway.qg1.apps.qualys.co.uk"}, {"AU1", "https://gateway.qg1.apps.qualys.com.au"},
        {"KSA1", "https://gateway.qg1.apps.qualysksa.com"},
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        assert_string_equal(qfs_qualys_pod_gateway(expect[i][0]), expect[i][1]);
        assert_int_equal(qfs_qualys_gateway_check(expect[i][1]), QFS_OK);
    }
    assert_string_equal(qfs_qualys_pod_gateway("eu2"), "https://gateway.qg2.apps.qualys.eu");
    assert_null(qfs_qualys_pod_gateway("US5"));
    assert_null(qfs_qualys_pod_gateway("KSA"));
    assert_null(qfs_qualys_pod_gateway(""));
    assert_null(qfs_qualys_pod_gateway(NULL));
    /* The public client's typo host is not in the table under any name. */
    assert_null(strstr(qfs_qualys_pod_gateway("KSA1"), "qualys.sa"));
}

static void test_gateway_scheme(void **state)
{
    assert_int_equal(qfs_qualys_gateway_check("https://gateway.example.com/"), QFS_OK);
    assert_int_equal(qfs_qualys_gateway_check("http://127.0.0.1:8080"), QFS_OK);
    assert_int_equal(qfs_qualys_gateway_check("http://localhost:1234"), QFS_OK);
    assert_int_equal(qfs_qualys_gateway_check("http://[::1]:1234"), QFS_OK);
    assert_int_equal(qfs_qualys_gateway_check("http://gateway.qg1.apps.qualys.com"), QFS_INVALID_ARG);
    assert_int_equal(qfs_qualys_gateway_check("http://127.0.0.1.evil.com"), QFS_INVALID_ARG);
    assert_int_equal(qfs_qualys_gateway_check("ftp://127.0.0.1"), QFS_INVALID_ARG);
    assert_int_equal(qfs_qualys_gateway_check("https://user:pw@gateway.example.com"), QFS_INVALID_ARG);
    assert_int_equal(qfs_qualys_gateway_check("https://gateway.example.com/?a=b"), QFS_INVALID_ARG);
    assert_int_equal(qfs_qualys_gateway_check("gateway.example.com"), QFS_INVALID_ARG);
    assert_int_equal(qfs_qualys_gateway_check(""), QFS_INVALID_ARG);
}

static void test_config_check_names_the_missing_combination(void **state)
{
    qfs_status st;
    char *out;
    struct qfs_qualys_config c = {0};

    out = check_config(&c, &st);
    assert_int_equal(st, QFS_PROTOCOL);
    assert_non_null(strstr(out, "QUALYS_USERNAME and QUALYS_PASSWORD"));
    assert_non_null(strstr(out, "QUALYS_POD or QUALYS_GATEWAY_URL"));
    free(out);

    c.username = "alice";
    c.pod = "US2";
    out = check_config(&c, &st);
    assert_int_equal(st, QFS_PROTOCOL);
    assert_non_null(strstr(out, "QUALYS_PASSWORD: required with QUALYS_USERNAME"));
    free(out);

    c.password = "secret-password";
    out = check_config(&c, &st);
    assert_int_equal(st, QFS_OK);
    assert_string_equal(out, "");
    free(out);

    c.api_token = "token-token";
    out = check_config(&c, &st);
    assert_int_equal(st, QFS_PROTOCOL);
    assert_non_null(strstr(out, "set only one of"));
    assert_null(strstr(out, "token-token")); /* never echoes a secret */
    assert_null(strstr(out, "secret-password"));
    free(out);

    c = (struct qfs_qualys_config){.secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:q",
                                   .pod = "XX9"};
    out = check_config(&c, &st);
    assert_int_equal(st, QFS_PROTOCOL);
    assert_non_null(strstr(out, "QUALYS_POD: \"XX9\" is not a Qualys platform"));
    free(out);

    c.pod = NULL;
    c.gateway_url = "http://qualys.example.com";
    out = check_config(&c, &st);
    assert_int_equal(st, QFS_PROTOCOL);
    assert_non_null(strstr(out, "QUALYS_GATEWAY_URL"));
    free(out);

    c.pod = "US1";
    c.gateway_url = "https://qualys.example.com";
    out = check_config(&c, &st);
    assert_int_equal(st, QFS_PROTOCOL);
    assert_non_null(strstr(out, "set only one of QUALYS_GATEWAY_URL and QUALYS_POD"));
    free(out);
}

/* A service's config struct with the Qualys block somewhere inside it. */
struct svc_config {
    int64_t before;
    struct qfs_qualys_config qualys;
    char *after;
};

static void test_config_rows_splice_into_a_service_table(void **state)
{
    static const struct qfs_config_var vars[] = {
        {"QFS_TEST_BEFORE", QFS_CFG_INT, "7", 0, 0, "x", false, false,
         QFS_CFG_FIELD(struct svc_config, before), NULL},
        QFS_QUALYS_CONFIG_VARS(struct svc_config, qualys),
        {"QFS_TEST_AFTER", QFS_CFG_STRING, "tail", 0, 0, "y", false, false,
         QFS_CFG_FIELD(struct svc_config, after), NULL},
    };
    setenv("QUALYS_USERNAME", "svc-user", 1);
    setenv("QUALYS_PASSWORD", "svc-password-1234", 1);
    setenv("QUALYS_POD", "UK1", 1);
    setenv("QFS_QUALYS_FORCE_SCAN", "yes", 1);
    struct svc_config c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(qfs_config_load(vars, sizeof(vars) / sizeof(vars[0]), &c, NULL), QFS_OK);
    assert_int_equal(c.before, 7);
    assert_string_equal(c.after, "tail");
    assert_string_equal(c.qualys.username, "svc-user");
    assert_string_equal(c.qualys.password, "svc-password-1234");
    assert_string_equal(c.qualys.pod, "UK1");
    assert_null(c.qualys.api_token);
    assert_true(c.qualys.force_scan);
    assert_int_equal(qfs_qualys_config_check(&c.qualys, NULL), QFS_OK);
    char masked[128];
    qfs_log_mask("pw=svc-password-1234", masked, sizeof(masked));
    assert_string_equal(masked, "pw=****");

    struct qfs_qualys_options o;
    qfs_qualys_options_from_config(&c.qualys, NULL, &o);
    assert_string_equal(o.pod, "UK1");
    assert_null(o.gateway_url);
    assert_true(o.force_scan);

    /* The bare table fills a bare struct the same way; secrets are masked in the listing. */
    struct qfs_qualys_config bare;
    memset(&bare, 0, sizeof(bare));
    assert_int_equal(qfs_config_load(qfs_qualys_config_vars, QFS_QUALYS_NCONFIG_VARS, &bare, NULL), QFS_OK);
    assert_string_equal(bare.username, "svc-user");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    qfs_config_print_effective(qfs_qualys_config_vars, QFS_QUALYS_NCONFIG_VARS, &bare, f);
    fclose(f);
    assert_non_null(strstr(text, "QUALYS_PASSWORD=****"));
    assert_null(strstr(text, "svc-password-1234"));
    free(text);
    qfs_config_cleanup(qfs_qualys_config_vars, QFS_QUALYS_NCONFIG_VARS, &bare);
    qfs_config_cleanup(vars, sizeof(vars) / sizeof(vars[0]), &c);
    unsetenv("QUALYS_USERNAME");
    unsetenv("QUALYS_PASSWORD");
    unsetenv("QUALYS_POD");
    unsetenv("QFS_QUALYS_FORCE_SCAN");
    qfs_log_clear_secrets();
}

/* ---- values that go into QQL and paths ----------------------------------------------------- */

static void test_qql_values_cannot_break_out(void **state)
{
    static const char *const bad_repos[] = {
        "web\" or repo.tag:\"x", "web\\", "web\\\"", "web\n", "web\r\nX: y", "web%22", "web%0a",
        "web or x", "Web", "web'", "web)", "web:1", "", "we b", "web\t", "w\x01", "w\xc3\xa9",
    };
    static const char *const bad_tags[] = {
        "1.4.2\" or repo.tag:\"x", "a\\b", "a\nb", "a%22", "a,b", "a b", "a:b", "a/b", "", "a\"",
    };
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    for (size_t i = 0; i < sizeof(bad_repos) / sizeof(bad_repos[0]); i++) {
        assert_false(qfs_qualys_repository_is_valid(bad_repos[i]));
        assert_int_equal(qfs_qualys_image_filter(ECR_HOST, bad_repos[i], "1.0", &b), QFS_PROTOCOL);
    }
    for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
        assert_false(qfs_qualys_tag_is_valid(bad_tags[i]));
        assert_int_equal(qfs_qualys_image_filter(ECR_HOST, "web", bad_tags[i], &b), QFS_PROTOCOL);
    }
    assert_int_equal(qfs_qualys_image_filter(ECR_HOST "\"", "web", "1", &b), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_image_filter("host%22x", "web", "1", &b), QFS_PROTOCOL);
    assert_int_equal(b.len, 0); /* nothing was built */

    char long_repo[300];
    memset(long_repo, 'a', sizeof(long_repo) - 1);
    long_repo[sizeof(long_repo) - 1] = '\0';
    assert_false(qfs_qualys_repository_is_valid(long_repo));
    assert_true(qfs_qualys_repository_is_valid("batch/migrate"));
    assert_true(qfs_qualys_repository_is_valid("team-a/web_app.v2"));
    assert_true(qfs_qualys_tag_is_valid("1.4.2"));
    assert_true(qfs_qualys_tag_is_valid("Release_2026-05.1"));

    assert_int_equal(qfs_qualys_image_filter(ECR_HOST, "batch/migrate", "2026.05", &b), QFS_OK);
    assert_string_equal(b.data, "repo.registry:\"" ECR_HOST "\" and repo.repository:\"batch/migrate\" and "
                                "repo.tag:\"2026.05\"");
    qfs_buf_cleanup(&b);

    assert_true(qfs_qualys_sha_is_valid(SHA_A));
    assert_true(qfs_qualys_sha_is_valid("sha256:" SHA_A));
    assert_false(qfs_qualys_sha_is_valid("sha256:" SHA_A "0"));
    assert_false(qfs_qualys_sha_is_valid("2582034a3b2a"));
    assert_false(qfs_qualys_sha_is_valid("../../registry/aws-base"));
    assert_false(qfs_qualys_sha_is_valid(SHA_A "\""));
    assert_true(qfs_qualys_host_is_valid(ECR_HOST));
    assert_true(qfs_qualys_host_is_valid("localhost:5000"));
    assert_false(qfs_qualys_host_is_valid("host:"));
    assert_false(qfs_qualys_host_is_valid("a/b"));
    assert_false(qfs_qualys_host_is_valid("-host"));
    assert_true(qfs_qualys_uuid_is_valid("3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21"));
    assert_false(qfs_qualys_uuid_is_valid("3f0c/../x"));
    assert_false(qfs_qualys_uuid_is_valid(""));

    char uri[160];
    assert_int_equal(qfs_qualys_ecr_registry_uri("123456789012", "us-east-1", uri, sizeof(uri)), QFS_OK);
    assert_string_equal(uri, "https://" ECR_HOST);
    assert_int_equal(qfs_qualys_ecr_registry_uri("123456789012", "cn-north-1", uri, sizeof(uri)), QFS_OK);
    assert_string_equal(uri, "https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn");
    assert_int_equal(qfs_qualys_ecr_registry_uri("12345678901a", "us-east-1", uri, sizeof(uri)), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_ecr_registry_uri("123456789012", "US_EAST", uri, sizeof(uri)), QFS_PROTOCOL);
}

/* Percent-decodes s (a test oracle independent of curl). */
static char *url_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static void test_encoding_once(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    assert_int_equal(qfs_qualys_auth_form("ops@example.com", "p&ss=w+rd%20 x", &b), QFS_OK);
    assert_string_equal(b.data, "username=ops%40example.com&password=p%26ss%3Dw%2Brd%2520%20x&token=true");
    /* Exactly three fields survive, and the password comes back byte for byte. */
    const char *pw = strstr(b.data, "&password=") + 10;
    char *value = strndup(pw, (size_t)(strstr(pw, "&token=") - pw));
    char *decoded = url_decode(value);
    assert_string_equal(decoded, "p&ss=w+rd%20 x");
    free(decoded);
    free(value);
    qfs_buf_reset(&b);
    assert_int_equal(qfs_qualys_auth_form("u", "", &b), QFS_INVALID_ARG);

    qfs_buf_reset(&b);
    assert_int_equal(qfs_qualys_url_escape("registryUri:\"https://" ECR_HOST "\"", &b), QFS_OK);
    assert_string_equal(b.data, "registryUri%3A%22https%3A%2F%2F" ECR_HOST "%22");
    assert_null(strstr(b.data, "%25")); /* not encoded twice */
    decoded = url_decode(b.data);
    assert_string_equal(decoded, "registryUri:\"https://" ECR_HOST "\"");
    free(decoded);
    qfs_buf_cleanup(&b);
}

/* ---- decoders ------------------------------------------------------------------------------ */

static void test_decode_aws_base(void **state)
{
    struct qfs_qualys_aws_base b;
    /* The reference's example. */
    assert_int_equal(decode_aws_base("{ \"accountId\": \"805950163170\", \"externalId\": 8146502212734410 }", &b),
                     QFS_OK);
    assert_string_equal(b.account_id, "805950163170");
    assert_string_equal(b.external_id, "8146502212734410");
    /* Above 2^53 a double would round: the digits are kept as sent. */
    assert_int_equal(decode_aws_base("{\"accountId\":\"805950163170\",\"externalId\":98765432109876543211}", &b),
                     QFS_OK);
    assert_string_equal(b.external_id, "98765432109876543211");
    assert_int_equal(decode_aws_base("{\"externalId\":9007199254740993,\"accountId\":\"805950163170\"}", &b),
                     QFS_OK);
    assert_string_equal(b.external_id, "9007199254740993");
    /* Strings and numbers either way round; nested values before it do not confuse the scan. */
    assert_int_equal(decode_aws_base("{\"x\":{\"externalId\":1,\"y\":[\"}\",{}]},\"accountId\":805950163170,"
                                     "\"externalId\":\"8146502212734410\"}", &b), QFS_OK);
    assert_string_equal(b.account_id, "805950163170");
    assert_string_equal(b.external_id, "8146502212734410");
    assert_int_equal(decode_aws_base("{\"accountId\":12345678901,\"externalId\":5}", &b), QFS_OK);
    assert_string_equal(b.account_id, "012345678901");

    static const char *const bad[] = {
        "", "null", "[]", "\"x\"", "{}", "{\"accountId\":null,\"externalId\":null}",
        "{\"accountId\":\"805950163170\",\"externalId\":null}",
        "{\"accountId\":\"805950163170\",\"externalId\":1.5e16}",
        "{\"accountId\":\"805950163170\",\"externalId\":-5}",
        "{\"accountId\":\"805950163170\",\"externalId\":12.0}",
        "{\"accountId\":\"805950163170\",\"externalId\":[1]}",
        "{\"accountId\":\"805950163170\",\"externalId\":{\"v\":1}}",
        "{\"accountId\":\"805950163170\",\"externalId\":true}",
        "{\"accountId\":\"805950163170\",\"externalId\":\"a\\\"b\"}",
        "{\"accountId\":\"805950163170\",\"externalId\":\"a b\"}",
        "{\"accountId\":\"80595016317a\",\"externalId\":1}",
        "{\"accountId\":\"8059501631700\",\"externalId\":1}",
        "{\"accountId\":[805950163170],\"externalId\":1}",
        "{\"accountId\":\"805950163170\",\"externalId\":1",
        "{\"accountId\":\"805950163170\",\"externalId\":1} trailing",
        "{\"accountId\":\"805950163170\",\"externalId\":1}{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(decode_aws_base(bad[i], &b), QFS_PROTOCOL);
        assert_string_equal(b.external_id, "");
    }
    char big[200];
    snprintf(big, sizeof(big), "{\"accountId\":\"805950163170\",\"externalId\":%s}",
             "1234567890123456789012345678901234567890123456789012345678901234567890");
    assert_int_equal(decode_aws_base(big, &b), QFS_PROTOCOL);
}

static void test_decode_connectors(void **state)
{
    struct qfs_qualys_connector *c;
    size_t n;
    const char *ref = "[ { \"name\": \"ecr-connector-20250101\","
                      " \"arn\": \"arn:aws:iam::123456789012:role/QualysECRRole\","
                      " \"description\": \"ECR scanning\" } ]";
    assert_int_equal(qfs_qualys_decode_connectors(ref, strlen(ref), &c, &n), QFS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].name, "ecr-connector-20250101");
    assert_string_equal(c[0].arn, "arn:aws:iam::123456789012:role/QualysECRRole");
    assert_string_equal(c[0].description, "ECR scanning");
    free(c);

    const char *wrapped = "{\"data\":[{\"name\":null,\"arn\":\"arn:aws:iam::1:role/A\",\"description\":null},"
                          "{\"name\":\"x\",\"arn\":null},{\"arn\":42},null,7,{\"arn\":\"not-an-arn\"},"
                          "{\"name\":12,\"arn\":\"arn:aws:iam::2:role/B\"}]}";
    assert_int_equal(qfs_qualys_decode_connectors(wrapped, strlen(wrapped), &c, &n), QFS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].arn, "arn:aws:iam::1:role/A");
    assert_string_equal(c[0].name, "");
    assert_string_equal(c[1].name, "12"); /* a number as text */
    free(c);

    static const char *const empty[] = {"[]", "{\"data\":[]}", "{\"data\":null}", ""};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(qfs_qualys_decode_connectors(empty[i], strlen(empty[i]), &c, &n), QFS_OK);
        assert_int_equal(n, 0);
        free(c);
    }
    static const char *const bad[] = {"{}", "{\"data\":\"x\"}", "\"x\"", "[", "null"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(qfs_qualys_decode_connectors(bad[i], strlen(bad[i]), &c, &n), QFS_PROTOCOL);
        assert_null(c);
    }
    /* A huge array is refused, not walked. */
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "[");
    for (int i = 0; i < 5000; i++) qfs_buf_puts(&b, i ? ",{}" : "{}");
    qfs_buf_puts(&b, "]");
    assert_int_equal(qfs_qualys_decode_connectors(b.data, b.len, &c, &n), QFS_TOO_BIG);
    qfs_buf_cleanup(&b);
}

static void test_decode_registry_page(void **state)
{
    const char *ref =
        "{ \"count\": 1, \"data\": [ { \"registryUuid\": \"3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21\","
        " \"registryUri\": \"https://123456789012.dkr.ecr.us-east-1.amazonaws.com\","
        " \"registryName\": \"ecr-prod-use1\","
        " \"registryType\": \"AWS\", \"providerType\": \"AWS\", \"awsAccountId\": \"123456789012\","
        " \"awsRegion\": \"us-east-1\","
        " \"dockerHubOrg\": null, \"created\": \"1735689600000\", \"updated\": \"1735689600000\","
        " \"lastScanned\": null,"
        " \"repoCount\": 0, \"totalImages\": 0, \"totalScannedImages\": 0, \"totalVulnerableImages\": 0,"
        " \"scheduleStatusList\": {} } ] }";
    struct qfs_qualys_registry r;
    bool found = false;
    size_t rows;
    assert_int_equal(qfs_qualys_decode_registry_page(ref, strlen(ref), "https://" ECR_HOST, &r, &found, &rows),
                     QFS_OK);
    assert_true(found);
    assert_int_equal(rows, 1);
    assert_string_equal(r.uuid, "3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21");
    assert_string_equal(r.name, "ecr-prod-use1");
    assert_string_equal(r.account_id, "123456789012");
    assert_string_equal(r.region, "us-east-1");

    /* Exact match client-side: a prefix or another registry is not it; case and a '/' are. */
    const char *page = "{\"data\":[null,{\"registryUuid\":\"aaaa\",\"registryUri\":\"https://" ECR_HOST ".evil\"},"
                       "{\"registryUuid\":\"bbbb\",\"registryUri\":\"https://12345678901.dkr.ecr.us-east-1.amazonaws.com\"},"
                       "{\"registryUuid\":\"x\\\"y\",\"registryUri\":\"https://" ECR_HOST "\"},"
                       "{\"registryUuid\":\"cccc\",\"registryUri\":\"HTTPS://123456789012.DKR.ECR.us-east-1.amazonaws.com/\"},"
                       "{\"registryUuid\":\"dddd\",\"registryUri\":\"https://" ECR_HOST "\"}]}";
    found = false;
    assert_int_equal(qfs_qualys_decode_registry_page(page, strlen(page), ECR_HOST, &r, &found, &rows), QFS_OK);
    assert_true(found);
    assert_int_equal(rows, 6);
    assert_string_equal(r.uuid, "cccc");

    found = false;
    const char *other = "{\"data\":[{\"registryUuid\":\"aaaa\",\"registryUri\":\"https://" ECR_HOST ".evil\"}]}";
    assert_int_equal(qfs_qualys_decode_registry_page(other, strlen(other), ECR_HOST, &r, &found, &rows), QFS_OK);
    assert_false(found);
    assert_int_equal(qfs_qualys_decode_registry_page("{\"data\":null}", 13, ECR_HOST, &r, &found, &rows), QFS_OK);
    assert_int_equal(rows, 0);
    assert_int_equal(qfs_qualys_decode_registry_page("{\"data\":{}}", 11, ECR_HOST, &r, &found, &rows),
                     QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_decode_registry_page("<html>", 6, ECR_HOST, &r, &found, &rows), QFS_PROTOCOL);
    assert_false(found);
}

static void test_decode_created_id(void **state)
{
    static const char *const keys[] = {"scheduleUuid", "scheduleId", NULL};
    char id[64];
    const char *cases[][2] = {
        {"{\"scheduleUuid\":\"9b7c2f4e-1111-2222-3333-444455556666\"}", "9b7c2f4e-1111-2222-3333-444455556666"},
        {"{\"scheduleId\":\"abc-123\"}", "abc-123"},
        {"\"0e6b1d0f-9d1e-4c1b-8a55-3f0c6a527a21\"", "0e6b1d0f-9d1e-4c1b-8a55-3f0c6a527a21"},
        {"0e6b1d0f-9d1e-4c1b-8a55-3f0c6a527a21\r\n", "0e6b1d0f-9d1e-4c1b-8a55-3f0c6a527a21"},
        {"\"abc-456\"", ""},
        {"{}", ""},
        {"", ""},
        {"\"Schedule created successfully\"", ""},
        {"Created", ""},
        {"{\"scheduleUuid\":null}", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(qfs_qualys_decode_created_id(cases[i][0], strlen(cases[i][0]), keys, id, sizeof(id)),
                         QFS_OK);
        assert_string_equal(id, cases[i][1]);
    }
    const char *bad = "{\"scheduleUuid\":\"../../x\"}";
    assert_int_equal(qfs_qualys_decode_created_id(bad, strlen(bad), keys, id, sizeof(id)), QFS_PROTOCOL);
    assert_string_equal(id, "");
    bad = "{\"scheduleUuid\":123}";
    assert_int_equal(qfs_qualys_decode_created_id(bad, strlen(bad), keys, id, sizeof(id)), QFS_PROTOCOL);
}

static const struct qfs_qualys_image_match match_tag = {ECR_HOST, "my-app", "v1.4.2", NULL};

static void test_decode_image_page(void **state)
{
    /* The reference's example with a real 64-hex digest. */
    const char *ref =
        "{ \"count\": 1, \"data\": [ { \"sha\": \"" SHA_A "\", \"imageId\": \"2582034a3b2a\","
        " \"uuid\": \"b5c1d7e2-3f40-3a51-9c62-7d83e94fa0b1\", \"created\": \"1735689000000\","
        " \"updated\": \"1735689900000\","
        " \"lastScanned\": \"1735689900000\", \"lastUsedDate\": null,"
        " \"repo\": [ { \"registry\": \"" ECR_HOST "\", \"repository\": \"my-app\", \"tag\": \"v1.4.2\" } ],"
        " \"repoDigests\": [ { \"registry\": \"" ECR_HOST "\", \"repository\": \"my-app\","
        " \"digest\": \"" DIGEST_A "\" } ],"
        " \"size\": 187654321, \"source\": [\"REGISTRY\"], \"registryUuid\": \"3f0c6a52-9d1e-4c1b-8a55-0e6b1d0f7a21\","
        " \"vulnerabilities\": { \"severity5Count\": 1, \"severity4Count\": 3, \"severity3Count\": 7,"
        " \"severity2Count\": 2, \"severity1Count\": 0 }, \"scanTypes\": [\"DYNAMIC\"], \"scanStatus\": \"SUCCESS\","
        " \"scanErrorCode\": null, \"associatedContainersCount\": 0, \"associatedHostsCount\": 0,"
        " \"isDockerHubOfficial\": false } ] }";
    struct qfs_qualys_image img;
    bool found = false;
    size_t rows;
    assert_int_equal(qfs_qualys_decode_image_page(ref, strlen(ref), &match_tag, &img, &found, &rows), QFS_OK);
    assert_true(found);
    assert_string_equal(img.sha, SHA_A);
    assert_string_equal(img.scan_status, "SUCCESS");
    assert_string_equal(img.scan_error_code, "");
    assert_int_equal(img.last_scanned_ms, 1735689900000LL);
    assert_true(img.has_vulns);
    assert_int_equal(img.severity_counts[5], 1);
    assert_int_equal(img.severity_counts[4], 3);
    assert_int_equal(img.severity_counts[3], 7);
    assert_int_equal(qfs_qualys_image_state(&img), QFS_QUALYS_SCAN_DONE);

    /* By manifest digest, with or without sha256:, any case. */
    struct qfs_qualys_image_match by_digest = {ECR_HOST, "my-app", "v1.4.2", DIGEST_A};
    found = false;
    assert_int_equal(qfs_qualys_decode_image_page(ref, strlen(ref), &by_digest, &img, &found, &rows), QFS_OK);
    assert_true(found);
    const char *prefixed = "{\"data\":[{\"sha\":\"" SHA_A "\",\"repoDigests\":[{\"digest\":null},"
                           "{\"digest\":\"sha256:7DCB2C37F2269D5B5422DD0337357C380D4F03477105600ED4629900C29F6D0C\"}]}]}";
    found = false;
    assert_int_equal(qfs_qualys_decode_image_page(prefixed, strlen(prefixed), &by_digest, &img, &found, &rows), QFS_OK);
    assert_true(found);
    by_digest.digest = "7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0"; /* one short */
    found = false;
    assert_int_equal(qfs_qualys_decode_image_page(prefixed, strlen(prefixed), &by_digest, &img, &found, &rows), QFS_OK);
    assert_false(found);
    by_digest.digest = SHA_B; /* another manifest: not this image, even with the right tag */
    found = false;
    assert_int_equal(qfs_qualys_decode_image_page(ref, strlen(ref), &by_digest, &img, &found, &rows), QFS_OK);
    assert_false(found);

    /* Newest first; numbers as strings and strings as numbers; nulls; junk rows skipped. */
    const char *two =
        "{\"data\":[null,\"x\",{\"sha\":\"nothex\",\"repo\":[{\"registry\":\"" ECR_HOST "\","
        "\"repository\":\"my-app\",\"tag\":\"v1.4.2\"}]},"
        "{\"sha\":\"" SHA_B "\",\"updated\":1735689000001,\"repo\":[{\"registry\":\"" ECR_HOST "\","
        "\"repository\":\"my-app\",\"tag\":\"v1.4.2\"}],"
        "\"vulnerabilities\":{\"severity5Count\":\"2\",\"severity4Count\":null,\"severity3Count\":-1,"
        "\"severity2Count\":1.5},"
        "\"scanStatus\":null,\"lastScanned\":null,\"scanErrorCode\":null},"
        "{\"sha\":\"" SHA_A "\",\"updated\":\"1735689000000\",\"repo\":[{\"registry\":\"" ECR_HOST "\","
        "\"repository\":\"my-app\",\"tag\":\"other\"},"
        "{\"registry\":\"" ECR_HOST "\",\"repository\":\"my-app\",\"tag\":\"v1.4.2\"}],\"repoDigests\":null,"
        "\"vulnerabilities\":null},"
        "{\"sha\":\"" SHA_A "\",\"updated\":\"9999999999999\",\"repo\":[{\"registry\":\"" ECR_HOST "\","
        "\"repository\":\"my-app-2\",\"tag\":\"v1.4.2\"}]}]}";
    found = false;
    assert_int_equal(qfs_qualys_decode_image_page(two, strlen(two), &match_tag, &img, &found, &rows), QFS_OK);
    assert_int_equal(rows, 6);
    assert_true(found);
    assert_string_equal(img.sha, SHA_B);
    assert_int_equal(img.severity_counts[5], 2);
    assert_int_equal(img.severity_counts[4], 0);
    assert_int_equal(img.severity_counts[3], 0);
    assert_int_equal(img.severity_counts[2], 0);
    assert_int_equal(img.last_scanned_ms, 0);
    assert_int_equal(qfs_qualys_image_state(&img), QFS_QUALYS_SCAN_DONE); /* counts present, no status */

    found = false;
    assert_int_equal(qfs_qualys_decode_image_page("{\"data\":[{}]}", 13, &match_tag, &img, &found, &rows), QFS_OK);
    assert_false(found);
    assert_int_equal(qfs_qualys_decode_image_page("{\"data\":7}", 10, &match_tag, &img, &found, &rows), QFS_PROTOCOL);

    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"data\":[");
    for (int i = 0; i < 1001; i++) qfs_buf_puts(&b, i ? ",{}" : "{}");
    qfs_buf_puts(&b, "]}");
    assert_int_equal(qfs_qualys_decode_image_page(b.data, b.len, &match_tag, &img, &found, &rows), QFS_TOO_BIG);
    qfs_buf_cleanup(&b);
}

static void test_image_detail_and_state(void **state)
{
    struct qfs_qualys_image img;
    const char *done = "{\"sha\":\"" SHA_A "\",\"scanStatus\":\"SUCCESS\",\"lastScanned\":\"1735689900000\","
                       "\"vulnerabilities\":[{\"qid\":1,\"severity\":4},{\"qid\":2,\"severity\":\"5\"},"
                       "{\"severity\":9},null]}";
    assert_int_equal(qfs_qualys_decode_image_detail(done, strlen(done), &img), QFS_OK);
    assert_int_equal(qfs_qualys_image_state(&img), QFS_QUALYS_SCAN_DONE);
    assert_int_equal(img.severity_counts[4], 1);
    assert_int_equal(img.severity_counts[5], 1);

    const char *pending = "{\"sha\":\"" SHA_A "\",\"scanStatus\":null,\"lastScanned\":null,\"vulnerabilities\":null}";
    assert_int_equal(qfs_qualys_decode_image_detail(pending, strlen(pending), &img), QFS_OK);
    assert_int_equal(qfs_qualys_image_state(&img), QFS_QUALYS_SCAN_PENDING);

    const char *failed = "{\"sha\":\"" SHA_A "\",\"scanStatus\":\"FAILED\",\"scanErrorCode\":\"IMAGE_SCAN_FAILED\","
                         "\"scanErrorMessage\":\"Image scan\\nfailed\",\"vulnerabilities\":null}";
    assert_int_equal(qfs_qualys_decode_image_detail(failed, strlen(failed), &img), QFS_OK);
    assert_int_equal(qfs_qualys_image_state(&img), QFS_QUALYS_SCAN_FAILED);
    assert_string_equal(img.scan_error_code, "IMAGE_SCAN_FAILED");
    assert_string_equal(img.scan_error_message, "Image scan failed"); /* control character removed */

    struct qfs_qualys_image s = {0};
    snprintf(s.scan_status, sizeof(s.scan_status), "PENDING");
    assert_int_equal(qfs_qualys_image_state(&s), QFS_QUALYS_SCAN_PENDING);
    snprintf(s.scan_error_code, sizeof(s.scan_error_code), "X");
    assert_int_equal(qfs_qualys_image_state(&s), QFS_QUALYS_SCAN_FAILED);

    static const char *const bad[] = {"{}", "[]", "{\"sha\":null}", "{\"sha\":12}", "{\"sha\":\"" SHA_A "0\"}", "nope"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(qfs_qualys_decode_image_detail(bad[i], strlen(bad[i]), &img), QFS_PROTOCOL);
}

/* The reference's /vuln example. */
static const char *vuln_ref =
    "{ \"details\": [ { \"qid\": 123456, \"title\": \"Alpine Linux Security Update for openssl\", \"severity\": 4,"
    " \"customerSeverity\": 4, \"typeDetected\": \"CONFIRMED\", \"category\": \"Alpine Linux\", \"risk\": 40,"
    " \"cveids\": [\"CVE-2024-0727\"], \"patchAvailable\": true, \"published\": 1706745600000,"
    " \"firstFound\": \"1735689900000\", \"lastFound\": \"1735689900000\", \"port\": null, \"status\": null,"
    " \"software\": [ { \"name\": \"openssl\", \"version\": \"3.1.4-r2\", \"fixVersion\": \"3.1.4-r5\" } ],"
    " \"result\": \"#table cols=\\\"3\\\"\\nPackage Installed_Version Required_Version\\nopenssl 3.1.4-r2 3.1.4-r5\","
    " \"cvss3Info\": { \"baseScore\": \"5.5\", \"temporalScore\": \"4.8\" },"
    " \"threatIntel\": { \"publicExploit\": null, \"activeAttacks\": null, \"noPatch\": null } } ],"
    " \"vulnSummary\": { \"confirmed\": { \"4\": 1 }, \"potential\": {},"
    " \"patchAvailability\": { \"confirmed\": { \"4\": 1 }, \"potential\": {} } } }";

static void test_decode_vulns_reference(void **state)
{
    struct qfs_qualys_vuln_report *r = calloc(1, sizeof(*r));
    assert_int_equal(qfs_qualys_decode_vulns(vuln_ref, strlen(vuln_ref), 10, r), QFS_OK);
    assert_true(r->scanned);
    assert_int_equal(r->total, 1);
    assert_int_equal(r->by_severity[4], 1);
    assert_int_equal(r->patchable, 1);
    assert_int_equal(r->nfindings, 1);
    const struct qfs_qualys_finding *f = &r->findings[0];
    assert_int_equal(f->qid, 123456);
    assert_int_equal(f->severity, 4);
    assert_string_equal(f->title, "Alpine Linux Security Update for openssl");
    assert_int_equal(f->ncves, 1);
    assert_string_equal(f->cves[0], "CVE-2024-0727");
    assert_string_equal(f->package, "openssl");
    assert_string_equal(f->installed_version, "3.1.4-r2");
    assert_string_equal(f->fixed_version, "3.1.4-r5");
    assert_true(f->patchable);

    /* The public clients' mistake: a "data" list is not a vulnerability list. */
    const char *data = "{\"data\":[{\"qid\":1,\"severity\":5}],\"count\":1}";
    assert_int_equal(qfs_qualys_decode_vulns(data, strlen(data), 10, r), QFS_PROTOCOL);
    assert_int_equal(r->total, 0);
    /* Not scanned yet: details null, or a 204. */
    assert_int_equal(qfs_qualys_decode_vulns("{\"details\":null,\"vulnSummary\":null}", 35, 10, r), QFS_OK);
    assert_false(r->scanned);
    assert_int_equal(qfs_qualys_decode_vulns("", 0, 10, r), QFS_OK);
    assert_false(r->scanned);
    assert_int_equal(qfs_qualys_decode_vulns("{\"details\":{\"vulns\":[]}}", 24, 10, r), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_decode_vulns("{\"details\":[]}", 14, 10, r), QFS_OK);
    assert_true(r->scanned);
    assert_int_equal(r->total, 0);
    free(r);
}

static void test_vuln_summary_counts_order_and_bounds(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"details\":[");
    /* Severity ties are ordered by qid; numbers arrive as strings too; junk is ignored, not counted. */
    qfs_buf_puts(&b, "{\"qid\":500,\"severity\":3,\"title\":\"c\",\"patchAvailable\":false,"
                     "\"software\":[{\"name\":\"zlib\",\"version\":\"1\",\"fixVersion\":null}]},"
                     "{\"qid\":\"900\",\"severity\":5,\"title\":\"b\",\"patchAvailable\":null,"
                     "\"software\":[{\"name\":\"p\",\"version\":\"1\",\"fixVersion\":\"2\"}]},"
                     "{\"qid\":200,\"severity\":\"5\",\"title\":null,\"cveids\":null,\"software\":null,"
                     "\"result\":null},"
                     "{\"qid\":300,\"severity\":4,\"result\":\"#table cols=\\\"3\\\"\\n"
                     "Package\\tInstalled Version\\tRequired Version\\nbusybox\\t1.36.1-r15\\t1.36.1-r19\"},"
                     "{\"qid\":301,\"severity\":1,\"result\":\"#table\\nPackage Installed_Version Required_Version\\nmusl 1.2.4 -\"},"
                     "{\"qid\":1,\"severity\":0},{\"qid\":2,\"severity\":6},{\"qid\":3,\"severity\":\"x\"},"
                     "{\"qid\":4,\"severity\":null},"
                     "{\"qid\":5,\"severity\":4.5},null,7,\"s\",[],"
                     "{\"qid\":null,\"severity\":2,\"title\":null,\"cveids\":[null,5,\"CVE-2025-1\","
                     "\"CVE-2025-2\",\"bad cve\",\"CVE-2025-3\","
                     "\"CVE-2025-4\",\"CVE-2025-5\",\"CVE-2025-6\",\"CVE-2025-7\",\"CVE-2025-8\",\"CVE-2025-9\"],"
                     "\"patchAvailable\":true}");
    qfs_buf_puts(&b, "]}");
    struct qfs_qualys_vuln_report *r = calloc(1, sizeof(*r));
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, 10, r), QFS_OK);
    assert_int_equal(r->total, 6);
    assert_int_equal(r->by_severity[5], 2);
    assert_int_equal(r->by_severity[4], 1);
    assert_int_equal(r->by_severity[3], 1);
    assert_int_equal(r->by_severity[2], 1);
    assert_int_equal(r->by_severity[1], 1);
    assert_int_equal(r->ignored, 9);
    assert_int_equal(r->patchable, 3); /* qid 900 (fixVersion), 300 (result), the patchAvailable one */
    assert_int_equal(r->nfindings, 6);
    int64_t order[] = {200, 900, 300, 500, 0, 301};
    for (size_t i = 0; i < 6; i++) assert_int_equal(r->findings[i].qid, order[i]);
    assert_string_equal(r->findings[2].package, "busybox");
    assert_string_equal(r->findings[2].installed_version, "1.36.1-r15");
    assert_string_equal(r->findings[2].fixed_version, "1.36.1-r19");
    assert_string_equal(r->findings[3].package, "zlib");
    assert_string_equal(r->findings[3].fixed_version, "");
    assert_false(r->findings[3].patchable);
    assert_string_equal(r->findings[5].package, "musl");
    assert_string_equal(r->findings[5].fixed_version, "");
    assert_int_equal(r->findings[4].ncves, QFS_QUALYS_MAX_CVES); /* bounded */
    assert_string_equal(r->findings[4].cves[0], "CVE-2025-1");
    assert_string_equal(r->findings[4].cves[2], "CVE-2025-3"); /* the bad one skipped */

    /* top_n keeps the most severe only. */
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, 2, r), QFS_OK);
    assert_int_equal(r->nfindings, 2);
    assert_int_equal(r->findings[0].qid, 200);
    assert_int_equal(r->findings[1].qid, 900);
    assert_int_equal(r->total, 6);
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, 0, r), QFS_OK);
    assert_int_equal(r->nfindings, 0);
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, 1000, r), QFS_OK);
    assert_int_equal(r->nfindings, 6);
    qfs_buf_cleanup(&b);

    /* Many findings: counts are exact, the list is bounded and sorted. */
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"details\":[");
    for (int i = 0; i < 3000; i++) qfs_buf_printf(&b, "%s{\"qid\":%d,\"severity\":%d}", i ? ","
                                                      "" : "", 10000 - i, 1 + i % 5);
    qfs_buf_puts(&b, "]}");
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, QFS_QUALYS_MAX_FINDINGS, r), QFS_OK);
    assert_int_equal(r->total, 3000);
    for (int s = 1; s <= 5; s++) assert_int_equal(r->by_severity[s], 600);
    assert_int_equal(r->nfindings, QFS_QUALYS_MAX_FINDINGS);
    for (size_t i = 0; i < r->nfindings; i++) {
        assert_int_equal(r->findings[i].severity, 5);
        if (i) assert_true(r->findings[i - 1].qid < r->findings[i].qid);
    }
    qfs_buf_cleanup(&b);

    /* Past the bound on details[] the body is refused. */
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"details\":[");
    for (int i = 0; i < 50001; i++) qfs_buf_puts(&b, i ? ",0" : "0");
    qfs_buf_puts(&b, "]}");
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, 10, r), QFS_TOO_BIG);
    qfs_buf_cleanup(&b);
    free(r);
}

static void test_vuln_strings_are_bounded(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 0);
    qfs_buf_puts(&b, "{\"details\":[{\"qid\":1,\"severity\":5,\"title\":\"");
    for (int i = 0; i < 400; i++) qfs_buf_puts(&b, "\xc3\xa9"); /* é, two bytes each */
    qfs_buf_puts(&b, "\\u0007\",\"software\":[{\"name\":\"");
    for (int i = 0; i < 1000; i++) qfs_buf_puts(&b, "p");
    qfs_buf_puts(&b, "\",\"version\":\"1\\n2\",\"fixVersion\":\"\\u0000x\"}]}]}");
    struct qfs_qualys_vuln_report *r = calloc(1, sizeof(*r));
    assert_int_equal(qfs_qualys_decode_vulns(b.data, b.len, 5, r), QFS_OK);
    const struct qfs_qualys_finding *f = &r->findings[0];
    assert_true(strlen(f->title) < sizeof(f->title));
    assert_true(strlen(f->title) % 2 == 0); /* cut between characters, not inside one */
    assert_true(qfs_utf8_is_valid(f->title, strlen(f->title)));
    assert_int_equal(strlen(f->package), sizeof(f->package) - 1);
    assert_string_equal(f->installed_version, "1 2");
    qfs_buf_cleanup(&b);
    free(r);
}

static void test_result_table(void **state)
{
    char p[64], i[64], f[64];
    assert_true(qfs_qualys_parse_result_table("#table cols=\"3\"\nPackage Installed_Version Required_Version\n"
                                              "openssl 3.1.4-r2 3.1.4-r5", p, 64, i, 64, f, 64));
    assert_string_equal(p, "openssl");
    assert_string_equal(i, "3.1.4-r2");
    assert_string_equal(f, "3.1.4-r5");
    assert_true(qfs_qualys_parse_result_table("#table cols=\"3\"\r\nPackage\tInstalled Version\tRequired Version\r\n"
                                              "libssl3\t3.0.2-0ubuntu1.10\t3.0.2-0ubuntu1.12\r\n", p, 64, i, 64, f, 64));
    assert_string_equal(p, "libssl3");
    assert_string_equal(f, "3.0.2-0ubuntu1.12");
    assert_true(qfs_qualys_parse_result_table("Package Installed_Version Required_Version\nmusl 1.2 None", p, 64, i,
                                              64, f, 64));
    assert_string_equal(f, "");
    assert_false(qfs_qualys_parse_result_table("Vulnerable kernel detected", p, 64, i, 64, f, 64));
    assert_false(qfs_qualys_parse_result_table("#table\nPackage Installed_Version\n", p, 64, i, 64, f, 64));
    assert_false(qfs_qualys_parse_result_table("", p, 64, i, 64, f, 64));
    assert_false(qfs_qualys_parse_result_table(NULL, p, 64, i, 64, f, 64));
    assert_string_equal(p, "");
}

/* ---- errors, tokens, waits ----------------------------------------------------------------- */

static void test_decode_error_and_map(void **state)
{
    struct qfs_qualys_error e;
    const char *ref = "{ \"errorCode\": \"403 FORBIDDEN\", \"message\": \"Request Forbidden\","
                      " \"timestamp\": 1718000000000 }";
    qfs_qualys_decode_error(ref, strlen(ref), &e);
    assert_string_equal(e.code, "403 FORBIDDEN");
    assert_string_equal(e.message, "Request Forbidden");
    qfs_qualys_decode_error("<html>\r\nBad gateway</html>", 26, &e);
    assert_string_equal(e.code, "");
    assert_string_equal(e.message, "<html>  Bad gateway</html>");
    qfs_qualys_decode_error("{\"errorCode\":401,\"message\":[1]}", 31, &e);
    assert_string_equal(e.code, "401");
    assert_string_equal(e.message, "");
    qfs_qualys_decode_error("", 0, &e);
    assert_string_equal(e.message, "");

    struct {
        long code;
        qfs_status transport;
        bool post;
        qfs_status want;
    } cases[] = {
        {200, QFS_OK, false, QFS_OK},           {201, QFS_OK, true, QFS_OK},
        {204, QFS_OK, false, QFS_OK},           {200, QFS_TOO_BIG, false, QFS_TOO_BIG},
        {400, QFS_PROTOCOL, true, QFS_PROTOCOL}, {401, QFS_DENIED, false, QFS_DENIED},
        {403, QFS_DENIED, true, QFS_DENIED},     {404, QFS_NOT_FOUND, false, QFS_NOT_FOUND},
        {408, QFS_TIMED_OUT, false, QFS_TIMED_OUT}, {408, QFS_TIMED_OUT, true, QFS_UNAVAILABLE},
        {409, QFS_PROTOCOL, false, QFS_UNAVAILABLE}, {429, QFS_UNAVAILABLE, true, QFS_UNAVAILABLE},
        {500, QFS_UNAVAILABLE, true, QFS_UNAVAILABLE}, {503, QFS_UNAVAILABLE, false, QFS_UNAVAILABLE},
        {302, QFS_PROTOCOL, false, QFS_PROTOCOL}, {0, QFS_TIMED_OUT, false, QFS_TIMED_OUT},
        {0, QFS_TIMED_OUT, true, QFS_UNAVAILABLE}, {0, QFS_IO, true, QFS_UNAVAILABLE},
        {0, QFS_DENIED, false, QFS_DENIED},      {0, QFS_UNAVAILABLE, true, QFS_UNAVAILABLE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(qfs_qualys_map(cases[i].code, cases[i].transport, cases[i].post), cases[i].want);
}

static char *b64url(const char *s)
{
    char *b = qfs_base64_encode(s, strlen(s));
    for (char *p = b; *p; p++) {
        if (*p == '+') *p = '-';
        else if (*p == '/') *p = '_';
        else if (*p == '=') *p = '\0';
    }
    return b;
}

static void test_tokens(void **state)
{
    char *payload = b64url("{\"sub\":\"u\",\"modulesAllowed\":[\"CS\"],\"exp\":1777777777}");
    char jwt[512];
    snprintf(jwt, sizeof(jwt), "eyJhbGciOiJIUzUxMiJ9.%s.c2ln", payload);
    assert_int_equal(qfs_qualys_jwt_exp_ms(jwt), 1777777777000LL);
    free(payload);
    assert_int_equal(qfs_qualys_jwt_exp_ms("opaque-api-token"), 0);
    assert_int_equal(qfs_qualys_jwt_exp_ms("a.!!!.c"), 0);
    assert_int_equal(qfs_qualys_jwt_exp_ms("a.e30.c"), 0); /* {} */
    payload = b64url("{\"exp\":\"soon\"}");
    snprintf(jwt, sizeof(jwt), "h.%s.s", payload);
    assert_int_equal(qfs_qualys_jwt_exp_ms(jwt), 0);
    free(payload);

    int64_t now = 1700000000000LL;
    int64_t h4 = 4LL * 3600 * 1000;
    assert_int_equal(qfs_qualys_renew_at_ms(now, now + h4, 600000), now + h4 - 600000);
    assert_int_equal(qfs_qualys_renew_at_ms(now, 0, 600000), now + h4 - 600000); /* 4 h assumed */
    assert_int_equal(qfs_qualys_renew_at_ms(now, now + 4000, 600000), now + 2000); /* half a short life */
    assert_int_equal(qfs_qualys_renew_at_ms(now, now - 5000, 600000), now + 1000); /* never a tight loop */

    char *t;
    const char *body = "  eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXRlc3Q \r\n";
    assert_int_equal(qfs_qualys_decode_token(body, strlen(body), &t), QFS_OK);
    assert_string_equal(t, "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXRlc3Q");
    char masked[256];
    qfs_log_mask("Bearer eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXRlc3Q", masked, sizeof(masked));
    assert_string_equal(masked, "Bearer ****");
    free(t);
    static const char *const bad[] = {"", "   \n", "{\"token\":\"x\"}", "a b", "<html>", "tok\"en"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(qfs_qualys_decode_token(bad[i], strlen(bad[i]), &t), QFS_PROTOCOL);
        assert_null(t);
    }
    qfs_log_clear_secrets();
}

static void test_secrets(void **state)
{
    char *tok, *user, *pass;
    assert_int_equal(qfs_qualys_decode_secret("{\"username\":\"svc\",\"password\":\"pw-with-&=+%\"}", &tok, &user,
                                              &pass), QFS_OK);
    assert_null(tok);
    assert_string_equal(user, "svc");
    assert_string_equal(pass, "pw-with-&=+%");
    char masked[64];
    qfs_log_mask("x pw-with-&=+% y", masked, sizeof(masked));
    assert_string_equal(masked, "x **** y");
    free(user);
    free(pass);
    assert_int_equal(qfs_qualys_decode_secret("{\"token\":\"tok-0001\"}", &tok, &user, &pass), QFS_OK);
    assert_string_equal(tok, "tok-0001");
    free(tok);
    assert_int_equal(qfs_qualys_decode_secret("{\"api_token\":\"tok-0002\",\"username\":\"u\"}", &tok, &user, &pass),
                     QFS_OK);
    assert_string_equal(tok, "tok-0002");
    assert_null(user);
    free(tok);
    assert_int_equal(qfs_qualys_decode_secret("plain-token-0003", &tok, &user, &pass), QFS_OK);
    assert_string_equal(tok, "plain-token-0003");
    free(tok);
    static const char *const bad[] = {"{}", "{\"username\":\"u\"}", "{\"username\":\"u\",\"password\":null}",
                                      "{\"token\":7}", "[]", "12", "two words", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(qfs_qualys_decode_secret(bad[i], &tok, &user, &pass), QFS_PROTOCOL);
        assert_null(tok);
        assert_null(user);
        assert_null(pass);
    }
    qfs_log_clear_secrets();
}

static void test_throttle_wait(void **state)
{
    int64_t now = 1700000000000LL;
    assert_int_equal(qfs_qualys_throttle_wait_ms("5", "9", "60", now), 5000);
    assert_int_equal(qfs_qualys_throttle_wait_ms("1.5", NULL, NULL, now), 1500);
    assert_int_equal(qfs_qualys_throttle_wait_ms(NULL, "7", "60", now), 7000);
    assert_int_equal(qfs_qualys_throttle_wait_ms("soon", "2", "60", now), 2000);
    assert_int_equal(qfs_qualys_throttle_wait_ms(NULL, NULL, "30", now), 30000);
    assert_int_equal(qfs_qualys_throttle_wait_ms(NULL, NULL, NULL, now), 60000);
    assert_int_equal(qfs_qualys_throttle_wait_ms("0", NULL, NULL, now), 250);
    assert_int_equal(qfs_qualys_throttle_wait_ms("99999999999", NULL, NULL, now), 86400000);
}

/* ---- the client refuses before building a request ------------------------------------------ */

static void never(const struct qfs_qualys_response *r, void *arg)
{
    fail_msg("callback ran for a refused call");
}

static void test_client_refuses_bad_arguments(void **state)
{
    uv_loop_t loop;
    struct qfs_http *http;
    struct qfs_qualys *q;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);

    struct qfs_qualys_options o = {.gateway_url = "http://127.0.0.1:9", .api_token = "unit-test-token"};
    struct qfs_qualys_options bad = o;
    bad.gateway_url = "http://qualys.example.com";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_INVALID_ARG);
    bad = o;
    bad.pod = "US1";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_INVALID_ARG);
    bad = o;
    bad.gateway_url = NULL;
    bad.pod = "MARS1";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_INVALID_ARG);
    bad = o;
    bad.username = "u";
    bad.password = "p";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_INVALID_ARG);
    bad = o;
    bad.api_token = NULL;
    bad.username = "u";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_INVALID_ARG);
    bad = o;
    bad.api_token = NULL;
    bad.secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:qualys";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_INVALID_ARG); /* no aws client */
    bad = o;
    bad.gateway_url = NULL;
    bad.pod = "KSA1";
    assert_int_equal(qfs_qualys_new(&loop, http, &bad, &q), QFS_OK);
    qfs_qualys_free(q);

    assert_int_equal(qfs_qualys_new(&loop, http, &o, &q), QFS_OK);
    static const char *const repos[] = {"web\" or repo.tag:\"x", "web\\", "web\n", "web%22", "we b"};
    static const char *const tags[] = {"1\" or repo.tag:\"x", "1\\", "1\n", "1%22", "1,2"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(qfs_qualys_find_image(q, ECR_HOST, repos[i], "1.0", NULL, never, NULL), QFS_PROTOCOL);
        assert_int_equal(qfs_qualys_find_image(q, ECR_HOST, "web", tags[i], NULL, never, NULL), QFS_PROTOCOL);
        assert_int_equal(qfs_qualys_create_schedule(q, "3f0c6a52", repos[i], "1.0", "n", never, NULL), QFS_PROTOCOL);
        assert_int_equal(qfs_qualys_create_schedule(q, "3f0c6a52", "web", tags[i], "n", never, NULL), QFS_PROTOCOL);
    }
    assert_int_equal(qfs_qualys_find_image(q, ECR_HOST "\" or x:\"", "web", "1", NULL, never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_find_image(q, ECR_HOST, "web", "1", "sha256:%22", never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_find_registry(q, "https://" ECR_HOST "\" or registryUri:\"x", never, NULL),
                     QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_image_vulns(q, "../aws-base", never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_image_detail(q, SHA_A "?x=1", never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_schedule(q, "../registry", "web", "1", "n", never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_schedule(q, "3f0c6a52", "web", "1", "bad\nname", never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_connector(q, "c", "arn:aws:iam::123:role/x", "1", NULL, never, NULL),
                     QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_connector(q, "c", "arn:aws:iam::123456789012:role/x", "1\"", NULL, never,
                                                 NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_connector(q, "c", "arn:aws:iam::123456789012:role/x", "1", "Local", never,
                                                 NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_registry(q, "12345678901", "us-east-1", "arn:aws:iam::123456789012:role/x",
                                                "n", NULL, never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_create_registry(q, "123456789012", "us east", "arn:aws:iam::123456789012:role/x",
                                                "n", NULL, never, NULL), QFS_PROTOCOL);
    assert_int_equal(qfs_qualys_aws_base(q, NULL, NULL), QFS_INVALID_ARG);
    qfs_qualys_free(q);
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    qfs_log_clear_secrets();
}

int main(void)
{
    qfs_log_init("unit_qualys", QFS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_table),
        cmocka_unit_test(test_gateway_scheme),
        cmocka_unit_test(test_config_check_names_the_missing_combination),
        cmocka_unit_test(test_config_rows_splice_into_a_service_table),
        cmocka_unit_test(test_qql_values_cannot_break_out),
        cmocka_unit_test(test_encoding_once),
        cmocka_unit_test(test_decode_aws_base),
        cmocka_unit_test(test_decode_connectors),
        cmocka_unit_test(test_decode_registry_page),
        cmocka_unit_test(test_decode_created_id),
        cmocka_unit_test(test_decode_image_page),
        cmocka_unit_test(test_image_detail_and_state),
        cmocka_unit_test(test_decode_vulns_reference),
        cmocka_unit_test(test_vuln_summary_counts_order_and_bounds),
        cmocka_unit_test(test_vuln_strings_are_bounded),
        cmocka_unit_test(test_result_table),
        cmocka_unit_test(test_decode_error_and_map),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_throttle_wait),
        cmocka_unit_test(test_client_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
