/* qfs-registry: scan requests in, scan ready messages (or registry failures) out. */
#include "qfs/service.h"

extern const struct qfs_service_def registry_service;

int main(int argc, char **argv)
{
    return qfs_service_main(&registry_service, argc, argv);
}
