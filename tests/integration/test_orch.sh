# The orchestrator daemon on the testbed (docs/ORCHESTRATOR.md): its API's
# answers to good and bad requests, a migration it runs with the MEC 021
# notifications to a subscriber's callback (a real HTTP listener), a busy
# service refused, a failed migration notified, three migrations at once.
. "$(dirname "$0")/lib.sh"
testbed_up --hosts 3 --test-hooks --orchestrator
orch_env
"$FASTMIG" workload start blank --host mec1 --name svc >/dev/null
same_boot svc
LISTEN=/tmp/fm-orch-notes.$$
python3 - 18181 "$LISTEN" <<'PY' &
import http.server, sys
out = open(sys.argv[2], 'a')
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        out.write(body.decode() + "\n"); out.flush()
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
listener=$!
trap 'kill $listener 2>/dev/null; rm -f "$LISTEN"; testbed_clean' EXIT

note "every request needs a valid token"
API_TOKEN="" api GET /amsi/v1/app_mobility_services
expect_problem 401 "no token"
grep -qi '^www-authenticate: bearer realm="fastmig"$' <<<"$HDRS" || fail "401 without WWW-Authenticate: $HDRS"
API_TOKEN=$(printf '%064d' 0) api GET /amsi/v1/app_mobility_services
expect_problem 401 "a wrong token"
grep -qi '^www-authenticate: bearer .*error="invalid_token"' <<<"$HDRS" || fail "a wrong token's 401: $HDRS"

note "register svc (MEC 021 RegistrationInfo with fastmig's extension)"
REG='{"serviceConsumerId":{"appInstanceId":"app-svc"},"deviceInformation":[{"associateId":{"type":"UE_IPv4_ADDRESS","value":"10.77.0.2"},"appMobilityServiceLevel":"APP_MOBILITY_WITHOUT_CONFIRMATION"}],"fastmig":{"container":"svc","downtimeBudgetMs":1000}}'
api POST /amsi/v1/app_mobility_services "$REG"
expect 201 "registering svc"
SID=$(jget "$BODY" appMobilityServiceId)
grep -qi "^location: $FASTMIG_API_URL/amsi/v1/app_mobility_services/$SID\$" <<<"$HDRS" || fail "no Location: $HDRS"
[ "$(jget "$BODY" fastmig.host)" = mec1 ] || fail "svc's host is not mec1: $BODY"
api GET "/amsi/v1/app_mobility_services/$SID"
expect 200 "reading svc"

note "bad requests: the right status and a problem naming what is wrong"
api POST /amsi/v1/app_mobility_services '{"serviceConsumerId": {'
expect_problem 400 "malformed JSON" "not a JSON object"
api POST /amsi/v1/app_mobility_services "${REG%\}},\"colour\":\"red\"}"
expect_problem 400 "an unknown field" "colour"
api POST /amsi/v1/app_mobility_services "${REG/\"downtimeBudgetMs\":1000/\"downtimeBudgetMs\":\"soon\"}"
expect_problem 400 "a wrong type" "fastmig.downtimeBudgetMs"
api POST /amsi/v1/app_mobility_services "${REG/\"downtimeBudgetMs\":1000/\"downtimeBudgetMs\":0}"
expect_problem 400 "a value out of range" "downtimeBudgetMs"
api POST /amsi/v1/app_mobility_services "${REG/UE_IPv4_ADDRESS/UE_IPv4}"
expect_problem 400 "a value outside the spec's set" "UE_IPv4_ADDRESS"
# the answer comes before the body is read: curl may still be sending when
# the connection ends (a broken pipe on a loaded machine), else it reads 413
printf '{"pad":"%s"}' "$(head -c 70000 /dev/zero | tr '\0' x)" >/tmp/fm-pad.$$
code=$(curl -sS --cacert "$FASTMIG_API_CA" -H "Authorization: Bearer $FASTMIG_API_TOKEN" -H 'Content-Type: application/json' \
  --data-binary @/tmp/fm-pad.$$ -o /tmp/fm-pad-out.$$ -w '%{http_code}' "$FASTMIG_API_URL/amsi/v1/app_mobility_services" 2>/dev/null) || true
