/* qfs-cache: image records become cached or in-flight skips or scan requests; scan outcomes are
 * stored. */
#include "qfs/service.h"

extern const struct qfs_service_def cache_service;

int main(int argc, char **argv)
{
    return qfs_service_main(&cache_service, argc, argv);
}
