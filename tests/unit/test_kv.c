/* Cache store, pure parts: Redis URLs and password masking, DynamoDB request encoding and response
 * decoding (expired items included), the config rows, and the generic layer over a fake backend
 * (argument bounds, the key prefix, results delivered on the loop, closing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qfs/config.h"
#include "qfs/kv.h"
#include "qfs/log.h"
#include "qfs/util.h"

#define NOW 1767139200LL

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static char *masked(const char *line)
{
    static char out[1024];
    qfs_log_mask(line, out, sizeof(out));
    return out;
}

/* ---- Redis URLs ---- */

static void test_redis_url_valid(void **state)
{
    struct qfs_kv_redis_url u;
    assert_int_equal(qfs_kv_redis_url_parse("redis://127.0.0.1:6379", &u), QFS_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_null(u.user);
    assert_null(u.password);
    qfs_kv_redis_url_cleanup(&u);

    assert_int_equal(qfs_kv_redis_url_parse("REDIS://cache.internal", &u), QFS_OK);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6379);
    qfs_kv_redis_url_cleanup(&u);

    assert_int_equal(qfs_kv_redis_url_parse("redis://:s3cret-pass@redis:6380/2", &u), QFS_OK);
    assert_string_equal(u.host, "redis");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_null(u.user);
    assert_string_equal(u.password, "s3cret-pass");
    qfs_kv_redis_url_cleanup(&u);
    assert_null(u.password);

    /* Escapes are decoded; the last '@' ends the user info, so '@' and '/' may be in it. */
    assert_int_equal(qfs_kv_redis_url_parse("redis://app:p%40ss%2Fw0rd@h:1/0", &u), QFS_OK);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss/w0rd");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 1);
    qfs_kv_redis_url_cleanup(&u);
    assert_int_equal(qfs_kv_redis_url_parse("redis://u:pa@ss/x@host/15", &u), QFS_OK);
    assert_string_equal(u.password, "pa@ss/x");
    assert_string_equal(u.host, "host");
    assert_int_equal(u.db, 15);
    qfs_kv_redis_url_cleanup(&u);

    assert_int_equal(qfs_kv_redis_url_parse("redis://[::1]:7000/3", &u), QFS_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    qfs_kv_redis_url_cleanup(&u);
    assert_int_equal(qfs_kv_redis_url_parse("redis://h:6379/", &u), QFS_OK);
    assert_int_equal(u.db, 0);
    qfs_kv_redis_url_cleanup(&u);
}

static void test_redis_url_invalid(void **state)
{
    static const char *const bad[] = {
        "", "http://h:6379", "rediss://h:6379", "redis://", "redis://:6379", "redis://h:0",
        "redis://h:65536", "redis://h:abc", "redis://h:", "redis://h:6379/x", "redis://h:6379/1/2",
        "redis://h:6379/70000", "redis://user@h", "redis://:@h", "redis://:%zz@h", "redis://:%4@h",
        "redis://:a%00b@h", "redis://[::1", "redis://[::1]x", "redis://h h", "redis://h?db=1",
        "redis://h#x", "redis:/h", NULL};
    for (size_t i = 0; bad[i]; i++) {
        struct qfs_kv_redis_url u;
        if (qfs_kv_redis_url_parse(bad[i], &u) != QFS_INVALID_ARG) fail_msg("accepted %s", bad[i]);
        assert_null(u.password);
        assert_null(u.user);
    }
    struct qfs_kv_redis_url u;
    assert_int_equal(qfs_kv_redis_url_parse(NULL, &u), QFS_INVALID_ARG);
    char *long_host = repeat('h', 300);
    char url[400];
    snprintf(url, sizeof(url), "redis://%s:1", long_host);
    assert_int_equal(qfs_kv_redis_url_parse(url, &u), QFS_INVALID_ARG);
    free(long_host);
}

static void test_redis_url_password_masked(void **state)
{
    qfs_log_clear_secrets();
    struct qfs_kv_redis_url u;
    assert_int_equal(qfs_kv_redis_url_parse("redis://app:Tr0ub4dor%263@cache:6379/1", &u), QFS_OK);
    assert_string_equal(u.password, "Tr0ub4dor&3");
    /* Both the password and its escaped form are masked in every log line. */
    assert_string_equal(masked("AUTH app Tr0ub4dor&3"), "AUTH app ****");
    assert_string_equal(masked("url redis://app:Tr0ub4dor%263@cache"), "url redis://app:****@cache");
    char red[256];
    qfs_kv_redis_url_redact(&u, red, sizeof(red));
    assert_string_equal(red, "redis://app:****@cache:6379/1");
    qfs_kv_redis_url_cleanup(&u);
    assert_int_equal(qfs_kv_redis_url_parse("redis://[::1]:1", &u), QFS_OK);
    qfs_kv_redis_url_redact(&u, red, sizeof(red));
    assert_string_equal(red, "redis://[::1]:1/0");
    qfs_kv_redis_url_cleanup(&u);

    /* --check-config shows QFS_REDIS_URL as a secret. */
    qfs_log_clear_secrets();
    setenv("QFS_REDIS_URL", "redis://:hunter2-hunter2@cache:6379", 1);
    struct qfs_kv_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(qfs_config_load(qfs_kv_config_vars, qfs_kv_config_nvars, &cfg, NULL), QFS_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    qfs_config_print_effective(qfs_kv_config_vars, qfs_kv_config_nvars, &cfg, f);
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "QFS_REDIS_URL=****"));
    assert_string_equal(masked("x redis://:hunter2-hunter2@cache:6379 y"), "x **** y");
    free(buf);
    /* The store parses the URL, which registers the password on its own. */
    assert_int_equal(qfs_kv_redis_url_parse(cfg.redis_url, &u), QFS_OK);
    assert_string_equal(masked("x hunter2-hunter2 y"), "x **** y");
    qfs_kv_redis_url_cleanup(&u);
    qfs_config_cleanup(qfs_kv_config_vars, qfs_kv_config_nvars, &cfg);
    unsetenv("QFS_REDIS_URL");
    qfs_log_clear_secrets();
}

