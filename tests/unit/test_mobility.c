/* The coverage map, the trace readers and the known-path planner
 * (src/mobility), with scenarios/sumo/road.fcd.xml, a trace SUMO wrote,
 * and the scenarios shipped (src/scenario). */
#include <math.h>
#include <string.h>

#include "mobility/coverage.h"
#include "mobility/planner.h"
#include "mobility/trace.h"
#include "proto/proto.h"
#include "scenario/scenario.h"
#include "tap.h"

/* four 400 m cells along the x axis, each on its own host, overlapping by 50 m */
static const char *const highway =
        "{\"cells\": ["
        " {\"id\": \"c1\", \"host\": \"mec1\", \"polygon\": [[-50, -100], [425, -100], [425, 100], [-50, 100]]},"
        " {\"id\": \"c2\", \"host\": \"mec2\", \"polygon\": [[375, -100], [825, -100], [825, 100], [375, 100]]},"
        " {\"id\": \"c3\", \"host\": \"mec3\", \"center\": [1000, 0], \"radius\": 225},"
        " {\"id\": \"c3b\", \"host\": \"mec3\", \"center\": [1300, 0], \"radius\": 150},"
        " {\"id\": \"c4\", \"host\": \"mec4\", \"polygon\": [[1400, -100], [1700, -100], [1700, 100], [1400, 100]]},"
        " {\"id\": \"far\", \"host\": \"mec4\"}"
        "]}";

static int coverage_from(const char *text, fm_coverage *c, fm_error *e)
{
        json_object *doc = NULL;
        int r = fm_json_parse_text(text, strlen(text), &doc, e);
        if (r == 0)
                r = fm_coverage_parse(doc, NULL, c, e);
        json_object_put(doc);
        return r;
}

static bool refused(const char *text, const char *want)
{
        fm_coverage c;
        fm_error e = {0};
        int r = coverage_from(text, &c, &e);
        if (r == 0)
                fm_coverage_free(&c);
        if (r < 0 && !strstr(e.msg, want))
                printf("# got: %s\n", e.msg);
        return r < 0 && strstr(e.msg, want);
}

static void test_coverage(void)
{
        fm_coverage c;
        fm_error e = {0};
        ok(coverage_from(highway, &c, &e) == 0, "the highway map is read (%s)", e.msg);
        ok(c.n == 6 && c.cells[2].shape == FM_CELL_CIRCLE && c.cells[5].shape == FM_CELL_NAMED, "its cells and shapes");
        ok(!strcmp(fm_coverage_locate(&c, 0, 0, NULL)->id, "c1"), "(0,0) in c1");
        ok(!strcmp(fm_coverage_locate(&c, 400, 0, NULL)->id, "c1"), "(400,0), in c1 and c2: the first on the map");
        ok(!strcmp(fm_coverage_locate(&c, 400, 0, fm_coverage_cell(&c, "c2"))->id, "c2"), "... but c2 kept while in it");
        ok(!strcmp(fm_coverage_locate(&c, 1000, 200, NULL)->id, "c3"), "inside the circle");
        ok(fm_coverage_locate(&c, 1000, 300, NULL) == NULL, "outside every cell");
        ok(fm_coverage_locate(&c, 425, 100, NULL) != NULL, "a polygon's corner counts as inside");
        json_object *j = fm_coverage_json(&c);
        fm_coverage c2;
        ok(fm_coverage_parse(j, NULL, &c2, &e) == 0 && c2.n == c.n && c2.cells[0].nv == 4, "its JSON reads back");
        json_object_put(j);
        fm_coverage_free(&c2);
        fm_coverage_free(&c);

        fm_fleet f = {0};
        f.hosts = 1;
        snprintf(f.host[0].name, sizeof(f.host[0].name), "mec1");
        json_object *doc = NULL;
        fm_json_parse_text(highway, strlen(highway), &doc, &e);
        ok(fm_coverage_parse(doc, &f, &c, &e) < 0 && strstr(e.msg, "cells[1].host") && strstr(e.msg, "mec2"),
           "a host the fleet lacks is named (%s)", e.msg);
        json_object_put(doc);

        ok(refused("{\"cells\": []}", "empty"), "no cells");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\"}, {\"id\": \"a\", \"host\": \"h\"}]}", "cells[1].id"), "a cell twice");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"polygon\": [[0,0],[1,1]]}]}", "at least 3"), "a two-vertex polygon");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"polygon\": [[0,0],[1,1],[2,2]]}]}", "no area"), "a flat polygon");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"polygon\": [[0,0],[1],[2,2]]}]}", "polygon[1]"), "a vertex of one coordinate");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"center\": [0,0]}]}", "radius"), "a circle without radius");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"center\": [0,0], \"radius\": 1, \"polygon\": [[0,0],[1,0],[0,1]]}]}", "not both"), "circle and polygon");
        ok(refused("{\"cells\": [{\"id\": \"a b\", \"host\": \"h\"}]}", "cells[0].id"), "a bad cell id");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"../h\"}]}", "host"), "a bad host name");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"center\": [1e9, 0], \"radius\": 1}]}", "cells[0].center"), "too far out");
        ok(refused("{\"cells\": [{\"id\": \"a\", \"host\": \"h\", \"colour\": 1}]}", "colour"), "an unknown field");
}

