/* Fuzz target for the cache store's pure decoders: the first byte picks one, the rest is the input.
 * The DynamoDB GetItem decoders either refuse a body with a documented status and hand nothing
 * back, or hand back values within the store's bounds; the Redis URL parser either refuses a URL
 * or gives a host, port and db in range, and its redacted form never depends on the password.
 *
 * Selectors (any other byte: its value modulo the table size): g GetItem of a string value,
 * l GetItem of a list value, u QFS_REDIS_URL. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/kv.h"
#include "qfs/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts (a crash libFuzzer keeps) when a property does not hold. */
static void check(bool cond)
{
    if (!cond) abort();
}

/* Two clocks: one before any TTL a body carries, and one in 2026. */
static const int64_t clocks[] = {0, 1777629600};

static bool is_refusal(qfs_status s)
{
    return s == QFS_NOT_FOUND || s == QFS_PROTOCOL || s == QFS_TOO_BIG;
}

static void fuzz_get(const char *body, size_t len)
{
    for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
        char *value = (char *)1;
        size_t vlen = 99;
        qfs_status s = qfs_kv_ddb_decode_get(body, len, clocks[c], &value, &vlen);
        if (s == QFS_OK) {
            check(value && vlen == strlen(value) && vlen <= QFS_KV_MAX_VALUE);
        } else {
            check(is_refusal(s) && value == NULL && vlen == 0);
        }
        free(value);
    }
}

static void fuzz_list(const char *body, size_t len)
{
    for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
        char **items = (char **)1;
        size_t *lens = (size_t *)1;
        size_t n = 99;
        qfs_status s = qfs_kv_ddb_decode_list(body, len, clocks[c], &items, &lens, &n);
        if (s == QFS_OK) {
            check(n >= 1 && n <= QFS_KV_MAX_LIST && items && lens);
            for (size_t i = 0; i < n; i++)
                check(items[i] && lens[i] == strlen(items[i]) && lens[i] <= QFS_KV_MAX_LIST_VALUE);
            qfs_kv_list_free(items, lens, n);
        } else {
            check(is_refusal(s) && items == NULL && lens == NULL && n == 0);
        }
    }
}

static void fuzz_redis_url(const char *body, size_t len)
{
    char *url = malloc(len + 1);
    if (!url) return;
    memcpy(url, body, len);
    url[len] = '\0';
    struct qfs_kv_redis_url u;
    qfs_status s = qfs_kv_redis_url_parse(url, &u);
    if (s != QFS_OK) {
        check(s == QFS_INVALID_ARG && !u.user && !u.password);
        free(url);
        return;
    }
    check(strnlen(u.host, sizeof(u.host)) < sizeof(u.host) && u.host[0]);
    check(u.port >= 1 && u.port <= 65535 && u.db >= 0 && u.db <= 65535);
    check(!u.user || u.password); /* a user alone cannot authenticate */
    check(!u.password || u.password[0]);

    /* The redacted form is the same whatever the password: it cannot leak it. */
    char shown[600], other[600];
    qfs_kv_redis_url_redact(&u, shown, sizeof(shown));
    char *password = u.password;
    char alternative[] = "a different password";
    if (password) {
        u.password = alternative;
        qfs_kv_redis_url_redact(&u, other, sizeof(other));
        check(strcmp(shown, other) == 0);
        u.password = password;
    }
    char tiny[8];
    qfs_kv_redis_url_redact(&u, tiny, sizeof(tiny));
    check(strnlen(tiny, sizeof(tiny)) < sizeof(tiny));
    qfs_kv_redis_url_cleanup(&u);
    check(!u.user && !u.password);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char selectors[] = "glu";
    if (size == 0) return 0;
    const char *hit = memchr(selectors, data[0], sizeof(selectors) - 1);
    size_t which = hit ? (size_t)(hit - selectors) : data[0] % (sizeof(selectors) - 1);
    /* An exact-size copy of the body, so that ASan catches any read past it. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    if (len) memcpy(body, data + 1, len);
    switch (selectors[which]) {
    case 'g': fuzz_get(body, len); break;
    case 'l': fuzz_list(body, len); break;
    case 'u': fuzz_redis_url(body, len); break;
    }
    free(body);
    qfs_log_clear_secrets();
    return 0;
}
