/* Logging: one JSON object per line, fields escaped, and secrets never written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include "qfs/log.h"

/* Runs qfs_log through a pipe and returns what it wrote. */
static char *capture_begin(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    qfs_log_set_fd(fds[1]);
    return NULL;
}

static char *capture_end(int fds[2])
{
    qfs_log_set_fd(2);
    close(fds[1]);
    static char out[65536];
    ssize_t n, off = 0;
    while ((n = read(fds[0], out + off, sizeof(out) - 1 - (size_t)off)) > 0) off += n;
    close(fds[0]);
    out[off] = '\0';
    return out;
}

static void test_line_is_json_with_fields(void **state)
{
    int fds[2];
    qfs_log_init("unit", QFS_LOG_DEBUG);
    capture_begin(fds);
    qfs_log(QFS_LOG_WARN, "published", "subject", "qfs.events.111122223333.eu-west-1",
            "quote", "a\"b\\c\n\x01", "none", NULL, NULL);
    char *out = capture_end(fds);
    assert_non_null(strchr(out, '\n'));
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(j, "service")->valuestring, "unit");
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, "published");
    assert_string_equal(cJSON_GetObjectItem(j, "subject")->valuestring, "qfs.events.111122223333.eu-west-1");
    assert_string_equal(cJSON_GetObjectItem(j, "quote")->valuestring, "a\"b\\c\n\x01");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "none")));
    assert_non_null(cJSON_GetObjectItem(j, "ts"));
    cJSON_Delete(j);
}

/* What the pipe holds now, without waiting. */
static size_t take_now(int fd, char *buf, size_t n)
{
    size_t off = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (off + 1 < n && poll(&p, 1, 0) == 1) {
        ssize_t r = read(fd, buf + off, n - 1 - off);
        if (r <= 0) break;
        off += (size_t)r;
    }
    buf[off] = '\0';
    return off;
}

/* Buffered mode: lines wait for the flush, a warning takes everything before it out at once, in
 * order, and turning the mode off leaves nothing behind. */
static void test_buffered_lines_wait_for_a_flush_or_a_warning(void **state)
{
    int fds[2];
    char got[4096];
    qfs_log_init("unit", QFS_LOG_DEBUG);
    capture_begin(fds);
    qfs_log_buffer(true);
    qfs_log(QFS_LOG_INFO, "first", NULL);
    qfs_log(QFS_LOG_INFO, "second", NULL);
    assert_int_equal(take_now(fds[0], got, sizeof(got)), 0);
    qfs_log(QFS_LOG_WARN, "third", NULL);
    take_now(fds[0], got, sizeof(got));
    char *a = strstr(got, "\"first\""), *b = strstr(got, "\"second\""), *c = strstr(got, "\"third\"");
    assert_true(a && b && c && a < b && b < c);
    qfs_log(QFS_LOG_INFO, "fourth", NULL);
    assert_int_equal(take_now(fds[0], got, sizeof(got)), 0);
    qfs_log_flush();
    take_now(fds[0], got, sizeof(got));
    assert_non_null(strstr(got, "\"fourth\""));
    qfs_log(QFS_LOG_INFO, "fifth", NULL);
    qfs_log_buffer(false);
    take_now(fds[0], got, sizeof(got));
    assert_non_null(strstr(got, "\"fifth\""));
    qfs_log(QFS_LOG_INFO, "sixth", NULL);
    take_now(fds[0], got, sizeof(got));
    assert_non_null(strstr(got, "\"sixth\""));
    capture_end(fds);
}

static void test_level_filter(void **state)
{
    int fds[2];
    qfs_log_init("unit", QFS_LOG_WARN);
    capture_begin(fds);
    qfs_log(QFS_LOG_INFO, "hidden", NULL);
    qfs_log(QFS_LOG_ERROR, "shown", NULL);
    char *out = capture_end(fds);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "shown"));
}

static void test_secret_canary_is_masked(void **state)
{
    const char *canary = "CANARY-qualys-token-7f3e9a";
    int fds[2];
    qfs_log_init("unit", QFS_LOG_DEBUG);
    qfs_log_add_secret(canary);
    capture_begin(fds);
    qfs_log(QFS_LOG_ERROR, "auth failed with CANARY-qualys-token-7f3e9a in the message",
            "header", "Authorization: Bearer CANARY-qualys-token-7f3e9a", "twice",
            "CANARY-qualys-token-7f3e9aCANARY-qualys-token-7f3e9a", NULL);
    char *out = capture_end(fds);
    assert_null(strstr(out, canary));
    assert_null(strstr(out, "7f3e9a"));
    assert_non_null(strstr(out, "Bearer ****"));
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "twice")->valuestring, "********");
    cJSON_Delete(j);
    qfs_log_clear_secrets();
}

static void test_long_values_are_cut_and_still_json(void **state)
{
    char *big = malloc(100000);
    memset(big, 'x', 99999);
    big[99999] = '\0';
    int fds[2];
    qfs_log_init("unit", QFS_LOG_DEBUG);
    capture_begin(fds);
    qfs_log(QFS_LOG_INFO, "big", "a", big, "b", big, "c", big, "d", big, "e", big, "f", big, "g",
            big, "h", big, "i", big, NULL);
    char *out = capture_end(fds);
    assert_true(strlen(out) < 20000);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")));
    cJSON_Delete(j);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_is_json_with_fields),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_buffered_lines_wait_for_a_flush_or_a_warning),
        cmocka_unit_test(test_secret_canary_is_masked),
        cmocka_unit_test(test_long_values_are_cut_and_still_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