[ "$code" = 000 ] || { [ "$code" = 413 ] && grep -q 65536 /tmp/fm-pad-out.$$; } || fail "an oversized body got HTTP $code: $(cat /tmp/fm-pad-out.$$)"
rm -f /tmp/fm-pad.$$ /tmp/fm-pad-out.$$
# without a length, the connection ends once the limit is passed
code=$(head -c 200000 /dev/zero | tr '\0' x | curl -sS --cacert "$FASTMIG_API_CA" -H "Authorization: Bearer $FASTMIG_API_TOKEN" \
  -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @- -o /dev/null -w '%{http_code}' \
  "$FASTMIG_API_URL/amsi/v1/app_mobility_services" 2>/dev/null) || true
[ "$code" = 000 ] || [ "$code" = 413 ] || fail "an oversized chunked body got HTTP $code"
api POST /amsi/v1/app_mobility_services "$REG" text/plain
expect_problem 415 "a body that is not JSON"
api GET /amsi/v1/app_mobility_services/0123456789abcdef
expect_problem 404 "an unknown id"
api GET /fastmig/v1/nothing
expect_problem 404 "an unknown path"
api PATCH /amsi/v1/app_mobility_services
expect_problem 405 "a method the path does not take"
grep -qi '^allow: GET, POST' <<<"$HDRS" || fail "405 without Allow: $HDRS"
api POST /amsi/v1/app_mobility_services "$REG"
expect_problem 409 "svc registered twice" "$SID"
api POST /amsi/v1/app_mobility_services "${REG/\"container\":\"svc\"/\"container\":\"ghost\"}"
expect_problem 422 "a container no host runs" "ghost"
api POST /fastmig/v1/migrations '{"container":"svc","to":"mec9"}'
expect_problem 422 "a migration to an unknown host" "mec9"
api POST /fastmig/v1/migrations '{"container":"svc","to":"mec2","options":{"max_rounds":100}}'
expect_problem 400 "an option out of range" "options.max_rounds"
api POST /amsi/v1/subscriptions '{"subscriptionType":"MobilityProcedureSubscription","callbackReference":"file:///etc/passwd","filterCriteria":{}}'
expect_problem 400 "a callback that is no HTTP URI" "callbackReference"

note "the users' last known cells"
T1=$(($(date +%s) - 600))
api POST /fastmig/v1/users/cell_changes "{\"associateId\":{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.77.0.2\"},\"cell\":\"c2\",\"timeStamp\":{\"seconds\":$T1,\"nanoSeconds\":0}}"
expect 200 "a cell change of svc's user"
[ "$(jget "$BODY" cell)" = c2 ] && [ "$(jget "$BODY" services.0)" = "$SID" ] || fail "the user: $BODY"
api POST /fastmig/v1/users/cell_changes "{\"associateId\":{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.77.0.2\"},\"cell\":\"c1\",\"timeStamp\":{\"seconds\":$((T1 - 60)),\"nanoSeconds\":0}}"
expect_problem 409 "an older cell change" "later"
api POST /fastmig/v1/users/cell_changes '{"associateId":{"type":"UE_IPv4_ADDRESS","value":"10.9.9.9"},"cell":"c1"}'
expect_problem 422 "a user of no service" "10.9.9.9"
api POST /fastmig/v1/users/cell_changes '{"associateId":{"type":"UE_IPv4_ADDRESS","value":"10.77.0.2"},"cell":"c1","timeStamp":{"seconds":4000000000,"nanoSeconds":0}}'
expect_problem 400 "a time stamp far in the future" "ahead"
api GET /fastmig/v1/users
[ "$(jget "$BODY" 0.cell)" = c2 ] && [ "$(jget "$BODY" 0.since)" = "${T1}000" ] || fail "the users: $BODY"

note "images through the API: list, place on a host from the one that holds it, remove"
api GET /fastmig/v1/hosts/mec1/images
expect 200 "mec1's images"
APP=$(python3 -c 'import json,sys; print([i["digest"] for i in json.loads(sys.argv[1])["images"] if i["kind"] == "app"][0])' "$BODY")
api POST /fastmig/v1/hosts/mec2/images "{\"image\":\"$APP\"}"
expect 201 "placing the app image on mec2"
[ "$(jget "$BODY" from)" = mec1 ] && [ "$(jget "$BODY" bytes)" -gt 0 ] || fail "the placement: $BODY"
"$FASTMIG" image list --host mec2 | grep -q "${APP:0:12}" || fail "mec2 does not list the image: $("$FASTMIG" image list --host mec2)"
api POST /fastmig/v1/hosts/mec2/images "{\"image\":\"$APP\"}"
expect_problem 409 "placing it twice" "already"
api POST /fastmig/v1/hosts/mec2/images '{"image":"nosuchimage"}'
expect_problem 422 "placing an image no host holds" "nosuchimage"
api DELETE "/fastmig/v1/hosts/mec1/images/$APP"
expect_problem 409 "removing an image svc uses" "in use"
api DELETE "/fastmig/v1/hosts/mec2/images/$APP"
expect 204 "removing the image from mec2"
! "$FASTMIG" image list --host mec2 | grep -q "${APP:0:12}" || fail "mec2 still lists the image"
api GET /fastmig/v1/hosts/mec9/images
expect_problem 404 "the images of an unknown host" "mec9"

