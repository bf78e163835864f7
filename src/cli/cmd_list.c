#include "cli.h"
#include "plane/plane.h"
#include "proto/proto.h"

int cmd_list(int argc, char **argv)
{
        (void)argv;
        if (argc != 1)
                return cli_usage("fastmig list");
        fm_testbed tb;
        if (cli_load_testbed(&tb))
                return 1;
        printf("%-16s %-6s %-8s %s\n", "container", "host", "state", "ipv4");
        for (int i = 0; i < tb.hosts; i++) {
                json_object *req = json_object_new_object(), *rep = NULL, *arr = NULL;
                json_object_object_add(req, "op", json_object_new_string("list"));
                fm_error e = {0};
                if (fm_plane_call(&tb.host[i], req, &rep, 3000, &e) < 0)
                        fprintf(stderr, "fastmig: %s\n", e.msg);
                json_object_put(req);
                if (rep && json_object_object_get_ex(rep, "containers", &arr))
                        for (size_t k = 0; k < json_object_array_length(arr); k++) {
                                json_object *c = json_object_array_get_idx(arr, k);
                                const char *n = NULL, *st = NULL, *ip = NULL;
                                fm_json_str(c, "name", false, 64, &n, NULL);
                                fm_json_str(c, "state", false, 32, &st, NULL);
                                fm_json_str(c, "ipv4", false, 15, &ip, NULL);
                                printf("%-16s %-6s %-8s %s\n", n, tb.host[i].name, st, ip);
                        }
                json_object_put(rep);
        }
        return 0;
}