static bool trace_refused(const char *text, fm_trace_format f, const char *want)
{
        fm_trace t;
        fm_error e = {0};
        int r = fm_trace_parse(text, strlen(text), f, NULL, &t, &e);
        if (r == 0)
                fm_trace_free(&t);
        if (r < 0 && !strstr(e.msg, want))
                printf("# got: %s\n", e.msg);
        return r < 0 && strstr(e.msg, want);
}

static void test_traces(void)
{
        fm_trace t;
        fm_error e = {0};
        const char *csv = "# a car\ntime, x, y\n0,0,0\n\n1.5,37.5,0\r\n3,75,0\n";
        ok(fm_trace_parse(csv, strlen(csv), FM_TRACE_CSV, NULL, &t, &e) == 0 && t.n == 3, "CSV positions (%s)", e.msg);
        ok(t.n == 3 && t.p[1].t_ms == 1500 && t.p[1].x == 37.5 && t.p[2].line == 6, "times in ms, lines counted");
        fm_trace_free(&t);
        const char *cells = "time,cell\n0,c1\n10,c2\n";
        ok(fm_trace_parse(cells, strlen(cells), FM_TRACE_CSV, NULL, &t, &e) == 0 && t.n == 2 && !t.p[1].has_xy &&
                   !strcmp(t.p[1].cell, "c2"),
           "CSV cells");
        fm_trace_free(&t);
        ok(trace_refused("time,x,y\n0,0,0\n2,1,1\n1,2,2\n", FM_TRACE_CSV, "line 4: the time 1.000 s is not after"),
           "time going backwards: its line");
        ok(trace_refused("time,x,y\n0,0,0\n0,1,1\n", FM_TRACE_CSV, "line 3"), "the same time twice");
        ok(trace_refused("time,x\n0,0\n", FM_TRACE_CSV, "line 1: the header"), "a bad header");
        ok(trace_refused("time,x,y\n0,0\n", FM_TRACE_CSV, "line 2: 2 fields"), "a short line");
        ok(trace_refused("time,x,y\n0,0,zero\n", FM_TRACE_CSV, "line 2: the position"), "a word for a number");
        ok(trace_refused("time,x,y\n0,0,nan\n", FM_TRACE_CSV, "line 2"), "NaN");
        ok(trace_refused("time,x,y\n-1,0,0\n", FM_TRACE_CSV, "line 2: the time"), "a negative time");
        ok(trace_refused("time,cell\n0,c 1\n", FM_TRACE_CSV, "not a cell id"), "a bad cell id");
        ok(trace_refused("time,x,y\n", FM_TRACE_CSV, "no points"), "no points");
        char longline[400];
        memset(longline, '1', sizeof(longline) - 1);
        longline[sizeof(longline) - 1] = '\0';
        char text[500];
        snprintf(text, sizeof(text), "time,x,y\n%s\n", longline);
        ok(trace_refused(text, FM_TRACE_CSV, "line 2: longer than"), "an overlong line");
        size_t big = FM_TRACE_TEXT_MAX + 1;
        char *huge = malloc(big + 1);
        memset(huge, ' ', big);
        huge[big] = '\0';
        ok(fm_trace_parse(huge, big, FM_TRACE_CSV, NULL, &t, &e) == -EFBIG, "an oversized text");
        free(huge);
        /* more points than a trace takes */
        size_t cap = (FM_TRACE_POINTS_MAX + 2) * 16 + 16, off = 0;
        char *many = malloc(cap);
        off += (size_t)snprintf(many, cap, "time,cell\n");
        for (int i = 0; i <= FM_TRACE_POINTS_MAX; i++)
                off += (size_t)snprintf(many + off, cap - off, "%d,c\n", i);
        ok(fm_trace_parse(many, off, FM_TRACE_CSV, NULL, &t, &e) == -E2BIG && strstr(e.msg, "line 20002"),
           "too many points: refused at the first past the limit (%s)", e.msg);
        free(many);

        const char *js = "{\"points\": [{\"t\": 0, \"x\": 1, \"y\": 2}, {\"t\": 0.5, \"x\": 3, \"y\": 4}]}";
        ok(fm_trace_parse(js, strlen(js), FM_TRACE_JSON, NULL, &t, &e) == 0 && t.n == 2 && t.p[1].t_ms == 500, "JSON");
        json_object *back = fm_trace_json(&t);
        fm_trace_free(&t);
        const char *bs = json_object_to_json_string(back);
        ok(fm_trace_parse(bs, strlen(bs), FM_TRACE_JSON, NULL, &t, &e) == 0 && t.n == 2 && t.p[1].y == 4, "its JSON reads back");
        fm_trace_free(&t);
        json_object_put(back);
        ok(trace_refused("{\"points\": [{\"t\": 0, \"x\": 1}]}", FM_TRACE_JSON, "points[0]"), "x without y");
        ok(trace_refused("{\"points\": [{\"t\": 0, \"x\": 1, \"y\": 1}, {\"t\": 1, \"cell\": \"a\"}]}", FM_TRACE_JSON, "not both"), "positions and cells mixed");
        ok(trace_refused("{\"points\": [{\"t\": 1, \"cell\": \"a\"}, {\"t\": 0.5, \"cell\": \"b\"}]}", FM_TRACE_JSON, "points[1]: the time"), "JSON time backwards");
        ok(trace_refused("{\"points\": [{\"t\": 1, \"cell\": \"a\"}", FM_TRACE_JSON, "line 1"), "malformed JSON");

        const char *fcd = "<?xml version=\"1.0\"?>\n<fcd-export>\n <timestep time=\"0.00\">\n"
                          "  <vehicle id=\"a\" x=\"1\" y=\"2\" speed=\"0\"/>\n  <vehicle id=\"b\" x=\"5\" y=\"6\"/>\n"
                          " </timestep>\n <timestep time=\"1.00\">\n  <person id=\"p\" x=\"0\" y=\"0\"/>\n"
                          "  <vehicle id=\"b\" x=\"7\" y=\"8\"/>\n </timestep>\n</fcd-export>\n";
        ok(fm_trace_parse(fcd, strlen(fcd), FM_TRACE_FCD, "b", &t, &e) == 0 && t.n == 2 && t.p[1].x == 7 && t.p[1].line == 9,
           "fcd: one vehicle's points (%s)", e.msg);
        fm_trace_free(&t);
        ok(trace_refused(fcd, FM_TRACE_FCD, "more than one vehicle"), "fcd: several vehicles and none named");
        ok(fm_trace_parse(fcd, strlen(fcd), FM_TRACE_FCD, "zz", &t, &e) == -ENOENT, "fcd: a vehicle not in it");
        ok(trace_refused("<fcd-export><timestep time=\"1\"><vehicle id=\"a\" x=\"1\" y=\"1\"/></timestep>"
                         "<timestep time=\"0.5\"><vehicle id=\"a\" x=\"1\" y=\"1\"/></timestep></fcd-export>",
                         FM_TRACE_FCD, "not after"),
           "fcd: time backwards");
        ok(trace_refused("<fcd-export><timestep time=\"1\"><vehicle id=\"a\" x=\"1\"", FM_TRACE_FCD, "line 1"), "fcd: malformed");
        ok(trace_refused("<other/>", FM_TRACE_FCD, "<fcd-export>"), "fcd: another root");
        ok(trace_refused("<!DOCTYPE f [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;\">]><fcd-export>&b;</fcd-export>",
                         FM_TRACE_FCD, "entity"),
           "fcd: entities refused");
        ok(trace_refused("<fcd-export><timestep><vehicle id=\"a\" x=\"1\" y=\"1\"/></timestep></fcd-export>", FM_TRACE_FCD,
                         "numeric time"),
           "fcd: a timestep without time");
}

