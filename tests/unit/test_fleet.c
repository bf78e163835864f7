/* A fleet file (src/fleet/fleet.h, docs/FLEET.md): what an operator writes
 * is read whole or refused with the field named; what fastmig writes reads
 * back the same. */
#include <stdlib.h>

#include "fleet/fleet.h"
#include "testbed/testbed.h"
#include "tap.h"

static const char *two = "{\n"
                         "  \"fleet\": \"edge\",\n"
                         "  \"pki\": \"/etc/fastmig/pki\",\n"
                         "  \"services\": {\"subnet\": \"192.168.50.0/24\", \"gateway\": \"192.168.50.1\"},\n"
                         "  \"steering\": {\"kind\": \"command\", \"command\": \"/usr/local/sbin/steer\"},\n"
                         "  \"hosts\": [\n"
                         "    {\"name\": \"mec-a\", \"agent\": \"192.0.2.10:7070\", \"bridge\": \"br0\"},\n"
                         "    {\"name\": \"mec-b\", \"agent\": \"192.0.2.11\", \"route_via\": \"198.51.100.7\"}\n"
                         "  ]\n"
                         "}\n";

/* two with one substring replaced; the error of parsing it */
static const char *refused(const char *from, const char *to)
{
        static fm_error e;
        char *p = strstr(two, from), buf[4096];
        if (!p)
                return "(test: substring not found)";
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - two), two, to, p + strlen(from));
        fm_fleet f;
        memset(&e, 0, sizeof(e));
        return fm_fleet_parse(buf, strlen(buf), &f, &e) < 0 ? e.msg : NULL;
}

static bool says(const char *msg, const char *needle)
{
        printf("# %s\n", msg ? msg : "(accepted)");
        return msg && strstr(msg, needle);
}

int main(void)
{
        fm_fleet f;
        fm_error e = {0};
        int r = fm_fleet_parse(two, strlen(two), &f, &e);
        ok(r == 0, "an operator's fleet file is read (%s)", e.msg);
        ok(f.hosts == 2 && !strcmp(f.host[0].addr, "192.0.2.10") && f.host[0].port == 7070 && f.host[1].port == 7070,
           "agents and their default port");
        ok(!strcmp(f.host[0].route_via, "192.0.2.10") && !strcmp(f.host[1].route_via, "198.51.100.7"),
           "route_via defaults to the agent's address");
        ok(f.steer.kind == FM_STEER_COMMAND && !strcmp(f.steer.command, "/usr/local/sbin/steer") &&
                   f.steer.timeout_ms == 5000,
           "command steering with the default timeout");
        ok(!strcmp(f.cert, "operator") && !f.agents_netns[0] && !f.users_netns[0], "defaults: operator, this namespace");
        char ip[16];
        fm_fleet_service_addr(&f, 0, ip);
        ok(!strcmp(ip, "192.168.50.10"), "the first service address is the subnet's 10th (%s)", ip);
        fm_fleet_service_addr(&f, 244, ip);
        ok(!strcmp(ip, "192.168.50.254"), "the last is below the broadcast (%s)", ip);
        fm_fleet_service_addr(&f, 245, ip);
        ok(!ip[0], "none past it");
        ok(fm_fleet_host(&f, "mec-b") == &f.host[1] && !fm_fleet_host(&f, "mec-c") &&
                   fm_fleet_host_by_addr(&f, "192.0.2.11") == &f.host[1],
           "lookups by name and by address");

        /* what fastmig writes reads back the same */
        json_object *o = fm_fleet_json(&f);
        const char *text = json_object_to_json_string(o);
        fm_fleet g;
        r = fm_fleet_parse(text, strlen(text), &g, &e);
        ok(r == 0 && !memcmp(&f, &g, sizeof(f)), "written and read back: the same fleet");
        json_object_put(o);
        fm_testbed tb;
        fm_testbed_layout(&tb, 3, 1000, true);
        fm_testbed_fleet(&tb, &f);
        o = fm_fleet_json(&f);
        text = json_object_to_json_string(o);
        r = fm_fleet_parse(text, strlen(text), &g, &e);
        ok(r == 0 && !memcmp(&f, &g, sizeof(f)) && g.steer.kind == FM_STEER_ROUTE && !strcmp(g.users_netns, "fm-ue") &&
                   !strcmp(g.host[2].shared, FM_TESTBED_ROOT "/mec3/shared"),
           "the testbed's fleet reads back the same (%s)", e.msg);
        json_object_put(o);

        /* refused whole, the field named */
        ok(says(refused("\"bridge\"", "\"bridg\""), "hosts[0].bridg: unknown key"), "a typo in a key");
        ok(says(refused("192.0.2.11\"", "192.0.2.10:7070\""), "hosts[1].agent: the same agent"), "one agent twice");
        ok(says(refused("\"mec-b\"", "\"mec-a\""), "hosts[1].name: used twice"), "one name twice");
        ok(says(refused("\"mec-b\"", "\"../b\""), "hosts[1].name: bad host name"), "a name with a path");
        ok(says(refused("192.0.2.11", "192.0.2.300"), "hosts[1].agent"), "a bad address");
        ok(says(refused("/24", "/31"), "services.subnet"), "a subnet too small for services");
        ok(says(refused("192.168.50.1\"", "10.0.0.1\""), "gateway: is not in the subnet"), "a gateway outside");
        ok(says(refused("\"gateway\": \"192.168.50.1\"", "\"gateway\": \"\""), "services.gateway: empty"),
           "an empty gateway (found by the fuzzer: it passed, and did not read back)");
        ok(says(refused("\"command\", \"command\": \"/usr/local/sbin/steer\"", "\"command\""),
                "steering.command: missing"),
           "command steering without a command");
        ok(says(refused("/usr/local/sbin/steer", "steer.sh"), "steering.command: must be an absolute path"),
           "a relative hook");
        ok(says(refused("\"command\", \"command\"", "\"route\", \"command\""), "only for kind command"),
           "a command for route steering");
        ok(says(refused("\"kind\": \"command\"", "\"kind\": \"sdn\""), "steering.kind"), "an unknown steering");
        ok(says(refused("/etc/fastmig/pki", "/etc/../pki"), "pki: must be an absolute path"), "a path with ..");
        ok(says(refused("\"pki\": \"/etc", "\"pki\": /etc"), "line 3"), "a syntax error names its line");
        ok(says(refused("  ]\n}\n", "  ]\n} {}\n"), "text after the end"), "two objects");
        ok(says(refused("\"hosts\": [", "\"hostz\": ["), "unknown key"), "no hosts");
        char big[FM_FLEET_MAX_BYTES + 2];
        memset(big, ' ', sizeof(big));
        ok(fm_fleet_parse(big, sizeof(big), &f, &e) < 0 && strstr(e.msg, "larger"), "an oversized file: %s", e.msg);
        ok(fm_fleet_parse("{\"fleet\":\"x\"\0}", 14, &f, &e) < 0, "a NUL byte: %s", e.msg);
        return tap_done();
}
