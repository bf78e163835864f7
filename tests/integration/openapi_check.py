"""The orchestrator's API against its OpenAPI document (docs/openapi.json):
every documented operation answers with a documented status and a body of
the documented schema (and 401 without a token); every other method of a
documented path answers 405 with the documented ones in Allow; paths the
document does not have answer 404. Runs against a live daemon
(FASTMIG_API_URL, FASTMIG_API_TOKEN, FASTMIG_API_CA).

usage: openapi_check.py DOC FIXTURES
FIXTURES (JSON): {"params": {NAME: VALUE}, "bodies": {"METHOD PATH": BODY}}:
the path and query values and the request bodies to use."""
import json, os, re, ssl, sys, urllib.error, urllib.request

doc = json.load(open(sys.argv[1]))
fx = json.loads(sys.argv[2])
URL, TOKEN = os.environ["FASTMIG_API_URL"], os.environ["FASTMIG_API_TOKEN"]
CTX = ssl.create_default_context(cafile=os.environ["FASTMIG_API_CA"])
METHODS = ["get", "post", "put", "delete", "patch"]
failures = []

def call(method, path, body=None, token=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method.upper())
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=CTX, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()

def resolve(s):
    while "$ref" in s:
        s = doc["components"]["schemas"][s["$ref"].split("/")[-1]]
    return s

def check(v, s, where):
    s = resolve(s)
    if v is None:
        return [] if s.get("nullable") else [f"{where}: null"]
    t = s.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t in kinds and not isinstance(v, kinds[t]):
        return [f"{where}: not a {t}: {v!r}"]
    if t == "integer" and (isinstance(v, bool) or not isinstance(v, int)):
        return [f"{where}: not an integer: {v!r}"]
    if t == "number" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        return [f"{where}: not a number: {v!r}"]
    errs = []
    if "enum" in s and v not in s["enum"]:
        errs.append(f"{where}: {v!r} not in {s['enum']}")
    if t == "string" and "pattern" in s and not re.search(s["pattern"], v):
        errs.append(f"{where}: {v!r} does not match {s['pattern']}")
    if t == "object":
        props = s.get("properties", {})
        for k in s.get("required", []):
            if k not in v:
                errs.append(f"{where}.{k}: missing")
        for k, x in v.items():
            if k in props:
                errs += check(x, props[k], f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                errs.append(f"{where}.{k}: not in the document")
    if t == "array":
        for i, x in enumerate(v):
            errs += check(x, s.get("items", {}), f"{where}[{i}]")
    return errs

def fail(msg):
    failures.append(msg)
    print("FAIL", msg)

def run(method, tmpl, o):
    path = re.sub(r"\{(\w+)\}", lambda m: fx["params"][m.group(1)], tmpl)
    qs = [f"{p['name']}={fx['params'][p['name']]}" for p in o.get("parameters", []) if p["in"] == "query" and p.get("required")]
    if qs:
        path += "?" + "&".join(qs)
    key = f"{method.upper()} {tmpl}"
    body = fx["bodies"].get(key)
    if "requestBody" in o and body is None:
        fail(f"{key}: no body in the fixtures")
        return
    for label, tok in (("with the token", TOKEN), ("without a token", None)):
        st, hdr, raw = call(method, path, body, tok)
        print(f"  {key} {label}: {st}")
        if str(st) not in o["responses"]:
            fail(f"{key} {label}: status {st} is not documented ({sorted(o['responses'])}): {raw[:200]!r}")
            continue
        if tok is None and st != 401:
            fail(f"{key}: answered {st} without a token")
        content = o["responses"][str(st)].get("content")
        if not content:
            if raw:
                fail(f"{key}: {st} has a body the document does not: {raw[:200]!r}")
            continue
        ctype = hdr.get("Content-Type", "")
        if ctype not in content:
            fail(f"{key}: {st} is {ctype!r}, the document says {list(content)}")
            continue
        for e in check(json.loads(raw), content[ctype]["schema"], f"{key} {st}"):
            fail(e)
        if st == 201 and "Location" in o["responses"]["201"].get("headers", {}) and not hdr.get("Location"):
            fail(f"{key}: 201 without Location")

ops = [(m, p, o) for p, item in doc["paths"].items() for m, o in item.items() if m in METHODS]
# what removes something goes last
for m, p, o in sorted(ops, key=lambda x: x[0] == "delete"):
    run(m, p, o)
for p, item in doc["paths"].items():
    path = re.sub(r"\{(\w+)\}", lambda m: fx["params"][m.group(1)], p)
    allowed = {m.upper() for m in item if m in METHODS}
    for m in METHODS:
        if m in item:
            continue
        st, hdr, raw = call(m, path, {} if m in ("post", "put", "patch") else None)
        if st != 405 or set(x.strip() for x in hdr.get("Allow", "").split(",")) != allowed:
            fail(f"{m.upper()} {p}: {st} Allow {hdr.get('Allow')!r}, not 405 with {sorted(allowed)}")
for p in ["/", "/amsi", "/amsi/v1", "/amsi/v2/app_mobility_services", "/amsi/v1/app_mobility_services/x/y",
          "/amsi/v1/queries", "/fastmig/v1", "/fastmig/v1/hosts/mec1", "/fastmig/v1/migrations/1/report",
          "/amsi/v1/subscriptions/", "/fastmig/v1/images", "/openapi.json"]:
    st, hdr, raw = call("get", p)
    if st != 404:
        fail(f"GET {p} (not documented): {st}, not 404")
print(f"{len(ops)} documented operations checked, {len(failures)} failures")
sys.exit(1 if failures else 0)
