/* The source agent's migration journal (src/migrate/journal.h): what it
 * writes reads back the same, a half-written or hostile record is refused
 * with its field named, and a record survives only until it is removed. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/journal.h"
#include "tap.h"

static const char *refused(const char *text)
{
        static fm_error e;
        fm_journal_rec r;
        memset(&e, 0, sizeof(e));
        int q = fm_journal_parse(text, strlen(text), &r, &e);
        printf("# %s\n", q < 0 ? e.msg : "(accepted)");
        return q < 0 ? e.msg : NULL;
}

#define REC(step, name, id, addr, rel)                                                                      \
        "{\"step\":\"" step "\",\"name\":\"" name "\",\"id\":\"" id "\",\"to_host\":\"mec2\",\"to_addr\":\"" \
        addr "\",\"to_port\":7070,\"service_ip\":\"10.78.0.10\",\"shared_rel\":\"" rel "\"}"
#define ID "0123456789abcdef0123456789abcdef"

int main(void)
{
        char state[] = "/tmp/fastmig-test-journal-XXXXXX";
        ok(mkdtemp(state) != NULL, "a state directory");
        fm_journal_rec w = {.step = FM_JOURNAL_FROZEN, .to_port = 7070, .moving_tree = true, .leases = true,
                            .started = 1700000000, .since = 1700000005};
        snprintf(w.name, sizeof(w.name), "svc");
        fm_journal_new_id(w.id);
        snprintf(w.to_host, sizeof(w.to_host), "mec2");
        snprintf(w.to_addr, sizeof(w.to_addr), "10.77.2.2");
        snprintf(w.service_ip, sizeof(w.service_ip), "10.78.0.10");
        snprintf(w.shared_rel, sizeof(w.shared_rel), "trees/svc");
        fm_error e = {0};
        ok(strlen(w.id) == 32 && strspn(w.id, "0123456789abcdef") == 32, "a fresh id is 32 hex digits (%s)", w.id);
        char other[33];
        fm_journal_new_id(other);
        ok(strcmp(other, w.id) != 0, "and another one differs");
        ok(fm_journal_write(state, &w, &e) == 0, "written (%s)", e.msg);
        char path[600];
        fm_journal_path(state, "svc", path, sizeof(path));
        struct stat st;
        ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "as STATE/journal/svc.json, 0600");
        fm_journal_rec r;
        ok(fm_journal_read(path, &r, &e) == 0 && !memcmp(&r, &w, sizeof(r)), "read back the same (%s)", e.msg);
        w.step = FM_JOURNAL_COMMITTED;
        ok(fm_journal_write(state, &w, &e) == 0 && fm_journal_read(path, &r, &e) == 0 &&
                   r.step == FM_JOURNAL_COMMITTED,
           "a later step replaces the record");
        w.step = FM_JOURNAL_ROLLEDBACK;
        ok(fm_journal_write(state, &w, &e) == 0 && fm_journal_read(path, &r, &e) == 0 &&
                   r.step == FM_JOURNAL_ROLLEDBACK && r.leases,
           "rolledback, with the target's leases, read back");
        w.step = FM_JOURNAL_COMMITTED;
        /* a half-written replacement (the .new a crash leaves) is not a record */
        char half[700];
        snprintf(half, sizeof(half), "%s.new", path);
        FILE *f = fopen(half, "w");
        fputs("{\"step\":\"fro", f);
        fclose(f);
        snprintf(w.name, sizeof(w.name), "a-second");
        fm_journal_write(state, &w, &e);
        char names[8][FM_NAME_MAX + 1];
        int n = fm_journal_list(state, names, 8, &e);
        ok(n == 2 && !strcmp(names[0], "a-second") && !strcmp(names[1], "svc"),
           "listed: the two records, sorted, not the half-written file (%d)", n);
        ok(fm_journal_remove(state, "svc") == 0 && fm_journal_remove(state, "svc") == 0 &&
                   fm_journal_list(state, names, 8, &e) == 1,
           "removed (twice is fine)");

        ok(!refused(REC("planned", "svc", ID, "10.77.2.2", "")), "a minimal record");
        ok(refused(REC("thawed", "svc", ID, "10.77.2.2", "")) && strstr(refused(REC("thawed", "svc", ID, "10.77.2.2", "")), "unknown step"),
           "an unknown step");
        ok(refused(REC("frozen", "../etc", ID, "10.77.2.2", "")) != NULL, "a name with a path in it");
        ok(refused(REC("frozen", "svc", "0123", "10.77.2.2", "")) != NULL, "a short id");
        ok(refused(REC("frozen", "svc", "0123456789ABCDEF0123456789abcdeg", "10.77.2.2", "")) != NULL,
           "an id that is not lower-case hex");
        ok(refused(REC("frozen", "svc", ID, "mec2.example", "")) != NULL, "an address that is not IPv4");
        ok(refused(REC("frozen", "svc", ID, "10.77.2.2", "../../etc")) != NULL, "a shared tree outside the volume");
        ok(refused("{\"step\":\"frozen\"}") != NULL, "missing fields");
        ok(refused("[1,2]") != NULL && refused("") != NULL, "not an object, nothing at all");
        snprintf(half, sizeof(half), "rm -rf %s", state);
        ok(system(half) == 0, "cleaned up");
        return tap_done();
}