/* ---- config rows ---- */

struct svc_config {
    int64_t other;
    struct qfs_kv_config kv;
};

static const struct qfs_config_var svc_vars[] = {
    {"QFS_TEST_OTHER", QFS_CFG_INT, "7", 0, 100, "Something else.", false, false,
     QFS_CFG_FIELD(struct svc_config, other), NULL},
    QFS_KV_CONFIG_VARS(struct svc_config, kv),
};
#define NSVC_VARS (sizeof(svc_vars) / sizeof(svc_vars[0]))

static void test_config_rows(void **state)
{
    struct svc_config c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(qfs_config_load(svc_vars, NSVC_VARS, &c, NULL), QFS_OK);
    assert_int_equal(c.other, 7);
    assert_int_equal(c.kv.backend, QFS_KV_REDIS);
    assert_string_equal(c.kv.redis_url, "redis://127.0.0.1:6379");
    assert_null(c.kv.table);
    assert_int_equal(c.kv.ttl_seconds, 86400);
    assert_string_equal(c.kv.prefix, "qfs:");
    qfs_config_cleanup(svc_vars, NSVC_VARS, &c);

    setenv("QFS_CACHE_BACKEND", "dynamodb", 1);
    setenv("QFS_CACHE_TABLE", "qfs-cache", 1);
    setenv("QFS_CACHE_TTL_SECONDS", "3600", 1);
    assert_int_equal(qfs_config_load(svc_vars, NSVC_VARS, &c, NULL), QFS_OK);
    assert_int_equal(c.kv.backend, QFS_KV_DYNAMODB);
    assert_string_equal(c.kv.table, "qfs-cache");
    assert_int_equal(c.kv.ttl_seconds, 3600);
    qfs_config_cleanup(svc_vars, NSVC_VARS, &c);

    setenv("QFS_CACHE_BACKEND", "memcached", 1);
    setenv("QFS_CACHE_TTL_SECONDS", "0", 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(qfs_config_load(svc_vars, NSVC_VARS, &c, f), QFS_PROTOCOL);
    fclose(f);
    assert_non_null(strstr(buf, "QFS_CACHE_BACKEND"));
    assert_non_null(strstr(buf, "QFS_CACHE_TTL_SECONDS"));
    free(buf);
    qfs_config_cleanup(svc_vars, NSVC_VARS, &c);
    unsetenv("QFS_CACHE_BACKEND");
    unsetenv("QFS_CACHE_TABLE");
    unsetenv("QFS_CACHE_TTL_SECONDS");
}

static void test_factory_rejects_bad_settings(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct qfs_kv *kv = NULL;
    struct qfs_kv_config c = {.backend = QFS_KV_DYNAMODB, .prefix = "t:"};
    assert_int_equal(qfs_kv_new(&loop, &c, NULL, &kv), QFS_INVALID_ARG); /* no table */
    c.table = "qfs-cache";
    assert_int_equal(qfs_kv_new(&loop, &c, NULL, &kv), QFS_INVALID_ARG); /* no AWS client */
    c.backend = QFS_KV_REDIS;
    c.redis_url = "rediss://cache:6379";
    assert_int_equal(qfs_kv_new(&loop, &c, NULL, &kv), QFS_INVALID_ARG);
    c.redis_url = NULL;
    assert_int_equal(qfs_kv_new(&loop, &c, NULL, &kv), QFS_INVALID_ARG);
    c.backend = 7;
    assert_int_equal(qfs_kv_new(&loop, &c, NULL, &kv), QFS_INVALID_ARG);
    assert_null(kv);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- DynamoDB encoding ---- */

static cJSON *encoded(struct qfs_buf *b)
{
    cJSON *j = cJSON_ParseWithLength(b->data, b->len);
    if (!j) fail_msg("not JSON: %s", b->data);
    return j;
}

static const char *path_str(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (c) v = cJSON_GetObjectItemCaseSensitive(v, c);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Every #name and :value an expression uses is declared, and every declared one is used
 * (DynamoDB rejects both mistakes). */
static void check_placeholders(const cJSON *req)
{
    const char *exprs[] = {path_str(req, "ConditionExpression", NULL, NULL),
                           path_str(req, "UpdateExpression", NULL, NULL)};
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(req, "ExpressionAttributeNames");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(req, "ExpressionAttributeValues");
    char all[1024] = "";
    for (int i = 0; i < 2; i++)
        if (exprs[i]) snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s ", exprs[i]);
    for (const char *p = all; *p; p++) {
        if (*p != '#' && *p != ':') continue;
        size_t n = 1;
        while (p[n] && (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z'))) n++;
        char tok[32];
        snprintf(tok, sizeof(tok), "%.*s", (int)n, p);
        const cJSON *decl = cJSON_GetObjectItemCaseSensitive(*p == '#' ? names : values, tok);
        if (!decl) fail_msg("%s used but not declared in %s", tok, all);
        p += n - 1;
    }
    const cJSON *d;
    cJSON_ArrayForEach(d, names) if (!strstr(all, d->string)) fail_msg("%s unused", d->string);
    cJSON_ArrayForEach(d, values) if (!strstr(all, d->string)) fail_msg("%s unused", d->string);
}

static void test_ddb_encode_get(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    assert_int_equal(qfs_kv_ddb_encode_get(&b, "qfs-cache", "qfs:result:sha256:ab\"c"), QFS_OK);
    cJSON *j = encoded(&b);
    assert_string_equal(path_str(j, "TableName", NULL, NULL), "qfs-cache");
    assert_string_equal(path_str(j, "Key", "pk", "S"), "qfs:result:sha256:ab\"c");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ConsistentRead")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "Key")), 1);
    cJSON_Delete(j);
    qfs_buf_reset(&b);
    assert_int_equal(qfs_kv_ddb_encode_get(&b, "t", "bad\xff"), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);
}

static void test_ddb_encode_put(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    const char *value = "{\"summary\":\"2 critical\\n\",\"t\":\"\xc3\xa9\"}";
    assert_int_equal(qfs_kv_ddb_encode_put(&b, "qfs-cache", "k", value, strlen(value), NOW + 60,
                                           false, NOW),
                     QFS_OK);
    cJSON *j = encoded(&b);
    assert_string_equal(path_str(j, "Item", "pk", "S"), "k");
    assert_string_equal(path_str(j, "Item", "v", "S"), value);
    assert_string_equal(path_str(j, "Item", "ttl", "N"), "1767139260");
    assert_null(cJSON_GetObjectItem(j, "ConditionExpression"));
    cJSON_Delete(j);

    qfs_buf_reset(&b);
    assert_int_equal(qfs_kv_ddb_encode_put(&b, "qfs-cache", "k", "x", 1, 0, true, NOW), QFS_OK);
    j = encoded(&b);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "Item"), "ttl"));
    assert_string_equal(path_str(j, "ConditionExpression", NULL, NULL),
                        "attribute_not_exists(#k) OR #t < :now");
    assert_string_equal(path_str(j, "ExpressionAttributeNames", "#k", NULL), "pk");
    assert_string_equal(path_str(j, "ExpressionAttributeNames", "#t", NULL), "ttl");
    assert_string_equal(path_str(j, "ExpressionAttributeValues", ":now", "N"), "1767139200");
    check_placeholders(j);
    cJSON_Delete(j);

    qfs_buf_reset(&b);
    assert_int_equal(qfs_kv_ddb_encode_put(&b, "t", "k", "a\0b", 3, 0, false, NOW), QFS_INVALID_ARG);
    qfs_buf_cleanup(&b);
    /* The buffer's cap is a bound like any other. */
    qfs_buf_init(&b, 64);
    char *big = repeat('x', 100);
    assert_int_equal(qfs_kv_ddb_encode_put(&b, "t", "k", big, 100, 0, false, NOW), QFS_TOO_BIG);
    free(big);
    qfs_buf_cleanup(&b);
}

static void test_ddb_encode_delete(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    assert_int_equal(qfs_kv_ddb_encode_delete(&b, "t", "inflight:x", NULL, 0, NOW), QFS_OK);
    cJSON *j = encoded(&b);
    assert_string_equal(path_str(j, "Key", "pk", "S"), "inflight:x");
    assert_null(cJSON_GetObjectItem(j, "ConditionExpression"));
    cJSON_Delete(j);
    qfs_buf_reset(&b);
    assert_int_equal(qfs_kv_ddb_encode_delete(&b, "t", "inflight:x", "owner-1", 7, NOW), QFS_OK);
    j = encoded(&b);
    assert_string_equal(path_str(j, "ConditionExpression", NULL, NULL),
                        "#v = :v AND (attribute_not_exists(#t) OR #t >= :now)");
    assert_string_equal(path_str(j, "ExpressionAttributeValues", ":v", "S"), "owner-1");
    assert_string_equal(path_str(j, "ExpressionAttributeNames", "#v", NULL), "v");
    check_placeholders(j);
    cJSON_Delete(j);
    qfs_buf_cleanup(&b);
}

static void test_ddb_encode_append(void **state)
{
    struct qfs_buf b;
    qfs_buf_init(&b, 4096);
    assert_int_equal(qfs_kv_ddb_encode_append(&b, "t", "deploys:x", "{\"a\":1}", 7, NOW + 10, 5,
                                              false, NOW),
                     QFS_OK);
    cJSON *j = encoded(&b);
    assert_string_equal(path_str(j, "UpdateExpression", NULL, NULL),
                        "SET #v = list_append(if_not_exists(#v, :empty), :new), #t = :ttl");
    assert_string_equal(path_str(j, "ConditionExpression", NULL, NULL),
                        "(attribute_not_exists(#t) OR #t >= :now) AND (attribute_not_exists(#v) OR "
                        "size(#v) < :max)");
    assert_string_equal(path_str(j, "ExpressionAttributeValues", ":max", "N"), "5");
    assert_string_equal(path_str(j, "ExpressionAttributeValues", ":ttl", "N"), "1767139210");
    const cJSON *l = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
                                         "ExpressionAttributeValues"), ":new"), "L");
    assert_int_equal(cJSON_GetArraySize(l), 1);
    assert_string_equal(path_str(cJSON_GetArrayItem(l, 0), "S", NULL, NULL), "{\"a\":1}");
    check_placeholders(j);
    cJSON_Delete(j);

    qfs_buf_reset(&b);
    assert_int_equal(qfs_kv_ddb_encode_append(&b, "t", "k", "v", 1, NOW + 10, 5, true, NOW), QFS_OK);
    j = encoded(&b);
    assert_string_equal(path_str(j, "UpdateExpression", NULL, NULL), "SET #v = :new, #t = :ttl");
    assert_string_equal(path_str(j, "ConditionExpression", NULL, NULL),
                        "attribute_not_exists(#k) OR #t < :now");
    check_placeholders(j);
    cJSON_Delete(j);

    /* Without a TTL the ttl attribute is removed and :ttl is not declared. */
    for (int restart = 0; restart < 2; restart++) {
        qfs_buf_reset(&b);
        assert_int_equal(qfs_kv_ddb_encode_append(&b, "t", "k", "v", 1, 0, 5, restart, NOW), QFS_OK);
        j = encoded(&b);
        assert_non_null(strstr(path_str(j, "UpdateExpression", NULL, NULL), " REMOVE #t"));
        check_placeholders(j);
        cJSON_Delete(j);
    }
    qfs_buf_cleanup(&b);
}

