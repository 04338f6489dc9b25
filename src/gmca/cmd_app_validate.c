/* placeholder: being written */
#include "cli.h"

int cmd_app_validate(struct cli *cli, int argc, char **argv)
{
        (void)cli;
        (void)argc;
        (void)argv;
        return cli_usage_error("not yet");
}