note "subscribe a listener, migrate svc through the orchestrator (fastmig migrate with FASTMIG_API_URL)"
SUB='{"subscriptionType":"MobilityProcedureSubscription","callbackReference":"http://127.0.0.1:18181/notify","filterCriteria":{"appInstanceId":"app-svc","mobilityStatus":["INTERHOST_MOVEOUT_TRIGGERED","INTERHOST_MOVEOUT_COMPLETED","INTERHOST_MOVEOUT_FAILED"]}}'
api POST /amsi/v1/subscriptions "$SUB"
expect 201 "subscribing"
SUBID=$(jget "$BODY" _links.self.href)
api GET "/amsi/v1/subscriptions?subscriptionType=mobility_proc"
expect 200 "listing subscriptions"
[ "$(jget "$BODY" subscription.0.href)" = "$SUBID" ] || fail "the subscription is not listed: $BODY"
# a subscription is its client's: another client's token does not see it
OTHER=$("$FASTMIG" orch token other --db /var/lib/fastmig/testbed/orch/orch.db)
API_TOKEN=$OTHER api GET "/amsi/v1/subscriptions/${SUBID##*/}"
expect_problem 404 "another client's subscription"
API_TOKEN=$OTHER api DELETE "/amsi/v1/subscriptions/${SUBID##*/}"
expect_problem 404 "deleting another client's subscription"
API_TOKEN=$OTHER api GET /amsi/v1/subscriptions
[ "$(jget "$BODY" subscription)" = "[]" ] || fail "another client lists this one's subscriptions: $BODY"
"$FASTMIG" orch token other --db /var/lib/fastmig/testbed/orch/orch.db --revoke >/dev/null
API_TOKEN=$OTHER api GET /amsi/v1/subscriptions
expect_problem 401 "a revoked token"
c=$("$FASTMIG" workload write svc before-1)
out=$("$FASTMIG" migrate svc --to mec2 --json) || fail "the migration through the orchestrator failed: $out"
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "svc's migration: $out"
state_kept svc mec2 before-1
api GET "/amsi/v1/app_mobility_services/$SID"
[ "$(jget "$BODY" fastmig.host)" = mec2 ] || fail "the service's host is not mec2 after the migration: $BODY"
for i in $(seq 1 100); do [ "$(wc -l < "$LISTEN")" -ge 2 ] && break; sleep 0.1; done
python3 - "$LISTEN" "$SUBID" <<'PY' || fail "the notifications: $(cat "$LISTEN")"
import json, sys
n = [json.loads(l) for l in open(sys.argv[1])]
assert [x["mobilityStatus"] for x in n] == ["INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED"], n
for x in n:
    assert x["notificationType"] == "MobilityProcedureNotification"
    assert x["associateId"] == [{"type": "UE_IPv4_ADDRESS", "value": "10.77.0.2"}]
    assert x["targetAppInfo"]["appInstanceId"] == "app-svc"
    assert x["targetAppInfo"]["commInterface"]["ipAddresses"][0]["host"] == "10.77.2.2"
    assert x["_links"]["subscription"]["href"] == sys.argv[2]
    assert x["timeStamp"]["seconds"] > 1700000000
assert n[0]["timeStamp"]["seconds"] <= n[1]["timeStamp"]["seconds"]
PY
: > "$LISTEN"

