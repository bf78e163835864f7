#include "cli.h"

int cmd_bench(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        return cli_fail("bench: not built yet");
}

int cmd_demo(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        return cli_fail("demo: not built yet");
}