/* ---- DynamoDB decoding ---- */

static qfs_status get(const char *body, int64_t now, char **v)
{
    size_t len;
    qfs_status st = qfs_kv_ddb_decode_get(body, strlen(body), now, v, &len);
    if (st == QFS_OK) assert_int_equal(len, strlen(*v));
    else assert_null(*v);
    return st;
}

static void test_ddb_decode_get(void **state)
{
    char *v;
    assert_int_equal(get("{}", NOW, &v), QFS_NOT_FOUND);
    assert_int_equal(get("{\"Item\":null}", NOW, &v), QFS_NOT_FOUND);
    assert_int_equal(get("{\"Item\":{\"pk\":{\"S\":\"k\"},\"v\":{\"S\":\"{\\\"x\\\":1}\"},"
                         "\"ttl\":{\"N\":\"1767139260\"}}}", NOW, &v),
                     QFS_OK);
    assert_string_equal(v, "{\"x\":1}");
    free(v);
    /* Expired but not yet deleted by DynamoDB: still in the table, not found for qfs. */
    const char *expired = "{\"Item\":{\"pk\":{\"S\":\"k\"},\"v\":{\"S\":\"old\"},\"ttl\":{\"N\":\"1767139199\"}}}";
    assert_int_equal(get(expired, NOW, &v), QFS_NOT_FOUND);
    assert_int_equal(get(expired, NOW - 1, &v), QFS_OK); /* a ttl equal to now is still live */
    free(v);
    assert_int_equal(get("{\"Item\":{\"v\":{\"S\":\"forever\"}}}", NOW, &v), QFS_OK);
    assert_string_equal(v, "forever");
    free(v);
    assert_int_equal(get("{\"Item\":{\"v\":{\"S\":\"a\"},\"ttl\":{\"N\":\"1767139200.5\"}}}", NOW, &v), QFS_OK);
    free(v);
    assert_int_equal(get("{\"Item\":{\"v\":{\"S\":\"a\"},\"ttl\":{\"N\":\"1767139200.5\"}}}", NOW + 1, &v),
                     QFS_NOT_FOUND);

    static const char *const bad[] = {
        "", "[]", "{\"Item\":[]}", "{\"Item\":{\"pk\":{\"S\":\"k\"}}}", "{\"Item\":{\"v\":{\"N\":\"1\"}}}",
        "{\"Item\":{\"v\":{\"L\":[]}}}", "{\"Item\":{\"v\":{\"S\":\"a\"},\"ttl\":{\"S\":\"1\"}}}",
        "{\"Item\":{\"v\":{\"S\":\"a\"},\"ttl\":{\"N\":\"soon\"}}}",
        "{\"Item\":{\"v\":{\"S\":\"a\"},\"ttl\":{\"N\":\"\"}}}", "{\"Item\":{\"v\":\"a\"}}",
        "{\"Item\":{\"v\":{\"S\":\"a\"", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (get(bad[i], NOW, &v) != QFS_PROTOCOL) fail_msg("accepted %s", bad[i]);

    char *big = repeat('x', QFS_KV_MAX_VALUE + 1);
    char *body = qfs_xasprintf("{\"Item\":{\"v\":{\"S\":\"%s\"}}}", big);
    assert_int_equal(get(body, NOW, &v), QFS_TOO_BIG);
    free(body);
    free(big);
}

static void test_ddb_decode_list(void **state)
{
    char **items;
    size_t *lens, n;
    const char *live = "{\"Item\":{\"pk\":{\"S\":\"k\"},\"v\":{\"L\":[{\"S\":\"one\"},{\"S\":\"two\"}]},"
                       "\"ttl\":{\"N\":\"1767139300\"}}}";
    assert_int_equal(qfs_kv_ddb_decode_list(live, strlen(live), NOW, &items, &lens, &n), QFS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[0], "one");
    assert_string_equal(items[1], "two");
    assert_int_equal(lens[1], 3);
    qfs_kv_list_free(items, lens, n);
    assert_int_equal(qfs_kv_ddb_decode_list(live, strlen(live), NOW + 101, &items, &lens, &n),
                     QFS_NOT_FOUND);
    assert_null(items);
    static const struct {
        const char *body;
        qfs_status st;
    } cases[] = {
        {"{}", QFS_NOT_FOUND},
        {"{\"Item\":{\"v\":{\"L\":[]}}}", QFS_NOT_FOUND},
        {"{\"Item\":{\"v\":{\"S\":\"a value, not a list\"}}}", QFS_PROTOCOL},
        {"{\"Item\":{\"v\":{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"}]}}}", QFS_PROTOCOL},
        {"{\"Item\":{\"v\":{\"L\":[\"a\"]}}}", QFS_PROTOCOL},
        {"nope", QFS_PROTOCOL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        qfs_status st = qfs_kv_ddb_decode_list(cases[i].body, strlen(cases[i].body), NOW, &items,
                                               &lens, &n);
        if (st != cases[i].st) fail_msg("%s: %s", cases[i].body, qfs_status_str(st));
        assert_null(items);
        assert_int_equal(n, 0);
    }
}

