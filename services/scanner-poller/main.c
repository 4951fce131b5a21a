/* qfs-scanner-poller: scan-ready messages in, scan results and scan failures out. */
#include "qfs/service.h"

extern const struct qfs_service_def scanner_poller_service;

int main(int argc, char **argv)
{
    return qfs_service_main(&scanner_poller_service, argc, argv);
}
