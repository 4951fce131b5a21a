/* Checks for the AWS names qfs puts in bus subjects and cache keys: account ids and Regions. */
#ifndef QFS_AWS_NAMES_H
#define QFS_AWS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Longest Region name accepted; the longest real one today is 14 characters. */
#define QFS_AWS_REGION_MAX 32

/* Returns true when s is exactly 12 ASCII digits, the form of an AWS account id. NULL is false. */
static inline bool qfs_aws_is_account_id(const char *s)
{
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (n == 12 || s[n] < '0' || s[n] > '9') return false;
    return n == 12;
}

/* Returns true when s is 1 to QFS_AWS_REGION_MAX characters of [a-z0-9-], which makes it safe
 * as a NATS subject token. It does not check that the Region exists. NULL is false. */
static inline bool qfs_aws_is_region(const char *s)
{
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n == QFS_AWS_REGION_MAX) return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    return n > 0;
}

#endif