static void test_sumo_file(const char *path)
{
        _cleanup_free_ char *text = NULL;
        ssize_t n = path ? fm_read_file(path, &text, FM_TRACE_TEXT_MAX + 1) : -ENOENT;
        ok(n > 0, "SUMO's fcd file read (%s)", path ? path : "no path given");
        if (n <= 0)
                return;
        fm_trace t;
        fm_error e = {0};
        ok(fm_trace_parse(text, (size_t)n, FM_TRACE_FCD, NULL, &t, &e) < 0 && strstr(e.msg, "name one"),
           "two cars in it: one must be named");
        ok(fm_trace_parse(text, (size_t)n, FM_TRACE_FCD, "car0", &t, &e) == 0, "car0's trace (%s)", e.msg);
        ok(t.n == 69 && t.p[0].t_ms == 0 && t.p[68].t_ms == 68000 && t.p[68].x > 1590, "69 s along the 1600 m road");
        fm_coverage c;
        coverage_from(highway, &c, &e);
        ok(fm_trace_resolve(&t, &c, &e) == 0, "every point in a cell (%s)", e.msg);
        fm_handover_plan *h = NULL;
        size_t nh = 0;
        ok(fm_plan_handovers(&t, &c, 4000, &h, &nh, &e) == 0 && nh == 3, "3 handovers between 4 hosts (%zu)", nh);
        for (size_t i = 0; i < nh; i++)
                ok(h[i].start_ms == h[i].deadline_ms - 4000 && !h[i].tight, "%s->%s at %.1f s, start at %.1f s",
                   h[i].from_host, h[i].to_host, h[i].deadline_ms / 1000.0, h[i].start_ms / 1000.0);
        free(h);
        fm_trace_free(&t);
        fm_coverage_free(&c);
}

