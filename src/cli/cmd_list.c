#include "cli.h"
#include "plane/plane.h"

int cmd_list(int argc, char **argv)
{
        (void)argv;
        if (argc != 1)
                return cli_usage("fastmig list");
        fm_fleet tb;
        if (cli_load_fleet(&tb))
                return 1;
        printf("%-16s %-6s %-8s %s\n", "container", "host", "state", "ipv4");
        for (int i = 0; i < tb.hosts; i++) {
                fm_ct_entry *v = NULL;
                size_t n = 0;
                fm_error e = {0};
                if (fm_plane_list(&tb.host[i], &v, &n, &e) < 0)
                        fprintf(stderr, "fastmig: %s\n", e.msg);
                for (size_t k = 0; k < n; k++)
                        printf("%-16s %-6s %-8s %s\n", v[k].name, tb.host[i].name, v[k].state, v[k].ipv4);
                free(v);
        }
        return 0;
}
