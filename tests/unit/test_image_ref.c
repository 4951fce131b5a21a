/* Image references: every form a task definition can hold parses to the right registry and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfs/proto.h"
#include "qfs/image_ref.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX64
#define ECR_EU "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
/* Regions of 32 and 33 characters with the right shape. */
#define C26 "cccccccccccccccccccccccccc"
#define REGION_32 "ab-" C26 "-12"
#define REGION_33 "ab-" C26 "c-12"
#define ECR_32 "111122223333.dkr.ecr." REGION_32 ".amazonaws.com"
#define ECR_33 "111122223333.dkr.ecr." REGION_33 ".amazonaws.com"

/* A reference that parses. NULL string fields mean "expected empty". */
struct ok_case {
    const char *name;
    const char *text;
    enum qfs_image_ref_kind kind;
    const char *host, *repository, *tag, *digest;
    const char *account, *region, *partition;
    bool fips, dual_stack, tag_implied;
    const char *key, *canonical;
};

/* A reference that is refused, with a substring of the reason. */
struct bad_case {
    const char *name;
    const char *text;
    const char *reason;
};

/* Texts too long to write inline; filled by build_long_texts() before the tests run. */
static char tag_128[160], tag_129[160], name_255[300], name_256[300];
static char hub_255[300], hub_256[300], text_513[520], name_255_key[320], name_255_canon[320];
static char tag_128_key[200];