note "a second migration of a busy service is refused (409); a failed one is notified"
api POST /fastmig/v1/migrations "{\"appMobilityServiceId\":\"$SID\",\"to\":\"mec3\",\"options\":{\"inject_failure\":\"pause_planned\"}}"
expect 201 "migrating svc to mec3"
MID=$(jget "$BODY" id)
api POST /fastmig/v1/migrations "{\"appMobilityServiceId\":\"$SID\",\"to\":\"mec1\"}"
expect_problem 409 "a second migration of svc" "migrating already"
api DELETE "/amsi/v1/app_mobility_services/$SID"
expect_problem 409 "deregistering a migrating service"
m=$(orch_wait "$MID")
[ "$(jget "$m" status)" = succeeded ] || fail "svc's migration to mec3: $m"
state_kept svc mec3 before-1
api POST /fastmig/v1/migrations "{\"appMobilityServiceId\":\"$SID\",\"to\":\"mec1\",\"options\":{\"inject_failure\":\"restore\"}}"
expect 201 "a migration that will fail"
m=$(orch_wait "$(jget "$BODY" id)")
[ "$(jget "$m" status)" = rolled_back ] || fail "the failed migration is not rolled back: $m"
state_kept svc mec3 before-1
for i in $(seq 1 100); do [ "$(wc -l < "$LISTEN")" -ge 4 ] && break; sleep 0.1; done
[ "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["mobilityStatus"].split("_")[-1] for l in open(sys.argv[1])))' "$LISTEN")" = \
  "TRIGGERED COMPLETED TRIGGERED FAILED" ] || fail "the notifications: $(cat "$LISTEN")"

note "three services on three hosts migrated at once"
for x in "ca mec1" "cb mec2" "cc mec3"; do
  read -r n on <<<"$x"
  "$FASTMIG" workload start blank --host "$on" --name "$n" >/dev/null
done
declare -A C0 MIDS
for n in ca cb cc; do same_boot $n; C0[$n]=$("$FASTMIG" workload write $n before); done
# one from each host to the next: each host is in two of them, the limit;
# `from' given, so that the requests follow each other without asking the
# agents where each runs (on a loaded machine that took seconds apiece)
for x in "ca mec1 mec2" "cb mec2 mec3" "cc mec3 mec1"; do
  read -r n from to <<<"$x"
  api POST /fastmig/v1/migrations "{\"container\":\"$n\",\"from\":\"$from\",\"to\":\"$to\"}"
  expect 201 "migrating $n"
  MIDS[$n]=$(jget "$BODY" id)
done
for n in ca cb cc; do
  m=$(orch_wait "${MIDS[$n]}")
  [ "$(jget "$m" status)" = succeeded ] || fail "$n: $m"
  [ "$(jget "$m" report.state_continuous)" = true ] || fail "$n: state not continuous: $m"
  eval "S_$n=$(jget "$m" started) E_$n=$(jget "$m" ended)"
  same_boot $n
  [ "$("$FASTMIG" workload write $n after)" -gt "${C0[$n]}" ] || fail "$n's counter went back"
done
# they ran together: each started before the others ended
[ "$S_ca" -lt "$E_cb" ] && [ "$S_cb" -lt "$E_ca" ] && [ "$S_ca" -lt "$E_cc" ] && [ "$S_cc" -lt "$E_ca" ] ||
  fail "the migrations did not overlap: ca $S_ca-$E_ca cb $S_cb-$E_cb cc $S_cc-$E_cc"
"$FASTMIG" list | grep -q "^ca *mec2 *RUNNING" && "$FASTMIG" list | grep -q "^cb *mec3 *RUNNING" &&
  "$FASTMIG" list | grep -q "^cc *mec1 *RUNNING" || fail "not where they were sent: $("$FASTMIG" list)"
api GET "/fastmig/v1/migrations?status=succeeded&limit=3"
expect 200 "listing migrations"
[ "$(jget "$BODY" 0.status)" = succeeded ] || fail "the list: $BODY"

