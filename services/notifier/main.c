/* qfs-notifier: scan outcomes in, SNS messages and notification records out. */
#include "qfs/service.h"

extern const struct qfs_service_def notifier_service;

int main(int argc, char **argv)
{
    return qfs_service_main(&notifier_service, argc, argv);
}