/* ---- the generic layer over a fake backend ---- */

struct fake {
    char last_key[QFS_KV_MAX_KEY + 1];
    enum qfs_kv_opcode last_code;
    int submitted;
    struct qfs_kv_op *held; /* completed at close */
    bool closed;
};

/* Completes GETs at once with a value and holds everything else. */
static void fake_submit(void *impl, struct qfs_kv_op *op)
{
    struct fake *f = impl;
    f->submitted++;
    f->last_code = op->code;
    snprintf(f->last_key, sizeof(f->last_key), "%s", op->key);
    if (op->code == QFS_KV_OP_GET) {
        struct qfs_kv_result r = {.status = QFS_OK, .value = "stored", .len = 6};
        qfs_kv_op_complete(op, &r);
    } else if (op->code == QFS_KV_OP_GET_LIST) {
        const char *items[] = {"a", "bc"};
        size_t lens[] = {1, 2};
        struct qfs_kv_result r = {.status = QFS_OK, .items = items, .lens = lens, .n = 2};
        qfs_kv_op_complete(op, &r);
    } else {
        assert_null(f->held);
        f->held = op;
    }
}

static void fake_close(void *impl, void (*done)(void *arg), void *arg)
{
    struct fake *f = impl;
    if (f->held) qfs_kv_op_fail(f->held, QFS_UNAVAILABLE);
    f->held = NULL;
    f->closed = true;
    done(arg);
}