static const struct ok_case ok_cases[] = {
    {.name = "ecr_private_tag", .text = ECR_EU "/web:1.4.2", .kind = QFS_IMAGE_REF_ECR_PRIVATE,
     .host = ECR_EU, .repository = "web", .tag = "1.4.2", .account = "111122223333",
     .region = "eu-west-1", .partition = "aws", .key = "111122223333/eu-west-1/web:1.4.2",
     .canonical = ECR_EU "/web:1.4.2"},
    {.name = "ecr_private_digest", .text = ECR_EU "/web@" DIGEST, .kind = QFS_IMAGE_REF_ECR_PRIVATE,
     .host = ECR_EU, .repository = "web", .digest = DIGEST, .account = "111122223333",
     .region = "eu-west-1", .partition = "aws", .key = DIGEST, .canonical = ECR_EU "/web@" DIGEST},
    {.name = "ecr_private_tag_and_digest", .text = ECR_EU "/web:1.4.2@" DIGEST,
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = ECR_EU, .repository = "web", .tag = "1.4.2",
     .digest = DIGEST, .account = "111122223333", .region = "eu-west-1", .partition = "aws",
     .key = DIGEST, .canonical = ECR_EU "/web@" DIGEST},
    {.name = "ecr_private_implied_latest", .text = ECR_EU "/team/web",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = ECR_EU, .repository = "team/web",
     .account = "111122223333", .region = "eu-west-1", .partition = "aws", .tag_implied = true,
     .key = "111122223333/eu-west-1/team/web:latest", .canonical = ECR_EU "/team/web:latest"},
    {.name = "ecr_private_nested_repo_rich_tag", .text = ECR_EU "/org/team/svc:2024.05.01-rc_1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = ECR_EU, .repository = "org/team/svc",
     .tag = "2024.05.01-rc_1", .account = "111122223333", .region = "eu-west-1", .partition = "aws",
     .key = "111122223333/eu-west-1/org/team/svc:2024.05.01-rc_1",
     .canonical = ECR_EU "/org/team/svc:2024.05.01-rc_1"},
    {.name = "ecr_private_upper_case_host", .text = "111122223333.DKR.ECR.EU-WEST-1.AMAZONAWS.COM/web:V1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = ECR_EU, .repository = "web", .tag = "V1",
     .account = "111122223333", .region = "eu-west-1", .partition = "aws",
     .key = "111122223333/eu-west-1/web:V1", .canonical = ECR_EU "/web:V1"},
    {.name = "ecr_fips", .text = "111122223333.dkr.ecr-fips.us-east-1.amazonaws.com/web:1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = "111122223333.dkr.ecr-fips.us-east-1.amazonaws.com",
     .repository = "web", .tag = "1", .account = "111122223333", .region = "us-east-1",
     .partition = "aws", .fips = true, .key = "111122223333/us-east-1/web:1",
     .canonical = "111122223333.dkr.ecr-fips.us-east-1.amazonaws.com/web:1"},
    {.name = "ecr_dual_stack", .text = "111122223333.dkr-ecr.us-east-2.on.aws/web:1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = "111122223333.dkr-ecr.us-east-2.on.aws",
     .repository = "web", .tag = "1", .account = "111122223333", .region = "us-east-2",
     .partition = "aws", .dual_stack = true, .key = "111122223333/us-east-2/web:1",
     .canonical = "111122223333.dkr-ecr.us-east-2.on.aws/web:1"},
    {.name = "ecr_dual_stack_fips", .text = "111122223333.dkr-ecr-fips.us-east-2.on.aws/web@" DIGEST,
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = "111122223333.dkr-ecr-fips.us-east-2.on.aws",
     .repository = "web", .digest = DIGEST, .account = "111122223333", .region = "us-east-2",
     .partition = "aws", .fips = true, .dual_stack = true, .key = DIGEST,
     .canonical = "111122223333.dkr-ecr-fips.us-east-2.on.aws/web@" DIGEST},
    {.name = "ecr_china", .text = "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn/web:1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn",
     .repository = "web", .tag = "1", .account = "111122223333", .region = "cn-north-1",
     .partition = "aws-cn", .key = "111122223333/cn-north-1/web:1",
     .canonical = "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn/web:1"},
    {.name = "ecr_china_northwest", .text = "444455556666.dkr.ecr.cn-northwest-1.amazonaws.com.cn/a/b",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = "444455556666.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
     .repository = "a/b", .account = "444455556666", .region = "cn-northwest-1",
     .partition = "aws-cn", .tag_implied = true, .key = "444455556666/cn-northwest-1/a/b:latest",
     .canonical = "444455556666.dkr.ecr.cn-northwest-1.amazonaws.com.cn/a/b:latest"},
    {.name = "ecr_govcloud", .text = "111122223333.dkr.ecr.us-gov-west-1.amazonaws.com/web:1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE, .host = "111122223333.dkr.ecr.us-gov-west-1.amazonaws.com",
     .repository = "web", .tag = "1", .account = "111122223333", .region = "us-gov-west-1",
     .partition = "aws-us-gov", .key = "111122223333/us-gov-west-1/web:1",
     .canonical = "111122223333.dkr.ecr.us-gov-west-1.amazonaws.com/web:1"},
    {.name = "ecr_govcloud_fips", .text = "111122223333.dkr.ecr-fips.us-gov-east-1.amazonaws.com/web:1",
     .kind = QFS_IMAGE_REF_ECR_PRIVATE,
     .host = "111122223333.dkr.ecr-fips.us-gov-east-1.amazonaws.com", .repository = "web",
     .tag = "1", .account = "111122223333", .region = "us-gov-east-1", .partition = "aws-us-gov",
     .fips = true, .key = "111122223333/us-gov-east-1/web:1",
     .canonical = "111122223333.dkr.ecr-fips.us-gov-east-1.amazonaws.com/web:1"},
    {.name = "ecr_public", .text = "public.ecr.aws/nginx/nginx:1.25", .kind = QFS_IMAGE_REF_ECR_PUBLIC,
     .host = "public.ecr.aws", .repository = "nginx/nginx", .tag = "1.25",
     .key = "public.ecr.aws/nginx/nginx:1.25", .canonical = "public.ecr.aws/nginx/nginx:1.25"},
    {.name = "ecr_public_implied_latest", .text = "public.ecr.aws/amazonlinux/amazonlinux",
     .kind = QFS_IMAGE_REF_ECR_PUBLIC, .host = "public.ecr.aws",
     .repository = "amazonlinux/amazonlinux", .tag_implied = true,
     .key = "public.ecr.aws/amazonlinux/amazonlinux:latest",
     .canonical = "public.ecr.aws/amazonlinux/amazonlinux:latest"},
    {.name = "hub_short", .text = "nginx", .kind = QFS_IMAGE_REF_DOCKER_HUB, .host = "docker.io",
     .repository = "library/nginx", .tag_implied = true, .key = "docker.io/library/nginx:latest",
     .canonical = "docker.io/library/nginx:latest"},
    {.name = "hub_short_tag", .text = "nginx:1.25", .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = "library/nginx", .tag = "1.25",
     .key = "docker.io/library/nginx:1.25", .canonical = "docker.io/library/nginx:1.25"},
    {.name = "hub_user", .text = "yzsqbe/ka:si", .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = "yzsqbe/ka", .tag = "si", .key = "docker.io/yzsqbe/ka:si",
     .canonical = "docker.io/yzsqbe/ka:si"},
    {.name = "hub_explicit_library", .text = "docker.io/library/nginx", .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = "library/nginx", .tag_implied = true,
     .key = "docker.io/library/nginx:latest", .canonical = "docker.io/library/nginx:latest"},
    {.name = "hub_explicit_short", .text = "docker.io/nginx:1.25", .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = "library/nginx", .tag = "1.25",
     .key = "docker.io/library/nginx:1.25", .canonical = "docker.io/library/nginx:1.25"},
    {.name = "hub_legacy_host", .text = "index.docker.io/nginx:1.25", .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = "library/nginx", .tag = "1.25",
     .key = "docker.io/library/nginx:1.25", .canonical = "docker.io/library/nginx:1.25"},
    {.name = "hub_registry_1", .text = "registry-1.docker.io/library/nginx",
     .kind = QFS_IMAGE_REF_DOCKER_HUB, .host = "registry-1.docker.io", .repository = "library/nginx",
     .tag_implied = true, .key = "registry-1.docker.io/library/nginx:latest",
     .canonical = "registry-1.docker.io/library/nginx:latest"},
    {.name = "hub_digest", .text = "nginx@" DIGEST, .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = "library/nginx", .digest = DIGEST, .key = DIGEST,
     .canonical = "docker.io/library/nginx@" DIGEST},
    {.name = "other_with_port", .text = "registry.example.com:5000/team/app:tag",
     .kind = QFS_IMAGE_REF_OTHER, .host = "registry.example.com:5000", .repository = "team/app",
     .tag = "tag", .key = "registry.example.com:5000/team/app:tag",
     .canonical = "registry.example.com:5000/team/app:tag"},
    {.name = "localhost", .text = "localhost/app", .kind = QFS_IMAGE_REF_OTHER, .host = "localhost",
     .repository = "app", .tag_implied = true, .key = "localhost/app:latest",
     .canonical = "localhost/app:latest"},
    {.name = "localhost_port", .text = "localhost:5000/app:dev", .kind = QFS_IMAGE_REF_OTHER,
     .host = "localhost:5000", .repository = "app", .tag = "dev", .key = "localhost:5000/app:dev",
     .canonical = "localhost:5000/app:dev"},
    {.name = "localhost_without_slash_is_a_hub_tag", .text = "localhost:5000",
     .kind = QFS_IMAGE_REF_DOCKER_HUB, .host = "docker.io", .repository = "library/localhost",
     .tag = "5000", .key = "docker.io/library/localhost:5000",
     .canonical = "docker.io/library/localhost:5000"},
    {.name = "ipv6_host", .text = "[::1]:5000/app:1", .kind = QFS_IMAGE_REF_OTHER,
     .host = "[::1]:5000", .repository = "app", .tag = "1", .key = "[::1]:5000/app:1",
     .canonical = "[::1]:5000/app:1"},
    {.name = "ipv4_host", .text = "10.0.0.1:5000/app", .kind = QFS_IMAGE_REF_OTHER,
     .host = "10.0.0.1:5000", .repository = "app", .tag_implied = true,
     .key = "10.0.0.1:5000/app:latest", .canonical = "10.0.0.1:5000/app:latest"},
    {.name = "every_separator", .text = "example.com/a__b/c-d/e---f/g.h/i_j:T_AG.1-x",
     .kind = QFS_IMAGE_REF_OTHER, .host = "example.com", .repository = "a__b/c-d/e---f/g.h/i_j",
     .tag = "T_AG.1-x", .key = "example.com/a__b/c-d/e---f/g.h/i_j:T_AG.1-x",
     .canonical = "example.com/a__b/c-d/e---f/g.h/i_j:T_AG.1-x"},
    {.name = "tag_of_128", .text = tag_128, .kind = QFS_IMAGE_REF_DOCKER_HUB, .host = "docker.io",
     .repository = "library/nginx", .tag = tag_128 + 6, .key = tag_128_key,
     .canonical = tag_128_key},
    {.name = "name_of_255", .text = name_255, .kind = QFS_IMAGE_REF_OTHER, .host = "example.com",
     .repository = name_255 + 12, .tag_implied = true, .key = name_255_key,
     .canonical = name_255_canon},
    {.name = "hub_name_of_255_after_normalising", .text = hub_255, .kind = QFS_IMAGE_REF_DOCKER_HUB,
     .host = "docker.io", .repository = NULL /* checked by length below */, .tag_implied = true},
    /* Valid references whose host only resembles ECR: not ECR, so callers skip them. */
    {.name = "ecr_host_in_path", .text = "evil.com/" ECR_EU "/x", .kind = QFS_IMAGE_REF_OTHER,
     .host = "evil.com", .repository = ECR_EU "/x", .tag_implied = true,
     .key = "evil.com/" ECR_EU "/x:latest", .canonical = "evil.com/" ECR_EU "/x:latest"},
    {.name = "ecr_host_as_subdomain", .text = ECR_EU ".evil.com/x", .kind = QFS_IMAGE_REF_OTHER,
     .host = ECR_EU ".evil.com", .repository = "x", .tag_implied = true,
     .key = ECR_EU ".evil.com/x:latest", .canonical = ECR_EU ".evil.com/x:latest"},
    {.name = "account_of_11_digits", .text = "11112222333.dkr.ecr.eu-west-1.amazonaws.com/x:1",
     .kind = QFS_IMAGE_REF_OTHER, .host = "11112222333.dkr.ecr.eu-west-1.amazonaws.com",
     .repository = "x", .tag = "1", .key = "11112222333.dkr.ecr.eu-west-1.amazonaws.com/x:1",
     .canonical = "11112222333.dkr.ecr.eu-west-1.amazonaws.com/x:1"},
    {.name = "account_of_13_digits", .text = "1111222233334.dkr.ecr.eu-west-1.amazonaws.com/x:1",
     .kind = QFS_IMAGE_REF_OTHER, .host = "1111222233334.dkr.ecr.eu-west-1.amazonaws.com",
     .repository = "x", .tag = "1", .key = "1111222233334.dkr.ecr.eu-west-1.amazonaws.com/x:1",
     .canonical = "1111222233334.dkr.ecr.eu-west-1.amazonaws.com/x:1"},
    {.name = "ecr_host_with_port", .text = ECR_EU ":443/web:1", .kind = QFS_IMAGE_REF_OTHER,
     .host = ECR_EU ":443", .repository = "web", .tag = "1", .key = ECR_EU ":443/web:1",
     .canonical = ECR_EU ":443/web:1"},
    {.name = "china_region_on_commercial_suffix",
     .text = "111122223333.dkr.ecr.cn-north-1.amazonaws.com/web:1", .kind = QFS_IMAGE_REF_OTHER,
     .host = "111122223333.dkr.ecr.cn-north-1.amazonaws.com", .repository = "web", .tag = "1",
     .key = "111122223333.dkr.ecr.cn-north-1.amazonaws.com/web:1",
     .canonical = "111122223333.dkr.ecr.cn-north-1.amazonaws.com/web:1"},
    {.name = "commercial_region_on_china_suffix",
     .text = "111122223333.dkr.ecr.eu-west-1.amazonaws.com.cn/web:1", .kind = QFS_IMAGE_REF_OTHER,
     .host = "111122223333.dkr.ecr.eu-west-1.amazonaws.com.cn", .repository = "web", .tag = "1",
     .key = "111122223333.dkr.ecr.eu-west-1.amazonaws.com.cn/web:1",
     .canonical = "111122223333.dkr.ecr.eu-west-1.amazonaws.com.cn/web:1"},
    {.name = "region_without_shape", .text = "111122223333.dkr.ecr.euwest1.amazonaws.com/web:1",
     .kind = QFS_IMAGE_REF_OTHER, .host = "111122223333.dkr.ecr.euwest1.amazonaws.com",
     .repository = "web", .tag = "1", .key = "111122223333.dkr.ecr.euwest1.amazonaws.com/web:1",
     .canonical = "111122223333.dkr.ecr.euwest1.amazonaws.com/web:1"},
    {.name = "region_missing", .text = "111122223333.dkr.ecr.amazonaws.com/web:1",
     .kind = QFS_IMAGE_REF_OTHER, .host = "111122223333.dkr.ecr.amazonaws.com", .repository = "web",
     .tag = "1", .key = "111122223333.dkr.ecr.amazonaws.com/web:1",
     .canonical = "111122223333.dkr.ecr.amazonaws.com/web:1"},
    {.name = "region_without_number", .text = "111122223333.dkr.ecr.eu-west.amazonaws.com/web:1",
     .kind = QFS_IMAGE_REF_OTHER, .host = "111122223333.dkr.ecr.eu-west.amazonaws.com",
     .repository = "web", .tag = "1", .key = "111122223333.dkr.ecr.eu-west.amazonaws.com/web:1",
     .canonical = "111122223333.dkr.ecr.eu-west.amazonaws.com/web:1"},
    {.name = "region_with_three_digit_number", .text = "111122223333.dkr.ecr.eu-west-100.amazonaws.com/w",
     .kind = QFS_IMAGE_REF_OTHER, .host = "111122223333.dkr.ecr.eu-west-100.amazonaws.com",
     .repository = "w", .tag_implied = true,
     .key = "111122223333.dkr.ecr.eu-west-100.amazonaws.com/w:latest",
     .canonical = "111122223333.dkr.ecr.eu-west-100.amazonaws.com/w:latest"},
    {.name = "region_of_32", .text = ECR_32 "/w:1", .kind = QFS_IMAGE_REF_ECR_PRIVATE,
     .host = ECR_32, .repository = "w", .tag = "1", .account = "111122223333", .region = REGION_32,
     .partition = "aws", .key = "111122223333/" REGION_32 "/w:1", .canonical = ECR_32 "/w:1"},
    {.name = "region_of_33", .text = ECR_33 "/w:1", .kind = QFS_IMAGE_REF_OTHER, .host = ECR_33,
     .repository = "w", .tag = "1", .key = ECR_33 "/w:1", .canonical = ECR_33 "/w:1"},
    {.name = "dual_stack_prefix_on_amazonaws", .text = "111122223333.dkr-ecr.us-east-2.amazonaws.com/w",
     .kind = QFS_IMAGE_REF_OTHER, .host = "111122223333.dkr-ecr.us-east-2.amazonaws.com",
     .repository = "w", .tag_implied = true,
     .key = "111122223333.dkr-ecr.us-east-2.amazonaws.com/w:latest",
     .canonical = "111122223333.dkr-ecr.us-east-2.amazonaws.com/w:latest"},
    {.name = "ipv4_prefix_on_dual_stack_suffix", .text = "111122223333.dkr.ecr.us-east-2.on.aws/w",
     .kind = QFS_IMAGE_REF_OTHER, .host = "111122223333.dkr.ecr.us-east-2.on.aws",
     .repository = "w", .tag_implied = true, .key = "111122223333.dkr.ecr.us-east-2.on.aws/w:latest",
     .canonical = "111122223333.dkr.ecr.us-east-2.on.aws/w:latest"},
};

