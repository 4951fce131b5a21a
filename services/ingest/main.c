/* qfs-ingest: SQS in, qfs.events.* out. */
#include "qfs/service.h"

extern const struct qfs_service_def ingest_service;

int main(int argc, char **argv)
{
    return qfs_service_main(&ingest_service, argc, argv);
}
