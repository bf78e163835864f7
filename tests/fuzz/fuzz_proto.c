/* libFuzzer target for everything a peer can send: frame headers, JSON
 * messages and their field checks, and whole image streams. */
#include <fcntl.h>
#include <unistd.h>

#include "memory/pagestream.h"
#include "proto/proto.h"
#include "transfer/files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fm_error e = {0};
        uint8_t t;
        uint32_t l;
        if (size >= FM_FRAME_HEADER_LEN)
                fm_frame_header_parse(data, &t, &l, &e);
        json_object *o = NULL;
        if (fm_msg_parse((const char *)data, size, &o, &e) == 0) {
                const char *s;
                int64_t n;
                fm_json_str(o, "op", true, 32, &s, &e);
                fm_json_str(o, "name", false, 63, &s, &e);
                fm_json_int(o, "size", false, 0, 1 << 30, &n, &e);
                fm_reply_check(o, &e);
                json_object_put(o);
        }
        /* the same bytes as page records */
        {
                static uint8_t key[FM_HASH_KEY_SIZE];
                static fm_pagestore store;
                static int devnull = -1;
                if (devnull < 0) {
                        devnull = open("/dev/null", O_WRONLY);
                        fm_pagestore_open(&store, "/dev/shm/fastmig-fuzz-store", 64, &e);
                }
                fm_pagestream_stats st = {0};
                fm_pagestream_decode(data, size, key, &store, devnull, NULL, &st, &e);
        }
        /* the same bytes as an image stream */
        int p[2];
        if (size <= 60000 && pipe(p) == 0) {
                if (write(p[1], data, size) == (ssize_t)size) {
                        close(p[1]);
                        uint64_t bytes = 0;
                        fm_files_recv(p[0], "/dev/shm/fastmig-fuzz", 1 << 20, NULL, &bytes, &e);
                } else {
                        close(p[1]);
                }
                close(p[0]);
                fm_rm_rf("/dev/shm/fastmig-fuzz");
        }
        return 0;
}