static const struct bad_case bad_cases[] = {
    {"empty", "", "empty reference"},
    {"space_inside", "nginx latest", "reference contains a space at offset 5"},
    {"space_leading", " nginx", "reference contains a space at offset 0"},
    {"space_trailing", "nginx:1.0 ", "reference contains a space at offset 9"},
    {"space_in_path", "example.com/ap p", "reference contains a space"},
    {"tab", "nginx\t", "reference contains a control character (0x09 at offset 5)"},
    {"newline", "nginx\n:1", "reference contains a control character (0x0a"},
    {"carriage_return", "nginx\r", "reference contains a control character (0x0d"},
    {"escape_sequence", "\x1b[31mnginx", "reference contains a control character (0x1b at offset 0)"},
    {"delete", "nginx\x7f", "reference contains a control character (0x7f"},
    {"bell", ECR_EU "/web\x07", "reference contains a control character (0x07"},
    {"double_quotes", "\"nginx\"", "reference contains the character '\"' at offset 0"},
    {"single_quotes", "'nginx'", "reference contains the character ''' at offset 0"},
    {"shell_metacharacter", "nginx;id", "reference contains the character ';'"},
    {"dollar", "example.com/a/b$", "reference contains the character '$'"},
    {"unicode_accent", "nginx\xc3\xa9", "reference contains a non-ASCII byte (0xc3 at offset 5)"},
    {"unicode_cyrillic_lookalike", "ngin\xd1\x85", "reference contains a non-ASCII byte"},
    {"upper_case_ecr_repository", ECR_EU "/Web:1", "repository contains upper-case letters"},
    {"upper_case_hub_short", "Nginx", "repository contains upper-case letters"},
    {"upper_case_hub_user", "MyUser/app", "repository contains upper-case letters"},
    {"upper_case_localhost_is_no_host", "LOCALHOST/app", "repository contains upper-case letters"},
    {"dot_dot_component", "example.com/a/../b", "path component '..' is not allowed"},
    {"dot_dot_at_end", ECR_EU "/web/..", "path component '..' is not allowed"},
    {"dot_component", "example.com/./b", "path component '.' is not allowed"},
    {"dot_dot_as_host", "../etc/passwd", "registry host has an empty label"},
    {"empty_component", "a//b", "repository has an empty path component"},
    {"empty_component_after_host", "example.com//b", "repository has an empty path component"},
    {"trailing_slash", "example.com/app/", "name ends with '/'"},
    {"trailing_slash_before_tag", "nginx/:1", "name ends with '/'"},
    {"host_only", "localhost/", "name ends with '/'"},
    {"leading_slash", "/nginx", "reference starts with '/'"},
    {"at_without_digest", "nginx@", "'@' is not followed by a digest"},
    {"tag_and_at_without_digest", "example.com/app:tag@", "'@' is not followed by a digest"},
    {"two_ats", "nginx@" DIGEST "@x", "reference contains more than one '@'"},
    {"digest_63", "nginx@sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
     "digest has 63 hex digits: digest must be sha256 with 64 lower-case hex digits"},
    {"digest_65", "nginx@" DIGEST "0", "digest has 65 hex digits"},
    {"digest_empty_hex", "nginx@sha256:", "digest has 0 hex digits"},
    {"digest_upper_case_hex",
     "nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
     "digest contains upper-case hex: digest must be sha256 with 64 lower-case hex digits"},
    {"digest_sha512", "nginx@sha512:" HEX64 HEX64,
     "digest algorithm 'sha512' is not supported: digest must be sha256"},
    {"digest_no_algorithm", "nginx@" HEX64, "digest has no algorithm"},
    {"digest_non_hex", "nginx@sha256:g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     "digest contains the non-hex character 'g'"},
    {"empty_tag", "nginx:", "tag is empty"},
    {"tag_of_129", tag_129, "tag is longer than 128 characters"},
    {"tag_starts_with_dash", "nginx:-1", "tag must start with a letter, a digit or '_'"},
    {"tag_starts_with_dot", "nginx:.x", "tag must start with a letter, a digit or '_'"},
    {"tag_with_bracket", "example.com/app:a]", "tag contains the character ']'"},
    {"two_colons", "a:b:c", "repository contains the character ':'"},
    {"colon_in_path", "docker.io/a:b/c", "repository contains the character ':'"},
    {"bracket_in_path", "example.com/[app]", "repository contains the character '['"},
    {"leading_dash", "-nginx", "path component '-nginx' must start and end with a lower-case letter"},
    {"trailing_dash", "nginx-", "path component 'nginx-' must start and end"},
    {"trailing_dot", "team/nginx.", "path component 'nginx.' must start and end"},
    {"leading_underscore", "_nginx", "path component '_nginx' must start and end"},
    {"double_dot_separator", "a..b", "path component 'a..b' has the invalid separator '..'"},
    {"triple_underscore", "a___b", "has the invalid separator '___'"},
    {"dot_underscore", "a._b", "has the invalid separator '._'"},
    {"dash_underscore", "a-_b", "has the invalid separator '-_'"},
    {"name_of_256", name_256, "name is longer than 255 characters"},
    {"hub_name_of_256_after_normalising", hub_256, "name is longer than 255 characters"},
    {"text_of_513", text_513, "reference is longer than 512 characters"},
    {"bare_image_id", HEX64, "reference is a 64-digit hex image id"},
    {"tag_only", ":latest", "reference has no repository name"},
    {"digest_only", "@" DIGEST, "reference has no repository name"},
    {"port_empty", "example.com:/app", "registry port must be a number from 1 to 65535"},
    {"port_too_big", "example.com:70000/app", "registry port must be a number from 1 to 65535"},
    {"port_zero", "example.com:0/app", "registry port must be a number from 1 to 65535"},
    {"port_not_numeric", "example.com:http/app", "registry port must be a number from 1 to 65535"},
    {"host_label_leading_dash", "-example.com/app", "registry host has a label starting with '-'"},
    {"host_label_trailing_dash", "example-.com/app", "registry host has a label ending with '-'"},
    {"host_empty_label", "example..com/app", "registry host has an empty label"},
    {"host_trailing_dot", ECR_EU "./web", "registry host has an empty label"},
    {"host_underscore", "ex_ample.com/app", "registry host contains the character '_'"},
    {"ipv6_unclosed", "[::1/app", "registry host has '[' without ']'"},
    {"ipv6_text_after", "[::1]x/app", "registry host has text after ']'"},
    {"ipv6_bad_character", "[::g]/app", "registry host has an IPv6 address with the character 'g'"},
};

/* Fills the long texts at start-up: exact lengths matter, so they are counted, not typed. */
static void build_long_texts(void)
{
    snprintf(tag_128, sizeof(tag_128), "nginx:%0128d", 0);
    snprintf(tag_128_key, sizeof(tag_128_key), "docker.io/library/nginx:%s", tag_128 + 6);
    snprintf(tag_129, sizeof(tag_129), "nginx:%0129d", 0);
    /* "example.com/" is 12 characters, so 243 more make a name of 255. */
    snprintf(name_255, sizeof(name_255), "example.com/%s", "");
    memset(name_255 + 12, 'a', 243);
    name_255[255] = '\0';
    snprintf(name_255_key, sizeof(name_255_key), "%s:latest", name_255);
    snprintf(name_255_canon, sizeof(name_255_canon), "%s:latest", name_255);
    memcpy(name_256, name_255, 255);
    name_256[255] = 'a';
    name_256[256] = '\0';
    /* "docker.io/library/" is 18 characters: 237 as written is 255 once normalised. */
    memset(hub_255, 'b', 237);
    hub_255[237] = '\0';
    memset(hub_256, 'b', 238);
    hub_256[238] = '\0';
    memset(text_513, 'c', 513);
    text_513[513] = '\0';
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static void run_ok_case(void **state)
{
    const struct ok_case *c = *state;
    struct qfs_image_ref r;
    char reason[QFS_IMAGE_REF_REASON_SIZE];
    qfs_status s = qfs_image_ref_parse(c->text, &r, reason, sizeof(reason));
    if (s != QFS_OK) fail_msg("%s: unexpected refusal: %s", c->name, reason);
    assert_string_equal(reason, "");
    assert_string_equal(r.text, c->text);
    assert_int_equal(r.kind, c->kind);
    assert_string_equal(r.host, or_empty(c->host));
    if (c->repository)
        assert_string_equal(r.repository, c->repository);
    else
        assert_int_equal(strlen(r.host) + 1 + strlen(r.repository), QFS_IMAGE_REF_NAME_MAX);
    assert_string_equal(r.tag, or_empty(c->tag));
    assert_string_equal(r.digest, or_empty(c->digest));
    assert_string_equal(r.account, or_empty(c->account));
    assert_string_equal(r.region, or_empty(c->region));
    assert_string_equal(r.partition, or_empty(c->partition));
    assert_int_equal(r.ecr_fips, c->fips);
    assert_int_equal(r.ecr_dual_stack, c->dual_stack);
    assert_int_equal(r.tag_implied, c->tag_implied);
    assert_int_equal(qfs_image_ref_is_ecr_private(&r), c->kind == QFS_IMAGE_REF_ECR_PRIVATE);
    if (c->canonical) assert_string_equal(r.canonical, c->canonical);
    if (c->key) {
        char key[QFS_IMAGE_REF_KEY_SIZE];
        qfs_image_ref_key(&r, key);
        assert_string_equal(key, c->key);
    }
    if (r.kind == QFS_IMAGE_REF_ECR_PRIVATE) {
        assert_true(qfs_proto_is_account(r.account));
        assert_true(qfs_proto_is_region(r.region));
    }

    /* The canonical form is itself a reference that names the same image. */
    struct qfs_image_ref again;
    assert_int_equal(qfs_image_ref_parse(r.canonical, &again, reason, sizeof(reason)), QFS_OK);
    assert_string_equal(again.host, r.host);
    assert_string_equal(again.repository, r.repository);
    assert_string_equal(again.digest, r.digest);
    assert_int_equal(again.kind, r.kind);
    assert_string_equal(again.canonical, r.canonical);
}

static void run_bad_case(void **state)
{
    const struct bad_case *c = *state;
    struct qfs_image_ref r;
    memset(&r, 0x5a, sizeof(r));
    char reason[QFS_IMAGE_REF_REASON_SIZE];
    assert_int_equal(qfs_image_ref_parse(c->text, &r, reason, sizeof(reason)), QFS_PROTOCOL);
    if (!strstr(reason, c->reason))
        fail_msg("%s: reason \"%s\" does not contain \"%s\"", c->name, reason, c->reason);
    /* A refused reference leaves nothing behind that a careless caller could use. */
    assert_string_equal(r.text, "");
    assert_string_equal(r.host, "");
    assert_string_equal(r.repository, "");
    assert_string_equal(r.account, "");
    assert_int_equal(r.kind, QFS_IMAGE_REF_OTHER);
    assert_false(qfs_image_ref_is_ecr_private(&r));
}

static void test_null_arguments_are_caller_bugs(void **state)
{
    struct qfs_image_ref r;
    char reason[64];
    assert_int_equal(qfs_image_ref_parse(NULL, &r, reason, sizeof(reason)), QFS_INVALID_ARG);
    assert_int_equal(qfs_image_ref_parse("nginx", NULL, reason, sizeof(reason)), QFS_INVALID_ARG);
    assert_int_equal(qfs_image_ref_parse("nginx", &r, NULL, 0), QFS_OK);
    assert_int_equal(qfs_image_ref_parse("Nginx", &r, NULL, 0), QFS_PROTOCOL);
}

static void test_reason_is_cut_to_its_buffer(void **state)
{
    struct qfs_image_ref r;
    char reason[12];
    memset(reason, 'x', sizeof(reason));
    assert_int_equal(qfs_image_ref_parse("Nginx", &r, reason, 8), QFS_PROTOCOL);
    assert_string_equal(reason, "reposit");
    assert_int_equal(reason[8], 'x');
}

static void test_input_is_not_read_past_the_bound(void **state)
{
    /* A long unterminated run followed by a NUL the parser must never need to reach. */
    size_t n = QFS_IMAGE_REF_TEXT_MAX + 1;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    struct qfs_image_ref r;
    char reason[QFS_IMAGE_REF_REASON_SIZE];
    assert_int_equal(qfs_image_ref_parse(text, &r, reason, sizeof(reason)), QFS_PROTOCOL);
    assert_string_equal(reason, "reference is longer than 512 characters");
    free(text);
}

static void test_kind_names(void **state)
{
    assert_string_equal(qfs_image_ref_kind_str(QFS_IMAGE_REF_ECR_PRIVATE), "ecr_private");
    assert_string_equal(qfs_image_ref_kind_str(QFS_IMAGE_REF_ECR_PUBLIC), "ecr_public");
    assert_string_equal(qfs_image_ref_kind_str(QFS_IMAGE_REF_DOCKER_HUB), "docker_hub");
    assert_string_equal(qfs_image_ref_kind_str(QFS_IMAGE_REF_OTHER), "other");
    assert_string_equal(qfs_image_ref_kind_str((enum qfs_image_ref_kind)99), "other");
}

static void test_same_ecr_image_through_any_endpoint_has_one_key(void **state)
{
    const char *texts[] = {
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/web:1",
        "111122223333.dkr.ecr-fips.us-east-1.amazonaws.com/web:1",
        "111122223333.dkr-ecr.us-east-1.on.aws/web:1",
        "111122223333.dkr-ecr-fips.us-east-1.on.aws/web:1",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct qfs_image_ref r;
        char key[QFS_IMAGE_REF_KEY_SIZE];
        assert_int_equal(qfs_image_ref_parse(texts[i], &r, NULL, 0), QFS_OK);
        qfs_image_ref_key(&r, key);
        assert_string_equal(key, "111122223333/us-east-1/web:1");
    }
}

static void test_subject_token_checks(void **state)
{
    assert_true(qfs_proto_is_account("111122223333"));
    assert_true(qfs_proto_is_account("000000000000"));
    assert_false(qfs_proto_is_account("11112222333"));
    assert_false(qfs_proto_is_account("1111222233334"));
    assert_false(qfs_proto_is_account("11112222333a"));
    assert_false(qfs_proto_is_account("111122223333 "));
    assert_false(qfs_proto_is_account(""));
    assert_false(qfs_proto_is_account(NULL));
    assert_true(qfs_proto_is_region("eu-west-1"));
    assert_true(qfs_proto_is_region("us-gov-west-1"));
    assert_true(qfs_proto_is_region("a"));
    assert_true(qfs_proto_is_region("abcdefghijklmnopqrstuvwxyz-12345")); /* 32 */
    assert_false(qfs_proto_is_region("abcdefghijklmnopqrstuvwxyz-123456")); /* 33 */
    assert_false(qfs_proto_is_region(""));
    assert_false(qfs_proto_is_region("EU-WEST-1"));
    assert_false(qfs_proto_is_region("eu.west.1"));
    assert_false(qfs_proto_is_region("eu-west-*"));
    assert_false(qfs_proto_is_region("eu-west->"));
    assert_false(qfs_proto_is_region("eu west"));
    assert_false(qfs_proto_is_region(NULL));
}

int main(void)
{
    build_long_texts();
    size_t n_ok = sizeof(ok_cases) / sizeof(ok_cases[0]);
    size_t n_bad = sizeof(bad_cases) / sizeof(bad_cases[0]);
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_null_arguments_are_caller_bugs),
        cmocka_unit_test(test_reason_is_cut_to_its_buffer),
        cmocka_unit_test(test_input_is_not_read_past_the_bound),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_same_ecr_image_through_any_endpoint_has_one_key),
        cmocka_unit_test(test_subject_token_checks),
    };
    size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]);
    size_t total = n_ok + n_bad + n_fixed;
    /* One named cmocka test per table row, so a failure names its case. */
    struct CMUnitTest *tests = calloc(total, sizeof(*tests));
    char **names = calloc(n_ok + n_bad, sizeof(*names));
    size_t k = 0;
    for (size_t i = 0; i < n_ok; i++, k++) {
        size_t len = strlen(ok_cases[i].name) + 8;
        names[k] = malloc(len);
        snprintf(names[k], len, "ok/%s", ok_cases[i].name);
        tests[k] = (struct CMUnitTest){names[k], run_ok_case, NULL, NULL, (void *)&ok_cases[i]};
    }
    for (size_t i = 0; i < n_bad; i++, k++) {
        size_t len = strlen(bad_cases[i].name) + 8;
        names[k] = malloc(len);
        snprintf(names[k], len, "bad/%s", bad_cases[i].name);
        tests[k] = (struct CMUnitTest){names[k], run_bad_case, NULL, NULL, (void *)&bad_cases[i]};
    }
    for (size_t i = 0; i < n_fixed; i++) tests[k + i] = fixed[i];
    int failed = _cmocka_run_group_tests("image_ref", tests, total, NULL, NULL);
    for (size_t i = 0; i < n_ok + n_bad; i++) free(names[i]);
    free(names);
    free(tests);
    return failed;
}