/* dst = src with its first from replaced by to */
static void subst(char *dst, size_t n, const char *src, const char *from, const char *to)
{
        const char *at = strstr(src, from);
        snprintf(dst, n, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
}

static bool scn_refused(const char *text, const char *want)
{
        fm_scenario s;
        fm_error e = {0};
        int r = fm_scenario_parse(text, strlen(text), NULL, 0, &s, &e);
        if (r == 0)
                fm_scenario_free(&s);
        if (r < 0 && !strstr(e.msg, want))
                printf("# got: %s\n", e.msg);
        return r < 0 && strstr(e.msg, want);
}

static void test_scenarios(void)
{
        static const char *const shipped[] = {"highway", "crossing", "drone-loop", "sumo-road"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(shipped); i++) {
                char path[512];
                snprintf(path, sizeof(path), "%s/scenarios/%s.json", FM_SOURCE_ROOT, shipped[i]);
                fm_scenario s;
                fm_error e = {0};
                int r = fm_scenario_load(path, 0, &s, &e);
                ok(r == 0 && s.n >= 1 && s.duration_s > 30, "scenarios/%s.json reads (%s)", shipped[i], e.msg);
                if (r == 0 && !strcmp(shipped[i], "sumo-road"))
                        ok(s.n == 2 && s.users[1].trace.t.p[0].t_ms == 10000 && s.users[1].trace.format == FM_TRACE_FCD,
                           "the SUMO scenario's second car starts at 10 s");
                if (r == 0 && !strcmp(shipped[i], "highway")) {
                        fm_scenario f;
                        ok(fm_scenario_load(path, 2, &f, &e) == 0 && f.duration_s == s.duration_s / 2,
                           "a speed-up of 2 halves the trip");
                        fm_scenario_free(&f);
                }
                if (r == 0)
                        fm_scenario_free(&s);
        }
        const char *good = "{\"scenario\": \"t\", \"hosts\": 2, \"coverage\": {\"cells\": [{\"id\": \"a\", \"host\": "
                           "\"mec1\", \"center\": [0, 0], \"radius\": 100}, {\"id\": \"b\", \"host\": \"mec2\"}]}, "
                           "\"users\": [{\"name\": \"u\", \"trace\": {\"points\": [{\"t\": 0, \"x\": 0, \"y\": 0}]}, "
                           "\"service\": {\"workload\": \"blank\"}}]}";
        fm_scenario s;
        fm_error e = {0};
        ok(fm_scenario_parse(good, strlen(good), NULL, 0, &s, &e) == 0 && s.n == 1 && !strcmp(s.users[0].associate, "10.99.0.1"),
           "an inline scenario (%s)", e.msg);
        if (e.code == 0)
                fm_scenario_free(&s);
        char bad[2048];
        snprintf(bad, sizeof(bad), "%s", good);
        char *m = strstr(bad, "\"mec2\"");
        memcpy(m, "\"mec3\"", 6);
        ok(scn_refused(bad, "cells[1].host"), "a host beyond the scenario's");
        snprintf(bad, sizeof(bad), "%s", good);
        m = strstr(bad, "{\"points\"");
        snprintf(bad + (m - bad), sizeof(bad) - (size_t)(m - bad), "{\"file\": \"../../etc/passwd\", \"format\": \"csv\"}, "
                 "\"service\": {\"workload\": \"blank\"}}]}");
        ok(scn_refused(bad, "no trace files here"), "a trace file where none may be named");
        subst(bad, sizeof(bad), good, "\"x\": 0", "\"x\": 500");
        ok(scn_refused(bad, "outside every cell"), "a user outside every cell");
        subst(bad, sizeof(bad), good, "\"blank\"", "\"memory\"");
        ok(scn_refused(bad, "size_mib"), "a memory workload without its size");
        subst(bad, sizeof(bad), good, "\"hosts\": 2", "\"hosts\": 9");
        ok(scn_refused(bad, "hosts"), "more hosts than a testbed has");
}

static void test_planner(void)
{
        fm_coverage c;
        fm_error e = {0};
        coverage_from(highway, &c, &e);
        /* 20 m/s from x = 0 */
        char csv[4096];
        size_t off = (size_t)snprintf(csv, sizeof(csv), "time,x,y\n");
        for (int s = 0; s <= 80; s += 2)
                off += (size_t)snprintf(csv + off, sizeof(csv) - off, "%d,%d,0\n", s, s * 20);
        fm_trace t;
        ok(fm_trace_parse(csv, off, FM_TRACE_CSV, NULL, &t, &e) == 0 && fm_trace_resolve(&t, &c, &e) == 0, "a 20 m/s car");
        fm_handover_plan *h = NULL;
        size_t nh = 0;
        ok(fm_plan_handovers(&t, &c, 3000, &h, &nh, &e) == 0 && nh == 3, "three host changes (c3 -> c3b is one host)");
        /* c1 ends at x = 425: t = 21.25 s; c2 ends at 825: 41.25 s; c3b ends at 1450: 72.5 s */
        ok(nh == 3 && llabs(h[0].deadline_ms - 21250) <= 2 && !strcmp(h[0].to_host, "mec2"), "mec1->mec2 at 21.25 s (%lld)",
           nh ? (long long)h[0].deadline_ms : -1);
        ok(nh == 3 && llabs(h[1].deadline_ms - 41250) <= 2 && !strcmp(h[1].to_cell, "c3"), "mec2->mec3 at 41.25 s (%lld)",
           nh > 1 ? (long long)h[1].deadline_ms : -1);
        ok(nh == 3 && llabs(h[2].deadline_ms - 72500) <= 2 && !strcmp(h[2].from_cell, "c3b"), "mec3->mec4 at 72.5 s (%lld)",
           nh > 2 ? (long long)h[2].deadline_ms : -1);
        ok(nh == 3 && h[0].start_ms == h[0].deadline_ms - 3000, "started its estimate before");
        free(h);
        /* an estimate longer than the time between handovers: starts pushed, flagged tight */
        ok(fm_plan_handovers(&t, &c, 25000, &h, &nh, &e) == 0 && nh == 3, "a 25 s estimate");
        ok(nh == 3 && h[0].start_ms == 0 && h[1].start_ms == 25000 && h[1].tight && h[2].start_ms == 50000 && h[2].tight && h[0].tight,
           "each start after the previous one's end; the late ones flagged");
        free(h);
        ok(!strcmp(fm_trace_cell_at(&t, 1000), "c1") && !strcmp(fm_trace_cell_at(&t, 30000), "c2") &&
                   !strcmp(fm_trace_cell_at(&t, 999999), "c4"),
           "the cell at a time");
        ok(fm_trace_on_path(&t, 30000, "c2") && fm_trace_on_path(&t, 20000, "c2") && !fm_trace_on_path(&t, 30000, "c4"),
           "on the path, off it");
        fm_trace_free(&t);

        const char *bad = "time,x,y\n0,0,0\n2,1000,500\n";
        ok(fm_trace_parse(bad, strlen(bad), FM_TRACE_CSV, NULL, &t, &e) == 0 && fm_trace_resolve(&t, &c, &e) == -EDOM &&
                   strstr(e.msg, "line 3"),
           "a point outside every cell: its line (%s)", e.msg);
        fm_trace_free(&t);
        const char *unknown = "time,cell\n0,c1\n2,c9\n";
        ok(fm_trace_parse(unknown, strlen(unknown), FM_TRACE_CSV, NULL, &t, &e) == 0 &&
                   fm_trace_resolve(&t, &c, &e) == -ENOENT && strstr(e.msg, "c9"),
           "a cell not on the map");
        fm_trace_free(&t);
        fm_coverage_free(&c);

        char how[200];
        fm_estimate_in in = {.mem_bytes = 64 << 20, .disk_bytes = 0, .link_mbit = 1000};
        int64_t est = fm_plan_estimate_ms(&in, how, sizeof(how));
        ok(est == (int64_t)ceil((FM_PLAN_FIXED_MS + ceil(64.0 * 1048576 * 8 / 1e9 * 1000)) * 1.5), "model: %lld ms (%s)", (long long)est, how);
        double hist[] = {5000, 2000};
        in.history_ms = hist;
        in.nhistory = 2;
        ok(fm_plan_estimate_ms(&in, how, sizeof(how)) == 7500 && strstr(how, "history max 5.0 s of 2"),
           "history longer than the model wins (%s)", how);
        ok(fm_plan_transfer_ms(125000000, 1000) == 1000 && fm_plan_transfer_ms(1, 0) == 0, "transfer times");

        /* the switch: model 500 ms + 125 MB at 1000 Mbit/s = 1500 ms, + a quarter */
        fm_switch_in si = {.mem_bytes = 125000000, .link_mbit = 1000};
        ok(fm_plan_switch_ms(&si, how, sizeof(how)) == 1875 && strstr(how, "none known"),
           "switch without history: the model and a quarter (%s)", how);
        si.load_per_cpu = 0.4;
        ok(fm_plan_switch_ms(&si, NULL, 0) == 1875, "a host under half loaded: the model as it is");
        si.load_per_cpu = 1.25;
        ok(fm_plan_switch_ms(&si, how, sizeof(how)) == 4688 && strstr(how, "x2.5"),
           "a busy host: the model times twice its load per CPU (%s)", how);
        si.load_per_cpu = 0;
        double sw[] = {120, 400, 180};
        si.downtimes_ms = sw;
        si.n = 3;
        ok(fm_plan_switch_ms(&si, how, sizeof(how)) == 680 && strstr(how, "longest of 3"),
           "its own switches: the longest, even under the model, and their spread (%s)", how);
        double steady[] = {400, 390};
        fm_switch_in st = {.downtimes_ms = steady, .n = 2};
        ok(fm_plan_switch_ms(&st, NULL, 0) == 500, "steady switches: a quarter more");
        si.fleet = true;
        ok(fm_plan_switch_ms(&si, how, sizeof(how)) == 1875 && strstr(how, "shorter"),
           "the fleet's shorter than the model: the model (%s)", how);
        double slow[] = {2000};
        si.downtimes_ms = slow;
        si.n = 1;
        ok(fm_plan_switch_ms(&si, how, sizeof(how)) == 2500 && strstr(how, "fleet's"),
           "the fleet's longer than the model: theirs (%s)", how);
        si.fleet = false;
        si.downtimes_ms = sw;
        si.n = 3;
        si.load_per_cpu = 1.25;
        ok(fm_plan_switch_ms(&si, how, sizeof(how)) == 4688 && strstr(how, "busy"),
           "a busy host: its own switches no less than the model (%s)", how);
        double quick[] = {40};
        fm_switch_in q = {.downtimes_ms = quick, .n = 1};
        ok(fm_plan_switch_ms(&q, NULL, 0) == 40 + FM_PLAN_SWITCH_GUARD_MS, "the guard is never under %d ms",
           FM_PLAN_SWITCH_GUARD_MS);
}

int main(void)
{
        test_coverage();
        test_traces();
        test_planner();
        test_sumo_file(FM_SOURCE_ROOT "/scenarios/sumo/road.fcd.xml");
        test_scenarios();
        return tap_done();
}