static const struct qfs_kv_backend fake_backend = {"fake", fake_submit, fake_close};

struct got {
    int calls;
    qfs_status status;
    char value[64];
    size_t n;
    char items[2][8];
    struct qfs_kv *kv; /* to try calls from inside the callback */
    qfs_status reentrant;
};

static void on_result(const struct qfs_kv_result *r, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->status = r->status;
    if (r->value) snprintf(g->value, sizeof(g->value), "%.*s", (int)r->len, r->value);
    g->n = r->n;
    for (size_t i = 0; i < r->n && i < 2; i++) snprintf(g->items[i], 8, "%s", r->items[i]);
    if (g->kv) g->reentrant = qfs_kv_get(g->kv, "again", on_result, g);
}

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static void test_generic_bounds_and_prefix(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fake f = {0};
    struct qfs_kv *kv;
    assert_int_equal(qfs_kv_new_backend(&loop, &fake_backend, &f, "\xff", &kv), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_new_backend(&loop, &fake_backend, &f, "ns:", &kv), QFS_OK);
    assert_string_equal(qfs_kv_backend_name(kv), "fake");
    struct got g = {0};

    char *v300 = repeat('v', QFS_KV_MAX_VALUE);
    char *v301 = repeat('v', QFS_KV_MAX_VALUE + 1);
    char *klong = repeat('k', QFS_KV_MAX_KEY - 3 + 1);
    assert_int_equal(qfs_kv_put(kv, "k", v301, strlen(v301), 60, on_result, &g), QFS_TOO_BIG);
    assert_int_equal(qfs_kv_put_if_absent(kv, "k", v301, strlen(v301), 60, on_result, &g), QFS_TOO_BIG);
    assert_int_equal(qfs_kv_get(kv, klong, on_result, &g), QFS_TOO_BIG);
    klong[strlen(klong) - 1] = '\0'; /* exactly QFS_KV_MAX_KEY with the prefix */
    assert_int_equal(qfs_kv_get(kv, klong, on_result, &g), QFS_OK);
    assert_int_equal(qfs_kv_append(kv, "l", v300, QFS_KV_MAX_LIST_VALUE + 1, 60, 5, on_result, &g),
                     QFS_TOO_BIG);
    assert_int_equal(qfs_kv_get(kv, NULL, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_get(kv, "", on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_get(kv, "bad\xc3", on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_put(kv, "k", "", 0, 60, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_put(kv, "k", NULL, 3, 60, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_put(kv, "k", "a\0b", 3, 60, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_put(kv, "k", "\xc3\x28", 2, 60, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_put(kv, "k", "v", 1, -1, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_put(kv, "k", "v", 1, QFS_KV_MAX_TTL_SECONDS + 1, on_result, &g),
                     QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_del_if_value(kv, "k", "", 0, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_append(kv, "l", "v", 1, 60, 0, on_result, &g), QFS_INVALID_ARG);
    assert_int_equal(qfs_kv_append(kv, "l", "v", 1, 60, QFS_KV_MAX_LIST + 1, on_result, &g),
                     QFS_INVALID_ARG);
    assert_int_equal(f.submitted, 1); /* only the accepted GET reached the backend */
    assert_int_equal(g.calls, 0);     /* and its result was not delivered inside the call */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g.calls, 1);
    free(v300);
    free(v301);
    free(klong);

    /* The prefix is added; a result completed inside submit arrives on the next loop turn with
     * its own copies. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(qfs_kv_get(kv, "result:sha256:1", on_result, &g), QFS_OK);
    assert_string_equal(f.last_key, "ns:result:sha256:1");
    assert_int_equal(g.calls, 0);
    assert_int_equal(qfs_kv_get_list(kv, "deploys:1", on_result, &g), QFS_OK);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g.calls, 2);
    assert_string_equal(g.value, "stored");
    assert_int_equal(g.n, 2);
    assert_string_equal(g.items[1], "bc");

    /* Closing completes what the backend holds, refuses calls made from those callbacks, and
     * reports closed once the handles are gone. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(qfs_kv_put_if_absent(kv, "inflight:1", "me", 2, 60, on_result, &g), QFS_OK);
    assert_string_equal(f.last_key, "ns:inflight:1");
    assert_int_equal(g.calls, 0);
    g.kv = kv;
    int closed = 0;
    qfs_kv_free(kv, on_closed, &closed);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, QFS_UNAVAILABLE);
    assert_int_equal(g.reentrant, QFS_UNAVAILABLE);
    assert_true(f.closed);
    assert_int_equal(closed, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Results waiting for the next loop turn are delivered by qfs_kv_free. */
static void test_generic_free_delivers_waiting(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fake f = {0};
    struct qfs_kv *kv;
    assert_int_equal(qfs_kv_new_backend(&loop, &fake_backend, &f, NULL, &kv), QFS_OK);
    struct got g = {0};
    assert_int_equal(qfs_kv_get(kv, "k", on_result, &g), QFS_OK);
    assert_string_equal(f.last_key, "k");
    assert_int_equal(qfs_kv_get(kv, "k", NULL, NULL), QFS_OK); /* no callback is fine */
    qfs_kv_free(kv, NULL, NULL);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, QFS_OK);
    assert_string_equal(g.value, "stored");
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    qfs_kv_free(NULL, NULL, NULL);
}

int main(void)
{
    qfs_log_init("unit_kv", QFS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_valid),
        cmocka_unit_test(test_redis_url_invalid),
        cmocka_unit_test(test_redis_url_password_masked),
        cmocka_unit_test(test_config_rows),
        cmocka_unit_test(test_factory_rejects_bad_settings),
        cmocka_unit_test(test_ddb_encode_get),
        cmocka_unit_test(test_ddb_encode_put),
        cmocka_unit_test(test_ddb_encode_delete),
        cmocka_unit_test(test_ddb_encode_append),
        cmocka_unit_test(test_ddb_decode_get),
        cmocka_unit_test(test_ddb_decode_list),
        cmocka_unit_test(test_generic_bounds_and_prefix),
        cmocka_unit_test(test_generic_free_delivers_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
