/* qfs-parser: ECS deploy events in, image records and skip records out. */
#include "qfs/service.h"

extern const struct qfs_service_def parser_service;

int main(int argc, char **argv)
{
    return qfs_service_main(&parser_service, argc, argv);
}
