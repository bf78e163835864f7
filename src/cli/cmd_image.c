#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/images.h"
#include "plane/plane.h"

static const char USAGE[] =
        "fastmig image build debian12|blank|video --host HOST [--name NAME] [--video-mb N] [--seed N]\n"
        "       fastmig image list --host HOST [--json]\n"
        "       fastmig image push IMAGE --to HOST [--from HOST] [--force]\n"
        "       fastmig image rm IMAGE --host HOST\n"
        "IMAGE is a name (the newest of that name) or a digest prefix of 8+ digits.";

void cli_image_progress(const char *what, void *data)
{
        (void)data;
        fprintf(stderr, "fastmig: image: %s\n", what);
}

static void print_image(const fm_image *im)
{
        printf("%-12s %-5s %.16s  %8.1f MB %8.1f MB %7llu%s%s\n", im->name, im->kind, im->digest,
               (double)im->bytes / 1e6, (double)im->tree_bytes / 1e6, (unsigned long long)im->files,
               im->base[0] ? "  over " : "", im->base[0] ? im->base_name : "");
}

static int do_list(const fm_host *h, bool json)
{
        json_object *rep = NULL, *arr = NULL;
        fm_error e = {0};
        if (fm_plane_image_call(h, "image_list", NULL, &rep, 600000, &e) < 0)
                return cli_fail("%s", e.msg);
        if (json) {
                json_object *out = json_object_new_object();
                json_object_object_add(out, "host", json_object_new_string(h->name));
                if (json_object_object_get_ex(rep, "images", &arr))
                        json_object_object_add(out, "images", json_object_get(arr));
                json_object *fb = NULL;
                if (json_object_object_get_ex(rep, "free_bytes", &fb))
                        json_object_object_add(out, "free_bytes", json_object_get(fb));
                cli_print_json(out);
                json_object_put(out);
        } else if (json_object_object_get_ex(rep, "images", &arr)) {
                printf("%-12s %-5s %-16s  %11s %11s %7s\n", "image", "kind", "digest", "file", "tree", "files");
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        fm_image im;
                        if (fm_image_from_json(json_object_array_get_idx(arr, i), &im, &e) == 0)
                                print_image(&im);
                }
        }
        json_object_put(rep);
        return 0;
}

/* The first host (from, when given) whose store holds ref. */
static const fm_host *holder(const fm_fleet *tb, const char *ref, const char *from, const fm_host *not)
{
        for (int i = 0; i < tb->hosts; i++) {
                const fm_host *h = &tb->host[i];
                if (h == not || (from && strcmp(from, h->name)))
                        continue;
                fm_image im;
                if (fm_image_find(h->store, ref, &im, NULL) == 0)
                        return h;
        }
        return NULL;
}

int cmd_image(int argc, char **argv)
{
        if (argc < 2)
                return cli_usage(USAGE);
        const char *verb = argv[1], *host = NULL, *to = NULL, *from = NULL, *name = NULL;
        bool json = false, force = false;
        double video_mb = 0;
        uint32_t seed = 0;
        static const struct option lo[] = {
                {"host", required_argument, 0, 'h'}, {"to", required_argument, 0, 't'},
                {"from", required_argument, 0, 'f'}, {"name", required_argument, 0, 'n'},
                {"json", no_argument, 0, 'j'},       {"force", no_argument, 0, 'F'},
                {"video-mb", required_argument, 0, 'v'}, {"seed", required_argument, 0, 's'},
                {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'h': host = optarg; break;
                case 't': to = optarg; break;
                case 'f': from = optarg; break;
                case 'n': name = optarg; break;
                case 'j': json = true; break;
                case 'F': force = true; break;
                case 'v':
                        if (fm_parse_double(optarg, &video_mb) < 0 || !(video_mb >= 1 && video_mb <= 100000))
                                return cli_fail("--video-mb takes 1 to 100000, not `%s'", optarg);
                        break;
                case 's':
                        if (fm_parse_u32(optarg, &seed) < 0 || seed == 0)
                                return cli_fail("--seed takes a positive number, not `%s'", optarg);
                        break;
                default: return cli_usage(USAGE);
                }
        }
        int nargs = argc - 1 - optind; /* after the verb */
        const char *arg = nargs > 0 ? argv[1 + optind] : NULL;
        fm_fleet tb;
        if (cli_load_fleet(&tb))
                return 1;
        fm_error e = {0};
        const fm_host *h = host ? fm_fleet_host(&tb, host) : NULL;
        if (host && !h)
                return cli_no_host(&tb, host);
        if (!strcmp(verb, "list")) {
                if (!h || nargs)
                        return cli_usage(USAGE);
                return do_list(h, json);
        }
        if (nargs != 1)
                return cli_usage(USAGE);
        if (!strcmp(verb, "build")) {
                if (!h)
                        return cli_usage(USAGE);
                _cleanup_free_ char *seqecho = fm_strdupf("%s/fm-seqecho", fm_self_dir());
                fm_build_opts o = {.seqecho_path = seqecho, .video_bytes = (uint64_t)(video_mb * 1e6),
                                   .video_seed = seed, .progress = cli_image_progress};
                fm_image im;
                double t0 = fm_now_ms();
                if (fm_plane_image_install(h, arg, name, &o, &im, &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("%s on %s (%.1f s):\n", im.name, h->name, (fm_now_ms() - t0) / 1000);
                print_image(&im);
                return 0;
        }
        if (!strcmp(verb, "rm")) {
                if (!h)
                        return cli_usage(USAGE);
                json_object *rep = NULL;
                if (fm_plane_image_call(h, "image_rm", arg, &rep, 600000, &e) < 0)
                        return cli_fail("%s", e.msg);
                json_object_put(rep);
                printf("%s removed from %s\n", arg, h->name);
                return 0;
        }
        if (!strcmp(verb, "push")) {
                const fm_host *dst = to ? fm_fleet_host(&tb, to) : NULL;
                if (!dst)
                        return to ? cli_fail("no host `%s' in the testbed", to) : cli_usage(USAGE);
                const fm_host *src = holder(&tb, arg, from, dst);
                if (!src)
                        return cli_fail("no host%s%s holds image `%s'", from ? " " : " but the target", from ? from : "",
                                        arg);
                json_object *rep = NULL;
                double t0 = fm_now_ms();
                int r = fm_plane_image_push(src, dst, arg, force, &rep, &e);
                if (r < 0)
                        return cli_fail("%s", e.msg);
                json_object *b = NULL, *bb = NULL;
                json_object_object_get_ex(rep, "bytes", &b);
                json_object_object_get_ex(rep, "bytes_base", &bb);
                printf("%s: %s -> %s in %.2f s, %.1f MB sent (base %.1f MB)\n", arg, src->name, dst->name,
                       (fm_now_ms() - t0) / 1000, (double)json_object_get_int64(b) / 1e6,
                       (double)json_object_get_int64(bb) / 1e6);
                json_object_put(rep);
                return 0;
        }
        return cli_usage(USAGE);
}