note "following users: the coverage map, trajectories, positions and RNIS notifications refused whole when wrong"
api GET /fastmig/v1/coverage
expect_problem 404 "no coverage map yet"
U='{"type":"UE_IPv4_ADDRESS","value":"10.77.0.2"}'
api POST /fastmig/v1/users/positions "{\"associateId\":$U,\"x\":1,\"y\":1}"
expect_problem 409 "a position without a map" "coverage map"
COV='{"cells":[{"id":"c1","host":"mec1","polygon":[[0,-50],[100,-50],[100,50],[0,50]]},{"id":"c2","host":"mec2","polygon":[[100,-50],[200,-50],[200,50],[100,50]]},{"id":"c3","host":"mec3","center":[250,0],"radius":50}]}'
api PUT /fastmig/v1/coverage "${COV/mec3/mec9}"
expect_problem 422 "a cell on a host not in the fleet" "mec9"
api PUT /fastmig/v1/coverage '{"cells":[{"id":"c1","host":"mec1","polygon":[[0,0],[1,1]]}]}'
expect_problem 400 "a polygon of two vertices" "at least 3"
api PUT /fastmig/v1/coverage "$COV"
expect 200 "the coverage map"
H=$("$FASTMIG" list | awk '$1 == "svc" {print $2}')
N=${H#mec}
X=$(( (N - 1) * 100 + 50 ))
[ "$N" = 3 ] && X=240
api POST /fastmig/v1/users/positions "{\"associateId\":$U,\"x\":$X,\"y\":0}"
expect 200 "svc's user in the cell of svc's host"
[ "$(jget "$BODY" cell)" = "c$N" ] && [ "$(jget "$BODY" handovers)" = "[]" ] || fail "a position in svc's own cell: $BODY"
api POST /fastmig/v1/users/positions "{\"associateId\":$U,\"x\":900,\"y\":0}"
expect_problem 422 "a position outside every cell" "outside every cell"
api POST /fastmig/v1/users/positions '{"associateId":{"type":"UE_IPv4_ADDRESS","value":"10.9.9.9"},"x":1,"y":1}'
expect_problem 422 "a position of no service's user" "10.9.9.9"
TRIP="{\"appMobilityServiceId\":\"$SID\",\"format\":\"csv\",\"text\":\"time,x,y\\n0,$X,0\\n5,$X,1\\n3,$X,2\\n\"}"
api POST /fastmig/v1/trajectories "$TRIP"
expect_problem 400 "a trace whose time goes back" "line 4"
api POST /fastmig/v1/trajectories "${TRIP/3,$X,2/9,900,0}"
expect_problem 422 "a trace outside every cell" "line 4"
api POST /fastmig/v1/trajectories '{"appMobilityServiceId":"nosuch","points":[{"t":0,"cell":"c1"},{"t":600,"cell":"c1"}]}'
expect_problem 422 "a trajectory of no service" "nosuch"
api POST /fastmig/v1/trajectories "{\"appMobilityServiceId\":\"$SID\",\"format\":\"fcd\",\"text\":\"<fcd-export><timestep time=\\\"0\\\">\"}"
expect_problem 400 "a malformed fcd trace" "line 1"
api POST /fastmig/v1/trajectories "{\"appMobilityServiceId\":\"$SID\",\"points\":[{\"t\":0,\"cell\":\"c$N\"},{\"t\":1,\"cell\":\"c9\"}]}"
expect_problem 422 "a cell not on the map" "c9"
python3 -c 'import sys; sys.stdout.write("{\"appMobilityServiceId\":\"x\",\"text\":\"" + "0" * (7 << 20) + "\"}")' >/tmp/fm-big.$$
code=$(curl -sS --cacert "$FASTMIG_API_CA" -H "Authorization: Bearer $FASTMIG_API_TOKEN" -H 'Content-Type: application/json' \
  --data-binary @/tmp/fm-big.$$ -o /dev/null -w '%{http_code}' "$FASTMIG_API_URL/fastmig/v1/trajectories" 2>/dev/null) || true
rm -f /tmp/fm-big.$$
[ "$code" = 413 ] || fail "a 7 MiB trajectory got HTTP $code"
api GET "/fastmig/v1/trajectories"
[ "$BODY" = "[]" ] || fail "something was half-registered: $BODY"
# a trip that stays in svc's cell for ten minutes: followed, nothing to do
api POST /fastmig/v1/trajectories "{\"appMobilityServiceId\":\"$SID\",\"points\":[{\"t\":0,\"x\":$X,\"y\":0},{\"t\":600,\"x\":$X,\"y\":10}]}"
expect 201 "a trajectory that stays in svc's cell"
TID=$(jget "$BODY" id)
[ "$(jget "$BODY" state)" = following ] && [ "$(jget "$BODY" handovers)" = "[]" ] || fail "the trajectory: $BODY"
api POST /fastmig/v1/trajectories "{\"appMobilityServiceId\":\"$SID\",\"points\":[{\"t\":0,\"cell\":\"c$N\"},{\"t\":600,\"cell\":\"c$N\"}]}"
expect_problem 409 "a second trajectory of svc" "already"
api PUT /fastmig/v1/coverage "${COV/250,0/260,0}"
expect_problem 409 "a new map under a followed trajectory" "trajector"
RN="{\"notificationType\":\"CellChangeNotification\",\"associateId\":[$U],\"srcEcgi\":{\"cellId\":\"c$N\"},\"trgEcgi\":[{\"cellId\":\"c$N\",\"plmn\":{\"mcc\":\"001\",\"mnc\":\"01\"}}],\"hoStatus\":"
api POST /fastmig/v1/rnis/notifications "${RN}9}"
expect_problem 400 "a hoStatus out of range" "hoStatus"
api POST /fastmig/v1/rnis/notifications "${RN/\"cellId\":\"c$N\",\"plmn/\"cellId\":\"c9\",\"plmn}\"REJECTED\"}"
expect_problem 422 "a notification into a cell not on the map" "c9"
api POST /fastmig/v1/rnis/notifications "${RN/10.77.0.2/10.9.9.9}4}"
expect_problem 422 "a notification for no service's user" "10.9.9.9"
api POST /fastmig/v1/rnis/notifications "${RN}\"REJECTED\"}"
expect 200 "a rejected handover that started nothing"
[ "$(jget "$BODY" hoStatus)" = REJECTED ] && [ "$(jget "$BODY" handovers)" = "[]" ] || fail "the RNIS answer: $BODY"

note "the API agrees with docs/openapi.json: every operation, every other method, undocumented paths"
"$FASTMIG" workload start blank --host mec1 --name oa >/dev/null
api POST /amsi/v1/subscriptions "$SUB"
SUB2=$(jget "$BODY" _links.self.href)
FIX=$(python3 - "$SID" "${SUB2##*/}" "${MIDS[ca]}" "$REG" "$SUB" "$TID" "$COV" "$X" "$N" <<'PY'
import json, sys, time
sid, sub, mid, reg, subbody, tid, cov, x, n = sys.argv[1:10]
user = {"type": "UE_IPv4_ADDRESS", "value": "10.77.0.2"}
regs = json.loads(reg)
oa = json.loads(reg); oa["fastmig"]["container"] = "oa"; oa["serviceConsumerId"]["appInstanceId"] = "app-oa"
oa["deviceInformation"][0]["associateId"]["value"] = "10.77.0.3"  # not svc's user: its moves are svc's alone
print(json.dumps({"params": {"appMobilityServiceId": sid, "subscriptionId": sub, "migrationId": mid, "appInstanceId": "app-svc",
                              "hostName": "mec1", "image": "nosuchimage", "trajectoryId": tid, "handoverId": "1"},
  "bodies": {"POST /amsi/v1/app_mobility_services": oa, "PUT /amsi/v1/app_mobility_services/{appMobilityServiceId}": regs,
             "POST /amsi/v1/subscriptions": json.loads(subbody),
             "PUT /amsi/v1/subscriptions/{subscriptionId}": json.loads(subbody),
             "POST /fastmig/v1/migrations": {"container": "oa", "to": "mec3", "options": {"probe": False}},
             "POST /fastmig/v1/hosts/{hostName}/images": {"image": "nosuchimage"},
             "POST /fastmig/v1/users/cell_changes": {"associateId": user, "cell": "c" + n,
                                                    "timeStamp": {"seconds": int(time.time()) - 60, "nanoSeconds": 0}},
             "POST /fastmig/v1/users/positions": {"associateId": user, "x": int(x), "y": 0},
             "PUT /fastmig/v1/coverage": json.loads(cov),
             "POST /fastmig/v1/trajectories": {"appMobilityServiceId": sid, "points": [{"t": 0, "cell": "c" + n}, {"t": 600, "cell": "c" + n}]},
             "POST /fastmig/v1/rnis/notifications": {"notificationType": "CellChangeNotification", "associateId": [user],
                                                     "srcEcgi": {"cellId": "c" + n}, "trgEcgi": [{"cellId": "c" + n}], "hoStatus": 4}}}))
PY
)
python3 "$(dirname "$0")/openapi_check.py" "$(dirname "$0")/../../docs/openapi.json" "$FIX" || fail "the API does not agree with its document"
api GET "/fastmig/v1/migrations?container=oa"
m=$(orch_wait "$(jget "$BODY" 0.id)")
[ "$(jget "$m" status)" = succeeded ] || fail "oa's migration: $m"
echo ok
